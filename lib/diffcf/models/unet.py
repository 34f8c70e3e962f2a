"""U-Net regressors of the Mall crowd count (§IV-B, notebook 06): the counting model ``f`` under
explanation and the independently built oracle that judges its counterfactuals.

Both take ``(B, in_channels, size, size)`` crops in ``[0, 1]`` and return the count, shape ``(B,)``,
from ``forward``: the scalar output a :class:`~diffcf.targets.RegressionTarget` drives past its
threshold in the counterfactual search, differentiable in ``x``. Both also estimate a **density
map**, :meth:`density` ``(B, 1, size, size)`` in heads per pixel, non-negative, trained toward the
data's maps (:meth:`diffcf.data.mall_crops.MallCrops.density`, one normalised Gaussian per head, so
a map sums to its crop's count); the head-localisation figure (Fig. 12) fits a Gaussian mixture to it.

**The counting U-Net** (:class:`CountingUNet`) follows the paper's code, which follows Ribera et al.
(*Locating Objects Without Bounding Boxes*, CVPR 2019): a U-Net (Ronneberger et al. 2015) whose
down path ends in a bottleneck and whose up path ends in a ``1×1`` convolution to a one-channel map;
the count is read from both: ``Linear(bottleneck → 64)`` and ``Linear(map → 64)``, concatenated,
then ``Linear(128 → 1)``. Where we differ, and why:

- widths ``8-16-32-64`` by default, 1/8 of the paper's ``64-128-256-512`` (1/64 of its
  convolutions' multiply-adds), so that the model trains on a 2-core CPU in half an hour
  (:mod:`diffcf.recipes.mall` has the measurements); the layout is the paper's;
- the map goes through a softplus, not a sigmoid: it is a density (heads per pixel, regressed to the
  data's density maps), not Ribera's per-pixel probability of a head, and it has no upper bound where
  heads overlap;
- a ReLU between the two linear layers of the count head (the paper's code lists only the layers);
- the count ends in a softplus instead of the paper's ReLU (``count_activation="relu"`` restores
  it): a ReLU that is zero has zero gradient, and a search that must *raise* the count of an empty
  crop (§IV-D: maximise to ``r = 10``) would not move at all.

**The oracle U-Net** (:class:`OracleUNet`) is a second model built differently on purpose, so that it
does not share the first one's blind spots (the paper's oracle is "a second, larger U-Net", RMSE
0.72): wider and one level deeper (``12-24-48-96-192``, a ``4×4`` bottleneck at ``size = 64``, so a
receptive field that covers the crop), transposed convolutions instead of bilinear upsampling, and no count
head: its count is the integral of its density map (Lempitsky & Zisserman, NeurIPS 2010).

Both density heads start out holding about two heads per crop (:func:`make_density_head`), not the
28 a softplus of zero would put into a 64 × 64 map.

Both use batch norm, so they must be in eval mode (:func:`diffcf.zoo.frozen`) for a search.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

UPSAMPLING = ("bilinear", "transposed")
COUNT_ACTIVATIONS = ("softplus", "relu")
INITIAL_HEADS = 2.0  # what a fresh density map holds, about a crop's mean count (1.7 on the training crops)


class DoubleConv(nn.Sequential):
    """``(3×3 convolution → batch norm → ReLU) × 2``: the block of every U-Net level (Ronneberger
    et al. 2015, as in the PyTorch U-Net Ribera et al. build on); keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )


class Up(nn.Module):
    """One step of the up path: upsample the coarser features ×2 (``"bilinear"``, or a ``2×2``
    transposed convolution, ``"transposed"``), concatenate the skip connection of the same
    resolution, :class:`DoubleConv` to the skip's width."""

    def __init__(self, low_channels: int, skip_channels: int, upsampling: str):
        super().__init__()
        self.upsampling = upsampling
        if upsampling == "transposed":
            self.transposed = nn.ConvTranspose2d(low_channels, skip_channels, 2, stride=2)
            low_channels = skip_channels
        self.conv = DoubleConv(low_channels + skip_channels, skip_channels)

    def forward(self, low: Tensor, skip: Tensor) -> Tensor:
        if self.upsampling == "transposed":
            low = self.transposed(low)
        else:
            low = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv(torch.cat([skip, low], dim=1))


