"""The inpainting methods' results, pinned: a few seeded steps of every method that trains
weights, and fills of two held-out images, end with the numbers recorded below.

Each method trains on a tiny set of random images (NumPy, float32, seed 0): the Context Encoder
with its adversary (centre holes), the Context Encoder on L2 alone with the biharmonic prefill
(32x32 RGB, rectangular holes), GLCIC's three phases with Adadelta (mixed holes), and the DCGAN
that latent optimisation searches. Then Yeh et al.'s latent optimisation fills two held-out
images (its codes and its loss at the first and last step are pinned too), and so does the
GLCIC network, each pasted in and Poisson-blended.

Per network the test records the float64 sum and sum of squares of its ``state_dict`` (weights
and BatchNorm statistics) and its first, middle and last entries; per fill the same of the
pixels it put in the holes. The values are recorded to 7 significant digits and compared to a
relative 1e-5, well above float rounding.
"""
import numpy as np
import pytest

from npgan import backend
from npgan.data import scale_images
from npgan.data.inpainting import InpaintData
from npgan.gan.inpainting.latent import latent_inpaint, optimise_latent
from npgan.gan.inpainting.runs import default_config, network_fill
from npgan.gan.inpainting.train import train_completion, train_dcgan
from npgan.inpainting_ops.masks import centre_masks

# (sum, sum of squares, first, middle and last entry) of each network's state_dict laid end to
# end, of the latent codes and losses, and of each fill's hole pixels
PINNED = {
    "context-encoder net": (59.59314, 175.9148, 0.01290785, 0.1029271, 0.7301482),
    "context-encoder D": (11.07285, 9.470484, 0.007038988, 0.009747388, 0.3874292),
    "context-encoder-l2 net": (124.3168, 206.8627, -0.01668548, -0.1606286, 0.8108241),
    "glcic net": (175.3789, 160.736, -0.005887371, 0.001683631, 0.6600211),
    "glcic D": (24.98449, 32.57325, -0.011656, -0.006080466, 0.4304756),
    "latent G": (685.6276, 607.3942, 0.0327336, -0.007337246, 0.7301203),
    "latent D": (11.99353, 9.734153, -0.02579323, -0.0213972, 0.3874232),
    "latent codes": (-3.71731, 13.73013, 0.2746454, -0.8530971, -0.5922366),
    "latent losses": (45.75034, 1046.547, 22.87531, 22.87504, 22.87504),
    "latent fill": (0.2040324, 0.0001200519, 0.000790744, 0.0004898556, 0.0014068),
    "latent fill, blended": (17.89908, 11.21408, -0.4037082, -0.1409697, 0.03083498),
    "glcic fill": (-0.382788, 0.0004757766, -0.0008852169, -0.0008852173, -0.001452055),
    "glcic fill, blended": (17.89874, 11.2165, -0.4041215, -0.1412219, 0.02969888),
}

RUNS = {
    "context-encoder": dict(size=28, channels=1, mask="centre", steps=3),
    "context-encoder-l2": dict(size=32, channels=3, mask="rect", steps=2, prefill="biharmonic"),
    "glcic": dict(size=28, channels=1, mask="mixed", phases=(1, 1, 2), optimizer="adadelta", lr_g=1.0, lr_d=0.1),
    "latent": dict(size=28, channels=1, mask="centre", steps=3, z_dim=8),
}


def tiny_data(size, channels, seed=0):
    """24 training and 4 held-out random uint8 images."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (28, channels, size, size), dtype=np.uint8)
    return InpaintData("tiny", "random pixels", images[:24], images[24:], hole=size // 2)


def statistics(arrays):
    """(sum, sum of squares, first, middle, last entry) of the arrays laid end to end, in float64."""
    flat = np.concatenate([np.asarray(backend.asnumpy(a), np.float64).ravel() for a in arrays])
    return (flat.sum(), (flat ** 2).sum(), flat[0], flat[len(flat) // 2], flat[-1])


def hole(images, masks):
    """The pixels of ``images`` (N, C, H, W) in the holes of ``masks`` (N, 1, H, W), on the host."""
    images, masks = backend.asnumpy(images), backend.asnumpy(masks)
    return images[np.broadcast_to(masks, images.shape) > 0]


def train_method(method):
    """(config, data, models) after a few steps of ``method`` on tiny data."""
    options = dict(RUNS[method])
    size, channels = options.pop("size"), options.pop("channels")
    data = tiny_data(size, channels)
    cfg = default_config(method, "tiny", batch_size=4, width=4, channels=channels, size=size, hole=data.hole,
                         fill=tuple(float(v) for v in data.mean_pixel()), **options)
    loop = train_dcgan if method == "latent" else train_completion
    _, (done, steps), cfg, models = loop(cfg, data, progress=False)
    assert done == steps
    return cfg, data, models


def results():
    """Every pinned quantity by name."""
    out = {}
    trained = {}
    for method in RUNS:
        cfg, data, models = train_method(method)
        trained[method] = cfg, data, models
        for role, net in models.items():
            out[f"{method} {role}"] = statistics(net.state_dict().values())
    cfg, data, models = trained["latent"]
    x = backend.to_device(scale_images(data.test[:2]))
    m = backend.to_device(centre_masks(2, cfg.size, cfg.hole))
    z, losses = optimise_latent(models["G"], models["D"], x, m, steps=5, z_dim=cfg.z_dim)
    out["latent codes"], out["latent losses"] = statistics([z]), statistics([np.array(losses)])
    for blend in (False, True):
        filled = latent_inpaint(models["G"], models["D"], x, m, blend=blend, steps=5, z_dim=cfg.z_dim)
        out[f"latent fill{', blended' if blend else ''}"] = statistics([hole(filled, m)])
    cfg, data, models = trained["glcic"]
    for blend in (False, True):
        filled = network_fill(models["net"], cfg, x, m, blend=blend)
        out[f"glcic fill{', blended' if blend else ''}"] = statistics([hole(filled, m)])
    return out


def test_each_inpainting_method_trains_and_fills_as_pinned():
    backend.use("numpy")
    got = results()
    assert sorted(got) == sorted(PINNED)
    for name, values in PINNED.items():
        assert got[name] == pytest.approx(values, rel=1e-5, abs=1e-9), name
