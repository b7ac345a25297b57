from .. import backend
from .base import Layer, check_float


class Dropout(Layer):
    """Training: y = x * mask / (1 - p), mask ~ Bernoulli(1 - p) from npgan's seeded generator.
    Eval: y = x. Shape: as input."""

    def __init__(self, p=0.5):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        check_float(self, x)
        if not self.training or self.p == 0:
            self.cache = None
            return x
        keep = backend.rng().random(x.shape, dtype=x.dtype) >= self.p
        self.cache = keep * x.dtype.type(1 / (1 - self.p))                    # scaled mask, x's dtype
        return x * self.cache

    def backward(self, dout):
        return dout if self.cache is None else dout * self.cache

    def tangent(self, t):
        """t_out = t * mask / (1 - p) with the mask of the last forward (t itself in eval mode):
        one forward's dropout is a fixed diagonal linear map, so a penalty through it is that of
        the thinned network the forward drew; no parameters, no second path."""
        return t if self.cache is None else t * self.cache
