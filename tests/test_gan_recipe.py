"""The GAN recipe (``npgan.gan``): objectives checked against PyTorch and finite differences,
the step against the step written out by hand, and a new objective as one short class."""
import json

import numpy as np
import pytest

from npgan import backend, losses
from npgan.gan import LeastSquares, NonSaturating, Objective, OBJECTIVES, gan_step, get_objective
from npgan.gan.objectives import half_mse
from npgan.gan.view import InstanceNoise
from npgan.gradcheck import assert_gradients_close, check_function
from npgan.models import dcgan, mlp_gan
from npgan.optim import Adam


def logits(n, seed=0, scale=3.0, dtype=np.float64):
    return backend.to_device((scale * np.random.default_rng(seed).standard_normal((n, 1))).astype(dtype))


def host(a):
    return backend.asnumpy(a)


# ---- objectives -----------------------------------------------------------------------------
def _torch_losses(name, real, fake):
    """(L_D, L_G) in PyTorch, with their gradients on real and fake."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    r = torch.tensor(host(real), requires_grad=True)
    f = torch.tensor(host(fake), requires_grad=True)
    g = torch.tensor(host(fake), requires_grad=True)
    if name in ("ns", "minimax", "r1"):                                      # r1: ns's losses (its penalty: test_penalty.py)
        loss_d = (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                  + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))
        loss_g = (F.binary_cross_entropy_with_logits(g, torch.ones_like(g)) if name != "minimax"
                  else torch.log(1 - torch.sigmoid(g)).mean())
    elif name == "lsgan":
        loss_d = 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean()
        loss_g = 0.5 * ((g - 1) ** 2).mean()
    elif name == "hinge":
        loss_d = F.relu(1 - r).mean() + F.relu(1 + f).mean()
        loss_g = -g.mean()
    else:                                                                    # wgan, wgan-gp
        loss_d = -r.mean() + f.mean()
        loss_g = -g.mean()
    loss_d.backward()
    loss_g.backward()
    return loss_d.item(), r.grad.numpy(), f.grad.numpy(), loss_g.item(), g.grad.numpy()


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objective_matches_pytorch(xp, name):
    objective = get_objective(name)
    real, fake = logits(5), logits(7, seed=1)
    loss_r, dreal = objective.discriminator_real(real)
    loss_f, dfake = objective.discriminator_fake(fake)
    loss_g, dgen = objective.generator(fake)
    want_d, want_dreal, want_dfake, want_g, want_dgen = _torch_losses(name, real, fake)
    assert float(host(loss_r + loss_f)) == pytest.approx(want_d, rel=1e-12)
    assert float(host(loss_g)) == pytest.approx(want_g, rel=1e-12)
    for got, want in ((dreal, want_dreal), (dfake, want_dfake), (dgen, want_dgen)):
        np.testing.assert_allclose(host(got), want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
@pytest.mark.parametrize("part", ["discriminator_real", "discriminator_fake", "generator"])
def test_objective_gradients_pass_gradcheck_and_weight_scales_them(xp, name, part):
    fn = getattr(get_objective(name), part)
    x = logits(6, seed=2)
    assert_gradients_close(check_function(lambda a: fn(a)[0], lambda dout: fn(x)[1] * dout, [x]))
    np.testing.assert_allclose(host(fn(x, 0.3)[1]), 0.3 * host(fn(x)[1]), rtol=1e-12)
    assert float(host(fn(x, 0.3)[0])) == float(host(fn(x)[0]))          # the weight scales the gradient only


def test_non_saturating_generator_keeps_its_gradient_when_d_rejects_the_fakes(xp):
    fake = backend.to_device(np.array([[-20.0], [-5.0], [0.0], [5.0]], np.float32))
    loss, dfake = NonSaturating().generator(fake)
    assert dfake.dtype == np.float32 and loss.dtype == np.float32
    # D confidently rejects the fake (logit -20): the gradient is still ~ -1/N, not ~0
    assert host(dfake)[0, 0] == pytest.approx(-1 / 4, rel=1e-6)


def test_minimax_generator_gradient_vanishes_where_ns_keeps_it(xp):
    """Why ns exists: with D rejecting a fake at logit -10, the saturating loss's gradient is ~1e-5
    of the non-saturating one's."""
    fake = backend.to_device(np.array([[-10.0]]))
    saturating = abs(host(get_objective("minimax").generator(fake)[1]).item())
    assert saturating < 1e-4 * abs(host(NonSaturating().generator(fake)[1]).item())


def test_unknown_objective_names_the_choices():
    with pytest.raises(ValueError, match="lsgan"):
        get_objective("wgan-typo")
    with pytest.raises(ValueError, match="clip"):
        get_objective("wgan", clip=0)


