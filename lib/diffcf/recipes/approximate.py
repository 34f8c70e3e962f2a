"""Recipes of the approximately diffeomorphic generators on MNIST (notebook 07, §II, Theorem 2, Fig. 9):
the conv VAE, the dcGAN and a learned encoder that starts the GAN's inversion.

- ``mnist_vae``: :class:`~diffcf.models.vae.ConvVAE` (10-d latent, Bernoulli likelihood), trained on
  the negative ELBO (``beta`` weighs the KL term; 1 is the ELBO) with :func:`~diffcf.training.fit`.
- ``mnist_gan``: :class:`~diffcf.models.gan.GAN`, generator *and* discriminator in one checkpoint,
  so that a stage resumes with the discriminator it left (the discriminator is 0.7 MB). Trained by
  :func:`~diffcf.training.fit_gan` (non-saturating loss, Adam 2e-4, β₁ = 0.5: the dcGAN recipe),
  which keeps the stages of :func:`fit`: the state it saves holds both Adams. Counterfactuals use
  ``zoo.load("mnist_gan").generator``, inverted by :class:`~diffcf.inversion.InvertedGAN`.
- ``mnist_gan_encoder``: :class:`~diffcf.models.gan.GANEncoder` ``x → z`` for the shipped
  ``mnist_gan`` (loaded, sha256-verified, inside the recipe: train the GAN first; retraining the GAN
  invalidates the encoder: the manifest records the GAN's sha256, and
  loading the encoder fails once it has changed). Its loss combines the two ways to learn an inversion:
  ``MSE(g(E(x)), x)`` on real training images (what the refinement measures, on the images it
  will be given) plus ``latent_weight · ‖E(g(z)) − z‖² / nz`` on generated pairs ``(g(z), z)``,
  ``z ~ N(0, I)``, which keeps ``E`` on the prior, where the generator was trained.

Metrics (on the first ``eval_images`` test images for the inversions): the VAE's test ELBO (nats per
image, one posterior sample) with its KL term and the MSE of ``decode(encode(x))``; the GAN's MSE
after an inversion of ``eval_steps`` steps from a random start (``lr`` 0.1, the paper's) and the
share that reached MSE < 1e-3; the encoder's MSE alone, after the same refinement from its output,
and from a random start with the same budget.

**Cost** (one process, one thread, measured over 20 steps while another training job held both cores
of the 2-core CPU): one step takes about 0.16 s for the VAE at batch 128, 0.21 s for the GAN at batch
64 and 0.19 s for the encoder at batch 64 (:data:`SECONDS_PER_STEP`), so the schedules below take
about 16, 21 and 10 minutes; one inversion step for 64 images takes 0.05 s, so the GAN's evaluation
(300 steps) adds 15 s and the encoder's (two inversions) 30 s. The paper's full inversion, 3000 steps,
takes up to 2.5 minutes for 64 images.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from diffcf import zoo
from diffcf.data.mnist import load_dataset
from diffcf.inversion import invert
from diffcf.models.gan import GAN, GANEncoder
from diffcf.models.vae import ConvVAE
from diffcf.recipes.common import image_batches, stream_seed
from diffcf.training import Stage, fit, fit_gan, per_rank, rank

SECONDS_PER_STEP = {"mnist_vae": 0.16, "mnist_gan": 0.21, "mnist_gan_encoder": 0.19}  # see the docstring


def _images(x: Tensor, batch_size: int, seed: int, device: torch.device):
    """Endless batches ``(x,)`` of training images (labels unused)."""
    for xb, _ in image_batches(x, torch.zeros(len(x), dtype=torch.long), batch_size, seed, device):
        yield (xb,)


def _mean(t: Tensor, digits: int = 5) -> float:
    return round(t.float().mean().item(), digits)


def train_mnist_vae(vae: nn.Module, device: torch.device, stage: Stage, dataset: str, steps: int,
                    batch_size: int, lr: float, beta: float, seed: int) -> dict[str, float]:
    x, _ = load_dataset(dataset, "train")
    fit(vae, _images(x, per_rank(batch_size), stream_seed(seed, stage), device),
        lambda m, xb: m.loss(xb, beta), steps=steps, lr=lr, desc=f"{dataset} VAE", stage=stage)
    if rank() != 0:
        return {}
    x_test, _ = load_dataset(dataset, "test")
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


def train_mnist_gan(gan: nn.Module, device: torch.device, stage: Stage, dataset: str, steps: int,
                    batch_size: int, lr: float, seed: int, eval_images: int, eval_steps: int
                    ) -> dict[str, float]:
    x, _ = load_dataset(dataset, "train")
    fit_gan(gan, _images(x, per_rank(batch_size), stream_seed(seed, stage), device), steps, lr=lr,
            seed=seed, desc=f"{dataset} GAN", stage=stage)
    if rank() != 0:
        return {}
    x_test = load_dataset(dataset, "test")[0][:eval_images].to(device)
    run = invert(gan.generator.eval(), x_test, max_steps=eval_steps, seed=seed)
    return {"test_inversion_mse": _mean(run.mse), "test_inversion_success": _mean(run.success, 4),
            "test_inversion_mean_steps": round(run.steps.float().mean().item(), 1)}


def train_mnist_gan_encoder(encoder: nn.Module, device: torch.device, stage: Stage, dataset: str, gan: str,
                            steps: int, batch_size: int, lr: float, latent_weight: float, seed: int,
                            eval_images: int, eval_steps: int) -> dict[str, float]:
    g = zoo.frozen(zoo.load(gan, device)).generator
    if g.nz != encoder.nz:
        raise ValueError(f"the encoder gives {encoder.nz}-d latents, {gan!r} takes {g.nz}: "
                         f"build the encoder with nz={g.nz}")
    x, _ = load_dataset(dataset, "train")
    gen = torch.Generator().manual_seed(stream_seed(seed, stage) + 1)

    def batches():
        for (xb,) in _images(x, per_rank(batch_size), stream_seed(seed, stage), device):
            yield xb, torch.randn(len(xb), g.nz, generator=gen).to(device)

    def loss(e: nn.Module, xb: Tensor, z: Tensor) -> Tensor:
        with torch.no_grad():
            x_fake = g(z)
        return (nn.functional.mse_loss(g(e(xb)), xb)
                + latent_weight * nn.functional.mse_loss(e(x_fake), z))

    fit(encoder, batches(), loss, steps=steps, lr=lr, desc=f"{dataset} GAN encoder", stage=stage)
    if rank() != 0:
        return {}
    x_test = load_dataset(dataset, "test")[0][:eval_images].to(device)
    with torch.no_grad():
        start = encoder(x_test)
        encoded = (g(start).clamp(0, 1) - x_test).square().flatten(1).mean(1)
    refined = invert(g, x_test, start=start, max_steps=eval_steps)
    random = invert(g, x_test, max_steps=eval_steps, seed=seed)
    return {"test_encoder_mse": _mean(encoded), "test_refined_mse": _mean(refined.mse),
            "test_refined_success": _mean(refined.success, 4),
            "test_refined_mean_steps": round(refined.steps.float().mean().item(), 1),
            "test_random_start_mse": _mean(random.mse)}


zoo.register(zoo.ModelSpec(
    name="mnist_vae",
    build=ConvVAE,
    params={"latent": 10, "channels": 32, "hidden": 256, "likelihood": "bernoulli"},
    train=train_mnist_vae,
    train_params={"dataset": "mnist", "steps": 6000, "batch_size": 128, "lr": 1e-3, "beta": 1.0,
                  "seed": 11},
    description="conv VAE, 10-d latent (the paper's code), Bernoulli likelihood, encode = posterior mean: "
                "an approximately diffeomorphic generator (notebook 07)",
))
zoo.register(zoo.ModelSpec(
    name="mnist_gan",
    build=GAN,
    params={"nz": 100, "ngf": 32, "ndf": 32},
    train=train_mnist_gan,
    train_params={"dataset": "mnist", "steps": 6000, "batch_size": 64, "lr": 2e-4, "seed": 12,
                  "eval_images": 64, "eval_steps": 300},
    description="dcGAN of the paper's code (nz 100, ngf 32, tanh mapped to [0, 1]), generator and "
                "discriminator; g⁻¹ by inversion (notebook 07)",
))
zoo.register(zoo.ModelSpec(
    name="mnist_gan_encoder",
    build=GANEncoder,
    params={"nz": 100, "channels": 32},
    train=train_mnist_gan_encoder,
    train_params={"dataset": "mnist", "gan": "mnist_gan", "steps": 3000, "batch_size": 64, "lr": 1e-3,
                  "latent_weight": 0.05, "seed": 13, "eval_images": 64, "eval_steps": 300},
    description="learned inversion x → z of mnist_gan, the start of its refinement (notebook 07)",
    needs=("mnist_gan",),
))
