"""MNIST-M and the CycleGAN: the data builder, the networks, the training step (its generator
gradient against central differences), the image pool, the learning-rate schedule, and
`python -m npgan.translate train | eval | translate` on tiny settings, bad input included."""
import json
import signal

import numpy as np
import pytest

from npgan import backend
from npgan.data import mnistm
from npgan.data.mnistm import (PhotosMissingError, TEST_PHOTOS, TRAIN_PHOTOS, blend, load_mnist_mnistm,
                               load_photos, random_crops)
from npgan.gan import cycle
from npgan.gan.cycle import ImagePool, cycle_step, generator_pass, lr_factor, match_channels
from npgan.gan.objectives import get_objective
from npgan.models.cyclegan import Discriminator, Generator, build_cyclegan
from npgan.optim import Adam
from npgan.translate import main

TINY = ["--width", "2", "--blocks", "1", "--d-width", "2", "--batch-size", "2", "--log-every", "1",
        "--sample-every", "2", "--checkpoint-every", "2", "--no-progress"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("NPGAN_OFFLINE", "1")


@pytest.fixture(scope="module")
def data():
    return load_mnist_mnistm(seed=0, verbose=False)


# ---- the data ---------------------------------------------------------------------------------
def test_mnistm_shapes_ranges_and_domains(data):
    assert data.train_a.shape[1:] == (1, 28, 28) and data.train_b.shape[1:] == (3, 28, 28)
    assert data.test_a.shape[1:] == (1, 28, 28) and data.test_b.shape == (len(data.test_a), 3, 28, 28)
    assert data.train_a.dtype == data.train_b.dtype == data.test_b.dtype == np.uint8
    assert len(data.test_labels) == len(data.test_a) and set(np.unique(data.test_labels)) == set(range(10))
    assert abs(len(data.train_a) - len(data.train_b)) <= 1
    assert data.train_b.std() > 30 and len(np.unique(data.train_b[:50].reshape(-1, 3), axis=0)) > 1000   # colour


def test_mnistm_is_deterministic_for_a_seed():
    first, again, other = (load_mnist_mnistm(seed=s, verbose=False) for s in (3, 3, 4))
    assert np.array_equal(first.train_b, again.train_b) and np.array_equal(first.test_b, again.test_b)
    assert np.array_equal(first.train_a, again.train_a)
    assert not np.array_equal(first.train_b, other.train_b)


def test_train_and_test_photos_and_digits_are_disjoint(monkeypatch):
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    calls = []
    real = mnistm.make_mnistm
    monkeypatch.setattr(mnistm, "make_mnistm", lambda digits, photos, rng: calls.append((digits, photos)) or
                        real(digits, photos, rng))
    data = load_mnist_mnistm(seed=0, verbose=False)
    (train_digits, train_photos), (test_digits, test_photos) = calls
    # the photos of the test crops are chelsea's (two scales), none of the training photos
    assert [p.shape for p in test_photos] == [p.shape for p in load_photos(TEST_PHOTOS)]
    assert not {p.tobytes() for p in test_photos} & {p.tobytes() for p in train_photos}
    # no training digit is in both domains
    a = {d.tobytes() for d in data.train_a[:, 0]}
    assert not a & {d.tobytes() for d in train_digits}
    assert np.array_equal(test_digits, data.test_a[:, 0])


def test_blend_is_the_absolute_difference():
    digits = np.array([[[0, 255], [100, 30]]], np.uint8)                      # (1, 2, 2)
    crops = np.array([[[[10, 10], [200, 0]], [[255, 0], [0, 30]], [[0, 0], [0, 0]]]], np.uint8)
    out = blend(digits, crops)
    assert out.dtype == np.uint8 and out.shape == (1, 3, 2, 2)
    assert out[0, 0].tolist() == [[10, 245], [100, 30]] and out[0, 1].tolist() == [[255, 255], [100, 0]]
    assert out[0, 2].tolist() == digits[0].tolist()


def test_crops_are_windows_of_the_photos(host_rng):
    rows, cols = np.meshgrid(np.arange(50), np.arange(60), indexing="ij")
    photo = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)    # pixel = its position
    crops = random_crops([photo], 40, host_rng, size=28)
    assert crops.shape == (40, 3, 28, 28)
    for crop in crops:
        r, c = crop[0].astype(int), crop[1].astype(int)
        assert (np.diff(r, axis=0) == 1).all() and (r.min() >= 0) and r.max() <= 49
        step = np.diff(c, axis=1)
        assert (step == 1).all() or (step == -1).all()                         # flipped or not
    flipped = [np.diff(crop[1].astype(int), axis=1)[0, 0] < 0 for crop in crops]
    assert 5 < sum(flipped) < 35


