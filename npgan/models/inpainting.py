"""Networks for inpainting, scaled down to 28x28 / 32x32 images and a CPU budget.

- :func:`ContextEncoder` (Pathak et al., 2016): strided-conv encoder -> channel-wise fully
  connected bottleneck -> 1x1 conv -> transposed-conv decoder; with ``bottleneck='linear'``
  and ``activation='elu'`` it is Yang et al.'s (2017) content network.
- :func:`PatchDiscriminator`: a DCGAN-style discriminator on the whole (completed) image,
  the Context Encoder's adversary.
- :func:`CompletionNetwork` (Iizuka et al., 2017): conv encoder to 1/4 resolution, a stack
  of dilated convolutions (dilation 2, 4) that widens the receptive field without
  downsampling further, transposed-conv decoder.
- :class:`GlobalLocalDiscriminator` (Iizuka et al.): a global branch on the whole image and
  a local branch on a patch around the hole, their feature vectors concatenated and mapped
  to one logit.
Latent-optimisation inpainting uses the DCGANs of :mod:`npgan.models`: :mod:`~npgan.models.dcgan`
for 28x28 data (so ``python -m npgan.train`` checkpoints plug in) and :mod:`~npgan.models.dcgan32`
for the 32x32 natural crops.

Every network takes and returns (N, C, H, W) arrays; the completion networks see the
image with its hole pre-filled plus the mask as an extra channel (:func:`network_input`)
and predict a whole image, of which only the hole is used (:func:`npgan.functional.composite`).
:func:`complete` runs a completion network with either pre-fill (:data:`PREFILLS`).
"""
import numpy as np

from ..backend import get_array_module
from ..functional import crop_backward, crop_forward
from ..init import dcgan_init
from ..inpainting_ops.blend import biharmonic_solve
from ..inpainting_ops.masks import hole_boxes
from ..layers import (ELU, BatchNorm2d, ChannelwiseLinear, Conv2d, ConvTranspose2d, Flatten, Layer, LeakyReLU,
                      Linear, ReLU, Sequential, Tanh, Unflatten)
from .dcgan32 import conv_critic, downsamplings

PREFILLS = ("mean", "biharmonic")


# ---- glue between images, masks and networks ------------------------------------------------
def prefill(x, mask, fill):
    """The image with its hole replaced by ``fill`` (a per-channel (C,) value, e.g. the mean
    pixel, or a scalar): x * (1 - m) + fill * m. Shape: as ``x``."""
    xp = get_array_module(x)
    fill = xp.asarray(fill, dtype=x.dtype).reshape(1, -1, 1, 1) if getattr(fill, "ndim", 0) else fill
    return x * (1 - mask) + fill * mask


def network_input(x, mask, fill=None):
    """[pre-filled image, mask] along the channels: (N, C, H, W), (N, 1, H, W) -> (N, C+1, H, W).
    ``fill``: the hole's value (see :func:`prefill`), or None when x's hole is already filled."""
    xp = get_array_module(x)
    filled = x if fill is None else prefill(x, mask, fill)
    return xp.concatenate([filled, mask.astype(x.dtype)], axis=1)


def complete(net, x, mask, prefill="mean", fill=0.0):
    """A completion network's predicted image, for one of two pre-fills of the hole:

    'mean' (Pathak et al., Iizuka et al.): pred = net([x with the hole set to ``fill``, m]);
    'biharmonic': pred = b + net([b, m]), b = x with the hole filled by
        :func:`~npgan.inpainting_ops.blend.biharmonic_solve`: the network predicts a correction to a
        smooth interpolation of the border instead of the whole hole, so smooth regions, which
        it would otherwise have to reproduce from scratch, start right.
    Either way d pred / d (network output) is the identity: ``net.backward(dpred)`` is the
    whole backward pass. Shapes: x (N, C, H, W), mask (N, 1, H, W) -> (N, C, H, W).
    """
    if prefill == "mean":
        return net.forward(network_input(x, mask, fill))
    if prefill == "biharmonic":
        base = biharmonic_solve(x, mask)
        return base + net.forward(network_input(base, mask))
    raise ValueError(f"unknown prefill {prefill!r}; choose one of {PREFILLS}")


