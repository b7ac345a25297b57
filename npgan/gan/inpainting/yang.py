"""Multi-scale neural patch synthesis (Yang et al., 2017): a content network's fill, given the
texture of the image's known part by optimising the hole's pixels.

For an image with hole mask M (1 = missing) and the content network's prediction c, the hole's
pixels x minimise

    E(x) = sum_{p in hole} |x_p - c_p|^2                                          content
         + (alpha / D) sum_{i in Q} |phi_i(x) - phi_NN(i)(x)|^2                    texture
         + beta sum_p (x_{p + down} - x_p)^2 + (x_{p + right} - x_p)^2             smoothness

- phi = a frozen CNN's feature map (:func:`npgan.models.inpainting.feature_network`; stride 1, so
  its hole is M), phi_i its 3x3 patch at position i as a vector of D = 9 x channels values;
- Q = the patches that overlap the hole; NN(i) = the patch entirely outside the hole with the
  largest normalised cross-correlation <phi_i, phi_j> / (|phi_i| |phi_j|) to patch i (Li and
  Wand's MRF loss, 2016). The matches are recomputed at each outer iteration and held fixed
  while L-BFGS runs; E differentiates both patches of a pair (a known patch's features still
  depend on hole pixels within the network's receptive field);
- the smoothness term is the squared form of total variation, so the objective stays smooth
  for L-BFGS; it runs over the whole image, only pairs touching the hole vary.

Coarse to fine: the image, its mask (a coarse pixel is missing if any of its 2x2 fine pixels
is) and c are halved ``scales - 1`` times by 2x2 averaging; the coarsest hole starts from c,
each finer one from the coarser solution upsampled (nearest). At each scale, ``nn_updates``
times: match the patches, then ``lbfgs_steps`` iterations of SciPy's L-BFGS-B over the hole's
pixels (bounded to [-1, 1]; the known pixels never change), with dE/dx from npgan's backward
passes: the MRF loss's gradient scattered back over the overlapping patches (col2im), through
the feature network's ``backward`` (frozen: no parameter gradients), plus the content and
smoothness gradients. Each image is optimised on its own.

    >>> out = yang_fill(features, images, masks, content)           # (N, C, H, W), holes filled
"""
import numpy as np

from ... import backend
from ...backend import get_array_module
from ...im2col import col2im_taps, im2col, im2col_nhwc
from ...layers import frozen

PATCH = 3                   # Li and Wand's 3x3 feature patches
TEXTURE_WEIGHT = 10.0       # alpha (per patch entry: the texture sum is divided by D); 100 overrode the content
TV_WEIGHT = 0.01            # beta
SCALES = 2
NN_UPDATES = 3
LBFGS_STEPS = 20


class YangError(ValueError):
    """An image or hole the texture optimisation cannot work on (the message says why)."""


# ---- patches ---------------------------------------------------------------------------------
def patch_sets(mask):
    """Which 3x3 patches (of a stride-1 map the size of the mask) take part, and how.

    Returns (query, candidates), (N, P) bool each, P = (H-2)(W-2) patch positions in row-major
    order: query = the patch overlaps the hole; candidates = it lies entirely outside.
    """
    n, _, h, w = mask.shape
    cells = im2col(mask, PATCH).reshape(PATCH * PATCH, n, -1) > 0.5           # (9, N, P)
    return cells.any(axis=0), ~cells.any(axis=0)


def without_candidates(query, candidates):
    """(N,) bool: the images that have patches to match but no patch entirely outside the hole."""
    return query.any(axis=1) & ~candidates.any(axis=1)


def feature_patches(f):
    """(N, F, H, W) -> (N, P, D): every 3x3 patch as a vector, D = 9 F in im2col_nhwc's (ky, kx, f)
    order, patches in row-major order of their top-left cell."""
    n, c, h, w = f.shape
    return im2col_nhwc(f, PATCH).reshape(n, (h - PATCH + 1) * (w - PATCH + 1), PATCH * PATCH * c)


