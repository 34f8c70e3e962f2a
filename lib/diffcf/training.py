"""The one training loop of the project: Adam, warm-up and cosine decay, a tqdm bar, stages, DDP.

Every recipe in :mod:`diffcf.recipes` trains through :func:`fit`, except the GANs, whose two
alternating optimisers train through :func:`fit_gan` (the same stages, schedule and DDP). Small
models train in one call. Models that need more than one sitting train in **stages**
(:class:`Stage`): a stage starts at a given step with the optimiser state of the previous one (or a
fresh Adam and a short warm-up when that state is lost), runs for a number of steps or minutes, and
hands back the step it reached; the learning-rate schedule is a function of the global step, so
stages add up to the same schedule as one long run. Resumable state is saved every few minutes, so
an interrupted stage loses little.

**Distributed data parallel.** Started by ``torchrun --nproc_per_node=N``, :func:`init_distributed`
joins the process group (gloo on CPU, nccl on GPU) and :func:`fit` wraps the model in
:class:`~torch.nn.parallel.DistributedDataParallel`: each rank draws its own batches (seeded by its
rank), gradients are averaged, and the ranks check at the end that they hold identical weights.
Without torchrun, one process trains alone.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from diffcf.utils import close_bar, progress_bar


@dataclass
class Stage:
    """One sitting of training: where it starts, how long it may run, where it saves.

    ``start_step`` and ``optimizer_state`` come from the previous stage (``optimizer_state=None``
    restarts Adam, with ``warmup_steps`` of linear warm-up). The stage ends at the recipe's last step,
    after ``max_steps`` steps or after ``max_seconds``, whichever comes first. ``save(model,
    optimizer_state, step)`` is called every ``save_every_seconds`` and at the end, on rank 0 only.
    After :func:`fit`, ``step`` is where the stage stopped and ``seconds`` how long it ran.
    """

    start_step: int = 0
    optimizer_state: dict[str, Any] | None = None
    warmup_steps: int = 0
    max_steps: int | None = None
    max_seconds: float | None = None
    save: Callable[[nn.Module, dict[str, Any], int], None] | None = None
    save_every_seconds: float = 600.0
    step: int = 0
    seconds: float = 0.0
    threads: int = 0
    history: list[float] = field(default_factory=list)


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); return
    ``(rank, world_size)``, ``(0, 1)`` for a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def rank() -> int:
    """This process's rank (0 without torchrun)."""
    return dist.get_rank() if dist.is_initialized() else 0


def per_rank(batch_size: int) -> int:
    """Each rank's share of a recipe's batch: N processes draw ``batch_size / N`` images each, so
    the gradient averages over the recipe's batch size however many processes train."""
    world = dist.get_world_size() if dist.is_initialized() else 1
    if batch_size % world:
        raise ValueError(f"batch size {batch_size} does not split over {world} processes")
    return batch_size // world


