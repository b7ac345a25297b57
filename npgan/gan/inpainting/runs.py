"""Run configurations, checkpoints and the inpainters a run directory provides.

A run directory (``runs/NAME``) written by ``python -m npgan.inpaint train`` holds

- ``config.json``: the :class:`Config` settings its method uses (method, data, mask kind, sizes,
  hyper-parameters; see :data:`METHOD_FIELDS`);
- ``checkpoint.npz``: the networks' ``state_dict()`` under ``net.`` / ``D.`` (Context
  Encoder, GLCIC) or ``G.`` / ``D.`` (latent optimisation), plus the config as ``meta``;
- ``losses.csv`` and ``losses.png``, ``samples.png`` (masked | completion | ground truth);
- after ``eval``: ``metrics.json``, ``metrics.md`` and ``eval_panel.png``.

:func:`load_inpainters` turns a run directory into callables ``fill(images, masks)`` that
complete (N, C, H, W) images in [-1, 1] (hole mask (N, 1, H, W), 1 = missing) and keep the
known pixels, which is all ``eval`` and ``fill`` need.
"""
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ... import backend
from ...checkpoint import atomic_savez, read_npz
from ...functional import composite
from ...inpainting_ops.blend import poisson_blend
from ...models import dcgan, dcgan32
from ...models.inpainting import (FEATURES, PREFILLS, CompletionNetwork, ContextEncoder, GlobalLocalDiscriminator,
                                 PatchDiscriminator, complete, feature_network)
from . import yang
from .latent import LAMBDA, latent_generate

METHODS = ("context-encoder", "context-encoder-l2", "glcic", "latent", "yang-content", "yang")
LABELS = {"context-encoder": "Context Encoder (L2 + adv)", "context-encoder-l2": "Context Encoder (L2 only)",
          "glcic": "GLCIC", "latent": "latent optimisation", "yang-content": "Yang et al. content network",
          "yang": "Yang et al. (content + texture)"}
CONTEXT_ENCODERS = ("context-encoder", "context-encoder-l2", "yang-content")    # one network, one loop


# how a label names a setting that differs from the method's default, in this order
LABEL_PARTS = (("mask", lambda v: f"{v} holes"), ("prefill", lambda v: f"{v} prefill"),
               ("adv_weight", lambda v: f"adv weight {v:g}"), ("steps", lambda v: f"{v} steps"),
               ("phases", lambda v: "phases " + "/".join(map(str, v))), ("width", lambda v: f"width {v}"),
               ("optimizer", str), ("features", lambda v: f"{v} features"),
               ("texture_weight", lambda v: f"texture weight {v:g}"), ("tv_weight", lambda v: f"TV weight {v:g}"),
               ("scales", lambda v: f"{v} scales"), ("nn_updates", lambda v: f"{v} matchings"),
               ("lbfgs_steps", lambda v: f"{v} L-BFGS steps"), ("seed", lambda v: f"seed {v}"))

# what each method changes from the Config defaults (each trains in a few minutes on a 2-core CPU)
METHOD_DEFAULTS = {
    "context-encoder": dict(steps=1500, lr_g=1e-3, lr_d=1e-4, adv_weight=0.001),
    "context-encoder-l2": dict(steps=1500, lr_g=1e-3, adv_weight=0.0),
    "glcic": dict(phases=(800, 100, 500), lr_g=1e-3, lr_d=1e-4, adv_weight=0.0004, width=16),
    "latent": dict(steps=2000, lr_g=2e-4, lr_d=2e-4, width=32),
    "yang-content": dict(steps=1500, lr_g=1e-3, lr_d=1e-4, adv_weight=0.001),
    "yang": dict(),                     # trains nothing: the content run's network and settings are copied
}

# the Config fields each method reads: config.json and the checkpoint record these (a Context Encoder
# run has no GLCIC phases or latent-search settings); loading fills the others from the method's defaults
COMMON_FIELDS = ("method", "dataset", "mask", "channels", "size", "hole", "batch_size", "lr_g", "width", "seed")
METHOD_FIELDS = {
    "context-encoder": ("prefill", "fill", "steps", "lr_d", "optimizer", "adv_weight"),
    "context-encoder-l2": ("prefill", "fill", "steps", "optimizer"),                # no D, adv_weight 0
    "glcic": ("prefill", "fill", "phases", "lr_d", "optimizer", "adv_weight", "patch"),
    "latent": ("steps", "lr_d", "z_dim", "latent_steps", "latent_lr", "latent_lambda", "gan_checkpoint"),
    "yang-content": ("prefill", "fill", "steps", "lr_d", "optimizer", "adv_weight"),
    "yang": ("prefill", "fill", "content", "features", "texture_weight", "tv_weight", "scales", "nn_updates",
             "lbfgs_steps"),
}
# yang's feature network when --features is not given: the random CNN copies the black background
# of the grey object images into their holes, the content network's own first layer does not
# (measured over three seeds in docs/INPAINTING.md); on the photos' crops the random CNN does best
YANG_FEATURES = {"mnist": "encoder", "fashion-mnist": "encoder"}