def feature_patches_backward(dpatches, f_shape):
    """The adjoint of :func:`feature_patches`: each patch's gradient added back onto the cells it
    covers (overlaps sum). (N, P, D) -> (N, F, H, W)."""
    n, c, h, w = f_shape
    taps = dpatches.reshape(n, h - PATCH + 1, w - PATCH + 1, PATCH, PATCH, c).transpose(3, 4, 0, 1, 2, 5)
    return col2im_taps(taps, f_shape)                                            # taps (3, 3, N, OH, OW, F)


def nearest_patches(patches, query, candidates):
    """NN(i) for every query patch: the candidate with the largest normalised cross-correlation.

    Args:
        patches: (N, P, D); query, candidates: (N, P) bool (see :func:`patch_sets`).
    Returns:
        (q, nn): two (K,) int arrays of flat indices into the N*P patches, K = the number of
        query patches: query patch q[k] is matched with candidate nn[k] of the same image;
        sorted by nn, so the patches matched several times are runs (:func:`mrf_loss_backward`).
    Raises:
        YangError when an image has query patches but no candidate.
    """
    xp = get_array_module(patches)
    n, p, _ = patches.shape
    lonely = without_candidates(query, candidates)
    if bool(lonely.any()):
        raise YangError(f"image {int(xp.flatnonzero(lonely)[0])}: no {PATCH}x{PATCH} patch lies fully outside the hole")
    norm = xp.sqrt((patches * patches).sum(axis=2, keepdims=True))
    unit = patches / xp.maximum(norm, 1e-12)                                    # (N, P, D)
    similarity = unit @ unit.transpose(0, 2, 1)                                  # (N, P, P)
    similarity = xp.where(candidates[:, None, :], similarity, -xp.inf)
    best = similarity.argmax(axis=2) + p * xp.arange(n)[:, None]                # (N, P) flat indices
    q = xp.flatnonzero(query)
    nn = best.ravel()[q]
    order = xp.argsort(nn, kind="stable")                                        # grouped for the backward
    return q[order], nn[order]


# ---- the three terms, forward and backward ---------------------------------------------------
def mrf_loss_forward(patches, q, nn):
    """Li and Wand's MRF loss: sum_k |phi_q[k] - phi_nn[k]|^2 / D.

    Args: patches (N, P, D); q, nn (K,) flat patch indices (:func:`nearest_patches`).
    Returns: (loss 0-d, cache = (differences (K, D), q, nn, patches.shape)).
    """
    flat = patches.reshape(-1, patches.shape[2])                                 # (N*P, D)
    diff = flat[q] - flat[nn]                                                    # (K, D)
    return (diff * diff).sum() / patches.shape[2], (diff, q, nn, patches.shape)


def mrf_loss_backward(dloss, cache):
    """d loss / d patches, (N, P, D): +2 diff / D at each query patch, -2 diff / D at its match.
    A patch matched by several query patches collects all their terms: nn is sorted, so each
    match's terms are a run of rows, summed as differences of a cumulative sum."""
    xp = get_array_module(cache[0])
    diff, q, nn, shape = cache
    g = (2 * dloss / shape[2]) * diff                                            # (K, D)
    dpatches = xp.zeros((shape[0] * shape[1], shape[2]), dtype=diff.dtype)
    dpatches[q] = g                                                              # query indices are distinct
    last = xp.flatnonzero(xp.concatenate([nn[1:] != nn[:-1], xp.ones(1, dtype=bool)]))   # end of each run
    totals = xp.cumsum(g, axis=0)[last]                                          # (G, D)
    totals[1:] -= totals[:-1].copy()
    dpatches[nn[last]] -= totals
    return dpatches.reshape(shape)


