"""GAN inversion: ``g⁻¹(x) = argmin_z ‖clip(g(z), 0, 1) − x‖²`` for a generator without an encoder (§II).

The paper's code inverts its dcGAN with Adam (lr 0.1) on ``z``, minimising the mean squared error
between ``clip(g(z), 0, 1)`` and the image from a random start ``z ~ N(0, I)``, and stops at MSE
< 1e-3 or after 3000 steps (2000 for the CelebA pGAN). :func:`invert` does exactly this for a whole
batch, **per image**: each image stops at its own first step with MSE < ``tol`` (the paper's code
stops a batch on the batch's mean), and its ``z`` is frozen from then on.

That is the same optimisation as the counterfactual search (:func:`diffcf.search.counterfactual_search`)
with a different target: masked Adam, per-sample freezing, a working set that shrinks every
``check_every`` steps with no per-step host synchronisation, steps and wall time per sample.
:func:`invert` therefore runs the search itself, in ``Z``, with the identity as "classifier" and a
:class:`ReconstructionTarget` (per-image MSE to ``x``, reached below ``tol``) as target, so the two
share one implementation of the batched, frozen Adam.

Beyond the paper's code, the start may come from a learned encoder (``start=E(x)``, the idea of
learned inversions such as e4e / HyperStyle; :class:`~diffcf.models.gan.GANEncoder`), then the same
refinement. A generator whose latent is not ``N(0, I)``-distributed says where to start by a
``default_start(n)`` method (the style-based GAN of :mod:`diffcf.models.stylegan`: the mean ``w``
in every layer of ``W+``). :class:`InvertedGAN` wraps a generator, an optional encoder and the
inversion settings into a :class:`~diffcf.generative.Generator` (``encode`` = inversion,
``decode`` = ``g``) that can be passed as ``g`` to the counterfactual search.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from diffcf.models.gan import check_latent_size
from diffcf.search import counterfactual_search

PAPER_LR, PAPER_MAX_STEPS, PAPER_TOL = 0.1, 3000, 1e-3  # the paper's code, MNIST dcGAN


class ReconstructionTarget:
    """The "target" of an inversion: per image, the mean squared error of the decoded image to ``x``
    (the loss), reached when it falls below ``tol`` (one number, or one per image)."""

    def __init__(self, x: Tensor, tol: float | Tensor = PAPER_TOL):
        if isinstance(tol, Tensor):
            if tol.shape != (len(x),):
                raise ValueError(f"a per-image tol needs shape ({len(x)},), got {tuple(tol.shape)}")
            tol = tol.to(x)
        if not bool(torch.all(torch.as_tensor(tol) > 0)):
            raise ValueError(f"tol (the MSE at which an image is inverted) must be positive, got {tol}")
        self.x, self.tol = x, tol

    def check(self, x_hat: Tensor) -> None:
        if x_hat.shape != self.x.shape:
            raise ValueError(f"the generator makes images of shape {tuple(x_hat.shape[1:])}, the images to "
                             f"invert have shape {tuple(self.x.shape[1:])}")

    def loss(self, x_hat: Tensor) -> Tensor:
        return (x_hat - self.x).square().flatten(1).mean(dim=1)

    def reached(self, x_hat: Tensor) -> Tensor:
        return self.loss(x_hat) < self.tol

    def select(self, idx: Tensor) -> ReconstructionTarget:
        return ReconstructionTarget(self.x[idx], self.tol[idx] if isinstance(self.tol, Tensor) else self.tol)


class KnownLatents(nn.Module):
    """``generator`` with latents already found (an inversion's ``z``, or a starting point):
    ``encode`` hands out ``z`` for the batch it was made for, ``decode`` is the generator's. Lets a
    counterfactual search start from an inversion computed (and inspected) beforehand."""

    def __init__(self, generator: nn.Module, z: Tensor):
        super().__init__()
        self.generator, self.z = generator, z

    def encode(self, x: Tensor) -> Tensor:
        if len(x) != len(self.z):
            raise ValueError(f"these latents belong to a batch of {len(self.z)} images, got {len(x)}")
        return self.z

    def decode(self, z: Tensor) -> Tensor:
        return self.generator.decode(z)


@dataclass
class InversionResult:
    """Outcome of :func:`invert` for a batch of ``B`` images."""

    z: Tensor  # (B, nz) latents: at the first step with MSE < tol, or after max_steps
    x: Tensor  # (B, ...) their reconstructions clip(g(z), 0, 1)
    mse: Tensor  # (B,) mean squared error of x to the image
    steps: Tensor  # (B,) Adam steps taken (max_steps where it failed)
    success: Tensor  # (B,) bool: MSE < tol reached
    seconds: Tensor  # (B,) wall time until the image finished


def random_start(n: int, nz: int, seed: int = 0, like: Tensor | None = None) -> Tensor:
    """``n`` latents ``z ~ N(0, I_nz)`` from a CPU generator seeded with ``seed`` (the same numbers on
    every device), moved to the device and dtype of ``like``."""
    z = torch.randn(n, nz, generator=torch.Generator().manual_seed(seed))
    return z if like is None else z.to(like)


def invert(generator: nn.Module, x: Tensor, start: Tensor | None = None, lr: float = PAPER_LR,
           max_steps: int = PAPER_MAX_STEPS, tol: float | Tensor = PAPER_TOL, check_every: int = 10,
           seed: int = 0, progress: bool = False) -> InversionResult:
    """Invert ``generator`` (``decode(z)``, latent size ``nz``, eval mode) at the images ``x`` in
    ``[0, 1]``: Adam with learning rate ``lr`` on ``z``, minimising ``MSE(clip(g(z), 0, 1), x)`` per
    image, from ``start`` (e.g. a learned encoder's output), else from ``generator.default_start(n)``
    where the generator defines one (a style-based GAN's ``W+``: the mean ``w`` in every layer, where
    StyleGAN's inversions start; ``N(0, I)`` is no distribution of ``W+``), else from
    :func:`random_start` with ``seed``; each image stops at MSE < ``tol`` (one number, or one per
    image: e.g. the error another inversion reached, to count the steps needed to match it) or
    after ``max_steps``. Works under ``torch.no_grad()`` too (it enables gradients for ``z``
    itself)."""
    if generator.training:
        raise ValueError("the generator is in training mode (batch norm would use and change batch "
                         "statistics): call generator.eval() first; zoo.load returns eval-mode models")
    if not x.is_floating_point() or (x.numel() and not (float(x.min()) >= 0 and float(x.max()) <= 1)):
        raise ValueError(f"the images to invert must be floating point in [0, 1], got dtype {x.dtype}"
                         + (f" in [{float(x.min()):.4g}, {float(x.max()):.4g}]" if x.numel() else ""))
    if start is None and hasattr(generator, "default_start"):
        start = generator.default_start(len(x)).to(x)
    elif start is None:
        start = random_start(len(x), generator.nz, seed, like=x)
    if start.shape[0] != x.shape[0]:
        raise ValueError(f"{start.shape[0]} starting latents for {x.shape[0]} images")
    with torch.enable_grad():
        run = counterfactual_search(
            nn.Identity(), x, ReconstructionTarget(x, tol), space="z",
            g=KnownLatents(generator, start.detach().to(x)), lr=lr, max_steps=max_steps, bounds=(0.0, 1.0),
            check_every=check_every, progress=progress,
        )
    with torch.no_grad():
        mse = (run.x - x).square().flatten(1).mean(dim=1)
    return InversionResult(z=run.z, x=run.x, mse=mse, steps=run.steps, success=run.success,
                           seconds=run.seconds)


class InvertedGAN(nn.Module):
    """A GAN generator as a :class:`~diffcf.generative.Generator`: ``decode(z) = g(z)`` and
    ``encode(x)`` = :func:`invert` (the paper's settings by default), started at ``encoder(x)``
    when an ``encoder`` is given, else where :func:`invert` starts (the generator's
    ``default_start``, or a seeded random ``z``). Generator and encoder are put in eval mode; the
    random start depends on the batch (row ``i`` of a batch gets the ``i``-th draw).
    Pass it as ``g`` to :func:`~diffcf.search.counterfactual_search`."""

    def __init__(self, generator: nn.Module, encoder: nn.Module | None = None, lr: float = PAPER_LR,
                 max_steps: int = PAPER_MAX_STEPS, tol: float = PAPER_TOL, check_every: int = 10,
                 seed: int = 0):
        super().__init__()
        if encoder is not None and hasattr(encoder, "nz"):
            check_latent_size(encoder, generator)
        self.generator, self.encoder = generator, encoder
        self.settings = {"lr": lr, "max_steps": max_steps, "tol": tol, "check_every": check_every,
                         "seed": seed}
        self.eval()

    @property
    def nz(self) -> int:
        return self.generator.nz

    def invert(self, x: Tensor, progress: bool = False) -> InversionResult:
        """The full inversion result (latents, reconstructions, MSE, steps, success, seconds)."""
        start = None
        if self.encoder is not None:
            with torch.no_grad():
                start = self.encoder(x)
        return invert(self.generator, x, start=start, progress=progress, **self.settings)

    def encode(self, x: Tensor) -> Tensor:
        """``g⁻¹(x)``: the inverted latents ``(B, nz)``."""
        return self.invert(x).z

    def decode(self, z: Tensor) -> Tensor:
        """``g(z)``."""
        return self.generator.decode(z)