def test_missing_photos_are_named(tmp_path):
    with pytest.raises(PhotosMissingError, match="astronaut.png"):
        load_photos(TRAIN_PHOTOS, folder=tmp_path)


# ---- the networks and the step ------------------------------------------------------------------
def test_network_shapes():
    x = backend.to_device(np.random.default_rng(0).uniform(-1, 1, (2, 1, 28, 28)).astype(np.float32))
    y = Generator(1, 3, width=4, blocks=1).forward(x)
    assert y.shape == (2, 3, 28, 28) and float(abs(y).max()) <= 1
    assert Generator(3, 1, width=4, blocks=2).forward(y).shape == (2, 1, 28, 28)
    assert Discriminator(3, width=4).forward(y).shape == (2, 1, 7, 7)


def test_match_channels():
    a = backend.to_device(np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2))
    b = match_channels(a, 3)
    assert b.shape == (2, 3, 2, 2) and (b[:, 2] == a[:, 0]).all()
    assert np.allclose(backend.asnumpy(match_channels(b, 1)), backend.asnumpy(a), atol=1e-5)   # luma weights sum to 1
    assert match_channels(a, 1) is a


def tiny_nets(dtype=None):
    return build_cyclegan(1, 3, width=2, blocks=1, d_width=2, dtype=dtype)


