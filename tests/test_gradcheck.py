"""The gradient checker itself: it passes correct backwards, catches wrong ones (off by a
factor, transposed, writing into dout), replays Dropout masks, leaves the layer as it was,
and its error measure behaves."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import backend
from npgan.backend import get_array_module
from npgan.gradcheck import (GradcheckResult, assert_gradients_close, check_function, check_layer, check_loss,
                             numerical_gradient, rel_error)
from npgan.layers.base import Layer, Parameter, Sequential


def randn(*shape, seed=0):
    return backend.to_device(np.random.default_rng(seed).standard_normal(shape))


def host(a):
    return backend.asnumpy(a)


# ---- toy layers ------------------------------------------------------------------------
class ScaleSin(Layer):
    """y = x * w + sin(x) + b, with w, b of shape (D,) broadcast over the batch.

    ``wrong`` plants a bug: 'dw_factor' doubles dw, 'dx_sign' flips the sign of cos in dx."""

    def __init__(self, d, wrong=None, seed=0):
        self.w, self.b = Parameter(randn(d, seed=seed)), Parameter(randn(d, seed=seed + 1))
        self.wrong = wrong

    def forward(self, x):
        self.cache = x
        return x * self.w.data + get_array_module(x).sin(x) + self.b.data

    def backward(self, dout):
        x = self.cache
        xp = get_array_module(x)
        dw = (dout * x).sum(0)
        self.w.grad += 2 * dw if self.wrong == "dw_factor" else dw
        self.b.grad += dout.sum(0)
        cos = -xp.cos(x) if self.wrong == "dx_sign" else xp.cos(x)
        return dout * (self.w.data + cos)


class MatMul(Layer):
    """y = x W^T with a square W; ``transposed=True`` uses W where W^T belongs in backward."""

    def __init__(self, d, transposed=False):
        self.weight = Parameter(randn(d, d, seed=5))
        self.transposed = transposed

    def forward(self, x):
        self.cache = x
        return x @ self.weight.data.T

    def backward(self, dout):
        x, w = self.cache, self.weight.data
        self.weight.grad += x.T @ dout if self.transposed else dout.T @ x
        return dout @ (w.T if self.transposed else w)


class Centre(Layer):
    """y = (x - mean_batch(x)) * w, with a running mean updated by every forward (like BatchNorm)."""
    _buffers = ("running_mean",)

    def __init__(self, d):
        self.w = Parameter(randn(d, seed=7))
        self.running_mean = backend.xp().zeros(d)

    def forward(self, x):
        mu = x.mean(0)
        self.running_mean *= 0.9
        self.running_mean += 0.1 * mu
        self.cache = x - mu
        return self.cache * self.w.data

    def backward(self, dout):
        self.w.grad += (dout * self.cache).sum(0)
        g = dout * self.w.data
        return g - g.mean(0)


class Normalise(Layer):
    """Batch normalisation without eps. With a batch of 2 the output is +-1 whatever x is, so
    the true gradient is 0 and the numerical one is pure rounding noise."""

    def forward(self, x):
        xc = x - x.mean(0)
        std = get_array_module(x).sqrt((xc * xc).mean(0))
        y = xc / std
        self.cache = (y, std)
        return y

    def backward(self, dout):
        y, std = self.cache
        return (dout - dout.mean(0) - y * (dout * y).mean(0)) / std


class ToyDropout(Layer):
    """y = x * mask * w with a fresh mask (keep 1/2, scale 2) from npgan's generator per forward."""

    def __init__(self, d):
        self.w = Parameter(randn(d, seed=9))

    def forward(self, x):
        mask = (backend.rng().random(x.shape) >= 0.5) * 2.0
        self.cache = (x, mask)
        return x * mask * self.w.data

    def backward(self, dout):
        x, mask = self.cache
        self.w.grad += (dout * mask * x).sum(0)
        return dout * mask * self.w.data


class WritesIntoDout(ScaleSin):
    def backward(self, dout):
        out = super().backward(dout.copy())
        dout *= 0                                                               # breaks the contract
        return out


# ---- check_layer -----------------------------------------------------------------------
def test_correct_layer_passes(xp):
    layer = ScaleSin(4)
    result = check_layer(layer, randn(3, 4))
    assert isinstance(result, GradcheckResult)
    assert set(result.errors) == {"input", "w", "b"}
    assert result.max_rel_error < 1e-8 and not result.problems
    assert_gradients_close(result, tol=1e-6)


@pytest.mark.parametrize("layer,worst", [(ScaleSin(4, wrong="dw_factor"), "w"),
                                         (ScaleSin(4, wrong="dx_sign"), "input"),
                                         (MatMul(4, transposed=True), "input")])
