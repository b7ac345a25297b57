"""Inpainting's stateless operations: hole masks, Poisson blending and the classical fills.

- :mod:`~npgan.inpainting_ops.masks`: hole masks (centre, rectangles, free-form strokes, a mix;
  1 = missing), Yeh et al.'s contextual weights, the window GLCIC's local discriminator sees;
- :mod:`~npgan.inpainting_ops.blend`: Poisson blending, the harmonic fill and the biharmonic
  solve, as sparse linear solves with SciPy;
- :mod:`~npgan.inpainting_ops.baselines`: the mean, harmonic and biharmonic fills that every
  learned method is measured against.

Functions of arrays that keep no state; the networks that use them are in
:mod:`npgan.models.inpainting`, the methods in :mod:`npgan.gan.inpainting`.
"""
