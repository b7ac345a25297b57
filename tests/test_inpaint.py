"""Inpainting: masks, network shapes, gradient checks of every full loss (including dL/dz),
Poisson blending against analytic solutions, baselines, metrics, and tiny end-to-end runs of
each method through the command line (train -> eval -> fill)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from npgan import backend
from npgan.functional import crop_backward, crop_forward
from npgan.gan import NonSaturating, discriminator_loss
from npgan.gan.inpainting.evaluate import image_metrics, summarise
from npgan.gan.inpainting.latent import latent_loss, optimise_latent
from npgan.gan.inpainting.train import completion_loss, critic
from npgan.gradcheck import assert_gradients_close, check_function
from npgan.inpainting_ops.baselines import biharmonic_fill, harmonic_fill, mean_fill
from npgan.inpainting_ops.blend import biharmonic_solve, poisson_blend
from npgan.inpainting_ops.masks import (box_sum, canonical_kind, centre_masks, contextual_weights, hole_boxes,
                                        make_masks, rect_masks, stroke_masks)
from npgan.layers import ChannelwiseLinear, Conv2d
from npgan.models import dcgan, dcgan32
from npgan.models.inpainting import (CompletionNetwork, ContextEncoder, GlobalLocalDiscriminator,
                                     PatchDiscriminator, complete, network_input)


# ---- masks ----------------------------------------------------------------------------------
def test_centre_mask_is_the_middle_square():
    m = centre_masks(3, 28)
    assert m.shape == (3, 1, 28, 28) and m.dtype == np.float32
    assert m.sum() == 3 * 14 * 14
    assert m[0, 0, 7:21, 7:21].all() and m[0, 0, 6].sum() == 0 and m[0, 0, :, 21].sum() == 0
    assert centre_masks(1, 32, 16)[0, 0, 8:24, 8:24].all()


@pytest.mark.parametrize("kind", ["centre", "rect", "strokes", "mixed"])
def test_masks_are_binary_nonempty_and_not_full(kind, host_rng):
    m = make_masks(kind, 40, 32, host_rng)
    assert m.shape == (40, 1, 32, 32) and m.dtype == np.float32
    assert set(np.unique(m)) <= {0.0, 1.0}
    frac = m.mean(axis=(1, 2, 3))
    assert (frac > 0).all() and (frac < 0.8).all()


def test_rect_masks_respect_side_bounds(host_rng):
    m = rect_masks(200, 28, host_rng, min_side=5, max_side=9)
    rows, cols = m[:, 0].any(axis=2).sum(1), m[:, 0].any(axis=1).sum(1)
    assert rows.min() >= 5 and rows.max() <= 9 and cols.min() >= 5 and cols.max() <= 9
    assert (m.sum(axis=(1, 2, 3)) == rows * cols).all()                        # one solid rectangle


def test_stroke_masks_vary_and_mixed_draws_every_kind(host_rng):
    m = stroke_masks(20, 28, host_rng)
    assert len({m[i].tobytes() for i in range(20)}) == 20
    mixed = make_masks("mixed", 60, 28, host_rng)
    n_centre = sum((mixed[i] == centre_masks(1, 28)[0]).all() for i in range(60))
    assert 5 < n_centre < 40


def test_mask_kind_names():
    assert canonical_kind("center") == "centre" and canonical_kind("free-form") == "strokes"
    with pytest.raises(ValueError, match="unknown mask kind"):
        make_masks("circle", 1, 28, np.random.default_rng(0))


def test_contextual_weights_count_missing_neighbours(xp, host_rng):
    m = (host_rng.random((2, 1, 12, 12)) < 0.3).astype(np.float64)
    w = backend.asnumpy(contextual_weights(xp.asarray(m), 7))
    padded = np.pad(m, ((0, 0), (0, 0), (3, 3), (3, 3)))
    brute = np.zeros_like(m)
    for y in range(12):
        for x in range(12):
            brute[:, :, y, x] = padded[:, :, y:y + 7, x:x + 7].sum(axis=(2, 3))
    np.testing.assert_allclose(w, (1 - m) * brute / 49, atol=1e-12)
    c = backend.asnumpy(contextual_weights(xp.asarray(centre_masks(1, 28))))
    assert (c[centre_masks(1, 28) > 0] == 0).all()                              # 0 in the hole
    assert c[0, 0, 0, 0] == 0 and c[0, 0, 6, 14] > c[0, 0, 4, 14] > 0          # near the hole counts more


def test_box_sum_matches_ones_count(xp):
    ones = xp.ones((1, 1, 5, 5))
    s = backend.asnumpy(box_sum(ones, 3))[0, 0]
    assert s[0, 0] == 4 and s[0, 2] == 6 and s[2, 2] == 9


def test_hole_boxes_centre_on_hole_and_stay_inside(xp):
    top, left = hole_boxes(xp.asarray(centre_masks(2, 28)), 16)
    assert backend.asnumpy(top).tolist() == [6, 6] and backend.asnumpy(left).tolist() == [6, 6]
    m = np.zeros((1, 1, 28, 28), np.float32)
    m[0, 0, 0:4, 24:28] = 1                                                      # a corner hole
    top, left = hole_boxes(xp.asarray(m), 16)
    assert int(top[0]) == 0 and int(left[0]) == 12


# ---- network shapes -------------------------------------------------------------------------
def test_channelwise_linear_and_dilated_conv_shapes(xp):
    x = xp.asarray(np.random.default_rng(0).standard_normal((2, 8, 7, 7)), dtype=np.float32)
    cw = ChannelwiseLinear(8, 7)
    assert cw.weight.shape == (8, 49, 49) and cw.forward(x).shape == (2, 8, 7, 7)
    assert ChannelwiseLinear(8, 7, out_size=(3, 5)).forward(x).shape == (2, 8, 3, 5)
    assert cw.backward(xp.ones((2, 8, 7, 7), dtype=np.float32)).shape == x.shape
    for d in (1, 2, 4, 8):
        conv = Conv2d(8, 4, 3, padding=d, dilation=d)
        assert conv.forward(x).shape == (2, 4, 7, 7)                            # "same" padding
        assert conv.backward(xp.ones((2, 4, 7, 7), dtype=np.float32)).shape == x.shape
    assert Conv2d(8, 4, 3, dilation=2).forward(x).shape == (2, 4, 3, 3)         # 7 - 2*(3-1)


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_inpainting_network_shapes(xp, channels, size):
    x = xp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, channels, size, size)), dtype=np.float32)
    m = xp.asarray(centre_masks(2, size))
    inp = network_input(x, m, 0.0)
    assert inp.shape == (2, channels + 1, size, size)
    yang_content = ContextEncoder(channels, size, 8, bottleneck="linear", activation="elu")
    for net in (ContextEncoder(channels, size, 8), yang_content, CompletionNetwork(channels, size, 8)):
        out = net.forward(inp)
        assert out.shape == x.shape and out.dtype == np.float32 and float(abs(out).max()) <= 1
    assert PatchDiscriminator(channels, size, 8).forward(x).shape == (2, 1)
    assert GlobalLocalDiscriminator(channels, size, 16, 8).forward(x, m).shape == (2, 1)
    if size == 32:
        assert dcgan32.Generator(10, 3, 8).forward(xp.zeros((2, 10), dtype=np.float32)).shape == (2, 3, 32, 32)


def test_crop_backward_is_the_adjoint_of_crop(xp, host_rng):
    x = xp.asarray(host_rng.standard_normal((3, 2, 10, 10)))
    top, left = xp.asarray([0, 3, 6]), xp.asarray([5, 0, 6])
    patch, cache = crop_forward(x, top, left, 4)
    assert patch.shape == (3, 2, 4, 4)
    np.testing.assert_array_equal(backend.asnumpy(patch[1]), backend.asnumpy(x[1, :, 3:7, 0:4]))
    y = xp.asarray(host_rng.standard_normal(patch.shape))
    assert abs(float((patch * y).sum()) - float((x * crop_backward(y, cache)).sum())) < 1e-10


# ---- gradient checks through the full losses (float64) --------------------------------------
def _param_gradcheck(models, loss_and_backward, loss_only, entries=4, rtol=1e-4, atol=1e-8, eps=1e-7):
    """Analytic parameter gradients from ``loss_and_backward()`` vs centred differences of
    ``loss_only()`` at a few entries of every parameter of every model.

    The networks are piecewise smooth (ReLU, LeakyReLU): a step that carries some unit across
    its kink changes the slope, so eps is kept small (1e-7, float64); ``atol`` covers the
    finite difference's rounding noise (~1e-16 * |L| / eps)."""
    params = [(f"{i}.{name}", p) for i, m in enumerate(models) for name, p in m.named_parameters()]
    for _, p in params:
        p.grad[...] = 0
    loss_and_backward()
    rng = np.random.default_rng(0)
    bad = []
    for name, p in params:
        grad = backend.asnumpy(p.grad).copy()
        for flat in rng.choice(p.data.size, size=min(entries, p.data.size), replace=False):
            idx = np.unravel_index(flat, p.data.shape)
            old = float(p.data[idx])
            p.data[idx] = old + eps
            plus = float(loss_only())
            p.data[idx] = old - eps
            minus = float(loss_only())
            p.data[idx] = old
            numeric = (plus - minus) / (2 * eps)
            if not np.isclose(grad[idx], numeric, rtol=rtol, atol=atol):
                bad.append(f"{name}{tuple(int(i) for i in idx)}: analytic {grad[idx]:.8g}, numeric {numeric:.8g}")
    assert not bad, "\n".join(bad)


