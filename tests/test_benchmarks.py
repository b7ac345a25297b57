"""The benchmark scripts still run and print their tables (tiny batch, one round; no timing is asserted)."""
import importlib.util
import shutil
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def run_benchmark(script, *args):
    env = dict(os.environ, NPGAN_BACKEND="numpy")
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--backend", "numpy", "--threads", "1",
                           "--rounds", "1", *args], cwd=BENCHMARKS, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def table_rows(out, first_cell):
    """Cells of the markdown rows whose first cell starts with ``first_cell``."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| " + first_cell)]


@pytest.mark.parametrize("torch_wanted", [True, False])
def test_bench_step_prints_the_step_table_ratio_and_breakdown(torch_wanted):
    if torch_wanted and not HAVE_TORCH:
        pytest.skip("PyTorch not installed")
    out = run_benchmark("bench_step.py", "--batch", "4", "--breakdown", *([] if torch_wanted else ["--no-torch"]))
    (row,) = table_rows(out, "eager, batch 4")
    npgan_ms, torch_ms, ratio, frozen_ms, frozen_ratio = row[1:6]
    assert float(npgan_ms) > 0
    if torch_wanted:
        assert abs(float(ratio.rstrip("x")) - float(npgan_ms) / float(torch_ms)) < 0.01
        assert abs(float(frozen_ratio.rstrip("x")) - float(npgan_ms) / float(frozen_ms)) < 0.01
    else:
        assert torch_ms == ratio == frozen_ms == frozen_ratio == "-"
    assert "kernels " in out                                          # which BLAS kernel set ran is reported
    layers = table_rows(out, "G[") + table_rows(out, "D[")
    assert any("Conv2d" in r[0] for r in layers) and any("BatchNorm" in r[0] for r in layers)
    (total,) = table_rows(out, "total (synchronised")
    assert float(total[1]) >= sum(float(r[1]) for r in layers) * 0.999
    (memory,) = [r for r in table_rows(out, "4 ") if len(r) == 5]     # batch | peak | torch peak | RSS | torch RSS
    assert float(memory[1]) > 0
    if Path("/proc/self/clear_refs").exists():
        assert float(memory[3]) > 0 and (float(memory[4]) > 0 if torch_wanted else memory[4] == "-")


def test_bench_layers_prints_every_dcgan_layer():
    out = run_benchmark("bench_layers.py", "--batch", "4", *([] if HAVE_TORCH else ["--no-torch"]))
    names = ["Conv2d 1->64", "Conv2d 64->128", "ConvT2d 128->64", "ConvT2d 64->1", "BatchNorm2d 128",
             "BatchNorm2d 64", "BatchNorm1d 6272", "LeakyReLU", "Linear 100->6272", "Linear 6272->1"]
    for name in names:
        (row,) = table_rows(out, name)
        assert row[1] == "4" and float(row[2]) > 0
        assert re.fullmatch(r"\d+\.\d+x", row[4]) if HAVE_TORCH else row[4] == "-"


def test_inpaint_natural_diagnostics_prints_its_four_parts(tmp_path):
    """The script docs/INPAINTING.md quotes, on a tiny natural-crop run of each kind it reads."""
    env = dict(os.environ, NPGAN_BACKEND="numpy", OPENBLAS_NUM_THREADS="1")
    runs = tmp_path / "runs"
    for method, extra in (("context-encoder-l2", ["--steps", "2"]), ("latent", ["--steps", "2", "--latent-steps", "3"])):
        subprocess.run([sys.executable, "-m", "npgan.inpaint", "train", "--dataset", "natural", "--method", method,
                        "--batch-size", "4", "--width", "4", "--runs-dir", str(runs), "--name", method,
                        "--no-progress", *extra], env=env, check=True, capture_output=True,
                       cwd=BENCHMARKS.parent, timeout=300)
    done = subprocess.run([sys.executable, str(BENCHMARKS / "inpaint_natural_diagnostics.py"),
                           str(runs / "context-encoder-l2"), "--n", "8", "--train-crops", "300",
                           "--latent", str(runs / "latent"), "--restarts", "2"],
                          cwd=BENCHMARKS.parent, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for part in ("1. mean hole PSNR", "2. against the biharmonic fill", "3. the best linear fill", "4. the detail"):
        assert part in out, part
    rows = {line[:32].strip(): line[32:].split() for line in out.split("4. the detail")[1].splitlines()[2:]}
    assert set(rows) == {"one z search", "mean of 2 z searches"}
    biharmonic = float(out.split("biharmonic fill (npgan.inpainting_ops.blend.biharmonic_solve)")[1].split()[0])
    for cells in rows.values():
        pasted, poisson, rho, beta, best = map(float, cells)
        assert -1 <= rho <= 1 and 0 < pasted < 60 and 0 < poisson < 60
        assert best >= biharmonic - 0.5          # the least-squares weight cannot make the fill much worse


def test_compare_objectives_trains_scores_and_tables_each_setting(tmp_path):
    """Two settings for two steps: each run carries its setting's flags, and the table and
    results.json hold one row per setting (``ns`` scored from the ``ns + ema`` run's own G)."""
    settings = ["ns", "minimax + slow D (lr-d 5e-5)"]
    done = subprocess.run([sys.executable, str(BENCHMARKS / "compare_objectives.py"), "--settings", *settings,
                           "--seeds", "0", "--steps", "2", "--work-dir", str(tmp_path / "work"),
                           "--figure", str(tmp_path / "grid.png")],
                          env=dict(os.environ, NPGAN_BACKEND="numpy", OPENBLAS_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    work = tmp_path / "work"
    configs = {d.name: json.loads((d / "config.json").read_text()) for d in work.iterdir() if d.is_dir()}
    assert configs["minimax-slow-d-lr-d-5e-5-s0"]["loss"] == "minimax"
    assert configs["minimax-slow-d-lr-d-5e-5-s0"]["lr_d"] == 5e-5
    assert configs["ns-ema-0-999-s0"]["ema"] == 0.999 and configs["ns-s0"] == configs["ns-ema-0-999-s0"]
    results = json.loads((work / "results.json").read_text())
    assert sorted(results) == sorted(settings + ["ns + ema 0.999"])     # the run ns is read from has its row
    own, averaged = (json.loads((work / d / "metrics.json").read_text()) for d in ("ns-s0", "ns-ema-0-999-s0"))
    assert own["frechet_distance"] != averaged["frechet_distance"]       # G's own weights, not the average
    for name in settings:
        (row,) = table_rows(done.stdout, name + " |")
        assert row[1] == "0" and float(row[2].split()[0]) > 0
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_compare_levers_trains_scores_and_tables_each_setting(tmp_path):
    """Two settings for two steps: each run carries its setting's flags, is scored twice (G and the
    average) with recognisability and the overfitting signal, and the table has both rows of each."""
    settings = ["baseline", "translation,cutout p auto"]
    done = subprocess.run([sys.executable, str(BENCHMARKS / "compare_levers.py"), "--settings", *settings,
                           "--seeds", "0", "--steps", "2", "--jobs", "1", "--work-dir", str(tmp_path / "work"),
                           "--figure", str(tmp_path / "grid.png")],
                          env=dict(os.environ, NPGAN_BACKEND="numpy", NPGAN_OFFLINE="1"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    work = tmp_path / "work"
    config = json.loads((work / "translation-cutout-p-auto-s0" / "config.json").read_text())
    assert config["augment"] == "translation,cutout" and config["augment_p"] == "auto" and config["ema"] == 0.999
    scores = json.loads((work / "baseline-s0" / "scores.json").read_text())
    assert 0 <= scores["own"]["recognisability"] <= 1 and -1 <= scores["overfit_gap"] <= 1
    assert scores["own"]["frechet_distance"] != scores["ema"]["frechet_distance"]
    for name in settings + [s + " + ema" for s in settings]:
        (row,) = table_rows(done.stdout, name + " |")
        assert row[1] == "0" and row[2].endswith("%")
    assert (tmp_path / "grid.png").stat().st_size > 0


@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="mpiexec missing (pip install mpi4py mpich)")
def test_data_parallel_benchmark_prints_the_ratio_and_the_communication(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "data_parallel.py"), "--steps", "3", "--batches", "64"],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, NPGAN_OFFLINE="1"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"\| 64 \| \d+ img/s \| \d+ img/s \| \d\.\d\d \|", done.stdout), done.stdout
    assert "3,668,488 bytes of float32 gradients" in done.stdout and "% of it" in done.stdout
    assert "InfiniBand NDR" in done.stdout


def test_cyclegan_table_gives_the_mean_and_spread_over_seeds_of_each_photo(tmp_path):
    def run(name, test, held, own=None):
        scores = {"accuracy": {"cyclegan": test, "grey": 0.3, "inverted_grey": 0.37, "grey_or_inverted_oracle": 0.58},
                  "cycle_a_accuracy": 0.97,
                  "held_out_photos": {p: {"cyclegan": held, "grey": 0.5, "inverted_grey": 0.2,
                                          "grey_or_inverted_oracle": 0.6} for p in ("hubble", "ihc")}}
        if own is not None:
            scores["semantic_classifier"] = {"accuracy": {"cyclegan": own},
                                             "held_out_photos": {p: {"cyclegan": own} for p in ("hubble", "ihc")}}
        (tmp_path / name).mkdir()
        (tmp_path / name / "eval.json").write_text(json.dumps(scores))
        return str(tmp_path / name)
    plain = ",".join(run(f"p{s}", t, 0.5) for s, t in enumerate((0.80, 0.82, 0.78)))
    semantic = ",".join(run(f"s{s}", t, 0.6, own=0.9) for s, t in enumerate((0.90, 0.94)))
    done = subprocess.run([sys.executable, str(BENCHMARKS / "cyclegan_table.py"), f"plain={plain}",
                           f"semantic={semantic}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (row,) = table_rows(done.stdout, "plain (3)")
    assert row[1:4] == ["**80.0 ± 2.0%**", "50.0 ± 0.0%", "50.0 ± 0.0%"] and row[4] == "80.0, 82.0, 78.0"
    (row,) = table_rows(done.stdout, "semantic (2)")
    assert row[1] == "**92.0 ± 2.8%**"
    (own,) = table_rows(done.stdout, "semantic |")                          # f's own reading, apart
    assert own[1] == "90.0 ± 0.0%" and not table_rows(done.stdout, "plain |")
    missing = subprocess.run([sys.executable, str(BENCHMARKS / "cyclegan_table.py"), f"x={tmp_path / 'none'}"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "eval.json" in missing.stderr


def test_inpaint_table_groups_a_method_over_seeds_and_keeps_the_baselines_apart(tmp_path):
    def evaluation(name, seed, psnr):
        rows = [{"method": f"Yang et al. content network, seed {seed}" if seed else "Yang et al. content network",
                 "run": f"runs/yc-s{seed}", "psnr_hole": psnr, "ssim_hole": 0.5, "l1_hole": 0.1, "sharpness": 0.6,
                 "perceptual": 0.02, "train_s": 300.0 + seed, "fill_s": 0.2},
                {"method": "biharmonic fill", "run": "-", "psnr_hole": 24.75, "ssim_hole": 0.66, "l1_hole": 0.05,
                 "sharpness": 0.5, "perceptual": 0.03, "train_s": None, "fill_s": 0.4}]
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(
            {"dataset": "natural", "mask": "centre", "n": 200, "rows": rows}))
        return str(tmp_path / name)
    evals = [evaluation(f"e{s}", s, p) for s, p in enumerate((22.0, 23.0, 24.0))]
    done = subprocess.run([sys.executable, str(BENCHMARKS / "inpaint_table.py"), *evals],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "natural, centre holes, 200 held-out images" in done.stdout
    (row,) = table_rows(done.stdout, "Yang et al. content network |")          # one row for the three seeds
    assert row[1:3] == ["3", "23.00 +- 1.00"] and row[-2:] == ["301", "1"]
    (row,) = table_rows(done.stdout, "biharmonic fill")
    assert row[1:3] == ["-", "24.75"] and row[-2:] == ["-", "2"]
    other = evaluation("other", 0, 20.0)
    data = json.loads(Path(other, "metrics.json").read_text())
    Path(other, "metrics.json").write_text(json.dumps({**data, "n": 300}))
    mixed = subprocess.run([sys.executable, str(BENCHMARKS / "inpaint_table.py"), evals[0], other],
                           capture_output=True, text=True, timeout=60)
    assert mixed.returncode != 0 and "different images" in mixed.stderr
    missing = subprocess.run([sys.executable, str(BENCHMARKS / "inpaint_table.py"), str(tmp_path / "none")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "metrics.json" in missing.stderr