def learning_rate(step: int, steps: int, lr: float, warmup_steps: int = 0, warmup_from: int = 0) -> float:
    """Cosine decay from ``lr`` at step 0 to 0 at ``steps``, times a linear warm-up over the
    ``warmup_steps`` steps after ``warmup_from`` (the start of a stage whose Adam restarted)."""
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
    warm = min(1.0, (step - warmup_from + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return lr * cosine * warm


class _Objective(nn.Module):
    """``forward(*batch) = loss_fn(model, *batch)``: DDP synchronises gradients through ``forward``."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., Tensor]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, *batch: Tensor) -> Tensor:
        return self.loss_fn(self.model, *batch)


class _StageClock:
    """The stage bookkeeping every training loop shares: the stage's time budget (all ranks stop at
    the same step), periodic saves of the resumable state, and the record and save at its end."""

    def __init__(self, stage: Stage, model: nn.Module, optimizer_state: Callable[[], Any]):
        self.stage, self.model, self.optimizer_state = stage, model, optimizer_state
        self.device = next(model.parameters()).device
        self.is_main = rank() == 0
        self.start = self.last_save = time.perf_counter()

    def stop_after(self, step: int) -> bool:
        """After ``step``: is the stage's time spent (asked every 10 steps)? Save when it is due."""
        stage, now = self.stage, time.perf_counter()
        if stage.max_seconds is not None and step % 10 == 0:
            if _any_rank(now - self.start > stage.max_seconds, self.device):
                return True
        if stage.save is not None and self.is_main and now - self.last_save > stage.save_every_seconds:
            stage.save(self.model, self.optimizer_state(), step + 1)
            self.last_save = now
        return False

    def finish(self, step: int, bar) -> None:
        """Close the bar, record where and how long the stage ran, save its end state."""
        if bar is not None:
            bar.update(step - bar.n)
        close_bar(bar)
        stage = self.stage
        stage.step, stage.seconds = step, time.perf_counter() - self.start
        stage.threads = torch.get_num_threads()
        if stage.save is not None and self.is_main:
            stage.save(self.model, self.optimizer_state(), step)


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
    stage: Stage | None = None,
) -> list[float]:
    """Minimise ``loss_fn(model, *batch)`` with Adam (L2 ``weight_decay``) and a cosine
    learning-rate decay over ``steps`` steps; return the loss history (every 50th step).

    With a :class:`Stage`, train from ``stage.start_step`` until the stage's budget is spent.
    Raises :class:`FloatingPointError` if the loss becomes NaN/Inf.
    """
    stage = stage if stage is not None else Stage()
    objective: nn.Module = _Objective(model, loss_fn)
    if dist.is_initialized():
        # DDP broadcasts rank 0's parameters and buffers (e.g. actnorm's data-dependent start).
        objective = nn.parallel.DistributedDataParallel(objective)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    warmup_from = stage.start_step
    if stage.optimizer_state is not None:
        opt.load_state_dict(stage.optimizer_state)
    end = steps if stage.max_steps is None else min(steps, stage.start_step + stage.max_steps)
    model.train()
    clock = _StageClock(stage, model, opt.state_dict)
    bar = progress_bar(steps, desc, show=progress and clock.is_main, initial=stage.start_step)
    step = stage.start_step
    for step in range(stage.start_step, end):
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, steps, lr, stage.warmup_steps, warmup_from)
        loss = objective(*next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        opt.step()
        if step % 50 == 0 or step == end - 1:
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"{desc}: loss became {value} at step {step}")
            stage.history.append(value)
            if bar is not None:
                bar.update(step + 1 - bar.n)
                bar.set_postfix(loss=f"{value:.4f}")
        if clock.stop_after(step):
            step += 1
            break
    else:
        step = end
    if dist.is_initialized():
        check_ranks_agree(model)
    clock.finish(step, bar)
    model.eval()
    return stage.history


