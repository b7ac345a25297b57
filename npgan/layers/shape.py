import math

from .. import functional as F
from .base import Layer, check_input


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


class Unflatten(Layer):
    """Split dim ``dim`` into ``unflattened_size``: Unflatten(1, (128, 7, 7)) maps (N, 6272) -> (N, 128, 7, 7)."""

    def __init__(self, dim, unflattened_size):
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        dim = self.dim % x.ndim
        if x.shape[dim] != math.prod(self.unflattened_size):
            raise ValueError(f"Unflatten: dim {self.dim} of input shape {tuple(x.shape)} has size {x.shape[dim]}, "
                             f"expected {math.prod(self.unflattened_size)} = prod{self.unflattened_size}")
        self.cache = x.shape
        return x.reshape(x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def backward(self, dout):
        return dout.reshape(self.cache)


class Reshape(Layer):
    """Reshape each sample: Reshape(128, 7, 7) maps (N, 6272) -> (N, 128, 7, 7)."""

    def __init__(self, *shape):
        self.shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape

    def forward(self, x):
        if math.prod(x.shape[1:]) != math.prod(self.shape):
            raise ValueError(f"Reshape: cannot reshape input of shape {tuple(x.shape)} to (N, {', '.join(map(str, self.shape))})")
        self.cache = x.shape
        return x.reshape((x.shape[0],) + self.shape)

    def backward(self, dout):
        return dout.reshape(self.cache)


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
