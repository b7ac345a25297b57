"""CycleGAN's networks (Zhu et al., 2017), sized for 28x28 images: a ResNet generator and a
PatchGAN discriminator.

Generator (Johnson et al.'s ResNet, as CycleGAN's ``resnet_*blocks``; w = ``width``, here for
28x28 input with C_in channels and C_out output channels):

    ReflectionPad2d(3) -> Conv2d(C_in, w, 7) -> InstanceNorm -> ReLU                  # (N, w, 28, 28)
    Conv2d(w, 2w, 3, stride 2, pad 1) -> InstanceNorm -> ReLU                          # (N, 2w, 14, 14)
    Conv2d(2w, 4w, 3, stride 2, pad 1) -> InstanceNorm -> ReLU                         # (N, 4w, 7, 7)
    blocks x Residual(ReflectionPad2d(1) -> Conv2d(4w, 4w, 3) -> InstanceNorm -> ReLU
                      -> ReflectionPad2d(1) -> Conv2d(4w, 4w, 3) -> InstanceNorm)      # (N, 4w, 7, 7)
    ConvTranspose2d(4w, 2w, 3, stride 2, pad 1, output_padding 1) -> InstanceNorm -> ReLU   # (N, 2w, 14, 14)
    ConvTranspose2d(2w, w, 3, stride 2, pad 1, output_padding 1) -> InstanceNorm -> ReLU    # (N, w, 28, 28)
    ReflectionPad2d(3) -> Conv2d(w, C_out, 7) -> Tanh                                  # (N, C_out, 28, 28) in [-1, 1]

Discriminator (PatchGAN, as CycleGAN's ``n_layers``; w = ``width``):

    Conv2d(C, w, 4, stride 2, pad 1) -> LeakyReLU(0.2)                                 # (N, w, 14, 14)
    Conv2d(w, 2w, 4, stride 2, pad 1) -> InstanceNorm -> LeakyReLU(0.2)                # (N, 2w, 7, 7)
    Conv2d(2w, 4w, 3, pad 1) -> InstanceNorm -> LeakyReLU(0.2)                         # (N, 4w, 7, 7)
    Conv2d(4w, 1, 3, pad 1)                                                            # (N, 1, 7, 7) scores

Each of the 7 x 7 scores judges a 26 x 26 window of the image (its receptive field), so D says
"real" or "fake" about overlapping patches, not the whole image. The scores are LSGAN's (no sigmoid).

As in CycleGAN: InstanceNorm without affine parameters or running statistics (the same in
training and evaluation), weights ~ N(0, 0.02). Unlike it, the convolutions followed by an
InstanceNorm have no bias: the normalisation subtracts it again, so it would never learn.
"""
from ..init import dcgan_init
from ..layers import (Conv2d, ConvTranspose2d, InstanceNorm2d, LeakyReLU, ReflectionPad2d, ReLU, Residual,
                      Sequential, Tanh)

WIDTH = 32              # w: 32, 64, 128 channels at 28, 14, 7 pixels
BLOCKS = 3              # residual blocks at 7 x 7
D_WIDTH = 32
SIZE = 28


def residual_block(channels, dtype=None):
    """x + (pad -> conv3 -> IN -> ReLU -> pad -> conv3 -> IN)(x), at constant shape."""
    return Residual(Sequential(
        ReflectionPad2d(1), Conv2d(channels, channels, 3, bias=False, dtype=dtype), InstanceNorm2d(channels), ReLU(),
        ReflectionPad2d(1), Conv2d(channels, channels, 3, bias=False, dtype=dtype), InstanceNorm2d(channels),
    ))


def Generator(in_channels, out_channels, width=WIDTH, blocks=BLOCKS, dtype=None):
    """images (N, in_channels, 28, 28) in [-1, 1] -> images (N, out_channels, 28, 28) in [-1, 1]
    (see the module docstring). Any size divisible by 4 works."""
    w = width
    g = Sequential(
        ReflectionPad2d(3), Conv2d(in_channels, w, 7, bias=False, dtype=dtype), InstanceNorm2d(w), ReLU(),   # (N, w, 28, 28)
        Conv2d(w, 2 * w, 3, 2, 1, bias=False, dtype=dtype), InstanceNorm2d(2 * w), ReLU(),            # (N, 2w, 14, 14)
        Conv2d(2 * w, 4 * w, 3, 2, 1, bias=False, dtype=dtype), InstanceNorm2d(4 * w), ReLU(),        # (N, 4w, 7, 7)
        *(residual_block(4 * w, dtype) for _ in range(blocks)),                                     # (N, 4w, 7, 7)
        ConvTranspose2d(4 * w, 2 * w, 3, 2, 1, 1, bias=False, dtype=dtype), InstanceNorm2d(2 * w), ReLU(),  # (N, 2w, 14, 14)
        ConvTranspose2d(2 * w, w, 3, 2, 1, 1, bias=False, dtype=dtype), InstanceNorm2d(w), ReLU(),          # (N, w, 28, 28)
        ReflectionPad2d(3), Conv2d(w, out_channels, 7, dtype=dtype), Tanh(),                               # (N, C_out, 28, 28)
    )
    return dcgan_init(g)


def Discriminator(channels, width=D_WIDTH, dtype=None):
    """images (N, channels, 28, 28) -> patch scores (N, 1, 7, 7) (see the module docstring)."""
    w = width
    d = Sequential(
        Conv2d(channels, w, 4, 2, 1, dtype=dtype), LeakyReLU(0.2),                                     # (N, w, 14, 14)
        Conv2d(w, 2 * w, 4, 2, 1, bias=False, dtype=dtype), InstanceNorm2d(2 * w), LeakyReLU(0.2),     # (N, 2w, 7, 7)
        Conv2d(2 * w, 4 * w, 3, 1, 1, bias=False, dtype=dtype), InstanceNorm2d(4 * w), LeakyReLU(0.2),  # (N, 4w, 7, 7)
        Conv2d(4 * w, 1, 3, 1, 1, dtype=dtype),                                                         # (N, 1, 7, 7)
    )
    return dcgan_init(d)


def build_cyclegan(channels_a=1, channels_b=3, width=WIDTH, blocks=BLOCKS, d_width=D_WIDTH, dtype=None):
    """The four networks of a CycleGAN between domain A (``channels_a``) and B (``channels_b``),
    initialised in this order from the backend's generator: {'G_ab', 'G_ba', 'D_a', 'D_b'}
    (G_ab: A -> B, D_a judges images of A)."""
    return {"G_ab": Generator(channels_a, channels_b, width, blocks, dtype),
            "G_ba": Generator(channels_b, channels_a, width, blocks, dtype),
            "D_a": Discriminator(channels_a, d_width, dtype),
            "D_b": Discriminator(channels_b, d_width, dtype)}
