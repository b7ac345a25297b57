"""Image sets for the inpainting experiments, as uint8 (N, C, H, W) host arrays.

- ``fashion-mnist`` / ``mnist``: 28x28 grey, the official train/test split (via
  :func:`npgan.data.load_dataset`); centre hole 14x14.
- ``natural``: 32x32 RGB crops (random positions, random horizontal flips) from the colour
  photographs bundled with scikit-image, each photo shrunk to 1/2 and 1/4 of its size first
  so a crop holds some structure. Train crops come from ``TRAIN_PHOTOS``, test crops from a
  *different* photograph (``TEST_PHOTOS``), so the test set is truly unseen; centre hole 16x16.
- ``lfw``: the 100 face images of ``skimage.data.lfw_subset()`` (25x25 grey, upsampled to
  28x28), 80 train (plus their mirror images) / 20 test. A tiny demonstration only: far too
  few faces to learn faces from.

    >>> data = load_inpaint_data("natural")
    >>> data.train.shape, data.test.shape, data.hole       # (30000, 3, 32, 32), (1000, 3, 32, 32), 16
"""
from dataclasses import dataclass, field

import numpy as np

DATASETS = ("fashion-mnist", "mnist", "natural", "lfw")

# skimage.data colour photographs (name -> loader). Train and test never share a photo.
TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "motorcycle")
TEST_PHOTOS = ("chelsea",)
PHOTO_SCALES = (0.5, 0.25)


@dataclass
class InpaintData:
    """One inpainting data set.

    Attributes:
        name: one of ``DATASETS``.
        source: a plain sentence saying what the data is and where it came from.
        train, test: uint8 (N, C, H, W) host arrays; ``test`` is held out for evaluation.
        hole: side of the centre hole for this image size.
    """
    name: str
    source: str
    train: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    hole: int

    @property
    def channels(self):
        return self.train.shape[1]

    @property
    def size(self):
        return self.train.shape[2]

    def mean_pixel(self):
        """Per-channel mean of the training images in [-1, 1] (float32 (C,)): the GLCIC
        and Context Encoder hole pre-fill."""
        return (self.train.mean(axis=(0, 2, 3)) / 127.5 - 1).astype(np.float32)


def canonical_dataset(name):
    key = str(name).strip().lower().replace("_", "-")
    key = {"fashion": "fashion-mnist", "faces": "lfw", "photos": "natural"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    return key


def load_inpaint_data(name, n_train_crops=30000, n_test_crops=1000, seed=0, verbose=True):
    """Load (or cut) a data set by name; see the module docstring.

    Args:
        name: 'fashion-mnist', 'mnist', 'natural' or 'lfw'.
        n_train_crops, n_test_crops: crops cut for 'natural'.
        seed: seed of the crop positions and flips (and of the LFW split).
        verbose: print one line saying which data is used (and any notes about it below).

    Raises:
        FileNotFoundError / IDXError: MNIST or Fashion-MNIST not found or damaged (see
        :func:`npgan.data.load_dataset`).
    """
    name = canonical_dataset(name)
    notes = ()
    if name in ("fashion-mnist", "mnist"):
        from . import load_dataset
        ds = load_dataset(name, verbose=False)                  # $NPGAN_DATA, if set, must hold it
        data = InpaintData(name, ds.source, ds.train_images[:, None], ds.test_images[:, None], hole=14)
        notes = ds.notes
    elif name == "natural":
        data = _natural_crops(n_train_crops, n_test_crops, seed)
    else:
        data = _lfw(seed)
    if verbose:
        print(f"data: {data.source}")
        for note in notes:
            print(f"  ({note})")
    return data


# ---- natural-image crops --------------------------------------------------------------------
def _photo(name):
    import skimage.data
    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]                              # left view only
    return getattr(skimage.data, name)()


def _pyramid(names):
    """Every photo at each of PHOTO_SCALES, as float (H, W, 3) in [0, 1]."""
    from skimage.transform import rescale
    out = []
    for name in names:
        img = _photo(name)[..., :3].astype(np.float64) / 255
        out += [rescale(img, s, channel_axis=-1, anti_aliasing=True) for s in PHOTO_SCALES]
    return out


def random_crops(images, n, size, rng, flip=True):
    """``n`` random ``size`` x ``size`` crops (with random horizontal flips) from a list of
    float (H, W, 3) images in [0, 1], each image chosen with probability proportional to its
    number of crop positions. Returns uint8 (n, 3, size, size)."""
    weights = np.array([(im.shape[0] - size + 1) * (im.shape[1] - size + 1) for im in images], float)
    which = rng.choice(len(images), size=n, p=weights / weights.sum())
    out = np.empty((n, 3, size, size), np.uint8)
    for i, j in enumerate(which):
        im = images[j]
        top = rng.integers(0, im.shape[0] - size + 1)
        left = rng.integers(0, im.shape[1] - size + 1)
        crop = im[top:top + size, left:left + size]
        if flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = np.round(crop.transpose(2, 0, 1) * 255).clip(0, 255).astype(np.uint8)
    return out


def _natural_crops(n_train, n_test, seed):
    rng = np.random.default_rng(seed)
    train = random_crops(_pyramid(TRAIN_PHOTOS), n_train, 32, rng)
    test = random_crops(_pyramid(TEST_PHOTOS), n_test, 32, rng)
    source = (f"{n_train} train crops (32x32 RGB) from skimage.data photos {', '.join(TRAIN_PHOTOS)} and "
              f"{n_test} test crops from a different photo ({', '.join(TEST_PHOTOS)}), each photo at scales "
              f"{', '.join(map(str, PHOTO_SCALES))}")
    return InpaintData("natural", source, train, test, hole=16)


# ---- LFW faces ------------------------------------------------------------------------------
def _lfw(seed):
    import skimage.data
    from skimage.transform import resize
    faces = skimage.data.lfw_subset()[:100]                                     # the 100 faces
    faces = resize(faces, (100, 28, 28), anti_aliasing=False, order=1)
    faces = np.round(faces * 255).clip(0, 255).astype(np.uint8)[:, None]        # (100, 1, 28, 28)
    order = np.random.default_rng(seed).permutation(100)
    train, test = faces[order[:80]], faces[order[80:]]
    train = np.concatenate([train, train[..., ::-1]])                          # mirror images
    source = ("TINY demo: the 100 LFW faces bundled with scikit-image (25x25, upsampled to 28x28): "
              "80 train (+ mirrors) / 20 test")
    return InpaintData("lfw", source, train, test, hole=14)
