"""How well a CycleGAN between MNIST (A) and MNIST-M (B) keeps the digit: label preservation.

npgan's own MNIST classifier (``npgan.metrics.get_classifier``, trained on the MNIST training
digits, never on MNIST-M) reads the MNIST-M test images translated to the MNIST domain,
G_ba(B); its accuracy against the digits the images were made from is the score. The same
classifier on the same images without a network gives the baselines:

- **grey**: the MNIST-M image converted to grey (ITU-R 601 luma);
- **inverted grey**: the grey image with its contrast inverted (MNIST-M's digits are light on
  dark photos, dark on light ones);
- **grey or inverted, the better per image**: counted right when either is right, an oracle
  that knows which polarity each image needs, so an upper bound of what choosing the polarity
  can do.

The cycle reconstruction errors are mean |G_ba(G_ab(a)) - a| over the MNIST test digits and
mean |G_ab(G_ba(b)) - b| over the MNIST-M test images (pixels in [-1, 1], so 2 is the largest
possible error); the classifier's accuracy on the reconstructed digits G_ba(G_ab(A)) says
whether a digit survives the round trip through MNIST-M.
"""
import numpy as np

from ..data import scale_images
from ..metrics import classifier_outputs
from .cycle import centre_crop, match_channels
from .translation import cycle_rows, image_table, save_picture, translate


def grey(images):
    """MNIST-M images (N, 3, H, W) in [-1, 1] -> (N, 1, H, W) luma (``npgan.gan.cycle.LUMA``)."""
    return match_channels(images, 1)


def predictions(clf, images):
    """The classifier's top class of each image (N, 1, S, S) in [-1, 1] (its central 28 x 28 at
    S = 32): int64 (N,)."""
    return classifier_outputs(clf, centre_crop(np.asarray(images, np.float32))[:, 0])[1].argmax(axis=1)


def held_out_preservation(nets, data, clf, test_sets, n=None):
    """Label preservation on the same test digits over each held-out photo (``test_sets``:
    {photo: uint8 (M, 3, 28, 28)}, ``npgan.data.mnistm.held_out_test_sets``): {photo: {"cyclegan",
    "grey", "inverted_grey", "grey_or_inverted_oracle"}}."""
    n = len(data.test_labels) if n is None else min(n, len(data.test_labels))
    labels = data.test_labels[:n]
    out = {}
    for photo, images in test_sets.items():
        xb = scale_images(images[:n])
        right = {name: predictions(clf, x) == labels
                 for name, x in (("cyclegan", translate(nets["G_ba"], xb)), ("grey", grey(xb)), ("inverted_grey", -grey(xb)))}
        out[photo] = {name: float(r.mean()) for name, r in right.items()}
        out[photo]["grey_or_inverted_oracle"] = float((right["grey"] | right["inverted_grey"]).mean())
    return out


def label_preservation(nets, data, clf, n=None):
    """Scores of a CycleGAN (nets in eval mode) on the first ``n`` (default all) test images.

    Returns:
        dict: ``n``; ``accuracy`` {"cyclegan": G_ba(B), "grey", "inverted_grey", "grey_or_inverted_oracle",
        "mnist": the untouched MNIST test digits, an upper reference}; ``cycle_l1`` {"a": A -> B -> A,
        "b": B -> A -> B}; ``cycle_a_accuracy``: the classifier on G_ba(G_ab(A)).
    """
    n = len(data.test_labels) if n is None else min(n, len(data.test_labels))
    n_a = min(n, len(data.labels_a))
    labels, labels_a = data.test_labels[:n], data.labels_a[:n_a]
    xa, xb = scale_images(data.test_a[:n_a]), scale_images(data.test_b[:n])
    fake_a = translate(nets["G_ba"], xb)                                   # (n, 1, S, S)
    rec_b = translate(nets["G_ab"], fake_a)                                # (n, 3, S, S)
    rec_a = translate(nets["G_ba"], translate(nets["G_ab"], xa))           # (n_a, 1, S, S)
    right = {name: predictions(clf, images) == labels
             for name, images in (("cyclegan", fake_a), ("grey", grey(xb)), ("inverted_grey", -grey(xb)))}
    right.update({name: predictions(clf, images) == labels_a for name, images in (("mnist", xa), ("cycle_a", rec_a))})
    accuracy = {name: float(right[name].mean()) for name in ("cyclegan", "grey", "inverted_grey")}
    accuracy["grey_or_inverted_oracle"] = float((right["grey"] | right["inverted_grey"]).mean())
    accuracy["mnist"] = float(right["mnist"].mean())
    return {"n": int(n), "domain_b": data.name_b, "accuracy": accuracy,
            "cycle_l1": {"a": float(np.abs(rec_a - xa).mean()), "b": float(np.abs(rec_b - xb).mean())},
            "cycle_a_accuracy": float(right["cycle_a"].mean())}


