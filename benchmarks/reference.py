"""The simple baseline the benchmarks compare against: one sample at a time, ``torch.optim.Adam`` on
its ``x`` or ``z``, and a ``.item()`` check of the target after every step (a host sync per step)."""

from __future__ import annotations

import torch

# (Adam learning rate, most steps) of notebook 03's searches, which the MNIST benchmarks repeat
NOTEBOOK_03_SEARCH = {"z": (5e-2, 1000), "x": (5e-3, 2000)}


def reference_search(f, g, x0, t, space, lr, max_steps, confidence, bounds=None):
    """Search each sample of ``x0`` alone; returns ``(x_final, success)`` like the batched engine."""
    results, successes = [], []
    for i in range(len(x0)):
        with torch.no_grad():
            v = g.encode(x0[i : i + 1]) if space == "z" else x0[i : i + 1].clone()
        v.requires_grad_(True)
        opt = torch.optim.Adam([v], lr=lr)
        ok = False
        for _ in range(max_steps + 1):
            x = g.decode(v) if space == "z" else v
            if bounds is not None:
                x = x.clamp(*bounds)
            logits = f(x)
            p_t = logits.softmax(1)[0, t[i]].item()  # the per-step host synchronisation
            if p_t > confidence and logits.argmax(1).item() == t[i].item():
                ok = True
                break
            loss = torch.nn.functional.cross_entropy(logits, t[i : i + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if bounds is not None and space == "x":
                with torch.no_grad():
                    v.clamp_(*bounds)
        results.append(x.detach())
        successes.append(ok)
    return torch.cat(results), torch.tensor(successes)
