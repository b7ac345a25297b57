"""A CycleGAN run between MNIST (domain A) and MNIST-M (domain B) and its directory: what
``python -m npgan.translate train`` does between parsing its arguments and printing the result.

    config.json       the run's settings ("model": "cyclegan")
    metrics.jsonl     one JSON line per log point: the means since the line before of loss_G and
                      its terms (adv_ab, adv_ba, cycle_a, cycle_b, idt_a [, idt_b]), loss_D_a,
                      loss_D_b, the learning rate and img/s (the images of one domain per second)
    samples/step_NNNNNN.png   ten fixed test images (one of each digit) of each domain through
                      both directions and both cycles, every sample_every steps (rows: A,
                      G_ab(A), G_ba(G_ab(A)), B, G_ba(B), G_ab(G_ba(B))); samples.png: the last one
    losses.png        the losses against the step
    progress.gif      the sample grids as an animation
    checkpoint.npz    the four networks, the three optimizers, both image pools, the RNG state,
                      the step and the config (every checkpoint_every steps, at the end and on
                      Ctrl-C; written atomically, never with NaN/Inf)

**Determinism.** The batches of domain A in epoch e are a permutation drawn from
``default_rng([seed, 2, e])`` (B: ``[seed, 3, e]``), the pools draw from generators whose state
is in the checkpoint, and the networks are initialised from ``seed``: on the CPU a resumed run
ends with the same weights as an uninterrupted one.
"""
from pathlib import Path

import numpy as np

from .. import backend
from ..checkpoint import load_state, save_state
from ..data import batches_per_epoch, iterate_minibatches, scale_images
from ..models.cyclegan import build_cyclegan
from ..optim import Adam
from . import run
from .cycle import (BETAS, CYCLE_B, IDENTITY, LAMBDA_CYCLE, LR, POOL_SIZE, ImagePool, SemanticConsistency,
                    fit_cyclegan)
from .loop import MetricsLog

MODEL = "cyclegan"
NETS = ("G_ab", "G_ba", "D_a", "D_b")
OPTIMIZERS = ("opt_G", "opt_D_a", "opt_D_b")
DOMAINS = {"a": "MNIST", "b": "MNIST-M"}
OUTPUT_FILES = ("config.json", "checkpoint.npz", "metrics.jsonl", "losses.png", "samples.png", "progress.gif",
                "eval.json")
OUTPUT_DIRS = ("samples",)
OUTPUTS = OUTPUT_FILES + OUTPUT_DIRS
N_FIXED = 10
def row_labels(name_b="MNIST-M"):
    """The labels of a sample grid's six rows (``cycle_rows``) with domain B named ``name_b``."""
    return ("A: MNIST", "G_ab(A)", "G_ba(G_ab(A))", f"B: {name_b}", "G_ba(B)", "G_ab(G_ba(B))")


ROW_LABELS = row_labels()


class NotACycleGANRun(ValueError):
    """A directory or checkpoint that is not a CycleGAN run's."""


# ---- building and saving ---------------------------------------------------------------------
def build_cycle_training(config, ckpt=None):
    """The networks {'G_ab', 'G_ba', 'D_a', 'D_b'}, the optimizers {'opt_G', 'opt_D_a', 'opt_D_b'}
    (Adam; opt_G over both generators) and the pools {'a', 'b'} of ``config``, initialised from
    ``config['seed']``, then loaded from ``ckpt`` (a ``load_cycle_checkpoint`` dict) when resuming."""
    backend.seed(config["seed"])
    nets = build_cyclegan(1, 3, config["width"], config["blocks"], config["d_width"])
    betas = (config["beta1"], config["beta2"])
    opts = {"opt_G": Adam(nets["G_ab"].parameters() + nets["G_ba"].parameters(), lr=config["lr"], betas=betas),
            "opt_D_a": Adam(nets["D_a"].parameters(), lr=config["lr"], betas=betas),
            "opt_D_b": Adam(nets["D_b"].parameters(), lr=config["lr"], betas=betas)}
    pools = {"a": ImagePool(config["pool_size"], [config["seed"], 4]),
             "b": ImagePool(config["pool_size"], [config["seed"], 5])}
    if ckpt:
        for name in NETS:
            nets[name].load_state_dict(ckpt[name])
        for name in OPTIMIZERS:
            opts[name].load_state_dict(ckpt[name])
        for key, pool in pools.items():
            pool.load_state_dict(ckpt["extra"][f"pool_{key}"])
        backend.set_rng_state(ckpt["rng"])
    return nets, opts, pools


