"""The CycleGAN settings table of docs/TRANSLATION.md, from finished runs' eval.json files.

    python benchmarks/cyclegan_table.py "default=runs/cycle/default-s{0,1,2}" ...

Each argument is LABEL=RUN[,RUN...] (one run per seed, each a directory written by
``python -m npgan.translate train`` with its eval.json). A row gives the mean and the spread
(the sample standard deviation over the runs) of the evaluation classifier's accuracy on G_ba(B)
for the test photo and for each held-out photo, then the per-seed figures of the test photo and
the A -> B -> A round trip. A run with the semantic term also has the semantic classifier's
reading of the test photo (the generators were trained to satisfy that one), in its own table.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np


def read_scores(run):
    path = Path(run) / "eval.json"
    if not path.is_file():
        sys.exit(f"{path}: no such file (train the run to the end, or `python -m npgan.translate eval {run}`)")
    return json.loads(path.read_text())


def mean_spread(values):
    values = 100 * np.asarray(values, np.float64)
    if len(values) == 1:
        return f"{values[0]:.1f}%"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}%"


def table(rows):
    """Markdown tables for rows [(label, [scores of each seed])]."""
    photos = list(rows[0][1][0].get("held_out_photos", {}))
    lines = ["| setting (seeds) | test photo (chelsea) | " + " | ".join(f"held out: {p}" for p in photos)
             + " | test photo per seed | A -> B -> A read right |",
             "|---|---|" + "---|" * len(photos) + "---|---|"]
    for label, runs in rows:
        test = [s["accuracy"]["cyclegan"] for s in runs]
        held = [mean_spread([s["held_out_photos"][p]["cyclegan"] for s in runs]) for p in photos]
        per_seed = ", ".join(f"{100 * v:.1f}" for v in test)
        lines.append(f"| {label} ({len(runs)}) | **{mean_spread(test)}** | " + " | ".join(held)
                     + f" | {per_seed} | {mean_spread([s['cycle_a_accuracy'] for s in runs])} |")
    first = rows[0][1][0]
    lines += ["", "| baselines on the same images (the first run's crops) | test photo | "
              + " | ".join(photos) + " |", "|---|---|" + "---|" * len(photos)]
    for key, name in (("grey", "grey (luma)"), ("inverted_grey", "inverted grey"),
                      ("grey_or_inverted_oracle", "grey or inverted, the better per image (oracle)")):
        lines.append(f"| {name} | {100 * first['accuracy'][key]:.1f}% | "
                     + " | ".join(f"{100 * first['held_out_photos'][p][key]:.1f}%" for p in photos) + " |")
    own = [(label, runs) for label, runs in rows if all("semantic_classifier" in s for s in runs)]
    if own:
        lines += ["", "| read by the semantic term's own classifier f | test photo | " + " | ".join(photos) + " |",
                  "|---|---|" + "---|" * len(photos)]
        for label, runs in own:
            lines.append(f"| {label} | {mean_spread([s['semantic_classifier']['accuracy']['cyclegan'] for s in runs])} | "
                         + " | ".join(mean_spread([s["semantic_classifier"]["held_out_photos"][p]["cyclegan"]
                                                   for s in runs]) for p in photos) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rows", nargs="+", metavar="LABEL=RUN[,RUN...]", help="a row: its label and its runs")
    args = parser.parse_args(argv)
    rows = []
    for row in args.rows:
        label, sep, runs = row.partition("=")
        if not sep or not runs:
            parser.error(f"{row!r}: expected LABEL=RUN[,RUN...]")
        rows.append((label, [read_scores(run) for run in runs.split(",")]))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
