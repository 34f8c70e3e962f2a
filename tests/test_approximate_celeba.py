"""The approximately diffeomorphic generators on CelebA (issue 20): the dcGAN at other image sizes, the
style-based GAN (mapping, modulated convolutions, the flat W+), its encoder, the inversion's start
in W+, and the recipes (on fake faces); the registered MNIST models keep their exact structure."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import check_gan_stage_resumes, tiny_zoo
from diffcf import stages, zoo
from diffcf.generative import check_generator
from diffcf.inversion import InvertedGAN, invert
from diffcf.models.gan import GAN, DCGANDiscriminator, DCGANGenerator, GANEncoder
from diffcf.models.stylegan import ModulatedConv, StyleEncoder, StyleGAN, StyleGenerator, style_layers
from diffcf.models.vae import ConvVAE
from diffcf.recipes import approximate
from diffcf.recipes.approximate import PAPER_KL_WEIGHT, vae_sigma
from diffcf.training import Stage, fit_gan

CELEBA_MODELS = ["celeba_vae", "celeba_gan", "celeba_stylegan", "celeba_stylegan_encoder"]

# The state_dict (keys, in order, and shapes) of the registered MNIST models, written down before the
# dcGAN was generalised to other image sizes: their checkpoints must keep loading.
MNIST_STRUCTURE = {
    "mnist_gan": {
        "generator.net.1.weight": (100, 128, 4, 4), "generator.net.2.weight": (128,),
        "generator.net.2.bias": (128,), "generator.net.2.running_mean": (128,),
        "generator.net.2.running_var": (128,), "generator.net.2.num_batches_tracked": (),
        "generator.net.4.weight": (128, 64, 3, 3), "generator.net.5.weight": (64,),
        "generator.net.5.bias": (64,), "generator.net.5.running_mean": (64,),
        "generator.net.5.running_var": (64,), "generator.net.5.num_batches_tracked": (),
        "generator.net.7.weight": (64, 32, 4, 4), "generator.net.8.weight": (32,),
        "generator.net.8.bias": (32,), "generator.net.8.running_mean": (32,),
        "generator.net.8.running_var": (32,), "generator.net.8.num_batches_tracked": (),
        "generator.net.10.weight": (32, 1, 4, 4), "discriminator.net.0.weight": (32, 1, 4, 4),
        "discriminator.net.2.weight": (64, 32, 4, 4), "discriminator.net.3.weight": (64,),
        "discriminator.net.3.bias": (64,), "discriminator.net.3.running_mean": (64,),
        "discriminator.net.3.running_var": (64,), "discriminator.net.3.num_batches_tracked": (),
        "discriminator.net.5.weight": (128, 64, 3, 3), "discriminator.net.6.weight": (128,),
        "discriminator.net.6.bias": (128,), "discriminator.net.6.running_mean": (128,),
        "discriminator.net.6.running_var": (128,), "discriminator.net.6.num_batches_tracked": (),
        "discriminator.net.8.weight": (1, 128, 4, 4),
    },
    "mnist_gan_encoder": {
        "net.0.weight": (32, 1, 4, 4), "net.0.bias": (32,), "net.2.weight": (64, 32, 4, 4),
        "net.2.bias": (64,), "net.4.weight": (128, 64, 3, 3), "net.4.bias": (128,),
        "net.7.weight": (100, 2048), "net.7.bias": (100,),
    },
    "mnist_vae": {
        "encoder.0.weight": (32, 1, 4, 4), "encoder.0.bias": (32,), "encoder.2.weight": (64, 32, 4, 4),
        "encoder.2.bias": (64,), "encoder.5.weight": (256, 3136), "encoder.5.bias": (256,),
        "encoder.7.weight": (20, 256), "encoder.7.bias": (20,), "decoder.0.weight": (256, 10),
        "decoder.0.bias": (256,), "decoder.2.weight": (3136, 256), "decoder.2.bias": (3136,),
        "decoder.5.weight": (64, 32, 4, 4), "decoder.5.bias": (32,), "decoder.7.weight": (32, 1, 4, 4),
        "decoder.7.bias": (1,),
    },
}


@pytest.mark.parametrize("name", sorted(MNIST_STRUCTURE))
def test_registered_mnist_models_keep_their_structure(name):
    spec = zoo.REGISTRY[name]
    model = spec.build(**spec.params)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == list(MNIST_STRUCTURE[name].items())


def tiny_style_generator(seed: int = 0, size: int = 32) -> StyleGenerator:
    torch.manual_seed(seed)
    channels = [8, 6, 4, 4][: int(math.log2(size)) - 1]  # one width per resolution 4, …, size
    return StyleGenerator(z_dim=6, w_dim=5, mapping_layers=2, channels=channels, size=size)


def tracked_w_avg(g: StyleGenerator) -> StyleGenerator:
    """``g`` with a non-zero ``w_avg`` (a few mapping calls in training mode), in eval mode."""
    g.train()
    for _ in range(3):
        g.mapping(torch.randn(16, g.z_dim))
    return g.eval()


# ---- the dcGAN at other sizes ---------------------------------------------------------------------

@pytest.mark.parametrize(("in_channels", "size"), [(1, 28), (3, 32), (3, 64)])
def test_dcgan_shapes_and_range_at_every_size(in_channels, size):
    gan = GAN(nz=8, ngf=4, ndf=4, in_channels=in_channels, size=size).eval()
    x = gan.decode(3 * torch.randn(5, 8))
    assert x.shape == (5, in_channels, size, size) and x.min() >= 0 and x.max() <= 1
    assert gan.discriminator(x).shape == (5,)
    assert GANEncoder(nz=8, channels=4, in_channels=in_channels, size=size)(x).shape == (5, 8)
    assert gan.prior_dim == gan.nz == 8


def test_dcgan_refuses_other_images_and_sizes():
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3, 32, 32\), got \(2, 1, 32, 32\)"):
        DCGANDiscriminator(in_channels=3, size=32)(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3, 64, 64\)"):
        GANEncoder(in_channels=3, size=64)(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"side \(28, 32, 64\), got size=48"):
        DCGANGenerator(size=48)


# ---- the style-based generator --------------------------------------------------------------------

def test_stylegan_shapes_range_and_latents():
    gan = StyleGAN(z_dim=6, w_dim=5, mapping_layers=2, channels=[8, 6, 4, 4], ndf=4).eval()
    g = gan.generator
    assert g.n_ws == style_layers(32) == 8 and g.nz == gan.nz == 8 * 5 and gan.prior_dim == 6
    x = gan(torch.randn(4, 6))
    assert x.shape == (4, 3, 32, 32) and x.min() >= 0 and x.max() <= 1
    assert gan.discriminator(x).shape == (4,)
    assert gan.decode(torch.randn(4, 40)).shape == (4, 3, 32, 32)
    assert check_generator(g) is g
    assert tiny_style_generator(size=16)(torch.randn(2, 6)).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 6\)"):
        g(torch.randn(4, 40))
    with pytest.raises(ValueError, match=r"\(n_ws · w_dim, flattened\) must have shape \(batch, 40\)"):
        g.decode(torch.randn(4, 8, 5))
    with pytest.raises(ValueError, match=r"w must have shape \(batch, 5\)"):
        g.wplus(torch.randn(4, 6))
    with pytest.raises(ValueError, match="one width per resolution 4, 8, …, 32"):
        StyleGenerator(channels=[8, 8, 8])
    with pytest.raises(ValueError, match="side 8, 16, 32, …, got size=24"):
        StyleGenerator(size=24)


def test_wplus_of_w_decodes_as_the_sample_and_every_layer_reads_its_own_w():
    g = tiny_style_generator().eval()
    z = torch.randn(3, 6)
    w = g.mapping(z)
    wplus = g.wplus(w).detach()
    assert wplus.shape == (3, g.nz)
    assert torch.equal(wplus.view(3, g.n_ws, g.w_dim), w[:, None].expand(3, g.n_ws, g.w_dim))
    assert torch.equal(g.decode(wplus), g(z))
    # W+ is more than W: the image depends on each of the n_ws styles
    wplus.requires_grad_(True)
    g.decode(wplus).sum().backward()
    per_layer = wplus.grad.view(3, g.n_ws, g.w_dim).abs().sum(dim=(0, 2))
    assert (per_layer > 0).all()


def test_sample_latent_draws_what_training_decodes():
    g = tiny_style_generator().eval()
    lat = g.sample_latent(4, torch.Generator().manual_seed(5))
    z = torch.randn(4, g.z_dim, generator=torch.Generator().manual_seed(5))
    assert lat.shape == (4, g.nz) and torch.equal(g.decode(lat), g(z))
    dc = DCGANGenerator(nz=7, ngf=4).eval()
    assert torch.equal(dc.sample_latent(3, torch.Generator().manual_seed(5)),
                       torch.randn(3, 7, generator=torch.Generator().manual_seed(5)))


def test_w_avg_tracks_the_mean_w_in_training_only():
    g = tiny_style_generator()
    assert torch.equal(g.w_avg, torch.zeros(5))
    z = torch.randn(64, 6)
    g.eval().mapping(z)
    assert torch.equal(g.w_avg, torch.zeros(5))  # eval: unchanged
    w = g.train().mapping(z)
    assert torch.allclose(g.w_avg, (1 - 0.995) * w.mean(0))
    assert "w_avg" in g.state_dict()  # saved with the checkpoint


def test_demodulation_equals_the_per_image_weights_of_the_paper():
    torch.manual_seed(0)
    conv = ModulatedConv(5, 4, 3, w_dim=7).double()
    x, w = torch.randn(3, 5, 6, 6, dtype=torch.float64), torch.randn(3, 7, dtype=torch.float64)
    s = conv.affine(w)
    weight = conv.weight * conv.scale * s[:, None, :, None, None]  # (B, out, in, k, k): W_oik s_i
    weight = weight / weight.square().sum(dim=(2, 3, 4), keepdim=True).add(1e-8).sqrt()
    brute = torch.cat([nn.functional.conv2d(x[b : b + 1], weight[b], padding=1) for b in range(3)])
    assert torch.allclose(conv(x, w), brute + conv.bias[:, None, None])


def test_demodulated_outputs_have_unit_variance_whatever_the_style():
    torch.manual_seed(1)
    conv = ModulatedConv(64, 16, 3, w_dim=8)
    x = torch.randn(4, 64, 40, 40)
    for scale in (0.1, 1.0, 10.0):
        with torch.no_grad():
            out = conv(x, scale * torch.randn(4, 8))[:, :, 1:-1, 1:-1]  # away from the zero padding
        assert 0.9 < float(out.std(dim=(0, 2, 3)).min()) and float(out.std(dim=(0, 2, 3)).max()) < 1.1
    rgb = ModulatedConv(64, 3, 1, w_dim=8, demodulate=False)
    with torch.no_grad():  # without demodulation the output scales with the style
        assert rgb(x, 10 * torch.ones(4, 8)).std() > 5 * rgb(x, torch.zeros(4, 8)).std()


# ---- the encoder and the inversion's start --------------------------------------------------------

def test_untrained_encoder_returns_the_mean_w_in_every_layer():
    g = tracked_w_avg(tiny_style_generator())
    assert g.w_avg.abs().sum() > 0
    e = StyleEncoder(w_dim=5, size=32, channels=4)
    assert e.nz == g.nz
    with torch.no_grad():
        e.w_avg.copy_(g.w_avg)
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(e(x), g.default_start(3))
    assert torch.equal(g.default_start(3), g.wplus(g.w_avg[None]).expand(3, -1))
    assert InvertedGAN(g, encoder=e).nz == g.nz
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3, 32, 32\)"):
        e(torch.rand(3, 1, 32, 32))


def test_invert_starts_at_the_generators_default_start():
    g = tracked_w_avg(tiny_style_generator())
    x = torch.rand(3, 3, 32, 32)
    start = g.default_start(3)
    # one step of length ~lr from the start: the mean w, whatever the seed
    for seed in (0, 1):
        z = invert(g, x, max_steps=1, lr=1e-9, seed=seed).z
        assert torch.allclose(z, start, atol=1e-7)
    assert torch.allclose(InvertedGAN(g, max_steps=1, lr=1e-9).encode(x), start, atol=1e-7)
    run = invert(g, x, max_steps=5)
    assert run.z.shape == (3, g.nz) and run.x.shape == x.shape


def test_fit_gan_trains_the_stylegan_from_its_prior():
    torch.manual_seed(0)
    gan = StyleGAN(z_dim=6, w_dim=5, mapping_layers=2, channels=[8, 6, 4, 4], ndf=4)
    before = {k: v.clone() for k, v in gan.state_dict().items()}

    def batches():
        while True:
            yield (torch.rand(8, 3, 32, 32),)

    fit_gan(gan, batches(), steps=2, progress=False, stage=Stage())
    after = gan.state_dict()
    assert not gan.training
    assert not torch.equal(after["generator.w_avg"], before["generator.w_avg"])  # updated while training
    assert not torch.equal(after["generator.mapping_net.0.weight"], before["generator.mapping_net.0.weight"])
    assert not torch.equal(after["discriminator.net.0.weight"], before["discriminator.net.0.weight"])


@pytest.mark.parametrize("lr_generator", [None, 2e-3])
def test_fit_gan_gives_the_generator_its_own_learning_rate(lr_generator):
    """``lr`` is the discriminator's; the generator's is ``lr_generator`` when given, else ``lr``
    (both on the same cosine schedule: read here from the Adams' state a stage saves)."""
    torch.manual_seed(0)
    gan = StyleGAN(z_dim=6, w_dim=5, mapping_layers=2, channels=[8, 6, 4, 4], ndf=4)
    saved = {}

    def batches():
        while True:
            yield (torch.rand(8, 3, 32, 32),)

    stage = Stage(save=lambda model, state, step: saved.update(state))
    fit_gan(gan, batches(), steps=10, lr=2e-4, lr_generator=lr_generator, progress=False, stage=stage)
    lr_g = saved["generator"]["param_groups"][0]["lr"]
    lr_d = saved["discriminator"]["param_groups"][0]["lr"]
    assert lr_d > 0
    assert lr_g / lr_d == pytest.approx(1.0 if lr_generator is None else 10.0)


# ---- the recipes ----------------------------------------------------------------------------------

def test_vae_sigma_makes_the_elbo_the_papers_loss():
    """``−ELBO = SE/(2σ²) + KL + c`` equals the paper's ``mean((2x̂ − 1 − (2x − 1))²) + 2.5e-4 · KL``
    times ``D/(8σ²)``, up to the constant ``c = D (log σ + log(2π)/2)``."""
    torch.manual_seed(0)
    sigma = vae_sigma(8)
    vae = ConvVAE(latent=3, channels=4, hidden=8, in_channels=3, size=8, likelihood="gaussian",
                  sigma=sigma).double()
    x = torch.rand(5, 3, 8, 8, dtype=torch.float64)
    nll, kl = vae.loss_terms(x, generator=torch.Generator().manual_seed(3))
    mean, log_var = vae.posterior(x)
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x_hat = vae.decode(mean + (0.5 * log_var).exp() * eps)
    paper = ((2 * x_hat - 1) - (2 * x - 1)).square().flatten(1).mean(1) + PAPER_KL_WEIGHT * kl
    d = 3 * 8 * 8
    constant = d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    assert torch.allclose(nll + kl, paper * d / (8 * sigma**2) + constant)
    assert vae_sigma(32) == pytest.approx(0.3098, abs=1e-4)


@pytest.mark.parametrize("name", CELEBA_MODELS)
def test_registered_models_are_small(name):
    spec = zoo.REGISTRY[name]
    model = spec.build(**spec.params)
    assert sum(t.numel() * t.element_size() for t in model.state_dict().values()) <= 40 * 2**20
    if name == "celeba_stylegan":
        assert 3e5 < sum(p.numel() for p in model.generator.parameters()) < 2e6
        assert model.nz == 8 * 128 and model.prior_dim == 128
    if name == "celeba_stylegan_encoder":
        gan = zoo.REGISTRY["celeba_stylegan"]
        assert model.nz == gan.build(**gan.params).nz


TINY = {
    "celeba_vae": {"latent": 4, "channels": 4, "hidden": 16, "in_channels": 3, "size": 32,
                   "likelihood": "gaussian", "sigma": vae_sigma(32)},
    "celeba_gan": {"nz": 8, "ngf": 4, "ndf": 4, "in_channels": 3, "size": 32},
    "celeba_stylegan": {"z_dim": 6, "w_dim": 5, "mapping_layers": 2, "channels": [8, 6, 4, 4], "ndf": 4,
                        "in_channels": 3, "size": 32, "mapping_lr_mul": 0.1},
    "celeba_stylegan_encoder": {"w_dim": 5, "size": 32, "channels": 4, "in_channels": 3},
}
FAST = {"steps": 2, "batch_size": 8}
FAST_EVAL = {"eval_images": 4, "eval_steps": 3}
EXPECTED_METRICS = {
    "celeba_vae": {"test_elbo", "test_kl", "test_recon_mse"},
    "celeba_gan": {"test_inversion_mse", "test_inversion_success", "test_inversion_mean_steps"},
    "celeba_stylegan": {"test_inversion_mse", "test_inversion_success", "test_inversion_mean_steps"},
    "celeba_stylegan_encoder": {"test_encoder_mse", "test_refined_mse", "test_refined_success",
                                "test_refined_mean_steps", "test_mean_w_start_mse"},
}


@pytest.fixture
def tiny_recipes(tmp_path, monkeypatch):
    """Fake 5-bit faces (32 per split), tiny models, checkpoints and build/ in tmp_path."""
    def load(split, size=32, n_bits=5):
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        levels = 2**n_bits
        return (torch.randint(levels, (32, 3, size, size), generator=gen) / levels,
                torch.randint(2, (32, 40), generator=gen))

    monkeypatch.setattr(approximate, "load_quantized", load)
    tiny_zoo(monkeypatch, tmp_path, TINY,
             {name: {**FAST, **({} if name == "celeba_vae" else FAST_EVAL)} for name in TINY})


@pytest.mark.parametrize("name", CELEBA_MODELS)
def test_recipes_train_on_fake_faces(name, tiny_recipes):
    if name == "celeba_stylegan_encoder":
        with pytest.raises(zoo.CheckpointError, match="no checkpoint for 'celeba_stylegan'"):
            stages.train(name, "cpu")
        stages.train_and_save("celeba_stylegan", "cpu")
        stages.train_and_save(name, "cpu")
        manifest = zoo.read_manifest()
        assert manifest[name]["trained_with"] == {"celeba_stylegan": manifest["celeba_stylegan"]["sha256"]}
    model, metrics, stage = stages.train(name, "cpu")
    assert stage.step == 2
    assert set(metrics) == EXPECTED_METRICS[name]
    assert all(math.isfinite(v) for v in metrics.values())
    if name == "celeba_vae":
        assert metrics["test_kl"] >= 0 and 0 < metrics["test_recon_mse"] < 1
    if name == "celeba_stylegan_encoder":
        assert torch.equal(model.w_avg, zoo.load("celeba_stylegan").generator.w_avg)
        assert metrics["test_refined_mse"] <= metrics["test_encoder_mse"] + 1e-6
        assert 0 <= metrics["test_refined_mean_steps"] <= 3


def test_stylegan_stage_saves_and_resumes_both_optimisers(tiny_recipes):
    state = check_gan_stage_resumes("celeba_stylegan", StyleGAN)
    assert state["model"]["generator.w_avg"].abs().sum() > 0  # the running mean w travels with it
