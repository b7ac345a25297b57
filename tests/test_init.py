"""Initialisers: fans and gains equal torch.nn.init's, draws have the promised statistics,
are seeded, in place and dtype-preserving; dcgan_init touches the right layers."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npgan import backend, init
from npgan.layers.base import Layer, Parameter, Sequential

torch = pytest.importorskip("torch")


def param(*shape, dtype=np.float32):
    return Parameter(backend.xp().zeros(shape, dtype=dtype))


def values(p):
    return backend.asnumpy(p.data if isinstance(p, Parameter) else p).astype(np.float64)


# ---- fans and gains -------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(7, 3), (16, 3, 5, 5), (3, 16, 4, 4), (8, 2, 3), (4, 2, 3, 3, 3), (1, 1)])
def test_fans_equal_torch(shape):
    assert init.fan_in_and_out(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@given(st.lists(st.integers(1, 6), min_size=2, max_size=5))
def test_fans_equal_torch_any_shape(shape):
    assert init.fan_in_and_out(tuple(shape)) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_fans_of_layers_follow_torch_conventions():
    # ConvTranspose2d(in=16, out=3) has weight (16, 3, 4, 4): PyTorch's fan_in is then 3*4*4
    convt = torch.nn.ConvTranspose2d(16, 3, 4)
    assert init.fan_in_and_out(convt.weight.shape) == (3 * 16, 16 * 16)
    assert init.fan_in_and_out(param(5, 2)) == (2, 5)                        # a Parameter works too
    with pytest.raises(ValueError, match="fewer than 2"):
        init.fan_in_and_out((5,))


@pytest.mark.parametrize("nonlinearity,param_", [
    ("linear", None), ("conv2d", None), ("conv_transpose2d", None), ("sigmoid", None), ("tanh", None),
    ("relu", None), ("selu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", 3),
    ("leaky_relu", math.sqrt(5))])
def test_gains_equal_torch(nonlinearity, param_):
    assert init.calculate_gain(nonlinearity, param_) == torch.nn.init.calculate_gain(nonlinearity, param_)


def test_gain_errors():
    with pytest.raises(ValueError, match="unsupported"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", True)


# ---- statistics of the draws -----------------------------------------------------------
def assert_stats(v, mean, std, n_sigma=6):
    n = v.size
    assert abs(v.mean() - mean) < n_sigma * std / math.sqrt(n) + 1e-12, (v.mean(), mean)
    assert abs(v.std() - std) < n_sigma * std / math.sqrt(2 * n), (v.std(), std)


def test_normal_and_uniform_statistics(xp):
    p = init.normal_(param(300, 400), mean=1.5, std=0.02)
    assert_stats(values(p), 1.5, 0.02)
    v = values(init.uniform_(param(300, 400), -2.0, 3.0))
    assert v.min() >= -2.0 and v.max() < 3.0
    assert_stats(v, 0.5, 5 / math.sqrt(12))
    assert v.min() < -1.99 and v.max() > 2.99                               # the whole range is used


@pytest.mark.parametrize("shape", [(256, 384), (64, 32, 5, 5), (32, 64, 4, 4)])
def test_scaled_initialisers_statistics(xp, shape):
    fan_in, fan_out = init.fan_in_and_out(shape)
    std = 0.7 * math.sqrt(2.0 / (fan_in + fan_out))
    v = values(init.xavier_uniform_(param(*shape), gain=0.7))
    assert np.abs(v).max() <= math.sqrt(3) * std * (1 + 1e-6)
    assert_stats(v, 0.0, std)
    assert_stats(values(init.xavier_normal_(param(*shape), gain=0.7)), 0.0, std)

    for mode, fan in (("fan_in", fan_in), ("fan_out", fan_out)):
        std = init.calculate_gain("leaky_relu", 0.2) / math.sqrt(fan)
        v = values(init.kaiming_uniform_(param(*shape), a=0.2, mode=mode))
        assert np.abs(v).max() <= math.sqrt(3) * std * (1 + 1e-6)
        assert_stats(v, 0.0, std)
        assert_stats(values(init.kaiming_normal_(param(*shape), mode=mode, nonlinearity="relu")),
                     0.0, math.sqrt(2) / math.sqrt(fan))


@pytest.mark.parametrize("ours,theirs,kwargs", [
    (init.kaiming_uniform_, torch.nn.init.kaiming_uniform_, dict(a=math.sqrt(5))),
    (init.kaiming_uniform_, torch.nn.init.kaiming_uniform_, dict(mode="fan_out", nonlinearity="relu")),
    (init.xavier_uniform_, torch.nn.init.xavier_uniform_, dict(gain=2.0)),
])
def test_uniform_bounds_match_torch(xp, ours, theirs, kwargs):
    """The same shape gets the same range as PyTorch (ConvTranspose2d-shaped weight)."""
    shape = (64, 48, 4, 4)
    v = values(ours(param(*shape), **kwargs))
    t = theirs(torch.empty(shape), **kwargs).numpy()
    assert np.abs(v).max() == pytest.approx(np.abs(t).max(), rel=2e-3)


def test_in_place_dtype_and_return_value(xp):
    for dtype in (np.float32, np.float64):
        p = param(20, 30, dtype=dtype)
        data = p.data
        for fn in (init.normal_, init.uniform_, init.xavier_uniform_, init.xavier_normal_,
                   init.kaiming_uniform_, init.kaiming_normal_, init.zeros_, init.ones_):
            assert fn(p) is p and p.data is data and p.data.dtype == dtype
        assert init.constant_(p, 0.25) is p and (values(p) == 0.25).all()
        assert (values(init.zeros_(p)) == 0).all() and (values(init.ones_(p)) == 1).all()
    arr = backend.xp().empty((10, 10), dtype=np.float32)                       # bare arrays work too
    assert init.normal_(arr) is arr and arr.dtype == np.float32 and values(arr).std() > 0.5


def test_seeded_draws_repeat(xp):
    def draw(seed):
        backend.seed(seed)
        return [values(init.normal_(param(5, 6))), values(init.kaiming_uniform_(param(5, 6, 3, 3)))]
    a, b, c = draw(7), draw(7), draw(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_zero_size_is_a_no_op(xp):
    p = param(0, 3)
    assert init.kaiming_normal_(p) is p and init.kaiming_uniform_(p) is p


# ---- dcgan_init ------------------------------------------------------------------------
class Conv2d(Layer):
    def __init__(self, shape, bias=True):
        self.weight = param(*shape)
        self.bias = param(shape[0]) if bias else None


class ConvTranspose2d(Conv2d):
    pass


class Linear(Conv2d):
    pass


class BatchNorm2d(Layer):
    def __init__(self, c, affine=True):
        self.weight = Parameter(backend.xp().ones(c, dtype=np.float32)) if affine else None
        self.bias = Parameter(backend.xp().full(c, 0.5, dtype=np.float32)) if affine else None


class BatchNorm1d(BatchNorm2d):
    pass


class Mystery(Layer):
    def __init__(self):
        self.weight = Parameter(backend.xp().full((50, 50), 7.0, dtype=np.float32))


def test_dcgan_init_by_class_name(xp):
    model = Sequential(ConvTranspose2d((100, 64, 4, 4)), BatchNorm2d(64), Conv2d((64, 32, 3, 3), bias=False),
                       Sequential(Linear((200, 300)), BatchNorm1d(300), BatchNorm2d(3, affine=False)), Mystery())
    for _, p in model.named_parameters():
        p.data[...] = 5                                                         # so every touched value shows
    assert init.dcgan_init(model) is model
    for layer in (model[0], model[2], model[3][0]):
        assert_stats(values(layer.weight), 0.0, 0.02)
    for layer in (model[0], model[3][0]):
        assert not values(layer.bias).any()
    for bn in (model[1], model[3][1]):
        assert_stats(values(bn.weight), 1.0, 0.02, n_sigma=8)
        assert not values(bn.bias).any()
        assert bn.weight.data.dtype == np.float32
    assert (values(model[4].weight) == 5).all()                                 # unknown layers are left alone


def test_dcgan_init_on_npgan_layers(xp):
    L = pytest.importorskip("npgan.layers")
    model = Sequential(L.ConvTranspose2d(16, 8, 4), L.BatchNorm2d(8), L.ReLU(), L.Conv2d(8, 4, 3, bias=False),
                       L.Flatten(), L.Linear(36, 1), L.BatchNorm1d(1))
    init.dcgan_init(model)
    assert_stats(values(model[0].weight), 0.0, 0.02)
    assert abs(values(model[3].weight).std() - 0.02) < 0.004
    assert not values(model[0].bias).any() and not values(model[5].bias).any()
    assert abs(values(model[1].weight).mean() - 1.0) < 0.05
    assert all(p.data.dtype == np.float32 for p in model.parameters())


def test_draws_in_the_parameter_dtype(xp):
    """float32 parameters get float32 draws (half the random bits and memory of float64)."""
    backend.seed(3)
    expected = backend.asnumpy(backend.rng().standard_normal((4, 5), dtype=np.float32))
    backend.seed(3)
    assert np.array_equal(backend.asnumpy(init.normal_(param(4, 5)).data), expected)
