"""A GAN training run and its directory: what ``python -m npgan.train`` does between parsing
its arguments and printing the result.

    config.json       the run's settings
    metrics.jsonl     one JSON line per log point: the means of losses, D(x), D(G(z)) since the
                      line before, img/s, and the names of any training-health findings
    samples/step_NNNNNN.png   the same 100 noise vectors through G (eval mode) every
                      sample_every steps; samples.png: the final grid
    losses.png        losses, D(x) and D(G(z)) against the step
    progress.gif      the sample grids as an animation
    checkpoint.npz    G, D, both optimizer states, the RNG state, the step and the config
                      (every checkpoint_every steps, at the end and on Ctrl-C; never with NaN/Inf)
    tensorboard/      optionally: the scalars, the sample grids and the final scores

**Determinism.** Every random draw comes from a generator whose state is saved or that is a
function of the seed and the step: the real batches of epoch e are a permutation drawn from
``default_rng([seed, 2, e])``, the fixed sample noise from ``default_rng([seed, 1])``, and the
training noise from npgan's backend generator, whose state is in the checkpoint. On the CPU a
run stopped at any point (even by SIGKILL) and resumed ends with weights identical bit for bit
to an uninterrupted run.
"""
import json
import shutil
from pathlib import Path

import numpy as np

from .. import backend, health
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import batches_per_epoch, class_names, iterate_minibatches, scale_images
from ..models import build_models
from ..models.conditional import with_labels
from ..optim import Adam, RMSprop
from .loop import MetricsLog, fit_gan
from .objectives import OBJECTIVES, get_objective
from .parallel import rank_slice
from .sampling import fixed_noise
from .step import FeatureMatching
from .view import DiffAugment, DView, InstanceNoise

N_FIXED = 100                     # images in each sample grid (10 x 10)
OUTPUT_FILES = ("config.json", "checkpoint.npz", "metrics.jsonl", "metrics.json", "losses.png", "samples.png",
                "progress.gif")
OUTPUT_DIRS = ("samples", "tensorboard")
OUTPUTS = OUTPUT_FILES + OUTPUT_DIRS
REPLACED_DIR = ".replaced-run"    # an overwritten run, until the new run's first scheduled checkpoint
LOGGED = ("loss_D", "loss_G", "D_x", "D_G_z", "img_per_s")
OVERFIT_LOGGED = ("r_t", "D_train", "D_heldout", "augment_p")     # the overfitting signal, where present


def real_batches(images, batch_size, seed, start_step=0, labels=None):
    """Endless real minibatches (uint8), starting with the batch of step ``start_step + 1``;
    ``(images, labels)`` pairs when ``labels`` is given (a conditional GAN; the same images).

    Epoch e is shuffled by ``default_rng([seed, 2, e])``, so the batch of every step depends
    only on the seed and the step number: a resumed run sees the same data.
    """
    epoch, skip = divmod(start_step, batches_per_epoch(len(images), batch_size))
    while True:
        shuffle = np.random.default_rng([seed, 2, epoch])
        for i, batch in enumerate(iterate_minibatches(images, batch_size, shuffle, labels=labels)):
            if i >= skip:
                yield batch
        epoch, skip = epoch + 1, 0


