"""Optimizers with PyTorch's update rules: SGD (momentum, Nesterov), Adam, RMSprop, Adadelta.

    opt = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt.zero_grad()
    ... G.backward(dout) ...            # adds into p.grad
    opt.step()                          # updates p.data in place

Each update follows ``torch.optim``'s single-tensor implementation line by line, so a
parameter trained here and one trained by PyTorch from the same gradients agree to
float32 rounding. Updates happen in place on ``p.data``, keep its dtype and backend, and
never write into ``p.grad``.

State (moment buffers, step counts) lives in ``opt.state``, one dict per parameter in
``opt.params`` order, created on the first ``step`` like PyTorch's. ``state_dict()`` gives
host NumPy copies plus the hyper-parameters; ``load_state_dict`` puts them back, so a
training run resumed from a checkpoint continues bit for bit.
"""
import math

import numpy

from . import kernels
from .backend import asnumpy, get_array_module


class Optimizer:
    """Base class: holds ``params`` and their per-parameter ``state``; subclasses write ``_update``.

    Hyper-parameters are plain attributes (``opt.lr = 1e-4`` changes the learning rate);
    the names listed in ``_hyper`` are saved by ``state_dict``.
    """

    _hyper = ("lr",)

    def __init__(self, params):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for i, p in enumerate(self.params):
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise TypeError(f"{type(self).__name__}: params[{i}] is a {type(p).__name__}, expected a "
                                f"Parameter (pass model.parameters())")
        self.state = [{} for _ in self.params]

    gradient_sync = None            # data-parallel training: sync(params) averages the ranks' gradients

    def sync_gradients(self):
        """Before an update: in data-parallel training, replace every gradient by its average over
        the ranks (``gradient_sync``, set by ``npgan.gan.parallel``); nothing in one process."""
        if self.gradient_sync is not None:
            self.gradient_sync(self.params)

    def zero_grad(self):
        """Set every parameter's gradient to 0 (in place, so layers keep adding into it)."""
        for p in self.params:
            p.grad[...] = 0

    def step(self):
        """Apply one update to every parameter from its current ``p.grad``."""
        for p, state in zip(self.params, self.state):
            self._update(p, state)

    def _update(self, p, state):
        raise NotImplementedError

    @staticmethod
    def _state_keys(hyper):
        """The entries every non-empty per-parameter state holds, given the hyper-parameters."""
        return set()

    def _grad(self, p):
        """g = grad + weight_decay * p (L2 penalty, as torch.optim); a new array, p.grad is untouched."""
        if self.weight_decay != 0:
            return p.grad + self.weight_decay * p.data
        return p.grad

    # ---- checkpoints ------------------------------------------------------------------
    def hyperparameters(self):
        return {k: getattr(self, k) for k in self._hyper}

    def state_dict(self):
        """A picklable snapshot: ``{'optimizer', 'hyperparameters', 'state'}``.

        ``state`` is a list (one dict per parameter, ``params`` order) of host NumPy copies of
        the buffers and Python ints for the step counts.
        """
        state = []
        for s in self.state:
            state.append({k: (v if isinstance(v, int) else asnumpy(v).copy()) for k, v in s.items()})
        return {"optimizer": type(self).__name__, "hyperparameters": self.hyperparameters(), "state": state}

    def load_state_dict(self, state_dict):
        """Restore buffers, step counts and hyper-parameters saved by ``state_dict``.

        Buffers are copied onto each parameter's backend in its dtype (a checkpoint written on
        the GPU loads on the CPU and vice versa).
        """
        name = type(self).__name__
        if state_dict.get("optimizer", name) != name:
            raise ValueError(f"{name}.load_state_dict: the state belongs to a {state_dict['optimizer']}")
        saved = state_dict["state"]
        if len(saved) != len(self.params):
            raise ValueError(f"{name}.load_state_dict: the state has {len(saved)} parameters, "
                             f"this optimizer has {len(self.params)}")
        hyper = {**self.hyperparameters(), **{k: v for k, v in state_dict.get("hyperparameters", {}).items()
                                              if k in self._hyper}}
        required = self._state_keys(hyper)
        new_state = []
        for i, (p, s) in enumerate(zip(self.params, saved)):
            if s and not required <= set(s):                # a partial state would fail at the next step()
                raise ValueError(f"{name}.load_state_dict: state[{i}] lacks {sorted(required - set(s))} "
                                 f"(it holds {sorted(s)})")
            xp = get_array_module(p.data)
            entry = {}
            for k, v in s.items():
                if isinstance(v, (int, numpy.integer)):
                    entry[k] = int(v)
                    continue
                v = numpy.asarray(v)
                if v.shape != p.data.shape:
                    raise ValueError(f"{name}.load_state_dict: state[{i}][{k!r}] has shape {v.shape}, "
                                     f"parameter {i} has shape {tuple(p.data.shape)}")
                entry[k] = xp.array(v, dtype=p.data.dtype, copy=True)         # never alias the saved arrays
            new_state.append(entry)
        self.state = new_state
        for k, v in state_dict.get("hyperparameters", {}).items():
            if k in self._hyper:
                setattr(self, k, tuple(float(b) for b in v) if isinstance(v, (tuple, list)) else v)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


