"""Pictures of a training run: image grids, the loss plot and the progress GIF.

Everything here works on host (NumPy) arrays; the training loop calls
``backend.asnumpy`` before handing images over.

    >>> grid = make_grid(images)                  # (N, 28, 28) in [-1, 1] -> (H, W) uint8
    >>> save_grid(images, "samples.png")
    >>> plot_history(history, "losses.png")       # history: list of metrics.jsonl records
    >>> save_gif(["a.png", "b.png"], "progress.gif")
"""
import math
from pathlib import Path

import numpy as np
from PIL import Image


def to_uint8(images):
    """Float images in [-1, 1] -> uint8 pixels in [0, 255] (clipped and rounded)."""
    pixels = (np.asarray(images, dtype=np.float32) + 1.0) * 127.5
    return pixels.round().clip(0, 255).astype(np.uint8)


def make_grid(images, nrow=None, padding=2, pad_value=0):
    """Tile images into one picture, row by row (like ``torchvision.utils.make_grid``).

    Args:
        images: (N, H, W) or (N, 1, H, W) floats in [-1, 1], or uint8.
        nrow: images per row. Default: ceil(sqrt(N)), a square-ish grid.
        padding: pixels between images and around the border. Default 2.
        pad_value: uint8 value of the padding. Default 0 (black).

    Shape:
        Output (rows * (H + padding) + padding, nrow * (W + padding) + padding) uint8,
        with rows = ceil(N / nrow).
    """
    images = np.asarray(images)
    if images.ndim == 4:
        if images.shape[1] != 1:
            raise ValueError(f"make_grid: expected one channel, got shape {images.shape}")
        images = images[:, 0]
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"make_grid: expected (N, H, W) images with N >= 1, got shape {images.shape}")
    pixels = images if images.dtype == np.uint8 else to_uint8(images)
    n, h, w = pixels.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value, np.uint8)
    for i, image in enumerate(pixels):
        r, c = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


def save_grid(images, path, nrow=None, scale=1, row_labels=None):
    """Write ``make_grid(images, nrow)`` as a grey PNG, each pixel ``scale`` x ``scale``, with
    ``row_labels`` (one text per row, e.g. the class of a conditional GAN's rows) left of the rows.

    Returns the picture (H, W) uint8 before scaling.
    """
    grid = make_grid(images, nrow)
    if row_labels is not None:
        grid = label_rows(grid, row_labels, row_height=np.asarray(images).shape[-2])
    picture = Image.fromarray(grid)                     # uint8 (H, W): greyscale
    if scale != 1:
        picture = picture.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return grid


def label_rows(grid, labels, row_height, padding=2):
    """``grid`` (H, W) uint8 from ``make_grid`` with a margin on its left holding ``labels[r]``
    beside row r, in white on black (PIL's default font, 6 pixels a character)."""
    from PIL import ImageDraw
    labels = [str(text) for text in labels]
    margin = 6 * max(len(text) for text in labels) + 6
    picture = Image.fromarray(np.hstack([np.zeros((grid.shape[0], margin), np.uint8), grid]))
    draw = ImageDraw.Draw(picture)
    for r, text in enumerate(labels):
        draw.text((3, padding + r * (row_height + padding) + row_height // 2 - 6), text, fill=255)
    return np.asarray(picture)


def save_gif(frames, path, duration_ms=200, last_frame_ms=1500, mode="L"):
    """An animated, looping GIF from PNG paths or (H, W) uint8 arrays, in the given order.

    The last frame is held for ``last_frame_ms`` so the final samples can be seen. PNGs are
    read as ``mode`` ('L' grey, 'RGB' colour). Returns the number of frames written (0 writes nothing).
    """
    pictures = [_load(f, mode) if isinstance(f, (str, Path)) else Image.fromarray(f) for f in frames]
    if not pictures:
        return 0
    durations = [duration_ms] * (len(pictures) - 1) + [last_frame_ms]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    return len(pictures)


def _load(path, mode):
    """A PNG converted to ``mode``, its file closed."""
    with Image.open(path) as picture:
        return picture.convert(mode)


def plot_history(history, path, title=None):
    """Plot the losses, D(x) and D(G(z)) against the step, and (where logged) the overfitting
    signal: D's mean output on training and held-out images, r_t and the augmentation p; writes a PNG.

    Every axis is labelled and the legends sit to the right of the plots, off the curves.

    Args:
        history: records with keys ``step``, ``loss_D``, ``loss_G``, ``D_x``, ``D_G_z``
            (the lines of ``metrics.jsonl``).
        path: the PNG to write.
        title: optional figure title.
    Returns:
        the matplotlib figure (already written and closed), for inspection.
    """
    import matplotlib
    matplotlib.use("Agg")                                    # no display needed
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    probed = [r for r in history if "D_heldout" in r]                 # the overfitting signal, where logged
    fig, axes = plt.subplots(3 if probed else 2, 1, figsize=(8, 8.5 if probed else 6), sharex=True)
    top, bottom = axes[:2]
    top.plot(steps, [r["loss_D"] for r in history], label="loss D")
    top.plot(steps, [r["loss_G"] for r in history], label="loss G")
    top.set_ylabel("loss (mean per log interval)")
    bottom.plot(steps, [r["D_x"] for r in history], label="D(x), real")
    bottom.plot(steps, [r["D_G_z"] for r in history], label="D(G(z)), fake")
    bottom.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("mean D output (probability)")
    if probed:
        over = axes[2]
        at = [r["step"] for r in probed]
        over.plot(at, [r["D_train"] for r in probed], label="D, training images")
        over.plot(at, [r["D_heldout"] for r in probed], label="D, held-out images")
        if all("r_t" in r for r in probed):
            over.plot(at, [r["r_t"] for r in probed], label="r_t = E[sign D(x)]", linestyle=":")
        if any("augment_p" in r for r in probed):
            over.plot(at, [r.get("augment_p", float("nan")) for r in probed], label="augment p", linestyle="--")
        over.set_ylim(-1.05, 1.05)
        over.set_ylabel("overfitting signal")
    axes[-1].set_xlabel("step")
    for ax in axes:
        legend_outside(ax)
        ax.grid(alpha=0.3)
    save_figure(fig, path, title)
    return fig


def legend_outside(ax):
    """The axes' legend to the right of the plotting area, where it cannot cover a curve."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=9)


def save_figure(fig, path, title=None, dpi=100):
    """Title, tight layout, write ``path`` (creating its folder) and free the figure."""
    import matplotlib.pyplot as plt
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
