"""Stateless forward/backward pairs, written by hand.

Every op comes as ``out, cache = op_forward(...)`` and ``grads = op_backward(dout, cache)``
with gradients returned in input order (CS231n style). Backward functions never
write into ``dout``. The array module comes from the inputs, so the same code runs
on NumPy and on CuPy.

Each cache is a named tuple (``LinearCache``, ``ConvCache``, ``BatchNormCache``, ...) with
the same fields on both backends, listed in its forward's docstring; backward functions
read the fields by name.

CuPy kernels (``npgan.kernels``) replace some of the code below. Each family of operations
makes that choice in one place: ``_products_by_kernels`` (matrix products),
``im2col_by_kernels`` (im2col and col2im, in ``npgan.im2col``), ``_batchnorm_by_kernels``
and ``_activations_by_kernels``. A kernel computes the formula of the function it replaces
and fills and reads the same cache.
"""
from typing import Any, NamedTuple, Optional, Tuple

from . import kernels
from .backend import get_array_module
from .im2col import (col2im, col2im_taps, conv_output_size, conv_transpose_output_size, im2col, im2col_by_kernels,
                     im2col_nhwc, nhwc, pair)

Array = Any                                                            # a NumPy or CuPy array
Pair = Tuple[int, int]


# ---------------------------------------------------------------- matrix products
def _products_by_kernels(a):
    """The matrix products' backend choice, for arrays like ``a``: on CuPy with kernels on, 2-D
    products go through ``kernels.matmul`` (which a CUDA-graph capture can record) and
    per-channel sums are reductions; elsewhere ``@`` and BLAS."""
    return kernels.available(get_array_module(a))


def _matmul(a, b):
    """a @ b for 2-D arrays (``kernels.matmul`` where ``_products_by_kernels``)."""
    return kernels.matmul(a, b) if _products_by_kernels(a) else a @ b


# ---------------------------------------------------------------- linear
class LinearCache(NamedTuple):
    x: Array                       # (*, in) input
    w: Array                       # (out, in) weight
    has_bias: bool                 # whether the forward added b (db is None otherwise)


def linear_forward(x, w, b):
    """y = x @ w.T + b.   x: (*, in), w: (out, in), b: (out,) or None -> y: (*, out).

    Cache: ``LinearCache(x, w, has_bias)``.
    """
    out = _matmul(x.reshape(-1, x.shape[-1]), w.T).reshape(x.shape[:-1] + (w.shape[0],))
    if b is not None:
        out += b
    return out, LinearCache(x, w, b is not None)


def linear_backward(dout, cache, need_dx=True, need_dw=True):
    """dx = dout @ w;  dw = dout^T x (summed over leading dims);  db = sum dout.

    ``need_dx=False`` skips dx (returned as None), e.g. for a generator's input noise;
    ``need_dw=False`` skips dw and db (None), e.g. for a frozen discriminator.
    """
    x, w = cache.x, cache.w
    x2 = x.reshape(-1, x.shape[-1])
    d2 = dout.reshape(-1, dout.shape[-1])
    dx = None
    if need_dx:
        # one output feature (a discriminator's logit): the product has inner size 1, where a
        # broadcast multiply beats BLAS (benchmarks/bench_layers.py times "Linear 6272->1")
        dx = (d2 * w if w.shape[0] == 1 else _matmul(d2, w)).reshape(x.shape)
    if not need_dw:
        return dx, None, None
    dw = _matmul(d2.T, x2)
    db = d2.sum(axis=0) if cache.has_bias else None
    return dx, dw, db


# ---------------------------------------------------------------- per-channel sums
def _channel_rows_view(a):
    """(N, C, *) -> its (M, C) channel rows as a view, or None when channels are not its fastest axis."""
    if a.ndim == 2:
        return a
    rows = a.transpose((0,) + tuple(range(2, a.ndim)) + (1,))
    return rows.reshape(-1, a.shape[1]) if rows.flags.c_contiguous else None


def _channel_sum(a):
    """sum of a over every axis but 1 -> (C,).

    On (M, C) rows (channels-last or 2-D arrays) as the product ones(M) @ rows: BLAS reads
    the rows once on every core, faster than NumPy's axis-0 reduction. Where
    ``_products_by_kernels``, a reduction."""
    rows = _channel_rows_view(a)
    if rows is None or _products_by_kernels(a):
        return a.sum(axis=(0,) + tuple(range(2, a.ndim)))
    return get_array_module(a).ones(rows.shape[0], dtype=a.dtype) @ rows


def _channel_dot(a, b):
    """sum over every axis but 1 of a * b, per channel, without an (a * b) temporary."""
    idx = "nchwdl"[:a.ndim]
    return get_array_module(a).einsum(f"{idx},{idx}->c", a, b)


# ---------------------------------------------------------------- convolution
# Layout: the matrix products run on channels-last rows, (N*H*W, C) with row (n, y, x),
# so their results are the outputs stored channels-last (an (N, C, H, W) view of an
# (N, H, W, C) array) and no transpose is ever copied. Weights are reordered to match
# (small copies): w_rows (F, KH*KW*C), column (ky, kx, c), for the im2col product;
# w_taps (KH, KW, K, C), one (K, C) matrix per kernel tap, for the col2im side.
def _nhwc_rows(x):
    """(N, C, H, W) -> (N*H*W, C) channels-last rows (no copy when x is stored channels-last)."""
    return nhwc(x).reshape(-1, x.shape[1])


def _nchw_view_of_rows(rows, n, h, w):
    """(N*H*W, C) rows -> the (N, C, H, W) view (channels-last storage)."""
    return rows.reshape(n, h, w, -1).transpose(0, 3, 1, 2)


