"""A NumPy-backed stand-in for CuPy: a portability check of npgan's generic code path, not a GPU test.

``NPGAN_BACKEND=cupy-standin NPGAN_KERNELS=0 python -m pytest`` runs the whole suite with every
array made by npgan living in this module's ``ndarray``, which computes with NumPy but refuses
what CuPy refuses, so code that works on NumPy and would break on the GPU fails on the CPU too:

- no implicit conversion to a host array: ``numpy.asarray(x)``, ``numpy.array(x)`` and any NumPy
  function that needs a host buffer raise TypeError (CuPy's ``ndarray.__array__`` does);
  ``x.get()`` and ``asnumpy(x)`` are the ways back to the host;
- no mixing: an operation between a device array and a host ``numpy.ndarray`` raises TypeError
  (NumPy scalars and Python numbers are fine, as in CuPy);
- reductions return 0-d device arrays, not NumPy scalars (``float(x)`` reads one back, as in CuPy);
- its own random generator (``random.default_rng``) whose state lives in a device array
  (``bit_generator._state``), as CuPy's does; ``get_array_module``; a ``cuda`` namespace with
  ``Device().synchronize()``.

What it cannot check: the custom CUDA kernels (``npgan.kernels``; run with NPGAN_KERNELS=0, the
kernels need CuPy) and CUDA-graph capture, the kernels' numerics and speed. Those need a GPU.
"""
import numbers
import sys
import types

import numpy

BACKEND_NAME = "cupy-standin"

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed (cupy-standin, like CuPy). "
             "Use .get() or npgan.backend.asnumpy() to copy a device array to the host.")


