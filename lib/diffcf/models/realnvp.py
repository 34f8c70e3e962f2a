"""RealNVP affine-coupling flows (Dinh et al. 2017), as used for the paper's toy (§IV-A).

A coupling layer splits the input with a binary mask ``m`` and transforms the unmasked half
conditioned on the masked half (talk slides, RealNVP equations)::

    y = m ⊙ x + (1 − m) ⊙ (x ⊙ exp(s(m ⊙ x)) + t(m ⊙ x)),      log|det ∂y/∂x| = Σ (1 − m) ⊙ s

Its inverse is exact: ``x = m ⊙ y + (1 − m) ⊙ (y − t(m ⊙ y)) ⊙ exp(−s(m ⊙ y))``.

Direction convention (used everywhere in this project): ``encode`` is ``g⁻¹: X → Z`` (the density
direction, used for training by maximum likelihood) and ``decode`` is the generator ``g: Z → X``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from diffcf.models.bijection import forward_chain, inverse_chain


def _mlp(dim: int, hidden: int, out_tanh: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Linear(dim, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, dim),
    ]
    if out_tanh:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class AffineCoupling(nn.Module):
    """One affine coupling on vectors with a fixed binary ``mask`` (1 = passed through)."""

    def __init__(self, mask: Tensor, hidden: int = 256):
        super().__init__()
        dim = mask.numel()
        self.register_buffer("mask", mask.float().reshape(dim))
        self.s_net = _mlp(dim, hidden, out_tanh=True)
        self.t_net = _mlp(dim, hidden, out_tanh=False)
        # tanh bounds s to (−1, 1); a learnable per-dimension scale lets a layer contract further.
        self.s_scale = nn.Parameter(torch.ones(dim))
        # Start as the identity map: zero last layers give s = t = 0.
        for net in (self.s_net, self.t_net):
            last = [m for m in net if isinstance(m, nn.Linear)][-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def _s_t(self, x_masked: Tensor) -> tuple[Tensor, Tensor]:
        free = 1.0 - self.mask
        s = self.s_scale * self.s_net(x_masked) * free
        t = self.t_net(x_masked) * free
        return s, t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x → y`` and ``log|det ∂y/∂x|`` per sample."""
        s, t = self._s_t(x * self.mask)
        y = x * self.mask + (1.0 - self.mask) * (x * torch.exp(s) + t)
        return y, s.sum(dim=-1)

    def inverse(self, y: Tensor) -> Tensor:
        """Exact inverse ``y → x``."""
        s, t = self._s_t(y * self.mask)
        return y * self.mask + (1.0 - self.mask) * ((y - t) * torch.exp(-s))


def toy_masks(dim: int, n_couplings: int) -> list[Tensor]:
    """Masks for low-dimensional data: a single coordinate, then its complement, cycling through
    the coordinates (for 3-d: 100, 011, 010, 101, 001, 110, …)."""
    masks = []
    for k in range(n_couplings):
        one_hot = torch.zeros(dim)
        one_hot[(k // 2) % dim] = 1.0
        masks.append(one_hot if k % 2 == 0 else 1.0 - one_hot)
    return masks


class RealNVP(nn.Module):
    """A stack of affine couplings on ``dim``-dimensional vectors with a standard normal base.

    The paper's toy flow: ``RealNVP(dim=3, n_couplings=12, hidden=256)``.
    """

    def __init__(self, dim: int = 3, n_couplings: int = 12, hidden: int = 256):
        super().__init__()
        if dim < 2:
            raise ValueError(f"a coupling flow needs dim >= 2, got {dim}")
        if n_couplings < 1:
            raise ValueError(f"n_couplings must be >= 1, got {n_couplings}")
        self.dim = dim
        self.couplings = nn.ModuleList(AffineCoupling(m, hidden) for m in toy_masks(dim, n_couplings))

    def _check(self, v: Tensor, name: str) -> None:
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (batch, {self.dim}), got {tuple(v.shape)}")

    def encode_with_logdet(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``z = g⁻¹(x)`` and ``log|det ∂z/∂x|`` per sample."""
        self._check(x, "x")
        return forward_chain(self.couplings, x)

    def encode(self, x: Tensor) -> Tensor:
        """``z = g⁻¹(x)``."""
        return self.encode_with_logdet(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """``x = g(z)``: the generator, the exact inverse of :meth:`encode`."""
        self._check(z, "z")
        return inverse_chain(self.couplings, z)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log q(x) = log N(g⁻¹(x); 0, I) + log|det ∂z/∂x|`` (change of variables)."""
        z, logdet = self.encode_with_logdet(x)
        log_base = -0.5 * (z**2).sum(dim=-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return log_base + logdet

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` samples ``g(z)``, ``z ~ N(0, I)``."""
        p = next(self.parameters())
        z = torch.randn(n, self.dim, generator=generator).to(device=p.device, dtype=p.dtype)
        return self.decode(z)
