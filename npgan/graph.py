"""Opt-in capture of a whole training step in a CUDA graph (CuPy backend only).

A DCGAN step at batch 64 is a few hundred small kernels; launched one by one from
Python, the launches cost more than the arithmetic. CUDA can record the kernels of one
step once (stream capture) and replay them all with a single launch:

    from npgan.graph import CUDAGraphStep

    def train_step():                       # reads `real` and draws z inside; returns device arrays
        ...D step..., ...G step...
        return d_loss, g_loss

    step = CUDAGraphStep(train_step, optimizers=(opt_d, opt_g))
    for batch in loader:
        real[...] = backend.to_device(batch)   # copy into the same array, never rebind it
        d_loss, g_loss = step()                 # warm-up + capture on the first call, then replays

What a replay repeats is the recorded kernels with the recorded array addresses, so:
- inputs must stay the same arrays (copy new data into them); outputs are the same arrays,
  overwritten by every replay (copy them to keep a history);
- random draws inside the step are fine: CuPy's Generator keeps its state on the GPU;
- Python values are frozen at capture (learning rates, loss weights, branch decisions):
  after changing one, call ``recapture()``;
- the step must not read values back to the host (``float(loss)``, ``if x.any():``);
- Adam's bias corrections depend on the step count, a Python int in ``optim.Adam``: during
  capture each Adam's ``step()`` is replaced by a fused kernel reading the count from the
  GPU (PyTorch's ``Adam(capturable=True)``); the host-side ``state['step']`` is kept in
  step after every replay, so checkpoints stay right.
Memory allocated while capturing comes from a private pool, so no other array can ever be
handed an address the graph writes to. A CuPy array holds only a weak reference to its pool,
and the outputs of a capture (and the layer caches it left) may still be referenced after
``recapture()`` or after this object is dropped: so every pool a capture used is kept for the
life of the process (``_KEPT_POOLS``), a bounded cost of one step's working memory per capture.
Capture needs npgan's kernels (not ``NPGAN_KERNELS=0``): CuPy's own cuBLAS calls refuse a stream
that is being captured, and the kernels route matrix products through a handle that does not.
"""
from . import backend, kernels

_KEPT_POOLS = []                   # every private pool a capture used (see the module docstring)


class CUDAGraphStep:
    """Record ``fn`` (a whole training step) once, then replay it with one launch per call.

    Args:
        fn: callable with no arguments; its return value (device arrays) is what each call returns.
        optimizers: the optimizers ``fn`` steps (Adam needs its step count on the GPU, see above).
        warmup: eager calls of ``fn`` before capturing (they train too: they create optimizer
            state, compile kernels and size cuBLAS's workspace, none of which may happen while capturing).
    """

    def __init__(self, fn, optimizers=(), warmup=2):
        xp = backend.xp()
        if xp.__name__ != "cupy":
            raise RuntimeError("CUDAGraphStep needs the CuPy backend (npgan.backend.use('cupy'))")
        if not kernels.available(xp):
            raise RuntimeError("CUDAGraphStep needs npgan's CUDA kernels, which NPGAN_KERNELS=0 turns off: CuPy's "
                               "own matrix products refuse a stream being captured (unset NPGAN_KERNELS)")
        if warmup < 1:
            raise ValueError("CUDAGraphStep: warmup must be at least 1 (the optimizers' state is created eagerly)")
        self.xp, self.fn, self.optimizers, self.warmup = xp, fn, list(optimizers), warmup
        self.graph = self.outputs = self._pool = None
        self._stream = xp.cuda.Stream(non_blocking=True)
        self._counters = []                                            # (optimizer, device step count)

    def __call__(self):
        if self.graph is None:
            self._capture()
        stream = self.xp.cuda.get_current_stream()
        self.graph.launch(stream=stream)
        for opt in self.optimizers:                                   # mirror the step counts on the host
            for state in opt.state:
                if "step" in state:
                    state["step"] += 1
        return self.outputs

    def recapture(self):
        """Drop the recorded graph; the next call records a new one (after changing a Python value).
        The old graph's memory stays allocated: its outputs may still be referenced."""
        self.graph = self.outputs = self._pool = None

    # ---- recording ---------------------------------------------------------------------
    def _capture(self):
        xp, s = self.xp, self._stream
        current = xp.cuda.get_current_stream()
        s.wait_event(current.record())                                # earlier work (input copies) first
        with s:
            for _ in range(self.warmup):
                self.fn()
            self._counters = [(opt, self._device_count(opt)) for opt in self.optimizers
                              if getattr(opt, "capturable_with_device_step", False)]
            self._pool = xp.cuda.MemoryPool()
            _KEPT_POOLS.append(self._pool)
            patched = [(opt, opt.__dict__.get("step")) for opt, _ in self._counters]
            # The capture pass records the step without running it; host-side counts an optimizer
            # bumps in Python during it are put back, and each launch mirrors one step (__call__).
            counts = [[state.get("step") for state in opt.state] for opt in self.optimizers]
            try:
                for opt, t in self._counters:
                    opt.step = _capturable_adam_step(opt, t)
                    opt.step.warm_up()                                # compile the kernel outside the capture
                s.synchronize()
                kernels.begin_capture(s)                              # matrix products via a capturable cuBLAS handle
                with xp.cuda.using_allocator(self._pool.malloc):
                    s.begin_capture()
                    try:
                        self.outputs = self.fn()
                    finally:
                        self.graph = s.end_capture()
            finally:
                kernels.end_capture()
                for opt, before in zip(self.optimizers, counts):
                    for state, step in zip(opt.state, before):
                        if step is not None:
                            state["step"] = step
                for opt, old in patched:
                    if old is None:
                        del opt.step
                    else:
                        opt.step = old
        current.wait_event(s.record())

    def _device_count(self, opt):
        steps = {state.get("step", 0) for state in opt.state}
        if len(steps) != 1:
            raise RuntimeError(f"CUDAGraphStep: the parameters of {opt!r} have different step counts {steps}")
        return self.xp.full((1,), float(steps.pop()), dtype=self.xp.float64)


def _capturable_adam_step(opt, t):
    """Adam.step() with the step count ``t`` on the GPU: t += 1, then one fused kernel per parameter."""
    def step():
        t[...] += 1
        for p, state in zip(opt.params, opt.state):
            kernels.adam_update(p.data, p.grad, state["exp_avg"], state["exp_avg_sq"], t,
                                opt.lr, opt.betas, opt.eps, opt.weight_decay)

    def warm_up():                                                    # on copies: compiles, changes nothing
        for p, state in zip(opt.params, opt.state):
            kernels.adam_update(p.data.copy(), p.grad, state["exp_avg"].copy(), state["exp_avg_sq"].copy(),
                                t.copy(), opt.lr, opt.betas, opt.eps, opt.weight_decay)

    step.warm_up = warm_up
    return step
