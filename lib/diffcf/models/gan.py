"""The dcGAN of §IV (Fig. 9) on MNIST, an *approximately* diffeomorphic generator (§II, Theorem 2).

The architecture is the paper's code's (adapted there from AKASHKADEL/dcgan-mnist): a generator of
four transposed convolutions ``nz → 4·ngf (4×4) → 2·ngf (7×7) → ngf (14×14) → 1 (28×28)`` with batch
norm and ReLU, ending in ``tanh``; a discriminator of four convolutions ``1 → ndf → 2·ndf → 4·ndf →
1`` with batch norm and LeakyReLU(0.2). Defaults: ``nz = 100``, ``ngf = ndf = 32``.

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

from torch import Tensor, nn


def _check_image(x: Tensor, size: int = 28) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, size, size):
        raise ValueError(f"x must have shape (batch, 1, {size}, {size}), got {tuple(x.shape)}")


class DCGANGenerator(nn.Module):
    """``g: R^nz → [0, 1]^(1×28×28)``, the paper's dcGAN generator with its output mapped to ``[0, 1]``."""

    def __init__(self, nz: int = 100, ngf: int = 32):
        super().__init__()
        self.nz = nz
        c = ngf
        self.net = nn.Sequential(
            nn.Unflatten(1, (nz, 1, 1)),
            nn.ConvTranspose2d(nz, 4 * c, 4, 1, 0, bias=False), nn.BatchNorm2d(4 * c), nn.ReLU(),  # 4
            nn.ConvTranspose2d(4 * c, 2 * c, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU(),  # 7
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),  # 14
            nn.ConvTranspose2d(c, 1, 4, 2, 1, bias=False), nn.Tanh(),  # 28
        )

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z must have shape (batch, {self.nz}), got {tuple(z.shape)}")
        return (self.net(z) + 1.0) / 2.0

    def decode(self, z: Tensor) -> Tensor:
        """``g(z)``: ``(B, 1, 28, 28)`` images in ``[0, 1]``."""
        return self(z)

    def encode(self, x: Tensor) -> Tensor:
        """``g⁻¹(x)`` by the paper's inversion (:func:`diffcf.inversion.invert`: Adam lr 0.1 from a
        seeded random start, until MSE < 1e-3 or 3000 steps). The generator must be in eval mode."""
        from diffcf.inversion import invert

        return invert(self, x).z


class DCGANDiscriminator(nn.Module):
    """``D: [0, 1]^(1×28×28) → R``, the paper's dcGAN discriminator, returning a logit ``(B,)``."""

    def __init__(self, ndf: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),  # 14
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2),  # 7
            nn.Conv2d(ndf * 2, ndf * 4, 3, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2),  # 4
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),  # 1
        )

    def forward(self, x: Tensor) -> Tensor:
        _check_image(x)
        return self.net(2.0 * x - 1.0).flatten()


class GAN(nn.Module):
    """Generator and discriminator in one module: the named model ``mnist_gan`` holds both, so a
    training stage resumes with its discriminator. Counterfactuals use :attr:`generator` only."""

    def __init__(self, nz: int = 100, ngf: int = 32, ndf: int = 32):
        super().__init__()
        self.nz = nz
        self.generator = DCGANGenerator(nz, ngf)
        self.discriminator = DCGANDiscriminator(ndf)

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def decode(self, z: Tensor) -> Tensor:
        return self.generator(z)


class GANEncoder(nn.Module):
    """A learned GAN inversion ``E: x → z`` (the idea of e4e / HyperStyle, at MNIST scale): three
    stride-2 convolutions ``channels → 2·channels → 4·channels`` (28 → 14 → 7 → 4) with LeakyReLU,
    then a linear map to ``R^nz``. Its output is the starting point of the inversion's refinement
    (:class:`~diffcf.inversion.InvertedGAN`); how it is trained: :mod:`diffcf.recipes.approximate`."""

    def __init__(self, nz: int = 100, channels: int = 32):
        super().__init__()
        self.nz = nz
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.LeakyReLU(0.2),  # 14
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),  # 7
            nn.Conv2d(2 * c, 4 * c, 3, 2, 1), nn.LeakyReLU(0.2),  # 4
            nn.Flatten(), nn.Linear(4 * c * 16, nz),
        )

    def forward(self, x: Tensor) -> Tensor:
        _check_image(x)
        return self.net(2.0 * x - 1.0)
