"""Output sizes, im2col and col2im: the data movement behind every convolution.

im2col turns each receptive field of an (N, C, H, W) image into one column, so a
convolution becomes a single matrix product. The column matrix has shape
(C*KH*KW, N*OH*OW), rows ordered (c, ky, kx) like a flattened conv weight and
columns ordered (n, oy, ox):

    cols[(c, ky, kx), (n, oy, ox)] = x_padded[n, c, oy*stride + ky*dilation, ox*stride + kx*dilation]

i.e. input row ``iy = oy*stride - pad + ky*dilation``. col2im is its adjoint: it
adds every column entry back onto the pixel it was read from (overlaps sum).

Both loop over the KH*KW kernel window only; each step is one strided slice
copy over the whole batch, so the work per step is vectorised.

The convolution layers use two variants laid out for speed (the data movement around the
matrix products costs more than the products):

- ``im2col_nhwc``: rows (n, oy, ox), columns (ky, kx, c), copied in one go from a strided
  view of the padded channels-last image (runs of KW*C contiguous floats); the matrix
  product ``cols @ w_rows.T`` yields (N*OH*OW, F), which *is* the output stored
  channels-last (an (N, F, OH, OW) view, no transpose).
- ``col2im_taps``: the adjoint, from tap-major columns (KH, KW, N, OH, OW, C) (one
  matrix product per tap). Each tap adds a contiguous block into one stride phase of
  the image, so every add runs over long contiguous rows instead of stride-s pixels.

"Channels-last" arrays have the shape (N, C, H, W) and the strides of an (N, H, W, C)
array (PyTorch's ``torch.channels_last`` memory format). Every array operation accepts
them; ``nhwc(x)`` gets the (N, H, W, C) array back without a copy.

On CuPy with kernels on (``im2col_by_kernels``), one gather kernel each computes
``im2col_nhwc`` and the col2im side of the convolutions (``npgan.kernels``).
"""
import numbers

from . import kernels
from .backend import get_array_module


def pair(v, name="size", minimum=None, layer=None):
    """2 -> (2, 2); (2, 3) -> (2, 3). Both must be integers (2.5 is refused, not truncated)
    and, when ``minimum`` is given, at least that; errors name ``layer`` and the argument."""
    if type(v) is tuple and len(v) == 2 and type(v[0]) is type(v[1]) is int and minimum is None:
        return v                                          # the hot path: functional's own calls
    where = f"{layer}: " if layer else ""
    values = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(values) != 2:
        raise ValueError(f"{where}{name} must be an int or a pair of ints, got {v!r}")
    for x in values:
        if isinstance(x, bool) or not isinstance(x, numbers.Integral):
            raise TypeError(f"{where}{name} must be an int or a pair of ints, got {v!r}")
        if minimum is not None and x < minimum:
            raise ValueError(f"{where}{name} must be at least {minimum}, got {v!r}")
    return int(values[0]), int(values[1])


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    """floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1  (PyTorch's Conv2d)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel, stride=1, padding=0, output_padding=0, dilation=1):
    """(size-1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1  (PyTorch's ConvTranspose2d)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _window(k, dilation, stride, out):
    """The slice of the padded axis that kernel offset ``k`` reads for outputs 0..out-1."""
    start = k * dilation
    return slice(start, start + stride * (out - 1) + 1, stride)


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, pad_value=0, out_size=None):
    """(N, C, H, W) -> columns (C*KH*KW, N*OH*OW); see the module docstring for the order.

    ``out_size`` (OH, OW) keeps only the first output positions; a transposed conv with
    output_padding needs it, since its input size is not always the conv formula's."""
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(pair, (kernel_size, stride, padding, dilation))
    n, c, h, w = x.shape
    oh, ow = out_size or (conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw))
    if ph or pw:
        x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    x_cnhw = x.transpose(1, 0, 2, 3)                                   # (C, N, Hp, Wp) view
    for ky in range(kh):
        rows = _window(ky, dh, sh, oh)
        for kx in range(kw):
            cols[:, ky, kx] = x_cnhw[:, :, rows, _window(kx, dw, sw, ow)]
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1, out_size=None):
    """Adjoint of im2col: columns (C*KH*KW, N*OH*OW) -> (N, C, H, W), overlaps summed."""
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(pair, (kernel_size, stride, padding, dilation))
    n, c, h, w = x_shape
    oh, ow = out_size or (conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw))
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    out = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)  # (C, N, Hp, Wp)
    for ky in range(kh):
        rows = _window(ky, dh, sh, oh)
        for kx in range(kw):
            out[:, :, rows, _window(kx, dw, sw, ow)] += cols[:, ky, kx]
    return out[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)      # (N, C, H, W) view


# ---------------------------------------------------------------- channels-last variants
def im2col_by_kernels(a):
    """im2col's and col2im's backend choice, for arrays like ``a``: on CuPy with kernels on,
    ``kernels.im2col_nhwc`` and ``kernels.col2im_rows`` (one thread per output entry) replace the
    strided copies of ``im2col_nhwc`` and the per-tap adds of functional's col2im side."""
    return kernels.available(get_array_module(a))


