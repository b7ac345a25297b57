"""What fused compiled CPU kernels would buy: the DCGAN step with BatchNorm, the activations
and Adam swapped for single-pass Numba kernels, against the committed NumPy code and PyTorch.

    pip install numba
    python benchmarks/bench_fused_cpu.py --threads 2

An experiment for RESULTS.md ("what bounds the CPU step"), not part of npgan: the NumPy
formulas in ``npgan.functional`` / ``npgan.optim`` stay the only CPU implementation. Each
kernel here does in one pass what NumPy does in 3-11 (BatchNorm forward: sums, centring +
squares, output; backward: two sums, dx; LeakyReLU/ReLU: y and nothing else kept; Adam: m, v
and p together), so the gap between the rows is what fusing *within* a layer is worth.
The kernels are checked against the NumPy code before timing.
"""
import math

import numpy as np

import _common as C

try:
    import numba
except ImportError:
    numba = None


# ---------------------------------------------------------------- kernels (rows: (M, C) channels-last)
def _kernels():
    njit = numba.njit(cache=True)

    @njit
    def bn_train(rows, gamma, beta, eps):
        m, c = rows.shape
        total = np.zeros(c)
        for i in range(m):                  # explicit loops: array expressions would allocate per row
            for j in range(c):
                total[j] += rows[i, j]
        mean = (total / m).astype(rows.dtype)
        xc = np.empty_like(rows)
        squares = np.zeros(c)
        for i in range(m):
            for j in range(c):
                xc[i, j] = rows[i, j] - mean[j]
                squares[j] += xc[i, j] * xc[i, j]
        var = (squares / m).astype(rows.dtype)
        inv_std = (1.0 / np.sqrt(var + eps)).astype(rows.dtype)
        scale = gamma * inv_std
        out = np.empty_like(rows)
        for i in range(m):
            for j in range(c):
                out[i, j] = xc[i, j] * scale[j] + beta[j]
        return out, xc, mean, var, inv_std

    @njit
    def bn_back(d, xc, inv_std, gamma):
        m, c = d.shape
        dbeta, dgraw = np.zeros(c), np.zeros(c)
        for i in range(m):
            for j in range(c):
                dbeta[j] += d[i, j]
                dgraw[j] += d[i, j] * xc[i, j]
        k = inv_std * gamma
        dgamma = (dgraw * inv_std).astype(d.dtype)
        a = (k * inv_std * dgamma / m).astype(d.dtype)
        b = (k * dbeta / m).astype(d.dtype)
        dx = np.empty_like(d)
        for i in range(m):
            for j in range(c):
                dx[i, j] = k[j] * d[i, j] - xc[i, j] * a[j] - b[j]
        return dx, dgamma, dbeta.astype(d.dtype)

    @njit
    def leaky(x, a):
        y = np.empty_like(x)
        for i in range(x.size):
            y[i] = x[i] if x[i] > 0 else x[i] * a
        return y

    @njit
    def leaky_back(d, x, a):
        dx = np.empty_like(d)
        for i in range(d.size):
            dx[i] = d[i] if x[i] > 0 else d[i] * a
        return dx

    @njit
    def adam(p, g, m, v, b1, b2, step_size, eps_hat):
        for i in range(p.size):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            p[i] -= step_size * m[i] / (np.sqrt(v[i]) + eps_hat)

    return bn_train, bn_back, leaky, leaky_back, adam


# ---------------------------------------------------------------- drop-in replacements
def _rows(a):
    """(N, C, *) stored channels-last (or (N, C)) -> its (M, C) rows, a view."""
    moved = np.moveaxis(a, 1, -1)
    return np.ascontiguousarray(moved).reshape(-1, a.shape[1]), moved.shape


def _unrows(rows, moved_shape):
    return np.moveaxis(rows.reshape(moved_shape), -1, 1)


def _flat_like(a, like):
    """``a`` as a flat array in ``like``'s memory order (a view when the layouts agree)."""
    order = sorted(range(like.ndim), key=lambda i: -like.strides[i])
    return np.ascontiguousarray(a.transpose(order)).reshape(-1), order