def build_training(config, ckpt=None, build=build_models):
    """G, D and their optimizers for ``config`` (model, optimizer, lr, lr_d, beta1, beta2), initialised
    from ``config['seed']``, then loaded from ``ckpt`` (a ``load_checkpoint`` dict) when resuming.
    ``build(name) -> (G, D)`` makes the networks; for an objective with a gradient penalty
    (``critic_batchnorm`` False) it is called as ``build(name, critic_batchnorm=False)``, and for
    ``config['spectral_norm']`` with ``spectral_norm=True``, for ``config['minibatch_std']`` with
    ``minibatch_std=True``, for ``config['width']`` with ``width``, for a conditional GAN
    (``config['n_classes']``) with ``n_classes`` and, for ``config['conditional_batchnorm']``,
    ``conditional_batchnorm=True`` (each keyword passed only then)."""
    backend.seed(config["seed"])
    options = {"spectral_norm": True} if config.get("spectral_norm") else {}
    if config.get("minibatch_std"):
        options["minibatch_std"] = True
    if config.get("width"):
        options["width"] = config["width"]
    if config.get("n_classes"):
        options["n_classes"] = config["n_classes"]
        if config.get("conditional_batchnorm"):
            options["conditional_batchnorm"] = True
    if OBJECTIVES[config.get("loss", "ns")].critic_batchnorm:
        G, D = build(config["model"], **options)
    else:                                                                   # a gradient penalty: no BatchNorm in D
        G, D = build(config["model"], critic_batchnorm=False, **options)
    lr_d = config.get("lr_d") or config["lr"]                           # --lr-d: two time-scale update rule
    if config.get("optimizer", "adam") == "rmsprop":
        opt_G, opt_D = RMSprop(G.parameters(), lr=config["lr"]), RMSprop(D.parameters(), lr=lr_d)
    else:
        betas = (config["beta1"], config["beta2"])
        opt_G = Adam(G.parameters(), lr=config["lr"], betas=betas)
        opt_D = Adam(D.parameters(), lr=lr_d, betas=betas)
    if ckpt:
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        opt_G.load_state_dict(ckpt["opt_G"])
        opt_D.load_state_dict(ckpt["opt_D"])
        backend.set_rng_state(ckpt["rng"])
    return G, D, opt_G, opt_D


def train_run(config, dataset, G, D, opt_G, opt_D, start_step, progress=True, writer=None, ema=None, view=None,
              group=None):
    """Train from ``start_step`` to ``config['steps']`` with the run's objective (``config['loss']``),
    writing the run directory ``config['out']`` as the module docstring says. With ``ema`` (a
    ``WeightAverage`` of G, ``--ema``) the sample grids show the averaged generator and the
    checkpoint keeps it. ``view``: what D sees (``run_view(config)``; its state is checkpointed).
    At every log point D's mean output on fixed training and held-out images is logged
    (``npgan.health.DiscriminatorProbe``). Returns the last completed step (smaller than
    ``config['steps']`` after Ctrl-C); raises NonFiniteError.

    ``group``: data-parallel training over its ranks (``npgan.gan.parallel``): each rank trains its
    slice of every global batch of ``config['batch_size']``; rank 0 alone writes the directory."""
    shown = lambda: ema.model if ema is not None else G                      # read when drawn: the average's
    G_ema = lambda: ema.model if ema is not None else None                   # statistics follow its weights
    out, steps, batch_size = Path(config["out"]), config["steps"], config["batch_size"]
    n_critic, n_classes = config.get("n_critic", 1), config.get("n_classes")
    batches = real_batches(dataset.train_images, batch_size, config["seed"], start_step * n_critic,
                           labels=dataset.train_labels if n_classes else None)
    part = rank_slice(group, batch_size) if group is not None and group.size > 1 else None
    writes = group is None or group.rank == 0
    z_fixed = backend.to_device(grid_codes(config))
    log = MetricsLog(out / "metrics.jsonl" if writes else None, start_step, batch_size // (group.size if part else 1),
                     group=group)
    row_labels = class_names(config["dataset"]) if n_classes else None        # grid row k: class k
    if start_step == 0 and writes:
        save_samples(shown(), z_fixed, out, 0, writer, row_labels)
        # The initial weights are a good state: a run that diverges or is killed before its
        # first periodic checkpoint can still be resumed or inspected.
        save_run(out / "checkpoint.npz", G, D, opt_G, opt_D, 0, config, G_ema(), view)

    def to_tensorboard(record):
        if writer is not None:
            for key in LOGGED + OVERFIT_LOGGED:
                if key in record:
                    writer.add_scalar(f"train/{key}", record[key], record["step"])

    def next_real():
        rows = part or slice(None)
        if not n_classes:
            return backend.to_device(scale_images(next(batches)[rows])[:, None])  # (B, 1, 28, 28) in [-1, 1]
        images, labels = next(batches)
        return backend.to_device(scale_images(images[rows])[:, None]), backend.to_device(labels[rows])

    objective = run_objective(config)
    probe = health.DiscriminatorProbe.of_data(dataset.train_images, dataset.test_images,
                                              *((dataset.train_labels, dataset.test_labels) if n_classes else ()))
    g_loss = FeatureMatching() if config.get("feature_matching") else None          # Salimans et al.'s G loss

    def save(step):
        save_run(out / "checkpoint.npz", G, D, opt_G, opt_D, step, config, G_ema(), view)
        if step % config["checkpoint_every"] == 0 or step == steps:                 # not a Ctrl-C's save
            drop_replaced(out)

    return fit_gan(
        G, D, opt_G, opt_D, objective, next_real, steps, log, z_dim=config["z_dim"], batch_size=batch_size, z_fixed=z_fixed,
        real_spread=health.spread(scale_images(dataset.train_images[:1000])), start_step=start_step, n_critic=n_critic,
        view=view, probe=probe, n_classes=n_classes, g_loss=g_loss,
        mismatch_weight=config.get("mismatch_weight") or 0.0,
        on_log=to_tensorboard, log_every=config["log_every"],
        every=[(config["sample_every"], lambda step: save_samples(shown(), z_fixed, out, step, writer, row_labels))]
        if writes else [],
        save=save if writes else None, ema=ema, part=part, group=group,
        save_every=config["checkpoint_every"], progress=progress and writes)


