from .. import backend
from .. import functional as F
from ._params import constant_parameter
from .base import Layer, check_channels, check_input


class _BatchNorm(Layer):
    """y = gamma * (x - E[x]) / sqrt(Var[x] + eps) + beta, per channel (axis 1).

    Training uses the batch statistics and updates ``running_mean`` / ``running_var``
    (unbiased variance) with ``momentum``; eval uses the running statistics.

    Args:
        num_features (C), eps=1e-5, momentum=0.1, affine=True, track_running_stats=True
    """
    _ndims = ()
    _buffers = ("running_mean", "running_var")
    no_second_order_reason = ("BatchNorm mixes samples, so a per-sample gradient penalty through it is not "
                              "defined; use a critic without BatchNorm")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        (self.num_features,) = check_channels(self, num_features)
        if momentum is None or not 0 <= momentum <= 1:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1], got {momentum!r} (PyTorch's "
                             f"momentum=None, a cumulative average, is not supported)")
        if not eps > 0:
            raise ValueError(f"{type(self).__name__}: eps must be positive, got {eps!r}")
        self.eps, self.momentum = eps, momentum
        dtype = dtype or backend.DEFAULT_DTYPE
        self.weight = constant_parameter((num_features,), 1.0, dtype) if affine else None
        self.bias = constant_parameter((num_features,), 0.0, dtype) if affine else None
        if track_running_stats:
            self.running_mean = backend.xp().zeros(num_features, dtype=dtype)
            self.running_var = backend.xp().ones(num_features, dtype=dtype)
        else:
            self._buffers = ()
            self.running_mean = self.running_var = None
        self.cache = None

    def forward(self, x):
        if x.ndim not in self._ndims:
            raise ValueError(f"{type(self).__name__}: expected a {' or '.join(map(str, self._ndims))}-D input, "
                             f"got shape {tuple(x.shape)}")
        check_input(self, x, x.ndim, self.num_features)
        use_batch_stats = self.training or self.running_mean is None
        out, self.cache = F.batchnorm_forward(
            x, self.weight and self.weight.data, self.bias and self.bias.data,
            self.running_mean, self.running_var, use_batch_stats, self.momentum, self.eps)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = F.batchnorm_backward(dout, self.cache)
        if self.weight is not None:
            self.weight.accumulate(dgamma)
            self.bias.accumulate(dbeta)
        return dx

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.weight is not None}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) inputs. Shape: output as input."""
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) inputs, statistics per channel. Shape: output as input."""
    _ndims = (4,)
