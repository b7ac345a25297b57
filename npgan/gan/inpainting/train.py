"""Training loops: Context Encoder, GLCIC's three phases, and the DCGAN behind latent inpainting;
and the making of a Yang et al. run from a trained content network (it trains nothing itself).

One step of the completion methods, top to bottom::

    x, m   = batch of images and hole masks (host -> device)
    pred   = net([x with hole pre-filled, m])  (+ the pre-fill)  # the whole predicted image
    fake   = composite(pred, x, m)                             # known pixels kept
    D step:  BCE(D(x), 1) + BCE(D(fake), 0)          (joint phase / GLCIC phase 2)
    C step:  w_rec * masked_mse(pred, x, m) + w_adv * BCE(D(fake), 1)  -> d pred -> net.backward

Context Encoder (Pathak et al.): w_rec = 0.999, w_adv = 0.001, D and C trained together from
the start (``context-encoder-l2``: w_adv = 0, no D); Yang et al.'s content network
(``yang-content``) is trained the same way. GLCIC (Iizuka et al.): phase C trains the
completion network on the reconstruction loss alone for T_C steps, phase D the global+local
discriminator alone for T_D steps, then both jointly with w_rec = 1, w_adv = 0.0004.
"""
import csv
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from ... import backend, health
from ...data import scale_images
from ...functional import composite
from ...inpainting_ops.masks import make_masks
from ...inpainting_viz import plot_losses, save_panel, show_masked
from ...losses import masked_mse_backward, masked_mse_forward
from ...models.inpainting import ClassifierFeatures, EncoderFeatures, RandomFeatures, complete, discriminate
from ...optim import Adadelta, Adam
from ..loop import MetricsLog, fit_gan, train_loop
from ..objectives import NonSaturating
from ..sampling import fixed_noise
from ..step import discriminator_step, generator_loss, require_finite, sigmoid_mean
from .runs import CONTEXT_ENCODERS, build_models, load_gan_checkpoint, load_run, save_run

OBJECTIVE = NonSaturating()         # the papers' adversarial loss: BCE on D's logits


# ---- the losses, forward and backward -------------------------------------------------------
def completion_loss(pred, x, mask, D=None, rec_weight=1.0, adv_weight=0.0, backward=True):
    """The completion network's objective on one batch and its gradient with respect to ``pred``.

        L = rec_weight * sum m (pred - x)^2 / sum m  +  adv_weight * BCE(D(composite), 1)

    Args:
        pred: (N, C, H, W) the network's output; x: ground truth; mask: (N, 1, H, W), 1 = hole.
        D: discriminator (Sequential or GlobalLocalDiscriminator); None or adv_weight 0 drops
            the adversarial term. D is frozen: its parameter gradients are not computed.
    Returns:
        (loss 0-d, {'rec': 0-d, 'adv': 0-d or None}, dpred (N, C, H, W) or None)
    """
    rec, rec_cache = masked_mse_forward(pred, x, mask)
    loss, adv = rec_weight * rec, None
    dpred = masked_mse_backward(rec_weight, rec_cache) if backward else None
    if D is not None and adv_weight > 0:
        fake = composite(pred, x, mask)
        if backward:
            adv, dfake = generator_loss(D, OBJECTIVE, fake, critic(D, mask), weight=adv_weight)
            dpred = dpred + dfake * mask                                          # d composite / d pred = m
        else:
            adv = OBJECTIVE.generator(discriminate(D, fake, mask))[0]
        loss = loss + adv_weight * adv
    return loss, {"rec": rec, "adv": adv}, dpred


def critic(D, mask):
    """D as the GAN step calls it: images -> logits (a global+local D also reads the mask)."""
    return lambda images: discriminate(D, images, mask)


def make_optimizer(name, params, lr):
    """Adam (betas 0.5, 0.999, as DCGAN) or Adadelta (Iizuka et al.'s choice; lr 1.0 is its default)."""
    if name == "adam":
        return Adam(params, lr=lr, betas=(0.5, 0.999))
    if name == "adadelta":
        return Adadelta(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}: 'adam' or 'adadelta'")


