"""Yang et al. (2017): the content network (a Context Encoder with a Linear bottleneck and ELU)
and the feature networks of its texture term."""
import numpy as np
import pytest

from npgan import backend
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