def _check_nonneg(name, **values):
    for k, v in values.items():
        if not v >= 0:
            raise ValueError(f"{name}: invalid {k} {v!r} (must be >= 0)")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's formulation).

        g = grad + weight_decay * p
        b = g                                  (first step)
        b = momentum * b + (1 - dampening) * g (later steps)
        g = g + momentum * b  if nesterov else b
        p = p - lr * g

    Args: lr, momentum=0, dampening=0, weight_decay=0, nesterov=False.
    """

    _hyper = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        super().__init__(params)
        _check_nonneg("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        self.lr, self.momentum, self.dampening = float(lr), float(momentum), float(dampening)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)

    def _update(self, p, state):
        g = self._grad(p)
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba), bias-corrected exactly as ``torch.optim.Adam``.

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g                      (exp_avg)
        v = beta2 * v + (1 - beta2) * g^2                    (exp_avg_sq)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Args: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0. DCGAN uses lr=2e-4, betas=(0.5, 0.999).
    State per parameter: step (int), exp_avg, exp_avg_sq.
    """

    _hyper = ("lr", "betas", "eps", "weight_decay")
    # npgan.graph can capture this update with the step count kept on the GPU (its bias
    # corrections depend on it), as PyTorch's Adam(capturable=True)
    capturable_with_device_step = True

    @staticmethod
    def _state_keys(hyper):
        return {"step", "exp_avg", "exp_avg_sq"}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params)
        _check_nonneg("Adam", lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas!r}")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.weight_decay = float(weight_decay)
        self._scratch_arrays = {}                                             # id(p) -> work array

    def _update(self, p, state):
        xp = get_array_module(p.data)
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(p.data), exp_avg_sq=xp.zeros_like(p.data))
        beta1, beta2 = self.betas
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if kernels.available(xp):
            # on the GPU each array operation below is a kernel launch, which costs more than its
            # arithmetic at DCGAN sizes: the same formulas as one fused kernel
            kernels.adam_update(p.data, p.grad, m, v, xp.full((1,), float(t)), self.lr, self.betas, self.eps,
                                self.weight_decay)
            return
        g = self._grad(p)
        buf = self._scratch(p)                                                # every temporary goes here
        m *= beta1
        m += xp.multiply(g, 1 - beta1, out=buf)
        v *= beta2
        xp.multiply(g, g, out=buf)
        buf *= 1 - beta2
        v += buf
        # p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), with bc = 1 - beta^t, written with one
        # pass fewer (equal up to rounding): p -= (lr * sqrt(bc2) / bc1) * m / (sqrt(v) + eps * sqrt(bc2))
        root_bc2 = math.sqrt(1 - beta2 ** t)
        xp.sqrt(v, out=buf)
        buf += self.eps * root_bc2
        xp.divide(m, buf, out=buf)
        buf *= self.lr * root_bc2 / (1 - beta1 ** t)
        p.data -= buf

    def _scratch(self, p):
        """A work array like p.data, kept between steps (not part of the state: nothing to save)."""
        scratch = self._scratch_arrays
        buf = scratch.get(id(p))
        if buf is None or buf.shape != p.data.shape or buf.dtype != p.data.dtype or type(buf) is not type(p.data):
            buf = scratch[id(p)] = get_array_module(p.data).empty_like(p.data)
        return buf


