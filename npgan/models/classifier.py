"""The digit classifier behind npgan's evaluation scores (:mod:`npgan.metrics` trains and caches it)."""
from ..layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential

FEATURE_DIM = 128               # the penultimate layer's width: the Frechet distance's features


def Classifier(num_classes=10, dtype=None):
    """images (N, 1, 28, 28) -> class logits (N, num_classes); layer -2 gives the features.

    Conv(1, 16, 5, pad 2) -> ReLU -> MaxPool(2) -> Conv(16, 32, 5, pad 2) -> ReLU -> MaxPool(2)
    -> Flatten -> Linear(1568, 128) -> ReLU -> Dropout(0.3) -> Linear(128, num_classes)
    """
    return Sequential(
        Conv2d(1, 16, 5, padding=2, dtype=dtype), ReLU(), MaxPool2d(2),      # (N, 16, 14, 14)
        Conv2d(16, 32, 5, padding=2, dtype=dtype), ReLU(), MaxPool2d(2),     # (N, 32, 7, 7)
        Flatten(),
        Linear(32 * 7 * 7, FEATURE_DIM, dtype=dtype), ReLU(),                # (N, 128): the features
        Dropout(0.3),
        Linear(FEATURE_DIM, num_classes, dtype=dtype),
    )
