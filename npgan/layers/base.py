"""Parameter, Layer and Sequential: the contract every layer follows.

- ``forward(x)`` returns the output and keeps what ``backward`` needs in ``self.cache``.
- ``backward(dout)`` returns ``dx``, *adds* parameter gradients into ``p.grad`` (so the
  gradients of D(real) and D(fake) in one step sum) and never writes into ``dout``.
- ``state_dict()`` holds host (NumPy) arrays under PyTorch-style dotted names.
- Gradients nobody reads are skipped on request, as in PyTorch: ``model.requires_grad_(False)``
  (or ``with frozen(model):``) stops a model's layers adding parameter gradients (a
  discriminator during the generator's update), and ``model.needs_input_grad = False`` (or
  ``with no_input_grad(model):``) lets its ``backward`` skip ``dx`` and return None (a model
  fed with data or noise).

The base class checks the contract for every layer: ``backward`` before any ``forward``, or a
``dout`` whose shape differs from the last output's, raises naming the layer (a wrong-shaped
``dout`` of the right size would otherwise be reshaped into wrong gradients without a word).
A layer keeps one cache, so one layer object may appear only once in a model; sharing a
``Parameter`` between layers ties weights (its gradient sums both uses, and it is listed once).
"""
import contextlib
import functools
import numbers
from collections import OrderedDict

import numpy

from .. import backend


class Parameter:
    """A trainable array and its gradient accumulator (same shape, dtype, backend).

    ``requires_grad`` False: layers neither compute nor add this parameter's gradient."""

    def __init__(self, data):
        self.data = data
        self.grad = backend.get_array_module(data).zeros_like(data)
        self.requires_grad = True

    @property
    def shape(self):
        return self.data.shape

    def zero_grad(self):
        self.grad[...] = 0

    def accumulate(self, grad):
        """grad += grad of this use (the gradients of several uses in one step sum)."""
        if self.requires_grad:
            self.grad += grad

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


