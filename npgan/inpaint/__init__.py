"""Image inpainting from the command line: ``python -m npgan.inpaint train|eval|fill|panel``.

    python -m npgan.inpaint train --dataset fashion-mnist --method context-encoder
    python -m npgan.inpaint eval runs/inpaint-fashion-mnist-context-encoder
    python -m npgan.inpaint fill --checkpoint runs/NAME --image in.png --mask mask.png --out out.png
    python -m npgan.inpaint panel runs/NAME --methods GLCIC "biharmonic fill" --out side_by_side.png

This package holds only the command line (:mod:`npgan.inpaint.cli`). The methods sit at their
levels: the image sets in :mod:`npgan.data.inpainting` and the pictures in
:mod:`npgan.inpainting_viz` (1); hole masks, Poisson blending and the classical fills in
:mod:`npgan.inpainting_ops` (2); the networks in :mod:`npgan.models.inpainting` (4); training,
latent optimisation, run directories, evaluation and fills in :mod:`npgan.gan.inpainting` (5).
See docs/INPAINTING.md for the results.
"""
