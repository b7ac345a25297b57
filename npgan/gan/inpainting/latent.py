"""Semantic inpainting by latent optimisation (Yeh et al., 2017), with a trained DCGAN.

For a corrupted image y with hole mask M, search the generator's latent space for the code
whose image agrees with the known pixels and looks real to the discriminator:

    z* = argmin_z  L(z) = sum_i W_i |G(z)_i - y_i|  +  lambda * softplus(-D(G(z)))
                          `------ contextual ------'      `--- perceptual ---'

W are Yeh et al.'s weights (:func:`npgan.inpainting_ops.masks.contextual_weights`): a known pixel
counts in proportion to how many of its neighbours are missing. The perceptual term is
the non-saturating generator loss -log sigmoid(D(G(z))) on D's logit. dL/dz comes from our
own backward passes: D.backward gives dL/dG(z), G.backward gives dL/dz. Both networks run
in eval mode (BatchNorm on running statistics) so every image's code is optimised
independently although the batch is processed at once. The hole is then filled with G(z*)
and Poisson-blended into the known pixels (:func:`npgan.inpainting_ops.blend.poisson_blend`).

    >>> z, history = optimise_latent(G, D, y, mask, steps=500)
    >>> out = latent_inpaint(G, D, y, mask)                 # composite + Poisson blend
"""
import numpy as np

from ...backend import get_array_module
from ...functional import composite
from ...inpainting_ops.blend import poisson_blend
from ...inpainting_ops.masks import contextual_weights
from ...layers import Parameter
from ...losses import (bce_with_logits_backward, bce_with_logits_forward, masked_l1_backward,
                       masked_l1_forward)
from ...optim import Adam

LAMBDA = 0.003      # Yeh et al.'s weight of the perceptual loss


def latent_loss(G, D, z, y, weights, lam=LAMBDA, backward=True):
    """Yeh et al.'s objective summed over the batch, and its gradient with respect to z.

        L = sum_{n,i} W_{n,i} |G(z_n)_i - y_{n,i}| + lam * sum_n softplus(-D(G(z_n)))

    Args:
        G, D: generator (N, Z) -> (N, C, H, W) and discriminator (N, C, H, W) -> (N, 1) logits.
        z: (N, Z) codes; y: (N, C, H, W) corrupted images (hole values are ignored);
        weights: (N, 1, H, W) contextual weights (0 in the hole).
        lam: weight of the perceptual loss.
        backward: also compute dL/dz. The backward passes also add into G's and D's
            parameter gradients, as every backward does; :func:`optimise_latent` puts them back.
    Returns:
        (loss (0-d), contextual (0-d), perceptual (0-d), dz (N, Z) or None)
    """
    g = G.forward(z)                                                             # (N, C, H, W)
    ctx, ctx_cache = masked_l1_forward(g, y, weights, reduction="sum")
    logits = D.forward(g)                                                        # (N, 1)
    perc, perc_cache = bce_with_logits_forward(logits, 1.0, reduction="sum")     # softplus(-logit)
    loss = ctx + lam * perc
    dz = None
    if backward:
        dg = masked_l1_backward(1.0, ctx_cache) + D.backward(bce_with_logits_backward(lam, perc_cache))
        dz = G.backward(dg)                                                      # (N, Z)
    return loss, ctx, perc, dz


def optimise_latent(G, D, y, mask, steps=500, lam=LAMBDA, lr=0.03, z_dim=None, seed=0, window=7,
                    progress=False):
    """Adam on z for a batch of corrupted images; returns the final codes and a loss history.

    Args:
        G, D: a trained DCGAN (switched to eval mode here, restored afterwards).
        y: (N, C, H, W) images in [-1, 1] (hole pixels ignored); mask: (N, 1, H, W), 1 = missing.
        steps: Adam iterations; lr: Adam's step size on z (betas 0.9, 0.999).
        z_dim: latent size (default: read from G's first Linear layer).
        seed: seed of the initial codes z ~ N(0, I) (drawn on the host).
        window: side of the box counting missing neighbours for the weights.
    Returns:
        z (N, Z) and a list of per-step mean losses (host floats).
    """
    xp = get_array_module(y)
    z_dim = z_dim or G.parameters()[0].shape[1]
    modes = (G.training, D.training)
    saved = [(p, p.grad.copy()) for p in G.parameters() + D.parameters()]       # z is the only variable
    G.eval(), D.eval()
    weights = contextual_weights(mask, window)
    z0 = np.random.default_rng(seed).standard_normal((y.shape[0], z_dim))
    z = Parameter(xp.asarray(z0, dtype=y.dtype))
    opt = Adam([z], lr=lr)
    history = []
    bar = range(steps)
    if progress:
        from tqdm import tqdm
        bar = tqdm(bar, desc="optimising z", leave=False, disable=None)   # None: no bar in non-TTY logs
    for step in bar:
        loss, _, _, dz = latent_loss(G, D, z.data, y, weights, lam)
        z.grad[...] = dz
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            history.append(float(loss) / y.shape[0])
    G.train(modes[0]), D.train(modes[1])
    for p, grad in saved:
        p.grad[...] = grad
    return z.data, history


def latent_generate(G, D, y, mask, batch_size=500, **kwargs):
    """G(z*) for every corrupted image (the whole generated image, not yet pasted in), in
    batches of ``batch_size``; ``kwargs`` go to :func:`optimise_latent`."""
    G_was = G.training
    out = []
    for start in range(0, y.shape[0], batch_size):
        z, _ = optimise_latent(G, D, y[start:start + batch_size], mask[start:start + batch_size], **kwargs)
        G.eval()
        out.append(G.forward(z))
    G.train(G_was)
    return get_array_module(y).concatenate(out)


def latent_inpaint(G, D, y, mask, blend=True, **kwargs):
    """Fill the holes of ``y`` with G(z*) (see :func:`optimise_latent`): Poisson-blended into
    the known pixels (``blend=True``, Yeh et al.'s last step) or pasted in.

    Returns (N, C, H, W) on y's backend.
    """
    g = latent_generate(G, D, y, mask, **kwargs)
    return poisson_blend(g, y, mask) if blend else composite(g, y, mask)
