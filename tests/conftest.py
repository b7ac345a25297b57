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
