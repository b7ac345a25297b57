"""The GAN recipe, written once: objectives, the training step, the training loop, samples.

- :mod:`~npgan.gan.objectives`: what D and G minimise (non-saturating, LSGAN; a new one is a short class);
- :mod:`~npgan.gan.penalty`: gradient penalties (WGAN-GP, R1) and their hand-written second-order pass;
- :mod:`~npgan.gan.step`: one D update then one G update, and the NaN guard;
- :mod:`~npgan.gan.loop`: the loop every trainer runs (logging, health checks, samples,
  checkpoints, Ctrl-C) and ``fit_gan``, the recipe on top of it;
- :mod:`~npgan.gan.config`: a run's configuration: each setting's default (fixed, or the
  objective's), the combinations refused, a resumed run's saved settings, the run's length;
- :mod:`~npgan.gan.run`: a ``python -m npgan.train`` run and its directory;
- :mod:`~npgan.gan.sampling`: fixed noise and samples from a generator;
- :mod:`~npgan.gan.cycle`: CycleGAN's step (two generators, two discriminators, cycle and
  identity L1, image pools, linear learning-rate decay) on the same D step and loop;
  :mod:`~npgan.gan.translation` its MNIST <-> MNIST-M run and :mod:`~npgan.gan.translation_eval`
  its scores (``python -m npgan.translate``);
- :mod:`~npgan.gan.inpainting`: the inpainting methods' training (Context Encoder, GLCIC, the
  DCGAN behind Yeh et al.'s latent optimisation) on the same step and loop, the latent search,
  run directories, evaluation and fills (``python -m npgan.inpaint``).
"""
from .loop import MetricsLog, fit_gan, train_loop
from .objectives import OBJECTIVES, LeastSquares, NonSaturating, Objective, get_objective
from .sampling import fixed_noise, generate
from .step import discriminator_loss, discriminator_step, gan_step, generator_loss

__all__ = ["Objective", "NonSaturating", "LeastSquares", "OBJECTIVES", "get_objective", "gan_step",
           "discriminator_loss", "discriminator_step", "generator_loss", "train_loop", "fit_gan", "MetricsLog",
           "fixed_noise", "generate"]
