"""n-bit images for the flows: :func:`quantize` to ``2**bits`` levels and :func:`dequantize`, the
uniform noise of maximum-likelihood training (the CelebA Glow's 5 bits; see :mod:`diffcf.data.celeba`)."""

from __future__ import annotations

import torch
from torch import Tensor

from diffcf.utils import check_int


def quantize(x: Tensor, bits: int = 5) -> Tensor:
    """Reduce 8-bit images ``x = k/255`` in ``[0, 1]`` to ``2**bits`` levels, as the paper's CelebA
    Glow is trained (5 bits): ``x_q = min(floor(2**bits · x), 2**bits − 1) / 2**bits``, i.e.
    ``j / 2**bits`` for ``j ∈ {0, …, 2**bits − 1}``, in ``[0, 1)``. On 8-bit images ``x = k/255``
    this equals the usual ``floor(k / 2**(8 − bits))`` (``255`` never divides ``k · 2**bits``
    for ``0 < k < 255``, so float error cannot cross a level), and it is idempotent: an image
    already on the grid keeps its levels.

    Bits/dim convention: with ``x̃ = dequantize(x_q)`` (uniform noise filling each level's bin) and
    a flow density ``q`` on ``[0, 1)^D``, the discrete model of ``j`` has ``log p(j) ≥ log q(x̃) −
    D·bits·ln 2`` (the bins have width ``2**−bits``), reported as ``−(log q(x̃) − D·bits·ln 2)/(D ln
    2)``: the convention of :meth:`diffcf.models.multiscale.MultiscaleFlow.bits_per_dim` with 256
    replaced by ``2**bits``, and of Glow's ``−log(n_bins)·D`` term (which also shifts by −0.5, a
    translation that leaves bits/dim unchanged).
    """
    bits = check_int(bits, "bits", 1, 8)
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError(f"quantize expects images in [0, 1], got values in "
                         f"[{float(x.min()):.4g}, {float(x.max()):.4g}]")
    return torch.floor(x * 2**bits).clamp(max=2**bits - 1) / 2**bits


def dequantize(x_q: Tensor, bits: int = 5, generator: torch.Generator | None = None) -> Tensor:
    """``x̃ = x_q + u / 2**bits``, ``u ~ U[0, 1)`` per value: the quantised images
    (:func:`quantize`) spread uniformly over their bins, in ``[0, 1)``, for maximum likelihood."""
    bits = check_int(bits, "bits", 1, 8)
    levels = x_q * 2**bits
    if x_q.numel() and not torch.allclose(levels, torch.round(levels), atol=1e-4):
        raise ValueError(f"dequantize expects {bits}-bit images j / 2**{bits} (see quantize)")
    u = torch.rand(x_q.shape, generator=generator, dtype=x_q.dtype).to(x_q.device)
    return x_q + u / 2**bits