# ---- Context Encoder ------------------------------------------------------------------------
BOTTLENECKS = ("channelwise", "linear")
ENCODER_ACTIVATIONS = ("leaky_relu", "elu")


def ContextEncoder(channels=1, size=28, width=32, dtype=None, bottleneck="channelwise", activation="leaky_relu"):
    """Pathak et al.'s encoder - channel-wise FC - decoder, for (C+1)-channel inputs.

    Encoder: k stride-2 convs (4x4), widths w, 2w, (4w), BatchNorm (except the first) and
    LeakyReLU(0.2) (``activation='leaky_relu'``) or ELU(1) (``'elu'``), taking size to
    s = size / 2^k (28 -> 7, 32 -> 4).
    Bottleneck (``bottleneck='channelwise'``): ChannelwiseLinear over the s x s positions of each
    channel (the whole-image receptive field at C*(s^2)^2 weights); ``'linear'``: an ordinary
    Linear over the flattened code, (C*s^2)^2 weights, which also mixes the channels. Then
    BatchNorm, ReLU, a 1x1 conv that mixes the channels (Pathak's stride-1 convolution after the
    channel-wise layer), BatchNorm, ReLU.
    Decoder: k transposed convs (4x4, stride 2) back to size, BatchNorm + ReLU, Tanh output.

    Yang et al.'s (2017) content network is ``bottleneck='linear', activation='elu'``.

    Shape: (N, C+1, size, size) -> (N, C, size, size) in [-1, 1].
    """
    if bottleneck not in BOTTLENECKS:
        raise ValueError(f"ContextEncoder: bottleneck must be one of {BOTTLENECKS}, got {bottleneck!r}")
    if activation not in ENCODER_ACTIVATIONS:
        raise ValueError(f"ContextEncoder: activation must be one of {ENCODER_ACTIVATIONS}, got {activation!r}")
    k = downsamplings(size)
    widths = [width * 2 ** i for i in range(k)]                                # [w, 2w, (4w)]
    s = size // 2 ** k
    layers = []
    c_in = channels + 1
    for i, c in enumerate(widths):
        layers += [Conv2d(c_in, c, 4, 2, 1, dtype=dtype)]
        layers += [BatchNorm2d(c, dtype=dtype)] if i else []
        layers += [LeakyReLU(0.2) if activation == "leaky_relu" else ELU()]
        c_in = c
    top = widths[-1]
    if bottleneck == "channelwise":
        layers += [ChannelwiseLinear(top, s, dtype=dtype)]
    else:
        code = top * s * s
        layers += [Flatten(), Linear(code, code, dtype=dtype), Unflatten(1, (top, s, s))]    # (N, top, s, s)
    layers += [BatchNorm2d(top, dtype=dtype), ReLU(),
               Conv2d(top, top, 1, dtype=dtype), BatchNorm2d(top, dtype=dtype), ReLU()]
    for i in reversed(range(k)):
        c_out = widths[i - 1] if i else channels
        layers += [ConvTranspose2d(widths[i], c_out, 4, 2, 1, dtype=dtype)]
        layers += [BatchNorm2d(c_out, dtype=dtype), ReLU()] if i else [Tanh()]
    return dcgan_init(Sequential(*layers))


def PatchDiscriminator(channels=1, size=28, width=32, dtype=None):
    """DCGAN-style critic of a whole image -> one logit. Shape: (N, C, size, size) -> (N, 1)."""
    return dcgan_init(conv_critic(channels, size, width, 1, dtype))


