import math

from .. import functional as F
from ..im2col import pair
from ._params import uniform_parameter
from .base import Layer, check_input


class ChannelwiseLinear(Layer):
    """Pathak et al.'s channel-wise fully connected layer (Context Encoders, 2016).

    Each channel gets its own dense map over spatial positions, with no mixing across
    channels: y[n, c] = W[c] @ x[n, c].flatten() + b[c]. It propagates information
    across the whole feature map with C*(H*W)^2 weights instead of (C*H*W)^2.

    Args:
        channels (C), in_size (H, W), out_size=in_size, bias=True
    Shape: (N, C, H, W) -> (N, C, OH, OW). Weight (C, OH*OW, H*W), bias (C, OH*OW).
    """

    def __init__(self, channels, in_size, out_size=None, bias=True, dtype=None):
        self.channels, self.in_size = channels, pair(in_size)
        self.out_size = pair(out_size) if out_size is not None else self.in_size
        n_in, n_out = math.prod(self.in_size), math.prod(self.out_size)
        self.weight = uniform_parameter((channels, n_out, n_in), n_in, dtype)
        self.bias = uniform_parameter((channels, n_out), n_in, dtype) if bias else None

    def forward(self, x):
        check_input(self, x, 4, self.channels)
        if tuple(x.shape[2:]) != self.in_size:
            raise ValueError(f"ChannelwiseLinear: expected input of shape (N, {self.channels}, {self.in_size[0]}, "
                             f"{self.in_size[1]}), got {tuple(x.shape)}")
        out, self.cache = F.channelwise_linear_forward(x, self.weight.data, self.bias and self.bias.data)
        return out.reshape((x.shape[0], self.channels) + self.out_size)

    def backward(self, dout):
        dx, dw, db = F.channelwise_linear_backward(dout.reshape(dout.shape[0], self.channels, -1), self.cache)
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx
