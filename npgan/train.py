"""Train a GAN on MNIST or Fashion-MNIST: ``python -m npgan.train mnist``.

    python -m npgan.train mnist                          # DCGAN, default length, runs/mnist-dcgan
    python -m npgan.train fashion-mnist --model mlp --steps 5000
    python -m npgan.train mnist --resume                 # continue runs/mnist-dcgan
    python -m npgan.evaluate runs/mnist-dcgan            # score it again
    python -m npgan.sample runs/mnist-dcgan --n 10000 --out samples.npy

Each step is one discriminator update on a real and a fake batch followed by one
generator update, both with the non-saturating GAN loss (binary cross-entropy on D's
logits) and Adam. The run directory (``--out``, default ``runs/<dataset>-<model>``) gets

    config.json       the run's settings
    metrics.jsonl     one JSON line per --log-every steps: losses, D(x), D(G(z)), img/s, and the
                      names of any training-health findings (``npgan.health``)
                      (means over the steps since the previous line)
    samples/step_NNNNNN.png   the same 100 noise vectors through G (eval mode) every
                      --sample-every steps; samples.png: the final grid
    losses.png        losses, D(x) and D(G(z)) against the step
    progress.gif      the sample grids as an animation
    checkpoint.npz    G, D, both Adam states, the RNG state, the step and the config
                      (every --checkpoint-every steps, at the end and on Ctrl-C)
    metrics.json      the final evaluation (see ``npgan.metrics``), unless --no-eval
    tensorboard/      with --tensorboard: the scalars, the sample grids and the final scores

**Run directories.** A directory that already holds a run (config.json or checkpoint.npz)
is never silently reused: pass ``--resume`` to continue it or ``--overwrite`` to delete
its outputs and start again. ``--resume`` takes the model, dataset, batch size, learning
rate, betas, seed and backend from the checkpoint (giving a different value is an error)
and may raise ``--steps`` to train longer.

**Determinism.** Every random draw comes from a generator whose state is saved or that is
a function of the seed and the step: the real batches of epoch e are a permutation drawn
from ``default_rng([seed, 2, e])``, the fixed sample noise from ``default_rng([seed, 1])``,
and the training noise from npgan's backend generator, whose state is in the checkpoint.
On the CPU a run stopped at any point (even by SIGKILL) and resumed ends with weights
identical bit for bit to an uninterrupted run.

**NaN guard.** Before each optimizer update on a *checked* step, the loss and every
gradient are tested for NaN/Inf. On NumPy every step is checked (about 1% of a step);
on CuPy only log and checkpoint steps are, because each check waits for the GPU. A
failure stops the run with the step and the first non-finite quantity in the order it was
computed (parameters entering the step, layer outputs in forward order, then parameter
gradients in the order backward produced them), e.g. ``D.2 (Conv2d) weight gradient``,
and exits with status 3. Checkpoints containing NaN or Inf are never written, so the last
good one survives.

**Training health.** At every log point ``npgan.health`` looks for a discriminator that has
won, a collapsed generator and dead ReLUs in G; each is printed once when it appears (with
what it means and what to try) and the run ends with a one-line summary.

**Exit status.** 0 done; 2 invalid arguments or data not found; 3 NaN/Inf; 130 Ctrl-C
(the first Ctrl-C finishes the current step, saves a checkpoint and stops; a second one
stops at once without saving).
"""
import argparse
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import __version__, backend, health
from .checkpoint import load_checkpoint, save_checkpoint
from .data import batches_per_epoch, canonical_name, class_names, iterate_minibatches, load_dataset, scale_images
from .losses import (bce_with_logits_backward, bce_with_logits_forward, gan_generator_loss_backward,
                     gan_generator_loss_forward)
from .optim import Adam
from .sample import MODELS, build_models, fixed_noise

DEFAULT_STEPS = 2500
EXIT_NONFINITE = 3
EXIT_INTERRUPTED = 130
N_FIXED = 100                     # images in each sample grid (10 x 10)

