"""Evaluation metrics: Fréchet distance, class histogram, KL from uniform, the classifier, and
the junk-aware classifier (the recogniser) with its junk and the recognisability score."""
import functools
import math

import numpy as np
import pytest

from npgan import backend, losses, metrics, models
from npgan.models import classifier
from npgan.data import Dataset, load_dataset
from npgan.gradcheck import assert_gradients_close, check_function


@pytest.fixture
def features():
    return np.random.default_rng(0).standard_normal((400, 8)) @ np.diag(np.arange(1, 9))


def test_frechet_distance_is_zero_for_identical_sets(features):
    assert metrics.frechet_distance(features, features) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_of_a_mean_shift_is_its_squared_length(features):
    shift = np.linspace(-1, 1, 8)
    assert metrics.frechet_distance(features, features + shift) == pytest.approx(shift @ shift, rel=1e-6)


def test_frechet_distance_grows_with_a_covariance_change_and_is_symmetric(features):
    mean = features.mean(axis=0)
    wider = mean + 1.5 * (features - mean)                                # same mean
    d = metrics.frechet_distance(features, wider)
    # same mean, covariances S and 2.25 S: tr(S) + 2.25 tr(S) - 2 * 1.5 tr(S) = 0.25 tr(S)
    assert d == pytest.approx(0.25 * np.trace(np.cov(features, rowvar=False)), rel=1e-6)
    assert metrics.frechet_distance(wider, features) == pytest.approx(d, rel=1e-6)


def test_frechet_distance_survives_singular_covariances():
    rng = np.random.default_rng(1)
    a = np.zeros((50, 20))
    a[:, :3] = rng.standard_normal((50, 3))                               # 17 dead features
    d = metrics.frechet_distance(a, a + 0.1)
    assert np.isfinite(d) and d == pytest.approx(20 * 0.01, rel=1e-3)


def test_kl_from_uniform():
    assert metrics.kl_from_uniform(np.full(10, 0.1)) == pytest.approx(0, abs=1e-12)
    assert metrics.kl_from_uniform(np.eye(10)[3]) == pytest.approx(math.log(10))
    assert metrics.kl_from_uniform([0.5, 0.5, 0, 0]) == pytest.approx(math.log(2))
    assert metrics.kl_from_uniform([2, 2, 2, 2]) == pytest.approx(0, abs=1e-12)    # counts are normalised


def test_class_histogram_and_mean_confidence():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    np.testing.assert_allclose(metrics.class_histogram(probs), [0.5, 0.25, 0.25])
    np.testing.assert_allclose(metrics.class_histogram(probs[:1], num_classes=4), [1, 0, 0, 0])
    assert metrics.mean_confidence(probs) == pytest.approx((0.7 + 0.8 + 0.6 + 0.6) / 4)


def test_softmax_cross_entropy_gradient(xp):
    logits = xp.asarray(np.random.default_rng(0).standard_normal((6, 4)))         # float64
    labels = xp.asarray([0, 3, 1, 1, 2, 3])
    result = check_function(losses.softmax_cross_entropy_forward, losses.softmax_cross_entropy_backward,
                            [logits, labels], wrt=[0])
    assert_gradients_close(result, tol=1e-7)


def test_softmax_cross_entropy_values(xp):
    loss, _ = losses.softmax_cross_entropy_forward(xp.zeros((5, 10), dtype=xp.float32), xp.arange(5))
    assert float(loss) == pytest.approx(math.log(10), rel=1e-6)
    big = xp.asarray([[1000.0, 0.0], [0.0, 1000.0]], dtype=xp.float32)             # no overflow
    loss, cache = losses.softmax_cross_entropy_forward(big, xp.asarray([0, 0]))
    assert float(loss) == pytest.approx(500.0)
    assert losses.softmax_cross_entropy_backward(1.0, cache).dtype == xp.float32


