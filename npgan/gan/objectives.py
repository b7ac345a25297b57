"""GAN objectives: what D minimises on real and on generated batches, and what G minimises.

An objective is three functions of D's outputs (logits, or a critic's scores), each returning
the loss (0-d) and its gradient with respect to those outputs::

    loss, dlogits = objective.discriminator_real(D(x))       # D's loss on real data
    loss, dlogits = objective.discriminator_fake(D(G(z)))    # D's loss on generated data
    loss, dlogits = objective.generator(D(G(z)))             # G's loss, through D

``weight`` scales the gradient (not the loss): the gradient of ``weight * loss``, for a loss
that is one term of a sum (an inpainting network's adversarial term). D's loss is the sum of
its two parts. The GAN step (``npgan.gan.step``) never looks inside an objective, so a new one
is a short class: ``LeastSquares`` below is the whole of LSGAN (docs/TRAINING.md walks through it).
Attributes and hooks a subclass may set are listed on :class:`Objective`.
"""
from .. import backend
from ..backend import get_array_module
from ..losses import bce_with_logits_backward, bce_with_logits_forward, mse_backward, mse_forward
from .penalty import gradient_penalty


class Objective:
    """Base class: ``name`` (the ``--loss`` value) and the three losses (see the module docstring).

    Attributes a subclass may change:
        outputs_are_logits: D's outputs are logits of "real" (so sigmoid(D) is a probability and
            the health check "the discriminator has won" applies); False for critics' scores.
        defaults: the training settings the method was published with (``python -m npgan.train``
            uses them unless told otherwise): optimizer, lr, betas, n_critic.
        critic_batchnorm: False when D must be built without BatchNorm (a gradient penalty is
            per sample; BatchNorm mixes the samples of a batch).
        penalty_weight: the default weight of the objective's gradient penalty (lambda, gamma);
            None for objectives without one.
    """

    name = None
    outputs_are_logits = True
    real_target_applies = False                  # takes real_target (one-sided label smoothing)
    defaults = {"optimizer": "adam", "lr": 2e-4, "beta1": 0.5, "beta2": 0.999, "n_critic": 1}
    critic_batchnorm = True
    penalty_weight = None

    def discriminator_real(self, logits, weight=1.0):
        raise NotImplementedError

    def discriminator_fake(self, logits, weight=1.0):
        raise NotImplementedError

    def generator(self, logits, weight=1.0):
        raise NotImplementedError

    def penalty(self, D, real, fake, forward=None):
        """A regulariser of D added to its loss: called by the D step after the D loss's backward
        and before the update. Adds its parameter gradients into D's ``p.grad`` and returns its
        value (0-d), or None (the default: no penalty)."""
        return None

    def after_discriminator_update(self, D):
        """Called after each update of D (WGAN clips D's weights here)."""

    def __repr__(self):
        return f"{type(self).__name__}()"


def bce(logits, target, weight=1.0):
    """mean BCE(sigmoid(logits), target) and ``weight`` times its gradient, on logits (stable)."""
    loss, cache = bce_with_logits_forward(logits, target)
    return loss, bce_with_logits_backward(weight, cache)


def half_mse(outputs, target, weight=1.0):
    """0.5 * mean (outputs - target)^2 and ``weight`` times its gradient."""
    loss, cache = mse_forward(outputs, outputs.dtype.type(target))
    return 0.5 * loss, mse_backward(0.5 * weight, cache)


class NonSaturating(Objective):
    """The GAN of Goodfellow et al. (2014) with the non-saturating generator loss.

        L_D = BCE(D(x), 1) + BCE(D(G(z)), 0) = -mean log sigmoid(D(x)) - mean log(1 - sigmoid(D(G(z))))
        L_G = BCE(D(G(z)), 1) = -mean log sigmoid(D(G(z)))

    L_G's gradient, sigmoid(D(G(z))) - 1, stays large while D confidently rejects the fakes;
    the minimax game's log(1 - sigmoid) would vanish there.
    """
    name = "ns"
    real_target_applies = True

    def __init__(self, real_target=1.0):
        """``real_target`` < 1: one-sided label smoothing (Salimans et al. 2016), D's target on
        real images; the fakes' stays 0."""
        if not 0 < real_target <= 1:
            raise ValueError(f"{self.name}: the real target must be in (0, 1], got {real_target}")
        self.real_target = real_target

    def discriminator_real(self, logits, weight=1.0):
        return bce(logits, self.real_target, weight)

    def discriminator_fake(self, logits, weight=1.0):
        return bce(logits, 0.0, weight)

    def generator(self, logits, weight=1.0):
        return bce(logits, 1.0, weight)


