"""Parity with PyTorch: copy the weights, compare outputs and every gradient in float32.

Skipped cleanly where torch is absent; `.ci/run` installs the CPU build so these run in CI.
"""
import numpy as np
import pytest

from npgan import backend, layers as L

torch = pytest.importorskip("torch")
nn = torch.nn
RTOL = 1e-4


def assert_close(ours, theirs, what):
    ours, theirs = backend.asnumpy(ours), theirs.detach().cpu().numpy()
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    # The floor covers gradients that are exactly 0 in exact arithmetic (a bias before BatchNorm)
    # and so are float32 rounding noise in both implementations.
    err = np.abs(ours - theirs).max() / max(1e-3, np.abs(theirs).max())
    assert err <= RTOL, f"{what}: relative error {err:.2e}"


def assert_zero_gradient(ours, theirs, scale, what):
    """A gradient that is exactly 0 in exact arithmetic (a bias feeding BatchNorm in training
    mode: the normalisation removes any constant shift) is float32 rounding noise in both
    implementations; check it is noise next to ``scale``, the same layer's weight gradient."""
    ours, theirs = np.abs(backend.asnumpy(ours)).max(), np.abs(theirs.detach().numpy()).max()
    assert max(ours, theirs) <= RTOL * float(np.abs(backend.asnumpy(scale)).max()), \
        f"{what}: expected ~0, got {ours:.2e} (npgan) and {theirs:.2e} (torch)"


def compare(ours, theirs, x_host, train=True, zero_grads=()):
    """Load our weights into torch, run forward + backward with one upstream gradient, compare all.

    ``zero_grads`` names parameters whose true gradient is 0 (see ``assert_zero_gradient``)."""
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()}, strict=False)
    ours.train(train), theirs.train(train)
    x = backend.to_device(x_host)
    tx = torch.from_numpy(x_host.copy()).requires_grad_(True)
    out, tout = ours.forward(x), theirs(tx)
    assert_close(out, tout, "output")
    dout_host = np.random.default_rng(7).standard_normal(out.shape).astype(np.float32)
    dx = ours.backward(backend.to_device(dout_host))
    tout.backward(torch.from_numpy(dout_host))
    assert_close(dx, tx.grad, "input gradient")
    theirs_params = dict(theirs.named_parameters())
    ours_params = dict(ours.named_parameters())
    for name, p in ours_params.items():
        if name in zero_grads:
            weight = ours_params[name.rsplit(".", 1)[0] + ".weight"]
            assert_zero_gradient(p.grad, theirs_params[name].grad, weight.grad, f"{name} gradient")
        else:
            assert_close(p.grad, theirs_params[name].grad, f"{name} gradient")
    theirs_buffers = dict(theirs.named_buffers())
    for name, b in ours.named_buffers():
        assert_close(b, theirs_buffers[name], f"buffer {name}")


def x32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CASES = [
    ("linear", lambda: (L.Linear(7, 5), nn.Linear(7, 5)), (4, 7)),
    ("conv", lambda: (L.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(3, 4, 3, 2, 1)), (2, 3, 9, 8)),
    ("conv_dilated", lambda: (L.Conv2d(2, 3, 3, 1, 2, 2, bias=False), nn.Conv2d(2, 3, 3, 1, 2, 2, bias=False)), (2, 2, 7, 7)),
    ("convT", lambda: (L.ConvTranspose2d(3, 2, 4, 2, 1), nn.ConvTranspose2d(3, 2, 4, 2, 1)), (2, 3, 5, 6)),
    ("convT_outpad_dil", lambda: (L.ConvTranspose2d(2, 3, 3, 2, 1, 1, dilation=2), nn.ConvTranspose2d(2, 3, 3, 2, 1, 1, dilation=2)), (2, 2, 4, 5)),
    ("bn1d", lambda: (L.BatchNorm1d(6), nn.BatchNorm1d(6)), (5, 6)),
    ("bn1d_3d", lambda: (L.BatchNorm1d(3), nn.BatchNorm1d(3)), (4, 3, 5)),
    ("bn2d", lambda: (L.BatchNorm2d(3, momentum=0.3), nn.BatchNorm2d(3, momentum=0.3)), (4, 3, 5, 5)),
    ("relu", lambda: (L.ReLU(), nn.ReLU()), (3, 8)),
    ("lrelu", lambda: (L.LeakyReLU(0.2), nn.LeakyReLU(0.2)), (3, 8)),
    ("elu", lambda: (L.ELU(0.7), nn.ELU(0.7)), (3, 8)),
    ("tanh", lambda: (L.Tanh(), nn.Tanh()), (3, 8)),
    ("sigmoid", lambda: (L.Sigmoid(), nn.Sigmoid()), (3, 8)),
    ("flatten", lambda: (L.Flatten(), nn.Flatten()), (2, 3, 4, 4)),
    ("unflatten", lambda: (L.Unflatten(1, (2, 3)), nn.Unflatten(1, (2, 3))), (4, 6)),
    ("upsample", lambda: (L.Upsample(2), nn.Upsample(scale_factor=2, mode="nearest")), (2, 3, 4, 5)),
    ("maxpool", lambda: (L.MaxPool2d(3, 2, 1), nn.MaxPool2d(3, 2, 1)), (2, 3, 7, 8)),
    ("avgpool", lambda: (L.AvgPool2d(2), nn.AvgPool2d(2)), (2, 3, 6, 8)),
]


@pytest.mark.parametrize("name,make,shape", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_pytorch(name, make, shape):
    ours, theirs = make()
    compare(ours, theirs, x32(*shape))


@pytest.mark.parametrize("cls,tcls,shape", [(L.BatchNorm1d, nn.BatchNorm1d, (6, 4)),
                                            (L.BatchNorm2d, nn.BatchNorm2d, (5, 4, 3, 3))])
def test_batchnorm_running_stats_and_eval_match_pytorch(cls, tcls, shape):
    ours, theirs = cls(4), tcls(4)
    for step in range(3):  # several training steps update the running statistics
        compare(ours, theirs, x32(*shape, seed=step) * 2 + 1)
    theirs.zero_grad(), ours.zero_grad()
    compare(ours, theirs, x32(*shape, seed=9), train=False)


def test_dcgan_matches_pytorch():
    """The reference DCGAN-MNIST-28 G and D against the same nets built in torch."""
    from npgan.models import dcgan
    G = dcgan.Generator()
    tG = nn.Sequential(nn.Linear(100, 6272), nn.BatchNorm1d(6272), nn.ReLU(), nn.Unflatten(1, (128, 7, 7)),
                       nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                       nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
    assert set(G.state_dict()) == {k for k in tG.state_dict() if not k.endswith("num_batches_tracked")}
    compare(G, tG, x32(8, 100), zero_grads={"0.bias", "4.bias"})  # biases feeding BatchNorm
    D = dcgan.Discriminator()
    tD = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128),
                       nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(6272, 1))
    compare(D, tD, x32(8, 1, 28, 28), zero_grads={"2.bias"})


def test_state_dict_round_trips_through_pytorch():
    ours = L.Sequential(L.Conv2d(1, 2, 3), L.BatchNorm2d(2), L.Flatten(), L.Linear(2 * 4 * 4, 1))
    theirs = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 1))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for k, v in theirs.state_dict().items():
        if k in ours.state_dict():
            np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())
