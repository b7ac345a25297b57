"""Generate images from a trained run: ``python -m npgan.sample runs/NAME --n 10000 --out samples.npy``.

Writes float32 (N, 28, 28) in [-1, 1] (``.npy``), drawn under ``G.eval()`` from noise
seeded by ``--seed``, so the same command gives the same images. ``--grid samples.png``
also saves the first 100 as a picture. The library side is ``npgan.gan.generate``.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from .cli import parse_run_args, run_parser
from .gan.sampling import generate


def _npy_path(text):
    if Path(text).suffix != ".npy":
        raise argparse.ArgumentTypeError(f"{text}: the samples are saved with np.save, so the name must end "
                                         f"in .npy (--grid writes a PNG)")
    return text


def parse_args(argv=None):
    parser = run_parser("python -m npgan.sample", __doc__.split("\n")[0], n_default=10000, n_min=1)
    parser.add_argument("--out", default="samples.npy", type=_npy_path, help="output .npy file (default samples.npy)")
    parser.add_argument("--grid", default=None, help="also save the first 100 images as this PNG")
    return parse_run_args(parser, argv)


def main(argv=None):
    args, G, config, _ = parse_args(argv)
    images = generate(G, args.n, z_dim=config["z_dim"], seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, images)
    print(f"wrote {out}: {images.shape} {images.dtype} in [{images.min():.3f}, {images.max():.3f}] "
          f"from {config['model']} trained {config['dataset']} ({args.run})")
    if args.grid:
        from .viz import save_grid
        save_grid(images[:100], args.grid, nrow=10)
        print(f"wrote {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
