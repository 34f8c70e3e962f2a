"""Classifiers ``f``, the models under explanation. Every classifier returns logits of shape
``(batch, n_classes)``. The oracles that judge counterfactuals live in :mod:`diffcf.models.oracles`.

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


# --------------------------------------------------------------------------------------------
# Image classifiers: the MNIST CNN under explanation (§IV-B) and the shapes CNN (notebook 09)
# --------------------------------------------------------------------------------------------


class ConvClassifier(nn.Module):
    """An image classifier as ``head(features(x))``: ``features`` is an ``nn.Sequential`` of
    convolutions, ``features[cam_index]`` the output of its last convolution (after its ReLU),
    the layer Grad-CAM explains (:attr:`cam_layer`)."""

    cam_index: int

    @property
    def cam_layer(self) -> nn.Module:
        """The output of the last convolution (after its ReLU), the layer Grad-CAM explains."""
        return self.features[self.cam_index]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class SmallCNN(ConvClassifier):
    """A small CNN: two 3×3 conv blocks (ReLU, 2×2 max-pool) and two linear layers; input
    ``(B, 1, 28, 28)`` in ``[0, 1]``, output ``(B, n_classes)`` logits. The shapes classifier of
    notebook 09."""

    cam_index = 4

    def __init__(self, channels: int = 32, hidden: int = 128, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * channels * 7 * 7, hidden), nn.ReLU(),
            nn.Linear(hidden, n_classes),
        )


class MNISTClassifier(ConvClassifier):
    """The CNN ``f`` explained on MNIST, the architecture of the paper's code: two blocks of two 3×3
    convolutions (16, 32 then 64, 64 channels; batch norm after the first of each; ReLU; 2×2
    max-pool; light dropout) and three linear layers (3136 → 512 → 256 → 10). Input
    ``(B, 1, 28, 28)`` in ``[0, 1]``, output ``(B, n_classes)`` logits."""

    cam_index = 10

    def __init__(self, n_classes: int = 10, dropout: float = 0.1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(dropout / 2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(64 * 7 * 7, 512), nn.ReLU(),
            nn.Linear(512, 256), nn.ReLU(), nn.Dropout(dropout), nn.Linear(256, n_classes),
        )
