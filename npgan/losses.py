"""Losses with hand-written forward and backward passes (the GAN objectives built on them are
in ``npgan.gan.objectives``).

Every loss comes as a functional pair::

    loss, cache = bce_with_logits_forward(logits, targets)     # 0-d array
    dlogits = bce_with_logits_backward(1.0, cache)             # d(loss)/d(logits)

and as a small stateful object with PyTorch's name::

    criterion = BCEWithLogitsLoss()
    loss = criterion.forward(logits, targets)
    dlogits = criterion.backward()                              # dloss defaults to 1.0

``dloss`` is the upstream gradient: a scalar (Python float or 0-d array) for the
reductions ``'mean'`` and ``'sum'``, an array of the input's shape for ``'none'``.
Results keep the input's dtype (float32 stays float32) and backend.

The discriminator outputs *logits*; probabilities are never fed to ``log``.
"""
from .backend import get_array_module, require_float

_REDUCTIONS = ("mean", "sum", "none")


# ---- shared helpers ------------------------------------------------------------------
def _as_input_dtype(xp, value, x):
    """``value`` (scalar or array, any backend) as an array of ``x``'s dtype on ``xp``, the input
    ``x`` being checked first: an integer input would truncate a target of 0.9 to 0."""
    require_float(x, "losses (logits, predictions)")
    return xp.asarray(value, dtype=x.dtype)