def batches(n=2, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (backend.to_device(rng.uniform(-1, 1, (n, 1, 28, 28)).astype(dtype)),
            backend.to_device(rng.uniform(-1, 1, (n, 3, 28, 28)).astype(dtype)))


def test_one_step_changes_all_four_networks_and_is_finite():
    nets = tiny_nets()
    opts = [Adam(nets["G_ab"].parameters() + nets["G_ba"].parameters(), lr=2e-4)] + \
           [Adam(nets[k].parameters(), lr=2e-4) for k in ("D_a", "D_b")]
    before = {k: [backend.asnumpy(p.data).copy() for p in m.parameters()] for k, m in nets.items()}
    a, b = batches()
    stats = cycle_step(nets, *opts, get_objective("lsgan"), a, b, {"a": ImagePool(50, 0), "b": ImagePool(50, 1)},
                       check=True)
    assert set(stats) == {"loss_G", "adv_ab", "adv_ba", "cycle_a", "cycle_b", "idt_a", "idt_b", "sem_ab", "sem_ba",
                          "loss_D_a", "loss_D_b"}
    assert stats.pop("sem_ab") is None and stats.pop("sem_ba") is None     # no semantic term asked for
    assert stats.pop("idt_b") is None                                          # G_ab's identity term is off
    assert all(np.isfinite(float(v)) for v in stats.values())
    for k, m in nets.items():
        moved = [not np.array_equal(old, backend.asnumpy(p.data)) for old, p in zip(before[k], m.parameters())]
        assert all(moved), f"{k}: parameters {np.flatnonzero(~np.array(moved))} did not move"


@pytest.mark.parametrize("identity_ab, cycle_b", [(False, 1.0), (True, 1.0), (False, 0.3)])
def test_generator_gradient_matches_central_differences(identity_ab, cycle_b):
    """dL_G/dtheta of a few entries of each generator's parameters, in float64."""
    nets, objective = tiny_nets("float64"), get_objective("lsgan")
    a, b = batches(dtype=np.float64)

    def loss():
        for m in nets.values():
            m.zero_grad()
        return float(generator_pass(nets, objective, a, b, identity_ab=identity_ab, cycle_b=cycle_b)[0]["loss_G"])

    loss()
    rng = np.random.default_rng(0)
    for name in ("G_ab", "G_ba"):
        params = nets[name].parameters()
        for p in (params[0], params[3], params[-2]):                           # first conv, a block, last conv
            analytic = backend.asnumpy(p.grad).copy()
            for flat in rng.choice(p.data.size, 3, replace=False):
                idx = np.unravel_index(flat, p.data.shape)
                old = float(p.data[idx])
                p.data[idx] = old + 1e-6
                up = loss()
                p.data[idx] = old - 1e-6
                down = loss()
                p.data[idx] = old
                numeric = (up - down) / 2e-6
                assert abs(numeric - analytic[idx]) <= 1e-4 * max(1.0, abs(numeric)), (name, idx, numeric, analytic[idx])
    for name in ("D_a", "D_b"):                                                # frozen during the G update
        assert all(float(abs(p.grad).max()) == 0 for p in nets[name].parameters())


def test_the_b_cycle_weight_scales_that_term_only():
    """L_G and its gradients are linear in k_b: k_b = 0.25 lies a quarter of the way from
    k_b = 0 to k_b = 1, and the cycle error reported is the unweighted L1 each time."""
    nets, objective = tiny_nets("float64"), get_objective("lsgan")
    a, b = batches(dtype=np.float64)
    results = {}
    for k in (0.0, 1.0, 0.25):
        for m in nets.values():
            m.zero_grad()
        terms = generator_pass(nets, objective, a, b, cycle_b=k)[0]
        results[k] = (float(terms["loss_G"]), float(terms["cycle_b"]),
                      [backend.asnumpy(p.grad).copy() for p in nets["G_ab"].parameters() + nets["G_ba"].parameters()])
    (l0, c0, g0), (l1, c1, g1), (lq, cq, gq) = results[0.0], results[1.0], results[0.25]
    assert c0 == c1 == cq > 0 and l1 - l0 == pytest.approx(10 * c1, rel=1e-12)
    assert lq == pytest.approx(0.75 * l0 + 0.25 * l1, rel=1e-12)
    assert any(not np.allclose(x, y) for x, y in zip(g0, g1))
    for x, y, q in zip(g0, g1, gq):
        np.testing.assert_allclose(q, 0.75 * x + 0.25 * y, rtol=1e-9, atol=1e-12)


# ---- the image pool and the schedule --------------------------------------------------------------
def test_image_pool_fills_then_swaps_half_the_time():
    pool = ImagePool(size=4, seed=0)
    first = backend.to_device(np.arange(4, dtype=np.float32).reshape(4, 1, 1, 1))
    out = pool.query(first)
    assert np.array_equal(backend.asnumpy(out), backend.asnumpy(first)) and out is not first
    returned_old = 0
    for i in range(200):
        new = backend.to_device(np.full((1, 1, 1, 1), 100 + i, np.float32))
        value = float(pool.query(new)[0, 0, 0, 0])
        stored = sorted(float(im[0, 0, 0]) for im in pool.images)
        assert len(stored) == 4
        if value != 100 + i:
            returned_old += 1
            assert 100 + i in stored and value not in stored                   # swapped in, the old one out
    assert 70 < returned_old < 130                                             # probability 1/2
    assert ImagePool(size=0).query(first) is first


def test_image_pool_resumes_from_its_state():
    pool = ImagePool(size=3, seed=1)
    images = [backend.to_device(np.full((2, 1, 2, 2), i, np.float32)) for i in range(8)]
    for x in images[:4]:
        pool.query(x)
    copy = ImagePool(size=3, seed=99).load_state_dict(pool.state_dict())
    for x in images[4:]:
        assert np.array_equal(backend.asnumpy(pool.query(x)), backend.asnumpy(copy.query(x)))


def test_lr_schedule_is_constant_then_linear():
    f = [lr_factor(s, 10) for s in range(1, 11)]
    assert f[:5] == [1.0] * 5
    assert np.allclose(np.diff(f[4:]), -1 / 6) and f[-1] == pytest.approx(1 / 6)
    assert lr_factor(3, 10, decay_start=2) == pytest.approx(1 - 1 / 9)


# ---- the command line -----------------------------------------------------------------------------
def train(tmp_path, *extra, name="run"):
    return main(["train", "mnist", "mnistm", "--out", str(tmp_path / name), "--steps", "4", *TINY, *extra])


def ctrl_c_during_step_2(monkeypatch):
    """Make the CycleGAN's step raise SIGINT during step 2 (the loop then saves and stops);
    returns the real step, to put back."""
    real, calls = cycle.cycle_step, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)
    monkeypatch.setattr(cycle, "cycle_step", interrupted)
    return real


def arrays(path):
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files if k != "meta"}


