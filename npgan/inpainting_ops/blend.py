"""Poisson blending (Pérez et al., 2003) and harmonic fill, as sparse linear solves with SciPy.

Inside the hole Omega we look for the image f whose discrete Laplacian matches that of a
*source* (the network's or generator's completion) while agreeing with the *target* (the
known pixels) on the hole's border. For every hole pixel p with in-image 4-neighbours N_p:

    |N_p| f_p - sum_{q in N_p, q in Omega} f_q
        = sum_{q in N_p, q not in Omega} t_q  +  sum_{q in N_p} (s_p - s_q)

A square sparse system with one unknown per hole pixel, symmetric positive definite as
long as the hole does not cover the whole image; it is factorised once per image (SuperLU)
and solved for all channels together. With source = 0 the right-hand side keeps only the
border term and f is the discrete *harmonic* interpolation of the border (a Laplace fill).

``guidance='hole'`` keeps only the source differences between two hole pixels and drops
the pairs that cross the border, so the source is never read outside the hole. Use it when
the source is meaningless there, as for completion networks trained on the hole alone:
writing f = s + h, the correction h is the discrete harmonic function whose border values
are t_q - s_p, the jumps between the known pixels and the fill next to them, so the seam
is spread smoothly over the hole.

This runs on the host (SciPy); device arrays are copied over and the result copied back.

    >>> out = poisson_blend(completion, image, mask)        # (N, C, H, W), mask (N, 1, H, W)
    >>> out = harmonic_fill(image, mask)

:func:`biharmonic_solve` is the smoother sibling used to pre-fill holes for the completion
networks: it minimises the squared Laplacian instead of the squared gradient, so the fill
continues the border's slope as well as its values.
"""
import functools

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .. import backend

_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def poisson_system(hole):
    """The sparse matrix A and the index maps of the Poisson equation on one hole.

    Args:
        hole: (H, W) bool, True = unknown.
    Returns:
        A: (K, K) CSC matrix, K = number of hole pixels (rows in ``np.flatnonzero`` order);
        neighbours: list of four (rows, cols, valid) triples, the 4-neighbours of each hole
            pixel (clipped into the image) and whether they lie inside the image.
    """
    h, w = hole.shape
    ys, xs = np.nonzero(hole)                                                    # (K,) each
    k = ys.size
    index = -np.ones((h, w), np.int64)
    index[ys, xs] = np.arange(k)
    degree = np.zeros(k)
    rows, cols = [np.arange(k)], [np.arange(k)]
    vals = []
    neighbours = []
    for dy, dx in _STEPS:
        ny, nx = ys + dy, xs + dx
        valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        ny, nx = np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)
        neighbours.append((ny, nx, valid))
        degree += valid
        inside = valid & hole[ny, nx]                                           # unknown neighbour
        rows.append(np.flatnonzero(inside))
        cols.append(index[ny[inside], nx[inside]])
        vals.append(-np.ones(inside.sum()))
    data = np.concatenate([degree] + vals)
    A = scipy.sparse.csc_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(k, k))
    return A, neighbours


def _blend_one(source, target, hole, guidance="full"):
    """One image: source, target (C, H, W) float64 host; hole (H, W) bool -> (C, H, W)."""
    out = target.copy()
    if not hole.any():
        return out
    if hole.all():                                 # nothing known: no boundary condition to honour
        return source.copy()
    A, neighbours = poisson_system(hole)
    ys, xs = np.nonzero(hole)
    rhs = np.zeros((ys.size, source.shape[0]))                                   # (K, C)
    for ny, nx, valid in neighbours:
        known = valid & ~hole[ny, nx]
        pairs = valid if guidance == "full" else valid & hole[ny, nx]
        rhs += known[:, None] * target[:, ny, nx].T                              # border values
        rhs += pairs[:, None] * (source[:, ys, xs] - source[:, ny, nx]).T        # guidance field
    f = scipy.sparse.linalg.splu(A).solve(rhs)                                   # (K, C)
    out[:, ys, xs] = f.T
    return out


