"""Scores of an attribution map: the ablation tests (top-k, :func:`topk_ablation_curve`, and
mass-centre, :func:`mass_centre_ablation_curve`) with their area under the curve
(:func:`curve_auc`), and the share of the attribution that falls on the object
(:func:`object_share`). Notebooks 09 and 10."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from diffcf.attribution.core import check_images, gaussian_blur, target_scores, targets


def _replacement(x: Tensor, replacement: str, mean_value: float | None, sigma: float) -> Tensor:
    if replacement == "mean":
        value = float(x.mean()) if mean_value is None else mean_value
        return torch.full_like(x, value)
    if replacement == "blur":
        return gaussian_blur(x, sigma)
    raise ValueError(f"replacement must be 'mean' or 'blur', got {replacement!r}")


@torch.no_grad()
def topk_ablation_curve(model: nn.Module, x: Tensor, target: int | Tensor, attributions: Tensor,
                        ks: list[int] | Tensor, replacement: str = "mean", mean_value: float | None = None,
                        sigma: float = 4.0, batch_size: int = 1024) -> Tensor:
    """Top-k ablation: replace the ``k`` pixels with the largest attribution (summed over channels;
    ties broken at random by the order of a stable sort) by the mean value or by the blurred image
    and record ``model(x_k)[target]`` (the log-odds with :class:`~diffcf.attribution.core.LogOdds`).
    Returns ``(N, len(ks))``.

    A faithful ranking makes the target score fall fast: lower curves are better. A random ranking
    (``torch.rand_like(x)`` as attributions) is the control.
    """
    check_images(x)
    t = targets(target, len(x)).to(x.device)
    ks = torch.as_tensor(ks, dtype=torch.long)
    n, d = len(x), x.shape[-2] * x.shape[-1]
    if attributions.shape != x.shape:
        raise ValueError(f"attributions must have the shape of x {tuple(x.shape)}, "
                         f"got {tuple(attributions.shape)}")
    if int(ks.max()) > d or int(ks.min()) < 0:
        raise ValueError(f"k must lie in [0, {d}], got {ks.tolist()}")
    score = attributions.sum(1).flatten(1)  # (N, H·W)
    rank = torch.empty_like(score, dtype=torch.long)
    order = score.argsort(dim=1, descending=True, stable=True)
    rank.scatter_(1, order, torch.arange(d, device=x.device).expand(n, -1))
    repl = _replacement(x, replacement, mean_value, sigma)
    out = torch.empty(n, len(ks))
    for j, k in enumerate(ks.tolist()):
        drop = (rank < k).reshape(n, 1, *x.shape[-2:])
        xk = torch.where(drop, repl, x)
        out[:, j] = target_scores(model, xk, t, batch_size).cpu()
    return out


def mass_centre(attributions: Tensor) -> Tensor:
    """Centre of mass ``(row, col)`` of the positive part of each map (image centre if all ≤ 0)."""
    w = attributions.sum(1).clamp(min=0)
    h, wd = w.shape[-2:]
    total = w.flatten(1).sum(1)
    rows = torch.arange(h, dtype=w.dtype, device=w.device)
    cols = torch.arange(wd, dtype=w.dtype, device=w.device)
    r = (w.sum(2) * rows).sum(1) / total.clamp(min=1e-12)
    c = (w.sum(1) * cols).sum(1) / total.clamp(min=1e-12)
    empty = total <= 0
    r = torch.where(empty, torch.full_like(r, (h - 1) / 2), r)
    c = torch.where(empty, torch.full_like(c, (wd - 1) / 2), c)
    return torch.stack([r, c], dim=1)


@torch.no_grad()
def mass_centre_ablation_curve(model: nn.Module, x: Tensor, target: int | Tensor, attributions: Tensor,
                               radii: list[float] | Tensor, replacement: str = "mean",
                               mean_value: float | None = None, sigma: float = 4.0) -> Tensor:
    """Mass-centre ablation: replace a disc of radius ``r`` around the attribution's centre of mass
    and record the target score; ``(N, len(radii))``, lower is better."""
    check_images(x)
    t = targets(target, len(x)).to(x.device)
    centre = mass_centre(attributions)
    h, w = x.shape[-2:]
    rows = torch.arange(h, dtype=x.dtype, device=x.device)[None, :, None]
    cols = torch.arange(w, dtype=x.dtype, device=x.device)[None, None, :]
    dist = ((rows - centre[:, 0, None, None]) ** 2 + (cols - centre[:, 1, None, None]) ** 2).sqrt()
    repl = _replacement(x, replacement, mean_value, sigma)
    radii = torch.as_tensor(radii, dtype=x.dtype)
    out = torch.empty(len(x), len(radii))
    for j, r in enumerate(radii.tolist()):
        drop = (dist <= r)[:, None]
        out[:, j] = target_scores(model, torch.where(drop, repl, x), t).cpu()
    return out


def curve_auc(xs: list[float] | Tensor, curve: Tensor) -> float:
    """Normalised area under the mean curve (trapezoid rule over ``xs``, divided by its range):
    the average target score over the ablation schedule. Lower is better."""
    xs = torch.as_tensor(xs, dtype=torch.float64)
    y = curve.double().mean(0) if curve.ndim == 2 else curve.double()
    return float(torch.trapezoid(y, xs) / (xs[-1] - xs[0]))


def object_share(attributions: Tensor, x: Tensor, threshold: float = 0.5, margin: int = 1) -> Tensor:
    """Share of the absolute attribution that falls on the object: inside the mask ``x > threshold``
    dilated by ``margin`` pixels (edges count as object). ``(N,)``; the object's own share of the
    image area is the chance level."""
    mask = (x.sum(1, keepdim=True) > threshold).float()
    if margin > 0:
        mask = F.max_pool2d(mask, 2 * margin + 1, stride=1, padding=margin)
    a = attributions.abs().sum(1, keepdim=True)
    return (a * mask).flatten(1).sum(1) / a.flatten(1).sum(1).clamp(min=1e-12)