def _batch(xp, channels, size, n=4, seed=0):
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.uniform(-1, 1, (n, channels, size, size)))
    m = xp.asarray(make_masks("mixed", n, size, rng).astype(np.float64))
    return x, m


@pytest.mark.parametrize("method,prefill", [("context-encoder", "mean"), ("glcic", "mean"),
                                            ("context-encoder", "biharmonic"), ("yang-content", "mean")])
def test_gradcheck_full_completion_loss(xp, method, prefill):
    """L = w_rec * masked MSE + w_adv * BCE(D(composite), 1), through net and D (GLCIC: both branches
    and the local crop; Yang et al.'s content network: its Linear bottleneck and ELUs); weights made
    comparable so both terms are exercised. With the biharmonic prefill the prediction is the
    prefill plus the network's correction."""
    x, m = _batch(xp, 1, 28, n=3)
    if method in ("context-encoder", "yang-content"):
        options = dict(bottleneck="linear", activation="elu") if method == "yang-content" else {}
        net, D = ContextEncoder(1, 28, 4, **options).to("float64"), PatchDiscriminator(1, 28, 4).to("float64")
    else:
        net, D = CompletionNetwork(1, 28, 4).to("float64"), GlobalLocalDiscriminator(1, 28, 16, 4, 8).to("float64")
    fill = xp.asarray([0.1])

    def forward():
        pred = complete(net, x, m, prefill, fill)
        return pred, completion_loss(pred, x, m, D, rec_weight=0.6, adv_weight=0.4, backward=False)[0]

    def loss_and_backward():
        pred = complete(net, x, m, prefill, fill)
        loss, parts, dpred = completion_loss(pred, x, m, D, rec_weight=0.6, adv_weight=0.4)
        assert parts["adv"] is not None
        net.backward(dpred)

    _param_gradcheck([net], loss_and_backward, lambda: forward()[1], entries=3)


@pytest.mark.parametrize("method", ["context-encoder", "glcic"])
def test_gradcheck_discriminator_loss(xp, method):
    x, m = _batch(xp, 3, 32, seed=1)
    fake = x[::-1].copy()
    D = (PatchDiscriminator(3, 32, 4) if method == "context-encoder"
         else GlobalLocalDiscriminator(3, 32, 16, 4, 8)).to("float64")
    _param_gradcheck([D], lambda: discriminator_loss(D, NonSaturating(), x, fake, critic(D, m)),
                     lambda: discriminator_loss(D, NonSaturating(), x, fake, critic(D, m), backward=False)[0])


def test_gradcheck_latent_loss_wrt_z(xp):
    """Yeh et al.'s contextual + lambda * perceptual loss, differentiated with respect to z through
    D.backward and G.backward (eval-mode BatchNorm, as during the optimisation)."""
    backend.seed(3)
    G = dcgan.Generator(z_dim=6, width=4).to("float64").eval()
    D = dcgan.Discriminator(width=4).to("float64").eval()
    y, m = _batch(xp, 1, 28, n=3, seed=2)
    w = contextual_weights(m)
    z = xp.asarray(np.random.default_rng(5).standard_normal((3, 6)))
    lam = 0.5                                                                    # make the D term matter
    result = check_function(lambda z_: latent_loss(G, D, z_, y, w, lam, backward=False)[0],
                            lambda dout: latent_loss(G, D, z, y, w, lam)[3] * dout, [z], names=["z"])
    assert_gradients_close(result, tol=1e-6)


