"""Generate images from a trained run: ``python -m npgan.sample runs/NAME --n 10000 --out samples.npy``.

Writes float32 (N, 28, 28) in [-1, 1] (``.npy``), drawn under ``G.eval()`` from noise
seeded by ``--seed``, so the same command gives the same images. ``--grid samples.png``
also saves the first 100 as a picture. The library side is ``npgan.gan.generate``.

A class-conditional run (``python -m npgan.train ... --conditional``) takes ``--class K`` (draw
class K only) or ``--class all`` (the default: the classes in turn, ``--n`` / K of each; the
grid shows one row per class). The labels are saved beside the images (``samples_labels.npy``).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from .cli import parse_run_args, run_parser
from .data import class_names
from .gan.sampling import generate
from .models.conditional import class_labels


def _npy_path(text):
    if Path(text).suffix != ".npy":
        raise argparse.ArgumentTypeError(f"{text}: the samples are saved with np.save, so the name must end "
                                         f"in .npy (--grid writes a PNG)")
    return text


def parse_args(argv=None):
    parser = run_parser("python -m npgan.sample", __doc__.split("\n")[0], n_default=10000, n_min=1)
    parser.add_argument("--out", default="samples.npy", type=_npy_path, help="output .npy file (default samples.npy)")
    parser.add_argument("--grid", default=None, help="also save the first 100 images as this PNG")
    parser.add_argument("--class", dest="class_", default=None, metavar="K|all",
                        help="a conditional run: draw class K (0-based), or all classes in turn (the default)")
    args, G, config, step = parse_run_args(parser, argv)
    args.labels = requested_labels(args, config, parser)
    return args, G, config, step


def requested_labels(args, config, parser):
    """The class of each image to draw (host int64 (n,)), or None for an unconditional run;
    exits 2 for ``--class`` on an unconditional run or a class the data does not have."""
    n_classes = config.get("n_classes")
    if not n_classes:
        if args.class_ is not None:
            parser.error(f"--class: {args.run} was trained without --conditional, so its generator cannot be "
                         f"told a class")
        return None
    if args.class_ is None or args.class_ == "all":
        if args.n % n_classes:
            print(f"note: --n {args.n} is not a multiple of the {n_classes} classes; the first classes get one "
                  f"image more")
        return class_labels(args.n, n_classes)
    try:
        k = int(args.class_)
    except ValueError:
        k = None
    if k is None or not 0 <= k < n_classes:
        names = ", ".join(f"{i} {name}" for i, name in enumerate(class_names(config["dataset"])))
        parser.error(f"--class {args.class_}: {config['dataset']} has classes 0-{n_classes - 1} ({names}), "
                     f"or 'all'")
    return np.full(args.n, k, dtype=np.int64)


def main(argv=None):
    args, G, config, _ = parse_args(argv)
    images = generate(G, args.n, z_dim=config["z_dim"], seed=args.seed, n_classes=config.get("n_classes"),
                      labels=args.labels)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, images)
    print(f"wrote {out}: {images.shape} {images.dtype} in [{images.min():.3f}, {images.max():.3f}] "
          f"from {config['model']} trained {config['dataset']} ({args.run})")
    n_classes = config.get("n_classes")
    if args.labels is not None:
        labels_out = out.with_name(out.stem + "_labels.npy")
        np.save(labels_out, args.labels)
        print(f"wrote {labels_out}: the class of each image")
    if args.grid:
        from .viz import save_grid
        grid, nrow = images[:100], 10
        if args.labels is not None and args.class_ in (None, "all") and args.n >= n_classes:
            nrow = min(10, args.n // n_classes)                  # one row per class, as the run's grids
            grid = np.concatenate([images[args.labels == k][:nrow] for k in range(n_classes)])
        save_grid(grid, args.grid, nrow=nrow)
        print(f"wrote {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