def test_wgan_clips_every_critic_parameter_after_each_update():
    G, D, opt_G, opt_D, real, z = _models_and_batch()
    gan_step(G, D, opt_G, opt_D, get_objective("wgan", clip=0.005), real, z)
    assert max(float(abs(host(p.data)).max()) for p in D.parameters()) <= 0.005
    assert max(float(abs(host(p.data)).max()) for p in G.parameters()) > 0.005      # G is not clipped


def test_fit_gan_takes_n_critic_batches_per_step():
    from npgan.gan import MetricsLog, fit_gan
    G, D, opt_G, opt_D, real, z = _models_and_batch(batch=4)
    drawn = []

    def next_real():
        drawn.append(1)
        return real[:4]
    fit_gan(G, D, opt_G, opt_D, get_objective("wgan"), next_real, 2, MetricsLog(), z_dim=dcgan.Z_DIM, batch_size=4,
            z_fixed=z[:4], real_spread=1.0, n_critic=3, log_every=1, progress=False)
    assert len(drawn) == 6
    assert max(float(abs(host(p.data)).max()) for p in D.parameters()) <= 0.01


# ---- the step -------------------------------------------------------------------------------
def _models_and_batch(model=dcgan, batch=8, seed=4):
    backend.seed(seed)
    G, D = model.Generator(), model.Discriminator()
    opt_G, opt_D = Adam(G.parameters(), 2e-4, (0.5, 0.999)), Adam(D.parameters(), 2e-4, (0.5, 0.999))
    rng = np.random.default_rng(seed)
    real = backend.to_device(rng.uniform(-1, 1, (batch, 1, 28, 28)).astype(np.float32))
    z = backend.to_device(rng.standard_normal((batch, model.Z_DIM)).astype(np.float32))
    return G, D, opt_G, opt_D, real, z


def _step_by_hand(G, D, opt_G, opt_D, real, z):
    """The DCGAN step as pytorch/examples writes it: every gradient computed, nothing frozen."""
    fake = G.forward(z)
    opt_D.zero_grad()
    loss_r, cache = losses.bce_with_logits_forward(D.forward(real), 1.0)
    D.backward(losses.bce_with_logits_backward(1.0, cache))
    loss_f, cache = losses.bce_with_logits_forward(D.forward(fake), 0.0)
    D.backward(losses.bce_with_logits_backward(1.0, cache))
    opt_D.step()
    opt_G.zero_grad()
    loss_g, cache = losses.bce_with_logits_forward(D.forward(fake), 1.0)
    G.backward(D.backward(losses.bce_with_logits_backward(1.0, cache)))
    opt_G.step()
    return loss_r + loss_f, loss_g


@pytest.mark.parametrize("model", [dcgan, mlp_gan])
def test_gan_step_trains_exactly_like_the_step_written_out(model):
    """Skipping the gradients nobody reads (the noise's, the images', D's during G's update)
    changes no weight: three steps end bitwise equal to the plain step's."""
    a = _models_and_batch(model)
    b = _models_and_batch(model)
    for m in a[:2] + b[:2]:
        m.eval() if model is mlp_gan else None            # dropout off: both runs must draw nothing
    for _ in range(3):
        stats = gan_step(*a[:4], NonSaturating(), *a[4:], check=True)
        loss_d, loss_g = _step_by_hand(*b)
        assert float(host(stats["loss_D"])) == float(host(loss_d))
        assert float(host(stats["loss_G"])) == float(host(loss_g))
    for p, q in zip(a[0].parameters() + a[1].parameters(), b[0].parameters() + b[1].parameters()):
        np.testing.assert_array_equal(host(p.data), host(q.data))
    assert 0 < float(host(stats["D_x"])) < 1 and 0 < float(host(stats["D_G_z"])) < 1


def test_gan_step_leaves_the_models_as_it_found_them_and_names_a_nan():
    G, D, opt_G, opt_D, real, z = _models_and_batch()
    gan_step(G, D, opt_G, opt_D, NonSaturating(), real, z)
    assert all(p.requires_grad for p in D.parameters() + G.parameters())
    assert G.needs_input_grad and D.needs_input_grad and G[0].needs_input_grad and D[0].needs_input_grad
    D[2].weight.data[0, 0, 0, 0] = np.nan
    from npgan.errors import NonFiniteError
    with pytest.raises(NonFiniteError, match=r"D\.2 \(Conv2d\) weight"):
        gan_step(G, D, opt_G, opt_D, NonSaturating(), real, z, check=True)