def test_latent_optimisation_fits_the_context(xp):
    """Codes found by optimise_latent make G(z) match the known pixels of an image that G can
    produce exactly, and the parameter gradients are left as they were."""
    backend.seed(0)
    G = dcgan.Generator(z_dim=8, width=4).eval()
    D = dcgan.Discriminator(width=4).eval()
    target = G.forward(xp.asarray(np.random.default_rng(9).standard_normal((4, 8)), dtype=np.float32))
    m = xp.asarray(centre_masks(4, 28))
    w = contextual_weights(m)
    before = float(latent_loss(G, D, xp.zeros((4, 8), dtype=np.float32), target, w, 0.0, backward=False)[0])
    z, history = optimise_latent(G, D, target, m, steps=150, lam=0.0, lr=0.05)
    after = float(latent_loss(G, D, z, target, w, 0.0, backward=False)[0])
    assert after < 0.2 * before and history[-1] < history[0]
    assert all(float(abs(p.grad).max()) == 0 for p in G.parameters() + D.parameters())


# ---- Poisson blending and baselines ---------------------------------------------------------
def _grid(h, w):
    return np.mgrid[0:h, 0:w].astype(np.float64)


def test_poisson_blend_matches_analytic_solution(xp):
    """Source s = quadratic, target t = s + a linear function on the hole's border.
    The discrete Laplacian of a quadratic is exact and that of a linear function is 0, so the
    unique solution of  Lap f = Lap s,  f = t on the border  is f = t in the whole hole."""
    y, x = _grid(20, 24)
    s = np.stack([x ** 2 - 0.5 * y ** 2 + x * y, 0.3 * y ** 2 - x])[None]       # (1, 2, H, W)
    t = s + np.stack([3 * x - 2 * y + 5, -x + 0.5 * y])[None]
    m = np.zeros((1, 1, 20, 24))
    m[0, 0, 4:15, 3:12] = 1
    m[0, 0, 10:13, 12:20] = 1                                                     # an L-shaped hole
    out = poisson_blend(xp.asarray(s), xp.asarray(t), xp.asarray(m))
    np.testing.assert_allclose(backend.asnumpy(out), t, atol=1e-9)


def test_poisson_blend_hole_guidance_ignores_the_source_outside_the_hole(xp):
    """guidance='hole' never reads the source outside the hole: changing it there changes
    nothing, and a fill that is off by a constant is pulled back onto a flat target exactly
    (the harmonic correction with border values t_q - s_p = -offset is the constant -offset)."""
    rng = np.random.default_rng(0)
    y, x = _grid(14, 14)
    m = np.zeros((1, 1, 14, 14))
    m[0, 0, 3:10, 2:9] = 1
    t = np.full_like(m, 0.3)
    s = 0.3 + 5 * m + 100 * (1 - m) * rng.random(m.shape)
    out = backend.asnumpy(poisson_blend(xp.asarray(s), xp.asarray(t), xp.asarray(m), guidance="hole"))
    np.testing.assert_allclose(out, t, atol=1e-9)
    t2 = (np.sin(x / 3) + y / 7)[None, None]
    s2 = t2 + rng.standard_normal(m.shape)
    s3 = s2 + 50 * (1 - m) * rng.random(m.shape)
    a, b = (backend.asnumpy(poisson_blend(xp.asarray(v), xp.asarray(t2), xp.asarray(m), guidance="hole"))
            for v in (s2, s3))
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert np.abs(backend.asnumpy(poisson_blend(xp.asarray(s3), xp.asarray(t2), xp.asarray(m))) - a).max() > 1
    with pytest.raises(ValueError, match="guidance"):
        poisson_blend(xp.asarray(s), xp.asarray(t), xp.asarray(m), guidance="mixed")


def test_harmonic_fill_reproduces_harmonic_functions(xp):
    y, x = _grid(16, 16)
    u = (x ** 2 - y ** 2 + 2 * x * y + 3 * x)[None, None]                        # Lap u = 0 exactly
    m = np.zeros_like(u)
    m[0, 0, 3:13, 4:11] = 1
    np.testing.assert_allclose(backend.asnumpy(harmonic_fill(xp.asarray(u), xp.asarray(m))), u, atol=1e-9)
    # a quadratic with Lap = 4 is *not* harmonic: the fill differs inside, agrees outside
    q = (x ** 2 + y ** 2)[None, None]
    f = backend.asnumpy(harmonic_fill(xp.asarray(q), xp.asarray(m)))
    assert np.abs(f - q)[m > 0].max() > 1 and np.array_equal(f[m == 0], q[m == 0])


def test_biharmonic_solve_is_exact_on_ramps_and_matches_scikit_image(xp, host_rng):
    y, x = _grid(32, 32)
    ramp = np.stack([0.03 * y - 0.02 * x + 0.1, 0.01 * x, -0.02 * y])[None]    # (1, 3, 32, 32)
    m = np.zeros((1, 1, 32, 32))
    m[..., 5:20, 9:27] = 1                                                       # >= 2 pixels from the border
    damaged = np.where(m > 0, 7.0, ramp)
    np.testing.assert_allclose(backend.asnumpy(biharmonic_solve(xp.asarray(damaged), xp.asarray(m))), ramp, atol=1e-9)
    # smooth random images and mixed holes: one solve per distinct hole gives each image's own
    # solution, keeps the known pixels, and agrees with scikit-image's biharmonic inpainting
    from scipy.ndimage import gaussian_filter
    images = gaussian_filter(host_rng.uniform(-1, 1, (6, 3, 32, 32)), (0, 0, 3, 3)) * 8
    masks = np.concatenate([centre_masks(3, 32, 16), make_masks("strokes", 3, 32, host_rng)]).astype(np.float64)
    together = backend.asnumpy(biharmonic_solve(xp.asarray(images), xp.asarray(masks)))
    alone = np.concatenate([backend.asnumpy(biharmonic_solve(xp.asarray(images[i:i + 1]), xp.asarray(masks[i:i + 1])))
                            for i in range(6)])
    np.testing.assert_allclose(together, alone, atol=1e-12)
    hole = np.broadcast_to(masks, images.shape) > 0
    np.testing.assert_array_equal(together[~hole], images[~hole])
    theirs = backend.asnumpy(biharmonic_fill(images, masks))
    error_ours, error_theirs = (np.sqrt(((f - images)[hole] ** 2).mean()) for f in (together, theirs))
    assert np.sqrt(((together - theirs)[hole] ** 2).mean()) < 0.1 * error_theirs
    assert error_ours < 1.05 * error_theirs
    with pytest.raises(ValueError, match="mask"):
        biharmonic_solve(xp.asarray(images), xp.asarray(masks[:, :, :16]))


