"""Default parameter creation shared by the layers (PyTorch's default init)."""
import math

from .. import backend
from .base import Parameter


def uniform_parameter(shape, fan_in, dtype=None):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for Linear and Conv weights and biases."""
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    data = backend.rng().uniform(-bound, bound, size=shape)
    return Parameter(data.astype(dtype or backend.DEFAULT_DTYPE))


def constant_parameter(shape, value, dtype=None):
    return Parameter(backend.xp().full(shape, value, dtype=dtype or backend.DEFAULT_DTYPE))
