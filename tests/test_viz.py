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


def test_plot_history_writes_a_png(tmp_path):
    history = [{"step": s, "loss_D": 1.0 / s, "loss_G": 2.0, "D_x": 0.7, "D_G_z": 0.3} for s in range(1, 20)]
    viz.plot_history(history, tmp_path / "losses.png", title="test")
    image = Image.open(tmp_path / "losses.png")
    assert image.format == "PNG" and image.size == (800, 600)
