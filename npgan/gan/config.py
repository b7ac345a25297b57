"""A training run's configuration: the plain dict a run directory's ``config.json`` holds (and
its checkpoint carries), built the same way by every front end (``python -m npgan.train``, a
notebook)::

    settings = new_run_settings({"loss": "wgan-gp"}, "mnist", "numpy")   # or resumed_run_settings(saved, given)
    config = run_config(settings, out="runs/x", data_dir=None, sample_every=250, checkpoint_every=500,
                        log_every=50)
    run_length(config, n_train=60000, epochs=5)                           # config["steps"], config["epochs"]

Its keys, in the order ``config.json`` lists them:

    model ... limit    the settings that define the run (``RUN_DEFAULTS``), then ``dataset``
    optimizer          the objective's: ``adam``, or ``rmsprop`` for wgan
    out, data_dir      the run directory and the data set's folder (None: the usual places)
    z_dim, n_classes   G's noise size (the model's) and the classes of a conditional run (else None)
    sample_every, checkpoint_every, log_every      steps between grids, checkpoints, log lines
    npgan_version      the version that wrote it
    steps, epochs      the length (``run_length``)

(A resumed run's ``steps``, its saved length, come before ``optimizer``; ``python -m npgan.train``
adds ``data``, where the images came from, at the end.)

**Where each default comes from.** A setting given as None takes its default:
``RUN_DEFAULTS`` names the fixed ones (a DCGAN, the non-saturating loss, batches of 64, seed 0,
NumPy; every switch off). Those it leaves None are the objective's published settings
(``npgan.gan.objectives``: ``Objective.defaults`` for the optimizer, lr,
betas and n_critic; weight clipping at 0.01 for wgan; ``Objective.penalty_weight`` for
gp_weight), or stay None where they do not apply: a setting the objective does not take is
refused, as are combinations that cannot train (a gradient penalty with spectral
normalisation, the minibatch standard deviation or a projection discriminator). A
conditional run conditions G's BatchNorms and shows D real images with wrong classes at
``MISMATCH_WEIGHT``; an augmentation policy applies each transform with p 1, strength 1 and
fill -1 (a digit's background). A run is ``DEFAULT_STEPS`` long unless given steps or epochs.

**Resuming.** A resumed run keeps the settings it was saved with: a setting given that differs
from the saved one is refused, one left out (None) keeps the saved value. A setting missing
from a config saved before it existed takes the value such runs trained with
(``BEFORE_SETTING``; a run saved before objectives were a setting trained ns with Adam
(0.5, 0.999) and one D update per G update; one saved before conditional BatchNorm and the
mismatch term conditioned G at its input only and showed D no wrong classes). Its length may
be raised: ``steps`` is the total, counted from step 0.

Every refusal raises :class:`ConfigError` with the message ``python -m npgan.train`` prints
(it names the command-line flags, e.g. ``--clip applies to --loss wgan ...``).
"""
from .. import __version__
from ..data import batches_per_epoch, class_names
from ..models import MODELS
from .objectives import OBJECTIVES

# Of the levers measured on the 5,000-digit MNIST subset (docs/SMALL_DATA.md), twice the steps
# of 2,500 raised recognisability and lowered the Frechet distance and the class KL; augmentation,
# minibatch std, feature matching and a slower D did not raise recognisability at 2,500 steps.
DEFAULT_STEPS = 5000
# A conditional D also sees real images with wrong classes as fakes, at this weight: on
# Fashion-MNIST it raised the class accuracy after 2,500 steps from 87.9% to 93.9% (docs/TRAINING.md).
MISMATCH_WEIGHT = 0.5

# Settings that define the run; a resumed run takes them from its checkpoint. None: the objective's
# published setting (fill_objective_settings), or a default that depends on other settings.
RUN_DEFAULTS = {"model": "dcgan", "loss": "ns", "batch_size": 64, "lr": None, "lr_d": None, "beta1": None,
                "beta2": None, "n_critic": None, "clip": None, "gp_weight": None, "label_smoothing": None,
                "instance_noise": None, "ema": None, "seed": 0, "backend": "numpy", "spectral_norm": False,
                "conditional": False, "conditional_batchnorm": None, "mismatch_weight": None, "augment": None,
                "augment_p": None, "augment_strength": None, "augment_fill": None, "minibatch_std": False,
                "feature_matching": False, "limit": None, "width": None, "processes": 1, "sync_bn": False}
# What a run saved before a setting existed trained with: a resumed run keeps it so.
BEFORE_SETTING = {"augment": None, "augment_p": None, "augment_strength": None, "augment_fill": None,
                  "minibatch_std": False, "feature_matching": False, "limit": None, "width": None, "processes": 1,
                  "sync_bn": False}


