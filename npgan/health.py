"""Training health: the failures a hand-written GAN usually shows, detected and explained.

``python -m npgan.train`` calls :func:`check` at every log point. Besides NaN/Inf (which stop
the run, see ``npgan.train``) it looks for:

- **the discriminator has won**: D(x) > 0.99 and D(G(z)) < 0.01 on average over three log
  points in a row. D tells real from generated almost perfectly, so its gradient no longer
  tells G which way to go (G's loss climbs);
- **the generator has collapsed**: G's fixed-noise samples barely differ from each other
  (their per-pixel spread is under a tenth of the real images'), i.e. G maps every z to
  nearly one image. Checked from step 200 on: an untrained G's samples are all grey;
- **dead units**: more than half of the channels of one of G's ReLU layers output 0 for every
  fixed-noise sample. A dead ReLU passes no gradient, so it never recovers;
- **the discriminator overfits**: D's mean output sigmoid(D(x)) on fixed training images is more
  than ``OVERFIT_GAP`` above its output on held-out real images at ``OVERFIT_LOG_POINTS`` log
  points in a row (``DiscriminatorProbe`` measures both). D has begun to memorise the training
  set instead of learning what a digit looks like, so its gradient leads G towards copies of
  those images, or nowhere (Karras et al. 2020 saw the same split on small data sets).

Each finding is printed once, when it appears, with what it means and what to try, and the
names of the findings present are stored in that log point's ``metrics.jsonl`` line
(``"health"``). A resumed run reads those lines back, so it does not repeat a warning that the
line before the checkpoint already carried.

    >>> found = check(history, G, z_fixed, real_spread, step)     # {name: message}
    >>> report(record, history[-1], found, tqdm.write)              # store the names, say the new ones

``python -m npgan.inpaint train --method latent`` runs the same checks on its DCGAN.
"""
import numpy as np

from . import backend
from .data import scale_images
from .layers import BatchNormBase, ReLU, Sequential

WIN_PROBABILITY = 0.99       # D(x) above it and D(G(z)) below 1 - it: D has won
WIN_LOG_POINTS = 3           # ... at this many log points in a row
COLLAPSE_RATIO = 0.1         # samples' spread below this share of the real images': collapsed
COLLAPSE_FROM_STEP = 200     # an untrained G's samples have ~3% of the real spread; by step 250 ~100%
DEAD_SHARE = 0.5             # more than this share of a ReLU layer's channels dead: reported
# D's mean probability on training images above held-out ones by this much: overfitting. Real
# training and held-out digits come from one distribution, so an honest D gives them the same
# output up to the probe's sampling noise (256 images each: about 0.02); see docs/TRAINING.md.
OVERFIT_GAP = 0.1
OVERFIT_LOG_POINTS = 3
N_PROBE = 256                # training and held-out images D is shown at each log point


def spread(images):
    """Mean over pixels of the standard deviation across images: (N, ...) -> float. How much
    a set of images differs from one to the next (0 for identical images)."""
    xp = backend.get_array_module(images)
    return float(xp.std(images, axis=0).mean())


def probe_generator(G, z):
    """G's images for the codes ``z`` in eval mode (host array), and for each ReLU of a
    Sequential G: (its name, the share of its channels that are 0 for every sample, how many)."""
    was_training = G.training
    G.eval()
    dead = []
    try:
        if isinstance(G, Sequential):
            for name, layer, x in G.named_outputs(z):
                if isinstance(layer, ReLU):
                    peak = x.max(axis=(0,) + tuple(range(2, x.ndim)))             # per channel
                    dead.append((f"G.{name} (ReLU)", float((peak <= 0).mean()), int(peak.size)))
        else:
            x = G.forward(z)
    finally:
        G.train(was_training)
    return backend.asnumpy(x), dead


class DiscriminatorProbe:
    """D's mean output on ``N_PROBE`` fixed training images and as many held-out ones, at a log
    point: ``probe(D)`` -> {"D_train", "D_heldout"}, each the mean of sigmoid(D(x)) as D_x is.

    D runs as in a training step (train mode: BatchNorm normalises with the probe batch's own
    statistics), and its running statistics and caches are put back, so the probe changes
    nothing that training or a checkpoint reads. ``forward(D, x, labels)`` calls D (a
    conditional D takes the images' classes; ``labels``: the two sets' classes or None).
    """

    def __init__(self, train_images, heldout_images, labels=(None, None), forward=None):
        self.sets = ((train_images[:N_PROBE], None if labels[0] is None else labels[0][:N_PROBE]),
                     (heldout_images[:N_PROBE], None if labels[1] is None else labels[1][:N_PROBE]))
        self.forward = forward or (lambda D, x, y: D.forward(x) if y is None else D.forward(x, y))

    @classmethod
    def of_data(cls, train_images, heldout_images, train_labels=None, heldout_labels=None, seed=0):
        """The probe of ``N_PROBE`` images drawn at random (``default_rng(seed)``, the same for
        every run) from each set of uint8 host images (N, H, W), scaled to [-1, 1] on the device.
        At random, not the first ones: a data set stored in class order would otherwise compare
        the zeros of one set with the mixed classes of the other. With labels: a conditional D."""
        rng = np.random.default_rng(seed)
        picked, labels = [], []
        for images, classes in ((train_images, train_labels), (heldout_images, heldout_labels)):
            keep = np.sort(rng.permutation(len(images))[:N_PROBE])
            picked.append(backend.to_device(scale_images(images[keep])[:, None]))
            labels.append(None if classes is None else backend.to_device(np.asarray(classes)[keep]))
        return cls(picked[0], picked[1], tuple(labels))

    def __call__(self, D):
        saved = [(m, m.running_mean.copy(), m.running_var.copy(), m.cache) for m in D.modules()
                 if isinstance(m, BatchNormBase) and m.running_mean is not None]
        out = {}
        for key, (x, y) in zip(("D_train", "D_heldout"), self.sets):
            logits = self.forward(D, x, y)
            xp = backend.get_array_module(logits)
            out[key] = round(float((0.5 * (1 + xp.tanh(0.5 * logits))).mean()), 5)     # mean sigmoid, no overflow
        for m, mean, var, cache in saved:
            m.running_mean[...], m.running_var[...], m.cache = mean, var, cache
        return out


