"""Hole masks for inpainting, and the per-pixel weights some methods derive from them.

Convention (everywhere npgan inpaints): a mask is float32 ``(N, 1, H, W)`` with
**1 = missing (the hole)** and **0 = known**. It broadcasts over the image channels.

    >>> rng = np.random.default_rng(0)
    >>> m = make_masks("centre", 64, 28, rng)           # (64, 1, 28, 28), a 14x14 centre hole
    >>> m = make_masks("strokes", 64, 32, rng)          # free-form brush strokes
    >>> x_known = x * (1 - m)                           # what the inpainter is allowed to see

Masks are drawn on the host (NumPy) with the data batch and moved to the device with it
(``backend.to_device``); the per-pixel helpers below (:func:`contextual_weights`,
:func:`hole_boxes`) take their array module from the mask and run on either backend.
"""
import numpy as np

from ..backend import get_array_module

MASK_KINDS = ("centre", "rect", "strokes", "mixed")
_ALIASES = {"center": "centre", "rects": "rect", "rectangle": "rect", "rectangles": "rect",
            "stroke": "strokes", "free-form": "strokes", "freeform": "strokes"}


def canonical_kind(kind):
    """'centre', 'rect', 'strokes' or 'mixed' for any accepted spelling."""
    key = str(kind).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {MASK_KINDS} (or 'center')")
    return key


def centre_masks(n, size, hole=None):
    """A square hole of side ``hole`` (default size // 2) in the middle of every image.

    Shape: (n, 1, size, size) float32; the hole spans rows/cols [(size-hole)//2, (size+hole)//2).
    """
    hole = size // 2 if hole is None else int(hole)
    if not 0 < hole <= size:
        raise ValueError(f"centre hole of side {hole} does not fit a {size}x{size} image")
    m = np.zeros((n, 1, size, size), np.float32)
    a = (size - hole) // 2
    m[:, :, a:a + hole, a:a + hole] = 1
    return m