def test_softmax_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    logits, labels = rng.standard_normal((7, 5)), rng.integers(0, 5, 7)
    t = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(t, torch.tensor(labels))
    expected.backward()
    loss, cache = losses.softmax_cross_entropy_forward(backend.to_device(logits), backend.to_device(labels))
    assert float(loss) == pytest.approx(expected.item())
    np.testing.assert_allclose(backend.asnumpy(losses.softmax_cross_entropy_backward(1.0, cache)),
                               t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_uniform_cross_entropy_gradient(xp):
    logits = xp.asarray(np.random.default_rng(3).standard_normal((6, 4)) * 3)      # float64
    result = check_function(losses.uniform_cross_entropy_forward, losses.uniform_cross_entropy_backward, [logits])
    assert_gradients_close(result, tol=1e-7)


def test_uniform_cross_entropy_values(xp):
    """log K, its minimum, at equal logits (with a zero gradient); logsumexp - mean otherwise."""
    loss, cache = losses.uniform_cross_entropy_forward(xp.full((5, 10), 3.0, dtype=xp.float32))
    assert float(loss) == pytest.approx(math.log(10), rel=1e-6)
    np.testing.assert_allclose(backend.asnumpy(losses.uniform_cross_entropy_backward(1.0, cache)), 0, atol=1e-8)
    big = xp.asarray([[1000.0, 0.0], [0.0, 0.0]], dtype=xp.float32)                # no overflow
    loss, cache = losses.uniform_cross_entropy_forward(big)
    assert float(loss) == pytest.approx((500.0 + math.log(2)) / 2, rel=1e-6)
    dlogits = losses.uniform_cross_entropy_backward(2.0, cache)
    assert dlogits.dtype == xp.float32
    np.testing.assert_allclose(backend.asnumpy(dlogits), [[0.5, -0.5], [0, 0]], atol=1e-6)   # 2 (p - 1/K) / N


def test_uniform_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    logits = np.random.default_rng(4).standard_normal((7, 5))
    t = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(t, torch.full((7, 5), 1 / 5, dtype=torch.float64))
    expected.backward()
    loss, cache = losses.uniform_cross_entropy_forward(backend.to_device(logits))
    assert float(loss) == pytest.approx(expected.item())
    np.testing.assert_allclose(backend.asnumpy(losses.uniform_cross_entropy_backward(1.0, cache)),
                               t.grad.numpy(), rtol=1e-10, atol=1e-12)


def _tiny_dataset(n=60):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n) % 10
    return Dataset("mnist", "random test pixels", images, labels, images[:20], labels[:20])


