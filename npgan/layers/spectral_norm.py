"""Spectral normalisation (Miyato et al. 2018): a Linear or Conv2d whose weight is W_orig / sigma(W_orig)."""
from dataclasses import dataclass

from .. import backend
from .base import Layer, Parameter, check_input
from .conv import Conv2d, ConvTranspose2d
from .linear import Linear


def _normalize(x, eps):
    """x / max(||x||, eps) (``torch.nn.functional.normalize`` of a vector)."""
    xp = backend.get_array_module(x)
    return x / xp.maximum(xp.sqrt(xp.sum(x * x)), eps)


@dataclass
class SpectralNormCache:
    """What ``SpectralNorm.backward`` needs from the forward.

    Fields:
        w_orig: the unnormalised weight the forward read (out, in[, KH, KW]).
        u, v: the singular-vector estimates sigma was computed with (copies, constants).
        sigma: u^T W_mat v, a 0-d array.
    """
    w_orig: object
    u: object
    v: object
    sigma: object


class _NormalisedWeight:
    """The wrapped layer's ``weight``: W_orig / sigma, recomputed by every forward.

    Not a Parameter (nothing trains it, no optimizer sees it); the wrapped layer's backward
    ``accumulate``s its dW here and ``SpectralNorm.backward`` turns it into dW_orig."""

    def __init__(self, data):
        self.data = data
        self.grad = None
        self.requires_grad = True

    @property
    def shape(self):
        return self.data.shape

    def accumulate(self, grad):
        if self.requires_grad:
            self.grad = grad if self.grad is None else self.grad + grad


