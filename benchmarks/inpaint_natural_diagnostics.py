"""Why learned fills struggle against the biharmonic fill on the natural crops, measured.

    python benchmarks/inpaint_natural_diagnostics.py runs/inpaint-natural-context-encoder-l2 \
        runs/inpaint-natural-context-encoder-l2-biharmonic --n 300 [--latent runs/inpaint-natural-latent]

Prints, on the held-out crops and masks that ``python -m npgan.inpaint eval --n N`` uses:

1. hole PSNR of each run and of the biharmonic fill, split into bands by how easy the crop is
   for the biharmonic fill: the mean of per-image PSNR is decided by the smooth crops, where an
   exact interpolation scores 30-40 dB and a network's small colour errors cap it lower;
2. each run against the biharmonic fill crop by crop (mean difference and its standard error),
   and the scores as one PSNR of the mean squared error over all crops (what L2 training
   minimises);
3. the best *linear* fill that the training photos can teach: least squares (ridge) from the
   known pixels of 30,000 training crops to their hole pixels, directly and as a correction
   to the biharmonic fill. Every linear fill is a candidate of this search, the biharmonic one
   included, so where even this loses to the biharmonic fill on the test photo, the training
   photos' statistics do not carry over to it.

4. with ``--latent RUN`` (a latent-optimisation run): how much of the detail G(z*) draws in the
   hole is right. The detail is G(z*) minus the biharmonic fill of G(z*)'s own border (what
   Poisson blending keeps, on top of a smooth fill); its correlation with the true image's
   detail (the image minus its biharmonic fill), the least-squares weight beta of that detail,
   and the hole PSNR of biharmonic fill + beta x detail -- the best any blend of G's detail
   into the biharmonic fill can do, knowing the answer. Also for the mean of ``--restarts``
   z searches from different random starts.

Centre holes only (part 3 needs one fixed hole).
"""
import argparse

import numpy as np

from npgan.data import scale_images
from npgan.data.inpainting import load_inpaint_data
from npgan.functional import composite
from npgan.gan.inpainting.evaluate import eval_set, image_metrics
from npgan.gan.inpainting.latent import latent_generate
from npgan.gan.inpainting.runs import load_inpainters, load_run
from npgan.inpainting_ops.baselines import biharmonic_fill
from npgan.inpainting_ops.blend import biharmonic_solve, poisson_blend
from npgan.inpainting_ops.masks import centre_masks

BANDS = ((0, 20), (20, 25), (25, 30), (30, 99))


def hole_mse(fill, x, m):
    """Per-image mean squared error over the hole, pixels in [0, 1]: (N,) (from eval's own PSNR)."""
    return 10 ** (-image_metrics(fill, x, m)["psnr_hole"] / 10)


def psnr(mse):
    return 10 * np.log10(1 / mse)