def test_train_writes_a_run_and_ctrl_c_then_resume_matches(tmp_path, monkeypatch, capsys):
    assert train(tmp_path, "--no-eval", name="whole") == 0
    out = tmp_path / "whole"
    for name in ("config.json", "metrics.jsonl", "losses.png", "samples.png", "progress.gif", "checkpoint.npz"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "samples").iterdir()) == [f"step_{s:06d}.png" for s in (0, 2, 4)]
    printed = capsys.readouterr().out
    assert "img/s per domain" in printed and "images of each domain per second" in printed
    from PIL import Image
    with Image.open(out / "samples" / "step_000004.png") as grid:            # six rows of ten, labelled
        pixels = np.asarray(grid)
    margin = 6 * len("G_ba(G_ab(A))") + 6
    assert pixels.shape == (6 * 30 + 2, margin + 10 * 30 + 2, 3)
    assert all(pixels[2 + 30 * r:30 * (r + 1), :margin].max() > 200 for r in range(6))   # text beside each row
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert [r["lr"] for r in records] == pytest.approx([2e-4, 2e-4, 2e-4 * 2 / 3, 2e-4 / 3], rel=1e-3)
    assert json.loads((out / "config.json").read_text())["model"] == "cyclegan"

    real = ctrl_c_during_step_2(monkeypatch)
    assert train(tmp_path, "--no-eval", name="split") == 130
    assert "saved step 2" in capsys.readouterr().err
    monkeypatch.setattr(cycle, "cycle_step", real)
    assert main(["train", "mnist", "mnistm", "--out", str(tmp_path / "split"), "--resume", "--no-eval",
                 "--no-progress"]) == 0
    whole, split = arrays(out / "checkpoint.npz"), arrays(tmp_path / "split" / "checkpoint.npz")
    assert whole.keys() == split.keys()
    assert all(np.array_equal(whole[k], split[k]) for k in whole), "a resumed run differs from an uninterrupted one"


def test_a_run_saved_before_the_b_cycle_weight_resumes_with_both_cycles_alike(tmp_path):
    """A checkpoint whose config has no ``cycle_b`` was trained with Zhu et al.'s weights."""
    out = tmp_path / "old"
    assert main(["train", "mnist", "mnistm", "--out", str(out), "--steps", "2", *TINY, "--no-eval"]) == 0
    path = out / "checkpoint.npz"
    with np.load(path) as npz:
        saved = {k: npz[k] for k in npz.files}
    meta = json.loads(str(saved["meta"]))
    assert meta["config"].pop("cycle_b") == 0.03                    # npgan's default now
    saved["meta"] = np.array(json.dumps(meta))
    np.savez(path, **saved)
    assert main(["train", "mnist", "mnistm", "--out", str(out), "--resume", "--steps", "3", *TINY, "--no-eval"]) == 0
    assert json.loads((out / "config.json").read_text())["cycle_b"] == 1.0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cyclegan") / "run"
    backend.use("numpy")
    assert main(["train", "mnist", "mnistm", "--out", str(out), "--steps", "2", *TINY, "--no-eval"]) == 0
    return out


def test_eval_reports_the_baselines_and_the_cycle_error(run, tmp_path, capsys):
    picture = tmp_path / "cycle.png"
    assert main(["eval", str(run), "--n", "30", "--picture", str(picture)]) == 0
    text = capsys.readouterr().out
    assert "CycleGAN: G_ba(MNIST-M)" in text and "inverted grey" in text and "B -> A -> B" in text
    scores = json.loads((run / "eval.json").read_text())
    assert scores["n"] == 30 and scores["step"] == 2
    assert set(scores["accuracy"]) == {"cyclegan", "grey", "inverted_grey", "grey_or_inverted_oracle", "mnist"}
    assert scores["accuracy"]["grey_or_inverted_oracle"] >= max(scores["accuracy"]["grey"],
                                                                scores["accuracy"]["inverted_grey"])
    assert 0 < scores["cycle_l1"]["a"] < 2 and 0 < scores["cycle_l1"]["b"] < 2
    from PIL import Image
    with Image.open(picture) as im:
        assert im.mode == "RGB" and im.height == 3 * (6 * 30 + 2)


def test_translate_a_npy_and_a_png(run, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "digits.npy", rng.integers(0, 256, (3, 28, 28), dtype=np.uint8))
    assert main(["translate", str(run), "--direction", "a2b", "--input", str(tmp_path / "digits.npy"),
                 "--out", str(tmp_path / "colour.npy")]) == 0
    colour = np.load(tmp_path / "colour.npy")
    assert colour.shape == (3, 3, 28, 28) and colour.dtype == np.float32 and abs(colour).max() <= 1
    from PIL import Image
    Image.fromarray((colour[0].transpose(1, 2, 0) * 127.5 + 127.5).astype(np.uint8)).save(tmp_path / "in.png")
    assert main(["translate", str(run), "--direction", "b2a", "--input", str(tmp_path / "in.png"),
                 "--out", str(tmp_path / "grey.png")]) == 0
    with Image.open(tmp_path / "grey.png") as im:
        assert im.size == (28, 28)
    assert main(["translate", str(run), "--direction", "b2a", "--input", str(tmp_path / "in.png"),
                 "--out", str(tmp_path / "grey.npy")]) == 0
    assert np.load(tmp_path / "grey.npy").shape == (1, 1, 28, 28)


