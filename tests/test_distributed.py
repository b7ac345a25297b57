"""Data-parallel training: SyncBatchNorm against BatchNorm on the whole batch and against central
differences across ranks, a data-parallel step against the one-process step, and the command
line under ``mpiexec -n 2`` (skipped, saying so, where mpi4py or mpiexec is missing).

The in-process tests run the ranks as threads (``npgan.comm.ThreadGroup``); the command-line
tests start real MPI processes."""
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npgan import backend, checkpoint, layers as L
from npgan.comm import SINGLE, ThreadGroup, run_ranks
from npgan.gan import NonSaturating, gan_step
from npgan.gan.parallel import broadcast_model, bytes_per_step, gradient_averager, rank_slice, same_on_every_rank
from npgan.models import build_models
from npgan.optim import SGD

ROOT = Path(__file__).resolve().parents[1]


def host(a):
    return backend.asnumpy(a)


def _batchnorm_pair(c, ndim, dtype=np.float64, group=SINGLE):
    kind = (L.BatchNorm2d, L.SyncBatchNorm2d) if ndim == 4 else (L.BatchNorm1d, L.SyncBatchNorm1d)
    plain, sync = kind[0](c, dtype=dtype), kind[1](c, dtype=dtype, group=group)
    for layer in (plain, sync):
        layer.weight.data[...] = backend.to_device(np.linspace(0.5, 2.0, c))
        layer.bias.data[...] = backend.to_device(np.linspace(-0.3, 0.3, c))
    return plain, sync


def _sync_on_ranks(x, dout, ranks, ndim):
    """SyncBatchNorm's output, input gradient, parameter gradients (summed over the ranks) and
    running statistics when ``ranks`` threads each hold an equal slice of x and dout."""
    group = ThreadGroup(ranks)
    c, per = x.shape[1], x.shape[0] // ranks

    def rank(view):
        _, sync = _batchnorm_pair(c, ndim, group=view)
        rows = slice(view.rank * per, (view.rank + 1) * per)
        y = sync.forward(backend.to_device(x[rows]))
        dx = sync.backward(backend.to_device(dout[rows]))
        return (host(y), host(dx), host(sync.weight.grad), host(sync.bias.grad), host(sync.running_mean),
                host(sync.running_var))
    parts = run_ranks(group, rank)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            sum(p[2] for p in parts), sum(p[3] for p in parts), parts)


@settings(max_examples=15, deadline=None)
@given(ranks=st.integers(2, 3), per_rank=st.integers(1, 4), c=st.integers(1, 5), hw=st.integers(1, 4),
       ndim=st.sampled_from([2, 4]), seed=st.integers(0, 999))
def test_sync_batchnorm_equals_batchnorm_on_the_whole_batch(ranks, per_rank, c, hw, ndim, seed):
    """Forward, input gradient, parameter gradients and running statistics of the split batch
    equal those of BatchNorm on the concatenated batch (float64), on every rank alike. A random
    upstream gradient: sum(out) would hide the cross-batch terms."""
    rng = np.random.default_rng(seed)
    shape = (ranks * per_rank, c) + ((hw, hw) if ndim == 4 else ())
    if ndim == 2 and ranks * per_rank < 2:
        return
    x = rng.standard_normal(shape) * 3 + 2
    dout = rng.standard_normal(shape)
    plain, _ = _batchnorm_pair(c, ndim)
    y = host(plain.forward(backend.to_device(x)))
    dx = host(plain.backward(backend.to_device(dout)))
    y_s, dx_s, dgamma, dbeta, parts = _sync_on_ranks(x, dout, ranks, ndim)
    np.testing.assert_allclose(y_s, y, atol=1e-12)
    np.testing.assert_allclose(dx_s, dx, atol=1e-11)
    np.testing.assert_allclose(dgamma, host(plain.weight.grad), atol=1e-11)
    np.testing.assert_allclose(dbeta, host(plain.bias.grad), atol=1e-11)
    for p in parts:                                                   # running statistics: one value everywhere
        np.testing.assert_allclose(p[4], host(plain.running_mean), atol=1e-13)
        np.testing.assert_allclose(p[5], host(plain.running_var), atol=1e-12)