# ---- a new objective is one short class ------------------------------------------------------
class DocsLeastSquares(Objective):
    """The example of npgan.gan.objectives' docstring and docs/TRAINING.md, written out here."""
    name = "lsgan"

    def discriminator_real(self, logits, weight=1.0):
        return half_mse(logits, 1.0, weight)

    def discriminator_fake(self, logits, weight=1.0):
        return half_mse(logits, 0.0, weight)

    def generator(self, logits, weight=1.0):
        return half_mse(logits, 1.0, weight)


def test_a_new_objective_plugs_into_the_step_and_trains():
    """The docs' LSGAN class trains DCGAN through gan_step exactly as the built-in one, and a
    few steps lower D's least-squares loss on a fixed batch."""
    a, b = _models_and_batch(batch=16), _models_and_batch(batch=16)
    G, D, opt_G, opt_D, real, z = a

    def d_loss():
        D.eval()
        value = float(host(half_mse(D.forward(real), 1.0)[0] + half_mse(D.forward(G.forward(z)), 0.0)[0]))
        D.train()
        return value
    G.eval()
    before = d_loss()
    G.train()
    for _ in range(5):
        stats = gan_step(*a[:4], DocsLeastSquares(), *a[4:])
        gan_step(*b[:4], LeastSquares(), *b[4:])
    for p, q in zip(a[0].parameters() + a[1].parameters(), b[0].parameters() + b[1].parameters()):
        np.testing.assert_array_equal(host(p.data), host(q.data))
    G.eval()
    assert d_loss() < before
    assert np.isfinite([float(host(v)) for v in stats.values()]).all()


