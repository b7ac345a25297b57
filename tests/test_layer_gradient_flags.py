"""Skipping gradients nobody reads: ``requires_grad_(False)`` and ``needs_input_grad``.

A frozen model must return the same input gradient as an unfrozen one while leaving every
parameter gradient untouched; a model that needs no input gradient returns None and still
adds the same parameter gradients. Both are how the GAN step skips work, so both must change
nothing else.
"""
import numpy as np
import pytest

from npgan import backend, layers as L
from npgan.models import dcgan


def _models():
    backend.seed(3)
    return {"D": (dcgan.Discriminator(width=8), (4, 1, 28, 28)),
            "G": (dcgan.Generator(z_dim=6, width=8), (4, 6)),
            "mlp": (L.Sequential(L.Linear(5, 7), L.BatchNorm1d(7), L.LeakyReLU(0.2), L.Linear(7, 2)), (4, 5))}


def _run(model, x, dout):
    model.zero_grad()
    model.forward(x)
    dx = model.backward(dout)
    return dx, [backend.asnumpy(p.grad).copy() for p in model.parameters()]


@pytest.mark.parametrize("name", ["D", "G", "mlp"])
def test_frozen_model_gives_the_same_input_gradient_and_no_parameter_gradient(name):
    model, shape = _models()[name]
    rng = np.random.default_rng(0)
    x = backend.to_device(rng.standard_normal(shape).astype(np.float32))
    out_shape = model.forward(x).shape
    dout = backend.to_device(rng.standard_normal(out_shape).astype(np.float32))
    dx_live, grads_live = _run(model, x, dout)
    assert any(np.abs(g).max() > 0 for g in grads_live)
    for p in model.parameters():                     # leftovers must stay as they were, not be zeroed
        p.grad[...] = 7
    model.requires_grad_(False)
    model.forward(x)
    dx_frozen = model.backward(dout)
    assert all((backend.asnumpy(p.grad) == 7).all() for p in model.parameters())
    np.testing.assert_array_equal(backend.asnumpy(dx_frozen), backend.asnumpy(dx_live))
    model.requires_grad_(True)
    _, grads_again = _run(model, x, dout)
    for a, b in zip(grads_live, grads_again):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["D", "G", "mlp"])
def test_no_input_gradient_returns_none_and_the_same_parameter_gradients(name):
    model, shape = _models()[name]
    rng = np.random.default_rng(1)
    x = backend.to_device(rng.standard_normal(shape).astype(np.float32))
    dout = backend.to_device(rng.standard_normal(model.forward(x).shape).astype(np.float32))
    dx, grads = _run(model, x, dout)
    assert dx is not None
    model.needs_input_grad = False
    assert model[0].needs_input_grad is False
    dx_none, grads_none = _run(model, x, dout)
    assert dx_none is None
    for a, b in zip(grads, grads_none):
        np.testing.assert_array_equal(a, b)
    model.needs_input_grad = True
    assert _run(model, x, dout)[0] is not None


def test_one_frozen_parameter_is_left_alone():
    lin = L.Linear(3, 2)
    lin.bias.requires_grad = False
    x = backend.to_device(np.ones((2, 3), np.float32))
    lin.forward(x)
    lin.backward(backend.to_device(np.ones((2, 2), np.float32)))
    assert float(abs(backend.asnumpy(lin.weight.grad)).sum()) > 0
    assert float(abs(backend.asnumpy(lin.bias.grad)).sum()) == 0
