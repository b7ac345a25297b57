"""Convolution by its definition: plain loops, slow on purpose, for reading and for testing.

This is the definition that the fast path in ``npgan.functional`` (im2col and one matrix
product) is tested against (tests/test_reference.py), and the one tutorial 1 shows
im2col to equal. Every function loops over output (or input) positions and kernel taps
and writes the index formula out; only the batch and channel axes are vectorised, as one
small matrix product per (position, tap). Same signatures and results as the
``functional`` pairs, with ``_naive`` appended to the names.

Conv2d (cross-correlation, as in PyTorch), x: (N, C, H, W), w: (F, C, KH, KW), b: (F,)::

    y[n, f, oy, ox] = b[f] + sum_{c, ky, kx} w[f, c, ky, kx] * x[n, c, oy*s - p + ky*d, ox*s - p + kx*d]

    OH = floor((H + 2p - d*(KH-1) - 1) / s) + 1            (x is 0 outside [0, H) x [0, W))

ConvTranspose2d, x: (N, Cin, H, W), w: (Cin, Cout, KH, KW), b: (Cout,), as a scatter: every
input pixel adds its weighted kernel onto the output, and what lands in the padding is dropped::

    y[n, co, iy*s - p + ky*d, ix*s - p + kx*d] += w[ci, co, ky, kx] * x[n, ci, iy, ix]    (then + b[co])

    OH = (H-1)*s - 2p + d*(KH-1) + output_padding + 1

With the same weight array the two are adjoints: ``<conv(x), y> == <x, convT(y)>``. So each
backward is the other's forward: conv2d's dx is a transposed conv of dout, and convT's dx
is a conv of dout. s, p, d, output_padding are per axis (an int or an (h, w) pair).
"""
from typing import NamedTuple, Tuple

from .backend import get_array_module
from .im2col import conv_output_size, conv_transpose_output_size, pair


class Conv2dCache(NamedTuple):
    """What ``conv2d_backward_naive`` needs: the forward's input, weight and geometry."""
    x: object                     # (N, C, H, W) input
    w: object                     # (F, C, KH, KW) weight
    has_bias: bool                # whether the forward added b (db is None otherwise)
    stride: Tuple[int, int]       # (sh, sw)
    padding: Tuple[int, int]      # (ph, pw)
    dilation: Tuple[int, int]     # (dil_h, dil_w)


class ConvTranspose2dCache(NamedTuple):
    """What ``conv_transpose2d_backward_naive`` needs. output_padding only sets the output
    size, which the backward reads off dout, so it is not kept."""
    x: object                     # (N, Cin, H, W) input
    w: object                     # (Cin, Cout, KH, KW) weight
    has_bias: bool                # whether the forward added b (db is None otherwise)
    stride: Tuple[int, int]       # (sh, sw)
    padding: Tuple[int, int]      # (ph, pw)
    dilation: Tuple[int, int]     # (dil_h, dil_w)


def _geometry(stride, padding, dilation):
    return pair(stride, "stride", 1), pair(padding, "padding", 0), pair(dilation, "dilation", 1)


# ---------------------------------------------------------------- Conv2d
def conv2d_forward_naive(x, w, b, stride=1, padding=0, dilation=1):
    """Conv2d by its definition: y[n,f,oy,ox] = b[f] + sum_{c,ky,kx} w[f,c,ky,kx] x[n,c,iy,ix],
    iy = oy*stride - pad + ky*dilation, ix = ox*stride - pad + kx*dilation.

    Args:
        x, w, b: input, weight, bias (or None).
        stride=1, padding=0, dilation=1: ints or (h, w) pairs.

    Shape:
        x (N, C, H, W), w (F, C, KH, KW), b (F,) -> y (N, F, OH, OW),
        OH = floor((H + 2*pad - dil*(KH-1) - 1) / stride) + 1 (OW likewise).

    Returns:
        (y, cache), cache a ``Conv2dCache``.
    """
    xp = get_array_module(x)
    (sh, sw), (ph, pw), (dil_h, dil_w) = _geometry(stride, padding, dilation)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = conv_output_size(h, kh, sh, ph, dil_h), conv_output_size(wd, kw, sw, pw, dil_w)
    y = xp.zeros((n, f, oh, ow), dtype=xp.result_type(x.dtype, w.dtype))
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                iy = oy * sh - ph + ky * dil_h
                if not 0 <= iy < h:                                    # zero padding adds nothing
                    continue
                for kx in range(kw):
                    ix = ox * sw - pw + kx * dil_w
                    if not 0 <= ix < wd:
                        continue
                    y[:, :, oy, ox] += x[:, :, iy, ix] @ w[:, :, ky, kx].T   # (N, C) @ (C, F)
    if b is not None:
        y += b.reshape(1, f, 1, 1)
    return y, Conv2dCache(x, w, b is not None, (sh, sw), (ph, pw), (dil_h, dil_w))


