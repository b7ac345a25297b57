"""CUDA kernels (CuPy) behind the signatures of npgan's array functions.

On the GPU a small array operation costs a kernel launch whatever its size (from Python,
more than the arithmetic of most DCGAN-sized operations), and a DCGAN step at batch 64 is
hundreds of small operations. So each family of operations asks ``available(xp)`` in one
place: ``functional._products_by_kernels`` (matrix products), ``im2col.im2col_by_kernels``
(im2col and col2im), ``functional._batchnorm_by_kernels``, ``functional._activations_by_kernels``
and ``optim.Adam`` (its update); on CuPy the family hands its work to the one or few kernels
here, on NumPy it never comes here. Each function below computes exactly the formula in the
docstring of the function it replaces, returns what that function returns (or, for a forward,
the arrays of its cache, which ``functional`` packs into the same named tuple as on NumPy), and
the same tests run on both paths (``NPGAN_KERNELS=0`` turns the kernels off to test CuPy's
generic path).

Layouts follow the NumPy path: conv/BN outputs are (N, C, H, W) arrays stored
channels-last; elementwise kernels write their output in their input's memory layout.
"""
import functools
import os


def available(xp):
    """True when ``xp`` is CuPy and the kernels are not turned off (NPGAN_KERNELS=0)."""
    return xp.__name__ == "cupy" and os.environ.get("NPGAN_KERNELS", "1") != "0"


@functools.lru_cache(maxsize=None)
def _cupy():
    import cupy
    return cupy


def _elementwise(in_params, out_params, body, name):
    """A lazily built cupy.ElementwiseKernel (compiled on first use, per dtype)."""
    holder = []

    def get():
        if not holder:
            holder.append(_cupy().ElementwiseKernel(in_params, out_params, body, name))
        return holder[0]
    return get


# ---------------------------------------------------------------- matrix products, capturable
# CuPy refuses to call cuBLAS while a stream is being captured into a CUDA graph
# (NotImplementedError in its cublas.setStream); cuBLAS itself supports capture. So while
# npgan.graph captures, 2-D products go to npgan's own cuBLAS handle through ctypes.
_capture_stream = None                                                 # set by npgan.graph while capturing


def matmul(a, b):
    """a @ b for 2-D CuPy arrays (cuBLAS; recordable in a CUDA graph)."""
    if _capture_stream is None:
        return a @ b
    return _cublas().gemm(a, b, _capture_stream)


def begin_capture(stream):
    """Called by npgan.graph before capturing on ``stream``: route products to the private handle."""
    global _capture_stream
    _cublas().bind(stream)                                             # create the handle and workspace now
    _capture_stream = stream


def end_capture():
    global _capture_stream
    _capture_stream = None


@functools.lru_cache(maxsize=None)
def _cublas():
    return _Cublas()


class _Cublas:
    """A private cuBLAS handle bound to the capture stream, with its own workspace (so cuBLAS
    allocates nothing while capturing), called through ctypes."""

    def __init__(self):
        import ctypes
        self.ct = ctypes
        self.lib = ctypes.CDLL(_loaded_library("libcublas.so"))
        self.handle = ctypes.c_void_p()
        self._check(self.lib.cublasCreate_v2(ctypes.byref(self.handle)), "cublasCreate")
        self.workspace = _cupy().empty(32 * 2**20, dtype=_cupy().uint8)

    def _check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what} failed with cuBLAS status {status}")

    def bind(self, stream):
        """Issue on ``stream``, with our workspace (setStream resets the workspace, so set both)."""
        ct = self.ct
        self._check(self.lib.cublasSetStream_v2(self.handle, ct.c_void_p(stream.ptr)), "cublasSetStream")
        self._check(self.lib.cublasSetWorkspace_v2(self.handle, ct.c_void_p(self.workspace.data.ptr),
                                                   ct.c_size_t(self.workspace.nbytes)), "cublasSetWorkspace")

    def gemm(self, a, b, stream):
        """Row-major C (M, N) = A (M, K) @ B (K, N), computed as the column-major C^T = B^T A^T."""
        cp, ct = _cupy(), self.ct
        if a.dtype != b.dtype or a.dtype.char not in "fd" or a.ndim != 2 or b.ndim != 2:
            raise TypeError(f"captured matmul supports 2-D float32/float64 operands, got {a.dtype}, {b.dtype}")
        (m, k), n = a.shape, b.shape[1]
        if b.shape[0] != k:
            raise ValueError(f"captured matmul: shapes {a.shape} and {b.shape} do not multiply")
        a, op_a, ld_a = _blas_operand(a, cp)
        b, op_b, ld_b = _blas_operand(b, cp)
        out = cp.empty((m, n), dtype=a.dtype)
        scalar = ct.c_float if a.dtype.char == "f" else ct.c_double
        gemm = self.lib.cublasSgemm_v2 if a.dtype.char == "f" else self.lib.cublasDgemm_v2
        self._check(gemm(self.handle, op_b, op_a, n, m, k, ct.byref(scalar(1)), ct.c_void_p(b.data.ptr), ld_b,
                         ct.c_void_p(a.data.ptr), ld_a, ct.byref(scalar(0)), ct.c_void_p(out.data.ptr), n), "gemm")
        return out


