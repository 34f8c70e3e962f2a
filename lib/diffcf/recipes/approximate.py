"""Recipes of the approximately diffeomorphic generators (notebook 07, §II, Theorem 2, Fig. 9, 10):
conv VAEs, dcGANs, a style-based GAN and learned encoders that start a GAN's inversion, on MNIST and
on the 5-bit ``3×32×32`` CelebA faces every CelebA model sees
(:func:`diffcf.recipes.celeba.load_quantized`). One recipe per kind of model, for both datasets
(``dataset``: ``"mnist"`` or ``"celeba"``; ``hflip`` mirrors training faces at random).

MNIST (the paper's code's sizes):

- ``mnist_vae``: :class:`~diffcf.models.vae.ConvVAE` (10-d latent, Bernoulli likelihood), trained on
  the negative ELBO (``beta`` weighs the KL term; 1 is the ELBO) with :func:`~diffcf.training.fit`.
- ``mnist_gan``: :class:`~diffcf.models.gan.GAN`, generator *and* discriminator in one checkpoint,
  so that a stage resumes with the discriminator it left (the discriminator is 0.7 MB). Trained by
  :func:`~diffcf.training.fit_gan` (non-saturating loss, Adam 2e-4, β₁ = 0.5: the dcGAN recipe),
  which keeps the stages of :func:`fit`: the state it saves holds both Adams. Counterfactuals use
  ``zoo.load("mnist_gan").generator``, inverted by :class:`~diffcf.inversion.InvertedGAN`. 30 000
  steps, five times the 6000 an earlier version shipped: notebook 07 (section 4) measures what the
  shorter training cost its counterfactuals.
- ``mnist_gan_encoder``: :class:`~diffcf.models.gan.GANEncoder` ``x → z`` for the shipped
  ``mnist_gan`` (loaded, sha256-verified, inside the recipe: train the GAN first; retraining the GAN
  invalidates the encoder: the manifest records the GAN's sha256, and loading the encoder fails once
  it has changed). Its loss combines the two ways to learn an inversion: ``MSE(g(E(x)), x)`` on real
  training images (what the refinement measures, on the images it will be given) plus
  ``latent_weight · ‖E(g(z)) − z‖² / nz`` on generated pairs ``(g(z), z)``, ``z`` drawn as in the
  GAN's training (``sample_latent``), which keeps ``E`` on the prior, where the generator was trained.

CelebA (issue 20; the paper's progressive GAN and 1024×1024 StyleGAN + HyperStyle need pre-trained
weights that cannot be downloaded here, so the same mechanisms are built at CPU scale):

- ``celeba_vae``: ConvVAE, 128-d latent, Gaussian likelihood. **KL weight.** The paper's code
  (``VAE_CelebA.loss_function``) trains its CelebA VAE on ``F.mse_loss(2x̂ − 1, 2x − 1) + 2.5e-4 ·
  KL``, both averaged over the batch: the squared error *averaged* over the ``D`` pixels of images
  scaled to ``[−1, 1]``, i.e. ``(4/D)·SE + 2.5e-4·KL`` with ``SE = ‖x̂ − x‖²`` on ``[0, 1]``. The
  Gaussian likelihood's loss is ``SE/(2σ²) + KL`` plus a constant; the two are proportional when
  ``2σ² = 2.5e-4 · D/4``, so ``sigma = √(2.5e-4 · D/8)`` = 0.31 at ``D = 3·32·32``
  (:func:`vae_sigma`): the paper's objective at this image size, ``SE + 0.19·KL`` up to the factor
  ``2σ²`` (at the paper's 64×64 it is ``SE + 0.77·KL``), and the ELBO of a proper density, so
  ``test_elbo`` is one. (Read as ``SE + 2.5e-4·KL`` instead, it would be ``σ = 0.011``: almost a
  plain autoencoder.)
- ``celeba_gan``: the dcGAN at ``3×32×32`` (``ngf = ndf = 48``), trained like ``mnist_gan``.
- ``celeba_stylegan``: :class:`~diffcf.models.stylegan.StyleGAN`, a style-based generator with an
  8-layer ``W+`` (``nz = 8·128 = 1024``, flattened) and the same discriminator as ``celeba_gan``,
  trained the same way (``fit_gan`` draws ``z``; the mapping gives ``w``) except for the
  generator's learning rate: StyleGAN's 2e-3 (mapping network ×0.01), the discriminator keeping the
  dcGAN's 2e-4. A generator with equalised learning rates stores its weights at unit scale, so at
  the dcGAN's 2e-4 its steps are ~√fan_in times smaller, relative to its weights, than a plain
  layer's: trained so, the discriminator won within 300 steps (its loss 0.001, the generator's 9),
  where 2e-3 kept both losses moving and drew faces after the same 300 steps (measured on this CPU).
  Its inversion starts at the mean ``w`` (``default_start``).
- ``celeba_stylegan_encoder``: :class:`~diffcf.models.stylegan.StyleEncoder` ``x → W+`` of the
  shipped ``celeba_stylegan``, trained as ``mnist_gan_encoder`` is, the generated pairs being
  ``(g(w⁺), w⁺)`` with ``w⁺ = wplus(mapping(z))``. It predicts an offset from the GAN's ``w_avg``
  (copied into it here), so it begins where the plain inversion does.

Metrics (on the first ``eval_images`` test images for the inversions): the VAE's test ELBO (nats per
image, one posterior sample) with its KL term and the MSE of ``decode(encode(x))``; the GAN's MSE
after an inversion of ``eval_steps`` steps (``lr`` 0.1, the paper's; from a random start, or from
the style-based GAN's mean ``w``) and the share that reached MSE < 1e-3; the encoder's MSE alone,
after the same refinement from its output, and from the plain start with the same budget.

**Cost** (one process, one thread, measured while another training job held both cores of the 2-core
CPU): MNIST, over 20 steps: 0.16 s for the VAE at batch 128, 0.21 s for the GAN and 0.19 s for the
encoder at batch 64, so the schedules below take about 16, 105 and 10 minutes there (alone on the
two cores: the GAN's 30 000 steps took 21 minutes, the encoder's 3000 two); one inversion step for
64 images takes 0.05 s (the paper's full inversion, 3000 steps, up to 2.5 minutes for 64 images).
CelebA, the mean of two runs of 6 and 10 steps on fake faces: 0.29 s for the VAE at batch 128,
0.66 s for the dcGAN, 0.98 s for the style-based GAN and 0.80 s for its encoder at batch 64: about 39,
44, 52 and 40 minutes; one inversion step for 64 faces takes 0.14 s (dcGAN) and 0.39 s (style-based
GAN), so the evaluations (300 steps) add about 45 s, 2 minutes and, for the encoder's two
inversions, 4 minutes. The style-based generator costs several times the dcGAN's per image at the
same width (bilinear upsampling, modulation, two convolutions per resolution), hence its narrow
``channels`` (128, 64, 32, 16 at 4, 8, 16, 32 pixels).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from diffcf import zoo
from diffcf.data.mnist import load_dataset
from diffcf.inversion import invert
from diffcf.models.gan import GAN, GANEncoder
from diffcf.models.stylegan import StyleEncoder, StyleGAN
from diffcf.models.vae import ConvVAE
from diffcf.recipes.celeba import N_BITS, SIZE, load_quantized
from diffcf.recipes.common import image_batches, stream_seed
from diffcf.training import Stage, fit, fit_gan, per_rank, rank

PAPER_KL_WEIGHT = 2.5e-4  # the paper's CelebA VAE: mean squared error on [−1, 1] + 2.5e-4 · KL


def vae_sigma(size: int = SIZE, channels: int = 3) -> float:
    """The Gaussian likelihood's ``σ`` whose ELBO is the paper's VAE loss at ``channels × size ×
    size`` images: ``√(2.5e-4 · D / 8)`` with ``D`` pixels (see the module docstring)."""
    return math.sqrt(PAPER_KL_WEIGHT * channels * size * size / 8)


def load_images(dataset: str, split: str, size: int) -> Tensor:
    """The images of ``split`` a generator of ``dataset`` models: MNIST's, or the 5-bit CelebA faces
    at ``size``."""
    if dataset == "celeba":
        return load_quantized(split, size, N_BITS)[0]
    return load_dataset(dataset, split)[0]


def _images(x: Tensor, batch_size: int, seed: int, device: torch.device, hflip: bool):
    """Endless batches ``(x,)`` of training images (labels unused), mirrored at random with ``hflip``."""
    for xb, _ in image_batches(x, torch.zeros(len(x), dtype=torch.long), batch_size, seed, device,
                               hflip=hflip):
        yield (xb,)


def _mean(t: Tensor, digits: int = 5) -> float:
    return round(t.float().mean().item(), digits)


def train_vae(vae: nn.Module, device: torch.device, stage: Stage, dataset: str, steps: int,
              batch_size: int, lr: float, beta: float, seed: int, hflip: bool = False) -> dict[str, float]:
    """The β-VAE objective (``beta = 1``: the negative ELBO); test ELBO, KL and reconstruction MSE."""
    x = load_images(dataset, "train", vae.size)
    fit(vae, _images(x, per_rank(batch_size), stream_seed(seed, stage), device, hflip),
        lambda m, xb: m.loss(xb, beta), steps=steps, lr=lr, desc=f"{dataset} VAE", stage=stage)
    if rank() != 0:
        return {}
    x_test = load_images(dataset, "test", vae.size)
    gen = torch.Generator().manual_seed(seed + 1000)
    nll, kl, mse = [], [], []
    with torch.no_grad():
        for xb in x_test.split(1000):
            xb = xb.to(device)
            n, k = vae.loss_terms(xb, generator=gen)
            nll.append(n.cpu())
            kl.append(k.cpu())
            mse.append((vae(xb) - xb).square().flatten(1).mean(1).cpu())
    return {"test_elbo": -round(torch.cat(nll).add(torch.cat(kl)).mean().item(), 2),
            "test_kl": round(torch.cat(kl).mean().item(), 2),
            "test_recon_mse": _mean(torch.cat(mse))}


def train_gan(gan: nn.Module, device: torch.device, stage: Stage, dataset: str, steps: int,
              batch_size: int, lr: float, seed: int, eval_images: int, eval_steps: int,
              hflip: bool = False, lr_generator: float | None = None) -> dict[str, float]:
    """A GAN (``GAN`` or ``StyleGAN``) by :func:`~diffcf.training.fit_gan` (``lr`` the
    discriminator's, ``lr_generator`` the generator's if different); the inversion metrics of the
    module docstring."""
    size = gan.generator.size
    x = load_images(dataset, "train", size)
    fit_gan(gan, _images(x, per_rank(batch_size), stream_seed(seed, stage), device, hflip), steps, lr=lr,
            seed=seed, desc=f"{dataset} {type(gan).__name__}", stage=stage, lr_generator=lr_generator)
    if rank() != 0:
        return {}
    x_test = load_images(dataset, "test", size)[:eval_images].to(device)
    run = invert(gan.generator.eval(), x_test, max_steps=eval_steps, seed=seed)
    return {"test_inversion_mse": _mean(run.mse), "test_inversion_success": _mean(run.success, 4),
            "test_inversion_mean_steps": round(run.steps.float().mean().item(), 1)}


def train_gan_encoder(encoder: nn.Module, device: torch.device, stage: Stage, dataset: str, gan: str,
                      steps: int, batch_size: int, lr: float, latent_weight: float, seed: int,
                      eval_images: int, eval_steps: int, hflip: bool = False) -> dict[str, float]:
    """The encoder ``x → z`` that starts the inversion of the shipped GAN ``gan`` (see the module
    docstring)."""
    g = zoo.frozen(zoo.load(gan, device)).generator
    return fit_gan_encoder(encoder, g, device, stage, dataset, steps, batch_size, lr, latent_weight, seed,
                           eval_images, eval_steps, hflip)


def fit_gan_encoder(encoder: nn.Module, g: nn.Module, device: torch.device, stage: Stage, dataset: str,
                    steps: int, batch_size: int, lr: float, latent_weight: float, seed: int,
                    eval_images: int, eval_steps: int, hflip: bool = False) -> dict[str, float]:
    """:func:`train_gan_encoder` for a generator ``g`` at hand (frozen, in eval mode) instead of a
    shipped one: ``benchmarks/mnist_latent_lr.py`` gives each GAN it trains afresh its own encoder."""
    encoder.attach(g)
    x = load_images(dataset, "train", g.size)
    gen = torch.Generator().manual_seed(stream_seed(seed, stage) + 1)

    def batches():
        for (xb,) in _images(x, per_rank(batch_size), stream_seed(seed, stage), device, hflip):
            yield xb, g.sample_latent(len(xb), gen)

    def loss(e: nn.Module, xb: Tensor, z: Tensor) -> Tensor:
        with torch.no_grad():
            x_fake = g.decode(z)
        return (nn.functional.mse_loss(g.decode(e(xb)), xb)
                + latent_weight * nn.functional.mse_loss(e(x_fake), z))

    fit(encoder, batches(), loss, steps=steps, lr=lr, desc=f"{dataset} GAN encoder", stage=stage)
    if rank() != 0:
        return {}
    x_test = load_images(dataset, "test", g.size)[:eval_images].to(device)
    with torch.no_grad():
        start = encoder(x_test)
        encoded = (g.decode(start).clamp(0, 1) - x_test).square().flatten(1).mean(1)
    refined = invert(g, x_test, start=start, max_steps=eval_steps)
    plain = invert(g, x_test, max_steps=eval_steps, seed=seed)
    plain_key = "test_mean_w_start_mse" if hasattr(g, "default_start") else "test_random_start_mse"
    return {"test_encoder_mse": _mean(encoded), "test_refined_mse": _mean(refined.mse),
            "test_refined_success": _mean(refined.success, 4),
            "test_refined_mean_steps": round(refined.steps.float().mean().item(), 1),
            plain_key: _mean(plain.mse)}


zoo.register(zoo.ModelSpec(
    name="mnist_vae",
    build=ConvVAE,
    params={"latent": 10, "channels": 32, "hidden": 256, "likelihood": "bernoulli"},
    train=train_vae,
    train_params={"dataset": "mnist", "steps": 6000, "batch_size": 128, "lr": 1e-3, "beta": 1.0,
                  "seed": 11},
    description="conv VAE, 10-d latent (the paper's code), Bernoulli likelihood, encode = posterior mean: "
                "an approximately diffeomorphic generator (notebook 07)",
))
zoo.register(zoo.ModelSpec(
    name="mnist_gan",
    build=GAN,
    params={"nz": 100, "ngf": 32, "ndf": 32},
    train=train_gan,
    train_params={"dataset": "mnist", "steps": 30000, "batch_size": 64, "lr": 2e-4, "seed": 12,
                  "eval_images": 64, "eval_steps": 300},
    description="dcGAN of the paper's code (nz 100, ngf 32, tanh mapped to [0, 1]), generator and "
                "discriminator; g⁻¹ by inversion (notebook 07)",
))
zoo.register(zoo.ModelSpec(
    name="mnist_gan_encoder",
    build=GANEncoder,
    params={"nz": 100, "channels": 32},
    train=train_gan_encoder,
    train_params={"dataset": "mnist", "gan": "mnist_gan", "steps": 3000, "batch_size": 64, "lr": 1e-3,
                  "latent_weight": 0.05, "seed": 13, "eval_images": 64, "eval_steps": 300},
    description="learned inversion x → z of mnist_gan, the start of its refinement (notebook 07)",
    needs=("mnist_gan",),
))

EVAL = {"eval_images": 64, "eval_steps": 300}

zoo.register(zoo.ModelSpec(
    name="celeba_vae",
    build=ConvVAE,
    params={"latent": 128, "channels": 32, "hidden": 256, "in_channels": 3, "size": SIZE,
            "likelihood": "gaussian", "sigma": vae_sigma(SIZE)},
    train=train_vae,
    train_params={"dataset": "celeba", "steps": 8000, "batch_size": 128, "lr": 1e-3, "beta": 1.0,
                  "hflip": True, "seed": 21},
    description=f"conv VAE on 5-bit {SIZE}×{SIZE} faces, 128-d latent, Gaussian likelihood whose ELBO is "
                f"the paper's MSE + 2.5e-4·KL, encode = posterior mean (approximately diffeomorphic)",
))
zoo.register(zoo.ModelSpec(
    name="celeba_gan",
    build=GAN,
    params={"nz": 100, "ngf": 48, "ndf": 48, "in_channels": 3, "size": SIZE},
    train=train_gan,
    train_params={"dataset": "celeba", "steps": 4000, "batch_size": 64, "lr": 2e-4, "hflip": True,
                  "seed": 22, **EVAL},
    description=f"dcGAN (nz 100, ngf = ndf = 48, tanh mapped to [0, 1]) on 5-bit {SIZE}×{SIZE} faces, "
                f"generator and discriminator; g⁻¹ by inversion",
))
zoo.register(zoo.ModelSpec(
    name="celeba_stylegan",
    build=StyleGAN,
    params={"z_dim": 128, "w_dim": 128, "mapping_layers": 4, "channels": [128, 64, 32, 16], "ndf": 48,
            "in_channels": 3, "size": SIZE, "mapping_lr_mul": 0.01},
    train=train_gan,
    train_params={"dataset": "celeba", "steps": 3200, "batch_size": 64, "lr": 2e-4, "lr_generator": 2e-3,
                  "hflip": True, "seed": 23, **EVAL},
    description=f"style-based GAN (mapping 128 → w 128, modulated/demodulated convs 4 → {SIZE}, "
                f"W+ = 8 × 128 flattened) on 5-bit {SIZE}×{SIZE} faces with the dcGAN discriminator; "
                f"g⁻¹ by inversion from the mean w",
))
zoo.register(zoo.ModelSpec(
    name="celeba_stylegan_encoder",
    build=StyleEncoder,
    params={"w_dim": 128, "size": SIZE, "channels": 32, "in_channels": 3},
    train=train_gan_encoder,
    train_params={"gan": "celeba_stylegan", "dataset": "celeba", "steps": 3000, "batch_size": 64,
                  "lr": 1e-3, "latent_weight": 0.05, "hflip": True, "seed": 24, **EVAL},
    description="learned inversion x → W+ of celeba_stylegan (an offset from its mean w), the start of "
                "its refinement",
    needs=("celeba_stylegan",),
))
