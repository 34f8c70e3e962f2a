"""The chest X-ray models (notebook 05): registered sizes, the paper-size recipes, and every recipe
trained for two steps on fake films through the zoo; the shared binary-classifier metrics."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from diffcf import stages, zoo
from diffcf.recipes import chestxray as recipe
from diffcf.recipes.common import binary_metrics

CHESTXRAY_MODELS = ["chestxray_classifier", "chestxray_svm", "chestxray_flow"]


@pytest.mark.parametrize("name", CHESTXRAY_MODELS)
def test_registered_models_are_small_and_take_films(name):
    spec = zoo.REGISTRY[name]
    model = spec.build(**spec.params).eval()
    assert sum(t.numel() * t.element_size() for t in model.state_dict().values()) <= 40 * 2**20
    x = torch.randint(256, (2, 1, recipe.SIZE, recipe.SIZE)) / 255
    with torch.no_grad():
        if name == "chestxray_flow":
            assert model.encode(x).shape == (2, recipe.SIZE**2) and model.n_bits == 8
        else:
            assert model(x).shape == (2, 2)


def test_paper_size_specs_fit_the_budget():
    specs = recipe.chestxray_specs(128)
    assert [s.name for s in specs] == [f"{n}_128" for n in CHESTXRAY_MODELS]
    assert all(s.name not in zoo.REGISTRY for s in specs)  # a GPU recipe, not a shipped model
    for spec in specs:
        model = spec.build(**spec.params)
        assert sum(t.numel() * t.element_size() for t in model.state_dict().values()) <= 40 * 2**20
    with pytest.raises(ValueError, match="sizes"):
        recipe.chestxray_specs(96)


def test_binary_metrics_by_hand():
    scores = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 2.0], [0.0, 0.5]])  # margins 1, -1, 2, .5
    metrics = binary_metrics(scores, torch.tensor([1, 0, 0, 1]))
    assert metrics["test_accuracy"] == 0.75  # predicted 1, 0, 1, 1
    assert metrics["test_balanced_accuracy"] == 0.75  # recall 1 for class 1, 1/2 for class 0
    assert metrics["test_auc"] == 0.5  # positives' margins (1, .5) beat the negatives' (-1, 2) half the time


@pytest.fixture
def fake_films(monkeypatch):
    """32 random 8-bit films per split, a quarter of them positive."""
    def load(split="train", size=128, root=None, verify=False):
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        x = torch.randint(0, 256, (32, 1, size, size), generator=gen).float() / 255
        return x, (torch.arange(32) % 4 == 0).long()

    monkeypatch.setattr(recipe, "load_chestxray", load)


EXPECTED_METRICS = {
    "chestxray_classifier": {"test_accuracy", "test_balanced_accuracy", "test_auc"},
    "chestxray_svm": {"test_accuracy", "test_balanced_accuracy", "test_auc", "train_accuracy"},
    "chestxray_flow": {"test_bits_per_dim", "test_roundtrip_max_abs_error"},
}


@pytest.mark.parametrize("name", CHESTXRAY_MODELS)
def test_recipes_train_on_fake_films(name, fake_films, monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFCF_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("DIFFCF_ROOT", str(tmp_path))  # resumable state: tmp_path/build/train
    if name == "chestxray_flow":  # the recipe as registered, on a smaller Glow of the same layout
        spec = zoo.REGISTRY[name]
        params = {**spec.params, "steps_per_scale": [1, 1, 1, 1], "hidden": 8}
        monkeypatch.setitem(zoo.REGISTRY, name, dataclasses.replace(spec, params=params))
    overrides = {} if name == "chestxray_svm" else {"steps": 2, "batch_size": 8}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the flow recipe evaluates on every core, then restores this
    try:
        model, metrics, stage = stages.train(name, "cpu", **overrides)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert set(metrics) == EXPECTED_METRICS[name]
    assert all(math.isfinite(v) for v in metrics.values())
    if name == "chestxray_flow":
        assert stage.step == 2 and metrics["test_roundtrip_max_abs_error"] <= 1e-3
        assert 0 < metrics["test_bits_per_dim"] < 20
    else:
        assert 0 <= metrics["test_balanced_accuracy"] <= 1 and 0 <= metrics["test_auc"] <= 1


def test_shifted_films_move_by_their_offsets_and_repeat_the_border():
    from diffcf.recipes.common import image_batches, shifted

    x = torch.arange(2 * 36, dtype=torch.float32).reshape(2, 1, 6, 6)
    out = shifted(x, torch.tensor([[1, -2], [0, 0]]))
    assert torch.equal(out[0, 0, 1:, :4], x[0, 0, :5, 2:])  # moved down 1, left 2
    assert torch.equal(out[0, 0, 0], out[0, 0, 1])  # the top row repeats the border
    assert torch.equal(out[0, 0, :, 4], out[0, 0, :, 5])  # and so does the right column
    assert torch.equal(out[1], x[1])
    xb, yb = next(image_batches(x, torch.arange(2), 200, seed=0, device=torch.device("cpu"), shift=2))
    moved = [not torch.equal(xi, x[yi]) for xi, yi in zip(xb, yb, strict=True)]
    assert 150 < sum(moved) < 200  # one in 25 draws the offset (0, 0)
    with pytest.raises(ValueError, match="shift"):
        next(image_batches(x, torch.arange(2), 4, seed=0, device=torch.device("cpu"), shift=3))
