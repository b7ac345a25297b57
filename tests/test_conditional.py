"""Class-conditional GANs: the projection discriminator's backward, the conditional step, and
``--conditional`` from the command line (training, per-class grids, ``sample --class``, the
class accuracy of the evaluation, and the refusals)."""
import json

import numpy as np
import pytest
from PIL import Image

from npgan import backend, metrics, models, sample, train
from npgan.data import load_dataset
from npgan.gan import get_objective, gan_step
from npgan.gan.penalty import gradient_penalty
from npgan.gan.step import locate_nonfinite, mismatch_loss
from hypothesis import given, settings, strategies as st

from npgan.gradcheck import assert_gradients_close, check_function, check_layer, numerical_gradient
from npgan.layers import (BatchNorm1d, BatchNorm2d, ConditionalBatchNorm, Conv2d, ConvTranspose2d, Flatten, LeakyReLU,
                          Layer, Linear, ReLU, Sequential, Tanh, Unflatten)
from npgan.models.conditional import (ConditionalGenerator, ProjectionDiscriminator, class_labels, one_hot,
                                      with_conditional_batchnorm, with_labels)
from npgan.optim import Adam

from test_train import quick_classifier, tiny_args  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("NPGAN_OFFLINE", "1")


class Labelled(Layer):
    """``D(x, labels)`` with fixed labels, as a one-input layer for ``check_layer``."""

    def __init__(self, D, labels):
        self.D, self.labels = D, labels

    def forward(self, x):
        return self.D.forward(x, self.labels)

    def backward(self, dout):
        return self.D.backward(dout)


def small_projection_d(n_classes=3, channels=2, width=3):
    return ProjectionDiscriminator(Conv2d(channels, width, 3, 2, 1), LeakyReLU(0.2), Flatten(),
                                   Linear(width * 4 * 4, 1), n_classes=n_classes)


def test_projection_discriminator_backward_matches_finite_differences():
    backend.seed(0)
    D = small_projection_d().to("float64")
    x = backend.rng().standard_normal((5, 2, 8, 8))
    labels = backend.to_device(np.array([0, 2, 1, 2, 0]))
    result = check_layer(Labelled(D, labels), x)
    assert {"input", "D.embedding", "D.0.weight", "D.3.weight"} <= set(result.errors)
    assert_gradients_close(result, tol=1e-7)


def test_projection_adds_the_class_embedding_times_the_features():
    backend.seed(1)
    D = small_projection_d().to("float64")
    x = backend.rng().standard_normal((4, 2, 8, 8))
    labels = np.array([1, 1, 0, 2])
    out = backend.asnumpy(D.forward(x, backend.to_device(labels)))
    h = x
    for layer in D.layers[:-1]:
        h = layer.forward(h)
    plain = backend.asnumpy(D.layers[-1].forward(h))
    e = backend.asnumpy(D.embedding.data)[labels]
    np.testing.assert_allclose(out, plain + (e * backend.asnumpy(h)).sum(1, keepdims=True), rtol=1e-12)
    # Another label changes the score by <e_k - e_j, h>: D scores the class, not only realness.
    other = backend.asnumpy(D.forward(x, backend.to_device(np.array([0, 1, 0, 2]))))
    assert not np.allclose(out[:2], other[:2]) and np.allclose(out[2:], other[2:])