# ---- batches --------------------------------------------------------------------------------
def sample_batch(images, cfg, rng):
    """Random images (with replacement) and masks of the run's kind, on the device.

    Returns x (B, C, H, W) float32 in [-1, 1] and m (B, 1, H, W)."""
    idx = rng.integers(0, len(images), cfg.batch_size)
    x = backend.to_device(scale_images(images[idx]))
    m = backend.to_device(make_masks(cfg.mask, cfg.batch_size, cfg.size, rng, cfg.hole))
    return x, m


def preview_batch(images, cfg, n=10, seed=1234):
    """A fixed set of held-out images and masks for the pictures (same every run)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(images), size=min(n, len(images)), replace=False)
    x = scale_images(images[np.sort(idx)])
    m = make_masks(cfg.mask, len(x), cfg.size, rng, cfg.hole)
    return backend.to_device(x), backend.to_device(m)


# ---- the loops ------------------------------------------------------------------------------
def schedule(cfg):
    """The phase of every step: 'C' (completion only), 'D' (discriminator only) or 'joint'."""
    if cfg.method == "glcic":
        tc, td, tj = cfg.phases
        return ["C"] * tc + ["D"] * td + ["joint"] * tj
    if cfg.method in ("context-encoder", "yang-content"):
        return ["joint"] * cfg.steps
    return ["C"] * cfg.steps


def train_completion(cfg, data, progress=True, log_every=25):
    """Train a Context Encoder (with or without D), Yang et al.'s content network or a GLCIC.

    Returns (history, (done, n)): the log records and how many of the n steps ran (fewer after
    a Ctrl-C), then the config and the networks (eval mode)."""
    backend.seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    models = build_models(cfg)
    net, D = models["net"], models.get("D")
    opt_G = make_optimizer(cfg.optimizer, net.parameters(), cfg.lr_g)
    opt_D = make_optimizer(cfg.optimizer, D.parameters(), cfg.lr_d) if D is not None else None
    fill = backend.to_device(np.asarray(cfg.fill, np.float32))
    rec_weight = 1 - cfg.adv_weight if cfg.method in CONTEXT_ENCODERS else 1.0
    phases = schedule(cfg)
    log = MetricsLog()

    def one_step(step, check):
        phase = phases[step - 1]
        x, m = sample_batch(data.train, cfg, rng)
        pred = complete(net, x, m, cfg.prefill, fill)                           # (B, C, H, W)
        stats = {}
        if phase in ("D", "joint"):
            loss_D, real_logits, fake_logits = discriminator_step(D, opt_D, OBJECTIVE, x, composite(pred, x, m),
                                                                  critic(D, m), check)
            stats.update(loss_D=loss_D, D_x=sigmoid_mean(real_logits), D_G_z=sigmoid_mean(fake_logits))
        if phase in ("C", "joint"):
            adv_weight = cfg.adv_weight if phase == "joint" else 0.0
            loss, parts, dpred = completion_loss(pred, x, m, D, rec_weight, adv_weight)
            net.zero_grad()
            net.backward(dpred)
            if check:
                require_finite("net", loss, net)
            opt_G.step()
            stats.update(rec=parts["rec"], adv=parts["adv"])
        return stats

    def add_phase(record):
        record["phase"] = phases[record["step"] - 1]

    done = train_loop(one_step, len(phases), log, log_every=log_every, on_log=add_phase, describe=_describe,
                      progress=progress, print_every=10, desc=f"{cfg.method} on {cfg.dataset}")
    net.eval()
    if D is not None:
        D.eval()
    return log.history, (done, len(phases)), cfg, models


def train_dcgan(cfg, data, progress=True, log_every=25):
    """Train the DCGAN that latent-optimisation inpainting searches (or load ``cfg.gan_checkpoint``):
    ``npgan.gan``'s recipe (non-saturating loss, Adam) on random training images.

    Returns (history, (done, n)) as :func:`train_completion`, the config (z size and width read
    from a loaded checkpoint) and the networks {'G', 'D'} (eval mode).
    """
    backend.seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.gan_checkpoint:                                  # its shapes, not the defaults, fix z_dim and width
        G, D, z_dim, width = load_gan_checkpoint(cfg.gan_checkpoint, cfg.channels)
        cfg = dataclasses.replace(cfg, z_dim=z_dim, width=width)
        models = {"G": G, "D": D}
        steps = 0
    else:
        models = build_models(cfg)
        steps = cfg.steps
    G, D = models["G"], models["D"]
    opt_G = make_optimizer("adam", G.parameters(), cfg.lr_g)
    opt_D = make_optimizer("adam", D.parameters(), cfg.lr_d)

    def next_real():
        return backend.to_device(scale_images(data.train[rng.integers(0, len(data.train), cfg.batch_size)]))

    log = MetricsLog()
    done = fit_gan(G, D, opt_G, opt_D, OBJECTIVE, next_real, steps, log, z_dim=cfg.z_dim, batch_size=cfg.batch_size,
                   z_fixed=backend.to_device(fixed_noise(100, cfg.z_dim, [cfg.seed, 1])),
                   real_spread=health.spread(scale_images(data.train[:1000])), log_every=log_every,
                   progress=progress, print_every=10, desc=f"DCGAN on {cfg.dataset}")
    for record in log.history:
        record["phase"] = "joint"
    G.eval(), D.eval()
    return log.history, (done, steps), cfg, models


def prepare_yang(cfg, data=None, progress=True):
    """A Yang et al. run: the content network of the yang-content run ``cfg.content`` and the
    feature network of ``cfg.features``, nothing trained:

    - ``'random'`` (the default; any data set): :func:`~npgan.models.inpainting.RandomFeatures`
      seeded with ``cfg.seed``;
    - ``'encoder'``: the content network's first layer (:func:`~npgan.models.inpainting.EncoderFeatures`);
    - ``'classifier'``: the first layer of the evaluation classifier of MNIST or Fashion-MNIST
      (:func:`npgan.metrics.get_classifier`, trained and cached on first use).

    The content run fixes the image and network settings (size, channels, width, pre-fill,
    hole); ``data`` is unused (the signature of the training loops). Returns (history [],
    (0, 0), config, {'net', 'F'}), as the loops do.

    Raises:
        ValueError when ``cfg.content`` is not a yang-content run on ``cfg.dataset`` (and
        FileNotFoundError when it is missing).
    """
    content_cfg, content_models = load_run(cfg.content)
    if content_cfg.method != "yang-content":
        raise ValueError(f"--content {cfg.content} holds a {content_cfg.method} run; the yang method needs a "
                         f"yang-content run (train one with --method yang-content)")
    if content_cfg.dataset != cfg.dataset:
        raise ValueError(f"--content {cfg.content} was trained on {content_cfg.dataset}, not {cfg.dataset}")
    inherited = ("mask", "channels", "size", "hole", "prefill", "fill", "width")
    cfg = dataclasses.replace(cfg, **{name: getattr(content_cfg, name) for name in inherited})
    net = content_models["net"]
    if cfg.features == "random":
        features = RandomFeatures(cfg.channels, seed=cfg.seed)
    elif cfg.features == "encoder":
        features = EncoderFeatures(net, cfg.channels)
    else:
        features = ClassifierFeatures(evaluation_classifier(cfg.dataset))
    return [], (0, 0), cfg, {"net": net, "F": features.eval()}


def content_train_time(content_run):
    """The content run's train_time.json ({'seconds', 'steps', 'backend'}; seconds None if absent)."""
    path = Path(content_run) / "train_time.json"
    return json.loads(path.read_text()) if path.is_file() else {"seconds": None, "steps": 0}


