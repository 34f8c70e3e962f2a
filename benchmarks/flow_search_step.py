"""The cost of one Z-search step per MNIST flow of the zoo, as ratios to the shipped ``mnist_flow``.

    .venv/bin/python benchmarks/flow_search_step.py [--n 64] [--repeats 5] [--device cpu|cuda]

A step of notebook 03's Z-search decodes the batch, classifies it and back-propagates to the
latents: ``∂ log-sum-exp f(clip(g(z))) / ∂z``, the same graph as :func:`diffcf.search.counterfactual_search`
builds (its loss differs by a constant factor only). The best of ``--repeats`` timings after one
warm-up step is printed per flow, with its ratio to ``mnist_flow``: this is what a flow costs as
notebook 03's generator, before the number of steps its searches need (which differs by flow).
"""

from __future__ import annotations

import argparse
import time

import torch

from diffcf import zoo
from diffcf.data.mnist import load_dataset
from diffcf.utils import get_device

FLOWS = ("mnist_flow", "mnist_flow_wide", "mnist_flow_checkerboard", "mnist_flow_large")


def step_seconds(f, g, z: torch.Tensor, repeats: int) -> float:
    """Best wall time of one decode + classify + backward step over ``repeats`` (after a warm-up)."""
    times = []
    for _ in range(repeats + 1):
        if z.device.type == "cuda":
            torch.cuda.synchronize(z.device)
        start = time.perf_counter()
        v = z.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(f(g.decode(v).clamp(0, 1)).logsumexp(1).sum(), v)
        if z.device.type == "cuda":
            torch.cuda.synchronize(z.device)
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64, help="images per step")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = get_device(args.device)
    x = load_dataset("mnist", "test")[0][: args.n].to(device)
    f = zoo.frozen(zoo.load("mnist_classifier", device=device))
    base = None
    print(f"one Z-search step for {args.n} test images on {device} ({torch.get_num_threads()} threads)")
    for name in FLOWS:
        g = zoo.frozen(zoo.load(name, device=device))
        with torch.no_grad():
            z = g.encode(x)
        seconds = step_seconds(f, g, z, args.repeats)
        base = base or seconds
        params = sum(p.numel() for p in g.parameters()) / 1e6
        print(f"{name:26s}{params:6.2f} M parameters{seconds:8.3f} s per step   ratio {seconds / base:5.1f}")


if __name__ == "__main__":
    main()
