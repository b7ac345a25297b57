"""``python -m npgan.inpaint train|eval|fill|panel``: the command line of the inpainting experiments.

    python -m npgan.inpaint train --dataset fashion-mnist --method context-encoder
    python -m npgan.inpaint train --dataset natural --method glcic --optimizer adadelta --lr 1.0
    python -m npgan.inpaint train --dataset natural --method yang-content
    python -m npgan.inpaint train --method yang --content runs/inpaint-natural-yang-content
    python -m npgan.inpaint eval runs/inpaint-fashion-mnist-context-encoder [more runs ...]
    python -m npgan.inpaint fill --checkpoint runs/NAME --image in.png --mask mask.png --out out.png
    python -m npgan.inpaint panel runs/NAME --methods "biharmonic fill" GLCIC --out side_by_side.png
"""
import argparse
import dataclasses
import math
import sys
from pathlib import Path

from .. import backend
from ..cli import ArgumentParser, exits_130_on_ctrl_c
from ..data import IDXError
from ..errors import EXIT_INTERRUPTED, EXIT_NONFINITE, NonFiniteError
from ..data.inpainting import DATASETS, canonical_dataset
from ..gan.inpainting import yang
from ..gan.inpainting.runs import METHODS
from ..models.inpainting import FEATURES
from ..inpainting_ops.masks import MASK_KINDS, canonical_kind, centre_masks


