"""Class-conditional GANs: a generator told which class to draw, a discriminator told which
class an image claims to be.

G takes the one-hot label beside the noise, ``G([z, onehot(y)])``: its first layer (a Linear)
then adds ``W_y``, one learned column per class, to what z makes of its first features, which
is a label embedding concatenated to z (Mirza and Osindero 2014), without a separate layer.
``ConditionalGenerator`` also hands the one-hot label to every BatchNorm, made class-conditional
(``ConditionalBatchNorm``: a scale and shift per class), so the class steers every layer
rather than the first only.

D is a projection discriminator (Miyato and Koyama 2018): the features phi(x) of the ordinary
discriminator's body, its last Linear psi, and one learned vector e_y per class::

    D(x, y) = psi(phi(x)) + <e_y, phi(x)>        (N, 1), a logit as before

so D scores how real x looks *and* how well it matches class y. The labels of a batch are
integers in 0..K-1 on the device.
"""
from .. import backend
from ..init import dcgan_init, normal_
from ..layers import BatchNorm1d, BatchNorm2d, ConditionalBatchNorm, Parameter, Sequential


def one_hot(labels, n_classes, dtype):
    """(N,) integer labels -> (N, n_classes) rows of the identity, on the labels' device."""
    xp = backend.get_array_module(labels)
    return xp.eye(n_classes, dtype=dtype)[labels]


def with_labels(z, labels, n_classes):
    """The conditional generator's input: (N, z_dim) noise and (N,) labels -> (N, z_dim + n_classes)."""
    xp = backend.get_array_module(z)
    return xp.concatenate([z, one_hot(labels, n_classes, z.dtype)], axis=1)


def class_labels(n, n_classes):
    """``n`` labels cycling 0, 1, ..., K-1, 0, 1, ... (host int64): equal classes, in order."""
    import numpy as np
    return np.arange(n, dtype=np.int64) % n_classes


class ConditionalGenerator(Sequential):
    """A generator whose ``ConditionalBatchNorm`` layers take the classes from its input, the
    last ``n_classes`` columns of ``[z, onehot(y)]``; its other layers see only what the layer
    before them made, as in ``Sequential``. Backward adds each ConditionalBatchNorm's gradient
    with respect to the one-hot columns to the input gradient.

    Shape: (N, z_dim + n_classes) -> G's output.
    """

    def __init__(self, *layers, n_classes):
        super().__init__(*layers)
        self.n_classes = n_classes

    def named_outputs(self, x):
        c = x[:, -self.n_classes:]
        for name, layer in self.named_children():
            x = layer.forward(x, c) if isinstance(layer, ConditionalBatchNorm) else layer.forward(x)
            yield name, layer, x

    def forward(self, x):
        for _, _, x in self.named_outputs(x):
            pass
        return x

    def backward(self, dout):
        dc = 0
        for layer in reversed(self.layers):
            if isinstance(layer, ConditionalBatchNorm):
                dout, dc_layer = layer.backward(dout)
                dc = dc + dc_layer
            else:
                dout = layer.backward(dout)
        if not self._needs_input_grad:
            return None
        xp = backend.get_array_module(dout)
        return xp.concatenate([dout[:, :-self.n_classes], dout[:, -self.n_classes:] + dc], axis=1)

    def extra_repr(self):
        return f"n_classes={self.n_classes}"


def with_conditional_batchnorm(G, n_classes):
    """``ConditionalGenerator`` of G's layers (a Sequential taking ``[z, onehot(y)]``), each
    BatchNorm1d/2d replaced by a ``ConditionalBatchNorm`` of as many features, initialised as
    DCGAN's BatchNorm (scales N(1, 0.02), shifts 0)."""
    def conditional(layer):
        if not isinstance(layer, (BatchNorm1d, BatchNorm2d)):
            return layer
        dtype = layer.running_mean.dtype if layer.running_mean is not None else None
        return dcgan_init(ConditionalBatchNorm(layer.num_features, n_classes, layer.eps, layer.momentum, dtype=dtype))
    return ConditionalGenerator(*map(conditional, G.layers), n_classes=n_classes)


class ProjectionDiscriminator(Sequential):
    """D(x, y) = psi(phi(x)) + <e_y, phi(x)>: a discriminator's layers (the last one a Linear to
    one output, psi; those before it phi, ending in flat features (N, F)) and an embedding
    ``embedding`` (K, F) initialised N(0, 0.02).

    The layers keep their names (``0.weight`` ... as the unconditional D); the embedding adds
    ``embedding``. Backward, with h = phi(x) and g = dL/dD (N, 1)::

        dL/dh = psi.backward(g) + g * e_y          dL/de_k = sum over samples of class k of g * h

    Shape: x (N, C, H, W), labels (N,) -> (N, 1).
    """
    no_second_order_reason = ("the projection term <e_y, phi(x)> has no tangent pass; a gradient penalty needs a "
                              "critic of plain layers")

    def __init__(self, *layers, n_classes, dtype=None):
        super().__init__(*layers)
        features = getattr(layers[-1], "module", layers[-1]).in_features    # psi may be SpectralNorm(Linear)
        self.n_classes = n_classes
        self.embedding = Parameter(backend.xp().zeros((n_classes, features), dtype=dtype or backend.DEFAULT_DTYPE))
        normal_(self.embedding.data, 0.0, 0.02)
        self.cache = None

    def forward(self, x, labels):
        *body, head = self.layers
        h = x
        for layer in body:
            h = layer.forward(h)                                             # (N, F)
        xp = backend.get_array_module(h)
        e = self.embedding.data[labels]                                      # (N, F)
        self.cache = (h, e, labels)
        return head.forward(h) + xp.sum(e * h, axis=1, keepdims=True)       # (N, 1)

    def backward(self, dout):
        *body, head = self.layers
        h, e, labels = self.cache
        dh = head.backward(dout) + dout * e                                  # (N, F)
        if self.embedding.requires_grad:
            self.embedding.accumulate(one_hot(labels, self.n_classes, h.dtype).T @ (dout * h))
        for layer in reversed(body):
            dh = layer.backward(dh)
        return dh if self._needs_input_grad else None

    def extra_repr(self):
        return f"n_classes={self.n_classes}"