def default_features(dataset):
    """The texture term's default feature network on ``dataset`` (``YANG_FEATURES``, else random)."""
    return YANG_FEATURES.get(dataset, "random")


LOADED_DCGAN_UNUSED = ("steps", "batch_size", "lr_g", "lr_d")     # latent with a --gan-checkpoint: not trained
YANG_UNUSED = ("batch_size", "lr_g")                              # yang trains nothing


@dataclass(frozen=True)
class Config:
    """Everything that defines a run. Defaults: see :func:`default_config`.

    Attributes (the hyper-parameters used by each method are noted):
        method, dataset, mask: what is trained on what ('centre', 'rect', 'strokes', 'mixed').
        channels, size, hole: image shape and centre-hole side (filled in from the data).
        prefill: what the hole holds at a completion network's input: 'mean' (``fill``, as in
            the papers) or 'biharmonic' (a smooth fill that the network then corrects; see
            :func:`npgan.models.inpainting.complete`).
        fill: per-channel pre-fill of the hole (the training mean pixel), in [-1, 1].
        steps: completion-network updates (Context Encoder) / DCGAN updates (latent).
        phases: GLCIC's (T_C, T_D, T_joint): completion-only, discriminator-only and joint steps.
        batch_size, lr_g, lr_d, optimizer ('adam' or 'adadelta'; Adam uses betas (0.5, 0.999)).
        adv_weight: weight of the adversarial term (reconstruction weight 1 - adv_weight for the
            Context Encoder, 1 for GLCIC); 0 for context-encoder-l2.
        width: base channel count of the networks; patch: GLCIC local-discriminator window.
        z_dim, latent_steps, latent_lr, latent_lambda: latent optimisation.
        gan_checkpoint: a ``python -m npgan.train`` checkpoint used instead of training a DCGAN.
        content: Yang et al.: the yang-content run whose network gives the content prediction.
        features, texture_weight, tv_weight, scales, nn_updates, lbfgs_steps: Yang et al.'s texture
            optimisation (:mod:`npgan.gan.inpainting.yang`): the feature network (default
            :func:`default_features`: ``'encoder'`` on the grey object images, ``'random'`` on
            the others), alpha, beta, pyramid levels, patch matchings per level and L-BFGS-B
            iterations after each.
        seed: seeds weights, batches and masks (and the random feature network).
    """
    method: str
    dataset: str
    mask: str = "centre"
    channels: int = 1
    size: int = 28
    hole: int = 14
    prefill: str = "mean"
    fill: tuple = (0.0,)
    steps: int = 1500
    phases: tuple = (800, 100, 500)
    batch_size: int = 64
    lr_g: float = 1e-3
    lr_d: float = 1e-4
    optimizer: str = "adam"
    adv_weight: float = 0.001
    width: int = 32
    patch: int = 16
    z_dim: int = 100
    latent_steps: int = 300
    latent_lr: float = 0.03
    latent_lambda: float = LAMBDA
    gan_checkpoint: str = None
    content: str = None
    features: str = "random"
    texture_weight: float = yang.TEXTURE_WEIGHT
    tv_weight: float = yang.TV_WEIGHT
    scales: int = yang.SCALES
    nn_updates: int = yang.NN_UPDATES
    lbfgs_steps: int = yang.LBFGS_STEPS
    seed: int = 0

    @property
    def label(self):
        """The method's name in tables and pictures, with the settings of ``LABEL_PARTS`` that differ
        from its defaults (so the runs of a sweep over them get labels of their own), e.g.
        'GLCIC, biharmonic prefill, phases 1400/0/0'. Learning rates and batch size are not named."""
        defaults = default_config(self.method, self.dataset)
        trains_gan = self.method != "latent" or self.gan_checkpoint is None     # else its DCGAN is loaded
        yang_fields = ("features", "texture_weight", "tv_weight", "scales", "nn_updates", "lbfgs_steps")
        uses = {"adv_weight": self.method in ("context-encoder", "glcic", "yang-content"),
                "phases": self.method == "glcic", "steps": self.method not in ("glcic", "yang") and trains_gan,
                "width": trains_gan, **{name: self.method == "yang" for name in yang_fields}}
        parts = [LABELS[self.method]]
        for name, text in LABEL_PARTS:
            value = getattr(self, name)
            if uses.get(name, True) and value != getattr(defaults, name):
                parts.append(text(value))
        return ", ".join(parts)

    def used_fields(self):
        """The names of the fields this run's method reads (see ``METHOD_FIELDS``), in field order."""
        used = set(COMMON_FIELDS) | set(METHOD_FIELDS.get(self.method, ()))
        if self.method == "latent" and self.gan_checkpoint:
            used -= set(LOADED_DCGAN_UNUSED)
        if self.method == "yang":
            used -= set(YANG_UNUSED)
        return [f.name for f in fields(self) if f.name in used]

    def to_json(self):
        """The fields the method uses, as JSON (what config.json and the checkpoint hold)."""
        return json.dumps({name: getattr(self, name) for name in self.used_fields()}, indent=2)

    @classmethod
    def from_dict(cls, d):
        """A Config from :meth:`to_json`'s keys, the others taking the method's defaults; older
        runs that stored every field (and unknown keys, which are ignored) load too."""
        known = {f.name for f in fields(cls)}
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        if d.get("method") in METHODS and "dataset" in d:
            d = dict(asdict(default_config(d["method"], d["dataset"])), **d)
        return cls(**d)


