"""Classical fills that every learned method is measured against.

- **mean fill**: each hole pixel gets its image's mean over the known pixels (per channel);
- **harmonic fill**: the solution of Laplace's equation in the hole with the known pixels
  on its border (a sparse solve, :func:`npgan.inpainting_ops.blend.harmonic_fill`);
- **biharmonic fill**: scikit-image's ``inpaint_biharmonic`` (smoother: it also matches
  the border's slope).

All take images (N, C, H, W) in [-1, 1] and masks (N, 1, H, W) with 1 = missing, and return
the completed images with the known pixels untouched, on the input's backend.
"""
import numpy as np

from .. import backend
from .blend import harmonic_fill


def mean_fill(images, masks):
    """Hole pixels <- the mean of the image's known pixels, per channel (0 if none is known)."""
    xp = backend.get_array_module(images)
    known = 1 - masks                                                            # (N, 1, H, W)
    count = known.sum(axis=(2, 3), keepdims=True)                                # (N, 1, 1, 1)
    mean = (images * known).sum(axis=(2, 3), keepdims=True) / xp.maximum(count, 1)  # (N, C, 1, 1)
    return images * known + mean * masks


def biharmonic_fill(images, masks):
    """scikit-image's biharmonic inpainting, image by image on the host."""
    from skimage.restoration import inpaint_biharmonic

    xp = backend.get_array_module(images)
    x = backend.asnumpy(images).astype(np.float64)
    holes = backend.asnumpy(masks)[:, 0] > 0.5
    out = x.copy()
    for i in range(len(x)):
        if holes[i].any() and not holes[i].all():
            out[i] = inpaint_biharmonic(x[i], holes[i], channel_axis=0)
    return xp.asarray(out.astype(images.dtype))


BASELINES = {
    "mean fill": mean_fill,
    "harmonic fill": harmonic_fill,
    "biharmonic fill": biharmonic_fill,
}