def test_projection_matches_pytorch():
    torch = pytest.importorskip("torch")
    backend.seed(2)
    D = small_projection_d().to("float64")
    x = backend.rng().standard_normal((6, 2, 8, 8))
    labels = np.array([0, 1, 2, 2, 1, 0])
    dout = backend.rng().standard_normal((6, 1))
    out = D.forward(x, backend.to_device(labels))
    D.zero_grad()
    dx = D.backward(dout)
    state = {k: torch.tensor(v, requires_grad=True) for k, v in D.state_dict().items()}
    tx = torch.tensor(backend.asnumpy(x), requires_grad=True)
    h = torch.nn.functional.leaky_relu(torch.nn.functional.conv2d(tx, state["0.weight"], state["0.bias"], 2, 1), 0.2)
    h = h.flatten(1)
    tout = h @ state["3.weight"].T + state["3.bias"] + (state["embedding"][torch.tensor(labels)] * h).sum(1, keepdim=True)
    tout.backward(torch.tensor(backend.asnumpy(dout)))
    np.testing.assert_allclose(backend.asnumpy(out), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(backend.asnumpy(dx), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in D.named_parameters():
        np.testing.assert_allclose(backend.asnumpy(p.grad), state[name].grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


# ---- conditional BatchNorm and the generator that feeds it the classes ----------------------
def conditional_batchnorm_case(n, features, n_classes, pixels, seed):
    """A float64 ConditionalBatchNorm with random scales and shifts, an input x and soft classes c
    (the layer is linear in c, so its gradient is checked at any c, not only one-hot rows)."""
    backend.seed(seed)
    layer = ConditionalBatchNorm(features, n_classes, dtype=np.float64)
    layer.weight.data[...] = 1 + 0.5 * backend.rng().standard_normal(layer.weight.shape)
    layer.bias.data[...] = backend.rng().standard_normal(layer.bias.shape)
    shape = (n, features) + ((pixels, pixels) if pixels else ())
    x = 2 + 3 * backend.rng().standard_normal(shape)
    c = backend.rng().random((n, n_classes))
    return layer, x, c


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 5), features=st.integers(1, 4), n_classes=st.integers(1, 4),
       pixels=st.sampled_from([0, 1, 3]), training=st.booleans(), seed=st.integers(0, 2**16))
def test_conditional_batchnorm_backward_matches_finite_differences(n, features, n_classes, pixels, training, seed):
    layer, x, c = conditional_batchnorm_case(n, features, n_classes, pixels, seed)
    layer.running_var[...] = 0.5 + backend.rng().random(features)
    layer.train(training)

    def forward(x, c, weight, bias):
        layer.weight.data, layer.bias.data = weight, bias
        return layer.forward(x, c)

    def backward(dout):
        layer.zero_grad()
        dx, dc = layer.backward(dout)
        return dx, dc, layer.weight.grad.copy(), layer.bias.grad.copy()

    result = check_function(forward, backward, [x, c, layer.weight.data.copy(), layer.bias.data.copy()],
                            names=["x", "c", "weight", "bias"])
    assert set(result.errors) == {"x", "c", "weight", "bias"}
    assert_gradients_close(result, tol=1e-6)


@pytest.mark.parametrize("pixels", [0, 3])
def test_conditional_batchnorm_matches_pytorch(pixels):
    """Against BatchNorm without affine parameters followed by the class's scale and shift."""
    torch = pytest.importorskip("torch")
    layer, x, c = conditional_batchnorm_case(6, 4, 3, pixels, seed=7)
    c = backend.to_device(one_hot(backend.to_device(np.array([0, 2, 1, 2, 2, 0])), 3, np.float64))
    dout = backend.rng().standard_normal(x.shape)
    out = layer.forward(x, c)
    dx, dc = layer.backward(dout)
    norm = (torch.nn.BatchNorm1d if pixels == 0 else torch.nn.BatchNorm2d)(4, affine=False).double()
    tx, tc = (torch.tensor(backend.asnumpy(a), requires_grad=True) for a in (x, c))
    tw, tb = (torch.tensor(backend.asnumpy(p.data), requires_grad=True) for p in (layer.weight, layer.bias))
    view = (6, 4) + (1,) * (x.ndim - 2)
    tout = norm(tx) * (tc @ tw).view(view) + (tc @ tb).view(view)
    tout.backward(torch.tensor(backend.asnumpy(dout)))
    for ours, theirs in [(out, tout), (dx, tx.grad), (dc, tc.grad), (layer.weight.grad, tw.grad),
                         (layer.bias.grad, tb.grad), (layer.running_mean, norm.running_mean),
                         (layer.running_var, norm.running_var)]:
        np.testing.assert_allclose(backend.asnumpy(ours), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    layer.eval(), norm.eval()                                       # the running statistics, per class
    np.testing.assert_allclose(backend.asnumpy(layer.forward(x, c)),
                               (norm(tx) * (tc @ tw).view(view) + (tc @ tb).view(view)).detach().numpy(), rtol=1e-10)


def test_conditional_batchnorm_refuses_classes_of_the_wrong_shape():
    layer, x, c = conditional_batchnorm_case(4, 2, 3, 0, seed=0)
    with pytest.raises(ValueError, match=r"ConditionalBatchNorm: expected classes of shape \(4, 3\)"):
        layer.forward(x, c[:, :2])


def small_conditional_g(n_classes=3, z_dim=4):
    backend.seed(3)
    G = Sequential(Linear(z_dim + n_classes, 12), BatchNorm1d(12), ReLU(), Unflatten(1, (3, 2, 2)),
                   ConvTranspose2d(3, 2, 4, 2, 1), BatchNorm2d(2), Tanh())
    return with_conditional_batchnorm(G, n_classes).to("float64")


def test_conditional_generator_backward_matches_finite_differences():
    """Every parameter, and the input gradient, whose one-hot columns gather what each
    ConditionalBatchNorm sends back to the classes."""
    G = small_conditional_g()
    assert isinstance(G, ConditionalGenerator) and isinstance(G[1], ConditionalBatchNorm) and isinstance(G[5], ConditionalBatchNorm)
    x = with_labels(backend.rng().standard_normal((5, 4)), backend.to_device(np.array([0, 2, 1, 2, 0])), 3)
    result = check_layer(G, x)
    assert {"input", "0.weight", "1.weight", "1.bias", "5.weight", "4.weight"} <= set(result.errors)
    assert_gradients_close(result, tol=1e-6)


def test_the_class_sets_each_batchnorm_scale_and_shift():
    """In eval mode one sample's image depends only on its own code and class: another class
    changes that image and no other, and a step trains the rows of the classes in the batch only."""
    G = small_conditional_g()
    z = backend.rng().standard_normal((4, 4))
    labels = np.array([0, 1, 0, 1])
    G.eval()
    out = backend.asnumpy(G.forward(with_labels(z, backend.to_device(labels), 3)))
    relabelled = backend.asnumpy(G.forward(with_labels(z, backend.to_device(np.array([2, 1, 0, 1])), 3)))
    assert not np.allclose(out[0], relabelled[0]) and np.array_equal(out[1:], relabelled[1:])
    G.train()
    G.zero_grad()
    G.forward(with_labels(z, backend.to_device(labels), 3))
    G.backward(backend.rng().standard_normal(out.shape))
    for k in (1, 5):
        grad = backend.asnumpy(G[k].weight.grad)
        assert np.all(np.abs(grad[:2]).sum(axis=1) > 0) and np.all(grad[2] == 0)     # class 2 was not drawn


def test_conditional_inputs_and_labels():
    z = np.zeros((4, 3), np.float32)
    packed = with_labels(backend.to_device(z), backend.to_device(np.array([2, 0, 1, 2])), 3)
    np.testing.assert_array_equal(backend.asnumpy(packed)[:, 3:], np.eye(3, dtype=np.float32)[[2, 0, 1, 2]])
    assert packed.dtype == np.float32
    np.testing.assert_array_equal(class_labels(7, 3), [0, 1, 2, 0, 1, 2, 0])
    assert one_hot(backend.to_device(np.array([1])), 4, np.float64).shape == (1, 4)


def test_conditional_step_trains_every_parameter_and_uses_the_labels():
    backend.seed(3)
    G, D = models.build_models("dcgan", n_classes=10)
    assert isinstance(D, ProjectionDiscriminator) and G.layers[0].in_features == 110
    opt_G, opt_D = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)), Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    before = {**{f"G.{k}": v for k, v in G.state_dict().items()}, **{f"D.{k}": v for k, v in D.state_dict().items()}}
    labels = backend.to_device(np.arange(8) % 10)
    real = backend.to_device(np.random.default_rng(0).uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32))
    z = with_labels(backend.rng().standard_normal((8, 100), dtype=np.float32), labels, 10)
    stats = gan_step(G, D, opt_G, opt_D, get_objective("ns"), real, z, check=True, labels=labels)
    assert all(np.isfinite(float(v)) for v in stats.values())
    after = {**{f"G.{k}": v for k, v in G.state_dict().items()}, **{f"D.{k}": v for k, v in D.state_dict().items()}}
    unchanged = [k for k in before if "running" not in k and "num_batches" not in k
                 and np.array_equal(before[k], after[k])]
    assert unchanged == []                                      # the embedding and G's label weights too
    # Only the rows of the classes in the batch move in the embedding.
    moved = ~np.all(before["D.embedding"] == after["D.embedding"], axis=1)
    np.testing.assert_array_equal(moved, np.arange(10) < 8)


