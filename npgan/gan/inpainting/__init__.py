"""The inpainting methods behind ``python -m npgan.inpaint``, on :mod:`npgan.gan`'s step and loop.

- :mod:`~npgan.gan.inpainting.train`: the completion loss and the training of a Context Encoder
  (Pathak et al.) and of Yang et al.'s content network, of GLCIC in its three phases (Iizuka
  et al.) and of the DCGAN that latent inpainting searches (``fit_gan``);
- :mod:`~npgan.gan.inpainting.latent`: Yeh et al.'s optimisation of the DCGAN's noise;
- :mod:`~npgan.gan.inpainting.yang`: Yang et al.'s texture optimisation of a content network's
  fill (patch matching in a feature network, L-BFGS-B over the hole, coarse to fine);
- :mod:`~npgan.gan.inpainting.runs`: a run's configuration, networks and checkpoint, and the
  ways a run fills holes;
- :mod:`~npgan.gan.inpainting.evaluate`: PSNR, SSIM, L1, sharpness and perceptual distance of
  runs and baselines on held-out images;
- :mod:`~npgan.gan.inpainting.fill`: a user's own image completed by a trained run.
"""
