"""The convolutional VAE of §IV (Fig. 9): an *approximately* diffeomorphic generator (§II, Theorem 2).

``encode(x)`` is the posterior mean ``μ(x)`` (the paper's code does the same), ``decode(z)`` the mean
of the likelihood ``p(x | z)``: an image in ``[0, 1]``. The round trip loses information,
``g(g⁻¹(x)) ≠ x``, unlike a flow's.

The paper's MNIST VAE has a 10-d latent (its code: convolutions 8-16-32 down to 3×3, a Gaussian
likelihood of unit weight on unbounded outputs). This one keeps the 10-d latent, is wider (two
stride-2 convolutions, ``channels`` and ``2·channels``, then a hidden linear layer) and ends in a
sigmoid, so decoded images lie in the project's pixel range ``[0, 1]``.

**Likelihood.** ``"bernoulli"`` (the default, MNIST): ``log p(x | z) = Σ x log p + (1 − x) log(1 − p)``
with ``p = sigmoid(logits)``, the binary cross-entropy of the PyTorch VAE example. MNIST's pixels
are almost all 0 or 1, and this likelihood weighs the reconstruction of all 784 pixels strongly
against the KL term: digits come back sharp. For grey values strictly between 0 and 1 it is not a
normalised density (the continuous Bernoulli would be), so its ELBO is a training objective, not a
comparable log-likelihood. ``"gaussian"``: ``N(x; p, σ²)`` with a fixed ``sigma``, for colour images
(the paper's CelebA VAE: a squared error plus a KL weight of 2.5e-4).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

LIKELIHOODS = ("bernoulli", "gaussian")


class ConvVAE(nn.Module):
    """A conv VAE for ``(B, C, s, s)`` images in ``[0, 1]`` (``s`` divisible by 4).

    Encoder: ``conv 4×4/2 (channels) → ReLU → conv 4×4/2 (2·channels) → ReLU → linear (hidden) → ReLU
    → linear (2·latent)``, split into the posterior mean and log-variance. Decoder: the mirror image,
    ``linear → linear → conv-transpose 4×4/2 → conv-transpose 4×4/2 → sigmoid``.
    """

    def __init__(self, latent: int = 10, channels: int = 32, hidden: int = 256, in_channels: int = 1,
                 size: int = 28, likelihood: str = "bernoulli", sigma: float = 0.1):
        super().__init__()
        if size < 4 or size % 4:
            raise ValueError(f"size must be divisible by 4 (two stride-2 convolutions), got {size}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.latent, self.in_channels, self.size = latent, in_channels, size
        self.likelihood, self.sigma = likelihood, sigma
        c, s = channels, size // 4
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c, 4, stride=2, padding=1), nn.ReLU(),  # s/2
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.ReLU(),  # s/4
            nn.Flatten(), nn.Linear(2 * c * s * s, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * c * s * s), nn.ReLU(), nn.Unflatten(1, (2 * c, s, s)),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),  # s/2
            nn.ConvTranspose2d(c, in_channels, 4, stride=2, padding=1),  # s: logits
        )

    def _check_x(self, x: Tensor) -> None:
        shape = (self.in_channels, self.size, self.size)
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, shape))}), got {tuple(x.shape)}")

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of ``q(z | x)``, each ``(B, latent)``."""
        self._check_x(x)
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var

    def logits(self, z: Tensor) -> Tensor:
        """The decoder's pre-sigmoid output ``(B, C, s, s)``."""
        if z.ndim != 2 or z.shape[1] != self.latent:
            raise ValueError(f"z must have shape (batch, {self.latent}), got {tuple(z.shape)}")
        return self.decoder(z)

    def encode(self, x: Tensor) -> Tensor:
        """``g⁻¹(x)``: the posterior mean ``μ(x)``, ``(B, latent)``."""
        return self.posterior(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """``g(z)``: the likelihood's mean ``sigmoid(logits(z))``, ``(B, C, s, s)`` in ``[0, 1]``."""
        return torch.sigmoid(self.logits(z))

    def forward(self, x: Tensor) -> Tensor:
        """The deterministic reconstruction ``decode(encode(x))``."""
        return self.decode(self.encode(x))

    def loss_terms(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Per image: ``−log p(x | z)`` at one reparameterised sample ``z = μ + σ ε`` and
        ``KL(q(z | x) ‖ N(0, I))`` in closed form, in nats, each ``(B,)``. ``ε`` is drawn on the CPU
        (with ``generator`` if given) and moved to the model's device."""
        mean, log_var = self.posterior(x)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        logits = self.logits(mean + (0.5 * log_var).exp() * eps)
        if self.likelihood == "bernoulli":
            nll = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            nll = (0.5 * ((torch.sigmoid(logits) - x) / self.sigma) ** 2
                   + math.log(self.sigma) + 0.5 * math.log(2 * math.pi))
        kl = 0.5 * (mean**2 + log_var.exp() - 1.0 - log_var).sum(dim=1)
        return nll.flatten(1).sum(dim=1), kl

    def loss(self, x: Tensor, beta: float = 1.0) -> Tensor:
        """The β-VAE objective, mean over the batch: ``−log p(x | z) + β KL`` (β = 1: the negative
        ELBO in nats per image)."""
        nll, kl = self.loss_terms(x)
        return (nll + beta * kl).mean()
