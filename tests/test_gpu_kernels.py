"""npgan's CUDA kernels against the NumPy path on NaN and Inf: a NaN must surface in the same
entries on both, or the NaN guard names another layer on the GPU (it would see the NaN later,
or never). Runs where the kernels do: NPGAN_BACKEND=cupy (benchmarks/gpu_check.sh)."""
import numpy as np
import pytest

from npgan import backend, functional as F, kernels, optim
from npgan.layers import Parameter


@pytest.fixture(autouse=True)
def _kernels_only():
    if not kernels.available(backend.xp()):
        pytest.skip("npgan's CUDA kernels run only on CuPy (NPGAN_BACKEND=cupy, NPGAN_KERNELS unset)")


def poisoned(shape, seed=0):
    """float32 values with a NaN, +Inf and -Inf in known places, host array."""
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    flat = a.reshape(-1)
    flat[[0, 3, 7]] = [np.nan, np.inf, -np.inf]
    return a


def same_nonfinite(device_result, host_result, what):
    got, want = backend.asnumpy(device_result), np.asarray(host_result)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN")
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=f"{what}: Inf")
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-5, err_msg=what)


def both(fn, *host_args):
    """fn on the host arrays (NumPy path) and on their device copies (kernel path)."""
    dev = [backend.to_device(a) if isinstance(a, np.ndarray) else a for a in host_args]
    return fn(*dev), fn(*host_args)


@pytest.mark.parametrize("shape", [(4, 8), (2, 8, 5, 5)])
def test_activations_pass_nan_like_numpy(shape):
    x, dout = poisoned(shape), poisoned(shape, seed=1)
    for name, fwd, bwd in (("relu", F.relu_forward, F.relu_backward),
                           ("leaky_relu", lambda a: F.leaky_relu_forward(a, 0.2), F.leaky_relu_backward)):
        (y_dev, c_dev), (y_host, c_host) = both(fwd, x)
        same_nonfinite(y_dev, y_host, f"{name} forward")
        same_nonfinite(bwd(backend.to_device(dout), c_dev), bwd(dout, c_host), f"{name} backward")


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_passes_nan_like_numpy(training):
    x, dout = poisoned((6, 4, 3, 3)), poisoned((6, 4, 3, 3), seed=2)
    gamma, beta = np.ones(4, np.float32), np.zeros(4, np.float32)

    def run(x, gamma, beta, mean, var, dout):
        y, cache = F.batchnorm_forward(x, gamma, beta, mean, var, training)
        return y, F.batchnorm_backward(dout, cache)[0], mean, var
    stats = [np.zeros(4, np.float32), np.ones(4, np.float32)]
    dev = run(*[backend.to_device(a) for a in (x, gamma, beta, *stats, dout)])
    host = run(x, gamma, beta, *[s.copy() for s in stats], dout)
    for what, d, h in zip(("output", "dx", "running_mean", "running_var"), dev, host):
        same_nonfinite(d, h, f"batchnorm ({'train' if training else 'eval'}) {what}")


def test_convolutions_and_products_pass_nan_like_numpy():
    x, w = poisoned((2, 3, 6, 6)), np.random.default_rng(3).standard_normal((4, 3, 3, 3)).astype(np.float32)
    (y_dev, c_dev), (y_host, c_host) = both(lambda a, b: F.conv2d_forward(a, b, None, 1, 1), x, w)
    same_nonfinite(y_dev, y_host, "conv2d forward")
    dout = poisoned(tuple(y_host.shape), seed=4)
    for i, what in enumerate(("dx", "dw")):
        same_nonfinite(F.conv2d_backward(backend.to_device(dout), c_dev)[i], F.conv2d_backward(dout, c_host)[i],
                       f"conv2d {what}")
    (t_dev, _), (t_host, _) = both(lambda a, b: F.conv_transpose2d_forward(a, b, None, 2, 1), poisoned((2, 4, 3, 3)),
                                   np.random.default_rng(5).standard_normal((4, 2, 4, 4)).astype(np.float32))
    same_nonfinite(t_dev, t_host, "conv_transpose2d forward")


def test_adam_update_passes_nan_like_numpy():
    results = []
    for to in (backend.to_device, np.asarray):
        p = Parameter(to(np.ones(8, np.float32)))
        p.grad[...] = to(poisoned((8,)))
        opt = optim.Adam([p], lr=1e-3)
        opt.step()
        results.append(p.data)
    same_nonfinite(results[0], results[1], "adam")
