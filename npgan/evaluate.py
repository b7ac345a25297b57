"""Score a trained run: ``python -m npgan.evaluate runs/NAME [--n 2000]``.

Generates ``--n`` images from the run's checkpoint and prints the classifier-feature
Fréchet distance to the held-out real images, the predicted-class histogram, its KL
divergence from uniform and the mean confidence (see :mod:`npgan.metrics`). The
evaluation classifier is trained on first use (well under a minute for the MNIST subset)
and cached. ``--json`` prints the scores as one JSON object instead.
"""
import argparse
import json
import sys
from pathlib import Path

from . import backend, metrics
from .data import load_dataset
from .sample import generate, load_generator


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
    parser = argparse.ArgumentParser(prog="python -m npgan.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a run directory written by `python -m npgan.train`")
    parser.add_argument("--n", type=int, default=2000, help="generated images to score (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                        help="array backend (default: $NPGAN_BACKEND or numpy)")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error(f"--n must be at least 2, got {args.n}")
    if not (Path(args.run) / "checkpoint.npz").is_file():
        parser.error(f"no checkpoint.npz in {args.run}: is it a training run directory?")
    if args.backend:
        try:
            backend.use(args.backend)
        except backend.BackendError as err:
            parser.error(str(err))
    return args


def main(argv=None):
    args = parse_args(argv)
    G, config = load_generator(args.run)
    scores = evaluate_run(G, config, n=args.n, seed=args.seed, verbose=not args.json)
    if args.json:
        print(json.dumps(scores))
    else:
        from .data import class_names
        print(f"{args.run}: {config['model']} on {config['dataset']}, step {config.get('steps', '?')}")
        print(metrics.format_scores(scores, class_names(config["dataset"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
