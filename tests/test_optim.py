"""Optimizers: step-by-step parity with torch.optim, exact resumption from a state_dict,
dtypes, and the contract (p.grad untouched, zero_grad, errors)."""
import copy
import pickle

import numpy as np
import pytest

from npgan import backend
from npgan import optim
from npgan.layers.base import Parameter

torch = pytest.importorskip("torch")

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=2e-4, betas=(0.5, 0.999))),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.05)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=1e-3, alpha=0.9, centered=True)),
    ("RMSprop", dict(lr=1e-3, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=1e-3, momentum=0.5, centered=True, eps=1e-6)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.1)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}" for name, kw in CONFIGS]
SHAPES = [(3, 4), (5,), (2, 1, 3, 3)]


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(backend.to_device(rng.standard_normal(s).astype(dtype))) for s in SHAPES]


def grads_for_step(step, dtype):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def run_steps(opt, params, steps, dtype, start=0):
    for step in range(start, start + steps):
        opt.zero_grad()
        for p, g in zip(params, grads_for_step(step, dtype)):
            p.grad += backend.to_device(g)
        opt.step()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_torch_optim(xp, name, kwargs, dtype):
    params = make_params(dtype)
    tparams = [torch.tensor(backend.asnumpy(p.data), requires_grad=True) for p in params]
    opt = getattr(optim, name)(params, **kwargs)
    topt = getattr(torch.optim, name)(tparams, foreach=False, **kwargs)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for step in range(10):
        grads = grads_for_step(step, dtype)
        opt.zero_grad()
        for p, tp, g in zip(params, tparams, grads):
            p.grad += backend.to_device(g)
            tp.grad = torch.as_tensor(g.copy())
        opt.step()
        topt.step()
        for p, tp in zip(params, tparams):
            assert p.data.dtype == dtype
            np.testing.assert_allclose(backend.asnumpy(p.data), tp.detach().numpy(), **tol,
                                       err_msg=f"{name} step {step + 1}")
    # the moments, too, are PyTorch's
    for s, p, tp in zip(opt.state, params, tparams):
        for key, value in s.items():
            ref = topt.state[tp][key]
            if key == "step":
                assert value == int(ref.item())
            else:
                assert value.dtype == dtype
                scale = max(1.0, float(np.abs(ref.numpy()).max()))            # buffers may sum large terms
                np.testing.assert_allclose(backend.asnumpy(value), ref.numpy(), rtol=tol["rtol"],
                                           atol=tol["atol"] * scale)


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_state_dict_round_trip_resumes_bitwise(xp, name, kwargs):
    dtype = np.float32
    cls = getattr(optim, name)
    straight = make_params(dtype)
    run_steps(cls(straight, **kwargs), straight, 10, dtype)

    first = make_params(dtype)
    opt = cls(first, **kwargs)
    run_steps(opt, first, 5, dtype)
    checkpoint = pickle.loads(pickle.dumps({"params": [backend.asnumpy(p.data).copy() for p in first],
                                            "optim": opt.state_dict()}))
    saved = copy.deepcopy(checkpoint)

    resumed = [Parameter(backend.to_device(a)) for a in checkpoint["params"]]
    fresh = cls(resumed, lr=123.0) if name == "SGD" else cls(resumed)          # hyper-parameters come back too
    fresh.load_state_dict(checkpoint["optim"])
    assert fresh.hyperparameters() == opt.hyperparameters()
    run_steps(fresh, resumed, 5, dtype, start=5)
    for a, b in zip(straight, resumed):
        assert np.array_equal(backend.asnumpy(a.data), backend.asnumpy(b.data))
    # stepping the resumed optimizer never wrote into the checkpoint's arrays
    for s, t in zip(checkpoint["optim"]["state"], saved["optim"]["state"]):
        for k in s:
            assert np.array_equal(s[k], t[k])


