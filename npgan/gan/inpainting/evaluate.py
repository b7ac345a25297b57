"""Held-out evaluation: PSNR, SSIM, L1, sharpness and a perceptual distance, for runs and baselines.

Metrics are computed per image on pixels in [0, 1] and averaged over the images (sharpness:
a ratio of totals, see below):

- ``PSNR`` = 10 log10(1 / MSE) with the MSE over the hole's pixels (``hole``) or all pixels;
- ``SSIM``: scikit-image's ``structural_similarity`` (7x7 window, data range 1), the SSIM
  map averaged over the hole or over the whole image;
- ``L1``: mean absolute error;
- ``sharpness``: mean gradient magnitude of the completions inside the holes divided by that of
  the ground truth, over all the images (1 = as much detail as the real images; blurry L2
  fills score well below 1, noise above 1). A ratio of the totals, not a mean of per-image
  ratios, which a hole on a flat background (ground-truth gradient ~0) would blow up;
- ``perceptual``: the mean squared difference between the features of the completion and of
  the ground truth over the hole's cells, in a fixed random-weight multi-scale CNN
  (:func:`npgan.models.inpainting.RandomFeatures`, seed ``EVAL_SEED``, images in [-1, 1]): it
  compares local structure (edges, texture) rather than pixels, so a fill with the right kind
  of detail slightly displaced scores better than a blur. The yang method with
  ``--features random`` optimises features of the same family (other weights), which flatters
  it somewhat on this column.

    >>> rows, context = evaluate(["runs/a", "runs/b"], n=1000)
    >>> print(format_table(rows))
"""
import functools
import json
import time
from pathlib import Path

import numpy as np

from ... import backend
from ...data import scale_images
from ...data.inpainting import load_inpaint_data
from ...inpainting_ops.baselines import BASELINES
from ...inpainting_ops.masks import canonical_kind, make_masks
from ...models.inpainting import RandomFeatures
from ...inpainting_viz import save_panel, show_masked
from .runs import load_inpainters

COLUMNS = (("psnr_hole", "PSNR hole", "{:.2f}"), ("psnr_all", "PSNR all", "{:.2f}"),
           ("ssim_hole", "SSIM hole", "{:.3f}"), ("ssim_all", "SSIM all", "{:.3f}"),
           ("l1_hole", "L1 hole", "{:.4f}"), ("l1_all", "L1 all", "{:.4f}"),
           ("sharpness", "sharpness", "{:.2f}"), ("perceptual", "perceptual", "{:.4f}"))
LOWER_IS_BETTER = ("l1_hole", "l1_all", "perceptual")
EVAL_SEED = 2024


def image_metrics(completions, truth, masks):
    """Per-image metrics (see the module docstring).

    Args:
        completions, truth: (N, C, H, W) host or device arrays in [-1, 1]; masks (N, 1, H, W), 1 = hole.
    Returns:
        dict of name -> (N,) float64 host arrays.
    """
    from skimage.metrics import structural_similarity

    a = (backend.asnumpy(completions).astype(np.float64) + 1) / 2
    b = (backend.asnumpy(truth).astype(np.float64) + 1) / 2
    m = np.broadcast_to(backend.asnumpy(masks).astype(np.float64), a.shape)
    hole_count = np.maximum(m.sum(axis=(1, 2, 3)), 1)
    err = a - b
    mse_hole = (m * err ** 2).sum(axis=(1, 2, 3)) / hole_count
    mse_all = (err ** 2).mean(axis=(1, 2, 3))
    out = {
        "psnr_hole": _psnr(mse_hole), "psnr_all": _psnr(mse_all),
        "l1_hole": (m * np.abs(err)).sum(axis=(1, 2, 3)) / hole_count,
        "l1_all": np.abs(err).mean(axis=(1, 2, 3)),
    }
    ssim_hole, ssim_all = np.empty(len(a)), np.empty(len(a))
    for i in range(len(a)):
        _, smap = structural_similarity(a[i], b[i], data_range=1.0, channel_axis=0, full=True, win_size=7)
        ssim_all[i] = smap.mean()
        ssim_hole[i] = (smap * m[i]).sum() / hole_count[i]
    out["ssim_hole"], out["ssim_all"] = ssim_hole, ssim_all
    out["gradient_fill"], out["gradient_truth"] = _gradient_energy(a, m), _gradient_energy(b, m)
    out["perceptual"] = perceptual_distance(completions, truth, masks)
    return out