class LeastSquares(Objective):
    """LSGAN (Mao et al. 2017): least squares instead of cross-entropy.

        L_D = 0.5 mean (D(x) - 1)^2 + 0.5 mean D(G(z))^2,   L_G = 0.5 mean (D(G(z)) - 1)^2

    D's outputs are scores, not logits: no sigmoid. Fakes far on the right side of D's boundary
    still get a gradient proportional to their distance, where the cross-entropy saturates.
    """
    name = "lsgan"
    outputs_are_logits = False

    def discriminator_real(self, logits, weight=1.0):
        return half_mse(logits, 1.0, weight)

    def discriminator_fake(self, logits, weight=1.0):
        return half_mse(logits, 0.0, weight)

    def generator(self, logits, weight=1.0):
        return half_mse(logits, 1.0, weight)


class Minimax(NonSaturating):
    """The minimax game as Goodfellow et al. (2014) wrote it: D as ``ns``, but G minimises
    log(1 - sigmoid(D(G(z)))) = -BCE(D(G(z)), 0).

    Its gradient with respect to the logit, -sigmoid(D(G(z))) / N, vanishes exactly when D
    confidently rejects the fakes (early in training): G learns slowly or not at all. Kept to
    show why ``ns`` exists.
    """
    name = "minimax"

    def generator(self, logits, weight=1.0):
        loss, grad = bce(logits, 0.0, weight)
        return -loss, -grad


class Hinge(Objective):
    """The hinge loss (Lim and Ye 2017; Miyato et al. 2018):

        L_D = mean relu(1 - D(x)) + mean relu(1 + D(G(z))),   L_G = -mean D(G(z))

    D stops pushing a sample once it is beyond the margin; its outputs are scores.
    """
    name = "hinge"
    outputs_are_logits = False

    def discriminator_real(self, logits, weight=1.0):
        return hinge(logits, 1.0, weight)

    def discriminator_fake(self, logits, weight=1.0):
        return hinge(logits, -1.0, weight)

    def generator(self, logits, weight=1.0):
        return mean_score(logits, -1.0, weight)


class Wasserstein(Objective):
    """WGAN (Arjovsky et al. 2017) with weight clipping: the critic estimates the Wasserstein-1
    distance as mean D(x) - mean D(G(z)) over 1-Lipschitz functions, kept (roughly) Lipschitz by
    clipping every critic parameter to [-clip, clip] after each update.

        L_D = -mean D(x) + mean D(G(z)),   L_G = -mean D(G(z))

    Published with RMSprop (lr 5e-5) and 5 critic updates per generator update.
    """
    name = "wgan"
    outputs_are_logits = False
    defaults = {"optimizer": "rmsprop", "lr": 5e-5, "beta1": None, "beta2": None, "n_critic": 5}

    def __init__(self, clip=0.01):
        if not clip > 0:
            raise ValueError(f"WGAN: the clip value must be positive, got {clip}")
        self.clip = clip

    def discriminator_real(self, logits, weight=1.0):
        return mean_score(logits, -1.0, weight)

    def discriminator_fake(self, logits, weight=1.0):
        return mean_score(logits, 1.0, weight)

    def generator(self, logits, weight=1.0):
        return mean_score(logits, -1.0, weight)

    def after_discriminator_update(self, D):
        xp = None
        for p in D.parameters():
            xp = xp or get_array_module(p.data)
            xp.clip(p.data, -self.clip, self.clip, out=p.data)

    def __repr__(self):
        return f"Wasserstein(clip={self.clip})"


