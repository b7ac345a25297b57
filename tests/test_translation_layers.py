"""The layers a CycleGAN generator needs: InstanceNorm2d, ReflectionPad2d and Residual.

Each backward against central finite differences (float64, a random upstream gradient), each
layer against its definition written naively on the host, and against PyTorch where torch is
installed; then the errors they raise and how Residual behaves as a container.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npgan import backend, layers as L
from npgan import functional as F
from npgan.gradcheck import assert_gradients_close, check_function

from test_layers_gradcheck import TOL, check, randn  # noqa: F401  (the layer tests' helpers)


def randomise_affine(norm, seed=3):
    """gamma and beta away from their defaults (1, 0), so the scale and shift terms count."""
    rng = np.random.default_rng(seed)
    c = norm.num_features
    norm.weight.data[...] = backend.to_device(rng.uniform(0.5, 1.5, c).astype(norm.weight.data.dtype))
    norm.bias.data[...] = backend.to_device(rng.standard_normal(c).astype(norm.bias.data.dtype))


def resnet_block(c, affine=True, reflect=False, bias=True):
    """Conv 3x3 (zero padding 1, or ReflectionPad2d(1) then no padding), InstanceNorm, ReLU, Conv, InstanceNorm.

    The convolutions' biases have a zero gradient (InstanceNorm subtracts any per-channel
    shift): gradient checks leave them out (bias=False), since their finite differences are
    pure rounding noise."""
    def conv():
        return ([L.ReflectionPad2d(1), L.Conv2d(c, c, 3, bias=bias)] if reflect else
                [L.Conv2d(c, c, 3, padding=1, bias=bias)])
    return L.Residual(L.Sequential(*conv(), L.InstanceNorm2d(c, affine=affine), L.ReLU(),
                                   *conv(), L.InstanceNorm2d(c, affine=affine)))


@st.composite
def pad_config(draw):
    """An input (N, C, H, W) and a padding below each axis's size: an int or (left, right, top, bottom)."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    if draw(st.booleans()):
        padding = draw(st.integers(0, min(h, w) - 1))
    else:
        padding = (draw(st.integers(0, w - 1)), draw(st.integers(0, w - 1)),
                   draw(st.integers(0, h - 1)), draw(st.integers(0, h - 1)))
    return (n, c, h, w), padding


def sides(padding):
    return (padding,) * 4 if isinstance(padding, int) else padding


# ---------------------------------------------------------------- gradient checks
@settings(max_examples=20)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5),
       st.sampled_from([1e-5, 1e-3, 0.5]), st.booleans(), st.booleans())
def test_instance_norm_gradcheck(n, c, h, w, eps, affine, training):
    if h * w < 2:
        return
    layer = L.InstanceNorm2d(c, eps=eps, affine=affine, dtype="float64")
    if affine:
        randomise_affine(layer)
    layer.train(training)
    check(layer, randn(n, c, h, w) * 3 + 1)


@settings(max_examples=15)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(2, 5), st.sampled_from([1e-5, 0.1]), st.booleans())
def test_instance_norm_functional_gradcheck(n, c, hw, eps, affine):
    x = randn(n, c, hw, hw + 1, seed=1) * 2 - 1
    gamma, beta = (randn(c, seed=2), randn(c, seed=3)) if affine else (None, None)
    result = check_function(F.instance_norm_forward, F.instance_norm_backward, [x, gamma, beta, eps])
    assert_gradients_close(result, TOL)
    assert len(result.errors) == (3 if affine else 1)


@settings(max_examples=25)
@given(pad_config())
def test_reflection_pad_gradcheck(cfg):
    shape, padding = cfg
    check(L.ReflectionPad2d(padding), randn(*shape))
    result = check_function(F.reflection_pad_forward, F.reflection_pad_backward, [randn(*shape), sides(padding)])
    assert_gradients_close(result, TOL)


