"""One GAN training step: a discriminator update, then a generator update, for any objective.

    fake = G(z)
    (1) D step: minimise  L_D = objective.discriminator_real(D(x)) + objective.discriminator_fake(D(fake))
                                + objective.penalty(D, x, fake)   (WGAN-GP, R1; npgan.gan.penalty)
        D's parameter gradients only: the images need no gradient, G is not updated.
        A class-conditional D may also be shown the real batch with wrong classes as fakes
        (``mismatch_loss``), so that it learns to reject an image of the wrong class.
    (2) G step: minimise  L_G = objective.generator(D(fake))  through the updated D, reusing fake;
        D is frozen (its parameter gradients would be zeroed unread), dL_G/dfake flows into G.

D runs on the real and the fake batch separately and each pass is backpropagated before the
next one runs: a layer keeps the cache of its last forward, and BatchNorm's statistics are
never mixed across the two batches. The parameter gradients of both passes add up.

**Data parallel.** Before each update the optimizer averages the gradients over the ranks
(``opt.sync_gradients()``, nothing in one process; ``npgan.gan.parallel``), so every rank applies
the same update and the NaN guard below sees the same gradients on every rank.

**NaN guard.** With ``check``, the loss and every gradient are tested for NaN/Inf before each
optimizer update (one device read per update on a GPU). A failure raises :class:`~npgan.errors.NonFiniteError`
naming the first non-finite quantity, in the order the step computed things.
"""
from .. import backend
from ..errors import NonFiniteError
from ..layers import Parameter, Sequential, frozen, no_input_grad


def discriminator_loss(D, objective, real, fake, forward=None, backward=True):
    """``objective``'s D loss on a real and a fake batch; with ``backward``, adds D's parameter
    gradients.

    Args:
        forward: how D is called (default ``D.forward``; an inpainting discriminator also takes the mask).
    Returns:
        (L_D 0-d, D's outputs on real (N, 1), on fake (N, 1)).
    """
    forward = forward or D.forward
    real_logits = forward(real)                                              # (N, 1)
    loss_real, dreal = objective.discriminator_real(real_logits)
    if backward:
        D.backward(dreal)
    fake_logits = forward(fake)                                              # (N, 1)
    loss_fake, dfake = objective.discriminator_fake(fake_logits)
    if backward:
        D.backward(dfake)
    return loss_real + loss_fake, real_logits, fake_logits


def mismatch_loss(D, objective, real, forward, weight):
    """The matching-aware discriminator of Reed et al. (2016): real images shown with a wrong
    class are fakes too, ``weight * objective.discriminator_fake(D(real, wrong))``, its gradient
    added to D's. ``forward`` calls D with the wrong classes. Returns the 0-d loss."""
    loss, dlogits = objective.discriminator_fake(forward(real))
    D.backward(weight * dlogits)
    return weight * loss


def discriminator_step(D, opt_D, objective, real, fake, forward=None, check=False, view=None, mismatched=None):
    """Zero D's gradients, compute ``discriminator_loss`` and the objective's penalty (WGAN-GP,
    R1: its gradient adds to the loss's, on the images as D sees them) and update D. D sees both
    batches through ``view`` (``npgan.gan.view``: augmentation, instance noise; none by default),
    each with its own draws. ``mismatched``: ``(forward, weight)`` of ``mismatch_loss``
    (a conditional D called with wrong classes), whose term adds to the loss. Returns what
    ``discriminator_loss`` returns, the loss including the penalty and the mismatch term."""
    if view is not None:
        real, fake = view.forward(real), view.forward(fake)
    opt_D.zero_grad()
    with no_input_grad(D):                                                   # the images need no gradient
        loss, real_logits, fake_logits = discriminator_loss(D, objective, real, fake, forward)
        if mismatched is not None:
            loss = loss + mismatch_loss(D, objective, real, *mismatched)
    penalty = objective.penalty(D, real, fake, forward)                      # None, or 0-d with its gradient added
    if penalty is not None:
        loss = loss + penalty
    opt_D.sync_gradients()                                                   # data parallel: the ranks' average
    if check:
        require_finite("D", loss, D)
    opt_D.step()
    objective.after_discriminator_update(D)                                 # WGAN: clip D's weights
    return loss, real_logits, fake_logits


def conditioned(D, labels):
    """How D is called: ``D.forward``, or for a class-conditional D (``labels`` given, (N,) on the
    device) ``D.forward(x, labels)``; the real and the generated batch share the labels."""
    return D.forward if labels is None else (lambda x: D.forward(x, labels))


