"""The counterfactual search: batched gradient ascent in input space X (eq. 4) or latent space Z (eq. 5).

- ``space="x"``: ``x ← x + η ∂f_t/∂x`` gives **adversarial examples** (eq. 4).
- ``space="z"``: ``z ← z + λ ∂(f∘g)_t/∂z`` from ``z = g⁻¹(x)``, result ``x' = g(z)`` gives
  **counterfactuals** (eq. 5); with a normalizing flow ``g`` they are *diffeomorphic* counterfactuals.

As in the paper's experiments (§IV), the ascent is done with Adam on a loss (cross-entropy to the
target class, or ∓ the regression output), and each sample stops at the first step at which its target
is reached. ``step="normalized"`` replaces Adam by §III's plain ascent with a normalised
step, ``v ← v − λ ∇L / ‖∇L‖`` per sample: every step moves each sample by exactly ``λ`` (L2) in the
optimised space. Its direction does not depend on the loss's scale: for a class target
``−∇ log f_t = −∇f_t / f_t``, so it is the ascent direction of ``f_t`` itself.

The whole batch runs at once; a finished sample is **frozen**: its update is masked to zero, so
Adam's momentum accumulated before success cannot move it afterwards. Only every
``check_every`` steps does the host look at the device (no per-step synchronisation): then finished
samples leave the working set, so later steps cost only as much as the samples still searching.

Bad inputs fail before the first step, with a message that names the fix: a learning rate that is
not positive and finite, ``max_steps``/``check_every`` that are not whole numbers ``>= 1``, target
classes that are not whole numbers (``9.7`` is not truncated to ``9``), a start ``x`` that is not
floating point, not finite, or (with ``bounds``) outside ``[lo, hi]`` (e.g. 0–255 pixels for a
search on ``[0, 1]`` images, which clipping would otherwise binarise), and a start ``x`` whose
dtype or device differs from the models' weights (``float64`` images for ``float32`` models: call
``x.float()``; nothing is cast silently).
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from diffcf.generative import Generator, check_generator
from diffcf.targets import ClassTarget, RegressionTarget, Target  # noqa: F401  (re-exported: the API)
from diffcf.utils import close_bar, progress_bar

SPACES = ("x", "z")
STEPS = ("adam", "normalized")
BOUNDS_TOLERANCE = 1e-3  # how far (times hi - lo) a start point may lie outside ``bounds``


def _check_count(name: str, value: object, meaning: str, example: int) -> None:
    """``value`` must be an integer ``>= 1`` (not a bool, not a float such as ``2.5``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} ({meaning}) must be an integer >= 1, got {value!r}: "
                         f"pass e.g. {name}={example}")


def _check_lr(lr: object) -> None:
    """The step size must be a positive, finite number (NaN would silently give NaN points)."""
    ok = isinstance(lr, numbers.Real) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0
    if not ok:
        raise ValueError(f"lr (the step size) must be positive and finite, got {lr!r}: "
                         f"pass e.g. lr=5e-3")


def _first_weight(m: object) -> Tensor | None:
    """The first floating-point parameter or buffer of a module (``None`` if it has none)."""
    if not isinstance(m, nn.Module):
        return None
    tensors = (*m.parameters(), *m.buffers())
    return next((w for w in tensors if w.is_floating_point()), None)


