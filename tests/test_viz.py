"""Image grids, the loss plot and the progress GIF."""
import numpy as np
import pytest
from PIL import Image

from npgan import viz


def test_to_uint8_maps_the_range_ends_and_clips():
    np.testing.assert_array_equal(viz.to_uint8(np.array([-1.0, 0.0, 1.0, -3.0, 2.0])), [0, 128, 255, 0, 255])


def test_make_grid_shape_and_placement():
    images = np.stack([np.full((5, 4), i, np.uint8) for i in range(10)])       # image i is all i
    grid = viz.make_grid(images, nrow=4, padding=2)
    assert grid.shape == (3 * (5 + 2) + 2, 4 * (4 + 2) + 2)                     # 3 rows of 4
    for i in range(10):
        r, c = divmod(i, 4)
        top, left = 2 + r * 7, 2 + c * 6
        assert (grid[top:top + 5, left:left + 4] == i).all()
    assert (grid[:2] == 0).all() and (grid[:, :2] == 0).all()                   # border padding
    assert (grid[2 + 2 * 7:, 2 + 2 * 6:] == 0).all()                            # empty slots stay padding


def test_make_grid_accepts_channel_dim_and_floats():
    images = np.zeros((4, 1, 28, 28), np.float32)
    grid = viz.make_grid(images)                                                # 2 x 2 by default
    assert grid.shape == (2 * 30 + 2, 2 * 30 + 2) and grid.dtype == np.uint8
    assert (grid[2:30, 2:30] == 128).all()                                      # 0.0 -> mid grey


@pytest.mark.parametrize("shape", [(3, 28), (2, 3, 28, 28), (0, 28, 28)])
def test_make_grid_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="make_grid"):
        viz.make_grid(np.zeros(shape, np.float32))


def test_save_grid_round_trips(tmp_path):
    images = np.random.default_rng(0).uniform(-1, 1, (6, 28, 28))
    grid = viz.save_grid(images, tmp_path / "sub" / "g.png", nrow=3)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "sub" / "g.png")), grid)
    viz.save_grid(images, tmp_path / "big.png", nrow=3, scale=2)
    assert Image.open(tmp_path / "big.png").size == (2 * grid.shape[1], 2 * grid.shape[0])


def test_save_gif_frames_and_loop(tmp_path):
    frames = [np.full((10, 12), v, np.uint8) for v in (0, 100, 200)]
    paths = []
    for i, f in enumerate(frames):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(f).save(paths[-1])
    assert viz.save_gif(paths, tmp_path / "a.gif") == 3
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 3 and gif.info.get("loop") == 0 and gif.size == (12, 10)
    gif.seek(2)
    assert np.asarray(gif.convert("L"))[0, 0] == 200
    assert viz.save_gif([], tmp_path / "none.gif") == 0 and not (tmp_path / "none.gif").exists()


def _legends_clear_of_the_plots(fig):
    """Every axes' legend lies wholly outside every plotting area, so it covers no curve."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    renderer = FigureCanvasAgg(fig).get_renderer()                   # the written figure is closed: draw it again
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    areas = [ax.get_window_extent(renderer) for ax in fig.axes]
    return legends and all(not leg.get_window_extent(renderer).overlaps(area) for leg in legends for area in areas)


def test_plot_history_writes_a_png_with_labelled_axes_and_legends_off_the_curves(tmp_path):
    history = [{"step": s, "loss_D": 1.0 / s, "loss_G": 2.0, "D_x": 0.7, "D_G_z": 0.3} for s in range(1, 20)]
    fig = viz.plot_history(history, tmp_path / "losses.png", title="test")
    image = Image.open(tmp_path / "losses.png")
    assert image.format == "PNG" and image.size == (800, 600)
    assert len(fig.axes) == 2 and all(ax.get_ylabel() for ax in fig.axes)
    assert fig.axes[-1].get_xlabel() == "step"
    assert _legends_clear_of_the_plots(fig)


def _inpaint_history(tmp_path, method):
    """The log records a tiny ``npgan.inpaint train`` run writes (its losses.csv), as plot_losses reads them."""
    import csv

    from npgan.inpaint.cli import main

    assert main(["train", "--dataset", "lfw", "--method", method, "--steps", "30", "--batch-size", "4",
                 "--width", "4", "--runs-dir", str(tmp_path), "--name", method, "--no-progress"]) == 0
    with open(tmp_path / method / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    return [{k: (v if k == "phase" else int(v) if k == "step" else float(v) if v else None) for k, v in r.items()}
            for r in rows]


@pytest.mark.parametrize("method", ["context-encoder", "latent"])
def test_inpaint_loss_plot_shows_every_recorded_series_on_labelled_axes(tmp_path, method):
    from npgan.inpainting_viz import plot_losses

    history = _inpaint_history(tmp_path, method)
    recorded = {k for r in history for k, v in r.items() if k not in ("step", "phase") and v is not None}
    assert {"loss_D", "D_x", "D_G_z"} <= recorded                   # both methods train a discriminator
    fig = plot_losses(history, tmp_path / "losses.png", title="test")
    assert Image.open(tmp_path / "losses.png").format == "PNG"
    plotted = [list(line.get_ydata()) for ax in fig.axes for line in ax.get_lines()
               if not line.get_label().startswith("_")]                     # not the 0.5 guide line
    for key in recorded:                                            # each column of losses.csv is a curve
        assert [r[key] for r in history if r[key] is not None] in plotted, key
    assert all(ax.get_ylabel() for ax in fig.axes) and fig.axes[-1].get_xlabel() == "step"
    assert _legends_clear_of_the_plots(fig)


def test_inpaint_loss_plot_shades_and_names_glcic_phases(tmp_path):
    from npgan.inpainting_viz import plot_losses

    history = ([{"step": s, "phase": "C", "rec": 5.0 / s} for s in (25, 50)]
               + [{"step": 75, "phase": "D", "loss_D": 1.3, "D_x": 0.5, "D_G_z": 0.5}]
               + [{"step": s, "phase": "joint", "rec": 0.01, "adv": 0.8, "loss_D": 1.2, "D_x": 0.6, "D_G_z": 0.4}
                  for s in (100, 125)])
    fig = plot_losses(history, tmp_path / "losses.png")
    assert [ax.get_ylabel() for ax in fig.axes] == ["masked L2 in the hole (log scale)", "adversarial loss",
                                                     "mean D output (probability)"]
    texts = {t.get_text().strip() for ax in fig.axes for t in ax.texts}
    assert texts == {"completion only", "D only", "joint"}
    assert _legends_clear_of_the_plots(fig)
