"""Yang et al. (2017): the content network (a Context Encoder with a Linear bottleneck and ELU),
the texture optimisation's energy, its gradient, matches and pyramid, and the command line."""
import json

import numpy as np
import pytest

from npgan import backend
from npgan.gan.inpainting.yang import (YangError, check_patches, check_pyramid, downsample_mask, energy,
                                       feature_patches, feature_patches_backward, match, nearest_patches,
                                       optimise_scale, patch_sets, yang_fill)
from npgan.gradcheck import assert_gradients_close, check_function
from npgan.inpainting_ops.masks import centre_masks
from npgan.layers import ELU, Flatten, LeakyReLU, Linear
from npgan.models.classifier import Classifier
from npgan.models.inpainting import (ClassifierFeatures, ContextEncoder, EncoderFeatures, RandomFeatures,
                                     network_input)


# ---- the content network ----------------------------------------------------------------------
def test_content_network_is_a_context_encoder_with_a_linear_bottleneck_and_elu(xp):
    yang = ContextEncoder(1, 28, 8, bottleneck="linear", activation="elu")
    pathak = ContextEncoder(1, 28, 8)
    kinds = [type(layer).__name__ for layer in yang]
    assert kinds[:5] == ["Conv2d", "ELU", "Conv2d", "BatchNorm2d", "ELU"]
    assert not any(isinstance(layer, LeakyReLU) for layer in yang)
    linear = next(layer for layer in yang if isinstance(layer, Linear))
    assert linear.weight.shape == (16 * 7 * 7, 16 * 7 * 7) and any(isinstance(layer, Flatten) for layer in yang)
    assert "ChannelwiseLinear" in [type(layer).__name__ for layer in pathak]       # the default is unchanged
    x = xp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 1, 28, 28)), dtype=np.float32)
    out = yang.forward(network_input(x, xp.asarray(centre_masks(2, 28)), 0.0))
    assert out.shape == x.shape and float(abs(out).max()) <= 1
    for bad in (dict(bottleneck="conv"), dict(activation="relu")):
        with pytest.raises(ValueError, match="ContextEncoder"):
            ContextEncoder(1, 28, 8, **bad)


# ---- feature networks -------------------------------------------------------------------------
def test_feature_networks_keep_the_image_size_and_reuse_their_weights(xp):
    x = xp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 3, 16, 16)), dtype=np.float32)
    random = RandomFeatures(3, per_scale=4, seed=5)
    assert random.forward(x).shape == (2, 12, 16, 16)
    w = backend.asnumpy(random[0].weight.data)
    assert not w[:4, :, :2].any() and not w[:4, :, :, 5:].any() and w[:4, :, 2:5, 2:5].all()   # 3x3 group
    assert w[8:].all()                                                                      # 7x7 group
    np.testing.assert_array_equal(w, backend.asnumpy(RandomFeatures(3, per_scale=4, seed=5)[0].weight.data))

    # the dense encoder is the content network's first layer at every pixel: its stride-2 outputs
    # are the dense outputs at odd positions (mask channel 0)
    net = ContextEncoder(3, 32, 4, bottleneck="linear", activation="elu")
    dense = EncoderFeatures(net, 3).forward(x)                                   # (2, 4, 16, 16)
    strided = ELU().forward(net[0].forward(xp.concatenate([x, xp.zeros_like(x[:, :1])], axis=1)))
    np.testing.assert_allclose(backend.asnumpy(dense[:, :, 1::2, 1::2]), backend.asnumpy(strided), atol=1e-6)

    clf = Classifier()
    grey = x[:, :1]
    expected = clf[1].forward(clf[0].forward(grey))
    np.testing.assert_allclose(backend.asnumpy(ClassifierFeatures(clf).forward(grey)), backend.asnumpy(expected),
                               atol=1e-6)


