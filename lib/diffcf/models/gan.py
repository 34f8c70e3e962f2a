"""The dcGAN of §IV (Fig. 9) on MNIST, an *approximately* diffeomorphic generator (§II, Theorem 2),
and the same architecture for CelebA's colour faces.

The architecture is the paper's code's (adapted there from AKASHKADEL/dcgan-mnist): a generator of
four transposed convolutions ``nz → 4·ngf (4×4) → 2·ngf (7×7) → ngf (14×14) → 1 (28×28)`` with batch
norm and ReLU, ending in ``tanh``; a discriminator of four convolutions ``1 → ndf → 2·ndf → 4·ndf →
1`` with batch norm and LeakyReLU(0.2). Defaults: ``nz = 100``, ``ngf = ndf = 32``.

**Other images.** ``in_channels`` (1 grey, 3 colour) and ``size`` (28, 32 or 64) generalise it to
CelebA's ``3×32×32`` faces: every stride-2 layer has a 4×4 kernel there (``4 → 8 → 16 → 32``; at 28
one 3×3 kernel makes ``4 → 7``), and at 64 one more stride-2 layer of twice the width is added on
each side (``8·ngf`` at 4×4), the dcGAN of Radford et al. The defaults build exactly the MNIST
modules above (same layers, same ``state_dict``).

**Pixel range.** The project's images lie in ``[0, 1]``. The generator maps its ``tanh`` output
``t ∈ (−1, 1)`` to ``x = (t + 1) / 2``, and the discriminator maps every image back,
``2x − 1``, before its first convolution. Training on ``[0, 1]`` images is therefore exactly the
usual dcGAN on images scaled to ``[−1, 1]``, and ``decode(z)`` is an image in the range every
classifier, oracle and search of the project expects. (The paper's code instead clips the raw
``tanh`` output to ``[0, 1]`` during inversion.)

The discriminator returns a logit (the paper's code ends in a sigmoid; the loss on logits is the
same binary cross-entropy, computed stably). A generator has no encoder: ``g⁻¹(x)`` is a *GAN
inversion* (:mod:`diffcf.inversion`); :meth:`DCGANGenerator.encode` runs the paper's inversion
with its defaults, :class:`~diffcf.inversion.InvertedGAN` with any settings or a learned start.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

SIZES = (28, 32, 64)  # image sides the dcGAN is built for


def down_kernels(size: int) -> list[int]:
    """Kernel sizes of the stride-2 (padding 1) convolutions that take a ``size × size`` image down
    to 4×4: 4×4 halves a side, 3×3 makes 7 → 4 (MNIST). The generator runs them in reverse."""
    if size not in SIZES:
        raise ValueError(f"the dcGAN is built for images of side {SIZES}, got size={size}")
    return {28: [4, 4, 3], 32: [4, 4, 4], 64: [4, 4, 4, 4]}[size]


def check_image(x: Tensor, in_channels: int = 1, size: int = 28) -> None:
    """Raise unless ``x`` is a batch of ``in_channels × size × size`` images."""
    if x.ndim != 4 or tuple(x.shape[1:]) != (in_channels, size, size):
        raise ValueError(f"x must have shape (batch, {in_channels}, {size}, {size}), got {tuple(x.shape)}")


def check_latent_size(encoder: nn.Module, generator: nn.Module) -> None:
    """Raise unless ``encoder`` gives the ``generator.nz``-d latents ``generator`` decodes."""
    if encoder.nz != generator.nz:
        raise ValueError(f"the encoder gives {encoder.nz}-d latents, the generator takes {generator.nz}: "
                         f"build the encoder with nz={generator.nz}")


class DCGANGenerator(nn.Module):
    """``g: R^nz → [0, 1]^(C×s×s)``, the paper's dcGAN generator with its output mapped to ``[0, 1]``
    (``C = in_channels``, ``s = size``; the defaults: MNIST's ``1×28×28``)."""

    def __init__(self, nz: int = 100, ngf: int = 32, in_channels: int = 1, size: int = 28):
        super().__init__()
        self.nz, self.in_channels, self.size = nz, in_channels, size
        kernels = down_kernels(size)[::-1]
        widths = [ngf * 2 ** i for i in reversed(range(len(kernels)))]  # 4·ngf, 2·ngf, ngf (28, 32)
        layers: list[nn.Module] = [
            nn.Unflatten(1, (nz, 1, 1)),
            nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(),  # 4
        ]
        for c_in, c_out, k in zip(widths[:-1], widths[1:], kernels[:-1], strict=True):
            layers += [nn.ConvTranspose2d(c_in, c_out, k, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], in_channels, kernels[-1], 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z must have shape (batch, {self.nz}), got {tuple(z.shape)}")
        return (self.net(z) + 1.0) / 2.0

    def decode(self, z: Tensor) -> Tensor:
        """``g(z)``: ``(B, C, s, s)`` images in ``[0, 1]``."""
        return self(z)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` latents of the space :meth:`decode` takes, drawn as in training: ``z ~ N(0, I)``."""
        p = next(self.parameters())
        return torch.randn(n, self.nz, generator=generator).to(p)

    def encode(self, x: Tensor) -> Tensor:
        """``g⁻¹(x)`` by the paper's inversion (:func:`diffcf.inversion.invert`: Adam lr 0.1 from a
        seeded random start, until MSE < 1e-3 or 3000 steps). The generator must be in eval mode."""
        from diffcf.inversion import invert

        return invert(self, x).z


class DCGANDiscriminator(nn.Module):
    """``D: [0, 1]^(C×s×s) → R``, the paper's dcGAN discriminator, returning a logit ``(B,)``."""

    def __init__(self, ndf: int = 32, in_channels: int = 1, size: int = 28):
        super().__init__()
        self.in_channels, self.size = in_channels, size
        kernels = down_kernels(size)
        widths = [ndf * 2 ** i for i in range(len(kernels))]  # ndf, 2·ndf, 4·ndf (28, 32)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, kernels[0], 2, 1, bias=False),
                                   nn.LeakyReLU(0.2)]
        for c_in, c_out, k in zip(widths[:-1], widths[1:], kernels[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, k, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False))  # 4×4 → 1
        self.net = nn.Sequential(*layers)

    def attach(self, generator: nn.Module) -> None:
        """Check, before training, that this encoder's latents are the ones ``generator`` takes."""
        check_latent_size(self, generator)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, self.size)
        return self.net(2.0 * x - 1.0).flatten()


class GAN(nn.Module):
    """Generator and discriminator in one module: the named model ``mnist_gan`` holds both, so a
    training stage resumes with its discriminator. Counterfactuals use :attr:`generator` only.
    Training (:func:`~diffcf.training.fit_gan`) draws ``z ~ N(0, I_prior_dim)``, here ``prior_dim = nz``."""

    def __init__(self, nz: int = 100, ngf: int = 32, ndf: int = 32, in_channels: int = 1, size: int = 28):
        super().__init__()
        self.nz = self.prior_dim = nz
        self.generator = DCGANGenerator(nz, ngf, in_channels, size)
        self.discriminator = DCGANDiscriminator(ndf, in_channels, size)

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def decode(self, z: Tensor) -> Tensor:
        return self.generator(z)


class GANEncoder(nn.Module):
    """A learned GAN inversion ``E: x → z`` (the idea of e4e / HyperStyle, at MNIST scale): three
    stride-2 convolutions ``channels → 2·channels → 4·channels`` (28 → 14 → 7 → 4; four of them, up
    to ``8·channels``, at 64) with LeakyReLU, then a linear map to ``R^nz``. Its output is the
    starting point of the inversion's refinement (:class:`~diffcf.inversion.InvertedGAN`); how it is
    trained: :mod:`diffcf.recipes.approximate`. ``in_channels`` and ``size``: the images'."""

    def __init__(self, nz: int = 100, channels: int = 32, in_channels: int = 1, size: int = 28):
        super().__init__()
        self.nz, self.in_channels, self.size = nz, in_channels, size
        kernels = down_kernels(size)
        widths = [channels * 2 ** i for i in range(len(kernels))]
        layers: list[nn.Module] = []
        for c_in, c_out, k in zip([in_channels, *widths[:-1]], widths, kernels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, k, 2, 1), nn.LeakyReLU(0.2)]
        layers += [nn.Flatten(), nn.Linear(widths[-1] * 16, nz)]
        self.net = nn.Sequential(*layers)

    def attach(self, generator: nn.Module) -> None:
        """Check, before training, that this encoder's latents are the ones ``generator`` takes."""
        check_latent_size(self, generator)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, self.size)
        return self.net(2.0 * x - 1.0)
