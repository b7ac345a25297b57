"""SpectralNorm: finite differences (u, v fixed), parity with torch's spectral_norm, sigma ~ 1, state."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npgan import backend, layers as L
from npgan.gradcheck import assert_gradients_close, check_layer

TOL = 1e-6


def randn(*shape, seed=0, dtype=np.float64):
    return backend.to_device(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def top_singular_value(w):
    w = backend.asnumpy(w)
    return float(np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)[0])


# ---- finite differences, u and v fixed (eval mode) ----------------------------------------
def gradcheck(layer, x):
    sn = L.SpectralNorm(layer.to("float64")).eval()
    result = check_layer(sn, x)
    assert set(result.errors) == {"input", "weight_orig"} | ({"bias"} if layer.bias is not None else set())
    assert_gradients_close(result, TOL)
    return result


def test_gradcheck_linear():
    gradcheck(L.Linear(6, 4), randn(3, 6))


def test_gradcheck_conv2d():
    gradcheck(L.Conv2d(2, 3, 3, 2, 1), randn(2, 2, 6, 5))


@settings(max_examples=15)
@given(n=st.integers(1, 3), fin=st.integers(1, 6), fout=st.integers(1, 6), bias=st.booleans())
def test_gradcheck_linear_sizes(n, fin, fout, bias):
    gradcheck(L.Linear(fin, fout, bias=bias), randn(n, fin, seed=fin * 7 + fout))


@settings(max_examples=15)
@given(cin=st.integers(1, 3), cout=st.integers(1, 3), k=st.integers(1, 3), s=st.integers(1, 2),
       p=st.integers(0, 1), d=st.integers(1, 2), bias=st.booleans())
def test_gradcheck_conv2d_configs(cin, cout, k, s, p, d, bias):
    size = d * (k - 1) + 2
    gradcheck(L.Conv2d(cin, cout, k, s, p, d, bias=bias), randn(2, cin, size, size + 1, seed=k))


def test_frozen_and_no_input_grad():
    sn = L.SpectralNorm(L.Linear(5, 3))
    x, dout = randn(4, 5, dtype=np.float32), randn(4, 3, seed=1, dtype=np.float32)
    sn.forward(x)
    with L.frozen(sn):
        dx = sn.backward(dout)
    assert dx.shape == x.shape
    assert all(float(backend.xp().abs(p.grad).max()) == 0 for p in sn.parameters())
    sn.needs_input_grad = False
    assert sn.module.needs_input_grad is False
    sn.forward(x)
    assert sn.backward(dout) is None
    assert float(backend.xp().abs(sn.weight_orig.grad).max()) > 0
    seq = L.Sequential(L.SpectralNorm(L.Conv2d(1, 2, 3)), L.Flatten())
    seq.needs_input_grad = False
    assert seq[0].module.needs_input_grad is False


def test_refuses_other_layers():
    with pytest.raises(TypeError, match="ConvTranspose2d"):
        L.SpectralNorm(L.ConvTranspose2d(2, 3, 3))
    with pytest.raises(TypeError, match="Linear or Conv2d"):
        L.SpectralNorm(L.ReLU())
    lin = L.Linear(3, 2)
    L.SpectralNorm(lin)
    with pytest.raises(ValueError, match="already"):
        L.SpectralNorm(lin)


def test_dtype_mismatch_raises():
    sn = L.SpectralNorm(L.Linear(3, 2, bias=False))
    with pytest.raises(TypeError, match="dtype"):
        sn.forward(randn(2, 3))                                              # float64 into float32


# ---- sigma ~ 1 --------------------------------------------------------------------------
@settings(max_examples=20)
@given(fin=st.integers(1, 12), fout=st.integers(1, 12), conv=st.booleans())
def test_normalised_weight_has_unit_sigma(fin, fout, conv):
    layer = L.Conv2d(fin, fout, 3) if conv else L.Linear(fin, fout)
    sn = L.SpectralNorm(layer.to("float64"))
    x = randn(2, fin, 4, 4) if conv else randn(2, fin)
    for _ in range(200):                                      # power iterations, one per training forward
        sn.forward(x)
    assert abs(top_singular_value(sn.module.weight.data) - 1) < 1e-3
    sn.eval()
    out = sn.forward(x)
    np.testing.assert_allclose(backend.asnumpy(sn.forward(x)), backend.asnumpy(out))   # eval: u, v fixed


def test_eval_does_not_update_u():
    sn = L.SpectralNorm(L.Linear(6, 5)).eval()
    u = backend.asnumpy(sn.weight_u).copy()
    sn.forward(randn(2, 6, dtype=np.float32))
    np.testing.assert_array_equal(backend.asnumpy(sn.weight_u), u)
    sn.train().forward(randn(2, 6, dtype=np.float32))
    assert not np.array_equal(backend.asnumpy(sn.weight_u), u)


# ---- state -------------------------------------------------------------------------------
def test_state_dict_round_trip(tmp_path):
    net = L.Sequential(L.SpectralNorm(L.Conv2d(1, 2, 3)), L.Flatten(), L.SpectralNorm(L.Linear(2 * 4 * 4, 1)))
    x = randn(3, 1, 6, 6, dtype=np.float32)
    for _ in range(3):
        net.forward(x)
    state = net.state_dict()
    assert list(state) == ["0.weight_orig", "0.bias", "2.weight_orig", "2.bias",
                           "0.weight_u", "0.weight_v", "2.weight_u", "2.weight_v"]
    np.savez(tmp_path / "sn.npz", **state)
    loaded = dict(np.load(tmp_path / "sn.npz"))
    other = L.Sequential(L.SpectralNorm(L.Conv2d(1, 2, 3)), L.Flatten(), L.SpectralNorm(L.Linear(2 * 4 * 4, 1)))
    other.load_state_dict(loaded)
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)
    net.eval(), other.eval()
    np.testing.assert_array_equal(backend.asnumpy(other.forward(x)), backend.asnumpy(net.forward(x)))
    assert len(net.parameters()) == 4


# ---- parity with torch.nn.utils.parametrizations.spectral_norm -----------------------------
PARITY = [
    ("linear", lambda nn, dt: nn.Linear(7, 5, dtype=dt), lambda: L.Linear(7, 5), (4, 7)),
    ("linear_nobias", lambda nn, dt: nn.Linear(3, 6, bias=False, dtype=dt), lambda: L.Linear(3, 6, bias=False), (2, 3)),
    ("conv", lambda nn, dt: nn.Conv2d(3, 4, 3, 2, 1, dtype=dt), lambda: L.Conv2d(3, 4, 3, 2, 1), (2, 3, 9, 8)),
    ("conv_dilated", lambda nn, dt: nn.Conv2d(2, 3, 3, 1, 2, 2, dtype=dt), lambda: L.Conv2d(2, 3, 3, 1, 2, 2),
     (2, 2, 7, 7)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,make_torch,make_ours,shape", PARITY, ids=[c[0] for c in PARITY])
def test_torch_parity(name, make_torch, make_ours, shape, dtype):
    torch = pytest.importorskip("torch")
    tdt = getattr(torch, dtype)
    ref = torch.nn.utils.parametrizations.spectral_norm(make_torch(torch.nn, tdt))
    ours = L.SpectralNorm(make_ours().to(dtype))
    param = ref.parametrizations.weight
    with torch.no_grad():                             # ours -> torch: weight, bias, u, v
        param.original.copy_(torch.from_numpy(backend.asnumpy(ours.weight_orig.data)))
        if ref.bias is not None:
            ref.bias.copy_(torch.from_numpy(backend.asnumpy(ours.bias.data)))
        param[0]._u.copy_(torch.from_numpy(backend.asnumpy(ours.weight_u)))
        param[0]._v.copy_(torch.from_numpy(backend.asnumpy(ours.weight_v)))
    rtol = 2e-5 if dtype == "float32" else 1e-12

    def close(a, b, what):
        a, b = backend.asnumpy(a), b.detach().numpy()
        err = np.abs(a - b).max() / max(1e-3, np.abs(b).max())
        assert err <= rtol, f"{name} {dtype} {what}: relative error {err:.2e}"

    ref.train(), ours.train()
    for i in range(3):                                # u, v advance once per training forward
        x_host = np.random.default_rng(i).standard_normal(shape).astype(dtype)
        tx = torch.from_numpy(x_host.copy()).requires_grad_(True)
        out, tout = ours.forward(backend.to_device(x_host)), ref(tx)
        close(out, tout, f"output {i}")
        close(ours.weight_u, param[0]._u, f"u {i}")
        close(ours.weight_v, param[0]._v, f"v {i}")
    dout = np.random.default_rng(9).standard_normal(tout.shape).astype(dtype)
    dx = ours.backward(backend.to_device(dout))
    tout.backward(torch.from_numpy(dout))
    close(dx, tx.grad, "input gradient")
    close(ours.weight_orig.grad, param.original.grad, "weight_orig gradient")
    if ref.bias is not None:
        close(ours.bias.grad, ref.bias.grad, "bias gradient")


# ---- the DCGAN discriminator and the train command --------------------------------------
def test_dcgan_discriminator_option():
    from npgan.models import build_models, dcgan
    backend.seed(0)
    plain = dcgan.Discriminator()
    backend.seed(0)
    sn = dcgan.Discriminator(spectral_norm=True)
    wrapped = [i for i, layer in enumerate(sn) if isinstance(layer, L.SpectralNorm)]
    assert wrapped == [0, 2, 6]
    for (k, p), q in zip(plain.named_parameters(), sn.parameters()):          # same init, same order
        np.testing.assert_array_equal(backend.asnumpy(p.data), backend.asnumpy(q.data), err_msg=k)
    assert "0.weight_u" in sn.state_dict() and "0.weight_u" not in plain.state_dict()
    x = randn(3, 1, 28, 28, dtype=np.float32)
    out = sn.forward(x)
    assert out.shape == (3, 1) and sn.backward(backend.xp().ones_like(out)).shape == x.shape
    G, D = build_models("mlp", spectral_norm=True)
    assert sum(isinstance(layer, L.SpectralNorm) for layer in D) == 3


def test_train_command_with_spectral_norm_runs_and_resumes(tmp_path, monkeypatch, capsys):
    import json
    from npgan import train
    from npgan.checkpoint import load_checkpoint
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    common = ["mnist", "--batch-size", "8", "--log-every", "1", "--checkpoint-every", "1", "--no-progress",
              "--no-eval", "--out", str(tmp_path / "run")]
    assert train.main(common + ["--spectral-norm", "--steps", "2"]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["spectral_norm"] is True
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert {"0.weight_orig", "0.weight_u", "0.weight_v", "6.weight_u"} <= set(ckpt["D"])
    assert train.main(common + ["--steps", "3", "--resume"]) == 0                # the saved setting is kept
    assert json.loads((tmp_path / "run" / "config.json").read_text())["spectral_norm"] is True
    with pytest.raises(SystemExit):
        train.main(["mnist", "--steps", "1", "--loss", "wgan-gp", "--spectral-norm", "--out", str(tmp_path / "gp")])
    assert "--spectral-norm does not combine" in capsys.readouterr().err