class ConfigError(ValueError):
    """A setting, or a combination of settings, that a run cannot train with."""


def _flag(key):
    return key if key == "dataset" else "--" + key.replace("_", "-")


# *** a new run ***
def new_run_settings(given, dataset, backend):
    """The settings of a new run: ``given`` (``RUN_DEFAULTS``' keys; a missing or None one takes
    its default) on ``dataset`` with ``backend``, every default filled in as the module docstring
    says. Raises ConfigError."""
    run = {key: given[key] if given.get(key) is not None else default for key, default in RUN_DEFAULTS.items()}
    run["backend"] = backend
    run["dataset"] = dataset
    for key in ("conditional_batchnorm", "mismatch_weight"):
        if run[key] and not run["conditional"]:
            raise ConfigError(f"{_flag(key)} is a setting of a class-conditional GAN: it needs --conditional")
    run["conditional_batchnorm"] = bool(run["conditional"] and run["conditional_batchnorm"] is not False)
    augment_settings(run)
    if run["conditional"] and run["mismatch_weight"] is None:
        run["mismatch_weight"] = MISMATCH_WEIGHT
    fill_objective_settings(run)
    return run


def augment_settings(run):
    """Normalise the augmentation settings of a new run in place: none (every augment_* None) or
    a policy with its p, strength and fill filled in; refuse augment_* settings without a policy."""
    if run["augment"] is not None and run["augment"].strip().lower() == "none":
        run["augment"] = None
    extras = [k for k in ("augment_p", "augment_strength", "augment_fill") if run[k] is not None]
    if run["augment"] is None:
        if extras:
            raise ConfigError(f"{_flag(extras[0])} is a setting of --augment: give a policy too")
        return
    run["augment_p"] = 1.0 if run["augment_p"] is None else run["augment_p"]
    run["augment_strength"] = 1.0 if run["augment_strength"] is None else run["augment_strength"]
    run["augment_fill"] = -1.0 if run["augment_fill"] is None else run["augment_fill"]


# Settings whose per-sample draws or batch-wide statistics data-parallel training does not split
# across the processes (npgan.gan.parallel), so a run on N processes would not be the same run.
NOT_DISTRIBUTED = ("augment", "instance_noise", "ema", "minibatch_std", "feature_matching", "conditional")


def distributed_settings(run):
    """Refuse what data-parallel training (``processes`` > 1) cannot split, and --sync-bn alone."""
    processes = run.get("processes") or 1
    if run.get("sync_bn") and processes < 2:
        raise ConfigError("--sync-bn synchronises BatchNorm across the processes of --distributed (mpiexec -n N)")
    if processes < 2:
        return
    for key in NOT_DISTRIBUTED:
        if run.get(key):
            raise ConfigError(f"{_flag(key)} does not combine with --distributed: its per-sample draws or batch-wide "
                              f"statistics are not split across the processes")
    if run["batch_size"] % processes:
        raise ConfigError(f"--distributed: the global batch of {run['batch_size']} images cannot be split evenly "
                          f"over {processes} processes; give a --batch-size that is a multiple of {processes}")


def fill_objective_settings(run):
    """Set ``run['optimizer']`` and fill the settings left None from the objective's published
    ones (lr, betas, n_critic, clip, gp_weight), in place; refuse those that do not apply to it."""
    objective = OBJECTIVES[run["loss"]]
    defaults = objective.defaults
    run["optimizer"] = defaults["optimizer"]
    for key in ("lr", "beta1", "beta2", "n_critic"):
        if run[key] is None:
            run[key] = defaults[key]
    if run["optimizer"] != "adam":
        for key in ("beta1", "beta2"):
            if run[key] is not None:
                raise ConfigError(f"{_flag(key)} is Adam's; --loss {run['loss']} trains with {run['optimizer']}")
    if run["loss"] == "wgan":
        run["clip"] = 0.01 if run["clip"] is None else run["clip"]
    elif run["clip"] is not None:
        raise ConfigError(f"--clip applies to --loss wgan (weight clipping), not --loss {run['loss']}")
    if objective.penalty_weight is not None:
        run["gp_weight"] = objective.penalty_weight if run["gp_weight"] is None else run["gp_weight"]
    elif run["gp_weight"] is not None:
        raise ConfigError(f"--gp-weight applies to --loss wgan-gp or r1 (a gradient penalty), not --loss {run['loss']}")
    if run["spectral_norm"] and objective.penalty_weight is not None:
        raise ConfigError(f"--spectral-norm does not combine with --loss {run['loss']}: its gradient penalty needs "
                          f"a second-order pass that SpectralNorm does not provide")
    if run.get("minibatch_std") and objective.penalty_weight is not None:
        raise ConfigError(f"--minibatch-std does not combine with --loss {run['loss']}: its gradient penalty is per "
                          f"sample, and the minibatch standard deviation mixes the samples of a group")
    if run.get("minibatch_std") and run["batch_size"] % 4:
        raise ConfigError(f"--minibatch-std compares the images of groups of 4: --batch-size must be a multiple "
                          f"of 4, got {run['batch_size']}")
    distributed_settings(run)
    if run.get("width") is not None and run["model"] != "dcgan":
        raise ConfigError(f"--width sets the channels of the dcgan networks; --model {run['model']} is fully connected")
    if run.get("feature_matching") and (run["conditional"] or run["model"] != "dcgan"):
        raise ConfigError("--feature-matching reads the features of the dcgan discriminator; it does not apply to "
                          + ("--conditional (a projection discriminator)" if run["conditional"] else
                             f"--model {run['model']}"))
    if run["conditional"] and objective.penalty_weight is not None:
        raise ConfigError(f"--conditional does not combine with --loss {run['loss']}: its gradient penalty needs a "
                          f"second-order pass that the projection discriminator does not provide")
    if run["label_smoothing"] is not None and not objective.real_target_applies:
        raise ConfigError(f"--label-smoothing applies to the cross-entropy objectives (ns, minimax, r1), not "
                          f"--loss {run['loss']}, whose D has no target probability")