def mismatched_forward(D, wrong_labels, weight):
    """``discriminator_step``'s ``mismatched`` for ``wrong_labels`` (N,) on the device, or None."""
    return None if wrong_labels is None or not weight else (conditioned(D, wrong_labels), weight)


def critic_step(G, D, opt_D, objective, real, z, check=False, view=None, labels=None, wrong_labels=None,
                mismatch_weight=0.0):
    """One D update alone, on a fresh real batch and fresh fakes G(z): the extra critic updates
    of a WGAN (``n_critic`` per generator update). Returns L_D."""
    try:
        with no_input_grad(G):
            fake = G.forward(z)                                              # G's BatchNorm statistics move, as in PyTorch
        return discriminator_step(D, opt_D, objective, real, fake, conditioned(D, labels), check=check,
                                  view=view, mismatched=mismatched_forward(D, wrong_labels, mismatch_weight))[0]
    except NonFiniteError:
        raise NonFiniteError(locate_nonfinite(G, D, z, real, labels)) from None


def generator_loss(D, objective, fake, forward=None, weight=1.0, view=None):
    """G's loss on D(fake) and ``weight`` times its gradient with respect to ``fake``.

    D is frozen meanwhile: it passes the gradient through without computing its own. With
    ``view``, D sees view.forward(fake) (fresh draws) and the gradient comes back through
    view.backward."""
    seen = fake if view is None else view.forward(fake)
    with frozen(D):
        loss, dlogits = objective.generator((forward or D.forward)(seen), weight)
        dseen = D.backward(dlogits)
    return loss, (dseen if view is None else view.backward(dseen))


class FeatureMatching:
    """G's loss of Salimans et al. (2016), feature matching: instead of maximising D's output, G
    matches the mean of D's intermediate features f on real images,

        L_G = || mean_n f(x_n) - mean_n f(G(z_n)) ||^2        (f: D's layers before its last ``head``)
        dL_G / df(G(z_n)) = 2 (mean f(G(z)) - mean f(x)) / N

    then back through those layers of D (frozen: no parameter gradients) and the view. A G that
    draws only a few kinds of digit cannot match the real features' mean, whatever D's verdict on
    each sample. Both batches pass through the run's view, each with fresh draws. D must be a
    Sequential whose last ``head`` layers read the features (the DCGAN D: Flatten, Linear).
    """

    def __init__(self, head=2):
        self.head = head

    def __call__(self, D, fake, real, forward=None, view=None):
        if not isinstance(D, Sequential) or forward not in (None, D.forward):
            raise TypeError(f"feature matching reads the features of a Sequential D called on images alone, "
                            f"not of {type(D).__name__}")
        layers = D.layers[:-self.head]
        see = (lambda x: x) if view is None else view.forward

        def features(x):
            for layer in layers:
                x = layer.forward(x)
            return x
        with frozen(D):
            target = features(see(real)).mean(axis=0)                             # (C, H, W), no gradient
            f = features(see(fake))                                               # (N, C, H, W)
            diff = f.mean(axis=0) - target
            loss = (diff * diff).sum()
            d = backend.get_array_module(f).broadcast_to(2 * diff / f.shape[0], f.shape)
            for layer in reversed(layers):
                d = layer.backward(d)
        return loss, (d if view is None else view.backward(d))


