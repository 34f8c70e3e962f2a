"""MNIST: batched search vs one image at a time, and vmap Jacobians vs a loop over rows.

    .venv/bin/python benchmarks/mnist_search.py [--n 256] [--space z] [--device cpu|cuda]

1. ``--n`` counterfactuals 4 → 9 (Λ = 0.99) with the batched engine and with the reference loop of
   ``benchmarks/reference.py`` (same settings: Adam, lr, step limit, clipping to [0, 1]); prints both
   times, whether the successes agree, and the ratio.
2. The Jacobian ``∂g/∂z`` of the flow at a few images: one backward pass per output pixel (the
   reference), ``vmap(jacfwd)`` over all rows, and ``vmap(jacrev)`` in chunks of 196 rows (what
   notebook 02 uses); prints the times and the ratios.
"""

from __future__ import annotations

import argparse
import time

import torch

from diffcf import zoo
from diffcf.data.mnist import load_dataset
from diffcf.evaluate import predict
from diffcf.geometry import jacobian, jacobian_loop
from diffcf.search import ClassTarget, counterfactual_search
from diffcf.utils import get_device
from reference import NOTEBOOK_03_SEARCH, reference_search


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_seconds(f, g, x, t, space: str, repeats: int = 5) -> float:
    """Seconds of one search step (to X, classifier, cross-entropy, gradient) on the batch ``x``."""
    with torch.no_grad():
        v = g.encode(x) if space == "z" else x.clone()
    v.requires_grad_(True)

    def step() -> None:
        x_v = (g.decode(v) if space == "z" else v).clamp(0.0, 1.0)
        torch.autograd.grad(torch.nn.functional.cross_entropy(f(x_v), t), v)

    n = repeats * max(1, 64 // len(x))  # small batches: more repeats, as their times are noisier
    step()  # warm-up
    _sync(x.device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    _sync(x.device)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--space", choices=["x", "z"], default="z")
    parser.add_argument("--jacobian-images", type=int, default=4)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = get_device(args.device)
    lr, max_steps = NOTEBOOK_03_SEARCH[args.space]

    f = zoo.frozen(zoo.load("mnist_classifier", device))
    g = zoo.frozen(zoo.load("mnist_flow", device))
    x_test, y_test = load_dataset("mnist", "test")
    x_test, y_test = x_test.to(device), y_test.to(device)
    fours = x_test[(y_test == 4) & (predict(f, x_test) == 4)][: args.n]
    t = torch.full((len(fours),), 9, device=device)

    _sync(device)
    start = time.perf_counter()
    run = counterfactual_search(f, fours, ClassTarget(t, 0.99), space=args.space, g=g, lr=lr,
                                max_steps=max_steps, bounds=(0.0, 1.0))
    _sync(device)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    x_ref, ok_ref = reference_search(f, g, fours, t, args.space, lr, max_steps, 0.99, bounds=(0.0, 1.0))
    _sync(device)
    loop = time.perf_counter() - start
    agree = (ok_ref.to(device) == run.success).float().mean().item()
    print(f"{len(fours)} MNIST searches 4 -> 9 in {args.space.upper()} on {device}")
    print(f"  batched engine : {batched:8.2f} s  ({run.n_success} successful)")
    print(f"  reference loop : {loop:8.2f} s  ({int(ok_ref.sum())} successful)")
    print(f"  successes agree on {agree:.0%} of images; median |x_batched - x_loop| = "
          f"{(x_ref.to(device) - run.x).flatten(1).abs().amax(1).median().item():.2e}")
    print(f"  speed ratio    : {loop / batched:.1f}x")
    steps = run.steps.sort(descending=True).values.float()
    slowest = steps[: max(1, len(steps) // 10)]
    print(f"  the slowest 10% of searches take {slowest.sum() / steps.sum():.0%} of all "
          f"steps; they run in a small batch once the others have finished")

    one, batch = step_seconds(f, g, fours[:1], t[:1], args.space), step_seconds(f, g, fours, t, args.space)
    print(f"  one gradient step: {one * 1e3:.1f} ms for 1 image, {batch / len(fours) * 1e3:.2f} ms per image "
          f"in a batch of {len(fours)}: batching saves at most {one * len(fours) / batch:.1f}x")

    with torch.no_grad():
        z = g.encode(fours[: args.jacobian_images])
    start = time.perf_counter()
    J_ref = jacobian_loop(g.decode, z)
    _sync(device)
    slow = time.perf_counter() - start
    print(f"Jacobian dg/dz (784 x 784) at {len(z)} images")
    print(f"  row loop (one backward pass per row)   : {slow:8.2f} s")
    for name, kwargs in [("vmap(jacfwd), all rows", {"mode": "fwd"}),
                         ("vmap(jacrev), chunks of 196 rows", {"mode": "rev", "row_chunk": 196})]:
        start = time.perf_counter()
        J = jacobian(g.decode, z, chunk_size=1, **kwargs)
        _sync(device)
        fast = time.perf_counter() - start
        print(f"  {name:39s}: {fast:8.2f} s   {slow / fast:5.1f}x faster, "
              f"max |difference| {(J - J_ref).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