def tv_forward(x):
    """Squared total variation: sum of squared differences of vertical and horizontal neighbours.
    Returns (loss 0-d, cache = (dy (N, C, H-1, W), dx (N, C, H, W-1)))."""
    dy, dx = x[:, :, 1:] - x[:, :, :-1], x[:, :, :, 1:] - x[:, :, :, :-1]
    return (dy * dy).sum() + (dx * dx).sum(), (dy, dx)


def tv_backward(dloss, cache):
    """d TV / d x, (N, C, H, W): each difference pushes its two pixels apart by 2 * difference."""
    xp = get_array_module(cache[0])
    dy, dx = cache
    n, c, h1, w = dy.shape
    g = xp.zeros((n, c, h1 + 1, w), dtype=dy.dtype)
    g[:, :, 1:] += 2 * dloss * dy
    g[:, :, :-1] -= 2 * dloss * dy
    g[:, :, :, 1:] += 2 * dloss * dx
    g[:, :, :, :-1] -= 2 * dloss * dx
    return g


def energy(x, mask, content, features, q, nn, alpha=TEXTURE_WEIGHT, beta=TV_WEIGHT):
    """E(x) of the module docstring (summed over the images) and dE/dx.

    Args:
        x: (N, C, H, W) current images; mask (N, 1, H, W), 1 = hole; content (N, C, H, W) the
            content network's prediction; features: a frozen stride-1 feature network;
        q, nn: the query patches and their matches (:func:`nearest_patches`).
    Returns:
        (E 0-d, {'content', 'texture', 'tv'} 0-d each, dE/dx (N, C, H, W), nonzero outside the
        hole too: the caller keeps the hole's entries).
    """
    err = (x - content) * mask
    e_content = (err * err).sum()
    e_tv, tv_cache = tv_forward(x)
    with frozen(features):
        f = features.forward(x)                                                  # (N, F, H, W)
        e_texture, mrf_cache = mrf_loss_forward(feature_patches(f), q, nn)
        df = feature_patches_backward(mrf_loss_backward(alpha, mrf_cache), f.shape)
        dx = features.backward(df)
    dx = dx + 2 * err + tv_backward(beta, tv_cache)
    total = e_content + alpha * e_texture + beta * e_tv
    return total, {"content": e_content, "texture": e_texture, "tv": e_tv}, dx


# ---- the optimisation ------------------------------------------------------------------------
def match(x, mask, features):
    """(q, nn) for the current images: the query patches and their matches (:func:`nearest_patches`)."""
    return nearest_patches(feature_patches(features.forward(x)), *patch_sets(mask))


def optimise_scale(x, mask, content, features, alpha=TEXTURE_WEIGHT, beta=TV_WEIGHT, nn_updates=NN_UPDATES,
                   lbfgs_steps=LBFGS_STEPS, history=None):
    """One scale: ``nn_updates`` times, match the patches, then L-BFGS-B over the hole's pixels.

    Args:
        x: (N, C, H, W) start (its known pixels are kept); mask (N, 1, H, W); content like x.
        history: a list that gets E after each L-BFGS run (host floats), if given.
    Returns:
        (N, C, H, W) on x's backend and dtype, only the hole changed.
    """
    from scipy.optimize import Bounds, minimize

    xp = get_array_module(x)
    hole = xp.broadcast_to(mask > 0.5, x.shape)
    x = x.copy()
    if not bool(hole.any()):
        return x
    for _ in range(nn_updates):
        q, nn = match(x, mask, features)

        def fun(v):
            x[hole] = xp.asarray(v, dtype=x.dtype)
            e, _, dx = energy(x, mask, content, features, q, nn, alpha, beta)
            return float(e), backend.asnumpy(dx[hole]).astype(np.float64)

        start = backend.asnumpy(x[hole]).astype(np.float64)
        result = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=Bounds(-1.0, 1.0),
                          options={"maxiter": lbfgs_steps})
        x[hole] = xp.asarray(result.x, dtype=x.dtype)
        if history is not None:
            history.append(float(result.fun))
    return x


