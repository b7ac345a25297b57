import numbers

from .. import functional as F
from .base import Layer, check_input, check_tangent


class ReflectionPad2d(Layer):
    """Pad H and W by reflecting the input about its edges (the edge row is not repeated).

        y[..., i, j] = x[..., r_H(i - top), r_W(j - left)],   r_S(k) = (S-1) - |(S-1) - |k||

    e.g. a row [a, b, c, d] padded by 2 on the left and 1 on the right is [c, b, a, b, c, d, c].
    The backward adds each padded entry's gradient onto the entry it copied.

    Args:
        padding: an int (all four sides) or a 4-tuple (left, right, top, bottom), as PyTorch;
            each pad must be smaller than the input's size along its axis.
    Shape: (N, C, H, W) or (C, H, W) -> (..., H + top + bottom, W + left + right).
    """

    def __init__(self, padding):
        sides = (padding,) * 4 if isinstance(padding, numbers.Integral) and not isinstance(padding, bool) else padding
        if (not isinstance(sides, (tuple, list)) or len(sides) != 4
                or any(isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 0 for p in sides)):
            raise ValueError(f"ReflectionPad2d: padding must be a non-negative int or a 4-tuple of them "
                             f"(left, right, top, bottom), got {padding!r}")
        self.padding = tuple(int(p) for p in sides)
        self.cache = None

    def forward(self, x):
        ndim = getattr(x, "ndim", None)
        if ndim is not None and ndim not in (3, 4):
            raise ValueError(f"ReflectionPad2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                             f"{tuple(x.shape)}")
        check_input(self, x, ndim)
        left, right, top, bottom = self.padding
        for axis, name, pads in ((-2, "height", (top, bottom)), (-1, "width", (left, right))):
            if max(pads) >= x.shape[axis]:
                sides = "(top, bottom)" if axis == -2 else "(left, right)"
                raise ValueError(f"ReflectionPad2d: padding {sides} = {pads} must be smaller than the input "
                                 f"{name} {x.shape[axis]} (input shape {tuple(x.shape)}, padding "
                                 f"(left, right, top, bottom) = {self.padding})")
        out, self.cache = F.reflection_pad_forward(x, self.padding)
        return out

    def backward(self, dout):
        return F.reflection_pad_backward(dout, self.cache)

    def tangent(self, t):
        """The same padding (a linear map, its own tangent)."""
        check_tangent(self, t, self.cache and self.cache.x_shape)
        return F.reflection_pad_forward(t, self.padding)[0]

    def extra_repr(self):
        return f"{self.padding}"
