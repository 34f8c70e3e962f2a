"""The toy data of §IV-A: points on the helix ``h(s) = (r sin s, r cos s, s)``, ``s ~ U(−4, 4)``.

Class 1 is the upper half (third coordinate > 0), class 0 the lower half. The helix is a
1-dimensional manifold in R³, so the distance of a point to it is a 1-d minimisation over ``s``,
solved exactly (grid search for the basin, then safeguarded Newton) in :func:`distance_to_helix`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

S_RANGE = (-4.0, 4.0)


def helix(s: Tensor, r: float = 1.0) -> Tensor:
    """Points ``(r sin s, r cos s, s)`` of shape ``(*s.shape, 3)``."""
    return torch.stack([r * torch.sin(s), r * torch.cos(s), s], dim=-1)


def helix_tangent(s: Tensor, r: float = 1.0) -> Tensor:
    """Unit tangent ``h'(s) / |h'(s)|`` of the helix at parameter ``s``."""
    d = torch.stack([r * torch.cos(s), -r * torch.sin(s), torch.ones_like(s)], dim=-1)
    return d / math.sqrt(r**2 + 1.0)


def sample_helix(
    n: int,
    generator: torch.Generator | None = None,
    r: float = 1.0,
    s_range: tuple[float, float] = S_RANGE,
) -> tuple[Tensor, Tensor]:
    """``n`` points uniform in ``s`` on the helix; returns ``(x, s)``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    lo, hi = s_range
    s = lo + (hi - lo) * torch.rand(n, generator=generator)
    return helix(s, r), s


def helix_labels(x: Tensor) -> Tensor:
    """Class 1 for the upper half (third coordinate > 0), else 0."""
    return (x[..., 2] > 0).long()


def distance_to_helix(
    x: Tensor,
    r: float = 1.0,
    s_range: tuple[float, float] = S_RANGE,
    grid: int = 2001,
    newton_steps: int = 10,
) -> Tensor:
    """Exact Euclidean distance of each point of ``x`` (shape ``(n, 3)``) to the helix segment.

    With ``ρ = |(x₁, x₂)|`` and ``φ = atan2(x₁, x₂)`` the squared distance is
    ``d²(s) = x₁² + x₂² + r² − 2rρ cos(s − φ) + (x₃ − s)²``. A grid over ``s_range`` locates the
    global basin; Newton's method on ``d²'(s) = 0`` then polishes ``s`` (kept only where it improves).
    """
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"x must have shape (n, 3), got {tuple(x.shape)}")
    x = x.double()
    a, b, c = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    rho = torch.sqrt(a**2 + b**2)
    phi = torch.atan2(a, b)
    const = a**2 + b**2 + r**2

    def d2(s: Tensor) -> Tensor:
        return const - 2 * r * rho * torch.cos(s - phi) + (c - s) ** 2

    lo, hi = s_range
    s_grid = torch.linspace(lo, hi, grid, dtype=x.dtype, device=x.device)[None, :]
    best = d2(s_grid).argmin(dim=1, keepdim=True)
    s = s_grid[0, best[:, 0]][:, None]
    d_best = d2(s)
    for _ in range(newton_steps):
        grad = 2 * r * rho * torch.sin(s - phi) - 2 * (c - s)
        hess = 2 * r * rho * torch.cos(s - phi) + 2
        step = torch.where(hess > 0, grad / hess, torch.zeros_like(grad))
        s_new = (s - step).clamp(lo, hi)
        d_new = d2(s_new)
        better = d_new < d_best
        s = torch.where(better, s_new, s)
        d_best = torch.where(better, d_new, d_best)
    return d_best.clamp_min(0).sqrt()[:, 0]
