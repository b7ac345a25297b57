from .. import backend
from .. import functional as F
from ._params import constant_parameter
from .base import Layer, check_channels, check_input


class InstanceNorm2d(Layer):
    """Instance normalisation: each sample's each channel normalised over its H x W values.

        y = (x - E[x]) / sqrt(Var[x] + eps) * gamma + beta

    E and the biased Var are taken per (n, c) over H, W, in training and in eval alike (as
    PyTorch's InstanceNorm2d with ``track_running_stats=False``). The pix2pix/CycleGAN
    generators normalise with it instead of BatchNorm, so a sample does not depend on the
    rest of its batch.

    Args:
        num_features (C): the input's channel count (checked, unlike PyTorch, which only warns).
        eps=1e-5: added to the variance.
        momentum=0.1: kept for PyTorch's signature; unused without running statistics.
        affine=False: learn gamma (``weight``, ones) and beta (``bias``, zeros), shape (C,).
        track_running_stats=False: True (running statistics for eval) is not supported and raises.
        dtype=None: the parameters' dtype (float32 by default).
    Shape: (N, C, H, W) -> (N, C, H, W), with H * W > 1.
    """
    no_second_order_reason = "InstanceNorm is not piecewise linear in its input and its second-order pass is not written out"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, dtype=None):
        (self.num_features,) = check_channels(self, num_features)
        if track_running_stats:
            raise ValueError("InstanceNorm2d: track_running_stats=True (running statistics used in eval mode) is "
                             "not supported; use the default track_running_stats=False, which normalises with "
                             "each sample's own statistics in training and eval")
        if not eps > 0:
            raise ValueError(f"InstanceNorm2d: eps must be positive, got {eps!r}")
        self.eps, self.momentum = eps, momentum
        dtype = dtype or backend.DEFAULT_DTYPE
        self.weight = constant_parameter((num_features,), 1.0, dtype) if affine else None
        self.bias = constant_parameter((num_features,), 0.0, dtype) if affine else None
        self.cache = None

    @property
    def affine(self):
        return self.weight is not None

    def forward(self, x):
        check_input(self, x, 4, self.num_features)
        if x.shape[2] * x.shape[3] < 2:
            raise ValueError(f"InstanceNorm2d: expected more than 1 spatial element per channel, got input shape "
                             f"{tuple(x.shape)}")
        out, self.cache = F.instance_norm_forward(x, self.weight and self.weight.data,
                                                  self.bias and self.bias.data, self.eps)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = F.instance_norm_backward(dout, self.cache)
        if self.weight is not None:
            self.weight.accumulate(dgamma)
            self.bias.accumulate(dbeta)
        return dx

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