def poisson_blend(source, target, mask, guidance="full"):
    """Seamless cloning of ``source`` into the hole of ``target``.

    Args:
        source: (N, C, H, W) the completion whose gradients are kept inside the hole.
        target: (N, C, H, W) the image whose known pixels (mask 0) are kept exactly.
        mask: (N, 1, H, W), 1 = hole.
        guidance: 'full' (Pérez et al.: every neighbour pair touching the hole) or 'hole'
            (pairs inside the hole only; see the module docstring).
    Returns:
        (N, C, H, W) on the input's backend and dtype: ``target`` outside the hole, the
        Poisson solution inside it.
    """
    if guidance not in ("full", "hole"):
        raise ValueError(f"poisson_blend: guidance must be 'full' or 'hole', got {guidance!r}")
    xp = backend.get_array_module(target)
    s = backend.asnumpy(source).astype(np.float64)
    t = backend.asnumpy(target).astype(np.float64)
    holes = backend.asnumpy(mask)[:, 0] > 0.5
    if s.shape != t.shape or holes.shape != (t.shape[0],) + t.shape[2:]:
        raise ValueError(f"poisson_blend: source {s.shape}, target {t.shape} and mask "
                         f"{tuple(mask.shape)} do not match as (N, C, H, W) and (N, 1, H, W)")
    out = np.stack([_blend_one(s[i], t[i], holes[i], guidance) for i in range(t.shape[0])])
    return xp.asarray(out.astype(target.dtype))


def harmonic_fill(target, mask):
    """Fill the hole with the discrete harmonic function that matches its border (Laplace's
    equation, Poisson blending with a zero source). Shapes as :func:`poisson_blend`."""
    xp = backend.get_array_module(target)
    return poisson_blend(xp.zeros_like(target), target, mask)


@functools.lru_cache(maxsize=4)
def _squared_laplacian(h, w):
    """Q = L^T L, L the 5-point Laplacian on an h x w grid with mirrored (Neumann) borders: (hw, hw) CSR."""
    def second_difference(n):
        main = -2.0 * np.ones(n)
        main[[0, -1]] = -1                                                       # mirrored border
        return scipy.sparse.diags([main, np.ones(n - 1), np.ones(n - 1)], [0, 1, -1])
    lap = scipy.sparse.kronsum(second_difference(w), second_difference(h)).tocsr()   # row-major (y, x)
    return (lap.T @ lap).tocsr()


@functools.lru_cache(maxsize=64)
def _biharmonic_solver(h, w, hole_bytes):
    """Factorised Q_hh and the coupling Q_hk of one hole (cached: centre holes repeat every batch)."""
    hole = np.frombuffer(hole_bytes, dtype=bool)
    inside, outside = np.flatnonzero(hole), np.flatnonzero(~hole)
    q_rows = _squared_laplacian(h, w)[inside]
    return inside, outside, scipy.sparse.linalg.splu(q_rows[:, inside].tocsc()), q_rows[:, outside].tocsr()


def biharmonic_solve(target, mask):
    """Fill each hole with the values f that minimise the squared discrete Laplacian of the
    whole image, sum_p (L x)_p^2, with the known pixels fixed: Q_hh f = -Q_hk x_known, Q = L^T L.
    Inside the hole this is the biharmonic equation; the known pixels within two of the hole act
    as its boundary (values and slope). Linear in the known pixels, and exact for images that
    are linear ramps around the hole.

    One sparse factorisation per distinct hole, solved for every image and channel with that
    hole at once. An image with nothing known is filled with 0. Host (SciPy), float64 inside.

    Args: target (N, C, H, W), mask (N, 1, H, W) with 1 = hole.
    Returns: (N, C, H, W) on the input's backend and dtype, known pixels unchanged.
    """
    xp = backend.get_array_module(target)
    out = backend.asnumpy(target).astype(np.float64)
    n, c, h, w = out.shape
    if tuple(mask.shape) != (n, 1, h, w):
        raise ValueError(f"biharmonic_solve: mask {tuple(mask.shape)} does not match images {out.shape} "
                         f"as (N, 1, H, W)")
    holes = (backend.asnumpy(mask) > 0.5).reshape(n, h * w)
    flat = out.reshape(n, c, h * w)
    patterns, group = np.unique(holes, axis=0, return_inverse=True)
    for g, hole in enumerate(patterns):
        members = np.flatnonzero(group.ravel() == g)
        if not hole.any():
            continue
        if hole.all():
            flat[members] = 0.0
            continue
        inside, outside, lu, coupling = _biharmonic_solver(h, w, hole.tobytes())
        known = flat[members][:, :, outside].reshape(-1, outside.size).T           # (n_known, G*C)
        filled = lu.solve(-(coupling @ known))                                     # (K, G*C)
        block = flat[members]
        block[:, :, inside] = filled.T.reshape(len(members), c, inside.size)
        flat[members] = block
    return xp.asarray(out.astype(target.dtype))
