"""What D sees: differentiable augmentation (DiffAugment), instance noise, the adaptive p, and
the overfitting signal.

The ops' backwards against central differences (float64, random shapes and parameters, a random
upstream gradient) and against PyTorch's autograd on the paper's definitions written in torch with
the same parameters; the view in both updates of a step, with fresh draws each time; the adaptive
probability; a run with augmentation that resumes bitwise; the overfitting probe and its finding.
"""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npgan import backend, checkpoint, health
from npgan import functional as F
from npgan.gan import NonSaturating, get_objective
from npgan.gan.step import discriminator_step, gan_step, generator_loss
from npgan.gan.view import ADA_INTERVAL, DiffAugment, DView, InstanceNoise, parse_policy
from npgan.gradcheck import assert_gradients_close, check_function
from npgan.models import dcgan
from npgan.optim import Adam

from test_layers_gradcheck import TOL, randn  # noqa: F401  (the layer tests' helpers)


def ints(values):
    return backend.to_device(np.asarray(values, dtype=np.int64))


def host(a):
    return backend.asnumpy(a)


@st.composite
def image_batch(draw):
    return draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(2, 7)), draw(st.integers(2, 7))


# ---------------------------------------------------------------- the ops against finite differences
@settings(max_examples=25)
@given(shape=image_batch(), seed=st.integers(0, 2**16), fill=st.sampled_from([0.0, -1.0, 0.3]))
def test_translate_backward_matches_finite_differences(shape, seed, fill):
    n, _, h, w = shape
    rng = np.random.default_rng(seed)
    dy, dx = ints(rng.integers(-h, h + 1, n)), ints(rng.integers(-w, w + 1, n))   # also shifts past the edge
    x = randn(*shape, seed=seed)
    assert_gradients_close(check_function(lambda x: F.translate_forward(x, dy, dx, fill), F.translate_backward, [x]),
                           TOL)


@settings(max_examples=25)
@given(shape=image_batch(), seed=st.integers(0, 2**16), fill=st.sampled_from([0.0, -1.0]))
def test_cutout_backward_matches_finite_differences(shape, seed, fill):
    n, _, h, w = shape
    rng = np.random.default_rng(seed)
    size = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
    top, left = ints(rng.integers(-size[0], h + 1, n)), ints(rng.integers(-size[1], w + 1, n))
    x = randn(*shape, seed=seed)
    assert_gradients_close(check_function(lambda x: F.cutout_forward(x, top, left, size, fill), F.cutout_backward,
                                          [x]), TOL)


@settings(max_examples=25)
@given(shape=image_batch(), seed=st.integers(0, 2**16), axes=st.sampled_from([(1,), (1, 2, 3)]))
def test_scale_about_mean_backward_matches_finite_differences(shape, seed, axes):
    scale = backend.to_device(np.random.default_rng(seed).uniform(0, 2, shape[0]))
    x = randn(*shape, seed=seed)
    assert_gradients_close(check_function(lambda x: F.scale_about_mean_forward(x, scale, axes),
                                          F.scale_about_mean_backward, [x]), TOL)


@settings(max_examples=20)
@given(shape=image_batch(), seed=st.integers(0, 2**16), p=st.sampled_from([1.0, 0.5]),
       policy=st.sampled_from(["color", "translation", "cutout", "color,translation,cutout", "cutout,translation"]))
def test_diffaugment_backward_matches_finite_differences(shape, seed, p, policy):
    """The whole policy as one function of the images: check_function replays npgan's generator
    before every call, so each evaluation draws the same parameters."""
    backend.seed(seed)
    augment = DiffAugment(policy, p=p, strength=1.5)
    x = randn(*shape, seed=seed)
    assert_gradients_close(check_function(augment.forward, augment.backward, [x]), TOL)


# ---------------------------------------------------------------- the ops against PyTorch
def torch_translation(torch, x, shift_y, shift_x, fill):
    """DiffAugment's ``rand_translation`` with given shifts (and a fill other than its 0)."""
    n, _, h, w = x.shape
    grid_b, grid_y, grid_x = torch.meshgrid(torch.arange(n), torch.arange(h), torch.arange(w), indexing="ij")
    grid_y = torch.clamp(grid_y + shift_y.view(-1, 1, 1) + 1, 0, h + 1)
    grid_x = torch.clamp(grid_x + shift_x.view(-1, 1, 1) + 1, 0, w + 1)
    x_pad = torch.nn.functional.pad(x, [1, 1, 1, 1, 0, 0, 0, 0], value=fill)
    return x_pad.permute(0, 2, 3, 1).contiguous()[grid_b, grid_y, grid_x].permute(0, 3, 1, 2)