def replacements():
    """{(module, name): fused function} with functional's / Adam's signatures."""
    import npgan.functional as F
    from npgan.optim import Adam
    bn_train, bn_back, leaky, leaky_back, adam = _kernels()

    def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
        if not training:
            raise NotImplementedError("the step trains: eval-mode BatchNorm is not fused here")
        rows, moved = _rows(x)
        out, xc, mean, var, inv_std = bn_train(rows, gamma, beta, eps)
        m = rows.shape[0]
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * m / (m - 1)) * var
        return _unrows(out, moved), (xc, inv_std, gamma, moved)

    def batchnorm_backward(dout, cache):
        xc, inv_std, gamma, moved = cache
        dx, dgamma, dbeta = bn_back(_rows(dout)[0], xc, inv_std, gamma)
        return _unrows(dx, moved), dgamma, dbeta

    def leaky_relu_forward(x, negative_slope=0.01):
        flat, order = _flat_like(x, x)
        a = x.dtype.type(negative_slope)
        y = leaky(flat, a).reshape([x.shape[i] for i in order]).transpose(np.argsort(order))
        return y, (x, a)

    def leaky_relu_backward(dout, cache):
        x, a = cache
        flat_x, order = _flat_like(x, x)
        dx = leaky_back(_flat_like(dout, x)[0], flat_x, a)
        return dx.reshape([x.shape[i] for i in order]).transpose(np.argsort(order))

    def adam_update(self, p, state):
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
        (b1, b2), f = self.betas, p.data.dtype.type
        state["step"] += 1
        root_bc2 = math.sqrt(1 - b2 ** state["step"])
        adam(p.data.reshape(-1), self._grad(p).reshape(-1), state["exp_avg"].reshape(-1),
             state["exp_avg_sq"].reshape(-1), f(b1), f(b2),
             f(self.lr * root_bc2 / (1 - b1 ** state["step"])), f(self.eps * root_bc2))

    return {
        "BatchNorm": {(F, "batchnorm_forward"): batchnorm_forward, (F, "batchnorm_backward"): batchnorm_backward},
        "activations": {(F, "leaky_relu_forward"): leaky_relu_forward, (F, "leaky_relu_backward"): leaky_relu_backward,
                        (F, "relu_forward"): lambda x: leaky_relu_forward(x, 0.0),
                        (F, "relu_backward"): leaky_relu_backward},
        "Adam": {(Adam, "_update"): adam_update},
    }


def with_patches(fn, patches):
    """``fn`` run with ``patches`` ({(owner, name): value}) in place, restored afterwards."""
    def run():
        saved = {key: getattr(*key) for key in patches}
        for (owner, name), value in patches.items():
            setattr(owner, name, value)
        try:
            return fn()
        finally:
            for (owner, name), value in saved.items():
                setattr(owner, name, value)
    return run


def check(patches):
    """The fused functions agree with the NumPy code on channels-last float32 inputs."""
    import npgan.functional as F
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 7, 7, 16), dtype=np.float32).transpose(0, 3, 1, 2)
    d = rng.standard_normal(x.shape, dtype=np.float32)
    gamma, beta = rng.standard_normal(16, dtype=np.float32), rng.standard_normal(16, dtype=np.float32)
    stats = lambda: (np.zeros(16, np.float32), np.ones(16, np.float32))    # noqa: E731
    reference = F.batchnorm_forward(x, gamma, beta, *stats()), F.leaky_relu_forward(x, 0.2)
    reference_back = F.batchnorm_backward(d, reference[0][1]), F.leaky_relu_backward(d, reference[1][1])
    fused = with_patches(lambda: (F.batchnorm_forward(x, gamma, beta, *stats()), F.leaky_relu_forward(x, 0.2)), patches)()
    fused_back = with_patches(lambda: (F.batchnorm_backward(d, fused[0][1]), F.leaky_relu_backward(d, fused[1][1])), patches)()
    pairs = [(reference[0][0], fused[0][0]), (reference[1][0], fused[1][0]), (reference_back[1], fused_back[1])]
    pairs += list(zip(reference_back[0], fused_back[0]))
    for want, got in pairs:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def main():
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    args.backend = "numpy"
    if numba is None:
        raise SystemExit("bench_fused_cpu.py needs Numba: pip install numba")
    xp, use_torch = C.setup(args)
    print(f"# numba {numba.__version__}")
    groups = replacements()
    all_patches = {k: v for group in groups.values() for k, v in group.items()}
    check(all_patches)
    variants = {"npgan (committed)": {}, "+ fused BatchNorm": groups["BatchNorm"], "+ fused BN, activations, Adam": all_patches}
    fns = {name: with_patches(C.npgan_step(args.batch, xp), patches) for name, patches in variants.items()}
    fns["torch"] = C.torch_step(args.batch, "cpu") if use_torch else None
    t = C.time_interleaved(fns, xp, rounds=args.rounds or 6, block=3)
    rows = [(name, C.fmt_ms(ms), C.ratio(ms, t["torch"])) for name, ms in t.items() if name != "torch"]
    rows.append(("torch", C.fmt_ms(t["torch"]), "1.00x" if t["torch"] else "-"))
    print(C.table((f"DCGAN-MNIST-28 step, batch {args.batch}", "ms", "vs torch"), rows))


if __name__ == "__main__":
    main()
