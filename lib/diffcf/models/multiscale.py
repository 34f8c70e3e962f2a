"""A compact multi-scale Glow (Kingma & Dhariwal 2018) for images: 1×28×28 MNIST and shapes (§IV-B),
3×32×32 or 3×64×64 CelebA faces (§IV-B, notebook 04).

Each flow step is ``actnorm → invertible 1×1 convolution → affine coupling``; the steps are grouped
into L scales, each opened by a squeeze (space-to-depth) and, but for the last, closed by a split
that factors out half of the channels as latents (RealNVP's multi-scale architecture, Dinh et al.
2017). **Every split latent is kept** and flattened, so ``encode`` is a bijection ``[0, 1]^D → R^D``.
Two scales on MNIST::

    x (1,28,28) → logit → squeeze (4,14,14) → K₁ steps → split: z₁ (2,14,14) ──→ ε₁ = (z₁ − μ(h))/σ(h)
                                                   └→ h (2,14,14) → squeeze (8,7,7) → K₂ steps → z₂
    z = [vec ε₁, vec z₂]  ∈ R^784,   base density N(0, I)

Three scales on CelebA at 32×32: ``(3,32,32) → (12,16,16) → ε₁ (6,16,16) + (6,16,16) → (24,8,8) → ε₂
(12,8,8) + (12,8,8) → (48,4,4) = z₃``, ``z ∈ R^3072``. The size must be divisible by ``2**L``.

The split latent is standardised by a Gaussian whose mean and scale depend on the half ``h`` that
goes on (Glow's learned prior at a split, §3.3 of Kingma & Dhariwal). Written as the affine layer
:class:`SplitPrior` it is one more bijection with a triangular Jacobian, so the base density stays
``N(0, I)`` and every latent coordinate is treated alike by the search in Z.

Change of variables (paper eq. 1, density direction ``g⁻¹: X → Z``)::

    log q(x) = log N(g⁻¹(x); 0, I) + Σ_layers log|det ∂h_{l+1}/∂h_l|

Preprocessing inside the flow: ``y = logit(α + (1 − 2α) x)`` with ``α = 0.05`` (the paper's code
squeezes to ``[0.05, 0.95]`` the same way), so ``decode`` ends in a sigmoid and returns images in
``[−α/(1−2α), 1 + α/(1−2α)] ≈ [−0.056, 1.056]``.

Discrete images and bits/dim (``n_bits``; training minimises :meth:`MultiscaleFlow.bits_per_dim`):

- ``n_bits = 8`` (MNIST, shapes): the images are ``k/255``; training dequantises them as ``x̃ =
  (k + u)/256``, ``u ~ U[0, 1)``, and bits/dim is ``−log₂ p(k)/D`` for ``k ∈ {0..255}`` with the
  ``[0, 256) → [0, 1)`` rescaling counted, the convention of published MNIST numbers;
- ``n_bits < 8`` (CelebA, 5 as in the paper's Glow): the images are ``k/2**n_bits``, the output of
  :func:`diffcf.data.celeba.quantize`, and ``x̃ = (k + u)/2**n_bits`` is that module's
  :func:`~diffcf.data.celeba.dequantize`; bits/dim is ``−log₂ p(k)/D`` for ``k ∈ {0..2**n_bits − 1}``,
  Glow's convention for its 5-bit CelebA numbers. The density fills each bin ``[k, k + 1)/2**n_bits``,
  so a 5-bit image ``k/32`` sits at the lower edge of its bin, as in Glow's code.

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
        # the buffer's value as last read on the host: reading a GPU buffer waits for the GPU, which
        # every training step would otherwise do once per actnorm (about a hundred times in a deep flow)
        self._seen_initialized = False

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._seen_initialized = False  # the loaded buffer may say otherwise: read it again

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not self._seen_initialized:
            if not bool(self.initialized):
                self._initialize(x)
            self._seen_initialized = True
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
    every coupling starts as the identity. ``additive=True``: ``s = 0`` (NICE's additive coupling,
    volume-preserving, ``log|det| = 0``; the network predicts ``t`` only).
    """

    def __init__(self, channels: int, hidden: int, additive: bool = False):
        super().__init__()
        self.n_a = channels // 2
        n_b = channels - self.n_a
        self.additive = additive
        self.net = CouplingNet(self.n_a, hidden, n_b if additive else 2 * n_b)
        if not additive:
            self.s_scale = nn.Parameter(torch.ones(1, n_b, 1, 1))

    def _s_t(self, x_a: Tensor) -> tuple[Tensor, Tensor]:
        h = self.net(x_a)
        if self.additive:
            return torch.zeros_like(h), h
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