# Settings that define the run; --resume takes them from the checkpoint.
RUN_DEFAULTS = {"model": "dcgan", "batch_size": 64, "lr": 2e-4, "beta1": 0.5, "seed": 0, "backend": "numpy"}
BETA2 = 0.999
OUTPUT_FILES = ("config.json", "checkpoint.npz", "metrics.jsonl", "metrics.json", "losses.png", "samples.png",
                "progress.gif")
OUTPUT_DIRS = ("samples", "tensorboard")


class NonFiniteError(RuntimeError):
    """A loss or gradient is NaN or Inf; ``where`` names the first non-finite quantity."""

    def __init__(self, where, step=None):
        super().__init__(where if step is None else f"step {step}: {where}")
        self.where, self.step = where, step


# ---- command line ---------------------------------------------------------------------
def build_parser():
    p = argparse.ArgumentParser(prog="python -m npgan.train",
                                description="Train a GAN on MNIST or Fashion-MNIST with npgan.",
                                epilog="Outputs, resuming, the NaN guard and exit codes: see `pydoc npgan.train`.")
    p.add_argument("dataset", type=_dataset_name, help="mnist or fashion-mnist")
    p.add_argument("--model", choices=sorted(MODELS), default=None,
                   help=f"dcgan (DCGAN-MNIST-28) or mlp (Goodfellow et al. 2014); default {RUN_DEFAULTS['model']}")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help=f"training steps (default {DEFAULT_STEPS})")
    length.add_argument("--epochs", type=float, default=None, help="training length in passes over the data")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch (default 64)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate of G and D (default 2e-4)")
    p.add_argument("--beta1", type=float, default=None, help="Adam beta1 (default 0.5; beta2 is 0.999)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                   help="array backend (default: $NPGAN_BACKEND or numpy)")
    p.add_argument("--out", default=None, help="run directory (default runs/<dataset>-<model>)")
    p.add_argument("--data-dir", default=None, help="folder searched first for the IDX files")
    p.add_argument("--sample-every", type=int, default=250, help="steps between sample grids (default 250)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--log-every", type=int, default=50,
                   help="steps between metric lines; each one reads the device (default 50)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    start.add_argument("--overwrite", action="store_true", help="delete the outputs of a run in --out first")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs (needs tensorboardX)")
    p.add_argument("--no-progress", action="store_true", help="print log lines instead of a progress bar")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.add_argument("--eval-n", type=int, default=2000, help="generated images scored at the end (default 2000)")
    return p


def _dataset_name(text):
    try:
        return canonical_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def check_args(args, parser):
    """Reject impossible values with exit status 2 (``parser.error``)."""
    positive = {"--steps": args.steps, "--batch-size": args.batch_size, "--sample-every": args.sample_every,
                "--checkpoint-every": args.checkpoint_every, "--log-every": args.log_every}
    for flag, value in positive.items():
        if value is not None and value < 1:
            parser.error(f"{flag} must be a positive integer, got {value}")
    if args.eval_n < 2:                                        # a covariance needs two samples
        parser.error(f"--eval-n must be at least 2, got {args.eval_n}")
    if args.epochs is not None and not (args.epochs > 0 and math.isfinite(args.epochs)):
        parser.error(f"--epochs must be positive, got {args.epochs}")
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    if args.beta1 is not None and not 0 <= args.beta1 < 1:
        parser.error(f"--beta1 must be in [0, 1), got {args.beta1}")


def resolve_config(args, parser):
    """The run's configuration (a plain dict) and the checkpoint to resume from (or None).

    Refuses a directory that holds a run unless ``--resume`` or ``--overwrite`` is given
    (``main`` deletes the old outputs once every argument has been checked).
    """
    model = args.model or RUN_DEFAULTS["model"]
    out = Path(args.out or f"runs/{args.dataset}-{model}")
    ckpt_path = out / "checkpoint.npz"
    ckpt = None
    if args.resume:
        if not ckpt_path.is_file():
            parser.error(f"--resume: there is no checkpoint in {out} (nothing to resume; "
                         f"start a new run without --resume, or with --overwrite)")
        try:
            ckpt = load_checkpoint(ckpt_path)
        except ValueError as err:
            parser.error(f"--resume: {err}")
        run = _merge_resumed(args, ckpt["config"], parser)
    else:
        if any((out / name).exists() for name in ("config.json", "checkpoint.npz")):
            if not args.overwrite:
                parser.error(f"{out} already holds a run; pass --resume to continue it, --overwrite to "
                             f"delete it and start again, or --out to choose another directory")
        run = {key: getattr(args, key) if getattr(args, key) is not None else default
               for key, default in RUN_DEFAULTS.items()}
        if args.backend is None:
            run["backend"] = os.environ.get("NPGAN_BACKEND", RUN_DEFAULTS["backend"]).lower()
        run["dataset"] = args.dataset
    config = dict(run, out=str(out), data_dir=args.data_dir, beta2=BETA2, z_dim=MODELS[run["model"]].Z_DIM,
                  sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
                  log_every=args.log_every, npgan_version=__version__)
    if ckpt is not None and args.data_dir is None:
        config["data_dir"] = ckpt["config"].get("data_dir")
    return config, ckpt


def _merge_resumed(args, saved, parser):
    """The saved run settings; an explicitly given one that differs is an error."""
    run = {key: saved[key] for key in list(RUN_DEFAULTS) + ["dataset"]}
    for key in run:
        given = getattr(args, key)
        if given is not None and given != saved[key]:
            flag = key if key == "dataset" else "--" + key.replace("_", "-")
            parser.error(f"--resume: the run was trained with {flag} {saved[key]}, not {given}; "
                         f"leave it out to keep the saved value, or start a new run with --out")
    run["steps"] = saved["steps"]
    return run


def _delete_outputs(out):
    """Remove what a previous run wrote (only npgan's own files, never the whole folder)."""
    for name in OUTPUT_FILES:
        if (out / name).is_file():
            (out / name).unlink()
    for name in OUTPUT_DIRS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)


