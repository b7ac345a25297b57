"""Numerical gradient checks for layers, functional pairs and losses (tests and notebooks).

A backward pass is checked with a random upstream gradient ``dout``: the analytic
gradients are compared with centred differences of the scalar ``sum(forward() * dout)``
(CS231n's ``eval_numerical_gradient_array``, llm.c's fake loss), in float64::

    >>> layer = Conv2d(2, 3, 3).to("float64")
    >>> x = backend.xp().asarray(rng.standard_normal((2, 2, 5, 5)))      # float64
    >>> result = check_layer(layer, x)
    >>> print(result)          # worst tensor, entry, both values, per-tensor errors
    >>> assert_gradients_close(result, tol=1e-6)

Errors use ``rel_error``: the largest entrywise relative error, with a floor under the
denominator so entries where both gradients are ~0 do not dominate. The checks also
discount, entry by entry, the rounding noise of the finite difference itself (see
``_NOISE``): a gradient that is mathematically ~0 (a conv bias feeding a BatchNorm) has a
numerical estimate that is pure noise, and no relative measure can judge noise.
"""
from dataclasses import dataclass, field, replace

import numpy

from . import backend
from .backend import asnumpy, get_array_module

_FLOAT64_HINT = "cast the layer with layer.to('float64') and the input with x.astype('float64')"

# The finite difference (L+ - L-) / (2 eps) carries rounding noise of about
#   float64_eps * sqrt(sum (out+ * dout)^2 + sum (out- * dout)^2) / (2 eps)
# (independent rounding errors in the output entries that changed). The checks subtract
# _NOISE times that estimate from |analytic - numeric| before dividing: differences the
# finite difference cannot resolve count as zero. Real backward bugs are orders larger.
_NOISE = 16.0
_DOUT_SALT = 0x67726164                                                       # "grad"