def table_rows(name_b="MNIST-M"):
    """(key, label) of the accuracy table's rows for domain B named ``name_b``."""
    return (("cyclegan", f"CycleGAN: G_ba({name_b})"), ("grey", f"grey (luma) of {name_b}"),
            ("inverted_grey", "inverted grey"), ("grey_or_inverted_oracle", "grey or inverted, the better per image (oracle)"),
            ("mnist", "reference: the MNIST test digits themselves"))


ROWS = table_rows()


def format_table(scores, markdown=False):
    """The accuracy table and the cycle errors as text (or a Markdown table)."""
    n, name_b = scores["n"], scores.get("domain_b", "MNIST-M")
    if markdown:
        lines = [f"| images read by the MNIST classifier ({n} {name_b} test images) | accuracy |", "|---|---|"]
        lines += [f"| {label} | {100 * scores['accuracy'][key]:.1f}% |" for key, label in table_rows(name_b)]
    else:
        lines = [f"label preservation: npgan's MNIST classifier on {n} {name_b} test images"]
        lines += [f"  {label:<52s} {100 * scores['accuracy'][key]:5.1f}%" for key, label in table_rows(name_b)]
    cyc = scores["cycle_l1"]
    lines += ["", f"cycle reconstruction error, mean |x - x_rec| (pixels in [-1, 1]): A -> B -> A {cyc['a']:.4f}, "
                  f"B -> A -> B {cyc['b']:.4f}; classifier on G_ba(G_ab(A)): {100 * scores['cycle_a_accuracy']:.1f}%"]
    held_out = scores.get("held_out_photos")
    if held_out:
        columns = ("cyclegan", "grey", "inverted_grey", "grey_or_inverted_oracle")
        title = "the same test digits over photos never used in training"
        if markdown:
            lines += ["", f"| {title} | CycleGAN: G_ba | grey | inverted grey | oracle |", "|---|---|---|---|---|"]
            lines += [f"| {photo} | " + " | ".join(f"{100 * acc[c]:.1f}%" for c in columns) + " |"
                      for photo, acc in held_out.items()]
        else:
            lines += ["", f"{title}: G_ba(MNIST-M) / grey / inverted grey / oracle"]
            lines += [f"  {photo:<10s} " + "  ".join(f"{100 * acc[c]:5.1f}%" for c in columns)
                      for photo, acc in held_out.items()]
    return "\n".join(lines)


def save_cycle_picture(nets, data, path, n=10, scale=3):
    """input | translated | reconstructed for both directions, one digit of each class:
    rows A, G_ab(A), G_ba(G_ab(A)), B, G_ba(B), G_ab(G_ba(B)), labelled, each pixel ``scale`` wide."""
    from .translation import fixed_test_images, row_labels
    rows = cycle_rows(nets, scale_images(data.test_a[fixed_test_images(data, n, data.labels_a)]),
                      scale_images(data.test_b[fixed_test_images(data, n)]))
    save_picture(image_table(rows, row_labels(data.name_b), scale=scale, label_width=34), path)
