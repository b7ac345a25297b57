"""The fast convolutions in npgan.functional against their definition in npgan.reference.

The naive loop pairs are checked on their own (centred differences, the conv/convT adjoint
identity, PyTorch where it is installed); then the im2col pairs must give the same outputs
and gradients, in float64, over random geometries.
"""
from typing import NamedTuple, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npgan import backend, functional as F
from npgan.gradcheck import assert_gradients_close, check_function
from npgan.im2col import conv_output_size, conv_transpose_output_size, pair
from npgan.reference import (conv2d_backward_naive, conv2d_forward_naive, conv_transpose2d_backward_naive,
                             conv_transpose2d_forward_naive)


class Case(NamedTuple):
    """One convolution: sizes, and a per-axis geometry (an int where both axes agree)."""
    n: int
    cin: int
    cout: int
    size: Tuple[int, int]             # the input's (H, W)
    kernel: Tuple[int, int]
    stride: object
    padding: object
    dilation: object
    output_padding: object            # transposed conv only
    bias: bool


def _int_or_pair(a, b):
    return a if a == b else (a, b)


@st.composite
def _conv_axis(draw):
    """(size, k, s, p, d) along one axis with a conv output of at least 1."""
    k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    p = draw(st.integers(0, k))
    span = d * (k - 1) + 1
    return draw(st.integers(max(1, span - 2 * p), span - 2 * p + 6)), k, s, p, d, 0