def _recording_output_shape(forward):
    @functools.wraps(forward)
    def recorded(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        self._out_shape = getattr(out, "shape", None)       # the outermost forward (a subclass's) sets it last
        return out
    return recorded


def _checking_dout_shape(backward):
    @functools.wraps(backward)
    def checked(self, dout, *args, **kwargs):
        if type(self).backward is checked:                  # not in a subclass's super().backward(inner dout)
            name = type(self).__name__
            if not hasattr(self, "_out_shape"):
                raise RuntimeError(f"{name}.backward called before {name}.forward: there is nothing to differentiate")
            shape = numpy.shape(dout)
            if self._out_shape is not None and shape != tuple(self._out_shape):
                raise ValueError(f"{name}.backward: dout has shape {shape}, the output of the last forward had "
                                 f"shape {tuple(self._out_shape)}")
        return backward(self, dout, *args, **kwargs)
    return checked


class Layer:
    """Base class: children, parameters and buffers are found by attribute order.

    Attributes:
        needs_input_grad: when False, ``backward`` may skip dx and return None (layers whose
            dx is a product of its own, Linear and the convolutions, skip it; Sequential passes
            the flag to its first layer and returns None).
    """

    training = True
    needs_input_grad = True

    def __init_subclass__(cls, **kwargs):
        """Every layer's own ``forward`` records its output shape and its ``backward`` checks ``dout``."""
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _recording_output_shape(cls.__dict__["forward"])
        if "backward" in cls.__dict__:
            cls.backward = _checking_dout_shape(cls.__dict__["backward"])

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    # ---- the second-order pass (gradient penalties, npgan.gan.penalty) ---------------
    no_second_order_reason = None       # why a layer has no second-order pass (said in the error)

    @property
    def has_second_order(self):
        """Whether the layer provides ``tangent`` (and ``tangent_weight_grad``)."""
        return type(self).tangent is not Layer.tangent

    def tangent(self, t):
        """The tangent pass after ``forward(x)``: J t, the layer's Jacobian at x applied to a
        tangent t shaped like x (for a critic D, t_l = J_l t_{l-1} from t_0 = u gives
        t_L = <dD/dx, u> per sample; see npgan.gan.penalty).

        The base class refuses, naming the layer: only layers whose second-order pass is
        written out (Linear, Conv2d, ReLU, LeakyReLU, Dropout, Flatten, Unflatten, Reshape) may
        sit in a gradient-penalty critic."""
        name = type(self).__name__
        reason = self.no_second_order_reason or (
            "a gradient-penalty critic may use Linear, Conv2d, ReLU, LeakyReLU, Dropout, Flatten, Unflatten "
            "and Reshape (piecewise linear in their input, so the pass is exact)")
        raise NotImplementedError(f"{name} has no second-order pass: {reason}")

    def tangent_weight_grad(self, delta):
        """After ``tangent(t)``: add the gradient penalty's parameter gradients, given ``delta``,
        the ordinary backward's gradient at the layer's output (D's backward from ones).
        Parameter-free piecewise-linear layers have none: the default adds nothing."""
        if not self.has_second_order:
            self.tangent(None)                                        # raises, naming the layer

    # ---- tree walking -------------------------------------------------------------
    def named_children(self):
        for key, value in vars(self).items():
            if isinstance(value, Layer):
                yield key, value

    def named_parameters(self, prefix=""):
        """(name, Parameter) pairs; a Parameter shared by several layers (tied weights) is listed
        once, under its first name, as PyTorch does, so an optimizer updates it once."""
        seen = set()
        for name, p in self._all_parameters(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _all_parameters(self, prefix):
        for key, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + key, value
        for key, child in self.named_children():
            yield from child._all_parameters(prefix + key + ".")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        """Non-trainable state (BatchNorm running statistics) named like PyTorch."""
        for key in getattr(self, "_buffers", ()):
            yield prefix + key, getattr(self, key)
        for key, child in self.named_children():
            yield from child.named_buffers(prefix + key + ".")

    def modules(self):
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    # ---- modes and gradients ------------------------------------------------------
    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    def requires_grad_(self, flag=True):
        """Whether backward computes and adds the parameters' gradients (PyTorch's name);
        returns self. With False, backward still returns dx: a frozen discriminator passes
        the generator its gradient without the work of its own."""
        for p in self.parameters():
            p.requires_grad = bool(flag)
        return self

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    # ---- persistence and devices ---------------------------------------------------
    def state_dict(self):
        """Host copies of every parameter and buffer, PyTorch names (``net.0.weight``)."""
        state = OrderedDict()
        for k, p in self.named_parameters():
            state[k] = backend.asnumpy(p.data).copy()
        for k, b in self.named_buffers():
            state[k] = backend.asnumpy(b).copy()
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays in; shapes must match. Extra or missing keys raise when ``strict``."""
        own = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        missing = [k for k in list(own) + list(buffers) if k not in state]
        unexpected = [k for k in state if k not in own and k not in buffers and not k.endswith("num_batches_tracked")]
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        targets = {k: p.data for k, p in own.items() if k in state}
        targets.update({k: b for k, b in buffers.items() if k in state})
        values = {k: numpy.asarray(state[k]) for k in targets}
        for k, target in targets.items():                     # check everything before changing anything
            if values[k].shape != target.shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: '{k}' has shape {values[k].shape}, "
                                 f"expected {tuple(target.shape)}")
        for k, target in targets.items():
            target[...] = backend.get_array_module(target).asarray(values[k], dtype=target.dtype)
        return self

    def to(self, name_or_dtype):
        """Move to a backend (``'numpy'``/``'cupy'``) or cast to a dtype, in place."""
        if isinstance(name_or_dtype, str) and name_or_dtype in ("numpy", "cupy"):
            target = backend._load(name_or_dtype)
            convert = lambda a: target.asarray(backend.asnumpy(a)) if target is numpy else target.asarray(a)
        else:
            try:
                kind = numpy.dtype(name_or_dtype).kind
            except TypeError:
                kind = None
            if kind != "f":
                raise TypeError(f"{type(self).__name__}.to({name_or_dtype!r}): expected 'numpy' or 'cupy' (a "
                                f"backend) or a floating-point dtype such as 'float32' or 'float64'")
            convert = lambda a: a.astype(name_or_dtype)
        for m in self.modules():
            for key, value in list(vars(m).items()):
                if isinstance(value, Parameter):
                    value.data = convert(value.data)
                    value.grad = backend.get_array_module(value.data).zeros_like(value.data)
            for key in getattr(m, "_buffers", ()):
                setattr(m, key, convert(getattr(m, key)))
            m.cache = None
        return self

    def __repr__(self):
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({k}): " + repr(c).replace("\n", "\n  ") for k, c in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"

    def extra_repr(self):
        return ""


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse. Children are named 0, 1, 2..."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                hint = (" (a class: call it, e.g. ReLU())" if isinstance(layer, type) else
                        " (pass the layers one by one: Sequential(*layers))" if isinstance(layer, (list, tuple))
                        else "")
                raise TypeError(f"Sequential: entry {i} is {layer!r}, not an npgan layer{hint}")
            for j, earlier in enumerate(layers[:i]):
                if layer is earlier:
                    raise ValueError(f"Sequential: entries {j} and {i} are the same {type(layer).__name__} object; "
                                     f"a layer keeps one forward cache, so use two layers (tie their weights "
                                     f"by sharing a Parameter if that is the aim)")
            setattr(self, str(i), layer)

    @property
    def layers(self):
        return [c for _, c in self.named_children()]

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    @property
    def needs_input_grad(self):
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, flag):
        self._needs_input_grad = bool(flag)
        if self.layers:
            self.layers[0].needs_input_grad = bool(flag)

    _needs_input_grad = True

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def named_outputs(self, x):
        """(name, layer, output) for each layer in order: the forward pass step by step."""
        for name, layer in self.named_children():
            x = layer.forward(x)
            yield name, layer, x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout if self._needs_input_grad else None


@contextlib.contextmanager
def frozen(model):
    """Within the block, ``model``'s backward adds no parameter gradients (it still returns dx);
    each parameter's ``requires_grad`` is restored afterwards. PyTorch users write
    ``D.requires_grad_(False)`` for the same thing during a generator's update."""
    params = model.parameters()
    before = [p.requires_grad for p in params]
    model.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(params, before):
            p.requires_grad = flag


@contextlib.contextmanager
def no_input_grad(model):
    """Within the block, ``model.backward`` may skip the gradient of its input and return None
    (a model fed with data or noise); the previous ``needs_input_grad`` is restored afterwards."""
    before = model.needs_input_grad
    model.needs_input_grad = False
    try:
        yield model
    finally:
        model.needs_input_grad = before


def check_input(layer, x, ndim, channels=None, channel_axis=1, min_spatial=None):
    """Raise a ValueError naming the layer and the expected/received shapes."""
    name = type(layer).__name__
    if not hasattr(x, "ndim"):
        raise TypeError(f"{name}: expected an array, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D input, got shape {tuple(x.shape)}")
    if channels is not None and x.shape[channel_axis] != channels:
        want = ["N"] + ["*"] * (ndim - 1)
        want[channel_axis] = str(channels)
        raise ValueError(f"{name}: expected input of shape ({', '.join(want)}), got {tuple(x.shape)} "
                         f"({x.shape[channel_axis]} channels instead of {channels})")
    check_float(layer, x)
    params = [p.data for p in layer.parameters()] if isinstance(layer, Layer) else []
    if params:
        backend.get_array_module(x, params[0])  # raises on mixed backends
        if x.dtype != params[0].dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} does not match parameter dtype {params[0].dtype}; "
                            f"cast the input or call .to({x.dtype.name!r}) on the model")


def check_tangent(layer, t, in_shape):
    """A tangent pass needs the layer's forward first and a tangent shaped like its input."""
    name = type(layer).__name__
    if in_shape is None:
        raise RuntimeError(f"{name}.tangent called before {name}.forward: the tangent pass reuses the forward's "
                           f"masks and shapes")
    if tuple(t.shape) != tuple(in_shape):
        raise ValueError(f"{name}.tangent: t has shape {tuple(t.shape)}, the input of the last forward had shape "
                         f"{tuple(in_shape)}")


def check_channels(layer, *counts):
    """Channel or feature counts must be positive integers (TypeError / ValueError); returns them."""
    for n in counts:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"{type(layer).__name__}: channel and feature counts must be integers, got {n!r}")
        if n < 1:
            raise ValueError(f"{type(layer).__name__}: channel and feature counts must be positive, got {n!r}")
    return counts


def check_float(layer, x):
    """Layers compute in floating point; an integer array would be truncated or rejected mid-way."""
    backend.require_float(x, type(layer).__name__)