def set_length(config, args, n_train, start_step, parser):
    """Fill ``config['steps']`` from --steps / --epochs (or the default) and check it."""
    per_epoch = batches_per_epoch(n_train, config["batch_size"])
    if per_epoch == 0:
        parser.error(f"--batch-size {config['batch_size']} is larger than the {n_train:,} training images")
    if args.steps is not None:
        config["steps"] = args.steps
    elif args.epochs is not None:
        config["steps"] = max(1, round(args.epochs * per_epoch))
    elif "steps" not in config:
        config["steps"] = DEFAULT_STEPS
    if config["steps"] < start_step:
        parser.error(f"--resume: the checkpoint is at step {start_step}, past --steps {config['steps']}")
    config["epochs"] = round(config["steps"] / per_epoch, 2)


# ---- data, noise and one training step ------------------------------------------------
def real_batches(images, batch_size, seed, start_step=0):
    """Endless real minibatches (uint8), starting with the batch of step ``start_step + 1``.

    Epoch e is shuffled by ``default_rng([seed, 2, e])``, so the batch of every step depends
    only on the seed and the step number: a resumed run sees the same data.
    """
    epoch, skip = divmod(start_step, batches_per_epoch(len(images), batch_size))
    while True:
        shuffle = np.random.default_rng([seed, 2, epoch])
        for i, batch in enumerate(iterate_minibatches(images, batch_size, shuffle)):
            if i >= skip:
                yield batch
        epoch, skip = epoch + 1, 0


def sigmoid_mean(logits):
    """mean(sigmoid(x)) on the device, written with tanh so it never overflows."""
    xp = backend.get_array_module(logits)
    return (0.5 * (1 + xp.tanh(0.5 * logits))).mean()