# ---- Globally and locally consistent completion --------------------------------------------
def CompletionNetwork(channels=1, size=28, width=16, dilations=(2, 4), dtype=None):
    """Iizuka et al.'s completion network, scaled down (same shape, fewer and thinner layers).

    conv5x5(w) -> conv3x3/2(2w) -> conv3x3/2(4w)                     encoder to 1/4 resolution
    -> conv3x3(4w) -> dilated conv3x3(4w), dilation 2, 4 -> conv3x3(4w)   (7x7 or 8x8 maps)
    -> deconv4x4/2(2w) -> conv3x3(2w) -> deconv4x4/2(C) -> Tanh,
    BatchNorm + ReLU after every layer but the last. (Iizuka et al. run a few more convs at
    full resolution; here those would cost most of the CPU time.) The dilated convolutions widen the
    receptive field without further downsampling: at 1/4 resolution the middle stack sees a
    17x17 window, i.e. 68x68 input pixels, more than the whole 28x28 or 32x32 image, so every
    hole pixel is computed from the entire context.

    Shape: (N, C+1, size, size) -> (N, C, size, size) in [-1, 1]; size must be a multiple of 4.
    """
    if size % 4:
        raise ValueError(f"CompletionNetwork: image side must be a multiple of 4, got {size}")

    def block(c_in, c_out, k, stride=1, dilation=1):
        pad = dilation * (k - 1) // 2
        return [Conv2d(c_in, c_out, k, stride, pad, dilation, dtype=dtype), BatchNorm2d(c_out, dtype=dtype), ReLU()]

    def up(c_in, c_out):
        return [ConvTranspose2d(c_in, c_out, 4, 2, 1, dtype=dtype), BatchNorm2d(c_out, dtype=dtype), ReLU()]

    w2, w4 = 2 * width, 4 * width
    layers = block(channels + 1, width, 5) + block(width, w2, 3, stride=2) + block(w2, w4, 3, stride=2)
    layers += block(w4, w4, 3)
    for d in dilations:
        layers += block(w4, w4, 3, dilation=d)
    layers += block(w4, w4, 3)
    layers += up(w4, w2) + block(w2, w2, 3)
    layers += [ConvTranspose2d(w2, channels, 4, 2, 1, dtype=dtype), Tanh()]
    return dcgan_init(Sequential(*layers))


class GlobalLocalDiscriminator(Layer):
    """Iizuka et al.'s two-branch discriminator, scaled down.

    global: k stride-2 convs on the whole image -> Linear -> ``features`` values;
    local:  k' stride-2 convs on a ``patch`` x ``patch`` window centred on the hole -> Linear
            -> ``features`` values;
    both LeakyReLU(0.2), concatenated (2 * features) -> Linear -> one logit.

    ``forward(x, mask)`` takes the mask to place the local window (:func:`hole_boxes`);
    ``backward(dout)`` returns d(logit)/dx, the two branches' gradients summed (the local
    one pasted back where its patch came from).

    Shape: x (N, C, size, size), mask (N, 1, size, size) -> (N, 1).
    """

    def __init__(self, channels=1, size=28, patch=16, width=32, features=64, dtype=None):
        self.patch = patch
        self.global_branch = conv_critic(channels, size, width, features, dtype)
        self.local_branch = conv_critic(channels, patch, width, features, dtype)
        self.act = LeakyReLU(0.2)
        self.head = Linear(2 * features, 1, dtype=dtype)
        dcgan_init(self)
        self.cache = None

    def forward(self, x, mask):
        xp = get_array_module(x)
        top, left = hole_boxes(mask, self.patch)
        patch, crop_cache = crop_forward(x, top, left, self.patch)              # (N, C, P, P)
        g = self.global_branch.forward(x)                                        # (N, F)
        loc = self.local_branch.forward(patch)                                   # (N, F)
        h = self.act.forward(xp.concatenate([g, loc], axis=1))                   # (N, 2F)
        self.cache = (crop_cache, g.shape[1])
        return self.head.forward(h)                                              # (N, 1)

    def backward(self, dout):
        crop_cache, f = self.cache
        dh = self.act.backward(self.head.backward(dout))                         # (N, 2F)
        dx = self.global_branch.backward(dh[:, :f])
        dpatch = self.local_branch.backward(dh[:, f:])
        return dx + crop_backward(dpatch, crop_cache)


def discriminate(D, x, mask):
    """D's logits for images ``x``; the mask is passed on to discriminators that use it."""
    return D.forward(x, mask) if isinstance(D, GlobalLocalDiscriminator) else D.forward(x)


# ---- feature networks for Yang et al.'s texture term ----------------------------------------
# Each maps (N, C, H, W) -> (N, F, H, W): stride 1 and "same" size, so a feature cell sits on the
# pixel it is centred on and the hole mask is also the features' hole mask (small images leave no
# room for strided maps: a 7x7 hole in a 14x14 image covers every 3x3 patch of a 7x7 map).
FEATURES = ("random", "encoder", "classifier")
RANDOM_KERNELS = (3, 5, 7)
RANDOM_PER_SCALE = 32


