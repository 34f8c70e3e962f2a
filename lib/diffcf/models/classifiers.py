"""Classifiers ``f``, the models under explanation (helix, MNIST, shapes, CelebA). Every classifier
returns logits of shape ``(batch, n_classes)`` (the CelebA attribute oracle: 40 independent logits,
one per attribute). The oracles that judge counterfactuals live in :mod:`diffcf.models.oracles`.

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


# --------------------------------------------------------------------------------------------
# CelebA (§IV-B, notebook 04): the binary Blond_Hair classifier and the 40-attribute oracle
# --------------------------------------------------------------------------------------------

PAPER_FC_WIDTHS = (4096, 1024, 512)  # the paper's code, after a 16384-wide flatten at 64×64
CELEBA_FC_WIDTHS = (512, 128, 64)    # the same ratios at 1/8 width: ≤ 40 MB at 64×64 (see below)


class CelebAClassifier(ConvClassifier):
    """The CNN of the paper's code for CelebA (and CheXpert), on ``(B, 3, size, size)`` images in
    ``[0, 1]``: three blocks of two 3×3 convolutions (32, 64 / 128, 128 / 256, 256 channels; batch
    norm after the first of each; ReLU; 2×2 max-pool; ``Dropout2d(dropout / 2)`` after the second
    block), then dropout and linear layers ``256·(size/8)² → fc_widths → n_outputs`` with ReLUs and
    a dropout before the last.

    ``n_outputs = 2``: the Blond_Hair classifier ``f``, two logits under a softmax (class 1 =
    blond), as the paper's code. ``n_outputs = 40``: the attribute oracle, 40 *independent* logits
    (attribute ``a`` present where ``logit_a > 0``, trained with a sigmoid cross-entropy per
    attribute), in :data:`diffcf.data.celeba.ATTRIBUTES` order.

    **Width of the linear layers.** The paper's code uses ``fc_widths = (4096, 1024, 512)``: with the
    16384-wide flatten at 64×64 that is 73.0 M parameters (292 MB of float32), at 32×32 22.6 M
    (91 MB), both beyond the project's 40 MB per checkpoint. The default :data:`CELEBA_FC_WIDTHS`
    keeps the paper's ratios at 1/8 of its widths, ``(512, 128, 64)``: 3.30 M parameters (13.2 MB)
    at 32×32 and 9.59 M (38.4 MB) at 64×64; the convolutions (1.13 M parameters) are the paper's.
    """

    cam_index = 17

    def __init__(self, size: int = 32, n_outputs: int = 2,
                 fc_widths: tuple[int, ...] | list[int] = CELEBA_FC_WIDTHS, dropout: float = 0.1,
                 in_channels: int = 3):
        super().__init__()
        if size < 8 or size % 8:
            raise ValueError(f"size must be a multiple of 8 (three 2×2 poolings), got {size}")
        if n_outputs < 1 or not fc_widths or min(fc_widths) < 1:
            raise ValueError(f"need n_outputs ≥ 1 and positive fc_widths, got {n_outputs}, {fc_widths}")
        self.size, self.in_channels = size, in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(dropout / 2),
            nn.Conv2d(128, 256, 3, padding=1), nn.BatchNorm2d(256), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        widths = [256 * (size // 8) ** 2, *fc_widths]
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout)]
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]
        self.head = nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(widths[-1], n_outputs))

    def forward(self, x: Tensor) -> Tensor:
        shape = (self.in_channels, self.size, self.size)
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
        return super().forward(x)
