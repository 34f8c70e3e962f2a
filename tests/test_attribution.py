import pytest
import torch
from torch import nn

from diffcf import attribution as A


def small_cnn(n_classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Softplus(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, n_classes),
    ).eval()


def images(n: int = 6, size: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


class Linear(nn.Module):
    """f_c(x) = <w_c, x>: attributions are known in closed form."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = w  # (C, 1, H, W)

    def forward(self, x):
        return torch.einsum("nchw,kchw->nk", x, self.w)


def test_teaching_ig_matches_captum():
    from captum.attr import IntegratedGradients

    f, x = small_cnn(), images()
    baseline = A.blurred_baseline(x, 1.0)
    t = torch.tensor([0, 1, 2, 0, 1, 2])
    ours = A.integrated_gradients_riemann(f, x, baseline, t, n_steps=20)
    ref = IntegratedGradients(f).attribute(x, baselines=baseline, target=t, n_steps=20,
                                           method="riemann_middle")
    rel = (ours - ref).abs().max() / ref.abs().max()
    assert rel < 1e-4
    # a different step count is a different sum: the comparison can fail
    other = A.integrated_gradients_riemann(f, x, baseline, t, n_steps=3)
    assert (other - ref).abs().max() / ref.abs().max() > 1e-4


def test_ig_completeness_converges_on_small_model():
    f, x = small_cnn(), images()
    baseline = A.black_baseline(x)
    gaps = [A.completeness_gap(f, x, baseline, A.integrated_gradients(f, x, 1, baseline, n_steps=k), 1)
            for k in (2, 64)]
    assert gaps[1].median() < 1e-3
    assert gaps[1].median() < gaps[0].median()
    path = A.ig_path(f, x, baseline, 1, n_steps=64)
    assert torch.allclose(path["sum"][-1], path["gap_target"], rtol=1e-2, atol=1e-3)


def test_linear_model_ig_and_expected_gradients_closed_form():
    w = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    f, x = Linear(w), images(4)
    baseline = A.uniform_baseline(x, torch.Generator().manual_seed(3))
    phi = A.integrated_gradients(f, x, 1, baseline, n_steps=4)
    assert torch.allclose(phi, w[1] * (x - baseline), atol=1e-5)
    data = images(16, seed=4)
    eg = A.expected_gradients(f, x, 1, data, n_samples=4000, generator=torch.Generator().manual_seed(5))
    exact = w[1] * (x - data.mean(0))
    assert (eg - exact).abs().max() < 0.05 * exact.abs().max()


def test_baseline_constructors():
    x, gen = images(5), torch.Generator().manual_seed(0)
    for name in A.BASELINES:
        b = A.make_baseline(name, x, sigma=0.5, generator=gen)
        assert b.shape == x.shape
        assert b.min() >= 0 and b.max() <= 1, name
    assert (A.make_baseline("black", x) == 0).all()
    # maximum distance: farthest in L1 of any image in [0, 1]: sum_i max(x_i, 1 - x_i)
    far = A.max_distance_baseline(x)
    d_far = (far - x).abs().flatten(1).sum(1)
    assert torch.allclose(d_far, torch.maximum(x, 1 - x).flatten(1).sum(1))
    for _ in range(20):
        other = torch.rand(x.shape, generator=gen)
        assert ((other - x).abs().flatten(1).sum(1) <= d_far + 1e-6).all()
    for corner in (torch.zeros_like(x), torch.ones_like(x)):
        assert ((corner - x).abs().flatten(1).sum(1) <= d_far + 1e-6).all()
    # blur keeps constants and (away from borders) the mean; Gaussian baseline is centred on x
    assert torch.allclose(A.gaussian_blur(torch.full((1, 1, 9, 9), 0.3), 2.0), torch.full((1, 1, 9, 9), 0.3))
    g = A.gaussian_baseline(torch.full((200, 1, 8, 8), 0.5), 0.1, gen)
    assert abs(g.mean().item() - 0.5) < 0.01 and abs(g.std().item() - 0.1) < 0.01
    with pytest.raises(ValueError, match="unknown baseline"):
        A.make_baseline("zeros", x)


def test_log_odds():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    f = A.LogOdds(nn.Identity())
    out = f(logits)
    assert torch.allclose(out, torch.tensor([[-2.0, 2.0], [2.0, -2.0]]))
    p = torch.softmax(torch.tensor([[0.3, 1.2, -0.5]]), 1)
    assert torch.allclose(f(torch.tensor([[0.3, 1.2, -0.5]])), (p / (1 - p)).log(), atol=1e-6)


def test_meaningful_perturbation_reduces_target_score():
    torch.manual_seed(0)
    w = torch.zeros(2, 1, 8, 8)
    w[1, 0, 2:6, 2:6] = 1.0  # class 1 = brightness in the centre
    w[0] = -w[1]
    f = A.LogOdds(Linear(w))
    x = torch.zeros(3, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0
    saliency = A.meaningful_perturbation(f, x, 1, sigma=2.0, mask_size=8, steps=100, l1=0.05, tv=0.1)
    m = 1 - saliency
    phi = m * x + (1 - m) * A.gaussian_blur(x, 2.0)
    before, after = A.target_scores(f, x, 1), A.target_scores(f, phi, 1)
    assert (after < before - 1.0).all()
    # the deleted region is where the evidence is
    assert saliency[:, :, 3:5, 3:5].mean() > 2 * saliency[:, :, :2].mean()


def test_perfect_ranking_ablation_below_random():
    w = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(6))
    w[0] = 0
    f, x = Linear(w), images(8)
    exact = w[1] * x  # exact contributions of a linear model with zero replacement
    ks = list(range(0, 65, 8))
    perfect = A.topk_ablation_curve(f, x, 1, exact, ks, mean_value=0.0)
    worst = A.topk_ablation_curve(f, x, 1, -exact, ks, mean_value=0.0)
    random = A.topk_ablation_curve(f, x, 1, torch.rand_like(x), ks, mean_value=0.0)
    assert torch.allclose(perfect[:, 0], random[:, 0]) and torch.allclose(perfect[:, -1], random[:, -1])
    assert A.curve_auc(ks, perfect) < A.curve_auc(ks, random) < A.curve_auc(ks, worst)
    # perfect ranking is optimal at every k for a linear model
    assert (perfect <= random + 1e-5).all()


def test_mass_centre_and_its_ablation():
    att = torch.zeros(2, 1, 9, 9)
    att[0, 0, 2, 6] = 1.0
    att[1, 0, 4, 4] = -1.0  # no positive mass: image centre
    assert torch.allclose(A.mass_centre(att), torch.tensor([[2.0, 6.0], [4.0, 4.0]]))
    f = Linear(torch.stack([torch.zeros(1, 9, 9), torch.ones(1, 9, 9)]))
    x = torch.ones(2, 1, 9, 9)
    curve = A.mass_centre_ablation_curve(f, x, 1, att, [0, 1, 20], mean_value=0.0)
    assert torch.allclose(curve[:, 0], torch.tensor([80.0, 80.0]))
    assert torch.allclose(curve[:, 2], torch.zeros(2))


def test_attribute_dispatch_shapes_and_errors():
    f, x = small_cnn(), images(4)
    for method in A.METHODS:
        kw = {"layer": f[0]} if method == "gradcam" else {}
        if method == "meaningful_perturbation":
            kw = {"steps": 5, "mask_size": 4}
        out = A.attribute(method, f, x, 2, n_steps=8, smoothgrad_samples=4, **kw)
        assert out.shape == x.shape and torch.isfinite(out).all(), method
    with pytest.raises(ValueError, match="unknown attribution method"):
        A.attribute("lime", f, x, 0)
    with pytest.raises(ValueError, match="needs layer"):
        A.attribute("gradcam", f, x, 0)
    with pytest.raises(ValueError, match="batch of images"):
        A.attribute("gradient", f, x[0], 0)


def test_suites_and_object_share():
    x = images(3)
    gen = torch.Generator().manual_seed(0)
    b = A.baseline_suite(x, blur_sigmas=[1.0, 2.5], gaussian_sigma=0.2, generator=gen)
    assert list(b) == ["black", "max_distance", "blurred_1", "blurred_2p5", "uniform", "gaussian"]
    assert torch.equal(b["blurred_2p5"], A.blurred_baseline(x, 2.5))
    f = small_cnn()
    maps = A.attribution_suite(f, f[0], x, 1, images(10, seed=3), b, n_steps=4, n_average=2, eg_samples=4,
                               generator=torch.Generator().manual_seed(0))
    expected = {"gradient", "smoothgrad", "gradcam", "meaningful_perturbation", "ig_uniform_avg",
                "ig_gaussian_avg", "expected_gradients"} | {f"ig_{n}" for n in b}
    assert set(maps) == expected and all(m.shape == x.shape for m in maps.values())
    obj = torch.zeros(1, 1, 8, 8)
    obj[0, 0, 3:5, 3:5] = 1.0
    att = torch.zeros(1, 1, 8, 8)
    att[0, 0, 3, 3], att[0, 0, 0, 7] = 3.0, -1.0
    assert torch.allclose(A.object_share(att, obj, margin=0), torch.tensor([0.75]))
