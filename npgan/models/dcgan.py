"""DCGAN-MNIST-28, the reference architecture (benchmarks and comparisons with PyTorch use it).

G: z(100) -> Linear(100, 128*7*7) -> BatchNorm1d -> ReLU -> (128, 7, 7)
   -> ConvTranspose2d(128, 64, 4, 2, 1) -> BatchNorm2d -> ReLU -> ConvTranspose2d(64, 1, 4, 2, 1) -> Tanh
D: Conv2d(1, 64, 4, 2, 1) -> LeakyReLU(0.2) -> Conv2d(64, 128, 4, 2, 1) -> BatchNorm2d -> LeakyReLU(0.2)
   -> Flatten -> Linear(6272, 1)  (a logit); without BatchNorm2d for gradient penalties (WGAN-GP, R1);
   optionally with each Conv2d and Linear spectrally normalised (Miyato et al. 2018), and optionally
   with a minibatch standard deviation channel before Flatten (Karras et al. 2018): Linear(6321, 1)
Init N(0, 0.02) for conv/linear weights, BatchNorm gamma N(1, 0.02), beta 0;
Adam lr 2e-4, betas (0.5, 0.999); batch 64.
"""
from ..init import dcgan_init
from ..layers import (BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, LeakyReLU, Linear,
                      MinibatchStdDev, ReLU, Sequential, SpectralNorm, Tanh, Unflatten)

Z_DIM = 100
LR = 2e-4
BETAS = (0.5, 0.999)
BATCH_SIZE = 64
MINIBATCH_STD_GROUP = 4


def Generator(z_dim=Z_DIM, channels=1, width=64, dtype=None):
    """(N, z_dim) -> images (N, channels, 28, 28) in [-1, 1]."""
    g = Sequential(
        Linear(z_dim, 2 * width * 7 * 7, dtype=dtype),
        BatchNorm1d(2 * width * 7 * 7, dtype=dtype),
        ReLU(),
        Unflatten(1, (2 * width, 7, 7)),
        ConvTranspose2d(2 * width, width, 4, 2, 1, dtype=dtype),
        BatchNorm2d(width, dtype=dtype),
        ReLU(),
        ConvTranspose2d(width, channels, 4, 2, 1, dtype=dtype),
        Tanh(),
    )
    dcgan_init(g)
    return g


def Discriminator(channels=1, width=64, dtype=None, batchnorm=True, spectral_norm=False, minibatch_std=False):
    """images (N, channels, 28, 28) -> logits (N, 1).

    ``batchnorm=False``: the same layers without BatchNorm2d, the critic of Gulrajani et al.
    (WGAN-GP), whose gradient penalty is per sample; its outputs are scores.
    ``spectral_norm=True``: each Conv2d and Linear, initialised as usual, is then wrapped in
    ``SpectralNorm`` (parameters ``weight_orig``, buffers ``weight_u``, ``weight_v``).
    ``minibatch_std=True``: ``MinibatchStdDev(4)`` after the last LeakyReLU adds one channel
    holding how much the samples of each group of 4 differ (Karras et al. 2018), so the Linear
    takes (2*width + 1)*7*7 features; the batch size must then be a multiple of 4 (or below 4).
    It mixes samples, so such a D has no gradient penalty."""
    norm = [BatchNorm2d(2 * width, dtype=dtype)] if batchnorm else []
    std = [MinibatchStdDev(MINIBATCH_STD_GROUP)] if minibatch_std else []
    d = Sequential(
        Conv2d(channels, width, 4, 2, 1, dtype=dtype),                       # (N, w, 14, 14)
        LeakyReLU(0.2),
        Conv2d(width, 2 * width, 4, 2, 1, dtype=dtype),                      # (N, 2w, 7, 7)
        *norm,
        LeakyReLU(0.2),
        *std,                                                                # (N, 2w + 1, 7, 7)
        Flatten(),
        Linear((2 * width + len(std)) * 7 * 7, 1, dtype=dtype),
    )
    dcgan_init(d)
    if spectral_norm:
        d = Sequential(*(SpectralNorm(layer) if isinstance(layer, (Conv2d, Linear)) else layer for layer in d))
    return d