class SpectralNorm(Layer):
    """A Linear or Conv2d with its weight divided by its largest singular value (estimated).

        W_mat = W_orig.reshape(out, -1)
        training mode, once per forward (no gradient through it):
            u <- normalize(W_mat v),  v <- normalize(W_mat^T u)        (normalize(x) = x / max(||x||, eps))
        sigma = u^T W_mat v,   W = W_orig / sigma,   y = layer(x; W, b)

    In eval mode u and v are used as stored. As ``torch.nn.utils.parametrizations.spectral_norm``
    (n_power_iterations=1, eps=1e-12, dim=0; u and v start as normalised N(0, 1) draws followed
    by 15 power iterations).

    Backward, with u and v constants (PyTorch treats them so): the wrapped layer gives dx and
    dW (the gradient for W); then, since sigma = u^T W_mat v has d sigma / d W_orig = u v^T,

        dW_orig = dW / sigma - (sum(dW * W_orig) / sigma^2) * (u v^T).reshape(W_orig.shape)

    Args:
        layer: a Linear or Conv2d (ConvTranspose2d, whose PyTorch normalisation uses dim 1, is
            refused). The layer is changed in place: its ``weight`` becomes the normalised
            weight computed by each forward; the trainable array is this wrapper's ``weight_orig``.
        n_power_iterations: power-iteration steps per training forward (default 1).
        eps: the floor under the norms (default 1e-12).
    Shape: that of the wrapped layer.
    State: ``weight_orig`` and ``bias`` (Parameters), ``weight_u`` (out,) and ``weight_v``
        (in * KH * KW,) (buffers), so a state_dict reads ``0.weight_orig``, ``0.weight_u``, ...
        as ``torch.nn.utils.spectral_norm``'s.
    Attributes:
        needs_input_grad: passed to the wrapped layer (when False, backward returns None).
    """

    _buffers = ("weight_u", "weight_v")
    no_second_order_reason = ("spectral normalisation's sigma depends on the weight, and its second-order "
                              "pass is not written out")

    def __init__(self, layer, n_power_iterations=1, eps=1e-12):
        if isinstance(layer, ConvTranspose2d):
            raise TypeError("SpectralNorm: ConvTranspose2d is not supported (PyTorch normalises it along dim 1); "
                            "wrap a Linear or Conv2d")
        if not isinstance(layer, (Linear, Conv2d)):
            raise TypeError(f"SpectralNorm: expected a Linear or Conv2d layer, got {type(layer).__name__}")
        if not isinstance(layer.weight, Parameter):
            raise ValueError(f"SpectralNorm: this {type(layer).__name__} is already spectrally normalised")
        if int(n_power_iterations) < 1:
            raise ValueError(f"SpectralNorm: n_power_iterations must be >= 1, got {n_power_iterations}")
        self.n_power_iterations, self.eps = int(n_power_iterations), float(eps)
        self.weight_orig = layer.weight
        self.bias = layer.bias                                       # the same Parameter, listed once
        w = self.weight_orig.data
        w_mat = w.reshape(w.shape[0], -1)                            # (out, in*KH*KW)
        u, v = (self._draw(n, w) for n in w_mat.shape)
        self.weight_u, self.weight_v = _normalize(u, self.eps), _normalize(v, self.eps)
        self._power_iteration(w_mat, 15)
        layer.weight = _NormalisedWeight(w / self._sigma(w_mat, self.weight_u, self.weight_v))
        self.module = layer
        self.cache = None

    # ---- the power iteration ------------------------------------------------------
    def _power_iteration(self, w_mat, steps):
        """u <- normalize(W_mat v), v <- normalize(W_mat^T u), ``steps`` times, in place."""
        for _ in range(steps):
            self.weight_u[...] = _normalize(w_mat @ self.weight_v, self.eps)      # (out,)
            self.weight_v[...] = _normalize(w_mat.T @ self.weight_u, self.eps)    # (in*KH*KW,)

    @staticmethod
    def _draw(n, like):
        """n standard-normal values from npgan's generator, on ``like``'s backend and dtype."""
        xp = backend.get_array_module(like)
        z = backend.rng().standard_normal((n,))
        if backend.get_array_module(z) is not xp:
            z = backend.asnumpy(z)
        return xp.asarray(z, dtype=like.dtype)

    @staticmethod
    def _sigma(w_mat, u, v):
        xp = backend.get_array_module(w_mat)
        return xp.sum(u * (w_mat @ v))                               # 0-d

    @property
    def needs_input_grad(self):
        return self.module.needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, flag):
        self.module.needs_input_grad = bool(flag)

    # ---- forward and backward -----------------------------------------------------
    def forward(self, x):
        """y = layer(x; W_orig / sigma); the cache is a ``SpectralNormCache``."""
        check_input(self, x, getattr(x, "ndim", 0))                  # float, same dtype and backend as W_orig
        w_orig = self.weight_orig.data
        w_mat = w_orig.reshape(w_orig.shape[0], -1)                  # (out, in*KH*KW)
        if self.training:
            self._power_iteration(w_mat, self.n_power_iterations)
        u, v = self.weight_u.copy(), self.weight_v.copy()
        sigma = self._sigma(w_mat, u, v)
        self.module.weight = _NormalisedWeight(w_orig / sigma)
        self.cache = SpectralNormCache(w_orig=w_orig, u=u, v=v, sigma=sigma)
        return self.module.forward(x)

    def backward(self, dout):
        """dx from the wrapped layer; adds dW_orig (formula above) and db."""
        if self.cache is None:
            raise RuntimeError("SpectralNorm.backward called before SpectralNorm.forward")
        c = self.cache
        weight = self.module.weight
        weight.grad, weight.requires_grad = None, self.weight_orig.requires_grad
        dx = self.module.backward(dout)
        if weight.grad is not None:
            dw = weight.grad
            xp = backend.get_array_module(dw)
            uv = (c.u[:, None] * c.v[None, :]).reshape(c.w_orig.shape)           # d sigma / d W_orig
            self.weight_orig.accumulate(dw / c.sigma - (xp.sum(dw * c.w_orig) / (c.sigma * c.sigma)) * uv)
            weight.grad = None
        return dx

    def extra_repr(self):
        return f"n_power_iterations={self.n_power_iterations}, eps={self.eps:g}"

    def __repr__(self):
        return f"SpectralNorm({self.module!r}, {self.extra_repr()})"