def test_sync_batchnorm_backward_passes_central_differences_across_ranks():
    """d/dx of the ranks' summed loss sum_r <w_r, SyncBN(x)_r>, each input perturbed on its own
    rank, against the backward (float64, central differences)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3, 2, 2)) + 1
    w = rng.standard_normal((6, 3, 2, 2))

    def loss(x):
        group = ThreadGroup(2)

        def rank(view):
            _, sync = _batchnorm_pair(3, 4, group=view)
            rows = slice(3 * view.rank, 3 * view.rank + 3)
            return float((host(sync.forward(backend.to_device(x[rows]))) * w[rows]).sum())
        return sum(run_ranks(group, rank))
    _, dx, _, _, _ = _sync_on_ranks(x, w, 2, 4)
    h = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (loss(up) - loss(down)) / (2 * h)
    np.testing.assert_allclose(dx, numeric, atol=1e-7)


def test_convert_sync_batchnorm_keeps_the_parameters_and_statistics():
    backend.seed(0)
    G, D = build_models("dcgan")
    G[1].running_mean[...] = 0.5
    before = {k: host(v).copy() for k, v in G.state_dict().items()}
    L.convert_sync_batchnorm(G, SINGLE)
    assert [type(m).__name__ for m in G if "BatchNorm" in type(m).__name__] == ["SyncBatchNorm1d", "SyncBatchNorm2d"]
    after = G.state_dict()
    assert before.keys() == after.keys() and all(np.array_equal(before[k], host(after[k])) for k in before)


def _data_parallel_steps(ranks, sync_bn, steps=3, batch=16, seed=0):
    """G's and D's weights after ``steps`` gan_steps (SGD) on ``ranks`` threads, each on its slice
    of the same global batches, gradients averaged; ranks=1 is the one-process step."""
    rng = np.random.default_rng(seed)
    reals = [rng.uniform(-1, 1, (batch, 1, 28, 28)).astype(np.float32) for _ in range(steps)]
    noises = [rng.standard_normal((batch, 100)).astype(np.float32) for _ in range(steps)]
    group = ThreadGroup(ranks)
    backend.seed(seed)
    models = build_models("dcgan")                        # built once: the threads share one random generator

    def rank(view):
        G, D = copy.deepcopy(models)
        if sync_bn:
            L.convert_sync_batchnorm(G, view)
            L.convert_sync_batchnorm(D, view)
        opt_G, opt_D = SGD(G.parameters(), lr=0.05), SGD(D.parameters(), lr=0.05)
        for model, opt in ((G, opt_G), (D, opt_D)):
            broadcast_model(view, model, opt)
            opt.gradient_sync = gradient_averager(view)
        rows = rank_slice(view, batch)
        losses = []
        for real, z in zip(reals, noises):
            stats = gan_step(G, D, opt_G, opt_D, NonSaturating(), backend.to_device(real[rows]),
                             backend.to_device(z[rows]), check=True)
            losses.append(float(stats["loss_D"]))
        return {**{f"G.{k}": host(v) for k, v in G.state_dict().items()},
                **{f"D.{k}": host(v) for k, v in D.state_dict().items()}}, losses
    return run_ranks(group, rank)


def test_two_ranks_with_sync_batchnorm_take_the_one_process_step():
    """N ranks at batch B with SyncBatchNorm train as one process at batch N*B (weights after 3
    steps to float32 rounding, every rank alike); with each rank's own BatchNorm they do not."""
    (one, _), = _data_parallel_steps(1, sync_bn=False)
    (two_a, _), (two_b, _) = _data_parallel_steps(2, sync_bn=True)
    (plain, _), _ = _data_parallel_steps(2, sync_bn=False)
    weights = [k for k in one if "running" not in k]
    # relative to each tensor's scale (at least 0.1: the biases before a BatchNorm get no gradient
    # but rounding noise, and stay near 0)
    error = lambda other: max(np.abs(one[k] - other[k]).max() / (np.abs(one[k]).max() + 0.1) for k in weights)
    assert all(np.array_equal(two_a[k], two_b[k]) for k in one)          # the ranks hold the same model
    assert error(two_a) < 2e-5
    assert error(plain) > 100 * error(two_a), (error(plain), error(two_a))   # BatchNorm on half a batch differs


def test_the_helpers_split_average_and_check():
    group = ThreadGroup(3)
    assert [rank_slice(v, 12) for v in group.ranks()] == [slice(0, 4), slice(4, 8), slice(8, 12)]
    with pytest.raises(ValueError, match="cannot be split evenly over 3 processes"):
        rank_slice(group.ranks()[0], 10)

    def disagree(view):
        same_on_every_rank(view, "the configuration", {"lr": 1e-3 if view.rank == 2 else 2e-4})
    with pytest.raises(ValueError, match="rank 2 differ from rank 0"):
        run_ranks(ThreadGroup(3), disagree)
    G, D = build_models("dcgan")
    assert bytes_per_step(G, D) == 4 * sum(int(p.data.size) for m in (G, D) for p in m.parameters())