def test_the_mismatch_term_is_the_fake_loss_of_real_images_with_wrong_classes():
    """Its value and parameter gradients against central differences of
    weight * objective.discriminator_fake(D(real, wrong)), in float64."""
    backend.seed(4)
    D = small_projection_d().to("float64")
    objective = get_objective("ns")
    real = backend.rng().standard_normal((5, 2, 8, 8))
    wrong = backend.to_device(np.array([1, 0, 2, 0, 1]))

    def loss():
        return 0.7 * objective.discriminator_fake(D.forward(real, wrong))[0]

    D.zero_grad()
    value = mismatch_loss(D, objective, real, lambda x: D.forward(x, wrong), 0.7)
    assert float(value) == pytest.approx(float(loss()), rel=1e-12)
    for name, p in D.named_parameters():
        np.testing.assert_allclose(backend.asnumpy(p.grad), backend.asnumpy(numerical_gradient(loss, p.data)),
                                   rtol=1e-5, atol=1e-9, err_msg=name)
    # Only the rows of the wrong classes shown move in the embedding.
    assert np.all(backend.asnumpy(D.embedding.grad)[[0, 1, 2]].any(axis=1))


def test_the_training_loop_shows_d_each_real_image_with_another_class(monkeypatch):
    from npgan.gan import loop
    seen = []

    def record(G, D, opt_G, opt_D, objective, real, z, check, view, labels, wrong_labels, mismatch_weight, g_loss):
        seen.append((backend.asnumpy(labels), backend.asnumpy(wrong_labels), mismatch_weight))
        return {"loss_D": 0.0, "loss_G": 0.0, "D_x": 0.5, "D_G_z": 0.5}

    monkeypatch.setattr(loop, "gan_step", record)
    monkeypatch.setattr(loop.health, "check", lambda *args, **kwargs: {})     # no G to probe here
    batches = iter([(backend.to_device(np.zeros((64, 1, 2, 2), np.float32)),
                     backend.to_device(np.arange(64) % 3)) for _ in range(3)])
    loop.fit_gan(None, None, None, None, get_objective("ns"), lambda: next(batches), 3, loop.MetricsLog(None),
                 z_dim=2, batch_size=64, z_fixed=None, real_spread=1.0, n_classes=3, mismatch_weight=0.5,
                 log_every=100, progress=False)
    assert len(seen) == 3
    for labels, wrong, weight in seen:
        assert weight == 0.5 and np.all(wrong != labels) and np.all((0 <= wrong) & (wrong < 3))
    assert len({tuple(w) for _, w, _ in seen}) == 3                 # drawn afresh at each step