@functools.lru_cache(maxsize=4)
def _perceptual_network(channels, backend_name):
    return RandomFeatures(channels, seed=EVAL_SEED)


def perceptual_distance(completions, truth, masks, batch_size=250):
    """Per image: mean over the hole's cells and the feature channels of (phi(completion) -
    phi(truth))^2, phi the fixed random CNN of the module docstring (stride 1, so its hole is the
    image's). Args as :func:`image_metrics`. Returns (N,) float64 host."""
    net = _perceptual_network(truth.shape[1], backend.name())
    out = []
    for a in range(0, truth.shape[0], batch_size):
        x, y, m = (backend.to_device(np.asarray(backend.asnumpy(v[a:a + batch_size]), np.float32))
                   for v in (completions, truth, masks))
        d = net.forward(x) - net.forward(y)                                       # (B, F, H, W)
        cells = backend.get_array_module(d).maximum(m.sum(axis=(1, 2, 3)) * d.shape[1], 1)
        out.append(backend.asnumpy((d * d * m).sum(axis=(1, 2, 3)) / cells))
    return np.concatenate(out).astype(np.float64)


def _psnr(mse):
    return 10 * np.log10(1.0 / np.maximum(mse, 1e-10))


def _gradient_energy(x, m):
    """Mean |forward difference| over hole pixels (both directions, all channels), per image."""
    gy = np.abs(np.diff(x, axis=2)) * m[:, :, 1:]
    gx = np.abs(np.diff(x, axis=3)) * m[:, :, :, 1:]
    count = np.maximum(m[:, :, 1:].sum(axis=(1, 2, 3)) + m[:, :, :, 1:].sum(axis=(1, 2, 3)), 1)
    return (gy.sum(axis=(1, 2, 3)) + gx.sum(axis=(1, 2, 3))) / count


def summarise(per_image):
    """Means over the images, and sharpness = total fill gradient / total ground-truth gradient."""
    out = {k: float(np.mean(v)) for k, v in per_image.items() if not k.startswith("gradient_")}
    out["sharpness"] = float(np.sum(per_image["gradient_fill"]) / max(np.sum(per_image["gradient_truth"]), 1e-12))
    return out


