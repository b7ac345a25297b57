"""Stateless forward/backward pairs, written by hand.

Every op comes as ``out, cache = op_forward(...)`` and ``grads = op_backward(dout, cache)``
with gradients returned in input order (CS231n style). Backward functions never
write into ``dout``. The array module comes from the inputs, so the same code runs
on NumPy and on CuPy.
"""
from . import kernels
from .backend import get_array_module
from .im2col import col2im, col2im_taps, conv_output_size, conv_transpose_output_size, im2col, im2col_nhwc, nhwc, pair


def _matmul(a, b):
    """a @ b for 2-D arrays; on CuPy through kernels.matmul, which a CUDA-graph capture can record."""
    if kernels.available(get_array_module(a)):
        return kernels.matmul(a, b)
    return a @ b


# ---------------------------------------------------------------- linear
def linear_forward(x, w, b):
    """y = x @ w.T + b.   x: (*, in), w: (out, in), b: (out,) or None -> y: (*, out)."""
    out = _matmul(x.reshape(-1, x.shape[-1]), w.T).reshape(x.shape[:-1] + (w.shape[0],))
    if b is not None:
        out += b
    return out, (x, w, b is not None)


def linear_backward(dout, cache, need_dx=True, need_dw=True):
    """dx = dout @ w;  dw = dout^T x (summed over leading dims);  db = sum dout.

    ``need_dx=False`` skips dx (returned as None), e.g. for a generator's input noise;
    ``need_dw=False`` skips dw and db (None), e.g. for a frozen discriminator.
    """
    x, w, has_bias = cache
    x2 = x.reshape(-1, x.shape[-1])
    d2 = dout.reshape(-1, dout.shape[-1])
    dx = None
    if need_dx:
        # one output feature (a discriminator's logit): the product has inner size 1, where a
        # broadcast multiply is ~10x faster than BLAS (0.04 against 0.45 ms at 64 x 6272)
        dx = (d2 * w if w.shape[0] == 1 else _matmul(d2, w)).reshape(x.shape)
    if not need_dw:
        return dx, None, None
    dw = _matmul(d2.T, x2)
    db = d2.sum(axis=0) if has_bias else None
    return dx, dw, db


# ---------------------------------------------------------------- per-channel sums
def _channel_rows(a):
    """(N, C, *) -> its (M, C) channel rows as a view, or None when channels are not its fastest axis."""
    if a.ndim == 2:
        return a
    rows = a.transpose((0,) + tuple(range(2, a.ndim)) + (1,))
    return rows.reshape(-1, a.shape[1]) if rows.flags.c_contiguous else None


def _channel_sum(a):
    """sum of a over every axis but 1 -> (C,).

    On (M, C) rows (channels-last or 2-D arrays) as the product ones(M) @ rows: BLAS reads
    the rows once on every core, ~3x faster than NumPy's axis-0 reduction (0.10 against
    0.30 ms at 12544 x 64)."""
    xp = get_array_module(a)
    rows = _channel_rows(a)
    if rows is None or kernels.available(xp):
        return a.sum(axis=(0,) + tuple(range(2, a.ndim)))
    return xp.ones(rows.shape[0], dtype=a.dtype) @ rows


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
def _rows(x):
    """(N, C, H, W) -> (N*H*W, C) channels-last rows (no copy when x is stored channels-last)."""
    return nhwc(x).reshape(-1, x.shape[1])


def _from_rows(rows, n, h, w):
    """(N*H*W, C) rows -> the (N, C, H, W) view (channels-last storage)."""
    return rows.reshape(n, h, w, -1).transpose(0, 3, 1, 2)


def _col2im_of_products(rows, w_taps, x_shape, grid, stride, padding, dilation):
    """col2im(rows @ w_taps): the transposed convolution behind conv2d's dx and ConvTranspose2d.

    rows (N*OH*OW, K) on the grid (OH, OW), w_taps (KH, KW, K, C): every tap's product
    rows @ w_taps[ky, kx] is added onto the pixels that tap reads -> (N, C, H, W) channels-last.
    NumPy: one product per tap (tap-major, so col2im adds contiguous blocks), or, for kernels
    that are a multiple of the stride (DCGAN's k4 s2), one product on space-to-depth blocks.
    CuPy kernels: one product (N*OH*OW, KH*KW*C) and one gather kernel.
    """
    xp = get_array_module(rows)
    kh, kw, k, c = w_taps.shape
    n, (oh, ow) = x_shape[0], grid
    if kernels.available(xp):
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
    cols = im2col_nhwc(_from_rows(rows, n, oh, ow), (th, tw), 1, (th - 1, tw - 1))   # (N*HS*WS, TH*TW*K)
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


