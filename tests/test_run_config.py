"""A run's configuration without the command line (``npgan.gan.config``): each objective's
published defaults, the refused combinations, a resumed run's settings and the run's length."""
import pytest

from npgan import __version__
from npgan.gan.config import (BEFORE_SETTING, DEFAULT_STEPS, MISMATCH_WEIGHT, RUN_DEFAULTS, ConfigError,
                              new_run_settings, resumed_run_settings, run_config, run_length)


def new(**given):
    return new_run_settings(given, "mnist", "numpy")


def saved_config(**given):
    """A config as a run directory saves it (a checkpoint's config), 2 steps long."""
    config = run_config(new(**given), out="runs/x", data_dir=None, sample_every=250, checkpoint_every=500,
                        log_every=50)
    run_length(config, n_train=4500, steps=2)
    return config


# *** a new run ***
def test_a_new_run_takes_the_fixed_defaults_and_the_objectives():
    run = new()
    assert list(run) == [*RUN_DEFAULTS, "dataset", "optimizer"]
    assert run["model"] == "dcgan" and run["loss"] == "ns" and run["batch_size"] == 64 and run["seed"] == 0
    assert (run["optimizer"], run["lr"], run["beta1"], run["beta2"], run["n_critic"]) == ("adam", 2e-4, 0.5, 0.999, 1)
    assert run["clip"] is None and run["gp_weight"] is None and run["lr_d"] is None
    assert run["dataset"] == "mnist" and run["backend"] == "numpy"
    assert run["conditional_batchnorm"] is False and run["mismatch_weight"] is None and run["augment"] is None


def test_wgan_trains_with_rmsprop_five_critic_updates_and_clipping():
    run = new(loss="wgan")
    assert run["optimizer"] == "rmsprop" and run["lr"] == 5e-5 and run["n_critic"] == 5 and run["clip"] == 0.01
    assert run["beta1"] is None and run["beta2"] is None and run["gp_weight"] is None


def test_wgan_gp_trains_with_adam_betas_0_09_and_a_penalty_of_10():
    run = new(loss="wgan-gp")
    assert run["optimizer"] == "adam" and run["lr"] == 1e-4 and (run["beta1"], run["beta2"]) == (0.0, 0.9)
    assert run["gp_weight"] == 10 and run["n_critic"] == 5 and run["clip"] is None


def test_a_given_setting_wins_over_the_objectives():
    run = new(loss="wgan-gp", lr=3e-4, gp_weight=1.0, n_critic=2, seed=7, beta1=None)
    assert (run["lr"], run["gp_weight"], run["n_critic"], run["seed"]) == (3e-4, 1.0, 2, 7)
    assert run["beta1"] == 0.0                                  # None: not given
    assert new(loss="wgan", clip=0.05)["clip"] == 0.05


def test_conditional_and_augment_defaults():
    run = new(conditional=True)
    assert run["conditional_batchnorm"] is True and run["mismatch_weight"] == MISMATCH_WEIGHT
    assert new(conditional=True, conditional_batchnorm=False, mismatch_weight=0.0)["conditional_batchnorm"] is False
    run = new(augment="translation", augment_p="auto")
    assert (run["augment"], run["augment_p"], run["augment_strength"], run["augment_fill"]) == \
        ("translation", "auto", 1.0, -1.0)
    run = new(augment="None")
    assert run["augment"] is None and run["augment_p"] is None


@pytest.mark.parametrize("given, message", [
    ({"loss": "ns", "clip": 0.1}, "--clip applies to --loss wgan (weight clipping), not --loss ns"),
    ({"loss": "wgan", "beta1": 0.5}, "--beta1 is Adam's; --loss wgan trains with rmsprop"),
    ({"loss": "lsgan", "gp_weight": 1.0}, "--gp-weight applies to --loss wgan-gp or r1 (a gradient penalty), "
                                          "not --loss lsgan"),
    ({"loss": "wgan-gp", "spectral_norm": True}, "--spectral-norm does not combine with --loss wgan-gp"),
    ({"loss": "r1", "conditional": True}, "--conditional does not combine with --loss r1"),
    ({"minibatch_std": True, "batch_size": 6}, "--minibatch-std compares the images of groups of 4: --batch-size "
                                               "must be a multiple of 4, got 6"),
    ({"loss": "hinge", "label_smoothing": 0.1}, "--label-smoothing applies to the cross-entropy objectives"),
    ({"mismatch_weight": 0.3}, "--mismatch-weight is a setting of a class-conditional GAN: it needs --conditional"),
    ({"augment_fill": 0.0}, "--augment-fill is a setting of --augment: give a policy too"),
    ({"model": "mlp", "width": 96}, "--width sets the channels of the dcgan networks; --model mlp is fully connected"),
])
def test_a_combination_that_does_not_apply_is_refused(given, message):
    with pytest.raises(ConfigError) as exc:
        new(**given)
    assert str(exc.value).startswith(message) and isinstance(exc.value, ValueError)


