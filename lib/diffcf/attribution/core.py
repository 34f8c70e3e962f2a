"""What every attribution module shares: the explained quantity (:class:`LogOdds`), the target score
per sample (:func:`target_scores`), the Gaussian blur (baselines, Meaningful Perturbations and the
blur replacement of the ablation tests) and the input checks."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class LogOdds(nn.Module):
    """Wrap a classifier ``f`` (logits) so that it returns the **log-odds** of every class,
    ``log p_c − log(1 − p_c) = ℓ_c − logsumexp_{j≠c} ℓ_j``; for two classes, ``ℓ_c − ℓ_other``."""

    def __init__(self, f: nn.Module):
        super().__init__()
        self.f = f

    def forward(self, x: Tensor) -> Tensor:
        logits = self.f(x)
        c = logits.shape[1]
        eye = torch.eye(c, dtype=torch.bool, device=logits.device)
        others = logits[:, None, :].expand(-1, c, -1).masked_fill(eye, float("-inf"))
        return logits - torch.logsumexp(others, dim=2)


def check_images(x: Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is a finite batch of images ``(N, C, H, W)``."""
    if x.ndim != 4:
        raise ValueError(f"x must be a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or Inf")


def leaf(x: Tensor) -> Tensor:
    """A copy of ``x`` that requires gradients (Captum warns about inputs that do not)."""
    return x.detach().clone().requires_grad_(True)


def targets(target: int | Tensor, n: int) -> Tensor:
    """``target`` as one class index per sample: an int is repeated ``n`` times."""
    t = torch.as_tensor(target, dtype=torch.long)
    return t.expand(n).clone() if t.ndim == 0 else t


@torch.no_grad()
def target_scores(model: nn.Module, x: Tensor, target: int | Tensor, batch_size: int = 1024) -> Tensor:
    """``model(x)[i, target_i]`` per sample, computed in batches."""
    t = targets(target, len(x)).to(x.device)
    out = torch.cat([model(xb) for xb in x.split(batch_size)])
    return out.gather(1, t[:, None])[:, 0]


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` images (kernel ±3σ, reflect padding);
    ``sigma = 0`` returns ``x``."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return x.clone()
    radius = max(1, min(math.ceil(3 * sigma), min(x.shape[-2:]) - 1))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    h = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.reshape(1, 1, 1, -1).expand(c, 1, 1, -1),
                 groups=c)
    return F.conv2d(F.pad(h, (0, 0, radius, radius), mode="reflect"),
                    k.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