def conv2d_forward(x, w, b, stride=1, padding=0, dilation=1):
    """y[n,f] = sum_c w[f,c] (*) x[n,c] + b[f]  (cross-correlation, as in PyTorch).

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) or None -> y: (N, F, OH, OW) stored channels-last,
    OH = floor((H + 2*pad - dil*(KH-1) - 1) / stride) + 1.
    As one matrix product: y_rows = im2col(x) @ w_rows^T, (N*OH*OW, KH*KW*C) @ (KH*KW*C, F).
    """
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(wd, kw, sw, pw, dw)
    cols = im2col_nhwc(x, (kh, kw), stride, padding, dilation)        # (N*OH*OW, KH*KW*C)
    w_rows = w.transpose(0, 2, 3, 1).reshape(f, -1)                   # (F, KH*KW*C), small copy
    out = _matmul(cols, w_rows.T)                                     # (N*OH*OW, F)
    if b is not None:
        out += b
    cache = (x.shape, w, cols, w_rows, b is not None, stride, padding, dilation)
    return _from_rows(out, n, oh, ow), cache


def conv2d_backward(dout, cache, need_dx=True, need_dw=True):
    """dw = dout_rows^T cols;  db = sum dout;  dx = col2im(dout_rows @ w_taps) (a transposed conv).

    ``need_dx=False`` skips dx (returned as None): a first layer's input needs no gradient;
    ``need_dw=False`` skips dw and db (None): a frozen layer's parameters.
    """
    x_shape, w, cols, w_rows, has_bias, stride, padding, dilation = cache
    f, c, kh, kw = w.shape
    n, _, oh, ow = dout.shape
    d_rows = _rows(dout)                                              # (N*OH*OW, F)
    dw = db = dx = None
    if need_dw:
        dw = _matmul(d_rows.T, cols).reshape(f, kh, kw, c).transpose(0, 3, 1, 2)
        db = _channel_sum(d_rows) if has_bias else None
    if need_dx:
        dx = _col2im_of_products(d_rows, w.transpose(2, 3, 0, 1), x_shape, (oh, ow), stride, padding, dilation)
    return dx, dw, db


def conv_transpose2d_forward(x, w, b, stride=1, padding=0, output_padding=0, dilation=1):
    """The adjoint of conv2d with respect to its input (PyTorch's ConvTranspose2d).

    x: (N, Cin, H, W), w: (Cin, Cout, KH, KW), b: (Cout,) or None -> y: (N, Cout, OH, OW)
    stored channels-last, OH = (H-1)*stride - 2*pad + dil*(KH-1) + output_padding + 1.
    Each input pixel scatters w[cin] * x into a KHxKW window: y = col2im(x_rows @ w_taps).
    """
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = map(pair, (stride, padding, output_padding, dilation))
    oh = conv_transpose_output_size(h, kh, sh, ph, oph, dh)
    ow = conv_transpose_output_size(wd, kw, sw, pw, opw, dw)
    x_rows = _rows(x)                                                 # (N*H*W, Cin)
    out = _col2im_of_products(x_rows, w.transpose(2, 3, 0, 1), (n, cout, oh, ow), (h, wd), stride, padding, dilation)
    if b is not None:
        out_nhwc = out.transpose(0, 2, 3, 1)                          # a contiguous view: add in memory order
        out_nhwc += b
    cache = (x_rows, x.shape, w, b is not None, stride, padding, dilation)
    return out, cache


def conv_transpose2d_backward(dout, cache, need_dx=True, need_dw=True):
    """dx = conv2d(dout, w) (im2col of dout);  dw = x_rows^T cols;  db = sum dout.

    ``need_dx`` / ``need_dw`` False skip dx / (dw, db), returned as None."""
    x_rows, x_shape, w, has_bias, stride, padding, dilation = cache
    n, cin, h, wd = x_shape
    _, cout, kh, kw = w.shape
    cols = im2col_nhwc(dout, (kh, kw), stride, padding, dilation, out_size=(h, wd))  # (N*H*W, KH*KW*Cout)
    dw = db = dx = None
    if need_dw:
        dw = _matmul(x_rows.T, cols).reshape(cin, kh, kw, cout).transpose(0, 3, 1, 2)
        db = _channel_sum(dout) if has_bias else None
    if need_dx:
        w_rows = w.transpose(0, 2, 3, 1).reshape(cin, -1)             # (Cin, KH*KW*Cout)
        dx = _from_rows(_matmul(cols, w_rows.T), n, h, wd)
    return dx, dw, db