def test_a_nan_class_embedding_is_named_by_the_guard():
    backend.seed(4)
    G, D = models.build_models("dcgan", n_classes=10)
    D.embedding.data[3] = np.nan
    labels = backend.to_device(np.arange(4))
    z = with_labels(backend.rng().standard_normal((4, 100), dtype=np.float32), labels, 10)
    real = backend.to_device(np.zeros((4, 1, 28, 28), np.float32))
    assert locate_nonfinite(G, D, z, real, labels) == "D.embedding"


def test_a_gradient_penalty_refuses_the_projection_discriminator():
    D = small_projection_d()
    with pytest.raises(ValueError, match="ProjectionDiscriminator.*projection term"):
        gradient_penalty(D, backend.to_device(np.zeros((2, 2, 8, 8), np.float32)), "r1", 10.0)


# ---- the command line --------------------------------------------------------------------
@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cond"
    backend.use("numpy")
    assert train.main(tiny_args(out, "--conditional")) == 0
    return out


def test_conditional_run_records_its_classes_and_draws_one_row_per_class(conditional_run):
    config = json.loads((conditional_run / "config.json").read_text())
    assert config["conditional"] is True and config["n_classes"] == 10
    G, saved, _ = models.load_generator(conditional_run)
    assert saved["n_classes"] == 10 and G.layers[0].in_features == 110
    with Image.open(conditional_run / "samples" / "step_000006.png") as grid:
        pixels = np.asarray(grid)
    assert pixels.shape == (302, 12 + 302)                       # 10 rows (classes) of 10, a label margin
    assert all(pixels[2 + 30 * k:30 * (k + 1), :12].max() > 200 for k in range(10))   # each row is labelled


