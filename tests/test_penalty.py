"""Gradient penalties (npgan.gan.penalty) and their hand-written second-order pass: the value and
every parameter gradient against PyTorch's double backpropagation and against finite differences,
on random critics in float64; the tangent pass against the backward; the refusals; and the
wgan-gp / r1 objectives through ``python -m npgan.train``."""
import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from npgan import backend
from npgan.gan import get_objective
from npgan.gan.penalty import gradient_penalty
from npgan.gan.step import discriminator_step
from npgan.gradcheck import assert_gradients_close, check_function, rel_error
from npgan.im2col import conv_output_size
from npgan.layers import (BatchNorm2d, Conv2d, Dropout, Flatten, LeakyReLU, Linear, ReLU, Reshape, Sequential, Tanh,
                          Unflatten)
from npgan.models import dcgan, mlp_gan
from npgan.optim import Adam

KINDS = ("wgan-gp", "r1")


def host(a):
    return backend.asnumpy(a)


def device(a):
    return backend.to_device(np.asarray(a, dtype=np.float64))


# ---- random critics ------------------------------------------------------------------------
@st.composite
def critics(draw, dropout=False):
    """(a float64 Sequential critic of Conv2d / LeakyReLU / ReLU / Flatten / Linear, an input batch)."""
    n, c, size = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(4, 8))
    layers = []

    def activation():
        if draw(st.booleans()):
            layers.append(LeakyReLU(draw(st.floats(0.01, 0.9))))
        else:
            layers.append(ReLU())

    h = w = size
    for _ in range(draw(st.integers(1, 2))):
        f, k = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride, pad, dil = draw(st.integers(1, 2)), draw(st.integers(0, 1)), draw(st.integers(1, 2))
        h, w = conv_output_size(h, k, stride, pad, dil), conv_output_size(w, k, stride, pad, dil)
        assume(h >= 1 and w >= 1)
        layers.append(Conv2d(c, f, k, stride, pad, dil, dtype=np.float64))
        activation()
        c = f
    layers.append(Flatten())
    width = c * h * w
    for _ in range(draw(st.integers(0, 2))):
        hidden = draw(st.integers(1, 5))
        layers.append(Linear(width, hidden, dtype=np.float64))
        activation()
        if dropout:
            layers.append(Dropout(0.3))
        width = hidden
    layers.append(Linear(width, 1, dtype=np.float64))
    seed = draw(st.integers(0, 2 ** 16))
    x = device(np.random.default_rng(seed).standard_normal((n, layers[0].in_channels, size, size)))
    return Sequential(*layers), x


def torch_critic(D):
    """The same critic in PyTorch (float64), weights copied."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    mods = []
    for layer in D:
        if isinstance(layer, Conv2d):
            m = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                          layer.dilation)
        elif isinstance(layer, Linear):
            m = nn.Linear(layer.in_features, layer.out_features)
        elif isinstance(layer, LeakyReLU):
            m = nn.LeakyReLU(layer.negative_slope)
        elif isinstance(layer, ReLU):
            m = nn.ReLU()
        else:
            m = nn.Flatten()
        mods.append(m)
    T = nn.Sequential(*mods).double()
    T.load_state_dict({k: torch.tensor(v) for k, v in D.state_dict().items()})
    return T


def torch_penalty(T, x, kind, weight):
    """PyTorch's reference: double backpropagation. Returns (P, g, {name: dP/dparam})."""
    import torch
    xt = torch.tensor(host(x), requires_grad=True)
    (g,) = torch.autograd.grad(T(xt).sum(), xt, create_graph=True)
    g2 = g.flatten(1)
    p = (weight * ((g2.norm(dim=1) - 1) ** 2).mean() if kind == "wgan-gp"
         else 0.5 * weight * (g2 ** 2).sum(1).mean())
    p.backward()
    grads = {k: (v.grad if v.grad is not None else torch.zeros_like(v)).numpy() for k, v in T.named_parameters()}
    return p.item(), g.detach().numpy(), grads


def penalty_grads(D, x, kind, weight):
    """P, g and dP/dparam from npgan (gradients zeroed first)."""
    D.zero_grad()
    p, g = gradient_penalty(D, x, kind, weight)
    return float(host(p)), host(g), {k: host(v.grad).copy() for k, v in D.named_parameters()}


