"""The CelebA models (issue 17): the Glow on 5-bit 3-channel faces, the classifier and attribute
oracle, the SVM and autoencoder oracles, their recipes (run for two steps on fake faces) and
balanced accuracy."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from conftest import closed_form_bits_per_dim
from diffcf import stages, zoo
from diffcf.data import celeba
from diffcf.evaluate import balanced_accuracy
from diffcf.models.classifiers import CelebAClassifier
from diffcf.models.multiscale import MultiscaleFlow, bits_per_dim_loss
from diffcf.models.oracles import ClassAutoencoders, ConvAutoencoder, LinearSVMOracle
from diffcf.recipes import celeba as recipe
from diffcf.recipes.common import class_weights, train_image_flow
from diffcf.training import Stage

CELEBA_MODELS = ["celeba_classifier", "celeba_attributes", "celeba_svm", "celeba_autoencoders",
                 "celeba_autoencoder", "celeba_flow"]


def rgb_flow(size: int = 8, steps=(2, 2, 2), n_bits: int = 5, noise: float = 0.05) -> MultiscaleFlow:
    """A float64 three-scale flow on 3×size×size, actnorm initialised and every weight perturbed off
    the identity, frozen."""
    torch.manual_seed(0)
    flow = MultiscaleFlow(3, size, steps, hidden=8, n_bits=n_bits).double().train()
    with torch.no_grad():
        flow.log_prob(torch.rand(32, 3, size, size, dtype=torch.float64) * 0.9 + 0.05)
        for p in flow.parameters():
            p.add_(noise * torch.randn_like(p))
    return zoo.frozen(flow)


# ---- the flow on 3-channel, 5-bit images -------------------------------------------------------

def test_three_scale_rgb_flow_round_trip_and_latent_layout():
    flow = rgb_flow()
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    z = flow.encode(x)
    assert z.shape == (4, 192)
    assert flow._z_shapes == [(6, 4, 4), (12, 2, 2), (48, 1, 1)]  # 96 + 48 + 48 = 192
    assert flow.scale_sizes == [96, 48, 48]
    assert (flow.decode(z) - x).abs().max() <= 1e-9
    assert (flow.encode(flow.decode(z)) - z).abs().max() <= 1e-8


def test_three_scale_rgb_logdet_matches_brute_force_jacobian():
    flow = rgb_flow()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64) * 0.9 + 0.05
    _, logdet = flow.encode_with_logdet(x)
    for i in range(2):
        J = torch.autograd.functional.jacobian(
            lambda v: flow.encode(v.reshape(1, 3, 8, 8)).reshape(-1), x[i].reshape(-1))
        assert J.shape == (192, 192)
        sign, brute = torch.linalg.slogdet(J)
        assert sign > 0 and torch.allclose(logdet[i], brute, atol=1e-8)


@pytest.mark.parametrize("size,scales", [(32, 3), (64, 4)])
def test_rgb_flow_at_celeba_sizes_is_invertible(size, scales):
    torch.manual_seed(0)
    flow = MultiscaleFlow(3, size, [1] * scales, 4, n_bits=5).train()
    x = celeba.quantize(torch.rand(2, 3, size, size), 5)
    with torch.no_grad():
        flow.log_prob(x)
        for p in flow.parameters():
            p.add_(0.02 * torch.randn_like(p))
    flow.eval()
    z = flow.encode(x)
    assert z.shape == (2, 3 * size * size)
    assert (flow.decode(z) - x).abs().max() <= 1e-4
    assert torch.isfinite(flow.bits_per_dim(x)).all()


def test_five_bit_bits_per_dim_matches_closed_form_at_initialisation():
    """At initialisation every layer after the logit is orthogonal or the identity, so the density
    has a closed form; the dequantisation is (k + u)/32 for images k/32 (celeba.quantize)."""
    torch.manual_seed(1)
    flow = MultiscaleFlow(3, 8, (2, 2, 2), 8, alpha=0.05, n_bits=5).double().eval()
    x = celeba.quantize(torch.rand(3, 3, 8, 8, dtype=torch.float64), 5)
    bpd = flow.bits_per_dim(x, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(bpd, closed_form_bits_per_dim(x, n_bits=5, alpha=0.05, noise_seed=7)[0], atol=1e-9)


def test_five_bit_bits_per_dim_agrees_with_celeba_dequantize():
    flow = rgb_flow()
    x = celeba.quantize(torch.rand(4, 3, 8, 8, dtype=torch.float64), 5)
    bpd = flow.bits_per_dim(x, generator=torch.Generator().manual_seed(3))
    x_deq = celeba.dequantize(x, 5, generator=torch.Generator().manual_seed(3))
    d = 3 * 64
    direct = -(flow.log_prob(x_deq) - d * 5 * math.log(2)) / (d * math.log(2))
    assert torch.allclose(bpd, direct, atol=1e-9)


def test_five_bit_flow_refuses_images_off_its_grid():
    flow = MultiscaleFlow(3, 8, (1, 1), 4, n_bits=5).eval()
    with pytest.raises(ValueError, match=r"expects images k / 2\*\*5.*quantize\(x, 5\)"):
        flow.bits_per_dim(torch.full((1, 3, 8, 8), 0.5 + 1 / 255))
    with pytest.raises(ValueError, match="expects images"):
        flow.bits_per_dim(torch.ones(1, 3, 8, 8))  # level 32 does not exist in 5 bits
    off_grid = torch.full((2, 3, 8, 8), 0.5 + 1 / 255)
    assert torch.isfinite(bits_per_dim_loss(flow, off_grid))  # the training loss does not wait to check
    with pytest.raises(ValueError, match="expects images"):  # its recipe checks the data once instead
        train_image_flow(flow, torch.device("cpu"), Stage(), off_grid, off_grid, steps=1, batch_size=2,
                         lr=1e-3, clip_grad=1.0, seed=0, desc="flow")
    with pytest.raises(ValueError, match="n_bits must be an integer from 1 to 8"):
        MultiscaleFlow(3, 8, (1, 1), 4, n_bits=9)
    with pytest.raises(ValueError, match=r"divisible by 8 \(3 squeezes\)"):
        MultiscaleFlow(3, 12, (1, 1, 1), 4)
    with pytest.raises(ValueError, match="one per scale"):
        MultiscaleFlow(3, 16, (1, 1, 1), [4, 4])


# ---- classifier, oracles ---------------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 64])
def test_celeba_classifier_shapes_and_cam_layer(size):
    for n_outputs in (2, 40):
        f = CelebAClassifier(size=size, n_outputs=n_outputs).eval()
        captured: list[torch.Tensor] = []
        handle = f.cam_layer.register_forward_hook(lambda m, i, o, store=captured: store.append(o))
        out = f(torch.rand(3, 3, size, size))
        handle.remove()
        assert out.shape == (3, n_outputs)
        assert captured[0].shape == (3, 256, size // 4, size // 4) and captured[0].min() >= 0
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3, 32, 32\)"):
        CelebAClassifier(size=32)(torch.rand(1, 3, 64, 64))


def test_binary_linear_svm_is_two_scores_zero_and_decision():
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    X = rng.random((300, 48))
    y = (X[:, :5].sum(1) > 2.6).astype(int)
    clf = LinearSVC(C=1.0, dual=False).fit(X[:200], y[:200])
    svm = LinearSVMOracle(in_dim=48, n_classes=2).set_from_sklearn(clf)
    scores = svm(torch.tensor(X[200:], dtype=torch.float32).reshape(-1, 3, 4, 4))
    np.testing.assert_allclose(scores[:, 1].numpy(), clf.decision_function(X[200:]), atol=1e-4)
    assert torch.equal(scores[:, 0], torch.zeros(100))
    assert scores.argmax(1).tolist() == clf.predict(X[200:]).tolist()


@pytest.mark.parametrize("size", [32, 64])
def test_rgb_autoencoders(size):
    aes = ClassAutoencoders(n_classes=2, channels=4, latent=8, in_channels=3, size=size)
    x = torch.rand(2, 3, size, size)
    r = aes(x, 1)
    assert r.shape == x.shape and r.min() >= 0 and r.max() <= 1
    assert aes.reconstruction_errors(x).shape == (2, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3, "):
        aes(torch.rand(2, 1, 28, 28), 0)


def test_mnist_autoencoder_layout_is_unchanged():
    """The MNIST defaults build the state dict the shipped ``mnist_autoencoders`` was saved from."""
    shapes = {k: tuple(v.shape) for k, v in ConvAutoencoder(16, 32).state_dict().items()}
    assert shapes == {
        "encoder.0.weight": (16, 1, 3, 3), "encoder.0.bias": (16,),
        "encoder.2.weight": (32, 16, 3, 3), "encoder.2.bias": (32,),
        "encoder.5.weight": (32, 1568), "encoder.5.bias": (32,),
        "decoder.0.weight": (1568, 32), "decoder.0.bias": (1568,),
        "decoder.3.weight": (32, 16, 4, 4), "decoder.3.bias": (16,),
        "decoder.5.weight": (16, 1, 4, 4), "decoder.5.bias": (1,),
    }


def test_balanced_accuracy_by_hand():
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
    always_no = torch.zeros(8, dtype=torch.long)
    assert balanced_accuracy(always_no, labels) == 0.5          # accuracy would be 0.75
    predicted = torch.tensor([0, 0, 0, 0, 1, 1, 1, 0])          # TNR 4/6, TPR 1/2
    assert balanced_accuracy(predicted, labels) == pytest.approx((4 / 6 + 1 / 2) / 2)
    assert balanced_accuracy(torch.tensor([1, 1]), torch.tensor([1, 1])) == 1.0  # absent class skipped
    three = torch.tensor([0, 1, 2, 2])
    assert balanced_accuracy(torch.tensor([0, 1, 2, 0]), three) == pytest.approx((1 + 1 + 0.5) / 3)
    with pytest.raises(ValueError, match="differ in shape"):
        balanced_accuracy(torch.zeros(3), torch.zeros(4))


def test_class_weights_balance_the_classes():
    y = torch.tensor([0] * 6 + [1] * 2)
    assert torch.allclose(class_weights(y, 2, 0.0), torch.ones(2))
    w = class_weights(y, 2, 1.0)
    assert torch.allclose(w[0] * 6, w[1] * 2) and torch.isclose((w[y]).mean(), torch.tensor(1.0))
    pos = recipe.positive_weights(torch.tensor([[1, 0], [0, 0], [0, 1], [0, 1]]), 1.0)
    assert torch.allclose(pos, torch.tensor([3.0, 1.0]))


def test_mirrored_batches_hold_each_image_or_its_mirror_and_plain_ones_are_unchanged():
    from diffcf.recipes.common import image_batches

    x = torch.rand(10, 3, 4, 4)
    x_before, y = x.clone(), torch.arange(10)
    plain = next(image_batches(x, y, 64, seed=3, device=torch.device("cpu")))
    idx = torch.randint(10, (64,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(plain[0], x[idx]) and torch.equal(plain[1], idx)  # the stream as before
    xb, yb = next(image_batches(x, y, 64, seed=3, device=torch.device("cpu"), hflip=True))
    mirrored = torch.tensor([torch.equal(xi, x[yi].flip(-1)) for xi, yi in zip(xb, yb, strict=True)])
    same = torch.tensor([torch.equal(xi, x[yi]) for xi, yi in zip(xb, yb, strict=True)])
    assert bool((mirrored | same).all()) and 10 < int(mirrored.sum()) < 54
    assert torch.equal(x, x_before)  # the data set itself is not flipped in place


# ---- the registered models and their recipes ----------------------------------------------------

@pytest.mark.parametrize("name", CELEBA_MODELS)
def test_registered_celeba_models_are_small_and_take_faces(name):
    spec = zoo.REGISTRY[name]
    model = spec.build(**spec.params).eval()
    n_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert n_bytes <= 40 * 2**20
    x = celeba.quantize(torch.rand(2, 3, recipe.SIZE, recipe.SIZE), recipe.N_BITS)
    with torch.no_grad():
        if name == "celeba_autoencoders":
            assert model(x, 1).shape == x.shape
        elif name == "celeba_autoencoder":
            assert model(x).shape == x.shape
        elif name == "celeba_flow":
            assert model.encode(x).shape == (2, 3 * recipe.SIZE**2) and model.n_bits == 5
        else:
            assert model(x).shape == (2, 40 if name == "celeba_attributes" else 2)


def test_paper_size_specs_fit_the_budget():
    specs = recipe.celeba_specs(64)
    assert [s.name for s in specs] == [f"{n}_64" for n in CELEBA_MODELS]
    assert all(s.name not in zoo.REGISTRY for s in specs)  # a GPU recipe, not a shipped model
    for spec in specs:
        if spec.name == "celeba_flow_64":  # 8.8 M parameters: count without building
            assert spec.params["steps_per_scale"] == [16, 16, 16, 16]
            continue
        model = spec.build(**spec.params)
        assert sum(t.numel() * t.element_size() for t in model.state_dict().values()) <= 40 * 2**20


@pytest.fixture
def fake_celeba(monkeypatch):
    """32 random 8-bit faces per split with random attributes (both Blond_Hair classes present)."""
    def load(split="train", size=64, root=None):
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        x = torch.randint(0, 256, (32, 3, size, size), generator=gen).float() / 255
        attributes = torch.randint(0, 2, (32, 40), generator=gen)
        attributes[:, celeba.attribute_index(celeba.BLOND_HAIR)] = (torch.arange(32) % 4 == 0).long()
        return x, attributes

    monkeypatch.setattr(recipe, "load_celeba", load)


EXPECTED_METRICS = {
    "celeba_classifier": {"test_accuracy", "test_balanced_accuracy", "test_auc"},
    "celeba_attributes": {"test_mean_balanced_accuracy", "test_min_balanced_accuracy", "test_mean_accuracy"},
    "celeba_svm": {"test_accuracy", "test_balanced_accuracy", "test_auc", "train_accuracy"},
    "celeba_autoencoders": {"test_mse_0", "test_mse_1", "test_mse_mean"},
    "celeba_autoencoder": {"test_mse"},
    "celeba_flow": {"test_bits_per_dim", "test_roundtrip_max_abs_error"},
}


@pytest.mark.parametrize("name", CELEBA_MODELS)
def test_recipes_train_on_fake_faces(name, fake_celeba, monkeypatch):
    if name == "celeba_flow":  # the recipe as registered, on a smaller Glow of the same layout
        spec = zoo.REGISTRY[name]
        params = {**spec.params, "steps_per_scale": [1, 1, 1], "hidden": 8}
        monkeypatch.setitem(zoo.REGISTRY, name, dataclasses.replace(spec, params=params))
    overrides = {} if name == "celeba_svm" else {"steps": 2, "batch_size": 8}
    model, metrics, stage = stages.train(name, "cpu", **overrides)
    assert set(metrics) == EXPECTED_METRICS[name]
    assert all(math.isfinite(v) for v in metrics.values())
    if name == "celeba_flow":
        assert stage.step == 2 and metrics["test_roundtrip_max_abs_error"] <= 1e-3
        assert 0 < metrics["test_bits_per_dim"] < 20
    if name in ("celeba_classifier", "celeba_svm"):
        assert 0 <= metrics["test_balanced_accuracy"] <= 1
