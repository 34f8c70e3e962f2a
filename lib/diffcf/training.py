"""Generic training loops with a tqdm bar (loss shown). Recipes for named models live in :mod:`diffcf.zoo`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm


def fit(
    model: nn.Module,
    batches: Iterator[tuple[Tensor, ...]],
    loss_fn: Callable[..., Tensor],
    steps: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    desc: str = "train",
    clip_grad: float | None = None,
    progress: bool = True,
) -> list[float]:
    """Minimise ``loss_fn(model, *batch)`` with Adam (L2 ``weight_decay``) and a cosine learning-rate
    decay for ``steps`` steps; return the loss history. Raises if the loss becomes NaN/Inf."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    history: list[float] = []
    model.train()
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=1.0)
    for step in bar:
        batch = next(batches)
        loss = loss_fn(model, *batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            value = loss.item()
            if not torch.isfinite(torch.tensor(value)):
                raise FloatingPointError(f"{desc}: loss became {value} at step {step}")
            history.append(value)
            bar.set_postfix(loss=f"{value:.4f}")
    model.eval()
    return history


def nll_loss(flow: nn.Module, x: Tensor) -> Tensor:
    """Maximum likelihood: mean ``−log q(x)``."""
    return -flow.log_prob(x).mean()


def cross_entropy_loss(f: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return nn.functional.cross_entropy(f(x), y)


@torch.no_grad()
def accuracy(f: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1024) -> float:
    """Share of ``argmax f(x) == y``."""
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((f(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    return correct / max(len(x), 1)
