"""CycleGAN (Zhu et al., 2017): unpaired translation between two image domains A and B.

Two generators, G_ab: A -> B and G_ba: B -> A, and two discriminators, D_a (is this an image
of A?) and D_b. One training step, top to bottom (a: a batch of A, b: a batch of B):

    (1) Generators, updated together (D_a, D_b frozen), minimising
        L_G =   MSE(D_b(G_ab(a)), 1) + MSE(D_a(G_ba(b)), 1)                  LSGAN, adversarial
              + lambda     * ( |G_ba(G_ab(a)) - a| + k_b |G_ab(G_ba(b)) - b| )    cycle consistency (L1)
              + lambda_idt * |G_ba(to_b(a)) - a|                                   identity (L1)
        with lambda = 10, lambda_idt = 0.5 lambda and k_b = ``CYCLE_B`` = 0.03 (``cycle_b``; Zhu
        et al.'s CycleGAN has k_b = 1). The B -> A -> B cycle asks for what an MNIST digit cannot
        hold: to rebuild an MNIST-M image, G_ba must hide its photo background in the digit image
        it draws, and with k_b = 1 it does, drawing strokes for the photo's light and dark areas and
        swapping digits (docs/TRANSLATION.md). A small k_b keeps the cycle's pull towards
        keeping the digit while giving up the background. The identity term asks a generator to
        leave an image of its target domain alone. A and B have different channel counts here,
        so the image is first given the generator's input channels (``match_channels``): an
        MNIST digit repeated into 3 channels is a valid input of G_ba and should come out as
        itself. The mirror term |G_ab(to_a(b)) - b| (``identity_ab``, off by default) would feed
        G_ab a *grey* MNIST-M image (luma) and ask for the colour one back: G_ab then learns to
        colourise grey photos, which makes G_ba(b) = grey(b) a cheap way to satisfy the B -> A -> B
        cycle, and G_ba stops drawing digits (docs/TRANSLATION.md measures it).
    (2) Discriminators, each with ``npgan.gan.step.discriminator_step`` (LSGAN: 0.5 MSE(D(real), 1)
        + 0.5 MSE(D(fake), 0)), on fakes drawn through a history pool of 50 earlier generated
        images (``ImagePool``, Shrivastava et al. 2017), not only the newest batch.

A layer keeps the cache of its last forward, so each generator's pass is backpropagated before
that generator runs again: A -> B -> A first (G_ba's backward gives d fake_b, which adds to D_b's
gradient, then G_ab's backward), then B -> A -> B, then the two identity passes.

Adam (2e-4, betas (0.5, 0.999)) for both generators' parameters and for each discriminator, the
learning rate constant for the first half of the run and then decayed linearly towards 0
(``lr_factor``), as CycleGAN's ``linear`` policy.
"""
import numpy as np

from .. import backend
from ..layers import frozen, no_input_grad
from ..losses import (l1_backward, l1_forward, softmax_cross_entropy_backward,
                      softmax_cross_entropy_forward)
from .loop import train_loop
from .objectives import get_objective
from .step import discriminator_step, generator_loss, require_finite

LAMBDA_CYCLE = 10.0
IDENTITY = 0.5                       # lambda_idt = IDENTITY * lambda
CYCLE_B = 0.03                       # the B -> A -> B cycle's weight = CYCLE_B * lambda
POOL_SIZE = 50
LR, BETAS = 2e-4, (0.5, 0.999)
# LeastSquares.generator is 0.5 mean (D - 1)^2; CycleGAN's generator term is mean (D - 1)^2
ADV_WEIGHT = 2.0
LUMA = (0.299, 0.587, 0.114)         # ITU-R 601, as PIL's convert("L")


