"""The inpainting methods behind ``python -m npgan.inpaint``, on :mod:`npgan.gan`'s step and loop.

- :mod:`~npgan.gan.inpainting.train`: the completion loss and the training of a Context Encoder
  (Pathak et al.), of GLCIC in its three phases (Iizuka et al.) and of the DCGAN that latent
  inpainting searches (``fit_gan``);
- :mod:`~npgan.gan.inpainting.latent`: Yeh et al.'s optimisation of the DCGAN's noise;
- :mod:`~npgan.gan.inpainting.runs`: a run's configuration, networks and checkpoint, and the
  ways a run fills holes;
- :mod:`~npgan.gan.inpainting.evaluate`: PSNR, SSIM, L1 and sharpness of runs and baselines
  on held-out images;
- :mod:`~npgan.gan.inpainting.fill`: a user's own image completed by a trained run.
"""
