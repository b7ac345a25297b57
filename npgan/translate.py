"""Unpaired image translation between MNIST and MNIST-M with a CycleGAN: ``python -m npgan.translate``.

    python -m npgan.translate train mnist mnistm              # default length, runs/mnist-mnistm-cyclegan
    python -m npgan.translate train mnist mnistm --resume     # continue it (or --steps N: train to step N)
    python -m npgan.translate eval runs/mnist-mnistm-cyclegan # label preservation and cycle errors
    python -m npgan.translate translate runs/mnist-mnistm-cyclegan --direction b2a --input x.npy --out y.npy

Domain A is MNIST (1 x 28 x 28), domain B MNIST-M (3 x 28 x 28), built in memory from the MNIST
digits and the photographs scikit-image bundles (``npgan.data.mnistm``); ``--size 32`` pads the
digits to 32 x 32, and ``train mnist svhn`` translates to SVHN's 32 x 32 digits
(``npgan.data.svhn``, read from its .mat files). The recipe (LSGAN,
cycle and identity L1, image pools, Adam with linear decay) is ``npgan.gan.cycle``; the run
directory is described in ``npgan.gan.translation``, the scores in ``npgan.gan.translation_eval``.

``translate`` reads a ``.npy`` (uint8 pixels, or floats in [-1, 1]; shape (N, C, S, S), or
(N, S, S) / (S, S) for one channel, S the run's size, 28 or 32) or an image file (an S x S PNG:
grey for a2b, colour for b2a), and writes a ``.npy`` (float32 (N, C, S, S) in [-1, 1]) or a
``.png`` (the images in a row). a2b: MNIST -> MNIST-M or SVHN (1 channel in, 3 out); b2a: back.

**Exit status** (``npgan.errors``): 0 done; 2 bad arguments, input or run directory (one line,
nothing written); 3 training diverged (NaN/Inf; the last good checkpoint is kept); 130 Ctrl-C
(the first one finishes the step and saves).
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, backend
from .cli import ArgumentParser, Interrupted, exits_130_on_ctrl_c
from .errors import EXIT_INTERRUPTED, EXIT_NONFINITE, NonFiniteError

DEFAULT_OUT = "runs/mnist-mnistm-cyclegan"
DOMAINS = ("mnist", "mnistm")
# domain B -> (its name, the image sizes it can be trained at, the default size)
DOMAINS_B = {"mnistm": ("MNIST-M", (28, 32), 28), "svhn": ("SVHN", (32,), 32)}
DIRECTIONS = {"a2b": ("G_ab", 1, 3), "b2a": ("G_ba", 3, 1)}       # generator, channels in, channels out
# train settings --resume takes from the checkpoint (an explicitly different value is an error)
RUN_SETTINGS = ("batch_size", "width", "blocks", "d_width", "lr", "lambda_cycle", "identity", "identity_ab", "cycle_b", "pool_size",
                "seed", "semantic_weight", "semantic_b", "size", "photos")


def build_parser():
    parser = ArgumentParser(prog="python -m npgan.translate", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                        help="array backend (default: $NPGAN_BACKEND or numpy)")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a CycleGAN between MNIST (A) and MNIST-M (B)")
    t.add_argument("domains", nargs="*", metavar="DOMAIN",
                   help="the two domains, A then B: mnist mnistm (the default) or mnist svhn (SVHN's cropped digits "
                        "at 32 x 32; its .mat files must be on disk or downloadable)")
    t.add_argument("--size", type=int, help="image size: 28 or 32 for mnist mnistm (default 28; at 32 the digits are "
                                            "padded), 32 for mnist svhn")
    t.add_argument("--photos", choices=["standard", "negatives", "wide"],
                   help="the photographs MNIST-M's training crops come from: standard (astronaut, coffee, rocket, "
                        "motorcycle at full and half size; the default), negatives (also each photo's negative) or "
                        "wide (the negatives, a quarter size, and all six orders of the colour channels)")
    t.add_argument("--steps", type=int, help="training steps in all, counted from 0 also when resuming (default 3000)")
    t.add_argument("--batch-size", type=int, help="images of each domain per step (default 8)")
    t.add_argument("--width", type=int, help="generators' base channels w: w, 2w, 4w at 28, 14, 7 pixels (default 16)")
    t.add_argument("--blocks", type=int, help="residual blocks at 7 x 7 in each generator (default 3)")
    t.add_argument("--d-width", type=int, help="discriminators' base channels (default 32)")
    t.add_argument("--lr", type=float, help="Adam learning rate of all networks, decayed linearly to 0 over "
                                            "the second half (default 2e-4)")
    t.add_argument("--lambda-cycle", type=float, help="weight of the cycle-consistency L1 (default 10)")
    t.add_argument("--cycle-b", type=float, help="weight of the B -> A -> B cycle term as a fraction of --lambda-cycle "
                   "(default 0.03; 1 is Zhu et al.'s CycleGAN, whose B cycle makes G_ba hide the photo in the digit)")
    t.add_argument("--identity", type=float, help="weight of the identity L1 as a fraction of --lambda-cycle "
                                                  "(default 0.5; 0 turns it off)")
    t.add_argument("--identity-ab", action="store_const", const=True, default=None,
                   help="also G_ab's identity term, |G_ab(grey(b)) - b| (off by default: it teaches G_ab to "
                        "colourise grey photos, and G_ba then outputs grey photos instead of digits)")
    t.add_argument("--pool-size", type=int, help="generated images kept for the discriminators (default 50; "
                                                 "0: no pool)")
    t.add_argument("--semantic-weight", type=float,
                   help="CyCADA's semantic-consistency term (Hoffman et al. 2018) at this weight: a digit classifier "
                        "trained on domain A's digits (not the evaluation classifier) must read the same digit in "
                        "G_ab(a) as in a, and in G_ba(b) what it reads in b (default 0: off)")
    t.add_argument("--semantic-b", type=float,
                   help="weight of the semantic term's B part, CE(f(G_ba(b)), argmax f(b)), as a fraction of "
                        "--semantic-weight (default 1, as Hoffman et al.; 0 keeps only the A part: f reads MNIST-M "
                        "poorly, so its readings of b are often wrong)")
    t.add_argument("--seed", type=int, help="seeds the weights, the batches, the pools and the MNIST-M crops (default 0)")
    t.add_argument("--out", help=f"run directory (default {DEFAULT_OUT}, or runs/mnist-svhn-cyclegan)")
    t.add_argument("--data-dir", help="folder holding MNIST's IDX files, or for mnist svhn SVHN's .mat files "
                                      "(default: npgan's usual search)")
    t.add_argument("--sample-every", type=int, default=250, help="steps between sample grids (default 250)")
    t.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (default 500)")
    t.add_argument("--log-every", type=int, default=50, help="steps between metric lines (default 50)")
    start = t.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    start.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out with a new one; the earlier run is deleted only once the new one "
                            "has written its first scheduled checkpoint (--checkpoint-every)")
    t.add_argument("--no-progress", action="store_true", help="print log lines instead of a progress bar")
    t.add_argument("--no-eval", action="store_true", help="skip the label-preservation scores at the end")

    e = sub.add_parser("eval", help="label preservation against the grey baselines, and the cycle errors")
    e.add_argument("run", help="a run directory written by `train`")
    e.add_argument("--n", type=int, help="test images scored (default: all)")
    e.add_argument("--picture", help="also write input | translated | reconstructed, both directions, as this PNG")
    e.add_argument("--markdown", action="store_true", help="print the table as Markdown")

    r = sub.add_parser("translate", help="translate your own images with a trained run")
    r.add_argument("run", help="a run directory written by `train`")
    r.add_argument("--direction", required=True, help="a2b (MNIST -> MNIST-M or SVHN) or b2a (back to MNIST)")
    r.add_argument("--input", required=True, help=".npy array or image file, at the run's size (28 or 32)")
    r.add_argument("--out", required=True, help=".npy (float32 in [-1, 1]) or .png")
    return parser


# ---- train -----------------------------------------------------------------------------------
def check_train_args(args, parser):
    """Exit 2 with one line for a value no run can use."""
    if args.domains:
        pair = [d.lower().replace("-", "").replace("_", "") for d in args.domains]
        if len(pair) != 2 or pair[0] != "mnist" or pair[1] not in DOMAINS_B:
            parser.error(f"unknown domain pair {' '.join(args.domains)!r}: npgan translates mnist (A) to mnistm or "
                         f"svhn (B): `train mnist mnistm` or `train mnist svhn`")
        args.domains = pair
    if args.size is not None and args.domains:
        name, sizes, _ = DOMAINS_B[args.domains[1]]
        if args.size not in sizes:
            parser.error(f"--size {args.size}: MNIST <-> {name} trains at {' or '.join(map(str, sizes))} pixels")
    for flag, value, low in (("--steps", args.steps, 1), ("--batch-size", args.batch_size, 1), ("--width", args.width, 1),
                             ("--blocks", args.blocks, 0), ("--d-width", args.d_width, 1),
                             ("--pool-size", args.pool_size, 0), ("--seed", args.seed, 0),
                             ("--sample-every", args.sample_every, 1), ("--checkpoint-every", args.checkpoint_every, 1),
                             ("--log-every", args.log_every, 1)):
        if value is not None and value < low:
            parser.error(f"{flag} must be an integer >= {low}, got {value}")
    for flag, value in (("--lr", args.lr), ("--lambda-cycle", args.lambda_cycle), ("--identity", args.identity),
                        ("--cycle-b", args.cycle_b), ("--semantic-weight", args.semantic_weight),
                        ("--semantic-b", args.semantic_b)):
        if value is not None and not (math.isfinite(value) and (value > 0 if flag == "--lr" else value >= 0)):
            parser.error(f"{flag} must be a {'positive' if flag == '--lr' else 'non-negative'} number, got {value}")


def resolve_config(args, parser):
    """The run's config and the checkpoint to resume (or None); refuses to reuse a run directory
    without --resume or --overwrite."""
    from .gan.run import replaced_note, restore_replaced
    from .gan.translation import OUTPUTS, default_config, load_cycle_checkpoint
    if args.out is None:
        args.out = DEFAULT_OUT if (args.domains or DOMAINS)[1] == "mnistm" else f"runs/mnist-{args.domains[1]}-cyclegan"
    out = Path(args.out)
    given = {key: getattr(args, key) for key in RUN_SETTINGS}
    if restore_replaced(out, OUTPUTS):                          # an --overwrite killed before it replaced the run
        print(f"note: {replaced_note(out)}", flush=True)
    if args.resume:
        if not (out / "checkpoint.npz").is_file():
            parser.error(f"--resume: there is no checkpoint in {out} (start a new run without --resume)")
        try:
            ckpt = load_cycle_checkpoint(out / "checkpoint.npz")
        except ValueError as err:
            parser.error(f"--resume: {err}")
        # runs saved before --cycle-b weighed both cycles alike, before --semantic-weight had no such term,
        # and before --semantic-b weighed the semantic term's two parts alike
        config = {"cycle_b": 1.0, "semantic_weight": 0.0, "semantic_b": 1.0, "size": 28, "photos": "standard",
                  **ckpt["config"]}
        if args.domains and args.domains != config["domains"]:
            parser.error(f"--resume: the run in {out} translates {' '.join(config['domains'])}, not "
                         f"{' '.join(args.domains)}")
        for key, value in given.items():
            if value is not None and value != config[key]:
                parser.error(f"--resume: the run was trained with --{key.replace('_', '-')} {config[key]}, not "
                             f"{value}; leave it out, or start a new run with --out")
        if args.steps is not None:
            if args.steps < ckpt["step"]:
                parser.error(f"--resume: the checkpoint is at step {ckpt['step']}, past --steps {args.steps}")
            if args.steps != config["steps"]:          # a longer run: its decay starts halfway through it
                config.update(steps=args.steps, decay_start=args.steps // 2)
    else:
        if any((out / name).exists() for name in ("config.json", "checkpoint.npz")):
            if not args.overwrite:
                parser.error(f"{out} already holds a run; pass --resume to continue it, --overwrite to replace it "
                             f"with a new run, or --out to choose another directory")
        ckpt = None
        domains = args.domains or list(DOMAINS)
        if given["size"] is None:
            given["size"] = DOMAINS_B[domains[1]][2]
        if given["photos"] is not None and domains[1] != "mnistm":
            parser.error(f"--photos chooses MNIST-M's photographs; {domains[1]} has its own images")
        config = default_config(steps=args.steps, backend=backend.name(), domains=domains, **given)
    config.update(out=str(out), data_dir=args.data_dir if args.data_dir is not None else config.get("data_dir"),
                  sample_every=args.sample_every, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                  npgan_version=__version__)
    return config, ckpt


def load_data(config, parser, verbose=True):
    """(MNIST and domain B as a ``TranslationData``, the MNIST ``Dataset``), or exit 2 naming what
    is missing."""
    from .data import IDXError, SVHNError, load_dataset
    from .data.mnistm import load_mnist_mnistm, load_photos
    from .data.svhn import load_mnist_svhn, load_svhn
    try:
        if config["domains"][1] == "svhn":
            svhn = load_svhn(config.get("data_dir"), verbose=verbose)      # before MNIST: the likelier failure
            mnist = load_dataset("mnist", verbose=False)
            return load_mnist_svhn(verbose=verbose, mnist=mnist, svhn=svhn), mnist
        load_photos(())                                            # no scikit-image: say so before loading MNIST
        mnist = load_dataset("mnist", data_dir=config.get("data_dir"), verbose=False)
        return load_mnist_mnistm(config["seed"], verbose=verbose, mnist=mnist, size=config.get("size", 28),
                                 photo_set=config.get("photos", "standard")), mnist
    except (FileNotFoundError, IDXError, SVHNError) as err:        # photos, MNIST or SVHN missing, damaged files
        parser.error(str(err))


def cmd_train(args, parser):
    from .gan.run import REPLACED_DIR, replaced_note, restore_replaced, start_run_dir
    from .gan.translation import OUTPUTS, build_cycle_training, semantic_term, train_cycle_run
    check_train_args(args, parser)
    config, ckpt = resolve_config(args, parser)
    if ckpt is not None:
        try:
            backend.use(config["backend"])
        except backend.BackendError as err:
            parser.error(f"{err} (--resume: the run in {config['out']} was trained on {config['backend']})")
    start_step = ckpt["step"] if ckpt else 0
    if ckpt and start_step == config["steps"]:
        print(f"{config['out']} is already complete at step {start_step}: nothing to train. To train it further, "
              f"pass a larger --steps (the total), e.g. --resume --steps {2 * start_step}")
        return 0
    data, mnist = load_data(config, parser)
    if config["batch_size"] > min(len(data.train_a), len(data.train_b)):
        parser.error(f"--batch-size {config['batch_size']} is larger than the {len(data.train_a):,} training "
                     f"images of a domain")
    config["data"] = data.source
    out = Path(config["out"])
    try:
        start_run_dir(out, config, OUTPUTS if args.overwrite else None)
    except OSError as err:
        parser.error(f"--out {out}: cannot write the run directory ({err.strerror or err})")
    if (out / REPLACED_DIR).is_dir():
        print(f"--overwrite: the earlier run in {out} is kept until this one's first scheduled checkpoint (step "
              f"{min(config['checkpoint_every'], config['steps'])})", flush=True)
    try:
        nets, opts, pools = build_cycle_training(config, ckpt)
        semantic = semantic_term(config, data, ckpt)
        size = {k: sum(int(p.data.size) for p in m.parameters()) for k, m in nets.items()}
        print(f"CycleGAN MNIST <-> {data.name_b} at {data.size} x {data.size}: G_ab/G_ba {size['G_ab']:,}/{size['G_ba']:,}, D_a/D_b "
              f"{size['D_a']:,}/{size['D_b']:,} parameters; "
              f"{'resuming at step ' + str(start_step) + ' of' if ckpt else 'training for'} {config['steps']:,} steps "
              f"of {config['batch_size']} + {config['batch_size']} images on {backend.name()}; writing to {out}",
              flush=True)
        started = time.perf_counter()
        if semantic is not None:
            b_part = (f" and, at {semantic.b:g} of that weight, in G_ba(b) the digit it reads in b" if semantic.b > 0
                      else " (no B part: --semantic-b 0)")
            print(f"semantic consistency, weight {config['semantic_weight']:g}: the classifier of domain A must read "
                  f"a's digit in G_ab(a){b_part}", flush=True)
        step = train_cycle_run(config, data, nets, opts, pools, start_step, progress=not args.no_progress,
                               semantic=semantic)
    except NonFiniteError as err:
        saved = (replaced_note(out, f"diverged at step {err.step}") if restore_replaced(out, OUTPUTS) else
                 f"{out / 'checkpoint.npz'} holds the last good state")
        print(f"\nerror: training diverged at step {err.step}: NaN or Inf first appeared in {err.where}. "
              f"{saved}. Try a smaller --lr.", file=sys.stderr)
        return EXIT_NONFINITE
    except KeyboardInterrupt:
        saved = f"; {replaced_note(out, 'was stopped')}" if restore_replaced(out, OUTPUTS) else ""
        print(f"\ninterrupted twice: stopped without saving{saved}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException:
        restore_replaced(out, OUTPUTS)
        raise
    seconds = time.perf_counter() - started
    if step < config["steps"]:
        if restore_replaced(out, OUTPUTS):
            print(f"\ninterrupted: {replaced_note(out, f'stopped at step {step}')}", file=sys.stderr)
        else:
            print(f"\ninterrupted: saved step {step} to {out / 'checkpoint.npz'}; continue with "
                  f"`python -m npgan.translate train {' '.join(config['domains'])} --out {out} --resume`", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        return _report(args, config, data, mnist, nets, step, start_step, seconds, semantic)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted after training: the run is saved in {out} (checkpoint.npz, step {step}) "
                          f"but has no eval.json; `python -m npgan.translate eval {out}` scores it") from None


def _report(args, config, data, mnist, nets, step, start_step, seconds, semantic=None):
    """After training: the final pictures and the scores; returns 0."""
    out = Path(config["out"])
    from .gan.loop import read_history
    from .gan.translation import write_final_outputs
    (out / "eval.json").unlink(missing_ok=True)                # the scores of an earlier step
    history = read_history(out / "metrics.jsonl", step)
    write_final_outputs(out, history, f"CycleGAN, MNIST <-> {data.name_b}")
    done = step - start_step
    print(f"trained {done:,} steps in {seconds:.0f} s ({done / seconds:.2f} steps/s, {1000 * seconds / max(done, 1):.0f} "
          f"ms/step, {done * config['batch_size'] / seconds:.0f} images of each domain per "
          f"second)")
    if not args.no_eval:
        run_eval(nets, mnist, step, data, out, semantic_classifier=semantic and semantic.f, train_seconds=round(seconds, 1))
    print(f"outputs in {out}: samples.png, losses.png, progress.gif, metrics.jsonl, "
          f"{'' if args.no_eval else 'eval.json, '}config.json, checkpoint.npz")
    return 0


# ---- eval ------------------------------------------------------------------------------------
def run_eval(nets, mnist, step, data, out, n=None, markdown=False, semantic_classifier=None, **extra):
    """Score with the classifier of ``mnist`` (trained once, then cached), print the table and
    write ``out/eval.json``; a run trained with the semantic term is also scored by that term's
    own classifier (``semantic_classifier``), reported apart: the generators were trained to
    satisfy it."""
    from .gan.translation_eval import format_table, held_out_preservation, label_preservation
    from .metrics import get_classifier
    clf, info = get_classifier(mnist)
    scores = label_preservation(nets, data, clf, n)
    held_out = data.held_out()
    if held_out:
        scores["held_out_photos"] = held_out_preservation(nets, data, clf, held_out, n)
    scores.update(step=step, classifier_test_accuracy=info["test_accuracy"], **extra)
    if semantic_classifier is not None:
        own = label_preservation(nets, data, semantic_classifier, n)
        scores["semantic_classifier"] = {"accuracy": own["accuracy"], "cycle_a_accuracy": own["cycle_a_accuracy"]}
        if held_out:
            scores["semantic_classifier"]["held_out_photos"] = held_out_preservation(nets, data, semantic_classifier,
                                                                                     held_out, n)
    (Path(out) / "eval.json").write_text(json.dumps(scores, indent=2) + "\n")
    print(format_table(scores, markdown))
    if semantic_classifier is not None:
        acc = scores["semantic_classifier"]["accuracy"]
        print(f"the semantic term's own classifier (trained on domain A, seed 1; the generators were trained to "
              f"satisfy it) reads G_ba({data.name_b}) right {100 * acc['cyclegan']:.1f}% (grey {100 * acc['grey']:.1f}%, "
              f"inverted grey {100 * acc['inverted_grey']:.1f}%, MNIST itself {100 * acc['mnist']:.1f}%)")
    return scores


def load_run_or_exit(run, parser):
    from .gan.translation import load_cycle_run
    try:
        return load_cycle_run(run)
    except (FileNotFoundError, ValueError) as err:                 # missing, foreign or damaged
        parser.error(str(err))


def cmd_eval(args, parser):
    if args.n is not None and args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    if args.picture and Path(args.picture).suffix.lower() != ".png":
        parser.error(f"--picture {args.picture}: the picture is a PNG, so the name must end in .png")
    from .gan.translation import load_cycle_checkpoint, semantic_term
    nets, config, step = load_run_or_exit(args.run, parser)
    data, mnist = load_data(config, parser)
    print(f"{args.run}: CycleGAN at step {step:,}")
    semantic = semantic_term(config, data, load_cycle_checkpoint(Path(args.run) / "checkpoint.npz"), verbose=False)
    run_eval(nets, mnist, step, data, args.run, args.n, args.markdown, semantic_classifier=semantic and semantic.f)
    if args.picture:
        from .gan.translation_eval import save_cycle_picture
        save_cycle_picture(nets, data, args.picture)
        print(f"wrote {args.picture}")
    return 0


# ---- translate -------------------------------------------------------------------------------
class InputError(ValueError):
    """An input file translate cannot use."""


def read_images(path, channels, size=28):
    """Images from a .npy or an image file as float32 (N, channels, size, size) in [-1, 1];
    InputError saying what is wrong otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--input {path}: no such file")
    if path.suffix.lower() == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise InputError(f"--input {path}: not a readable .npy array ({err})") from None
        if x.ndim == 2 or (x.ndim == 3 and x.shape[0] in (1, 3) and channels == x.shape[0] and x.shape[1:] == (size, size)):
            x = x[None]                                                    # one image
        if x.ndim == 3 and channels == 1:
            x = x[:, None]                                                 # (N, size, size) grey
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / np.float32(127.5) - np.float32(1)
        elif x.dtype.kind == "f":
            if x.size and not np.isfinite(x).all():
                raise InputError(f"--input {path}: holds NaN or Inf")
            if x.size and (x.min() < -1.001 or x.max() > 1.001):
                raise InputError(f"--input {path}: float pixels must lie in [-1, 1] (got [{x.min():.3g}, "
                                 f"{x.max():.3g}]); save uint8 pixels (0-255) or scale them as x / 127.5 - 1")
            x = x.astype(np.float32)
        else:
            raise InputError(f"--input {path}: pixels must be uint8 or float, not {x.dtype}")
    else:
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(path) as picture:
                mode = "L" if picture.mode in ("1", "L", "LA", "I", "I;16") else "RGB"
                x = np.asarray(picture.convert(mode))
        except (UnidentifiedImageError, OSError) as err:
            raise InputError(f"--input {path}: not a .npy file or a readable image ({err})") from None
        x = (x[None, None] if x.ndim == 2 else x.transpose(2, 0, 1)[None]).astype(np.float32) / np.float32(127.5) - 1
    if x.ndim != 4 or x.shape[0] == 0:
        raise InputError(f"--input {path}: expected images of shape (N, {channels}, {size}, {size}), got "
                         f"{tuple(x.shape)}")
    if x.shape[1:3] == (size, size) and x.shape[3] in (1, 3):
        raise InputError(f"--input {path}: shape {tuple(x.shape)} is channels-last; save the images as "
                         f"(N, C, {size}, {size}), e.g. x.transpose(0, 3, 1, 2)")
    if x.shape[2:] != (size, size):
        raise InputError(f"--input {path}: the images are {x.shape[2]}x{x.shape[3]}; this CycleGAN translates "
                         f"{size}x{size} images")
    if x.shape[1] != channels:
        raise InputError(f"--input {path}: the images have {x.shape[1]} channel(s); this direction reads "
                         f"{channels}-channel images ({'grey MNIST' if channels == 1 else 'colour'})")
    return x


def cmd_translate(args, parser):
    direction = args.direction.lower()
    if direction not in DIRECTIONS:
        parser.error(f"unknown --direction {args.direction!r}: a2b (MNIST -> MNIST-M) or b2a (MNIST-M -> MNIST)")
    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".png"):
        parser.error(f"--out {out}: the output is a .npy array or a .png picture, so the name must end in one of those")
    name, c_in, _ = DIRECTIONS[direction]
    nets, config, step = load_run_or_exit(args.run, parser)
    try:
        x = read_images(args.input, c_in, config.get("size", 28))
    except InputError as err:
        parser.error(str(err))
    from .gan.translation import image_table, save_picture, translate
    y = translate(nets[name], x)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, y)
    else:
        save_picture(image_table([y], padding=0 if len(y) == 1 else 2), out)
    print(f"wrote {out}: {len(y)} image(s) {tuple(y.shape[1:])} translated {direction} by {args.run} (step {step})")
    return 0


@exits_130_on_ctrl_c
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    backend.use_from_cli(args.backend, parser)
    return {"train": cmd_train, "eval": cmd_eval, "translate": cmd_translate}[args.command](args, parser)


if __name__ == "__main__":
    sys.exit(main())