@settings(max_examples=6)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(2, 5), st.booleans(), st.booleans())
def test_residual_block_gradcheck(n, c, hw, affine, reflect):
    """dx (the skip path plus the body's) and every parameter gradient of a ResNet block."""
    block = resnet_block(c, affine, reflect, bias=False).to("float64")
    for m in block.modules():
        if isinstance(m, L.InstanceNorm2d) and affine:
            randomise_affine(m)
    result = check(block, randn(n, c, hw, hw + 1))
    assert set(result.errors) == {"input"} | {k for k, _ in block.named_parameters()}
    check(L.Residual(L.Sequential(L.Conv2d(c, c, 3, padding=1), L.Tanh())), randn(n, c, hw, hw + 1, seed=1))


# ---------------------------------------------------------------- the definitions, on the host
def reflection_matrix(size, before, after):
    """R (size + before + after, size): R[o, i] = 1 where padded row o copies input row i."""
    r = np.zeros((size + before + after, size))
    for o in range(size + before + after):
        i = abs(o - before)                                            # reflect about row 0
        r[o, i if i < size else 2 * (size - 1) - i] = 1                # ... and about row size - 1
    return r


@settings(max_examples=25)
@given(pad_config())
def test_reflection_pad_is_its_matrix_form(cfg):
    """y = R_h x R_w^T (NumPy's 'reflect' pad) and dx = R_h^T dy R_w."""
    (n, c, h, w), padding = cfg
    left, right, top, bottom = sides(padding)
    x = np.random.default_rng(0).standard_normal((n, c, h, w))
    rh, rw = reflection_matrix(h, top, bottom), reflection_matrix(w, left, right)
    pad = L.ReflectionPad2d(padding)
    y = backend.asnumpy(pad.forward(backend.to_device(x)))
    np.testing.assert_allclose(y, rh @ x @ rw.T, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode="reflect"))
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dx = backend.asnumpy(pad.backward(backend.to_device(dy)))
    np.testing.assert_allclose(dx, rh.T @ dy @ rw, rtol=1e-12, atol=1e-12)


def test_reflection_pad_indices_formula():
    xp = backend.xp()
    assert backend.asnumpy(F.reflection_pad_indices(xp, 4, 2, 1)).tolist() == [2, 1, 0, 1, 2, 3, 2]
    assert backend.asnumpy(F.reflection_pad_indices(xp, 2, 1, 1)).tolist() == [1, 0, 1, 0]
    assert backend.asnumpy(F.reflection_pad_indices(xp, 1, 0, 0)).tolist() == [0]


def test_instance_norm_is_its_per_sample_definition():
    """Each (n, c) image normalised by its own mean and biased variance, in train and eval alike."""
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 5)) * 4 + 2
    layer = L.InstanceNorm2d(2, eps=1e-3, affine=True, dtype="float64")
    randomise_affine(layer)
    gamma, beta = backend.asnumpy(layer.weight.data), backend.asnumpy(layer.bias.data)
    want = np.empty_like(x)
    for n in range(3):
        for c in range(2):
            v = x[n, c]
            want[n, c] = (v - v.mean()) / np.sqrt(v.var() + 1e-3) * gamma[c] + beta[c]
    for training in (True, False):
        out = layer.train(training).forward(backend.to_device(x))
        np.testing.assert_allclose(backend.asnumpy(out), want, rtol=1e-12, atol=1e-12)


def test_instance_norm_computes_in_the_input_dtype():
    layer = L.InstanceNorm2d(3, affine=True)
    x = randn(2, 3, 4, 4).astype("float32")
    out = layer.forward(x)
    assert out.dtype == np.float32 and layer.weight.data.dtype == np.float32
    assert layer.backward(out).dtype == np.float32 and layer.weight.grad.dtype == np.float32
    assert L.InstanceNorm2d(3).forward(randn(2, 3, 4, 4)).dtype == np.float64        # no parameters to match