def test_baselines_keep_known_pixels_and_fill_ramps(xp):
    y, x = _grid(28, 28)
    ramp = np.broadcast_to((x / 27 * 2 - 1)[None, None], (2, 3, 28, 28)).astype(np.float32)
    m = centre_masks(2, 28)
    for fill in (mean_fill, harmonic_fill, biharmonic_fill):
        out = backend.asnumpy(fill(xp.asarray(ramp), xp.asarray(m)))
        assert out.shape == ramp.shape and out.dtype == np.float32
        np.testing.assert_array_equal(out[np.broadcast_to(m, out.shape) == 0], ramp[np.broadcast_to(m, out.shape) == 0])
        if fill is not mean_fill:
            np.testing.assert_allclose(out, ramp, atol=1e-4)                       # linear functions are exact
    mean = backend.asnumpy(mean_fill(xp.asarray(ramp), xp.asarray(m)))
    np.testing.assert_allclose(mean[0, 0, 14, 14], ramp[0, 0][m[0, 0] == 0].mean(), atol=1e-6)
    shifted = backend.asnumpy(mean_fill(xp.asarray(ramp + 0.5), xp.asarray(m)))
    np.testing.assert_allclose(shifted[1, 2, 10, 10], 0.5, rtol=1e-5)


def test_metrics_perfect_and_imperfect_fills():
    x = np.random.default_rng(0).uniform(-1, 1, (3, 1, 28, 28)).astype(np.float32)
    m = centre_masks(3, 28)
    perfect = image_metrics(x, x, m)
    assert perfect["psnr_hole"].min() >= 99 and np.allclose(perfect["ssim_all"], 1) and perfect["l1_all"].max() == 0
    worse = image_metrics(mean_fill(x, m), x, m)
    assert (worse["psnr_hole"] < worse["psnr_all"]).all()                       # errors only in the hole
    np.testing.assert_allclose(worse["l1_all"], worse["l1_hole"] * m.mean(axis=(1, 2, 3)), rtol=1e-6)
    assert summarise(perfect)["sharpness"] == pytest.approx(1.0)
    assert summarise(worse)["sharpness"] < 0.5                                   # flat fill: edges at the border only


def test_sharpness_survives_holes_on_a_flat_background():
    """A hole where the ground truth is flat must not dominate the set's sharpness (the mean of
    per-image ratios did: 2,000+ on Fashion-MNIST rectangles)."""
    x = np.random.default_rng(1).uniform(-1, 1, (2, 1, 28, 28)).astype(np.float32)
    x[1] = -1.0                                                                  # a black image
    m = centre_masks(2, 28)
    noisy = x + 0.05 * (np.random.default_rng(2).uniform(-1, 1, x.shape).astype(np.float32) * m)
    sharp = summarise(image_metrics(noisy, x, m))["sharpness"]
    assert 0.9 < sharp < 1.2


def test_sharpness_is_one_for_the_truth_below_for_a_blur_above_for_noise():
    from scipy.ndimage import uniform_filter

    x = np.random.default_rng(3).uniform(-1, 1, (4, 3, 32, 32)).astype(np.float32)
    x = uniform_filter(x, size=(1, 1, 3, 3))                                     # some structure, not white noise
    m = centre_masks(4, 32)
    blurred = x * (1 - m) + uniform_filter(x, size=(1, 1, 5, 5)) * m
    noisy = x + 0.3 * np.random.default_rng(4).standard_normal(x.shape).astype(np.float32) * m
    assert summarise(image_metrics(x, x, m))["sharpness"] == 1.0
    assert summarise(image_metrics(blurred, x, m))["sharpness"] < 0.8
    assert summarise(image_metrics(noisy, x, m))["sharpness"] > 1.2


def test_perceptual_distance_is_zero_for_the_truth_and_grows_with_the_damage(xp):
    from scipy.ndimage import uniform_filter

    from npgan.gan.inpainting.evaluate import perceptual_distance

    x = np.random.default_rng(5).uniform(-1, 1, (3, 1, 28, 28)).astype(np.float32)
    m = centre_masks(3, 28)
    slightly, badly = (x * (1 - m) + uniform_filter(x, size=(1, 1, k, k)) * m for k in (2, 5))
    truth = perceptual_distance(xp.asarray(x), x, m)
    assert truth.shape == (3,) and truth.dtype == np.float64 and truth.max() == 0
    a, b = perceptual_distance(slightly, x, m), perceptual_distance(badly, x, m, batch_size=2)
    assert (0 < a).all() and (a < b).all()
    assert summarise(image_metrics(badly, x, m))["perceptual"] == pytest.approx(b.mean())


# ---- end to end through the command line ----------------------------------------------------
# (dataset, extra arguments): LFW and the natural crops ship with scikit-image, so these run anywhere
TINY = {
    "context-encoder": ("lfw", ["--steps", "3"]),
    "context-encoder-l2": ("lfw", ["--steps", "3", "--mask", "strokes"]),
    "glcic": ("natural", ["--phases", "2", "2", "2", "--mask", "mixed"]),
    "glcic-biharmonic": ("natural", ["--phases", "2", "2", "2", "--mask", "mixed", "--prefill", "biharmonic"]),
    "latent": ("lfw", ["--steps", "3", "--latent-steps", "3"]),
}


def _write_png(path, array):
    from PIL import Image
    Image.fromarray(array).save(path)


@pytest.mark.parametrize("case", list(TINY))
def test_train_eval_fill_end_to_end(tmp_path, case, capsys):
    from PIL import Image

    from npgan.inpaint.cli import main

    dataset, extra = TINY[case]
    method = case.replace("-biharmonic", "")
    assert main(["train", "--dataset", dataset, "--method", method, "--batch-size", "8", "--width", "8",
                 "--runs-dir", str(tmp_path), "--name", "run", "--no-progress"] + extra) == 0
    run = tmp_path / "run"
    for f in ("checkpoint.npz", "config.json", "train_time.json", "losses.csv", "losses.png", "samples.png"):
        assert (run / f).is_file(), f
    assert main(["eval", str(run), "--n", "6"]) == 0
    table = capsys.readouterr().out
    assert "biharmonic fill" in table and "PSNR hole" in table
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["rows"]) >= 4 and all(np.isfinite(r["psnr_hole"]) for r in metrics["rows"])
    assert metrics["rows"][0]["train_s"] >= 0 and metrics["rows"][-1]["train_s"] is None     # a run, a baseline
    assert (run / "eval_panel.png").is_file()
    label = metrics["rows"][0]["method"]
    assert ("biharmonic prefill" in label) == ("--prefill" in extra)
    assert main(["panel", str(run), "--methods", label, "biharmonic fill", "--n", "3",
                 "--out", str(tmp_path / "side.png")]) == 0
    side = 32 if dataset == "natural" else 28
    assert Image.open(tmp_path / "side.png").size[1] > 4 * 3 * side                # 4 rows of 3x tiles

    size, shape = (32, (32, 32, 3)) if dataset == "natural" else (28, (28, 28))
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[8:20, 8:20] = 255
    _write_png(tmp_path / "in.png", image)
    _write_png(tmp_path / "mask.png", mask)
    out = tmp_path / "out.png"
    assert main(["fill", "--checkpoint", str(run), "--image", str(tmp_path / "in.png"), "--mask",
                 str(tmp_path / "mask.png"), "--out", str(out), "--panel", str(tmp_path / "panel.png")]) == 0
    result = np.asarray(Image.open(out))
    assert result.shape == shape and (tmp_path / "panel.png").is_file()
    assert np.array_equal(result[mask == 0], image[mask == 0])                   # known pixels untouched


