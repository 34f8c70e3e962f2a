"""The Mall models (issue 19): the counting U-Net and the oracle U-Net (shapes, input checks, the count
head as specified, gradients to the input for the search), the batches and loss of their recipe, and
the three recipes run for two steps on fake crops through the zoo."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from conftest import tiny_zoo
from diffcf import stages, zoo
from diffcf.data.mall_crops import MallCrops
from diffcf.data.quantize import quantize
from diffcf.models.multiscale import MultiscaleFlow
from diffcf.models.unet import INITIAL_HEADS, CountingUNet, OracleUNet
from diffcf.recipes import mall as recipe
from diffcf.search import counterfactual_search
from diffcf.targets import RegressionTarget

MALL_MODELS = ["mall_unet", "mall_unet_oracle", "mall_flow"]


def tiny_counter(**kw) -> CountingUNet:
    return CountingUNet(**{"size": 16, "widths": (4, 8, 8), "head_width": 6, **kw})


def tiny_oracle(**kw) -> OracleUNet:
    return OracleUNet(**{"size": 16, "widths": (4, 8, 8, 8), **kw})


def calibrated(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in eval mode with the batch-norm statistics of random crops (not the 0 and 1 of a
    fresh one, under which a narrow net's ReLUs may all be dead) and biases off zero."""
    with torch.no_grad():
        for name, t in model.named_parameters():
            if name.endswith(".bias"):
                t.add_(0.1 * torch.randn_like(t))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # a plain average over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.rand(8, 3, model.size, model.size))
    return model.eval()


# ---- the two U-Nets --------------------------------------------------------------------------------

@pytest.mark.parametrize("build", [CountingUNet, OracleUNet])
@pytest.mark.parametrize("size", [32, 64])
def test_unets_return_a_count_per_crop_and_a_nonnegative_density_map(build, size):
    model = build(size=size).eval()
    x = torch.rand(3, 3, size, size)
    with torch.no_grad():
        count, density = model.density_and_count(x)
        assert torch.equal(model(x), count) and torch.equal(model.density(x), density)
    assert count.shape == (3,) and density.shape == (3, 1, size, size)
    assert (count >= 0).all() and (density >= 0).all()
    RegressionTarget(10.0).check(count)  # the shape the search's regression target reads


@pytest.mark.parametrize("build", [CountingUNet, OracleUNet])
@pytest.mark.parametrize("size,scale", [(64, 100.0), (16, 10.0)])
def test_fresh_density_maps_hold_about_two_heads(build, size, scale):
    torch.manual_seed(7)
    model = build(size=size, density_scale=scale).eval()
    x = torch.rand(4, 3, size, size)
    with torch.no_grad():
        assert ((model.density(x).sum(dim=(1, 2, 3)) - INITIAL_HEADS).abs() < 1.5).all()
        model.density_head.weight.zero_()  # the bias alone: exactly INITIAL_HEADS
        assert torch.allclose(model.density(x).sum(dim=(1, 2, 3)), torch.tensor(INITIAL_HEADS))


def test_count_head_is_two_linear_layers_on_bottleneck_and_map_then_one_to_the_count():
    torch.manual_seed(0)
    f = calibrated(tiny_counter())
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        count, density = f.density_and_count(x)
        features, bottleneck = f.backbone(x)
        assert bottleneck.shape == (4, 8, 4, 4) and features.shape == (4, 4, 16, 16)
        scaled = F.softplus(f.density_head(features))
        assert torch.allclose(density, scaled / 100.0)
        hidden = torch.cat([f.from_bottleneck(bottleneck.flatten(1)), f.from_map(scaled.flatten(1))], 1)
        assert f.from_bottleneck.in_features == 8 * 4 * 4 and f.from_map.in_features == 16 * 16
        assert hidden.shape == (4, 12) and f.count_head.in_features == 12
        raw = f.count_head(F.relu(hidden))[:, 0]
        assert torch.allclose(count, F.softplus(raw), atol=1e-6)
        f.from_map.weight.add_(1.0)  # the count reads the map
        assert not torch.allclose(f(x), count)


