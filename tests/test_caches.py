"""Every functional forward returns its cache as the named tuple its docstring names, with the
documented fields, and the backward reads it. The same file runs on every path: NumPy here,
the CuPy kernels with ``NPGAN_BACKEND=cupy``, CuPy's generic code with ``NPGAN_KERNELS=0`` too."""
import numpy as np
import pytest

from npgan import backend
from npgan import functional as F


def randn(*shape, seed=0):
    return backend.to_device(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def channels_last(a):
    """The same values stored (N, H, W, C), shaped (N, C, H, W): the layout a conv's output has."""
    return backend.xp().ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def stats(c):
    xp = backend.xp()
    return xp.zeros(c, dtype=xp.float32), xp.ones(c, dtype=xp.float32)


# name: (input, forward, its other arguments, backward, cache type, documented fields)
CASES = {
    "linear": lambda: (randn(4, 5), F.linear_forward, (randn(3, 5), randn(3)), F.linear_backward,
                       F.LinearCache, ("x", "w", "has_bias")),
    "conv2d": lambda: (randn(2, 3, 6, 6), F.conv2d_forward, (randn(4, 3, 3, 3), randn(4), 2, 1), F.conv2d_backward,
                       F.ConvCache, ("x_shape", "w", "cols", "has_bias", "stride", "padding", "dilation")),
    "conv_transpose2d": lambda: (channels_last(randn(2, 3, 4, 4)), F.conv_transpose2d_forward,
                                 (randn(3, 2, 4, 4), None, 2, 1, 0, 1), F.conv_transpose2d_backward,
                                 F.ConvTransposeCache,
                                 ("x_rows", "x_shape", "w", "has_bias", "stride", "padding", "dilation")),
    "batchnorm2d training, channels-last": lambda: (
        channels_last(randn(4, 3, 5, 5)), F.batchnorm_forward, (randn(3), randn(3), *stats(3), True),
        F.batchnorm_backward, F.BatchNormCache, ("x", "mean", "inv_std", "gamma", "training")),
    "batchnorm1d training, (N, C, L), no affine": lambda: (
        randn(4, 3, 5), F.batchnorm_forward, (None, None, *stats(3), True),
        F.batchnorm_backward, F.BatchNormCache, ("x", "mean", "inv_std", "gamma", "training")),
    "batchnorm1d eval": lambda: (
        randn(4, 3), F.batchnorm_forward, (randn(3), randn(3), *stats(3), False),
        F.batchnorm_backward, F.BatchNormCache, ("x", "mean", "inv_std", "gamma", "training")),
    "relu": lambda: (channels_last(randn(2, 3, 4, 4)), F.relu_forward, (), F.relu_backward, F.ReluCache, ("out",)),
    "leaky_relu": lambda: (channels_last(randn(2, 3, 4, 4)), F.leaky_relu_forward, (0.2,), F.leaky_relu_backward,
                           F.LeakyReluCache, ("x", "negative_slope")),
    "elu": lambda: (randn(3, 4), F.elu_forward, (1.0,), F.elu_backward, F.EluCache, ("x", "neg", "alpha")),
    "tanh": lambda: (randn(3, 4), F.tanh_forward, (), F.tanh_backward, F.TanhCache, ("out",)),
    "sigmoid": lambda: (randn(3, 4), F.sigmoid_forward, (), F.sigmoid_backward, F.SigmoidCache, ("out",)),
    "max_pool2d": lambda: (randn(2, 3, 6, 6), F.max_pool2d_forward, (2, 2, 1), F.max_pool2d_backward,
                           F.MaxPoolCache, ("arg", "cols_shape", "x_shape", "kernel_size", "stride", "padding")),
    "avg_pool2d": lambda: (randn(2, 3, 6, 6), F.avg_pool2d_forward, (3, 2, 1), F.avg_pool2d_backward,
                           F.AvgPoolCache, ("x_shape", "kernel_size", "stride", "padding")),
    "upsample_nearest": lambda: (randn(2, 3, 4, 4), F.upsample_nearest_forward, (2,), F.upsample_nearest_backward,
                                 F.UpsampleCache, ("scale",)),
    "channelwise_linear": lambda: (randn(2, 3, 4, 4), F.channelwise_linear_forward, (randn(3, 5, 16), randn(3, 5)),
                                   F.channelwise_linear_backward, F.ChannelwiseLinearCache,
                                   ("x_c", "x_shape", "w", "has_bias")),
    "instance_norm": lambda: (channels_last(randn(2, 3, 4, 4)), F.instance_norm_forward, (randn(3), randn(3), 1e-5),
                              F.instance_norm_backward, F.InstanceNormCache, ("xhat", "inv_std", "gamma")),
    "reflection_pad": lambda: (randn(2, 3, 4, 5), F.reflection_pad_forward, ((1, 2, 3, 0),),
                               F.reflection_pad_backward, F.ReflectionPadCache, ("x_shape", "padding")),
    "minibatch_stddev": lambda: (randn(8, 3, 4, 4), F.minibatch_stddev_forward, (4,), F.minibatch_stddev_backward,
                                 F.MinibatchStdDevCache, ("xc", "std")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_forward_cache_is_its_documented_named_tuple(name):
    x, forward, args, backward, cache_type, fields = CASES[name]()
    out, cache = forward(x, *args)
    assert type(cache) is cache_type, f"{forward.__name__} returned a {type(cache).__name__}"
    assert cache_type._fields == fields
    signature = f"{cache_type.__name__}({', '.join(fields)})"
    assert signature in " ".join(forward.__doc__.split()), f"{forward.__name__}'s docstring should name {signature}"
    grads = backward(randn(*out.shape, seed=1), cache)
    dx = grads[0] if isinstance(grads, tuple) else grads
    assert dx.shape == x.shape and type(dx) is type(x)


def test_cache_fields_hold_what_their_comments_say(xp):
    """The fields the two backends fill alike: BatchNorm's input values, batch mean and 1/std;
    the geometry as pairs; an activation's output or input."""
    x = channels_last(randn(4, 3, 5, 5))
    _, cache = F.batchnorm_forward(x, randn(3), randn(3), *stats(3), True, 0.1, 1e-5)
    host = backend.asnumpy(x).astype(np.float64)
    np.testing.assert_array_equal(backend.asnumpy(cache.x), backend.asnumpy(x))
    np.testing.assert_allclose(backend.asnumpy(cache.mean), host.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(backend.asnumpy(cache.inv_std), 1 / np.sqrt(host.var(axis=(0, 2, 3)) + 1e-5), rtol=1e-4)
    assert cache.training is True and cache.gamma.shape == (3,)

    _, cache = F.conv2d_forward(randn(2, 3, 6, 6), randn(4, 3, 3, 3), None, 2, (1, 0))
    assert (cache.stride, cache.padding, cache.dilation, cache.has_bias) == ((2, 2), (1, 0), (1, 1), False)
    assert cache.cols.shape == (2 * 3 * 2, 3 * 3 * 3)

    out, cache = F.relu_forward(x)
    assert cache.out is out
    out, cache = F.leaky_relu_forward(x, 0.2)
    assert cache.x is x and cache.negative_slope == 0.2


@pytest.mark.parametrize("slope", [0.2, 0.01, 1.0, 0.0, -0.5, 3.0])
def test_leaky_relu_is_its_definition_bit_for_bit(xp, slope):
    """y = x if x > 0 else slope * x and dx = dout if x > 0 else slope * dout, exactly, for
    every slope: NumPy's max(x, slope * x) (slopes in (0, 1]), its slope array (the others) and
    the CuPy kernel all give these bits, signed zeros and infinities included."""
    values = np.array([-np.inf, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.25, np.inf], dtype=np.float32)
    if slope == 0:                                       # -inf * 0 is a NaN, whose bits differ between CPU and GPU
        values = values[np.isfinite(values)]
    host = np.tile(values, (2, 3, 1, 1))                                      # (2, 3, 1, len(values))
    d_host = np.random.default_rng(0).standard_normal(host.shape).astype(np.float32)
    a = np.float32(slope)
    with np.errstate(invalid="ignore"):
        want = np.where(host > 0, host, host * a)
        want_dx = np.where(host > 0, d_host, d_host * a)
    out, cache = F.leaky_relu_forward(backend.to_device(host), slope)
    dx = F.leaky_relu_backward(backend.to_device(d_host), cache)
    assert backend.asnumpy(out).tobytes() == want.tobytes()
    assert backend.asnumpy(dx).tobytes() == want_dx.tobytes()


def test_relu_backward_reads_the_output(xp):
    x = channels_last(randn(2, 3, 4, 4))
    d = randn(2, 3, 4, 4, seed=1)
    out, cache = F.relu_forward(x)
    want = np.where(backend.asnumpy(x) > 0, backend.asnumpy(d), 0)
    np.testing.assert_array_equal(backend.asnumpy(F.relu_backward(d, cache)), want)
