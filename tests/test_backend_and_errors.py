"""The backend swap, dtypes and seeding; clear errors for bad input."""
import importlib.util

import numpy as np
import pytest

from npgan import backend, layers as L


def test_default_is_float32_on_current_backend(xp):
    layer = L.Conv2d(2, 3, 3)
    assert layer.weight.data.dtype == np.float32 and backend.get_array_module(layer.weight.data) is xp
    out = layer.forward(xp.ones((1, 2, 5, 5), dtype=xp.float32))
    assert out.dtype == np.float32
    assert layer.backward(xp.ones_like(out)).dtype == np.float32


def test_float64_on_request(xp):
    layer = L.Linear(3, 2, dtype=np.float64)
    assert layer.weight.data.dtype == np.float64
    assert L.Linear(3, 2).to("float64").weight.grad.dtype == np.float64


def test_seeding_makes_initial_weights_reproducible():
    backend.seed(42)
    a = backend.asnumpy(L.Linear(4, 4).weight.data)
    backend.seed(42)
    b = backend.asnumpy(L.Linear(4, 4).weight.data)
    backend.seed(43)
    c = backend.asnumpy(L.Linear(4, 4).weight.data)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_rng_state_round_trip():
    backend.seed(5)
    state = backend.get_rng_state()
    a = backend.asnumpy(backend.rng().standard_normal(4))
    backend.set_rng_state(state)
    assert np.array_equal(a, backend.asnumpy(backend.rng().standard_normal(4)))


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_cupy_missing_gives_one_clear_error():
    before = backend.name()
    with pytest.raises(backend.BackendError, match="CuPy is not installed"):
        backend.use("cupy")
    assert backend.name() == before                                     # the backend in use stays usable


def test_unknown_backend_is_rejected():
    with pytest.raises(backend.BackendError, match="unknown backend 'jax'"):
        backend.use("jax")


def test_to_device_and_asnumpy_round_trip(xp):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    dev = backend.to_device(host)
    assert backend.get_array_module(dev) is xp
    assert np.array_equal(backend.asnumpy(dev), host)


