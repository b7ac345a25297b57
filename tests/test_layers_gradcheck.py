"""Every layer's hand-written backward against central finite differences (float64).

Each check draws a random upstream gradient and compares d/dθ sum(out * dout) for the
input and every parameter; the worst relative error must stay below 1e-6.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npgan import backend, layers as L
from npgan.gradcheck import assert_gradients_close, check_layer
from npgan.im2col import conv_output_size

TOL = 1e-6


def randn(*shape, seed=0):
    return backend.to_device(np.random.default_rng(seed).standard_normal(shape))


def check(layer, x, tol=TOL):
    result = check_layer(layer.to("float64"), x)
    assert_gradients_close(result, tol)
    return result


@st.composite
def conv_config(draw, transposed=False):
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    p = draw(st.integers(0, (d * (k - 1)) // 2 + 1)) if not transposed else draw(st.integers(0, (d * (k - 1)) // 2))
    span = d * (k - 1) + 1
    lo = max(1, span - 2 * p) if not transposed else 1
    h, w = draw(st.integers(lo, lo + 5)), draw(st.integers(lo, lo + 5))
    op = draw(st.integers(0, max(s, d) - 1)) if transposed else 0
    return dict(n=draw(st.integers(1, 3)), cin=draw(st.integers(1, 3)), cout=draw(st.integers(1, 3)),
                h=h, w=w, k=k, s=s, p=p, d=d, op=op, bias=draw(st.booleans()))


@settings(max_examples=25)
@given(conv_config())
def test_conv2d(cfg):
    layer = L.Conv2d(cfg["cin"], cfg["cout"], cfg["k"], cfg["s"], cfg["p"], cfg["d"], bias=cfg["bias"])
    check(layer, randn(cfg["n"], cfg["cin"], cfg["h"], cfg["w"]))


@settings(max_examples=25)
@given(conv_config(transposed=True))
def test_conv_transpose2d(cfg):
    from npgan.im2col import conv_transpose_output_size
    if conv_transpose_output_size(cfg["h"], cfg["k"], cfg["s"], cfg["p"], cfg["op"], cfg["d"]) < 1:
        return
    layer = L.ConvTranspose2d(cfg["cin"], cfg["cout"], cfg["k"], cfg["s"], cfg["p"], cfg["op"],
                              bias=cfg["bias"], dilation=cfg["d"])
    check(layer, randn(cfg["n"], cfg["cin"], cfg["h"], cfg["w"]))


@settings(max_examples=15)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5), st.booleans(), st.booleans())
def test_linear(n, fin, fout, bias, extra_dim):
    shape = (n, 2, fin) if extra_dim else (n, fin)
    check(L.Linear(fin, fout, bias=bias), randn(*shape))


@settings(max_examples=15)
@given(st.integers(2, 5), st.integers(1, 4), st.sampled_from([(), (3,), (1,)]), st.booleans())
def test_batchnorm1d_training(n, c, tail, affine):
    layer = L.BatchNorm1d(c, affine=affine)
    if affine:  # random gamma/beta so the scale and shift terms are exercised
        layer.weight.data[...] = backend.to_device(np.random.default_rng(3).uniform(0.5, 1.5, c))
        layer.bias.data[...] = backend.to_device(np.random.default_rng(4).standard_normal(c))
    check(layer, randn(n, c, *tail) * 3 + 1)


@settings(max_examples=15)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5))
def test_batchnorm2d_training_and_eval(n, c, h, w):
    if n * h * w < 2:
        return
    layer = L.BatchNorm2d(c)
    layer.weight.data[...] = backend.to_device(np.random.default_rng(3).uniform(0.5, 1.5, c))
    layer.bias.data[...] = backend.to_device(np.random.default_rng(4).standard_normal(c))
    x = randn(n, c, h, w) * 2 - 1
    check(layer, x)
    layer.running_var[...] = backend.to_device(np.random.default_rng(5).uniform(0.5, 2, c))
    check(layer.eval(), x)


def test_batchnorm_after_conv_chain():
    """BatchNorm's cross-batch terms checked where they matter: after another layer, with a nonlinearity."""
    chain = L.Sequential(L.Conv2d(2, 3, 3, 1, 1), L.BatchNorm2d(3), L.LeakyReLU(0.2), L.Conv2d(3, 2, 3, 2, 1))
    check(chain, randn(3, 2, 6, 5))
    chain1d = L.Sequential(L.Linear(5, 4), L.BatchNorm1d(4), L.Tanh(), L.Linear(4, 2))
    check(chain1d, randn(6, 5))