def test_wrong_backward_is_caught(xp, layer, worst):
    result = check_layer(layer, randn(3, 4))
    assert result.worst == worst and result.max_rel_error > 1e-2
    assert result.analytic != pytest.approx(result.numeric)
    with pytest.raises(AssertionError, match=f"in '{worst}' at"):
        assert_gradients_close(result)


def test_transposed_weight_gradient_is_caught(xp):
    # x is drawn with seed 0, like the default dout: a naive checker would make x^T dout symmetric
    result = check_layer(MatMul(4, transposed=True), randn(3, 4, seed=0), params=True)
    assert result.errors["weight"] > 1e-2 and result.errors["input"] > 1e-2
    assert not check_layer(MatMul(4), randn(3, 4)).problems
    assert check_layer(MatMul(4), randn(3, 4)).max_rel_error < 1e-8


def test_worst_is_named_by_dotted_path(xp):
    model = Sequential(ScaleSin(3), ScaleSin(3, wrong="dw_factor", seed=4), MatMul(3))
    result = check_layer(model, randn(2, 3))
    assert set(result.errors) == {"input", "0.w", "0.b", "1.w", "1.b", "2.weight"}
    assert result.worst == "1.w" and len(result.where) == 1
    assert all(result.errors[k] < 1e-8 for k in ("input", "0.w", "0.b", "1.b", "2.weight"))
    text = str(result)
    assert "1.w" in text and "2.weight" in text and repr(result) == text


def test_params_false_checks_only_the_input(xp):
    result = check_layer(ScaleSin(4, wrong="dw_factor"), randn(2, 4), params=False)
    assert set(result.errors) == {"input"} and result.max_rel_error < 1e-8


def test_requires_float64(xp):
    layer = ScaleSin(3)
    with pytest.raises(TypeError, match="float64"):
        check_layer(layer, randn(2, 3).astype(np.float32))
    layer.w.data = layer.w.data.astype(np.float32)
    with pytest.raises(TypeError, match=r"w \(float32\).*layer.to\('float64'\)"):
        check_layer(layer, randn(2, 3))


def test_backward_writing_into_dout_is_reported(xp):
    result = check_layer(WritesIntoDout(3), randn(2, 3))
    assert any("dout" in p for p in result.problems)
    with pytest.raises(AssertionError, match="wrote into dout"):
        assert_gradients_close(result)


def test_cross_batch_layer_and_state_restored(xp):
    layer = Centre(3)
    layer.running_mean[...] = backend.to_device(np.array([1.0, 2.0, 3.0]))
    layer.w.grad[...] = 5.0                                                     # an accumulated gradient
    before = layer.state_dict()
    assert_gradients_close(check_layer(layer, randn(4, 3)))
    after = layer.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)             # running_mean and w as they were
    assert (host(layer.w.grad) == 5.0).all()


def test_mathematically_zero_gradient_is_not_judged_on_noise(xp):
    result = check_layer(Normalise(), randn(2, 3) * 10 + 3)
    assert abs(result.numeric) < 1e-6 and abs(result.analytic) < 1e-6
    assert_gradients_close(result)


def test_dropout_masks_repeat_and_rng_is_restored(xp):
    backend.seed(11)
    state = backend.get_rng_state()
    assert_gradients_close(check_layer(ToyDropout(5), randn(4, 5)))
    after = host(backend.rng().random(3))
    backend.set_rng_state(state)
    assert np.array_equal(after, host(backend.rng().random(3)))


def test_max_entries_limits_the_forward_passes(xp):
    calls = []

    class Counting(ScaleSin):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    result = check_layer(Counting(10), randn(5, 10), params=False, max_entries=7)
    assert len(calls) == 1 + 2 * 7 and len(result.where) == 2
    calls.clear()
    check_layer(Counting(10), randn(5, 10), params=False)
    assert len(calls) == 1 + 2 * 50


def test_check_layer_on_npgan_linear(xp):
    L = pytest.importorskip("npgan.layers")
    result = check_layer(L.Linear(4, 3).to("float64"), randn(2, 4))
    assert set(result.errors) == {"input", "weight", "bias"}
    assert_gradients_close(result)


# ---- check_function and check_loss ------------------------------------------------------
def mul_forward(a, b):
    return a * b, (a, b)


def mul_backward(dout, cache):
    a, b = cache
    return dout * b, dout * a