def train_step(G, D, opt_G, opt_D, real, z, check=False):
    """One discriminator update, then one generator update (the non-saturating GAN).

    Args:
        real: (B, 1, 28, 28) real images in [-1, 1]; z: (B, z_dim) noise.
        check: test the losses and gradients for NaN/Inf before each update (a device read).
    Returns:
        device array [loss_D, loss_G, D(x), D(G(z))] (D's outputs as probabilities, before
        its update).
    """
    xp = backend.get_array_module(real)
    # Gradients nobody reads are skipped, as PyTorch skips inputs that do not require grad:
    # the noise's (G's first layer) and, in the D step, the images' (D's first layer).
    G[0].needs_input_grad = False
    fake = G.forward(z)                                                      # (B, 1, 28, 28)

    # D step: minimise BCE(D(x), 1) + BCE(D(G(z)), 0). G is not updated here, so its
    # backward is not called. Each D.forward overwrites D's cache, so the real pass is
    # backpropagated before the fake pass runs; the parameter gradients of both add up.
    opt_D.zero_grad()
    D[0].needs_input_grad = False
    real_logits = D.forward(real)                                            # (B, 1)
    loss_real, cache = bce_with_logits_forward(real_logits, 1.0)
    D.backward(bce_with_logits_backward(1.0, cache))
    fake_logits = D.forward(fake)                                            # (B, 1)
    loss_fake, cache = bce_with_logits_forward(fake_logits, 0.0)
    D.backward(bce_with_logits_backward(1.0, cache))
    loss_D = loss_real + loss_fake
    if check:
        check_finite("D", loss_D, D)
    opt_D.step()

    # G step: minimise BCE(D(G(z)), 1) through the updated D, reusing G's forward pass.
    # D.backward also adds into D's gradients; they are zeroed before D's next update.
    opt_G.zero_grad()
    D[0].needs_input_grad = True                                             # dD/dG(z) flows into G
    loss_G, cache = gan_generator_loss_forward(D.forward(fake))
    G.backward(D.backward(gan_generator_loss_backward(1.0, cache)))
    if check:
        check_finite("G", loss_G, G)
    opt_G.step()

    return xp.stack([loss_D, loss_G, sigmoid_mean(real_logits), sigmoid_mean(fake_logits)])


# ---- the NaN guard --------------------------------------------------------------------
def _finite(a):
    return bool(backend.get_array_module(a).isfinite(a).all())


def check_finite(name, loss, model):
    """Raise NonFiniteError when ``loss`` or a gradient of ``model`` is NaN or Inf."""
    if not _finite(loss) or not all(_finite(p.grad) for p in model.parameters()):
        raise NonFiniteError(f"loss_{name} or a gradient of {name} is not finite")


def _named_layers(model, prefix):
    """``("D.2 (Conv2d)", layer)`` for the model's top-level layers, in forward order."""
    return [(f"{prefix}.{key} ({type(layer).__name__})", layer) for key, layer in model.named_children()]


def locate_nonfinite(G, D, z, real):
    """The first NaN/Inf of a failed step, in the order the step computed things.

    Parameters entering the step, then each layer's output (G on z, D on real and on G(z)),
    then parameter gradients in the order backward produces them (last layer first), D's
    then G's. Replays the forward passes, so the models' caches change.
    """
    for prefix, model in (("G", G), ("D", D)):
        for label, layer in _named_layers(model, prefix):
            for pname, p in layer.named_parameters():
                if not _finite(p.data):
                    return f"{label} {pname}"
    for prefix, model, x in (("G", G, z), ("D", D, real), ("D", D, None)):
        x = G.forward(z) if x is None else x
        for label, layer in _named_layers(model, prefix):
            x = layer.forward(x)
            if not _finite(x):
                return f"{label} output"
    for prefix, model in (("D", D), ("G", G)):
        for label, layer in reversed(_named_layers(model, prefix)):
            for pname, p in layer.named_parameters():
                if not _finite(p.grad):
                    return f"{label} {pname} gradient"
    return "the loss (every layer output and gradient is finite)"


