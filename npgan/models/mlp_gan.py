"""The fully connected GAN of Goodfellow et al. (2014), in its common modern form.

G: z(100) -> Linear(100, 256) -> LeakyReLU(0.2) -> Linear(256, 512) -> LeakyReLU(0.2)
   -> Linear(512, 1024) -> LeakyReLU(0.2) -> Linear(1024, 784) -> Tanh -> (1, 28, 28)
D: (1, 28, 28) -> Flatten -> Linear(784, 512) -> LeakyReLU(0.2) -> Dropout(0.3)
   -> Linear(512, 256) -> LeakyReLU(0.2) -> Dropout(0.3) -> Linear(256, 1)  (a logit)

The paper's discriminator used maxout units with dropout and its generator ReLU/sigmoid
units; LeakyReLU, Tanh outputs in [-1, 1], the non-saturating loss and Adam (lr 2e-4,
betas (0.5, 0.999)) are the usual substitutes that make it train reliably. Weights keep
PyTorch's default initialisation (uniform in +-1/sqrt(fan_in)).
"""
from ..layers import Dropout, Flatten, LeakyReLU, Linear, Sequential, SpectralNorm, Tanh, Unflatten

Z_DIM = 100
LR = 2e-4
BETAS = (0.5, 0.999)
BATCH_SIZE = 64


def Generator(z_dim=Z_DIM, image_shape=(1, 28, 28), hidden=(256, 512, 1024), dtype=None):
    """(N, z_dim) -> images (N, *image_shape) in [-1, 1]."""
    pixels = image_shape[0] * image_shape[1] * image_shape[2]
    layers = []
    width = z_dim
    for h in hidden:
        layers += [Linear(width, h, dtype=dtype), LeakyReLU(0.2)]
        width = h
    layers += [Linear(width, pixels, dtype=dtype), Tanh(), Unflatten(1, tuple(image_shape))]
    return Sequential(*layers)


def Discriminator(image_shape=(1, 28, 28), hidden=(512, 256), dropout=0.3, dtype=None, spectral_norm=False):
    """images (N, *image_shape) -> logits (N, 1).

    ``spectral_norm=True``: each Linear, initialised as usual, is then wrapped in ``SpectralNorm``."""
    pixels = image_shape[0] * image_shape[1] * image_shape[2]
    layers = [Flatten()]
    width = pixels
    for h in hidden:
        layers += [Linear(width, h, dtype=dtype), LeakyReLU(0.2), Dropout(dropout)]
        width = h
    layers.append(Linear(width, 1, dtype=dtype))
    if spectral_norm:
        layers = [SpectralNorm(layer) if isinstance(layer, Linear) else layer for layer in layers]
    return Sequential(*layers)