# ---- against PyTorch and finite differences ------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=25)
@given(case=critics(), weight=st.floats(0.5, 20))
def test_penalty_and_its_gradient_match_pytorch_double_backprop(kind, case, weight):
    D, x = case
    p, g, grads = penalty_grads(D, x, kind, weight)
    want_p, want_g, want = torch_penalty(torch_critic(D), x, kind, weight)
    assert rel_error(p, want_p) <= 1e-8
    assert rel_error(g, want_g) <= 1e-8
    assert grads.keys() == want.keys()
    for k in grads:
        assert rel_error(grads[k], want[k]) <= 1e-8, (k, grads[k], want[k])


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=10)
@given(case=critics(dropout=True), weight=st.floats(0.5, 20))
def test_penalty_gradient_matches_finite_differences(kind, case, weight):
    """Central differences of P over every parameter (Dropout draws the same mask each time)."""
    D, x = case
    named = list(D.named_parameters())
    state = backend.get_rng_state()                                    # one Dropout mask for every call

    def forward(*params):
        backend.set_rng_state(state)
        return gradient_penalty(D, x, kind, weight)[0]

    def backward(dout):
        backend.set_rng_state(state)
        D.zero_grad()
        gradient_penalty(D, x, kind, weight)
        return tuple(p.grad * dout for _, p in named)

    result = check_function(forward, backward, [p.data for _, p in named], names=[k for k, _ in named],
                            max_entries=12)
    assert_gradients_close(result, tol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=10)
@given(case=critics(dropout=True))
def test_tangent_pass_gives_the_directional_derivative_of_the_backward(kind, case):
    """s = sum_n t_L,n from the tangent pass equals sum_n <g_n, u_n> from the backward."""
    D, x = case
    _, g, s, u = gradient_penalty(D, x, kind, 3.0, return_tangent=True)
    want = float(host((g * u).sum()))
    assert float(host(s.sum())) == pytest.approx(want, rel=1e-10, abs=1e-14)


def test_every_penalty_layer_passes_its_tangent_like_its_jacobian(xp):
    """Each layer's tangent equals d forward(x + eps t) / d eps (exact for these linear-in-x maps
    away from kinks), Unflatten and Reshape included."""
    rng = np.random.default_rng(3)
    x = device(rng.standard_normal((2, 3, 4, 4)))
    t = device(rng.standard_normal((2, 3, 4, 4)))
    flat = device(rng.standard_normal((2, 48)))
    tflat = device(rng.standard_normal((2, 48)))
    cases = [(Conv2d(3, 2, 3, 1, 1, dtype=np.float64), x, t), (LeakyReLU(0.3), x, t), (ReLU(), x, t),
             (Flatten(), x, t), (Linear(48, 5, dtype=np.float64), flat, tflat),
             (Unflatten(1, (3, 4, 4)), flat, tflat), (Reshape(3, 16), flat, tflat), (Dropout(0.5), flat, tflat)]
    eps = 1e-6
    for layer, a, da in cases:
        state = backend.get_rng_state()
        plus = layer.forward(a + eps * da)
        backend.set_rng_state(state)
        minus = layer.forward(a - eps * da)
        backend.set_rng_state(state)
        layer.forward(a)
        got = layer.tangent(da)
        assert rel_error(got, (plus - minus) / (2 * eps)) <= 1e-7, type(layer).__name__


# ---- refusals ------------------------------------------------------------------------------
def test_a_batchnorm_critic_is_refused_naming_the_layer_before_any_work():
    D = dcgan.Discriminator(dtype=np.float64)
    x = device(np.random.default_rng(0).standard_normal((2, 1, 28, 28)))
    with pytest.raises(ValueError, match=r"D\.3 \(BatchNorm2d\).*BatchNorm mixes samples.*without BatchNorm"):
        gradient_penalty(D, x, "wgan-gp", 10.0)
    assert all(float(abs(host(p.grad)).max()) == 0 for p in D.parameters())
    assert D[0].cache is None                                          # refused before any forward
    with pytest.raises(NotImplementedError, match="BatchNorm2d has no second-order pass: BatchNorm mixes samples"):
        BatchNorm2d(3).tangent(None)
    with pytest.raises(ValueError, match=r"D\.1 \(Tanh\): Tanh has no second-order pass"):
        gradient_penalty(Sequential(Flatten(), Tanh(), Linear(784, 1, dtype=np.float64)), x, "r1", 1.0)