# ---- logging --------------------------------------------------------------------------
class MetricsLog:
    """Sums the per-step statistics on the device; ``summarise`` reads their means once (one
    device synchronisation) as a record, ``append`` adds it as a line to metrics.jsonl."""

    KEYS = ("loss_D", "loss_G", "D_x", "D_G_z")

    def __init__(self, path, start_step, batch_size):
        self.path, self.batch_size = Path(path), batch_size
        self.history = _read_history(self.path, start_step)
        with open(self.path, "w") as f:                 # keep only lines up to the checkpoint
            f.writelines(json.dumps(r) + "\n" for r in self.history)
        self.total, self.count, self.since = None, 0, time.perf_counter()

    def add(self, stats):
        self.total = stats if self.total is None else self.total + stats
        self.count += 1

    def summarise(self, step):
        """The means of the statistics added since the last record, as a new record."""
        means = backend.asnumpy(self.total) / self.count
        now = time.perf_counter()
        record = {"step": step, **{k: round(float(v), 5) for k, v in zip(self.KEYS, means)},
                  "img_per_s": round(self.count * self.batch_size / (now - self.since), 1)}
        self.total, self.count, self.since = None, 0, now
        return record

    def append(self, record):
        self.history.append(record)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def _read_history(path, up_to_step):
    """The records of ``metrics.jsonl`` with step <= ``up_to_step`` (none for a new run)."""
    if up_to_step == 0 or not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["step"] <= up_to_step]


def _format(record):
    return (f"step {record['step']}: loss_D {record['loss_D']:.3f}  loss_G {record['loss_G']:.3f}  "
            f"D(x) {record['D_x']:.3f}  D(G(z)) {record['D_G_z']:.3f}  {record['img_per_s']:.0f} img/s")


def open_tensorboard(out, start_step):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise SystemExit("error: --tensorboard needs tensorboardX (pip install 'npgan[tensorboard]')")
    return SummaryWriter(str(out / "tensorboard"), purge_step=start_step or None)


class DeferredInterrupt:
    """While active, the first Ctrl-C only sets ``requested`` (the loop finishes its step,
    saves and stops); a second Ctrl-C raises KeyboardInterrupt at once."""

    def __enter__(self):
        self.requested = False
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGINT, self.previous)


# ---- the training loop ----------------------------------------------------------------
def fit(config, dataset, G, D, opt_G, opt_D, start_step, progress=True, writer=None):
    """Train from ``start_step`` to ``config['steps']``: D step, G step, and every few steps
    log, sample and checkpoint. Returns the last completed step (smaller than
    ``config['steps']`` after Ctrl-C)."""
    out, steps, batch_size = Path(config["out"]), config["steps"], config["batch_size"]
    check_every_step = backend.name() == "numpy"                   # free on the CPU; a GPU sync
    batches = real_batches(dataset.train_images, batch_size, config["seed"], start_step)
    z_fixed = backend.to_device(fixed_noise(N_FIXED, config["z_dim"], [config["seed"], 1]))
    log = MetricsLog(out / "metrics.jsonl", start_step, batch_size)
    real_spread = health.spread(scale_images(dataset.train_images[:1000]))
    if start_step == 0:
        save_samples(G, z_fixed, out, 0, writer)
        # The initial weights are a good state: a run that diverges or is killed before its
        # first periodic checkpoint can still be resumed or inspected.
        save_run(out / "checkpoint.npz", G, D, opt_G, opt_D, 0, config)
    bar = tqdm(total=steps, initial=start_step, unit="step", disable=not progress, dynamic_ncols=True)
    step = start_step
    with DeferredInterrupt() as interrupt:
        for step in range(start_step + 1, steps + 1):
            real = backend.to_device(scale_images(next(batches))[:, None])     # (B, 1, 28, 28) in [-1, 1]
            z = backend.rng().standard_normal((batch_size, config["z_dim"]), dtype=np.float32)
            is_log = step % config["log_every"] == 0 or step == steps
            is_ckpt = step % config["checkpoint_every"] == 0 or step == steps or interrupt.requested
            try:
                stats = train_step(G, D, opt_G, opt_D, real, z, check=check_every_step or is_log or is_ckpt)
            except NonFiniteError:
                raise NonFiniteError(locate_nonfinite(G, D, z, real), step) from None
            log.add(stats)
            bar.update(1)

            if is_log:
                record = log.summarise(step)
                findings = health.check(log.history + [record], G, z_fixed, real_spread, step)
                health.report(record, log.history[-1] if log.history else None, findings,
                              lambda line: bar.write(line, file=sys.stderr))
                log.append(record)
                bar.set_postfix_str(_format(record).split(": ", 1)[1], refresh=False)
                if not progress:
                    print(_format(record), flush=True)
                if writer is not None:
                    for key in MetricsLog.KEYS + ("img_per_s",):
                        writer.add_scalar(f"train/{key}", record[key], step)
            if step % config["sample_every"] == 0 or step == steps:
                save_samples(G, z_fixed, out, step, writer)
            if is_ckpt or interrupt.requested:
                save_run(out / "checkpoint.npz", G, D, opt_G, opt_D, step, config)
            if interrupt.requested:
                break
    bar.close()
    return step