def test_oracle_count_is_the_integral_of_its_density_map():
    torch.manual_seed(1)
    oracle = calibrated(tiny_oracle())
    x = torch.rand(5, 3, 16, 16)
    with torch.no_grad():
        count, density = oracle.density_and_count(x)
    assert torch.allclose(count, density.sum(dim=(1, 2, 3)), atol=1e-6)
    assert oracle.backbone(x)[1].shape == (5, 8, 2, 2)  # one more level than f: a 2×2 bottleneck
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in oracle.modules())


def test_counts_do_not_depend_on_the_rest_of_the_batch_in_eval_mode():
    torch.manual_seed(2)
    for model in (calibrated(tiny_counter()), calibrated(tiny_oracle())):
        x = torch.rand(6, 3, 16, 16)
        with torch.no_grad():
            assert torch.allclose(model(x)[:2], model(x[:2]), atol=1e-6)


@pytest.mark.parametrize("make", [tiny_counter, tiny_oracle])
def test_gradient_of_the_count_reaches_every_crop(make):
    torch.manual_seed(3)
    model = zoo.frozen(calibrated(make()).double())
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    assert torch.isfinite(grad).all() and (grad.flatten(1).abs().sum(1) > 0).all()
    # the gradient is the derivative: a central difference along a random direction agrees (a tiny
    # step, so that no ReLU or max-pool changes its branch: 0 of 50 seeds tried fail)
    v, eps = torch.randn_like(x), 1e-7
    with torch.no_grad():
        diff = (model(x + eps * v) - model(x - eps * v)) / (2 * eps)
    assert torch.allclose(diff, (grad * v).flatten(1).sum(1), rtol=1e-5, atol=1e-7)


def test_softplus_count_keeps_a_gradient_where_the_papers_relu_has_none():
    """An empty crop whose count head sits below zero: the paper's ReLU gives a count of exactly 0
    and no gradient, so a search could never raise it; the softplus (the default) still gives one."""
    torch.manual_seed(4)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    grads = {}
    for activation in ("relu", "softplus"):
        torch.manual_seed(5)
        f = zoo.frozen(tiny_counter(count_activation=activation))
        with torch.no_grad():
            f.count_head.bias.fill_(-50.0)
        count = f(x)
        (grads[activation],) = torch.autograd.grad(count.sum(), x)
        assert (count >= 0).all() and (count < 1e-6).all()
    assert torch.equal(grads["relu"], torch.zeros_like(x))
    assert (grads["softplus"].flatten(1).abs().sum(1) > 0).all()


def test_search_in_x_raises_the_count_of_the_unet():
    torch.manual_seed(6)
    f = zoo.frozen(calibrated(tiny_counter()))
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        before = f(x)
    result = counterfactual_search(f, x, RegressionTarget(before.max().item() + 1.0, maximize=True),
                                   space="x", lr=1e-2, max_steps=20, bounds=(0.0, 1.0))
    assert result.output.shape == (4,)
    assert (result.output > before).all()