def build_parser():
    parser = ArgumentParser(prog="python -m npgan.inpaint", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                        help="array backend (default: $NPGAN_BACKEND or numpy)")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one inpainting method on one data set")
    t.add_argument("--dataset", help=f"one of {', '.join(DATASETS)} (default fashion-mnist; for yang the "
                                     f"--content run's)")
    t.add_argument("--method", default="context-encoder", choices=METHODS,
                   help="context-encoder (Pathak et al., L2 + adversarial; the default), context-encoder-l2 (L2 "
                        "only), glcic (Iizuka et al.'s completion network with global and local discriminators), "
                        "latent (Yeh et al.'s search of a DCGAN's noise), yang-content (Yang et al.'s content "
                        "network: a Context Encoder with a fully connected bottleneck and ELU, L2 + adversarial) "
                        "or yang (Yang et al.'s texture optimisation of a yang-content run's fills; trains nothing)")
    t.add_argument("--mask", help=f"training holes: {', '.join(MASK_KINDS)} (default centre; for yang the "
                                  f"--content run's, which eval uses by default)")
    t.add_argument("--steps", type=int, help="updates (Context Encoder) or DCGAN steps (latent)")
    t.add_argument("--phases", type=int, nargs=3, metavar=("T_C", "T_D", "T_JOINT"),
                   help="GLCIC's completion-only, discriminator-only and joint steps")
    t.add_argument("--batch-size", type=int, help="images per update (default 64)")
    t.add_argument("--lr", type=float, dest="lr_g", help="learning rate of the completion network / G")
    t.add_argument("--lr-d", type=float, help="learning rate of the discriminator")
    t.add_argument("--optimizer", choices=["adam", "adadelta"], help="default adam (GLCIC used adadelta, lr 1.0)")
    t.add_argument("--adv-weight", type=float, help="weight of the adversarial loss")
    t.add_argument("--width", type=int, help="base channel count of the networks")
    t.add_argument("--prefill", choices=["mean", "biharmonic"],
                   help="completion networks: the hole at the input holds the mean pixel (default, as in the "
                        "papers) or a biharmonic fill that the network learns to correct")
    t.add_argument("--gan-checkpoint", help="latent: use this `python -m npgan.train` checkpoint.npz "
                                            "instead of training a DCGAN (28x28 data only; its widths and z size are used)")
    t.add_argument("--latent-steps", type=int, help="latent: z-optimisation steps per image batch")
    t.add_argument("--latent-lambda", type=float, help="latent: weight of the perceptual loss")
    t.add_argument("--content", metavar="RUN",
                   help="yang (required): the yang-content run directory (or its checkpoint .npz) whose network "
                        "gives the content fill")
    t.add_argument("--features", choices=FEATURES,
                   help="yang: the texture term's feature network: random (a seeded random-weight multi-scale "
                        "CNN; the default on natural and lfw), encoder (the content network's first layer; the "
                        "default on mnist and fashion-mnist) or classifier (the evaluation classifier's first "
                        "layer; mnist and fashion-mnist only)")
    t.add_argument("--texture-weight", type=float,
                   help=f"yang: alpha, the weight of the patch (MRF) term (default {yang.TEXTURE_WEIGHT:g})")
    t.add_argument("--tv-weight", type=float,
                   help=f"yang: beta, the weight of the squared total variation (default {yang.TV_WEIGHT:g})")
    t.add_argument("--scales", type=int, help=f"yang: pyramid levels, coarse to fine (default {yang.SCALES})")
    t.add_argument("--nn-updates", type=int,
                   help=f"yang: patch matchings per level (default {yang.NN_UPDATES})")
    t.add_argument("--lbfgs-steps", type=int,
                   help=f"yang: L-BFGS-B iterations after each matching (default {yang.LBFGS_STEPS})")
    t.add_argument("--seed", type=int, default=0, help="random seed of the networks, batches and holes (default 0)")
    t.add_argument("--name", help="run name (default inpaint-DATASET-METHOD[-MASK])")
    t.add_argument("--runs-dir", default="runs", help="folder the run directory --name is made in (default runs)")
    t.add_argument("--overwrite", action="store_true", help="replace a run of the same name (refused otherwise)")
    t.add_argument("--no-progress", action="store_true", help="print log lines instead of a progress bar")

    e = sub.add_parser("eval", help="metrics table of runs and the baselines on held-out images")
    e.add_argument("runs", nargs="+", help="run directories (same data set); the first fixes data and masks")
    e.add_argument("--n", type=int, default=1000,
                   help="held-out images (default: 1000, or all held-out images if fewer: the MNIST subset "
                        "holds out 500, LFW 20)")
    e.add_argument("--mask", help="hole kind (default: the first run's training kind)")
    e.add_argument("--latent-steps", type=int, help="override the z-optimisation steps of latent runs")
    e.add_argument("--out", help="where metrics.json/.md and eval_panel.png go (default: the first run)")
    e.add_argument("--no-baselines", action="store_true",
                   help="score only the runs, not the classical fills (mean, biharmonic) beside them")

    f = sub.add_parser("fill", help="inpaint your own image")
    f.add_argument("--checkpoint", required=True, help="a run directory, or a checkpoint .npz file written by `train`")
    f.add_argument("--image", required=True,
                   help="the image to complete: a PNG (or any image PIL reads) of the run's size and channels")
    f.add_argument("--mask", required=True, help="PNG, white (255) = missing, black (0) = known")
    f.add_argument("--out", required=True, help="where the completed image goes (.png)")
    f.add_argument("--no-blend", action="store_true", help="paste the raw fill (no Poisson blending)")
    f.add_argument("--panel", help="also write masked | completion | input as this PNG")
    p = sub.add_parser("panel", help="redraw an eval picture with chosen methods side by side")
    p.add_argument("eval_dir", help="the directory `eval` wrote (holds eval_examples.npz)")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--methods", nargs="+", help="row labels as in metrics.md (default: all)")
    p.add_argument("--n", type=int, help="examples shown (default all, at most 10)")
    p.add_argument("--scale", type=int, default=3, help="pixel magnification (default 3)")
    return parser


def cmd_panel(args, parser):
    from ..inpainting_viz import panel_from_eval
    for flag, value in {"--n": args.n, "--scale": args.scale}.items():
        if value is not None and value < 1:
            parser.error(f"{flag} must be a positive integer, got {value}")
    try:
        panel_from_eval(args.eval_dir, args.out, args.methods, args.n, args.scale)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print(f"wrote {args.out}")
    return 0