def torch_cutout(torch, x, offset_y, offset_x, size, fill):
    """DiffAugment's ``rand_cutout`` with given offsets (the square's centre) and a fill."""
    n, _, h, w = x.shape
    grid_b, grid_y, grid_x = torch.meshgrid(torch.arange(n), torch.arange(size[0]), torch.arange(size[1]),
                                            indexing="ij")
    grid_y = torch.clamp(grid_y + offset_y.view(-1, 1, 1) - size[0] // 2, min=0, max=h - 1)
    grid_x = torch.clamp(grid_x + offset_x.view(-1, 1, 1) - size[1] // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype)
    mask[grid_b, grid_y, grid_x] = 0
    return x * mask.unsqueeze(1) + fill * (1 - mask.unsqueeze(1))


def torch_color(torch, x, brightness, saturation, contrast):
    """DiffAugment's ``rand_brightness``, ``rand_saturation``, ``rand_contrast`` with given factors."""
    x = x + brightness.view(-1, 1, 1, 1)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * saturation.view(-1, 1, 1, 1) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * contrast.view(-1, 1, 1, 1) + mean


@pytest.mark.parametrize("seed", range(4))
def test_augmentation_matches_diffaugment_in_pytorch(seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    n, c, h, w = 5, 3, 12, 10
    x64 = rng.standard_normal((n, c, h, w))
    dout = rng.standard_normal((n, c, h, w))
    shift_y, shift_x = rng.integers(-2, 3, n), rng.integers(-2, 3, n)
    size = (6, 5)
    offset_y, offset_x = rng.integers(0, h + 1, n), rng.integers(0, w, n)
    b, s, k = rng.uniform(-0.5, 0.5, n), rng.uniform(0, 2, n), rng.uniform(0.5, 1.5, n)
    fill = -1.0

    xt = torch.tensor(x64, requires_grad=True)
    t = torch_color(torch, xt, *(torch.tensor(v) for v in (b, s, k)))
    t = torch_translation(torch, t, torch.tensor(shift_y), torch.tensor(shift_x), fill)
    t = torch_cutout(torch, t, torch.tensor(offset_y), torch.tensor(offset_x), size, fill)
    t.backward(torch.tensor(dout))

    x = backend.to_device(x64)
    y = F.add_per_sample(x, backend.to_device(b))
    y, c1 = F.scale_about_mean_forward(y, backend.to_device(s), (1,))
    y, c2 = F.scale_about_mean_forward(y, backend.to_device(k), (1, 2, 3))
    y, c3 = F.translate_forward(y, ints(shift_y), ints(shift_x), fill)
    y, c4 = F.cutout_forward(y, ints(offset_y - size[0] // 2), ints(offset_x - size[1] // 2), size, fill)
    dx = F.scale_about_mean_backward(F.scale_about_mean_backward(
        F.translate_backward(F.cutout_backward(backend.to_device(dout), c4), c3), c2), c1)
    np.testing.assert_allclose(host(y), t.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(dx), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- the view's draws
def test_policy_names_and_the_default_ranges():
    assert parse_policy("translation, cutout") == ("translation", "cutout")
    with pytest.raises(ValueError, match="unknown augmentation rotate"):
        parse_policy("translation,rotate")
    backend.seed(0)
    x = backend.to_device(np.linspace(-1, 1, 64 * 28 * 28, dtype=np.float32).reshape(64, 1, 28, 28))
    out = host(DiffAugment("translation").forward(x))
    # A 28-pixel image moves by at most int(28 / 8 + 0.5) = 4 pixels: the fill (-1) covers at most 4 rows.
    filled_rows = (out == -1).all(axis=(1, 3)).sum(axis=1)
    assert filled_rows.max() <= 4 + 1 and out.dtype == np.float32
    cut = host(DiffAugment("cutout", fill=0.5).forward(backend.to_device(np.zeros((64, 1, 28, 28), np.float32))))
    assert ((cut == 0.5).sum(axis=(1, 2, 3)) <= 14 * 14).all() and (cut == 0.5).sum() > 64 * 7 * 7
    assert ((cut == 0) | (cut == 0.5)).all()


def test_each_call_draws_afresh_and_p_zero_is_the_identity():
    backend.seed(0)
    x = randn(16, 1, 8, 8).astype(np.float32)
    augment = DiffAugment("color,translation,cutout")
    first, second = host(augment.forward(x)), host(augment.forward(x))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(host(DiffAugment("color,translation,cutout", p=0.0).forward(x)), host(x))
    half = host(DiffAugment("translation,cutout", p=0.5).forward(x))
    changed = (half != host(x)).any(axis=(1, 2, 3)).mean()
    assert 0.3 < changed < 1                                            # each transform on about half


def test_d_sees_the_view_in_both_updates_and_g_gets_its_backward():
    """discriminator_step and generator_loss show D view.forward(.) of each batch, and G's gradient
    is view.backward of D's input gradient: the same as calling the view by hand."""
    backend.seed(4)
    G, D = dcgan.Generator(), dcgan.Discriminator()
    opt_D = Adam(D.parameters(), 2e-4, (0.5, 0.999))
    rng = np.random.default_rng(0)
    real = backend.to_device(rng.uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32))
    fake = G.forward(backend.to_device(rng.standard_normal((8, dcgan.Z_DIM)).astype(np.float32)))
    state = {k: v.copy() for k, v in D.state_dict().items()}
    view = DiffAugment("color,translation,cutout")
    backend.seed(11)
    loss = discriminator_step(D, opt_D, NonSaturating(), real, fake, view=view)[0]
    _, dfake = generator_loss(D, NonSaturating(), fake, view=view)

    D2 = dcgan.Discriminator().load_state_dict(state)
    opt_D2 = Adam(D2.parameters(), 2e-4, (0.5, 0.999))
    by_hand = DiffAugment("color,translation,cutout")
    backend.seed(11)
    seen_real, seen_fake = by_hand.forward(real), by_hand.forward(fake)
    loss2 = discriminator_step(D2, opt_D2, NonSaturating(), seen_real, seen_fake)[0]
    seen = by_hand.forward(fake)
    _, dseen = generator_loss(D2, NonSaturating(), seen)
    assert float(host(loss)) == float(host(loss2))
    np.testing.assert_array_equal(host(dfake), host(by_hand.backward(dseen)))
    assert not np.array_equal(host(seen_fake), host(seen))                # G's update drew its own parameters


def test_the_penalty_is_taken_on_the_images_d_sees(monkeypatch):
    objective = get_objective("r1")
    seen = []
    monkeypatch.setattr(objective, "penalty", lambda D, real, fake, forward=None: seen.append((real, fake)))
    backend.seed(0)
    D = dcgan.Discriminator(batchnorm=False)
    opt_D = Adam(D.parameters(), 2e-4, (0.5, 0.999))
    real, fake = randn(4, 1, 28, 28).astype(np.float32), randn(4, 1, 28, 28, seed=1).astype(np.float32)
    discriminator_step(D, opt_D, objective, real, fake, view=DiffAugment("translation,cutout"))
    (pr, pf), = seen
    assert not np.array_equal(host(pr), host(real)) and not np.array_equal(host(pf), host(fake))


def test_views_compose_in_order_and_instance_noise_anneals():
    noise = InstanceNoise(0.2, steps=4)
    view = DView([DiffAugment("cutout", fill=0.0), noise])
    stds = []
    for step in range(1, 5):
        view.at_step(step)
        stds.append(noise.std)
    assert stds == pytest.approx([0.2, 0.15, 0.1, 0.05])
    x = randn(3, 1, 6, 6).astype(np.float32)
    view.forward(x)
    d = randn(3, 1, 6, 6, seed=2).astype(np.float32)
    keep = view.transforms[0]._backward[0](backend.to_device(np.ones((3, 1, 6, 6), np.float32)))
    np.testing.assert_array_equal(host(view.backward(d)), host(d * keep))   # noise: identity; cutout: the mask


# ---------------------------------------------------------------- the adaptive probability
def test_adaptive_p_follows_r_t_and_round_trips():
    xp = backend.xp()
    augment = DiffAugment("translation", p="auto", batch_size=64)
    log = None
    for _ in range(3 * ADA_INTERVAL):                                    # D sure of every real image: r_t = 1
        log = augment.after_step({"r_t": xp.asarray(1.0, np.float32)})
    assert float(log["augment_p"]) == pytest.approx(3 * augment.p_step, rel=1e-5)
    state = augment.state_dict()
    for _ in range(10 * ADA_INTERVAL):                                   # r_t = 0 < 0.6: p falls back to 0
        augment.after_step({"r_t": xp.asarray(0.0, np.float32)})
    assert float(augment.p) == 0.0
    augment.load_state_dict(state)
    assert float(augment.p) == pytest.approx(3 * augment.p_step, rel=1e-5)
    assert DiffAugment("translation").after_step({"r_t": 1.0}) == {"augment_p": None}   # fixed p: nothing logged


def test_gan_step_reports_r_t():
    backend.seed(0)
    G, D = dcgan.Generator(), dcgan.Discriminator()
    opts = [Adam(m.parameters(), 2e-4, (0.5, 0.999)) for m in (G, D)]
    real = randn(4, 1, 28, 28).astype(np.float32)
    z = randn(4, dcgan.Z_DIM, seed=1).astype(np.float32)
    logits = host(D.forward(real))
    stats = gan_step(G, D, *opts, NonSaturating(), real, z)
    assert float(stats["r_t"]) == pytest.approx(np.sign(logits).mean())


# ---------------------------------------------------------------- the command line
def _train(tmp_path, name, *extra, steps=6):
    from npgan import train
    args = ["mnist", "--batch-size", "8", "--log-every", "2", "--checkpoint-every", "3", "--no-progress",
            "--no-eval", "--out", str(tmp_path / name), "--steps", str(steps), *extra]
    assert train.main(args) == 0


@pytest.mark.parametrize("flags", [["--augment", "color,translation,cutout"],
                                   ["--augment", "translation", "--augment-p", "auto"],
                                   ["--conditional", "--augment", "translation,cutout", "--minibatch-std"],
                                   ["--feature-matching", "--augment", "cutout"],
                                   ["--width", "24", "--conditional"]])
def test_an_augmented_run_resumes_bitwise(tmp_path, monkeypatch, flags):
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    _train(tmp_path, "whole", *flags)
    _train(tmp_path, "split", *flags, steps=3)
    _train(tmp_path, "split", "--resume", steps=6)
    whole, split = (checkpoint.load_checkpoint(tmp_path / n / "checkpoint.npz") for n in ("whole", "split"))
    for model in ("G", "D"):
        for key in whole[model]:
            np.testing.assert_array_equal(whole[model][key], split[model][key], err_msg=f"{model}.{key}")
    assert whole["extra"] == split["extra"]
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert all("r_t" in r and "D_train" in r and "D_heldout" in r for r in records)
    if "auto" in flags:
        assert whole["extra"]["view"]["DiffAugment"]["p"] > 0 and all("augment_p" in r for r in records)
    if "--width" in flags:                                   # the networks are that wide, and load so
        assert whole["G"]["4.weight"].shape[1] == 24 and whole["D"]["0.weight"].shape[0] == 24
        from npgan.models import load_generator
        G, config, _ = load_generator(tmp_path / "whole")
        assert config["width"] == 24 and G.layers[4].weight.data.shape[1] == 24


def test_augment_flags_are_checked(tmp_path, monkeypatch, capsys):
    from npgan import train
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    common = ["mnist", "--steps", "1", "--no-progress", "--no-eval"]
    for extra, message in ((["--augment", "rotate"], "--augment: unknown augmentation rotate"),
                           (["--augment-p", "0.5"], "--augment-p is a setting of --augment"),
                           (["--augment", "cutout", "--augment-p", "2"], "expected a probability in [0, 1] or 'auto'"),
                           (["--augment", "cutout", "--augment-fill", "3"], "--augment-fill must be in [-1, 1]"),
                           (["--minibatch-std", "--batch-size", "6"], "--batch-size must be a multiple of 4"),
                           (["--minibatch-std", "--loss", "r1"], "--minibatch-std does not combine with --loss r1"),
                           (["--feature-matching", "--conditional"], "--feature-matching reads the features of the "
                                                                     "dcgan discriminator")):
        with pytest.raises(SystemExit) as exc:
            train.main(common + ["--out", str(tmp_path / "bad")] + extra)
        assert exc.value.code == 2 and message in capsys.readouterr().err, extra
    _train(tmp_path, "none", "--augment", "none", steps=1)
    assert json.loads((tmp_path / "none" / "config.json").read_text())["augment"] is None


def test_limit_trains_on_a_fixed_subset(tmp_path, monkeypatch, capsys):
    from npgan.data import load_dataset
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    full = load_dataset("mnist", verbose=False)
    a, b = full.limited(100), full.limited(100)
    assert len(a.train_images) == 100 and np.array_equal(a.train_images, b.train_images)
    assert len(a.test_images) == len(full.test_images) and full.limited(10 ** 9) is full
    _train(tmp_path, "small", "--limit", "100", steps=2)
    assert "training on 100 of its" in capsys.readouterr().out


# ---------------------------------------------------------------- the overfitting signal
def test_the_probe_leaves_d_as_it_was():
    backend.seed(0)
    D = dcgan.Discriminator()
    D.forward(randn(8, 1, 28, 28, seed=3).astype(np.float32))          # running statistics away from their start
    before = {k: v.copy() for k, v in D.state_dict().items()}
    probe = health.DiscriminatorProbe(randn(6, 1, 28, 28).astype(np.float32), randn(6, 1, 28, 28, seed=1).astype(np.float32))
    out = probe(D)
    assert set(out) == {"D_train", "D_heldout"} and all(0 < v < 1 for v in out.values())
    for key, value in D.state_dict().items():
        np.testing.assert_array_equal(host(value), host(before[key]), err_msg=key)


def test_the_probe_draws_both_sets_at_random_from_data_in_class_order():
    images = np.repeat(np.arange(10, dtype=np.uint8), 100)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    labels = np.repeat(np.arange(10), 100)                                          # stored in class order
    probe = health.DiscriminatorProbe.of_data(images, images[::-1], labels, labels[::-1])
    for x, y in probe.sets:
        assert len(np.unique(host(y))) == 10 and x.shape == (health.N_PROBE, 1, 4, 4)
        np.testing.assert_array_equal(np.unique(host(x)[:, 0, 0, 0]), (np.arange(10) / 127.5 - 1).astype(np.float32))


def test_the_overfitting_finding_needs_a_gap_at_three_log_points():
    G = dcgan.Generator()
    z = randn(10, dcgan.Z_DIM).astype(np.float32)
    record = lambda gap: {"D_x": 0.6, "D_G_z": 0.3, "loss_G": 1.0, "D_train": 0.5 + gap, "D_heldout": 0.5}
    wide = [record(health.OVERFIT_GAP + 0.05)] * health.OVERFIT_LOG_POINTS
    assert "discriminator_overfits" in health.check(wide, G, z, 1.0, 100)
    assert "discriminator_overfits" not in health.check([record(0.02)] + wide[1:], G, z, 1.0, 100)
    assert "discriminator_overfits" not in health.check(wide, G, z, 1.0, 100, d_probabilities=False)


# ---------------------------------------------------------------- feature matching
@pytest.mark.parametrize("policy", [None, "color,translation,cutout"])
def test_feature_matching_gradient_matches_finite_differences(policy):
    from npgan.gan.step import FeatureMatching
    backend.seed(0)
    D = dcgan.Discriminator(width=4).to("float64")
    real, fake = randn(4, 1, 28, 28, seed=1), randn(4, 1, 28, 28, seed=2)
    view = DiffAugment(policy) if policy else None
    fm = FeatureMatching()
    grads = {}

    def loss(fake):
        value, grads["dfake"] = fm(D, fake, real, view=view)
        return value

    result = check_function(loss, lambda dloss: dloss * grads["dfake"], [fake], max_entries=200)
    assert_gradients_close(result, TOL)
    assert all(p.grad is None or not host(p.grad).any() for p in D.parameters())   # D frozen
    same = fm(D, real, real)[0]
    assert float(host(same)) == pytest.approx(0, abs=1e-20)                         # nothing to match


def test_feature_matching_needs_a_sequential_d():
    from npgan.gan.step import FeatureMatching
    with pytest.raises(TypeError, match="feature matching reads the features of a Sequential D"):
        FeatureMatching()(object(), None, None)


def test_feature_matching_matches_pytorch():
    """L_G and dL_G/dfake against autograd through the same DCGAN D built in torch (float64)."""
    torch = pytest.importorskip("torch")
    from npgan.gan.step import FeatureMatching
    nn = torch.nn
    backend.seed(0)
    D = dcgan.Discriminator(width=8).to("float64")
    tD = nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 16, 4, 2, 1), nn.BatchNorm2d(16),
                       nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(16 * 7 * 7, 1)).double()
    tD.load_state_dict({k: torch.tensor(host(v)) for k, v in D.state_dict().items()}, strict=False)
    rng = np.random.default_rng(0)
    real, fake = rng.uniform(-1, 1, (6, 1, 28, 28)), rng.uniform(-1, 1, (6, 1, 28, 28))
    loss, dfake = FeatureMatching()(D, backend.to_device(fake), backend.to_device(real))
    tfake = torch.tensor(fake, requires_grad=True)
    features = tD[:5]
    tloss = ((features(torch.tensor(real)).mean(0) - features(tfake).mean(0)) ** 2).sum()
    tloss.backward()
    assert float(host(loss)) == pytest.approx(tloss.item(), rel=1e-10)
    np.testing.assert_allclose(host(dfake), tfake.grad.numpy(), rtol=1e-8, atol=1e-14)