def test_fill_reports_clear_errors(tmp_path, capsys):
    from npgan.inpaint.cli import main

    assert main(["train", "--dataset", "lfw", "--method", "context-encoder-l2", "--steps", "1",
                 "--batch-size", "4", "--width", "4", "--runs-dir", str(tmp_path), "--name", "r",
                 "--no-progress"]) == 0
    capsys.readouterr()
    good = np.zeros((28, 28), np.uint8)
    mask = np.zeros((28, 28), np.uint8)
    mask[10:18, 10:18] = 255
    grey_mask = mask.copy()
    grey_mask[0, 0] = 128
    files = {"in.png": good, "mask.png": mask, "big.png": np.zeros((32, 32), np.uint8),
             "rgb.png": np.zeros((28, 28, 3), np.uint8), "grey_mask.png": grey_mask}
    for name, a in files.items():
        _write_png(tmp_path / name, a)
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    cases = [("big.png", "mask.png", "is 32x32 pixels but this model inpaints 28x28"),
             ("rgb.png", "mask.png", "is RGB (3 channels) but this model was trained on grey"),
             ("in.png", "grey_mask.png", "not binary"),
             ("in.png", "big.png", "mask"),
             ("broken.png", "mask.png", "cannot read image"),
             ("missing.png", "mask.png", "does not exist")]
    for image, m, message in cases:
        code = main(["fill", "--checkpoint", str(tmp_path / "r"), "--image", str(tmp_path / image),
                     "--mask", str(tmp_path / m), "--out", str(tmp_path / "o.png")])
        err = capsys.readouterr().err
        assert code == 2 and message in err, (image, m, err)
    code = main(["fill", "--checkpoint", str(tmp_path / "nope"), "--image", str(tmp_path / "in.png"),
                 "--mask", str(tmp_path / "mask.png"), "--out", str(tmp_path / "o.png")])
    assert code == 2 and "checkpoint.npz not found" in capsys.readouterr().err

    image = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    _write_png(tmp_path / "noisy.png", image)
    for value, said in ((0, "marks no pixel as missing"), (255, "marks every pixel as missing")):
        _write_png(tmp_path / "flat.png", np.full((28, 28), value, np.uint8))
        code = main(["fill", "--checkpoint", str(tmp_path / "r"), "--image", str(tmp_path / "noisy.png"),
                     "--mask", str(tmp_path / "flat.png"), "--out", str(tmp_path / "o.png")])
        captured = capsys.readouterr()
        assert said in captured.out + captured.err and code == (0 if value == 0 else 2), (value, captured)
    from PIL import Image
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), image)     # no hole: the image unchanged


@pytest.mark.parametrize("args, message", [
    (["--method", "latent", "--prefill", "biharmonic"], "--prefill does not apply to --method latent"),
    (["--method", "glcic", "--prefill", "harmonic"], "invalid choice"),
    (["--method", "latent", "--gan-checkpoint", "nope.npz"], "no such file"),
    (["--mask", "circles"], "unknown mask kind"),
    (["--method", "glcic", "--steps", "5"], "--steps does not apply to --method glcic"),
    (["--phases", "1", "2", "3"], "--phases does not apply to --method context-encoder"),
    (["--method", "context-encoder-l2", "--adv-weight", "0.1"], "--adv-weight does not apply"),
    (["--method", "latent", "--optimizer", "adadelta"], "--optimizer does not apply"),
    (["--gan-checkpoint", "x.npz"], "--gan-checkpoint does not apply"),
    (["--steps", "0"], "--steps must be a positive integer, got 0"),
    (["--batch-size", "-4"], "--batch-size must be a positive integer"),
    (["--width", "0"], "--width must be a positive integer"),
    (["--batch-size", "161"], "--batch-size 161 is larger than the 160 training images of lfw"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--lr-d", "nan"], "--lr-d must be a positive number"),
    (["--adv-weight", "1"], "--adv-weight must be in [0, 1) for context-encoder"),
    (["--method", "glcic", "--adv-weight", "-0.1"], "--adv-weight must be in [0, inf) for glcic"),
    (["--method", "glcic", "--phases", "-1", "2", "2"], "--phases must be three step counts >= 0"),
    (["--method", "glcic", "--phases", "0", "0", "0"], "not all 0"),
    (["--method", "latent", "--latent-steps", "0"], "--latent-steps must be a positive integer"),
    (["--method", "latent", "--latent-lambda", "-5"], "--latent-lambda must be >= 0"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--name", "../escape"], "must be a plain directory name"),
])
def test_train_rejects_bad_arguments(tmp_path, capsys, args, message):
    from npgan.inpaint.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "lfw", "--runs-dir", str(tmp_path), "--no-progress"] + args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())                                          # nothing written


def test_natural_crops_come_from_different_photos():
    from npgan.data.inpainting import TEST_PHOTOS, TRAIN_PHOTOS, load_inpaint_data
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    data = load_inpaint_data("natural", n_train_crops=50, n_test_crops=20, verbose=False)
    assert data.train.shape == (50, 3, 32, 32) and data.test.shape == (20, 3, 32, 32) and data.hole == 16
    assert data.train.dtype == np.uint8 and data.train.std() > 10
    lfw = load_inpaint_data("lfw", verbose=False)
    assert lfw.train.shape == (160, 1, 28, 28) and lfw.test.shape == (20, 1, 28, 28)


def test_latent_run_from_a_training_checkpoint_of_another_width(tmp_path):
    """`--gan-checkpoint` takes a `python -m npgan.train` checkpoint whatever its widths and z size
    (the main job's DCGAN is 64 wide, the latent default 32): the run keeps its exact weights."""
    from npgan.checkpoint import save_checkpoint
    from npgan.inpaint.cli import main
    from npgan.gan.inpainting.runs import load_run
    from npgan.optim import Adam

    G, D = dcgan.Generator(z_dim=6, width=8), dcgan.Discriminator(width=8)
    ckpt = tmp_path / "dcgan.npz"
    save_checkpoint(ckpt, G=G, D=D, opt_G=Adam(G.parameters()), opt_D=Adam(D.parameters()), step=1,
                    config={"model": "dcgan"}, rng_state=backend.get_rng_state())
    assert main(["train", "--dataset", "lfw", "--method", "latent", "--gan-checkpoint", str(ckpt),
                 "--latent-steps", "2", "--runs-dir", str(tmp_path), "--name", "run", "--no-progress"]) == 0
    cfg, models = load_run(tmp_path / "run")
    assert (cfg.z_dim, cfg.width) == (6, 8)
    for mine, theirs in ((models["G"], G), (models["D"], D)):
        for key, value in theirs.state_dict().items():
            np.testing.assert_array_equal(backend.asnumpy(mine.state_dict()[key]), backend.asnumpy(value))