def default_config(**settings):
    """A run's settings: the defaults below with ``settings`` (those given as None ignored)."""
    config = {"model": MODEL, "domains": ["mnist", "mnistm"], "steps": 3000, "batch_size": 8, "width": 16,
              "blocks": 3, "d_width": 32, "lr": LR, "beta1": BETAS[0], "beta2": BETAS[1], "lambda_cycle": LAMBDA_CYCLE,
              "identity": IDENTITY, "identity_ab": False, "cycle_b": CYCLE_B, "pool_size": POOL_SIZE, "decay_start": None,
              "seed": 0, "backend": "numpy", "semantic_weight": 0.0,
              "semantic_b": 1.0, "size": 28, "photos": "standard"}
    config.update({k: v for k, v in settings.items() if v is not None})
    if config["decay_start"] is None:
        config["decay_start"] = config["steps"] // 2
    return config


# The semantic term's classifier f learns domain A's digits with this seed; the evaluation
# classifier (npgan.metrics.get_classifier) learns all of MNIST's training split with seed 0, so
# the classifier the generators are trained to satisfy never scores them.
SEMANTIC_SEED = 1


def semantic_term(config, data, ckpt=None, verbose=True):
    """The run's ``SemanticConsistency`` (None when ``config['semantic_weight']`` is 0): its
    classifier f from ``ckpt`` when resuming, else trained on domain A's digits
    (``data.train_a``, ``data.train_a_labels``) with ``SEMANTIC_SEED``."""
    from ..metrics import train_classifier
    from ..models.classifier import Classifier
    if not config.get("semantic_weight"):
        return None
    if ckpt is not None and "semantic_classifier" in (ckpt.get("extra") or {}):
        state = backend.get_rng_state()                 # building f draws weights: keep the run's generator as it was
        f = Classifier()
        backend.set_rng_state(state)
        f.load_state_dict(ckpt["extra"]["semantic_classifier"])
    else:
        if verbose:
            print(f"training the semantic term's classifier on domain A's {len(data.train_a):,} digits "
                  f"(seed {SEMANTIC_SEED}; not the evaluation classifier)", flush=True)
        f = train_classifier(data.train_a[:, 0], data.train_a_labels, seed=SEMANTIC_SEED, verbose=False)
    return SemanticConsistency(f, config["semantic_weight"], config.get("semantic_b", 1.0))


def save_cycle_checkpoint(path, nets, opts, pools, step, config, semantic=None):
    """checkpoint.npz, atomically (``npgan.checkpoint.save_state``), with the semantic term's
    classifier when there is one."""
    extra = {f"pool_{key}": pool.state_dict() for key, pool in pools.items()}
    if semantic is not None:
        extra["semantic_classifier"] = dict(semantic.f.state_dict())
    save_state(path, models=nets, optimizers=opts, step=step, config=config, rng_state=backend.get_rng_state(),
               extra=extra)


def load_cycle_checkpoint(path):
    """A CycleGAN checkpoint as a dict (see ``npgan.checkpoint.load_state``).

    Raises:
        NotACycleGANRun: another run's checkpoint (a ``python -m npgan.train`` GAN, an inpainting run).
        ValueError: a damaged or foreign file.
    """
    try:
        ckpt = load_state(path, NETS, OPTIMIZERS)
    except ValueError as err:
        if "not a checkpoint of this kind" in str(err):
            raise NotACycleGANRun(f"{path}: not a CycleGAN run (its checkpoint holds no CycleGAN networks; "
                                  f"train one with `python -m npgan.translate train`)") from None
        raise
    if not isinstance(ckpt["config"], dict) or ckpt["config"].get("model") != MODEL:
        raise NotACycleGANRun(f"{path}: not a CycleGAN run (its config names model "
                              f"{ckpt['config'].get('model') if isinstance(ckpt['config'], dict) else None!r})")
    return ckpt


def load_cycle_run(run):
    """(nets in eval mode, config, step) of a run directory (or its checkpoint.npz).

    Raises:
        FileNotFoundError: no checkpoint; NotACycleGANRun / ValueError as ``load_cycle_checkpoint``.
    """
    path = Path(run)
    path = path if path.suffix == ".npz" else path / "checkpoint.npz"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint.npz in {run}: is it a run directory written by "
                                f"`python -m npgan.translate train`?")
    ckpt = load_cycle_checkpoint(path)
    config = ckpt["config"]
    nets = build_cyclegan(1, 3, config["width"], config["blocks"], config["d_width"])
    try:
        for name in NETS:
            nets[name].load_state_dict(ckpt[name])
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: the stored networks do not match its config ({err})") from None
    return {k: m.eval() for k, m in nets.items()}, config, ckpt["step"]


