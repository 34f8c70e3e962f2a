"""Classifiers ``f``. Every classifier returns logits of shape ``(batch, n_classes)``.

A binary classifier with one sigmoid output ``σ(l)`` is written as two logits ``[0, l]``: the softmax
of those is ``[1 − σ(l), σ(l)]``, so the search treats binary and multi-class problems alike.
"""

from __future__ import annotations

from torch import Tensor, nn


class MLPClassifier(nn.Module):
    """The toy classifier of §IV-A: an MLP ``in_dim → hidden → 1`` with a sigmoid output,
    returned as two logits ``[0, l]`` (class 1 = upper half of the helix)."""

    def __init__(self, in_dim: int = 3, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        logit = self.net(x)
        return nn.functional.pad(logit, (1, 0))  # [0, l]