@st.composite
def _conv_transpose_axis(draw):
    """(size, k, s, p, d, output_padding) along one axis, output_padding < max(s, d) as PyTorch
    requires and a transposed-conv output of at least 1."""
    k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    size, op = draw(st.integers(1, 5)), draw(st.integers(0, max(s, d) - 1))
    p = draw(st.integers(0, min(k, ((size - 1) * s + d * (k - 1) + op) // 2)))
    return size, k, s, p, d, op


def cases(axis):
    """Hypothesis strategy of ``Case``: independent geometries along H and W, so both the int
    and the pair forms of every argument are exercised."""
    @st.composite
    def draw_case(draw):
        (h, kh, sh, ph, dh, oph), (w, kw, sw, pw, dw, opw) = draw(axis()), draw(axis())
        n, cin, cout = (draw(st.integers(1, 3)) for _ in range(3))
        return Case(n, cin, cout, (h, w), (kh, kw), _int_or_pair(sh, sw), _int_or_pair(ph, pw),
                    _int_or_pair(dh, dw), _int_or_pair(oph, opw), draw(st.booleans()))
    return draw_case()


def _randn(rng, *shape):
    return backend.to_device(rng.standard_normal(shape))                       # float64


def assert_same(got, want, what):
    """Equal up to float64 rounding (sums of a few dozen products of N(0, 1) numbers)."""
    got, want = backend.asnumpy(got), backend.asnumpy(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = float(np.abs(got - want).max(initial=0.0))
    assert err <= 1e-12 * max(1.0, float(np.abs(want).max(initial=0.0))), f"{what}: max difference {err:.2e}"


# ---------------------------------------------------------------- fast == naive
@settings(max_examples=100)
@given(cases(_conv_axis))
def test_conv2d_fast_matches_naive(case):
    rng = np.random.default_rng(0)
    x = _randn(rng, case.n, case.cin, *case.size)
    w = _randn(rng, case.cout, case.cin, *case.kernel)
    b = _randn(rng, case.cout) if case.bias else None
    args = (case.stride, case.padding, case.dilation)
    fast, fast_cache = F.conv2d_forward(x, w, b, *args)
    naive, naive_cache = conv2d_forward_naive(x, w, b, *args)
    assert_same(fast, naive, "output")
    dout = _randn(rng, *naive.shape)
    for name, g_fast, g_naive in zip(("dx", "dw", "db"), F.conv2d_backward(dout, fast_cache),
                                     conv2d_backward_naive(dout, naive_cache)):
        if g_naive is None:
            assert name == "db" and not case.bias and g_fast is None
        else:
            assert_same(g_fast, g_naive, name)


@settings(max_examples=100)
@given(cases(_conv_transpose_axis))
def test_conv_transpose2d_fast_matches_naive(case):
    rng = np.random.default_rng(1)
    x = _randn(rng, case.n, case.cin, *case.size)
    w = _randn(rng, case.cin, case.cout, *case.kernel)
    b = _randn(rng, case.cout) if case.bias else None
    args = (case.stride, case.padding, case.output_padding, case.dilation)
    fast, fast_cache = F.conv_transpose2d_forward(x, w, b, *args)
    naive, naive_cache = conv_transpose2d_forward_naive(x, w, b, *args)
    assert_same(fast, naive, "output")
    dout = _randn(rng, *naive.shape)
    for name, g_fast, g_naive in zip(("dx", "dw", "db"), F.conv_transpose2d_backward(dout, fast_cache),
                                     conv_transpose2d_backward_naive(dout, naive_cache)):
        if g_naive is None:
            assert name == "db" and not case.bias and g_fast is None
        else:
            assert_same(g_fast, g_naive, name)


def test_need_dx_false_skips_only_dx():
    rng = np.random.default_rng(2)
    x, b = _randn(rng, 2, 3, 5, 5), _randn(rng, 4)
    for forward, backward, w in [(conv2d_forward_naive, conv2d_backward_naive, _randn(rng, 4, 3, 3, 3)),
                                 (conv_transpose2d_forward_naive, conv_transpose2d_backward_naive,
                                  _randn(rng, 3, 4, 3, 3))]:
        out, cache = forward(x, w, b, 2, 1)
        dout = _randn(rng, *out.shape)
        dx, dw, db = backward(dout, cache, need_dx=False)
        full = backward(dout, cache)
        assert dx is None
        assert_same(dw, full[1], "dw")
        assert_same(db, full[2], "db")


# ---------------------------------------------------------------- the naive pairs themselves
@pytest.mark.parametrize("shapes,geometry", [
    (((2, 2, 5, 5), (3, 2, 3, 3)), (1, 1, 1)),
    (((1, 2, 6, 5), (2, 2, 2, 3)), ((2, 1), (0, 1), (1, 2))),
])
def test_conv2d_naive_matches_finite_differences(shapes, geometry):
    rng = np.random.default_rng(3)
    x, w = (_randn(rng, *s) for s in shapes)
    b = _randn(rng, shapes[1][0])
    result = check_function(conv2d_forward_naive, conv2d_backward_naive, [x, w, b, *geometry],
                            names=["x", "w", "b", "stride", "padding", "dilation"])
    assert set(result.errors) == {"x", "w", "b"}
    assert_gradients_close(result, tol=1e-7)


@pytest.mark.parametrize("shapes,geometry", [
    (((2, 2, 3, 3), (2, 3, 4, 4)), (2, 1, 0, 1)),                           # DCGAN's k4 s2 p1
    (((1, 2, 3, 2), (2, 2, 3, 2)), ((2, 3), (1, 0), (1, 0), (1, 2))),
])
def test_conv_transpose2d_naive_matches_finite_differences(shapes, geometry):
    rng = np.random.default_rng(4)
    x, w = (_randn(rng, *s) for s in shapes)
    b = _randn(rng, shapes[1][1])
    result = check_function(conv_transpose2d_forward_naive, conv_transpose2d_backward_naive, [x, w, b, *geometry],
                            names=["x", "w", "b", "stride", "padding", "output_padding", "dilation"])
    assert set(result.errors) == {"x", "w", "b"}
    assert_gradients_close(result, tol=1e-7)


@settings(max_examples=50)
@given(cases(_conv_axis))
def test_naive_conv_transpose_is_adjoint_of_naive_conv(case):
    """<conv(x, W), y> == <x, convT(y, W)> with the same weight array (and no bias)."""
    rng = np.random.default_rng(5)
    x = _randn(rng, case.n, case.cin, *case.size)
    w = _randn(rng, case.cout, case.cin, *case.kernel)
    out, _ = conv2d_forward_naive(x, w, None, case.stride, case.padding, case.dilation)
    y = _randn(rng, *out.shape)
    # output_padding restores the rows a strided conv skipped, so convT maps back to (H, W)
    (h, wd), (oh, ow), (kh, kw) = case.size, out.shape[2:], case.kernel
    (sh, sw), (ph, pw), (dh, dw) = map(pair, (case.stride, case.padding, case.dilation))
    op = (h - conv_transpose_output_size(oh, kh, sh, ph, 0, dh), wd - conv_transpose_output_size(ow, kw, sw, pw, 0, dw))
    back, _ = conv_transpose2d_forward_naive(y, w, None, case.stride, case.padding, op, case.dilation)
    assert back.shape == x.shape
    lhs, rhs = float((out * y).sum()), float((x * back).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_output_sizes_follow_the_formulas():
    x = backend.to_device(np.zeros((1, 1, 7, 8)))
    out, _ = conv2d_forward_naive(x, backend.to_device(np.zeros((1, 1, 3, 2))), None, (2, 3), 1, (2, 1))
    assert out.shape[2:] == (conv_output_size(7, 3, 2, 1, 2), conv_output_size(8, 2, 3, 1, 1)) == (3, 3)
    out, _ = conv_transpose2d_forward_naive(x, backend.to_device(np.zeros((1, 1, 4, 4))), None, 2, 1, (1, 0))
    assert out.shape[2:] == (conv_transpose_output_size(7, 4, 2, 1, 1), conv_transpose_output_size(8, 4, 2, 1, 0)) \
        == (15, 16)


# ---------------------------------------------------------------- PyTorch (opt-in)
TORCH_CASES = [  # (x shape, conv2d w shape (F, C, KH, KW), stride, padding, output_padding, dilation)
    ((2, 3, 7, 7), (4, 3, 3, 3), 2, 1, 1, 1),
    ((1, 2, 6, 5), (3, 2, 4, 2), (2, 1), (1, 0), (1, 0), (1, 2)),
    ((2, 1, 5, 6), (2, 1, 2, 3), 3, (0, 2), (2, 1), 2),
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,output_padding,dilation", TORCH_CASES)
def test_naive_matches_torch(x_shape, w_shape, stride, padding, output_padding, dilation):
    """Outputs and every gradient of both naive pairs against torch's conv2d / conv_transpose2d."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x_host, w_host = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    for transposed in (False, True):
        if transposed:                                                  # (Cin, Cout, KH, KW): x's channels first
            w_host = np.ascontiguousarray(w_host.transpose(1, 0, 2, 3))
        b_host = rng.standard_normal(w_host.shape[1] if transposed else w_host.shape[0])
        tx, tw, tb = (torch.from_numpy(a).requires_grad_(True) for a in (x_host, w_host, b_host))
        x, w, b = (backend.to_device(a) for a in (x_host, w_host, b_host))
        if transposed:
            tout = torch.nn.functional.conv_transpose2d(tx, tw, tb, stride, padding, output_padding, 1, dilation)
            out, cache = conv_transpose2d_forward_naive(x, w, b, stride, padding, output_padding, dilation)
            grads = conv_transpose2d_backward_naive
        else:
            tout = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, dilation)
            out, cache = conv2d_forward_naive(x, w, b, stride, padding, dilation)
            grads = conv2d_backward_naive
        assert_same(out, tout.detach().numpy(), f"output (transposed={transposed})")
        dout_host = rng.standard_normal(tuple(tout.shape))
        tout.backward(torch.from_numpy(dout_host))
        for name, ours, theirs in zip(("dx", "dw", "db"), grads(backend.to_device(dout_host), cache), (tx, tw, tb)):
            assert_same(ours, theirs.grad.numpy(), f"{name} (transposed={transposed})")