# the train flags each method reads (the others would be silently ignored, so they are refused)
METHOD_FLAGS = {
    "--steps": ("context-encoder", "context-encoder-l2", "latent", "yang-content"),
    "--phases": ("glcic",),
    "--lr-d": ("context-encoder", "glcic", "latent", "yang-content"),
    "--optimizer": ("context-encoder", "context-encoder-l2", "glcic", "yang-content"),
    "--adv-weight": ("context-encoder", "glcic", "yang-content"),
    "--prefill": ("context-encoder", "context-encoder-l2", "glcic", "yang-content"),
    "--gan-checkpoint": ("latent",),
    "--latent-steps": ("latent",),
    "--latent-lambda": ("latent",),
    **{flag: ("yang",) for flag in ("--content", "--features", "--texture-weight", "--tv-weight", "--scales",
                                     "--nn-updates", "--lbfgs-steps")},
}
# what a loaded --gan-checkpoint fixes (its DCGAN is not trained)
DCGAN_FLAGS = ("--steps", "--batch-size", "--lr", "--lr-d", "--width")
# what the --content run fixes for yang (it trains nothing; the content network is the run's)
CONTENT_FLAGS = ("--batch-size", "--lr", "--width", "--mask")


def _given(args):
    """The train flags given on the command line, by name ('--lr' for lr_g)."""
    dests = {"--lr": "lr_g"}
    flags = list(METHOD_FLAGS) + ["--batch-size", "--lr", "--width", "--mask"]
    return [f for f in flags if getattr(args, dests.get(f, f[2:].replace("-", "_"))) is not None]


