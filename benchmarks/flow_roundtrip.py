"""The round trip ``max |g(g⁻¹(x)) − x|`` of an MNIST flow over the whole test set, in float32 and,
for its worst images, in float64 (not a speed test of code).

    .venv/bin/python benchmarks/flow_roundtrip.py [--flow mnist_flow_wide] [--worst 5]

A flow's recipe reports the largest float32 round-trip error over the 10 000 test images (manifest:
``test_roundtrip_max_abs_error``). A large value there is either a wrong inverse or an
ill-conditioned map evaluated in float32. This script tells the two apart: it prints quantiles of
the per-image error, how many images exceed issue 16's 1e-4, and the error of the worst images when
the same flow and images are cast to float64 (a correct inverse then returns them to about 1e-12).
"""

from __future__ import annotations

import argparse

import torch

from diffcf import zoo
from diffcf.data.mnist import load_dataset
from diffcf.generative import reconstruction_error


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flow", default="mnist_flow_wide", help="an MNIST flow of the zoo")
    parser.add_argument("--worst", type=int, default=5, help="worst images checked again in float64")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="issue 16's round-trip target")
    args = parser.parse_args()

    flow = zoo.frozen(zoo.load(args.flow))
    x, y = load_dataset("mnist", "test")
    err = torch.cat([reconstruction_error(flow, xb) for xb in x.split(500)])
    q = err.quantile(torch.tensor([0.5, 0.99, 0.999])).tolist()
    print(f"{args.flow}, {len(x)} test images, float32: median {q[0]:.1e}, 99% {q[1]:.1e}, "
          f"99.9% {q[2]:.1e}, max {err.max():.1e}; above {args.tolerance:g}: "
          f"{int((err > args.tolerance).sum())}")
    worst = err.argsort(descending=True)[: args.worst]
    err64 = reconstruction_error(flow.double(), x[worst].double())
    print(f"{'test image':>10s}{'label':>7s}{'float32':>10s}{'float64':>10s}")
    for i, e32, e64 in zip(worst.tolist(), err[worst].tolist(), err64.tolist(), strict=True):
        print(f"{i:10d}{int(y[i]):7d}{e32:10.1e}{e64:10.1e}")


if __name__ == "__main__":
    main()
