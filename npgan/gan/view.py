"""What D sees: one object between the images and D, with a forward and a backward.

Every image D looks at, real or generated, in D's update and in G's update, goes through the
run's view; G's gradient comes back through its ``backward``. The step (``npgan.gan.step``)
takes the view as one argument, so a new transform of D's input is a new class here, not a new
parameter of the step.

    view = DView([DiffAugment("translation,cutout"), InstanceNoise(0.1, steps)])
    seen = view.forward(fake)            # what D is shown (each call draws fresh parameters)
    dfake = view.backward(D.backward(dlogits))

- :class:`InstanceNoise`: x + std * N(0, 1), std annealed linearly to 0 over the run (Sonderby et
  al. 2016); its backward is the identity.
- :class:`DiffAugment`: Zhao et al.'s (2020) differentiable augmentation, policies ``color``,
  ``translation`` and ``cutout``, each sample drawing its own parameters; with a probability
  ``p`` per sample and transform, fixed or adapted by Karras et al.'s (2020) overfitting
  heuristic r_t = E[sign(D(x_real))] (``p="auto"``).

Like a layer, a view keeps what its last ``forward`` drew for its ``backward``: G's update calls
``forward`` on the fakes, then ``backward`` on D's input gradient. Every draw comes from npgan's
seeded generator, so runs are reproducible; the adaptive ``p`` is part of the checkpoint.
"""
import numpy as np

from .. import backend
from .. import functional as F

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 1 / 8         # DiffAugment's: shift by up to 1/8 of the image size
CUTOUT_RATIO = 1 / 2              # DiffAugment's: a square of half the image size
# Karras et al.'s (2020) controller: every ADA_INTERVAL steps, p moves by sign(r_t - target) so
# that it could go from 0 to 1 in ADA_RAMP_IMAGES images. They used 500k images for runs of
# millions; the default run here sees 160k images in all, so p must be able to move faster.
ADA_TARGET = 0.6
ADA_INTERVAL = 4
ADA_RAMP_IMAGES = 50_000


class View:
    """The identity: D sees the images as they are."""

    def forward(self, images):
        return images

    def backward(self, dimages):
        return dimages

    def at_step(self, step):
        """Called before each training step (1, 2, ...): schedules read the step here."""

    def after_step(self, stats):
        """Called with each step's statistics; returns statistics of its own to log ({} here)."""
        return {}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class DView(View):
    """Transforms applied in order: forward t1 then t2, backward t2 then t1."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def forward(self, images):
        for t in self.transforms:
            images = t.forward(images)
        return images

    def backward(self, dimages):
        for t in reversed(self.transforms):
            dimages = t.backward(dimages)
        return dimages

    def at_step(self, step):
        for t in self.transforms:
            t.at_step(step)

    def after_step(self, stats):
        out = {}
        for t in self.transforms:
            out.update(t.after_step(stats))
        return out

    def state_dict(self):
        return {type(t).__name__: t.state_dict() for t in self.transforms if t.state_dict()}

    def load_state_dict(self, state):
        for t in self.transforms:
            if type(t).__name__ in (state or {}):
                t.load_state_dict(state[type(t).__name__])

    def __repr__(self):
        return " then ".join(map(repr, self.transforms)) or "the images as they are"


class InstanceNoise(View):
    """x + std * N(0, 1) on every image D sees, std = std0 * (1 - (step - 1) / steps): instance
    noise (Sonderby et al. 2016; Arjovsky and Bottou 2017) blurs the real and the generated
    distributions into each other, so D cannot separate them perfectly early on. No draw when std
    is 0. The noise is added, so the backward is the identity."""

    def __init__(self, std, steps):
        self.std0, self.steps, self.std = float(std), int(steps), float(std)

    def at_step(self, step):
        self.std = self.std0 * (1 - (step - 1) / self.steps)                # linear annealing to 0

    def forward(self, images):
        if not self.std:
            return images
        return images + images.dtype.type(self.std) * backend.rng().standard_normal(images.shape, dtype=images.dtype)

    def __repr__(self):
        return f"instance noise (std {self.std0:g}, annealed to 0)"


def parse_policy(text):
    """``"translation,cutout"`` -> ("translation", "cutout"); ValueError naming an unknown name."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown or not names:
        raise ValueError(f"unknown augmentation {', '.join(unknown) or repr(text)}: the policy is a comma-separated "
                         f"list of {', '.join(POLICIES)}")
    return names


