"""CUDA-graph capture of a whole training step (CuPy only): replays must train exactly like eager steps."""
import numpy as np
import pytest

from npgan import backend, optim
from npgan.gan import NonSaturating, gan_step
from npgan.models import dcgan


def make_step(batch=8, seed=3):
    backend.seed(seed)
    G, D = dcgan.Generator(), dcgan.Discriminator()
    opt_g = optim.Adam(G.parameters(), lr=dcgan.LR, betas=dcgan.BETAS)
    opt_d = optim.Adam(D.parameters(), lr=dcgan.LR, betas=dcgan.BETAS)
    real = backend.rng().uniform(-1, 1, size=(batch, 1, 28, 28)).astype(np.float32)

    def step():                                          # the training job's own step
        z = backend.rng().standard_normal((batch, dcgan.Z_DIM), dtype=np.float32)
        return gan_step(G, D, opt_g, opt_d, NonSaturating(), real, z)

    return step, (G, D), (opt_g, opt_d)


def test_captured_step_trains_like_eager_steps():
    if backend.name() != "cupy":
        pytest.skip("CUDA graphs need the CuPy backend (NPGAN_BACKEND=cupy)")
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
    for (name, p), (_, q) in zip(list(G1.named_parameters()) + list(D1.named_parameters()),
                                 list(G2.named_parameters()) + list(D2.named_parameters())):
        np.testing.assert_allclose(backend.asnumpy(p.data), backend.asnumpy(q.data), rtol=1e-4, atol=1e-5,
                                   err_msg=name)


def test_graph_step_refuses_numpy():
    if backend.name() == "cupy":
        pytest.skip("NumPy-only check")
    from npgan.graph import CUDAGraphStep
    with pytest.raises(RuntimeError, match="CuPy"):
        CUDAGraphStep(lambda: None)