# ---------------------------------------------------------------- PyTorch parity (float64)
def torch_compare(ours, theirs, x_host, dout_seed=7):
    """Our weights into torch, one forward and backward each; returns the max absolute
    differences {'output', 'input', parameter names...} (the gradients are compared after the
    backward adds into zeroed grads)."""
    torch = pytest.importorskip("torch")
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    ours.zero_grad()
    x = backend.to_device(x_host)
    tx = torch.from_numpy(x_host.copy()).requires_grad_(True)
    out, tout = ours.forward(x), theirs(tx)
    dout = np.random.default_rng(dout_seed).standard_normal(tout.shape)
    dx = ours.backward(backend.to_device(dout))
    tout.backward(torch.from_numpy(dout))
    diffs = {"output": np.abs(backend.asnumpy(out) - tout.detach().numpy()).max(),
             "input": np.abs(backend.asnumpy(dx) - tx.grad.numpy()).max()}
    theirs_params = dict(theirs.named_parameters())
    assert set(theirs_params) == {k for k, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        diffs[name] = np.abs(backend.asnumpy(p.grad) - theirs_params[name].grad.numpy()).max()
    return diffs


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_instance_norm_matches_pytorch(affine, training):
    torch = pytest.importorskip("torch")
    ours = L.InstanceNorm2d(3, eps=1e-4, affine=affine, dtype="float64")
    if affine:
        randomise_affine(ours)
    theirs = torch.nn.InstanceNorm2d(3, eps=1e-4, affine=affine).double()
    ours.train(training), theirs.train(training)
    diffs = torch_compare(ours, theirs, np.random.default_rng(0).standard_normal((4, 3, 5, 6)) * 2 + 1)
    assert max(diffs.values()) < 1e-12, diffs
    assert set(ours.state_dict()) == set(theirs.state_dict()) == ({"weight", "bias"} if affine else set())


@pytest.mark.parametrize("padding,shape", [(1, (2, 3, 4, 5)), (3, (1, 2, 4, 4)), ((0, 2, 3, 1), (2, 1, 5, 3)),
                                           ((4, 0, 0, 2), (1, 2, 3, 6)), ((1, 2, 3, 4), (2, 5, 6))])
def test_reflection_pad_matches_pytorch(padding, shape):
    """Also an unbatched (C, H, W) input, as PyTorch accepts."""
    torch = pytest.importorskip("torch")
    diffs = torch_compare(L.ReflectionPad2d(padding), torch.nn.ReflectionPad2d(padding),
                          np.random.default_rng(1).standard_normal(shape))
    assert diffs["output"] == 0, diffs                                  # copies of the same values
    assert diffs["input"] < 1e-14, diffs                                # the same sums, in another order


def torch_residual(body):
    """The torch module ``y = x + body(x)`` with ``self.body`` (defined here: torch is optional)."""
    torch = pytest.importorskip("torch")

    class Residual(torch.nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            return x + self.body(x)

    return Residual(body)


def torch_resnet_block(c, affine=True, reflect=False):
    nn = pytest.importorskip("torch").nn

    def conv():
        return [nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3)] if reflect else [nn.Conv2d(c, c, 3, padding=1)]
    return torch_residual(nn.Sequential(*conv(), nn.InstanceNorm2d(c, affine=affine), nn.ReLU(),
                                        *conv(), nn.InstanceNorm2d(c, affine=affine))).double()


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("reflect", [False, True])
def test_residual_block_matches_pytorch(affine, reflect):
    ours = resnet_block(4, affine, reflect).to("float64")
    for m in ours.modules():
        if isinstance(m, L.InstanceNorm2d) and affine:
            randomise_affine(m)
    theirs = torch_resnet_block(4, affine, reflect)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    diffs = torch_compare(ours, theirs, np.random.default_rng(2).standard_normal((2, 4, 6, 5)))
    assert max(diffs.values()) < 1e-10, diffs


def test_sequential_of_residual_blocks_matches_pytorch():
    """A CycleGAN-style trunk: conv, two residual blocks, conv; the state_dict keys are torch's."""
    nn = pytest.importorskip("torch").nn
    ours = L.Sequential(L.ReflectionPad2d(3), L.Conv2d(2, 4, 7), L.InstanceNorm2d(4), L.ReLU(),
                        resnet_block(4, reflect=True), resnet_block(4, affine=False),
                        L.Conv2d(4, 2, 3, padding=1), L.Tanh()).to("float64")
    theirs = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(2, 4, 7), nn.InstanceNorm2d(4), nn.ReLU(),
                           torch_resnet_block(4, reflect=True), torch_resnet_block(4, affine=False),
                           nn.Conv2d(4, 2, 3, padding=1), nn.Tanh()).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    keys = ours.state_dict()
    assert "4.body.2.weight" in keys and "5.body.3.weight" in keys and "5.body.1.weight" not in keys
    diffs = torch_compare(ours, theirs, np.random.default_rng(3).standard_normal((2, 2, 8, 7)))
    assert max(diffs.values()) < 1e-10, diffs