def test_tangent_before_forward_and_a_wrong_shape_are_errors():
    with pytest.raises(RuntimeError, match="Linear.tangent called before Linear.forward"):
        Linear(3, 2).tangent(device(np.zeros((1, 3))))
    layer = Conv2d(1, 1, 3, dtype=np.float64)
    layer.forward(device(np.zeros((1, 1, 5, 5))))
    with pytest.raises(ValueError, match="Conv2d.tangent: t has shape"):
        layer.tangent(device(np.zeros((1, 1, 4, 4))))


# ---- how the penalty adds to D's gradients --------------------------------------------------
def test_the_penalty_adds_to_ds_gradients_and_weight_0_changes_nothing():
    backend.seed(1)
    D = dcgan.Discriminator(width=4, dtype=np.float64, batchnorm=False)
    x = device(np.random.default_rng(1).standard_normal((3, 1, 28, 28)))
    before = [device(np.random.default_rng(i).standard_normal(p.shape)) for i, p in enumerate(D.parameters())]
    for p, b in zip(D.parameters(), before):
        p.grad[...] = b
    gradient_penalty(D, x, "wgan-gp", 0.0)
    for p, b in zip(D.parameters(), before):
        np.testing.assert_array_equal(host(p.grad), host(b))
    alone = penalty_grads(D, x, "r1", 2.0)[2]
    for p, b in zip(D.parameters(), before):
        p.grad[...] = b
    gradient_penalty(D, x, "r1", 2.0)
    for (k, p), b in zip(D.named_parameters(), before):
        np.testing.assert_allclose(host(p.grad), host(b) + alone[k], rtol=1e-12, atol=1e-15)
    assert all(p.requires_grad for p in D.parameters()) and D.needs_input_grad


def test_a_d_step_with_a_zero_penalty_updates_d_like_the_plain_wgan_losses():
    """The D step calls the objective's penalty between D's backward and opt_D.step(): with
    weight 0 it changes no bit of the update; with weight 10 it does, and its value is in the loss."""
    class Unclipped(type(get_objective("wgan"))):
        def after_discriminator_update(self, D):
            pass

    def step(objective):
        backend.seed(2)
        D = dcgan.Discriminator(width=4, batchnorm=False)
        opt = Adam(D.parameters(), 1e-4, (0.0, 0.9))
        rng = np.random.default_rng(2)
        real, fake = (backend.to_device(rng.uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32)) for _ in range(2))
        loss = discriminator_step(D, opt, objective, real, fake, check=True)[0]
        return float(host(loss)), [host(p.data) for p in D.parameters()]

    plain_loss, plain = step(Unclipped())
    zero_loss, zero = step(get_objective("wgan-gp", weight=0.0))
    gp_loss, gp = step(get_objective("wgan-gp"))
    assert zero_loss == plain_loss
    for a, b in zip(plain, zero):
        np.testing.assert_array_equal(a, b)
    assert gp_loss > plain_loss + 1 and any(not np.array_equal(a, b) for a, b in zip(plain, gp))


def test_the_mlp_critic_with_dropout_takes_the_penalty(xp):
    backend.seed(3)
    D = mlp_gan.Discriminator(hidden=(16, 8)).to("float64")
    x = device(np.random.default_rng(3).standard_normal((4, 1, 28, 28)))
    p, g = gradient_penalty(D, x, "r1", 10.0)
    assert np.isfinite(float(host(p))) and g.shape == x.shape
    for name, param in D.named_parameters():                          # biases get no penalty gradient
        assert (float(abs(host(param.grad)).max()) > 0) == name.endswith("weight"), name


