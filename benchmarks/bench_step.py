"""One DCGAN-MNIST-28 training step (D step + G step), npgan against PyTorch in the same run.

    python benchmarks/bench_step.py --backend numpy --threads 2        # CPU, batch 64 and 256
    python benchmarks/bench_step.py --backend cupy                     # GPU, batch 64, 256, 1024, + CUDA graphs

The step (benchmarks/_common.py): G(z) once; D on real and on G(z).detach() with D's
gradients; D on G(z) again with the gradient through D into G; Adam(2e-4, (0.5, 0.999))
on both. npgan's step (``npgan.gan.gan_step``) skips D's parameter gradients in G's update,
which nobody reads; PyTorch's DCGAN example computes them, so PyTorch is timed both ways:
as the example writes it and with D frozen (``requires_grad_(False)``) in G's update.
Prints time per step, both ratios, achieved GFLOP/s, peak memory, and with --breakdown
where npgan's step time goes, layer by layer.
"""
import collections
import os
import time

import _common as C
from _common import torch


def breakdown(step, xp, steps=5):
    """ms per step spent in each layer's forward/backward and in the optimizers (synchronised)."""
    totals = collections.OrderedDict()
    patched = []

    def wrap(obj, method, key):
        original = getattr(obj, method)

        def timed(*args, **kwargs):
            C.synchronize(xp)
            t = time.perf_counter()
            result = original(*args, **kwargs)
            C.synchronize(xp)
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - t
            return result
        setattr(obj, method, timed)
        patched.append((obj, method))

    G, D = step.models
    for tag, model in (("G", G), ("D", D)):
        for i, layer in enumerate(model.layers):
            name = f"{tag}[{i}] {type(layer).__name__}{_shape_note(layer)}"
            wrap(layer, "forward", name + " forward")
            wrap(layer, "backward", name + " backward")
    for opt, tag in zip(step.optimizers, ("G", "D")):
        wrap(opt, "step", f"Adam step ({tag})")
        wrap(opt, "zero_grad", f"zero_grad ({tag})")
    step()
    totals.clear()
    C.synchronize(xp)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    C.synchronize(xp)
    total = (time.perf_counter() - t) / steps * 1e3
    for obj, method in patched:
        delattr(obj, method)
    rows = [(k, f"{v / steps * 1e3:.2f}", f"{100 * v / steps * 1e3 / total:.1f}%") for k, v in totals.items()]
    rest = total - sum(totals.values()) / steps * 1e3
    rows.append(("rest: losses, noise draw, Python glue", f"{rest:.2f}", f"{100 * rest / total:.1f}%"))
    rows.append(("total (synchronised after every layer)", f"{total:.2f}", "100%"))
    return C.table(("where the step's time goes", "ms/step", "share"), rows)


def _shape_note(layer):
    if hasattr(layer, "in_channels"):
        return f" {layer.in_channels}->{layer.out_channels}"
    if hasattr(layer, "in_features"):
        return f" {layer.in_features}->{layer.out_features}"
    if hasattr(layer, "num_features"):
        return f" {layer.num_features}"
    return ""


def torch_graphed(batch):
    """PyTorch's whole step captured in a CUDA graph (capturable Adam, static tensors), or None."""
    try:
        step = C.torch_step(batch, "cuda", capturable=True)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step()
        return g.replay
    except Exception as exc:  # report, don't fail the benchmark
        print(f"# torch CUDA graph unavailable: {type(exc).__name__}: {exc}")
        return None


