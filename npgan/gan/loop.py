"""The training loop every npgan trainer runs, and the GAN recipe on top of it.

    for step in start_step+1 .. steps:
        stats = one_step(step, check)          # dict of 0-d device arrays; check: the NaN guard
        every log_every steps: the means since the last log point, read from the device once,
            become a record (metrics.jsonl / the history) and ``on_log`` sees it (health checks)
        every k steps of ``every``: its action (sample grids)
        every save_every steps, at the end and on Ctrl-C: ``save(step)`` (a checkpoint)

**NaN guard.** ``one_step`` tests the losses and gradients before each update when ``check``
is true, which the loop asks at every step on every backend (on a GPU, one device read per
update), so a NaN is caught in the step and the layer where it first appears, before any
update spreads it. A failure stops the loop with :class:`~npgan.errors.NonFiniteError` naming
the step; nothing is saved after it, so the last checkpoint is a good state.

**Ctrl-C.** The first one finishes the current step, saves and returns; a second one raises
KeyboardInterrupt at once.
"""
import json
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import backend, health
from ..errors import NonFiniteError
from ..models.conditional import with_labels
from .step import critic_step, gan_step


class MetricsLog:
    """Sums each step's statistics on the device; ``summarise`` reads their means once (one
    device synchronisation) as a record, ``append`` keeps it (and writes it as a line of
    ``path``, a metrics.jsonl, when given).

    A statistic a step does not report (None or absent) is averaged over the steps that did.
    ``history`` starts with the records of ``path`` up to ``start_step`` (a resumed run).
    ``group``: data-parallel training (``npgan.comm``); each record then holds the means over
    every rank (one all-reduce per log point) and img/s counts every rank's images.
    """

    def __init__(self, path=None, start_step=0, batch_size=None, group=None):
        self.path, self.batch_size, self.group = (Path(path) if path else None), batch_size, group
        self.history = read_history(self.path, start_step) if self.path else []
        if self.path:
            with open(self.path, "w") as f:                 # keep only lines up to the checkpoint
                f.writelines(json.dumps(r) + "\n" for r in self.history)
        self._reset(time.perf_counter())

    def _reset(self, now):
        self.totals, self.counts, self.steps, self.since = {}, {}, 0, now

    def add(self, stats):
        for key, value in stats.items():
            if value is None:
                continue
            self.totals[key] = value if key not in self.totals else self.totals[key] + value
            self.counts[key] = self.counts.get(key, 0) + 1
        self.steps += 1

    def summarise(self, step):
        """The means of the statistics added since the last record, as a new record."""
        keys = list(self.totals)
        sums = backend.asnumpy(backend.xp().stack([self.totals[k] for k in keys])) if keys else []
        ranks = 1 if self.group is None else self.group.size
        if ranks > 1 and keys:
            sums = self.group.allreduce(sums.astype(np.float64)) / ranks
        now = time.perf_counter()
        record = {"step": step, **{k: round(float(total / self.counts[k]), 5) for k, total in zip(keys, sums)}}
        if self.batch_size:
            record["img_per_s"] = round(ranks * self.steps * self.batch_size / (now - self.since), 1)
        self._reset(now)
        return record

    def append(self, record):
        self.history.append(record)
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def read_history(path, up_to_step):
    """The records of a ``metrics.jsonl`` with step <= ``up_to_step`` (none for a new run)."""
    if up_to_step == 0 or path is None or not Path(path).is_file():
        return []
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [r for r in records if r["step"] <= up_to_step]


class DeferredInterrupt:
    """While active, the first Ctrl-C only sets ``requested`` (the loop finishes its step,
    saves and stops); a second Ctrl-C raises KeyboardInterrupt at once."""

    def __enter__(self):
        self.requested = False
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGINT, self.previous)


def warn(line):
    """Print a line to stderr without breaking a progress bar."""
    tqdm.write(line, file=sys.stderr)


def train_loop(one_step, steps, log, *, start_step=0, log_every=50, on_log=None, describe=None, every=(),
               save=None, save_every=None, progress=True, print_every=1, desc=None, group=None):
    """Run ``one_step(step, check)`` for step = start_step + 1 .. steps (see the module docstring).

    Args:
        one_step(step, check): trains one step, testing for NaN/Inf before its updates when
            ``check``; returns its statistics {name: 0-d device array or None}.
        log: a :class:`MetricsLog`; on_log(record): called at every log point before the
            record is kept (it may add keys, e.g. health findings).
        describe(record) -> str: the progress bar's text; without a bar (``progress`` False) it is
            printed as ``step N: ...`` every ``print_every`` log points.
        every: (period, action(step)) pairs, run every ``period`` steps and at the last one.
        save(step): called every ``save_every`` steps, at the last one and on Ctrl-C.
        group: data-parallel training (``npgan.comm``): the ranks agree after every step on
            whether a Ctrl-C reached any of them, so all stop after the same step.
    Returns:
        the last completed step (below ``steps`` after Ctrl-C).
    """
    bar = tqdm(total=steps, initial=start_step, unit="step", disable=not progress, dynamic_ncols=True, desc=desc)
    step = start_step
    with DeferredInterrupt() as interrupt:
        for step in range(start_step + 1, steps + 1):
            last = step == steps
            is_log = step % log_every == 0 or last
            try:
                stats = one_step(step, True)
            except NonFiniteError as err:
                raise NonFiniteError(err.where, step) from None
            if group is not None and group.size > 1:
                interrupt.requested = group.any(interrupt.requested)
            is_save = save is not None and (step % save_every == 0 or last or interrupt.requested)
            log.add(stats)
            bar.update(1)
            if is_log:
                record = log.summarise(step)
                if on_log is not None:
                    on_log(record)
                log.append(record)
                if describe is not None:
                    bar.set_postfix_str(describe(record), refresh=False)
                    if not progress and (len(log.history) % print_every == 0 or last):
                        print(f"step {step}: {describe(record)}", flush=True)
            for period, action in every:
                if step % period == 0 or last:
                    action(step)
            if save is not None and (is_save or interrupt.requested):
                save(step)
            if interrupt.requested:
                break
    bar.close()
    return step