def _blas_operand(a, cp):
    """(array, op, ld) of a row-major operand seen by column-major cuBLAS as its own transpose."""
    if a.flags.c_contiguous:
        return a, 0, a.shape[1]                                        # CUBLAS_OP_N on the column-major a^T
    if a.flags.f_contiguous:
        return a, 1, a.shape[0]                                        # a transposed view: CUBLAS_OP_T
    a = cp.ascontiguousarray(a)
    return a, 0, a.shape[1]


def _loaded_library(stem):
    """The path of the shared library ``stem`` (e.g. libcublas.so) this process has loaded (CuPy's own)."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            name = path.rsplit("/", 1)[-1]
            if name.startswith(stem):
                return path
    return stem + ".13"


# ---------------------------------------------------------------- layout helpers
def _memory_perm(a):
    """Axes of ``a`` ordered from the largest stride to the smallest (its memory order)."""
    return sorted(range(a.ndim), key=lambda i: -a.strides[i])


def _map_like(kernel, like, *args):
    """Run an elementwise kernel whose array arguments all have ``like``'s shape, writing an
    output laid out like ``like`` and iterating in that memory order (coalesced accesses)."""
    perm = _memory_perm(like)
    inverse = sorted(range(like.ndim), key=lambda i: perm[i])
    moved = [a.transpose(perm) if hasattr(a, "ndim") else a for a in args]
    out = _cupy().empty([like.shape[i] for i in perm], dtype=like.dtype)
    kernel(*moved, out)
    return out.transpose(inverse)


def _to_channel_rows(x):
    """(N, C, *) -> ((M, C) rows, channels-last shape): a view when x is stored channels-last."""
    cp = _cupy()
    moved = cp.moveaxis(x, 1, -1)                                      # (N, *, C) view
    return cp.ascontiguousarray(moved).reshape(-1, x.shape[1]), moved.shape


def _from_channel_rows(rows, moved_shape):
    """Inverse of ``_to_channel_rows``: (M, C) rows -> the (N, C, *) view (channels-last storage)."""
    return _cupy().moveaxis(rows.reshape(moved_shape), -1, 1)          # (N, C, *) view


def _check_32bit(*arrays):
    if max(a.size for a in arrays) >= 2**31:
        raise ValueError("npgan kernels index with 32-bit integers: use a smaller batch "
                         "(or NPGAN_KERNELS=0 for CuPy's generic path)")


# ---------------------------------------------------------------- im2col / col2im
_im2col = _elementwise(
    "raw T x, int32 H, int32 W, int32 C, int32 OH, int32 OW, int32 KH, int32 KW, "
    "int32 SH, int32 SW, int32 PH, int32 PW, int32 DH, int32 DW", "T col", """
    unsigned int r = i;                   // 32-bit index arithmetic (sizes are checked < 2**31)
    const int c = r % C; r /= C;
    const int kx = r % KW; r /= KW;
    const int ky = r % KH; r /= KH;
    const int ox = r % OW; r /= OW;
    const int oy = r % OH;
    const int n = r / OH;
    const int iy = oy * SH - PH + ky * DH, ix = ox * SW - PW + kx * DW;
    col = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[((n * H + iy) * W + ix) * C + c] : (T)0;
    """, "npgan_im2col_nhwc")

_col2im = _elementwise(
    "raw T col, int32 H, int32 W, int32 C, int32 OH, int32 OW, int32 KH, int32 KW, "
    "int32 SH, int32 SW, int32 PH, int32 PW, int32 DH, int32 DW", "T dx", """
    unsigned int r = i;
    const int c = r % C; r /= C;
    const int ix = r % W; r /= W;
    const int iy = r % H;
    const int n = r / H;
    T acc = 0;
    for (int ky = 0; ky < KH; ++ky) {
        const int ty = iy + PH - ky * DH;
        if (ty < 0 || ty % SH != 0 || ty / SH >= OH) continue;
        for (int kx = 0; kx < KW; ++kx) {
            const int tx = ix + PW - kx * DW;
            if (tx < 0 || tx % SW != 0 || tx / SW >= OW) continue;
            const int row = (n * OH + ty / SH) * OW + tx / SW;
            acc += col[(row * KH * KW + ky * KW + kx) * C + c];
        }
    }
    dx = acc;
    """, "npgan_col2im_rows")


def im2col_nhwc(x, kernel, stride, padding, dilation, out_size):
    """``npgan.im2col.im2col_nhwc`` in one launch: each thread gathers one column entry."""
    cp = _cupy()
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, padding, dilation, out_size
    xn = cp.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(-1)    # NHWC, flat (a view if channels-last)
    cols = cp.empty((n * oh * ow, kh * kw * c), dtype=x.dtype)
    _check_32bit(cols, xn)
    _im2col()(xn, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, cols)
    return cols


def col2im_rows(cols, x_shape, kernel, stride, padding, dilation, grid):
    """Adjoint of ``im2col_nhwc``: rows (N*OH*OW, KH*KW*C) -> (N, C, H, W) stored channels-last.

    One thread per image entry sums the (at most KH*KW) column entries that read it, so
    there are no atomics and no zero fill.
    """
    cp = _cupy()
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, padding, dilation, grid
    dx = cp.empty((n, h, w, c), dtype=cols.dtype)
    _check_32bit(cols, dx)
    _col2im()(cp.ascontiguousarray(cols).reshape(-1), h, w, c, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, dx)
    return dx.transpose(0, 3, 1, 2)


# ---------------------------------------------------------------- batch normalisation
# Per-channel sums over the M rows are matrix products ones(1, M) @ rows(M, C) (cuBLAS reads
# the rows once, coalesced); a reduction kernel over axis 0 of a tall (M, C) array is far slower.
_bn_sq = _elementwise("T x, T k", "T y", "y = (x - k) * (x - k)", "npgan_bn_sq")
_bn_stats = _elementwise(
    "T s1, T s2, T k, float64 inv_m, float64 eps, float64 momentum, float64 unbias",
    "T mean, T var, T inv_std, T running_mean, T running_var", """
    mean = s1 * (T)inv_m;
    const T dm = mean - k;                 // shifted sums: var = E[(x-k)^2] - (E[x]-k)^2, k = a sample of x
    const T v = s2 * (T)inv_m - dm * dm;
    var = v < (T)0 ? (T)0 : v;            // rounding below 0 clamps; a NaN passes through, as on NumPy
    inv_std = (T)1 / sqrt(var + (T)eps);
    running_mean = (T)(1 - momentum) * running_mean + (T)momentum * mean;
    running_var = (T)(1 - momentum) * running_var + (T)(momentum * unbias) * var;
    """, "npgan_bn_stats")
_bn_inv_std = _elementwise("T var, float64 eps", "T inv_std", "inv_std = (T)1 / sqrt(var + (T)eps)", "npgan_bn_inv_std")
_bn_out = _elementwise("T x, T mean, T inv_std, T gamma, T beta", "T y",
                       "y = (x - mean) * (inv_std * gamma) + beta", "npgan_bn_out")
_bn_prod = _elementwise("T d, T x, T mean", "T y", "y = d * (x - mean)", "npgan_bn_prod")
_bn_dx = _elementwise(
    "T d, T x, T mean, T inv_std, T gamma, T dbeta, T dgraw, float64 inv_m", "T dx", """
    const T k = gamma * inv_std;
    dx = k * (d - dbeta * (T)inv_m - (x - mean) * (inv_std * inv_std * dgraw * (T)inv_m));
    """, "npgan_bn_dx")
_bn_dx_eval = _elementwise("T d, T inv_std, T gamma", "T dx", "dx = d * (gamma * inv_std)", "npgan_bn_dx_eval")
_ones_cache = {}


def _column_sums(rows):
    """sum over axis 0 of (M, C) rows as ones(1, M) @ rows -> (C,)."""
    key = (rows.shape[0], rows.dtype.str)
    if key not in _ones_cache:
        _ones_cache[key] = _cupy().ones((1, rows.shape[0]), dtype=rows.dtype)
    return matmul(_ones_cache[key], rows).reshape(-1)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """``functional.batchnorm_forward`` on (M, C) channel rows: two column-sum products and three kernels
    (squares, per-channel statistics + running update, output); eval: two kernels.

    Returns y and the arrays of its ``BatchNormCache``: x (as an (N, C, *) view of the rows read
    here: of x's own memory when x is stored channels-last, else of a channels-last copy), mean, inv_std.
    """
    cp = _cupy()
    rows, moved = _to_channel_rows(x)                                  # (M, C)
    m = rows.shape[0]
    if training:
        if m < 2:
            raise ValueError(f"BatchNorm: expected more than 1 value per channel when training, "
                             f"got input shape {tuple(x.shape)}")
        shift = rows[0]                                                # (C,) view: keeps the sums well conditioned
        s1, s2 = _column_sums(rows), _column_sums(_bn_sq()(rows, shift))
        if running_mean is None:                                       # scratch targets for the running update
            running_mean, running_var = cp.empty_like(s1), cp.empty_like(s1)
        mean, var, inv_std = cp.empty_like(s1), cp.empty_like(s1), cp.empty_like(s1)
        _bn_stats()(s1, s2, shift, 1.0 / m, eps, momentum, m / (m - 1), mean, var, inv_std, running_mean, running_var)
    else:
        mean, inv_std = running_mean, _bn_inv_std()(running_var, eps)
    g = gamma if gamma is not None else 1.0
    b = beta if beta is not None else 0.0
    out = _bn_out()(rows, mean, inv_std, g, b)                         # (M, C)
    return _from_channel_rows(out, moved), _from_channel_rows(rows, moved), mean, inv_std


def batchnorm_backward(dout, x, mean, inv_std, gamma, training):
    """``functional.batchnorm_backward`` from its cache's fields: two column-sum products, two
    kernels (+1 for dgamma's scale). ``x`` as ``batchnorm_forward`` returned it (its rows are a view)."""
    rows, moved = _to_channel_rows(x)                                  # (M, C)
    d, _ = _to_channel_rows(dout)
    dbeta = _column_sums(d)
    dgraw = _column_sums(_bn_prod()(d, rows, mean))                    # sum dout * (x - mean)
    g = gamma if gamma is not None else 1.0
    if training:
        dx = _bn_dx()(d, rows, mean, inv_std, g, dbeta, dgraw, 1.0 / rows.shape[0])
    else:
        dx = _bn_dx_eval()(d, inv_std, g)
    if gamma is None:
        return _from_channel_rows(dx, moved), None, None
    return _from_channel_rows(dx, moved), dgraw * inv_std, dbeta


# ---------------------------------------------------------------- activations
# x < 0 ? 0 : x, not x > 0 ? x : 0: a NaN passes through, as with NumPy's maximum and torch.relu,
# so the NaN guard sees it in the layer where it appeared
_relu_fwd = _elementwise("T x", "T y", "y = x < (T)0 ? (T)0 : x", "npgan_relu_fwd")
_relu_bwd = _elementwise("T d, T y", "T dx", "dx = y > (T)0 ? d : d * (T)0", "npgan_relu_bwd")  # NaN * 0, as NumPy
_lrelu_fwd = _elementwise("T x, float64 a", "T y", "y = x > (T)0 ? x : x * (T)a", "npgan_lrelu_fwd")
_lrelu_bwd = _elementwise("T d, T x, float64 a", "T dx", "dx = x > (T)0 ? d : d * (T)a", "npgan_lrelu_bwd")


def relu_forward(x):
    """``functional.relu_forward``'s y (its ``ReluCache`` keeps y), in x's memory layout."""
    return _map_like(_relu_fwd(), x, x)


def relu_backward(dout, out):
    """``functional.relu_backward`` from its cache's ``out``, in out's memory layout."""
    return _map_like(_relu_bwd(), out, dout, out)


def leaky_relu_forward(x, negative_slope):
    """``functional.leaky_relu_forward``'s y (its ``LeakyReluCache`` keeps x and the slope), in x's layout."""
    return _map_like(_lrelu_fwd(), x, x, negative_slope)


def leaky_relu_backward(dout, x, negative_slope):
    """``functional.leaky_relu_backward`` from its cache's fields, in x's memory layout."""
    return _map_like(_lrelu_bwd(), x, dout, x, negative_slope)


# ---------------------------------------------------------------- Adam with the step count on the GPU
_adam = _elementwise(
    "T g, raw float64 t, float64 lr, float64 b1, float64 b2, float64 eps, float64 wd", "T p, T m, T v", """
    const double step = t[0];
    const T grad = g + (T)wd * p;
    m = (T)b1 * m + (T)(1 - b1) * grad;
    v = (T)b2 * v + (T)(1 - b2) * (grad * grad);
    const double bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
    const T denom = sqrt(v) / (T)sqrt(bc2) + (T)eps;
    p = p - (T)(lr / bc1) * (m / denom);
    """, "npgan_adam")


def adam_update(p, g, m, v, t, lr, betas, eps, weight_decay):
    """One fused Adam update (``optim.Adam``'s formulas) reading the step count ``t`` (a 1-element
    float64 device array, already incremented) on the GPU. ``optim.Adam`` calls it on CuPy (one
    launch per parameter instead of ~13); ``npgan.graph`` passes a device counter that the
    captured graph itself increments, so replays get the right bias corrections: PyTorch's
    ``Adam(capturable=True)``."""
    _adam()(g, t, lr, betas[0], betas[1], eps, weight_decay, p, m, v)