class DiffAugment(View):
    """Differentiable augmentation (Zhao et al. 2020) of every image D sees.

    Policies, applied in the order given, each sample drawing its own parameters:
      color:       brightness x + b, b ~ U[-0.5, 0.5); saturation (x - mean_c) s + mean_c,
                   s ~ U[0, 2) (no-op on one channel); contrast (x - mean_chw) s + mean_chw, s ~ U[0.5, 1.5)
      translation: shift by up to ``TRANSLATION_RATIO`` of the size, the pixels shifted in = fill
      cutout:      one square of ``CUTOUT_RATIO`` of the size, filled with ``fill``
    ``strength`` scales every range (0.5: half the shift, a quarter-size square, half the colour
    change). DiffAugment fills with 0, which is mid-grey for images in [-1, 1]; ``fill=-1`` is
    the background of a digit instead. ``p``: each transform is applied to each sample with this
    probability (1: always, as DiffAugment); ``"auto"``: adapted to keep r_t near ``target``.
    """

    def __init__(self, policy, p=1.0, strength=1.0, fill=-1.0, batch_size=64, target=ADA_TARGET):
        self.policy = parse_policy(policy) if isinstance(policy, str) else tuple(policy)
        self.adaptive = p == "auto"
        self.strength, self.fill, self.target = float(strength), float(fill), float(target)
        self.p_step = batch_size * ADA_INTERVAL / ADA_RAMP_IMAGES
        if self.adaptive:                                                   # on the device: no read per step
            self.p, self.r_sum = backend.xp().zeros((), np.float32), backend.xp().zeros((), np.float32)
        else:
            self.p = float(p)
        self.r_count = 0                                                    # steps since the last adjustment
        self._backward = []

    # ---- forward / backward ----
    def forward(self, x):
        self._backward = []
        for name in self.policy:
            x = getattr(self, "_" + name)(x)
        return x

    def backward(self, dx):
        for backward in reversed(self._backward):
            dx = backward(dx)
        return dx

    def _applied(self, n):
        """(N,) bool: the samples this transform changes (all when p is 1)."""
        if not self.adaptive and self.p >= 1:
            return backend.xp().ones(n, dtype=bool)
        return backend.rng().random(n, dtype=np.float32) < self.p

    def _color(self, x):
        n, rng, s = x.shape[0], backend.rng(), self.strength
        brightness = (rng.random(n, dtype=np.float32) - 0.5) * s * self._applied(n)
        x = F.add_per_sample(x, brightness)
        for axes, low, high in (((1,), 0.0, 2.0), ((1, 2, 3), 0.5, 1.5)):     # saturation, contrast
            scale = 1 + (low - 1 + (high - low) * rng.random(n, dtype=np.float32)) * s
            scale = backend.xp().where(self._applied(n), scale, np.float32(1))
            x, cache = F.scale_about_mean_forward(x, scale, axes)
            self._backward.append(lambda d, cache=cache: F.scale_about_mean_backward(d, cache))
        return x

    def _translation(self, x):
        n, h, w = x.shape[0], x.shape[2], x.shape[3]
        rng, shifts = backend.rng(), []
        for size in (h, w):
            most = int(size * TRANSLATION_RATIO * self.strength + 0.5)
            shifts.append(rng.integers(-most, most + 1, size=n))
        applied = self._applied(n)
        x, cache = F.translate_forward(x, shifts[0] * applied, shifts[1] * applied, fill=self.fill)
        self._backward.append(lambda d: F.translate_backward(d, cache))
        return x

    def _cutout(self, x):
        n, h, w = x.shape[0], x.shape[2], x.shape[3]
        rng = backend.rng()
        size = tuple(int(d * CUTOUT_RATIO * self.strength + 0.5) for d in (h, w))
        # DiffAugment's offsets: the square's centre anywhere in the image (one more place when even)
        top = rng.integers(0, h + (1 - size[0] % 2), size=n) - size[0] // 2
        left = rng.integers(0, w + (1 - size[1] % 2), size=n) - size[1] // 2
        top = backend.xp().where(self._applied(n), top, h)                  # below the image: nothing cut
        x, cache = F.cutout_forward(x, top, left, size, fill=self.fill)
        self._backward.append(lambda d: F.cutout_backward(d, cache))
        return x

    # ---- the adaptive probability ----
    def after_step(self, stats):
        """With ``p="auto"``: Karras et al.'s controller on the step's r_t = mean sign(D(x_real))
        (``stats["r_t"]``): every ``ADA_INTERVAL`` steps, p += sign(mean r_t - target) * p_step,
        clipped to [0, 1]. D overfits when it is sure of the real images (r_t near 1): more
        augmentation then. Everything stays on the device. Returns {"augment_p": p} to log
        (None, not logged, when p is fixed)."""
        if self.adaptive:
            xp = backend.xp()
            self.r_sum = self.r_sum + stats["r_t"]
            self.r_count += 1
            if self.r_count == ADA_INTERVAL:
                direction = xp.sign(self.r_sum / ADA_INTERVAL - np.float32(self.target))
                self.p = xp.clip(self.p + direction * np.float32(self.p_step), 0, 1).astype(np.float32)
                self.r_sum, self.r_count = xp.zeros((), np.float32), 0
        return {"augment_p": self.p if self.adaptive else None}

    def state_dict(self):
        if not self.adaptive:
            return {}
        return {"p": float(self.p), "r_sum": float(self.r_sum), "r_count": self.r_count}

    def load_state_dict(self, state):
        xp = backend.xp()
        self.p, self.r_sum = xp.asarray(state["p"], np.float32), xp.asarray(state["r_sum"], np.float32)
        self.r_count = int(state["r_count"])

    def __repr__(self):
        p = "p adapted to keep r_t near %g" % self.target if self.adaptive else f"p {self.p:g}"
        return (f"DiffAugment {','.join(self.policy)} (strength {self.strength:g}, fill {self.fill:g}, {p})")