# ---- training --------------------------------------------------------------------------------
def domain_batches(images, batch_size, seed, stream, start_step=0, labels=None):
    """Endless minibatches (uint8) of one domain from the batch of step ``start_step + 1`` on;
    epoch e shuffled by ``default_rng([seed, stream, e])``; (images, labels) pairs when
    ``labels`` are given (the same images in the same order)."""
    epoch, skip = divmod(start_step, batches_per_epoch(len(images), batch_size))
    while True:
        shuffle = np.random.default_rng([seed, stream, epoch])
        for i, batch in enumerate(iterate_minibatches(images, batch_size, shuffle, labels=labels)):
            if i >= skip:
                yield batch
        epoch, skip = epoch + 1, 0


def fixed_test_images(data, n=N_FIXED, labels=None):
    """The indices of ``n`` test images of domain B (or of the images whose digits are ``labels``,
    e.g. ``data.labels_a``): the first of each digit 0, 1, ... (then the next ones)."""
    labels = data.test_labels if labels is None else labels
    first = [int(np.flatnonzero(labels == k)[0]) for k in range(10) if (labels == k).any()]
    rest = np.setdiff1d(np.arange(min(len(labels), n + len(first))), first)      # enough to fill n
    return np.concatenate([first, rest]).astype(np.int64)[:n]


def train_cycle_run(config, data, nets, opts, pools, start_step, progress=True, semantic=None):
    """Train from ``start_step`` to ``config['steps']``, writing the run directory ``config['out']``
    as the module docstring says, with the semantic-consistency term when ``semantic`` (from
    ``semantic_term``) is given. Returns the last completed step (smaller after Ctrl-C);
    raises NonFiniteError."""
    out, steps, batch_size, seed = Path(config["out"]), config["steps"], config["batch_size"], config["seed"]
    a_batches = domain_batches(data.train_a, batch_size, seed, 2, start_step,
                               labels=data.train_a_labels if semantic is not None else None)
    b_batches = domain_batches(data.train_b, batch_size, seed, 3, start_step)
    fixed_a = backend.to_device(scale_images(data.test_a[fixed_test_images(data, labels=data.labels_a)]))
    fixed_b = backend.to_device(scale_images(data.test_b[fixed_test_images(data)]))
    log = MetricsLog(out / "metrics.jsonl", start_step, batch_size)

    def save(step):
        save_cycle_checkpoint(out / "checkpoint.npz", nets, opts, pools, step, config, semantic)
        if step % config["checkpoint_every"] == 0 or step == steps:                 # not a Ctrl-C's save
            run.drop_replaced(out)

    def samples(step):
        save_translation_grid(nets, fixed_a, fixed_b, out / "samples" / f"step_{step:06d}.png", data.name_b)

    def next_a():
        if semantic is None:
            return backend.to_device(scale_images(next(a_batches)))
        images, labels = next(a_batches)
        return backend.to_device(scale_images(images)), backend.to_device(labels)

    if start_step == 0:
        samples(0)
        save_cycle_checkpoint(out / "checkpoint.npz", nets, opts, pools, 0, config, semantic)   # a state to resume
    return fit_cyclegan(
        nets, opts["opt_G"], opts["opt_D_a"], opts["opt_D_b"],
        next_a,                                                                      # (B, 1, 28, 28) in [-1, 1]
        lambda: backend.to_device(scale_images(next(b_batches))),                   # (B, 3, 28, 28)
        steps, log, pools=pools, start_step=start_step, lambda_cycle=config["lambda_cycle"],
        identity=config["identity"], identity_ab=config.get("identity_ab", False),
        cycle_b=config.get("cycle_b", 1.0), lr=config["lr"], decay_start=config["decay_start"], semantic=semantic,
        log_every=config["log_every"], every=[(config["sample_every"], samples)], save=save,
        save_every=config["checkpoint_every"], progress=progress, print_every=10, desc="CycleGAN")