# ---- the command line under mpiexec ----------------------------------------------------------
HAS_MPI = importlib.util.find_spec("mpi4py") is not None and shutil.which("mpiexec") is not None
needs_mpi = pytest.mark.skipif(not HAS_MPI, reason="mpi4py or mpiexec missing (pip install mpi4py mpich)")
ARGS = ["mnist", "--steps", "6", "--log-every", "2", "--checkpoint-every", "3", "--sample-every", "3",
        "--no-progress", "--no-eval"]


def _train(out, *extra, processes=2):
    env = dict(os.environ, NPGAN_OFFLINE="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "npgan.train", *ARGS, "--out", str(out), *extra]
    if processes > 1:
        cmd = ["mpiexec", "-n", str(processes), *cmd, "--distributed"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _losses(out):
    return [(r["loss_D"], r["loss_G"]) for r in map(json.loads, (Path(out) / "metrics.jsonl").read_text().splitlines())]


@needs_mpi
def test_mpiexec_trains_one_run_that_matches_the_one_process_run(tmp_path):
    two = _train(tmp_path / "two", "--sync-bn")
    assert two.returncode == 0, two.stderr
    first = two.stdout.splitlines()
    assert any(line.startswith("data parallel: 2 processes, global batch 64 (32 per process)") for line in first)
    assert two.stdout.count("trained 6 steps") == 1                      # rank 0 alone speaks
    assert (tmp_path / "two" / "checkpoint.npz").is_file() and len(_losses(tmp_path / "two")) == 3
    one = _train(tmp_path / "one", processes=1)
    assert one.returncode == 0, one.stderr
    plain = _train(tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    ref = np.array(_losses(tmp_path / "one"))
    assert np.abs(np.array(_losses(tmp_path / "two")) - ref).max() < 1e-3
    assert np.abs(np.array(_losses(tmp_path / "plain")) - ref).max() > 3e-3   # each process's own BatchNorm


@needs_mpi
def test_a_resumed_distributed_run_is_bitwise_the_uninterrupted_one(tmp_path):
    assert _train(tmp_path / "whole", "--sync-bn").returncode == 0
    split = _train(tmp_path / "split", "--sync-bn", "--steps", "3")
    assert split.returncode == 0, split.stderr
    resumed = _train(tmp_path / "split", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    whole, split = (checkpoint.load_checkpoint(tmp_path / n / "checkpoint.npz") for n in ("whole", "split"))
    for model in ("G", "D"):
        for key in whole[model]:
            np.testing.assert_array_equal(whole[model][key], split[model][key], err_msg=f"{model}.{key}")
    wrong = _train(tmp_path / "split", "--resume", "--steps", "9", processes=1)
    assert wrong.returncode == 2 and "trained on 2 processes" in wrong.stderr


@needs_mpi
@pytest.mark.parametrize("extra, message", [(["--batch-size", "63"], "cannot be split evenly over 2 processes"),
                                            (["--augment", "translation"], "--augment does not combine with "
                                                                           "--distributed")])
def test_mpiexec_refuses_a_run_it_cannot_split(tmp_path, extra, message):
    done = _train(tmp_path / "r", *extra)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert not (tmp_path / "r").exists()


def test_distributed_outside_mpiexec_or_sync_bn_alone_exit_2(tmp_path, capsys, monkeypatch):
    from npgan import train
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    with pytest.raises(SystemExit) as exc:
        train.main(ARGS + ["--out", str(tmp_path / "r"), "--sync-bn"])
    assert exc.value.code == 2 and "--sync-bn synchronises BatchNorm across the processes" in capsys.readouterr().err
    if HAS_MPI:                                                        # one process, no mpiexec
        with pytest.raises(SystemExit) as exc:
            train.main(ARGS + ["--out", str(tmp_path / "r"), "--distributed"])
        assert exc.value.code == 2 and "this is a single process" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "mpi4py", None)                   # as where mpi4py is not installed
    with pytest.raises(SystemExit) as exc:
        train.main(ARGS + ["--out", str(tmp_path / "r"), "--distributed"])
    assert exc.value.code == 2 and "pip install mpi4py mpich" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_single_process_run_never_imports_mpi4py(tmp_path):
    code = ("import sys; from npgan import train; "
            f"rc = train.main({ARGS + ['--steps', '2', '--out', str(tmp_path / 'r')]!r}); "
            "print(rc, 'mpi4py' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, NPGAN_OFFLINE="1"))
    assert done.stdout.strip().splitlines()[-1] == "0 False", done.stdout + done.stderr