def _check_start(x: Tensor, models: dict[str, object], bounds: tuple[float, float] | None) -> None:
    """The start points: a finite floating-point tensor with the models' dtype and device, inside
    ``bounds`` (up to :data:`BOUNDS_TOLERANCE`) when given. Nothing is cast or clipped silently."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of start points, got {type(x).__name__}")
    scale = "" if bounds is None else f" scaled to [{bounds[0]}, {bounds[1]}]"
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor{scale}, got dtype {x.dtype}: "
                         f"convert it first, e.g. x.float() / 255 for 0-255 pixels")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or Inf: every start point must be finite")
    for name, m in models.items():
        w = _first_weight(m)
        if w is None:
            continue
        if w.dtype != x.dtype:
            raise ValueError(f"x is {x.dtype} but the weights of {name} are {w.dtype}: cast one to "
                             f"the other, e.g. x = x.to({w.dtype}) (x.float() for float32 models)")
        if w.device != x.device:
            raise ValueError(f"x is on {x.device} but the weights of {name} are on {w.device}: "
                             f"move x there, e.g. x = x.to('{w.device}')")
    if bounds is not None and x.numel():
        lo, hi = bounds
        tol = BOUNDS_TOLERANCE * ((hi - lo) if math.isfinite(hi - lo) else 1.0)
        x_lo, x_hi = float(x.min()), float(x.max())
        if x_lo < lo - tol or x_hi > hi + tol:
            raise ValueError(
                f"x lies in [{x_lo:.4g}, {x_hi:.4g}], outside bounds [{lo}, {hi}]: the start points "
                f"must be {x.dtype} values in [{lo}, {hi}] (clipping would change them, e.g. binarise "
                f"0-255 pixels); rescale x (e.g. x / 255) or pass the bounds the data lie in"
            )


@dataclass
class SearchResult:
    """Outcome of :func:`counterfactual_search` for a batch of ``B`` samples."""

    x: Tensor  # (B, ...) final points in X: at first success, or after max_steps
    z: Tensor | None  # (B, d) final latents (space "z" only)
    success: Tensor  # (B,) bool
    steps: Tensor  # (B,) updates taken until success (max_steps where it failed)
    seconds: Tensor  # (B,) wall time from the start until the sample finished
    output: Tensor  # (B, ...) classifier output at the final points
    trajectory: Tensor | None = None  # (T+1, B, ...) points in X at every step, if recorded

    @property
    def n_success(self) -> int:
        return int(self.success.sum())

    def subset(self, rows: Tensor | slice) -> SearchResult:
        """The results of the samples ``rows`` only (e.g. one of several studies run in one batch)."""
        return SearchResult(
            x=self.x[rows], z=None if self.z is None else self.z[rows], success=self.success[rows],
            steps=self.steps[rows], seconds=self.seconds[rows], output=self.output[rows],
            trajectory=None if self.trajectory is None else self.trajectory[:, rows],
        )


class _MaskedAdam:
    """Adam (Kingma & Ba) on one tensor whose update is zero wherever ``active`` is False.

    The arithmetic matches ``torch.optim.Adam`` (no weight decay, no amsgrad).
    """

    def __init__(self, v: Tensor, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = torch.zeros_like(v)
        self.s = torch.zeros_like(v)
        self.k = 0

    def step(self, v: Tensor, grad: Tensor, active: Tensor) -> Tensor:
        self.k += 1
        self.m.mul_(self.b1).add_(grad, alpha=1 - self.b1)
        self.s.mul_(self.b2).addcmul_(grad, grad, value=1 - self.b2)
        bc1, bc2 = 1 - self.b1**self.k, 1 - self.b2**self.k
        update = (self.lr / bc1) * self.m / (self.s.sqrt() / bc2**0.5 + self.eps)
        mask = active.reshape(-1, *([1] * (v.ndim - 1)))
        return v - torch.where(mask, update, torch.zeros_like(update))

    def keep(self, rows: Tensor) -> None:
        """Drop the state of every sample not in ``rows`` (the working set shrinks)."""
        self.m, self.s = self.m[rows], self.s[rows]


class _NormalizedStep:
    """§III's update ``v ← v − λ ∇L / ‖∇L‖_2`` per sample (zero where ``active`` is False)."""

    def __init__(self, v: Tensor, lr: float):
        self.lr = lr

    def step(self, v: Tensor, grad: Tensor, active: Tensor) -> Tensor:
        norm = grad.flatten(1).norm(dim=1).clamp_min(torch.finfo(grad.dtype).tiny)
        scale = torch.where(active, self.lr / norm, torch.zeros_like(norm))
        return v - scale.reshape(-1, *([1] * (v.ndim - 1))) * grad

    def keep(self, rows: Tensor) -> None:
        """Stateless: nothing to drop."""


