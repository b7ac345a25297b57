"""im2col against the index formula, col2im as its adjoint, conv and convT as each other's adjoint."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from npgan import backend, functional as F
from npgan.im2col import col2im, conv_output_size, conv_transpose_output_size, im2col


@st.composite
def conv_geometry(draw):
    """A valid (N, C, H, W, kernel, stride, padding, dilation), sizes odd and even."""
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    p = draw(st.integers(0, k))
    span = d * (k - 1) + 1
    h = draw(st.integers(max(1, span - 2 * p), span - 2 * p + 6))
    w = draw(st.integers(max(1, span - 2 * p), span - 2 * p + 6))
    return draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w, k, s, p, d


def naive_im2col(x, k, s, p, d):
    """cols[(c,ky,kx),(n,oy,ox)] = x[n, c, oy*s - p + ky*d, ox*s - p + kx*d] (0 outside)."""
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, k, s, p, d), conv_output_size(w, k, s, p, d)
    ci, ky, kx, ni, oy, ox = np.meshgrid(range(c), range(k), range(k), range(n), range(oh), range(ow), indexing="ij")
    iy, ix = oy * s - p + ky * d, ox * s - p + kx * d
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    vals = np.where(inside, x[ni, ci, np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)], 0)
    return vals.reshape(c * k * k, n * oh * ow)


@given(conv_geometry())
def test_im2col_matches_index_formula(geom):
    n, c, h, w, k, s, p, d = geom
    x = np.random.default_rng(0).standard_normal((n, c, h, w))
    got = backend.asnumpy(im2col(backend.to_device(x), k, s, p, d))
    np.testing.assert_array_equal(got, naive_im2col(x, k, s, p, d))


def assert_adjoint(x, cols, y, y_back):
    """<cols, y> == <x, y_back>, with cols = A(x) and y_back = A^T(y): A^T is A's adjoint."""
    lhs = float((cols * y).sum())
    rhs = float((x * y_back).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


@given(conv_geometry())
def test_col2im_is_adjoint_of_im2col(geom):
    """<im2col(x), c> == <x, col2im(c)> for every x and c."""
    n, c, h, w, k, s, p, d = geom
    rng = np.random.default_rng(1)
    x = backend.to_device(rng.standard_normal((n, c, h, w)))
    cols = im2col(x, k, s, p, d)
    y = backend.to_device(rng.standard_normal(cols.shape))
    assert_adjoint(x, cols, y, col2im(y, x.shape, k, s, p, d))


@given(conv_geometry(), st.integers(1, 3))
def test_conv_transpose_is_adjoint_of_conv(geom, c_out):
    """<conv(x, W), y> == <x, convT(y, W)> with the same weight array."""
    n, c, h, w, k, s, p, d = geom
    rng = np.random.default_rng(2)
    weight = backend.to_device(rng.standard_normal((c_out, c, k, k)))
    x = backend.to_device(rng.standard_normal((n, c, h, w)))
    out, _ = F.conv2d_forward(x, weight, None, s, p, d)
    oh, ow = out.shape[2:]
    # output_padding recovers the rows a strided conv skipped, so convT maps back to (H, W)
    op = (h - conv_transpose_output_size(oh, k, s, p, 0, d), w - conv_transpose_output_size(ow, k, s, p, 0, d))
    y = backend.to_device(rng.standard_normal(out.shape))
    back, _ = F.conv_transpose2d_forward(y, weight, None, s, p, op, d)
    assert back.shape == x.shape
    lhs, rhs = float((out * y).sum()), float((x * back).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_output_size_formulas_match_pytorch_examples():
    assert conv_output_size(28, 4, 2, 1) == 14
    assert conv_output_size(14, 4, 2, 1) == 7
    assert conv_output_size(7, 3, 1, 2, 2) == 7
    assert conv_transpose_output_size(7, 4, 2, 1) == 14
    assert conv_transpose_output_size(14, 4, 2, 1) == 28
    assert conv_transpose_output_size(5, 3, 2, 1, 1) == 10


@given(conv_geometry())
def test_im2col_nhwc_matches_index_formula_in_any_layout(geom):
    """Rows (n, oy, ox), columns (ky, kx, c); the same values for NCHW and channels-last inputs."""
    from npgan.im2col import im2col_nhwc
    n, c, h, w, k, s, p, d = geom
    x = np.random.default_rng(3).standard_normal((n, c, h, w))
    oh, ow = conv_output_size(h, k, s, p, d), conv_output_size(w, k, s, p, d)
    want = naive_im2col(x, k, s, p, d).reshape(c, k, k, n, oh, ow).transpose(3, 4, 5, 1, 2, 0).reshape(n * oh * ow, -1)
    x_dev = backend.to_device(x)
    channels_last = backend.xp().ascontiguousarray(x_dev.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for arr in (x_dev, channels_last):
        np.testing.assert_array_equal(backend.asnumpy(im2col_nhwc(arr, k, s, p, d)), want)


@given(conv_geometry())
def test_col2im_taps_is_adjoint_of_im2col_nhwc(geom):
    """<im2col_nhwc(x), c> == <x, col2im_taps(c in tap-major order)>."""
    from npgan.im2col import col2im_taps, im2col_nhwc
    n, c, h, w, k, s, p, d = geom
    rng = np.random.default_rng(4)
    x = backend.to_device(rng.standard_normal((n, c, h, w)))
    cols = im2col_nhwc(x, k, s, p, d)
    oh, ow = conv_output_size(h, k, s, p, d), conv_output_size(w, k, s, p, d)
    y = backend.to_device(rng.standard_normal(cols.shape))
    taps = y.reshape(n, oh, ow, k, k, c).transpose(3, 4, 0, 1, 2, 5)  # (KH, KW, N, OH, OW, C)
    assert_adjoint(x, cols, y, col2im_taps(taps, x.shape, s, p, d))


def test_transposed_conv_by_phase_matches_per_tap_form():
    """The space-to-depth form of col2im(rows @ w_taps) (kernel a multiple of the stride) gives
    the per-tap form's result, DCGAN's k4 s2 p1 and less regular geometries."""
    from npgan.im2col import col2im_taps
    rng = np.random.default_rng(0)
    for n, k, c, (h, w), (kh, kw), (sh, sw), (ph, pw) in [
            (2, 6, 3, (14, 14), (4, 4), (2, 2), (1, 1)), (3, 4, 2, (9, 9), (6, 6), (3, 3), (0, 0)),
            (2, 3, 4, (12, 10), (4, 6), (2, 3), (2, 1)), (2, 5, 3, (8, 8), (2, 2), (2, 2), (0, 0))]:
        grid = (conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw))
        rows = rng.standard_normal((n * grid[0] * grid[1], k))
        w_taps = rng.standard_normal((kh, kw, k, c))
        assert F._phase_form_fits(w_taps.shape, (n, c, h, w), grid, (sh, sw), (ph, pw), 1)
        got = F._col2im_of_products_by_phase(rows, w_taps, (n, c, h, w), grid, (sh, sw), (ph, pw))
        cols = np.matmul(rows, w_taps.reshape(kh * kw, k, c)).reshape(kh, kw, n, *grid, c)
        want = col2im_taps(cols, (n, c, h, w), (sh, sw), (ph, pw))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