def _check_reduction(name, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_broadcast(name, what, value, x):
    """``value`` must broadcast to ``x``'s shape without growing it (targets, weights, masks)."""
    shape = getattr(value, "shape", ())
    try:
        full = _broadcast_shape(shape, x.shape)
    except ValueError:
        full = None
    if full != tuple(x.shape):
        raise ValueError(f"{name}: {what} of shape {tuple(shape)} does not broadcast to the input's shape "
                         f"{tuple(x.shape)}")


def _broadcast_shape(a, b):
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            raise ValueError("shapes do not broadcast")
        out.append(db if da == 1 else da)                    # (0,) with a scalar stays (0,)
    return tuple(reversed(out))


def _reduce(xp, elementwise, reduction, denominator=None):
    """Sum or mean of the per-element losses as a 0-d array; 'none' returns them as they are.

    ``denominator`` replaces the element count for 'mean' (the masked losses pass the sum
    of their weights).
    """
    if reduction == "none":
        return elementwise
    total = xp.asarray(elementwise.sum(), dtype=elementwise.dtype)           # 0-d
    if reduction == "sum":
        return total
    if denominator is None:
        return total / max(elementwise.size, 1)                               # Python int: no dtype change
    return total / denominator


def _upstream(xp, dloss, reduction, dtype, shape, denominator=None):
    """d(loss)/d(per-element loss), before the per-element derivative is applied.

    'sum': dloss, 'mean': dloss / count (or / denominator), 'none': dloss itself (an array
    of the input's shape). Returned in ``dtype`` so float32 runs stay float32.
    """
    dloss = xp.asarray(dloss, dtype=dtype)
    if reduction == "none":
        if dloss.shape != tuple(shape) and dloss.ndim != 0:
            raise ValueError(f"reduction='none' needs dloss of shape {tuple(shape)}, got {tuple(dloss.shape)}")
        return dloss
    if dloss.ndim != 0:
        raise ValueError(f"reduction={reduction!r} gives a scalar loss, so dloss must be a scalar; "
                         f"got shape {tuple(dloss.shape)}")
    if reduction == "sum":
        return dloss
    count = 1
    for s in shape:
        count *= s
    if denominator is None:
        return dloss / max(count, 1)
    return dloss / denominator


# ---- binary cross-entropy on logits ---------------------------------------------------
def bce_with_logits_forward(logits, targets, weight=None, reduction="mean"):
    """Binary cross-entropy on logits, stable for any logit magnitude.

        l_i = w_i * [ max(x_i, 0) - x_i * t_i + log(1 + exp(-|x_i|)) ]
            = -w_i * [ t_i * log sigmoid(x_i) + (1 - t_i) * log(1 - sigmoid(x_i)) ]

    Args:
        logits: (*) the raw scores x (e.g. the discriminator's output).
        targets: scalar or array broadcastable to ``logits``, values in [0, 1]
            (1 for real, 0 for fake, 0.9 for one-sided label smoothing).
        weight: optional per-element rescaling w, broadcastable to ``logits``.
        reduction: 'mean' (over all elements, like PyTorch), 'sum' or 'none'.
    Returns:
        loss (0-d array, or (*) for 'none'), cache for ``bce_with_logits_backward``.
    """
    _check_reduction("bce_with_logits", reduction)
    xp = get_array_module(logits)
    x = logits
    t = _as_input_dtype(xp, targets, x)
    _check_broadcast("bce_with_logits", "targets", t, x)
    e = xp.exp(-xp.abs(x))                                                    # in (0, 1]: never overflows
    elementwise = xp.maximum(x, 0) - x * t + xp.log1p(e)
    # d l_i / d x_i = sigmoid(x_i) - t_i, with sigmoid from the same e:
    #   x >= 0: 1 / (1 + e),   x < 0: e / (1 + e)
    inv = 1 / (1 + e)
    dlocal = xp.where(x >= 0, inv, e * inv) - t                               # sigmoid(x) - t
    if weight is not None:
        w = _as_input_dtype(xp, weight, x)
        _check_broadcast("bce_with_logits", "weight", w, x)
        elementwise = elementwise * w
        dlocal = dlocal * w
    loss = _reduce(xp, elementwise, reduction)
    cache = (dlocal, reduction)
    return loss, cache


def bce_with_logits_backward(dloss, cache):
    """dlogits = dloss * w * (sigmoid(x) - t) [/ N for 'mean']. Shape: as logits."""
    dlocal, reduction = cache
    xp = get_array_module(dlocal)
    return _upstream(xp, dloss, reduction, dlocal.dtype, dlocal.shape) * dlocal


# ---- mean squared error ---------------------------------------------------------------
def mse_forward(input, target, reduction="mean"):
    """l_i = (x_i - y_i)^2, reduced by 'mean', 'sum' or 'none'. ``target`` broadcasts to ``input``."""
    _check_reduction("mse", reduction)
    xp = get_array_module(input)
    y = _as_input_dtype(xp, target, input)
    _check_broadcast("mse", "target", y, input)
    diff = input - y                                                          # (*)
    loss = _reduce(xp, diff * diff, reduction)
    cache = (diff, reduction)
    return loss, cache


def mse_backward(dloss, cache):
    """dinput = dloss * 2 (x - y) [/ N for 'mean']."""
    diff, reduction = cache
    xp = get_array_module(diff)
    return _upstream(xp, dloss, reduction, diff.dtype, diff.shape) * (2 * diff)


# ---- mean absolute error --------------------------------------------------------------
def l1_forward(input, target, reduction="mean"):
    """l_i = |x_i - y_i|, reduced by 'mean', 'sum' or 'none'. ``target`` broadcasts to ``input``."""
    _check_reduction("l1", reduction)
    xp = get_array_module(input)
    y = _as_input_dtype(xp, target, input)
    _check_broadcast("l1", "target", y, input)
    diff = input - y
    loss = _reduce(xp, xp.abs(diff), reduction)
    cache = (xp.sign(diff), reduction)                                        # subgradient 0 at x == y, as PyTorch
    return loss, cache


def l1_backward(dloss, cache):
    """dinput = dloss * sign(x - y) [/ N for 'mean']."""
    sign, reduction = cache
    xp = get_array_module(sign)
    return _upstream(xp, dloss, reduction, sign.dtype, sign.shape) * sign


# ---- masked reconstruction losses (inpainting) ---------------------------------------
def _mask_weights(name, xp, mask, x, reduction):
    """Mask as x's dtype, and the 'mean' denominator: the sum of the mask broadcast to x.

    The denominator counts every element the mask covers, so a (N, 1, H, W) mask on a
    (N, C, H, W) image gives the mean over the C * (masked pixels) covered values. When
    every weight is 0 the denominator is replaced by 1 (the numerator is 0 too), so the
    loss and its gradient are 0 rather than NaN. Weights are assumed non-negative.
    """
    m = _as_input_dtype(xp, mask, x)
    _check_broadcast(name, "mask", m, x)
    if reduction != "mean":
        return m, None
    wsum = xp.asarray(xp.broadcast_to(m, x.shape).sum(), dtype=x.dtype)     # 0-d, stays on the device
    return m, xp.where(wsum > 0, wsum, xp.ones_like(wsum))


def masked_mse_forward(input, target, mask, reduction="mean"):
    """Weighted squared error, averaged over the weights:

        loss = sum_i m_i (x_i - y_i)^2 / sum_i m_i            ('mean'; 0 when sum_i m_i == 0)
        loss = sum_i m_i (x_i - y_i)^2                        ('sum')

    Args:
        input, target: (*) arrays; ``target`` broadcasts to ``input``.
        mask: per-element weights >= 0 (binary hole mask or soft weights), broadcastable to
            ``input``, e.g. (N, 1, H, W) for (N, C, H, W) images; the sum in the 'mean'
            denominator is taken over the mask broadcast to the input's shape.
    """
    _check_reduction("masked_mse", reduction)
    xp = get_array_module(input)
    y = _as_input_dtype(xp, target, input)
    _check_broadcast("masked_mse", "target", y, input)
    m, wsum = _mask_weights("masked_mse", xp, mask, input, reduction)
    diff = input - y
    loss = _reduce(xp, m * diff * diff, reduction, wsum)
    cache = (m * diff, wsum, reduction)
    return loss, cache


def masked_mse_backward(dloss, cache):
    """dinput = dloss * 2 m (x - y) [/ sum(m) for 'mean']."""
    mdiff, wsum, reduction = cache
    xp = get_array_module(mdiff)
    return _upstream(xp, dloss, reduction, mdiff.dtype, mdiff.shape, wsum) * (2 * mdiff)


def masked_l1_forward(input, target, mask, reduction="mean"):
    """Weighted absolute error, averaged over the weights (see ``masked_mse_forward``):

        loss = sum_i m_i |x_i - y_i| / sum_i m_i              ('mean'; 0 when sum_i m_i == 0)
    """
    _check_reduction("masked_l1", reduction)
    xp = get_array_module(input)
    y = _as_input_dtype(xp, target, input)
    _check_broadcast("masked_l1", "target", y, input)
    m, wsum = _mask_weights("masked_l1", xp, mask, input, reduction)
    diff = input - y
    loss = _reduce(xp, m * xp.abs(diff), reduction, wsum)
    cache = (m * xp.sign(diff), wsum, reduction)
    return loss, cache


def masked_l1_backward(dloss, cache):
    """dinput = dloss * m sign(x - y) [/ sum(m) for 'mean']."""
    msign, wsum, reduction = cache
    xp = get_array_module(msign)
    return _upstream(xp, dloss, reduction, msign.dtype, msign.shape, wsum) * msign


# ---- softmax cross-entropy (classification) --------------------------------------------
def softmax_cross_entropy_forward(logits, labels):
    """loss = mean_i -log softmax(x_i)[y_i], computed from shifted logits (no overflow).

    Args:
        logits: (N, K) raw scores; labels: (N,) integers in [0, K).
    Returns:
        loss (0-d), cache for ``softmax_cross_entropy_backward``.
    """
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)                         # (N, K), max 0
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))     # (N, K)
    n = logits.shape[0]
    loss = -log_probs[xp.arange(n), labels].mean()
    cache = (xp.exp(log_probs), labels)
    return loss, cache



