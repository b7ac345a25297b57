"""The GAN objectives and stabilisers side by side: each trained by ``python -m npgan.train`` on
MNIST at the default step count, for several seeds, and scored by its final evaluation.

    python benchmarks/compare_objectives.py                       # every setting, seeds 0 1 2
    python benchmarks/compare_objectives.py --settings ns wgan-gp --seeds 0
    python benchmarks/compare_objectives.py --table-only          # the table from the runs present

Each run is ``python -m npgan.train mnist --seed S --out WORK/NAME-sS`` plus the setting's
flags, at its documented defaults (the objective's published optimizer, learning rate, betas
and critic updates). A run directory that already holds ``metrics.json`` is not trained again,
so the script can be stopped and restarted. The results go to ``WORK/results.json``; the
markdown table (mean +- standard deviation over the seeds present, per setting) and one sample
grid per setting (seed 0) are printed and drawn into ``--figure``. ``--ema`` does not change
training (the average only reads G), so the ``ns`` row is the ``ns + ema`` run scored with G's
own weights (``npgan.evaluate --no-ema``) rather than a second, identical run.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {
    "ns": [],
    "minimax": ["--loss", "minimax"],
    "lsgan": ["--loss", "lsgan"],
    "hinge": ["--loss", "hinge"],
    "wgan": ["--loss", "wgan"],
    "wgan-gp": ["--loss", "wgan-gp"],
    "r1": ["--loss", "r1"],
    "ns + ema 0.999": ["--ema", "0.999"],
    "ns + spectral norm": ["--spectral-norm"],
    "ns + label smoothing 0.1": ["--label-smoothing", "0.1"],
    "ns + TTUR (1e-4 / 4e-4)": ["--lr", "1e-4", "--lr-d", "4e-4"],
    "ns + instance noise 0.1": ["--instance-noise", "0.1"],
    "minimax + slow D (lr-d 5e-5)": ["--loss", "minimax", "--lr-d", "5e-5"],
    "ns + slow D (lr-d 5e-5)": ["--lr-d", "5e-5"],
}


# An average of G's weights only reads G, so `--ema` trains bitwise as without it: the ns row is
# the ema run's own G (`--no-ema`), and one run gives both rows.
SAME_RUN = {"ns": "ns + ema 0.999"}


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def train(name, seed, work, steps):
    out = work / f"{slug(name)}-s{seed}"
    if (out / "metrics.json").is_file():
        return
    cmd = [sys.executable, "-m", "npgan.train", "mnist", "--seed", str(seed), "--out", str(out), "--overwrite",
           "--no-progress", *SETTINGS[name]] + (["--steps", str(steps)] if steps else [])
    print("$", " ".join(cmd[1:]), flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.log").write_text(done.stdout + done.stderr)
    health = [line for line in done.stdout.splitlines() if line.startswith("health:")]
    (out / "run.json").write_text(json.dumps({"seconds": seconds, "returncode": done.returncode,
                                              "health": health[-1] if health else None}) + "\n")
    print(f"  exit {done.returncode} after {seconds:.0f} s; {health[-1] if health else 'no health line'}", flush=True)


def own_generator_row(name, seed, work):
    """The row of ``name`` from the run of ``SAME_RUN[name]``, scored with G's own weights."""
    source, out = (work / f"{slug(n)}-s{seed}" for n in (SAME_RUN[name], name))
    if (out / "metrics.json").is_file() or not (source / "metrics.json").is_file():
        return
    out.mkdir(parents=True, exist_ok=True)
    npgan = [sys.executable, "-m"]
    scores = subprocess.run(npgan + ["npgan.evaluate", str(source), "--no-ema", "--json"],
                            capture_output=True, text=True, check=True).stdout
    subprocess.run(npgan + ["npgan.sample", str(source), "--no-ema", "--n", "100", "--out", str(out / "samples.npy"),
                            "--grid", str(out / "samples.png")], capture_output=True, check=True)
    (out / "config.json").write_text((source / "config.json").read_text())
    info = json.loads((source / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**info, "same_run_as": source.name}) + "\n")
    (out / "metrics.json").write_text(scores)
    print(f"  {name}: {source.name} scored with G's own weights", flush=True)


def collect(work):
    rows = {}
    for name in SETTINGS:
        for run in sorted(work.glob(f"{slug(name)}-s*")):
            if not re.fullmatch(rf"{re.escape(slug(name))}-s\d+", run.name) or not (run / "metrics.json").is_file():
                continue
            scores = json.loads((run / "metrics.json").read_text())
            info = json.loads((run / "run.json").read_text())
            steps = json.loads((run / "config.json").read_text())["steps"]
            rows.setdefault(name, []).append({"seed": int(run.name.rsplit("-s", 1)[1]), "steps": steps,
                                              "dir": str(run), **info, **scores})
    return rows


def mean_std(values, digits=None):
    import numpy as np
    values = np.asarray(values, dtype=float)
    digits = digits if digits is not None else 3 if values.mean() < 10 else 1
    return f"{values.mean():.{digits}f}" + (f" +- {values.std(ddof=1):.{digits}f}" if len(values) > 1 else "")


def health_text(runs):
    """'none', or each warned seed's health line without its boilerplate."""
    warned = [(r["seed"], r["health"]) for r in runs if r["health"] and "no warnings" not in r["health"]]
    if not warned:
        return "none"
    shorten = lambda line: line.removeprefix("health: ").split(" (see ")[0]
    return "; ".join(f"seed {seed}: {shorten(line)}" for seed, line in warned)


def table(rows):
    lines = ["| setting | seeds | Frechet distance | class KL | confidence | minutes | health warnings |",
             "|---|---|---|---|---|---|---|"]
    for name, runs in rows.items():
        lines.append(f"| {name} | {', '.join(str(r['seed']) for r in runs)} | "
                     f"{mean_std([r['frechet_distance'] for r in runs])} | {mean_std([r['kl_from_uniform'] for r in runs])} | "
                     f"{mean_std([r['mean_confidence'] for r in runs])} | {mean_std([r['seconds'] / 60 for r in runs], 1)} | "
                     f"{health_text(runs)} |")
    return "\n".join(lines)


def figure(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    shown = [(name, runs[0]) for name, runs in rows.items()]
    cols = 4
    fig, axes = plt.subplots((len(shown) + cols - 1) // cols, cols, figsize=(3 * cols, 3.3 * ((len(shown) + cols - 1) // cols)))
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, run) in zip(axes.flat, shown):
        with Image.open(Path(run["dir"]) / "samples.png") as grid:
            ax.imshow(grid.convert("L"), cmap="gray")
        ax.set_title(f"{name}\nFD {run['frechet_distance']:.1f} (seed {run['seed']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"figure: {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=2500,
                   help="training steps (default 2,500, the length docs/OBJECTIVES.md was measured at)")
    p.add_argument("--work-dir", default="runs/objectives")
    p.add_argument("--figure", default="docs/images/objectives_samples.png")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args(argv)
    work = Path(args.work_dir)
    for seed in args.seeds:                          # every setting once before the next seed
        for name in args.settings:
            if not args.table_only:
                train(SAME_RUN.get(name, name), seed, work, args.steps)
            if name in SAME_RUN:
                own_generator_row(name, seed, work)
    rows = collect(work)
    (work / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows))
    if rows and args.figure:
        figure(rows, args.figure)


if __name__ == "__main__":
    main()