def nhwc(x):
    """(N, C, H, W) -> contiguous (N, H, W, C): free when ``x`` is stored channels-last."""
    return get_array_module(x).ascontiguousarray(x.transpose(0, 2, 3, 1))


def _tap_range(k, size, out, stride, pad, dilation):
    """For kernel offset k: the outputs [o0, o1) whose input i = o*stride - pad + k*dilation
    lies inside [0, size), and that first input i0 (padding is skipped, not stored)."""
    off = k * dilation - pad
    o0 = max(0, -(off // stride))                     # ceil(-off / stride)
    o1 = max(o0, min(out, (size - 1 - off) // stride + 1))
    return o0, o1, o0 * stride + off


def im2col_nhwc(x, kernel_size, stride=1, padding=0, dilation=1, out_size=None):
    """(N, C, H, W), any memory layout -> (N*OH*OW, KH*KW*C), row (n, oy, ox), column (ky, kx, c):

        cols[(n, oy, ox), (ky, kx, c)] = x[n, c, oy*stride - pad + ky*dilation, ox*stride - pad + kx*dilation]

    (0 where that falls in the padding). ``out_size`` (OH, OW) crops the output grid
    (a transposed conv's backward needs exactly its input's size).
    """
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(pair, (kernel_size, stride, padding, dilation))
    n, c, h, w = x.shape
    full = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    oh, ow = out_size or full
    if oh > full[0] or ow > full[1]:                                   # both paths read only inside the image
        raise ValueError(f"im2col_nhwc: out_size {(oh, ow)} exceeds the convolution's output size {full}")
    if im2col_by_kernels(x):
        return kernels.im2col_nhwc(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow))
    if ph or pw:                                                       # zero border, the image copied in once
        padded = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
        padded[:, ph:ph + h, pw:pw + w] = x.transpose(0, 2, 3, 1)
    else:
        padded = nhwc(x)                                               # (N, Hp, Wp, C)
    # Every window at once as a strided view: windows[n, oy, ox, ky, kx] = padded[n, oy*sh + ky*dh, ox*sw + kx*dw].
    # It stays inside ``padded`` because OH, OW <= the conv formula's sizes (checked above). One copy
    # whose inner runs are KW*C contiguous floats when dilation is 1 (1 KB for DCGAN's 64->128 conv),
    # faster than KH*KW per-tap copies of C-float runs.
    s_n, s_h, s_w, s_c = padded.strides
    windows = xp.lib.stride_tricks.as_strided(
        padded, (n, oh, ow, kh, kw, c), (s_n, sh * s_h, sw * s_w, dh * s_h, dw * s_w, s_c))
    cols = xp.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    cols[...] = windows
    return cols.reshape(n * oh * ow, kh * kw * c)


def col2im_taps(cols, x_shape, stride=1, padding=0, dilation=1):
    """Adjoint of ``im2col_nhwc``, from tap-major columns (KH, KW, N, OH, OW, C) -> (N, C, H, W)
    stored channels-last:

        dx[n, c, iy, ix] = sum over (ky, kx, oy, ox) with iy = oy*stride - pad + ky*dilation,
                           ix = ox*stride - pad + kx*dilation of cols[ky, kx, n, oy, ox, c]

    Taps that share the stride phase (iy mod stride, ix mod stride) add into one dense
    phase image, so each add is a block copy with contiguous rows; the phases are then
    interleaved into the image once.
    """
    xp = get_array_module(cols)
    (sh, sw), (ph, pw), (dh, dw) = map(pair, (stride, padding, dilation))
    kh, kw, n, oh, ow, c = cols.shape
    _, _, h, w = x_shape
    hs, ws = -(-h // sh), -(-w // sw)                                  # rows/cols per phase
    phases = xp.zeros((sh, sw, n, hs, ws, c), dtype=cols.dtype)       # phases[ry, rx, :, my, mx] = dx[:, my*sh+ry, mx*sw+rx]
    for ky in range(kh):
        oy0, oy1, iy0 = _tap_range(ky, h, oh, sh, ph, dh)
        for kx in range(kw):
            ox0, ox1, ix0 = _tap_range(kx, w, ow, sw, pw, dw)
            if oy1 > oy0 and ox1 > ox0:
                my0, mx0 = iy0 // sh, ix0 // sw
                phases[iy0 % sh, ix0 % sw, :, my0:my0 + oy1 - oy0, mx0:mx0 + ox1 - ox0] += cols[ky, kx, :, oy0:oy1, ox0:ox1]
    if sh == sw == 1:
        return phases[0, 0].transpose(0, 3, 1, 2)
    dx = xp.empty((n, h, w, c), dtype=cols.dtype)                      # interleave the phases into the image
    for ry in range(sh):
        for rx in range(sw):
            dx[:, ry::sh, rx::sw] = phases[ry, rx, :, :(h - ry + sh - 1) // sh, :(w - rx + sw - 1) // sw]
    return dx.transpose(0, 3, 1, 2)                                    # (N, C, H, W) view, channels-last