# ---------------------------------------------------------------- batch normalisation
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, statistics per channel (axis 1).

    Training: batch mean and biased variance over every axis but 1; the running
    statistics (updated in place) take the unbiased variance, as in PyTorch:
    running = (1 - momentum) * running + momentum * batch.
    Eval: the running statistics. x: (N, C) or (N, C, *) -> y: same shape and memory layout.
    The cache keeps xc = x - mean (xhat = xc * inv_std is never stored: one pass fewer).
    """
    xp = get_array_module(x)
    if kernels.available(xp):
        return kernels.batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
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
    out = xc * scale.reshape(shape)                                    # = gamma * xhat
    if beta is not None:
        out += beta.reshape(shape)
    return out, (xc, inv_std, gamma, training)


def batchnorm_backward(dout, cache):
    """With M values per channel, xhat = xc * inv_std and k = gamma * inv_std:

    training: dx = k * (dout - mean(dout) - xhat * mean(dout * xhat))   (the cross-batch terms)
                 = k * dout - xc * (k * inv_std * dgamma / M) - k * dbeta / M
    eval:     dx = k * dout
    dgamma = sum(dout * xhat) = inv_std * sum(dout * xc), dbeta = sum(dout).
    """
    xp = get_array_module(dout)
    if kernels.available(xp):
        return kernels.batchnorm_backward(dout, cache)
    xc, inv_std, gamma, training = cache
    shape = (1, -1) + (1,) * (dout.ndim - 2)
    dbeta = _channel_sum(dout)
    dgamma = _channel_dot(dout, xc) * inv_std
    k = inv_std * gamma if gamma is not None else inv_std
    dx = dout * k.reshape(shape)
    if training:
        m = xc.size // xc.shape[1]
        dx -= xc * (k * inv_std * dgamma / m).reshape(shape)          # 4 passes over x-sized arrays, one temporary
        dx -= (k * dbeta / m).reshape(shape)
    return dx, (dgamma if gamma is not None else None), (dbeta if gamma is not None else None)


# ---------------------------------------------------------------- activations
def relu_forward(x):
    """y = max(x, 0)."""
    xp = get_array_module(x)
    if kernels.available(xp):
        return kernels.relu_forward(x)
    return xp.maximum(x, 0), x > 0


def relu_backward(dout, mask):
    xp = get_array_module(dout)
    if kernels.available(xp):
        return kernels.activation_backward(dout, mask)
    # dx in x's memory layout (channels-last after a conv) whatever layout dout comes in: the
    # layers before then all work in one layout (mixed-layout operations are ~2x slower)
    return xp.multiply(dout, mask, out=xp.empty_like(mask, dtype=dout.dtype))


def leaky_relu_forward(x, negative_slope=0.01):
    """y = x * slope, slope = 1 if x > 0 else negative_slope (kept for backward)."""
    xp = get_array_module(x)
    if kernels.available(xp):
        return kernels.leaky_relu_forward(x, negative_slope)
    # (x > 0) * (1 - a) + a: plain arithmetic, several times faster than xp.where on NumPy
    slope = xp.multiply(x > 0, 1 - negative_slope, dtype=x.dtype)
    slope += negative_slope
    return x * slope, slope


def leaky_relu_backward(dout, slope):
    xp = get_array_module(dout)
    if kernels.available(xp):
        return kernels.activation_backward(dout, slope)
    return xp.multiply(dout, slope, out=xp.empty_like(slope))        # in x's memory layout, as relu_backward


def elu_forward(x, alpha=1.0):
    """y = x if x > 0 else alpha * (exp(x) - 1)."""
    xp = get_array_module(x)
    neg = alpha * xp.expm1(xp.minimum(x, 0))
    out = xp.where(x > 0, x, neg)
    return out, (x, neg, alpha)


def elu_backward(dout, cache):
    """dy/dx = 1 if x > 0 else y + alpha."""
    xp = get_array_module(dout)
    x, neg, alpha = cache
    return dout * xp.where(x > 0, x.dtype.type(1), neg + x.dtype.type(alpha))


def tanh_forward(x):
    out = get_array_module(x).tanh(x)
    return out, out


def tanh_backward(dout, out):
    """dy/dx = 1 - y^2."""
    return dout * (1 - out * out)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), computed without overflow for large |x|."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return out, out


def sigmoid_backward(dout, out):
    """dy/dx = y (1 - y)."""
    return dout * out * (1 - out)


# ---------------------------------------------------------------- pooling and resizing
def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """y = max over each KHxKW window (padding counts as -inf). x: (N, C, H, W) -> (N, C, OH, OW)."""
    xp = get_array_module(x)
    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(padding)
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = im2col(x.reshape(n * c, 1, h, w), (kh, kw), stride, padding, pad_value=-xp.inf)  # (KH*KW, N*C*OH*OW)
    arg = cols.argmax(axis=0)
    out = xp.take_along_axis(cols, arg[None], axis=0).reshape(n, c, oh, ow)
    return out, (arg, cols.shape, x.shape, (kh, kw), stride, padding)


def max_pool2d_backward(dout, cache):
    """The gradient goes to the arg-max of each window (first one on ties)."""
    xp = get_array_module(dout)
    arg, cols_shape, x_shape, kernel, stride, padding = cache
    n, c, h, w = x_shape
    dcols = xp.zeros(cols_shape, dtype=dout.dtype)
    xp.put_along_axis(dcols, arg[None], dout.reshape(1, -1), axis=0)
    dx = col2im(dcols, (n * c, 1, h, w), kernel, stride, padding)
    return xp.ascontiguousarray(dx).reshape(x_shape)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """y = mean over each KHxKW window, zero padding counted (count_include_pad=True)."""
    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(padding)
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = im2col(x.reshape(n * c, 1, h, w), (kh, kw), stride, padding)
    out = cols.mean(axis=0).reshape(n, c, oh, ow)
    return out, (x.shape, (kh, kw), stride, padding)


def avg_pool2d_backward(dout, cache):
    """Each window's gradient is spread evenly over its KH*KW entries."""
    xp = get_array_module(dout)
    x_shape, (kh, kw), stride, padding = cache
    n, c, h, w = x_shape
    dcols = xp.broadcast_to(dout.reshape(1, -1) / (kh * kw), (kh * kw, dout.size))
    dx = col2im(xp.ascontiguousarray(dcols), (n * c, 1, h, w), (kh, kw), stride, padding)
    return xp.ascontiguousarray(dx).reshape(x_shape)


