"""Command-line pieces the applications share (``python -m npgan.sample`` and ``npgan.evaluate``
read a training run the same way). Applications import this, never each other."""
import argparse
import functools
import math
import sys
from pathlib import Path

from . import backend
from .errors import EXIT_INTERRUPTED
from .models import load_generator


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, except that an error found after the command line was parsed (a damaged
    checkpoint, a run of another kind, a value no run can use) prints only its one line: the
    usage block is for mistakes in the command line's syntax. Subcommands' parsers are of this
    class too."""
    parsed = False

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        self.parsed = True
        return parsed

    def error(self, message):
        if not self.parsed:
            super().error(message)
        self.exit(2, f"{self.prog}: error: {message}\n")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with the line saying what the command had saved when it came."""


def exits_130_on_ctrl_c(main):
    """Wrap a command's ``main(argv)``: Ctrl-C ends it with one line on stderr (an ``Interrupted``'s
    own, or "nothing was written") and exit status 130, never a traceback."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt as err:
            print(f"\n{err}" if isinstance(err, Interrupted) else "\ninterrupted: nothing was written",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
    return wrapped


def run_parser(prog, description, n_default, n_min, n_conditional=None):
    """The arguments every command reading a training run shares: the run, ``--n``, ``--seed``
    and ``--backend``; ``parse_run_args`` checks them. ``n_conditional``: the default ``--n``
    per class for a class-conditional run (instead of ``n_default`` in all)."""
    parser = ArgumentParser(prog=prog, description=description)
    parser.add_argument("run", help="a run directory written by `python -m npgan.train`")
    per_class = f"; a conditional run: {n_conditional:,} per class" if n_conditional else ""
    parser.add_argument("--n", type=int, default=None, help=f"number of images (default {n_default:,}{per_class})")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                        help="array backend (default: $NPGAN_BACKEND or numpy)")
    parser.add_argument("--no-ema", action="store_true",
                        help="for a run trained with --ema: use G's own weights instead of their average")
    parser.add_argument("--truncation", type=float, default=None, metavar="T",
                        help="the truncation trick (Brock et al. 2019): every noise value with |z| > T is drawn "
                             "again, so the images are more typical and less varied (e.g. 1.0; default off)")
    parser.set_defaults(n_min=n_min, n_default=n_default, n_conditional=n_conditional)
    return parser


def parse_run_args(parser, argv=None):
    """Parse, then load the run's generator. Exits 2 with a clear message for a too-small --n,
    an unavailable backend, or a missing, damaged or foreign checkpoint.

    Returns (args, G, config, step) as :func:`npgan.models.load_generator`; ``args.n`` is set
    to its default when not given."""
    args = parser.parse_args(argv)
    if args.n is not None and args.n < args.n_min:
        parser.error(f"--n must be at least {args.n_min}, got {args.n}")
    if args.truncation is not None and not (args.truncation > 0 and math.isfinite(args.truncation)):
        parser.error(f"--truncation must be a positive number, got {args.truncation}")
    if not (Path(args.run) / "checkpoint.npz").is_file():
        parser.error(f"no checkpoint.npz in {args.run}: is it a training run directory?")
    backend.use_from_cli(args.backend, parser)
    try:
        G, config, step = load_generator(args.run, averaged=not args.no_ema)
    except ValueError as err:
        parser.error(str(err))
    if args.no_ema and not config.get("ema"):
        parser.error(f"--no-ema: {args.run} was trained without --ema, so it has only G's own weights")
    if args.n is None:
        n_classes = config.get("n_classes")
        args.n = args.n_conditional * n_classes if n_classes and args.n_conditional else args.n_default
    return args, G, config, step