# ---- the pieces ---------------------------------------------------------------------------
class ImagePool:
    """A history of up to ``size`` generated images (Shrivastava et al. 2017; CycleGAN's buffer).

    ``query(images)`` returns a batch of the same shape for D to judge: while the pool is not
    full, each new image is stored and returned; after that, each new image is, with
    probability 1/2, returned as is, else swapped with a uniformly chosen stored image, which
    is returned in its place. D so keeps seeing what G produced a few steps ago and cannot
    simply chase G's latest output. ``size`` 0 returns the images unchanged.

    The draws come from ``numpy.random.default_rng(seed)`` on the host; ``state_dict()`` holds
    the stored images and the generator's state, so a resumed run continues the same pool.
    """

    def __init__(self, size=POOL_SIZE, seed=0):
        self.size = size
        self.images = []                                                    # device arrays (C, H, W)
        self.rng = np.random.default_rng(seed)

    def query(self, images):
        if self.size == 0:
            return images
        xp = backend.get_array_module(images)
        out = []
        for image in images:
            image = image.copy()                                            # the pool never shares G's buffers
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.random() < 0.5:
                i = int(self.rng.integers(0, self.size))
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        return xp.stack(out)                                                # (N, C, H, W)

    def state_dict(self):
        images = backend.asnumpy(backend.xp().stack(self.images)) if self.images else np.zeros((0,), np.float32)
        return {"images": images, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        images = np.asarray(state["images"])
        self.images = [backend.to_device(np.ascontiguousarray(im)) for im in images] if images.ndim == 4 else []
        self.rng.bit_generator.state = state["rng"]
        return self


def lr_factor(step, steps, decay_start=None):
    """The learning-rate multiplier of ``step`` (1-based) in a run of ``steps``: 1 up to
    ``decay_start`` (default: half the run), then linearly down,

        factor = 1 - max(0, step - decay_start) / (steps - decay_start + 1),

    so the last step still moves (1 / (steps - decay_start + 1)); CycleGAN's ``linear`` policy in steps."""
    decay_start = steps // 2 if decay_start is None else decay_start
    return 1.0 - max(0, step - decay_start) / (steps - decay_start + 1)


def match_channels(images, channels):
    """``images`` (N, C, H, W) with ``channels`` channels: 3 -> 1 by luma (``LUMA``), 1 -> 3 by
    repeating the channel; unchanged when C already matches."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 3 and channels == 1:
        r, g, b = (images.dtype.type(w) for w in LUMA)
        return r * images[:, 0:1] + g * images[:, 1:2] + b * images[:, 2:3]                  # (N, 1, H, W)
    if c == 1:
        xp = backend.get_array_module(images)
        return xp.repeat(images, channels, axis=1)                                          # (N, channels, H, W)
    raise ValueError(f"cannot turn {c}-channel images into {channels}-channel ones")


def match_channels_backward(dout, channels):
    """The gradient of ``match_channels`` for inputs of ``channels`` channels: luma's weights
    (3 -> 1) or the sum over the copies (1 -> 3)."""
    c = dout.shape[1]
    if c == channels:
        return dout
    if channels == 3 and c == 1:
        xp = backend.get_array_module(dout)
        return xp.concatenate([dout.dtype.type(w) * dout for w in LUMA], axis=1)
    return dout.sum(axis=1, keepdims=True)


CLASSIFIER_SIZE = 28                 # npgan's digit classifiers read 28 x 28 images


def centre_crop(images, size=CLASSIFIER_SIZE):
    """The central ``size`` x ``size`` pixels of ``images`` (N, C, H, W): at 32 x 32, the MNIST digit
    that ``npgan.data.mnistm.pad_digits`` padded, so a 28 x 28 classifier can read it."""
    top, left = (images.shape[2] - size) // 2, (images.shape[3] - size) // 2
    return images[:, :, top:top + size, left:left + size]


def centre_crop_backward(dout, shape):
    """The gradient of ``centre_crop`` for inputs of ``shape``: ``dout`` put back in the middle, 0 around."""
    xp = backend.get_array_module(dout)
    dx = xp.zeros(shape, dout.dtype)
    top, left = (shape[2] - dout.shape[2]) // 2, (shape[3] - dout.shape[3]) // 2
    dx[:, :, top:top + dout.shape[2], left:left + dout.shape[3]] = dout
    return dx


class SemanticConsistency:
    """CyCADA's semantic-consistency loss (Hoffman et al. 2018) with a frozen digit classifier f
    of domain A (one-channel 28 x 28 images; a colour image is read through its luma, a 32 x 32
    one through its central 28 x 28):

        L_sem = weight * [ CE(f(G_ab(a)), y_a) + b * CE(f(G_ba(b)), argmax f(b)) ]

    A translation must not change what f reads. The first term uses A's own labels; B's are
    unknown, so the second uses f's reading of b itself (``pseudo_labels``), as Hoffman et al.
    do; ``b`` (a fraction, 1 in Hoffman et al.) weighs it, 0 leaves it out: f, trained on domain
    A, reads B's images poorly, so its pseudo-labels are often wrong. ``term(images, labels,
    fraction)`` gives one cross-entropy and ``weight * fraction`` times its gradient with respect
    to the images, through f's backward (no parameter gradients: f stays as trained)."""

    def __init__(self, classifier, weight, b=1.0):
        self.f, self.weight, self.b = classifier.eval(), float(weight), float(b)

    def pseudo_labels(self, images):
        """argmax f(images) on the device: what f reads in each image."""
        return self.f.forward(centre_crop(match_channels(images, 1))).argmax(axis=1)

    def term(self, images, labels, fraction=1.0):
        grey = match_channels(images, 1)
        with frozen(self.f):
            loss, cache = softmax_cross_entropy_forward(self.f.forward(centre_crop(grey)), labels)
            dgrey = self.f.backward(softmax_cross_entropy_backward(self.weight * fraction, cache))
        return loss, match_channels_backward(centre_crop_backward(dgrey, grey.shape), images.shape[1])


