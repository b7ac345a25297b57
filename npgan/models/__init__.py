"""The networks, and the registry that builds a training run's models by name.

- :mod:`~npgan.models.dcgan`: DCGAN-MNIST-28, the reference architecture;
- :mod:`~npgan.models.mlp_gan`: the fully connected GAN of Goodfellow et al.;
- :mod:`~npgan.models.dcgan32`: a DCGAN for 32x32 images and the strided conv critic it uses;
- :mod:`~npgan.models.classifier`: the digit classifier behind the evaluation scores;
- :mod:`~npgan.models.conditional`: class-conditional G and D (``build_models(..., n_classes=10)``);
- :mod:`~npgan.models.inpainting`: the Context Encoder and its adversary, Iizuka et al.'s completion
  network and global+local discriminator.
"""
from pathlib import Path

from ..checkpoint import load_generator_state
from . import dcgan, mlp_gan
from .conditional import ProjectionDiscriminator, with_conditional_batchnorm

MODELS = {"dcgan": dcgan, "mlp": mlp_gan}


def build_models(name, critic_batchnorm=True, spectral_norm=False, n_classes=None, conditional_batchnorm=False,
                 minibatch_std=False, width=None):
    """``(G, D)`` of the named architecture (``'dcgan'`` or ``'mlp'``), freshly initialised
    from the backend's random generator. ``critic_batchnorm=False``: D without BatchNorm (for a
    gradient penalty, which is per sample; the mlp D has none anyway). ``spectral_norm=True``:
    D's Conv2d and Linear layers wrapped in ``SpectralNorm`` (Miyato et al. 2018).
    ``n_classes``: a class-conditional pair (:mod:`npgan.models.conditional`): G takes
    ``[z, onehot(y)]``, D is ``ProjectionDiscriminator`` of the same layers, called ``D(x, y)``;
    with ``conditional_batchnorm`` G's BatchNorms take the class too (``ConditionalGenerator``).
    ``minibatch_std=True`` (``'dcgan'`` only): D with a ``MinibatchStdDev`` channel (groups of 4)
    before its Flatten (Karras et al. 2018), in the conditional D's body too. ``width``
    (``'dcgan'`` only): the channels of G's last and D's first convolution (default 64; the
    others are twice that)."""
    module = MODELS[name]
    options = {"spectral_norm": True} if spectral_norm else {}
    if width is not None:
        if module is not dcgan:
            raise ValueError(f"build_models: width applies to the 'dcgan' networks (their channel counts); the "
                             f"{name!r} networks are fully connected")
        options["width"] = width
    if minibatch_std:
        if module is not dcgan:
            raise ValueError(f"build_models: minibatch_std applies to the 'dcgan' discriminator (a channel added "
                             f"to its feature maps); the {name!r} discriminator has no feature maps to extend")
        options["minibatch_std"] = True
    if not critic_batchnorm and module is not mlp_gan:
        options["batchnorm"] = False
    G = generator(name, n_classes, conditional_batchnorm, width)
    D = module.Discriminator(**options)
    if n_classes:
        D = ProjectionDiscriminator(*D.layers, n_classes=n_classes)
    return G, D


def generator(name, n_classes=None, conditional_batchnorm=False, width=None):
    """A fresh generator of the named architecture; conditional on ``n_classes`` classes, its
    BatchNorms too with ``conditional_batchnorm``; ``width`` as ``build_models``."""
    module = MODELS[name]
    G = module.Generator(z_dim=module.Z_DIM + (n_classes or 0), **({"width": width} if width else {}))
    return with_conditional_batchnorm(G, n_classes) if n_classes and conditional_batchnorm else G


def critic_description(name, critic_batchnorm=True):
    """What ``build_models(name, critic_batchnorm)`` makes D, in words."""
    if name == "dcgan":
        return ("DCGAN discriminator" if critic_batchnorm
                else "DCGAN discriminator without BatchNorm, as Gulrajani et al.")
    return "MLP discriminator (no BatchNorm; its Dropout masks are fixed per forward)"


def load_generator(run_dir, averaged=True):
    """The generator of ``run_dir/checkpoint.npz``, the run's configuration and the step the
    checkpoint was saved at (below ``config['steps']`` for an interrupted run). For a run with
    ``--ema``: the averaged weights, or G's own with ``averaged=False``.

    Raises FileNotFoundError or ValueError (a damaged or foreign checkpoint) naming the file."""
    path = Path(run_dir) / "checkpoint.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a training run directory?")
    state, config, step = load_generator_state(path, averaged)
    if config.get("model") not in MODELS:
        raise ValueError(f"{path}: unknown model {config.get('model')!r} (expected one of {', '.join(MODELS)})")
    G = generator(config["model"], config.get("n_classes"), config.get("conditional_batchnorm", False),
                  config.get("width"))
    try:
        G.load_state_dict(state)
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: the stored generator is not a {config['model']} generator ({err})") from None
    return G.eval(), config, step