def test_state_dict_is_host_arrays_and_int_steps(xp):
    params = make_params(np.float32)
    opt = optim.Adam(params, lr=1e-3, betas=(0.5, 0.999))
    run_steps(opt, params, 3, np.float32)
    sd = opt.state_dict()
    assert sd["optimizer"] == "Adam"
    assert sd["hyperparameters"] == {"lr": 1e-3, "betas": (0.5, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    for s, p in zip(sd["state"], params):
        assert type(s["step"]) is int and s["step"] == 3
        for key in ("exp_avg", "exp_avg_sq"):
            assert isinstance(s[key], np.ndarray) and s[key].dtype == np.float32 and s[key].shape == p.shape
    # the snapshot is a copy: further steps do not change it
    before = copy.deepcopy(sd)
    run_steps(opt, params, 1, np.float32)
    assert np.array_equal(sd["state"][0]["exp_avg"], before["state"][0]["exp_avg"])


def test_load_state_dict_rejects_mismatches(xp):
    params = make_params(np.float32)
    adam = optim.Adam(params)
    run_steps(adam, params, 1, np.float32)
    with pytest.raises(ValueError, match="Adam"):
        optim.RMSprop(params).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="parameters"):
        optim.Adam(params[:2]).load_state_dict(adam.state_dict())
    swapped = [params[1], params[0], params[2]]
    with pytest.raises(ValueError, match="shape"):
        optim.Adam(swapped).load_state_dict(adam.state_dict())
    partial = adam.state_dict()
    del partial["state"][1]["exp_avg"]                                   # hand-edited: would fail at step()
    fresh = optim.Adam(params)
    with pytest.raises(ValueError, match=r"state\[1\] lacks \['exp_avg'\]"):
        fresh.load_state_dict(partial)
    assert fresh.state == [{}, {}, {}]                                  # nothing half-loaded
    rms = optim.RMSprop(params, momentum=0.9)
    run_steps(rms, params, 1, np.float32)
    saved = rms.state_dict()
    del saved["state"][0]["momentum_buffer"]
    with pytest.raises(ValueError, match="lacks \\['momentum_buffer'\\]"):
        optim.RMSprop(params, momentum=0.9).load_state_dict(saved)


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_float32_preserved_and_grad_untouched(xp, name, kwargs):
    params = make_params(np.float32)
    opt = getattr(optim, name)(params, **kwargs)
    for p, g in zip(params, grads_for_step(0, np.float32)):
        p.grad += backend.to_device(g)
    grads = [p.grad.copy() for p in params]
    before = [p.data.copy() for p in params]
    data_ids = [id(p.data) for p in params]
    opt.step()
    for p, g, b, i in zip(params, grads, before, data_ids):
        assert p.data.dtype == np.float32 and id(p.data) == i                # in place
        assert np.array_equal(backend.asnumpy(p.grad), backend.asnumpy(g))   # weight decay does not leak into grad
        assert not np.array_equal(backend.asnumpy(p.data), backend.asnumpy(b))
    for s in opt.state:
        assert all(v.dtype == np.float32 for k, v in s.items() if k != "step")
    opt.zero_grad()
    assert all(not backend.asnumpy(p.grad).any() for p in params)


def test_adam_first_step_is_lr_times_sign(xp):
    """With bias correction, Adam's first update is lr * g / (|g| + eps') = lr * sign(g)."""
    p = Parameter(backend.to_device(np.zeros(4, np.float32)))
    p.grad[...] = backend.to_device(np.array([3.0, -0.5, 1e-3, -20.0], np.float32))
    optim.Adam([p], lr=0.01).step()
    np.testing.assert_allclose(backend.asnumpy(p.data), [-0.01, 0.01, -0.01, 0.01], rtol=1e-4)


def test_argument_errors():
    params = make_params(np.float32)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        optim.Adam(params, lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(params, betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="Parameter"):
        optim.SGD([np.zeros(3)], lr=0.1)