def exits_2(argv, capsys, *words):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    for word in words:
        assert word in err, (word, err)


@pytest.mark.parametrize("kind", ["size", "channels", "direction", "range"])
def test_bad_translate_input_exits_2_and_writes_nothing(run, tmp_path, capsys, kind):
    out = tmp_path / "out.npy"
    out.write_bytes(b"keep")
    image = {"size": np.zeros((2, 1, 32, 32), np.uint8), "channels": np.zeros((2, 3, 28, 28), np.uint8),
             "direction": np.zeros((2, 1, 28, 28), np.uint8), "range": np.full((2, 1, 28, 28), 5.0, np.float32)}[kind]
    np.save(tmp_path / "x.npy", image)
    direction = "sideways" if kind == "direction" else "a2b"
    words = {"size": ("32x32", "28x28"), "channels": ("3 channel", "1-channel"), "direction": ("sideways", "a2b"),
             "range": ("[-1, 1]",)}[kind]
    exits_2(["translate", str(run), "--direction", direction, "--input", str(tmp_path / "x.npy"), "--out", str(out)],
            capsys, *words)
    assert out.read_bytes() == b"keep"


def test_a_run_that_is_not_a_cyclegan_exits_2(tmp_path, capsys):
    from npgan.checkpoint import save_checkpoint
    from npgan.models import dcgan
    G, D = dcgan.Generator(width=2), dcgan.Discriminator(width=2)
    gan = tmp_path / "gan"
    save_checkpoint(gan / "checkpoint.npz", G=G, D=D, opt_G=Adam(G.parameters()), opt_D=Adam(D.parameters()),
                    step=0, config={"model": "dcgan"}, rng_state=backend.get_rng_state())
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 28, 28), np.uint8))
    exits_2(["eval", str(gan)], capsys, "not a CycleGAN run")
    exits_2(["translate", str(gan), "--direction", "a2b", "--input", str(tmp_path / "x.npy"),
             "--out", str(tmp_path / "y.npy")], capsys, "not a CycleGAN run")
    assert not (tmp_path / "y.npy").exists() and not (gan / "eval.json").exists()
    exits_2(["train", "mnist", "mnistm", "--out", str(gan), "--resume"], capsys, "not a CycleGAN run")
    exits_2(["eval", str(tmp_path / "nowhere")], capsys, "no checkpoint.npz")


def test_missing_photos_or_a_wrong_pair_exit_2_before_writing(tmp_path, monkeypatch, capsys):
    exits_2(["train", "mnist", "cifar", "--out", str(tmp_path / "x")], capsys, "cifar", "mnist mnistm", "mnist svhn")
    exits_2(["train", "mnist", "svhn", "--size", "28", "--out", str(tmp_path / "x")], capsys, "--size 28", "32")
    monkeypatch.setattr(mnistm, "photo_dir", lambda: tmp_path / "no-photos")
    exits_2(["train", "mnist", "mnistm", "--out", str(tmp_path / "run")], capsys, "astronaut.png", "no-photos")
    assert not (tmp_path / "run").exists()


def test_a_used_run_directory_is_not_overwritten(run, capsys):
    before = (run / "checkpoint.npz").read_bytes()
    exits_2(["train", "mnist", "mnistm", "--out", str(run)], capsys, "--resume", "--overwrite")
    exits_2(["train", "mnist", "mnistm", "--out", str(run), "--resume", "--width", "8"], capsys, "--width 2")
    assert (run / "checkpoint.npz").read_bytes() == before


def test_ctrl_c_during_an_overwrite_keeps_the_earlier_run(tmp_path, monkeypatch, capsys):
    assert train(tmp_path, "--no-eval") == 0
    out = tmp_path / "run"
    before = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    real = ctrl_c_during_step_2(monkeypatch)
    assert train(tmp_path, "--no-eval", "--overwrite", "--seed", "1", "--checkpoint-every", "3") == 130
    assert "--overwrite did not replace the run" in capsys.readouterr().err
    after = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after == before

    monkeypatch.setattr(cycle, "cycle_step", real)                             # past step 3, it is replaced
    assert train(tmp_path, "--no-eval", "--overwrite", "--seed", "1", "--checkpoint-every", "3") == 0
    assert json.loads((out / "config.json").read_text())["seed"] == 1 and not (out / ".replaced-run").exists()


