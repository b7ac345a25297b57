"""Fashion-MNIST: the IDX files of Debian's ``dataset-fashion-mnist`` package, or your own.

Where the files are looked for (a folder the user names is the only place looked in, and it
must hold them):

1. ``data_dir`` (the ``--data-dir`` option): its ``fashion-mnist/`` subfolder, then itself; else
2. ``$NPGAN_DATA/fashion-mnist``, when that variable is set; else
3. ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).

The files have the same names and format as MNIST's; the official 10,000-image
t10k split is the held-out test split.
"""
import os
from pathlib import Path

from .dataset import Dataset
from .mnist import FILES, find_idx_files, not_found_message, read_idx_split

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def search_dirs(data_dir=None):
    """The directories searched for the IDX files, in order, as ``(label, path)``: the folders
    of ``data_dir`` if given, else of ``$NPGAN_DATA`` if set, else Debian's."""
    if data_dir is not None:
        return [("--data-dir", Path(data_dir) / "fashion-mnist"), ("--data-dir", Path(data_dir))]
    if os.environ.get("NPGAN_DATA"):
        return [("$NPGAN_DATA", Path(os.environ["NPGAN_DATA"]) / "fashion-mnist")]
    return [("Debian dataset-fashion-mnist", SYSTEM_DIR)]


def load_fashion_mnist(data_dir=None):
    """Load Fashion-MNIST from the first directory in the lookup order that has it.

    Args:
        data_dir: the folder holding the IDX files (``--data-dir``), itself or its
            ``fashion-mnist/`` subfolder; when given, the only place looked in. Default None.

    Returns:
        :class:`~npgan.data.dataset.Dataset` with ``name="fashion-mnist"``:
        60,000 training and 10,000 test images for the standard files.

    Raises:
        FileNotFoundError: the named folder (``data_dir`` or ``$NPGAN_DATA``) does not hold
            the four files, or Debian's package is not installed; the message names the folders
            searched, the files, and how to install them.
        IDXError: a file that was found is truncated or corrupt.
    """
    searched = search_dirs(data_dir)
    for label, directory in searched:
        paths = find_idx_files(directory)
        if paths is not None:
            train_x, train_y, test_x, test_y = read_idx_split(paths)
            source = (f"Fashion-MNIST, full {len(train_x):,} training / {len(test_x):,} "
                      f"test images from IDX files in {directory} ({label})")
            return Dataset("fashion-mnist", source, train_x, train_y, test_x, test_y)
    if searched[0][0] in ("--data-dir", "$NPGAN_DATA"):                # a folder the user named
        raise FileNotFoundError(not_found_message(
            "Fashion-MNIST", searched, default=f" (without --data-dir and $NPGAN_DATA, npgan reads "
                                               f"{SYSTEM_DIR}: `apt-get install dataset-fashion-mnist`)"))
    places = ", ".join(str(path) for _, path in searched)
    raise FileNotFoundError(
        f"Fashion-MNIST not found: no {FILES['train_images']}(.gz) and its three companion "
        f"files in {places}. Install them with `apt-get install dataset-fashion-mnist` "
        f"(Debian/Ubuntu), or put the four IDX files from "
        f"https://github.com/zalandoresearch/fashion-mnist in $NPGAN_DATA/fashion-mnist "
        f"or pass --data-dir.")