def test_eval_pictures_examples_spread_over_the_set(tmp_path):
    """The pictured examples come from across the evaluated images (a class-ordered test set must
    not show one class), and a label shared by two runs keeps the first run's fills."""
    from npgan.gan.inpainting.evaluate import write_outputs
    n = 30
    x = np.broadcast_to(np.linspace(-1, 1, n, dtype=np.float32)[:, None, None, None], (n, 1, 28, 28)).copy()
    m = centre_masks(n, 28)
    fills = {("A", "run1"): x, ("A", "run2"): -x, ("mean fill", "-"): mean_fill(x, m)}
    rows = [{"method": label, "run": run, **summarise(image_metrics(f, x, m)), "train_s": None, "fill_s": 0.0}
            for (label, run), f in fills.items()]
    write_outputs(rows, {"dataset": "d", "mask": "centre", "n": n, "images": x, "masks": m, "fills": fills}, tmp_path)
    shown = np.load(tmp_path / "eval_examples.npz")
    values = shown["images"][:, 0, 0, 0]
    assert len(values) == 10 and values[0] == -1 and values[-1] == 1 and np.all(np.diff(values) > 0)
    np.testing.assert_array_equal(shown["fill/A"], shown["images"])
    assert (tmp_path / "eval_panel.png").is_file()


def test_run_labels_name_what_differs_from_the_defaults():
    from npgan.gan.inpainting.runs import default_config
    assert default_config("context-encoder", "mnist").label == "Context Encoder (L2 + adv)"
    assert default_config("context-encoder", "mnist", adv_weight=0.01).label.endswith(", adv weight 0.01")
    assert default_config("glcic", "natural", prefill="biharmonic").label == "GLCIC, biharmonic prefill"
    assert default_config("context-encoder-l2", "mnist").label == "Context Encoder (L2 only)"
    assert (default_config("glcic", "natural", prefill="biharmonic", phases=(1400, 0, 0), width=32).label
            == "GLCIC, biharmonic prefill, phases 1400/0/0, width 32")
    assert (default_config("context-encoder-l2", "fashion-mnist", mask="mixed", seed=1).label
            == "Context Encoder (L2 only), mixed holes, seed 1")
    assert default_config("latent", "natural", steps=8000, optimizer="adadelta").label.endswith(", 8000 steps, adadelta")
    # settings a method does not use never show: GLCIC runs phases, the Context Encoder steps
    assert default_config("glcic", "mnist", steps=99).label == "GLCIC"
    assert default_config("context-encoder-l2", "mnist", phases=(1, 1, 1)).label == "Context Encoder (L2 only)"
    # every run of a sweep gets its own label, so eval's pictures keep one example row per run
    sweep = [default_config("glcic", "natural", adv_weight=a, width=w) for a in (0.0, 1e-4, 4e-4) for w in (16, 32)]
    assert len({c.label for c in sweep}) == len(sweep)


def test_diverging_training_stops_with_exit_3_and_keeps_the_earlier_run(tmp_path, capsys):
    from npgan.inpaint.cli import main

    common = ["train", "--dataset", "lfw", "--method", "context-encoder", "--batch-size", "8", "--width", "4",
              "--runs-dir", str(tmp_path), "--name", "run", "--no-progress", "--steps", "3"]
    assert main(common) == 0
    before = {f.name: f.read_bytes() for f in (tmp_path / "run").iterdir()}
    capsys.readouterr()
    with np.errstate(all="ignore"):
        assert main(common + ["--lr", "1e30", "--overwrite"]) == 3
    err = capsys.readouterr().err
    assert "training diverged at step 2" in err and "NaN or Inf" in err and "--lr" in err
    assert {f.name: f.read_bytes() for f in (tmp_path / "run").iterdir()} == before