def default_config(method, dataset, **overrides):
    """The defaults for one method (each trains in a few minutes on a 2-core CPU).

    ``overrides`` with value None are ignored, so argparse results can be passed as they are.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    base = dict(METHOD_DEFAULTS[method])
    if method == "yang":
        base["features"] = default_features(dataset)
    base.update({k: v for k, v in overrides.items() if v is not None})
    if base.get("prefill", "mean") not in PREFILLS:
        raise ValueError(f"unknown prefill {base['prefill']!r}; choose one of {PREFILLS}")
    if base.get("features", "random") not in FEATURES:
        raise ValueError(f"unknown feature network {base['features']!r}; choose one of {FEATURES}")
    return Config(method=method, dataset=dataset, **base)


# ---- networks -------------------------------------------------------------------------------
def content_network(cfg):
    """Yang et al.'s content network: a Context Encoder with a Linear bottleneck and ELU encoder."""
    return ContextEncoder(cfg.channels, cfg.size, cfg.width, bottleneck="linear", activation="elu")


def build_models(cfg):
    """Fresh networks for a config: {'net', 'D'} (D absent for context-encoder-l2), {'G', 'D'}
    (latent) or {'net', 'F'} (yang: the content network and the texture term's feature network)."""
    c, s, w = cfg.channels, cfg.size, cfg.width
    if cfg.method in CONTEXT_ENCODERS:
        models = {"net": content_network(cfg) if cfg.method == "yang-content" else ContextEncoder(c, s, w)}
        if cfg.method != "context-encoder-l2":
            models["D"] = PatchDiscriminator(c, s, w)
        return models
    if cfg.method == "yang":
        return {"net": content_network(cfg), "F": feature_network(cfg.features, c, w, cfg.seed)}
    if cfg.method == "glcic":
        return {"net": CompletionNetwork(c, s, w), "D": GlobalLocalDiscriminator(c, s, cfg.patch, w)}
    if s == 28:
        return {"G": dcgan.Generator(cfg.z_dim, c, w), "D": dcgan.Discriminator(c, w)}
    if s == 32:
        return {"G": dcgan32.Generator(cfg.z_dim, c, w), "D": dcgan32.Discriminator(c, w)}
    raise ValueError(f"latent optimisation has DCGANs for 28x28 and 32x32 images, not {s}x{s}")


