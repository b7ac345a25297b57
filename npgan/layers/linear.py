from .. import functional as F
from ._params import uniform_parameter
from .base import Layer, check_channels, check_input, check_tangent


class Linear(Layer):
    """y = x W^T + b.

    Args:
        in_features, out_features: sizes of each input and output sample.
        bias: learn an additive bias (default True).
    Shape: (N, *, in_features) -> (N, *, out_features). Weight (out_features, in_features).
    Attributes:
        needs_input_grad: when False, ``backward`` skips dx and returns None (a generator's
            first layer, fed with noise that needs no gradient).
    """
    needs_input_grad = True

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        self.in_features, self.out_features = check_channels(self, in_features, out_features)
        self.weight = uniform_parameter((out_features, in_features), in_features, dtype)
        self.bias = uniform_parameter((out_features,), in_features, dtype) if bias else None
        self.cache = None

    def forward(self, x):
        check_input(self, x, x.ndim if x.ndim >= 2 else 2, self.in_features, channel_axis=-1)
        out, self.cache = F.linear_forward(x, self.weight.data, self.bias and self.bias.data)
        return out

    def backward(self, dout):
        dx, dw, db = F.linear_backward(dout, self.cache, self.needs_input_grad, self.weight.requires_grad)
        if dw is not None:
            self.weight.accumulate(dw)
            if self.bias is not None:
                self.bias.accumulate(db)
        return dx

    # ---- second-order pass (npgan.gan.penalty) --------------------------------------
    tangent_cache = None

    def tangent(self, t):
        """t_out = t W^T: the Jacobian of y = x W^T + b in x applied to t (no bias, a constant).

        The functional forward with b=None; its cache (holding t) feeds ``tangent_weight_grad``.
        Shape: like ``forward``."""
        check_tangent(self, t, self.cache and self.cache.x.shape)
        out, self.tangent_cache = F.linear_forward(t, self.weight.data, None)
        return out

    def tangent_weight_grad(self, delta):
        """Add the penalty's gradient: dW += delta^T t, db += 0.

        With u fixed, dP/dtheta = d/dtheta sum_n <dD/dx_n, u_n>, and the reverse pass of the tangent
        recursion t_out = W t reaches this layer with adjoint r = delta, the ordinary backward's
        gradient at its output (npgan.gan.penalty: the two recursions coincide for piecewise-linear
        critics). So dW is ``linear_backward``'s dW with the input replaced by the tangent; the bias
        never touches the tangent. Frees the tangent cache."""
        if self.tangent_cache is None:
            raise RuntimeError("Linear.tangent_weight_grad called before Linear.tangent")
        _, dw, _ = F.linear_backward(delta, self.tangent_cache, need_dx=False, need_dw=self.weight.requires_grad)
        if dw is not None:
            self.weight.accumulate(dw)
        self.tangent_cache = None

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