def test_sample_draws_the_class_asked_for(conditional_run, tmp_path, capsys):
    out = tmp_path / "threes.npy"
    assert sample.main([str(conditional_run), "--n", "12", "--class", "3", "--out", str(out),
                        "--grid", str(tmp_path / "g.png")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "threes_labels.npy"), np.full(12, 3))
    assert np.load(out).shape == (12, 28, 28)
    assert sample.main([str(conditional_run), "--n", "30", "--out", str(tmp_path / "all.npy"),
                        "--grid", str(tmp_path / "all.png")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "all_labels.npy"), np.arange(30) % 10)
    with Image.open(tmp_path / "all.png") as grid:               # 10 rows (one per class) of 3, labelled
        assert grid.size == (12 + 3 * 30 + 2, 302)
    # The same noise and class give the same image whatever else is drawn beside it.
    images = np.load(tmp_path / "all.npy")
    again = sample.main([str(conditional_run), "--n", "30", "--class", "all", "--out", str(tmp_path / "again.npy")])
    assert again == 0 and np.array_equal(np.load(tmp_path / "again.npy"), images)


@pytest.mark.parametrize("value, message", [("10", "--class 10: mnist has classes 0-9"),
                                            ("-1", "--class -1: mnist has classes 0-9"),
                                            ("three", "--class three: mnist has classes 0-9")])
def test_sample_refuses_a_class_the_data_does_not_have(conditional_run, tmp_path, capsys, value, message):
    with pytest.raises(SystemExit) as exc:
        sample.main([str(conditional_run), "--class", value, "--out", str(tmp_path / "x.npy")])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()


def test_sample_refuses_a_class_for_an_unconditional_run(tmp_path, capsys):
    out = tmp_path / "plain"
    assert train.main(tiny_args(out, steps=1)) == 0
    with pytest.raises(SystemExit) as exc:
        sample.main([str(out), "--class", "3", "--out", str(tmp_path / "x.npy")])
    assert exc.value.code == 2 and "trained without --conditional" in capsys.readouterr().err
    # Resuming it as a conditional run is refused too, before anything is written.
    before = (out / "checkpoint.npz").read_bytes()
    with pytest.raises(SystemExit) as exc:
        train.main(tiny_args(out, "--conditional", "--resume", steps=2))
    assert exc.value.code == 2 and "trained without --conditional" in capsys.readouterr().err
    assert (out / "checkpoint.npz").read_bytes() == before