def softmax_cross_entropy_backward(dloss, cache):
    """dlogits = dloss * (softmax(x) - onehot(y)) / N."""
    probs, labels = cache
    xp = get_array_module(probs)
    n = probs.shape[0]
    dlogits = probs.copy()
    dlogits[xp.arange(n), labels] -= 1
    return dlogits * (xp.asarray(dloss, dtype=probs.dtype) / n)


def uniform_cross_entropy_forward(logits):
    """Cross-entropy to the uniform distribution (outlier exposure's loss on junk inputs):

        loss = mean_i -(1/K) sum_k log softmax(x_i)_k = mean_i [ logsumexp(x_i) - mean_k x_ik ]

    0-d, at least 0 and equal to log K (its minimum) exactly when every row's softmax is uniform.

    Args:
        logits: (N, K) raw scores.
    Returns:
        loss (0-d), cache (the softmax probabilities, (N, K)) for ``uniform_cross_entropy_backward``.
    """
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)                         # (N, K), max 0
    log_norm = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))               # (N, 1)
    loss = (log_norm - shifted.mean(axis=1, keepdims=True)).mean()               # the shift cancels
    cache = xp.exp(shifted - log_norm)                                           # softmax(x), (N, K)
    return loss, cache


def uniform_cross_entropy_backward(dloss, cache):
    """dlogits = dloss * (softmax(x) - 1/K) / N. Shape: (N, K)."""
    probs = cache
    xp = get_array_module(probs)
    n, k = probs.shape
    return (probs - 1 / k) * (xp.asarray(dloss, dtype=probs.dtype) / n)