class UNetBackbone(nn.Module):
    """The U-Net without a head: ``len(widths)`` levels of :class:`DoubleConv` (``widths[0]`` at full
    resolution, each next one after a ``2×2`` max-pool), then the up path (:class:`Up`) back to full
    resolution. ``forward(x) -> (features, bottleneck)``: ``(B, widths[0], H, W)`` and the deepest
    level's ``(B, widths[-1], H / 2**(L−1), W / 2**(L−1))``."""

    def __init__(self, in_channels: int, widths: tuple[int, ...] | list[int], upsampling: str):
        super().__init__()
        if upsampling not in UPSAMPLING:
            raise ValueError(f"upsampling must be one of {UPSAMPLING}, got {upsampling!r}")
        ins = [in_channels, *widths[:-1]]
        self.down = nn.ModuleList(DoubleConv(c_in, c_out) for c_in, c_out in zip(ins, widths, strict=True))
        self.up = nn.ModuleList(Up(widths[i + 1], widths[i], upsampling)
                                for i in reversed(range(len(widths) - 1)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skips = []
        h = x
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else F.max_pool2d(h, 2))
            skips.append(h)
        bottleneck = h
        for up, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            h = up(h, skip)
        return h, bottleneck


def _check_architecture(in_channels: int, size: int, widths, density_scale: float) -> list[int]:
    """The widths as a list after checking the constructor's arguments (clear errors)."""
    widths = list(widths)
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int (3 for RGB crops), got {in_channels!r}")
    if len(widths) < 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"widths must be at least two positive ints, one per U-Net level, got {widths}")
    pools = len(widths) - 1
    if isinstance(size, bool) or not isinstance(size, int) or size < 2**pools or size % 2**pools:
        raise ValueError(f"size must be a multiple of {2**pools} ({pools} 2×2 poolings for "
                         f"{len(widths)} levels), got {size!r}")
    if not density_scale > 0:
        raise ValueError(f"density_scale must be positive, got {density_scale!r}")
    return widths


def make_density_head(in_channels: int, size: int, density_scale: float) -> nn.Conv2d:
    """The ``1×1`` convolution of a density head (softplus after it, :meth:`_Counter._scaled_density`)
    with its bias set so that a fresh map of constant ``softplus(bias)`` holds :data:`INITIAL_HEADS`
    heads: with a zero bias it would hold ``log 2 · size² / density_scale`` (28 at 64 × 64), a count
    error whose gradient dwarfs everything else in the first hundreds of steps."""
    conv = nn.Conv2d(in_channels, 1, 1)
    per_pixel = INITIAL_HEADS * density_scale / size**2  # in the head's units, 1/density_scale
    with torch.no_grad():
        conv.bias.fill_(per_pixel + math.log(-math.expm1(-per_pixel)))  # the inverse of the softplus
    return conv


class _Counter(nn.Module):
    """What both U-Nets share: input checks, ``forward = count``, :meth:`density`; each defines
    ``density_and_count(x) -> (count (B,), density (B, 1, size, size))``, one pass for both."""

    in_channels: int
    size: int
    density_scale: float

    def _check(self, x: Tensor) -> None:
        shape = (self.in_channels, self.size, self.size)
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor of crops, got {type(x).__name__}")
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, shape))}): Mall crops of "
                             f"{self.size}×{self.size} pixels, got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"x must be floating point in [0, 1], got dtype {x.dtype}: use x.float() / 255")

    def _scaled_density(self, features: Tensor) -> Tensor:
        """The density head: ``1×1`` convolution and softplus, in units of ``1 / density_scale``
        heads per pixel (values of order 1 for the layers that read it)."""
        return F.softplus(self.density_head(features))

    def forward(self, x: Tensor) -> Tensor:
        """The count, ``(B,)``: what the search's :class:`~diffcf.targets.RegressionTarget` reads."""
        return self.density_and_count(x)[0]

    def density(self, x: Tensor) -> Tensor:
        """The density map, ``(B, 1, size, size)`` heads per pixel, non-negative."""
        return self.density_and_count(x)[1]