# *** a resumed run ***
def test_a_resumed_run_keeps_its_saved_settings():
    saved = saved_config(loss="wgan-gp", lr=3e-4, seed=5, augment="cutout")
    run = resumed_run_settings(saved, {"lr": 3e-4, "seed": None, "dataset": "mnist"})   # repeated or not given
    assert list(run) == [*RUN_DEFAULTS, "dataset", "steps", "optimizer"]
    assert {key: saved[key] for key in run} == run
    assert run["lr"] == 3e-4 and run["seed"] == 5 and run["steps"] == 2 and run["augment_fill"] == -1.0


def test_a_setting_missing_from_an_old_config_takes_its_value_from_before_the_setting():
    saved = saved_config(model="mlp", lr=1e-3)
    for key in [*BEFORE_SETTING, "loss", "beta2", "n_critic", "conditional_batchnorm", "mismatch_weight"]:
        del saved[key]
    run = resumed_run_settings(saved, {})
    assert {key: run[key] for key in BEFORE_SETTING} == BEFORE_SETTING
    assert run["loss"] == "ns" and run["optimizer"] == "adam" and (run["beta1"], run["beta2"]) == (0.5, 0.999)
    assert run["n_critic"] == 1 and run["conditional_batchnorm"] is False and run["mismatch_weight"] is None
    assert run["model"] == "mlp" and run["lr"] == 1e-3


def test_a_differing_explicit_setting_is_refused():
    saved = saved_config()
    with pytest.raises(ConfigError) as exc:
        resumed_run_settings(saved, {"batch_size": 16}, out="runs/x")
    assert str(exc.value) == ("--resume: the run in runs/x was trained with --batch-size 64, not 16; leave it out "
                              "to keep the saved value, or start a new run with --out")
    with pytest.raises(ConfigError, match="^--resume: the run in the default --out was trained without --conditional;"):
        resumed_run_settings(saved, {"conditional": True})
    with pytest.raises(ConfigError, match="trained with dataset mnist, not fashion-mnist"):
        resumed_run_settings(saved, {"dataset": "fashion-mnist"})


# *** the whole configuration and its length ***
def test_run_config_adds_the_run_directory_the_noise_size_and_the_classes():
    config = run_config(new(conditional=True), out="runs/c", data_dir="/data", sample_every=10, checkpoint_every=20,
                        log_every=5)
    assert list(config)[-8:] == ["out", "data_dir", "z_dim", "n_classes", "sample_every", "checkpoint_every",
                                 "log_every", "npgan_version"]
    assert (config["out"], config["data_dir"], config["z_dim"], config["n_classes"]) == ("runs/c", "/data", 100, 10)
    assert config["npgan_version"] == __version__
    assert saved_config()["n_classes"] is None


def test_run_length_from_epochs_steps_or_the_default():
    config = dict(new(batch_size=64))                         # 4,500 images: 70 whole batches an epoch
    run_length(config, n_train=4500, epochs=2)
    assert (config["steps"], config["epochs"]) == (140, 2.0)
    run_length(config, n_train=4500, epochs=0.001)
    assert config["steps"] == 1                                 # at least one step
    del config["steps"]
    run_length(config, n_train=4500)
    assert config["steps"] == DEFAULT_STEPS and config["epochs"] == round(DEFAULT_STEPS / 70, 2)
    run_length(config, n_train=4500, steps=35)
    assert (config["steps"], config["epochs"]) == (35, 0.5)
    resumed = resumed_run_settings(saved_config(), {})
    run_length(resumed, n_train=4500, start_step=2)             # a resumed run keeps its saved length
    assert resumed["steps"] == 2


def test_run_length_refuses_a_batch_larger_than_the_data_and_a_length_short_of_the_checkpoint():
    with pytest.raises(ConfigError, match="^--batch-size 64 is larger than the 50 training images$"):
        run_length(dict(new()), n_train=50)
    with pytest.raises(ConfigError, match=r"^--resume: the checkpoint is at step 10, past --steps 5$"):
        run_length(dict(new()), n_train=4500, steps=5, start_step=10)
