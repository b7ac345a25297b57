import math

from .. import functional as F
from .base import Layer, check_input, check_tangent


class Flatten(Layer):
    """Merge dims start_dim..end_dim (default 1..-1): (N, C, H, W) -> (N, C*H*W)."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        self.cache = x.shape
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])

    def backward(self, dout):
        return dout.reshape(self.cache)

    def tangent(self, t):
        """The same reshape as the last forward (a linear map, its own tangent)."""
        check_tangent(self, t, self.cache)
        return t.reshape(self._out_shape)


def fill_free_size(layer, sizes, total, what):
    """``sizes`` with its one -1 (if any) replaced so that they multiply to ``total``, as PyTorch
    does; a ValueError naming the layer when they cannot."""
    free = [i for i, n in enumerate(sizes) if n == -1]
    known = math.prod(n for n in sizes if n != -1)
    if len(free) > 1 or any(n < 1 and n != -1 for n in sizes):
        raise ValueError(f"{type(layer).__name__}: sizes {sizes} must be positive, with at most one -1")
    if free and known and total % known == 0:
        sizes = tuple(total // known if n == -1 else n for n in sizes)
    if math.prod(sizes) != total:
        raise ValueError(f"{type(layer).__name__}: {what} has {total} values, which do not split into {sizes}")
    return tuple(sizes)


class Unflatten(Layer):
    """Split dim ``dim`` into ``unflattened_size``: Unflatten(1, (128, 7, 7)) maps (N, 6272) -> (N, 128, 7, 7)."""

    def __init__(self, dim, unflattened_size):
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        dim = self.dim % x.ndim
        sizes = fill_free_size(self, self.unflattened_size, x.shape[dim],
                               f"dim {self.dim} of input shape {tuple(x.shape)}")
        self.cache = x.shape
        return x.reshape(x.shape[:dim] + sizes + x.shape[dim + 1:])

    def backward(self, dout):
        return dout.reshape(self.cache)

    def tangent(self, t):
        """The same reshape as the last forward (a linear map, its own tangent)."""
        check_tangent(self, t, self.cache)
        return t.reshape(self._out_shape)


class Reshape(Layer):
    """Reshape each sample: Reshape(128, 7, 7) maps (N, 6272) -> (N, 128, 7, 7)."""

    def __init__(self, *shape):
        self.shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape

    def forward(self, x):
        shape = fill_free_size(self, self.shape, math.prod(x.shape[1:]), f"a sample of input shape {tuple(x.shape)}")
        self.cache = x.shape
        return x.reshape((x.shape[0],) + shape)

    def backward(self, dout):
        return dout.reshape(self.cache)

    def tangent(self, t):
        """The same reshape as the last forward (a linear map, its own tangent)."""
        check_tangent(self, t, self.cache)
        return t.reshape(self._out_shape)


class Upsample(Layer):
    """Nearest-neighbour upsampling by an integer ``scale_factor``: (N, C, H, W) -> (N, C, H*s, W*s)."""

    def __init__(self, scale_factor=2, mode="nearest"):
        if mode != "nearest" or int(scale_factor) != scale_factor or scale_factor < 1:
            raise ValueError(f"Upsample: only mode='nearest' with a positive integer scale_factor is supported, "
                             f"got mode={mode!r}, scale_factor={scale_factor!r}")
        self.scale_factor = int(scale_factor)

    def forward(self, x):
        check_input(self, x, 4)
        out, self.cache = F.upsample_nearest_forward(x, self.scale_factor)
        return out

    def backward(self, dout):
        return F.upsample_nearest_backward(dout, self.cache)
