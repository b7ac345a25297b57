"""GAN objectives: what D minimises on real and on generated batches, and what G minimises.

An objective is three functions of D's outputs (logits, or a critic's scores), each returning
the loss (0-d) and its gradient with respect to those outputs::

    loss, dlogits = objective.discriminator_real(D(x))       # D's loss on real data
    loss, dlogits = objective.discriminator_fake(D(G(z)))    # D's loss on generated data
    loss, dlogits = objective.generator(D(G(z)))             # G's loss, through D

``weight`` scales the gradient (not the loss): the gradient of ``weight * loss``, for a loss
that is one term of a sum (an inpainting network's adversarial term). D's loss is the sum of
its two parts. The GAN step (``npgan.gan.step``) never looks inside an objective, so a new one
is a short class::

    class LeastSquares(Objective):
        '''LSGAN (Mao et al. 2017): D pulls its outputs to 1 on real data and 0 on fakes,
        G pulls D's output on its fakes to 1; each a half mean square.'''
        name = "lsgan"

        def discriminator_real(self, logits, weight=1.0):
            return half_mse(logits, 1.0, weight)

        def discriminator_fake(self, logits, weight=1.0):
            return half_mse(logits, 0.0, weight)

        def generator(self, logits, weight=1.0):
            return half_mse(logits, 1.0, weight)
"""
from ..losses import bce_with_logits_backward, bce_with_logits_forward, mse_backward, mse_forward


class Objective:
    """Base class: ``name`` (the ``--loss`` value) and the three losses (see the module docstring)."""

    name = None

    def discriminator_real(self, logits, weight=1.0):
        raise NotImplementedError

    def discriminator_fake(self, logits, weight=1.0):
        raise NotImplementedError

    def generator(self, logits, weight=1.0):
        raise NotImplementedError

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

    def discriminator_real(self, logits, weight=1.0):
        return bce(logits, 1.0, weight)

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

    def discriminator_real(self, logits, weight=1.0):
        return half_mse(logits, 1.0, weight)

    def discriminator_fake(self, logits, weight=1.0):
        return half_mse(logits, 0.0, weight)

    def generator(self, logits, weight=1.0):
        return half_mse(logits, 1.0, weight)


OBJECTIVES = {cls.name: cls for cls in (NonSaturating, LeastSquares)}


def get_objective(name):
    """The objective called ``name`` (a key of ``OBJECTIVES``); ValueError names the choices."""
    if isinstance(name, Objective):
        return name
    try:
        return OBJECTIVES[name]()
    except KeyError:
        raise ValueError(f"unknown GAN objective {name!r}: one of {', '.join(OBJECTIVES)}") from None
