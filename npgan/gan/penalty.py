"""Gradient penalties on a critic's input gradient, with an exact hand-written second-order pass.

A penalty is a function of g_n = dD/dx at each sample n of a batch x:

    WGAN-GP (Gulrajani et al. 2017):  P = weight * mean_n (||g_n|| - 1)^2   on x_hat = a x + (1 - a) G(z)
    R1 (Mescheder et al. 2018):       P = (weight / 2) * mean_n ||g_n||^2    on real x   (weight = gamma)

(a ~ U(0, 1) per sample and G(z) a constant: the caller makes x_hat.) D's parameter gradient of
P needs the derivative of a gradient. Without autograd it is one more pass::

    D.forward(x)                      every layer keeps its masks
    backward from ones                delta_l, the gradient at each layer's output; g = delta_0
    u = dP/dg                         per sample, held fixed
    t_0 = u;  t_l = J_l t_{l-1}       the tangent pass: Linear/Conv W t (no bias), activations
                                      slope * t, shapes reshape; t_L = <g_n, u_n> per sample
    dW_l += delta_l (x) t_{l-1}       each layer's usual weight gradient with its input replaced by
                                      its tangent; db_l += 0

This is exact for critics of Linear, Conv2d, ReLU, LeakyReLU, Dropout (a fixed mask per forward)
and shape layers: their second derivative h'' is 0 away from the kinks, so the adjoint of the
tangent path equals the ordinary backward's delta and nothing else contributes. Other layers
refuse, naming themselves: BatchNorm mixes the samples of a batch, so a per-sample gradient
penalty through it is not defined.
"""
from ..backend import get_array_module
from ..layers import Sequential, frozen

KINDS = ("wgan-gp", "r1")


def critic_layers(D, prefix="D"):
    """``[(label, layer)]``: the leaf layers of a Sequential critic in forward order, nested
    Sequentials opened (labels ``D.3`` or ``D.1.0``), each followed by its class name."""
    if not isinstance(D, Sequential):
        raise TypeError(f"gradient_penalty: the critic must be a Sequential of layers with a second-order pass, "
                        f"got {type(D).__name__}")
    if D.no_second_order_reason:                                           # a conditional projection D
        raise ValueError(f"gradient penalty: {prefix} ({type(D).__name__}): {D.no_second_order_reason}")
    found = []
    for key, layer in D.named_children():
        label = f"{prefix}.{key}"
        found += critic_layers(layer, label) if isinstance(layer, Sequential) else [(label, layer)]
    return found


def require_second_order(D):
    """Refuse a critic containing a layer without the second-order pass (before any work),
    naming it: ``D.3 (BatchNorm2d) has no second-order pass: BatchNorm mixes samples, ...``."""
    layers = critic_layers(D)
    for label, layer in layers:
        if not layer.has_second_order:
            try:
                layer.tangent(None)
            except NotImplementedError as err:
                raise ValueError(f"gradient penalty: {label} ({type(layer).__name__}): {err}") from None
    return layers


def input_gradient(layers, x):
    """Forward the layers on x, then backward from ones without adding parameter gradients.

    Returns (D(x) (N, 1), g = dD/dx like x, deltas: the gradient at each layer's output, in
    layer order)."""
    xp = get_array_module(x)
    out = x
    for _, layer in layers:
        out = layer.forward(out)                                           # caches hold the masks
    deltas = [None] * len(layers)
    dout = xp.ones_like(out)                                               # d sum_n D(x_n) / d D(x_n)
    first = layers[0][1]
    needs = first.needs_input_grad
    first.needs_input_grad = True                                          # g is dD/dx: the input's gradient
    try:
        for i in range(len(layers) - 1, -1, -1):
            deltas[i] = dout
            dout = layers[i][1].backward(dout)
    finally:
        first.needs_input_grad = needs
    return out, dout, deltas


def penalty_and_direction(g, kind, weight):
    """P (0-d) and u = dP/dg (like g) for the penalty ``kind`` on per-sample gradients g."""
    xp = get_array_module(g)
    n = g.shape[0]
    axes = tuple(range(1, g.ndim))
    if kind == "r1":
        sq = (g * g).sum(axis=axes)                                        # (N,) ||g_n||^2
        return (0.5 * weight) * sq.mean(), g * g.dtype.type(weight / n)
    if kind == "wgan-gp":
        norm = xp.sqrt((g * g).sum(axis=axes))                             # (N,) ||g_n||
        p = weight * ((norm - 1) ** 2).mean()
        # d||g||/dg = g / ||g||, taken as 0 at g = 0 (as PyTorch's norm does)
        scale = xp.where(norm > 0, (2 * weight / n) * (norm - 1) / xp.where(norm > 0, norm, 1), 0)
        return p, g * scale.astype(g.dtype).reshape((n,) + (1,) * (g.ndim - 1))
    raise ValueError(f"unknown gradient penalty {kind!r}: one of {', '.join(KINDS)}")


def tangent_pass(layers, u):
    """t_0 = u, t_l = J_l t_{l-1} through every layer (frozen masks); returns t_L = <g_n, u_n> (N, 1)."""
    t = u
    for _, layer in layers:
        t = layer.tangent(t)
    return t


def gradient_penalty(D, x, kind, weight, return_tangent=False):
    """The gradient penalty ``kind`` ('wgan-gp' or 'r1') of critic D at x; adds its parameter
    gradient into D's ``p.grad`` (on top of whatever the D loss put there).

    Args:
        D: a Sequential critic of layers with a second-order pass (no BatchNorm).
        x: the points (N, ...): x_hat = a x + (1 - a) G(z) for 'wgan-gp', real data for 'r1'.
        weight: lambda for 'wgan-gp', gamma for 'r1'.
        return_tangent: also return the tangent pass's t_L (N, 1) (a test: sum t_L = sum <g, u>).
    Returns:
        (P 0-d, g = dD/dx like x) [+ (t_L, u)].
    Raises:
        ValueError naming the first layer without the pass (e.g. ``D.3 (BatchNorm2d)``), before any work.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown gradient penalty {kind!r}: one of {', '.join(KINDS)}")
    layers = require_second_order(D)
    with frozen(D):                                                        # the backward that gives g adds no dW
        _, g, deltas = input_gradient(layers, x)
    p, u = penalty_and_direction(g, kind, weight)
    s = tangent_pass(layers, u)                                            # (N, 1): <g_n, u_n>
    for (_, layer), delta in zip(layers, deltas):
        layer.tangent_weight_grad(delta)                                   # dW += delta (x) t_in; db += 0
    return (p, g, s, u) if return_tangent else (p, g)
