"""Sample quality of npgan against PyTorch: the same DCGAN-MNIST-28, the same recipe, one classifier.

    python benchmarks/compare_torch_quality.py --npgan-run runs/mnist-dcgan --seeds 0 1
    python benchmarks/compare_torch_quality.py --seeds 0 1 2 --train-npgan     # train the npgan runs too
    python benchmarks/compare_torch_quality.py --table-from a.json b.json      # one table from earlier runs

For every seed, PyTorch trains the reference architecture of ``npgan.models.dcgan`` on the CPU
with npgan's recipe: weights N(0, 0.02) (BatchNorm gamma N(1, 0.02)), biases 0, Adam(2e-4,
(0.5, 0.999)) on G and D, batch 64, the non-saturating loss on D's logits, one D step (real
and G(z).detach()) then one G step through the updated D, and the *same real batches* as an
npgan run with that seed (``npgan.gan.run.real_batches``). Its noise comes from PyTorch's own
generator, so the two runs share the recipe and the data, not the random numbers.

Both generators are then sampled in eval mode (BatchNorm running statistics) from the same
noise vectors and scored by ``npgan.metrics`` (the classifier npgan trains on the training
split and caches; neither GAN saw it): the Frechet distance of its penultimate-layer features
to the held-out images, the KL divergence of the predicted-class histogram from uniform, and
the mean top-class confidence. The table at the end gives each run and the mean +- standard
deviation over seeds per implementation, so a gap can be read against seed-to-seed noise.

npgan runs come from ``--npgan-run DIR`` (a directory written by ``python -m npgan.train``;
its seed and step count are read from its config) or, with ``--train-npgan``, are trained
here for each seed that no given run covers (``--work-dir``, default runs/compare-SEED).
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from npgan import backend, metrics, train
from npgan.gan import fixed_noise, generate
from npgan.gan.run import real_batches
from npgan.checkpoint import load_checkpoint
from npgan.data import load_dataset, scale_images
from npgan.models import dcgan, load_generator

try:
    import torch
    from torch import nn
except ImportError:                                                           # pragma: no cover
    torch = None


# ---- PyTorch: the same architecture and training loop -----------------------------------
def torch_dcgan(seed):
    """G and D of DCGAN-MNIST-28 (see ``npgan.models.dcgan``) with the DCGAN initialisation."""
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(100, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
                      nn.Unflatten(1, (128, 7, 7)),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
                      nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
                      nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
    for m in list(G.modules()) + list(D.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return G, D


def train_torch(dataset, seed, steps, batch_size=dcgan.BATCH_SIZE, log_every=500):
    """Train the PyTorch DCGAN for ``steps`` steps; returns (G in eval mode, seconds)."""
    G, D = torch_dcgan(seed)
    opt_G = torch.optim.Adam(G.parameters(), lr=dcgan.LR, betas=dcgan.BETAS)
    opt_D = torch.optim.Adam(D.parameters(), lr=dcgan.LR, betas=dcgan.BETAS)
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch_size, 1), torch.zeros(batch_size, 1)
    batches = real_batches(dataset.train_images, batch_size, seed)       # npgan's data order
    start = time.perf_counter()
    for step in range(1, steps + 1):
        real = torch.from_numpy(scale_images(next(batches))[:, None])          # (B, 1, 28, 28) in [-1, 1]
        z = torch.randn(batch_size, dcgan.Z_DIM)
        fake = G(z)
        # D step: BCE(D(x), 1) + BCE(D(G(z)), 0), G held fixed
        opt_D.zero_grad()
        loss_D = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        loss_D.backward()
        opt_D.step()
        # G step: the non-saturating loss BCE(D(G(z)), 1) through the updated D
        opt_G.zero_grad()
        loss_G = bce(D(fake), ones)
        loss_G.backward()
        opt_G.step()
        if step % log_every == 0 or step == steps:
            print(f"  torch seed {seed} step {step}: loss_D {loss_D.item():.3f}  loss_G {loss_G.item():.3f}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    return G.eval(), time.perf_counter() - start


def torch_generate(G, n, seed, batch_size=500):
    """``n`` images (n, 28, 28) float32 in [-1, 1] from the same noise as ``npgan.gan.generate``."""
    z = torch.from_numpy(fixed_noise(n, dcgan.Z_DIM, seed))
    with torch.no_grad():
        return torch.cat([G(z[i:i + batch_size]) for i in range(0, n, batch_size)])[:, 0].numpy()


# ---- npgan runs ------------------------------------------------------------------------
def npgan_run_for_seed(seed, steps, work_dir):
    """Train an npgan DCGAN run with ``seed`` for ``steps`` steps (or reuse a finished one)."""
    out = Path(work_dir.format(seed=seed))
    if (out / "checkpoint.npz").is_file() and load_checkpoint(out / "checkpoint.npz")["step"] == steps:
        return out
    argv = ["mnist", "--steps", str(steps), "--seed", str(seed), "--out", str(out), "--no-eval", "--no-progress",
            "--log-every", "500", "--overwrite"]
    print(f"training npgan: python -m npgan.train {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    if train.main(argv) != 0:
        raise SystemExit(f"npgan training failed for seed {seed}")
    (out / "train_seconds.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    return out


def score(images, dataset, clf):
    s = metrics.evaluate_images(images, dataset, clf)
    hist = np.asarray(s["class_histogram"])
    return {"frechet_distance": s["frechet_distance"], "kl_from_uniform": s["kl_from_uniform"],
            "mean_confidence": s["mean_confidence"], "min_class_share": float(hist.min()),
            "frechet_distance_real": s["frechet_distance_real"], "real_mean_confidence": s["real_mean_confidence"],
            "class_histogram": s["class_histogram"]}


# ---- the report ------------------------------------------------------------------------
COLUMNS = (("frechet_distance", "Frechet distance", ".2f"), ("kl_from_uniform", "KL from uniform", ".4f"),
           ("mean_confidence", "mean confidence", ".3f"), ("min_class_share", "rarest class", ".1%"))


def table(rows):
    """A Markdown table: one line per run, then mean +- std per implementation."""
    head = "| implementation | seed | steps | train s | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (4 + len(COLUMNS))]
    for r in rows:
        secs = f"{r['train_seconds']:.0f}" if r.get("train_seconds") else "-"
        lines.append(f"| {r['impl']} | {r['seed']} | {r['steps']} | {secs} | "
                     + " | ".join(format(r[k], f) for k, _, f in COLUMNS) + " |")
    for impl in sorted({r["impl"] for r in rows}):
        group = [r for r in rows if r["impl"] == impl]
        cells = []
        for key, _, fmt in COLUMNS:
            values = np.array([r[key] for r in group])
            std = values.std(ddof=1) if len(values) > 1 else math.nan
            cells.append(f"{format(values.mean(), fmt)} +- {format(std, fmt)}" if len(values) > 1
                         else format(values.mean(), fmt))
        lines.append(f"| **{impl} mean** | {len(group)} seeds | | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--npgan-run", action="append", default=[], metavar="DIR",
                   help="an npgan run directory to score (repeatable)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds of the PyTorch runs (default: the seeds of the --npgan-run directories, else 0)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps (default: the npgan runs' step count, else {train.DEFAULT_STEPS})")
    p.add_argument("--train-npgan", action="store_true", help="train an npgan run for each seed not given")
    p.add_argument("--work-dir", default="runs/compare-{seed}", help="where --train-npgan writes (default %(default)s)")
    p.add_argument("--n", type=int, default=2000, help="generated images scored per run (default 2000)")
    p.add_argument("--eval-seed", type=int, default=0, help="seed of the scoring noise, shared by both (default 0)")
    p.add_argument("--threads", type=int, default=2, help="PyTorch threads (default 2)")
    p.add_argument("--grid", default=None, help="save the first PyTorch run's 10x10 sample grid to this PNG")
    p.add_argument("--json", default=None, help="also write all scores to this JSON file")
    p.add_argument("--table-from", nargs="+", default=None, metavar="JSON",
                   help="only print the table of scores saved by earlier --json runs (no training)")
    args = p.parse_args(argv)
    if args.table_from:
        rows = [r for path in args.table_from for r in json.loads(Path(path).read_text())["rows"]]
        print(table(sorted(rows, key=lambda r: (r["impl"], r["seed"]))))
        return 0
    if torch is None:
        p.error("PyTorch is not installed (pip install torch --index-url https://download.pytorch.org/whl/cpu)")
    torch.set_num_threads(args.threads)
    backend.use("numpy")

    runs = {}
    for d in args.npgan_run:
        if not (Path(d) / "checkpoint.npz").is_file():
            p.error(f"--npgan-run {d}: no checkpoint.npz there")
        ckpt = load_checkpoint(Path(d) / "checkpoint.npz")
        cfg = ckpt["config"]
        if cfg["model"] != "dcgan" or cfg["dataset"] != "mnist":
            p.error(f"--npgan-run {d}: a {cfg['model']} run on {cfg['dataset']}, not dcgan on mnist")
        if cfg["batch_size"] != dcgan.BATCH_SIZE or cfg["lr"] != dcgan.LR or cfg["beta1"] != dcgan.BETAS[0]:
            p.error(f"--npgan-run {d}: not the reference recipe (batch 64, lr 2e-4, beta1 0.5)")
        runs[cfg["seed"]] = (Path(d), ckpt["step"])
    steps_given = {s for _, s in runs.values()}
    if args.steps is None:
        if len(steps_given) > 1:
            p.error(f"the --npgan-run directories have different step counts {sorted(steps_given)}; pass --steps")
        args.steps = steps_given.pop() if steps_given else train.DEFAULT_STEPS
    for seed, (d, s) in runs.items():
        if s != args.steps:
            p.error(f"--npgan-run {d} stopped at step {s}, not --steps {args.steps}")
    seeds = args.seeds if args.seeds is not None else (sorted(runs) or [0])
    if args.train_npgan:
        for seed in seeds:
            if seed not in runs:
                runs[seed] = (npgan_run_for_seed(seed, args.steps, args.work_dir), args.steps)

    dataset = load_dataset("mnist")
    clf, info = metrics.get_classifier(dataset)
    print(f"scoring classifier: test accuracy {info['test_accuracy']:.2%} ({info['path']})")
    rows = []
    for seed, (d, _) in sorted(runs.items()):
        G, cfg = load_generator(d)
        images = generate(G, args.n, z_dim=cfg["z_dim"], seed=args.eval_seed)
        rows.append(dict(impl="npgan", seed=seed, steps=args.steps, run=str(d),
                         train_seconds=_npgan_seconds(d), **score(images, dataset, clf)))
        print(f"npgan seed {seed} ({d}): FD {rows[-1]['frechet_distance']:.2f}", flush=True)
    for i, seed in enumerate(seeds):
        print(f"training PyTorch seed {seed} for {args.steps} steps on {args.threads} threads", flush=True)
        G, seconds = train_torch(dataset, seed, args.steps)
        images = torch_generate(G, args.n, args.eval_seed)
        if args.grid and i == 0:
            from npgan.viz import save_grid
            save_grid(images[:100], args.grid, nrow=10, scale=2)
        rows.append(dict(impl="torch", seed=seed, steps=args.steps, train_seconds=seconds,
                         **score(images, dataset, clf)))
        print(f"torch seed {seed}: FD {rows[-1]['frechet_distance']:.2f}  "
              f"({seconds:.0f} s, {args.steps * dcgan.BATCH_SIZE / seconds:.0f} img/s)", flush=True)

    print(f"\nDCGAN-MNIST-28, {args.steps} steps of 64 on {dataset.source.split(' (')[0]}; "
          f"{args.n} samples per run scored against {len(dataset.test_images)} held-out images "
          f"(real training images score Frechet distance {rows[0]['frechet_distance_real']:.2f}, "
          f"mean confidence {rows[0]['real_mean_confidence']:.3f})\n")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": args.steps, "n": args.n, "rows": rows}, indent=2) + "\n")
    return 0


def _npgan_seconds(run_dir):
    """Training seconds of an npgan run, when known (its metrics.json or --train-npgan's note)."""
    path = Path(run_dir) / "metrics.json"
    if path.is_file():
        return json.loads(path.read_text()).get("train_seconds")
    path = Path(run_dir) / "train_seconds.txt"                  # written by --train-npgan
    return float(path.read_text()) if path.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