def _col2im_of_products(rows, w_taps, x_shape, grid, stride, padding, dilation):
    """col2im(rows @ w_taps): the transposed convolution behind conv2d's dx and ConvTranspose2d.

    rows (N*OH*OW, K) on the grid (OH, OW), w_taps (KH, KW, K, C): every tap's product
    rows @ w_taps[ky, kx] is added onto the pixels that tap reads -> (N, C, H, W) channels-last.
    NumPy: one product per tap (tap-major, so col2im adds contiguous blocks), or, for kernels
    that are a multiple of the stride (DCGAN's k4 s2), one product on space-to-depth blocks.
    Where ``im2col_by_kernels``: one product (N*OH*OW, KH*KW*C) and one gather kernel.
    """
    xp = get_array_module(rows)
    kh, kw, k, c = w_taps.shape
    n, (oh, ow) = x_shape[0], grid
    if im2col_by_kernels(rows):
        cols = kernels.matmul(rows, w_taps.transpose(2, 0, 1, 3).reshape(k, -1))  # (N*OH*OW, KH*KW*C)
        return kernels.col2im_rows(cols, x_shape, (kh, kw), pair(stride), pair(padding), pair(dilation), grid)
    if _phase_form_fits(w_taps.shape, x_shape, grid, stride, padding, dilation):
        return _col2im_of_products_by_phase(rows, w_taps, x_shape, grid, stride, padding)
    cols = xp.matmul(rows, w_taps.reshape(kh * kw, k, c))              # (KH*KW, N*OH*OW, C)
    return col2im_taps(cols.reshape(kh, kw, n, oh, ow, c), x_shape, stride, padding, dilation)


