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
"""
from .backend import get_array_module


def pair(v):
    """2 -> (2, 2); (2, 3) -> (2, 3)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"expected an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


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


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, pad_value=0):
    """(N, C, H, W) -> columns (C*KH*KW, N*OH*OW); see the module docstring for the order."""
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(pair, (kernel_size, stride, padding, dilation))
    n, c, h, w = x.shape
    oh = conv_output_size(h, kh, sh, ph, dh)
    ow = conv_output_size(w, kw, sw, pw, dw)
    if ph or pw:
        x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    x_cnhw = x.transpose(1, 0, 2, 3)                                   # (C, N, Hp, Wp) view
    for ky in range(kh):
        rows = _window(ky, dh, sh, oh)
        for kx in range(kw):
            cols[:, ky, kx] = x_cnhw[:, :, rows, _window(kx, dw, sw, ow)]
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Adjoint of im2col: columns (C*KH*KW, N*OH*OW) -> (N, C, H, W), overlaps summed."""
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(pair, (kernel_size, stride, padding, dilation))
    n, c, h, w = x_shape
    oh = conv_output_size(h, kh, sh, ph, dh)
    ow = conv_output_size(w, kw, sw, pw, dw)
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    out = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)  # (C, N, Hp, Wp)
    for ky in range(kh):
        rows = _window(ky, dh, sh, oh)
        for kx in range(kw):
            out[:, :, rows, _window(kx, dw, sw, ow)] += cols[:, ky, kx]
    return out[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)      # (N, C, H, W) view