def gan_step(G, D, opt_G, opt_D, objective, real, z, check=False, view=None, labels=None, wrong_labels=None,
             mismatch_weight=0.0, g_loss=None):
    """One D update then one G update (see the module docstring).

    Args:
        real: a real batch (N, C, H, W) on the device; z: noise (N, z_dim).
        labels: for a class-conditional GAN (npgan.models.conditional), the real batch's classes
            (N,) on the device; z then holds [noise, onehot(labels)], so G draws the same classes
            and D is called as D(x, labels) on both batches.
        wrong_labels, mismatch_weight: a conditional D also sees the real batch with these classes
            (each unlike the real one) as fakes, weighed so (``mismatch_loss``; off when 0).
        check: the NaN guard (see the module docstring).
        g_loss: G's loss instead of the objective's, called as g_loss(D, fake, real, forward, view)
            -> (L_G, dL_G/dfake), e.g. :class:`FeatureMatching`.
        view: what D sees (``npgan.gan.view``): every image D is shown, in both updates, passes
            through it, and G's gradient comes back through its backward; None: the images.
    Returns:
        {"loss_D", "loss_G", "D_x", "D_G_z", "r_t"} as 0-d device arrays: the losses before each
        update, the mean of sigmoid(D(.)) on the real and the fake batch (D before its update) and
        Karras et al.'s overfitting heuristic r_t = mean sign(D(real)) (1: D sure of every real image).
    """
    try:
        with no_input_grad(G):                                               # the noise needs no gradient
            fake = G.forward(z)                                              # (N, C, H, W)
            forward = conditioned(D, labels)
            loss_D, real_logits, fake_logits = discriminator_step(
                D, opt_D, objective, real, fake, forward, check=check, view=view,
                mismatched=mismatched_forward(D, wrong_labels, mismatch_weight))
            opt_G.zero_grad()
            if g_loss is None:
                loss_G, dfake = generator_loss(D, objective, fake, forward, view=view)
            else:
                loss_G, dfake = g_loss(D, fake, real, forward, view)
            G.backward(dfake)
        opt_G.sync_gradients()
        if check:
            require_finite("G", loss_G, G)
        opt_G.step()
    except NonFiniteError:
        raise NonFiniteError(locate_nonfinite(G, D, z, real, labels)) from None
    return {"loss_D": loss_D, "loss_G": loss_G, "D_x": sigmoid_mean(real_logits), "D_G_z": sigmoid_mean(fake_logits),
            "r_t": backend.get_array_module(real_logits).sign(real_logits).mean()}


def sigmoid_mean(logits):
    """mean(sigmoid(x)) on the device, written with tanh so it never overflows."""
    xp = backend.get_array_module(logits)
    return (0.5 * (1 + xp.tanh(0.5 * logits))).mean()


# ---- the NaN guard --------------------------------------------------------------------
def _finite(a):
    return bool(backend.get_array_module(a).isfinite(a).all())


def require_finite(name, loss, model):
    """Raise NonFiniteError when ``loss`` or a gradient of ``model`` is NaN or Inf, naming the
    loss or the first non-finite gradient in the order backward produced them. The test itself
    is one device read (a GPU waits once), however many parameters there are."""
    xp = backend.get_array_module(loss)
    if bool(xp.stack([xp.isfinite(loss).all()] + [xp.isfinite(p.grad).all() for p in model.parameters()]).all()):
        return
    if not _finite(loss):
        raise NonFiniteError(f"loss_{name}")
    for label, layer in reversed(named_layers(model, name)):
        for pname, p in layer.named_parameters():
            if not _finite(p.grad):
                raise NonFiniteError(f"{label} {pname} gradient")
    raise NonFiniteError(f"a gradient of {name}")


def named_layers(model, prefix):
    """``("D.2 (Conv2d)", layer)`` for the model's top-level layers, in forward order."""
    return [(f"{prefix}.{key} ({type(layer).__name__})", layer) for key, layer in model.named_children()]


def locate_nonfinite(G, D, z, real, labels=None):
    """The first NaN/Inf of a failed GAN step, in the order the step computed things.

    Parameters entering the step, then each layer's output (G on z, D on real and on G(z)),
    then parameter gradients in the order backward produces them (last layer first), D's
    then G's. Replays the forward passes, so the models' caches change. A conditional D's
    class embedding (``labels`` given) is checked after its layers.
    """
    for prefix, model in (("G", G), ("D", D)):
        for label, layer in named_layers(model, prefix):
            for pname, p in layer.named_parameters():
                if not _finite(p.data):
                    return f"{label} {pname}"
        for pname, p in own_parameters(model):
            if not _finite(p.data):
                return f"{prefix}.{pname}"
    for prefix, model, x in (("G", G, z), ("D", D, real), ("D", D, None)):
        x = G.forward(z) if x is None else x
        images = x
        for label, layer in named_layers(model, prefix):
            x = layer.forward(x)
            if not _finite(x):
                return f"{label} output"
        if model is D and labels is not None and not _finite(D.forward(images, labels)):
            return "D output (its class projection)"
    for prefix, model in (("D", D), ("G", G)):
        for pname, p in own_parameters(model):
            if not _finite(p.grad):
                return f"{prefix}.{pname} gradient"
        for label, layer in reversed(named_layers(model, prefix)):
            for pname, p in layer.named_parameters():
                if not _finite(p.grad):
                    return f"{label} {pname} gradient"
    return "the loss (every layer output and gradient is finite)"


def own_parameters(model):
    """``(name, Parameter)`` held by the model itself rather than a layer in it (a conditional
    D's class embedding)."""
    return [(key, value) for key, value in vars(model).items() if isinstance(value, Parameter)]