def test_ctrl_c_saves_the_run_trained_so_far(tmp_path):
    import signal
    import subprocess
    import sys

    from npgan.gan.inpainting.runs import load_run

    proc = subprocess.Popen([sys.executable, "-m", "npgan.inpaint", "train", "--dataset", "lfw", "--method",
                             "context-encoder-l2", "--steps", "100000", "--batch-size", "4", "--width", "4",
                             "--runs-dir", str(tmp_path), "--name", "run", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)              # this checkout's npgan
    try:
        for line in proc.stdout:                                                 # a log line every 250 steps
            if line.startswith("step 250:"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    done = int(re.search(r"interrupted after (\d+) of 100000 steps: saved", out).group(1))
    assert 250 <= done < 100000
    assert json.loads((tmp_path / "run" / "train_time.json").read_text())["steps"] == done
    cfg, models = load_run(tmp_path / "run")                                     # a complete, usable run
    assert cfg.method == "context-encoder-l2" and (tmp_path / "run" / "samples.png").is_file()
    assert cfg.steps == done and f"{done} steps" in cfg.label                    # what it holds, not the plan


def _tiny_run(tmp_path, name="r", *extra):
    from npgan.inpaint.cli import main
    assert main(["train", "--dataset", "lfw", "--method", "context-encoder-l2", "--steps", "1", "--batch-size", "4",
                 "--width", "4", "--runs-dir", str(tmp_path), "--name", name, "--no-progress", *extra]) == 0
    return tmp_path / name


def test_train_keeps_an_existing_run_unless_told_to_replace_it(tmp_path, capsys):
    """A second `train` under a name that holds a run is refused (the first run is kept byte for
    byte); with --overwrite the new run replaces it, and the old run's eval outputs go with it."""
    from npgan.inpaint.cli import main
    from npgan.gan.inpainting.runs import load_run

    run = _tiny_run(tmp_path)
    (run / "metrics.json").write_text("{}")                                      # as `eval` leaves it
    before = {f.name: f.read_bytes() for f in run.iterdir()}
    with pytest.raises(SystemExit) as exit_info:
        _tiny_run(tmp_path, "r", "--seed", "1")
    assert exit_info.value.code == 2 and "already holds a run; pass --overwrite" in capsys.readouterr().err
    assert {f.name: f.read_bytes() for f in run.iterdir()} == before
    _tiny_run(tmp_path, "r", "--seed", "1", "--overwrite")
    assert load_run(run)[0].seed == 1 and not (run / "metrics.json").exists()


def test_trained_config_names_the_steps_a_stopped_run_holds():
    from npgan.gan.inpainting.runs import default_config
    from npgan.gan.inpainting.train import trained_config

    glcic = default_config("glcic", "lfw", phases=(10, 5, 20))
    assert trained_config(glcic, 35).phases == (10, 5, 20)
    assert trained_config(glcic, 12).phases == (10, 2, 0)
    assert trained_config(glcic, 12).label == "GLCIC, phases 10/2/0"
    assert trained_config(default_config("context-encoder", "lfw"), 69).label == "Context Encoder (L2 + adv), 69 steps"
    loaded = default_config("latent", "mnist", gan_checkpoint="g.npz")
    assert trained_config(loaded, 0) == loaded                                   # its DCGAN was loaded, not trained


def test_damaged_or_foreign_checkpoints_give_one_line_errors(tmp_path, capsys):
    """A truncated checkpoint, a text file in its place, or a `npgan.train` checkpoint given to
    `inpaint eval`/`fill` (and the reverse to `npgan.sample`/`npgan.evaluate`): exit 2 naming the file."""
    from npgan.checkpoint import save_checkpoint
    from npgan.evaluate import main as evaluate_main
    from npgan.inpaint.cli import main
    from npgan.optim import Adam
    from npgan.sample import main as sample_main

    run = _tiny_run(tmp_path)
    data = (run / "checkpoint.npz").read_bytes()
    G, D = dcgan.Generator(z_dim=4, width=2), dcgan.Discriminator(width=2)
    gan = tmp_path / "gan"
    gan.mkdir()
    save_checkpoint(gan / "checkpoint.npz", G=G, D=D, opt_G=Adam(G.parameters()), opt_D=Adam(D.parameters()),
                    step=1, config={"model": "dcgan", "dataset": "mnist"}, rng_state=backend.get_rng_state())
    _write_png(tmp_path / "in.png", np.zeros((28, 28), np.uint8))
    mask = np.zeros((28, 28), np.uint8)
    mask[10:18, 10:18] = 255
    _write_png(tmp_path / "mask.png", mask)
    damaged = {"truncated": data[:len(data) // 2], "text": b"hello, not a checkpoint\n"}
    for kind, content in damaged.items():
        (run / "checkpoint.npz").write_bytes(content)
        expected = "damaged or truncated" if kind == "truncated" else "not an .npz checkpoint"
        with pytest.raises(SystemExit) as exit_info:
            main(["eval", str(run), "--n", "2"])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and expected in err and "checkpoint.npz" in err, err
        code = main(["fill", "--checkpoint", str(run), "--image", str(tmp_path / "in.png"),
                     "--mask", str(tmp_path / "mask.png"), "--out", str(tmp_path / "o.png")])
        assert code == 2 and expected in capsys.readouterr().err
        for cli in (sample_main, evaluate_main):
            with pytest.raises(SystemExit) as exit_info:
                cli([str(run), "--n", "2"])
            assert exit_info.value.code == 2 and expected in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(gan), "--n", "2"])
    assert exit_info.value.code == 2 and "not a checkpoint of `python -m npgan.inpaint train`" in capsys.readouterr().err
    (run / "checkpoint.npz").write_bytes(data)
    with pytest.raises(SystemExit) as exit_info:
        sample_main([str(run), "--n", "2"])
    assert exit_info.value.code == 2 and "not a `python -m npgan.train` checkpoint" in capsys.readouterr().err


def test_fill_reads_the_checkpoint_file_it_is_given_and_checks_out(tmp_path, capsys):
    """`--checkpoint some/file.npz` loads that file (not some/checkpoint.npz); an --out that cannot
    become an image is refused before any work; a 16-bit grey PNG reads as its 8-bit twin."""
    from PIL import Image

    from npgan.inpaint.cli import main
    from npgan.gan.inpainting.fill import read_image

    run = _tiny_run(tmp_path)
    kept = tmp_path / "kept" / "ce_backup.npz"
    kept.parent.mkdir()
    (run / "checkpoint.npz").rename(kept)
    image = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    _write_png(tmp_path / "in.png", image)
    mask = np.zeros((28, 28), np.uint8)
    mask[10:18, 10:18] = 255
    _write_png(tmp_path / "mask.png", mask)
    args = ["fill", "--checkpoint", str(kept), "--image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png")]
    assert main(args + ["--out", str(tmp_path / "o.png")]) == 0
    assert f"from {kept}" in capsys.readouterr().out
    for out, message in (("kept", "is a directory"), ("o.npy", "unknown image extension"),
                         ("noext", "unknown image extension")):
        assert main(args + ["--out", str(tmp_path / out)]) == 2 and message in capsys.readouterr().err

    Image.fromarray(image.astype(np.uint16) * 257).save(tmp_path / "deep.png")   # 16-bit grey, same picture
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    np.testing.assert_allclose(read_image(tmp_path / "deep.png", 1, 28), read_image(tmp_path / "in.png", 1, 28),
                               atol=1e-6)


def test_eval_and_the_other_commands_reject_bad_arguments(tmp_path, capsys, monkeypatch):
    from npgan.inpaint.cli import main
    from npgan.sample import main as sample_main

    run = _tiny_run(tmp_path)
    for args, message in ((["eval", str(run), "--mask", "blob"], "unknown mask kind"),
                          (["eval", str(run), "--latent-steps", "0"], "--latent-steps must be a positive integer"),
                          (["panel", str(run), "--out", str(tmp_path / "p.png"), "--n", "0"], "--n must be")):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err, args
    with pytest.raises(SystemExit) as exit_info:
        sample_main([str(run), "--out", str(tmp_path / "s.png")])
    assert exit_info.value.code == 2 and "must end in .npy" in capsys.readouterr().err
    monkeypatch.setenv("NPGAN_BACKEND", "bogus")
    monkeypatch.setattr(backend, "_current", None)                               # as in a fresh process
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(run), "--n", "2"])
    assert exit_info.value.code == 2 and "unknown backend 'bogus'" in capsys.readouterr().err