# ---- patches and matches ----------------------------------------------------------------------
def _rect_mask(n, size, rng):
    m = np.zeros((n, 1, size, size))
    for i in range(n):
        h, w = rng.integers(2, size // 2, 2)
        top, left = rng.integers(1, size - h, 2)
        m[i, 0, top:top + h, left:left + w] = 1
    return m


def test_patch_sets_and_patches_match_their_definition(xp):
    rng = np.random.default_rng(2)
    m = _rect_mask(2, 9, rng)
    query, candidates = (backend.asnumpy(a) for a in patch_sets(xp.asarray(m)))
    for n in range(2):
        for p in range(49):
            window = m[n, 0, p // 7:p // 7 + 3, p % 7:p % 7 + 3]
            assert query[n, p] == window.any() and candidates[n, p] == (not window.any())
    f = rng.standard_normal((2, 4, 9, 9))
    patches = backend.asnumpy(feature_patches(xp.asarray(f)))                   # (2, 49, 36)
    np.testing.assert_array_equal(np.sort(patches[1, 10]), np.sort(f[1, :, 1:4, 3:6].ravel()))
    d = rng.standard_normal(patches.shape)                                       # the adjoint identity
    back = backend.asnumpy(feature_patches_backward(xp.asarray(d), f.shape))
    assert abs((patches * d).sum() - (f * back).sum()) < 1e-9


def test_matches_are_the_most_correlated_patches_entirely_outside_the_hole(xp):
    rng = np.random.default_rng(3)
    m = _rect_mask(3, 10, rng)
    patches = rng.standard_normal((3, 64, 5))
    query, candidates = patch_sets(xp.asarray(m))
    q, nn = (backend.asnumpy(a) for a in nearest_patches(xp.asarray(patches), query, candidates))
    query, candidates = backend.asnumpy(query), backend.asnumpy(candidates)
    assert sorted(q) == list(np.flatnonzero(query)) and (np.diff(nn) >= 0).all()
    for qi, ni in zip(q, nn):
        n, p = divmod(int(qi), 64)
        assert ni // 64 == n and candidates[n, ni % 64]                           # same image, fully outside
        row, col = divmod(int(ni % 64), 8)
        assert not m[n, 0, row:row + 3, col:col + 3].any()
        unit = patches[n] / np.linalg.norm(patches[n], axis=1, keepdims=True)
        ncc = np.where(candidates[n], unit @ unit[p], -np.inf)
        assert ni % 64 == ncc.argmax()


# ---- the energy ---------------------------------------------------------------------------------
def _features(kind, channels):
    if kind == "random":
        return RandomFeatures(channels, per_scale=2, seed=1, dtype=np.float64)
    if kind == "encoder":
        return EncoderFeatures(ContextEncoder(channels, 28, 4, bottleneck="linear", activation="elu").to("float64"),
                               channels, dtype=np.float64)
    return ClassifierFeatures(Classifier().to("float64"), dtype=np.float64)


@pytest.mark.parametrize("kind,channels", [("random", 2), ("encoder", 3), ("classifier", 1)])
def test_energy_gradient_wrt_the_hole_pixels_matches_central_differences(xp, kind, channels):
    """E = content + alpha * MRF + beta * TV with the matches held fixed, differentiated through
    the feature network's backward, against centred differences in float64 at every hole pixel."""
    rng = np.random.default_rng(4)
    x = xp.asarray(rng.uniform(-1, 1, (2, channels, 11, 11)))
    m = xp.asarray(_rect_mask(2, 11, rng))
    content = xp.asarray(rng.uniform(-1, 1, x.shape))
    features = _features(kind, channels)
    q, nn = match(x, m, features)
    hole = xp.broadcast_to(m > 0.5, x.shape)

    def at(v):
        y = x.copy()
        y[hole] = v
        return energy(y, m, content, features, q, nn, alpha=3.0, beta=0.5)

    v = x[hole].copy()
    e, parts, _ = at(v)
    assert all(float(p) > 0 for p in parts.values())                             # every term exercised
    result = check_function(lambda v_: at(v_)[0], lambda dout: at(v)[2][hole] * dout, [v], names=["hole pixels"])
    assert_gradients_close(result, tol=1e-6)
    assert all(float(abs(p.grad).max()) == 0 for p in features.parameters())     # frozen: no parameter gradients


def test_the_optimisation_lowers_the_energy_and_never_touches_known_pixels(xp):
    rng = np.random.default_rng(5)
    images = xp.asarray(rng.uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32))
    m = xp.asarray(centre_masks(2, 16, 4))
    content = xp.asarray(rng.uniform(-0.2, 0.2, images.shape).astype(np.float32))
    features = RandomFeatures(3, per_scale=4)
    start = images * (1 - m) + content * m
    q, nn = match(start, m, features)
    before = float(energy(start, m, content, features, q, nn, 100.0, 0.01)[0])
    history = []
    x = optimise_scale(start, m, content, features, 100.0, 0.01, nn_updates=1, lbfgs_steps=15, history=history)
    assert history[0] < 0.95 * before
    assert float(energy(x, m, content, features, q, nn, 100.0, 0.01)[0]) == pytest.approx(history[0], rel=1e-4)
    known = backend.asnumpy(xp.broadcast_to(m < 0.5, x.shape))
    np.testing.assert_array_equal(backend.asnumpy(x)[known], backend.asnumpy(start)[known])

    out = yang_fill(features, images, m, content, scales=2, nn_updates=2, lbfgs_steps=5)
    assert out.shape == images.shape and out.dtype == images.dtype and float(abs(out).max()) <= 1
    np.testing.assert_array_equal(backend.asnumpy(out)[known], backend.asnumpy(images)[known])
    assert not np.array_equal(backend.asnumpy(out)[~known], backend.asnumpy(content)[~known])


def test_pyramid_and_holes_the_optimisation_refuses(xp):
    check_pyramid(28, 2)
    check_pyramid(32, 3)
    for size, scales in ((28, 3), (30, 3), (12, 2)):
        with pytest.raises(YangError, match="too small for a"):
            check_pyramid(size, scales)
    m = xp.asarray(centre_masks(1, 8, 2))
    np.testing.assert_array_equal(backend.asnumpy(downsample_mask(m))[0, 0],
                                  np.pad(np.ones((2, 2)), 1))                   # any missing child: missing
    border = np.zeros((2, 1, 16, 16), np.float32)
    border[1, :, :, 2:] = 1                                                      # two known columns only
    with pytest.raises(YangError, match=r"image 1: no 3x3 patch of the 16x16 level"):
        check_patches(xp.asarray(border), 2)
    three = np.zeros((1, 1, 16, 16), np.float32)
    three[:, :, :, 3:] = 1                                                       # 3 known columns: 1 at 8x8
    check_patches(xp.asarray(three), 1)
    with pytest.raises(YangError, match="8x8 level"):
        check_patches(xp.asarray(three), 2)
    x = xp.zeros((1, 1, 16, 16), dtype=np.float32)
    with pytest.raises(YangError):
        yang_fill(RandomFeatures(1, per_scale=2), x, xp.asarray(three), x, scales=2)


# ---- the command line ---------------------------------------------------------------------------
def test_the_default_feature_network_depends_on_the_data_set_and_a_label_names_any_other():
    from npgan.gan.inpainting.runs import default_config
    assert default_config("yang", "fashion-mnist").features == "encoder"                # grey objects
    assert default_config("yang", "mnist").features == "encoder"
    assert default_config("yang", "natural").features == "random"                       # photos' crops
    assert default_config("yang", "natural").label == "Yang et al. (content + texture)"
    assert default_config("yang", "fashion-mnist", features="random").label == (
        "Yang et al. (content + texture), random features")
    assert default_config("yang", "natural", features="encoder").label.endswith(", encoder features")
    assert default_config("context-encoder", "fashion-mnist").features == "random"        # unused there


def _write_png(path, array):
    from PIL import Image
    Image.fromarray(array).save(path)


def test_yang_content_then_yang_train_eval_fill_panel(tmp_path, capsys):
    """A few steps of the content network on the LFW faces, a yang run on it (nothing trained),
    both evaluated with the baselines (sharpness and perceptual distance in every row), a user's
    image filled with its known pixels untouched, and the panel redrawn."""
    from PIL import Image

    from npgan.gan.inpainting.runs import load_run
    from npgan.inpaint.cli import main

    runs = str(tmp_path)
    assert main(["train", "--dataset", "lfw", "--method", "yang-content", "--steps", "3", "--batch-size", "8",
                 "--width", "8", "--runs-dir", runs, "--name", "content", "--no-progress"]) == 0
    assert main(["train", "--method", "yang", "--content", str(tmp_path / "content"), "--nn-updates", "1",
                 "--lbfgs-steps", "3", "--runs-dir", runs, "--name", "yang", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "made Yang et al. (content + texture)" in out and "samples.png" in out
    cfg, models = load_run(tmp_path / "yang")
    assert (cfg.method, cfg.dataset, cfg.width, cfg.features, cfg.content) == ("yang", "lfw", 8, "random",
                                                                              str(tmp_path / "content"))
    content_cfg, content_models = load_run(tmp_path / "content")
    for (k, a), b in zip(models["net"].state_dict().items(), content_models["net"].state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)                          # the content network, copied
    stored = json.loads((tmp_path / "yang" / "config.json").read_text())
    assert {"features", "texture_weight", "scales", "lbfgs_steps"} <= set(stored)
    assert not {"batch_size", "lr_g", "steps", "phases"} & set(stored)
    timing = json.loads((tmp_path / "yang" / "train_time.json").read_text())      # the content network's cost
    assert timing["seconds"] == json.loads((tmp_path / "content" / "train_time.json").read_text())["seconds"]
    assert timing["content"] == str(tmp_path / "content")

    assert main(["eval", str(tmp_path / "content"), str(tmp_path / "yang"), "--n", "3",
                 "--out", str(tmp_path / "eval")]) == 0
    assert "perceptual" in capsys.readouterr().out
    rows = json.loads((tmp_path / "eval" / "metrics.json").read_text())["rows"]
    assert [r["method"] for r in rows][:2] == [content_cfg.label, cfg.label] and len(rows) == 5
    assert all(np.isfinite(r["sharpness"]) and r["perceptual"] >= 0 for r in rows)
    assert main(["panel", str(tmp_path / "eval"), "--methods", cfg.label, "--out", str(tmp_path / "p.png")]) == 0

    image = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    mask = np.zeros((28, 28), np.uint8)
    mask[9:19, 6:20] = 255
    _write_png(tmp_path / "in.png", image)
    _write_png(tmp_path / "mask.png", mask)
    assert main(["fill", "--checkpoint", str(tmp_path / "yang"), "--image", str(tmp_path / "in.png"),
                 "--mask", str(tmp_path / "mask.png"), "--out", str(tmp_path / "out.png")]) == 0
    result = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.array_equal(result[mask == 0], image[mask == 0])

    mask[:, 3:] = 255                                                            # 3 known columns: none at 14x14
    _write_png(tmp_path / "wide.png", mask)
    assert main(["fill", "--checkpoint", str(tmp_path / "yang"), "--image", str(tmp_path / "in.png"),
                 "--mask", str(tmp_path / "wide.png"), "--out", str(tmp_path / "o2.png")]) == 2
    err = capsys.readouterr().err
    assert "no 3x3 patch of the 14x14 level" in err and len(err.strip().splitlines()) == 1

    assert main(["train", "--method", "yang", "--content", str(tmp_path / "content"), "--features", "encoder",
                 "--nn-updates", "1", "--lbfgs-steps", "2", "--runs-dir", runs, "--no-progress"]) == 0
    assert load_run(tmp_path / "inpaint-lfw-yang-encoder")[0].features == "encoder"


def test_yang_refuses_bad_content_runs_and_settings(tmp_path, capsys):
    from npgan.inpaint.cli import main

    runs = str(tmp_path / "runs")
    assert main(["train", "--dataset", "lfw", "--method", "context-encoder-l2", "--steps", "1", "--batch-size", "4",
                 "--width", "4", "--runs-dir", runs, "--name", "ce", "--no-progress"]) == 0
    assert main(["train", "--dataset", "lfw", "--method", "yang-content", "--steps", "1", "--batch-size", "4",
                 "--width", "4", "--runs-dir", runs, "--name", "yc", "--no-progress"]) == 0
    (tmp_path / "text.npz").write_text("not a checkpoint")
    capsys.readouterr()
    cases = [
        ([], "--method yang needs --content RUN"),
        (["--content", str(tmp_path / "nope")], "not found"),
        (["--content", str(tmp_path / "text.npz")], "--content"),
        (["--content", f"{runs}/ce"], "holds a context-encoder-l2 run; the yang method needs a yang-content run"),
        (["--content", f"{runs}/yc", "--dataset", "natural"], "was trained on lfw, not natural"),
        (["--content", f"{runs}/yc", "--scales", "3"], "a 28x28 image is too small for a 3-scale pyramid"),
        (["--content", f"{runs}/yc", "--scales", "0"], "--scales must be a positive integer"),
        (["--content", f"{runs}/yc", "--features", "classifier"], "lfw has none"),
        (["--content", f"{runs}/yc", "--width", "8"], "--width cannot be combined with --method yang"),
        (["--content", f"{runs}/yc", "--mask", "rect"], "--mask cannot be combined with --method yang"),
        (["--content", f"{runs}/yc", "--steps", "5"], "--steps does not apply to --method yang"),
        (["--content", f"{runs}/yc", "--tv-weight", "-1"], "--tv-weight must be >= 0"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--method", "yang", "--runs-dir", str(tmp_path / "new"), "--no-progress"] + args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "lfw", "--method", "context-encoder", "--content", f"{runs}/yc",
              "--runs-dir", str(tmp_path / "new")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--content does not apply to --method context-encoder" in err
    assert not (tmp_path / "new").exists()
