"""Forward + backward of each DCGAN-MNIST-28 layer, npgan against PyTorch in the same run.

    python benchmarks/bench_layers.py --backend numpy --threads 2
    python benchmarks/bench_layers.py --backend cupy

Each row times layer.forward(x) then layer.backward(dout) (input gradient included; for
PyTorch: y = layer(x); y.backward(dout) with x.requires_grad). npgan gets its inputs in the
memory layout its own neighbouring layers produce (channels-last after a conv, see
npgan.im2col); PyTorch gets its default contiguous NCHW tensors.
"""
import numpy

import _common as C
from _common import torch

# name, npgan layer factory, torch layer factory, input shape without the batch, channels-last input
LAYERS = [
    ("Conv2d 1->64, 28x28", lambda L: L.Conv2d(1, 64, 4, 2, 1), lambda nn: nn.Conv2d(1, 64, 4, 2, 1), (1, 28, 28), False),
    ("Conv2d 64->128, 14x14", lambda L: L.Conv2d(64, 128, 4, 2, 1), lambda nn: nn.Conv2d(64, 128, 4, 2, 1), (64, 14, 14), True),
    ("ConvT2d 128->64, 7x7", lambda L: L.ConvTranspose2d(128, 64, 4, 2, 1), lambda nn: nn.ConvTranspose2d(128, 64, 4, 2, 1),
     (128, 7, 7), False),
    ("ConvT2d 64->1, 14x14", lambda L: L.ConvTranspose2d(64, 1, 4, 2, 1), lambda nn: nn.ConvTranspose2d(64, 1, 4, 2, 1),
     (64, 14, 14), True),
    ("BatchNorm2d 128, 7x7", lambda L: L.BatchNorm2d(128), lambda nn: nn.BatchNorm2d(128), (128, 7, 7), True),
    ("BatchNorm2d 64, 14x14", lambda L: L.BatchNorm2d(64), lambda nn: nn.BatchNorm2d(64), (64, 14, 14), True),
    ("BatchNorm1d 6272", lambda L: L.BatchNorm1d(6272), lambda nn: nn.BatchNorm1d(6272), (6272,), False),
    ("LeakyReLU 128x7x7", lambda L: L.LeakyReLU(0.2), lambda nn: nn.LeakyReLU(0.2), (128, 7, 7), True),
    ("Linear 100->6272", lambda L: L.Linear(100, 6272), lambda nn: nn.Linear(100, 6272), (100,), False),
    ("Linear 6272->1", lambda L: L.Linear(6272, 1), lambda nn: nn.Linear(6272, 1), (6272,), False),
]


def channels_last(a, xp):
    """The same values stored (N, H, W, C), shaped (N, C, H, W)."""
    return xp.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def npgan_case(make, shape, cl, batch, xp):
    from npgan import layers as L
    layer = make(L)
    host = numpy.random.default_rng(0).standard_normal((batch,) + shape).astype(numpy.float32)
    x = xp.asarray(host)
    if cl:
        x = channels_last(x, xp)
    out = layer.forward(x)
    dout = xp.asarray(numpy.random.default_rng(1).standard_normal(out.shape).astype(numpy.float32))
    if out.ndim == 4 and not out.flags.c_contiguous:
        dout = channels_last(dout, xp)                                 # upstream gradient as npgan produces it

    def run():
        layer.forward(x)
        layer.backward(dout)
    return run


def torch_case(make, shape, batch, device):
    layer = make(torch.nn).to(device)
    x = torch.randn((batch,) + shape, device=device, requires_grad=True)
    dout = torch.randn(layer(x).shape, device=device)

    def run():
        x.grad = None
        layer(x).backward(dout)
    return run


def main():
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    args = p.parse_args()
    xp, use_torch = C.setup(args)
    device = "cuda" if args.backend == "cupy" else "cpu"
    if use_torch and device == "cuda":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # fp32, like CuPy
    rows = []
    for batch in args.batch:
        for name, make, tmake, shape, cl in LAYERS:
            fns = {"npgan": npgan_case(make, shape, cl, batch, xp),
                   "torch": torch_case(tmake, shape, batch, device) if use_torch else None}
            t = C.time_interleaved(fns, xp, rounds=args.rounds or 8, block=5)
            rows.append((name, batch, C.fmt_ms(t["npgan"]), C.fmt_ms(t["torch"]), C.ratio(t["npgan"], t["torch"])))
            print(f"  {name:24s} batch {batch:4d}: npgan {C.fmt_ms(t['npgan'])} ms, torch {C.fmt_ms(t['torch'])} ms, "
                  f"ratio {C.ratio(t['npgan'], t['torch'])}", flush=True)
    print()
    print(C.table(("layer (forward + backward)", "batch", "npgan ms", "torch ms", "npgan/torch"), rows))


if __name__ == "__main__":
    main()