def ridge(features, targets, lam):
    """argmin_W |[features, 1] W - targets|^2 + lam |W|^2."""
    a = np.c_[features, np.ones(len(features))]
    return np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ targets)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="*", help="natural-crop run directories (centre holes)")
    p.add_argument("--n", type=int, default=300, help="held-out crops (as eval --n)")
    p.add_argument("--train-crops", type=int, default=30000)
    p.add_argument("--latent", help="a latent-optimisation run: part 4 (its z searches take minutes)")
    p.add_argument("--restarts", type=int, default=4, help="z searches from different starts, part 4")
    args = p.parse_args()
    if args.restarts < 1:
        p.error(f"--restarts must be at least 1, got {args.restarts}")

    data = load_inpaint_data("natural", n_train_crops=args.train_crops, verbose=False)
    x, m = eval_set(data, "centre", args.n)
    fills = {"biharmonic fill": biharmonic_fill(x, m)}
    for run in args.runs:
        _, pairs = load_inpainters(run)
        fills.update({f"{label} ({run})": fn(x, m) for label, fn in pairs})
    errors = {name: hole_mse(f, x, m) for name, f in fills.items()}
    band = psnr(errors["biharmonic fill"])

    print(f"1. mean hole PSNR (dB) by how well the biharmonic fill does, {len(x)} held-out crops")
    print(f"{'':60s}" + "".join(f"{f'{lo}-{hi} dB':>10s}" for lo, hi in BANDS) + f"{'all':>8s}")
    print(f"{'crops in the band':60s}" + "".join(f"{((band >= lo) & (band < hi)).sum():10d}" for lo, hi in BANDS))
    for name, e in errors.items():
        cells = "".join(f"{psnr(e)[(band >= lo) & (band < hi)].mean():10.2f}" for lo, hi in BANDS)
        print(f"{name[:60]:60s}{cells}{psnr(e).mean():8.2f}")

    print("\n2. against the biharmonic fill, crop by crop: mean PSNR difference +- its standard error,"
          "\n   share of crops where the method is closer; and the PSNR of the mean squared error over all crops")
    for name, e in errors.items():
        diff = psnr(e) - band
        print(f"{name[:60]:60s}{diff.mean():+7.2f} +- {diff.std(ddof=1) / np.sqrt(len(diff)):.2f} dB"
              f"{(e < errors['biharmonic fill']).mean():7.0%}{psnr(e.mean()):8.2f} dB")

    print(f"\n3. the best linear fill learned from {args.train_crops} training crops (ridge), on the held-out crops")
    hole = centre_masks(1, data.size, data.hole)[0, 0] > 0
    train = scale_images(data.train).astype(np.float64)
    mask_train = centre_masks(len(train), data.size, data.hole)
    prior_train = biharmonic_solve(train, mask_train)
    test_x = x.astype(np.float64)
    prior_test = biharmonic_solve(test_x, m)

    def known(a):
        return a[:, :, ~hole].reshape(len(a), -1)

    def missing(a):
        return a[:, :, hole].reshape(len(a), -1)

    for lam in (1e2, 1e4):
        direct = np.clip(np.c_[known(test_x), np.ones(len(x))] @ ridge(known(train), missing(train), lam), -1, 1)
        corrected = missing(prior_test) + np.c_[known(test_x), np.ones(len(x))] @ ridge(
            known(train), missing(train) - missing(prior_train), lam)
        for name, pred in (("linear fill", direct), ("biharmonic + linear correction", np.clip(corrected, -1, 1))):
            mse = (((pred - missing(test_x)) / 2) ** 2).mean(axis=1)
            print(f"{name + f' (ridge {lam:g})':60s}{psnr(mse).mean():8.2f}")
    mse = (((missing(prior_test) - missing(test_x)) / 2) ** 2).mean(axis=1)
    print(f"{'biharmonic fill (npgan.inpainting_ops.blend.biharmonic_solve)':60s}{psnr(mse).mean():8.2f}")
    if args.latent:
        latent_detail(args.latent, args.restarts, test_x, m, prior_test)


def latent_detail(run, restarts, x, m, prior):
    """Part 4: is the detail that latent optimisation draws correlated with the truth?"""
    cfg, models = load_run(run)
    kw = dict(steps=cfg.latent_steps, lam=cfg.latent_lambda, lr=cfg.latent_lr, z_dim=cfg.z_dim)
    starts = [latent_generate(models["G"], models["D"], x.astype(np.float32), m, seed=s, **kw).astype(np.float64)
              for s in range(restarts)]
    hole = np.broadcast_to(m > 0, x.shape)
    truth = (x - prior)[hole]
    print(f"\n4. the detail latent optimisation draws ({run}), against the truth's, {len(x)} held-out crops"
          f"\n{'':32s}{'pasted':>8s}{'Poisson':>9s}{'correlation':>13s}{'beta':>8s}{'biharmonic + beta x detail':>28s}")
    for k in sorted({1, min(2, restarts), restarts}):
        g = np.mean(starts[:k], axis=0)
        detail = (g - biharmonic_solve(g, m))[hole]
        beta = detail @ truth / (detail @ detail)
        best = prior.copy()
        best[hole] += beta * detail
        cells = [psnr(hole_mse(f, x, m)).mean() for f in (composite(g, x, m), poisson_blend(g, x, m), best)]
        name = "one z search" if k == 1 else f"mean of {k} z searches"
        print(f"{name:32s}{cells[0]:8.2f}{cells[1]:9.2f}{np.corrcoef(detail, truth)[0, 1]:+13.3f}{beta:+8.3f}"
              f"{cells[2]:28.2f}")


if __name__ == "__main__":
    main()