class RMSprop(Optimizer):
    """RMSprop as ``torch.optim.RMSprop``.

        g = grad + weight_decay * p
        s = alpha * s + (1 - alpha) * g^2                    (square_avg)
        centered: a = alpha * a + (1 - alpha) * g;  r = sqrt(s - a^2) + eps
        else:     r = sqrt(s) + eps
        momentum > 0: b = momentum * b + g / r;  p = p - lr * b
        else:         p = p - lr * g / r

    Args: lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False.
    (``s - a^2`` is clamped at 0 before the square root; PyTorch would give NaN there after
    rounding, which can only happen when the two agree to the last bit.)
    """

    _hyper = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    @staticmethod
    def _state_keys(hyper):
        return ({"step", "square_avg"} | ({"momentum_buffer"} if hyper["momentum"] > 0 else set())
                | ({"grad_avg"} if hyper["centered"] else set()))

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False):
        super().__init__(params)
        _check_nonneg("RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
        self.lr, self.alpha, self.eps = float(lr), float(alpha), float(eps)
        self.weight_decay, self.momentum, self.centered = float(weight_decay), float(momentum), bool(centered)

    def _update(self, p, state):
        xp = get_array_module(p.data)
        if not state:
            state.update(step=0, square_avg=xp.zeros_like(p.data))
            if self.momentum > 0:
                state["momentum_buffer"] = xp.zeros_like(p.data)
            if self.centered:
                state["grad_avg"] = xp.zeros_like(p.data)
        state["step"] += 1
        g = self._grad(p)
        s = state["square_avg"]
        s *= self.alpha
        s += (1 - self.alpha) * (g * g)
        if self.centered:
            a = state["grad_avg"]
            a *= self.alpha
            a += (1 - self.alpha) * g
            avg = s - a * a
            xp.maximum(avg, 0, out=avg)
            xp.sqrt(avg, out=avg)
        else:
            avg = xp.sqrt(s)
        avg += self.eps
        xp.divide(g, avg, out=avg)                                            # avg now holds g / r
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += avg
            p.data -= self.lr * buf
        else:
            avg *= self.lr
            p.data -= avg


class Adadelta(Optimizer):
    """Adadelta (Zeiler) as ``torch.optim.Adadelta``.

        g = grad + weight_decay * p
        s = rho * s + (1 - rho) * g^2                        (square_avg)
        d = sqrt(u + eps) / sqrt(s + eps) * g                (the update)
        u = rho * u + (1 - rho) * d^2                        (acc_delta)
        p = p - lr * d

    Args: lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.
    """

    _hyper = ("lr", "rho", "eps", "weight_decay")

    @staticmethod
    def _state_keys(hyper):
        return {"step", "square_avg", "acc_delta"}

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0):
        super().__init__(params)
        _check_nonneg("Adadelta", lr=lr, eps=eps, weight_decay=weight_decay)
        if not 0 <= rho <= 1:
            raise ValueError(f"Adadelta: rho must lie in [0, 1], got {rho!r}")
        self.lr, self.rho, self.eps, self.weight_decay = float(lr), float(rho), float(eps), float(weight_decay)

    def _update(self, p, state):
        xp = get_array_module(p.data)
        if not state:
            state.update(step=0, square_avg=xp.zeros_like(p.data), acc_delta=xp.zeros_like(p.data))
        state["step"] += 1
        g = self._grad(p)
        s, u = state["square_avg"], state["acc_delta"]
        s *= self.rho
        s += (1 - self.rho) * (g * g)
        std = xp.sqrt(s + self.eps)
        delta = xp.sqrt(u + self.eps)
        delta /= std
        delta *= g
        u *= self.rho
        u += (1 - self.rho) * (delta * delta)
        delta *= self.lr
        p.data -= delta