@pytest.mark.parametrize("layer,shape,match", [
    (L.Conv2d(3, 8, 3), (2, 3, 5), r"Conv2d: expected a 4-D input, got shape \(2, 3, 5\)"),
    (L.Conv2d(3, 8, 3), (2, 1, 5, 5), r"Conv2d: expected input of shape \(N, 3, \*, \*\), got \(2, 1, 5, 5\)"),
    (L.Conv2d(3, 8, 5), (2, 3, 3, 3), r"Conv2d: input of shape \(2, 3, 3, 3\) is smaller than"),
    (L.ConvTranspose2d(4, 2, 3), (1, 2, 3, 3), r"ConvTranspose2d: expected input of shape \(N, 4, \*, \*\)"),
    (L.Linear(10, 2), (4, 9), r"Linear: expected input of shape \(N, 10\), got \(4, 9\)"),
    (L.BatchNorm2d(3), (4, 3, 2), r"BatchNorm2d: expected a 4-D input, got shape \(4, 3, 2\)"),
    (L.BatchNorm1d(5), (4, 6), r"BatchNorm1d: expected input of shape \(N, 5\), got \(4, 6\)"),
    (L.Unflatten(1, (3, 4)), (2, 10), r"Unflatten: dim 1 of input shape \(2, 10\) has 10 values, which do not split into \(3, 4\)"),
    (L.ChannelwiseLinear(2, (4, 4)), (1, 2, 4, 5), r"ChannelwiseLinear: expected input of shape \(N, 2, 4, 4\)"),
])
def test_bad_shapes_name_the_layer_and_shapes(xp, layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer.forward(xp.zeros(shape, dtype=xp.float32))


def test_batchnorm_needs_more_than_one_value_per_channel(xp):
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        L.BatchNorm1d(3).forward(xp.zeros((1, 3), dtype=xp.float32))


def test_mixed_dtypes_are_caught(xp):
    with pytest.raises(TypeError, match="input dtype float64 does not match parameter dtype float32"):
        L.Conv2d(1, 1, 3).forward(xp.zeros((1, 1, 4, 4), dtype=xp.float64))


def test_mixed_backends_are_caught():
    cupy = pytest.importorskip("cupy")
    backend.use("numpy")
    layer = L.Linear(3, 2)
    with pytest.raises(TypeError, match="mixed backends"):
        layer.forward(cupy.zeros((1, 3), dtype=cupy.float32))


def test_state_dict_rejects_wrong_shapes_and_keys():
    layer = L.Sequential(L.Linear(3, 2))
    state = layer.state_dict()
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(3, 3\), expected \(2, 3\)"):
        layer.load_state_dict({**state, "0.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(KeyError, match="missing keys"):
        layer.load_state_dict({"0.weight": state["0.weight"]})


def test_backward_never_writes_into_dout(xp):
    net = L.Sequential(L.Conv2d(2, 3, 3, 1, 1), L.BatchNorm2d(3), L.LeakyReLU(0.2), L.MaxPool2d(2),
                       L.Upsample(2), L.ReLU(), L.Flatten(), L.Linear(3 * 4 * 4, 2), L.Tanh())
    out = net.forward(backend.to_device(np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)))
    dout = xp.ones_like(out)
    net.backward(dout)
    assert bool((dout == 1).all())


def test_gradients_accumulate(xp):
    layer = L.Linear(3, 2)
    x = xp.ones((4, 3), dtype=xp.float32)
    layer.forward(x), layer.backward(xp.ones((4, 2), dtype=xp.float32))
    first = backend.asnumpy(layer.weight.grad).copy()
    layer.forward(x), layer.backward(xp.ones((4, 2), dtype=xp.float32))
    np.testing.assert_allclose(backend.asnumpy(layer.weight.grad), 2 * first)
    layer.zero_grad()
    assert not backend.asnumpy(layer.weight.grad).any()


def test_train_eval_propagate_and_parameters_are_named_like_pytorch():
    from npgan.models import dcgan
    D = dcgan.Discriminator()
    D.eval()
    assert all(not m.training for m in D.modules())
    D.train()
    assert all(m.training for m in D.modules())
    assert [k for k, _ in D.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight",
                                                     "3.bias", "6.weight", "6.bias"]
    assert sum(p.data.size for p in D.parameters()) == 64 * 16 + 64 + 128 * 64 * 16 + 128 + 256 + 6272 + 1


# ---- the layer contract, checked for every layer ---------------------------------------
def test_sequential_takes_layers_only_and_each_once():
    lin = L.Linear(3, 2)
    for entries, message in (((lin, L.ReLU), "entry 1 is <class .*ReLU.*not an npgan layer \\(a class: call it"),
                             (([lin, L.ReLU()],), "entry 0 is \\[.*pass the layers one by one"),
                             ((lin, object()), "entry 1 is <object object")):
        with pytest.raises(TypeError, match=message):
            L.Sequential(*entries)
    with pytest.raises(ValueError, match="entries 0 and 2 are the same Linear object"):
        L.Sequential(lin, L.Tanh(), lin)


def test_tied_weights_are_listed_once_and_get_both_gradients():
    """Sharing a Parameter ties two layers: the model lists it once (an optimizer steps it once)
    and backward sums its gradient over both uses, which the gradient check confirms."""
    from npgan.gradcheck import assert_gradients_close, check_layer
    backend.seed(0)
    first, second = L.Linear(3, 3), L.Linear(3, 3)
    second.weight = first.weight
    model = L.Sequential(first, L.Tanh(), second).to("float64")
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    x = backend.rng().standard_normal((4, 3))
    assert_gradients_close(check_layer(model, x))


def test_a_subclass_may_change_the_shape_around_its_parents_forward_and_backward(xp):
    """Only the layer's own (outermost) backward checks dout: the parent's, called through
    super(), sees the inner shape."""
    class LinearWithTrailingAxis(L.Linear):
        def forward(self, x):
            return super().forward(x)[..., None]

        def backward(self, dout):
            return super().backward(dout[..., 0])

    layer = LinearWithTrailingAxis(3, 2)
    out = layer.forward(xp.ones((4, 3), dtype=xp.float32))
    assert out.shape == (4, 2, 1) and layer.backward(xp.ones((4, 2, 1), dtype=xp.float32)).shape == (4, 3)
    with pytest.raises(ValueError, match="LinearWithTrailingAxis.backward: dout has shape \\(4, 2\\)"):
        layer.backward(xp.ones((4, 2), dtype=xp.float32))


def test_backward_checks_dout_and_that_forward_ran(xp):
    conv = L.Conv2d(1, 2, 3)
    with pytest.raises(RuntimeError, match="Conv2d.backward called before Conv2d.forward"):
        conv.backward(xp.zeros((2, 2, 3, 3), dtype=xp.float32))
    conv.forward(xp.zeros((2, 1, 5, 5), dtype=xp.float32))                    # out (2, 2, 3, 3)
    with pytest.raises(ValueError, match=r"dout has shape \(2, 2, 9, 1\), the output .* \(2, 2, 3, 3\)"):
        conv.backward(xp.zeros((2, 2, 9, 1), dtype=xp.float32))                # same size, wrong layout
    relu = L.ReLU()
    relu.forward(xp.ones((4, 3), dtype=xp.float32))
    with pytest.raises(ValueError, match="ReLU.backward: dout has shape"):
        relu.backward(xp.ones(3, dtype=xp.float32))                           # would broadcast


@pytest.mark.parametrize("make, error, message", [
    (lambda: L.Conv2d(4, 4, 0), ValueError, "Conv2d: kernel_size must be at least 1"),
    (lambda: L.Conv2d(4, 4, 3, stride=0), ValueError, "stride must be at least 1"),
    (lambda: L.Conv2d(4, 4, 3, padding=-1), ValueError, "padding must be at least 0"),
    (lambda: L.Conv2d(4, 4, 3, dilation=0), ValueError, "dilation must be at least 1"),
    (lambda: L.Conv2d(4, 4, 2.5), TypeError, "kernel_size must be an int or a pair of ints, got 2.5"),
    (lambda: L.Conv2d(4, 4, 3, 1, 1, 1, 2), TypeError, "positional argument"),           # torch's groups slot
    (lambda: L.Conv2d(0, 4, 3), ValueError, "channel and feature counts must be positive, got 0"),
    (lambda: L.ConvTranspose2d(1, 1, 3, output_padding=-1), ValueError, "output_padding must be at least 0"),
    (lambda: L.Linear(3, 2.0), TypeError, "channel and feature counts must be integers, got 2.0"),
    (lambda: L.MaxPool2d(2, 2, padding=2), ValueError, "padding \\(2, 2\\) must be at most half"),
    (lambda: L.AvgPool2d(0), ValueError, "AvgPool2d: kernel_size must be at least 1"),
    (lambda: L.BatchNorm2d(3, momentum=None), ValueError, "momentum=None, a cumulative average, is not supported"),
])
def test_impossible_layer_arguments_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_inputs_too_small_for_the_window_are_refused(xp):
    x = xp.zeros((2, 1, 5, 5), dtype=xp.float32)
    for pool in (L.MaxPool2d(7), L.AvgPool2d(7)):
        with pytest.raises(ValueError, match="smaller than the window"):
            pool.forward(x)
    with pytest.raises(ValueError, match="ConvTranspose2d: input of shape \\(2, 1, 2, 2\\) gives an empty output"):
        L.ConvTranspose2d(1, 1, 1, padding=1).forward(x[:, :, :2, :2])


def test_integer_inputs_and_dtypes_are_refused(xp):
    conv = L.Conv2d(1, 2, 3)
    with pytest.raises(TypeError, match="expected a floating-point input, got dtype int64; cast it"):
        conv.forward(xp.zeros((1, 1, 5, 5), dtype=xp.int64))
    for wrong in ("int64", "gpu"):
        with pytest.raises(TypeError, match="expected 'numpy' or 'cupy' \\(a backend\\) or a floating-point dtype"):
            conv.to(wrong)
    from npgan.losses import bce_with_logits_forward, mse_forward
    with pytest.raises(TypeError, match="losses \\(logits, predictions\\): expected a floating-point input"):
        mse_forward(xp.asarray([1, 2]), xp.asarray([0.5, 0.5]))
    with pytest.raises(TypeError, match="losses \\(logits, predictions\\): expected a floating-point input"):
        bce_with_logits_forward(xp.asarray([[3]]), 0.9)
    empty, _ = mse_forward(xp.zeros((0, 3), dtype=xp.float32), 0.0, reduction="sum")   # a scalar target fits
    assert float(empty) == 0


def test_load_state_dict_checks_buffers_and_changes_nothing_on_error():
    bn = L.BatchNorm1d(2)
    state = bn.state_dict()
    state["weight"] = np.full(2, 7.0, np.float32)
    state["running_mean"] = np.zeros(1, np.float32)                           # would broadcast into (2,)
    with pytest.raises(ValueError, match="'running_mean' has shape \\(1,\\), expected \\(2,\\)"):
        bn.load_state_dict(state)
    assert np.all(backend.asnumpy(bn.weight.data) == 1)                       # the weight was not loaded either


def test_unflatten_and_reshape_infer_one_free_size_like_pytorch(xp):
    x = xp.zeros((2, 12), dtype=xp.float32)
    assert L.Unflatten(1, (3, -1)).forward(x).shape == (2, 3, 4)
    assert L.Reshape(-1).forward(x).shape == (2, 12) and L.Reshape(2, -1, 3).forward(x).shape == (2, 2, 2, 3)
    with pytest.raises(ValueError, match="12 values, which do not split into \\(5, -1\\)"):
        L.Unflatten(1, (5, -1)).forward(x)
    with pytest.raises(ValueError, match="at most one -1"):
        L.Reshape(-1, -1).forward(x)
    for layer in (L.LeakyReLU(), L.Dropout(0.5)):
        with pytest.raises(TypeError, match="expected a floating-point input"):
            layer.forward(xp.arange(3))


def test_every_command_line_option_has_help():
    """`--help` explains every option of every command and subcommand, defaults included."""
    import argparse

    from npgan import evaluate, train, translate
    from npgan.inpaint import cli as inpaint
    from npgan.cli import run_parser

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    roots = [train.build_parser(), evaluate.build_parser(), translate.build_parser(), inpaint.build_parser(),
             run_parser("sample", "", n_default=1, n_min=1)]
    missing = [f"{parser.prog} {action.option_strings or action.dest}" for root in roots for parser in parsers(root)
               for action in parser._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help]
    assert not missing, missing