def test_train_command_takes_the_objective_and_resumes_with_it(tmp_path, monkeypatch, capsys):
    from npgan import train
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    common = ["mnist", "--batch-size", "8", "--log-every", "2", "--no-progress", "--no-eval", "--out",
              str(tmp_path / "run")]
    assert train.main(common + ["--steps", "4", "--loss", "lsgan"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["loss"] == "lsgan"
    with pytest.raises(SystemExit):
        train.main(common + ["--steps", "6", "--resume", "--loss", "ns"])
    assert "--loss lsgan" in capsys.readouterr().err
    assert train.main(common + ["--steps", "6", "--resume"]) == 0              # the saved objective is kept
    assert json.loads((tmp_path / "run" / "config.json").read_text())["loss"] == "lsgan"


@pytest.mark.parametrize("extra,message", [(["--clip", "0.1"], "--clip applies to --loss wgan"),
                                           (["--loss", "wgan", "--beta1", "0.5"], "--beta1 is Adam's"),
                                           (["--n-critic", "0"], "--n-critic must be at least 1"),
                                           (["--loss", "wgan", "--clip", "-1"], "--clip must be a positive")])
def test_objective_settings_that_do_not_apply_exit_2(tmp_path, monkeypatch, capsys, extra, message):
    from npgan import train
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    with pytest.raises(SystemExit) as exc:
        train.main(["mnist", "--steps", "1", "--out", str(tmp_path / "run"), *extra])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_resumed_wgan_run_ends_bitwise_equal_to_an_uninterrupted_one(tmp_path, monkeypatch):
    """Five critic batches per step: a resumed run must start at the right batch of its epoch."""
    from npgan import checkpoint, train
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    common = ["mnist", "--loss", "wgan", "--batch-size", "8", "--log-every", "1", "--checkpoint-every", "2",
              "--no-progress", "--no-eval"]
    assert train.main(common + ["--steps", "4", "--out", str(tmp_path / "whole")]) == 0
    assert train.main(common + ["--steps", "2", "--out", str(tmp_path / "parts")]) == 0
    assert train.main(common + ["--steps", "4", "--out", str(tmp_path / "parts"), "--resume"]) == 0
    a, b = (checkpoint.load_checkpoint(tmp_path / run / "checkpoint.npz") for run in ("whole", "parts"))
    for part in ("G", "D"):
        for k in a[part]:
            np.testing.assert_array_equal(a[part][k], b[part][k], err_msg=f"{part}.{k}")
    assert a["config"]["optimizer"] == "rmsprop" and a["config"]["n_critic"] == 5 and a["config"]["clip"] == 0.01


def test_label_smoothing_moves_only_the_real_target(xp):
    torch = pytest.importorskip("torch")
    real = logits(6, seed=7)
    loss, grad = get_objective("ns", real_target=0.9).discriminator_real(real)
    r = torch.tensor(host(real), requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(r, torch.full_like(r, 0.9))
    ref.backward()
    assert float(host(loss)) == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(host(grad), r.grad.numpy(), rtol=1e-12)
    fake = logits(6, seed=8)
    np.testing.assert_array_equal(host(get_objective("ns", real_target=0.9).discriminator_fake(fake)[1]),
                                  host(NonSaturating().discriminator_fake(fake)[1]))
    assert get_objective("r1", real_target=0.9).real_target == 0.9 and get_objective("r1").weight == 10.0
    with pytest.raises(ValueError, match="real target"):
        NonSaturating(real_target=0)


def test_ttur_and_label_smoothing_from_the_command_line(tmp_path, monkeypatch, capsys):
    from npgan import checkpoint, train
    from npgan.gan.run import build_training, run_objective
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    args = ["mnist", "--steps", "2", "--batch-size", "8", "--log-every", "1", "--no-progress", "--no-eval",
            "--out", str(tmp_path / "run"), "--lr", "1e-4", "--lr-d", "4e-4", "--label-smoothing", "0.1"]
    assert train.main(args) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["lr_d"] == 4e-4 and config["label_smoothing"] == 0.1
    _, _, opt_G, opt_D = build_training(config, checkpoint.load_checkpoint(tmp_path / "run" / "checkpoint.npz"))
    assert opt_G.lr == 1e-4 and opt_D.lr == 4e-4
    assert run_objective(config).real_target == pytest.approx(0.9)
    with pytest.raises(SystemExit) as exc:
        train.main(["mnist", "--steps", "1", "--out", str(tmp_path / "w"), "--loss", "wgan", "--label-smoothing", "0.1"])
    assert exc.value.code == 2 and "--label-smoothing applies to the cross-entropy objectives" in capsys.readouterr().err


def test_instance_noise_is_what_d_sees_in_both_updates():
    """With noise, the D step is the plain one on real + e1 and fake + e2, and G's gradient is
    D's input gradient at fake + e3 (e drawn in that order from npgan's generator)."""
    from npgan.gan.step import discriminator_step, generator_loss
    a, b = _models_and_batch(batch=6), _models_and_batch(batch=6)
    G, D, _, opt_D, real, z = a
    fake = G.forward(z)
    backend.seed(11)
    view = InstanceNoise(0.3, steps=10)
    loss = discriminator_step(D, opt_D, NonSaturating(), real, fake, view=view)[0]
    _, dfake = generator_loss(D, NonSaturating(), fake, view=view)
    G2, D2, _, opt_D2, real2, z2 = b
    fake2 = G2.forward(z2)
    backend.seed(11)
    noisy = [x + np.float32(0.3) * backend.rng().standard_normal(x.shape, dtype=np.float32) for x in (real2, fake2)]
    loss2 = discriminator_step(D2, opt_D2, NonSaturating(), *noisy)[0]
    _, dfake2 = generator_loss(D2, NonSaturating(), fake2 + np.float32(0.3) * backend.rng().standard_normal(
        fake2.shape, dtype=np.float32))
    assert float(host(loss)) == float(host(loss2))
    np.testing.assert_array_equal(host(dfake), host(dfake2))
    c = _models_and_batch(batch=6)
    plain = discriminator_step(c[1], c[3], NonSaturating(), real, fake)[0]
    assert float(host(plain)) != float(host(loss))                          # the noise did change what D saw


def test_instance_noise_anneals_linearly_over_the_run(monkeypatch):
    from npgan.gan import MetricsLog, loop
    seen = []
    monkeypatch.setattr(loop, "gan_step", lambda *args, view=None, **kw: seen.append(view.std) or {})
    monkeypatch.setattr(loop, "train_loop", lambda one_step, steps, log, **kw: [one_step(s, True)
                                                                               for s in range(1, steps + 1)])
    G, D, opt_G, opt_D, real, z = _models_and_batch(batch=4)
    loop.fit_gan(G, D, opt_G, opt_D, NonSaturating(), lambda: real, 4, MetricsLog(), z_dim=dcgan.Z_DIM,
                 batch_size=4, z_fixed=z, real_spread=1.0, view=InstanceNoise(0.2, 4))
    assert seen == pytest.approx([0.2, 0.15, 0.1, 0.05])


def test_instance_noise_from_the_command_line(tmp_path, monkeypatch, capsys):
    from npgan import train
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    common = ["mnist", "--batch-size", "8", "--log-every", "1", "--no-progress", "--no-eval"]
    assert train.main(common + ["--steps", "2", "--out", str(tmp_path / "run"), "--instance-noise", "0.1"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["instance_noise"] == 0.1
    with pytest.raises(SystemExit) as exc:
        train.main(common + ["--steps", "1", "--out", str(tmp_path / "bad"), "--instance-noise", "-1"])
    assert exc.value.code == 2 and "--instance-noise must be a non-negative number" in capsys.readouterr().err


def test_weight_average_follows_its_formula_and_recomputes_batchnorm_statistics():
    from npgan.gan.ema import WeightAverage
    G = _models_and_batch()[0]
    avg = WeightAverage(G, 0.9, z_dim=dcgan.Z_DIM)
    start = [host(p.data).copy() for p in G.parameters()]
    for p in G.parameters():
        p.data += 1
    G[1].running_mean[...] = 5
    avg.update(G)
    for a, s0, p in zip(avg.model.parameters(), start, G.parameters()):
        np.testing.assert_allclose(host(a.data), 0.9 * s0 + 0.1 * host(p.data), rtol=1e-6, atol=1e-7)
    assert not (host(avg.model[1].running_mean) == 5).any() and not avg.model.training   # not G's statistics
    before = host(avg.model[1].running_mean).copy()
    assert (host(avg.model[1].running_mean) == before).all()                  # no weight moved: not recomputed
    avg.update(G)
    assert not (host(avg.model[1].running_mean) == before).all()
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(G, 1.0, z_dim=dcgan.Z_DIM)


def test_recomputed_batchnorm_statistics_are_the_mean_of_the_batch_statistics():
    from npgan.gan.ema import recompute_batchnorm
    G = _models_and_batch()[0]                      # Linear -> BatchNorm1d -> ReLU -> Unflatten -> ...
    rng = np.random.default_rng(0)
    batches = [backend.to_device(rng.standard_normal((16, dcgan.Z_DIM)).astype(np.float32)) for _ in range(3)]
    recompute_batchnorm(G, batches)
    pre = [host(G[0].forward(x)).astype(np.float64) for x in batches]        # what BatchNorm1d sees
    np.testing.assert_allclose(host(G[1].running_mean), np.mean([h.mean(0) for h in pre], 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(host(G[1].running_var), np.mean([h.var(0, ddof=1) for h in pre], 0), rtol=1e-4)
    assert not G.training and G[1].momentum == 0.1


def test_ema_from_the_command_line_is_saved_resumed_bitwise_and_sampled(tmp_path, monkeypatch, capsys):
    from npgan import checkpoint, train
    from npgan.models import load_generator
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    common = ["mnist", "--batch-size", "8", "--log-every", "1", "--checkpoint-every", "2", "--no-progress",
              "--no-eval", "--ema", "0.9"]
    assert train.main(common + ["--steps", "4", "--out", str(tmp_path / "whole")]) == 0
    assert train.main(common + ["--steps", "2", "--out", str(tmp_path / "parts")]) == 0
    assert train.main(common + ["--steps", "4", "--out", str(tmp_path / "parts"), "--resume"]) == 0
    a, b = (checkpoint.load_checkpoint(tmp_path / run / "checkpoint.npz") for run in ("whole", "parts"))
    assert a["G_ema"] and a["G_ema"].keys() == a["G"].keys()
    for k in a["G_ema"]:
        np.testing.assert_array_equal(a["G_ema"][k], b["G_ema"][k], err_msg=k)
    assert any(not np.array_equal(a["G_ema"][k], a["G"][k]) for k in a["G"])
    assert train.main(common[:-2] + ["--steps", "4", "--out", str(tmp_path / "plain4")]) == 0
    plain = checkpoint.load_checkpoint(tmp_path / "plain4" / "checkpoint.npz")
    for net in ("G", "D"):                                                # the average never moves training
        for k in plain[net]:
            np.testing.assert_array_equal(plain[net][k], a[net][k], err_msg=f"{net}.{k}")
    G, _, _ = load_generator(tmp_path / "whole")                          # sampling uses the average
    np.testing.assert_array_equal(host(G[0].weight.data), a["G_ema"]["0.weight"])
    from npgan import evaluate
    args, G_own, _, _ = evaluate.parse_args([str(tmp_path / "whole"), "--no-ema"])
    np.testing.assert_array_equal(host(G_own[0].weight.data), a["G"]["0.weight"])
    assert train.main(["mnist", "--steps", "1", "--batch-size", "8", "--no-progress", "--no-eval",
                       "--out", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        evaluate.parse_args([str(tmp_path / "plain"), "--no-ema"])
    assert exc.value.code == 2 and "trained without --ema" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        train.main(["mnist", "--steps", "1", "--out", str(tmp_path / "bad"), "--ema", "1.5"])
    assert exc.value.code == 2 and "--ema must be a decay in (0, 1)" in capsys.readouterr().err