def _phase_form_fits(taps_shape, x_shape, grid, stride, padding, dilation):
    """Whether ``_col2im_of_products_by_phase`` applies and pays: kernel a multiple of a stride > 1,
    no dilation, the grid tiling the padded image exactly, and its im2col no bigger than the
    per-tap products it replaces (K <= SH*SW*C; DCGAN's k4 s2 p1 layers with C >= K/4)."""
    kh, kw, k, c = taps_shape
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    return (pair(dilation) == (1, 1) and sh * sw > 1 and kh % sh == 0 and kw % sw == 0 and k <= sh * sw * c
            and sh * (grid[0] + kh // sh - 1) == x_shape[2] + 2 * ph
            and sw * (grid[1] + kw // sw - 1) == x_shape[3] + 2 * pw)


def _col2im_of_products_by_phase(rows, w_taps, x_shape, grid, stride, padding):
    """``_col2im_of_products`` when the kernel spans T = KH/SH taps per stride phase (NumPy path).

    Cut the padded image into stride x stride blocks (space-to-depth, a grid of HS = OH + T - 1
    blocks of SH*SW*C values). Block (Y, X) receives rows[oy, ox] @ w_taps[sh*a + dy, ...] from
    the T x T rows oy = Y - a: a stride-1 convolution of the (zero-padded) rows. So
      blocks = im2col(rows, T x T, padding T-1) @ w2,  w2[(a', b', k), (dy, dx, c)] = w_taps[sh*(T-1-a') + dy, ...]
    one product with SH*SW*C output columns (efficient), and the image is read off the blocks
    phase by phase. Against the per-tap form: no zero-filled buffer and no accumulation passes.
    """
    xp = get_array_module(rows)
    kh, kw, k, c = w_taps.shape
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    th, tw = kh // sh, kw // sw
    n, _, h, w = x_shape
    (oh, ow), hs, ws = grid, grid[0] + th - 1, grid[1] + tw - 1
    cols = im2col_nhwc(_nchw_view_of_rows(rows, n, oh, ow), (th, tw), 1, (th - 1, tw - 1))  # (N*HS*WS, TH*TW*K)
    w2 = w_taps.reshape(th, sh, tw, sw, k, c)[::-1, :, ::-1].transpose(0, 2, 4, 1, 3, 5).reshape(th * tw * k, -1)
    blocks = (cols @ w2).reshape(n, hs, ws, sh, sw, c)                # [:, Y, X, dy, dx] = padded dx[:, Y*sh+dy, X*sw+dx]
    dx = xp.empty((n, h, w, c), dtype=rows.dtype)
    for ry in range(sh):                                               # image row ry + sh*j is padded row sh*(y0+j) + dy
        y0, dy = divmod(ry + ph, sh)
        for rx in range(sw):
            x0, dxx = divmod(rx + pw, sw)
            phase = dx[:, ry::sh, rx::sw]
            phase[...] = blocks[:, y0:y0 + phase.shape[1], x0:x0 + phase.shape[2], dy, dxx]
    return dx.transpose(0, 3, 1, 2)                                    # (N, C, H, W) view, channels-last


class ConvCache(NamedTuple):
    x_shape: Tuple[int, ...]       # (N, C, H, W) of the input
    w: Array                       # (F, C, KH, KW) weight
    cols: Array                    # (N*OH*OW, KH*KW*C) im2col of the input, row (n, oy, ox), column (ky, kx, c)
    has_bias: bool                 # whether the forward added b (db is None otherwise)
    stride: Pair                   # (sh, sw)
    padding: Pair                  # (ph, pw)
    dilation: Pair                 # (dh, dw)


def conv2d_forward(x, w, b, stride=1, padding=0, dilation=1):
    """y[n,f] = sum_c w[f,c] (*) x[n,c] + b[f]  (cross-correlation, as in PyTorch).

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) or None -> y: (N, F, OH, OW) stored channels-last,
    OH = floor((H + 2*pad - dil*(KH-1) - 1) / stride) + 1.
    As one matrix product: y_rows = im2col(x) @ w_rows^T, (N*OH*OW, KH*KW*C) @ (KH*KW*C, F).
    Cache: ``ConvCache(x_shape, w, cols, has_bias, stride, padding, dilation)``, the geometry as pairs.
    """
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(wd, kw, sw, pw, dw)
    cols = im2col_nhwc(x, (kh, kw), stride, padding, dilation)        # (N*OH*OW, KH*KW*C)
    w_rows = w.transpose(0, 2, 3, 1).reshape(f, -1)                   # (F, KH*KW*C), small copy
    out = _matmul(cols, w_rows.T)                                     # (N*OH*OW, F)
    if b is not None:
        out += b
    return _nchw_view_of_rows(out, n, oh, ow), ConvCache(x.shape, w, cols, b is not None, stride, padding, dilation)


def conv2d_backward(dout, cache, need_dx=True, need_dw=True):
    """dw = dout_rows^T cols;  db = sum dout;  dx = col2im(dout_rows @ w_taps) (a transposed conv).

    ``need_dx=False`` skips dx (returned as None): a first layer's input needs no gradient;
    ``need_dw=False`` skips dw and db (None): a frozen layer's parameters.
    """
    w = cache.w
    f, c, kh, kw = w.shape
    n, _, oh, ow = dout.shape
    d_rows = _nhwc_rows(dout)                                         # (N*OH*OW, F)
    dw = db = dx = None
    if need_dw:
        dw = _matmul(d_rows.T, cache.cols).reshape(f, kh, kw, c).transpose(0, 3, 1, 2)
        db = _channel_sum(d_rows) if cache.has_bias else None
    if need_dx:
        dx = _col2im_of_products(d_rows, w.transpose(2, 3, 0, 1), cache.x_shape, (oh, ow),
                                 cache.stride, cache.padding, cache.dilation)
    return dx, dw, db


class ConvTransposeCache(NamedTuple):
    x_rows: Array                  # (N*H*W, Cin) the input as channels-last rows
    x_shape: Tuple[int, ...]       # (N, Cin, H, W) of the input
    w: Array                       # (Cin, Cout, KH, KW) weight
    has_bias: bool                 # whether the forward added b (db is None otherwise)
    stride: Pair                   # (sh, sw)
    padding: Pair                  # (ph, pw)
    dilation: Pair                 # (dh, dw); output_padding only sets the output size, read off dout


def conv_transpose2d_forward(x, w, b, stride=1, padding=0, output_padding=0, dilation=1):
    """The adjoint of conv2d with respect to its input (PyTorch's ConvTranspose2d).

    x: (N, Cin, H, W), w: (Cin, Cout, KH, KW), b: (Cout,) or None -> y: (N, Cout, OH, OW)
    stored channels-last, OH = (H-1)*stride - 2*pad + dil*(KH-1) + output_padding + 1.
    Each input pixel scatters w[cin] * x into a KHxKW window: y = col2im(x_rows @ w_taps).
    Cache: ``ConvTransposeCache(x_rows, x_shape, w, has_bias, stride, padding, dilation)``.
    """
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    stride, padding, output_padding, dilation = map(pair, (stride, padding, output_padding, dilation))
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    oh = conv_transpose_output_size(h, kh, sh, ph, oph, dh)
    ow = conv_transpose_output_size(wd, kw, sw, pw, opw, dw)
    x_rows = _nhwc_rows(x)                                            # (N*H*W, Cin)
    out = _col2im_of_products(x_rows, w.transpose(2, 3, 0, 1), (n, cout, oh, ow), (h, wd), stride, padding, dilation)
    if b is not None:
        out_nhwc = out.transpose(0, 2, 3, 1)                          # a contiguous view: add in memory order
        out_nhwc += b
    return out, ConvTransposeCache(x_rows, x.shape, w, b is not None, stride, padding, dilation)


def conv_transpose2d_backward(dout, cache, need_dx=True, need_dw=True):
    """dx = conv2d(dout, w) (im2col of dout);  dw = x_rows^T cols;  db = sum dout.

    ``need_dx`` / ``need_dw`` False skip dx / (dw, db), returned as None."""
    n, cin, h, wd = cache.x_shape
    w = cache.w
    _, cout, kh, kw = w.shape
    cols = im2col_nhwc(dout, (kh, kw), cache.stride, cache.padding, cache.dilation, out_size=(h, wd))  # (N*H*W, KH*KW*Cout)
    dw = db = dx = None
    if need_dw:
        dw = _matmul(cache.x_rows.T, cols).reshape(cin, kh, kw, cout).transpose(0, 3, 1, 2)
        db = _channel_sum(dout) if cache.has_bias else None
    if need_dx:
        w_rows = w.transpose(0, 2, 3, 1).reshape(cin, -1)             # (Cin, KH*KW*Cout)
        dx = _nchw_view_of_rows(_matmul(cols, w_rows.T), n, h, wd)
    return dx, dw, db


# ---------------------------------------------------------------- batch normalisation
def _batchnorm_by_kernels(a):
    """Batch normalisation's backend choice, for arrays like ``a``: on CuPy with kernels on,
    ``kernels.batchnorm_forward`` / ``kernels.batchnorm_backward`` compute this section's
    formulas (per-channel sums as cuBLAS products, the elementwise work in a few fused kernels)."""
    return kernels.available(get_array_module(a))


class BatchNormCache(NamedTuple):
    x: Array                       # (N, C, *) input (under the CuPy kernels, its values stored channels-last)
    mean: Array                    # (C,) the mean subtracted: the batch's when training, running_mean in eval
    inv_std: Array                 # (C,) 1 / sqrt(var + eps)
    gamma: Optional[Array]         # (C,) scale, or None (no affine parameters)
    training: bool                 # batch statistics (their gradient flows back through mean and var)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, statistics per channel (axis 1).

    Training: batch mean and biased variance over every axis but 1; the running
    statistics (updated in place) take the unbiased variance, as in PyTorch:
    running = (1 - momentum) * running + momentum * batch.
    Eval: the running statistics. x: (N, C) or (N, C, *) -> y: same shape and memory layout.
    Cache: ``BatchNormCache(x, mean, inv_std, gamma, training)``; the backward recomputes
    xc = x - mean (xhat = xc * inv_std is never stored).
    """
    if _batchnorm_by_kernels(x):
        out, x, mean, inv_std = kernels.batchnorm_forward(x, gamma, beta, running_mean, running_var,
                                                          training, momentum, eps)
        return out, BatchNormCache(x, mean, inv_std, gamma, training)
    xp = get_array_module(x)
    shape = (1, -1) + (1,) * (x.ndim - 2)                              # broadcast (C,) over x
    if training:
        count = x.size // x.shape[1]
        if count < 2:
            raise ValueError(f"BatchNorm: expected more than 1 value per channel when training, got input shape {tuple(x.shape)}")
        mean = _channel_sum(x) / count
        xc = x - mean.reshape(shape)                                   # two passes for the variance: no
        var = _channel_dot(xc, xc) / count                             # cancellation when |mean| >> std
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += (momentum * count / (count - 1)) * var
    else:
        mean, var = running_mean, running_var
        xc = x - mean.reshape(shape)
    inv_std = 1 / xp.sqrt(var + eps)                                   # (C,)
    scale = inv_std if gamma is None else gamma * inv_std
    out = xp.multiply(xc, scale.reshape(shape), out=xc)                # = gamma * xhat, in xc's buffer
    if beta is not None:
        out += beta.reshape(shape)
    return out, BatchNormCache(x, mean, inv_std, gamma, training)


def batchnorm_backward(dout, cache):
    """With M values per channel, xhat = xc * inv_std and k = gamma * inv_std:

    training: dx = k * (dout - mean(dout) - xhat * mean(dout * xhat))   (the cross-batch terms)
                 = k * dout - xc * (k * inv_std * dgamma / M) - k * dbeta / M
    eval:     dx = k * dout
    dgamma = sum(dout * xhat) = inv_std * sum(dout * xc), dbeta = sum(dout).
    """
    if _batchnorm_by_kernels(dout):
        return kernels.batchnorm_backward(dout, cache.x, cache.mean, cache.inv_std, cache.gamma, cache.training)
    inv_std, gamma = cache.inv_std, cache.gamma
    shape = (1, -1) + (1,) * (dout.ndim - 2)
    xc = cache.x - cache.mean.reshape(shape)                           # as in the forward
    dbeta = _channel_sum(dout)
    dgamma = _channel_dot(dout, xc) * inv_std
    k = inv_std * gamma if gamma is not None else inv_std
    dx = dout * k.reshape(shape)
    if cache.training:
        m = xc.size // xc.shape[1]
        xc *= (k * inv_std * dgamma / m).reshape(shape)               # in place: xc is this function's own
        dx -= xc
        dx -= (k * dbeta / m).reshape(shape)
    return dx, (dgamma if gamma is not None else None), (dbeta if gamma is not None else None)


class SyncBatchNormCache(NamedTuple):
    norm: BatchNormCache           # as BatchNorm's, with the statistics of the whole batch
    count: int                     # M, the values per channel over every rank


def sync_batchnorm_forward(x, gamma, beta, running_mean, running_var, group, momentum=0.1, eps=1e-5):
    """BatchNorm's training forward over a batch split across the ranks of ``group``
    (``npgan.comm``): every rank holds a slice x_r and all use the statistics of the whole batch.

        allreduce [sum(x_r), count_r]  -> M, mean = sum / M                 (per channel)
        allreduce sum((x_r - mean)^2)  -> var = that / M                     (biased; running: unbiased)
        y_r = gamma * (x_r - mean) / sqrt(var + eps) + beta

    Two reductions, as the one-process forward takes two passes: the one-pass sum(x^2)/M - mean^2
    cancels catastrophically in float32 where |mean| >> std, so it would not reproduce it.
    The running statistics move identically on every rank. x_r: (N_r, C) or (N_r, C, *).
    Cache: ``SyncBatchNormCache(norm, count)``.
    """
    xp = get_array_module(x)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    c = x.shape[1]
    sums = xp.concatenate([_channel_sum(x), xp.asarray([x.size // c], dtype=x.dtype)])
    group.allreduce(sums)                                              # counts are exact in float32 up to 2^24
    count = int(sums[-1])
    if count < 2:
        raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over the ranks when training, "
                         f"got {count}")
    mean = sums[:c] / count
    xc = x - mean.reshape(shape)
    var = group.allreduce(_channel_dot(xc, xc)) / count
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * count / (count - 1)) * var
    inv_std = 1 / xp.sqrt(var + eps)
    scale = inv_std if gamma is None else gamma * inv_std
    out = xp.multiply(xc, scale.reshape(shape), out=xc)
    if beta is not None:
        out += beta.reshape(shape)
    return out, SyncBatchNormCache(BatchNormCache(x, mean, inv_std, gamma, True), count)


def sync_batchnorm_backward(dout, cache, group):
    """BatchNorm's training backward with the cross-batch sums taken over every rank::

        allreduce [sum(dout_r), sum(dout_r * xc_r)]  -> B, Gc           (per channel)
        dx_r = k * dout_r - xc_r * (k * inv_std^2 * Gc / M) - k * B / M,   k = gamma * inv_std

    dx_r is the gradient of the sum of the ranks' losses (each rank's dout its own loss's): with
    the ranks' losses the means of their slices, as in data-parallel training, it is N times the
    one-process gradient of the whole batch's mean loss, and averaging the parameter gradients
    over the N ranks (``npgan.gan.parallel``) gives the one-process ones. So dgamma and dbeta are
    this rank's own sums, sum(dout_r * xhat_r) and sum(dout_r), averaged with the rest."""
    xp = get_array_module(dout)
    norm = cache.norm
    inv_std, gamma = norm.inv_std, norm.gamma
    shape = (1, -1) + (1,) * (dout.ndim - 2)
    xc = norm.x - norm.mean.reshape(shape)
    c = dout.shape[1]
    local = xp.concatenate([_channel_sum(dout), _channel_dot(dout, xc)])
    dbeta, dgamma = local[:c], local[c:] * inv_std
    total = group.allreduce(local.copy())
    k = inv_std * gamma if gamma is not None else inv_std
    dx = dout * k.reshape(shape)
    xc *= (k * inv_std * inv_std * total[c:] / cache.count).reshape(shape)
    dx -= xc
    dx -= (k * total[:c] / cache.count).reshape(shape)
    return dx, (dgamma if gamma is not None else None), (dbeta if gamma is not None else None)


# ---------------------------------------------------------------- activations
def _activations_by_kernels(a):
    """ReLU's and LeakyReLU's backend choice, for arrays like ``a``: on CuPy with kernels on,
    one elementwise kernel per call (``kernels.relu_forward``, ``kernels.relu_backward``,
    ``kernels.leaky_relu_forward``, ``kernels.leaky_relu_backward``), writing its output in
    its input's memory layout."""
    return kernels.available(get_array_module(a))


class ReluCache(NamedTuple):
    out: Array                     # y = max(x, 0), x's shape and memory layout: dy/dx = 1 where y > 0


def relu_forward(x):
    """y = max(x, 0).   Cache: ``ReluCache(out)``."""
    out = kernels.relu_forward(x) if _activations_by_kernels(x) else get_array_module(x).maximum(x, 0)
    return out, ReluCache(out)


def relu_backward(dout, cache):
    """dx = dout where y > 0, else 0."""
    if _activations_by_kernels(dout):
        return kernels.relu_backward(dout, cache.out)
    xp = get_array_module(dout)
    # dx in y's (that is x's) memory layout, channels-last after a conv, whatever layout dout
    # comes in: the layers before then all work in one layout (mixed-layout operations are slower)
    return xp.multiply(dout, cache.out > 0, out=xp.empty_like(cache.out, dtype=dout.dtype))


class LeakyReluCache(NamedTuple):
    x: Array                       # the input
    negative_slope: float          # dy/dx where x <= 0


def leaky_relu_forward(x, negative_slope=0.01):
    """y = x if x > 0 else negative_slope * x.   Cache: ``LeakyReluCache(x, negative_slope)``."""
    cache = LeakyReluCache(x, negative_slope)
    if _activations_by_kernels(x):
        return kernels.leaky_relu_forward(x, negative_slope), cache
    xp = get_array_module(x)
    a = x.dtype.type(negative_slope)
    if 0 < a <= 1:                                                     # where max(x, a*x) is the definition, bit for bit
        return xp.maximum(x, x * a), cache
    return x * _leaky_relu_slope(x, negative_slope), cache


def leaky_relu_backward(dout, cache):
    """dx = dout * slope, slope = 1 where x > 0, else negative_slope."""
    if _activations_by_kernels(dout):
        return kernels.leaky_relu_backward(dout, cache.x, cache.negative_slope)
    slope = _leaky_relu_slope(cache.x, cache.negative_slope)
    return get_array_module(dout).multiply(dout, slope, out=slope)    # in x's memory layout, as relu_backward


def _leaky_relu_slope(x, negative_slope):
    """1 where x > 0, else negative_slope, in x's dtype and memory layout: (x > 0) * (1 - a) + a,
    plain arithmetic, several times faster than xp.where on NumPy."""
    slope = get_array_module(x).multiply(x > 0, 1 - negative_slope, dtype=x.dtype)
    slope += negative_slope
    return slope


class EluCache(NamedTuple):
    x: Array                       # the input
    neg: Array                     # alpha * (exp(min(x, 0)) - 1), the negative branch of y
    alpha: float


def elu_forward(x, alpha=1.0):
    """y = x if x > 0 else alpha * (exp(x) - 1).   Cache: ``EluCache(x, neg, alpha)``."""
    xp = get_array_module(x)
    neg = alpha * xp.expm1(xp.minimum(x, 0))
    out = xp.where(x > 0, x, neg)
    return out, EluCache(x, neg, alpha)


def elu_backward(dout, cache):
    """dy/dx = 1 if x > 0 else y + alpha."""
    xp = get_array_module(dout)
    x = cache.x
    return dout * xp.where(x > 0, x.dtype.type(1), cache.neg + x.dtype.type(cache.alpha))


class TanhCache(NamedTuple):
    out: Array                     # y = tanh(x)


def tanh_forward(x):
    """y = tanh(x).   Cache: ``TanhCache(out)``."""
    out = get_array_module(x).tanh(x)
    return out, TanhCache(out)


def tanh_backward(dout, cache):
    """dy/dx = 1 - y^2."""
    out = cache.out
    return dout * (1 - out * out)


class SigmoidCache(NamedTuple):
    out: Array                     # y = sigmoid(x)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), computed without overflow for large |x|.   Cache: ``SigmoidCache(out)``."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return out, SigmoidCache(out)


def sigmoid_backward(dout, cache):
    """dy/dx = y (1 - y)."""
    out = cache.out
    return dout * out * (1 - out)


# ---------------------------------------------------------------- pooling and resizing
class MaxPoolCache(NamedTuple):
    arg: Array                     # (N*C*OH*OW,) index of each window's maximum in its column
    cols_shape: Tuple[int, int]    # (KH*KW, N*C*OH*OW) of the windows' columns
    x_shape: Tuple[int, ...]       # (N, C, H, W) of the input
    kernel_size: Pair              # (kh, kw)
    stride: Pair                   # (sh, sw)
    padding: Pair                  # (ph, pw)


def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """y = max over each KHxKW window (padding counts as -inf). x: (N, C, H, W) -> (N, C, OH, OW).

    Cache: ``MaxPoolCache(arg, cols_shape, x_shape, kernel_size, stride, padding)``.
    """
    xp = get_array_module(x)
    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    kernel_size, stride, padding = pair(kernel_size), pair(stride), pair(padding)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = im2col(x.reshape(n * c, 1, h, w), kernel_size, stride, padding, pad_value=-xp.inf)  # (KH*KW, N*C*OH*OW)
    arg = cols.argmax(axis=0)
    out = xp.take_along_axis(cols, arg[None], axis=0).reshape(n, c, oh, ow)
    return out, MaxPoolCache(arg, cols.shape, x.shape, kernel_size, stride, padding)


def max_pool2d_backward(dout, cache):
    """The gradient goes to the arg-max of each window (first one on ties)."""
    xp = get_array_module(dout)
    n, c, h, w = cache.x_shape
    dcols = xp.zeros(cache.cols_shape, dtype=dout.dtype)                  # (KH*KW, N*C*OH*OW)
    # one entry per window, so a plain fancy-index assignment (put_along_axis is CuPy >= 14 only)
    dcols[cache.arg, xp.arange(dcols.shape[1])] = dout.reshape(-1)
    dx = col2im(dcols, (n * c, 1, h, w), cache.kernel_size, cache.stride, cache.padding)
    return xp.ascontiguousarray(dx).reshape(cache.x_shape)


class AvgPoolCache(NamedTuple):
    x_shape: Tuple[int, ...]       # (N, C, H, W) of the input
    kernel_size: Pair              # (kh, kw)
    stride: Pair                   # (sh, sw)
    padding: Pair                  # (ph, pw)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """y = mean over each KHxKW window, zero padding counted (count_include_pad=True).

    Cache: ``AvgPoolCache(x_shape, kernel_size, stride, padding)``.
    """
    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    kernel_size, stride, padding = pair(kernel_size), pair(stride), pair(padding)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = im2col(x.reshape(n * c, 1, h, w), kernel_size, stride, padding)
    out = cols.mean(axis=0).reshape(n, c, oh, ow)
    return out, AvgPoolCache(x.shape, kernel_size, stride, padding)


def avg_pool2d_backward(dout, cache):
    """Each window's gradient is spread evenly over its KH*KW entries."""
    xp = get_array_module(dout)
    n, c, h, w = cache.x_shape
    kh, kw = cache.kernel_size
    dcols = xp.broadcast_to(dout.reshape(1, -1) / (kh * kw), (kh * kw, dout.size))
    dx = col2im(xp.ascontiguousarray(dcols), (n * c, 1, h, w), cache.kernel_size, cache.stride, cache.padding)
    return xp.ascontiguousarray(dx).reshape(cache.x_shape)


class UpsampleCache(NamedTuple):
    scale: int                     # the integer scale factor s


def upsample_nearest_forward(x, scale_factor):
    """Nearest-neighbour upsampling by an integer factor: (N, C, H, W) -> (N, C, H*s, W*s).

    Cache: ``UpsampleCache(scale)``.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    s = int(scale_factor)
    out = xp.broadcast_to(x[:, :, :, None, :, None], (n, c, h, s, w, s)).reshape(n, c, h * s, w * s)
    return out, UpsampleCache(s)


def upsample_nearest_backward(dout, cache):
    """Each input pixel receives the sum of its s x s copies."""
    s = cache.scale
    n, c, hs, ws = dout.shape
    return dout.reshape(n, c, hs // s, s, ws // s, s).sum(axis=(3, 5))


# ---------------------------------------------------------------- channel-wise fully connected
class ChannelwiseLinearCache(NamedTuple):
    x_c: Array                     # (C, N, H*W) the input, channel-major
    x_shape: Tuple[int, ...]       # (N, C, H, W) of the input
    w: Array                       # (C, OH*OW, H*W) weight
    has_bias: bool                 # whether the forward added b (db is None otherwise)


def channelwise_linear_forward(x, w, b):
    """Context Encoders' channel-wise FC: a dense map over spatial positions, one per channel.

    y[n, c, :] = w[c] @ x[n, c, :] + b[c]   (no mixing across channels).
    x: (N, C, H, W), w: (C, OH*OW, H*W), b: (C, OH*OW) or None -> y: (N, C, OH*OW).
    Cache: ``ChannelwiseLinearCache(x_c, x_shape, w, has_bias)``.
    """
    n, c = x.shape[:2]
    x_c = x.reshape(n, c, -1).transpose(1, 0, 2)                       # (C, N, H*W)
    out = x_c @ w.transpose(0, 2, 1)                                   # (C, N, OH*OW)
    if b is not None:
        out += b[:, None, :]
    return out.transpose(1, 0, 2), ChannelwiseLinearCache(x_c, x.shape, w, b is not None)


def channelwise_linear_backward(dout, cache):
    """dx_c = dout_c @ w[c];  dw[c] = dout_c^T x_c;  db[c] = sum_n dout_c."""
    d_c = dout.transpose(1, 0, 2)                                      # (C, N, OH*OW)
    dx = (d_c @ cache.w).transpose(1, 0, 2).reshape(cache.x_shape)
    dw = d_c.transpose(0, 2, 1) @ cache.x_c
    db = d_c.sum(axis=1) if cache.has_bias else None
    return dx, dw, db


# ---------------------------------------------------------------- crop and paste
def crop_forward(x, top, left, patch):
    """Per-sample crops: out[n] = x[n, :, top[n]:top[n]+patch, left[n]:left[n]+patch].

    x: (N, C, H, W); top, left: (N,) integer arrays -> (N, C, patch, patch).
    """
    xp = get_array_module(x)
    r = xp.arange(patch)
    rows = (top[:, None] + r)[:, :, None]                                       # (N, P, 1)
    cols = (left[:, None] + r)[:, None, :]                                      # (N, 1, P)
    n = xp.arange(x.shape[0])[:, None, None]
    out = x[n, :, rows, cols]                                                   # (N, P, P, C)
    return xp.ascontiguousarray(out.transpose(0, 3, 1, 2)), (x.shape, n, rows, cols)


def crop_backward(dout, cache):
    """The crop's adjoint: dout pasted into zeros at the crop positions (one crop per sample,
    so no position is written twice)."""
    x_shape, n, rows, cols = cache
    xp = get_array_module(dout)
    dx = xp.zeros(x_shape, dtype=dout.dtype)
    dx[n, :, rows, cols] = dout.transpose(0, 2, 3, 1)
    return dx


def composite(pred, x, mask):
    """Paste the hole: known pixels from ``x``, hole pixels (mask 1) from ``pred``:
    pred * m + x * (1 - m). Shapes: (N, C, H, W), mask (N, 1, H, W). d/dpred = dout * m."""
    return pred * mask + x * (1 - mask)


# ---------------------------------------------------------------- differentiable augmentation (DiffAugment)
# Zhao et al. (2020) show D every image, real or generated, through the same random transforms;
# G's gradient flows back through them. Each op takes its per-sample parameters as arrays, so the
# caller draws them (npgan.gan.view) and the op stays a pure function.
class TranslateCache(NamedTuple):
    shift_y: Array                      # (N,) integer shifts the forward used
    shift_x: Array


def translate_forward(x, shift_y, shift_x, fill=0.0):
    """Shift each image by whole pixels: out[n, c, i, j] = x[n, c, i + shift_y[n], j + shift_x[n]]
    where that pixel exists, ``fill`` where it does not (DiffAugment's ``rand_translation``).

    x: (N, C, H, W); shift_y, shift_x: (N,) integers -> (N, C, H, W). Cache: TranslateCache.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    padded = xp.full((n, c, h + 2, w + 2), fill, dtype=x.dtype)                # one pixel of fill all round
    padded[:, :, 1:-1, 1:-1] = x
    rows = xp.clip(xp.arange(h)[None, :] + shift_y[:, None], -1, h) + 1         # (N, H) rows of padded
    cols = xp.clip(xp.arange(w)[None, :] + shift_x[:, None], -1, w) + 1         # (N, W)
    out = padded[xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]               # (N, C, H, W)
    return out, TranslateCache(shift_y, shift_x)


def translate_backward(dout, cache):
    """dx[k] = dout[k - shift] where that exists, else 0: the shift back with a zero fill (each
    input pixel lands on at most one output pixel, and the fill does not depend on x)."""
    return translate_forward(dout, -cache.shift_y, -cache.shift_x, fill=0.0)[0]


class CutoutCache(NamedTuple):
    keep: Array                         # (N, 1, H, W) 1 outside the cut square, 0 inside


def cutout_forward(x, top, left, size, fill=0.0):
    """Cut one square per image: out = x * keep + fill * (1 - keep), where keep is 0 on rows
    top[n] .. top[n]+size[0]-1 and columns left[n] .. left[n]+size[1]-1 (clipped to the image;
    DiffAugment's ``rand_cutout``, which fills with 0).

    x: (N, C, H, W); top, left: (N,) integers; size: (rows, cols) -> (N, C, H, W). Cache: CutoutCache.
    """
    xp = get_array_module(x)
    _, _, h, w = x.shape
    r, c = xp.arange(h)[None, :], xp.arange(w)[None, :]
    in_rows = (r >= top[:, None]) & (r < top[:, None] + size[0])               # (N, H)
    in_cols = (c >= left[:, None]) & (c < left[:, None] + size[1])             # (N, W)
    keep = (~(in_rows[:, :, None] & in_cols[:, None, :]))[:, None].astype(x.dtype)   # (N, 1, H, W)
    out = x * keep
    if fill:
        out += x.dtype.type(fill) * (1 - keep)
    return out, CutoutCache(keep)


def cutout_backward(dout, cache):
    """dx = dout * keep: the cut pixels are the constant fill."""
    return dout * cache.keep


class ScaleAboutMeanCache(NamedTuple):
    scale: Array                        # (N, 1, 1, 1)
    axes: Tuple[int, ...]


def scale_about_mean_forward(x, scale, axes):
    """out = (x - m) * s + m with m = mean of x over ``axes`` per image: DiffAugment's contrast
    (axes (1, 2, 3), s in [0.5, 1.5)) and saturation (axes (1,), s in [0, 2); no-op on one channel).

    x: (N, C, H, W); scale: (N,) -> (N, C, H, W). Cache: ScaleAboutMeanCache.
    """
    s = scale.astype(x.dtype).reshape(-1, 1, 1, 1)
    m = x.mean(axis=axes, keepdims=True)
    return x + (s - 1) * (x - m), ScaleAboutMeanCache(s, tuple(axes))        # exactly x where s is 1


def scale_about_mean_backward(dout, cache):
    """dx = s * dout + (1 - s) * mean(dout over axes): each input moves the mean by 1/M."""
    s = cache.scale
    return s * dout + (1 - s) * dout.mean(axis=cache.axes, keepdims=True)


def add_per_sample(x, offset):
    """out = x + offset[n] (DiffAugment's brightness, offset in [-0.5, 0.5)); dx = dout."""
    return x + offset.astype(x.dtype).reshape(-1, 1, 1, 1)


# ---------------------------------------------------------------- image-to-image translation (CycleGAN)
class InstanceNormCache(NamedTuple):
    xhat: Array                    # (N, C, H, W) the normalised input (x - mean) * inv_std
    inv_std: Array                 # (N, C, 1, 1) 1 / sqrt(var + eps), per sample and channel
    gamma: Optional[Array]         # (C,) scale, or None (no affine parameters)


def instance_norm_forward(x, gamma, beta, eps=1e-5):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, statistics per sample and channel.

    mean and the biased variance are taken over H, W of each (n, c), in training and in eval
    alike (PyTorch's InstanceNorm2d without running statistics). x: (N, C, H, W), gamma, beta:
    (C,) or None -> y: (N, C, H, W).
    Cache: ``InstanceNormCache(xhat, inv_std, gamma)``.
    """
    xp = get_array_module(x)
    count = x.shape[2] * x.shape[3]
    mean = x.sum(axis=(2, 3), keepdims=True) / count                   # (N, C, 1, 1)
    xc = x - mean                                                      # two passes for the variance
    var = (xc * xc).sum(axis=(2, 3), keepdims=True) / count            # (N, C, 1, 1), biased
    inv_std = 1 / xp.sqrt(var + eps)
    xhat = xc * inv_std                                                # (N, C, H, W)
    out = xhat if gamma is None else xhat * gamma.reshape(1, -1, 1, 1)
    if beta is not None:
        out = out + beta.reshape(1, -1, 1, 1)
    return out, InstanceNormCache(xhat, inv_std, gamma)


def instance_norm_backward(dout, cache):
    """BatchNorm's training-mode backward, per (n, c) over its M = H*W values:

    dxhat = gamma * dout
    dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))      (means over H, W)
    dgamma = sum_{n,h,w} dout * xhat,   dbeta = sum_{n,h,w} dout.
    Returns (dx, dgamma, dbeta); dgamma and dbeta are None without affine parameters.
    """
    xhat, inv_std, gamma = cache
    m = xhat.shape[2] * xhat.shape[3]
    dxhat = dout if gamma is None else dout * gamma.reshape(1, -1, 1, 1)
    mean_d = dxhat.sum(axis=(2, 3), keepdims=True) / m                 # (N, C, 1, 1)
    mean_dx = (dxhat * xhat).sum(axis=(2, 3), keepdims=True) / m       # (N, C, 1, 1)
    dx = (dxhat - mean_d - xhat * mean_dx) * inv_std
    if gamma is None:
        return dx, None, None
    return dx, (dout * xhat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))


class ReflectionPadCache(NamedTuple):
    x_shape: Tuple[int, ...]       # (*, H, W) of the input
    padding: Tuple[int, int, int, int]   # (left, right, top, bottom)


def reflection_pad_indices(xp, size, before, after):
    """Source index of each padded position along one axis, reflected about the edges
    without repeating them: i in [-before, size + after) -> (size-1) - |(size-1) - |i||.
    Needs before, after < size. E.g. size 4, pads 2, 1: [2, 1, 0, 1, 2, 3, 2]."""
    last = size - 1
    return last - xp.abs(last - xp.abs(xp.arange(-before, size + after)))


def reflection_pad_forward(x, padding):
    """Pad the last two axes by reflection: y = x[..., rows, :][..., cols] with the
    ``reflection_pad_indices`` of each axis (equivalently y = R_h x R_w^T with 0/1 matrices
    R[o, i] = 1 where row o copies row i).

    x: (*, H, W), padding (left, right, top, bottom), each < the size of its axis
    -> y: (*, H + top + bottom, W + left + right).
    Cache: ``ReflectionPadCache(x_shape, padding)``.
    """
    xp = get_array_module(x)
    left, right, top, bottom = padding
    h, w = x.shape[-2:]
    rows = reflection_pad_indices(xp, h, top, bottom)                  # (OH,)
    cols = reflection_pad_indices(xp, w, left, right)                  # (OW,)
    out = x.take(rows, axis=-2).take(cols, axis=-1)                    # (*, OH, OW)
    return out, ReflectionPadCache(tuple(x.shape), tuple(padding))


def _fold_reflection(d, axis, size, before, after):
    """The adjoint of padding one axis: the centre of d, plus each reflected slice added back
    onto the rows it copied (dx = R^T d). Pad row ``before - 1 - k`` copied row k + 1 and pad
    row ``before + size + k`` copied row size - 2 - k, so each pad block lands, flipped, on
    rows 1..before and size-1-after..size-2."""
    def part(start, stop, step=1):
        index = [slice(None)] * d.ndim
        index[axis] = slice(start, stop, step)
        return tuple(index)
    dx = d[part(before, before + size)].copy()                         # the centre, a new array
    dx[part(1, before + 1)] += d[part(0, before)][part(None, None, -1)]
    dx[part(size - 1 - after, size - 1)] += d[part(before + size, before + size + after)][part(None, None, -1)]
    return dx


def reflection_pad_backward(dout, cache):
    """dx = R_h^T dout R_w: every padded entry's gradient added onto the entry it copied."""
    left, right, top, bottom = cache.padding
    h, w = cache.x_shape[-2:]
    d = _fold_reflection(dout, dout.ndim - 2, h, top, bottom)          # (*, H, OW)
    return _fold_reflection(d, dout.ndim - 1, w, left, right)          # (*, H, W)


# ---------------------------------------------------------------- minibatch standard deviation
class MinibatchStdDevCache(NamedTuple):
    xc: Array                      # (G, M, C, H, W) the input in groups, minus its group mean
    std: Array                     # (M, C, H, W) sqrt(biased variance over each group + eps)


def minibatch_stddev_forward(x, group_size=4, eps=1e-8):
    """Karras et al. 2018's minibatch standard deviation: one extra channel holding how much
    the samples of each group differ, the layout of StyleGAN2's ``MinibatchStdLayer``.

    With G = min(group_size, N) and M = N / G, sample n = g*M + m is member g of group m
    (y = x.reshape(G, M, C, H, W), so a group takes every M-th sample)::

        mu_m    = mean_g y[g, m]                              (M, C, H, W)
        std_m   = sqrt(mean_g (y[g, m] - mu_m)^2 + eps)       biased variance, eps inside the root
        s_m     = mean_{c,h,w} std_m                          one number per group
        out[n]  = concat(x[n], s_m tiled to (1, H, W))        along channels

    Args:
        x: (N, C, H, W), N a multiple of min(group_size, N).
        group_size: G, the samples one statistic is taken over (default 4); G >= N makes the
            whole batch one group.
        eps: added to the variance inside the square root (1e-8, as StyleGAN2).
    Shape: (N, C, H, W) -> (N, C + 1, H, W).
    Cache: ``MinibatchStdDevCache(xc, std)``.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    g = min(int(group_size), n)
    if g < 1:
        raise ValueError(f"minibatch_stddev: group_size must be a positive integer, got {group_size!r}")
    if n % g:
        raise ValueError(f"minibatch_stddev: the batch size N={n} is not divisible by the group size "
                         f"{g} (group_size={group_size}): use a batch that is a multiple of it")
    m = n // g
    y = x.reshape(g, m, c, h, w)                                       # y[g, m] = x[g*M + m]
    xc = y - y.mean(axis=0)                                            # (G, M, C, H, W)
    std = xp.sqrt((xc * xc).mean(axis=0) + eps)                        # (M, C, H, W)
    s = std.mean(axis=(1, 2, 3))                                       # (M,)
    s_map = xp.broadcast_to(s[None, :, None, None, None], (g, m, 1, h, w)).reshape(n, 1, h, w)
    return xp.concatenate([x, s_map], axis=1), MinibatchStdDevCache(xc, std)   # (N, C + 1, H, W)


def minibatch_stddev_backward(dout, cache):
    """dx = dout[:, :C] + the statistic channel's share, for sample n = g*M + m::

        ds_m  = sum over the members of group m and H, W of dout[:, C]      (M,)
        dx[n] = dout[n, :C] + ds_m / (C*H*W*G) * (x[n] - mu_m) / std_m

    (d std / d y[g] = (y[g] - mu) / (G std); the mean's own term drops out because the
    deviations of a group sum to zero.)
    """
    xc, std = cache
    g, m, c, h, w = xc.shape
    ds = dout[:, c].reshape(g, m, h, w).sum(axis=(0, 2, 3))            # (M,)
    scale = ds[:, None, None, None] / (c * h * w * g) / std            # (M, C, H, W)
    return dout[:, :c] + (scale * xc).reshape(g * m, c, h, w)          # (N, C, H, W)