def save_samples(G, z_fixed, out, step, writer=None):
    """The fixed-noise grid under G.eval() (BatchNorm uses its running statistics), then
    G.train() again; written to samples/step_NNNNNN.png and TensorBoard."""
    from .viz import save_grid
    G.eval()
    images = backend.asnumpy(G.forward(z_fixed))[:, 0]                      # (100, 28, 28)
    G.train()
    grid = save_grid(images, out / "samples" / f"step_{step:06d}.png", nrow=10)
    if writer is not None:
        writer.add_image("samples", grid[None], step, dataformats="CHW")
    return images


def save_run(path, G, D, opt_G, opt_D, step, config):
    save_checkpoint(path, G=G, D=D, opt_G=opt_G, opt_D=opt_D, step=step, config=config,
                    rng_state=backend.get_rng_state())


def write_final_outputs(out, history, title):
    """samples.png (the last grid, twice the size), losses.png and progress.gif."""
    from PIL import Image

    from .viz import plot_history, save_gif
    frames = sorted((out / "samples").glob("step_*.png"))
    if frames:
        with Image.open(frames[-1]) as last:
            last.resize((last.width * 2, last.height * 2), Image.NEAREST).save(out / "samples.png")
        save_gif(frames, out / "progress.gif")
    if history:
        plot_history(history, out / "losses.png", title=title)


