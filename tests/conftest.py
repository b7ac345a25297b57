"""Shared fixtures: one test body serves both backends.

``NPGAN_BACKEND=cupy pytest`` runs the same suite on the GPU; the ``xp`` fixture
is the active array module and ``to_xp`` moves host arrays onto it.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from npgan import backend

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(autouse=True)
def _backend_and_seed():
    """Every test starts on the requested backend with a fixed seed."""
    backend.use(os.environ.get("NPGAN_BACKEND", "numpy"))
    backend.seed(0)
    yield


@pytest.fixture
def xp():
    return backend.xp()


@pytest.fixture
def to_xp():
    return backend.to_device


@pytest.fixture
def host_rng():
    return np.random.default_rng(1234)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running checks (not run in CI; use -m slow)")


def write_svhn(directory, n_train=6, n_test=4, seed=0, **override):
    """Both SVHN files in SVHN's own layout: X uint8 (32, 32, 3, N), y (N, 1) in 1..10."""
    import scipy.io
    from pathlib import Path
    rng = np.random.default_rng(seed)
    Path(directory).mkdir(parents=True, exist_ok=True)
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        contents = {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                    "y": (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)}
        contents.update(override)
        scipy.io.savemat(Path(directory) / name, contents)
