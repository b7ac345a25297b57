"""Inpaint a user's own image with a trained run:

    python -m npgan.inpaint fill --checkpoint runs/NAME --image in.png --mask mask.png --out out.png

The image must have the run's size and channel count (28x28 grey for the MNIST-style and
LFW runs, 32x32 RGB for ``natural``). The mask is a PNG of the same size whose white
pixels (255, or 1) mark the hole and black pixels (0) the known part; nothing else is
accepted. Problems are reported as :class:`FillError` with a message saying what to change.
"""
from pathlib import Path

import numpy as np

from ... import backend
from ...inpainting_viz import save_panel, show_masked
from .runs import load_inpainters
from .yang import YangError


class FillError(ValueError):
    """The image, the mask or the checkpoint cannot be used (the message says why)."""


def _open(path, what):
    from PIL import Image, UnidentifiedImageError
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise FillError(f"{what} file {path!r} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise FillError(f"cannot read {what} file {path!r}: not an image PIL can decode ({err})") from None
    return img


def read_image(path, channels, size):
    """A user's image as float32 (1, C, H, W) in [-1, 1], checked against the run's shape."""
    img = _open(path, "image")
    if "A" in img.getbands() or img.mode == "P" and "transparency" in img.info:
        raise FillError(f"image {path!r} has an alpha channel (mode {img.mode}); save it without transparency "
                        f"(e.g. as {'grey' if channels == 1 else 'RGB'}) first")
    if img.mode == "F":
        raise FillError(f"image {path!r} holds floating-point pixels (mode F); save it as an 8- or 16-bit "
                        f"grey or RGB image")
    if img.mode in ("1", "P"):
        img = img.convert("L" if img.mode == "1" else "RGB")
    bands = len(img.getbands())
    if bands not in (1, 3):
        raise FillError(f"image {path!r} has mode {img.mode}; expected a grey (L) or RGB image")
    if img.size != (size, size):
        raise FillError(f"image {path!r} is {img.size[0]}x{img.size[1]} pixels but this model inpaints "
                        f"{size}x{size} images; crop or resize it to {size}x{size} first")
    if bands != channels:
        kind = {1: "grey (1 channel)", 3: "RGB (3 channels)"}
        raise FillError(f"image {path!r} is {kind[bands]} but this model was trained on {kind[channels]} images; "
                        f"convert it to {'grey' if channels == 1 else 'RGB'} first")
    x = np.asarray(img, np.float32).reshape(size, size, channels).transpose(2, 0, 1)
    white = 65535.0 if img.mode.startswith("I") else 255.0      # 16-bit grey PNGs open as I;16 or I
    return (x / (white / 2) - 1)[None]


def read_mask(path, size):
    """A binary mask PNG as float32 (1, 1, H, W), 1 = hole (white), 0 = known (black)."""
    img = _open(path, "mask")
    if img.size != (size, size):
        raise FillError(f"mask {path!r} is {img.size[0]}x{img.size[1]} pixels but the image is {size}x{size}")
    a = np.asarray(img.convert("RGBA" if "A" in img.getbands() else "RGB" if img.mode == "P" else img.mode))
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.ndim == 3:
        if a.shape[2] == 4:
            a = a[..., :3]
        if not (a == a[..., :1]).all():
            raise FillError(f"mask {path!r} has coloured pixels; use black (0) for known and white (255) for missing")
        a = a[..., 0]
    values = np.unique(a)
    top = values.max()                                          # white: 1, 255 or 65535 (16-bit)
    if len(values) > 2 or values.min() not in (0, top) or top not in (0, 1, 255, 65535):
        shown = ", ".join(str(v) for v in values[:6])
        raise FillError(f"mask {path!r} is not binary: it holds {len(values)} distinct values ({shown}"
                        f"{', ...' if len(values) > 6 else ''}); use only 0 (known) and 255 (missing)")
    return (a > 0).astype(np.float32)[None, None]                # only 0 and white remain


def check_output(path, flag):
    """Refuse, before any work, an output path that cannot become an image file."""
    from PIL import Image
    if Path(path).is_dir():
        raise FillError(f"{flag} {path!r} is a directory; give a file name such as out.png")
    if Path(path).suffix.lower() not in Image.registered_extensions():
        raise FillError(f"{flag} {path!r}: unknown image extension {Path(path).suffix or '(none)'!r}; "
                        f"use .png")


def fill_image(checkpoint, image, mask, out, blend=True, panel=None):
    """Inpaint ``image`` under ``mask`` with the run in ``checkpoint``; write ``out`` (PNG).

    Uses the run's best fill: Poisson-blended for GLCIC and latent runs unless ``blend`` is
    False. Writes a masked | completion | input ``panel`` PNG when asked. Returns the
    completion as uint8 (H, W) or (H, W, 3).
    """
    check_output(out, "--out")
    if panel:
        check_output(panel, "--panel")
    try:
        cfg, inpainters = load_inpainters(checkpoint)
    except (FileNotFoundError, ValueError) as err:
        raise FillError(str(err)) from None
    x = read_image(image, cfg.channels, cfg.size)
    m = read_mask(mask, cfg.size)
    if m.all():
        raise FillError(f"mask {mask!r} marks every pixel as missing; at least some pixels must be known")
    if not m.any():
        print(f"note: mask {mask!r} marks no pixel as missing; writing the image unchanged")
    labels = [label for label, _ in inpainters]
    pick = [i for i, lab in enumerate(labels) if ("Poisson" in lab) == (blend and cfg.method in ("glcic", "latent"))]
    label, fn = inpainters[pick[0] if pick else 0]
    xd, md = backend.to_device(x), backend.to_device(m)
    try:
        result = backend.asnumpy(fn(xd, md)) if m.any() else x
    except YangError as err:
        raise FillError(f"mask {mask!r}: {err}") from None
    pixels = ((result[0] + 1) * 127.5).round().clip(0, 255).astype(np.uint8).transpose(1, 2, 0)
    pixels = pixels[..., 0] if cfg.channels == 1 else pixels
    from PIL import Image
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(out)
    except OSError as err:
        raise FillError(f"cannot write --out {out!r}: {err.strerror or err}") from None
    if panel:
        save_panel([show_masked(x, m), result, x], ["masked", label, "input"], panel, scale=6)
    print(f"wrote {out} ({label}, {cfg.dataset} model from {checkpoint})")
    return pixels
