"""Circles vs squares with a size shortcut: the paper's introductory example (§I).

A procedural generator of 1×28×28 grey images, each a single white shape (value 1) on black (0),
rendered with 4×4 supersampling (soft, anti-aliased edges). Every image comes with its
**ground-truth factors**: shape (0 = square, 1 = circle), area in pixels, centre.

Size modes (``area`` is the shape's exact area; ``u ~ U[area_lo, area_hi]`` is a base size):

- ``"confounded"``: squares have area ``u``, circles ``2u``: every circle is twice as large as a
  square of the same base size, and, because ``2·area_lo > area_hi``, larger than *every* square.
  Size alone separates the classes (the training set of the shortcut classifier).
- ``"crossed"``: the de-confounded test set: half of each shape has area ``u``, half ``2u``
  (exactly balanced), so size carries no information about the shape.
- ``"uniform"``: area ``~ U[area_lo, 2·area_hi]`` for either shape (the flow's training data: it
  must know small circles and large squares to be able to show them).

Everything random is drawn from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

SQUARE, CIRCLE = 0, 1
CLASS_NAMES = ("square", "circle")
SIZE_MODES = ("confounded", "crossed", "uniform")
SIZE = 28
AREA_LO, AREA_HI = 30.0, 50.0  # base area u (pixels); 2·AREA_LO > AREA_HI keeps the classes apart
CENTER_LO, CENTER_HI = 10.0, 18.0  # centre coordinates (pixels), uniform in both axes
SUPERSAMPLE = 4
FILL_THRESHOLD = 0.5


@dataclass
class ShapeFactors:
    """Ground-truth factors of a batch of generated images."""

    shape: Tensor  # (N,) long: 0 square, 1 circle (the label)
    area: Tensor  # (N,) float: exact area in pixels
    center: Tensor  # (N, 2) float: (row, column) of the centre in pixels

    def __getitem__(self, idx) -> ShapeFactors:
        return ShapeFactors(self.shape[idx], self.area[idx], self.center[idx])

    def __len__(self) -> int:
        return len(self.shape)


def render(shape: Tensor, area: Tensor, center: Tensor, size: int = SIZE,
           supersample: int = SUPERSAMPLE) -> Tensor:
    """Render shapes as ``(N, 1, size, size)`` images in ``[0, 1]`` (pixel value = covered share).

    A square of area ``a`` has side ``√a``; a circle has radius ``√(a/π)``.
    """
    n = len(shape)
    s = size * supersample
    coords = (torch.arange(s, dtype=torch.float32) + 0.5) / supersample  # pixel units
    rows, cols = coords[None, :, None], coords[None, None, :]
    cy, cx = center[:, 0, None, None], center[:, 1, None, None]
    half = area.sqrt()[:, None, None] / 2
    radius = (area / math.pi).sqrt()[:, None, None]
    inside_square = ((rows - cy).abs() <= half) & ((cols - cx).abs() <= half)
    inside_circle = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2
    is_circle = (shape == CIRCLE)[:, None, None]
    mask = torch.where(is_circle, inside_circle, inside_square).float()
    return F.avg_pool2d(mask.reshape(n, 1, s, s), supersample)


def sample_factors(n: int, mode: str = "confounded", generator: torch.Generator | None = None,
                   area_range: tuple[float, float] = (AREA_LO, AREA_HI)) -> ShapeFactors:
    """Draw ``n`` factor tuples (balanced classes: ``n // 2`` squares first, then circles)."""
    if mode not in SIZE_MODES:
        raise ValueError(f"unknown size mode {mode!r}; choose one of {', '.join(SIZE_MODES)}")
    if n < 2 or n % 2:
        raise ValueError(f"n must be a positive even number (balanced classes), got {n}")
    lo, hi = area_range
    if not 0 < lo < hi < 2 * lo:
        raise ValueError(f"area_range needs 0 < lo < hi < 2·lo (sizes separate the classes), "
                         f"got {area_range}")
    shape = torch.cat([torch.full((n // 2,), SQUARE), torch.full((n // 2,), CIRCLE)])
    u = lo + (hi - lo) * torch.rand(n, generator=generator)
    if mode == "confounded":
        area = torch.where(shape == CIRCLE, 2 * u, u)
    elif mode == "crossed":
        large = (torch.arange(n) % 2).bool()  # alternate within each shape: exactly half large
        area = torch.where(large, 2 * u, u)
    else:
        area = lo + (2 * hi - lo) * torch.rand(n, generator=generator)
    center = CENTER_LO + (CENTER_HI - CENTER_LO) * torch.rand(n, 2, generator=generator)
    perm = torch.randperm(n, generator=generator)
    return ShapeFactors(shape[perm], area[perm], center[perm])


def make_shapes(n: int, mode: str = "confounded",
                generator: torch.Generator | None = None) -> tuple[Tensor, ShapeFactors]:
    """``n`` images ``(n, 1, 28, 28)`` and their factors; the label is ``factors.shape``."""
    factors = sample_factors(n, mode, generator)
    chunks = [render(*(t[i:i + 2000] for t in (factors.shape, factors.area, factors.center)))
              for i in range(0, n, 2000)]
    return torch.cat(chunks), factors


def load_shapes(split: str, mode: str | None = None, n: int | None = None,
                seed: int = 0) -> tuple[Tensor, Tensor]:
    """A fixed split ``(x, y)``: ``"train"`` (confounded, 20 000), ``"test"`` (confounded, 4 000),
    ``"deconfounded"`` (crossed, 4 000) or ``"flow"`` (uniform sizes, 20 000), seeded per split."""
    defaults = {"train": ("confounded", 20_000, 0), "test": ("confounded", 4_000, 1),
                "deconfounded": ("crossed", 4_000, 2), "flow": ("uniform", 20_000, 3)}
    if split not in defaults:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(defaults)}")
    d_mode, d_n, offset = defaults[split]
    x, factors = make_shapes(n or d_n, mode or d_mode, torch.Generator().manual_seed(1000 * seed + offset))
    return x, factors.shape


# ---- descriptors measured on images (for originals, counterfactuals and adversarials alike) --------


def object_mask(x: Tensor, threshold: float = FILL_THRESHOLD) -> Tensor:
    """Binary object mask ``x > threshold`` of ``(N, 1, H, W)`` images."""
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"x must have shape (N, 1, H, W), got {tuple(x.shape)}")
    return x[:, 0] > threshold


def object_area(x: Tensor, threshold: float = FILL_THRESHOLD) -> Tensor:
    """Number of pixels above ``threshold`` per image: the measured area."""
    return object_mask(x, threshold).flatten(1).sum(1).float()


def fill_ratio(x: Tensor, threshold: float = FILL_THRESHOLD) -> Tensor:
    """Object area over the area of its bounding box, measured on the mask ``x > threshold``:
    ≈ 1 for a square, ≈ π/4 ≈ 0.785 for a circle (0 for an empty image). Sensitive to single stray
    pixels, which widen the box; :func:`template_match` is the robust shape test."""
    mask = object_mask(x, threshold)
    rows, cols = mask.any(2), mask.any(1)
    idx = torch.arange(mask.shape[1], device=x.device)
    big = mask.shape[1] + 1

    def extent(m: Tensor) -> Tensor:
        first = torch.where(m, idx, big).amin(1)
        last = torch.where(m, idx, -1).amax(1)
        return (last - first + 1).clamp(min=0).float()

    box = extent(rows) * extent(cols)
    return torch.where(box > 0, mask.flatten(1).sum(1) / box.clamp(min=1), torch.zeros_like(box))


def template_match(x: Tensor, threshold: float = FILL_THRESHOLD) -> Tensor:
    """Intersection over union of the mask ``x > threshold`` with an ideal axis-aligned rectangle
    and an ideal axis-aligned ellipse that have the mask's centroid and second moments: ``(N, 2)``,
    columns (square, circle). A rectangle of sides ``a × b`` has ``σ = a/√12, b/√12``, an ellipse
    with semi-axes ``p, q`` has ``σ = p/2, q/2`` (with the ``1/12`` pixel-grid correction). Robust
    to ragged edges and to a changed aspect ratio."""
    mask = object_mask(x, threshold).float()
    total = mask.flatten(1).sum(1).clamp(min=1)
    coords = torch.arange(mask.shape[-1], dtype=mask.dtype, device=mask.device)
    py, px = mask.sum(2) / total[:, None], mask.sum(1) / total[:, None]  # marginals
    cy, cx = (py * coords).sum(1), (px * coords).sum(1)
    vy = (py * (coords - cy[:, None]) ** 2).sum(1)
    vx = (px * (coords - cx[:, None]) ** 2).sum(1)
    dy, dx = coords[None, :, None] - cy[:, None, None], coords[None, None, :] - cx[:, None, None]
    half_y, half_x = ((12 * vy + 1).sqrt() / 2)[:, None, None], ((12 * vx + 1).sqrt() / 2)[:, None, None]
    rect = (dy.abs() < half_y) & (dx.abs() < half_x)
    semi_y = (2 * (vy - 1 / 12).clamp(min=1e-3).sqrt())[:, None, None]
    semi_x = (2 * (vx - 1 / 12).clamp(min=1e-3).sqrt())[:, None, None]
    ellipse = (dy / semi_y) ** 2 + (dx / semi_x) ** 2 <= 1
    ious = []
    for ideal in (rect, ellipse):
        inter = (ideal * mask).flatten(1).sum(1)
        union = ((ideal.float() + mask) > 0).float().flatten(1).sum(1)
        ious.append(inter / union.clamp(min=1))
    return torch.stack(ious, 1)


def shape_class(x: Tensor, threshold: float = FILL_THRESHOLD) -> Tensor:
    """Shape read off the image: the better-matching ideal shape of :func:`template_match`
    (``0`` square, ``1`` circle)."""
    return template_match(x, threshold).argmax(1)


def describe(x: Tensor, threshold: float = FILL_THRESHOLD) -> dict[str, Tensor]:
    """Descriptors measured on images, per image: ``area`` (pixels above ``threshold``),
    ``fill`` (bounding-box fill ratio) and ``shape`` (:func:`shape_class`)."""
    return {"area": object_area(x, threshold), "fill": fill_ratio(x, threshold),
            "shape": shape_class(x, threshold)}
