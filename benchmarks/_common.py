"""Shared pieces of the benchmarks: the environment report, fair timing, peak memory,
and the DCGAN-MNIST-28 training step written once for npgan and once for PyTorch.

Fairness rules (see RESULTS.md):
- npgan and PyTorch run in the same process, on the same shapes, with the same thread
  count (``--threads``, default: all cores), and their timings are *interleaved*: a
  block of npgan repeats, then a block of PyTorch repeats, many times over. The
  reported time is the best block mean of each (shared machines are noisy; a block
  mean is robust to one stalled call, the best block to a neighbour's burst).
- On the CPU each block starts 0.3 s after the previous one, so that neither library's idle
  worker threads are still spinning on a core (OpenBLAS's idle workers busy-wait for 2**28
  cycles after each product; RESULTS.md, "Machines", has what the pause changes).
- Nothing changes the user's BLAS set-up: ``OPENBLAS_CORETYPE`` is only *reported*,
  together with the kernel set OpenBLAS actually chose (threadpoolctl).
- PyTorch is optional: without it, npgan's figures are printed alone.
"""
import argparse
import gc
import os
import platform
import sys
import time

import numpy

try:
    import torch
except ImportError:  # PyTorch is optional
    torch = None


# ---------------------------------------------------------------- arguments and environment
def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for BLAS and PyTorch (default: all cores; the issue's CPU figures use 2)")
    p.add_argument("--no-torch", action="store_true", help="time npgan alone")
    p.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (more: steadier)")
    return p


def setup(args):
    """Select the backend, pin thread counts, and print what the numbers were measured on."""
    from npgan import backend
    xp = backend.use(args.backend)
    threads = args.threads or os.cpu_count()
    _limit_blas_threads(threads)
    use_torch = torch is not None and not args.no_torch
    if use_torch:
        torch.set_num_threads(threads)
        if args.backend == "cupy" and not torch.cuda.is_available():
            use_torch = False
    print(environment_report(args.backend, threads, use_torch))
    return xp, use_torch


_limiter = None


def _limit_blas_threads(n):
    global _limiter
    try:
        from threadpoolctl import threadpool_limits
        _limiter = threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        pass


def environment_report(backend_name, threads, use_torch):
    lines = [f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
             f"{_cpu_model()}",
             f"# python {platform.python_version()}, numpy {numpy.__version__}, threads {threads}"]
    core = os.environ.get("OPENBLAS_CORETYPE")
    lines.append(f"# OPENBLAS_CORETYPE={core!r} (reported, never changed); " + _blas_kernels())
    if backend_name == "cupy":
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        lines.append(f"# GPU {props['name'].decode()}, CuPy {cupy.__version__}, "
                     f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}")
    if use_torch:
        extra = f", cuda {torch.version.cuda}" if backend_name == "cupy" else f", {torch.get_num_threads()} threads"
        lines.append(f"# torch {torch.__version__}{extra}")
    else:
        lines.append("# torch: not available (npgan figures alone)")
    return "\n".join(lines)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _blas_kernels():
    """Which BLAS library and kernel set NumPy is using (OpenBLAS picks it at load time)."""
    try:
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            if info.get("user_api") == "blas" and "numpy" in info.get("filepath", ""):
                return (f"NumPy BLAS: {info.get('internal_api')} {info.get('version')}, "
                        f"kernels {info.get('architecture')}, {info.get('num_threads')} threads")
        return "NumPy BLAS: not found by threadpoolctl"
    except ImportError:
        return "NumPy BLAS: install threadpoolctl to see the kernel set (or run numpy.show_runtime())"


# ---------------------------------------------------------------- timing
def synchronize(xp):
    if xp.__name__ != "numpy":
        xp.cuda.get_current_stream().synchronize()
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_interleaved(fns, xp, rounds=10, block=5, warmup=3):
    """Best block-mean time in ms of each function, blocks interleaved across ``fns``.

    ``fns`` is a dict name -> callable (or None to skip). Each round runs ``block`` calls
    of each function in turn; a device is synchronised around every block.
    """
    live = {k: f for k, f in fns.items() if f is not None}
    for f in live.values():
        for _ in range(warmup):
            f()
    synchronize(xp)
    best = {k: float("inf") for k in live}
    for _ in range(rounds):
        for k, f in live.items():
            if xp.__name__ == "numpy":
                # let the other library's idle worker threads stop spinning first: OpenBLAS's threads
                # spin for 2**28 cycles after each product and would steal a core from PyTorch's OpenMP
                # threads (RESULTS.md, "Machines", has what the pause changes on the benchmark machine)
                time.sleep(0.3)
            synchronize(xp)
            t = time.perf_counter()
            for _ in range(block):
                f()
            synchronize(xp)
            best[k] = min(best[k], (time.perf_counter() - t) / block * 1e3)
    return {k: best.get(k) for k in fns}


# ---------------------------------------------------------------- memory
def peak_memory(fn, xp):
    """Peak bytes allocated while running ``fn`` once (after a warm-up call).

    NumPy: tracemalloc (NumPy reports its buffers to it). CuPy: the default memory pool's
    bytes in use, sampled at every allocation (CuPy keeps no peak counter of its own).
    """
    fn()
    gc.collect()
    if xp.__name__ == "numpy":
        import tracemalloc
        tracemalloc.start()
        fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return peak
    return _cupy_peak(fn, xp)


def _cupy_peak(fn, xp):
    pool = xp.get_default_memory_pool()
    synchronize(xp)
    base = pool.used_bytes()
    peak = [base]
    tracker = _PeakTracker(pool, peak)
    with xp.cuda.using_allocator(tracker.malloc):
        fn()
    synchronize(xp)
    return peak[0]


class _PeakTracker:
    """Wraps the default pool's malloc and records used_bytes() after every allocation."""

    def __init__(self, pool, peak):
        self.pool, self.peak = pool, peak

    def malloc(self, size):
        mem = self.pool.malloc(size)
        self.peak[0] = max(self.peak[0], self.pool.used_bytes())
        return mem


def torch_peak_memory(fn, device):
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    return None  # torch CPU allocations bypass tracemalloc; peak RSS is reported instead


def rss_step_peak(library, batch, threads):
    """Resident memory that two training steps add on the CPU, in a fresh process (bytes).

    Builds the step (models, optimizers, input batch), resets the process's resident high-water
    mark (Linux: ``/proc/self/clear_refs``), runs two steps, and returns the new high-water
    mark minus the resident size before them: activations, gradients, optimizer state and
    whatever the library's allocator keeps, measured the same way for npgan and for PyTorch
    (PyTorch's CPU allocations are invisible to tracemalloc). None where /proc is unavailable.
    """
    import subprocess
    code = f"""
import _common as C
from npgan import backend
C._limit_blas_threads({threads})
if {library!r} == "torch":
    C.torch.set_num_threads({threads})
    step = C.torch_step({batch}, "cpu")
else:
    step = C.npgan_step({batch}, backend.use("numpy"))
print(C._peak_over_resident(step))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(os.path.abspath(__file__)),
                          capture_output=True, text=True)
    value = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else "None"
    return None if value == "None" else int(value)


def _peak_over_resident(fn, calls=2):
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
    try:
        gc.collect()
        before = status("VmRSS:")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                                                # reset VmHWM to the current RSS
    except OSError:
        return None
    for _ in range(calls):
        fn()
    return status("VmHWM:") - before


def mib(nbytes):
    return "-" if nbytes is None else f"{nbytes / 2**20:.1f}"


# ---------------------------------------------------------------- tables
def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = "| " + " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths)) + " |"
    out = [fmt.format(*header), "|" + "|".join(("-" * (w + 1) + ":") if i else ("-" * (w + 2))
                                                for i, w in enumerate(widths)) + "|"]
    out += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(out)


def fmt_ms(t):
    return "-" if t is None else f"{t:.2f}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"


# ---------------------------------------------------------------- the DCGAN-MNIST-28 training step
def npgan_step(batch, xp, seed=0, skip_unread=True):
    """One D step + one G step of DCGAN-MNIST-28 (npgan.models.dcgan), as a closure.

    ``skip_unread=False`` times the same step with every gradient computed (D's parameter
    gradients in G's update, the images' and the noise's gradients), as PyTorch's DCGAN
    example computes them: what skipping the unread ones saves.

    D step: BCE(D(x), 1) + BCE(D(G(z)), 0), D's gradients only; G step: BCE(D(G(z)), 1)
    through D into G (the same G(z), as in PyTorch's DCGAN example). Adam(2e-4, (0.5, 0.999)).
    ``real`` is a fixed batch of uniform noise in [-1, 1] (the data pipeline is not timed);
    z is drawn afresh every step, as a training loop would.
    """
    from npgan import backend, optim
    from npgan.gan import NonSaturating, gan_step
    from npgan.models import dcgan
    backend.seed(seed)
    G, D = dcgan.Generator(), dcgan.Discriminator()
    opt_g = optim.Adam(G.parameters(), lr=dcgan.LR, betas=dcgan.BETAS)
    opt_d = optim.Adam(D.parameters(), lr=dcgan.LR, betas=dcgan.BETAS)
    real = backend.rng().uniform(-1, 1, size=(batch, 1, 28, 28)).astype(numpy.float32)
    objective = NonSaturating()

    def step():
        # The training job's own step (npgan.gan.gan_step), so the benchmark times what
        # `python -m npgan.train` runs: no gradient of the noise or the images, D frozen in G's update.
        z = backend.rng().standard_normal((batch, dcgan.Z_DIM), dtype=numpy.float32)
        return gan_step(G, D, opt_g, opt_d, objective, real, z)

    def every_gradient_step():
        z = backend.rng().standard_normal((batch, dcgan.Z_DIM), dtype=numpy.float32)
        fake = G.forward(z)
        opt_d.zero_grad()
        for images, part in ((real, objective.discriminator_real), (fake, objective.discriminator_fake)):
            D.backward(part(D.forward(images))[1])
        opt_d.step()
        opt_g.zero_grad()
        G.backward(D.backward(objective.generator(D.forward(fake))[1]))
        opt_g.step()

    if not skip_unread:
        step = every_gradient_step

    step.models = (G, D)
    step.optimizers = (opt_g, opt_d)
    step.real = real
    return step


def torch_step(batch, device, seed=0, capturable=False, freeze_d=False):
    """The same step in PyTorch (the DCGAN example's loop: fake.detach() for D, same fake for G).

    ``capturable``: Adam(capturable=True) and gradients zeroed in place, for CUDA-graph capture.
    ``freeze_d``: ``D.requires_grad_(False)`` during G's update, so PyTorch too skips D's
    parameter gradients there, as npgan's step does (the example's loop computes them).
    """
    nn = torch.nn
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(100, 6272), nn.BatchNorm1d(6272), nn.ReLU(), nn.Unflatten(1, (128, 7, 7)),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh()).to(device)
    D = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 4, 2, 1),
                      nn.BatchNorm2d(128), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(6272, 1)).to(device)
    for m in list(G.modules()) + list(D.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0, 0.02), nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1, 0.02), nn.init.zeros_(m.bias)
    # PyTorch's default Adam, as a user gets it: single-tensor on the CPU, multi-tensor (foreach) on the GPU
    kw = {"capturable": True} if capturable else {}
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), **kw)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), **kw)
    bce = nn.BCEWithLogitsLoss()
    real = torch.rand(batch, 1, 28, 28, device=device) * 2 - 1
    ones = torch.ones(batch, 1, device=device)
    zeros = torch.zeros(batch, 1, device=device)

    def step():
        z = torch.randn(batch, 100, device=device)
        fake = G(z)
        opt_d.zero_grad(set_to_none=not capturable)
        loss_d = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=not capturable)
        if freeze_d:
            D.requires_grad_(False)
        loss_g = bce(D(fake), ones)
        loss_g.backward()
        if freeze_d:
            D.requires_grad_(True)
        opt_g.step()
        return loss_d, loss_g

    step.models = (G, D)
    step.optimizers = (opt_g, opt_d)
    return step


def step_gflop(batch):
    """Multiply-add FLOPs of one step (2 per MAC), counted layer by layer.

    G forward once; D forward 3 times (real, fake, fake); D backward 3 times (input and
    weight gradients, no input gradient of the images in the D step); G backward once
    (no gradient of z). Elementwise work is not counted.
    """
    n = batch
    lin_g = 2 * n * 100 * 6272
    convt1 = 2 * n * 49 * 128 * 64 * 16            # 7x7x128 -> 14x14x64, one GEMM
    convt2 = 2 * n * 196 * 64 * 16                 # 14x14x64 -> 28x28x1
    conv1 = 2 * n * 196 * 16 * 64                  # 28x28x1 -> 14x14x64
    conv2 = 2 * n * 49 * 1024 * 128                # 14x14x64 -> 7x7x128
    lin_d = 2 * n * 6272
    g_fwd = lin_g + convt1 + convt2
    d_fwd = conv1 + conv2 + lin_d
    d_bwd_no_dx = conv1 + 2 * conv2 + 2 * lin_d       # conv1: dW only
    d_bwd_dx = 2 * conv1 + 2 * conv2 + 2 * lin_d
    g_bwd = lin_g + 2 * convt1 + 2 * convt2
    return (g_fwd + 3 * d_fwd + 2 * d_bwd_no_dx + d_bwd_dx + g_bwd) / 1e9