# ---- main -----------------------------------------------------------------------------
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(args, parser)
    config, ckpt = resolve_config(args, parser)
    try:
        backend.use(config["backend"])
    except backend.BackendError as err:
        parser.error(str(err))
    try:
        dataset = load_dataset(config["dataset"], data_dir=config["data_dir"])
    except (OSError, ValueError) as err:                       # not found, truncated or corrupt files
        parser.error(str(err))
    start_step = ckpt["step"] if ckpt else 0
    set_length(config, args, len(dataset.train_images), start_step, parser)
    config["data"] = dataset.source
    out = Path(config["out"])
    try:
        if args.overwrite:
            _delete_outputs(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    except OSError as err:                                     # a file in the way, no permission, ...
        parser.error(f"--out {out}: cannot write the run directory ({err.strerror or err})")

    backend.seed(config["seed"])
    G, D = build_models(config["model"])
    opt_G = Adam(G.parameters(), lr=config["lr"], betas=(config["beta1"], config["beta2"]))
    opt_D = Adam(D.parameters(), lr=config["lr"], betas=(config["beta1"], config["beta2"]))
    if ckpt:
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        opt_G.load_state_dict(ckpt["opt_G"])
        opt_D.load_state_dict(ckpt["opt_D"])
        backend.set_rng_state(ckpt["rng"])
    n_params = lambda m: sum(int(p.data.size) for p in m.parameters())
    print(f"{config['model']} on {config['dataset']}: G {n_params(G):,} / D {n_params(D):,} parameters, "
          f"{'resuming at step ' + str(start_step) + ' of' if ckpt else 'training for'} {config['steps']:,} "
          f"steps ({config['epochs']} epochs) of {config['batch_size']} images on {backend.name()}; "
          f"writing to {out}", flush=True)

    writer = open_tensorboard(out, start_step) if args.tensorboard else None
    try:
        return _train_and_report(config, args, dataset, G, D, opt_G, opt_D, start_step, writer)
    finally:
        if writer is not None:
            writer.close()


def _train_and_report(config, args, dataset, G, D, opt_G, opt_D, start_step, writer):
    """``fit``, then the final pictures and the evaluation; returns the exit status."""
    out = Path(config["out"])
    started = time.perf_counter()
    try:
        step = fit(config, dataset, G, D, opt_G, opt_D, start_step, progress=not args.no_progress, writer=writer)
    except NonFiniteError as err:
        print(f"\nerror: training diverged at step {err.step}: NaN or Inf first appeared in {err.where}. "
              f"Nothing was saved after step {_saved_step(out)}; {out / 'checkpoint.npz'} is the last good "
              f"state. Try a smaller --lr.", file=sys.stderr)
        return EXIT_NONFINITE
    except KeyboardInterrupt:
        print(f"\ninterrupted twice: stopped without saving; {out / 'checkpoint.npz'} holds step "
              f"{_saved_step(out)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    seconds = time.perf_counter() - started
    if step < config["steps"]:
        print(f"\ninterrupted: saved step {step} to {out / 'checkpoint.npz'}; continue with "
              f"`python -m npgan.train {config['dataset']} --out {out} --resume`", file=sys.stderr)
        return EXIT_INTERRUPTED

    history = _read_history(out / "metrics.jsonl", step)
    write_final_outputs(out, history, f"{config['model']} on {config['dataset']}")
    print(f"trained {step - start_step:,} steps in {seconds:.0f} s "
          f"({(step - start_step) * config['batch_size'] / seconds:.0f} img/s)")
    print(health_summary(history))
    if args.no_eval:
        (out / "metrics.json").unlink(missing_ok=True)     # a resumed run's old scores describe an earlier step
    else:
        from . import metrics
        from .evaluate import evaluate_run
        scores = evaluate_run(G, config, n=args.eval_n, dataset=dataset)
        scores.update(step=step, train_seconds=round(seconds, 1))
        (out / "metrics.json").write_text(json.dumps(scores, indent=2) + "\n")
        print(metrics.format_scores(scores, class_names(config["dataset"])))
        if writer is not None:
            for key in ("frechet_distance", "kl_from_uniform", "mean_confidence"):
                writer.add_scalar(f"eval/{key}", scores[key], step)
    print(f"outputs in {out}: samples.png, losses.png, progress.gif, metrics.jsonl, "
          f"{'' if args.no_eval else 'metrics.json, '}config.json, checkpoint.npz")
    return 0


def health_summary(history):
    """One line: the health findings of the run (``npgan.health``) and the steps they were seen at."""
    seen = {}
    for record in history:
        for name in record.get("health", ()):
            seen.setdefault(name, []).append(record["step"])
    if not seen:
        return "health: no warnings (discriminator never won, no collapse, no dead units)"
    return "health: " + "; ".join(f"{name} at steps {steps[0]}-{steps[-1]} ({len(steps)} log points)"
                                  for name, steps in seen.items()) + " (see the warnings above and metrics.jsonl)"


def _saved_step(out):
    """The step of the checkpoint in ``out`` (``fit`` writes one at step 0)."""
    return load_checkpoint(out / "checkpoint.npz")["step"]


if __name__ == "__main__":
    sys.exit(main())