# ---------------------------------------------------------------- errors
def test_instance_norm_refuses_bad_input():
    norm = L.InstanceNorm2d(4)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4, \*, \*\), got \(2, 3, 5, 5\) "
                                         r"\(3 channels instead of 4\)"):
        norm.forward(randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match=r"InstanceNorm2d: expected a 4-D input, got shape \(4, 5, 5\)"):
        norm.forward(randn(4, 5, 5))
    with pytest.raises(ValueError, match=r"more than 1 spatial element .* \(2, 4, 1, 1\)"):
        norm.forward(randn(2, 4, 1, 1))
    with pytest.raises(ValueError, match="InstanceNorm2d: track_running_stats=True .* not supported"):
        L.InstanceNorm2d(4, track_running_stats=True)
    with pytest.raises(ValueError, match="eps must be positive"):
        L.InstanceNorm2d(4, eps=0)
    with pytest.raises(TypeError, match="input dtype float64 does not match parameter dtype float32"):
        L.InstanceNorm2d(4, affine=True).forward(randn(2, 4, 3, 3))


def test_reflection_pad_refuses_bad_input():
    with pytest.raises(ValueError, match=r"padding \(left, right\) = \(3, 3\) must be smaller than the input width 3 "
                                         r"\(input shape \(1, 1, 5, 3\)"):
        L.ReflectionPad2d(3).forward(randn(1, 1, 5, 3))
    with pytest.raises(ValueError, match=r"padding \(top, bottom\) = \(0, 4\) must be smaller than the input height 4"):
        L.ReflectionPad2d((1, 1, 0, 4)).forward(randn(1, 1, 4, 6))
    with pytest.raises(ValueError, match=r"expected a 3-D \(C, H, W\) or 4-D \(N, C, H, W\) input, got shape \(5, 5\)"):
        L.ReflectionPad2d(1).forward(randn(5, 5))
    for bad in [(1, 2), -1, (1, 1, 1, -1), 1.5, True]:
        with pytest.raises(ValueError, match=r"a non-negative int or a 4-tuple"):
            L.ReflectionPad2d(bad)


def test_residual_refuses_a_body_that_changes_the_shape():
    block = L.Residual(L.Conv2d(3, 4, 3, padding=1, dtype="float64"))
    with pytest.raises(ValueError, match=r"maps input shape \(2, 3, 5, 5\) to \(2, 4, 5, 5\)"):
        block.forward(randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match=r"\(3 channels instead of 2\)"):       # the body's own check
        L.Residual(L.Conv2d(2, 2, 3, padding=1, dtype="float64")).forward(randn(2, 3, 5, 5))
    with pytest.raises(TypeError, match="body must be an npgan layer.*call it"):
        L.Residual(L.ReLU)


def test_no_second_order_pass_except_the_padding():
    pad = L.ReflectionPad2d((1, 0, 2, 1))
    t = randn(2, 3, 4, 4, seed=5)
    pad.forward(randn(2, 3, 4, 4))
    np.testing.assert_array_equal(backend.asnumpy(pad.tangent(t)), backend.asnumpy(pad.forward(t)))
    for layer, reason in [(L.InstanceNorm2d(2), "not piecewise linear"), (L.Residual(L.ReLU()), "residual block")]:
        with pytest.raises(NotImplementedError, match=f"{type(layer).__name__} has no second-order pass: .*{reason}"):
            layer.tangent(None)


# ---------------------------------------------------------------- Residual as a container
def _grads(model):
    return {k: backend.asnumpy(p.grad).copy() for k, p in model.named_parameters()}


def _step(model, x, dout):
    model.zero_grad()
    model.forward(x)
    return model.backward(dout), _grads(model)