def l1(pred, target, weight):
    """mean |pred - target| and ``weight`` times its gradient with respect to ``pred``."""
    loss, cache = l1_forward(pred, target)
    return loss, l1_backward(weight, cache)


# ---- one step --------------------------------------------------------------------------------
def generator_pass(nets, objective, real_a, real_b, pools=None, lambda_cycle=LAMBDA_CYCLE, identity=IDENTITY,
                   identity_ab=False, cycle_b=CYCLE_B, semantic=None, labels_a=None):
    """L_G of the module docstring, with its gradients added into both generators' ``p.grad``
    (D_a and D_b frozen: they pass gradients through without computing their own).

    Args:
        pools: {'a', 'b'} ImagePools, each queried with the new fakes before the generator that made
            them runs again; None skips them (a gradient check).
        identity_ab: also the identity term of G_ab, |G_ab(to_a(b)) - b| (see the module docstring).
        cycle_b: the weight of the B -> A -> B cycle term as a fraction of ``lambda_cycle``.
        semantic: a ``SemanticConsistency`` (its weight included), with ``labels_a`` (N,) the
            digits of real_a on the device; None: no semantic term.
    Returns:
        (terms {name: 0-d}: loss_G, adv_ab, adv_ba, cycle_a, cycle_b, idt_a, idt_b (see ``cycle_step``),
        the pooled fakes {'a': (N, C_a, H, W), 'b': (N, C_b, H, W)} or None).
    """
    G_ab, G_ba, D_a, D_b = nets["G_ab"], nets["G_ba"], nets["D_a"], nets["D_b"]
    lam, lam_idt = lambda_cycle, identity * lambda_cycle
    pooled = {}
    with frozen(D_a), frozen(D_b):
        # A -> B -> A: G_ab(a) is judged by D_b and brought back by G_ba
        fake_b = G_ab.forward(real_a)                                               # (N, C_b, H, W)
        rec_a = G_ba.forward(fake_b)                                                # (N, C_a, H, W)
        cycle_a, drec_a = l1(rec_a, real_a, lam)
        dfake_b = G_ba.backward(drec_a)                                             # + G_ba's gradients
        adv_ab, dfake_b_adv = generator_loss(D_b, objective, fake_b, weight=ADV_WEIGHT)
        sem_ab = sem_ba = None
        if semantic is not None:                                                    # f must read a's digit in G_ab(a)
            sem_ab, dsem = semantic.term(fake_b, labels_a)
            dfake_b_adv = dfake_b_adv + dsem
        if pools is not None:
            pooled["b"] = pools["b"].query(fake_b)                                  # before G_ab runs again
        with no_input_grad(G_ab):                                                   # a is data
            G_ab.backward(dfake_b + dfake_b_adv)
        # B -> A -> B
        fake_a = G_ba.forward(real_b)
        rec_b = G_ab.forward(fake_a)
        cycle_b_l1, drec_b = l1(rec_b, real_b, lam * cycle_b)
        dfake_a = G_ab.backward(drec_b)
        adv_ba, dfake_a_adv = generator_loss(D_a, objective, fake_a, weight=ADV_WEIGHT)
        if semantic is not None and semantic.b > 0:                                 # and in G_ba(b) what it reads in b
            sem_ba, dsem = semantic.term(fake_a, semantic.pseudo_labels(real_b), semantic.b)
            dfake_a_adv = dfake_a_adv + dsem
        if pools is not None:
            pooled["a"] = pools["a"].query(fake_a)
        with no_input_grad(G_ba):
            G_ba.backward(dfake_a + dfake_a_adv)
        # identity: an image already in the target domain should pass unchanged
        idt_b, idt_a = real_b.dtype.type(0), real_a.dtype.type(0)
        if lam_idt > 0:
            with no_input_grad(G_ab), no_input_grad(G_ba):
                idt_a, didt_a = l1(G_ba.forward(match_channels(real_a, real_b.shape[1])), real_a, lam_idt)
                G_ba.backward(didt_a)
                if identity_ab:
                    idt_b, didt_b = l1(G_ab.forward(match_channels(real_b, real_a.shape[1])), real_b, lam_idt)
                    G_ab.backward(didt_b)
    adv_ab, adv_ba = ADV_WEIGHT * adv_ab, ADV_WEIGHT * adv_ba                       # reported as MSE
    loss_G = adv_ab + adv_ba + lam * (cycle_a + cycle_b * cycle_b_l1) + lam_idt * (idt_a + idt_b)
    if semantic is not None:
        loss_G = loss_G + semantic.weight * (sem_ab + (semantic.b * sem_ba if sem_ba is not None else 0))
    terms = {"loss_G": loss_G, "adv_ab": adv_ab, "adv_ba": adv_ba, "cycle_a": cycle_a, "cycle_b": cycle_b_l1,
             "idt_a": idt_a, "idt_b": idt_b if identity_ab else None, "sem_ab": sem_ab, "sem_ba": sem_ba}
    return terms, (pooled or None)


