"""The levers for a better default MNIST run, measured: augmentation, minibatch standard deviation,
a slower D, a longer run, a larger batch, wider networks, feature matching, the weight average, on
the 5,000-digit subset (and 1,000 digits).

    python benchmarks/compare_levers.py                         # every setting, seeds 0 1 2, 2 runs at a time
    python benchmarks/compare_levers.py --settings baseline "translation" --seeds 0
    python benchmarks/compare_levers.py --runs "minibatch std@0" "baseline@2"   # these runs, in this order
    python benchmarks/compare_levers.py --table-only            # score what is there, print the table

Each run is ``python -m npgan.train mnist --seed S --out WORK/NAME-sS --ema 0.999 --no-eval
--steps 2500`` plus the setting's flags (a later --steps wins), one BLAS thread per run and ``--jobs`` runs at a time. The weight average only
reads G (training is bitwise the same with it), so every run gives two rows: G's own weights
(``npgan.evaluate --no-ema``) and the average (``+ ema``). A run that finished is not trained again
and a run already scored is not scored again, so the script can be stopped and restarted.

Scores (``python -m npgan.evaluate --json``): recognisability (the share of 2,000 samples that the
junk-aware classifier reads with p >= 0.5; real held-out digits: about 95%), the Frechet distance
and class KL on the evaluation classifier, the mean confidence; from metrics.jsonl, the
overfitting signal at the end of the run (the final D's mean output on 256 random training images
minus 256 held-out ones) and r_t (the mean of the last five log points). ``WORK/results.json`` keeps every run's figures;
the table (mean +- standard deviation over the seeds present) goes to stdout and ``--table``.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from compare_objectives import health_text, mean_std, slug      # a sibling script: its directory is on sys.path

SETTINGS = {
    "baseline": [],
    "translation": ["--augment", "translation"],
    "translation,cutout": ["--augment", "translation,cutout"],
    "color,translation,cutout": ["--augment", "color,translation,cutout"],
    "translation, fill 0 (grey)": ["--augment", "translation", "--augment-fill", "0"],
    "translation,cutout p auto": ["--augment", "translation,cutout", "--augment-p", "auto"],
    "translation,cutout strength 0.5": ["--augment", "translation,cutout", "--augment-strength", "0.5"],
    "minibatch std": ["--minibatch-std"],
    "slow D (lr-d 5e-5)": ["--lr-d", "5e-5"],
    "5,000 steps": ["--steps", "5000"],
    "translation + minibatch std": ["--augment", "translation", "--minibatch-std"],
    "translation, 5,000 steps": ["--augment", "translation", "--steps", "5000"],
    "1,000 digits": ["--limit", "1000"],
    "1,000 digits + translation": ["--limit", "1000", "--augment", "translation"],
    "1,000 digits + translation,cutout": ["--limit", "1000", "--augment", "translation,cutout"],
    "feature matching": ["--feature-matching"],
    "batch 128": ["--batch-size", "128"],
    "wider (width 96)": ["--width", "96"],
}
EMA = ["--ema", "0.999"]
STEPS = 2500                        # the length of every row whose setting does not say otherwise


def train(name, seed, work, steps=None):
    out = work / f"{slug(name)}-s{seed}"
    if (out / "run.json").is_file() and json.loads((out / "run.json").read_text())["returncode"] == 0:
        return
    cmd = [sys.executable, "-m", "npgan.train", "mnist", "--seed", str(seed), "--out", str(out), "--overwrite",
           "--no-progress", "--no-eval", *EMA, "--steps", str(STEPS), *SETTINGS[name]] + (["--steps", str(steps)] if steps else [])
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print("$", " ".join(cmd[1:]), flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.log").write_text(done.stdout + done.stderr)
    health = [line for line in done.stdout.splitlines() if line.startswith("health:")]
    (out / "run.json").write_text(json.dumps({"seconds": seconds, "returncode": done.returncode,
                                              "health": health[-1] if health else None}) + "\n")
    print(f"  {out.name}: exit {done.returncode} after {seconds:.0f} s; {health[-1] if health else ''}", flush=True)


def score(out):
    """scores.json: the evaluation of G's own weights and of the average, and the overfitting signal."""
    if (out / "scores.json").is_file() or not (out / "run.json").is_file() or not (out / "checkpoint.npz").is_file():
        return
    evaluate = [sys.executable, "-m", "npgan.evaluate", str(out), "--json"]
    own = json.loads(subprocess.run(evaluate + ["--no-ema"], capture_output=True, text=True, check=True).stdout)
    ema = json.loads(subprocess.run(evaluate, capture_output=True, text=True, check=True).stdout)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    signal = {"overfit_gap": final_overfit_gap(out), "r_t": sum(r["r_t"] for r in records[-5:]) / 5}
    (out / "scores.json").write_text(json.dumps({"own": own, "ema": ema, **signal}) + "\n")
    subprocess.run([sys.executable, "-m", "npgan.sample", str(out), "--no-ema", "--n", "100",
                    "--grid", str(out / "grid_own.png"), "--out", str(out / "grid_own.npy")], capture_output=True)


