"""The Mall frames with their annotations and the crops of the regression task, with their head counts
and density targets (:mod:`diffcf.data.mall` describes them; :func:`~diffcf.data.mall.load_mall_frames`
and :func:`~diffcf.data.mall.load_mall` load them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from diffcf.utils import check_int

CROPS_PER_FRAME = 4
DENSITY_SIGMA = 4.0  # standard deviation of a head's Gaussian, in frame pixels
_ROI_OUTSIDE = 1e-4  # a resized pixel is in the ROI when its box average of the mask is >= 1 - this


@dataclass
class MallFrames:
    """The frames of one split, resized (:func:`diffcf.data.mall.frame_shape`), with their annotations.

    ``ids``: frame numbers ``(F,)`` int64; ``frames``: uint8 ``(F, 3, height, width)``; ``heads``:
    per frame a float32 ``(count, 2)`` tensor of head positions ``(x, y)`` in pixels of the resized
    frame (continuous, origin at its top-left corner); ``roi``: bool ``(height, width)``, the resized
    pixels that lie wholly inside the region of interest; ``size`` and ``window`` as loaded.
    """

    ids: Tensor
    frames: Tensor
    heads: list[Tensor]
    roi: Tensor
    size: int
    window: int

    @property
    def count(self) -> Tensor:
        """People per frame, float32 ``(F,)``."""
        return torch.tensor([len(h) for h in self.heads], dtype=torch.float32)

    def crop_corners(self) -> Tensor:
        """Every allowed crop position: ``(top, left)`` int64 ``(P, 2)`` of the ``size × size``
        squares wholly inside :attr:`roi`, in row-major order."""
        inside = np.pad(self.roi.numpy().astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        s = self.size
        sums = inside[s:, s:] - inside[:-s, s:] - inside[s:, :-s] + inside[:-s, :-s]
        return torch.from_numpy(np.argwhere(sums == s * s).astype(np.int64))


def resize_roi(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The pixels of ``mask`` resized to ``shape`` (height, width) whose box average of ``mask`` is 1:
    wholly inside the ROI (:attr:`MallFrames.roi`)."""
    image = Image.fromarray(mask.astype(np.float32), mode="F")
    if shape != mask.shape:
        image = image.resize((shape[1], shape[0]), Image.Resampling.BOX)
    return np.asarray(image) >= 1.0 - _ROI_OUTSIDE


@dataclass
class MallCrops:
    """Crops of the frames: ``x`` float32 ``(N, 3, size, size)`` in ``[0, 1]``; ``count`` float32
    ``(N,)``, the heads in each; ``heads``, per crop a float32 ``(count, 2)`` tensor of ``(x, y)`` in
    crop pixels; ``frame``, the frame number ``(N,)``; ``corner``, ``(top, left)`` ``(N, 2)`` in the
    resized frame; ``size`` and ``window`` as loaded."""

    x: Tensor
    count: Tensor
    heads: list[Tensor]
    frame: Tensor
    corner: Tensor
    size: int
    window: int

    def density(self, sigma: float | None = None) -> Tensor:
        """The density targets ``(N, 1, size, size)``, each summing to its crop's count
        (:func:`density_map`; ``sigma`` in crop pixels, default :data:`DENSITY_SIGMA` frame pixels)."""
        sigma = DENSITY_SIGMA * self.size / self.window if sigma is None else sigma
        maps = [density_map(h, self.size, sigma) for h in self.heads]
        return torch.stack(maps)[:, None] if maps else torch.zeros(0, 1, self.size, self.size)


def sample_crops(frames: MallFrames, crops_per_frame: int = CROPS_PER_FRAME, seed: int = 0) -> MallCrops:
    """``crops_per_frame`` crops of every frame, their corners drawn uniformly (with replacement) from
    :meth:`MallFrames.crop_corners` by ``numpy.random.default_rng([seed, frame number])``."""
    crops_per_frame = check_int(crops_per_frame, "crops_per_frame", 1)
    seed = check_int(seed, "seed", 0)
    corners = frames.crop_corners().numpy()
    s = frames.size
    if len(corners) == 0:
        raise ValueError(f"no {s}x{s} crop lies wholly inside the region of interest of the "
                         f"{frames.roi.shape[1]}x{frames.roi.shape[0]} frames; use a smaller window "
                         f"(got window={frames.window})")
    chosen = np.concatenate([corners[np.random.default_rng([seed, frame]).integers(
        0, len(corners), size=crops_per_frame)] for frame in frames.ids.tolist()])
    x = torch.empty(len(chosen), 3, s, s, dtype=torch.uint8)
    heads = []
    for k, (top, left) in enumerate(chosen.tolist()):  # python ints: torch slices them fast
        i = k // crops_per_frame
        x[k] = frames.frames[i, :, top:top + s, left:left + s]
        xy = frames.heads[i].numpy()
        inside = (xy[:, 0] >= left) & (xy[:, 0] < left + s) & (xy[:, 1] >= top) & (xy[:, 1] < top + s)
        heads.append(torch.from_numpy(xy[inside] - np.array([left, top], dtype=np.float32)))
    return MallCrops(
        x=x.float().div_(255.0), count=torch.tensor([len(h) for h in heads], dtype=torch.float32),
        heads=heads, frame=frames.ids.repeat_interleave(crops_per_frame), corner=torch.from_numpy(chosen),
        size=s, window=frames.window)


def density_map(heads: Tensor, size: int, sigma: float) -> Tensor:
    """A ``size × size`` float32 map, the sum over ``heads`` (``(n, 2)`` positions ``(x, y)`` in
    pixels, pixel ``(c, r)`` covering ``[c, c+1) × [r, r+1)``) of a Gaussian of standard deviation
    ``sigma`` sampled at the pixel centres and normalised over the map: each head adds exactly 1, so
    the map sums to ``n`` (a head near the border keeps all its mass inside)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    heads = torch.as_tensor(heads, dtype=torch.float64).reshape(-1, 2)
    centres = torch.arange(size, dtype=torch.float64) + 0.5

    def weights(coordinate: Tensor) -> Tensor:  # (n, size), rows summing to 1
        logits = -((centres[None, :] - coordinate[:, None]) ** 2) / (2 * sigma**2)
        w = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
        return w / w.sum(dim=1, keepdim=True)

    return (weights(heads[:, 1]).T @ weights(heads[:, 0])).float()