class _GradientPenalty:
    """Shared by the gradient-penalty objectives: the weight, the critic without BatchNorm, and a
    check that D is called plainly (the penalty runs D's layers itself)."""
    critic_batchnorm = False
    penalty_weight = 10.0

    def __init__(self, weight=None, **options):
        super().__init__(**options)
        weight = type(self).penalty_weight if weight is None else weight
        if not weight >= 0:
            raise ValueError(f"{self.name}: the gradient-penalty weight must be non-negative, got {weight}")
        self.weight = weight

    def _gradient_penalty(self, D, x, forward):
        if forward is not None and forward != D.forward:
            raise ValueError(f"{self.name}: the gradient penalty needs a critic called as D.forward(x) "
                             f"(a Sequential), not through {forward!r}")
        return gradient_penalty(D, x, self.name, self.weight)[0]

    def __repr__(self):
        return f"{type(self).__name__}(weight={self.weight})"


class WassersteinGP(_GradientPenalty, Wasserstein):
    """WGAN-GP (Gulrajani et al. 2017): the WGAN critic and generator losses without clipping,
    kept (softly) 1-Lipschitz by a penalty on the critic's input gradient at random points
    between real and generated samples:

        L_D = -mean D(x) + mean D(G(z)) + lambda * mean_n (||grad_x D(x_hat_n)|| - 1)^2,
        x_hat = a x + (1 - a) G(z),  a ~ U(0, 1) per sample,  L_G = -mean D(G(z))

    The penalty is per sample, so the critic has no BatchNorm (the paper's DCGAN critic drops it).
    Published with lambda 10, 5 critic updates per generator update, Adam lr 1e-4, betas (0, 0.9).
    The gradient of the penalty is exact (npgan.gan.penalty's second-order pass).
    """
    name = "wgan-gp"
    defaults = {"optimizer": "adam", "lr": 1e-4, "beta1": 0.0, "beta2": 0.9, "n_critic": 5}

    def penalty(self, D, real, fake, forward=None):
        shape = (real.shape[0],) + (1,) * (real.ndim - 1)
        a = backend.rng().random(shape, dtype=real.dtype)                   # U(0, 1) per sample
        x_hat = a * real + (1 - a) * fake                                   # G(z) a constant: no gradient to G
        return self._gradient_penalty(D, x_hat, forward)

    def after_discriminator_update(self, D):
        """No clipping: the penalty replaces it."""


class R1(_GradientPenalty, NonSaturating):
    """The non-saturating GAN with the R1 penalty (Mescheder et al. 2018): D's input gradient on
    real data is pushed to 0,

        L_D = BCE(D(x), 1) + BCE(D(G(z)), 0) + (gamma / 2) mean_n ||grad_x D(x_n)||^2,
        L_G = BCE(D(G(z)), 1)

    which makes the game converge locally where the plain GAN oscillates. gamma (``weight``)
    defaults to 10 (the paper's value for its image experiments; the right value scales with the
    data). Trained with ns's Adam (lr 2e-4, betas (0.5, 0.999)) and one D update per G update:
    the DCGAN settings this repository's other objectives use, so runs compare like with like.
    D is built without BatchNorm, the penalty being per sample.
    """
    name = "r1"

    def penalty(self, D, real, fake, forward=None):
        return self._gradient_penalty(D, real, forward)


def hinge(outputs, sign, weight=1.0):
    """mean relu(1 - sign * outputs) and ``weight`` times its gradient."""
    margin = 1 - sign * outputs
    active = margin > 0
    xp = get_array_module(outputs)
    loss = xp.where(active, margin, 0).mean()
    return loss, (-sign * weight / outputs.size) * active.astype(outputs.dtype)


def mean_score(outputs, sign, weight=1.0):
    """sign * mean(outputs) and ``weight`` times its gradient (a constant)."""
    xp = get_array_module(outputs)
    return sign * outputs.mean(), xp.full_like(outputs, sign * weight / outputs.size)


OBJECTIVES = {cls.name: cls for cls in (NonSaturating, Minimax, LeastSquares, Hinge, Wasserstein, WassersteinGP, R1)}


def get_objective(name, **options):
    """The objective called ``name`` (a key of ``OBJECTIVES``), built with ``options`` (e.g.
    ``clip`` for ``wgan``, ``weight`` for ``wgan-gp`` and ``r1``); ValueError names the choices."""
    if isinstance(name, Objective):
        return name
    try:
        cls = OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown GAN objective {name!r}: one of {', '.join(OBJECTIVES)}") from None
    return cls(**options)
