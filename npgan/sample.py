"""Generate images from a trained run: ``python -m npgan.sample runs/NAME --n 10000 --out samples.npy``.

Writes float32 (N, 28, 28) in [-1, 1] (``.npy``), drawn under ``G.eval()`` from noise
seeded by ``--seed``, so the same command gives the same images. ``--grid samples.png``
also saves the first 100 as a picture.

Also the library side used by training and evaluation: ``build_models``,
``load_generator`` and ``generate``.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from . import backend
from .checkpoint import load_generator_state
from .models import dcgan, mlp_gan

MODELS = {"dcgan": dcgan, "mlp": mlp_gan}


def build_models(name):
    """``(G, D)`` of the named architecture (``'dcgan'`` or ``'mlp'``), freshly initialised
    from the backend's random generator."""
    module = MODELS[name]
    return module.Generator(), module.Discriminator()


def load_generator(run_dir):
    """The generator of ``run_dir/checkpoint.npz``, the run's configuration and the step the
    checkpoint was saved at (below ``config['steps']`` for an interrupted run).

    Raises FileNotFoundError or ValueError (a damaged or foreign checkpoint) naming the file."""
    path = Path(run_dir) / "checkpoint.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a training run directory?")
    state, config, step = load_generator_state(path)
    if config.get("model") not in MODELS:
        raise ValueError(f"{path}: unknown model {config.get('model')!r} (expected one of {', '.join(MODELS)})")
    G = MODELS[config["model"]].Generator()
    try:
        G.load_state_dict(state)
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: the stored generator is not a {config['model']} generator ({err})") from None
    return G.eval(), config, step


def fixed_noise(n, z_dim, seed):
    """``n`` standard-normal codes (n, z_dim) float32, drawn on the host from ``seed`` so they
    are the same on every backend and after a resume."""
    return np.random.default_rng(seed).standard_normal((n, z_dim)).astype(np.float32)


def generate(G, n, z_dim=100, seed=0, batch_size=500):
    """``n`` images from ``G`` in eval mode: host float32 (n, 28, 28) in [-1, 1].

    G's training mode is restored afterwards.
    """
    was_training = G.training
    G.eval()
    z = fixed_noise(n, z_dim, seed)
    images = []
    for start in range(0, n, batch_size):
        fake = G.forward(backend.to_device(z[start:start + batch_size]))       # (b, 1, 28, 28)
        images.append(backend.asnumpy(fake)[:, 0])
    G.train(was_training)
    return np.concatenate(images).astype(np.float32, copy=False)


def run_parser(prog, description, n_default, n_min):
    """The arguments every command reading a training run shares: the run, ``--n``, ``--seed``
    and ``--backend``; ``parse_run_args`` checks them."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("run", help="a run directory written by `python -m npgan.train`")
    parser.add_argument("--n", type=int, default=n_default, help=f"number of images (default {n_default})")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                        help="array backend (default: $NPGAN_BACKEND or numpy)")
    parser.set_defaults(n_min=n_min)
    return parser


def parse_run_args(parser, argv=None):
    """Parse, then load the run's generator. Exits 2 with a clear message for a too-small --n,
    an unavailable backend, or a missing, damaged or foreign checkpoint.

    Returns (args, G, config, step) as :func:`load_generator`."""
    args = parser.parse_args(argv)
    if args.n < args.n_min:
        parser.error(f"--n must be at least {args.n_min}, got {args.n}")
    if not (Path(args.run) / "checkpoint.npz").is_file():
        parser.error(f"no checkpoint.npz in {args.run}: is it a training run directory?")
    backend.use_from_cli(args.backend, parser)
    try:
        return (args,) + load_generator(args.run)
    except ValueError as err:
        parser.error(str(err))


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
