"""Batched search vs a simple one-point-at-a-time loop on the toy helix (issue: foundation).

The reference loop is what one writes first: one start point at a time, ``torch.optim.Adam`` on
its ``x`` or ``z``, and a ``.item()`` check of the target probability after every step. The batched
engine (``diffcf.search.counterfactual_search``) runs all start points at once and asks the device
whether everything is done only every ``check_every`` steps. Same settings, same results; the script
prints both wall times and their ratio.

    .venv/bin/python benchmarks/helix_search.py [--n 1000] [--space z]
"""

from __future__ import annotations

import argparse
import time

import torch

from diffcf import zoo
from diffcf.data.helix import distance_to_helix, sample_helix
from diffcf.search import ClassTarget, counterfactual_search
from reference import reference_search


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--space", choices=["x", "z"], default="z")
    parser.add_argument("--lr", type=float, default=3e-2)
    parser.add_argument("--max-steps", type=int, default=1000)
    args = parser.parse_args()

    g = zoo.frozen(zoo.load("helix_flow"))
    f = zoo.frozen(zoo.load("helix_classifier"))
    x0, _ = sample_helix(args.n, torch.Generator().manual_seed(3))
    with torch.no_grad():
        t = 1 - f(x0).argmax(1)

    start = time.perf_counter()
    run = counterfactual_search(f, x0, ClassTarget(t, 0.9), space=args.space, g=g, lr=args.lr,
                                max_steps=args.max_steps)
    batched = time.perf_counter() - start

    start = time.perf_counter()
    x_ref, ok_ref = reference_search(f, g, x0, t, args.space, args.lr, args.max_steps, 0.9)
    loop = time.perf_counter() - start

    same = bool((ok_ref == run.success).all())
    max_diff = (x_ref - run.x).abs().max().item()
    d_b = distance_to_helix(run.x[run.success]).median().item()
    d_r = distance_to_helix(x_ref[ok_ref]).median().item()
    print(f"{args.n} helix optimisations in {args.space.upper()}, {torch.get_num_threads()} threads")
    print(f"  batched engine : {batched:8.2f} s   successes {run.n_success}, median distance {d_b:.4g}")
    print(f"  reference loop : {loop:8.2f} s   successes {int(ok_ref.sum())}, median distance {d_r:.4g}")
    print(f"  same successes : {same};  max |x_batched - x_loop| = {max_diff:.2e}")
    print(f"  speed ratio    : {loop / batched:.1f}x")


if __name__ == "__main__":
    main()
