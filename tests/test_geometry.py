import numpy as np
import pytest
import torch

from conftest import random_flow
from diffcf.data.helix import distance_to_helix, helix, helix_tangent
from diffcf.geometry import (
    first_order_check,
    induced_inverse_metric,
    jacobian,
    jacobian_loop,
    metric_spectrum,
    metric_step,
    subspace_share,
    trace_dimension,
)


def test_vmap_jacobian_equals_loop_reference():
    flow = random_flow()
    z = torch.randn(5, 3)
    for mode in ("fwd", "rev"):
        assert torch.allclose(jacobian(flow.decode, z, mode=mode), jacobian_loop(flow.decode, z),
                              atol=1e-5)
    for chunk_size in (1, 2):
        assert torch.allclose(jacobian(flow.decode, z, chunk_size=chunk_size), jacobian(flow.decode, z))
    chunked = jacobian(flow.decode, z, mode="rev", chunk_size=1, row_chunk=2)  # 3 rows: chunks 2 + 1
    assert torch.allclose(chunked, jacobian(flow.decode, z, mode="rev"))
    with pytest.raises(ValueError, match="mode"):
        jacobian(flow.decode, z, mode="central")
    with pytest.raises(ValueError, match="row_chunk"):
        jacobian(flow.decode, z, mode="fwd", row_chunk=2)


def test_metric_spectrum_reconstructs_gamma_inv():
    flow = random_flow(dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    gamma_inv, J = induced_inverse_metric(flow, x)
    evals, evecs = metric_spectrum(J)
    assert (evals[:, :-1] >= evals[:, 1:]).all() and (evals >= 0).all()
    rebuilt = evecs @ torch.diag_embed(evals) @ evecs.mT
    assert torch.allclose(rebuilt, gamma_inv, atol=1e-10)


def test_first_order_identity_residual_shrinks_linearly():
    flow = random_flow(dtype=torch.float64)
    f_t = lambda x: torch.sin(x).sum(1) + (x**2).prod(1)  # noqa: E731
    # ReLU conditioners make g piecewise smooth: keep λ small enough not to cross a kink
    lambdas = torch.logspace(-7, -5, 5, dtype=torch.float64)
    res = first_order_check(flow, f_t, torch.randn(6, 3, dtype=torch.float64), lambdas).median(1).values
    slope = np.polyfit(np.log(lambdas.numpy()), np.log(res.numpy()), 1)[0]
    assert 0.9 < slope < 1.1


def test_trace_dimension_counts_eigenvalues_to_the_share():
    ev = torch.tensor([[5.0, 3.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])  # cumulative .5 .8 .9 1 and 1 ...
    assert trace_dimension(ev, 0.9).tolist() == [3, 1]
    assert trace_dimension(ev, 0.5).tolist() == [1, 1]  # the first eigenvalue alone holds half
    assert trace_dimension(ev, 0.51).tolist() == [2, 1]
    assert trace_dimension(ev, 1.0).tolist() == [4, 1]
    # float32 rounding leaves this row's last cumulative share just below 1; still at most D
    ev = torch.tensor([[0.800011396408081, 0.6976675987243652, 0.518521785736084, 0.2938884496688843,
                        0.28226858377456665, 0.16102945804595947]])
    assert (ev.cumsum(-1) / ev.sum(-1, keepdim=True))[0, -1] < 1
    assert trace_dimension(ev, 1.0).tolist() == [6]
    with pytest.raises(ValueError, match="share"):
        trace_dimension(ev, 0.0)


def test_metric_step_is_gamma_inv_times_gradient():
    gamma_inv, grad = torch.randn(3, 4, 4), torch.randn(3, 4)
    expected = torch.stack([gamma_inv[i] @ grad[i] for i in range(3)])
    assert torch.allclose(metric_step(gamma_inv, grad), expected, atol=1e-6)


def test_subspace_share():
    v = torch.tensor([[3.0, 4.0, 0.0]])
    basis = torch.eye(3)[:, :1]
    assert torch.allclose(subspace_share(v, basis), torch.tensor([9 / 25]))


def _brute_distance(x, n=400_001):
    s = torch.linspace(-4, 4, n, dtype=torch.float64)
    h = helix(s)
    return torch.stack([(h - p).norm(dim=1).min() for p in x.double()])


def test_helix_distance_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([3 * torch.randn(40, 3, generator=gen),  # anywhere
                   helix(torch.rand(10, generator=gen) * 8 - 4) + 0.05 * torch.randn(10, 3, generator=gen),
                   torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 9.0], [5.0, -5.0, -6.0]])])
    exact = distance_to_helix(x)
    brute = _brute_distance(x)
    assert torch.allclose(exact, brute, atol=1e-6)
    assert torch.all(exact <= brute + 1e-12)  # never worse than the dense grid
    on = helix(torch.linspace(-4, 4, 7))
    assert distance_to_helix(on).max() < 1e-6
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        distance_to_helix(torch.zeros(3))


def test_helix_tangent_is_unit_derivative():
    s = torch.linspace(-3, 3, 7, dtype=torch.float64)
    eps = 1e-6
    numeric = (helix(s + eps) - helix(s - eps)) / (2 * eps)
    numeric = numeric / numeric.norm(dim=1, keepdim=True)
    assert torch.allclose(helix_tangent(s), numeric, atol=1e-8)


class _Linear(torch.nn.Module):
    """``g(z) = A z + 0.5`` as 1×4×4 images: a generator whose ``J = A`` everywhere."""

    def __init__(self, A):
        super().__init__()
        self.A = A

    def decode(self, z):
        return (z @ self.A.T + 0.5).reshape(len(z), 1, 4, 4)


def test_onmanifold_shares_of_a_linear_generator():
    """J = A: the spectrum is A's squared singular values, k is its trace dimension, and the Z-step
    A Aᵀ ∇ lies in span(A) (share 1) and more in the top-k eigenspace than the pixel gradient."""
    from diffcf.geometry import onmanifold_shares

    torch.manual_seed(0)
    A = torch.randn(16, 3) * 0.05
    f = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    z = torch.randn(5, 3)
    m = onmanifold_shares(f, _Linear(A), z, target=1, share=0.9)
    assert m.eigenvalues.shape == (5, 3)
    torch.testing.assert_close(m.eigenvalues, torch.linalg.svdvals(A).square().expand(5, -1))
    assert m.dim == int(trace_dimension(m.eigenvalues, 0.9).median())
    torch.testing.assert_close(m.z_step_in_span, torch.ones(5))
    assert bool((m.z_step > m.x_gradient).all())  # a generic pixel gradient leaves the 3-d span