def test_check_function_on_a_pair(xp):
    a, b = randn(3, 2), randn(3, 2, seed=1)
    result = check_function(mul_forward, mul_backward, [a, b])
    assert set(result.errors) == {"inputs[0]", "inputs[1]"}
    assert_gradients_close(result)
    wrong = check_function(mul_forward, lambda dout, cache: (dout * cache[1], dout * cache[1]), [a, b])
    assert wrong.worst == "inputs[1]" and wrong.errors["inputs[0]"] < 1e-8
    with pytest.raises(AssertionError):
        assert_gradients_close(wrong)


def test_check_function_closures_names_and_passthrough(xp):
    x = randn(4)
    state = {}

    def forward(x, power):                                                      # a non-array argument
        state["x"] = x
        return x ** power

    result = check_function(forward, lambda dout: 3 * state["x"] ** 2 * dout, [x, 3], names=["x", "power"])
    assert set(result.errors) == {"x"}
    assert_gradients_close(result)


def test_check_function_skips_inputs_without_gradient(xp):
    from npgan.losses import bce_with_logits_backward, bce_with_logits_forward
    x, t = randn(5, 1), backend.to_device(np.random.default_rng(1).random((5, 1)))
    result = check_function(bce_with_logits_forward, bce_with_logits_backward, [x, t])
    assert set(result.errors) == {"inputs[0]"} and result.unchecked == ["inputs[1]"]
    assert "not checked (backward gave no gradient): inputs[1]" in str(result)   # a forgotten gradient shows
    assert_gradients_close(result)
    from npgan.functional import linear_backward, linear_forward
    w, b = randn(2, 3), randn(2)
    picked = check_function(linear_forward, linear_backward, [randn(4, 3), w, b], wrt=[1])
    assert set(picked.errors) == {"inputs[1]"} and picked.unchecked == []       # left out on purpose: not listed


def test_check_loss_catches_a_missing_mean(xp):
    class HalfMSE:
        """Claims mean((x-y)^2) but its backward forgets the 1/N."""

        def forward(self, x, y):
            self.diff = x - y
            return (self.diff ** 2).mean()

        def backward(self, dloss=1.0):
            return 2 * self.diff * dloss

    from npgan.losses import MSELoss
    x, y = randn(3, 4), randn(3, 4, seed=1)
    assert_gradients_close(check_loss(MSELoss(), x, y))
    result = check_loss(HalfMSE(), x, y)
    assert result.max_rel_error > 0.5
    with pytest.raises(AssertionError):
        assert_gradients_close(result)


# ---- numerical_gradient and rel_error -----------------------------------------------------
def test_numerical_gradient_and_restore(xp):
    x, dout = randn(3, 4), randn(3, 4, seed=2)
    original = host(x).copy()
    grad = numerical_gradient(lambda: x ** 3, x, dout)
    np.testing.assert_allclose(host(grad), 3 * original ** 2 * host(dout), rtol=1e-7, atol=1e-9)
    assert np.array_equal(host(x), original)                                    # restored bit for bit
    scalar = numerical_gradient(lambda: (x ** 2).sum(), x)                      # dout=None: a scalar function
    np.testing.assert_allclose(host(scalar), 2 * original, rtol=1e-7)


def test_rel_error_examples(xp):
    assert rel_error(1.0, 1.0) == 0.0
    assert rel_error(randn(3), randn(3)) <= 1.0
    big = backend.to_device(np.array([1e3, 1.0]))
    assert rel_error(big, backend.to_device(np.array([1e3, 1.1]))) == pytest.approx(0.1 / 2.1)   # one bad small entry
    # entries where both are ~0 do not produce huge ratios from noise
    assert rel_error(np.array([1.0, 1e-14]), np.array([1.0, -1e-14])) < 1e-7
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(np.array([1.0]), np.array([-1.0])) == 1.0
    assert np.isnan(rel_error(np.array([1.0, np.nan]), np.array([1.0, 1.0])))
    with pytest.raises(ValueError, match="shapes"):
        rel_error(np.zeros(3), np.zeros(4))


finite = st.floats(-10, 10, allow_nan=False)


@given(arrays(np.float64, st.integers(1, 6), elements=finite), arrays(np.float64, st.integers(1, 6), elements=finite))
def test_rel_error_properties(a, b):
    b = np.resize(b, a.shape)
    r = rel_error(a, b)
    assert 0.0 <= r <= 1.0
    assert r == rel_error(b, a)
    assert rel_error(a, a) == 0.0
    if np.abs(a).max() + np.abs(b).max() >= 1.0:
        for c in (10.0, 1e3):
            assert rel_error(c * a, c * b) == pytest.approx(r, rel=2e-3, abs=1e-12)
