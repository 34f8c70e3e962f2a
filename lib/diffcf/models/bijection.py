"""Composition of bijections, the backbone of every flow here: ``g⁻¹ = f_L ∘ … ∘ f_1`` and, by the
chain rule, ``log|det ∂g⁻¹/∂x| = Σ_l log|det ∂f_l/∂h_{l−1}|`` (the change of variables, paper eq. 1).

Each layer offers ``layer(h) -> (h', logdet per sample)`` and ``layer.inverse(h') -> h``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def forward_chain(layers: Sequence[nn.Module], x: Tensor) -> tuple[Tensor, Tensor]:
    """Apply ``layers`` in order; return the result and the summed log-determinants."""
    logdet = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for layer in layers:
        x, ld = layer(x)
        logdet = logdet + ld
    return x, logdet


def inverse_chain(layers: Sequence[nn.Module], y: Tensor) -> Tensor:
    """Undo ``layers``: their inverses in reverse order."""
    for layer in reversed(layers):
        y = layer.inverse(y)
    return y
