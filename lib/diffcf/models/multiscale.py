"""A compact multi-scale Glow (Kingma & Dhariwal 2018) for 1×28×28 images (§IV-B, MNIST).

Each flow step is ``actnorm → invertible 1×1 convolution → affine coupling``; the steps are grouped
into scales separated by a squeeze (space-to-depth) and a split that factors out half of the
channels as latents (RealNVP's multi-scale architecture, Dinh et al. 2017). **Every split latent is
kept** and flattened, so ``encode`` is a bijection ``[0, 1]^784 → R^784``::

    x (1,28,28) → logit → squeeze (4,14,14) → K₁ steps → split: z₁ (2,14,14) ──→ ε₁ = (z₁ − μ(h))/σ(h)
                                                   └→ h (2,14,14) → squeeze (8,7,7) → K₂ steps → z₂
    z = [vec ε₁, vec z₂]  ∈ R^784,   base density N(0, I)

The split latent is standardised by a Gaussian whose mean and scale depend on the half ``h`` that
goes on (Glow's learned prior at a split, §3.3 of Kingma & Dhariwal). Written as the affine layer
:class:`SplitPrior` it is one more bijection with a triangular Jacobian, so the base density stays
``N(0, I)`` and every latent coordinate is treated alike by the search in Z.

Change of variables (paper eq. 1, density direction ``g⁻¹: X → Z``)::

    log q(x) = log N(g⁻¹(x); 0, I) + Σ_layers log|det ∂h_{l+1}/∂h_l|

Preprocessing inside the flow: ``y = logit(α + (1 − 2α) x)`` with ``α = 0.05``, so ``decode`` ends
in a sigmoid and returns images in ``[−α/(1−2α), 1 + α/(1−2α)] ≈ [−0.056, 1.056]``. Training
dequantises the 8-bit values, ``x̃ = (k + u) / 256``, ``u ~ U[0, 1)``, and
:meth:`MultiscaleFlow.bits_per_dim` reports ``−log₂ p(k)/784`` for ``k ∈ {0..255}`` with the
``[0, 256) → [0, 1)`` rescaling counted, the convention of published MNIST numbers.

``decode`` runs no data-dependent Python control flow, so it can be differentiated with
``torch.func.vmap(jacfwd(...))``; actnorm's data-dependent initialisation runs only in ``encode``
in training mode, once (a buffer records it and is saved with the weights).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from diffcf.models.bijection import forward_chain, inverse_chain

LOG2 = math.log(2.0)


def squeeze2x2(x: Tensor) -> Tensor:
    """Space-to-depth: ``(B, C, H, W) → (B, 4C, H/2, W/2)``."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze2x2(x: Tensor) -> Tensor:
    """Depth-to-space, the inverse of :func:`squeeze2x2`."""
    b, c, h, w = x.shape
    x = x.reshape(b, c // 4, 2, 2, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(b, c // 4, 2 * h, 2 * w)


class ActNorm(nn.Module):
    """Per-channel affine map ``y = (x + b) ⊙ exp(s)``, ``log|det| = H·W·Σ s`` (Glow §3.1).

    ``b`` and ``s`` are initialised from the first training batch so that ``y`` has zero mean and
    unit variance per channel.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            self._initialize(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        logdet = self.log_scale.sum() * x.shape[2] * x.shape[3]
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvConv1x1(nn.Module):
    """Invertible 1×1 convolution ``y = W x`` per pixel, ``log|det| = H·W·log|det W|`` (Glow §3.2).
    ``W`` starts as a random rotation."""

    def __init__(self, channels: int):
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels))[0]
        self.weight = nn.Parameter(w)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        c = self.weight.shape[0]
        y = F.conv2d(x, self.weight.reshape(c, c, 1, 1))
        logdet = torch.linalg.slogdet(self.weight)[1] * x.shape[2] * x.shape[3]
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        c = self.weight.shape[0]
        return F.conv2d(y, torch.linalg.inv(self.weight).reshape(c, c, 1, 1))


class CouplingNet(nn.Module):
    """The network inside a coupling (Glow §3.3): ``3×3 conv → actnorm → ReLU → 1×1 conv → actnorm →
    ReLU → 3×3 conv``. The last convolution starts at zero, so its output starts at zero."""

    def __init__(self, c_in: int, hidden: int, c_out: int):
        super().__init__()
        self.conv_in = nn.Conv2d(c_in, hidden, 3, padding=1)
        self.norm_in = ActNorm(hidden)
        self.conv_mid = nn.Conv2d(hidden, hidden, 1)
        self.norm_mid = ActNorm(hidden)
        self.conv_out = nn.Conv2d(hidden, c_out, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.norm_in(self.conv_in(x))[0])
        h = F.relu(self.norm_mid(self.conv_mid(h))[0])
        return self.conv_out(h)


class AffineCoupling(nn.Module):
    """Affine coupling on channels (RealNVP eq. 4–6): ``x = [x_a, x_b]``,
    ``y_b = x_b ⊙ exp(s(x_a)) + t(x_a)``, ``y_a = x_a``, ``log|det| = Σ s``.

    ``s = σ_scale ⊙ tanh(·)`` keeps the scales bounded; the network's output starts at zero so
    every coupling starts as the identity.
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.n_a = channels // 2
        n_b = channels - self.n_a
        self.net = CouplingNet(self.n_a, hidden, 2 * n_b)
        self.s_scale = nn.Parameter(torch.ones(1, n_b, 1, 1))

    def _s_t(self, x_a: Tensor) -> tuple[Tensor, Tensor]:
        h = self.net(x_a)
        s_raw, t = h[:, 0::2], h[:, 1::2]
        return self.s_scale * torch.tanh(s_raw), t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_a, x_b = x[:, : self.n_a], x[:, self.n_a :]
        s, t = self._s_t(x_a)
        y_b = x_b * torch.exp(s) + t
        return torch.cat([x_a, y_b], dim=1), s.flatten(1).sum(dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        y_a, y_b = y[:, : self.n_a], y[:, self.n_a :]
        s, t = self._s_t(y_a)
        return torch.cat([y_a, (y_b - t) * torch.exp(-s)], dim=1)


class SplitPrior(nn.Module):
    """The learned prior at a split, as a bijection: ``ε = (z_split − μ(h)) ⊙ exp(−log σ(h))``,
    ``log|det ∂ε/∂z_split| = −Σ log σ(h)``, where ``h`` is the half that stays in the flow.

    ``(μ, log σ)`` come from a :class:`CouplingNet` on ``h`` (``log σ`` bounded by a scaled tanh);
    it starts at zero, so the layer starts as the identity (the plain ``N(0, I)`` prior).
    """

    def __init__(self, n_split: int, n_kept: int, hidden: int):
        super().__init__()
        self.net = CouplingNet(n_kept, hidden, 2 * n_split)
        self.s_scale = nn.Parameter(torch.ones(1, n_split, 1, 1))

    def _mu_log_sigma(self, h: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(h)
        return out[:, 0::2], self.s_scale * torch.tanh(out[:, 1::2])

    def forward(self, z_split: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_sigma = self._mu_log_sigma(h)
        return (z_split - mu) * torch.exp(-log_sigma), -log_sigma.flatten(1).sum(dim=1)

    def inverse(self, eps: Tensor, h: Tensor) -> Tensor:
        mu, log_sigma = self._mu_log_sigma(h)
        return eps * torch.exp(log_sigma) + mu


class FlowStep(nn.Module):
    """One Glow step: actnorm → 1×1 convolution → affine coupling."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.layers = nn.ModuleList(
            [ActNorm(channels), InvConv1x1(channels), AffineCoupling(channels, hidden)]
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return forward_chain(self.layers, x)

    def inverse(self, y: Tensor) -> Tensor:
        return inverse_chain(self.layers, y)


class MultiscaleFlow(nn.Module):
    """Two-scale Glow on ``(B, in_channels, size, size)`` images in ``[0, 1]`` with flat latents.

    ``MultiscaleFlow(in_channels=1, size=28, steps_per_scale=(K₁, K₂), hidden=(W₁, W₂))`` is the
    MNIST model (``hidden``: the width of the coupling networks, one int for both scales or one per
    scale). ``size`` must be divisible by 4. ``encode``/``decode`` follow the project convention
    (``encode = g⁻¹``, ``decode = g``); ``log_prob`` is the density of continuous ``x ∈ [0, 1]^D``.
    """

    def __init__(self, in_channels: int = 1, size: int = 28,
                 steps_per_scale: tuple[int, int] | list[int] = (6, 6),
                 hidden: int | tuple[int, int] | list[int] = 64, alpha: float = 0.05):
        super().__init__()
        if size % 4:
            raise ValueError(f"size must be divisible by 4 (two squeezes), got {size}")
        if len(steps_per_scale) != 2 or min(steps_per_scale) < 1:
            raise ValueError(f"steps_per_scale must be two positive ints, got {steps_per_scale}")
        widths = [hidden, hidden] if isinstance(hidden, int) else list(hidden)
        if len(widths) != 2 or min(widths) < 1:
            raise ValueError(f"hidden must be a positive int or two of them, got {hidden}")
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        self.in_channels, self.size, self.alpha = in_channels, size, alpha
        c1 = 4 * in_channels                      # after the first squeeze
        self.n_split = c1 // 2                    # channels factored out after scale 1
        c2 = 4 * (c1 - self.n_split)              # after the second squeeze
        self.scale1 = nn.ModuleList(FlowStep(c1, widths[0]) for _ in range(steps_per_scale[0]))
        self.split_prior = SplitPrior(self.n_split, c1 - self.n_split, widths[0])
        self.scale2 = nn.ModuleList(FlowStep(c2, widths[1]) for _ in range(steps_per_scale[1]))
        self.dim = in_channels * size * size
        self._z1_shape = (self.n_split, size // 2, size // 2)
        self._z2_shape = (c2, size // 4, size // 4)

    # ---- preprocessing: x ∈ [0, 1] ↔ y = logit(α + (1 − 2α) x) --------------------------------

    def _logit(self, x: Tensor) -> tuple[Tensor, Tensor]:
        p = self.alpha + (1.0 - 2.0 * self.alpha) * x
        y = torch.log(p) - torch.log1p(-p)
        ld = math.log(1.0 - 2.0 * self.alpha) - torch.log(p) - torch.log1p(-p)
        return y, ld.flatten(1).sum(dim=1)

    def _sigmoid(self, y: Tensor) -> Tensor:
        return (torch.sigmoid(y) - self.alpha) / (1.0 - 2.0 * self.alpha)

    # ---- the bijection ----------------------------------------------------------------------

    def _check_x(self, x: Tensor) -> None:
        shape = (self.in_channels, self.size, self.size)
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, shape))}), "
                             f"got {tuple(x.shape)}")

    def encode_with_logdet(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``z = g⁻¹(x)`` (flat, ``(B, D)``) and ``log|det ∂z/∂x|`` per sample."""
        self._check_x(x)
        h, ld_logit = self._logit(x)
        h, ld1 = forward_chain(self.scale1, squeeze2x2(h))
        z1, h = h[:, : self.n_split], h[:, self.n_split :]
        z1, ld_split = self.split_prior(z1, h)
        h, ld2 = forward_chain(self.scale2, squeeze2x2(h))
        return torch.cat([z1.flatten(1), h.flatten(1)], dim=1), ld_logit + ld1 + ld_split + ld2

    def encode(self, x: Tensor) -> Tensor:
        """``z = g⁻¹(x)``: the exact inverse of :meth:`decode`, flat ``(B, D)``."""
        return self.encode_with_logdet(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """``x = g(z)``: flat ``(B, D)`` latents to images ``(B, C, size, size)``."""
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(f"z must have shape (batch, {self.dim}), got {tuple(z.shape)}")
        n1 = math.prod(self._z1_shape)
        z1 = z[:, :n1].reshape(-1, *self._z1_shape)
        h = z[:, n1:].reshape(-1, *self._z2_shape)
        h = unsqueeze2x2(inverse_chain(self.scale2, h))
        h = torch.cat([self.split_prior.inverse(z1, h), h], dim=1)
        return self._sigmoid(unsqueeze2x2(inverse_chain(self.scale1, h)))

    # ---- densities --------------------------------------------------------------------------

    def log_prob(self, x: Tensor) -> Tensor:
        """``log q(x) = log N(g⁻¹(x); 0, I) + log|det ∂g⁻¹/∂x|`` for continuous ``x ∈ [0, 1]^D``."""
        z, logdet = self.encode_with_logdet(x)
        log_base = -0.5 * (z**2).sum(dim=1) - 0.5 * self.dim * math.log(2 * math.pi)
        return log_base + logdet

    def bits_per_dim(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Bits per dimension of 8-bit images ``x = k/255`` under uniform dequantisation.

        ``x̃ = (k + u)/256`` with ``u ~ U[0,1)``; ``log p(k) ≥ log q(x̃) − D log 256`` (the
        density on ``[0, 256)^D`` is ``q(x̃)/256^D``), reported per sample as
        ``−(log q(x̃) − D log 256)/(D ln 2)``.
        """
        k = torch.round(x * 255.0)
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        x_deq = (k + u) / 256.0
        log_p = self.log_prob(x_deq) - self.dim * math.log(256.0)
        return -log_p / (self.dim * LOG2)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """Draw ``n`` images ``g(T·z)``, ``z ~ N(0, I)``."""
        p = next(self.parameters())
        z = torch.randn(n, self.dim, generator=generator).to(device=p.device, dtype=p.dtype)
        return self.decode(temperature * z)


def bits_per_dim_loss(flow: MultiscaleFlow, x: Tensor) -> Tensor:
    """Training loss: mean dequantised bits/dim (maximum likelihood up to constants)."""
    return flow.bits_per_dim(x).mean()
