"""The induced metric of §III: the Riemannian geometry a generator ``g: Z → X`` puts on X.

The flat metric on Z pushed forward by ``g`` gives the **inverse metric** on X::

    γ⁻¹(x) = J Jᵀ,      J = ∂g/∂z  at  z = g⁻¹(x)

and one ascent step in Z moves x, to first order, along the metric-weighted gradient::

    g(z + λ ∂(f∘g)/∂z) = x + λ γ⁻¹(x) ∂f/∂x + O(λ²)          (first-order identity)

With the SVD ``J = U Σ Vᵀ`` we have ``γ⁻¹ = U Σ² Uᵀ``: the eigenvectors of γ⁻¹ with large
eigenvalues span the tangent space of the data manifold, the others are squeezed (Theorem 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jacfwd, jacrev, vmap

from diffcf.generative import Generator
from diffcf.inversion import KnownLatents


def _flat_single(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Turn a batched map ``(B, d) -> (B, ...)`` into a one-sample map ``(d,) -> (D,)``."""
    return lambda z: fn(z.unsqueeze(0)).reshape(-1)


def jacobian(fn: Callable[[Tensor], Tensor], z: Tensor, mode: str = "fwd",
             chunk_size: int | None = None, row_chunk: int | None = None) -> Tensor:
    """Per-sample Jacobians ``∂fn/∂z`` of shape ``(B, D, d)`` with ``torch.func`` (``vmap``).

    ``mode="fwd"`` (``jacfwd``) costs ``d`` forward passes, ``"rev"`` (``jacrev``) ``D`` backward ones.
    ``chunk_size`` bounds how many samples are vmapped at once (memory: images need ``d`` passes each);
    ``chunk_size=1`` is a plain loop over the samples (vmapping one sample costs ~25% more on a CPU).
    ``row_chunk`` (``"rev"`` only) bounds how many output rows one vmapped backward pass computes.
    For the 784 × 784 MNIST Jacobian on a 2-core CPU, one image at a time in chunks of 196 rows is
    2.4× faster than ``jacfwd`` over all rows and 12× faster than a row loop: the working set stays
    in cache (``benchmarks/mnist_search.py``).
    """
    if mode not in ("fwd", "rev"):
        raise ValueError(f"mode must be 'fwd' or 'rev', got {mode!r}")
    if z.ndim != 2:
        raise ValueError(f"z must have shape (batch, d), got {tuple(z.shape)}")
    if row_chunk is not None and (mode != "rev" or row_chunk < 1):
        raise ValueError(f"row_chunk needs mode='rev' and a positive value, got {mode!r}, {row_chunk}")
    single = _flat_single(fn)
    jac_one = jacfwd(single) if mode == "fwd" else jacrev(single, chunk_size=row_chunk)
    if chunk_size is None:
        return vmap(jac_one)(z)
    if chunk_size == 1:
        return torch.stack([jac_one(zi) for zi in z])
    return torch.cat([vmap(jac_one)(z[i : i + chunk_size]) for i in range(0, len(z), chunk_size)])


