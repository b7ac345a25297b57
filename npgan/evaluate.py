"""Score a trained run: ``python -m npgan.evaluate runs/NAME [--n 2000]``.

Generates ``--n`` images from the run's checkpoint and prints the classifier-feature
Fréchet distance to the held-out real images, the predicted-class histogram, its KL
divergence from uniform, the mean confidence and the recognisability (see :mod:`npgan.metrics`).
The recognisability is the fraction of samples that a second, junk-aware classifier reads as one
class with probability >= 0.5, beside the same fraction of real held-out images: the evaluation
classifier was only ever shown digits and reads most overlays of two digits, and blurry blends,
as a digit, while this one was also trained to answer "no class" (uniform) on such junk. Both
classifiers are trained on first use (well under a minute each for the MNIST subset) and cached.
``--json`` prints the scores as one JSON object instead. Below ``npgan.metrics.MIN_FRECHET_N``
(500) images the Fréchet distance is mostly sample-size bias, and a ``note:`` line (``"note"``
in the JSON) says so. A class-conditional run (``--conditional``) draws 1,000 images per class
by default and adds its class accuracy, overall and per class: the fraction of the samples drawn
for class k that the classifier reads as class k. ``--truncation T`` scores truncated noise
(every |z| > T drawn again, Brock et al. 2019): a trade of diversity for fidelity, to be
reported apart from the untruncated scores.

The data set is read as the run was trained on it: from the ``--data-dir`` it was trained
with (or the one given here), which must still hold it (exit 2 naming the folder otherwise).
"""
import json
import sys

from .cli import exits_130_on_ctrl_c, parse_run_args, run_parser
from .data import class_names, load_dataset
from .metrics import evaluate_generator, format_scores


def build_parser():
    # A Frechet distance needs a covariance, so at least two images.
    parser = run_parser("python -m npgan.evaluate", __doc__.split("\n")[0], n_default=2000, n_min=2,
                        n_conditional=1000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding the data set's IDX files (default: the run's own --data-dir, if any)")
    return parser


def parse_args(argv=None):
    return parse_run_args(build_parser(), argv)


@exits_130_on_ctrl_c
def main(argv=None):
    parser = build_parser()
    args, G, config, step = parse_run_args(parser, argv)
    data_dir = args.data_dir or config.get("data_dir")
    try:
        dataset = load_dataset(config["dataset"], data_dir=data_dir, verbose=not args.json)
    except (OSError, ValueError) as err:                      # the run's --data-dir gone, a damaged file
        trained = f" ({args.run} was trained with --data-dir {data_dir})" if data_dir and not args.data_dir else ""
        parser.error(f"{err}{trained}")
    scores = evaluate_generator(G, config, n=args.n, seed=args.seed, dataset=dataset, verbose=not args.json,
                                truncation=args.truncation)
    if args.json:
        print(json.dumps(scores))
    else:
        truncated = f", noise truncated at {args.truncation:g}" if args.truncation is not None else ""
        print(f"{args.run}: {config['model']} on {config['dataset']}, step {step}{truncated}")
        print(format_scores(scores, class_names(config["dataset"]), n_option="--n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