def _host_data(value):
    """Device arrays -> their NumPy data (recursively in lists, tuples and dicts); a host
    ``numpy.ndarray`` among them is the mixing CuPy refuses."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, numpy.ndarray):
        raise TypeError(f"Unsupported type {type(value)} (cupy-standin, like CuPy, does not mix host NumPy "
                        f"arrays into device operations: move it with npgan.backend.to_device)")
    if isinstance(value, (list, tuple)):
        return type(value)(_host_data(v) for v in value)
    if isinstance(value, dict):
        return {k: _host_data(v) for k, v in value.items()}
    return value


def _to_device_result(value):
    """NumPy results -> device arrays; NumPy scalars become 0-d device arrays (as CuPy returns)."""
    if isinstance(value, numpy.ndarray):
        return ndarray(value)
    if isinstance(value, numpy.generic) and not isinstance(value, (numpy.str_, numpy.bytes_)):
        return ndarray(numpy.asarray(value))
    if isinstance(value, tuple):
        return tuple(_to_device_result(v) for v in value)
    if isinstance(value, list):
        return [_to_device_result(v) for v in value]
    return value


def _device_call(fn):
    def call(*args, **kwargs):
        out = kwargs.get("out")
        result = fn(*_host_data(args), **_host_data(kwargs))
        return out if isinstance(out, ndarray) else _to_device_result(result)
    call.__name__ = getattr(fn, "__name__", "function")
    return call


class ndarray:
    """A device array: NumPy data behind CuPy's rules (see the module docstring)."""

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, data):
        self._a = data

    # ---- what CuPy refuses ----------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_host_data(inputs), **_host_data(kwargs))
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _to_device_result(result)

    def __array_function__(self, func, types_, args, kwargs):
        return _to_device_result(func(*_host_data(args), **_host_data(kwargs)))

    # ---- the ways back to the host ----------------------------------------------------------
    def get(self):
        return self._a.copy()

    def tolist(self):
        return self._a.tolist()

    def item(self):
        return self._a.item()

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return self._a.__index__()

    def __bool__(self):
        return bool(self._a)

    def __complex__(self):
        return complex(self._a)

    # ---- array protocol -------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    real = property(lambda self: ndarray(self._a.real))
    imag = property(lambda self: ndarray(self._a.imag))

    @property
    def base(self):
        return None if self._a.base is None else ndarray(self._a.base)

    @property
    def data(self):
        """CuPy's is a device pointer (a MemoryPointer), never a host buffer."""
        return types.SimpleNamespace(ptr=id(self._a))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_to_device_result(v) for v in self._a)

    def __repr__(self):
        return "standin." + repr(self._a)

    __str__ = __repr__

    def __getitem__(self, key):
        return _to_device_result(self._a[_host_data(key)])

    def __setitem__(self, key, value):
        # CuPy copies a host array assigned into a device array (an explicit copy, not a mix)
        self._a[_host_data(key)] = value._a if isinstance(value, ndarray) else value

    def __getattr__(self, name):
        if name.startswith("__"):                           # no __array_interface__ etc.: no host buffer
            raise AttributeError(name)
        attr = getattr(self._a, name)                       # methods: reshape, sum, astype, ...
        if callable(attr):
            return _device_call(attr)
        return attr

    def __copy__(self):
        return ndarray(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray(self._a.copy())

    def __reduce__(self):
        raise TypeError("cupy-standin: pickling a device array copies it to the host implicitly; use .get()")


def _binary(ufunc, reflected=False):
    def op(self, other):
        if not isinstance(other, (ndarray, numbers.Number, numpy.generic, numpy.ndarray)):
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        return _to_device_result(ufunc(*_host_data((a, b))))
    return op


def _inplace(ufunc):
    def op(self, other):
        ufunc(self._a, _host_data(other), out=self._a)
        return self
    return op


for _name, _ufunc in [("add", numpy.add), ("sub", numpy.subtract), ("mul", numpy.multiply),
                      ("truediv", numpy.true_divide), ("floordiv", numpy.floor_divide), ("mod", numpy.mod),
                      ("pow", numpy.power), ("matmul", numpy.matmul), ("and", numpy.bitwise_and),
                      ("or", numpy.bitwise_or), ("xor", numpy.bitwise_xor), ("lshift", numpy.left_shift),
                      ("rshift", numpy.right_shift)]:
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
    setattr(ndarray, f"__r{_name}__", _binary(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_name}__", _inplace(_ufunc))
for _name, _ufunc in [("lt", numpy.less), ("le", numpy.less_equal), ("gt", numpy.greater),
                      ("ge", numpy.greater_equal), ("eq", numpy.equal), ("ne", numpy.not_equal)]:
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
ndarray.__hash__ = None
ndarray.__neg__ = lambda self: ndarray(-self._a)
ndarray.__pos__ = lambda self: ndarray(+self._a)
ndarray.__abs__ = lambda self: ndarray(abs(self._a))
ndarray.__invert__ = lambda self: ndarray(~self._a)


# ---- the module namespace: NumPy's functions, on device arrays ------------------------------------
def asarray(a, dtype=None, order=None):
    """Host data (or a device array) -> a device array; a copy of host arrays, as a transfer is."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return ndarray(numpy.array(_host_data_of_list(a), dtype=dtype, order=order or "K"))


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(a, ndarray):
        return ndarray(numpy.array(a._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    return ndarray(numpy.array(_host_data_of_list(a), dtype=dtype, order=order, ndmin=ndmin))


def _host_data_of_list(a):
    """Lists may hold device 0-d arrays (``cupy.array([x, y])`` works on scalars in CuPy)."""
    if isinstance(a, (list, tuple)):
        return [_host_data_of_list(v) for v in a]
    return a._a if isinstance(a, ndarray) else a


def asnumpy(a, stream=None):
    return a.get() if isinstance(a, ndarray) else numpy.asarray(a)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else numpy


def ascontiguousarray(a, dtype=None):
    return ndarray(numpy.ascontiguousarray(_host_data(a), dtype=dtype))


class _Generator:
    """CuPy's ``random.Generator`` on the host: each draw returns a device array; the bit
    generator's state lives in ``bit_generator._state`` (a device uint64 array), as CuPy keeps it."""

    def __init__(self, seed=None):
        self._host = numpy.random.default_rng(seed)
        self.bit_generator = types.SimpleNamespace(_state=ndarray(self._state_words()))

    def _state_words(self):
        s = self._host.bit_generator.state
        words = [s["state"]["state"], s["state"]["inc"]]
        return numpy.array([w >> shift & (2**64 - 1) for w in words for shift in (64, 0)]
                           + [s["has_uint32"], s["uinteger"]], dtype=numpy.uint64)

    def _load_state_words(self, packed):
        w = [int(v) for v in packed]
        self._host.bit_generator.state = {"bit_generator": "PCG64",
                                          "state": {"state": w[0] << 64 | w[1], "inc": w[2] << 64 | w[3]},
                                          "has_uint32": w[4], "uinteger": w[5]}

    def __getattr__(self, name):
        draw = getattr(self._host, name)

        def device_draw(*args, **kwargs):
            self._load_state_words(self.bit_generator._state._a)           # the device buffer is the state
            out = draw(*_host_data(args), **_host_data(kwargs))
            self.bit_generator._state._a[...] = self._state_words()
            return _to_device_result(out)
        return device_draw


random = types.SimpleNamespace(default_rng=lambda seed=None: _Generator(seed), Generator=_Generator)


class _Device:
    def __init__(self, device=None):
        pass

    def synchronize(self):
        pass


cuda = types.SimpleNamespace(Device=_Device)

# Names that are types or constants pass through unchanged (cupy.float32 is numpy.float32).
_PASS = (type, numpy.dtype, float, int, bool, type(None), str)


class _Submodule:
    """``cupy.linalg``, ``cupy.lib.stride_tricks``, ...: NumPy's submodule on device arrays."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return _device_attr(getattr(self._module, name))


def _device_attr(attr):
    if isinstance(attr, types.ModuleType):
        return _Submodule(attr)
    if isinstance(attr, _PASS) or not callable(attr):
        return attr
    return _device_call(attr)


def __getattr__(name):
    return _device_attr(getattr(numpy, name))
