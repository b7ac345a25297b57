"""Minibatch standard deviation (Karras et al. 2018): MinibatchStdDev and the DCGAN option.

The backward against central finite differences (float64, a random upstream gradient), the
forward against its definition written as a loop over groups on the host, forward and input
gradient against StyleGAN2's formula written in torch, the errors, then the discriminator
built with ``minibatch_std=True``.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npgan import backend, layers as L, models
from npgan import functional as F
from npgan.gradcheck import assert_gradients_close, check_function
from npgan.models import dcgan

from test_layers_gradcheck import TOL, check, randn  # noqa: F401  (the layer tests' helpers)


@st.composite
def stddev_config(draw):
    """(shape, group_size): N a multiple of the group size, or a group size >= N (one group)."""
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if draw(st.booleans()):
        group_size = draw(st.integers(1, 4))
        n = group_size * draw(st.integers(1, 3))
    else:
        n = draw(st.integers(1, 4))
        group_size = draw(st.integers(n, n + 3))
    return (n, c, h, w), group_size


def stylegan2_stddev(torch, x, group_size):
    """StyleGAN2's ``MinibatchStdLayer`` with one statistic per group (num_channels=1)."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    y = x.reshape(g, -1, c, h, w)
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + 1e-8).sqrt()
    y = y.mean(dim=[1, 2, 3])
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