def main():
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=None,
                   help="batch sizes (default: 64 256 on numpy, 64 256 1024 on cupy)")
    p.add_argument("--no-graph", action="store_true", help="cupy: skip the CUDA-graph rows")
    p.add_argument("--breakdown", action="store_true", help="print where npgan's step time goes (first batch size)")
    p.add_argument("--levers", action="store_true",
                   help="also time npgan's step computing every gradient (what skipping the unread ones saves)")
    args = p.parse_args()
    xp, use_torch = C.setup(args)
    gpu = args.backend == "cupy"
    device = "cuda" if gpu else "cpu"
    if use_torch and gpu:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # fp32, like CuPy
        print("# torch: TF32 off (cuDNN and matmul), so both sides compute in fp32")
    batches = args.batch or ([64, 256, 1024] if gpu else [64, 256])
    rows, mem_rows, lever_rows = [], [], []
    for batch in batches:
        ours = C.npgan_step(batch, xp)
        theirs = C.torch_step(batch, device) if use_torch else None
        fns = {"npgan": ours, "torch": theirs,
               "torch D frozen": C.torch_step(batch, device, freeze_d=True) if use_torch else None,
               "npgan every gradient": C.npgan_step(batch, xp, skip_unread=False) if args.levers else None}
        if gpu and not args.no_graph:
            graphed = _graph_of(batch, xp)
            fns["npgan graph"] = graphed
            if use_torch:
                fns["torch graph"] = torch_graphed(batch)
        rounds = args.rounds or (10 if gpu else 6)
        t = C.time_interleaved(fns, xp, rounds=rounds, block=10 if gpu else 3)
        gflop = C.step_gflop(batch)
        rows.append((f"eager, batch {batch}", C.fmt_ms(t["npgan"]), C.fmt_ms(t["torch"]),
                     C.ratio(t["npgan"], t["torch"]), C.fmt_ms(t["torch D frozen"]),
                     C.ratio(t["npgan"], t["torch D frozen"]), f"{gflop / t['npgan'] * 1e3:.0f}"))
        if t.get("npgan graph") is not None:
            rows.append((f"CUDA graph, batch {batch}", C.fmt_ms(t["npgan graph"]), C.fmt_ms(t.get("torch graph")),
                         C.ratio(t["npgan graph"], t.get("torch graph")), "-", "-",
                         f"{gflop / t['npgan graph'] * 1e3:.0f}"))
        if args.levers:
            lever_rows.append((f"batch {batch}", C.fmt_ms(t["npgan every gradient"]), C.fmt_ms(t["npgan"]),
                               f"{100 * (1 - t['npgan'] / t['npgan every gradient']):.1f}%"))
        print(f"  batch {batch}: " + ", ".join(f"{k} {C.fmt_ms(v)} ms" for k, v in t.items())
              + f", npgan/torch {C.ratio(t['npgan'], t['torch'])}", flush=True)
        peak = C.peak_memory(ours, xp)
        tpeak = C.torch_peak_memory(theirs, device) if use_torch else None
        row = [batch, C.mib(peak), C.mib(tpeak)]
        if not gpu:                                                   # both libraries measured alike
            threads = args.threads or os.cpu_count()
            row += [C.mib(C.rss_step_peak("npgan", batch, threads)),
                    C.mib(C.rss_step_peak("torch", batch, threads) if use_torch else None)]
        mem_rows.append(tuple(row))
        if args.breakdown and batch == batches[0]:
            breakdown_table = breakdown(ours, xp)
    print()
    print(C.table(("DCGAN-MNIST-28 step (D + G)", "npgan ms", "torch ms", "npgan/torch", "torch D-frozen ms",
                   "npgan/torch D-frozen", "npgan GFLOP/s"), rows))
    print()
    if gpu:
        print(C.table(("batch", "npgan peak MiB", "torch peak MiB"), mem_rows)
              + "\n(peak memory of one step: CuPy pool bytes in use / torch.cuda.max_memory_allocated)")
    else:
        print(C.table(("batch", "npgan peak MiB", "torch peak MiB", "npgan RSS MiB", "torch RSS MiB"), mem_rows)
              + "\n(peak: tracemalloc of one step (NumPy buffers; PyTorch's CPU allocations are not traced);"
              + "\n RSS: resident memory two steps add in a fresh process, both libraries measured alike)")
    if args.levers:
        print()
        print(C.table(("npgan step, skipping unread gradients", "every gradient ms", "skipped ms", "saved"),
                      lever_rows))
    if args.breakdown:
        print()
        print(breakdown_table)


def _graph_of(batch, xp):
    """npgan's step captured by npgan.graph.CUDAGraphStep (captured here, on its first call), or None."""
    from npgan.graph import CUDAGraphStep
    step = C.npgan_step(batch, xp, seed=1)
    graphed = CUDAGraphStep(step, optimizers=step.optimizers)
    try:
        graphed()
    except Exception as exc:  # report, keep the eager figures
        print(f"# npgan CUDA graph failed: {type(exc).__name__}: {exc}")
        return None
    return graphed


if __name__ == "__main__":
    main()