# ---- stateful wrappers with PyTorch's names -------------------------------------------
class _Loss:
    """Keeps the cache of the last ``forward`` so ``backward`` needs only ``dloss``."""

    def __init__(self, reduction="mean"):
        _check_reduction(type(self).__name__, reduction)
        self.reduction = reduction
        self.cache = None

    def __call__(self, *args):
        return self.forward(*args)

    def _backward_cache(self):
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self.cache

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class BCEWithLogitsLoss(_Loss):
    """``bce_with_logits_forward`` / ``_backward`` as an object. Args: weight=None, reduction='mean'."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input, target):
        loss, self.cache = bce_with_logits_forward(input, target, self.weight, self.reduction)
        return loss

    def backward(self, dloss=1.0):
        return bce_with_logits_backward(dloss, self._backward_cache())


class MSELoss(_Loss):
    """Mean squared error (x - y)^2. Args: reduction='mean'."""

    def forward(self, input, target):
        loss, self.cache = mse_forward(input, target, self.reduction)
        return loss

    def backward(self, dloss=1.0):
        return mse_backward(dloss, self._backward_cache())


class L1Loss(_Loss):
    """Mean absolute error |x - y|. Args: reduction='mean'."""

    def forward(self, input, target):
        loss, self.cache = l1_forward(input, target, self.reduction)
        return loss

    def backward(self, dloss=1.0):
        return l1_backward(dloss, self._backward_cache())


class MaskedMSELoss(_Loss):
    """sum m (x - y)^2 / sum m (see ``masked_mse_forward``). ``forward(input, target, mask)``."""

    def forward(self, input, target, mask):
        loss, self.cache = masked_mse_forward(input, target, mask, self.reduction)
        return loss

    def backward(self, dloss=1.0):
        return masked_mse_backward(dloss, self._backward_cache())


class MaskedL1Loss(_Loss):
    """sum m |x - y| / sum m (see ``masked_l1_forward``). ``forward(input, target, mask)``."""

    def forward(self, input, target, mask):
        loss, self.cache = masked_l1_forward(input, target, mask, self.reduction)
        return loss

    def backward(self, dloss=1.0):
        return masked_l1_backward(dloss, self._backward_cache())
