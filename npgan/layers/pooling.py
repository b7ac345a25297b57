from .. import functional as F
from ..im2col import pair
from .base import Layer, check_input


class MaxPool2d(Layer):
    """y = max over KxK windows. Args: kernel_size, stride=kernel_size, padding=0.
    Shape: (N, C, H, W) -> (N, C, OH, OW), OH = floor((H + 2*padding - kernel) / stride) + 1."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride if stride is not None else kernel_size)
        self.padding = pair(padding)

    def forward(self, x):
        check_input(self, x, 4)
        out, self.cache = F.max_pool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout):
        return F.max_pool2d_backward(dout, self.cache)


class AvgPool2d(MaxPool2d):
    """y = mean over KxK windows (zero padding counted). Same arguments and shapes as MaxPool2d."""

    def forward(self, x):
        check_input(self, x, 4)
        out, self.cache = F.avg_pool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout):
        return F.avg_pool2d_backward(dout, self.cache)