def test_residual_inside_sequential_flags_and_modes():
    backend.seed(1)
    model = L.Sequential(resnet_block(3), L.Conv2d(3, 2, 1), resnet_block(2, affine=False)).to("float64")
    x, dout = randn(2, 3, 5, 5), randn(2, 2, 5, 5, seed=1)
    assert [k for k, _ in model.named_parameters()][:2] == ["0.body.0.weight", "0.body.0.bias"]
    assert len(model.parameters()) == 4 + 4 + 2 + 4

    dx, grads = _step(model, x, dout)
    assert dx.shape == x.shape and all(np.abs(g).max() > 0 for k, g in grads.items() if not k.endswith("bias"))

    for p in model.parameters():                                        # frozen: dx unchanged, no grads added
        p.grad[...] = 7
    with L.frozen(model):
        model.forward(x)
        dx_frozen = model.backward(dout)
    assert all((backend.asnumpy(p.grad) == 7).all() for p in model.parameters())
    np.testing.assert_array_equal(backend.asnumpy(dx_frozen), backend.asnumpy(dx))
    assert all(p.requires_grad for p in model.parameters())

    with L.no_input_grad(model):                                        # None, the same parameter grads
        assert model[0].needs_input_grad is False and model[0].body[0].needs_input_grad is False
        assert model[2].needs_input_grad is True and model[2].body[0].needs_input_grad is True
        dx_none, grads_none = _step(model, x, dout)
    assert dx_none is None
    for k in grads:
        np.testing.assert_array_equal(grads_none[k], grads[k], err_msg=k)
    assert model[0].needs_input_grad is True and model[0].body[0].needs_input_grad is True

    model.eval()
    assert all(not m.training for m in model.modules())
    np.testing.assert_array_equal(backend.asnumpy(model.forward(x)),
                                  backend.asnumpy(model.train().forward(x)))   # InstanceNorm: same in both


def test_residual_without_input_gradient_skips_only_what_nobody_reads():
    """With needs_input_grad False the block returns None and its body's first layer skips its dx
    (a Conv2d then returns None), yet every parameter gradient is the one of a full backward:
    the gradient paths inside the body are still computed."""
    block = resnet_block(3).to("float64")
    x, dout = randn(2, 3, 4, 4), randn(2, 3, 4, 4, seed=2)
    dx, grads = _step(block, x, dout)
    block.needs_input_grad = False
    block.zero_grad()
    block.forward(x)
    assert block.body.backward(dout) is None                           # the body's own dx is skipped
    dx_none, grads_none = _step(block, x, dout)
    assert dx_none is None
    for k in grads:
        np.testing.assert_array_equal(grads_none[k], grads[k], err_msg=k)


def test_residual_adds_the_skip_path_and_accumulates():
    """dx = dy + body's dx; a second backward adds the same parameter gradients again; dy is left alone."""
    block = L.Residual(L.Sequential(L.Conv2d(2, 2, 3, padding=1), L.InstanceNorm2d(2, affine=True))).to("float64")
    x, dout = randn(1, 2, 4, 4), randn(1, 2, 4, 4, seed=3)
    dout_before = backend.asnumpy(dout).copy()
    block.zero_grad()
    out = block.forward(x)
    body_out = block.body.forward(x)
    np.testing.assert_allclose(backend.asnumpy(out), backend.asnumpy(x + body_out), rtol=0, atol=0)
    body_dx = block.body.backward(dout)
    once = _grads(block)
    block.forward(x)
    dx = block.backward(dout)
    np.testing.assert_array_equal(backend.asnumpy(dx), backend.asnumpy(dout + body_dx))
    np.testing.assert_array_equal(backend.asnumpy(dout), dout_before)
    for k, g in _grads(block).items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-14, atol=0)


def test_residual_state_dict_round_trip_and_repr():
    a, b = resnet_block(2, reflect=True), resnet_block(2, reflect=True)
    assert list(a.state_dict()) == ["body.1.weight", "body.1.bias", "body.2.weight", "body.2.bias",
                                    "body.5.weight", "body.5.bias", "body.6.weight", "body.6.bias"]
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    text = repr(a)
    assert text.startswith("Residual(\n  (body): Sequential(") and "ReflectionPad2d((1, 1, 1, 1))" in text
    assert "InstanceNorm2d(2, eps=1e-05, momentum=0.1, affine=True)" in text