# ---- the semantic-consistency term ----------------------------------------------------------------
@pytest.mark.parametrize("size", [28, 32])
def test_the_semantic_term_passes_central_differences_through_the_classifier_and_luma(size):
    """d CE(f(luma(x)), y) / dx and, one layer further, the gradient a generator's weights get
    through it, against central differences in float64 (f: a random classifier, frozen); at 32 x 32
    f reads the central 28 x 28, so the border gets no gradient."""
    from npgan.gan.cycle import SemanticConsistency
    from npgan.models.classifier import Classifier
    backend.seed(0)
    f = Classifier(dtype=np.float64)
    term = SemanticConsistency(f, weight=0.7)
    rng = np.random.default_rng(1)
    x = backend.to_device(rng.uniform(-1, 1, (2, 3, size, size)))
    labels = backend.to_device(np.array([3, 8]))
    loss, dx = term.term(x, labels)
    loss_of = lambda images: 0.7 * float(term.term(images, labels)[0])
    h, picks = 1e-5, [tuple(rng.integers(0, s) for s in x.shape) for _ in range(25)]
    if size == 32:
        picks += [(0, 1, 0, 5), (1, 2, 31, 31), (0, 0, 2, 2)]                  # the border, and the crop's corner
        assert not np.any(backend.asnumpy(dx)[:, :, :2]) and not np.any(backend.asnumpy(dx)[:, :, :, 30:])
    for i in picks:
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        assert float(dx[i]) == pytest.approx((loss_of(up) - loss_of(down)) / (2 * h), rel=1e-5, abs=1e-9), i
    assert f.parameters()[0].grad is None or not np.any(backend.asnumpy(f.parameters()[0].grad))   # f is frozen
    from npgan.layers import Conv2d, Sequential, Tanh                   # one layer further: a generator's weights
    G = Sequential(Conv2d(1, 3, 3, padding=1, dtype=np.float64), Tanh())
    a = backend.to_device(rng.uniform(-1, 1, (2, 1, size, size)))
    G.zero_grad()
    G.backward(term.term(G.forward(a), labels)[1])
    weight = G.parameters()[0]
    for j in [(0, 0, 1, 1), (2, 0, 0, 2), (1, 0, 2, 0)]:
        saved, values = float(weight.data[j]), []
        for step in (h, -h):
            weight.data[j] = saved + step
            values.append(loss_of(G.forward(a)))
        weight.data[j] = saved
        assert float(weight.grad[j]) == pytest.approx((values[0] - values[1]) / (2 * h), rel=1e-5, abs=1e-9), j


def test_a_run_with_the_semantic_term_resumes_bitwise_and_reports_both_classifiers(tmp_path, capsys, monkeypatch):
    import functools
    from npgan import metrics
    monkeypatch.setattr(metrics, "train_classifier",                        # a short f: the test checks the plumbing
                        functools.partial(metrics.train_classifier, max_steps=20))
    assert train(tmp_path, "--semantic-weight", "1", name="whole") == 0
    printed = capsys.readouterr().out
    assert "training the semantic term's classifier on domain A's" in printed
    assert "the semantic term's own classifier (trained on domain A, seed 1" in printed
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["sem_ab"] > 0 and r["sem_ba"] > 0 for r in records)
    scores = json.loads((tmp_path / "whole" / "eval.json").read_text())
    assert set(scores["semantic_classifier"]["accuracy"]) == set(scores["accuracy"])
    assert list(scores["held_out_photos"]) == list(mnistm.HELD_OUT_PHOTOS) == ["hubble", "ihc", "retina"]
    assert all(set(acc) == {"cyclegan", "grey", "inverted_grey", "grey_or_inverted_oracle"}
               for acc in scores["held_out_photos"].values())
    assert "photos never used in training" in printed and "retina" in printed
    real = ctrl_c_during_step_2(monkeypatch)
    assert train(tmp_path, "--semantic-weight", "1", "--no-eval", name="split") == 130
    monkeypatch.setattr(cycle, "cycle_step", real)
    capsys.readouterr()
    assert main(["train", "mnist", "mnistm", "--out", str(tmp_path / "split"), "--resume", "--no-eval",
                 "--no-progress"]) == 0
    assert "training the semantic term's classifier" not in capsys.readouterr().out        # loaded, not retrained
    whole, split = arrays(tmp_path / "whole" / "checkpoint.npz"), arrays(tmp_path / "split" / "checkpoint.npz")
    assert all(np.array_equal(whole[k], split[k]) for k in whole), "a resumed run differs from an uninterrupted one"
    with np.load(tmp_path / "whole" / "checkpoint.npz") as a, np.load(tmp_path / "split" / "checkpoint.npz") as b:
        meta = lambda npz: json.loads(str(npz["meta"]))
        assert meta(a)["rng"] == meta(b)["rng"]                      # the random generator too, on every backend
    assert main(["eval", str(tmp_path / "whole"), "--n", "50"]) == 0
    assert "the semantic term's own classifier" in capsys.readouterr().out