def cycle_step(nets, opt_G, opt_D_a, opt_D_b, objective, real_a, real_b, pools, lambda_cycle=LAMBDA_CYCLE,
               identity=IDENTITY, check=False, identity_ab=False, cycle_b=CYCLE_B, semantic=None, labels_a=None):
    """One CycleGAN step (see the module docstring): both generators, then D_a and D_b.

    Args:
        nets: {'G_ab', 'G_ba', 'D_a', 'D_b'}; opt_G: Adam over both generators' parameters.
        objective: the adversarial objective (LSGAN); real_a, real_b: (N, C_a, H, W), (N, C_b, H, W)
            batches in [-1, 1] on the device; pools: {'a': ImagePool, 'b': ImagePool}.
        lambda_cycle, identity: lambda and lambda_idt / lambda; identity_ab: G_ab's identity term too;
        cycle_b: k_b, the B -> A -> B cycle's weight as a fraction of lambda.
        semantic, labels_a: the semantic-consistency term and real_a's digits (``generator_pass``).
        check: the NaN guard before each update (``npgan.gan.step``).
    Returns:
        {name: 0-d device array}: loss_G, its terms (adv_ab: G_ab's adversarial MSE, adv_ba, cycle_a:
        mean |G_ba(G_ab(a)) - a|, cycle_b, idt_a: mean |G_ba(to_b(a)) - a|, idt_b: None without
        identity_ab, sem_ab and sem_ba: the semantic term's cross-entropies, None without it),
        loss_D_a, loss_D_b.
    """
    # (1) both generators, one update
    opt_G.zero_grad()
    stats, pooled = generator_pass(nets, objective, real_a, real_b, pools, lambda_cycle, identity, identity_ab, cycle_b,
                                   semantic, labels_a)
    if check:
        require_finite("G_ab", stats["loss_G"], nets["G_ab"])
        require_finite("G_ba", stats["loss_G"], nets["G_ba"])
    opt_G.step()
    # (2) each discriminator on pooled fakes (the images need no gradient: discriminator_step knows)
    stats["loss_D_b"] = discriminator_step(nets["D_b"], opt_D_b, objective, real_b, pooled["b"], check=check)[0]
    stats["loss_D_a"] = discriminator_step(nets["D_a"], opt_D_a, objective, real_a, pooled["a"], check=check)[0]
    return stats


