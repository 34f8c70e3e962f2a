"""The approximately diffeomorphic generators (notebook 07): the conv VAE, the dcGAN, the GAN inversion
(batched, per-image stopping, frozen when done), the learned-encoder start, and their recipes."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from conftest import check_gan_stage_resumes, tiny_zoo
from diffcf import stages, zoo
from diffcf.generative import check_generator, reconstruction_error
from diffcf.inversion import InvertedGAN, KnownLatents, invert, random_start
from diffcf.models.classifiers import SmallCNN
from diffcf.models.gan import GAN, DCGANDiscriminator, DCGANGenerator, GANEncoder
from diffcf.models.vae import ConvVAE
from diffcf.recipes import approximate
from diffcf.search import ClassTarget, counterfactual_search

APPROXIMATE_MODELS = ["mnist_vae", "mnist_gan", "mnist_gan_encoder"]


def tiny_generator(dtype=torch.float64, seed: int = 0) -> DCGANGenerator:
    """A random dcGAN generator with 8-d latents whose images span [0, 1], as a trained one's do: at
    initialisation (batch-norm variance 1) they are all ≈ 0.5, so the running variances are set to
    1/64, which amplifies each layer eightfold."""
    torch.manual_seed(seed)
    g = DCGANGenerator(nz=8, ngf=4)
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.fill_(1 / 64)
    return g.to(dtype).eval()


def known_images(g: DCGANGenerator, n: int, seed: int = 1, offset: float = 0.5):
    """Images ``x = g(z*)`` of known latents and starts ``z* + offset · ε`` near them."""
    gen = torch.Generator().manual_seed(seed)
    z_star = torch.randn(n, g.nz, generator=gen, dtype=torch.float64).to(next(g.parameters()).dtype)
    with torch.no_grad():
        x = g(z_star)
    start = z_star + offset * torch.randn(z_star.shape, generator=gen).to(z_star)
    return x, z_star, start


# ---- the VAE --------------------------------------------------------------------------------------

def test_vae_shapes_range_and_round_trip():
    vae = ConvVAE().eval()
    x = torch.rand(4, 1, 28, 28)
    z = vae.encode(x)
    assert z.shape == (4, 10)
    assert torch.equal(z, vae.posterior(x)[0])  # encode = the posterior mean
    x_rec = vae.decode(z)
    assert x_rec.shape == x.shape and x_rec.min() >= 0 and x_rec.max() <= 1
    assert reconstruction_error(vae, x).shape == (4,)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 1, 28, 28\)"):
        vae.encode(torch.rand(4, 28, 28))
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 10\)"):
        vae.decode(torch.randn(4, 9))
    with pytest.raises(ValueError, match="likelihood must be one of"):
        ConvVAE(likelihood="poisson")


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_loss_terms_match_torch_distributions(likelihood):
    torch.manual_seed(0)
    vae = ConvVAE(latent=3, channels=4, hidden=8, size=8, likelihood=likelihood, sigma=0.2).double()
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    nll, kl = vae.loss_terms(x, generator=torch.Generator().manual_seed(3))
    mean, log_var = vae.posterior(x)
    q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    prior = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    assert torch.allclose(kl, torch.distributions.kl_divergence(q, prior).sum(1))
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    logits = vae.logits(mean + (0.5 * log_var).exp() * eps)
    if likelihood == "bernoulli":
        p_x = torch.distributions.Bernoulli(logits=logits, validate_args=False)  # grey x: x log p + …
        log_p = p_x.log_prob(x)
    else:
        log_p = torch.distributions.Normal(torch.sigmoid(logits), 0.2).log_prob(x)
    assert torch.allclose(nll, -log_p.flatten(1).sum(1))
    torch.manual_seed(5)
    loss = vae.loss(x, beta=0.5)
    torch.manual_seed(5)
    nll2, kl2 = vae.loss_terms(x)
    assert torch.allclose(loss, (nll2 + 0.5 * kl2).mean())


# ---- the dcGAN ------------------------------------------------------------------------------------

def test_gan_shapes_and_pixel_range():
    gan = GAN().eval()
    z = 5 * torch.randn(6, 100)
    x = gan.generator.decode(z)
    assert x.shape == (6, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    # the tanh output t is mapped to (t + 1) / 2, the discriminator maps x back to 2x − 1
    assert torch.allclose(x, (gan.generator.net(z) + 1) / 2)
    assert torch.allclose(gan.discriminator(x), gan.discriminator.net(2 * x - 1).flatten())
    assert gan.discriminator(x).shape == (6,)
    assert GANEncoder(nz=100)(x).shape == (6, 100)
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 100\)"):
        gan.generator(torch.randn(2, 100, 1, 1))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 1, 28, 28\)"):
        DCGANDiscriminator()(torch.rand(2, 3, 28, 28))


def test_inverted_gan_is_a_generator():
    g = tiny_generator(torch.float32)
    for wrapped in (InvertedGAN(g), InvertedGAN(g, encoder=GANEncoder(nz=8, channels=4))):
        assert check_generator(wrapped) is wrapped
        assert not wrapped.training and not g.training
    assert check_generator(g) is g  # the bare generator too: encode is the paper's inversion
    with pytest.raises(ValueError, match="encoder gives 100-d latents, the generator takes 8"):
        InvertedGAN(g, encoder=GANEncoder(nz=100, channels=4))


# ---- the inversion --------------------------------------------------------------------------------

def test_inversion_from_a_nearby_start_reaches_the_tolerance_and_stops():
    g = tiny_generator()
    x, z_star, start = known_images(g, 6)
    with torch.no_grad():
        first = (g(start) - x).square().flatten(1).mean(1)
    assert (first > 1e-3).all(), "the starts must not be inverted already"
    run = invert(g, x, start=start, max_steps=400)
    assert run.success.all() and (run.steps > 0).all() and (run.steps < 400).all()
    assert (run.mse < 1e-3).all()
    assert torch.allclose(run.x, g(run.z).clamp(0, 1))
    assert torch.allclose(run.mse, (run.x - x).square().flatten(1).mean(1))
    assert run.z.shape == (6, 8) and run.seconds.shape == (6,)


@pytest.mark.parametrize("check_every", [1, 1000])  # 1000: only the masked Adam update freezes
def test_a_finished_image_does_not_move(check_every):
    g = tiny_generator()
    x, _, start = known_images(g, 8, seed=2)
    full = invert(g, x, start=start, max_steps=300, check_every=check_every)
    assert full.success.all()
    steps = full.steps
    assert steps.min() < steps.max(), "need images that finish at different steps"
    for i in (int(steps.argmin()), int(steps.argmax())):
        k = int(steps[i])
        # stopped exactly at its step k: the same z after k steps as in a run of only k steps
        short = invert(g, x, start=start, max_steps=k, check_every=check_every)
        assert torch.equal(full.z[i], short.z[i])
        if k > 1:  # and one step earlier it was not done
            assert not bool(invert(g, x[i:i + 1], start=start[i:i + 1], max_steps=k - 1).success[0])


def test_batched_inversion_equals_one_image_at_a_time():
    g = tiny_generator()
    x, _, start = known_images(g, 5, seed=3, offset=0.8)
    batch = invert(g, x, start=start, max_steps=60)
    assert 0 < int(batch.success.sum()), "need some successes"
    for i in range(len(x)):
        one = invert(g, x[i:i + 1], start=start[i:i + 1], max_steps=60)
        assert bool(one.success[0]) == bool(batch.success[i])
        assert int(one.steps[0]) == int(batch.steps[i])
        assert torch.allclose(one.z[0], batch.z[i], atol=1e-10)


def test_random_start_is_seeded_and_the_encoder_start_is_used():
    g = tiny_generator()
    x, z_star, _ = known_images(g, 3, seed=4)
    a = InvertedGAN(g, max_steps=5, seed=7).invert(x)
    assert torch.equal(a.z, InvertedGAN(g, max_steps=5, seed=7).invert(x).z)
    assert not torch.equal(a.z, InvertedGAN(g, max_steps=5, seed=8).invert(x).z)
    # the start itself: one step of length ~lr from random_start
    assert torch.allclose(invert(g, x, max_steps=1, lr=1e-9, seed=7).z, random_start(3, 8, seed=7, like=x),
                          atol=1e-8)

    class Exact(nn.Module):  # an encoder that knows the answer: no refinement is needed
        nz = 8

        def forward(self, x):
            return z_star

    run = InvertedGAN(g, encoder=Exact()).invert(x)
    assert run.success.all() and (run.steps == 0).all() and torch.equal(run.z, z_star)


def test_per_image_tolerance_stops_each_image_at_its_own_error():
    g = tiny_generator()
    x, _, start = known_images(g, 4, seed=5)
    loose = invert(g, x, start=start, max_steps=300)
    # ask each image to match another run's error: a tighter tol for half of them takes longer
    tol = torch.where(torch.arange(4) % 2 == 0, torch.full((4,), 1e-3), torch.full((4,), 1e-4)).double()
    run = invert(g, x, start=start, max_steps=300, tol=tol)
    assert (run.mse < tol)[run.success].all()
    assert torch.equal(run.steps[0::2], loose.steps[0::2])
    assert (run.steps[1::2] > loose.steps[1::2]).all()
    with pytest.raises(ValueError, match="per-image tol needs shape"):
        invert(g, x, tol=torch.full((3,), 1e-3))
    with pytest.raises(ValueError, match="must be positive"):
        invert(g, x, tol=torch.zeros(4))


def test_known_latents_start_a_search_where_an_inversion_ended():
    g = tiny_generator()
    x, z_star, _ = known_images(g, 3, seed=6)
    known = KnownLatents(g, z_star)
    assert torch.equal(known.encode(x), z_star) and torch.equal(known.decode(z_star), g.decode(z_star))
    with pytest.raises(ValueError, match="batch of 3 images, got 2"):
        known.encode(x[:2])


def test_inversion_refuses_bad_inputs():
    g = tiny_generator()
    x, _, start = known_images(g, 2)
    with pytest.raises(ValueError, match="training mode"):
        invert(tiny_generator().train(), x)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        invert(g, 255 * x)
    with pytest.raises(ValueError, match="3 starting latents for 2 images"):
        invert(g, x, start=torch.cat([start, start[:1]]))
    with pytest.raises(ValueError, match="generator makes images of shape"):
        invert(g, torch.rand(2, 1, 14, 14, dtype=torch.float64))


def test_counterfactual_search_in_the_latent_space_of_an_inverted_gan():
    g = InvertedGAN(tiny_generator(torch.float32), max_steps=20)
    f = zoo.frozen(SmallCNN(channels=4, hidden=8, n_classes=10))
    with torch.no_grad():
        x = g.decode(torch.randn(3, 8, generator=torch.Generator().manual_seed(0)))
        t = (f(x).argmax(1) + 1) % 10
    run = counterfactual_search(f, x, ClassTarget(t, 0.6), space="z", g=g, lr=5e-2, max_steps=5,
                                bounds=(0.0, 1.0))
    assert run.z.shape == (3, 8) and run.x.shape == x.shape
    assert run.steps.shape == (3,) and (run.steps <= 5).all()
    assert torch.allclose(run.x, g.decode(run.z).clamp(0, 1))
    assert reconstruction_error(g, x).shape == (3,)  # encode runs under no_grad too


# ---- the recipes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", APPROXIMATE_MODELS)
def test_registered_models_are_small(name):
    spec = zoo.REGISTRY[name]
    model = spec.build(**spec.params)
    assert sum(t.numel() * t.element_size() for t in model.state_dict().values()) <= 40 * 2**20


TINY = {
    "mnist_vae": {"latent": 4, "channels": 4, "hidden": 16, "likelihood": "bernoulli"},
    "mnist_gan": {"nz": 8, "ngf": 4, "ndf": 4},
    "mnist_gan_encoder": {"nz": 8, "channels": 4},
}
FAST = {"steps": 2, "batch_size": 8}
FAST_EVAL = {"eval_images": 4, "eval_steps": 3}
EXPECTED_METRICS = {
    "mnist_vae": {"test_elbo", "test_kl", "test_recon_mse"},
    "mnist_gan": {"test_inversion_mse", "test_inversion_success", "test_inversion_mean_steps"},
    "mnist_gan_encoder": {"test_encoder_mse", "test_refined_mse", "test_refined_success",
                          "test_refined_mean_steps", "test_random_start_mse"},
}


@pytest.fixture
def tiny_recipes(tmp_path, monkeypatch):
    """Fake MNIST (32 images per split), tiny models, checkpoints and build/ in tmp_path."""
    def load(name, split="train"):
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        return torch.rand(32, 1, 28, 28, generator=gen), torch.randint(10, (32,), generator=gen)

    monkeypatch.setattr(approximate, "load_dataset", load)
    tiny_zoo(monkeypatch, tmp_path, TINY,
             {name: {**FAST, **({} if name == "mnist_vae" else FAST_EVAL)} for name in TINY})


@pytest.mark.parametrize("name", APPROXIMATE_MODELS)
def test_recipes_train_on_fake_mnist(name, tiny_recipes, monkeypatch):
    if name == "mnist_gan_encoder":
        with pytest.raises(zoo.CheckpointError, match="no checkpoint for 'mnist_gan'"):
            stages.train(name, "cpu")
        stages.train_and_save("mnist_gan", "cpu")  # the shipped GAN it depends on
        stages.train_and_save(name, "cpu")
        recorded = zoo.read_manifest()[name]["trained_with"]
        assert recorded == {"mnist_gan": zoo.read_manifest()["mnist_gan"]["sha256"]}
        zoo.load(name)
        gan = zoo.REGISTRY["mnist_gan"]  # a different GAN: the encoder is stale
        monkeypatch.setitem(zoo.REGISTRY, "mnist_gan", dataclasses.replace(
            gan, train_params={**gan.train_params, "seed": gan.train_params["seed"] + 1}))
        stages.train_and_save("mnist_gan", "cpu")
        with pytest.raises(zoo.CheckpointError, match="was trained for the 'mnist_gan'"):
            zoo.load(name)
    model, metrics, stage = stages.train(name, "cpu")
    assert stage.step == 2
    assert set(metrics) == EXPECTED_METRICS[name]
    assert all(math.isfinite(v) for v in metrics.values())
    if name == "mnist_vae":
        assert metrics["test_elbo"] < 0 and metrics["test_kl"] >= 0
    if name == "mnist_gan_encoder":
        assert metrics["test_refined_mse"] <= metrics["test_encoder_mse"] + 1e-6
        assert 0 <= metrics["test_refined_mean_steps"] <= 3


def test_gan_stage_saves_and_resumes_both_optimisers(tiny_recipes):
    check_gan_stage_resumes("mnist_gan", GAN)


RANK_SCRIPT = """
import sys, torch
from diffcf.models.gan import GAN
from diffcf.training import Stage, fit_gan, init_distributed
rank, world = init_distributed(torch.device("cpu"))
torch.manual_seed(100 + rank)  # different starting weights on each rank: fit_gan must align them
gan = GAN(nz=8, ngf=4, ndf=4)
gen = torch.Generator().manual_seed(rank)  # different batches on each rank
def batches():
    while True:
        yield (torch.rand(8, 1, 28, 28, generator=gen),)
fit_gan(gan, batches(), steps=3, progress=False, stage=Stage())
torch.save(gan.state_dict(), f"{sys.argv[1]}/rank{rank}.pt")
"""


def test_gan_training_under_torchrun_keeps_the_ranks_identical(tmp_path):
    """Two gloo processes: parameters *and* batch-norm statistics agree after fit_gan."""
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(script), str(tmp_path)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    assert not torch.equal(w0["generator.net.2.running_mean"], torch.zeros(16))  # statistics were trained
