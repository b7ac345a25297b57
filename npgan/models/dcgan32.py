"""A DCGAN for 32x32 images (the natural-photo crops of the inpainting experiments), and the
strided conv critic it shares with the inpainting discriminators.

G: z -> Linear -> BatchNorm1d -> ReLU -> (4w, 4, 4) -> three ConvTranspose2d 4x4 stride 2
   (2w, w, C), BatchNorm2d + ReLU between them -> Tanh: (N, C, 32, 32) in [-1, 1]
D: three Conv2d 4x4 stride 2 (w, 2w, 4w), BatchNorm2d after all but the first, LeakyReLU(0.2)
   -> Flatten -> Linear -> one logit (N, 1)
DCGAN init (N(0, 0.02) weights, BatchNorm gamma N(1, 0.02)).
"""
from ..init import dcgan_init
from ..layers import (BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, LeakyReLU, Linear, ReLU,
                      Sequential, Tanh, Unflatten)


def downsamplings(size):
    """Stride-2 stages that take ``size`` to a small bottleneck: 28 -> 7 (2), 32 -> 4 (3)."""
    n = 0
    while size % 2 == 0 and size // 2 >= 4 and n < 3:
        size //= 2
        n += 1
    if n < 2:
        raise ValueError(f"image side {size} is not supported: it must halve at least twice (e.g. 28 or 32)")
    return n


def conv_critic(channels, size, width, out_features, dtype=None):
    """k stride-2 4x4 convs (width, 2*width, ...; BatchNorm after all but the first,
    LeakyReLU 0.2), Flatten, Linear. Shape: (N, C, size, size) -> (N, out_features)."""
    k = downsamplings(size)
    layers, c_in = [], channels
    for i in range(k):
        c = width * 2 ** i
        layers += [Conv2d(c_in, c, 4, 2, 1, dtype=dtype)]
        layers += [BatchNorm2d(c, dtype=dtype)] if i else []
        layers += [LeakyReLU(0.2)]
        c_in = c
    s = size // 2 ** k
    return Sequential(*layers, Flatten(), Linear(c_in * s * s, out_features, dtype=dtype))


def Generator(z_dim=100, channels=3, width=64, dtype=None):
    """z (N, z_dim) -> (N, C, 32, 32) in [-1, 1]."""
    g = Sequential(
        Linear(z_dim, 4 * width * 16, dtype=dtype), BatchNorm1d(4 * width * 16, dtype=dtype), ReLU(),
        Unflatten(1, (4 * width, 4, 4)),                                                  # (N, 4w, 4, 4)
        ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, dtype=dtype), BatchNorm2d(2 * width, dtype=dtype), ReLU(),
        ConvTranspose2d(2 * width, width, 4, 2, 1, dtype=dtype), BatchNorm2d(width, dtype=dtype), ReLU(),
        ConvTranspose2d(width, channels, 4, 2, 1, dtype=dtype), Tanh(),                  # (N, C, 32, 32)
    )
    return dcgan_init(g)


def Discriminator(channels=3, width=64, dtype=None):
    """(N, C, 32, 32) -> one logit (N, 1)."""
    return dcgan_init(conv_critic(channels, 32, width, 1, dtype))