# ---- the recipe ------------------------------------------------------------------------------
def fit_cyclegan(nets, opt_G, opt_D_a, opt_D_b, next_a, next_b, steps, log, *, pools, start_step=0,
                 lambda_cycle=LAMBDA_CYCLE, identity=IDENTITY, identity_ab=False, cycle_b=CYCLE_B, lr=LR,
                 decay_start=None, semantic=None, **loop_options):
    """The CycleGAN recipe: ``cycle_step`` on ``next_a()``, ``next_b()`` at every step, the learning
    rate of all three optimizers set from ``lr_factor`` first. Returns the last completed step.

    Args:
        next_a, next_b: return the next batch of each domain on the device, in [-1, 1]; with
            ``semantic`` (a ``SemanticConsistency``), next_a returns (images, their digits).
        log: a ``MetricsLog``; loop_options: passed to ``train_loop`` (log_every, every, save, ...).
    """
    objective = get_objective("lsgan")
    optimizers = (opt_G, opt_D_a, opt_D_b)

    def one_step(step, check):
        for opt in optimizers:
            opt.lr = lr * lr_factor(step, steps, decay_start)
        real_a, labels_a = next_a() if semantic is not None else (next_a(), None)
        return cycle_step(nets, opt_G, opt_D_a, opt_D_b, objective, real_a, next_b(), pools,
                          lambda_cycle, identity, check, identity_ab, cycle_b, semantic, labels_a)

    def add_lr(record):
        record["lr"] = float(f"{opt_G.lr:.4g}")

    return train_loop(one_step, steps, log, start_step=start_step, on_log=add_lr, describe=describe_cycle,
                      **loop_options)


def describe_cycle(record):
    """``G 2.345 (adv 0.61/0.52, cycle 0.081/0.104)  D 0.231/0.244  34 img/s per domain``: a step
    takes one batch of each domain, and ``img_per_s`` counts one of them."""
    text = (f"G {record['loss_G']:.3f} (adv {record['adv_ab']:.2f}/{record['adv_ba']:.2f}, cycle "
            f"{record['cycle_a']:.3f}/{record['cycle_b']:.3f})  D {record['loss_D_a']:.3f}/{record['loss_D_b']:.3f}")
    if record.get("sem_ab") is not None:
        text += f"  sem {record['sem_ab']:.2f}" + (f"/{record['sem_ba']:.2f}" if record.get("sem_ba") is not None else "")
    return text + (f"  {record['img_per_s']:.0f} img/s per domain" if "img_per_s" in record else "")