def test_bad_inputs_and_architectures_raise_clear_errors():
    f = tiny_counter()
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3, 16, 16\).*got \(2, 1, 16, 16\)"):
        f(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3, 16, 16\).*got \(3, 16, 16\)"):
        f(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match=r"got \(1, 3, 32, 32\)"):
        tiny_oracle().density(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="floating point in \\[0, 1\\].*x.float\\(\\) / 255"):
        f(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        f([[0.0]])
    with pytest.raises(ValueError, match=r"size must be a multiple of 4 \(2 2×2 poolings for 3 levels\)"):
        CountingUNet(size=18, widths=(4, 8, 8))
    with pytest.raises(ValueError, match="size must be a multiple of 16"):
        OracleUNet(size=8, widths=(4, 4, 4, 4, 4))
    with pytest.raises(ValueError, match="widths must be at least two positive ints"):
        CountingUNet(widths=(8,))
    with pytest.raises(ValueError, match="widths must be at least two positive ints"):
        OracleUNet(widths=(8, 0))
    with pytest.raises(ValueError, match="in_channels must be a positive int"):
        CountingUNet(in_channels=0)
    with pytest.raises(ValueError, match="density_scale must be positive"):
        OracleUNet(density_scale=0.0)
    with pytest.raises(ValueError, match="head_width must be a positive int"):
        CountingUNet(head_width=0)
    with pytest.raises(ValueError, match=r"count_activation must be one of \('softplus', 'relu'\)"):
        CountingUNet(count_activation="sigmoid")


# ---- batches, loss and metrics of the recipe -------------------------------------------------------

def test_crop_batches_mirror_image_and_density_together():
    x, d = torch.rand(10, 3, 4, 4), torch.rand(10, 1, 4, 4)
    count = torch.arange(10.0)
    before = x.clone(), d.clone()
    plain = next(recipe.crop_batches(x, d, count, 64, seed=3, device=torch.device("cpu")))
    idx = torch.randint(10, (64,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(plain[0], x[idx]) and torch.equal(plain[1], d[idx])
    assert torch.equal(plain[2], count[idx])
    xb, db, cb = next(recipe.crop_batches(x, d, count, 64, seed=3, device=torch.device("cpu"), hflip=True))
    k = cb.long()
    mirrored = torch.tensor([torch.equal(xb[i], x[k[i]].flip(-1)) and torch.equal(db[i], d[k[i]].flip(-1))
                             for i in range(64)])
    same = torch.tensor([torch.equal(xb[i], x[k[i]]) and torch.equal(db[i], d[k[i]]) for i in range(64)])
    assert bool((mirrored | same).all()) and 10 < int(mirrored.sum()) < 54
    assert torch.equal(x, before[0]) and torch.equal(d, before[1])  # the data are not flipped in place
    with pytest.raises(ValueError, match="must hold as many crops, got 10, 9, 10"):
        next(recipe.crop_batches(x, d[:9], count, 4, seed=0, device=torch.device("cpu")))


def test_counting_loss_by_hand():
    class Fixed(torch.nn.Module):
        density_scale = 10.0

        def density_and_count(self, x):
            return torch.tensor([1.0, 3.0]), torch.full((2, 1, 2, 2), 0.1)

    density = torch.zeros(2, 1, 2, 2)
    density[0, 0, 0, 0] = 0.5
    count = torch.tensor([1.0, 1.0])
    # map: 10·(0.1 − d) is 1 in 7 of 8 pixels and 1 − 5 = −4 in one: mean (7 + 16)/8; count: (0 + 4)/2
    loss = recipe.counting_loss(Fixed(), torch.zeros(2), density, count, map_weight=2.0)
    assert loss.item() == pytest.approx(2.0 * 23 / 8 + 2.0)


def test_count_metrics_by_hand():
    count = torch.tensor([0.0, 2.0, 4.0, 2.0])
    metrics = recipe.count_metrics(torch.tensor([1.0, 2.0, 1.0, 2.0]), count.clone(), count, train_mean=2.0)
    assert metrics == {"test_rmse": round(math.sqrt(10 / 4), 4), "test_mae": 1.0, "test_map_rmse": 0.0,
                       "test_rmse_constant": round(math.sqrt(8 / 4), 4)}


# ---- the registered models and their recipes --------------------------------------------------------

@pytest.mark.parametrize("name", MALL_MODELS)
def test_registered_mall_models_are_small_and_take_5_bit_crops(name):
    spec = zoo.REGISTRY[name]
    model = spec.build(**spec.params).eval()
    assert model.size == 64 == recipe.SIZE
    n_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert n_bytes <= 40 * 2**20
    x = quantize(torch.rand(2, 3, 64, 64), recipe.N_BITS)
    with torch.no_grad():
        if name == "mall_flow":
            assert isinstance(model, MultiscaleFlow) and model.n_bits == 5
            assert model.n_scales == 4 and model.encode(x).shape == (2, 3 * 64 * 64)
        else:
            assert model(x).shape == (2,) and spec.train_params["n_bits"] == 5


def test_half_size_specs_are_registered_and_consistent():
    specs = recipe.mall_specs(32)
    assert [s.name for s in specs] == [f"{n}_32" for n in MALL_MODELS]
    assert all(zoo.REGISTRY[s.name].params == s.params for s in specs)  # notebook 06's CPU models
    assert {s.params["size"] for s in specs} == {32}
    oracle = specs[1].build(**specs[1].params).eval()
    with torch.no_grad():
        assert oracle(torch.rand(1, 3, 32, 32)).shape == (1,)
    with pytest.raises(ValueError, match=r"Mall recipes exist for sizes \[32, 64\], got 48"):
        recipe.mall_specs(48)


def fake_crops(split: str, size: int, crops_per_frame: int, seed: int) -> MallCrops:
    """``crops_per_frame`` × 4 random 8-bit crops with 0–4 random heads each."""
    gen = torch.Generator().manual_seed(seed + (0 if split == "train" else 100))
    n = 4 * crops_per_frame
    x = torch.randint(0, 256, (n, 3, size, size), generator=gen).float() / 255
    heads = [torch.rand(int(k), 2, generator=gen) * size for k in torch.randint(0, 5, (n,), generator=gen)]
    return MallCrops(x=x, count=torch.tensor([len(h) for h in heads], dtype=torch.float32), heads=heads,
                     frame=torch.arange(n) // crops_per_frame + 1, corner=torch.zeros(n, 2, dtype=torch.long),
                     size=size, window=2 * size)


TINY = {
    "mall_unet": {"in_channels": 3, "size": 64, "widths": [2, 4], "head_width": 4, "density_scale": 100.0,
                  "count_activation": "softplus"},
    "mall_unet_oracle": {"in_channels": 3, "size": 64, "widths": [2, 4, 4], "density_scale": 100.0},
    "mall_flow": {"in_channels": 3, "size": 64, "steps_per_scale": [1, 1, 1, 1], "hidden": 4, "alpha": 0.05,
                  "n_bits": 5},
}
EXPECTED_METRICS = {
    "mall_unet": {"test_rmse", "test_mae", "test_map_rmse", "test_rmse_constant"},
    "mall_unet_oracle": {"test_rmse", "test_mae", "test_map_rmse", "test_rmse_constant"},
    "mall_flow": {"test_bits_per_dim", "test_roundtrip_max_abs_error"},
}


@pytest.mark.parametrize("name", MALL_MODELS)
def test_recipes_train_on_fake_crops_through_the_zoo(name, tmp_path, monkeypatch):
    calls = []

    def load(split="train", size=64, window=128, crops_per_frame=4, seed=0, root=None):
        calls.append((split, size, crops_per_frame, seed))
        return fake_crops(split, size, crops_per_frame, seed)

    monkeypatch.setattr(recipe, "load_mall_crops", load)
    tiny_zoo(monkeypatch, tmp_path, {name: TINY[name]},
             {name: {"steps": 2, "batch_size": 8, "crops_per_frame": 3}})
    zoo.load_or_train(name, retrain=True, verbose=False)
    entry = zoo.manifest_entry(name)
    metrics = entry["metrics"]
    assert entry["steps_done"] == 2 and set(metrics) == EXPECTED_METRICS[name]
    assert all(math.isfinite(v) for v in metrics.values())
    seed = zoo.REGISTRY[name].train_params["seed"]
    assert calls == [("train", 64, 3, seed), ("test", 64, 4, recipe.TEST_SEED)]
    model = zoo.load(name)
    if name == "mall_flow":
        assert metrics["test_roundtrip_max_abs_error"] <= 1e-3 and 0 < metrics["test_bits_per_dim"] < 20
    else:
        assert metrics["test_rmse"] >= metrics["test_mae"] >= 0
        test = fake_crops("test", 64, 4, recipe.TEST_SEED)
        x_test = quantize(test.x, 5)
        predicted, _ = recipe.predict_counts(model, x_test, batch_size=5)
        assert metrics["test_rmse"] == pytest.approx(((predicted - test.count) ** 2).mean().sqrt().item(),
                                                     abs=1e-4)


def test_counter_stage_resumes_with_adams_state(tmp_path, monkeypatch):
    def load(split, size, crops_per_frame=4, seed=0):
        return fake_crops(split, size, crops_per_frame, seed)

    monkeypatch.setattr(recipe, "load_mall_crops", load)
    tiny_zoo(monkeypatch, tmp_path, {"mall_unet": TINY["mall_unet"]},
             {"mall_unet": {"batch_size": 4, "crops_per_frame": 2}})
    _, _, first = stages.train("mall_unet", "cpu", stages.StagePlan(steps=1), steps=3)
    assert first.step == 1
    _, metrics, second = stages.train("mall_unet", "cpu", stages.StagePlan(resume=True, steps=1), steps=3)
    assert second.start_step == 1 and second.step == 2 and second.optimizer_state["state"]
    assert math.isfinite(metrics["test_rmse"])
