"""The multi-scale flow (exact inverse, log-det, bits/dim), the SVM oracle and the MNIST models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import jacfwd, vmap

from conftest import closed_form_bits_per_dim
from diffcf import zoo
from diffcf.models.classifiers import MNISTClassifier, SmallCNN
from diffcf.models.multiscale import COUPLINGS, MultiscaleFlow, squeeze2x2, unsqueeze2x2
from diffcf.models.oracles import ClassAutoencoders, LinearSVMOracle, RBFSVMOracle
from diffcf.recipes import mnist as mnist_recipes
from diffcf.training import Stage


def tiny_flow(size: int = 8, dtype=torch.float64, seed: int = 0, noise: float = 0.2,
              coupling: str = "affine") -> MultiscaleFlow:
    """A small flow with actnorm initialised on data and all weights perturbed off the identity
    (by ``noise`` × N(0, 1); 0.2 makes a strongly non-linear flow, for float64 checks)."""
    torch.manual_seed(seed)
    flow = MultiscaleFlow(in_channels=1, size=size, steps_per_scale=(2, 2), hidden=8,
                          coupling=coupling).to(dtype)
    flow.train()
    with torch.no_grad():
        flow.log_prob(torch.rand(32, 1, size, size, dtype=dtype))
        for p in flow.parameters():
            p.add_(noise * torch.randn_like(p))
    return zoo.frozen(flow)


def test_squeeze_is_a_permutation():
    x = torch.arange(2 * 3 * 4 * 6.0).reshape(2, 3, 4, 6)
    s = squeeze2x2(x)
    assert s.shape == (2, 12, 2, 3)
    assert torch.equal(unsqueeze2x2(s), x)
    assert torch.equal(s.flatten().sort().values, x.flatten())


@pytest.mark.parametrize("coupling", COUPLINGS)
def test_round_trip_float32_28x28(coupling):
    # perturbed so that latents have the spread of a trained flow's (std ≈ 1.4, not hundreds)
    flow = tiny_flow(size=28, dtype=torch.float32, noise=0.05, coupling=coupling)
    x = torch.rand(4, 1, 28, 28)
    z = flow.encode(x)
    assert z.shape == (4, 784) and z.std() < 3
    assert (flow.decode(z) - x).abs().max() <= 1e-4


@pytest.mark.parametrize("coupling", COUPLINGS)
def test_logdet_matches_brute_force_jacobian(coupling):
    flow = tiny_flow(coupling=coupling)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64) * 0.9 + 0.05
    _, logdet = flow.encode_with_logdet(x)
    for i in range(2):
        J = torch.autograd.functional.jacobian(
            lambda v: flow.encode(v.reshape(1, 1, 8, 8)).reshape(-1), x[i].reshape(-1))
        assert J.shape == (64, 64)
        assert torch.allclose(logdet[i], torch.linalg.slogdet(J)[1], atol=1e-8)


@pytest.mark.parametrize("coupling", COUPLINGS)
def test_decode_jacobian_with_vmap_is_inverse_of_encode_jacobian(coupling):
    # noise 0.1: at 0.2 the checkerboard flow's Jacobian has condition number ~1e9, and the product
    # of two Jacobians is exact only to ~cond · 1e-16
    flow = tiny_flow(coupling=coupling, noise=0.1)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64) * 0.9 + 0.05
    z = flow.encode(x)
    J_dec = vmap(jacfwd(lambda v: flow.decode(v.unsqueeze(0)).reshape(-1)))(z)
    J_enc = torch.autograd.functional.jacobian(
        lambda v: flow.encode(v.reshape(1, 1, 8, 8)).reshape(-1), x[0].reshape(-1))
    assert J_dec.shape == (3, 64, 64)
    assert torch.allclose(J_dec[0] @ J_enc, torch.eye(64, dtype=torch.float64), atol=1e-8)


def test_couplings_differ_as_their_names_say():
    """Additive couplings preserve volume (only actnorm, 1×1 convs and split priors change it);
    checkerboard steps alternate which pixels they leave alone; a typo is refused."""
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64) * 0.9 + 0.05
    additive = tiny_flow(coupling="additive")
    assert all(not hasattr(m, "s_scale") for m in additive.modules() if type(m).__name__ == "AffineCoupling")
    assert torch.isfinite(additive.encode_with_logdet(x)[1]).all()
    steps = tiny_flow(coupling="checkerboard").scale1
    assert [step.layers[2].parity for step in steps] == [0, 1]
    layer, h = steps[0].layers[2], torch.randn(1, 4, 4, 4, dtype=torch.float64)
    kept = layer._mask(h).bool().expand_as(h)
    assert torch.equal(layer(h)[0][kept], h[kept])  # the masked pixels pass unchanged
    with pytest.raises(ValueError, match="coupling must be one of"):
        MultiscaleFlow(1, 8, (1, 1), 4, coupling="spline")


def test_eval_mode_never_initialises_actnorm():
    flow = MultiscaleFlow(1, 8, (1, 1), 4).eval()
    flow.decode(torch.randn(2, 64))
    flow.encode(torch.rand(2, 1, 8, 8))
    assert all(int(m.initialized) == 0 for m in flow.modules() if hasattr(m, "initialized"))
    actnorms = [m for m in flow.modules() if hasattr(m, "initialized")]
    assert all(float(m.bias.detach().abs().sum()) == 0.0 for m in actnorms)


def test_actnorm_initialises_once_and_again_after_loading_a_fresh_state():
    actnorms = lambda flow: [m for m in flow.modules() if hasattr(m, "initialized")]
    flow = MultiscaleFlow(1, 8, (1, 1), 4).train()
    first, second = torch.rand(16, 1, 8, 8), 0.5 * torch.rand(16, 1, 8, 8)
    flow.log_prob(first)
    after_first = [m.bias.detach().clone() for m in actnorms(flow)]
    assert all(int(m.initialized) == 1 for m in actnorms(flow))
    flow.log_prob(second)  # already initialised: the flag is not read again, nothing changes
    assert all(torch.equal(m.bias, b) for m, b in zip(actnorms(flow), after_first, strict=True))
    flow.load_state_dict(MultiscaleFlow(1, 8, (1, 1), 4).state_dict())  # an uninitialised state
    flow.log_prob(second)  # initialises again, on this batch
    assert all(int(m.initialized) == 1 for m in actnorms(flow))
    assert not torch.equal(actnorms(flow)[0].bias, after_first[0])


def test_bits_per_dim_counts_dequantisation_and_logit():
    """At initialisation (couplings and actnorm = identity, 1×1 convs orthogonal) the flow is an
    orthogonal map after the logit, so its density has a closed form to compare with."""
    torch.manual_seed(1)
    flow = MultiscaleFlow(1, 8, (2, 2), 8, alpha=0.05).double().eval()
    x = torch.randint(0, 256, (3, 1, 8, 8)).double() / 255.0
    bpd = flow.bits_per_dim(x, generator=torch.Generator().manual_seed(7))
    expected, log_q, x_deq = closed_form_bits_per_dim(x, n_bits=8, alpha=0.05, noise_seed=7)
    assert torch.allclose(bpd, expected, atol=1e-9)
    assert torch.allclose(flow.log_prob(x_deq), log_q, atol=1e-9)


def test_decode_range_and_input_checks():
    flow = tiny_flow(dtype=torch.float32)
    x = flow.decode(10 * torch.randn(16, 64))
    bound = 0.05 / 0.9
    assert x.shape == (16, 1, 8, 8) and x.min() >= -bound - 1e-6 and x.max() <= 1 + bound + 1e-6
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 64\)"):
        flow.decode(torch.randn(2, 63))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 1, 8, 8\)"):
        flow.encode(torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="divisible by 4"):
        MultiscaleFlow(1, 10)


def test_svm_module_matches_sklearn():
    from sklearn.datasets import load_digits
    from sklearn.svm import LinearSVC

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = LinearSVC(C=0.1, dual=False).fit(X[:1000], y[:1000])
    svm = LinearSVMOracle(in_dim=64, n_classes=10).set_from_sklearn(clf)
    x = torch.tensor(X[1000:1200], dtype=torch.float32).reshape(-1, 1, 8, 8)
    scores = svm(x)
    np.testing.assert_allclose(scores.numpy(), clf.decision_function(X[1000:1200]), atol=1e-4)
    assert scores.argmax(1).tolist() == clf.predict(X[1000:1200]).tolist()
    with pytest.raises(ValueError, match="coef_ of shape"):
        LinearSVMOracle(in_dim=784).set_from_sklearn(clf)


def test_rbf_svm_module_matches_sklearn_and_reloads_its_size():
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = SVC(kernel="rbf", gamma="scale").fit(X[:1000], y[:1000])
    svm = RBFSVMOracle(in_dim=64, n_classes=10).set_from_sklearn(clf)
    x = torch.tensor(X[1000:], dtype=torch.float32)
    scores = svm(x)
    np.testing.assert_allclose(scores.numpy(), clf.decision_function(X[1000:]), atol=1e-4)
    # libsvm's predict breaks ties between equal vote counts by class order, the scores by confidence
    assert (scores.argmax(1).numpy() == clf.predict(X[1000:])).mean() > 0.98
    fresh = RBFSVMOracle(in_dim=64, n_classes=10)  # no support vectors until the checkpoint says how many
    fresh.load_state_dict(svm.state_dict())
    assert fresh.support.shape == (clf.support_vectors_.shape[0], 64)
    assert torch.equal(fresh(x), scores)
    with pytest.raises(ValueError, match="expected an RBF SVC with 10 classes"):
        RBFSVMOracle(in_dim=64).set_from_sklearn(SVC(kernel="linear").fit(X[:200], y[:200]))


def test_mnist_classifier_and_autoencoder_shapes():
    x = torch.rand(5, 1, 28, 28)
    for f in (MNISTClassifier().eval(), SmallCNN(channels=8, hidden=16, n_classes=2)):
        captured: list[torch.Tensor] = []
        handle = f.cam_layer.register_forward_hook(lambda m, i, o, store=captured: store.append(o))
        out = f(x)
        handle.remove()
        assert out.shape == (5, f.head[-1].out_features)
        assert captured[0].shape[-2:] == (14, 14) and captured[0].min() >= 0  # last conv, after ReLU
    aes = ClassAutoencoders(n_classes=10, channels=4, latent=8)
    r = aes(x, 3)
    assert r.shape == x.shape and r.min() >= 0 and r.max() <= 1
    assert aes.reconstruction_errors(x).shape == (5, 10)


@pytest.mark.parametrize("name", ["mnist_flow", "mnist_flow_wide", "mnist_flow_checkerboard",
                                  "mnist_flow_large", "mnist_classifier", "mnist_svm",
                                  "mnist_autoencoders"])
def test_recipes_registered_and_small(name):
    spec = zoo.REGISTRY[name]
    n_bytes = sum(t.numel() * t.element_size() for t in spec.build(**spec.params).state_dict()
                  .values())
    assert n_bytes <= 40 * 2**20


@pytest.mark.parametrize("name", ["mnist_flow", "mnist_flow_wide", "mnist_flow_checkerboard",
                                  "mnist_flow_large", "mnist_classifier", "mnist_svm", "mnist_svm_rbf",
                                  "mnist_autoencoders"])
def test_shipped_checkpoint_loads(name):
    if name not in zoo.read_manifest():
        pytest.skip(f"{name} has no shipped checkpoint yet")
    model = zoo.load(name)
    assert zoo.manifest_entry(name)["metrics"]
    if name == "mnist_flow":
        x = model.sample(4, torch.Generator().manual_seed(0), temperature=0.7).clamp(0, 1)
        assert (model.decode(model.encode(x)) - x).abs().max() <= 1e-4


@pytest.mark.parametrize("noise", [-0.1, float("inf"), float("nan")])
def test_classifier_recipe_rejects_bad_input_noise(noise):
    with pytest.raises(ValueError, match="input_noise"):
        mnist_recipes.train_mnist_classifier(MNISTClassifier(), torch.device("cpu"), Stage(), "mnist", 1, 4,
                                             1e-3, 0.0, 0, input_noise=noise)


def test_classifier_recipe_trains_on_noisy_inputs(monkeypatch):
    """input_noise changes what the CNN sees (so its weights), and is reproducible for a seed."""
    data = torch.rand(16, 1, 28, 28), torch.arange(16) % 10
    monkeypatch.setattr(mnist_recipes, "load_dataset", lambda name, split: data)

    def trained(noise: float) -> torch.Tensor:
        torch.manual_seed(0)
        f = MNISTClassifier()
        mnist_recipes.train_mnist_classifier(f, torch.device("cpu"), Stage(), "mnist", 2, 8, 1e-3, 0.0, 0,
                                             input_noise=noise)
        return torch.cat([p.detach().flatten() for p in f.parameters()])

    assert torch.equal(trained(0.5), trained(0.5))
    assert not torch.equal(trained(0.5), trained(0.0))