@pytest.mark.parametrize("loss", ["wgan-gp", "r1"])
def test_conditional_refuses_a_gradient_penalty(tmp_path, capsys, loss):
    with pytest.raises(SystemExit) as exc:
        train.main(tiny_args(tmp_path / "x", "--conditional", "--loss", loss))
    assert exc.value.code == 2 and f"--conditional does not combine with --loss {loss}" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_conditional_resume_continues_bitwise(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train.main(tiny_args(whole, "--conditional", steps=4)) == 0
    assert train.main(tiny_args(parts, "--conditional", steps=2)) == 0
    assert train.main(tiny_args(parts, "--resume", steps=4)) == 0
    a, b = (np.load(p / "checkpoint.npz") for p in (whole, parts))
    weights = [k for k in a.files if not k.startswith("meta")]
    assert weights and all(np.array_equal(a[k], b[k]) for k in weights)


def test_conditional_batchnorm_is_recorded_and_resumed_as_trained(tmp_path, capsys):
    """New conditional runs condition G's BatchNorms; a run trained with G conditioned at its
    input only (--no-conditional-batchnorm, or a config from before the setting) resumes so."""
    with_cbn, input_only = tmp_path / "cbn", tmp_path / "input"
    assert train.main(tiny_args(with_cbn, "--conditional", steps=1)) == 0
    assert train.main(tiny_args(input_only, "--conditional", "--no-conditional-batchnorm", steps=1)) == 0
    for run, expected in ((with_cbn, True), (input_only, False)):
        config = json.loads((run / "config.json").read_text())
        assert config["conditional_batchnorm"] is expected and config["mismatch_weight"] == train.MISMATCH_WEIGHT
        G = models.load_generator(run)[0]
        assert isinstance(G, ConditionalGenerator) is expected
        assert any(isinstance(m, ConditionalBatchNorm) for m in G.modules()) is expected
    saved = dict(json.loads((input_only / "config.json").read_text()))
    del saved["conditional_batchnorm"], saved["mismatch_weight"]
    args = train.build_parser().parse_args(tiny_args(input_only, "--resume"))
    resumed = train._merge_resumed(args, saved, train.build_parser())
    assert resumed["conditional_batchnorm"] is False and not resumed["mismatch_weight"]
    with pytest.raises(SystemExit) as exc:
        train.main(tiny_args(input_only, "--resume", "--conditional-batchnorm", steps=2))
    assert exc.value.code == 2 and "trained without --conditional-batchnorm" in capsys.readouterr().err
    for flag in (["--conditional-batchnorm"], ["--mismatch-weight", "0.5"]):
        with pytest.raises(SystemExit) as exc:
            train.main(tiny_args(tmp_path / "plain", *flag))
        assert exc.value.code == 2 and f"{flag[0]} is a setting of a class-conditional GAN" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        train.main(tiny_args(tmp_path / "plain", "--conditional", "--mismatch-weight", "-1"))
    assert exc.value.code == 2 and "--mismatch-weight must be a non-negative number" in capsys.readouterr().err
    assert not (tmp_path / "plain").exists()
    assert train.main(tiny_args(input_only, "--resume", steps=2)) == 0


def test_evaluation_reports_the_class_accuracy(conditional_run, quick_classifier, capsys):
    from npgan import evaluate
    assert evaluate.main([str(conditional_run), "--n", "40", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 40 and 0 <= scores["class_accuracy"] <= 1 and len(scores["per_class_accuracy"]) == 10


def test_class_accuracy_counts_the_images_read_as_their_class(quick_classifier):
    dataset = load_dataset("mnist", verbose=False)
    clf, _ = metrics.get_classifier(dataset, verbose=False)
    images = dataset.test_images[:200].astype(np.float32) / 127.5 - 1
    probs = metrics.classifier_outputs(clf, images)[1]
    truth = metrics.evaluate_images(images, dataset, clf, labels=probs.argmax(1))
    assert truth["class_accuracy"] == 1.0
    real = metrics.accuracy(clf, dataset.test_images, dataset.test_labels)
    assert truth["real_class_accuracy"] == pytest.approx(real) and len(truth["real_per_class_accuracy"]) == 10
    wrong = metrics.evaluate_images(images, dataset, clf, labels=(probs.argmax(1) + 1) % 10)
    asked = set((probs.argmax(1) + 1) % 10)                     # a class nobody asked for has no accuracy
    assert wrong["class_accuracy"] == 0.0
    assert wrong["per_class_accuracy"] == [0.0 if k in asked else None for k in range(10)]