# ---- the error measure ----------------------------------------------------------------
def _relative_errors(a, b, noise=0.0):
    """Entrywise max(|a - b| - noise, 0) / max(|a| + |b|, floor), floor = 1e-8 + 1e-6 * max(|a| + |b|);
    host float64."""
    a = numpy.asarray(asnumpy(a), dtype=numpy.float64)
    b = numpy.asarray(asnumpy(b), dtype=numpy.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes {a.shape} and {b.shape} differ")
    diff = numpy.abs(a - b)
    if numpy.any(noise):
        diff = numpy.maximum(diff - noise, 0.0)
    scale = numpy.abs(a) + numpy.abs(b)
    floor = 1e-8 + 1e-6 * (scale.max() if scale.size else 0.0)
    return diff / numpy.maximum(scale, floor)


def rel_error(a, b):
    """max_i |a_i - b_i| / max(|a_i| + |b_i|, floor), floor = 1e-8 + 1e-6 * max_j(|a_j| + |b_j|).

    The entrywise form catches a single wrong entry among large ones; the floor (relative
    to the largest entry, never below 1e-8) keeps entries where both values are ~0 from
    producing huge ratios out of rounding noise. 0 for equal arrays, at most 1, symmetric,
    unchanged by scaling both arrays (until the 1e-8 absolute floor takes over), NaN if
    either holds a NaN. Accepts scalars and NumPy or CuPy arrays of equal shape.
    """
    return _max_error(_relative_errors(a, b))


def _max_error(errors):
    if errors.size == 0:
        return 0.0
    if numpy.isnan(errors).any():
        return float("nan")
    return float(errors.max())


# ---- the result -----------------------------------------------------------------------
@dataclass(repr=False)
class GradcheckResult:
    """The outcome of a gradient check.

    Attributes:
        max_rel_error: the largest ``rel_error`` over all checked tensors.
        worst: the tensor it comes from ('input', a parameter name such as '1.weight', or
            'inputs[i]' for ``check_function``).
        where: the index of the worst entry within that tensor.
        analytic, numeric: the two gradient values at that entry.
        errors: ``rel_error`` of every checked tensor, by name.
        problems: contract violations found on the way (backward wrote into dout, wrong
            gradient shape, ...); any problem fails ``assert_gradients_close``.
        raw_max_rel_error: the same measure before the rounding-noise discount, i.e. how
            closely the two gradients really agree.
        unchecked: ``check_function``'s float inputs that backward gave no gradient and that
            ``wrt`` did not ask for (a target, or a gradient the backward forgot: printed, so it
            is not mistaken for a pass).
    """
    max_rel_error: float
    worst: str
    where: tuple
    analytic: float
    numeric: float
    errors: dict
    problems: list = field(default_factory=list)
    eps: float = 1e-6
    raw_max_rel_error: float = 0.0   # before discounting float64 rounding noise
    unchecked: list = field(default_factory=list)   # float inputs given no gradient (targets, or a forgotten one)

    def passed(self, tol=1e-6):
        return not self.problems and self.max_rel_error <= tol                # False for NaN

    def __str__(self):
        lines = [f"gradcheck: max rel error {self.max_rel_error:.3e} in {self.worst!r} at {self.where}: "
                 f"analytic {self.analytic:.10g}, numeric {self.numeric:.10g} (eps={self.eps:g}; "
                 f"{self.raw_max_rel_error:.1e} before discounting float64 rounding noise)"]
        width = max((len(k) for k in self.errors), default=0)
        lines += [f"  {k:<{width}}  {v:.3e}" for k, v in self.errors.items()]
        lines += [f"  problem: {p}" for p in self.problems]
        if self.unchecked:
            lines.append(f"  not checked (backward gave no gradient): {', '.join(self.unchecked)}")
        return "\n".join(lines)

    __repr__ = __str__


def assert_gradients_close(result, tol=1e-6):
    """Raise AssertionError (with the readable report) unless every error is <= ``tol`` and
    no problem was found."""
    if not result.passed(tol):
        raise AssertionError(f"{result}\n  tolerance {tol:g}")


def _summarise(checked, problems, eps):
    """Build a GradcheckResult from name -> (analytic, numeric, noise, indices): 1-D host
    arrays over the checked entries and their index tuples."""
    errors, worst, raw = {}, None, 0.0
    for name, (a, n, noise, indices) in checked.items():
        raw = max(raw, _max_error(_relative_errors(a, n)))
        ratios = _relative_errors(a, n, noise)
        err = _max_error(ratios)
        errors[name] = err
        if a.size == 0:
            continue
        nan = numpy.isnan(ratios)
        k = int(numpy.argmax(nan)) if nan.any() else int(numpy.argmax(ratios))
        if worst is None or not (err <= worst[0]):                            # NaN wins
            worst = (err, name, tuple(int(i) for i in indices[k]), float(a[k]), float(n[k]))
    if worst is None:
        worst = (0.0, "", (), 0.0, 0.0)
    err, name, where, a, n = worst
    return GradcheckResult(max_rel_error=err, worst=name, where=where, analytic=a, numeric=n,
                           errors=errors, problems=list(problems), eps=eps, raw_max_rel_error=raw)


# ---- numerical differentiation --------------------------------------------------------
def numerical_gradient(f, x, dout=None, eps=1e-6):
    """Centred differences of ``sum(f() * dout)`` with respect to every entry of ``x``.

        grad[i] = (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),   L = sum(f() * dout)

    ``f`` takes no arguments and must read ``x`` (which is perturbed in place, one entry at
    a time, and restored exactly). ``dout=None`` means 1 (for scalar outputs). Use float64:
    in float32 the differences drown in rounding. Returns an array like ``x``.
    """
    indices = list(numpy.ndindex(*x.shape))
    values, _ = _numeric_at(f, x, dout, eps, indices)
    return get_array_module(x).asarray(values.reshape(x.shape), dtype=x.dtype)


def _numeric_at(f, x, dout, eps, indices):
    """Centred differences at the listed entries of ``x`` and their rounding-noise estimates,
    as two 1-D host float64 arrays.

    The two outputs are subtracted before the weighted sum, so output entries that the
    perturbation leaves unchanged cancel exactly instead of adding summation noise.
    """
    values, noise = numpy.empty(len(indices)), numpy.empty(len(indices))
    for k, idx in enumerate(indices):
        old = float(x[idx])
        x[idx] = old + eps
        plus = _snapshot(f())                  # copies: an identity or view layer returns x itself
        x[idx] = old - eps
        minus = _snapshot(f())
        x[idx] = old
        xp = get_array_module(plus)
        if dout is not None:
            plus, minus = plus * dout, minus * dout
        values[k] = float(xp.sum(plus - minus)) / (2 * eps)
        spread = float(xp.sum(plus * plus)) + float(xp.sum(minus * minus))
        noise[k] = _NOISE * numpy.finfo(numpy.float64).eps * spread ** 0.5 / (2 * eps)
    return values, noise


def _snapshot(out):
    return out.copy() if hasattr(out, "copy") else numpy.asarray(out, dtype=numpy.float64)


def _entries(shape, max_entries, seed):
    """All index tuples of ``shape``, or ``max_entries`` of them drawn without replacement."""
    size = int(numpy.prod(shape, dtype=numpy.int64))
    if max_entries is None or size <= max_entries:
        return list(numpy.ndindex(*shape))
    picker = numpy.random.default_rng([_DOUT_SALT, seed, 1])
    flat = numpy.sort(picker.choice(size, size=int(max_entries), replace=False))
    return [tuple(int(i) for i in numpy.unravel_index(k, shape)) for k in flat]


def _compare(f, x, analytic, dout, eps, max_entries, seed):
    """(analytic, numeric, noise, indices) over the checked entries of ``x``."""
    indices = _entries(tuple(x.shape), max_entries, seed)
    host = numpy.asarray(asnumpy(analytic), dtype=numpy.float64)
    a = numpy.array([host[idx] for idx in indices], dtype=numpy.float64)
    values, noise = _numeric_at(f, x, dout, eps, indices)
    return a, values, noise, indices


def _require_float64(who, arrays):
    wrong = [f"{name} ({a.dtype})" for name, a in arrays.items() if a.dtype != numpy.float64]
    if wrong:
        raise TypeError(f"{who} needs float64 arrays (float32 differences are mostly rounding noise); "
                        f"got {', '.join(wrong)}: {_FLOAT64_HINT}")


def _random_like(out, seed):
    """A standard-normal upstream gradient shaped like ``out``, from its own seeded generator
    (npgan's generator is left alone so Dropout masks are unaffected). The seed is salted so
    that dout never equals an input the caller drew with ``default_rng(seed)``: a symmetric
    x^T dout would hide a transposed weight gradient."""
    host = numpy.random.default_rng([_DOUT_SALT, seed]).standard_normal(numpy.shape(out))
    return get_array_module(out).asarray(host, dtype=numpy.float64)


def _copy(a):
    return a.copy() if hasattr(a, "copy") else a


def _unchanged(before, after):
    return bool(numpy.array_equal(asnumpy(before), asnumpy(after), equal_nan=True))


# ---- layers ---------------------------------------------------------------------------
def check_layer(layer, x, dout=None, eps=1e-6, seed=0, params=True, max_entries=None):
    """Check ``layer.backward`` against numerical gradients for the input and every parameter.

    The layer and ``x`` must already be float64 (``layer.to('float64')``); a TypeError says
    so otherwise. Steps: forward, a random ``dout`` (seeded by ``seed``) unless given, analytic
    backward on zeroed gradients, then centred differences of ``sum(layer.forward(x) * dout)``
    for ``x`` and for each parameter in ``layer.named_parameters()`` (skipped with
    ``params=False``).

    ``layer.forward`` is called many times, in the layer's current mode (train or eval), so
    layers with cross-batch terms (BatchNorm in training) are differentiated as they run.
    npgan's RNG state (``backend.get_rng_state``) is restored before every forward, so a
    Dropout mask is the same in each call. The layer's parameters, gradients, buffers
    (BatchNorm running statistics, updated by each forward) and the RNG are put back as they
    were when the check ends. The check also reports a backward that writes into ``dout``,
    a forward/backward that writes into ``x``, and a ``dx`` of the wrong shape or dtype.

    Each checked entry costs two forward passes; ``max_entries`` (e.g. 24) checks that many
    entries per tensor, drawn with ``seed``, instead of all of them (for whole models).

    Returns:
        GradcheckResult; pass it to ``assert_gradients_close`` or print it.
    """
    named = list(layer.named_parameters()) if params and hasattr(layer, "named_parameters") else []
    all_params = list(layer.named_parameters()) if hasattr(layer, "named_parameters") else []
    _require_float64("check_layer", {"input": x, **{name: p.data for name, p in all_params}})
    if dout is not None:
        _require_float64("check_layer", {"dout": dout})

    saved = layer.state_dict() if hasattr(layer, "state_dict") else None
    saved_grads = [(p, _copy(p.grad)) for _, p in all_params]
    rng_state = backend.get_rng_state()

    def run():
        backend.set_rng_state(rng_state)
        return layer.forward(x)

    problems = []
    try:
        x_before = x.copy()
        out = run()
        if dout is None:
            dout = _random_like(out, seed)
        elif tuple(dout.shape) != tuple(out.shape):
            raise ValueError(f"check_layer: dout has shape {tuple(dout.shape)}, the output has {tuple(out.shape)}")
        dout_before = dout.copy()
        for _, p in all_params:
            p.grad[...] = 0
        dx = layer.backward(dout)
        if not _unchanged(dout_before, dout):
            problems.append("backward wrote into dout")
        if not _unchanged(x_before, x):
            problems.append("forward or backward wrote into the input x")
            x[...] = x_before

        checked = {}
        if dx is None:
            problems.append("backward returned None instead of dx")
        elif tuple(dx.shape) != tuple(x.shape):
            problems.append(f"dx has shape {tuple(dx.shape)}, the input has {tuple(x.shape)}")
        else:
            if dx.dtype != x.dtype:
                problems.append(f"dx has dtype {dx.dtype}, the input has {x.dtype}")
            checked["input"] = _compare(run, x, dx, dout, eps, max_entries, seed)
        grads = {name: p.grad.copy() for name, p in named}                   # before any more forwards
        for k, (name, p) in enumerate(named):
            checked[name] = _compare(run, p.data, grads[name], dout, eps, max_entries, seed + 1 + k)
    finally:
        if saved is not None:
            layer.load_state_dict(saved)
        for p, g in saved_grads:
            p.grad[...] = g
        backend.set_rng_state(rng_state)
    return _summarise(checked, problems, eps)


# ---- functional pairs -----------------------------------------------------------------
def _is_float_array(a):
    return hasattr(a, "dtype") and hasattr(a, "shape") and numpy.dtype(a.dtype).kind == "f"


def check_function(forward_fn, backward_fn, inputs, dout=None, eps=1e-6, seed=0, wrt=None, names=None,
                   max_entries=None):
    """Check a functional pair against numerical gradients for each of its array inputs.

    Two calling conventions, told apart by what ``forward_fn`` returns:

    - functional pairs: ``out, cache = forward_fn(*inputs)`` and
      ``grads = backward_fn(dout, cache)``, e.g.
      ``check_function(F.linear_forward, F.linear_backward, [x, w, b])``;
    - closures: ``out = forward_fn(*inputs)`` (an array) and ``grads = backward_fn(dout)``.

    ``grads`` is a tuple in input order (a single array for one input). Inputs may include
    non-arrays (strides, None) after the differentiable ones; they are passed through.

    Args:
        inputs: list of arguments; the float arrays among them must be float64.
        dout: upstream gradient like the output (random, seeded by ``seed``, if None).
        wrt: indices of the inputs to check; default every float input that gets a
            non-None gradient (so targets without a gradient are skipped).
        names: display names for the inputs (default 'inputs[i]').
        max_entries: check at most this many entries per input (see ``check_layer``).
    """
    inputs = list(inputs)
    floats = {i: a for i, a in enumerate(inputs) if _is_float_array(a)}
    _require_float64("check_function", {f"inputs[{i}]": a for i, a in floats.items()})
    names = list(names) if names is not None else [f"inputs[{i}]" for i in range(len(inputs))]
    rng_state = backend.get_rng_state()

    def call():
        backend.set_rng_state(rng_state)
        return forward_fn(*inputs)

    def run():
        res = call()
        return res[0] if isinstance(res, tuple) else res

    problems = []
    try:
        before = {i: a.copy() for i, a in floats.items()}
        res = call()
        if isinstance(res, tuple):
            if len(res) != 2:
                raise ValueError(f"check_function: forward_fn returned a tuple of {len(res)} items; "
                                 f"expected (out, cache) or a single array")
            out, cache = res
        else:
            out, cache = res, None
        if dout is None:
            dout = _random_like(out, seed)
        dout_before = dout.copy()
        grads = backward_fn(dout, cache) if isinstance(res, tuple) else backward_fn(dout)
        if not isinstance(grads, (tuple, list)):
            grads = (grads,)
        if not _unchanged(dout_before, dout):
            problems.append("backward wrote into dout")
        for i, a in floats.items():
            if not _unchanged(before[i], a):
                problems.append(f"forward or backward wrote into {names[i]}")
                a[...] = before[i]

        answered = [i for i in floats if i < len(grads) and grads[i] is not None]
        if wrt is None:
            wrt = answered
        unchecked = [names[i] for i in floats if i not in answered and i not in wrt]
        checked = {}
        for i in wrt:
            if i not in floats:
                raise ValueError(f"check_function: inputs[{i}] is not a float array")
            g = grads[i] if i < len(grads) else None
            if g is None:
                problems.append(f"backward returned no gradient for {names[i]}")
                continue
            if tuple(g.shape) != tuple(inputs[i].shape):
                problems.append(f"gradient of {names[i]} has shape {tuple(g.shape)}, "
                                f"the input has {tuple(inputs[i].shape)}")
                continue
            checked[names[i]] = _compare(run, inputs[i], g, dout, eps, max_entries, seed + 1 + i)
    finally:
        backend.set_rng_state(rng_state)
    return replace(_summarise(checked, problems, eps), unchecked=unchecked)


# ---- losses ---------------------------------------------------------------------------
def check_loss(loss_obj, input, target, *args, dout=None, eps=1e-6, seed=0, max_entries=None):
    """Check a loss object's ``backward`` (d loss / d input) numerically.

    ``loss_obj.forward(input, target, *args)`` (extra args: a mask) gives the loss, a scalar
    for 'mean'/'sum' or an array for 'none'; ``loss_obj.backward(dout)`` gives dinput.
    ``dout`` defaults to a random value of the loss's shape, so the scaling by the upstream
    gradient is checked too. ``input`` must be float64.
    """
    _require_float64("check_loss", {"input": input})
    rng_state = backend.get_rng_state()

    def run():
        backend.set_rng_state(rng_state)
        return loss_obj.forward(input, target, *args)

    problems = []
    try:
        before = input.copy()
        out = run()
        if dout is None:
            dout = _random_like(out, seed)
        dout_before = _copy(dout)
        dx = loss_obj.backward(dout)
        if not _unchanged(dout_before, dout):
            problems.append("backward wrote into dout")
        if not _unchanged(before, input):
            problems.append("forward or backward wrote into the input")
            input[...] = before
        checked = {}
        if dx is None or tuple(dx.shape) != tuple(input.shape):
            problems.append(f"backward returned {None if dx is None else tuple(dx.shape)}, "
                            f"expected a gradient of shape {tuple(input.shape)}")
        else:
            if dx.dtype != input.dtype:
                problems.append(f"dinput has dtype {dx.dtype}, the input has {input.dtype}")
            checked["input"] = _compare(run, input, dx, dout, eps, max_entries, seed)
    finally:
        backend.set_rng_state(rng_state)
    return _summarise(checked, problems, eps)
