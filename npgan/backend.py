"""The one place where NumPy and CuPy are told apart.

Math code never names ``numpy`` or ``cupy``: it asks its inputs for their array
module (``xp = get_array_module(x)``). Arrays made from nothing (weights, noise,
masks, optimizer state) come from the *current* backend, chosen by the
``NPGAN_BACKEND`` environment variable (``numpy`` by default, or ``cupy``) or by
``npgan.backend.use("cupy")``. A third backend, ``cupy-standin``
(``npgan.testing.cupy_standin``), computes with NumPy under CuPy's rules: the test suite
runs on it to check that the generic path would run on a GPU (it is no GPU test).

    >>> from npgan import backend
    >>> backend.use("numpy")
    >>> xp = backend.xp()              # numpy
    >>> x = backend.to_device(host_array)
    >>> host = backend.asnumpy(x)
"""
import os

import numpy

DEFAULT_DTYPE = numpy.float32

_current = None  # the active module (numpy, cupy or the stand-in)
_rng = None      # the active backend's random Generator


class BackendError(RuntimeError):
    """The requested backend cannot be used on this machine."""


def _load(name):
    name = (name or "numpy").lower()
    if name == "numpy":
        return numpy
    if name == "cupy":
        try:
            import cupy
        except ImportError as exc:
            raise BackendError(
                "backend 'cupy' requested but CuPy is not installed "
                "(pip install 'npgan[gpu]', or cupy-cuda12x/cupy-cuda13x matching your CUDA)") from exc
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDA driver missing or broken
            raise BackendError(f"backend 'cupy' requested but no CUDA GPU is usable: {exc}") from exc
        if count == 0:
            raise BackendError("backend 'cupy' requested but no CUDA GPU is visible")
        return cupy
    if name == "cupy-standin":
        from .testing import cupy_standin
        return cupy_standin
    raise BackendError(f"unknown backend {name!r}: expected 'numpy' or 'cupy' (or 'cupy-standin', the "
                       f"CuPy-semantics check of the test suite)")


def use(name):
    """Switch the current backend to ``'numpy'``, ``'cupy'`` or ``'cupy-standin'``; returns the module."""
    global _current, _rng
    _current = _load(name)
    _rng = None
    return _current


def use_from_cli(name, parser):
    """For the command lines: switch to ``name`` (their --backend flag) or, when it is None, load
    the current backend now ($NPGAN_BACKEND unless one was chosen), so that an unusable one exits
    with status 2 and one line (``parser.error``) instead of a traceback mid-run."""
    try:
        if name:
            use(name)
        else:
            xp()
    except BackendError as err:
        parser.error(f"{err} (from {'--backend' if name else '$NPGAN_BACKEND'})")


def require_float(x, who):
    """TypeError naming ``who`` unless array ``x`` holds floating-point numbers (layers and losses
    compute in floating point: an integer input would truncate targets and gradients)."""
    if x.dtype.kind != "f":
        raise TypeError(f"{who}: expected a floating-point input, got dtype {x.dtype}; cast it with "
                        f".astype('float32')")


def xp():
    """The current backend's array module."""
    if _current is None:
        use(os.environ.get("NPGAN_BACKEND", "numpy"))
    return _current


def name():
    """``'numpy'``, ``'cupy'`` or ``'cupy-standin'``: the current backend."""
    return _name_of(xp())


def _name_of(module):
    return "numpy" if module is numpy else getattr(module, "BACKEND_NAME", "cupy")


def get_array_module(*arrays):
    """NumPy or CuPy (or the stand-in), whichever holds ``arrays`` (all must agree)."""
    module = None
    for a in arrays:
        if a is None or isinstance(a, (int, float)):
            continue
        m = numpy if isinstance(a, (numpy.ndarray, numpy.generic)) else _device_module_of(a)
        if module is not None and m is not module:
            raise TypeError(f"mixed backends: got both {_name_of(module)} and {_name_of(m)} arrays in one "
                            f"operation; move them with npgan.backend.to_device / asnumpy first")
        module = m
    return module if module is not None else xp()


def _device_module_of(a):
    mod = type(a).__module__
    if mod.startswith("cupy"):
        import cupy
        return cupy
    if mod == "npgan.testing.cupy_standin":
        from .testing import cupy_standin
        return cupy_standin
    raise TypeError(f"expected a NumPy or CuPy array, got {type(a).__name__}")


def to_device(a, dtype=None):
    """Copy a host array (or anything array-like) to the current backend."""
    m = xp()
    out = m.asarray(a)
    return out.astype(dtype, copy=False) if dtype is not None else out


def asnumpy(a):
    """A host NumPy array of ``a`` (no copy when it is already on the host)."""
    if isinstance(a, (numpy.ndarray, numpy.generic)):
        return numpy.asarray(a)
    if hasattr(a, "get") and not isinstance(a, dict):               # a device array
        return a.get()
    return numpy.asarray(a)


def seed(value):
    """Seed npgan's generator on the current backend (weights, noise, masks, dropout)."""
    global _rng
    _rng = xp().random.default_rng(int(value))
    return _rng


def rng():
    """The current backend's random Generator (seeded by ``seed``; fresh otherwise)."""
    global _rng
    if _rng is None:
        _rng = xp().random.default_rng()
    return _rng


def get_rng_state():
    """Host-side state of the generator, for checkpoints."""
    g = rng()
    if xp() is numpy:
        return {"kind": "numpy", "state": g.bit_generator.state}
    return {"kind": name(), "state": _cupy_rng_state(g)}


def set_rng_state(state):
    global _rng
    g = rng()
    if state["kind"] == "numpy" and xp() is numpy:
        g.bit_generator.state = state["state"]
    elif state["kind"] == name() and xp() is not numpy:
        _set_cupy_rng_state(g, state["state"])
    else:
        raise BackendError(f"RNG state was saved on {state['kind']!r} but the current backend is {name()!r}")


def _cupy_rng_state(g):
    # CuPy's Generator keeps its state in a device buffer; copy it to the host.
    bg = g.bit_generator
    return {"class": type(bg).__name__, "buffer": asnumpy(bg._state)} if hasattr(bg, "_state") else {}


def _set_cupy_rng_state(g, state):
    bg = g.bit_generator
    if "buffer" in state and hasattr(bg, "_state"):
        bg._state[...] = xp().asarray(state["buffer"])


def synchronize():
    """Wait for queued GPU work (no-op on NumPy); use around timings."""
    if xp() is not numpy:
        xp().cuda.Device().synchronize()