def jacobian_loop(fn: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """Reference Jacobian: one backward pass per output coordinate and sample (slow, simple)."""
    rows = []
    for zi in z:
        zi = zi.detach().requires_grad_(True)
        out = fn(zi.unsqueeze(0)).reshape(-1)
        rows.append(torch.stack([torch.autograd.grad(o, zi, retain_graph=True)[0] for o in out]))
    return torch.stack(rows)


def induced_inverse_metric(g: Generator, x: Tensor, mode: str = "fwd",
                           chunk_size: int | None = None,
                           row_chunk: int | None = None) -> tuple[Tensor, Tensor]:
    """``γ⁻¹(x) = J Jᵀ`` with ``J = ∂g/∂z`` at ``z = g⁻¹(x)``; returns ``(γ⁻¹, J)``, ``(B, D, D)``
    and ``(B, D, d)``. ``mode``, ``chunk_size``, ``row_chunk``: as in :func:`jacobian`."""
    with torch.no_grad():
        z = g.encode(x)
    J = jacobian(g.decode, z, mode=mode, chunk_size=chunk_size, row_chunk=row_chunk)
    return J @ J.mT, J


def metric_spectrum(J: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues (descending) and eigenvectors (columns) of ``γ⁻¹ = J Jᵀ`` from the SVD of ``J``.

    ``J = U Σ Vᵀ`` gives ``γ⁻¹ = U Σ² Uᵀ``: eigenvalues ``σᵢ²``, eigenvectors the columns of ``U``.
    Going through the SVD keeps the tiny eigenvalues accurate and non-negative, where an
    eigen-solver on ``J Jᵀ`` would lose them to round-off.
    """
    U, S, _ = torch.linalg.svd(J, full_matrices=False)
    return S**2, U


def metric_step(gamma_inv: Tensor, grad_x: Tensor) -> Tensor:
    """The direction ``γ⁻¹ ∂f/∂x`` in which one Z-ascent step moves x (first-order identity), for a
    batch: ``gamma_inv`` ``(B, D, D)``, ``grad_x`` ``(B, D)`` → ``(B, D)``."""
    return (gamma_inv @ grad_x[..., None])[..., 0]


def trace_dimension(eigenvalues: Tensor, share: float = 0.9) -> Tensor:
    """Per row of descending ``eigenvalues`` (``(B, D)``, as :func:`metric_spectrum` gives them), the
    number of leading eigenvalues that hold ``share`` of the trace: of the squared length a random
    unit latent step produces in X. Our rule for "the dimension of the manifold the generator has
    learned" (the paper gives a number for MNIST, about 30, but no rule)."""
    if not 0 < share <= 1:
        raise ValueError(f"share must lie in (0, 1], got {share}")
    cumulative = eigenvalues.cumsum(-1) / eigenvalues.sum(-1, keepdim=True)
    # rounding can leave the last cumulative share just below 1: never count past the last eigenvalue
    return ((cumulative < share).sum(-1) + 1).clamp(max=eigenvalues.shape[-1])


def first_order_check(
    g: Generator, f_t: Callable[[Tensor], Tensor], x: Tensor, lambdas: Tensor
) -> Tensor:
    """Residual of the first-order identity, divided by λ, for each λ and sample: shape ``(L, B)``.

    ``‖g(z + λ ∂(f_t∘g)/∂z) − x − λ γ⁻¹ ∂f_t/∂x‖ / λ``, which must shrink like ``O(λ)``.
    ``f_t`` maps a batch in X to one scalar per sample. Use float64 models for small λ.
    """
    x = x.detach().requires_grad_(True)
    (grad_x,) = torch.autograd.grad(f_t(x).sum(), x)
    gamma_inv, _ = induced_inverse_metric(g, x.detach())
    predicted_step = metric_step(gamma_inv, grad_x.flatten(1)).reshape(x.shape)
    with torch.no_grad():
        z = g.encode(x)
    z = z.detach().requires_grad_(True)
    (grad_z,) = torch.autograd.grad(f_t(g.decode(z)).sum(), z)
    out = []
    with torch.no_grad():
        for lam in lambdas.tolist():
            moved = g.decode(z + lam * grad_z)
            resid = (moved - x - lam * predicted_step).flatten(1).norm(dim=1)
            out.append(resid / lam)
    return torch.stack(out)


def subspace_share(v: Tensor, basis: Tensor) -> Tensor:
    """Share ``‖Bᵀv‖² / ‖v‖²`` of each vector ``v`` (``(B, D)``) inside the span of the orthonormal
    columns of ``basis`` (``(B, D, k)`` or ``(D, k)``): 1 = along the subspace, 0 = normal to it."""
    proj = (basis.mT @ v[..., None])[..., 0]
    return (proj**2).sum(-1) / (v**2).sum(-1).clamp_min(torch.finfo(v.dtype).tiny)


@dataclass
class OnManifold:
    """What :func:`onmanifold_shares` measures at a batch of images (Theorem 1 / 2 in numbers)."""

    eigenvalues: Tensor  # (B, d) of γ⁻¹ = J Jᵀ, descending (its non-zero part)
    dim: int  # median trace dimension k (the leading eigenvalues holding ``share`` of the trace)
    z_step: Tensor  # (B,) share of the first-order Z-step γ⁻¹ ∇_x log f_t inside the top-k eigenspace
    x_gradient: Tensor  # (B,) share of the X-gradient ∇_x log f_t inside the same eigenspace
    z_step_in_span: Tensor  # (B,) share of the Z-step inside all of span(J): 1 up to round-off


def onmanifold_shares(f: Callable[[Tensor], Tensor], g: Generator, z: Tensor, target: int,
                      share: float = 0.9, **jacobian_options) -> OnManifold:
    """At the images ``x = clip(g(z), 0, 1)``: the spectrum of ``γ⁻¹ = J Jᵀ`` (:func:`metric_spectrum`),
    its trace dimension ``k`` (:func:`trace_dimension`, the median over the batch), and how much of a
    step toward class ``target`` of classifier ``f`` lies inside the top-``k`` eigenspace: the
    first-order Z-step ``γ⁻¹ ∇_x log f_target`` (:func:`metric_step`) against the X-gradient
    ``∇_x log f_target`` itself. ``jacobian_options`` go to :func:`jacobian` (a flow's square ``J``
    is cheapest with ``mode="rev", chunk_size=1, row_chunk=196``)."""
    known = KnownLatents(g, z)
    with torch.no_grad():
        x = known.decode(z).clamp(0, 1)
    gamma_inv, J = induced_inverse_metric(known, x, **jacobian_options)
    eigenvalues, U = metric_spectrum(J)
    dim = int(trace_dimension(eigenvalues, share).median())
    x_req = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x_req).log_softmax(1)[:, target].sum(), x_req)
    grad = grad.flatten(1)
    z_step = metric_step(gamma_inv, grad)
    return OnManifold(eigenvalues, dim, subspace_share(z_step, U[:, :, :dim]),
                      subspace_share(grad, U[:, :, :dim]), subspace_share(z_step, U[:, :, :J.shape[-1]]))
