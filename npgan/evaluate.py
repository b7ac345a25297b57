"""Score a trained run: ``python -m npgan.evaluate runs/NAME [--n 2000]``.

Generates ``--n`` images from the run's checkpoint and prints the classifier-feature
Fréchet distance to the held-out real images, the predicted-class histogram, its KL
divergence from uniform and the mean confidence (see :mod:`npgan.metrics`). The
evaluation classifier is trained on first use (well under a minute for the MNIST subset)
and cached. ``--json`` prints the scores as one JSON object instead.
"""
import json
import sys

from . import metrics
from .data import load_dataset
from .sample import generate, parse_run_args, run_parser


def evaluate_run(G, config, n=2000, seed=0, dataset=None, verbose=True):
    """Scores of generator ``G`` trained with ``config`` (a dict with ``dataset``, ``data_dir``
    and ``z_dim``); ``dataset`` is loaded when not given. Adds the classifier's accuracy."""
    if dataset is None:
        dataset = load_dataset(config["dataset"], data_dir=config.get("data_dir"), verbose=verbose)
    clf, info = metrics.get_classifier(dataset, verbose=verbose)
    images = generate(G, n, z_dim=config["z_dim"], seed=seed)
    scores = metrics.evaluate_images(images, dataset, clf)
    scores["classifier_accuracy"] = info["test_accuracy"]
    return scores


def parse_args(argv=None):
    # A Frechet distance needs a covariance, so at least two images.
    parser = run_parser("python -m npgan.evaluate", __doc__.split("\n")[0], n_default=2000, n_min=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parse_run_args(parser, argv)


def main(argv=None):
    args, G, config, step = parse_args(argv)
    scores = evaluate_run(G, config, n=args.n, seed=args.seed, verbose=not args.json)
    if args.json:
        print(json.dumps(scores))
    else:
        from .data import class_names
        print(f"{args.run}: {config['model']} on {config['dataset']}, step {step}")
        print(metrics.format_scores(scores, class_names(config["dataset"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