def counterfactual_search(
    f: nn.Module,
    x: Tensor,
    target: Target,
    space: str = "z",
    g: Generator | None = None,
    lr: float = 5e-3,
    max_steps: int = 1000,
    bounds: tuple[float, float] | None = None,
    record_trajectory: bool = False,
    check_every: int = 5,
    progress: bool = False,
    step: str = "adam",
    penalty: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> SearchResult:
    """Gradient ascent for a whole batch in X (adversarials, eq. 4) or in Z (counterfactuals, eq. 5).

    Args:
        f: the classifier (logits) or regressor; used in eval mode, its weights are not changed.
        x: the batch of originals, ``(B, ...)``.
        target: a :class:`ClassTarget` or :class:`RegressionTarget`.
        space: ``"x"`` (optimise pixels) or ``"z"`` (optimise ``z = g⁻¹(x)``, needs ``g``).
        g: the generator (``encode``/``decode``) for ``space="z"``.
        lr: Adam learning rate, or the length λ of each normalised step (positive, finite).
        max_steps: most updates per sample (an integer >= 1).
        bounds: valid range ``(lo, hi)`` of X; points are clipped to it (images), or ``None``. The
            start ``x`` must already lie in it (in either space): 0-255 pixels for ``(0, 1)`` raise.
        record_trajectory: also return every step's points in X, ``(T+1, B, ...)``.
        check_every: ask the device whether all samples are done only every this many steps.
        progress: show a tqdm bar over steps.
        step: ``"adam"`` (the paper's experiments, §IV) or ``"normalized"`` (§III's ascent, every
            step of length ``lr``).
        penalty: ``None`` (the paper's method) or ``penalty(x_k, rows)``: one value per row, added to
            the target's loss, where ``x_k`` are the working set's current images and ``rows`` their
            indices in ``x``. The methods compared in Table IV are this search with a penalty
            (:mod:`diffcf.comparison`); the stopping rule stays the target's.

    Raises:
        ValueError: for any bad argument above, before the first step (see the module docstring);
            ``x`` must be floating point with the dtype and device of ``f``'s (and ``g``'s) weights.
    """
    if space not in SPACES:
        raise ValueError(
            f"space must be 'x' (ascent on the input, eq. 4) or 'z' (ascent on the latent, eq. 5), "
            f"got {space!r}"
        )
    if space == "z":
        if g is None:
            raise ValueError("space='z' needs a generator g with encode/decode")
        check_generator(g)
    if step not in STEPS:
        raise ValueError(f"step must be 'adam' (the paper's experiments) or 'normalized' (§III's ascent "
                         f"with steps of length lr), got {step!r}")
    _check_lr(lr)
    _check_count("max_steps", max_steps, "the most Adam steps per sample", 1000)
    _check_count("check_every", check_every, "steps between looks at the device", 5)
    if bounds is not None and not bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be (lo, hi) with lo < hi, got {bounds}")
    if not (callable(getattr(target, "loss", None)) and callable(getattr(target, "reached", None))):
        raise TypeError(f"target must be a ClassTarget or a RegressionTarget, got {type(target).__name__}: "
                        f"wrap a class index, e.g. ClassTarget(9)")
    if penalty is not None and not callable(penalty):
        raise TypeError(f"penalty must be None or a function penalty(x_k, rows), "
                        f"got {type(penalty).__name__}")
    _check_start(x, {"f": f, "g": g} if space == "z" else {"f": f}, bounds)

    def to_x(v: Tensor) -> Tensor:
        out = g.decode(v) if space == "z" else v
        return out.clamp(*bounds) if bounds is not None else out

    with torch.no_grad():
        v = g.encode(x) if space == "z" else x.clone()
        if bounds is not None and space == "x":
            v = v.clamp(*bounds)
    if not torch.isfinite(v).all():
        raise FloatingPointError("g.encode(x) produced NaN/Inf: is x in the range the flow was trained on?")

    n = x.shape[0]
    device = x.device
    v_all = v.clone()  # every sample's current point in the optimised space
    idx = torch.arange(n, device=device)  # the working set: samples still searching
    active = torch.ones(n, dtype=torch.bool, device=device)  # per working-set row
    steps = torch.full((n,), max_steps, dtype=torch.long, device=device)
    success = torch.zeros(n, dtype=torch.bool, device=device)
    work_target = target
    update = (_MaskedAdam if step == "adam" else _NormalizedStep)(v, lr)
    stamps: list[float] = []
    trajectory: list[Tensor] = []
    x_all: Tensor | None = None
    bar = progress_bar(max_steps, f"search in {space.upper()}", show=progress)

    t0 = time.perf_counter()
    for k in range(max_steps + 1):
        v = v.detach().requires_grad_(True)
        x_k = to_x(v)
        out = f(x_k)
        if k == 0:
            target.check(out)
        reached = work_target.reached(out).detach()
        newly = active & reached
        steps[idx] = torch.where(newly, torch.full_like(newly, k, dtype=torch.long), steps[idx])
        success[idx] = success[idx] | newly
        active = active & ~reached
        stamps.append(time.perf_counter() - t0)
        if record_trajectory:
            x_all = x_k.detach() if x_all is None else x_all.index_copy(0, idx, x_k.detach())
            trajectory.append(x_all)
        if k == max_steps:
            break
        loss = work_target.loss(out)
        if penalty is not None:
            loss = loss + penalty(x_k, idx)
        (grad,) = torch.autograd.grad(loss.sum(), v)
        with torch.no_grad():
            v = update.step(v.detach(), grad, active)
        if (k + 1) % check_every == 0:  # the only host synchronisation
            if bar is not None:
                bar.update(k + 1 - bar.n)
            rows = active.nonzero()[:, 0]
            if len(rows) < len(idx):
                v_all.index_copy_(0, idx, v)
                if len(rows) == 0:
                    break
                idx, v, active = idx[rows], v[rows], active[rows]
                update.keep(rows)
                work_target = target.select(idx)
    close_bar(bar)

    with torch.no_grad():
        v_all.index_copy_(0, idx, v.detach())
        x_final = to_x(v_all)
        out_final = f(x_final)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    stamp_t = torch.tensor(stamps, device=device)
    return SearchResult(
        x=x_final,
        z=v_all if space == "z" else None,
        success=success,
        steps=steps,
        seconds=stamp_t[steps.clamp(max=len(stamps) - 1)],
        output=out_final,
        trajectory=torch.stack(trajectory) if record_trajectory else None,
    )