class CountingUNet(_Counter):
    """The counting model ``f`` of the Mall experiment: a U-Net after Ribera et al. (the paper's
    code) with a density head and a count head (module docstring).

    ``widths``: channels per level (``8-16-32-64``: four levels, three poolings, an ``8×8``
    bottleneck at ``size = 64``); ``head_width``: the width of each of the count head's two first
    linear layers (64 in the paper's code); ``density_scale``: the density head works in units of
    ``1 / density_scale`` heads per pixel, so that a head's peak (``1 / (2πσ²)`` ≈ 0.04 at σ = 2
    pixels) is of order 1 there; ``count_activation``: ``"softplus"`` (default) or ``"relu"`` (the
    paper's).

    The count is ``act(W₃ · ReLU([W₁ · vec(bottleneck) ; W₂ · vec(map)]))``, ``map`` the density in
    its scaled units.
    """

    def __init__(self, in_channels: int = 3, size: int = 64,
                 widths: tuple[int, ...] | list[int] = (8, 16, 32, 64), head_width: int = 64,
                 density_scale: float = 100.0, count_activation: str = "softplus"):
        super().__init__()
        widths = _check_architecture(in_channels, size, widths, density_scale)
        if isinstance(head_width, bool) or not isinstance(head_width, int) or head_width < 1:
            raise ValueError(f"head_width must be a positive int (64 in the paper's code), "
                             f"got {head_width!r}")
        if count_activation not in COUNT_ACTIVATIONS:
            raise ValueError(f"count_activation must be one of {COUNT_ACTIVATIONS}, got {count_activation!r}")
        self.in_channels, self.size, self.density_scale = in_channels, size, float(density_scale)
        self.count_activation = count_activation
        self.backbone = UNetBackbone(in_channels, widths, "bilinear")
        self.density_head = make_density_head(widths[0], size, self.density_scale)
        side = size // 2 ** (len(widths) - 1)
        self.from_bottleneck = nn.Linear(widths[-1] * side * side, head_width)
        self.from_map = nn.Linear(size * size, head_width)
        self.count_head = nn.Linear(2 * head_width, 1)

    def density_and_count(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(count (B,), density (B, 1, size, size))`` from one pass (class docstring)."""
        self._check(x)
        features, bottleneck = self.backbone(x)
        scaled = self._scaled_density(features)
        hidden = torch.cat([self.from_bottleneck(bottleneck.flatten(1)), self.from_map(scaled.flatten(1))], 1)
        raw = self.count_head(F.relu(hidden))[:, 0]
        count = F.softplus(raw) if self.count_activation == "softplus" else F.relu(raw)
        return count, scaled / self.density_scale


class OracleUNet(_Counter):
    """The oracle of the Mall experiment: a wider, deeper U-Net (``widths`` ``12-24-48-96-192``: five
    levels, a ``4×4`` bottleneck at ``size = 64``) with transposed-convolution upsampling, whose
    count is the sum of its density map (module docstring). ``density_scale`` as in
    :class:`CountingUNet`."""

    def __init__(self, in_channels: int = 3, size: int = 64,
                 widths: tuple[int, ...] | list[int] = (12, 24, 48, 96, 192), density_scale: float = 100.0):
        super().__init__()
        widths = _check_architecture(in_channels, size, widths, density_scale)
        self.in_channels, self.size, self.density_scale = in_channels, size, float(density_scale)
        self.backbone = UNetBackbone(in_channels, widths, "transposed")
        self.density_head = make_density_head(widths[0], size, self.density_scale)

    def density_and_count(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(count (B,), density (B, 1, size, size))``: the count is the density's sum."""
        self._check(x)
        density = self._scaled_density(self.backbone(x)[0]) / self.density_scale
        return density.sum(dim=(1, 2, 3)), density
