"""Pictures of inpainting runs: comparison panels and loss curves (host arrays only)."""
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .backend import asnumpy
from .viz import legend_outside, save_figure

HOLE_GREY = 0.5       # how a hole is shown in the "masked" column (in [0, 1])


def to_uint8_hwc(images):
    """(N, C, H, W) floats in [-1, 1] -> (N, H, W, 3) uint8 (grey images repeated to RGB)."""
    x = ((np.asarray(images, np.float32) + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    x = x.transpose(0, 2, 3, 1)
    return np.repeat(x, 3, axis=3) if x.shape[3] == 1 else x


def show_masked(images, masks):
    """The inpainter's view: known pixels, the hole in flat grey. Shapes as the inputs."""
    return images * (1 - masks) + (2 * HOLE_GREY - 1) * masks


def save_panel(columns, labels, path, scale=3, max_examples=10, pad=2, label_width=170):
    """A comparison picture: one row per variant (labelled on the left), one column per example.

    Args:
        columns: list of (N, C, H, W) host arrays in [-1, 1], one per variant
            (e.g. masked | completions | ground truth).
        labels: one short title per variant.
        path: PNG to write. scale: pixel magnification. max_examples: examples shown.
    """
    rows = [to_uint8_hwc(asnumpy(c)[:max_examples]) for c in columns]
    n, h, w, _ = rows[0].shape
    tile_h, tile_w = h * scale, w * scale
    canvas = Image.new("RGB", (label_width + n * (tile_w + pad) + pad, len(rows) * (tile_h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (row, label) in enumerate(zip(rows, labels)):
        y0 = pad + i * (tile_h + pad)
        lines = _wrap(label, label_width // 6 - 1)[:max(1, tile_h // 12)]
        for k, line in enumerate(lines):
            draw.text((4, y0 + (tile_h - 12 * len(lines)) // 2 + 12 * k), line, fill="black")
        for j in range(n):
            tile = Image.fromarray(row[j]).resize((tile_w, tile_h), Image.NEAREST)
            canvas.paste(tile, (label_width + pad + j * (tile_w + pad), y0))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def _wrap(text, width):
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line] if line else lines


# what an inpainting run's history records (npgan.gan.inpainting.train.write_history's columns), by panel:
# (keys, y-axis label); each key's legend entry below
LOSS_PANELS = (
    (("rec",), "masked L2 in the hole"),
    (("adv", "loss_D", "loss_G"), "adversarial loss"),
    (("D_x", "D_G_z"), "mean D output (probability)"),
)
LOSS_NAMES = {"rec": "masked L2", "adv": "adv (completion)", "loss_D": "loss D", "loss_G": "loss G",
              "D_x": "D(x), real", "D_G_z": "D(fake)"}
PHASE_NAMES = {"C": "completion only", "D": "D only", "joint": "joint"}


def plot_losses(history, path, title=None):
    """Loss curves of an inpainting run, one panel per kind of quantity (reconstruction loss,
    adversarial losses, D's outputs; a panel with nothing recorded is left out); GLCIC's
    phases are shaded. Every axis is labelled, the legends sit right of the plots.

    Args:
        history: list of dicts with 'step', 'phase' and any of 'rec', 'adv', 'loss_D',
            'loss_G', 'D_x', 'D_G_z' (the loop's log records; missing or None values are skipped).
        path: the PNG to write. title: optional figure title.
    Returns:
        the matplotlib figure (already written and closed), for inspection.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    def series(k):
        return [(r["step"], r[k]) for r in history if r.get(k) is not None and math.isfinite(r[k])]

    panels = [([k for k in keys if series(k)], ylabel) for keys, ylabel in LOSS_PANELS]
    panels = [(keys, ylabel) for keys, ylabel in panels if keys]
    fig, axes = plt.subplots(max(1, len(panels)), 1, figsize=(9, 2.4 * max(1, len(panels)) + 0.6),
                             sharex=True, squeeze=False)
    fake = "D(G(z)), generated" if series("loss_G") else "D(completed image)"
    for ax, (keys, ylabel) in zip(axes[:, 0], panels):
        for k in keys:
            ax.plot(*zip(*series(k)), label=fake if k == "D_G_z" else LOSS_NAMES[k])
        values = [v for k in keys for _, v in series(k)]
        if keys == ["rec"] and min(values) > 0 and max(values) > 10 * min(values):     # spans a decade
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ylabel += " (log scale)"
        if "D_x" in keys:
            ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
            ax.set_ylim(0, 1)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        legend_outside(ax)
        _shade_phases(ax, history)
    axes[-1, 0].set_xlabel("step")
    save_figure(fig, path, title, dpi=90)
    return fig


def _shade_phases(ax, history):
    phases = [(r["step"], r.get("phase")) for r in history]
    if len({p for _, p in phases}) < 2:
        return
    colours = {"C": "tab:blue", "D": "tab:red", "joint": "tab:green"}
    start, current = phases[0]
    for step, p in phases[1:] + [(phases[-1][0], None)]:
        if p != current:
            ax.axvspan(start, step, color=colours.get(current, "grey"), alpha=0.08, label=None)
            ax.text(start, 1.0, f" {PHASE_NAMES.get(current, current)}", transform=ax.get_xaxis_transform(),
                    va="top", fontsize=8)
            start, current = step, p


def panel_from_eval(eval_dir, out, methods=None, n=None, scale=3):
    """Redraw an ``eval`` picture with chosen rows: masked | ``methods`` | ground truth.

    Args:
        eval_dir: a directory holding ``eval_examples.npz`` (written by ``eval``).
        out: PNG to write. methods: row labels as in metrics.md (default: all, in table order).
        n: examples shown (default all, at most 10). scale: pixel magnification.
    Raises:
        ValueError naming the known labels when a method is not in the file.
    """
    path = Path(eval_dir) / "eval_examples.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m npgan.inpaint eval` first")
    with np.load(path) as npz:
        images, masks = npz["images"], npz["masks"]
        fills = {k[len("fill/"):]: npz[k] for k in npz.files if k.startswith("fill/")}
    methods = list(fills) if not methods else list(methods)
    unknown = [m for m in methods if m not in fills]
    if unknown:
        raise ValueError(f"{unknown} not in {path}; it holds {list(fills)}")
    n = len(images) if n is None else n
    columns = [show_masked(images[:n], masks[:n])] + [fills[m][:n] for m in methods] + [images[:n]]
    save_panel(columns, ["masked"] + methods + ["ground truth"], out, scale=scale, max_examples=n)
    return out