def test_held_out_photos_give_the_same_digits_over_photos_never_trained_on():
    digits = np.random.default_rng(0).integers(0, 256, (12, 28, 28), dtype=np.uint8)
    sets = mnistm.held_out_test_sets(digits, seed=3)
    assert list(sets) == ["hubble", "ihc", "retina"] and not set(sets) & set(mnistm.TRAIN_PHOTOS + mnistm.TEST_PHOTOS)
    assert all(images.shape == (12, 3, 28, 28) and images.dtype == np.uint8 for images in sets.values())
    again = mnistm.held_out_test_sets(digits, seed=3)
    assert all(np.array_equal(sets[k], again[k]) for k in sets)                 # seeded: the same crops
    assert not np.array_equal(sets["hubble"], sets["ihc"])


def test_the_semantic_b_part_reaches_g_ba_only_when_weighed():
    """The A part's gradient enters G_ab alone (G_ba reads G_ab's output only through the cycle,
    whose gradient does not depend on f); --semantic-b 0 leaves G_ba's gradient as without the term."""
    from npgan.gan.cycle import SemanticConsistency
    from npgan.models.classifier import Classifier
    backend.seed(0)
    f = Classifier()
    rng = np.random.default_rng(0)
    real_a = backend.to_device(rng.uniform(-1, 1, (2, 1, 28, 28)).astype(np.float32))
    real_b = backend.to_device(rng.uniform(-1, 1, (2, 3, 28, 28)).astype(np.float32))
    labels = backend.to_device(np.array([1, 7]))
    grads = {}
    for name, semantic in (("none", None), ("a only", SemanticConsistency(f, 1.0, b=0.0)),
                           ("both", SemanticConsistency(f, 1.0, b=1.0))):
        backend.seed(1)
        nets = build_cyclegan(1, 3, width=2, blocks=1, d_width=2)
        for m in nets.values():
            m.zero_grad()
        terms, _ = generator_pass(nets, get_objective("lsgan"), real_a, real_b, semantic=semantic, labels_a=labels)
        grads[name] = {k: [backend.asnumpy(p.grad).copy() for p in nets[k].parameters()] for k in ("G_ab", "G_ba")}
        if name == "a only":
            assert terms["sem_ab"] > 0 and terms["sem_ba"] is None
    same = lambda x, y, k: all(np.array_equal(p, q) for p, q in zip(grads[x][k], grads[y][k]))
    assert same("none", "a only", "G_ba") and not same("none", "a only", "G_ab")
    assert not same("none", "both", "G_ba") and same("a only", "both", "G_ab")


# ---- 32 x 32: MNIST <-> MNIST-M padded, and MNIST <-> SVHN ----------------------------------------
def test_mnistm_at_32_pads_the_digits_and_crops_at_32():
    data28, data32 = load_mnist_mnistm(seed=0, verbose=False), load_mnist_mnistm(seed=0, verbose=False, size=32)
    assert data32.train_a.shape[1:] == (1, 32, 32) and data32.train_b.shape[1:] == (3, 32, 32)
    assert data32.test_b.shape == (len(data28.test_b), 3, 32, 32) and data32.size == 32
    assert np.array_equal(data32.train_a[:, :, 2:30, 2:30], data28.train_a)       # the digit itself unchanged
    assert not data32.train_a[:, :, :2].any() and not data32.test_a[:, :, :, 30:].any()
    assert np.array_equal(data32.test_labels, data28.test_labels)


def test_a_32_pixel_mnistm_run_trains_translates_and_scores(tmp_path, capsys):
    out = tmp_path / "run32"
    assert main(["train", "mnist", "mnistm", "--size", "32", "--out", str(out), "--steps", "2", *TINY]) == 0
    assert "at 32 x 32" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["size"] == 32
    scores = json.loads((out / "eval.json").read_text())
    assert scores["domain_b"] == "MNIST-M" and list(scores["held_out_photos"]) == list(mnistm.HELD_OUT_PHOTOS)
    np.save(tmp_path / "digits.npy", np.random.default_rng(0).integers(0, 256, (2, 32, 32), dtype=np.uint8))
    assert main(["translate", str(out), "--direction", "a2b", "--input", str(tmp_path / "digits.npy"),
                 "--out", str(tmp_path / "colour.npy")]) == 0
    assert np.load(tmp_path / "colour.npy").shape == (2, 3, 32, 32)
    np.save(tmp_path / "small.npy", np.zeros((2, 28, 28), np.uint8))
    exits_2(["translate", str(out), "--direction", "a2b", "--input", str(tmp_path / "small.npy"),
             "--out", str(tmp_path / "y.npy")], capsys, "28x28", "32x32")
    exits_2(["train", "mnist", "mnistm", "--out", str(out), "--resume", "--size", "28"], capsys, "--size 32")


