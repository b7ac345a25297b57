"""Score a trained run: ``python -m npgan.evaluate runs/NAME [--n 2000]``.

Generates ``--n`` images from the run's checkpoint and prints the classifier-feature
Fréchet distance to the held-out real images, the predicted-class histogram, its KL
divergence from uniform and the mean confidence (see :mod:`npgan.metrics`). The
evaluation classifier is trained on first use (well under a minute for the MNIST subset)
and cached. ``--json`` prints the scores as one JSON object instead.
"""
import json
import sys

from .cli import parse_run_args, run_parser
from .data import class_names
from .metrics import evaluate_generator, format_scores


def parse_args(argv=None):
    # A Frechet distance needs a covariance, so at least two images.
    parser = run_parser("python -m npgan.evaluate", __doc__.split("\n")[0], n_default=2000, n_min=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parse_run_args(parser, argv)


def main(argv=None):
    args, G, config, step = parse_args(argv)
    scores = evaluate_generator(G, config, n=args.n, seed=args.seed, verbose=not args.json)
    if args.json:
        print(json.dumps(scores))
    else:
        print(f"{args.run}: {config['model']} on {config['dataset']}, step {step}")
        print(format_scores(scores, class_names(config["dataset"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