CLASSIFIER_DATASETS = ("mnist", "fashion-mnist")      # the data sets npgan.metrics has a classifier of


def evaluation_classifier(dataset):
    """The cached digit / garment classifier of :mod:`npgan.metrics` (grey 28x28 data sets only)."""
    from ...data import load_dataset
    from ...metrics import get_classifier
    if dataset not in CLASSIFIER_DATASETS:
        raise ValueError(f"the classifier features exist for mnist and fashion-mnist, not {dataset}; "
                         f"use --features random or encoder")
    return get_classifier(load_dataset(dataset, verbose=False))[0]


def trained_config(cfg, done):
    """The config of what a run holds after ``done`` steps (fewer than planned when a Ctrl-C
    stopped it), so its label and config.json name the steps it trained, not the planned ones."""
    if cfg.method == "glcic":
        phases, left = [], done
        for planned in cfg.phases:
            phases.append(min(planned, left))
            left -= phases[-1]
        return dataclasses.replace(cfg, phases=tuple(phases))
    if cfg.method == "latent" and cfg.gan_checkpoint or cfg.method == "yang":     # nothing was trained
        return cfg
    return dataclasses.replace(cfg, steps=done)


def _describe(record):
    parts = [f"{k} {v:.4f}" for k, v in record.items() if k != "step" and isinstance(v, float)]
    return f"[{record['phase']}] " + ", ".join(parts)


