"""The ``Dataset`` record, pixel scaling, class names and the minibatch iterator.

Images stay uint8 on the host until a batch is drawn; the training loop scales
the batch to [-1, 1] and moves it to the device:

    >>> for real in iterate_minibatches(ds.train_images, 64, rng):   # (64, 28, 28) uint8
    ...     x = backend.to_device(scale_images(real))                # float32 in [-1, 1]
"""
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}
ALIASES = {"mnist": "mnist", "fashion-mnist": "fashion-mnist",
           "fashion_mnist": "fashion-mnist", "fashion": "fashion-mnist"}


def canonical_name(name):
    """``"mnist"`` or ``"fashion-mnist"`` for any accepted spelling of a dataset name."""
    key = str(name).strip().lower()
    if key not in ALIASES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(ALIASES)}")
    return ALIASES[key]


def shown_path(path):
    """``path`` as messages print it: under the home directory as ``~/...``, so a message (and a
    notebook's output) reads the same on every machine."""
    path, home = Path(path), Path.home()
    try:
        return str(Path("~") / path.relative_to(home))
    except ValueError:
        return str(path)


def class_names(name):
    """The ten class names of a dataset, in label order (``class_names("fashion")[9]``
    is ``"Ankle boot"``)."""
    return list(CLASS_NAMES[canonical_name(name)])


@dataclass
class Dataset:
    """Images and labels of one dataset, split into train and held-out test parts.

    Attributes:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        source: one plain sentence saying which data this is and where it came from.
        train_images: (N, 28, 28) uint8.
        train_labels: (N,) int64 in 0..9.
        test_images: (M, 28, 28) uint8, kept for evaluation only.
        test_labels: (M,) int64.
        notes: secondary remarks about the source (e.g. why a download failed), printed
            indented under it. Default ().
    """
    name: str
    source: str
    train_images: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    test_images: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    notes: tuple = ()

    def limited(self, n, seed=0):
        """The same dataset with only ``n`` training images: a fixed random subset (drawn by
        ``default_rng(seed)``, so every run that asks for ``n`` gets the same images); the
        held-out split is kept whole."""
        if n >= len(self.train_images):
            return self
        keep = np.sort(np.random.default_rng(seed).permutation(len(self.train_images))[:n])
        return replace(self, source=f"{n:,} of {self.source}", train_images=self.train_images[keep],
                       train_labels=self.train_labels[keep])

    @property
    def class_names(self):
        """The ten class names, in label order."""
        return class_names(self.name)

    @staticmethod
    def to_float(images):
        """Same as :func:`scale_images`."""
        return scale_images(images)

    def __str__(self):
        return (f"{self.name}: {len(self.train_images)} train / {len(self.test_images)} "
                f"test images of {self.train_images.shape[1:]} ({self.source})")


def scale_images(images):
    """Map uint8 pixels to float32 in [-1, 1]: ``x / 127.5 - 1``.

    0 maps to exactly -1 and 255 to exactly 1. Works on NumPy and CuPy arrays.

    Raises:
        TypeError: ``images`` is not uint8 (guards against scaling twice).
    """
    if images.dtype != np.uint8:
        raise TypeError(f"scale_images expects uint8 pixels, got {images.dtype}")
    return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def unscale_images(images):
    """Inverse of :func:`scale_images`: float in [-1, 1] to uint8 (clipped, rounded)."""
    pixels = (images + 1.0) * 127.5
    return pixels.round().clip(0, 255).astype(np.uint8)


def iterate_minibatches(images, batch_size, rng, drop_last=True, labels=None):
    """Yield shuffled minibatches covering ``images`` once (one epoch).

    Call it again for the next epoch; ``rng`` advances, so each epoch gets a new
    order.

    Args:
        images: (N, ...) host array, typically uint8.
        batch_size: images per batch.
        rng: ``numpy.random.Generator`` that draws the permutation.
        drop_last: skip the final batch when it is smaller than ``batch_size``
            (keeps BatchNorm statistics and step sizes uniform). Default True.
        labels: optional (N,) array; when given, yields ``(images, labels)`` pairs.

    Yields:
        ``images[idx]`` of shape (batch_size, ...), same dtype as ``images``,
        or ``(images[idx], labels[idx])`` when ``labels`` is given.
    """
    n = len(images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    order = rng.permutation(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield images[idx] if labels is None else (images[idx], labels[idx])


def batches_per_epoch(n, batch_size, drop_last=True):
    """How many batches :func:`iterate_minibatches` yields for ``n`` images."""
    return n // batch_size if drop_last else -(-n // batch_size)