# ---- translating -----------------------------------------------------------------------------
def translate(G, images, batch_size=250):
    """``G`` (eval mode) on images (N, C, H, W) in [-1, 1], host or device, in batches:
    host float32 (N, C', H, W). G's training mode is restored afterwards."""
    was_training = G.training
    G.eval()
    out = [backend.asnumpy(G.forward(backend.to_device(images[i:i + batch_size], "float32")))
           for i in range(0, len(images), batch_size)]
    G.train(was_training)
    return np.concatenate(out).astype(np.float32, copy=False)


def cycle_rows(nets, xa, xb):
    """The six rows of a sample grid (host float32 in [-1, 1]): A, G_ab(A), G_ba(G_ab(A)), B,
    G_ba(B), G_ab(G_ba(B))."""
    fake_b = translate(nets["G_ab"], xa)
    fake_a = translate(nets["G_ba"], xb)
    return [backend.asnumpy(xa), fake_b, translate(nets["G_ba"], fake_b),
            backend.asnumpy(xb), fake_a, translate(nets["G_ab"], fake_a)]


# ---- pictures --------------------------------------------------------------------------------
def to_rgb_uint8(images):
    """(N, 1 or 3, H, W) floats in [-1, 1] -> uint8 (N, H, W, 3) (grey repeated)."""
    from ..viz import to_uint8
    pixels = to_uint8(images)
    if pixels.shape[1] == 1:
        pixels = np.repeat(pixels, 3, axis=1)
    return pixels.transpose(0, 2, 3, 1)


def image_table(rows, labels=None, padding=2, scale=1, label_width=0):
    """Rows of images (each (N, C, H, W) in [-1, 1], C 1 or 3) as one RGB picture, uint8
    (rows * (H + padding) + padding, N * (W + padding) + padding [+ label_width], 3), with
    ``labels`` written left of the rows when given (then ``label_width`` pixels wide, before scaling)."""
    rows = [to_rgb_uint8(np.asarray(r)) for r in rows]
    n, h, w, _ = rows[0].shape
    left = label_width if labels else 0
    grid = np.zeros((len(rows) * (h + padding) + padding, left + n * (w + padding) + padding, 3), np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, x = padding + r * (h + padding), left + padding + c * (w + padding)
            grid[top:top + h, x:x + w] = image
    from PIL import Image, ImageDraw
    picture = Image.fromarray(grid)
    if scale != 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    if labels:
        draw = ImageDraw.Draw(picture)
        for r, text in enumerate(labels):
            draw.text((4, (padding + r * (h + padding) + h // 2) * scale - 6), text, fill=(255, 255, 255))
    return np.asarray(picture)


def save_picture(pixels, path):
    from PIL import Image
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def save_translation_grid(nets, xa, xb, path, name_b="MNIST-M"):
    """The six-row sample grid of ``cycle_rows`` as a PNG, its rows labelled; returns its pixels."""
    labels = row_labels(name_b)
    pixels = image_table(cycle_rows(nets, xa, xb), labels, label_width=6 * max(map(len, labels)) + 6)
    save_picture(pixels, path)
    return pixels


def plot_cycle_history(history, path, title=None):
    """Adversarial and discriminator losses (top) and the cycle and identity L1 terms (bottom)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..viz import legend_outside, save_figure
    steps = [r["step"] for r in history]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for key, label in (("adv_ab", "G_ab adversarial (MSE)"), ("adv_ba", "G_ba adversarial (MSE)"),
                       ("loss_D_a", "D_a loss"), ("loss_D_b", "D_b loss")):
        top.plot(steps, [r[key] for r in history], label=label)
    top.set_ylabel("LSGAN loss")
    for key, label in (("cycle_a", "cycle A->B->A (L1)"), ("cycle_b", "cycle B->A->B (L1)"),
                       ("idt_a", "identity G_ba (L1)"), ("idt_b", "identity G_ab (L1)")):
        if all(key in r for r in history):                                  # idt_b: only with identity_ab
            bottom.plot(steps, [r[key] for r in history], label=label)
    bottom.set_ylabel("mean |difference|, images in [-1, 1]")
    bottom.set_xlabel("step")
    for ax in (top, bottom):
        legend_outside(ax)
        ax.grid(alpha=0.3)
    save_figure(fig, path, title)


def write_final_outputs(out, history, title):
    """samples.png (the last grid, twice the size), losses.png (the CycleGAN's losses) and
    progress.gif, in colour."""
    run.write_final_outputs(out, history, title, plot=plot_cycle_history, mode="RGB")
