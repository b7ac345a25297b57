"""Weight initialisers, in place, with ``torch.nn.init``'s names, formulas and fan conventions.

Each takes a ``Parameter`` (its ``.data`` is filled) or an array, fills it from npgan's
seeded generator (``backend.rng()``; ``backend.seed(0)`` makes runs repeat) and returns
its argument. Values are drawn in the target's dtype (float32 by default; float64 for a
float64 target) on the current backend.

    >>> from npgan import backend, init
    >>> backend.seed(0)
    >>> init.kaiming_normal_(layer.weight, nonlinearity="relu")
    >>> init.dcgan_init(G)          # N(0, 0.02) conv/linear weights, N(1, 0.02) BatchNorm scales
"""
import math

import numpy

from . import backend


def _array(p):
    """The array behind a Parameter (or the array itself)."""
    return p.data if hasattr(p, "data") and hasattr(p, "grad") else p


def _fill(p, values):
    """Write ``values`` (current backend) into ``p``'s array, whatever backend it lives on."""
    a = _array(p)
    if backend.get_array_module(a) is not backend.get_array_module(values):
        values = backend.get_array_module(a).asarray(backend.asnumpy(values))
    a[...] = values
    return p


def _draw_dtype(a):
    """float32 or float64 (the dtypes the generators produce directly) for a target ``a``."""
    return numpy.float64 if a.dtype == numpy.float64 else numpy.float32


# ---- the basic fills ------------------------------------------------------------------
def uniform_(p, a=0.0, b=1.0):
    """Fill with U(a, b)."""
    arr = _array(p)
    u = backend.rng().random(arr.shape, dtype=_draw_dtype(arr))              # [0, 1)
    return _fill(p, u * (b - a) + a)


def normal_(p, mean=0.0, std=1.0):
    """Fill with N(mean, std^2)."""
    arr = _array(p)
    z = backend.rng().standard_normal(arr.shape, dtype=_draw_dtype(arr))
    return _fill(p, z * std + mean)


def constant_(p, value):
    """Fill with ``value``."""
    _array(p)[...] = value
    return p


def zeros_(p):
    """Fill with 0."""
    return constant_(p, 0)


def ones_(p):
    """Fill with 1."""
    return constant_(p, 1)


# ---- fans and gains -------------------------------------------------------------------
def fan_in_and_out(shape):
    """(fan_in, fan_out) of a weight shape, as ``torch.nn.init._calculate_fan_in_and_fan_out``.

        fan_in  = shape[1] * prod(shape[2:])
        fan_out = shape[0] * prod(shape[2:])

    Linear (out, in) and Conv2d (out, in/groups, kh, kw) give the usual fans. PyTorch
    applies the same rule to ConvTranspose2d's (in, out/groups, kh, kw) weight, so there
    "fan_in" is out/groups * kh * kw; this function mirrors that exactly. Accepts a shape
    tuple, an array or a Parameter.
    """
    if hasattr(shape, "shape"):
        shape = shape.shape
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out can not be computed for a weight of shape {shape} "
                         f"(fewer than 2 dimensions)")
    receptive_field = 1
    for s in shape[2:]:
        receptive_field *= s
    return shape[1] * receptive_field, shape[0] * receptive_field


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

        linear, conv*, sigmoid: 1     tanh: 5/3     relu: sqrt(2)     selu: 3/4
        leaky_relu: sqrt(2 / (1 + negative_slope^2)), negative_slope = param (default 0.01)
    """
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d")
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _fan(p, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = fan_in_and_out(_array(p).shape)
    return fan_in if mode == "fan_in" else fan_out


# ---- scaled initialisers --------------------------------------------------------------
def xavier_uniform_(p, gain=1.0):
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))  (Glorot & Bengio)."""
    fan_in, fan_out = fan_in_and_out(_array(p).shape)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(p, -a, a)


def xavier_normal_(p, gain=1.0):
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_out(_array(p).shape)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(p, 0.0, std)


def kaiming_uniform_(p, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound), bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a)  (He et al.).

    ``a`` is the negative slope of the leaky ReLU that follows (0 for ReLU); ``mode`` picks
    fan_in (preserves forward variance) or fan_out (backward).
    """
    if 0 in _array(p).shape:
        return p
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(p, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(p, -bound, bound)


def kaiming_normal_(p, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2), std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    if 0 in _array(p).shape:
        return p
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(p, mode))
    return normal_(p, 0.0, std)


# ---- DCGAN ----------------------------------------------------------------------------
_DCGAN_WEIGHTED = ("Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "Linear")
_DCGAN_NORM = ("BatchNorm1d", "BatchNorm2d", "ConditionalBatchNorm")


def dcgan_init(model, std=0.02):
    """Radford et al.'s initialisation, in place, over every submodule of ``model``:

        Conv2d, ConvTranspose2d, Linear:  weight ~ N(0, std^2), bias = 0
        BatchNorm1d, BatchNorm2d, ConditionalBatchNorm: weight ~ N(1, std^2), bias = 0

    Layers are recognised by class name (so subclasses and look-alikes with the same name
    count); a missing ``weight`` or ``bias`` (``bias=False``, ``affine=False``) is skipped.
    Returns ``model``.
    """
    for m in model.modules():
        name = type(m).__name__
        if name in _DCGAN_WEIGHTED:
            mean = 0.0
        elif name in _DCGAN_NORM:
            mean = 1.0
        else:
            continue
        if getattr(m, "weight", None) is not None:
            normal_(m.weight, mean, std)
        if getattr(m, "bias", None) is not None:
            zeros_(m.bias)
    return model