def downsample(x):
    """2x2 average pooling: (N, C, H, W) -> (N, C, H/2, W/2)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def downsample_mask(mask):
    """A coarse pixel is missing if any of its 2x2 fine pixels is, so the known coarse pixels are
    averages of known fine ones. (N, 1, H, W) -> (N, 1, H/2, W/2)."""
    n, c, h, w = mask.shape
    return mask.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def upsample(x):
    """Nearest-neighbour 2x upsampling: (N, C, H, W) -> (N, C, 2H, 2W)."""
    return x.repeat(2, axis=2).repeat(2, axis=3)


def check_pyramid(size, scales):
    """Raise YangError unless a ``size`` x ``size`` image halves ``scales - 1`` times into an
    integer size of at least 8 pixels (a 3x3 patch and a hole with known texture around it)."""
    if scales < 1:
        raise YangError(f"the pyramid needs at least 1 scale, got {scales}")
    step = 2 ** (scales - 1)
    if size % step or size // step < 8:
        raise YangError(f"a {size}x{size} image is too small for a {scales}-scale pyramid: halving it "
                        f"{scales - 1} time(s) needs a side divisible by {step} that leaves at least 8 pixels; "
                        f"use fewer scales")


def check_patches(masks, scales):
    """Raise YangError naming the image and the pyramid level where no 3x3 patch lies fully
    outside the hole (so there is no known texture to copy), checked before any optimisation."""
    xp = get_array_module(masks)
    m = masks
    for level in range(scales):
        lonely = without_candidates(*patch_sets(m))
        if bool(lonely.any()):
            which = f"image {int(xp.flatnonzero(lonely)[0])}: " if masks.shape[0] > 1 else ""
            raise YangError(f"{which}no {PATCH}x{PATCH} patch of the {m.shape[2]}x{m.shape[3]} level of the "
                            f"pyramid lies fully outside the hole, so there is no known texture to copy; "
                            f"use a smaller hole, one that leaves known rows and columns at the border, or "
                            f"fewer pyramid scales (--scales)")
        if level < scales - 1:
            m = downsample_mask(m)


def yang_fill(features, images, masks, content, scales=SCALES, alpha=TEXTURE_WEIGHT, beta=TV_WEIGHT,
              nn_updates=NN_UPDATES, lbfgs_steps=LBFGS_STEPS, progress=False):
    """Fill the holes of ``images`` by the coarse-to-fine optimisation of the module docstring.

    Args:
        features: a stride-1 feature network (eval mode; frozen here).
        images: (N, C, H, W) in [-1, 1] (hole values ignored); masks (N, 1, H, W), 1 = missing;
        content: (N, C, H, W) the content network's prediction (used in the hole).
        scales: pyramid levels (1 = full size only); alpha, beta: texture and smoothness weights;
        nn_updates: patch matchings per scale; lbfgs_steps: L-BFGS-B iterations after each.
    Returns:
        (N, C, H, W) on the images' backend: the known pixels exactly as given.
    Raises:
        YangError for an image too small for the pyramid or a hole with no patch outside it.
    """
    xp = get_array_module(images)
    check_pyramid(images.shape[2], scales)
    check_pyramid(images.shape[3], scales)
    check_patches(masks, scales)
    out = []
    bar = range(images.shape[0])
    if progress:
        from tqdm import tqdm
        bar = tqdm(bar, desc="texture optimisation", leave=False, disable=None)   # None: no bar in non-TTY logs
    for i in bar:
        levels = [(images[i:i + 1], masks[i:i + 1], content[i:i + 1])]              # fine to coarse
        for _ in range(scales - 1):
            x, m, c = levels[-1]
            levels.append((downsample(x), downsample_mask(m), downsample(c)))
        x = None
        for image, mask, target in reversed(levels):
            start = target if x is None else upsample(x)
            x = optimise_scale(image * (1 - mask) + start * mask, mask, target, features, alpha, beta,
                               nn_updates, lbfgs_steps)
        out.append(x)
    return xp.concatenate(out)
