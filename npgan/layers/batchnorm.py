from .. import backend
from .. import functional as F
from ..comm import SINGLE
from ._params import constant_parameter
from .base import Layer, check_channels, check_input


class BatchNormBase(Layer):
    """The batch normalisation BatchNorm1d, BatchNorm2d and ConditionalBatchNorm share::

        y = gamma * (x - E[x]) / sqrt(Var[x] + eps) + beta, per channel (axis 1)

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
        out, self.cache = self._normalise(x, self.training or self.running_mean is None)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = self._normalise_backward(dout)
        if self.weight is not None:
            self.weight.accumulate(dgamma)
            self.bias.accumulate(dbeta)
        return dx

    def _normalise(self, x, use_batch_stats):
        """(out, cache): the normalisation itself, with the batch's or the running statistics."""
        return F.batchnorm_forward(x, self.weight and self.weight.data, self.bias and self.bias.data,
                                   self.running_mean, self.running_var, use_batch_stats, self.momentum, self.eps)

    def _normalise_backward(self, dout):
        """(dx, dgamma, dbeta) of ``_normalise``."""
        return F.batchnorm_backward(dout, self.cache)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.weight is not None}"


class BatchNorm1d(BatchNormBase):
    """Batch normalisation over (N, C) or (N, C, L) inputs. Shape: output as input."""
    _ndims = (2, 3)


class BatchNorm2d(BatchNormBase):
    """Batch normalisation over (N, C, H, W) inputs, statistics per channel. Shape: output as input."""
    _ndims = (4,)


class ConditionalBatchNorm(BatchNormBase):
    """Class-conditional batch normalisation (de Vries et al. 2017; the generator of Miyato and
    Koyama 2018): the statistics are shared, the scale and shift are chosen by the class::

        y = (c @ weight) * xhat + (c @ bias),      xhat = (x - E[x]) / sqrt(Var[x] + eps)

    with c the (N, K) one-hot rows of the classes (any real weights work: the layer is linear
    in c), ``weight`` and ``bias`` (K, C), one row per class, initialised 1 and 0. A two-input
    layer: ``forward(x, c)``, and ``backward(dout)`` returns ``(dx, dc)``; a container
    (``npgan.models.conditional.ConditionalGenerator``) hands it the classes. Backward, with
    gamma = c @ weight and the sums over the spatial axes::

        dweight = c.T @ sum(dout * xhat)      dbias = c.T @ sum(dout)
        dc = sum(dout * xhat) @ weight.T + sum(dout) @ bias.T
        dx = BatchNorm's backward (no affine) of dout * gamma

    Shape: x (N, C) or (N, C, H, W), c (N, K) -> (N, C) or (N, C, H, W).
    """
    _ndims = (2, 4)

    def __init__(self, num_features, n_classes, eps=1e-5, momentum=0.1, dtype=None):
        super().__init__(num_features, eps, momentum, affine=False, dtype=dtype)
        (self.n_classes,) = check_channels(self, n_classes)
        dtype = dtype or backend.DEFAULT_DTYPE
        self.weight = constant_parameter((n_classes, num_features), 1.0, dtype)
        self.bias = constant_parameter((n_classes, num_features), 0.0, dtype)

    def forward(self, x, c):
        if x.ndim not in self._ndims:
            raise ValueError(f"ConditionalBatchNorm: expected a 2-D or 4-D input, got shape {tuple(x.shape)}")
        check_input(self, x, x.ndim, self.num_features)
        if getattr(c, "shape", None) != (x.shape[0], self.n_classes):
            raise ValueError(f"ConditionalBatchNorm: expected classes of shape ({x.shape[0]}, {self.n_classes}) "
                             f"for input {tuple(x.shape)}, got {getattr(c, 'shape', type(c).__name__)}")
        use_batch_stats = self.training or self.running_mean is None
        xhat, norm_cache = F.batchnorm_forward(x, None, None, self.running_mean, self.running_var,
                                               use_batch_stats, self.momentum, self.eps)
        shape = x.shape[:2] + (1,) * (x.ndim - 2)                             # (N, C) over the pixels
        gamma = (c @ self.weight.data).reshape(shape)
        self.cache = (xhat, c, gamma, norm_cache)
        return xhat * gamma + (c @ self.bias.data).reshape(shape)

    def backward(self, dout):
        xhat, c, gamma, norm_cache = self.cache
        pixels = tuple(range(2, dout.ndim))
        dgamma = (dout * xhat).sum(axis=pixels)                               # (N, C)
        dbeta = dout.sum(axis=pixels)
        self.weight.accumulate(c.T @ dgamma)
        self.bias.accumulate(c.T @ dbeta)
        dc = dgamma @ self.weight.data.T + dbeta @ self.bias.data.T           # (N, K)
        dx = F.batchnorm_backward(dout * gamma, norm_cache)[0]
        return dx, dc

    def extra_repr(self):
        return f"{self.num_features}, n_classes={self.n_classes}, eps={self.eps}, momentum={self.momentum}"


class SyncBatchNorm(BatchNormBase):
    """BatchNorm whose training statistics are those of the whole batch split across the ranks of
    ``group`` (``npgan.comm``; PyTorch's SyncBatchNorm): the forward all-reduces the per-channel
    sums, the backward the sums of dout and dout * (x - mean)
    (``npgan.functional.sync_batchnorm_forward`` and ``_backward``). Eval uses the running
    statistics, which are the same on every rank. Every rank must call forward and backward
    together. Shape: output as input.

    Args: as BatchNorm's, and ``group`` (default ``npgan.comm.SINGLE``: an ordinary BatchNorm).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None,
                 group=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)
        self.group = group or SINGLE

    def _normalise(self, x, use_batch_stats):
        if not use_batch_stats:                                        # eval: the running statistics, no ranks
            return super()._normalise(x, use_batch_stats)
        return F.sync_batchnorm_forward(x, self.weight and self.weight.data, self.bias and self.bias.data,
                                        self.running_mean, self.running_var, self.group, self.momentum, self.eps)

    def _normalise_backward(self, dout):
        if not isinstance(self.cache, F.SyncBatchNormCache):
            return super()._normalise_backward(dout)
        return F.sync_batchnorm_backward(dout, self.cache, self.group)

    def extra_repr(self):
        return f"{super().extra_repr()}, ranks={self.group.size}"


class SyncBatchNorm1d(SyncBatchNorm):
    """``SyncBatchNorm`` over (N, C) or (N, C, L) inputs."""
    _ndims = (2, 3)


class SyncBatchNorm2d(SyncBatchNorm):
    """``SyncBatchNorm`` over (N, C, H, W) inputs."""
    _ndims = (4,)


def convert_sync_batchnorm(model, group):
    """``model`` with every BatchNorm1d and BatchNorm2d among its children (recursively) replaced
    in place by a SyncBatchNorm1d/2d over ``group`` that holds the same parameters and running
    statistics (PyTorch's ``SyncBatchNorm.convert_sync_batchnorm``). Returns ``model``."""
    for name, layer in list(model.named_children()):
        if type(layer) in (BatchNorm1d, BatchNorm2d):
            kind = SyncBatchNorm1d if isinstance(layer, BatchNorm1d) else SyncBatchNorm2d
            sync = kind(layer.num_features, layer.eps, layer.momentum, group=group)
            sync.weight, sync.bias = layer.weight, layer.bias
            sync.running_mean, sync.running_var, sync._buffers = layer.running_mean, layer.running_var, layer._buffers
            sync.training = layer.training
            setattr(model, name, sync)
        else:
            convert_sync_batchnorm(layer, group)
    return model
