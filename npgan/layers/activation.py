from .. import functional as F
from .base import Layer, check_float, check_tangent


class _Elementwise(Layer):
    """A parameter-free elementwise map y = f(x); backward multiplies by f'(x). Shape: as input."""
    _forward = _backward = None

    def forward(self, x):
        check_float(self, x)
        out, self.cache = type(self)._forward(x, *self._args())
        return out

    def backward(self, dout):
        return type(self)._backward(dout, self.cache)

    def _args(self):
        return ()


class ReLU(_Elementwise):
    """y = max(x, 0)."""
    _forward, _backward = F.relu_forward, F.relu_backward

    def tangent(self, t):
        """t_out = 1[x > 0] * t, the mask frozen at the last forward. The Jacobian is diagonal
        (symmetric), so this is the backward applied to t; h'' = 0 away from the kink, so ReLU
        adds no parameter gradient and no second path (npgan.gan.penalty)."""
        check_tangent(self, t, self.cache and self.cache.out.shape)
        return F.relu_backward(t, self.cache)


class LeakyReLU(_Elementwise):
    """y = x if x > 0 else negative_slope * x  (default negative_slope=0.01)."""
    _forward, _backward = F.leaky_relu_forward, F.leaky_relu_backward

    def __init__(self, negative_slope=0.01):
        self.negative_slope = negative_slope

    def _args(self):
        return (self.negative_slope,)

    def tangent(self, t):
        """t_out = slope(x) * t, slope 1 where x > 0 else negative_slope, frozen at the last forward:
        the backward applied to t (a diagonal Jacobian); h'' = 0 away from 0, so no parameter
        gradient and no second path (npgan.gan.penalty)."""
        check_tangent(self, t, self.cache and self.cache.x.shape)
        return F.leaky_relu_backward(t, self.cache)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(_Elementwise):
    """y = x if x > 0 else alpha * (exp(x) - 1)  (default alpha=1.0)."""
    _forward, _backward = F.elu_forward, F.elu_backward

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def _args(self):
        return (self.alpha,)


class Tanh(_Elementwise):
    """y = tanh(x);  dy/dx = 1 - y^2."""
    _forward, _backward = F.tanh_forward, F.tanh_backward


class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x));  dy/dx = y (1 - y)."""
    _forward, _backward = F.sigmoid_forward, F.sigmoid_backward
