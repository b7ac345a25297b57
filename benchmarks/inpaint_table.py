"""An inpainting table over seeds, from the metrics.json of several ``python -m npgan.inpaint eval`` runs.

    python benchmarks/inpaint_table.py runs/inpaint/eval-natural-s0 runs/inpaint/eval-natural-s1 ...

Each argument is an eval directory (one per seed, all on the same held-out images: ``eval``
picks them with a fixed seed). A method is a row label without its ", seed N" part, so the
same method trained with seeds 0, 1 and 2 makes one row; rows keep the first eval's order.
Each cell is the mean +- the sample standard deviation over the evals that have the method
(the baselines have no seed and score the same in every eval: one figure). ``fill (ms/img)`` is the
eval's fill time divided by the number of images.
"""
import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from compare_objectives import mean_std          # a sibling script: its directory is on sys.path

COLUMNS = (("psnr_hole", "PSNR hole (dB)", 2), ("ssim_hole", "SSIM hole", 3), ("l1_hole", "L1 hole", 4),
           ("sharpness", "sharpness", 2), ("perceptual", "perceptual", 4))
SEED = re.compile(r", seed \d+$")


def read_eval(path):
    path = Path(path) / "metrics.json"
    if not path.is_file():
        sys.exit(f"{path}: no such file (run `python -m npgan.inpaint eval RUN... --out {path.parent}`)")
    return json.loads(path.read_text())


def table(evals):
    """A Markdown table of the rows of ``evals`` (metrics.json contents), grouped by method."""
    methods = {}
    for scores in evals:
        for row in scores["rows"]:
            methods.setdefault(SEED.sub("", row["method"]), []).append((row, scores["n"]))
    head = ["method", "seeds"] + [name for _, name, _ in COLUMNS] + ["train (s)", "fill (ms/img)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, rows in methods.items():
        trained = [r["train_s"] for r, _ in rows if r.get("train_s") is not None]
        baseline = rows[0][0]["run"] == "-"                        # the same images: the same scores
        scored = rows[:1] if baseline else rows
        cells = [method, "-" if baseline else str(len(rows))]
        cells += [mean_std([r[key] for r, _ in scored], digits) for key, _, digits in COLUMNS]
        cells.append(f"{np.mean(trained):.0f}" if trained else "-")
        cells.append(f"{np.mean([1000 * r['fill_s'] / n for r, n in rows]):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    first = evals[0]
    return f"{first['dataset']}, {first['mask']} holes, {first['n']} held-out images\n\n" + "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("evals", nargs="+", help="eval directories (one per seed) holding metrics.json")
    args = parser.parse_args(argv)
    evals = [read_eval(path) for path in args.evals]
    kinds = {(e["dataset"], e["mask"], e["n"]) for e in evals}
    if len(kinds) > 1:
        parser.error(f"the evals are on different images: {sorted(kinds)}")
    print(table(evals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