def check(history, G, z_fixed, real_spread, step, d_probabilities=True):
    """The failures present at this log point, as {name: explanation}.

    Args:
        history: the metrics.jsonl records so far, the current one last (keys D_x, D_G_z, loss_G).
        G: the generator; z_fixed: its fixed noise (device array); real_spread: ``spread`` of
            real training images; step: the current step.
        d_probabilities: D's outputs are logits, so D(x) and D(G(z)) are probabilities and "the
            discriminator has won" can be read from them; False for a critic's scores (WGAN,
            hinge, LSGAN), where that check does not apply.
    """
    found = {}
    recent = history[-WIN_LOG_POINTS:]
    if d_probabilities and len(recent) == WIN_LOG_POINTS and all(r["D_x"] > WIN_PROBABILITY and r["D_G_z"] < 1 - WIN_PROBABILITY
                                             for r in recent):
        last = recent[-1]
        found["discriminator_wins"] = (
            f"the discriminator has won: D(x) {last['D_x']:.3f} and D(G(z)) {last['D_G_z']:.4f} at the last "
            f"{WIN_LOG_POINTS} log points. It tells real from generated almost perfectly, so its gradient no "
            f"longer tells G which way to go (G's loss is {last['loss_G']:.1f}). Common causes: D learning much "
            f"faster than G, or a broken backward in G (prove it with npgan.gradcheck). Try a slower D (a smaller "
            f"--lr-d), a smaller --lr, or another --seed.")
    recent = [r for r in history[-OVERFIT_LOG_POINTS:] if "D_heldout" in r]
    if d_probabilities and len(recent) == OVERFIT_LOG_POINTS and all(
            r["D_train"] - r["D_heldout"] > OVERFIT_GAP for r in recent):
        last = recent[-1]
        found["discriminator_overfits"] = (
            f"the discriminator is overfitting: it gives the training images {last['D_train']:.3f} and held-out "
            f"real images {last['D_heldout']:.3f} on average (a gap over {OVERFIT_GAP} at the last "
            f"{OVERFIT_LOG_POINTS} log points). It is memorising the training set rather than learning what the "
            f"images look like, so its gradient stops teaching G. More data helps most. --augment translation "
            f"(or --augment-p auto) closes the gap, though on MNIST's 5,000-digit subset it also made the samples "
            f"less recognisable within 5,000 steps (docs/SMALL_DATA.md); a slower D (--lr-d) narrows it, and a "
            f"shorter run stops before it opens.")
    images, dead = probe_generator(G, z_fixed)
    ratio = spread(images) / real_spread if real_spread > 0 else float("inf")      # constant data: no yardstick
    if step >= COLLAPSE_FROM_STEP and ratio < COLLAPSE_RATIO:
        found["generator_collapse"] = (
            f"the generator has collapsed: its {len(images)} fixed-noise samples differ from each other "
            f"{ratio:.0%} as much as real images do. G maps every z to nearly the same image; D will reject "
            f"it and G will jump to another one. Look at the sample grid; try a smaller --lr or another --seed.")
    for layer, share, channels in dead:
        if share > DEAD_SHARE:
            found[f"dead_units {layer}"] = (
                f"{share:.0%} of the {channels} channels of {layer} output 0 for every fixed-noise sample: a "
                f"dead ReLU passes no gradient, so these never recover. Usually a learning rate too large for "
                f"the first steps, or a bad initialisation; try a smaller --lr.")
    return found


def report(record, previous, found, write):
    """Store the names of ``found`` in ``record`` (as ``"health"``) and ``write`` a warning for
    each one that ``previous`` (the record before, or None) did not carry: said once, when it appears."""
    if found:
        record["health"] = sorted(found)
    before = set(previous.get("health", ())) if previous else set()
    for name in sorted(set(found) - before):
        write(f"warning at step {record['step']}: {found[name]}")