# what eval and an earlier training left in a run directory that a new training invalidates
STALE_OUTPUTS = ("losses.png", "metrics.json", "metrics.md", "eval_panel.png", "eval_examples.npz")


def train(cfg, data, run_dir, progress=True):
    """Train ``cfg.method`` on ``data``; write checkpoint, config, losses and the sample panel.

    Losses are checked at every log point (every 25 steps); a NaN or Inf raises
    :class:`~npgan.errors.NonFiniteError` before anything is written, so an earlier run in
    ``run_dir`` is left as it was. A Ctrl-C stops training: the networks trained so far are
    saved as a complete run directory, then KeyboardInterrupt is raised again.
    Returns the loss history."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    loop = {"latent": train_dcgan, "yang": prepare_yang}.get(cfg.method, train_completion)
    history, (done, steps), cfg, models = loop(cfg, data, progress)
    seconds = time.time() - start
    cfg = trained_config(cfg, done)
    save_run(run_dir, cfg, models)
    for name in STALE_OUTPUTS:                  # a replaced run's eval and plots describe the old networks
        (run_dir / name).unlink(missing_ok=True)
    timing = {"seconds": round(seconds, 1), "steps": done, "backend": backend.name()}
    if cfg.method == "yang":                    # its training is the content network's: eval's train (s)
        timing = {**content_train_time(cfg.content), "content": str(cfg.content)}
    (run_dir / "train_time.json").write_text(json.dumps(timing) + "\n")
    write_history(history, run_dir / "losses.csv")
    if history:
        plot_losses(history, run_dir / "losses.png", title=f"{cfg.label} on {cfg.dataset} ({cfg.mask} holes)")
    write_samples(run_dir, data)
    what = "made" if cfg.method == "yang" else "trained"                        # yang trains nothing
    if done < steps:
        what = f"interrupted after {done} of {steps} steps: saved"
    written = [f for f in ("checkpoint.npz", "config.json", "train_time.json", "losses.csv", "losses.png",
                           "samples.png") if (run_dir / f).exists()]
    took = (f"from the content network of {cfg.content}" if cfg.method == "yang"
            else f"in {seconds / 60:.1f} min ({seconds:.0f} s)")
    print(f"{what} {cfg.label} on {cfg.dataset} {took}; wrote {run_dir}/ ({', '.join(written)})")
    if done < steps:
        raise KeyboardInterrupt
    return history


def write_history(history, path):
    keys = ["step", "phase", "rec", "adv", "loss_D", "loss_G", "D_x", "D_G_z"]
    keys = [k for k in keys if any(k in r for r in history)]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(history)


def write_samples(run_dir, data, n=10):
    """``samples.png``: masked | completion(s) | ground truth on fixed held-out images."""
    from .runs import load_inpainters
    cfg, inpainters = load_inpainters(run_dir, latent_steps=None)
    x, m = preview_batch(data.test, cfg, n)
    fills = [backend.asnumpy(fn(x, m)) for _, fn in inpainters]
    columns = [backend.asnumpy(show_masked(x, m))] + fills + [backend.asnumpy(x)]
    labels = ["masked"] + [label for label, _ in inpainters] + ["ground truth"]
    save_panel(columns, labels, Path(run_dir) / "samples.png")
