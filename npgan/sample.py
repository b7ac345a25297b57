"""Generate images from a trained run: ``python -m npgan.sample runs/NAME --n 10000 --out samples.npy``.

``--out FILE.npy`` writes float32 (N, 28, 28) in [-1, 1]; ``--grid FILE.png`` writes a picture
of the first 100; give either or both (nothing else is written). The images are drawn under
``G.eval()`` from noise seeded by ``--seed``, so the same command gives the same images. The
library side is ``npgan.gan.generate``.

A class-conditional run (``python -m npgan.train ... --conditional``) takes ``--class K`` (draw
class K only) or ``--class all`` (the default: the classes in turn, ``--n`` / K of each; the
grid shows one row per class, labelled). With ``--out`` the class of each image is saved beside
it as FILE_labels.npy; an unconditional sample set removes a FILE_labels.npy of an earlier one.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from .cli import Interrupted, exits_130_on_ctrl_c, parse_run_args, run_parser
from .data import class_names
from .gan.sampling import generate
from .models.conditional import class_labels


def _path_ending(suffix, what):
    def check(text):
        if Path(text).suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(f"{text}: {what}, so the name must end in {suffix}")
        return text
    return check


def parse_args(argv=None):
    parser = run_parser("python -m npgan.sample", __doc__.split("\n")[0], n_default=10000, n_min=1)
    parser.add_argument("--out", default=None, type=_path_ending(".npy", "the images are saved with np.save"),
                        help="write the images here, float32 (N, 28, 28) in [-1, 1] (a conditional run: also "
                             "FILE_labels.npy)")
    parser.add_argument("--grid", default=None, type=_path_ending(".png", "the grid is a PNG picture"),
                        help="write the first 100 images as a picture here (.png)")
    parser.add_argument("--class", dest="class_", default=None, metavar="K|all",
                        help="a conditional run: draw class K (0-based), or all classes in turn (the default)")
    args, G, config, step = parse_run_args(parser, argv)
    if args.out is None and args.grid is None:
        parser.error("nothing to write: give --out FILE.npy (the images), --grid FILE.png (a picture of the "
                     "first 100), or both")
    for path in (args.out, args.grid):                     # a folder that cannot be made: before any work
        if path is not None:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                parser.error(f"{path}: cannot write there ({err.strerror or err})")
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


@exits_130_on_ctrl_c
def main(argv=None):
    args, G, config, _ = parse_args(argv)
    written = []
    try:
        images = generate(G, args.n, z_dim=config["z_dim"], seed=args.seed, n_classes=config.get("n_classes"),
                          labels=args.labels, truncation=args.truncation)
        source = f"from {config['model']} trained {config['dataset']} ({args.run})"
        if args.out:
            write_arrays(Path(args.out), images, args.labels, source, written)
        if args.grid:
            write_grid(args, images, config, written)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {'wrote only ' + ', '.join(written) if written else 'nothing was written'}") \
            from None
    return 0


def write_arrays(out, images, labels, source, written):
    """``out`` and, for a conditional run, the labels beside it (FILE_labels.npy); a labels file
    left there by an earlier, conditional sample set is removed, since it does not describe these."""
    np.save(out, images)
    written.append(str(out))
    print(f"wrote {out}: {images.shape} {images.dtype} in [{images.min():.3f}, {images.max():.3f}] {source}")
    labels_out = out.with_name(out.stem + "_labels.npy")
    if labels is not None:
        np.save(labels_out, labels)
        written.append(str(labels_out))
        print(f"wrote {labels_out}: the class of each image")
    elif labels_out.is_file():
        labels_out.unlink()
        print(f"removed {labels_out}: the labels of an earlier sample set, not of these images")


def write_grid(args, images, config, written):
    """The first 100 images; a conditional run's in rows of one class each, labelled."""
    from .viz import save_grid
    n_classes = config.get("n_classes")
    grid, nrow, row_labels = images[:100], 10, None
    if args.labels is not None and args.class_ in (None, "all") and args.n >= n_classes:
        nrow = min(10, args.n // n_classes)                      # one row per class, as the run's grids
        grid = np.concatenate([images[args.labels == k][:nrow] for k in range(n_classes)])
        row_labels = class_names(config["dataset"])
    save_grid(grid, args.grid, nrow=nrow, row_labels=row_labels)
    written.append(args.grid)
    print(f"wrote {args.grid}: {len(grid)} images" + (", one row per class" if row_labels else ""))


if __name__ == "__main__":
    sys.exit(main())
