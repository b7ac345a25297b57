"""Data-parallel training on this machine: images/s of one process with 2 BLAS threads against two
processes of 1 thread each (``mpiexec -n 2 ... --distributed --sync-bn``), at batch 64 and 256, the
share of a step the communication takes, and on paper what the all-reduce would cost on GPUs.

    python benchmarks/data_parallel.py                 # batch 64 and 256, 60 steps each
    python benchmarks/data_parallel.py --steps 10 --batches 64    # a quick check

Each configuration is ``python -m npgan.train mnist --steps S --no-eval`` (DCGAN-MNIST-28, the
5,000-digit subset); img/s is its own "trained N steps in T s" line, which leaves out start-up.
The communication share: the time of the gradient all-reduces of one step (G's and D's, measured
alone in an mpiexec job of the same size, 20 repetitions, the median) and of SyncBatchNorm's small
all-reduces, against the two-process step time. The GPU estimate: a ring all-reduce sends
2 (N - 1) / N times the gradient bytes through each GPU's link.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Link bandwidths per GPU and direction, from the vendors' data sheets.
LINKS = {"NVLink 4 (H100 SXM, 450 GB/s per direction)": 450e9,
         "PCIe 5.0 x16 (64 GB/s per direction)": 64e9,
         "InfiniBand NDR (400 Gb/s = 50 GB/s)": 50e9}
ALLREDUCE_TIMER = r"""
import json, sys, time
import numpy as np
from npgan.comm import MPIGroup
group = MPIGroup()
sizes = json.loads(sys.argv[1])
out = {}
for name, n in sizes.items():
    buf = np.ones(n, np.float32)
    times = []
    for _ in range(22):
        start = time.perf_counter()
        group.allreduce(buf)
        times.append(time.perf_counter() - start)
    out[name] = float(np.median(times[2:]))
if group.rank == 0:
    print(json.dumps(out))
"""


def train_rate(steps, batch, processes, work):
    """img/s of a training run of ``steps`` steps at global ``batch`` on ``processes`` processes
    (one BLAS thread each; one process gets both threads)."""
    threads = "2" if processes == 1 else "1"
    env = dict(os.environ, NPGAN_OFFLINE="1", OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads,
               MKL_NUM_THREADS=threads)
    out = Path(work) / f"p{processes}-b{batch}"
    cmd = [sys.executable, "-m", "npgan.train", "mnist", "--steps", str(steps), "--batch-size", str(batch),
           "--no-eval", "--no-progress", "--log-every", str(steps), "--out", str(out), "--overwrite"]
    if processes > 1:
        cmd = ["mpiexec", "-n", str(processes), *cmd, "--distributed", "--sync-bn"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    match = re.search(r"trained [\d,]+ steps in [\d.]+ s \((\d+) img/s\)", done.stdout)
    return float(match.group(1))


def allreduce_seconds(processes, sizes):
    """Median seconds of one all-reduce of each of ``sizes`` (name -> float32 count) over
    ``processes`` processes."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(["mpiexec", "-n", str(processes), sys.executable, "-c", ALLREDUCE_TIMER, json.dumps(sizes)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the all-reduce timer failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def model_sizes():
    from npgan.models import build_models, dcgan32
    G, D = build_models("dcgan")
    count = lambda m: sum(int(p.data.size) for p in m.parameters())
    G32, D32 = dcgan32.Generator(), dcgan32.Discriminator()
    widest = max(m.num_features for net in (G, D) for m in net.modules() if hasattr(m, "num_features"))
    return {"G": count(G), "D": count(D), "G32": count(G32), "D32": count(D32), "bn": 2 * widest}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    args = p.parse_args(argv)
    if shutil.which("mpiexec") is None:
        raise SystemExit("mpiexec not found: pip install mpi4py mpich")
    sizes = model_sizes()
    print(f"DCGAN-MNIST-28: G {sizes['G']:,} + D {sizes['D']:,} parameters = "
          f"{4 * (sizes['G'] + sizes['D']):,} bytes of float32 gradients all-reduced per step; "
          f"dcgan32: {4 * (sizes['G32'] + sizes['D32']):,} bytes")
    with tempfile.TemporaryDirectory() as work:
        print("\n| global batch | 1 process x 2 threads | 2 processes x 1 thread | ratio (2 processes / 1) |")
        print("|---|---|---|---|")
        rates = {}
        for batch in args.batches:
            one, two = train_rate(args.steps, batch, 1, work), train_rate(args.steps, batch, 2, work)
            rates[batch] = two
            print(f"| {batch} | {one:.0f} img/s | {two:.0f} img/s | {two / one:.2f} |", flush=True)
    # SyncBatchNorm: per BatchNorm and pass two small all-reduces forward and one backward; G's two
    # BatchNorms run once per step, D's one three times (real, fake, G's update): 15 calls, each
    # timed here at the size of the largest (2 x 6,272 values), an upper bound.
    times = allreduce_seconds(2, {"G": sizes["G"], "D": sizes["D"], "bn": sizes["bn"]})
    comm = times["G"] + times["D"] + 15 * times["bn"]
    print(f"\ncommunication per step on 2 processes: gradients {1e3 * (times['G'] + times['D']):.2f} ms "
          f"(G {1e3 * times['G']:.2f}, D {1e3 * times['D']:.2f}), SyncBatchNorm at most {1e3 * 15 * times['bn']:.2f} ms")
    for batch, rate in rates.items():
        step = batch / rate
        print(f"  batch {batch}: step {1e3 * step:.0f} ms, communication {100 * comm / step:.1f}% of it")
    print("\non paper, ring all-reduce of the gradients per step, 8 GPUs (2 x 7/8 of the bytes through each link), "
          "against a step of 8.3 ms (PyTorch eager, H100, batch 64) or 1.5 ms (the same captured in a CUDA graph):")
    for name, total in (("DCGAN-MNIST-28", 4 * (sizes["G"] + sizes["D"])), ("dcgan32", 4 * (sizes["G32"] + sizes["D32"]))):
        for link, bandwidth in LINKS.items():
            print(f"  {name}, {link}: {1e6 * 2 * 7 / 8 * total / bandwidth:.0f} us")


if __name__ == "__main__":
    main()
