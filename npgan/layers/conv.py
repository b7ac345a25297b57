from .. import functional as F
from ..im2col import conv_output_size, conv_transpose_output_size, pair
from ._params import uniform_parameter
from .base import Layer, check_channels, check_input, check_tangent


class Conv2d(Layer):
    """2-D cross-correlation: y[n, f] = b[f] + sum_c W[f, c] (*) x[n, c].

    Args:
        in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, then by keyword
        bias=True, dtype (PyTorch's order; its ``groups`` are not supported, so a 7th positional
        argument is refused rather than taken for ``bias``).
    Shape: (N, C_in, H, W) -> (N, C_out, OH, OW),
        OH = floor((H + 2*padding - dilation*(kernel-1) - 1) / stride) + 1.
        Weight (C_out, C_in, KH, KW).
        The output is stored channels-last (see ``npgan.im2col``); it is an ordinary (N, C, H, W) array.
    Attributes:
        needs_input_grad: when False, ``backward`` skips dx and returns None (a first layer
            fed with data: PyTorch skips it too, since images do not require grad).
    """
    needs_input_grad = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, *, bias=True,
                 dtype=None):
        self.in_channels, self.out_channels = check_channels(self, in_channels, out_channels)
        self.kernel_size, self.stride, self.padding, self.dilation = (
            pair(v, name, low, "Conv2d") for v, name, low in ((kernel_size, "kernel_size", 1), (stride, "stride", 1),
                                                             (padding, "padding", 0), (dilation, "dilation", 1)))
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.weight = uniform_parameter((out_channels, in_channels) + self.kernel_size, fan_in, dtype)
        self.bias = uniform_parameter((out_channels,), fan_in, dtype) if bias else None
        self.cache = None

    def forward(self, x):
        check_input(self, x, 4, self.in_channels)
        for axis in (0, 1):
            if conv_output_size(x.shape[2 + axis], self.kernel_size[axis], self.stride[axis],
                                self.padding[axis], self.dilation[axis]) < 1:
                raise ValueError(f"Conv2d: input of shape {tuple(x.shape)} is smaller than the (dilated) kernel "
                                 f"{self.kernel_size} with padding {self.padding}, dilation {self.dilation}")
        out, self.cache = F.conv2d_forward(x, self.weight.data, self.bias and self.bias.data,
                                           self.stride, self.padding, self.dilation)
        return out

    def backward(self, dout):
        dx, dw, db = F.conv2d_backward(dout, self.cache, self.needs_input_grad, self.weight.requires_grad)
        if dw is not None:
            self.weight.accumulate(dw)
            if self.bias is not None:
                self.bias.accumulate(db)
        return dx

    # ---- second-order pass (npgan.gan.penalty) --------------------------------------
    tangent_cache = None

    def tangent(self, t):
        """t_out = W (*) t: the Jacobian of the convolution in its input applied to t (no bias).

        The functional forward with b=None; its cache (im2col of t) feeds ``tangent_weight_grad``.
        Shape: like ``forward``."""
        check_tangent(self, t, self.cache and self.cache.x_shape)
        out, self.tangent_cache = F.conv2d_forward(t, self.weight.data, None, self.stride, self.padding,
                                                   self.dilation)
        return out

    def tangent_weight_grad(self, delta):
        """Add the penalty's gradient: dW += (the usual dW with the input replaced by the tangent),
        db += 0.

        dW[f, c, ky, kx] = sum_{n, oy, ox} delta[n, f, oy, ox] t[n, c, iy, ix]: the adjoint r of the
        tangent recursion t_out = W (*) t equals the ordinary backward's delta for a piecewise-linear
        critic (the derivation is in npgan.gan.penalty), so ``conv2d_backward`` on the tangent's cache gives it. Frees the
        tangent cache."""
        if self.tangent_cache is None:
            raise RuntimeError("Conv2d.tangent_weight_grad called before Conv2d.tangent")
        _, dw, _ = F.conv2d_backward(delta, self.tangent_cache, need_dx=False, need_dw=self.weight.requires_grad)
        if dw is not None:
            self.weight.accumulate(dw)
        self.tangent_cache = None

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}")


class ConvTranspose2d(Layer):
    """Transposed convolution: the adjoint of Conv2d with respect to its input.

    Args:
        in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, then by
        keyword bias=True, dilation=1, dtype (PyTorch's order: ``groups`` would come next
        positionally; groups are not supported).
    Shape: (N, C_in, H, W) -> (N, C_out, OH, OW),
        OH = (H - 1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1.
        Weight (C_in, C_out, KH, KW).
        The output is stored channels-last (see ``npgan.im2col``); it is an ordinary (N, C, H, W) array.
    Attributes:
        needs_input_grad: when False, ``backward`` skips dx and returns None.
    """
    needs_input_grad = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, *,
                 bias=True, dilation=1, dtype=None):
        self.in_channels, self.out_channels = check_channels(self, in_channels, out_channels)
        self.kernel_size, self.stride, self.padding, self.output_padding, self.dilation = (
            pair(v, name, low, "ConvTranspose2d") for v, name, low in (
                (kernel_size, "kernel_size", 1), (stride, "stride", 1), (padding, "padding", 0),
                (output_padding, "output_padding", 0), (dilation, "dilation", 1)))
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be smaller than "
                                 f"stride {self.stride} or dilation {self.dilation}")
        fan_in = out_channels * self.kernel_size[0] * self.kernel_size[1]  # PyTorch computes it from dim 1
        self.weight = uniform_parameter((in_channels, out_channels) + self.kernel_size, fan_in, dtype)
        self.bias = uniform_parameter((out_channels,), fan_in, dtype) if bias else None
        self.cache = None

    def forward(self, x):
        check_input(self, x, 4, self.in_channels)
        size = [conv_transpose_output_size(n, k, s, p, op, d) for n, k, s, p, op, d in zip(
            x.shape[2:], self.kernel_size, self.stride, self.padding, self.output_padding, self.dilation)]
        if min(size) < 1:
            raise ValueError(f"ConvTranspose2d: input of shape {tuple(x.shape)} gives an empty output "
                             f"({size[0]}x{size[1]}): padding {self.padding} crops more than the output has")
        out, self.cache = F.conv_transpose2d_forward(x, self.weight.data, self.bias and self.bias.data, self.stride,
                                                     self.padding, self.output_padding, self.dilation)
        return out

    def backward(self, dout):
        dx, dw, db = F.conv_transpose2d_backward(dout, self.cache, self.needs_input_grad, self.weight.requires_grad)
        if dw is not None:
            self.weight.accumulate(dw)
            if self.bias is not None:
                self.bias.accumulate(db)
        return dx

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, output_padding={self.output_padding}, dilation={self.dilation}")