def fit_gan(G, D, opt_G, opt_D, objective, next_real, steps, log, *, z_dim, batch_size, z_fixed, real_spread,
            start_step=0, n_critic=1, view=None, ema=None, n_classes=None, mismatch_weight=0.0, on_log=None,
            probe=None, g_loss=None, part=None, **loop_options):
    """The GAN recipe: ``gan_step`` on ``next_real()`` and fresh noise at every step (after
    ``n_critic - 1`` extra D updates, each on its own batch), with npgan.health's checks at
    every log point. Returns the last completed step.

    Args:
        next_real: returns the next real batch on the device, (batch_size, C, H, W) in [-1, 1];
            a step takes ``n_critic`` of them.
        z_fixed, real_spread: the health checks' fixed noise (device) and real images' spread.
        view: what D sees (``npgan.gan.view``: augmentation, instance noise), in every update;
            told the step before it (``at_step``) and its statistics after (``after_step``,
            whose own statistics, e.g. the adaptive augmentation probability, are logged).
        ema: a ``npgan.gan.ema.WeightAverage`` of G, updated after every generator update.
        n_classes: a class-conditional GAN (npgan.models.conditional): ``next_real()`` returns
            (images, labels (batch_size,) on the device) and G draws the same labels.
        mismatch_weight: with ``n_classes``, D also sees each real batch with wrong classes (each
            drawn uniformly from the other classes) as fakes, this weight on that term
            (``npgan.gan.step.mismatch_loss``; 0: off).
        probe: a ``npgan.health.DiscriminatorProbe`` that adds, at every log point, D's mean output
            on fixed training and held-out real images (the overfitting signal) before the checks.
        g_loss: G's loss instead of the objective's (``npgan.gan.step.FeatureMatching``).
        part: data-parallel training (``npgan.gan.parallel``): the slice of the global batch this
            rank trains; the noise is drawn for the whole ``batch_size`` on every rank and sliced,
            as ``next_real`` slices the real batch.
        on_log(record): called after the health checks (e.g. TensorBoard).
        loop_options: passed to :func:`train_loop` (log_every, every, save, save_every, progress, desc).
    """
    def batch():
        """(real, z, labels, wrong): a real batch, G's input (noise, with the batch's labels one-hot)
        and the wrong classes D sees the real batch with (None when not used)."""
        z = backend.rng().standard_normal((batch_size, z_dim), dtype=np.float32)
        if part is not None:
            z = z[part]
        if not n_classes:
            return next_real(), z, None, None
        real, labels = next_real()
        wrong = None
        if mismatch_weight:                                                 # another class, each equally likely
            wrong = (labels + backend.rng().integers(1, n_classes, size=labels.shape)) % n_classes
        return real, with_labels(z, labels, n_classes), labels, wrong

    def one_step(step, check):
        if view is not None:
            view.at_step(step)
        for _ in range(n_critic - 1):                                       # the extra critic updates
            real, z, labels, wrong = batch()
            critic_step(G, D, opt_D, objective, real, z, check, view=view, labels=labels, wrong_labels=wrong,
                        mismatch_weight=mismatch_weight)
        real, z, labels, wrong = batch()
        stats = gan_step(G, D, opt_G, opt_D, objective, real, z, check, view=view, labels=labels,
                         wrong_labels=wrong, mismatch_weight=mismatch_weight, g_loss=g_loss)
        if view is not None:
            stats.update(view.after_step(stats))
        if ema is not None:
            ema.update(G)
        return stats

    def log_health(record):
        if probe is not None:
            record.update(probe(D))
        findings = health.check(log.history + [record], G, z_fixed, real_spread, record["step"],
                                d_probabilities=objective.outputs_are_logits)
        health.report(record, log.history[-1] if log.history else None, findings, warn)
        if on_log is not None:
            on_log(record)

    return train_loop(one_step, steps, log, start_step=start_step, on_log=log_health, describe=describe_gan,
                      **loop_options)


def describe_gan(record):
    """``loss_D 1.234  loss_G 0.987  D(x) 0.612  D(G(z)) 0.401  690 img/s``."""
    text = (f"loss_D {record['loss_D']:.3f}  loss_G {record['loss_G']:.3f}  D(x) {record['D_x']:.3f}  "
            f"D(G(z)) {record['D_G_z']:.3f}")
    return text + (f"  {record['img_per_s']:.0f} img/s" if "img_per_s" in record else "")
