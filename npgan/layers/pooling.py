from .. import functional as F
from ..im2col import pair
from .base import Layer, check_input


class MaxPool2d(Layer):
    """y = max over KxK windows. Args: kernel_size, stride=kernel_size, padding=0.
    Shape: (N, C, H, W) -> (N, C, OH, OW), OH = floor((H + 2*padding - kernel) / stride) + 1."""

    def __init__(self, kernel_size, stride=None, padding=0):
        name = type(self).__name__
        self.kernel_size = pair(kernel_size, "kernel_size", 1, name)
        self.stride = pair(stride if stride is not None else kernel_size, "stride", 1, name)
        self.padding = pair(padding, "padding", 0, name)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):      # a window of padding only
            raise ValueError(f"{name}: padding {self.padding} must be at most half of kernel_size {self.kernel_size}")

    def check(self, x):
        check_input(self, x, 4)
        if any(n + 2 * p < k for n, p, k in zip(x.shape[2:], self.padding, self.kernel_size)):
            raise ValueError(f"{type(self).__name__}: input of shape {tuple(x.shape)} is smaller than the window "
                             f"{self.kernel_size} with padding {self.padding}")

    def forward(self, x):
        self.check(x)
        out, self.cache = F.max_pool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout):
        return F.max_pool2d_backward(dout, self.cache)


class AvgPool2d(MaxPool2d):
    """y = mean over KxK windows (zero padding counted). Same arguments and shapes as MaxPool2d."""

    def forward(self, x):
        self.check(x)
        out, self.cache = F.avg_pool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout):
        return F.avg_pool2d_backward(dout, self.cache)
