"""The cardiothoracic ratio (CTR) of frontal chest X-rays from intensity profiles: a simple
radiological proxy for notebook 05 (issue 18), not part of the paper.

On a frontal film the heart is the bright shadow in the lower middle, between the two dark lung
fields, and the CTR is the widest transverse diameter of the heart divided by the widest inner
diameter of the thorax; above 0.5 is the textbook sign of cardiomegaly. We measure both widths on
each row of a band of rows from the row's intensity profile (images bright where dense, as the NIH
films are):

1. Smooth the image with a 3×3 box filter (one noisy pixel moves no border).
2. In each row of the band, the **centre** value is the mean of the two middle columns (the
   mediastinum); the **lung minimum** of each side is the darkest column of that half, leaving out
   the outer eighth of the width (outside the body the film is darker still) and the sixteenth
   next to the centre.
3. Each side has its own **threshold**, halfway between its lung minimum and the centre value:
   the lung field of that side is the run of columns below the threshold that contains the minimum.
4. The **heart** spans from the inner end of the left lung run to the inner end of the right one;
   the **thorax** from the outer end of the left run to the outer end of the right one. Each end
   is placed between two columns by linear interpolation of where the profile crosses the
   threshold, so widths change continuously with the image (a change of a fraction of a pixel
   shows).
5. Rows count where both lung valleys are at least :data:`MIN_CONTRAST` darker than the centre
   (below the diaphragm there is no valley); heart and thorax width are each the **median over
   the counted rows** of the band; CTR = their ratio (NaN for an image without a counted row).

The textbook takes the *largest* widths. On these films the maximum follows single rows where the
profile misreads the diaphragm or a dense lower lung: on the 1,114 test films at 64×64 the maximum
gives healthy 0.57 / cardiomegaly 0.60 (AUC 0.57 for telling them apart), the median 0.43 / 0.49
(AUC 0.67; the training films, on which the settings were chosen, give the same; at 128×128 0.46 /
0.52, AUC 0.67). The median's healthy mean is near the textbook's normal (about 0.45), and the
classes separate, weakly, as a width ratio read from a downscaled film can.

Limits, stated in the notebook: a profile method knows no anatomy. A dense lower lung (effusion,
consolidation) joins the heart shadow and widens it; a film that is rotated or not centred moves the
mediastinum away from the middle columns; the band is fixed in image coordinates (:data:`BAND`:
rows 45–80% of the height, where the heart lies on these films). It is a consistent ruler for
comparing an image with its own modifications, not a diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

MIN_CONTRAST = 0.08  # a row counts where both lung valleys are this much darker than the centre
QUANTILE = 0.5  # of the widths over the band's rows: the median (1.0: the maximum)
BAND = (0.45, 0.80)  # rows measured, as fractions of the height (the heart's level on the NIH films)


@dataclass
class CTR:
    """Per image: ``ratio`` = ``heart / thorax``; widths in pixels; ``rows`` the band's row indices
    and ``borders`` ``(N, len(rows), 4)``: thorax left, heart left, heart right, thorax right (in
    columns, sub-pixel) on every row of the band, NaN on rows not counted, to draw."""
    ratio: Tensor
    heart: Tensor
    thorax: Tensor
    rows: Tensor
    borders: Tensor


def _smooth(x: Tensor) -> Tensor:
    return torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _crossing(p: Tensor, j: Tensor, t: Tensor) -> Tensor:
    """Where the profile ``p`` crosses ``t`` between columns ``j`` and ``j + 1`` (linear
    interpolation; ``j`` and ``t`` of shape ``p.shape[:-1]``)."""
    a = p.gather(-1, j.unsqueeze(-1)).squeeze(-1)
    b = p.gather(-1, (j + 1).unsqueeze(-1)).squeeze(-1)
    frac = torch.where(b != a, (t - a) / (b - a), 0.5)
    return j.to(p.dtype) + frac.clamp(0, 1)


def cardiothoracic_ratio(x: Tensor, band: tuple[float, float] = BAND, min_contrast: float = MIN_CONTRAST,
                         quantile: float = QUANTILE) -> CTR:
    """The CTR of each grey image in ``x`` ``(N, 1, H, W)`` (values in [0, 1], dense = bright) by
    the profile method of the module docstring."""
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"cardiothoracic_ratio takes grey images (N, 1, H, W), got {tuple(x.shape)}")
    n, _, h, w = x.shape
    if min(h, w) < 16:
        raise ValueError(f"images of {h}×{w} are too small for a profile (at least 16×16)")
    lo, hi = band
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"band must be (lo, hi) with 0 <= lo < hi <= 1, got {band}")
    rows = torch.arange(int(lo * h), max(int(hi * h), int(lo * h) + 1), device=x.device)
    p = _smooth(x.float())[:, 0, rows]  # (N, R, W)
    c = w // 2
    cols = torch.arange(w, device=x.device).expand_as(p)
    centre = p[..., c - 1 : c + 1].mean(-1)
    margin, gap = w // 8, w // 16  # the lung minima are searched away from the film's edges and the centre
    i_left = p[..., margin : c - gap].argmin(-1) + margin
    i_right = p[..., c + gap : w - margin].argmin(-1) + c + gap
    min_left = p.gather(-1, i_left.unsqueeze(-1)).squeeze(-1)
    min_right = p.gather(-1, i_right.unsqueeze(-1)).squeeze(-1)
    t_left, t_right = (min_left + centre) / 2, (min_right + centre) / 2
    below_left = p < t_left.unsqueeze(-1)
    below_right = p < t_right.unsqueeze(-1)
    # a row counts where the centre is brighter than both lung minima (else there is no valley)
    valid = (centre - min_left > min_contrast) & (centre - min_right > min_contrast)
    none, past = torch.full_like(cols, -1), torch.full_like(cols, w)
    # inner end of the left run: the last column below the threshold before the centre
    j = torch.where(below_left & (cols >= i_left.unsqueeze(-1)) & (cols < c), cols, none).amax(-1)
    heart_left = _crossing(p, j.clamp(0, w - 2), t_left)
    # inner end of the right run: the first column below the threshold from the centre on
    j = torch.where(below_right & (cols <= i_right.unsqueeze(-1)) & (cols >= c), cols, past).amin(-1)
    heart_right = _crossing(p, (j - 1).clamp(0, w - 2), t_right)
    # outer end of the left run: after the last column at or above the threshold left of the minimum
    j = torch.where(~below_left & (cols < i_left.unsqueeze(-1)), cols, none).amax(-1)
    thorax_left = torch.where(j >= 0, _crossing(p, j.clamp(0, w - 2), t_left), torch.zeros_like(heart_left))
    # outer end of the right run: before the first column at or above the threshold right of it
    j = torch.where(~below_right & (cols > i_right.unsqueeze(-1)), cols, past).amin(-1)
    thorax_right = torch.where(j < w, _crossing(p, (j - 1).clamp(0, w - 2), t_right),
                               torch.full_like(heart_left, w - 1.0))
    borders = torch.stack([thorax_left, heart_left, heart_right, thorax_right], -1)
    borders = borders.where(valid.unsqueeze(-1), torch.full_like(borders, float("nan")))
    heart = (borders[..., 2] - borders[..., 1]).nanquantile(quantile, -1)
    thorax = (borders[..., 3] - borders[..., 0]).nanquantile(quantile, -1)
    no_row = thorax.isnan()  # not one row of the band with two lung valleys
    heart, thorax = heart.masked_fill(no_row, float("nan")), thorax.masked_fill(no_row, float("nan"))
    return CTR(heart / thorax, heart, thorax, rows, borders)
