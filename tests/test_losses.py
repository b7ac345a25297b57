"""Losses: values and gradients against PyTorch, stability at extreme logits, dtypes,
masks, GAN objectives, and a numerical gradient check of every backward."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npgan import backend
from npgan import losses as Lo
from npgan.gradcheck import assert_gradients_close, check_loss

torch = pytest.importorskip("torch")
F = torch.nn.functional

REDUCTIONS = ["mean", "sum", "none"]


def randn(*shape, seed=0, dtype=np.float32, scale=1.0):
    return backend.to_device((scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype))


def host(a):
    return backend.asnumpy(a)


def torch_loss_and_grad(fn, x, dloss, *args, **kwargs):
    """Value and d(loss)/dx from PyTorch autograd, upstream gradient ``dloss``."""
    xt = torch.tensor(host(x), requires_grad=True)
    out = fn(xt, *args, **kwargs)
    out.backward(torch.as_tensor(np.asarray(host(dloss)), dtype=out.dtype).expand_as(out))
    return out.detach().numpy(), xt.grad.numpy()


def upstream(loss, seed=1):
    """A random upstream gradient shaped like the loss (0-d for 'mean'/'sum')."""
    return backend.to_device(np.random.default_rng(seed).standard_normal(np.shape(loss)).astype(loss.dtype))


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


# ---- BCE with logits -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_kind", ["array", "soft_array", "one", "zero", "smoothed"])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_matches_torch(xp, dtype, reduction, target_kind, weighted):
    x = randn(6, 3, dtype=dtype, scale=3.0)
    rng = np.random.default_rng(2)
    targets = {"array": (rng.random((6, 3)) < 0.5).astype(dtype), "soft_array": rng.random((6, 3)).astype(dtype),
               "one": 1.0, "zero": 0.0, "smoothed": 0.9}[target_kind]
    weight = rng.random((1, 3)).astype(dtype) if weighted else None       # broadcast over the batch
    t = backend.to_device(targets) if isinstance(targets, np.ndarray) else targets
    w = None if weight is None else backend.to_device(weight)

    loss, cache = Lo.bce_with_logits_forward(x, t, weight=w, reduction=reduction)
    dloss = upstream(loss)
    dx = Lo.bce_with_logits_backward(dloss, cache)

    t_torch = torch.as_tensor(np.broadcast_to(np.asarray(targets, dtype=dtype), (6, 3)).copy())
    w_torch = None if weight is None else torch.as_tensor(weight)
    ref, ref_dx = torch_loss_and_grad(F.binary_cross_entropy_with_logits, x, dloss, t_torch,
                                      weight=w_torch, reduction=reduction)
    assert loss.dtype == dtype and dx.dtype == dtype
    assert loss.shape == (() if reduction != "none" else (6, 3))
    np.testing.assert_allclose(host(loss), ref, **tol(dtype))
    np.testing.assert_allclose(host(dx), ref_dx, **tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_extreme_logits_finite_and_exact(xp, dtype):
    x = backend.to_device(np.array([-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4], dtype=dtype))
    for t in (0.0, 1.0, 0.9):
        loss, cache = Lo.bce_with_logits_forward(x, t, reduction="none")
        dx = Lo.bce_with_logits_backward(backend.to_device(np.ones(7, dtype)), cache)
        assert np.isfinite(host(loss)).all() and np.isfinite(host(dx)).all()
        ref, ref_dx = torch_loss_and_grad(F.binary_cross_entropy_with_logits, x, np.ones(7, dtype),
                                          torch.full((7,), t, dtype=getattr(torch, np.dtype(dtype).name)),
                                          reduction="none")
        np.testing.assert_allclose(host(loss), ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(host(dx), ref_dx, rtol=1e-6, atol=1e-7)
    # the confident mistakes cost |x| and have gradient +-1; confident successes cost ~0
    loss, cache = Lo.bce_with_logits_forward(x, 1.0, reduction="none")
    assert host(loss)[0] == pytest.approx(1e4) and host(loss)[-1] == 0.0
    dx = host(Lo.bce_with_logits_backward(backend.to_device(np.ones(7, dtype)), cache))
    assert dx[0] == -1.0 and dx[-1] == 0.0


def test_bce_float32_preserved_for_any_dloss_type(xp):
    x = randn(4, 1)
    loss, cache = Lo.bce_with_logits_forward(x, 1.0)
    assert loss.dtype == np.float32 and loss.ndim == 0
    for dloss in (1.0, 2, np.float64(1.0), np.array(1.0), np.array(3), backend.to_device(np.array(1.0))):
        assert Lo.bce_with_logits_backward(dloss, cache).dtype == np.float32, type(dloss)
    # a float64 target or weight does not promote a float32 loss either
    loss, cache = Lo.bce_with_logits_forward(x, backend.to_device(np.ones((4, 1))), weight=np.float64(2.0))
    assert loss.dtype == np.float32 and Lo.bce_with_logits_backward(1.0, cache).dtype == np.float32


@settings(max_examples=25)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), seed=st.integers(0, 2**16),
       reduction=st.sampled_from(REDUCTIONS))
def test_bce_any_shape_matches_torch(shape, seed, reduction):
    rng = np.random.default_rng(seed)
    x = backend.to_device((5 * rng.standard_normal(shape)))
    t = rng.random(shape)
    loss, cache = Lo.bce_with_logits_forward(x, backend.to_device(t), reduction=reduction)
    dloss = upstream(loss, seed)
    dx = Lo.bce_with_logits_backward(dloss, cache)
    ref, ref_dx = torch_loss_and_grad(F.binary_cross_entropy_with_logits, x, dloss, torch.as_tensor(t),
                                      reduction=reduction)
    np.testing.assert_allclose(host(loss), ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(host(dx), ref_dx, rtol=1e-12, atol=1e-13)


def test_bce_shape_errors(xp):
    x = randn(4, 1)
    with pytest.raises(ValueError, match="does not broadcast"):
        Lo.bce_with_logits_forward(x, randn(4, 2))
    with pytest.raises(ValueError, match="reduction"):
        Lo.bce_with_logits_forward(x, 1.0, reduction="avg")
    _, cache = Lo.bce_with_logits_forward(x, 1.0)
    with pytest.raises(ValueError, match="scalar"):
        Lo.bce_with_logits_backward(randn(4, 1), cache)


# ---- MSE and L1 ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse", "l1"])
def test_mse_l1_match_torch(xp, dtype, reduction, name):
    x, y = randn(3, 2, 4, dtype=dtype), randn(3, 2, 4, seed=5, dtype=dtype)
    y = xp.where(backend.to_device(np.arange(24).reshape(3, 2, 4) % 7 == 0), x, y)  # some exact ties for L1
    fwd, bwd = {"mse": (Lo.mse_forward, Lo.mse_backward), "l1": (Lo.l1_forward, Lo.l1_backward)}[name]
    loss, cache = fwd(x, y, reduction=reduction)
    dloss = upstream(loss)
    dx = bwd(dloss, cache)
    ref, ref_dx = torch_loss_and_grad({"mse": F.mse_loss, "l1": F.l1_loss}[name], x, dloss,
                                      torch.as_tensor(host(y)), reduction=reduction)
    assert loss.dtype == dtype and dx.dtype == dtype
    np.testing.assert_allclose(host(loss), ref, **tol(dtype))
    np.testing.assert_allclose(host(dx), ref_dx, **tol(dtype))


def test_loss_objects_mirror_functional_pairs(xp):
    x, y = randn(2, 3), randn(2, 3, seed=1)
    for cls, fwd, bwd in [(Lo.MSELoss, Lo.mse_forward, Lo.mse_backward), (Lo.L1Loss, Lo.l1_forward, Lo.l1_backward),
                          (Lo.BCEWithLogitsLoss, Lo.bce_with_logits_forward, Lo.bce_with_logits_backward)]:
        target = y if cls is not Lo.BCEWithLogitsLoss else 0.9
        criterion = cls(reduction="sum")
        loss = criterion(x, target)
        ref, cache = fwd(x, target, reduction="sum")
        assert np.array_equal(host(loss), host(ref))
        assert np.array_equal(host(criterion.backward()), host(bwd(1.0, cache)))
        assert np.array_equal(host(criterion.backward(2.0)), host(bwd(2.0, cache)))
    with pytest.raises(RuntimeError, match="before forward"):
        Lo.MSELoss().backward()


# ---- masked reconstruction losses ---------------------------------------------------------
def torch_masked(kind, x, y, mask, reduction):
    def fn(xt):
        m = torch.as_tensor(host(mask)).to(xt.dtype)
        err = (xt - torch.as_tensor(host(y))) ** 2 if kind == "mse" else (xt - torch.as_tensor(host(y))).abs()
        total = (m * err).sum()
        return total / m.expand_as(xt).sum() if reduction == "mean" else total
    return fn


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("kind", ["mse", "l1"])
@pytest.mark.parametrize("mask_shape", [(2, 3, 4, 5), (2, 1, 4, 5), (4, 5)])
def test_masked_losses_match_formula(xp, dtype, reduction, kind, mask_shape):
    x, y = randn(2, 3, 4, 5, dtype=dtype), randn(2, 3, 4, 5, seed=3, dtype=dtype)
    mask = backend.to_device((np.random.default_rng(4).random(mask_shape) < 0.3).astype(dtype))
    fwd, bwd = {"mse": (Lo.masked_mse_forward, Lo.masked_mse_backward),
                "l1": (Lo.masked_l1_forward, Lo.masked_l1_backward)}[kind]
    loss, cache = fwd(x, y, mask, reduction=reduction)
    dloss = upstream(loss)
    dx = bwd(dloss, cache)
    ref, ref_dx = torch_loss_and_grad(torch_masked(kind, x, y, mask, reduction), x, dloss)
    assert loss.dtype == dtype and dx.dtype == dtype
    np.testing.assert_allclose(host(loss), ref, **tol(dtype))
    np.testing.assert_allclose(host(dx), ref_dx, **tol(dtype))
    # outside the mask the gradient is exactly 0
    outside = np.broadcast_to(host(mask), x.shape) == 0
    assert (host(dx)[outside] == 0).all()


def test_masked_mean_is_mean_over_covered_entries(xp):
    x = backend.to_device(np.zeros((1, 2, 2, 2), np.float32))
    y = backend.to_device(np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2))
    mask = backend.to_device(np.array([[[[1, 0], [0, 1]]]], np.float32))        # (1, 1, 2, 2): 2 pixels x 2 channels
    loss, _ = Lo.masked_l1_forward(x, y, mask)
    assert float(host(loss)) == pytest.approx((0 + 3 + 4 + 7) / 4)
    # soft weights: a weighted mean
    loss, _ = Lo.masked_mse_forward(x[:, :1], y[:, :1], 0.5 * mask)
    assert float(host(loss)) == pytest.approx((0.5 * 0 + 0.5 * 9) / 1.0)


@pytest.mark.parametrize("cls", [Lo.MaskedMSELoss, Lo.MaskedL1Loss])
def test_masked_all_zero_mask_gives_zero_not_nan(xp, cls):
    x, y = randn(2, 3, 4, 4), randn(2, 3, 4, 4, seed=1)
    criterion = cls()
    loss = criterion(x, y, backend.to_device(np.zeros((2, 1, 4, 4), bool)))     # bool masks are accepted
    dx = criterion.backward()
    assert loss.dtype == np.float32 and float(host(loss)) == 0.0
    assert dx.dtype == np.float32 and not host(dx).any()


# ---- numerical gradient checks -------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_objects_pass_gradcheck(xp, reduction):
    x, y = randn(3, 2, 3, dtype=np.float64), randn(3, 2, 3, seed=1, dtype=np.float64)
    mask = backend.to_device((np.random.default_rng(2).random((3, 1, 3)) < 0.5).astype(np.float64))
    t = backend.to_device(np.random.default_rng(3).random((3, 2, 3)))
    w = backend.to_device(np.random.default_rng(4).random((2, 3)))
    assert_gradients_close(check_loss(Lo.BCEWithLogitsLoss(weight=w, reduction=reduction), x, t))
    assert_gradients_close(check_loss(Lo.MSELoss(reduction), x, y))
    assert_gradients_close(check_loss(Lo.L1Loss(reduction), x, y))
    if reduction != "none":
        assert_gradients_close(check_loss(Lo.MaskedMSELoss(reduction), x, y, mask))
        assert_gradients_close(check_loss(Lo.MaskedL1Loss(reduction), x, y, mask))
