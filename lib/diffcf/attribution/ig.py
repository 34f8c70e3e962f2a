"""Integrated Gradients (Sundararajan et al. 2017): the teaching Riemann sum, the path, the
completeness gap, Captum's batched IG, IG averaged over many baselines and Expected Gradients
(Erion et al. 2021). Notebooks 09 and 10."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from diffcf.attribution.core import check_images, leaf, target_scores, targets


def integrated_gradients_riemann(model: nn.Module, x: Tensor, baseline: Tensor, target: int | Tensor,
                                 n_steps: int = 50) -> Tensor:
    """IG by the midpoint Riemann sum (the teaching version written out in notebook 09):

    ``φ_i = (x_i − x'_i) · (1/k) Σ_{j=0}^{k−1} ∂f_t/∂x_i (x' + α_j (x − x'))``, ``α_j = (j + ½)/k``.

    Equals Captum's ``IntegratedGradients(..., method="riemann_middle")``.
    """
    t = targets(target, len(x)).to(x.device)
    total = torch.zeros_like(x)
    for j in range(n_steps):
        alpha = (j + 0.5) / n_steps
        xi = (baseline + alpha * (x - baseline)).detach().requires_grad_(True)
        out = model(xi).gather(1, t[:, None]).sum()
        total += torch.autograd.grad(out, xi)[0]
    return (x - baseline) * total / n_steps


def ig_path(model: nn.Module, x: Tensor, baseline: Tensor, target: int | Tensor,
            n_steps: int = 50) -> dict[str, Tensor]:
    """Everything along the IG path of one batch (Distill's figure rows), midpoint rule:

    ``alphas (k,)``, ``images (k, N, ...)`` = ``x' + α (x − x')``, ``gradients (k, N, ...)``,
    ``cumulative (k, N, ...)`` = attribution accumulated up to ``α_j``, ``sum (k, N)`` = its total
    over pixels, and ``gap_target (N,)`` = ``f(x) − f(x')``.
    """
    t = targets(target, len(x)).to(x.device)
    alphas = (torch.arange(n_steps, dtype=x.dtype) + 0.5) / n_steps
    images = baseline[None] + alphas.reshape(-1, *[1] * x.ndim).to(x) * (x - baseline)[None]
    flat = images.reshape(-1, *x.shape[1:]).detach().requires_grad_(True)
    out = model(flat).gather(1, t.repeat(n_steps)[:, None]).sum()
    grads = torch.autograd.grad(out, flat)[0].reshape(images.shape)
    cumulative = (x - baseline)[None] * grads.cumsum(0) / n_steps
    return {"alphas": alphas, "images": images.detach(), "gradients": grads,
            "cumulative": cumulative, "sum": cumulative.flatten(2).sum(2),
            "gap_target": target_scores(model, x, t) - target_scores(model, baseline, t)}


def completeness_gap(model: nn.Module, x: Tensor, baseline: Tensor, attributions: Tensor,
                     target: int | Tensor) -> Tensor:
    """Relative completeness gap per sample, ``|Σ_i φ_i − (f(x) − f(x'))| / |f(x) − f(x')|``."""
    t = targets(target, len(x)).to(x.device)
    diff = target_scores(model, x, t) - target_scores(model, baseline, t)
    return (attributions.flatten(1).sum(1) - diff).abs() / diff.abs().clamp(min=1e-12)


def integrated_gradients(model: nn.Module, x: Tensor, target: int | Tensor, baseline: Tensor,
                         n_steps: int = 64, method: str = "gausslegendre",
                         internal_batch_size: int = 1024) -> Tensor:
    """Captum's Integrated Gradients from ``baseline`` (one per sample)."""
    from captum.attr import IntegratedGradients

    check_images(x)
    ig = IntegratedGradients(model)
    return ig.attribute(leaf(x), baselines=baseline, target=targets(target, len(x)), n_steps=n_steps,
                        method=method, internal_batch_size=internal_batch_size).detach()


def averaged_ig(model: nn.Module, x: Tensor, target: int | Tensor,
                baseline_fn: Callable[[Tensor], Tensor], n_baselines: int = 8, n_steps: int = 32,
                internal_batch_size: int = 1024) -> Tensor:
    """IG averaged over ``n_baselines`` draws of ``baseline_fn(x)`` (all draws in one Captum call)."""
    xs = x.repeat(n_baselines, 1, 1, 1)
    baselines = torch.cat([baseline_fn(x) for _ in range(n_baselines)])
    t = targets(target, len(x)).repeat(n_baselines)
    phi = integrated_gradients(model, xs, t, baselines, n_steps, internal_batch_size=internal_batch_size)
    return phi.reshape(n_baselines, *x.shape).mean(0)


def expected_gradients(model: nn.Module, x: Tensor, target: int | Tensor, data: Tensor,
                       n_samples: int = 64, generator: torch.Generator | None = None,
                       internal_batch_size: int = 1024) -> Tensor:
    """Expected Gradients (Erion et al. 2021) with the training distribution ``data``:

    ``φ_i = E_{x'∼D, α∼U(0,1)} [(x_i − x'_i) ∂f(x' + α(x − x'))/∂x_i]``, by ``n_samples`` draws of
    ``(x', α)`` per sample. This is Captum's GradientShap with ``stdevs = 0`` and the data as
    baselines; to seed it, this function draws the reference images and ``α`` itself and calls
    Captum's batched gradient on the interpolated points.
    """
    check_images(x)
    t = targets(target, len(x)).to(x.device)
    n = len(x)
    idx = torch.randint(len(data), (n_samples, n), generator=generator)
    alpha = torch.rand(n_samples, n, generator=generator).to(x)
    ref = data[idx].to(x)  # (S, N, ...)
    a = alpha.reshape(n_samples, n, *[1] * (x.ndim - 1))
    points = (ref + a * (x[None] - ref)).reshape(-1, *x.shape[1:])
    grads = _batched_gradient(model, points, t.repeat(n_samples), internal_batch_size)
    return ((x[None] - ref) * grads.reshape(n_samples, *x.shape)).mean(0)


def _batched_gradient(model: nn.Module, x: Tensor, target: Tensor, batch_size: int) -> Tensor:
    from captum.attr import Saliency

    sal = Saliency(model)
    return torch.cat([sal.attribute(leaf(xb), target=tb, abs=False).detach()
                      for xb, tb in zip(x.split(batch_size), target.split(batch_size), strict=True)])