def fit_gan(
    gan: nn.Module,
    batches: Iterator[tuple[Tensor, ...]],
    steps: int,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    seed: int = 0,
    desc: str = "train GAN",
    lr_generator: float | None = None,
    progress: bool = True,
    stage: Stage | None = None,
) -> list[float]:
    """The adversarial counterpart of :func:`fit`: for each batch of real images ``x`` (the first
    element of each item of ``batches``) and latents ``z ~ N(0, I_prior_dim)``, one Adam step of the
    discriminator ``D``, then one of the generator ``g``, with the non-saturating loss of
    Goodfellow et al. (2014), as the dcGAN recipe (Radford et al., 2016) trains::

        D: softplus(−D(x)) + softplus(D(g(z)))        g: softplus(−D(g(z)))

    ``gan`` holds ``generator``, ``discriminator`` and ``prior_dim``, the size of the latent ``g``
    is trained from (a dcGAN's ``nz``; a style-based GAN's ``z``, which its mapping network takes to
    the ``W+`` latent that ``decode`` and the inversion work in). Learning rates follow
    :func:`learning_rate` of the global step (cosine decay, warm-up after a lost optimiser) for both;
    ``lr`` is the discriminator's, and the generator's unless ``lr_generator`` is given (a generator
    with equalised learning rates, whose weights are stored at unit scale, needs a larger one: StyleGAN
    trains at 2e-3). Returns the discriminator's loss every 50th step.

    Stages work as in :func:`fit`; the optimiser state a stage saves and restores is
    ``{"generator": ..., "discriminator": ...}``, the two Adams' state dicts. Under ``torchrun``
    every rank draws its own batches and latents (``seed`` plus the rank), gradients are averaged
    with ``all_reduce`` after each backward pass (not by the DDP wrapper, which expects one forward
    pass per backward pass: the discriminator runs on real and on generated images), and weights
    and buffers (batch-norm statistics, a style-based GAN's mean ``w``) are broadcast from rank 0 at
    the start and, for the buffers, at the end.
    """
    stage = stage if stage is not None else Stage()
    g, d = gan.generator, gan.discriminator
    device = next(gan.parameters()).device
    _broadcast_from_rank0(gan, buffers_only=False)
    lr_g = lr if lr_generator is None else lr_generator
    opt_g = torch.optim.Adam(g.parameters(), lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=betas)
    if stage.optimizer_state is not None:
        opt_g.load_state_dict(stage.optimizer_state["generator"])
        opt_d.load_state_dict(stage.optimizer_state["discriminator"])
    warmup_from = stage.start_step
    end = steps if stage.max_steps is None else min(steps, stage.start_step + stage.max_steps)
    gen = torch.Generator().manual_seed(seed + 1_000_003 * rank() + stage.start_step)
    gan.train()
    softplus = nn.functional.softplus
    state = lambda: {"generator": opt_g.state_dict(), "discriminator": opt_d.state_dict()}
    clock = _StageClock(stage, gan, state)
    bar = progress_bar(steps, desc, show=progress and clock.is_main, initial=stage.start_step)
    step = stage.start_step
    for step in range(stage.start_step, end):
        for opt, base in ((opt_g, lr_g), (opt_d, lr)):
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, steps, base, stage.warmup_steps, warmup_from)
        x = next(batches)[0]
        z = torch.randn(len(x), gan.prior_dim, generator=gen).to(device)
        fake = g(z)
        d_loss = softplus(-d(x)).mean() + softplus(d(fake.detach())).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        _average_gradients(d)
        opt_d.step()
        g_loss = softplus(-d(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        _average_gradients(g)
        opt_g.step()
        if step % 50 == 0 or step == end - 1:
            d_value, g_value = d_loss.item(), g_loss.item()
            if not (math.isfinite(d_value) and math.isfinite(g_value)):
                raise FloatingPointError(f"{desc}: losses became D {d_value}, g {g_value} at step {step}")
            stage.history.append(d_value)
            if bar is not None:
                bar.update(step + 1 - bar.n)
                bar.set_postfix(d_loss=f"{d_value:.3f}", g_loss=f"{g_value:.3f}")
        if clock.stop_after(step):
            step += 1
            break
    else:
        step = end
    if dist.is_initialized():
        _broadcast_from_rank0(gan, buffers_only=True)
        check_ranks_agree(gan)
    clock.finish(step, bar)
    gan.eval()
    return stage.history


def _average_gradients(model: nn.Module) -> None:
    """Average the gradients of ``model`` over the ranks (nothing without torchrun)."""
    if not dist.is_initialized():
        return
    world = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world)


def _broadcast_from_rank0(model: nn.Module, buffers_only: bool) -> None:
    """Give every rank rank 0's buffers (and parameters unless ``buffers_only``), as DDP does."""
    if not dist.is_initialized():
        return
    tensors = [*model.buffers()] if buffers_only else [*model.parameters(), *model.buffers()]
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, 0)


def _any_rank(flag: bool, device: torch.device) -> bool:
    """``flag`` of any rank: under DDP every rank must stop at the same step."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def check_ranks_agree(model: nn.Module) -> None:
    """Raise unless every rank holds the same weights (sum and sum of squares of all parameters)."""
    flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
    mine = torch.stack([flat.sum(), (flat**2).sum()]).double()
    lowest, highest = mine.clone(), mine.clone()
    dist.all_reduce(lowest, op=dist.ReduceOp.MIN)
    dist.all_reduce(highest, op=dist.ReduceOp.MAX)
    if not torch.equal(lowest, highest):
        raise RuntimeError(f"rank {rank()}: the ranks' weights differ after training ({lowest} vs {highest})")


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
