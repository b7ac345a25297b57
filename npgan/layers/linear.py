from .. import functional as F
from ._params import uniform_parameter
from .base import Layer, check_channels, check_input


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

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