def upsample_nearest_forward(x, scale_factor):
    """Nearest-neighbour upsampling by an integer factor: (N, C, H, W) -> (N, C, H*s, W*s)."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    s = int(scale_factor)
    out = xp.broadcast_to(x[:, :, :, None, :, None], (n, c, h, s, w, s)).reshape(n, c, h * s, w * s)
    return out, s


def upsample_nearest_backward(dout, s):
    """Each input pixel receives the sum of its s x s copies."""
    n, c, hs, ws = dout.shape
    return dout.reshape(n, c, hs // s, s, ws // s, s).sum(axis=(3, 5))


# ---------------------------------------------------------------- channel-wise fully connected
def channelwise_linear_forward(x, w, b):
    """Context Encoders' channel-wise FC: a dense map over spatial positions, one per channel.

    y[n, c, :] = w[c] @ x[n, c, :] + b[c]   (no mixing across channels).
    x: (N, C, H, W), w: (C, OH*OW, H*W), b: (C, OH*OW) or None -> y: (N, C, OH*OW).
    """
    n, c = x.shape[:2]
    x_c = x.reshape(n, c, -1).transpose(1, 0, 2)                       # (C, N, H*W)
    out = x_c @ w.transpose(0, 2, 1)                                   # (C, N, OH*OW)
    if b is not None:
        out += b[:, None, :]
    return out.transpose(1, 0, 2), (x_c, x.shape, w, b is not None)


def channelwise_linear_backward(dout, cache):
    """dx_c = dout_c @ w[c];  dw[c] = dout_c^T x_c;  db[c] = sum_n dout_c."""
    x_c, x_shape, w, has_bias = cache
    d_c = dout.transpose(1, 0, 2)                                      # (C, N, OH*OW)
    dx = (d_c @ w).transpose(1, 0, 2).reshape(x_shape)
    dw = d_c.transpose(0, 2, 1) @ x_c
    db = d_c.sum(axis=1) if has_bias else None
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