def final_overfit_gap(out):
    """D_train - D_heldout of the run's final D (``npgan.health.DiscriminatorProbe``: 256 random
    training images of the run, 256 held-out ones)."""
    from npgan import checkpoint, health
    from npgan.data import load_dataset
    from npgan.gan.run import build_training
    ckpt = checkpoint.load_checkpoint(out / "checkpoint.npz")
    data = load_dataset("mnist", verbose=False)
    if ckpt["config"].get("limit"):
        data = data.limited(ckpt["config"]["limit"])
    D = build_training(ckpt["config"], ckpt)[1]
    probed = health.DiscriminatorProbe.of_data(data.train_images, data.test_images)(D)
    return probed["D_train"] - probed["D_heldout"]


def collect(work, names):
    rows = {}
    for name in names:
        for kind in ("own", "ema"):
            label = name if kind == "own" else f"{name} + ema"
            for run in sorted(work.glob(f"{slug(name)}-s*")):
                if run.name.rsplit("-s", 1)[0] != slug(name) or not (run / "scores.json").is_file():
                    continue
                s = json.loads((run / "scores.json").read_text())
                info = json.loads((run / "run.json").read_text())
                rows.setdefault(label, []).append({"seed": int(run.name.rsplit("-s", 1)[1]), "dir": str(run), **info,
                                                   **s[kind], "overfit_gap": s["overfit_gap"], "r_t": s["r_t"]})
    return rows


def table(rows):
    lines = ["| setting | seeds | recognisable | Frechet distance | class KL | confidence | D train - held-out "
             "| r_t | minutes | health |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, runs in rows.items():
        lines.append(f"| {name} | {', '.join(str(r['seed']) for r in runs)} | "
                     f"{mean_std([100 * r['recognisability'] for r in runs], 1)}% | "
                     f"{mean_std([r['frechet_distance'] for r in runs], 1)} | {mean_std([r['kl_from_uniform'] for r in runs])} | "
                     f"{mean_std([r['mean_confidence'] for r in runs])} | {mean_std([r['overfit_gap'] for r in runs])} | "
                     f"{mean_std([r['r_t'] for r in runs], 2)} | {mean_std([r['seconds'] / 60 for r in runs], 1)} | "
                     f"{health_text(runs)} |")
    return "\n".join(lines)


def figure(rows, path):
    """One sample grid per setting (G's own weights, the lowest seed): what the scores describe."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    shown = [(name, runs[0]) for name, runs in rows.items() if not name.endswith("+ ema")]
    cols = 4
    nrows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3 * cols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, run) in zip(axes.flat, shown):
        with Image.open(Path(run["dir"]) / "grid_own.png") as grid:
            ax.imshow(grid.convert("L"), cmap="gray")
        ax.set_title(f"{name}\n{100 * run['recognisability']:.0f}% recognisable, FD {run['frechet_distance']:.0f} "
                     f"(seed {run['seed']})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"figure: {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--runs", nargs="+", default=None, metavar="SETTING@SEED",
                   help="train these runs, in this order, instead of every setting for every seed")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one BLAS thread each)")
    p.add_argument("--steps", type=int, default=None, help=f"train every run this long instead (a quick check); otherwise {STEPS:,} steps unless the setting "
                        "says otherwise")
    p.add_argument("--work-dir", default="runs/levers")
    p.add_argument("--table", default=None, help="also write the markdown table here")
    p.add_argument("--figure", default=None, help="draw one sample grid per setting here")
    p.add_argument("--table-only", action="store_true", help="score the finished runs and print the table")
    p.add_argument("--no-score", action="store_true", help="train only")
    args = p.parse_args(argv)
    work = Path(args.work_dir)
    if not args.table_only:                          # every seed of a setting before the next setting
        queue = [(name, seed) for name in args.settings for seed in args.seeds]
        if args.runs:
            queue = [(run.rsplit("@", 1)[0], int(run.rsplit("@", 1)[1])) for run in args.runs]
            unknown = [name for name, _ in queue if name not in SETTINGS]
            if unknown:
                p.error(f"unknown setting {unknown[0]!r}; the settings: {', '.join(SETTINGS)}")
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda job: train(job[0], job[1], work, args.steps), queue))
    if args.no_score:
        return
    for name in args.settings:
        for run in sorted(work.glob(f"{slug(name)}-s*")):
            score(run)
    rows = collect(work, args.settings)
    (work / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows))
    if args.table:
        Path(args.table).write_text(table(rows) + "\n")
    if args.figure and rows:
        figure(rows, args.figure)


if __name__ == "__main__":
    main()
