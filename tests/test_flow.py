import pytest
import torch

from conftest import random_flow
from diffcf.generative import reconstruction_error
from diffcf.models.realnvp import RealNVP, toy_masks


def test_round_trip_is_exact():
    flow = random_flow()
    x = 2 * torch.randn(256, 3)
    assert reconstruction_error(flow, x).max() <= 1e-5
    z = torch.randn(256, 3)
    assert (flow.encode(flow.decode(z)) - z).abs().max() <= 1e-5


def test_logdet_matches_brute_force_jacobian():
    flow = random_flow(dtype=torch.float64)
    x = torch.randn(8, 3, dtype=torch.float64)
    _, logdet = flow.encode_with_logdet(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: flow.encode(v[None])[0], x[i])
        sign, brute = torch.linalg.slogdet(jac)
        assert sign > 0
        assert torch.allclose(logdet[i], brute, atol=1e-10)


def test_log_prob_integrates_like_a_density_in_1d_slices():
    # change of variables: log q(x) = log N(z) + logdet, so q is a normalised density.
    flow = random_flow(dim=2, n_couplings=4, dtype=torch.float64)
    grid = torch.linspace(-8, 8, 801, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    mass = flow.log_prob(pts).exp().sum() * (grid[1] - grid[0]) ** 2
    assert abs(mass.item() - 1.0) < 1e-2


def test_masks_alternate_and_cover_every_coordinate():
    masks = toy_masks(3, 12)
    assert len(masks) == 12
    for a, b in zip(masks[::2], masks[1::2], strict=True):
        assert torch.equal(a + b, torch.ones(3))
    assert torch.stack(masks[::2]).sum(0).min() > 0


def test_bad_shapes_are_refused():
    flow = RealNVP(3, 2, 8)
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        flow.encode(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="dim >= 2"):
        RealNVP(1, 2, 8)


def test_shipped_helix_flow_is_invertible(helix_models):
    flow, _ = helix_models
    from diffcf.data.helix import sample_helix

    x, _ = sample_helix(500, torch.Generator().manual_seed(0))
    assert reconstruction_error(flow, x).max() <= 1e-5
