"""``python -m npgan.inpaint train|eval|fill|panel``: the command line of the inpainting experiments.

    python -m npgan.inpaint train --dataset fashion-mnist --method context-encoder
    python -m npgan.inpaint train --dataset natural --method glcic --optimizer adadelta --lr 1.0
    python -m npgan.inpaint eval runs/inpaint-fashion-mnist-context-encoder [more runs ...]
    python -m npgan.inpaint fill --checkpoint runs/NAME --image in.png --mask mask.png --out out.png
    python -m npgan.inpaint panel runs/NAME --methods "biharmonic fill" GLCIC --out side_by_side.png
"""
import argparse
import dataclasses
import sys
from pathlib import Path

from .. import backend
from ..train import EXIT_INTERRUPTED, EXIT_NONFINITE, NonFiniteError
from .datasets import DATASETS, canonical_dataset
from .masks import MASK_KINDS, canonical_kind
from .runs import METHODS


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m npgan.inpaint", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                        help="array backend (default: $NPGAN_BACKEND or numpy)")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one inpainting method on one data set")
    t.add_argument("--dataset", default="fashion-mnist", help=f"one of {', '.join(DATASETS)} (default fashion-mnist)")
    t.add_argument("--method", default="context-encoder", choices=METHODS)
    t.add_argument("--mask", default="centre", help=f"training holes: {', '.join(MASK_KINDS)} (default centre)")
    t.add_argument("--steps", type=int, help="updates (Context Encoder) or DCGAN steps (latent)")
    t.add_argument("--phases", type=int, nargs=3, metavar=("T_C", "T_D", "T_JOINT"),
                   help="GLCIC's completion-only, discriminator-only and joint steps")
    t.add_argument("--batch-size", type=int)
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
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--name", help="run name (default inpaint-DATASET-METHOD[-MASK])")
    t.add_argument("--runs-dir", default="runs")
    t.add_argument("--no-progress", action="store_true")

    e = sub.add_parser("eval", help="metrics table of runs and the baselines on held-out images")
    e.add_argument("runs", nargs="+", help="run directories (same data set); the first fixes data and masks")
    e.add_argument("--n", type=int, default=1000, help="held-out images (default 1000)")
    e.add_argument("--mask", help="hole kind (default: the first run's training kind)")
    e.add_argument("--latent-steps", type=int, help="override the z-optimisation steps of latent runs")
    e.add_argument("--out", help="where metrics.json/.md and eval_panel.png go (default: the first run)")
    e.add_argument("--no-baselines", action="store_true")

    f = sub.add_parser("fill", help="inpaint your own image")
    f.add_argument("--checkpoint", required=True, help="a run directory (or its checkpoint.npz)")
    f.add_argument("--image", required=True)
    f.add_argument("--mask", required=True, help="PNG, white (255) = missing, black (0) = known")
    f.add_argument("--out", required=True)
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
    from .plots import panel_from_eval
    try:
        panel_from_eval(args.eval_dir, args.out, args.methods, args.n, args.scale)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print(f"wrote {args.out}")
    return 0


def cmd_train(args, parser):
    from .datasets import load_inpaint_data
    from .runs import default_config
    from .train import train
    try:
        dataset, mask = canonical_dataset(args.dataset), canonical_kind(args.mask)
    except ValueError as err:
        parser.error(str(err))
    if args.gan_checkpoint and not Path(args.gan_checkpoint).is_file():
        parser.error(f"--gan-checkpoint {args.gan_checkpoint}: no such file")
    overrides = {k: getattr(args, k) for k in ("steps", "batch_size", "lr_g", "lr_d", "optimizer", "adv_weight",
                                               "width", "gan_checkpoint", "latent_steps", "latent_lambda",
                                               "prefill")}
    overrides["phases"] = tuple(args.phases) if args.phases else None
    if args.prefill and args.method == "latent":
        parser.error("--prefill applies to the completion networks (context-encoder*, glcic), not to latent")
    if args.optimizer == "adadelta" and args.lr_g is None:
        overrides.update(lr_g=1.0, lr_d=args.lr_d or 0.1)
    data = load_inpaint_data(dataset)
    cfg = default_config(args.method, dataset, mask=mask, seed=args.seed, **overrides)
    cfg = dataclasses.replace(cfg, channels=data.channels, size=data.size, hole=data.hole,
                              fill=tuple(float(v) for v in data.mean_pixel()))
    if cfg.gan_checkpoint and cfg.size != 28:
        parser.error("--gan-checkpoint holds a 28x28 DCGAN; it cannot inpaint the 32x32 natural crops")
    name = args.name or (f"inpaint-{dataset}-{args.method}" + ("" if cfg.prefill == "mean" else f"-{cfg.prefill}")
                         + ("" if mask == "centre" else f"-{mask}"))
    run_dir = Path(args.runs_dir) / name
    if (run_dir / "checkpoint.npz").exists():
        print(f"note: overwriting the run in {run_dir}")
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
    from .evaluate import evaluate, format_table, write_outputs
    for r in args.runs:
        if not (Path(r) / "checkpoint.npz").is_file():
            parser.error(f"no checkpoint.npz in {r}: is it a run directory written by `python -m npgan.inpaint train`?")
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    rows, context = evaluate(args.runs, n=args.n, mask=args.mask, latent_steps=args.latent_steps,
                             baselines=not args.no_baselines)
    out = write_outputs(rows, context, args.out or args.runs[0])
    print(f"\n{context['dataset']}, {context['mask']} holes, {context['n']} held-out images\n")
    print(format_table(rows, markdown=False))
    print(f"\nwrote {out}/metrics.json, metrics.md, eval_panel.png, eval_examples.npz")
    return 0


def cmd_fill(args, parser):
    from .fill import FillError, fill_image
    ckpt = Path(args.checkpoint)
    run_dir = ckpt.parent if ckpt.suffix == ".npz" else ckpt
    try:
        fill_image(run_dir, args.image, args.mask, args.out, blend=not args.no_blend, panel=args.panel)
    except FillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.backend:
        try:
            backend.use(args.backend)
        except backend.BackendError as err:
            parser.error(str(err))
    return {"train": cmd_train, "eval": cmd_eval, "fill": cmd_fill, "panel": cmd_panel}[args.command](args, parser)
