"""A small style-based generator (StyleGAN2's mechanism at CPU scale) for CelebA faces, an
*approximately* diffeomorphic generator (§II, Theorem 2), with its discriminator and an encoder.

**Generator.** A *mapping network* takes ``z ∈ R^z_dim`` (pixel-normalised) through
``mapping_layers`` linear layers with leaky ReLU to a style vector ``w ∈ R^w_dim``. The *synthesis
network* starts from a learned constant ``4×4`` input and doubles the resolution per block
(``4 → 8 → 16 → 32``): bilinear upsampling, then two modulated 3×3 convolutions (one in the 4×4
block), each followed by a bias and leaky ReLU (gain √2). A modulated convolution scales its input
channels by a style ``s = A(w)`` (a learned affine map, bias 1) and *demodulates* (StyleGAN2): each
output channel is divided by ``√(Σ_{i,k} (W_{oik} s_i)² + ε)``, the norm its weights have after
modulation, so that unit-variance inputs give unit-variance outputs whatever the style. Every block
ends in a ``toRGB`` (modulated 1×1 convolution, not demodulated) whose output is added to the
upsampled image of the blocks before (StyleGAN2's skip architecture); the sum ``t`` is mapped to
``(tanh(t) + 1) / 2 ∈ (0, 1)``, the project's pixel range. Per-pixel noise inputs are left out:
``decode`` must be a function of the latent alone for the counterfactual search.

**The latent W+.** Every layer gets its own ``w``, as in StyleGAN2: convolution ``i`` reads ``w_i``,
the ``toRGB`` of a block reads the ``w`` of the next block's first convolution, so a ``32×32``
generator reads ``n_ws = 2·log2(32) − 2 = 8`` of them. Sampling (``forward(z)``, training) gives all
layers the same ``w = mapping(z)``; inversions and counterfactual searches move them independently
in ``W+``, which is larger and reconstructs real images better than ``W`` (Abdal et al. 2019).
``W+`` is *flattened*: ``decode`` takes ``(B, nz)`` with ``nz = n_ws · w_dim``, so that
:func:`diffcf.search.counterfactual_search` and :func:`diffcf.inversion.invert` work unchanged.
``wplus(w)`` broadcasts a ``w`` to all layers, flattened. The generator tracks the mean of ``w``
(``w_avg``, an exponential moving average over training batches, StyleGAN's ``w_avg`` with
β = 0.995); ``default_start(n)`` is that mean in every layer, where the inversion starts.

**Learning rates.** All weights use StyleGAN's *equalised learning rate*: they are stored ``N(0, 1)``
and scaled by ``1/√fan_in`` at run time, so that Adam's steps have the same relative size in every
layer. The mapping network's are further slowed by ``mapping_lr_mul`` (StyleGAN's 0.01, at its
learning rate of 2e-3, which the ``celeba_stylegan`` recipe uses for the generator).

**Discriminator, encoder.** :class:`StyleGAN` pairs the generator with the dcGAN discriminator of
:mod:`diffcf.models.gan` (plain convolutions with batch norm) in one module, the interface of
:class:`~diffcf.models.gan.GAN` that :func:`~diffcf.training.fit_gan` trains (its ``prior_dim`` is
``z_dim``: training draws ``z``, not ``W+``). :class:`StyleEncoder` is a learned inversion
``x → W+`` in the manner of e4e (Tov et al. 2021): it predicts an offset from ``w_avg`` in every
layer, and its last layer starts at zero, so that untrained it returns ``default_start``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from diffcf.models.gan import DCGANDiscriminator, check_image, check_latent_size

W_AVG_BETA = 0.995  # StyleGAN's decay of the running mean of w
LRELU_GAIN = math.sqrt(2.0)  # keeps the variance through leaky ReLU (StyleGAN's bias_act gain)


def style_layers(size: int) -> int:
    """How many ``w`` a ``size × size`` generator reads: one per convolution (one at 4×4, two per
    later block) plus one for the last ``toRGB``, ``2·log2(size) − 2`` (8 at 32×32)."""
    if size < 8 or size & (size - 1):
        raise ValueError(f"the style-based generator makes images of side 8, 16, 32, …, got size={size}")
    return 2 * int(math.log2(size)) - 2


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def _check_latent(v: Tensor, dim: int, name: str) -> None:
    if v.ndim != 2 or v.shape[1] != dim:
        raise ValueError(f"{name} must have shape (batch, {dim}), got {tuple(v.shape)}")


class EqualLinear(nn.Module):
    """A linear layer with equalised learning rate: ``y = (lr_mul / √in) W x + lr_mul · b`` with
    ``W`` stored ``N(0, 1/lr_mul²)`` and the bias stored as ``bias_init / lr_mul``."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), bias_init / lr_mul))
        self.scale, self.lr_mul = lr_mul / math.sqrt(in_dim), lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class ModulatedConv(nn.Module):
    """A ``kernel × kernel`` convolution (padding keeps the size) modulated per image by the style
    ``s = A(w)`` (``A``: :class:`EqualLinear`, bias 1), demodulated if ``demodulate``, plus a bias.

    Computed as StyleGAN2's non-fused form, ``conv(x · s, W) · d + b`` with one weight ``W`` for the
    whole batch and ``d_o = 1/√(Σ_{i,k} (W_oik s_i)² + 1e-8)``: the convolution with the per-image
    weights ``W_oik s_i d_o`` of the paper, without building them."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.demodulate, self.padding = demodulate, kernel // 2

    def demodulation(self, s: Tensor) -> Tensor:
        """``d (B, out_ch)`` for styles ``s (B, in_ch)``: ``Σ_{i,k} W_oik² s_i²`` as a matrix product."""
        w2 = (self.weight * self.scale).square().sum(dim=(2, 3))  # (out, in)
        return (s.square() @ w2.T + 1e-8).rsqrt()

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.affine(w)
        out = F.conv2d(x * s[:, :, None, None], self.weight * self.scale, padding=self.padding)
        if self.demodulate:
            out = out * self.demodulation(s)[:, :, None, None]
        return out + self.bias[:, None, None]


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (upsampling ×2 unless ``first``) modulated 3×3
    convolutions with leaky ReLU (two, one in the ``first`` block), then a ``toRGB`` added to the
    upsampled image so far. Reads ``n_ws = len(convs) + 1`` styles, ``ws (B, n_ws, w_dim)``."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, image_channels: int, first: bool):
        super().__init__()
        self.first = first
        widths = [in_ch, out_ch] if first else [in_ch, out_ch, out_ch]
        self.convs = nn.ModuleList(ModulatedConv(a, b, 3, w_dim)
                                   for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.to_rgb = ModulatedConv(out_ch, image_channels, 1, w_dim, demodulate=False)
        self.n_ws = len(self.convs) + 1

    def forward(self, x: Tensor, rgb: Tensor | None, ws: Tensor) -> tuple[Tensor, Tensor]:
        if not self.first:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        for i, conv in enumerate(self.convs):
            x = _lrelu(conv(x, ws[:, i]))
        y = self.to_rgb(x, ws[:, -1])
        if rgb is not None:
            y = y + F.interpolate(rgb, scale_factor=2.0, mode="bilinear", align_corners=False)
        return x, y


class StyleGenerator(nn.Module):
    """``g: W+ → [0, 1]^(C×s×s)``, a style-based generator (see the module docstring).

    ``channels``: the width of each block, one per resolution ``4, 8, …, size`` (default, 32×32:
    128, 64, 32, 16; the defaults build the registered ``celeba_stylegan``). ``nz = n_ws · w_dim``
    is the size of the flat ``W+`` that :meth:`decode` takes; ``z_dim`` the size of the prior
    ``z ~ N(0, I)`` that :meth:`forward` samples from."""

    def __init__(self, z_dim: int = 128, w_dim: int = 128, mapping_layers: int = 4,
                 channels: Sequence[int] = (128, 64, 32, 16), in_channels: int = 3, size: int = 32,
                 mapping_lr_mul: float = 0.01):
        super().__init__()
        self.n_ws = style_layers(size)
        if len(channels) != int(math.log2(size)) - 1:
            raise ValueError(f"channels needs one width per resolution 4, 8, …, {size} "
                             f"({int(math.log2(size)) - 1}), got {list(channels)}")
        if mapping_layers < 1:
            raise ValueError(f"the mapping network needs at least one layer, got {mapping_layers}")
        self.z_dim, self.w_dim, self.in_channels, self.size = z_dim, w_dim, in_channels, size
        self.nz = self.n_ws * w_dim
        self.mapping_net = nn.ModuleList(EqualLinear(z_dim if i == 0 else w_dim, w_dim, lr_mul=mapping_lr_mul)
                                         for i in range(mapping_layers))
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.const = nn.Parameter(torch.randn(channels[0], 4, 4))
        self.blocks = nn.ModuleList(
            SynthesisBlock(channels[max(i - 1, 0)], c, w_dim, in_channels, first=i == 0)
            for i, c in enumerate(channels))

    def mapping(self, z: Tensor) -> Tensor:
        """``w = mapping(z)``, ``(B, w_dim)``: pixel norm of ``z``, then the MLP. In training mode it
        also moves ``w_avg`` toward the batch's mean ``w`` (by ``1 − 0.995``)."""
        _check_latent(z, self.z_dim, "z")
        w = z * z.square().mean(dim=1, keepdim=True).add(1e-8).rsqrt()
        for layer in self.mapping_net:
            w = _lrelu(layer(w))
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.mean(dim=0), 1.0 - W_AVG_BETA)
        return w

    def wplus(self, w: Tensor) -> Tensor:
        """``w`` in every layer: ``(B, w_dim) → (B, nz)``, the flat ``W+`` latent of ``w``."""
        _check_latent(w, self.w_dim, "w")
        return w.repeat(1, self.n_ws)

    def default_start(self, n: int) -> Tensor:
        """``n`` copies of ``wplus(w_avg)``, ``(n, nz)``: where :func:`~diffcf.inversion.invert`
        starts (StyleGAN's projector starts at the mean ``w``)."""
        return self.wplus(self.w_avg.detach()[None]).expand(n, -1).clone()

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` flat ``W+`` latents of generated images, ``wplus(mapping(z))`` with ``z ~ N(0, I)``:
        the latents :meth:`decode` takes, as the prior puts them."""
        p = self.const
        return self.wplus(self.mapping(torch.randn(n, self.z_dim, generator=generator).to(p)))

    def decode(self, wplus: Tensor) -> Tensor:
        """``g(w+)``: flat ``W+`` latents ``(B, nz)`` to ``(B, C, s, s)`` images in ``[0, 1]``."""
        _check_latent(wplus, self.nz, "the W+ latent (n_ws · w_dim, flattened)")
        ws = wplus.reshape(len(wplus), self.n_ws, self.w_dim)
        x, rgb, i = self.const.expand(len(ws), -1, -1, -1), None, 0
        for block in self.blocks:
            x, rgb = block(x, rgb, ws[:, i : i + block.n_ws])
            i += block.n_ws - 1  # a block's toRGB reads the w of the next block's first convolution
        return (torch.tanh(rgb) + 1.0) / 2.0

    def forward(self, z: Tensor) -> Tensor:
        """A sample from the prior: ``decode(wplus(mapping(z)))`` for ``z ~ N(0, I_z_dim)``."""
        return self.decode(self.wplus(self.mapping(z)))

    def encode(self, x: Tensor) -> Tensor:
        """``g⁻¹(x)`` in ``W+`` by :func:`diffcf.inversion.invert` (its defaults, from
        :meth:`default_start`). The generator must be in eval mode."""
        from diffcf.inversion import invert

        return invert(self, x).z


class StyleGAN(nn.Module):
    """:class:`StyleGenerator` and a dcGAN discriminator (width ``ndf``) in one module, the
    interface of :class:`~diffcf.models.gan.GAN`: ``nz`` is the flat ``W+`` size that ``decode``
    takes, ``prior_dim = z_dim`` the latent :func:`~diffcf.training.fit_gan` draws for training."""

    def __init__(self, z_dim: int = 128, w_dim: int = 128, mapping_layers: int = 4,
                 channels: Sequence[int] = (128, 64, 32, 16), ndf: int = 48, in_channels: int = 3,
                 size: int = 32, mapping_lr_mul: float = 0.01):
        super().__init__()
        self.generator = StyleGenerator(z_dim, w_dim, mapping_layers, channels, in_channels, size,
                                        mapping_lr_mul)
        self.discriminator = DCGANDiscriminator(ndf, in_channels, size)
        self.nz, self.prior_dim = self.generator.nz, z_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def decode(self, wplus: Tensor) -> Tensor:
        return self.generator.decode(wplus)


class StyleEncoder(nn.Module):
    """A learned inversion ``E: x → W+`` (e4e-style): stride-2 4×4 convolutions ``channels →
    2·channels → …`` with LeakyReLU down to 4×4, then a linear map to an offset in ``R^nz``, added
    to ``w_avg`` in every layer. The linear map starts at zero, so an untrained encoder returns the
    generator's ``default_start``; ``w_avg`` is a buffer (saved with the encoder) that its recipe
    copies from the generator (:mod:`diffcf.recipes.approximate`)."""

    def __init__(self, w_dim: int = 128, size: int = 32, channels: int = 32, in_channels: int = 3):
        super().__init__()
        self.n_ws, self.w_dim, self.in_channels, self.size = style_layers(size), w_dim, in_channels, size
        self.nz = self.n_ws * w_dim
        widths = [channels * 2 ** i for i in range(int(math.log2(size)) - 2)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(widths[-1] * 16, self.nz)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def attach(self, generator: StyleGenerator) -> None:
        """Before training: check the latent sizes match and take ``generator``'s ``w_avg``, the
        point the predicted offsets start from."""
        check_latent_size(self, generator)
        with torch.no_grad():
            self.w_avg.copy_(generator.w_avg)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, self.size)
        return self.w_avg.repeat(self.n_ws) + self.head(self.features(2.0 * x - 1.0))