def RandomFeatures(channels=1, per_scale=RANDOM_PER_SCALE, kernels=RANDOM_KERNELS, seed=0, dtype=None):
    """A random-weight multi-scale CNN (Ustyuzhaninov et al., 2017): untrained filters of several
    sizes, which describe textures about as well as a trained network's first layers.

    One stride-1 Conv2d of the largest kernel holds every scale: its filters come in
    len(kernels) groups of ``per_scale``, group j nonzero only in its central kernels[j] x
    kernels[j] window, with He-normal weights N(0, 2 / (C k_j^2)) drawn from a host generator
    seeded with ``seed`` (the same network on every backend and in every run), zero bias; then ReLU.

    Shape: (N, C, H, W) -> (N, per_scale * len(kernels), H, W).
    """
    big = max(kernels)
    if any(k % 2 == 0 for k in kernels):
        raise ValueError(f"RandomFeatures: kernel sizes must be odd, got {kernels}")
    conv = Conv2d(channels, per_scale * len(kernels), big, 1, big // 2, dtype=dtype)
    rng = np.random.default_rng(seed)
    w = np.zeros(conv.weight.shape)                                              # (F, C, K, K)
    for j, k in enumerate(kernels):
        a = (big - k) // 2
        w[j * per_scale:(j + 1) * per_scale, :, a:a + k, a:a + k] = (
            rng.standard_normal((per_scale, channels, k, k)) * np.sqrt(2.0 / (channels * k * k)))
    xp = get_array_module(conv.weight.data)
    conv.weight.data[...] = xp.asarray(w, dtype=conv.weight.data.dtype)
    conv.bias.data[...] = 0
    return Sequential(conv, ReLU())


def EncoderFeatures(content_net, channels, dtype=None):
    """The content network's first encoder layer, applied at every pixel instead of every second
    one: its 4x4 filters (their image channels; the mask channel is left out, as if nothing were
    missing) placed in the top-left of 5x5 kernels (stride 1, padding 2, so the output keeps the
    image's size), then the ELU of Yang et al.'s content network (``ContextEncoder(...,
    activation='elu')``).

    Shape: (N, C, H, W) -> (N, width, H, W).
    """
    first = content_net[0]
    width, _, kh, kw = first.weight.shape
    conv = Conv2d(channels, width, 5, 1, 2, dtype=dtype)
    xp = get_array_module(conv.weight.data)
    conv.weight.data[...] = 0
    conv.weight.data[:, :, :kh, :kw] = xp.asarray(first.weight.data[:, :channels], dtype=conv.weight.data.dtype)
    conv.bias.data[...] = xp.asarray(first.bias.data, dtype=conv.bias.data.dtype)
    return Sequential(conv, ELU())


def ClassifierFeatures(classifier=None, dtype=None):
    """The evaluation classifier's (:mod:`npgan.models.classifier`) first conv layer and its ReLU,
    before the pooling: 16 filters of 5x5 trained on the digits or garments (grey 28x28 only).
    Built with fresh weights when ``classifier`` is None (to load a stored state into).

    Shape: (N, 1, H, W) -> (N, 16, H, W).
    """
    conv = Conv2d(1, 16, 5, 1, 2, dtype=dtype)
    if classifier is not None:
        conv.load_state_dict(classifier[0].state_dict())
    return Sequential(conv, ReLU())


def feature_network(kind, channels=1, width=32, seed=0, dtype=None):
    """A feature network of ``kind`` (:data:`FEATURES`) with the shapes a stored one has, for
    ``load_state_dict`` (the encoder's weights are placeholders until then)."""
    if kind == "random":
        return RandomFeatures(channels, seed=seed, dtype=dtype)
    if kind == "encoder":
        return Sequential(Conv2d(channels, width, 5, 1, 2, dtype=dtype), ELU())
    if kind == "classifier":
        return ClassifierFeatures(dtype=dtype)
    raise ValueError(f"unknown feature network {kind!r}; choose one of {FEATURES}")
