"""Evaluation metrics: Fréchet distance, class histogram, KL from uniform, the classifier."""
import functools
import math

import numpy as np
import pytest

from npgan import backend, losses, metrics
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
