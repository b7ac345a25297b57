"""CUDA-graph capture of a whole training step (CuPy only): replays must train exactly like eager steps."""
import numpy as np
import pytest

from npgan import backend, optim
from npgan.gan import NonSaturating, gan_step
from npgan.models import dcgan


def make_step(batch=8, seed=3, optimizer="adam"):
    backend.seed(seed)
    G, D = dcgan.Generator(), dcgan.Discriminator()
    if optimizer == "adam":
        opt_g = optim.Adam(G.parameters(), lr=dcgan.LR, betas=dcgan.BETAS)
        opt_d = optim.Adam(D.parameters(), lr=dcgan.LR, betas=dcgan.BETAS)
    else:
        opt_g, opt_d = optim.RMSprop(G.parameters(), lr=5e-5), optim.RMSprop(D.parameters(), lr=5e-5)
    real = backend.rng().uniform(-1, 1, size=(batch, 1, 28, 28)).astype(np.float32)

    def step():                                          # the training job's own step
        z = backend.rng().standard_normal((batch, dcgan.Z_DIM), dtype=np.float32)
        return gan_step(G, D, opt_g, opt_d, NonSaturating(), real, z)

    return step, (G, D), (opt_g, opt_d)


def test_captured_step_trains_like_eager_steps():
    _cupy_with_kernels()
    from npgan.graph import CUDAGraphStep
    eager, (G1, D1), _ = make_step()
    for _ in range(6):
        eager_losses = eager()
    captured_fn, (G2, D2), opts = make_step()
    captured = CUDAGraphStep(captured_fn, optimizers=opts, warmup=2)
    for _ in range(4):                                  # 2 eager warm-up steps, capture, 4 replays
        graph_losses = captured()
    assert all(s["step"] == 6 for opt in opts for s in opt.state)
    for a, b in zip(eager_losses.values(), graph_losses.values()):
        np.testing.assert_allclose(backend.asnumpy(a), backend.asnumpy(b), rtol=1e-4, atol=1e-5)
    # A bias feeding BatchNorm has a zero gradient in exact arithmetic; its rounding noise (which
    # differs between CuPy's GEMM and the captured handle's) far exceeds Adam's eps, so Adam moves
    # it by about +-lr in a direction the noise picks. Those biases are left out, as in the parity tests.
    skip = {f"G.{n}" for n in _biases_before_batchnorm(G1)} | {f"D.{n}" for n in _biases_before_batchnorm(D1)}
    for (name, p), (_, q) in zip(_named(G1, "G") + _named(D1, "D"), _named(G2, "G") + _named(D2, "D")):
        if name not in skip:
            np.testing.assert_allclose(backend.asnumpy(p.data), backend.asnumpy(q.data), rtol=1e-4, atol=1e-5,
                                       err_msg=name)


def _named(model, prefix):
    return [(f"{prefix}.{name}", p) for name, p in model.named_parameters()]


def _biases_before_batchnorm(model):
    """Names of the biases of layers whose output goes straight into a BatchNorm."""
    from npgan.layers import BatchNorm1d, BatchNorm2d
    layers = list(model.named_children())
    return [f"{name}.bias" for (name, layer), (_, after) in zip(layers, layers[1:])
            if isinstance(after, (BatchNorm1d, BatchNorm2d)) and getattr(layer, "bias", None) is not None]


def test_biases_before_batchnorm_are_found():
    assert _biases_before_batchnorm(dcgan.Generator()) == ["0.bias", "4.bias"]
    assert _biases_before_batchnorm(dcgan.Discriminator()) == ["2.bias"]


def _cupy_with_kernels():
    if backend.name() != "cupy":
        pytest.skip("CUDA graphs need the CuPy backend (NPGAN_BACKEND=cupy)")
    from npgan import kernels
    if not kernels.available(backend.xp()):
        pytest.skip("CUDA-graph capture needs npgan's kernels (NPGAN_KERNELS is 0)")


def test_rmsprop_step_counts_follow_the_replays():
    _cupy_with_kernels()
    from npgan.graph import CUDAGraphStep
    fn, _, opts = make_step(optimizer="rmsprop")
    captured = CUDAGraphStep(fn, optimizers=opts, warmup=2)
    for _ in range(3):                                  # 2 eager, capture + launch, 2 replays: 5 steps
        captured()
    assert all(s["step"] == 5 for opt in opts for s in opt.state)


def test_outputs_of_an_earlier_capture_survive_recapture():
    _cupy_with_kernels()
    from npgan.graph import CUDAGraphStep
    fn, _, opts = make_step()
    captured = CUDAGraphStep(fn, optimizers=opts, warmup=1)
    old = captured()
    kept = {k: backend.asnumpy(v).copy() for k, v in old.items()}
    captured.recapture()
    del captured
    filler = [backend.xp().full((1 << 20,), 7.0, dtype=np.float32) for _ in range(16)]   # reuse freed memory
    assert all(np.array_equal(backend.asnumpy(v), kept[k]) for k, v in old.items()), len(filler)


def test_capture_without_the_kernels_is_refused():
    if backend.name() != "cupy":
        pytest.skip("CuPy only")
    import os
    from npgan.graph import CUDAGraphStep
    before = os.environ.get("NPGAN_KERNELS")
    os.environ["NPGAN_KERNELS"] = "0"
    try:
        with pytest.raises(RuntimeError, match="NPGAN_KERNELS"):
            CUDAGraphStep(lambda: None)
    finally:
        if before is None:
            del os.environ["NPGAN_KERNELS"]
        else:
            os.environ["NPGAN_KERNELS"] = before


def test_graph_step_refuses_numpy():
    if backend.name() == "cupy":
        pytest.skip("NumPy-only check")
    from npgan.graph import CUDAGraphStep
    with pytest.raises(RuntimeError, match="CuPy"):
        CUDAGraphStep(lambda: None)