def conv2d_backward_naive(dout, cache, need_dx=True):
    """Conv2d's backward by the same loops: each term w[f,c,ky,kx] x[n,c,iy,ix] of y[n,f,oy,ox]
    sends dout[n,f,oy,ox] back to both factors:

        dx[n,c,iy,ix] += sum_f dout[n,f,oy,ox] w[f,c,ky,kx]
        dw[f,c,ky,kx] += sum_n dout[n,f,oy,ox] x[n,c,iy,ix]
        db[f] = sum_{n,oy,ox} dout[n,f,oy,ox]

    Shape:
        dout (N, F, OH, OW) -> dx (N, C, H, W) (None when ``need_dx`` is False),
        dw (F, C, KH, KW), db (F,) (None when the forward had no bias).
    """
    x, w, has_bias, (sh, sw), (ph, pw), (dil_h, dil_w) = cache
    xp = get_array_module(dout)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    _, _, oh, ow = dout.shape
    dtype = xp.result_type(dout.dtype, x.dtype, w.dtype)
    dx = xp.zeros((n, c, h, wd), dtype=dtype) if need_dx else None
    dw = xp.zeros((f, c, kh, kw), dtype=dtype)
    for oy in range(oh):
        for ox in range(ow):
            g = dout[:, :, oy, ox]                                     # (N, F)
            for ky in range(kh):
                iy = oy * sh - ph + ky * dil_h
                if not 0 <= iy < h:
                    continue
                for kx in range(kw):
                    ix = ox * sw - pw + kx * dil_w
                    if not 0 <= ix < wd:
                        continue
                    dw[:, :, ky, kx] += g.T @ x[:, :, iy, ix]           # (F, N) @ (N, C)
                    if need_dx:
                        dx[:, :, iy, ix] += g @ w[:, :, ky, kx]          # (N, F) @ (F, C)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db


# ---------------------------------------------------------------- ConvTranspose2d
def conv_transpose2d_forward_naive(x, w, b, stride=1, padding=0, output_padding=0, dilation=1):
    """ConvTranspose2d by its definition, a scatter over input positions and kernel taps:
    y[n,co,oy,ox] += sum_ci w[ci,co,ky,kx] x[n,ci,iy,ix] at oy = iy*stride - pad + ky*dilation,
    ox = ix*stride - pad + kx*dilation (dropped outside the output), then + b[co].

    Args:
        x, w, b: input, weight, bias (or None).
        stride=1, padding=0, output_padding=0, dilation=1: ints or (h, w) pairs;
            output_padding (< max(stride, dilation) in PyTorch) adds rows/columns at the
            bottom/right, which only the bias and the taps reaching there fill.

    Shape:
        x (N, Cin, H, W), w (Cin, Cout, KH, KW), b (Cout,) -> y (N, Cout, OH, OW),
        OH = (H-1)*stride - 2*pad + dil*(KH-1) + output_padding + 1 (OW likewise).

    Returns:
        (y, cache), cache a ``ConvTranspose2dCache``.
    """
    xp = get_array_module(x)
    (sh, sw), (ph, pw), (dil_h, dil_w) = _geometry(stride, padding, dilation)
    oph, opw = pair(output_padding, "output_padding", 0)
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    oh = conv_transpose_output_size(h, kh, sh, ph, oph, dil_h)
    ow = conv_transpose_output_size(wd, kw, sw, pw, opw, dil_w)
    y = xp.zeros((n, cout, oh, ow), dtype=xp.result_type(x.dtype, w.dtype))
    for iy in range(h):
        for ix in range(wd):
            for ky in range(kh):
                oy = iy * sh - ph + ky * dil_h
                if not 0 <= oy < oh:                                   # lands in the padding: dropped
                    continue
                for kx in range(kw):
                    ox = ix * sw - pw + kx * dil_w
                    if not 0 <= ox < ow:
                        continue
                    y[:, :, oy, ox] += x[:, :, iy, ix] @ w[:, :, ky, kx]     # (N, Cin) @ (Cin, Cout)
    if b is not None:
        y += b.reshape(1, cout, 1, 1)
    return y, ConvTranspose2dCache(x, w, b is not None, (sh, sw), (ph, pw), (dil_h, dil_w))


def conv_transpose2d_backward_naive(dout, cache, need_dx=True):
    """ConvTranspose2d's backward by the same loops: each scattered term w[ci,co,ky,kx] x[n,ci,iy,ix]
    that landed on y[n,co,oy,ox] gathers dout[n,co,oy,ox] back:

        dx[n,ci,iy,ix] += sum_co dout[n,co,oy,ox] w[ci,co,ky,kx]      (a conv2d of dout)
        dw[ci,co,ky,kx] += sum_n x[n,ci,iy,ix] dout[n,co,oy,ox]
        db[co] = sum_{n,oy,ox} dout[n,co,oy,ox]

    Shape:
        dout (N, Cout, OH, OW) -> dx (N, Cin, H, W) (None when ``need_dx`` is False),
        dw (Cin, Cout, KH, KW), db (Cout,) (None when the forward had no bias).
    """
    x, w, has_bias, (sh, sw), (ph, pw), (dil_h, dil_w) = cache
    xp = get_array_module(dout)
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    _, _, oh, ow = dout.shape
    dtype = xp.result_type(dout.dtype, x.dtype, w.dtype)
    dx = xp.zeros((n, cin, h, wd), dtype=dtype) if need_dx else None
    dw = xp.zeros((cin, cout, kh, kw), dtype=dtype)
    for iy in range(h):
        for ix in range(wd):
            for ky in range(kh):
                oy = iy * sh - ph + ky * dil_h
                if not 0 <= oy < oh:
                    continue
                for kx in range(kw):
                    ox = ix * sw - pw + kx * dil_w
                    if not 0 <= ox < ow:
                        continue
                    g = dout[:, :, oy, ox]                             # (N, Cout)
                    dw[:, :, ky, kx] += x[:, :, iy, ix].T @ g          # (Cin, N) @ (N, Cout)
                    if need_dx:
                        dx[:, :, iy, ix] += g @ w[:, :, ky, kx].T      # (N, Cout) @ (Cout, Cin)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db