def save_run(run_dir, cfg, models):
    """Write ``config.json`` and ``checkpoint.npz`` (atomically) into ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    arrays = {f"{role}.{k}": v for role, m in models.items() for k, v in m.state_dict().items()}
    arrays["meta"] = np.array(cfg.to_json())
    atomic_savez(run_dir / "checkpoint.npz", arrays)
    (run_dir / "config.json").write_text(cfg.to_json() + "\n")


def load_run(run_dir):
    """(Config, models in eval mode) from a run directory written by :func:`save_run`, or from
    a checkpoint file itself (a path ending in ``.npz``, e.g. a copy kept under another name).

    Raises:
        FileNotFoundError / ValueError with a plain message for a missing, damaged or foreign
        checkpoint.
    """
    path = Path(run_dir)
    if path.suffix != ".npz":
        path = path / "checkpoint.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run directory written by "
                                f"`python -m npgan.inpaint train`?")
    arrays, meta = read_npz(path)
    try:
        cfg = Config.from_dict(meta)
        models = build_models(cfg)
        for role, m in models.items():
            m.load_state_dict({k[len(role) + 1:]: v for k, v in arrays.items() if k.startswith(role + ".")})
            m.eval()
    except TypeError:                                       # a `python -m npgan.train` checkpoint, ...
        raise ValueError(f"{path}: not a checkpoint of `python -m npgan.inpaint train` (its metadata "
                         f"names no inpainting method)") from None
    except (KeyError, ValueError) as err:                   # weights that do not fit the config
        raise ValueError(f"{path}: the stored networks do not match its config ({err})") from None
    return cfg, models


def load_gan_checkpoint(path, channels=1):
    """G and D of a ``python -m npgan.train`` DCGAN checkpoint (28x28), their width and z size
    read from the weight shapes. Returns (G, D, z_dim, width)."""
    from ...checkpoint import load_checkpoint
    ckpt = load_checkpoint(path)
    g_state, d_state = ckpt["G"], ckpt["D"]
    if "0.weight" not in g_state or "0.weight" not in d_state:
        raise ValueError(f"{path}: expected a DCGAN checkpoint (G.0.weight, D.0.weight)")
    z_dim = g_state["0.weight"].shape[1]
    g_width = g_state["0.weight"].shape[0] // (2 * 7 * 7)
    d_width = d_state["0.weight"].shape[0]
    if g_width != d_width:
        raise ValueError(f"{path}: G has width {g_width} and D width {d_width}; latent inpainting "
                         f"runs store one width for both")
    G = dcgan.Generator(z_dim, channels, g_width)
    D = dcgan.Discriminator(channels, d_width)
    G.load_state_dict(g_state)
    D.load_state_dict(d_state)
    return G, D, z_dim, g_width


# ---- inpainters -----------------------------------------------------------------------------
def network_fill(net, cfg, images, masks, blend=False, batch_size=500):
    """Complete images with a completion network (eval mode): the hole from the network's
    prediction, optionally Poisson-blended into the known pixels. The networks are trained on
    the hole only, so their output outside it carries no information: the blend uses the
    prediction's gradients inside the hole (``guidance='hole'``)."""
    xp = backend.get_array_module(images)
    fill = xp.asarray(np.asarray(cfg.fill, np.float32))
    out = []
    for a in range(0, images.shape[0], batch_size):
        x, m = images[a:a + batch_size], masks[a:a + batch_size]
        pred = xp.clip(complete(net, x, m, cfg.prefill, fill), -1, 1)          # a corrected prefill may overshoot
        out.append(poisson_blend(pred, x, m, guidance="hole") if blend else composite(pred, x, m))
    return xp.concatenate(out)


def load_inpainters(run_dir, latent_steps=None, progress=False):
    """The ways a run can fill holes, as a list of (label, fill(images, masks)) pairs.

    Context Encoder: the network's raw fill (Pathak et al. paste the prediction in).
    GLCIC: raw fill and with Poisson blending (Iizuka et al.'s post-processing).
    Latent optimisation: G(z*) pasted in, and Poisson-blended (Yeh et al.).
    Yang et al.: the content network's fill given texture (:func:`yang.yang_fill`); the content
    network alone is its yang-content run's row.

    Returns (config, pairs).
    """
    cfg, models = load_run(run_dir)
    if cfg.method == "yang":
        net, features = models["net"], models["F"]

        def texture(images, masks):
            content = network_fill(net, cfg, images, masks)
            return yang.yang_fill(features, images, masks, content, cfg.scales, cfg.texture_weight, cfg.tv_weight,
                                  cfg.nn_updates, cfg.lbfgs_steps, progress=progress)

        return cfg, [(cfg.label, texture)]
    if cfg.method == "latent":
        G, D = models["G"], models["D"]
        steps = cfg.latent_steps if latent_steps is None else latent_steps
        kw = dict(steps=steps, lam=cfg.latent_lambda, lr=cfg.latent_lr, z_dim=cfg.z_dim, seed=cfg.seed,
                  progress=progress)
        cache = {}

        def solve(images, masks, blend):
            # both variants share one optimisation: reuse z* when called on the same arrays
            key = (id(images), id(masks))
            if key not in cache:
                cache.clear()
                cache[key] = (images, masks, latent_generate(G, D, images, masks, **kw))
            g = cache[key][2]
            return poisson_blend(g, images, masks) if blend else composite(g, images, masks)

        return cfg, [(f"{cfg.label} + Poisson blend", lambda x, m: solve(x, m, True)),
                     (cfg.label, lambda x, m: solve(x, m, False))]
    net = models["net"]
    pairs = [(cfg.label, lambda x, m: network_fill(net, cfg, x, m))]
    if cfg.method == "glcic":
        pairs.append((f"{cfg.label} + Poisson blend", lambda x, m: network_fill(net, cfg, x, m, blend=True)))
    return cfg, pairs