def grid_codes(config):
    """G's input for the sample grids: ``N_FIXED`` codes from noise seed [seed, 1]; for a
    conditional GAN with the labels of one grid row per class (row k: class k)."""
    z = fixed_noise(N_FIXED, config["z_dim"], [config["seed"], 1])
    n_classes = config.get("n_classes")
    if not n_classes:
        return z
    return with_labels(z, np.repeat(np.arange(n_classes), N_FIXED // n_classes), n_classes)


def run_objective(config):
    """The objective of a run's ``config``: ``loss`` with its settings (wgan's ``clip``, the
    penalty weight ``gp_weight`` of wgan-gp and r1)."""
    loss = config.get("loss", "ns")
    options = {}
    if loss == "wgan":
        options["clip"] = config["clip"]
    if OBJECTIVES[loss].penalty_weight is not None and config.get("gp_weight") is not None:
        options["weight"] = config["gp_weight"]
    if config.get("label_smoothing"):
        options["real_target"] = 1 - config["label_smoothing"]
    return get_objective(loss, **options)


def save_samples(G, z_fixed, out, step, writer=None, row_labels=None):
    """The fixed-noise grid under G.eval() (BatchNorm uses its running statistics), then G's
    mode as it was; written to samples/step_NNNNNN.png and TensorBoard. ``row_labels``: a
    conditional GAN's class names, one per grid row."""
    from ..viz import save_grid
    was_training = G.training
    G.eval()
    images = backend.asnumpy(G.forward(z_fixed))[:, 0]                      # (100, 28, 28)
    G.train(was_training)
    grid = save_grid(images, Path(out) / "samples" / f"step_{step:06d}.png", nrow=10, row_labels=row_labels)
    if writer is not None:
        writer.add_image("samples", grid[None], step, dataformats="CHW")
    return images


def save_run(path, G, D, opt_G, opt_D, step, config, G_ema=None, view=None):
    """checkpoint.npz, written atomically (see ``npgan.checkpoint``), with the view's state."""
    state = view.state_dict() if view is not None else {}
    save_checkpoint(path, G=G, D=D, opt_G=opt_G, opt_D=opt_D, step=step, config=config,
                    rng_state=backend.get_rng_state(), G_ema=G_ema, extra={"view": state} if state else None)


def run_view(config, ckpt=None):
    """What D sees in a run of ``config`` (``npgan.gan.view``): DiffAugment (``augment``,
    ``augment_p``, ``augment_strength``, ``augment_fill``), then instance noise
    (``instance_noise``); None when neither is set. Its state from ``ckpt`` when resuming."""
    transforms = []
    if config.get("augment"):
        transforms.append(DiffAugment(config["augment"], p=config.get("augment_p", 1.0),
                                      strength=config.get("augment_strength") or 1.0,
                                      fill=config.get("augment_fill", -1.0), batch_size=config["batch_size"]))
    if config.get("instance_noise"):
        transforms.append(InstanceNoise(config["instance_noise"], config["steps"]))
    if not transforms:
        return None
    view = DView(transforms)
    if ckpt and ckpt.get("extra"):
        view.load_state_dict(ckpt["extra"].get("view"))
    return view


def saved_step(out):
    """The step of the checkpoint in ``out`` (a run writes one at step 0)."""
    return load_checkpoint(Path(out) / "checkpoint.npz")["step"]


def open_tensorboard(out, start_step):
    """A tensorboardX SummaryWriter in ``out/tensorboard`` (events after ``start_step`` replaced)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise SystemExit("error: --tensorboard needs tensorboardX (pip install 'npgan[tensorboard]')")
    return SummaryWriter(str(Path(out) / "tensorboard"), purge_step=start_step or None)


def start_run_dir(out, config, replace=None):
    """Make the run directory ``out`` and write ``config.json``. ``replace`` (--overwrite): the
    names of the outputs an earlier run in ``out`` wrote; they move into ``out/.replaced-run``
    and stay there until the new run's first scheduled checkpoint (``drop_replaced``), or go back
    if the new run stops before it (``restore_replaced``): an overwrite that is interrupted
    loses nothing. Raises OSError (a file in the way, no permission)."""
    out = Path(out)
    if replace and any((out / name).exists() for name in replace):
        kept = out / REPLACED_DIR
        kept.mkdir(parents=True)
        for name in replace:
            if (out / name).exists():
                (out / name).rename(kept / name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def drop_replaced(out):
    """Delete the earlier run that ``start_run_dir(replace=...)`` set aside: the new one has a
    scheduled checkpoint. Does nothing when there is none."""
    kept = Path(out) / REPLACED_DIR
    if kept.is_dir():
        shutil.rmtree(kept)


def restore_replaced(out, outputs):
    """Put back the earlier run that ``start_run_dir(replace=...)`` set aside, deleting the new
    run's ``outputs``: the new run stopped (or was killed) before its first scheduled checkpoint.
    Returns whether there was one to put back."""
    out, kept = Path(out), Path(out) / REPLACED_DIR
    if not kept.is_dir():
        return False
    for name in outputs:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in kept.iterdir():
        path.rename(out / path.name)
    kept.rmdir()
    return True


def replaced_note(out, how="was killed"):
    """What a command says after ``restore_replaced``; ``how`` the new run ended (e.g. "stopped
    at step 20"; by default it was killed, found by the next command on ``out``)."""
    return (f"--overwrite did not replace the run in {out}: the new run {how} before its first scheduled "
            f"checkpoint, so the earlier run is back in {out} as it was")


def write_final_outputs(out, history, title, plot=None, mode="L"):
    """samples.png (the last grid, twice the size), losses.png (drawn by ``plot(history, path,
    title=)``, default ``viz.plot_history``) and progress.gif (frames read as ``mode``)."""
    from PIL import Image

    from ..viz import plot_history, save_gif
    out = Path(out)
    frames = sorted((out / "samples").glob("step_*.png"))
    if frames:
        with Image.open(frames[-1]) as last:
            last.resize((last.width * 2, last.height * 2), Image.NEAREST).save(out / "samples.png")
        save_gif(frames, out / "progress.gif", mode=mode)
    if history:
        (plot or plot_history)(history, out / "losses.png", title=title)


def health_summary(history, loss="ns"):
    """One line: the health findings of the run (``npgan.health``) and the steps they were seen at."""
    seen = {}
    for record in history:
        for name in record.get("health", ()):
            seen.setdefault(name, []).append(record["step"])
    if not seen:
        wins = ("discriminator never won" if get_objective(loss).outputs_are_logits
                else f"the discriminator-wins check does not apply to {loss}'s scores")
        return f"health: no warnings ({wins}, no collapse, no dead units)"
    return "health: " + "; ".join(f"{name} at steps {steps[0]}-{steps[-1]} ({len(steps)} log points)"
                                  for name, steps in seen.items()) + " (see the warnings above and metrics.jsonl)"
