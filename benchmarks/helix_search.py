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


def reference_loop(f, g, x0, t, space, lr, max_steps, confidence):
    """One point at a time, plain torch.optim.Adam, a host sync per step."""
    results, successes = [], []
    for i in range(len(x0)):
        with torch.no_grad():
            v = g.encode(x0[i : i + 1]) if space == "z" else x0[i : i + 1].clone()
        v.requires_grad_(True)
        opt = torch.optim.Adam([v], lr=lr)
        ok = False
        for _ in range(max_steps + 1):
            x = g.decode(v) if space == "z" else v
            logits = f(x)
            p_t = logits.softmax(1)[0, t[i]].item()  # the per-step host synchronisation
            if p_t > confidence and logits.argmax(1).item() == t[i].item():
                ok = True
                break
            loss = torch.nn.functional.cross_entropy(logits, t[i : i + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()
        results.append(x.detach())
        successes.append(ok)
    return torch.cat(results), torch.tensor(successes)


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
    x_ref, ok_ref = reference_loop(f, g, x0, t, args.space, args.lr, args.max_steps, 0.9)
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