def test_mnist_svhn_trains_at_32_on_svhn_files_and_offline_without_them_exits_2(tmp_path, monkeypatch, capsys):
    from conftest import write_svhn
    from npgan.data import svhn
    write_svhn(tmp_path / "svhn", n_train=12, n_test=10)
    out = tmp_path / "svhn-run"
    assert main(["train", "mnist", "svhn", "--data-dir", str(tmp_path / "svhn"), "--out", str(out),
                 "--steps", "2", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "MNIST <-> SVHN at 32 x 32" in printed and "G_ba(SVHN)" in printed
    config, scores = json.loads((out / "config.json").read_text()), json.loads((out / "eval.json").read_text())
    assert config["domains"] == ["mnist", "svhn"] and config["size"] == 32
    assert scores["domain_b"] == "SVHN" and scores["n"] == 10 and "held_out_photos" not in scores
    assert main(["train", "mnist", "svhn", "--out", str(out), "--resume", "--steps", "3", "--no-eval",
                 "--no-progress"]) == 0                                          # the folder comes from the run
    np.save(tmp_path / "house.npy", np.random.default_rng(0).integers(0, 256, (3, 3, 32, 32), dtype=np.uint8))
    assert main(["translate", str(out), "--direction", "b2a", "--input", str(tmp_path / "house.npy"),
                 "--out", str(tmp_path / "digits.npy")]) == 0
    assert np.load(tmp_path / "digits.npy").shape == (3, 1, 32, 32)

    monkeypatch.delenv("NPGAN_DATA", raising=False)
    monkeypatch.setattr(svhn, "cache_dir", lambda: tmp_path / "cache" / "svhn")
    with pytest.raises(SystemExit) as exc:
        main(["train", "mnist", "svhn", "--out", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "train_32x32.mat" in err and "test_32x32.mat" in err and str(tmp_path / "cache" / "svhn") in err
    assert not (tmp_path / "none").exists()


def test_the_wide_photo_set_adds_a_quarter_size_every_channel_order_and_the_negatives():
    standard, wide = mnistm.training_photos("standard"), mnistm.training_photos("wide")
    assert len(standard) == 2 * len(TRAIN_PHOTOS) and len(wide) == 3 * 2 * 6 * len(TRAIN_PHOTOS)
    full = standard[0]                                                       # astronaut at full size
    assert all(np.array_equal(wide[k], full[:, :, order]) for k, order in enumerate(mnistm.CHANNEL_ORDERS))
    assert all(np.array_equal(wide[6 + k], 255 - full[:, :, order]) for k, order in enumerate(mnistm.CHANNEL_ORDERS))
    assert wide[24].shape[:2] == (round(full.shape[0] / 4), round(full.shape[1] / 4))   # a quarter size
    a, b = load_mnist_mnistm(seed=0, verbose=False), load_mnist_mnistm(seed=0, verbose=False, photo_set="wide")
    assert np.array_equal(a.train_a, b.train_a) and np.array_equal(a.test_b, b.test_b)   # only B's training crops
    assert not np.array_equal(a.train_b, b.train_b) and "the wide set" in b.source
    negatives = mnistm.training_photos("negatives")
    assert len(negatives) == 2 * len(standard) and np.array_equal(negatives[1], 255 - full)
    with pytest.raises(ValueError, match="standard, negatives, wide"):
        mnistm.training_photos("huge")


def test_photos_is_a_run_setting_of_mnistm_only(tmp_path, capsys):
    out = tmp_path / "wide"
    assert main(["train", "mnist", "mnistm", "--photos", "wide", "--out", str(out), "--steps", "2", *TINY,
                 "--no-eval"]) == 0
    assert json.loads((out / "config.json").read_text())["photos"] == "wide"
    exits_2(["train", "mnist", "mnistm", "--out", str(out), "--resume", "--photos", "standard"], capsys, "--photos wide")
    exits_2(["train", "mnist", "svhn", "--photos", "wide", "--out", str(tmp_path / "s")], capsys, "--photos", "svhn")