def rect_masks(n, size, rng, min_side=None, max_side=None, count=1):
    """``count`` axis-aligned rectangles per image, each side uniform in [min_side, max_side],
    placed uniformly at random inside the image (they may overlap).

    Defaults: sides from size // 4 to size // 2. Shape: (n, 1, size, size) float32.
    """
    lo = max(1, size // 4) if min_side is None else int(min_side)
    hi = size // 2 if max_side is None else int(max_side)
    if not 1 <= lo <= hi <= size:
        raise ValueError(f"rectangle sides must satisfy 1 <= min_side <= max_side <= {size}, got {lo}, {hi}")
    rows = np.arange(size)
    m = np.zeros((n, 1, size, size), bool)
    for _ in range(count):
        h, w = rng.integers(lo, hi + 1, size=(2, n))                                  # (n,) each
        top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        inside_r = (rows >= top[:, None]) & (rows < (top + h)[:, None])              # (n, size)
        inside_c = (rows >= left[:, None]) & (rows < (left + w)[:, None])
        m |= (inside_r[:, :, None] & inside_c[:, None, :])[:, None]
    return m.astype(np.float32)


def stroke_masks(n, size, rng, max_strokes=3, max_vertices=5, max_width=None, max_length=None):
    """Random free-form brush strokes (in the spirit of Yu et al., 2019's free-form masks).

    Each image gets 1..max_strokes strokes; a stroke is a random walk of 2..max_vertices
    vertices with random angles and lengths up to ``max_length`` (default size // 2), drawn
    with a round brush of width 2..max_width pixels (default size // 6 + 1). Line segments are
    rasterised by stamping the brush at points spaced half a pixel apart.

    Shape: (n, 1, size, size) float32.
    """
    max_width = max(2, size // 6 + 1) if max_width is None else int(max_width)
    max_length = size / 2 if max_length is None else float(max_length)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)                            # (size, size)
    m = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        hole = np.zeros((size, size), bool)
        for _ in range(rng.integers(1, max_strokes + 1)):
            k = rng.integers(2, max_vertices + 1)
            angles = rng.uniform(0, 2 * np.pi, k - 1)
            lengths = rng.uniform(size / 8, max_length, k - 1)
            start = rng.uniform(0, size, 2)
            steps = np.stack([np.sin(angles), np.cos(angles)], 1) * lengths[:, None]   # (k-1, 2)
            verts = np.clip(np.vstack([start, start + np.cumsum(steps, 0)]), 0, size - 1)
            radius = rng.uniform(1.0, max_width / 2)
            # dense points along every segment, then "distance to the nearest point <= radius"
            pts = [a + (b - a) * t[:, None] for a, b in zip(verts[:-1], verts[1:])
                   for t in [np.linspace(0, 1, int(2 * np.hypot(*(b - a))) + 2)]]
            pts = np.concatenate(pts).astype(np.float32)                            # (P, 2)
            d2 = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2  # (size, size, P)
            hole |= d2.min(-1) <= radius ** 2
        m[i, 0] = hole
    return m


def make_masks(kind, n, size, rng, hole=None):
    """``n`` masks of one kind: 'centre' (side ``hole``), 'rect', 'strokes', or 'mixed'
    (each image draws one of the other three kinds, equally likely).

    Args:
        kind: mask kind (see ``MASK_KINDS``; 'center' is accepted).
        n, size: number of masks and image side.
        rng: a ``numpy.random.Generator`` (host).
        hole: side of the centre hole (default size // 2).
    Shape: (n, 1, size, size) float32, 1 = missing.
    """
    kind = canonical_kind(kind)
    if kind == "centre":
        return centre_masks(n, size, hole)
    if kind == "rect":
        return rect_masks(n, size, rng)
    if kind == "strokes":
        return stroke_masks(n, size, rng)
    pick = rng.integers(0, 3, n)
    out = centre_masks(n, size, hole)
    for j, sub in ((1, "rect"), (2, "strokes")):
        idx = np.flatnonzero(pick == j)
        if idx.size:
            out[idx] = make_masks(sub, idx.size, size, rng)
    return out


# ---- quantities derived from a mask (any backend) -------------------------------------------
def box_sum(a, k):
    """Sum of ``a`` (N, C, H, W) over each k x k window centred on a pixel (zero outside the
    image), by an integral image; k odd. Shape: as ``a``."""
    xp = get_array_module(a)
    r = k // 2
    p = xp.pad(a, ((0, 0), (0, 0), (r + 1, r), (r + 1, r)))
    s = p.cumsum(2).cumsum(3)
    h, w = a.shape[2:]
    return s[:, :, k:k + h, k:k + w] - s[:, :, :h, k:k + w] - s[:, :, k:k + h, :w] + s[:, :, :h, :w]


def contextual_weights(mask, window=7):
    """Yeh et al.'s (2017) importance weights for the contextual loss.

        W_i = (1 - M_i) * (number of hole pixels in the window x window box around i) / window^2

    A known pixel counts in proportion to how many of its neighbours are missing: pixels on
    the hole's border matter most, pixels far from the hole not at all. Hole pixels get 0.

    Args:
        mask: (N, 1, H, W), 1 = missing. window: odd box side (Yeh et al. use 7).
    Shape: (N, 1, H, W), same dtype and backend as ``mask``.
    """
    if window % 2 != 1:
        raise ValueError(f"window must be odd, got {window}")
    return (1 - mask) * box_sum(mask, window) / (window * window)


def hole_boxes(mask, patch):
    """Top-left corners of a ``patch`` x ``patch`` box centred on each mask's hole (the centre
    of its bounding box), moved inside the image: GLCIC's local-discriminator window.

    Args:
        mask: (N, 1, H, W), 1 = missing (an all-zero mask gives the image centre).
    Returns:
        (top, left): two (N,) integer arrays on the mask's backend.
    """
    xp = get_array_module(mask)
    n, _, h, w = mask.shape
    rows, cols = mask.max(axis=3)[:, 0] > 0, mask.max(axis=2)[:, 0] > 0          # (N, H), (N, W)

    def centre(any_, size):
        idx = xp.arange(size)
        first = xp.where(any_, idx, size).min(axis=1)
        last = xp.where(any_, idx, -1).max(axis=1)
        empty = ~any_.any(axis=1)
        return xp.where(empty, (size - 1) / 2, (first + last) / 2)

    top = xp.clip(xp.round(centre(rows, h) - (patch - 1) / 2), 0, h - patch).astype(xp.int64)
    left = xp.clip(xp.round(centre(cols, w) - (patch - 1) / 2), 0, w - patch).astype(xp.int64)
    return top, left