def test_the_dcgan_critic_without_batchnorm_drops_only_batchnorm():
    backend.seed(0)
    with_bn = dcgan.Discriminator()
    backend.seed(0)
    without = dcgan.Discriminator(batchnorm=False)
    assert [type(m).__name__ for m in with_bn] == ["Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU",
                                                   "Flatten", "Linear"]
    assert [type(m).__name__ for m in without] == ["Conv2d", "LeakyReLU", "Conv2d", "LeakyReLU", "Flatten", "Linear"]
    for a, b in zip([with_bn[0], with_bn[2]], [without[0], without[2]]):          # drawn before BatchNorm's
        np.testing.assert_array_equal(host(a.weight.data), host(b.weight.data))


# ---- python -m npgan.train -----------------------------------------------------------------
def _metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_train_command_runs_r1_and_the_mlp_critic(tmp_path, monkeypatch, capsys):
    from npgan import train
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    common = ["mnist", "--batch-size", "8", "--log-every", "1", "--no-progress", "--no-eval"]
    assert train.main(common + ["--loss", "r1", "--steps", "3", "--gp-weight", "5", "--out", str(tmp_path / "r1")]) == 0
    out = capsys.readouterr().out
    assert "critic: DCGAN discriminator without BatchNorm, as Gulrajani et al." in out
    config = json.loads((tmp_path / "r1" / "config.json").read_text())
    assert config["loss"] == "r1" and config["gp_weight"] == 5.0 and config["n_critic"] == 1
    records = _metrics(tmp_path / "r1")
    assert len(records) == 3 and all(np.isfinite([r["loss_D"], r["loss_G"]]).all() for r in records)
    assert train.main(common + ["--loss", "wgan-gp", "--model", "mlp", "--n-critic", "1", "--steps", "2",
                                "--out", str(tmp_path / "mlp")]) == 0
    assert all(np.isfinite([r["loss_D"], r["loss_G"]]).all() for r in _metrics(tmp_path / "mlp"))


def test_gp_weight_needs_a_penalty_and_help_lists_the_objectives(tmp_path, monkeypatch, capsys):
    from npgan import train
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    for extra in (["--gp-weight", "1"], ["--loss", "wgan", "--gp-weight", "1"], ["--loss", "r1", "--gp-weight", "-1"]):
        with pytest.raises(SystemExit) as exc:
            train.main(["mnist", "--steps", "1", "--out", str(tmp_path / "run"), *extra])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--gp-weight applies to --loss wgan-gp or r1" in err and "--gp-weight must be a non-negative" in err
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "wgan-gp" in text and "r1" in text and "--gp-weight" in text


def test_a_resumed_wgan_gp_run_ends_bitwise_equal_to_an_uninterrupted_one(tmp_path, monkeypatch, capsys):
    """Five critic batches and five interpolation draws per step: a resumed run continues the
    data and npgan's generator where they stopped, and keeps the saved --gp-weight."""
    from npgan import checkpoint, train
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    common = ["mnist", "--loss", "wgan-gp", "--batch-size", "8", "--log-every", "1", "--checkpoint-every", "1",
              "--no-progress", "--no-eval", "--gp-weight", "7"]
    assert train.main(common + ["--steps", "3", "--out", str(tmp_path / "whole")]) == 0
    assert train.main(common + ["--steps", "1", "--out", str(tmp_path / "parts")]) == 0
    with pytest.raises(SystemExit):
        train.main(common[:-2] + ["--gp-weight", "3", "--steps", "3", "--out", str(tmp_path / "parts"), "--resume"])
    assert "--gp-weight 7.0" in capsys.readouterr().err
    assert train.main(common[:-2] + ["--steps", "3", "--out", str(tmp_path / "parts"), "--resume"]) == 0
    a, b = (checkpoint.load_checkpoint(tmp_path / run / "checkpoint.npz") for run in ("whole", "parts"))
    for part in ("G", "D"):
        for k in a[part]:
            np.testing.assert_array_equal(a[part][k], b[part][k], err_msg=f"{part}.{k}")
    assert not any("running_mean" in k for k in a["D"])                # the critic has no BatchNorm
    config = a["config"]
    assert (config["optimizer"], config["lr"], config["beta1"], config["beta2"], config["n_critic"],
            config["gp_weight"]) == ("adam", 1e-4, 0.0, 0.9, 5, 7.0)
    records = _metrics(tmp_path / "whole")
    assert len(records) == 3 and all(np.isfinite([r["loss_D"], r["loss_G"]]).all() for r in records)