def check_train_args(args, parser):
    """Exit 2 with one line for a value no run can use, or a flag the method would ignore."""
    given = _given(args)
    for flag in given:
        if flag in METHOD_FLAGS and args.method not in METHOD_FLAGS[flag]:
            users = ", ".join(METHOD_FLAGS[flag])
            hint = "; GLCIC's length is --phases T_C T_D T_JOINT" if flag == "--steps" else ""
            parser.error(f"{flag} does not apply to --method {args.method} (only to {users}){hint}")
    if args.gan_checkpoint:
        fixed = [f for f in given if f in DCGAN_FLAGS]
        if fixed:
            parser.error(f"{', '.join(fixed)} cannot be combined with --gan-checkpoint: its DCGAN is "
                         f"loaded as trained, not trained here")
    if args.method == "yang":
        if not args.content:
            parser.error("--method yang needs --content RUN, a yang-content run (train one with "
                         "--method yang-content)")
        fixed = [f for f in given if f in CONTENT_FLAGS]
        if fixed:
            parser.error(f"{', '.join(fixed)} cannot be combined with --method yang: it trains nothing, and its "
                         f"network and holes are the --content run's")
    positive = {"--steps": args.steps, "--batch-size": args.batch_size, "--width": args.width,
                "--latent-steps": args.latent_steps, "--scales": args.scales, "--nn-updates": args.nn_updates,
                "--lbfgs-steps": args.lbfgs_steps}
    for flag, value in positive.items():
        if value is not None and value < 1:
            parser.error(f"{flag} must be a positive integer, got {value}")
    if args.phases and (min(args.phases) < 0 or sum(args.phases) < 1):
        parser.error(f"--phases must be three step counts >= 0, not all 0, got {' '.join(map(str, args.phases))}")
    for flag, value in {"--lr": args.lr_g, "--lr-d": args.lr_d}.items():
        if value is not None and not (value > 0 and math.isfinite(value)):
            parser.error(f"{flag} must be a positive number, got {value}")
    if args.adv_weight is not None:
        top = 1 if args.method in ("context-encoder", "yang-content") else math.inf     # reconstruction: 1 - w
        if not 0 <= args.adv_weight < top:
            parser.error(f"--adv-weight must be in [0, {top:g}) for {args.method}, got {args.adv_weight}")
    for flag, value in {"--latent-lambda": args.latent_lambda, "--texture-weight": args.texture_weight,
                        "--tv-weight": args.tv_weight}.items():
        if value is not None and not (value >= 0 and math.isfinite(value)):
            parser.error(f"{flag} must be >= 0, got {value}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.name is not None and (not args.name or Path(args.name).name != args.name or args.name in (".", "..")):
        parser.error(f"--name {args.name!r} must be a plain directory name (runs go into --runs-dir)")


def check_gan_checkpoint(path, dataset, parser):
    """A `python -m npgan.train` checkpoint of the data set being inpainted, or exit 2."""
    from ..checkpoint import load_checkpoint
    try:
        trained_on = load_checkpoint(path)["config"].get("dataset")
    except (OSError, ValueError) as err:
        parser.error(f"--gan-checkpoint {err}")
    if trained_on is not None and trained_on != dataset:
        parser.error(f"--gan-checkpoint {path} holds a DCGAN trained on {trained_on}; it cannot inpaint "
                     f"{dataset} images (train one with `python -m npgan.train {dataset}`)")


def check_content_run(path, dataset, parser):
    """The yang-content run --content names, or exit 2; returns its config."""
    from ..gan.inpainting.runs import load_run
    try:
        content = load_run(path)[0]
    except (FileNotFoundError, ValueError) as err:
        parser.error(f"--content {err}")
    if content.method != "yang-content":
        parser.error(f"--content {path} holds a {content.method} run; the yang method needs a yang-content run "
                     f"(train one with --method yang-content)")
    if dataset is not None and content.dataset != dataset:
        parser.error(f"--content {path} was trained on {content.dataset}, not {dataset}")
    return content


def cmd_train(args, parser):
    from ..data.inpainting import load_inpaint_data
    from ..gan.inpainting.runs import default_config, default_features
    from ..gan.inpainting.train import CLASSIFIER_DATASETS, train
    try:
        dataset = canonical_dataset(args.dataset) if args.dataset else None
        mask = canonical_kind(args.mask or "centre")
    except ValueError as err:
        parser.error(str(err))
    check_train_args(args, parser)
    if args.method == "yang":
        content = check_content_run(args.content, dataset, parser)
        dataset, mask = content.dataset, content.mask
        scales = args.scales or yang.SCALES
        try:
            yang.check_pyramid(content.size, scales)
        except yang.YangError as err:
            parser.error(f"--scales {scales}: {err}")
        try:                                                # the run's own holes must leave texture to copy
            yang.check_patches(centre_masks(1, content.size, content.hole), scales)
        except yang.YangError as err:
            parser.error(f"--scales {scales}, centre hole of {content.hole}x{content.hole}: {err}")
        if args.features == "classifier" and dataset not in CLASSIFIER_DATASETS:
            parser.error(f"--features classifier needs the evaluation classifier of mnist or fashion-mnist; "
                         f"{dataset} has none (use random or encoder)")
    dataset = dataset or "fashion-mnist"
    if args.gan_checkpoint:
        if not Path(args.gan_checkpoint).is_file():
            parser.error(f"--gan-checkpoint {args.gan_checkpoint}: no such file")
        check_gan_checkpoint(args.gan_checkpoint, dataset, parser)
    overrides = {k: getattr(args, k) for k in ("steps", "batch_size", "lr_g", "lr_d", "optimizer", "adv_weight",
                                               "width", "gan_checkpoint", "latent_steps", "latent_lambda",
                                               "prefill", "content", "features", "texture_weight", "tv_weight",
                                               "scales", "nn_updates", "lbfgs_steps")}
    if args.method == "yang":
        overrides["prefill"] = content.prefill                  # the run's name says which content network
    overrides["phases"] = tuple(args.phases) if args.phases else None
    if args.optimizer == "adadelta" and args.lr_g is None:
        overrides.update(lr_g=1.0, lr_d=args.lr_d or 0.1)
    try:
        data = load_inpaint_data(dataset)
    except (FileNotFoundError, IDXError) as err:           # $NPGAN_DATA without the data set, ...
        parser.error(str(err))
    if args.batch_size is not None and args.batch_size > len(data.train):
        parser.error(f"--batch-size {args.batch_size} is larger than the {len(data.train):,} training images "
                     f"of {dataset}")
    cfg = default_config(args.method, dataset, mask=mask, seed=args.seed, **overrides)
    cfg = dataclasses.replace(cfg, channels=data.channels, size=data.size, hole=data.hole,
                              fill=tuple(float(v) for v in data.mean_pixel()))
    if cfg.gan_checkpoint and cfg.size != 28:
        parser.error("--gan-checkpoint holds a 28x28 DCGAN; it cannot inpaint the 32x32 natural crops")
    name = args.name or (f"inpaint-{dataset}-{args.method}" + ("" if cfg.prefill == "mean" else f"-{cfg.prefill}")
                         + ("" if args.method != "yang" or cfg.features == default_features(dataset) else f"-{cfg.features}")
                         + ("" if mask == "centre" else f"-{mask}"))
    run_dir = Path(args.runs_dir) / name
    if any((run_dir / f).exists() for f in ("checkpoint.npz", "config.json")):
        if not args.overwrite:
            parser.error(f"{run_dir} already holds a run; pass --overwrite to replace it (when the new one is "
                         f"saved), or --name to choose another")
        print(f"note: replacing the run in {run_dir} once the new one is trained")
    try:
        train(cfg, data, run_dir, progress=not args.no_progress)
    except NonFiniteError as err:
        print(f"\nerror: training diverged at step {err.step}: {err.where} became NaN or Inf. Nothing was "
              f"written to {run_dir}. Try a smaller --lr (was {cfg.lr_g:g}) or --lr-d (was {cfg.lr_d:g}).",
              file=sys.stderr)
        return EXIT_NONFINITE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


def cmd_eval(args, parser):
    from ..gan.inpainting.evaluate import evaluate, format_table, load_runs, write_outputs
    for r in args.runs:
        if not (Path(r) / "checkpoint.npz").is_file():
            parser.error(f"no checkpoint.npz in {r}: is it a run directory written by `python -m npgan.inpaint train`?")
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    if args.latent_steps is not None and args.latent_steps < 1:
        parser.error(f"--latent-steps must be a positive integer, got {args.latent_steps}")
    try:
        mask = canonical_kind(args.mask) if args.mask else None
        load_runs(args.runs)                                # a foreign or damaged checkpoint, mixed data sets
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    try:
        rows, context = evaluate(args.runs, n=args.n, mask=mask, latent_steps=args.latent_steps,
                                 baselines=not args.no_baselines)
    except (FileNotFoundError, IDXError) as err:           # the run's data set is no longer found
        parser.error(str(err))
    except yang.YangError as err:                          # a hole the texture optimisation cannot fill
        parser.error(f"yang, held-out {err}" if str(err).startswith("image") else f"yang: {err}")
    out = write_outputs(rows, context, args.out or args.runs[0])
    print(f"\n{context['dataset']}, {context['mask']} holes, {context['n']} held-out images\n")
    if context["n"] < args.n:
        print(f"note: {context['dataset']} holds out only {context['n']} images, so all of them were used "
              f"(--n {args.n})\n")
    print(format_table(rows, markdown=False))
    print(f"\nwrote {out}/metrics.json, metrics.md, eval_panel.png, eval_examples.npz")
    return 0


def cmd_fill(args, parser):
    from ..gan.inpainting.fill import FillError, fill_image
    try:
        fill_image(args.checkpoint, args.image, args.mask, args.out, blend=not args.no_blend, panel=args.panel)
    except FillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


@exits_130_on_ctrl_c
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    backend.use_from_cli(args.backend, parser)
    return {"train": cmd_train, "eval": cmd_eval, "fill": cmd_fill, "panel": cmd_panel}[args.command](args, parser)
