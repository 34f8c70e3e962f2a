"""Integrated Gradients baselines, after the Distill article "Visualizing the Impact of Feature
Attribution Baselines" (Sturmfels, Lundberg, Lee 2020): one constructor per baseline,
:func:`make_baseline` by name, and :func:`baseline_suite`, the set notebook 10 compares. The training
distribution as a baseline is :func:`diffcf.attribution.ig.expected_gradients`."""

from __future__ import annotations

import torch
from torch import Tensor

from diffcf.attribution.core import gaussian_blur

BASELINES = ("black", "max_distance", "blurred", "uniform", "gaussian")


def black_baseline(x: Tensor) -> Tensor:
    """All zeros: IG can never credit a black pixel (its ``x_i − x'_i`` is 0)."""
    return torch.zeros_like(x)


def max_distance_baseline(x: Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """The image farthest from ``x`` in L1 within ``bounds``: each pixel goes to the far end,
    ``hi`` where ``x < (lo + hi)/2`` else ``lo`` (it still contains the object's outline, inverted)."""
    lo, hi = bounds
    return torch.where(x < (lo + hi) / 2, torch.full_like(x, hi), torch.full_like(x, lo))


def blurred_baseline(x: Tensor, sigma: float) -> Tensor:
    """``x`` blurred with a Gaussian of width ``sigma`` pixels: removes edges, keeps mean brightness."""
    return gaussian_blur(x, sigma)


def uniform_baseline(x: Tensor, generator: torch.Generator | None = None,
                     bounds: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """Uniform noise in ``bounds``, independent of ``x``."""
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(x.shape, generator=generator).to(x)


def gaussian_baseline(x: Tensor, sigma: float, generator: torch.Generator | None = None,
                      bounds: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """``x + ε``, ``ε ~ N(0, σ²)``, clipped to ``bounds``: a baseline *around* ``x``."""
    return (x + sigma * torch.randn(x.shape, generator=generator).to(x)).clamp(*bounds)


def make_baseline(name: str, x: Tensor, sigma: float = 1.0,
                  generator: torch.Generator | None = None) -> Tensor:
    """A baseline for every sample of ``x`` by name, one of :data:`BASELINES`; ``sigma`` is the blur
    width (``"blurred"``) or the noise level (``"gaussian"``)."""
    if name == "black":
        return black_baseline(x)
    if name == "max_distance":
        return max_distance_baseline(x)
    if name == "blurred":
        return blurred_baseline(x, sigma)
    if name == "uniform":
        return uniform_baseline(x, generator)
    if name == "gaussian":
        return gaussian_baseline(x, sigma, generator)
    raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")


def baseline_suite(x: Tensor, blur_sigmas: list[float] = (1.0, 3.0, 8.0), gaussian_sigma: float = 0.3,
                   generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """One baseline per name for every image of ``x`` (notebook 10): black, maximum distance, blurred
    (each σ), uniform, Gaussian around ``x`` (keys like ``"blurred_3"``, ``"blurred_2p5"``)."""
    out = {"black": make_baseline("black", x), "max_distance": make_baseline("max_distance", x)}
    for sigma in blur_sigmas:
        out[f"blurred_{sigma:g}".replace(".", "p")] = make_baseline("blurred", x, sigma)
    out["uniform"] = make_baseline("uniform", x, generator=generator)
    out["gaussian"] = make_baseline("gaussian", x, gaussian_sigma, generator)
    return out