@pytest.mark.parametrize("layer", [L.ReLU(), L.LeakyReLU(0.2), L.ELU(), L.ELU(0.5), L.Tanh(), L.Sigmoid()],
                         ids=lambda l: repr(l))
def test_activations(layer):
    x = randn(3, 4, 5) * 2
    x = backend.xp().where(abs(x) < 1e-3, 0.5, x)  # keep clear of the kink at 0
    check(layer, x)


def test_sigmoid_and_tanh_are_finite_for_huge_inputs():
    x = backend.to_device(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=np.float32))
    for layer in (L.Sigmoid(), L.Tanh()):
        out = layer.forward(x)
        dx = layer.backward(backend.xp().ones_like(x))
        assert np.isfinite(backend.asnumpy(out)).all() and np.isfinite(backend.asnumpy(dx)).all()


@settings(max_examples=15)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(2, 7), st.integers(2, 7), st.integers(1, 3),
       st.integers(1, 3), st.sampled_from([L.MaxPool2d, L.AvgPool2d]))
def test_pooling(n, c, h, w, k, s, cls):
    p = min(k // 2, 1)
    if conv_output_size(min(h, w), k, s, p) < 1:
        return
    # distinct values so the max is unique (the max is not differentiable at ties)
    x = backend.to_device(np.random.default_rng(0).permutation(n * c * h * w).reshape(n, c, h, w) / 7.0)
    check(cls(k, s, p), x)


@pytest.mark.parametrize("layer,shape", [
    (L.Flatten(), (2, 3, 4, 5)), (L.Flatten(2), (2, 3, 4, 5)), (L.Unflatten(1, (3, 4)), (2, 12)),
    (L.Reshape(2, 3, 2), (4, 12)), (L.Upsample(2), (2, 3, 3, 4)), (L.Upsample(3), (1, 2, 2, 3)),
])
def test_shape_layers(layer, shape):
    check(layer, randn(*shape))


def test_dropout_training_mask_is_reused_and_eval_is_identity():
    layer = L.Dropout(0.4)
    check(layer, randn(8, 16))          # gradcheck replays the RNG, so the mask repeats
    x = randn(4, 5)
    assert np.array_equal(backend.asnumpy(layer.eval().forward(x)), backend.asnumpy(x))


@settings(max_examples=10)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.booleans())
def test_channelwise_linear(n, c, h, w, bias):
    layer = L.ChannelwiseLinear(c, (h, w), out_size=(w, h + 1), bias=bias)
    check(layer, randn(n, c, h, w))


def test_dcgan_end_to_end():
    """The whole DCGAN-MNIST-28 G and D, input and every parameter, on a tiny batch."""
    from npgan.models import dcgan
    G, D = dcgan.Generator().to("float64"), dcgan.Discriminator().to("float64")
    result_g = check_layer(G, randn(3, 100), max_entries=24)
    assert_gradients_close(result_g, TOL)
    assert set(result_g.errors) == {"input"} | {k for k, _ in G.named_parameters()}
    result_d = check_layer(D, randn(3, 1, 28, 28), max_entries=24)
    assert_gradients_close(result_d, TOL)
    assert set(result_d.errors) == {"input"} | {k for k, _ in D.named_parameters()}