def test_a_latent_run_refuses_a_dcgan_of_another_data_set(tmp_path, capsys):
    from npgan.checkpoint import save_checkpoint
    from npgan.inpaint.cli import main
    from npgan.optim import Adam

    G, D = dcgan.Generator(z_dim=4, width=2), dcgan.Discriminator(width=2)
    save_checkpoint(tmp_path / "mnist.npz", G=G, D=D, opt_G=Adam(G.parameters()), opt_D=Adam(D.parameters()),
                    step=1, config={"model": "dcgan", "dataset": "mnist"}, rng_state=backend.get_rng_state())
    command = ["train", "--dataset", "lfw", "--method", "latent", "--gan-checkpoint", str(tmp_path / "mnist.npz"),
               "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    for extra, message in (([], "holds a DCGAN trained on mnist; it cannot inpaint lfw"),
                           (["--steps", "5"], "--steps cannot be combined with --gan-checkpoint")):
        with pytest.raises(SystemExit) as exit_info:
            main(command + extra)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_the_latent_methods_dcgan_gets_the_training_health_checks(tmp_path, monkeypatch, capsys):
    """A DCGAN whose second ReLU is dead from the start: warned once, at the first log point."""
    import npgan.gan.inpainting.train as inpaint_train
    from npgan.inpaint.cli import main

    build = inpaint_train.build_models

    def dead_generator(cfg):
        models = build(cfg)
        models["G"][5].bias.data[...] = -100
        return models
    monkeypatch.setattr(inpaint_train, "build_models", dead_generator)
    assert main(["train", "--dataset", "lfw", "--method", "latent", "--steps", "30", "--batch-size", "4",
                 "--width", "4", "--latent-steps", "2", "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning at step 25: 100% of the 4 channels of G.6 (ReLU) output 0") == 1, err


# ---- data, eval size and config.json --------------------------------------------------------
def _tiny_idx_folder(folder, n_train=16, n_test=12):
    """The four MNIST-named IDX files with random digits (Fashion-MNIST uses the same names)."""
    from npgan.data import write_idx
    from npgan.data.mnist import FILES
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for key, stem in FILES.items():
        n = n_train if key.startswith("train") else n_test
        shape = (n, 28, 28) if key.endswith("images") else (n,)
        write_idx(folder / f"{stem}.gz", rng.integers(0, 256 if key.endswith("images") else 10, shape, dtype=np.uint8))


def test_eval_uses_every_held_out_image_when_there_are_fewer_than_n_and_says_so(tmp_path, monkeypatch, capsys):
    """The MNIST subset holds out 500 images, fewer than --n's default of 1000: the help says
    what the default is, and the output that all of the held-out images were used."""
    from npgan.inpaint.cli import build_parser, main

    _tiny_idx_folder(tmp_path / "data" / "mnist", n_test=12)
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path / "data"))
    run = _tiny_run(tmp_path, "r", "--dataset", "mnist")
    capsys.readouterr()
    assert main(["eval", str(run), "--no-baselines"]) == 0
    out = capsys.readouterr().out
    assert "12 held-out images" in out and "note: mnist holds out only 12 images, so all of them were used (--n 1000)" in out
    assert json.loads((run / "metrics.json").read_text())["n"] == 12
    assert main(["eval", str(run), "--no-baselines", "--n", "5"]) == 0
    assert "note:" not in capsys.readouterr().out
    eval_parser = build_parser()._subparsers._group_actions[0].choices["eval"]
    assert "default: 1000, or all held-out images if fewer" in " ".join(eval_parser.format_help().split())


def test_a_npgan_data_folder_without_the_data_set_exits_2(tmp_path, monkeypatch, capsys):
    """$NPGAN_DATA names where MNIST and Fashion-MNIST are: train and eval stop there (exit 2, the
    folder and the files named) instead of inpainting other data."""
    from npgan.inpaint.cli import main

    _tiny_idx_folder(tmp_path / "data" / "fashion-mnist")
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path / "data"))
    run = _tiny_run(tmp_path, "r", "--dataset", "fashion-mnist")
    (tmp_path / "data" / "fashion-mnist").rename(tmp_path / "data" / "moved")
    for args in (["train", "--dataset", "fashion-mnist", "--method", "context-encoder-l2", "--steps", "1",
                  "--runs-dir", str(tmp_path / "new"), "--no-progress"], ["eval", str(run), "--n", "2"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "Fashion-MNIST not found where $NPGAN_DATA points" in err, err
        assert f"{tmp_path / 'data' / 'fashion-mnist'} (no such folder)" in err and "train-images-idx3-ubyte" in err
    assert not (tmp_path / "new").exists()


def test_config_json_records_only_what_the_method_uses(tmp_path):
    """A Context Encoder's config.json has no GLCIC phases or latent-search settings (and so on for
    each method); such a config and an older one with every field both load to the same Config."""
    import dataclasses

    from npgan.checkpoint import atomic_savez
    from npgan.gan.inpainting.runs import Config, build_models, default_config, load_run, save_run

    run = _tiny_run(tmp_path)
    saved = json.loads((run / "config.json").read_text())
    assert saved["method"] == "context-encoder-l2" and saved["steps"] == 1 and saved["width"] == 4
    for unused in ("phases", "patch", "z_dim", "latent_steps", "latent_lr", "latent_lambda", "gan_checkpoint",
                   "adv_weight", "lr_d"):
        assert unused not in saved, unused
    cfg, _ = load_run(run)
    assert cfg == Config.from_dict(saved) and cfg.steps == 1 and cfg.phases == default_config("glcic", "lfw").phases

    keys = {
        "context-encoder": ({"steps", "adv_weight", "lr_d", "prefill"}, {"phases", "patch", "latent_steps", "z_dim"}),
        "glcic": ({"phases", "patch", "adv_weight", "prefill"}, {"steps", "latent_steps", "latent_lambda", "z_dim"}),
        "latent": ({"steps", "z_dim", "latent_steps", "latent_lr", "latent_lambda", "gan_checkpoint"},
                   {"phases", "patch", "prefill", "fill", "optimizer", "adv_weight"}),
    }
    for method, (used, unused) in keys.items():
        cfg = default_config(method, "lfw", seed=2, width=4, size=28, hole=14)
        stored = json.loads(cfg.to_json())
        assert used <= set(stored) and not unused & set(stored), method
        assert Config.from_dict(stored) == cfg, method
    loaded_gan = json.loads(default_config("latent", "lfw", gan_checkpoint="g.npz").to_json())
    assert not {"steps", "batch_size", "lr_g", "lr_d"} & set(loaded_gan) and loaded_gan["gan_checkpoint"] == "g.npz"

    # a run written before: every field in config.json and in the checkpoint's meta
    old = dataclasses.replace(default_config("context-encoder", "lfw", steps=7, width=4), fill=(0.1,))
    models = build_models(old)
    arrays = {f"{role}.{k}": v for role, m in models.items() for k, v in m.state_dict().items()}
    every_field = json.dumps(dataclasses.asdict(old), indent=2)
    assert '"phases"' in every_field and '"latent_lambda"' in every_field
    (tmp_path / "old").mkdir()
    atomic_savez(tmp_path / "old" / "checkpoint.npz", dict(arrays, meta=np.array(every_field)))
    (tmp_path / "old" / "config.json").write_text(every_field + "\n")
    assert load_run(tmp_path / "old")[0] == old
    assert Config.from_dict(json.loads((tmp_path / "old" / "config.json").read_text())) == old
    save_run(tmp_path / "again", old, models)                          # saved anew: only what it uses
    assert "phases" not in json.loads((tmp_path / "again" / "config.json").read_text())
    assert load_run(tmp_path / "again")[0] == old
