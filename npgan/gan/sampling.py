"""Noise and samples: the codes a run's sample grids use and images drawn from a generator."""
import numpy as np

from .. import backend
from ..models.conditional import class_labels, with_labels


def fixed_noise(n, z_dim, seed, truncation=None):
    """``n`` standard-normal codes (n, z_dim) float32, drawn on the host from ``seed`` so they
    are the same on every backend and after a resume. ``truncation`` t: the truncation trick
    (Brock et al. 2019), every value with |z| > t drawn again until it is within [-t, t]."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, z_dim))
    if truncation is not None:
        if not truncation > 0:
            raise ValueError(f"truncation must be positive, got {truncation}")
        outside = np.abs(z) > truncation
        while outside.any():
            z[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(z) > truncation
    return z.astype(np.float32)


def generate(G, n, z_dim=100, seed=0, batch_size=500, n_classes=None, labels=None, truncation=None):
    """``n`` images from ``G`` in eval mode: host float32 (n, 28, 28) in [-1, 1] (one channel
    squeezed). G's training mode is restored afterwards.

    A class-conditional G (``n_classes``) draws class ``labels[i]`` for image i (host ints;
    default: 0, 1, ..., K-1 repeated, equal numbers of each class). ``truncation``: draw the
    noise truncated (``fixed_noise``), fidelity bought with diversity."""
    was_training = G.training
    G.eval()
    z = fixed_noise(n, z_dim, seed, truncation)
    if n_classes:
        labels = class_labels(n, n_classes) if labels is None else np.asarray(labels)
        z = with_labels(z, labels, n_classes)
    images = []
    for start in range(0, n, batch_size):
        fake = G.forward(backend.to_device(z[start:start + batch_size]))       # (b, 1, 28, 28)
        images.append(backend.asnumpy(fake)[:, 0])
    G.train(was_training)
    return np.concatenate(images).astype(np.float32, copy=False)
