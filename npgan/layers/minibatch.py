import numbers

from .. import functional as F
from .base import Layer, check_input


class MinibatchStdDev(Layer):
    """Minibatch standard deviation (Karras et al. 2018, section 3): an extra channel holding
    how much the samples of each group of ``group_size`` differ, so that a discriminator can
    tell a batch of near-identical fakes from varied real data::

        s_m = mean_{c,h,w} sqrt(Var_g[x of group m] + 1e-8)      (biased variance over the group)
        y[n] = concat(x[n], s_m tiled to (1, H, W))             n = g*M + m, M = N / G

    The groups follow StyleGAN2 (``x.reshape(G, -1, C, H, W)``): group m holds samples
    m, m + M, m + 2M, ...; see ``npgan.functional.minibatch_stddev_forward``.

    Args:
        group_size: G, the samples per statistic (default 4); a batch smaller than G is one
            group. The batch size must be a multiple of min(G, N).
    Shape: (N, C, H, W) -> (N, C + 1, H, W).
    """
    no_second_order_reason = ("the statistic mixes the samples of a group, so a per-sample gradient penalty "
                              "through it is not defined; use a critic without MinibatchStdDev")

    def __init__(self, group_size=4):
        if isinstance(group_size, bool) or not isinstance(group_size, numbers.Integral) or group_size < 1:
            raise ValueError(f"MinibatchStdDev: group_size must be a positive integer, got {group_size!r}")
        self.group_size = int(group_size)
        self.cache = None

    def forward(self, x):
        check_input(self, x, 4)
        n = x.shape[0]
        if n % min(self.group_size, n or 1):
            raise ValueError(f"MinibatchStdDev: the batch size N={n} is not a multiple of group_size="
                             f"{self.group_size} (a batch smaller than the group size is one group)")
        out, self.cache = F.minibatch_stddev_forward(x, self.group_size)
        return out

    def backward(self, dout):
        return F.minibatch_stddev_backward(dout, self.cache)

    def extra_repr(self):
        return f"group_size={self.group_size}"