def eval_set(data, mask_kind, n, seed=EVAL_SEED):
    """``n`` held-out images (a fixed random subset, in test-set order; all of them if there are
    fewer) and a fixed set of masks: the same for every method and run."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(data.test))[:n])
    x = scale_images(data.test[idx])
    m = make_masks(mask_kind, len(x), data.size, rng, data.hole)
    return x, m


def load_runs(run_dirs, latent_steps=None, progress=False):
    """[(run, config, inpainters)] of :func:`~npgan.gan.inpainting.runs.load_inpainters` for each run.

    Raises FileNotFoundError / ValueError naming the run for a missing, damaged or foreign
    checkpoint, or for runs on different data sets (they cannot share held-out images)."""
    loaded = [(str(r),) + load_inpainters(r, latent_steps, progress=progress) for r in run_dirs]
    cfg0 = loaded[0][1]
    for run, cfg, _ in loaded[1:]:
        if cfg.dataset != cfg0.dataset:
            raise ValueError(f"runs on different data sets: {cfg0.dataset} ({run_dirs[0]}) vs {cfg.dataset} ({run})")
    return loaded


def evaluate(run_dirs, n=1000, mask=None, latent_steps=None, baselines=True, progress=True):
    """Evaluate runs (and the baselines) on the same held-out images and masks.

    Args:
        run_dirs: run directories on one data set (the first one fixes data and mask kind).
        n: held-out images (all of them when the data set holds out fewer; ``context['n']``
            says how many were used). mask: mask kind (default: the first run's training kind).
        latent_steps: override the z-optimisation steps of latent runs.
    Returns:
        (rows, context): rows = list of {'method', 'run', metrics...}; context = dict with the
        data set, mask kind, n, and the arrays for panels ('images', 'masks', 'fills').
    """
    loaded = load_runs(run_dirs, latent_steps, progress)
    cfg0 = loaded[0][1]
    kind = canonical_kind(mask or cfg0.mask)
    data = load_inpaint_data(cfg0.dataset, verbose=False)
    x_host, m_host = eval_set(data, kind, n)
    x, m = backend.to_device(x_host), backend.to_device(m_host)
    methods = [(label, run, fn) for run, _, pairs in loaded for label, fn in pairs]
    if baselines:
        methods += [(label, "-", fn) for label, fn in BASELINES.items()]
    rows, fills = [], {}
    for label, run, fn in methods:
        if progress:
            print(f"  evaluating {label} ({run}) on {len(x_host)} images ...", flush=True)
        start = time.time()
        out = backend.asnumpy(fn(x, m))                   # each inpainter batches internally
        seconds = time.time() - start
        fills[(label, run)] = out
        rows.append({"method": label, "run": run, **summarise(image_metrics(out, x_host, m_host)),
                     "train_s": _train_seconds(run), "fill_s": seconds})
    context = {"dataset": cfg0.dataset, "mask": kind, "n": len(x_host), "images": x_host, "masks": m_host,
               "fills": fills}
    return rows, context


def _train_seconds(run):
    """Training time recorded by ``train`` (train_time.json), or None (baselines, older runs)."""
    path = Path(run) / "train_time.json"
    return json.loads(path.read_text())["seconds"] if run != "-" and path.is_file() else None


def format_table(rows, markdown=True):
    """The metrics as a Markdown table (best value per column in bold)."""
    head = ["method", "run"] + [name for _, name, _ in COLUMNS] + ["train (s)", "fill (s)"]
    best = {}
    for key, _, _ in COLUMNS:
        vals = [r[key] for r in rows]
        if key == "sharpness":
            best[key] = min(range(len(rows)), key=lambda i: abs(np.log(max(vals[i], 1e-8))))
        else:
            pick = min if key in LOWER_IS_BETTER else max
            best[key] = vals.index(pick(vals))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows):
        cells = [r["method"], f"`{r['run']}`" if r["run"] != "-" else "baseline"]
        for key, _, fmt in COLUMNS:
            s = fmt.format(r[key])
            cells.append(f"**{s}**" if markdown and best[key] == i else s)
        cells.append("-" if r.get("train_s") is None else f"{r['train_s']:.0f}")
        cells.append("-" if r.get("fill_s") is None else f"{r['fill_s']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(rows, context, out_dir, n_panel=10):
    """metrics.json, metrics.md, eval_panel.png (masked | every method | ground truth) and
    eval_examples.npz (the pictured images, masks and fills)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {k: context[k] for k in ("dataset", "mask", "n")}
    (out_dir / "metrics.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    title = f"{context['dataset']}, {context['mask']} holes, {context['n']} held-out images"
    (out_dir / "metrics.md").write_text(f"### {title}\n\n{format_table(rows)}\n")
    # examples spread evenly over the evaluated set: test sets in class order (the MNIST subset)
    # would otherwise show one class only
    pick = np.unique(np.linspace(0, context["n"] - 1, min(n_panel, context["n"])).round().astype(int))
    x, m = context["images"][pick], context["masks"][pick]
    fills = [(label, f[pick]) for (label, _), f in context["fills"].items()]
    columns = [show_masked(x, m)] + [f for _, f in fills] + [x]
    save_panel(columns, ["masked"] + [label for label, _ in fills] + ["ground truth"], out_dir / "eval_panel.png")
    # the pictured examples, so `python -m npgan.inpaint panel` can redraw any subset of rows
    # (by label: of two runs with one label, the first)
    examples = {}
    for label, f in fills:
        examples.setdefault(f"fill/{label}", f)
    np.savez_compressed(out_dir / "eval_examples.npz", images=x, masks=m, **examples)
    return out_dir
