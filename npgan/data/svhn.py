"""SVHN's cropped digits (Netzer et al. 2011): ``train_32x32.mat`` and ``test_32x32.mat``.

Each file is a MATLAB file holding ``X``, uint8 (32, 32, 3, N) colour images, and ``y``, (N, 1)
labels 1..10 where 10 stands for the digit 0 (read with ``scipy.io.loadmat``). Where the files
are looked for, first hit wins, as for MNIST (``npgan.data.mnist``):

1. ``data_dir`` (``--data-dir``), itself or its ``svhn/`` subfolder, else ``$NPGAN_DATA/svhn``,
   then ``$NPGAN_DATA``: a folder the user names must hold both files;
2. the user cache, ``platformdirs.user_cache_dir("npgan")/svhn``;
3. a download into that cache from :data:`URL`, each file checked against :data:`SHA256`
   (246 MB in all; skipped with ``download=False`` or ``NPGAN_OFFLINE=1``).

There is no fallback data set: without the files, :func:`load_svhn` raises FileNotFoundError
whose message says in one line which files to put where.

:func:`load_mnist_svhn` pairs it with MNIST for a CycleGAN, at SVHN's 32 x 32: domain A is the
MNIST training digits padded to 32 x 32 (``npgan.data.mnistm.pad_digits``), domain B SVHN's
training images; the test sets are MNIST's and SVHN's test images, each with its own digits.
"""
import os
from pathlib import Path

import numpy as np
import platformdirs

from . import _download
from .dataset import Dataset, shown_path

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
URL = "http://ufldl.stanford.edu/housenumbers/"
SHA256 = {  # as TensorFlow Datasets' svhn_cropped checksums list them
    "train_32x32.mat": "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8",
    "test_32x32.mat": "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b",
}
MAX_BYTES = 200 * 2**20                # the training file is 182,040,794 bytes


class SVHNError(ValueError):
    """An SVHN file that is not what SVHN's cropped digits are (the message names the file)."""


def cache_dir():
    """Where a downloaded SVHN is kept: ``user_cache_dir("npgan")/svhn``."""
    return Path(platformdirs.user_cache_dir("npgan")) / "svhn"


def read_svhn_mat(path):
    """The images and digits of one SVHN ``.mat`` file: uint8 (N, 3, 32, 32) and int64 (N,) in
    0..9 (SVHN's label 10 is the digit 0). Raises SVHNError naming the file and what is wrong."""
    import scipy.io
    try:
        contents = scipy.io.loadmat(path)
    except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as err:
        raise SVHNError(f"{path}: not a readable MATLAB file ({err})") from None
    keys = sorted(k for k in contents if not k.startswith("__"))
    if "X" not in contents or "y" not in contents:
        raise SVHNError(f"{path}: expected the variables X and y of SVHN's cropped digits, found "
                        f"{', '.join(keys) or 'none'}")
    x, y = np.asarray(contents["X"]), np.asarray(contents["y"])
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise SVHNError(f"{path}: X should be uint8 images of shape (32, 32, 3, N), got {x.dtype} {x.shape}")
    labels = y.reshape(-1).astype(np.int64)
    if labels.shape != (x.shape[3],):
        raise SVHNError(f"{path}: y should hold one label per image ({x.shape[3]}), got shape {y.shape}")
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise SVHNError(f"{path}: labels should be 1..10 (10 for the digit 0), got {labels.min()}..{labels.max()}")
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), labels % 10


def _named_dirs(data_dir):
    if data_dir is not None:
        return [("--data-dir", Path(data_dir)), ("--data-dir", Path(data_dir) / "svhn")]
    if os.environ.get("NPGAN_DATA"):
        root = Path(os.environ["NPGAN_DATA"])
        return [("$NPGAN_DATA", root / "svhn"), ("$NPGAN_DATA", root)]
    return []


def _holds_both(directory):
    return all((Path(directory) / name).is_file() for name in FILES.values())


def _dataset(directory, where, notes=()):
    train_x, train_y = read_svhn_mat(Path(directory) / FILES["train"])
    test_x, test_y = read_svhn_mat(Path(directory) / FILES["test"])
    source = f"SVHN's cropped digits, {len(train_x):,} training / {len(test_x):,} test images (32x32 colour) from {where}"
    return Dataset("svhn", source, train_x, train_y, test_x, test_y, notes=tuple(notes))


def load_mnist_svhn(data_dir=None, verbose=True, mnist=None, svhn=None):
    """MNIST (domain A, padded to 32 x 32) and SVHN (domain B) as a ``TranslationData`` (see the
    module docstring).

    Args:
        data_dir: where SVHN is (``load_svhn``); MNIST is found as ``npgan.data.load_dataset`` finds it.
        mnist, svhn: already loaded ``Dataset`` s (then nothing is read).
    Raises:
        FileNotFoundError (one line: where SVHN's files go), SVHNError, or MNIST's errors.
    """
    from . import load_dataset
    from .mnistm import TranslationData, pad_digits
    if svhn is None:                                     # before MNIST: the likelier failure
        svhn = load_svhn(data_dir, verbose=verbose)
    if mnist is None:
        mnist = load_dataset("mnist", verbose=False)
    source = (f"{mnist.source}; domain A: its {len(mnist.train_images):,} training digits padded to 32 x 32, "
              f"domain B: {svhn.source}; test: {len(mnist.test_images):,} MNIST and {len(svhn.test_images):,} "
              f"SVHN test images")
    data = TranslationData(source, pad_digits(mnist.train_images, 32)[:, None], svhn.train_images,
                           pad_digits(mnist.test_images, 32)[:, None], svhn.test_images,
                           svhn.test_labels.astype(np.int64), svhn.train_labels.astype(np.int64),
                           tuple(mnist.notes) + tuple(svhn.notes), mnist.train_labels.astype(np.int64),
                           name_b="SVHN", test_a_labels=mnist.test_labels.astype(np.int64))
    if verbose:
        data.announce()
    return data


def load_svhn(data_dir=None, download=True, verbose=False):
    """SVHN from the first place of the module docstring's search that holds both files.

    Returns a ``Dataset`` (name ``"svhn"``) whose images are uint8 (N, 3, 32, 32).
    Raises FileNotFoundError (one line: which files, where to put them) or SVHNError."""
    named = _named_dirs(data_dir)
    if named:
        for label, directory in named:
            if _holds_both(directory):
                return _dataset(directory, f"{directory} ({label})")
        raise FileNotFoundError(f"SVHN not found where {named[0][0]} points: put {FILES['train']} and "
                                f"{FILES['test']} (from {URL}) in {named[0][1]}")
    if _holds_both(cache_dir()):
        return _dataset(cache_dir(), f"{shown_path(cache_dir())} (cache)")
    why = ("download disabled" if not download else
           "download disabled by NPGAN_OFFLINE" if _download.offline() else None)
    if why is None:
        try:
            _download.fetch(list(FILES.values()), cache_dir(), (URL,), SHA256, progress=verbose, max_bytes=MAX_BYTES)
        except _download.DownloadError as err:
            why = f"the download failed: {(err.errors or [err])[0]}"
        else:
            return _dataset(cache_dir(), f"a download from {URL} into {shown_path(cache_dir())} (SHA-256 verified)")
    raise FileNotFoundError(f"SVHN not found ({why}): put {FILES['train']} and {FILES['test']} (from {URL}) in "
                            f"{shown_path(cache_dir())}, or pass --data-dir with the folder that holds them")