def test_classifier_shapes_and_evaluate_images():
    clf = classifier.Classifier()
    ds = _tiny_dataset()
    feats, probs = metrics.classifier_outputs(clf, ds.test_images)
    assert feats.shape == (20, classifier.FEATURE_DIM) and probs.shape == (20, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    fake = np.random.default_rng(1).uniform(-1, 1, (30, 28, 28)).astype(np.float32)
    scores = metrics.evaluate_images(fake, ds, clf)
    assert scores["n"] == 30 and scores["n_real"] == 20
    assert sum(scores["class_histogram"]) == pytest.approx(1, abs=1e-3)
    assert scores["frechet_distance"] >= 0 and 0.1 <= scores["mean_confidence"] <= 1
    assert "Frechet distance" in metrics.format_scores(scores)


def test_scores_of_too_few_images_carry_a_note_that_format_scores_prints():
    """A Frechet distance from fewer than MIN_FRECHET_N images is mostly sample-size bias."""
    fake = np.random.default_rng(2).uniform(-1, 1, (10, 28, 28)).astype(np.float32)
    scores = metrics.evaluate_images(fake, _tiny_dataset(), classifier.Classifier())
    assert scores["note"].startswith("10 generated images are too few for a meaningful Frechet distance")
    lines = metrics.format_scores(scores, n_option="--n").splitlines()
    assert lines[0].startswith("Frechet distance") and lines[1].startswith("note: 10 generated images are too few")
    assert lines[1].endswith("; pass --n 500 or more")
    assert "pass --" not in metrics.format_scores(scores)

    assert metrics.MIN_FRECHET_N == 500 and metrics.small_sample_note(500, 500) is None
    held_out = metrics.small_sample_note(2000, 20)
    assert held_out.startswith("the 20 held-out images are too few")
    enough = dict(scores, n=2000, note=held_out)
    assert "pass --n" not in metrics.format_scores(enough, n_option="--n")           # more fakes would not help
    del enough["note"]
    assert "note:" not in metrics.format_scores(enough, n_option="--n")


def test_classifier_is_cached_by_data(tmp_path, monkeypatch):
    calls = []
    quick = functools.partial(metrics.train_classifier, epochs=1, max_steps=3, verbose=False)
    monkeypatch.setattr(metrics, "train_classifier", lambda *a, **k: calls.append(1) or quick(*a, **k))
    ds = _tiny_dataset()
    rng_before = backend.get_rng_state()
    clf, info = metrics.get_classifier(ds, cache_dir=tmp_path, verbose=False)
    assert _same_rng_state(backend.get_rng_state(), rng_before)          # training leaves the RNG alone
    again, info2 = metrics.get_classifier(ds, cache_dir=tmp_path, verbose=False)
    assert len(calls) == 1 and info2["path"] == info["path"]
    for (k, a), b in zip(clf.state_dict().items(), again.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    other = _tiny_dataset(70)
    assert metrics.data_key(other) != metrics.data_key(ds)
    metrics.get_classifier(other, cache_dir=tmp_path, verbose=False)
    assert len(calls) == 2


@pytest.mark.slow
def test_classifier_reaches_97_percent_on_the_mnist_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    ds = load_dataset("mnist", verbose=False)
    _, info = metrics.get_classifier(ds, cache_dir=tmp_path, verbose=False)
    assert info["test_accuracy"] >= 0.97


def _same_rng_state(a, b):
    """Field by field: a CuPy state holds arrays, whose == is elementwise."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_rng_state(a[k], b[k]) for k in a)
    if hasattr(a, "shape"):
        return np.array_equal(backend.asnumpy(a), backend.asnumpy(b))
    return a == b


# ---- the recogniser: junk, recognisability, the junk-aware classifier -------------------------
def _digit_like_dataset(n=60):
    """Random strokes on black (mostly 0, like digits), classes 0..9 in turn."""
    rng = np.random.default_rng(5)
    images = np.where(rng.random((n, 28, 28)) < 0.2, rng.integers(1, 256, (n, 28, 28)), 0).astype(np.uint8)
    labels = np.arange(n) % 10
    return Dataset("mnist", "random test strokes", images, labels, images[:20], labels[:20])


@pytest.mark.parametrize("kind", list(metrics.JUNK_KINDS))
def test_junk_has_the_images_shape_and_range_and_follows_the_seed(kind):
    ds = _digit_like_dataset()
    make = metrics.JUNK_KINDS[kind]
    junk = make(ds.train_images, ds.train_labels, 50, np.random.default_rng(0))
    assert junk.shape == (50, 28, 28) and junk.dtype == np.uint8 and junk.max() > 0
    np.testing.assert_array_equal(junk, make(ds.train_images, ds.train_labels, 50, np.random.default_rng(0)))
    assert not np.array_equal(junk, make(ds.train_images, ds.train_labels, 50, np.random.default_rng(1)))
    assert make(ds.train_images, ds.train_labels, 0, np.random.default_rng(0)).shape == (0, 28, 28)


def test_junk_kinds_do_what_they_say():
    ds = _digit_like_dataset()
    images, labels = ds.train_images, ds.train_labels
    sorted_sources = {tuple(np.sort(x.ravel())) for x in images}
    scrambled = metrics.scrambled_digits(images, labels, 20, np.random.default_rng(0))
    assert all(tuple(np.sort(x.ravel())) in sorted_sources for x in scrambled)         # the same pixels, moved
    blurred = metrics.blurred_digits(images, labels, 20, np.random.default_rng(0))
    assert (blurred.max(axis=(1, 2)) == 255).all()                                     # rescaled to full range
    erased = metrics.half_erased_digits(images, labels, 40, np.random.default_rng(0))
    halves = [erased[:, :14], erased[:, 14:], erased[:, :, :14], erased[:, :, 14:]]
    assert all(any((h[i] == 0).all() for h in halves) for i in range(40))             # one half is empty

    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    a, b = metrics._pairs(images, labels, 200, rng_a)
    index = {x.tobytes(): y for x, y in zip(images, labels)}
    assert all(index[x.tobytes()] != index[y.tobytes()] for x, y in zip(a, b))        # two different classes
    np.testing.assert_array_equal(metrics.overlaid_digits(images, labels, 200, rng_b), np.maximum(a, b))
    blend = metrics.blended_digits(images, labels, 200, np.random.default_rng(7)).astype(int)
    assert (blend <= np.maximum(a, b)).all() and (blend >= np.minimum(a, b)).all()    # between the two

    junk = metrics.make_junk(images, labels, 70, np.random.default_rng(0))
    assert junk.shape == (70, 28, 28) and junk.dtype == np.uint8
    np.testing.assert_array_equal(junk, metrics.make_junk(images, labels, 70, np.random.default_rng(0)))
    only = metrics.make_junk(images, labels, 20, np.random.default_rng(0), kinds=["half_erased"])
    assert all(any((h[i] == 0).all() for h in (only[:, :14], only[:, 14:], only[:, :, :14], only[:, :, 14:]))
               for i in range(20))
    with pytest.raises(ValueError, match="two classes"):
        metrics.overlaid_digits(images, np.zeros_like(labels), 5, np.random.default_rng(0))


def test_recognisability_counts_the_samples_read_with_p_at_least_one_half():
    probs = np.array([[0.1] * 10,                                     # junk: uniform
                      np.eye(10)[3],                                  # sure
                      [0.5, 0.5] + [0] * 8,                           # exactly 0.5 counts
                      [0.45, 0.45, 0.1] + [0] * 7,                    # two readings: neither
                      [0.55, 0.45] + [0] * 8])
    assert metrics.RECOGNISABLE_PROBABILITY == 0.5
    assert metrics.recognisability(probs) == pytest.approx(3 / 5)
    assert metrics.recognisability(probs, threshold=0.9) == pytest.approx(1 / 5)
    assert metrics.recognisability(probs[:1]) == 0.0


def test_recogniser_is_cached_apart_from_the_classifier_and_adds_its_scores(tmp_path, monkeypatch):
    calls = []
    quick = functools.partial(metrics.train_classifier, epochs=1, max_steps=3, verbose=False)
    monkeypatch.setattr(metrics, "train_classifier", lambda *a, **k: calls.append(k) or quick(*a, **k))
    ds = _digit_like_dataset()
    rng_before = backend.get_rng_state()
    rec, info = metrics.get_recogniser(ds, cache_dir=tmp_path, verbose=False)
    assert _same_rng_state(backend.get_rng_state(), rng_before)
    assert calls[0]["junk"] is not None and calls[0]["seed"] == metrics.RECOGNISER_SEED != 0
    assert 0 <= info["test_accuracy"] <= 1 and 0 <= info["real_recognisability"] <= 1
    assert sorted(info["junk_recognisability"]) == sorted(metrics.JUNK_KINDS)
    assert all(0 <= v <= 1 for v in info["junk_recognisability"].values())
    again, info2 = metrics.get_recogniser(ds, cache_dir=tmp_path, verbose=False)
    assert len(calls) == 1 and info2 == info and "recogniser" in info["path"]
    for (k, a), b in zip(rec.state_dict().items(), again.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    clf, _ = metrics.get_classifier(ds, cache_dir=tmp_path, verbose=False)          # its own cache entry
    assert len(calls) == 2 and "junk" not in calls[1]

    fake = np.random.default_rng(1).uniform(-1, 1, (30, 28, 28)).astype(np.float32)
    plain = metrics.evaluate_images(fake, ds, clf)                                  # other callers: unchanged
    scores = metrics.evaluate_images(fake, ds, clf, recogniser=rec)
    assert "recognisability" not in plain and scores == dict(plain, **{k: scores[k] for k in
                                                                      ("recognisability", "real_recognisability")})
    _, real_probs = metrics.classifier_outputs(rec, ds.test_images)
    assert scores["real_recognisability"] == metrics.recognisability(real_probs) == info["real_recognisability"]
    assert "recognisable" not in metrics.format_scores(plain)
    line = next(line for line in metrics.format_scores(scores).splitlines() if line.startswith("recognisable"))
    assert f"{scores['recognisability']:.1%} of samples" in line and "p >= 0.5" in line


def test_evaluate_generator_scores_recognisability(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "default_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(metrics, "train_classifier",
                        functools.partial(metrics.train_classifier, epochs=1, max_steps=3, verbose=False))
    G, _ = models.build_models("mlp")
    scores = metrics.evaluate_generator(G, {"dataset": "mnist", "z_dim": 100}, n=20, dataset=_digit_like_dataset(),
                                        verbose=False)
    for key in ("recognisability", "real_recognisability", "recogniser_accuracy", "classifier_accuracy"):
        assert 0 <= scores[key] <= 1, key
    printed = metrics.format_scores(scores)
    assert "recognisable (junk-aware classifier reads it with p >= 0.5)" in printed
    assert "(junk-aware classifier: " in printed.splitlines()[-1]


@pytest.mark.slow
def test_recogniser_tells_digits_from_junk_on_the_mnist_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    ds = load_dataset("mnist", verbose=False)
    _, info = metrics.get_recogniser(ds, cache_dir=tmp_path, verbose=False)
    junk = info["junk_recognisability"]
    assert info["test_accuracy"] >= 0.95 and info["real_recognisability"] >= 0.9
    assert max(junk[k] for k in ("uniform_noise", "gaussian_noise", "scrambled", "blurred")) <= 0.05
    assert max(junk.values()) <= 0.4                                   # two digits overlaid: the hardest