def naive_stddev(x, group_size):
    """The definition, one group at a time on the host: group m holds samples m, m + M, ..."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    m = n // g
    s = np.empty(m)
    for k in range(m):
        members = x[k::m]                                                  # (G, C, H, W)
        s[k] = np.sqrt(members.var(axis=0) + 1e-8).mean()                  # biased variance
    return np.concatenate([x, np.broadcast_to(s[np.arange(n) % m, None, None, None], (n, 1, h, w))], axis=1)


# ---------------------------------------------------------------- gradient checks
@settings(max_examples=30)
@given(stddev_config())
def test_minibatch_stddev_layer_gradients(cfg):
    shape, group_size = cfg
    check(L.MinibatchStdDev(group_size), randn(*shape) * 2 + 0.5)


@settings(max_examples=15)
@given(stddev_config())
def test_minibatch_stddev_functional_gradients(cfg):
    shape, group_size = cfg
    result = check_function(F.minibatch_stddev_forward, F.minibatch_stddev_backward,
                            [randn(*shape, seed=2), group_size], seed=3)
    assert_gradients_close(result, TOL)


# ---------------------------------------------------------------- the definition
@pytest.mark.parametrize("shape,group_size", [((8, 3, 4, 5), 4), ((6, 2, 3, 3), 3), ((4, 2, 2, 3), 8),
                                              ((5, 1, 2, 2), 1), ((1, 2, 3, 3), 4)])
def test_forward_is_its_definition(shape, group_size):
    host = np.random.default_rng(0).standard_normal(shape)
    out = L.MinibatchStdDev(group_size).forward(backend.to_device(host))
    np.testing.assert_allclose(backend.asnumpy(out), naive_stddev(host, group_size), rtol=1e-12, atol=1e-14)


def test_the_statistic_sees_only_its_group():
    """With 8 samples in groups of 4, samples 0, 2, 4, 6 form one group: spreading them apart
    raises their statistic alone; a batch of copies gets sqrt(1e-8)."""
    host = np.zeros((8, 2, 3, 3))
    host[0::2] = np.arange(4.0)[:, None, None, None]                       # group 0 spread, group 1 copies
    out = backend.asnumpy(L.MinibatchStdDev(4).forward(backend.to_device(host)))
    s = out[:, 2]
    np.testing.assert_allclose(s[0::2], np.sqrt(1.25 + 1e-8))              # biased variance of 0, 1, 2, 3
    np.testing.assert_allclose(s[1::2], 1e-4)


@pytest.mark.parametrize("shape,group_size", [((8, 3, 4, 5), 4), ((6, 4, 3, 3), 3), ((3, 2, 5, 4), 4),
                                              ((4, 2, 3, 3), 1), ((12, 5, 7, 7), 4)])
def test_matches_stylegan2_in_torch(shape, group_size):
    torch = pytest.importorskip("torch")
    host = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    layer = L.MinibatchStdDev(group_size)
    out = layer.forward(backend.to_device(host))
    tx = torch.from_numpy(host.copy()).requires_grad_(True)
    tout = stylegan2_stddev(torch, tx, group_size)
    dout = np.random.default_rng(7).standard_normal(tout.shape).astype(np.float32)
    dout[:, -1] *= 10                                                      # weigh the statistic's share
    dx = layer.backward(backend.to_device(dout))
    tout.backward(torch.from_numpy(dout))
    for ours, theirs, what in ((out, tout, "output"), (dx, tx.grad, "input gradient")):
        ours, theirs = backend.asnumpy(ours), theirs.detach().numpy()
        assert ours.dtype == np.float32 and ours.shape == theirs.shape, what
        err = np.abs(ours - theirs).max() / np.abs(theirs).max()
        assert err <= 1e-5, f"{what}: relative error {err:.2e}"


# ---------------------------------------------------------------- errors
def test_an_indivisible_batch_is_refused_naming_n_and_the_group_size():
    with pytest.raises(ValueError, match=r"N=6 .*group size 4"):
        F.minibatch_stddev_forward(randn(6, 2, 3, 3), 4)
    with pytest.raises(ValueError, match=r"MinibatchStdDev: .*N=10 .*group_size=4"):
        L.MinibatchStdDev(4).forward(randn(10, 2, 3, 3))
    for bad in (0, -2, 1.5, True, None):
        with pytest.raises(ValueError, match="MinibatchStdDev: group_size"):
            L.MinibatchStdDev(bad)
    with pytest.raises(ValueError, match="MinibatchStdDev: expected a 4-D input"):
        L.MinibatchStdDev(2).forward(randn(4, 6))


def test_no_second_order_pass():
    layer = L.MinibatchStdDev()
    assert not layer.has_second_order
    with pytest.raises(NotImplementedError, match="MinibatchStdDev has no second-order pass: .*mixes the samples"):
        layer.tangent(None)


# ---------------------------------------------------------------- the DCGAN discriminator
DEFAULT_D_KEYS = ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias", "6.weight", "6.bias",
                  "3.running_mean", "3.running_var"]                 # parameters, then buffers


def test_default_discriminator_is_unchanged():
    D = dcgan.Discriminator()
    assert list(D.state_dict()) == DEFAULT_D_KEYS
    assert not any(isinstance(m, L.MinibatchStdDev) for m in D.modules())
    assert list(models.build_models("dcgan")[1].state_dict()) == DEFAULT_D_KEYS


@pytest.mark.parametrize("options", [{}, {"batchnorm": False}, {"spectral_norm": True}])
def test_discriminator_with_minibatch_std(options):
    D = dcgan.Discriminator(width=8, minibatch_std=True, **options)
    kinds = [type(getattr(layer, "module", layer)).__name__ for layer in D.layers]
    assert kinds[-4:] == ["LeakyReLU", "MinibatchStdDev", "Flatten", "Linear"]
    assert D.layers[-3].group_size == 4
    head = getattr(D.layers[-1], "module", D.layers[-1])
    assert head.in_features == (2 * 8 + 1) * 7 * 7
    x = randn(8, 1, 28, 28).astype(np.float32)
    out = D.forward(x)
    assert out.shape == (8, 1)
    assert D.backward(out * 0 + 1).shape == x.shape


def test_build_models_passes_minibatch_std_to_d():
    G, D = models.build_models("dcgan", minibatch_std=True)
    assert isinstance(D.layers[-3], L.MinibatchStdDev) and D.layers[-1].in_features == 129 * 7 * 7
    _, D = models.build_models("dcgan", n_classes=10, minibatch_std=True)             # the projection D's body
    assert isinstance(D.layers[-3], L.MinibatchStdDev) and D.embedding.shape == (10, 129 * 7 * 7)
    x = randn(4, 1, 28, 28).astype(np.float32)
    labels = backend.to_device(np.array([0, 3, 3, 9]))
    out = D.forward(x, labels)
    assert out.shape == (4, 1) and D.backward(out * 0 + 1).shape == x.shape
    with pytest.raises(ValueError, match="minibatch_std applies to the 'dcgan' discriminator"):
        models.build_models("mlp", minibatch_std=True)


def test_gradient_penalty_refuses_a_critic_with_minibatch_std():
    from npgan.gan.penalty import require_second_order
    _, D = models.build_models("dcgan", critic_batchnorm=False, minibatch_std=True)
    with pytest.raises(ValueError, match=r"D\.4 \(MinibatchStdDev\).*mixes the samples"):
        require_second_order(D)


def test_discriminator_with_minibatch_std_matches_pytorch():
    """The whole D (without BatchNorm, width 8) against torch with StyleGAN2's layer: output,
    input gradient and every parameter gradient."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class StdDev(nn.Module):
        def forward(self, x):
            return stylegan2_stddev(torch, x, 4)

    D = dcgan.Discriminator(width=8, batchnorm=False, minibatch_std=True)
    tD = nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 16, 4, 2, 1), nn.LeakyReLU(0.2),
                       StdDev(), nn.Flatten(), nn.Linear(17 * 49, 1))
    tD.load_state_dict({k: torch.from_numpy(v) for k, v in D.state_dict().items()})
    host = np.random.default_rng(0).standard_normal((8, 1, 28, 28)).astype(np.float32)
    tx = torch.from_numpy(host.copy()).requires_grad_(True)
    out, tout = D.forward(backend.to_device(host)), tD(tx)
    dout = np.random.default_rng(1).standard_normal((8, 1)).astype(np.float32)
    dx = D.backward(backend.to_device(dout))
    tout.backward(torch.from_numpy(dout))
    pairs = [(out, tout, "output"), (dx, tx.grad, "input gradient")]
    pairs += [(p.grad, dict(tD.named_parameters())[k].grad, k) for k, p in D.named_parameters()]
    for ours, theirs, what in pairs:
        ours, theirs = backend.asnumpy(ours), theirs.detach().numpy()
        err = np.abs(ours - theirs).max() / max(1e-3, np.abs(theirs).max())
        assert err <= 1e-4, f"{what}: relative error {err:.2e}"
