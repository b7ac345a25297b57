"""The CuPy-semantics stand-in refuses what CuPy refuses, so the suite run on it
(NPGAN_BACKEND=cupy-standin) catches code that works on NumPy and would break on a GPU."""
import numpy as np
import pytest

from npgan import backend
from npgan.testing import cupy_standin as cs


def device(a):
    return cs.asarray(np.asarray(a, dtype=np.float32))


def test_implicit_host_conversion_is_refused_and_get_is_the_way_back():
    x = device([[1, 2], [3, 4]])
    for implicit in (np.asarray, np.array, lambda a: np.testing.assert_array_equal(a, a), lambda a: np.asarray(a[0])):
        with pytest.raises(TypeError, match="Implicit conversion"):
            implicit(x)
    assert isinstance(x.get(), np.ndarray) and cs.asnumpy(x).tolist() == [[1, 2], [3, 4]]
    assert backend.asnumpy(x).dtype == np.float32


def test_mixing_host_arrays_into_device_operations_is_refused():
    x = device([1, 2, 3])
    for mixed in (lambda: x + np.ones(3, np.float32), lambda: np.ones(3) * x, lambda: cs.maximum(x, np.zeros(3)),
                  lambda: cs.concatenate([x, np.ones(3)])):
        with pytest.raises(TypeError, match="Unsupported type"):
            mixed()
    assert float((x * np.float32(2) + 1).sum()) == 15.0                    # scalars are fine
    x[...] = np.zeros(3)                                                     # an explicit copy to the device
    assert x.get().tolist() == [0, 0, 0]


def test_results_stay_on_the_device_and_reductions_are_0d_arrays():
    x = device([[1, 2], [3, 4]])
    for result in (x.sum(), x.max(axis=0), cs.exp(x), np.exp(x), x @ x, x.T.reshape(-1), x[x > 2], cs.zeros_like(x)):
        assert isinstance(result, cs.ndarray)
    assert x.sum().shape == () and float(x.mean()) == 2.5 and bool((x > 0).all())
    assert cs.get_array_module(x) is cs and backend.get_array_module(x) is cs
    with pytest.raises(TypeError, match="mixed backends"):
        backend.get_array_module(x, np.ones(2))


def test_views_and_in_place_updates_write_through():
    x = device(np.zeros((2, 3)))
    view = x.transpose(1, 0)
    view[0] += 5
    x[1, 2] = 7
    assert x.get().tolist() == [[5, 0, 0], [5, 0, 7]]


def test_random_state_lives_on_the_device_and_round_trips_through_a_checkpoint():
    backend.use("cupy-standin")
    try:
        backend.seed(3)
        state = backend.get_rng_state()
        assert state["kind"] == "cupy-standin" and isinstance(state["state"]["buffer"], np.ndarray)
        a = backend.rng().standard_normal((4,), dtype=np.float32)
        assert isinstance(a, cs.ndarray) and a.dtype == np.float32
        backend.set_rng_state(state)
        np.testing.assert_array_equal(backend.asnumpy(backend.rng().standard_normal((4,), dtype=np.float32)),
                                      backend.asnumpy(a))
    finally:
        backend.use("numpy")