class CheckerboardCoupling(nn.Module):
    """Affine coupling with RealNVP's spatial checkerboard mask (Dinh et al. 2017, §3.4): ``m`` is 1
    on the pixels with ``(row + col) % 2 == parity``, ``y = m ⊙ x + (1 − m) ⊙ (x ⊙ exp(s(m ⊙ x)) +
    t(m ⊙ x))``, ``log|det| = Σ (1 − m) ⊙ s``. Consecutive steps alternate the parity. Bounded ``s``
    and zero start as :class:`AffineCoupling`."""

    def __init__(self, channels: int, hidden: int, parity: int):
        super().__init__()
        self.parity = parity
        self.net = CouplingNet(channels, hidden, 2 * channels)
        self.s_scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def _mask(self, x: Tensor) -> Tensor:
        rows = torch.arange(x.shape[-2], device=x.device)[:, None]
        cols = torch.arange(x.shape[-1], device=x.device)[None, :]
        return ((rows + cols) % 2 == self.parity).to(x.dtype)

    def _s_t(self, x_masked: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        h = self.net(x_masked)
        return (1 - mask) * self.s_scale * torch.tanh(h[:, 0::2]), (1 - mask) * h[:, 1::2]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mask = self._mask(x)
        s, t = self._s_t(mask * x, mask)
        return x * torch.exp(s) + t, s.flatten(1).sum(dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        mask = self._mask(y)
        s, t = self._s_t(mask * y, mask)
        return (y - t) * torch.exp(-s)


COUPLINGS = ("affine", "additive", "checkerboard")  # MultiscaleFlow's coupling layers


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
    """One Glow step: actnorm → 1×1 convolution → coupling (``coupling``: one of :data:`COUPLINGS`;
    ``parity`` alternates the checkerboard from step to step)."""

    def __init__(self, channels: int, hidden: int, coupling: str = "affine", parity: int = 0):
        super().__init__()
        layer = (CheckerboardCoupling(channels, hidden, parity) if coupling == "checkerboard"
                 else AffineCoupling(channels, hidden, additive=coupling == "additive"))
        self.layers = nn.ModuleList([ActNorm(channels), InvConv1x1(channels), layer])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return forward_chain(self.layers, x)

    def inverse(self, y: Tensor) -> Tensor:
        return inverse_chain(self.layers, y)


class MultiscaleFlow(nn.Module):
    """Multi-scale Glow on ``(B, in_channels, size, size)`` images in ``[0, 1]`` with flat latents.

    One scale per entry of ``steps_per_scale`` (``K_l`` flow steps each, coupling networks of width
    ``hidden``: one int for all scales or one per scale); each scale starts with a squeeze and every
    scale but the last ends with a split, so ``size`` must be divisible by ``2**L``.
    ``MultiscaleFlow(1, 28, (K₁, K₂), (W₁, W₂))`` is the MNIST model, ``MultiscaleFlow(3, 32, (K₁,
    K₂, K₃), W, n_bits=5)`` the CelebA one. ``n_bits`` is the depth of the discrete images whose
    likelihood :meth:`bits_per_dim` reports (8 for MNIST, 5 for CelebA as the paper's Glow);
    ``coupling`` the coupling layer of every step: ``"affine"`` (Glow, the default), ``"additive"``
    (NICE) or ``"checkerboard"`` (RealNVP's spatial mask; issue 16 compares the three);
    ``encode``/``decode`` do not depend on it. ``encode``/``decode`` follow the project convention
    (``encode = g⁻¹``, ``decode = g``); ``log_prob`` is the density of continuous ``x ∈ [0, 1]^D``.

    Modules are named ``scale1 … scaleL`` and ``split_prior, split_prior2 …`` (one per split), so the
    two-scale state dicts of the MNIST checkpoints load unchanged.
    """

    def __init__(self, in_channels: int = 1, size: int = 28,
                 steps_per_scale: tuple[int, ...] | list[int] = (6, 6),
                 hidden: int | tuple[int, ...] | list[int] = 64, alpha: float = 0.05, n_bits: int = 8,
                 coupling: str = "affine"):
        super().__init__()
        if coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")
        n_scales = len(steps_per_scale)
        if n_scales < 1 or min(steps_per_scale) < 1:
            raise ValueError(f"steps_per_scale must be positive ints, one per scale, got {steps_per_scale}")
        if size < 2**n_scales or size % 2**n_scales:
            raise ValueError(f"size must be divisible by {2**n_scales} ({n_scales} squeezes), got {size}")
        widths = [hidden] * n_scales if isinstance(hidden, int) else list(hidden)
        if len(widths) != n_scales or min(widths) < 1:
            raise ValueError(f"hidden must be a positive int or {n_scales} of them (one per scale), "
                             f"got {hidden}")
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        if isinstance(n_bits, bool) or not isinstance(n_bits, int) or not 1 <= n_bits <= 8:
            raise ValueError(f"n_bits must be an integer from 1 to 8, got {n_bits!r}")
        self.in_channels, self.size, self.alpha, self.n_bits = in_channels, size, alpha, n_bits
        self.n_scales = n_scales
        self.dim = in_channels * size * size
        self._splits: list[int] = []                  # channels factored out after scale l < L
        self._z_shapes: list[tuple[int, int, int]] = []  # the latent of each scale, in z's order
        channels, side = in_channels, size
        for level in range(n_scales):
            channels, side = 4 * channels, side // 2  # the squeeze that starts the scale
            self.add_module(f"scale{level + 1}", nn.ModuleList(
                FlowStep(channels, widths[level], coupling, parity=k % 2)
                for k in range(steps_per_scale[level])))
            if level == n_scales - 1:
                self._z_shapes.append((channels, side, side))
                break
            n_split = channels // 2
            self.add_module(self._split_name(level),
                            SplitPrior(n_split, channels - n_split, widths[level]))
            self._splits.append(n_split)
            self._z_shapes.append((n_split, side, side))
            channels -= n_split

    @property
    def scale_sizes(self) -> list[int]:
        """How many of ``z``'s coordinates each scale holds, in ``z``'s order: the finest scale's
        split first, the coarsest scale's latent last (they sum to ``dim``)."""
        return [math.prod(shape) for shape in self._z_shapes]

    @staticmethod
    def _split_name(level: int) -> str:
        return "split_prior" if level == 0 else f"split_prior{level + 1}"

    def _scale(self, level: int) -> nn.ModuleList:
        return getattr(self, f"scale{level + 1}")

    def _split_prior(self, level: int) -> SplitPrior:
        return getattr(self, self._split_name(level))

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
        h, logdet = self._logit(x)
        zs = []
        for level in range(self.n_scales):
            h, ld = forward_chain(self._scale(level), squeeze2x2(h))
            logdet = logdet + ld
            if level < self.n_scales - 1:
                n_split = self._splits[level]
                z, h = h[:, :n_split], h[:, n_split:]
                z, ld = self._split_prior(level)(z, h)
                logdet = logdet + ld
                zs.append(z.flatten(1))
        zs.append(h.flatten(1))
        return torch.cat(zs, dim=1), logdet

    def encode(self, x: Tensor) -> Tensor:
        """``z = g⁻¹(x)``: the exact inverse of :meth:`decode`, flat ``(B, D)``."""
        return self.encode_with_logdet(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """``x = g(z)``: flat ``(B, D)`` latents to images ``(B, C, size, size)``."""
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(f"z must have shape (batch, {self.dim}), got {tuple(z.shape)}")
        parts = z.split(self.scale_sizes, dim=1)
        h = parts[-1].reshape(-1, *self._z_shapes[-1])
        for level in reversed(range(self.n_scales)):
            if level < self.n_scales - 1:
                z_split = parts[level].reshape(-1, *self._z_shapes[level])
                h = torch.cat([self._split_prior(level).inverse(z_split, h), h], dim=1)
            h = unsqueeze2x2(inverse_chain(self._scale(level), h))
        return self._sigmoid(h)

    # ---- densities --------------------------------------------------------------------------

    def log_prob(self, x: Tensor) -> Tensor:
        """``log q(x) = log N(g⁻¹(x); 0, I) + log|det ∂g⁻¹/∂x|`` for continuous ``x ∈ [0, 1]^D``."""
        z, logdet = self.encode_with_logdet(x)
        log_base = -0.5 * (z**2).sum(dim=1) - 0.5 * self.dim * math.log(2 * math.pi)
        return log_base + logdet

    def levels(self, x: Tensor, check: bool = True) -> Tensor:
        """The discrete values ``k ∈ {0, …, 2**n_bits − 1}`` of images ``x`` (float, same shape).

        ``n_bits = 8``: 8-bit images ``x = k/255`` (MNIST's files), ``k = round(255 x)``.
        ``n_bits < 8``: ``x = k / 2**n_bits``, the images :func:`diffcf.data.celeba.quantize` makes
        (CelebA, 5 bits); anything else is refused, since rounding it would silently pick levels.
        That check waits for the device; ``check=False`` skips it, for a training loop whose data
        were checked once before the first step (:func:`bits_per_dim_loss`).
        """
        if self.n_bits == 8:
            return torch.round(x * 255.0)
        scaled = x * 2**self.n_bits
        k = torch.round(scaled)
        if check and x.numel() and (not torch.allclose(scaled, k, atol=1e-3) or float(k.min()) < 0
                          or float(k.max()) > 2**self.n_bits - 1):
            raise ValueError(f"a {self.n_bits}-bit flow expects images k / 2**{self.n_bits}, "
                             f"k = 0 … {2**self.n_bits - 1}: quantise them first "
                             f"(diffcf.data.celeba.quantize(x, {self.n_bits}))")
        return k

    def bits_per_dim(self, x: Tensor, generator: torch.Generator | None = None, check: bool = True
                     ) -> Tensor:
        """Bits per dimension of ``n_bits`` images under uniform dequantisation.

        With ``n = 2**n_bits`` levels ``k = levels(x)`` (8 bits: ``x = k/255``; fewer:
        ``x = k/n``, :func:`diffcf.data.celeba.quantize`'s convention), ``x̃ = (k + u)/n`` with ``u ~
        U[0,1)`` (for fewer bits exactly :func:`diffcf.data.celeba.dequantize`); ``log p(k) ≥ log
        q(x̃) − D log n`` (the density on ``[0, n)^D`` is ``q(x̃)/n^D``), reported per sample as
        ``−(log q(x̃) − D log n)/(D ln 2)``: the convention of published MNIST numbers (8 bits)
        and of Glow's 5-bit CelebA numbers (its ``−D log n_bins`` term). ``u`` comes from the CPU
        ``generator`` when one is given (the same numbers on every device), else from the device's
        own. ``check``: as in :meth:`levels`.
        """
        n = 2.0**self.n_bits
        k = self.levels(x, check)
        u = (torch.rand(x.shape, device=x.device, dtype=x.dtype) if generator is None
             else torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device))
        x_deq = (k + u) / n
        log_p = self.log_prob(x_deq) - self.dim * math.log(n)
        return -log_p / (self.dim * LOG2)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """Draw ``n`` images ``g(T·z)``, ``z ~ N(0, I)``."""
        p = next(self.parameters())
        z = torch.randn(n, self.dim, generator=generator).to(device=p.device, dtype=p.dtype)
        return self.decode(temperature * z)


def bits_per_dim_loss(flow: MultiscaleFlow, x: Tensor) -> Tensor:
    """Training loss: mean dequantised bits/dim (maximum likelihood up to constants). The images'
    levels are not checked here (that would wait for the device every step): check the training
    set once with :meth:`MultiscaleFlow.levels` first, as :func:`~diffcf.recipes.common.train_image_flow`
    does."""
    return flow.bits_per_dim(x, check=False).mean()