# *** a resumed run ***
def resumed_run_settings(saved, given, out="the default --out"):
    """The settings of a run resumed from ``saved`` (its config): the saved ones, those missing
    from an old config as such runs trained (``BEFORE_SETTING``), the objective's filled in, and
    its saved ``steps``. ``given`` (``RUN_DEFAULTS``' keys and ``dataset``; None: not given) may
    only repeat them; a differing one raises ConfigError naming the run directory as ``out``."""
    run = {key: saved.get(key, RUN_DEFAULTS.get(key)) for key in list(RUN_DEFAULTS) + ["dataset"]}
    if "loss" not in saved:                     # trained before objectives were a setting: ns, Adam (0.5, 0.999)
        run.update(beta2=saved.get("beta2", 0.999), n_critic=1)
    run["conditional_batchnorm"] = bool(saved.get("conditional_batchnorm"))   # G conditioned at its input only before
    run["mismatch_weight"] = saved.get("mismatch_weight")                   # and D shown no wrong classes
    for key, before in BEFORE_SETTING.items():
        run[key] = saved.get(key, before)
    for key in run:
        value = given.get(key)
        if value is not None and value != run[key]:
            trained = (f"{'with' if run[key] else 'without'} {_flag(key)}" if isinstance(run[key], bool)
                       else f"with {_flag(key)} {run[key]}, not {value}")
            raise ConfigError(f"--resume: the run in {out} was trained {trained}; "
                              f"leave it out to keep the saved value, or start a new run with --out")
    run["steps"] = saved["steps"]
    fill_objective_settings(run)
    return run


# *** the whole configuration ***
def run_config(settings, *, out, data_dir, sample_every, checkpoint_every, log_every):
    """The run's configuration: ``settings`` (``new_run_settings`` or ``resumed_run_settings``)
    with its run directory ``out``, the data folder ``data_dir`` (None: the usual places), G's
    noise size and the conditional run's number of classes, and the output intervals."""
    return dict(settings, out=str(out), data_dir=data_dir, z_dim=MODELS[settings["model"]].Z_DIM,
                n_classes=len(class_names(settings["dataset"])) if settings["conditional"] else None,
                sample_every=sample_every, checkpoint_every=checkpoint_every, log_every=log_every,
                npgan_version=__version__)


def run_length(config, n_train, steps=None, epochs=None, start_step=0):
    """Set ``config['steps']`` (the total, counted from step 0) and ``config['epochs']`` in place,
    for ``n_train`` training images: ``steps``, else ``epochs`` passes over the data (at least
    one step), else the saved length of a resumed run, else ``DEFAULT_STEPS``. Raises
    ConfigError when a batch is larger than the data or the length is short of ``start_step``."""
    per_epoch = batches_per_epoch(n_train, config["batch_size"])
    if per_epoch == 0:
        raise ConfigError(f"--batch-size {config['batch_size']} is larger than the {n_train:,} training images")
    if steps is not None:
        config["steps"] = steps
    elif epochs is not None:
        config["steps"] = max(1, round(epochs * per_epoch))
    elif "steps" not in config:
        config["steps"] = DEFAULT_STEPS
    if config["steps"] < start_step:
        raise ConfigError(f"--resume: the checkpoint is at step {start_step}, past --steps {config['steps']}")
    config["epochs"] = round(config["steps"] / per_epoch, 2)
