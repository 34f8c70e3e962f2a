"""The three methods Table IV compares with the paper's (§V, Fig. 15), as their authors define them.

Every method here answers the same question as :func:`~diffcf.search.counterfactual_search` (make
``f`` say the target class, stop at ``p_target > Λ``) for a whole batch, with the same classifier,
generator and stopping rule, so that a table can put them side by side:

- **Joshi et al. (2019), REVISE**: ascent in the generator's latent space with a penalty that keeps
  the image close to the original, ``loss(f(g(z)), t) + λ ‖g(z) − x‖₁``. With ``λ = 0`` it *is* the
  paper's method. Here: :func:`counterfactual_search` in Z with :func:`revise_penalty`.
- **Van Looveren & Klaise (2021), prototypes**: a pixel perturbation ``δ`` that minimises
  ``c·L_pred + β‖δ‖₁ + ‖δ‖₂² + γ‖x' − AE(x')‖₂² + θ‖enc(x') − proto_t‖₂²`` (``x' = x + δ``), where
  ``proto_t`` is the mean encoding of the ``K`` target-class training images nearest to ``x`` in
  the autoencoder's latent space; ``L_pred = max(max_{i≠t} p_i − p_t, −κ)`` on the probabilities,
  and the answer is the best valid iterate of a fixed number of steps, not the first. Here:
  :func:`prototype_search` with :func:`class_prototypes`.
- **Zhao et al. (2018), natural adversarial examples**: no gradients; random latent perturbations at
  radii in a band ``[r, r + Δr)`` that moves outward until some perturbation flips ``f``; the flip
  of smallest radius is the answer. Here: :func:`natural_adversarial_search`.

Deviations: the optimiser is Adam throughout (Van Looveren & Klaise use FISTA and find their
weight ``c`` by bisection; here a few values of ``c`` are tried in increasing order), the encoder of
REVISE and Zhao et al. is the flow's exact ``g⁻¹`` (they train an inverter), and Zhao et al.'s
hybrid refinement (shrinking the band around the best radius) is left out. Every method counts as
successful where ``f`` gives the target its largest probability and one above ``Λ``
(:class:`~diffcf.targets.ClassTarget`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from diffcf.generative import Generator, check_generator
from diffcf.search import SearchResult
from diffcf.targets import ClassTarget, Target
from diffcf.utils import close_bar, progress_bar

Penalty = Callable[[Tensor, Tensor], Tensor]


def _check_weight(name: str, value: float) -> None:
    if isinstance(value, bool) or not (isinstance(value, int | float) and 0 <= value < float("inf")):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def revise_penalty(x: Tensor, lam: float) -> Penalty:
    """REVISE's ``λ ‖x_k − x‖₁`` per image (Joshi et al.), for ``counterfactual_search(...,
    penalty=)``: ``x`` are the originals, ``rows`` pick each working-set image's own."""
    _check_weight("lam", lam)
    x0 = x.detach()

    def penalty(x_k: Tensor, rows: Tensor) -> Tensor:
        return lam * (x_k - x0[rows]).abs().flatten(1).sum(1)

    return penalty


@torch.no_grad()
def class_prototypes(encoder: nn.Module, x: Tensor, bank: Tensor, k: int = 5,
                     batch_size: int = 512) -> Tensor:
    """Van Looveren & Klaise's prototype for every image of ``x``: the mean encoding of the ``k``
    images of ``bank`` (the target class's training images) nearest to it in the encoder's latent
    space. Returns ``(len(x), latent)``."""
    if not 1 <= k <= len(bank):
        raise ValueError(f"k must be between 1 and the bank's {len(bank)} images, got {k}")
    codes = torch.cat([encoder(bank[i : i + batch_size]) for i in range(0, len(bank), batch_size)])
    queries = encoder(x)
    nearest = torch.cdist(queries, codes).topk(k, dim=1, largest=False).indices
    return codes[nearest].mean(1)


def prototype_penalty(x: Tensor, autoencoder: nn.Module, encoder: nn.Module, prototypes: Tensor,
                      beta: float = 0.1, gamma: float = 1.0, theta: float = 1.0) -> Penalty:
    """Van Looveren & Klaise's terms besides the prediction loss, per image:
    ``β‖δ‖₁ + ‖δ‖₂² + γ‖x' − AE(x')‖₂² + θ‖enc(x') − proto‖₂²`` with ``δ = x' − x`` (their eq. 1
    with the prototype term); ``prototypes`` from :func:`class_prototypes`."""
    for name, value in (("beta", beta), ("gamma", gamma), ("theta", theta)):
        _check_weight(name, value)
    if len(prototypes) != len(x):
        raise ValueError(f"need one prototype per image: {len(prototypes)} prototypes for {len(x)} images")
    x0, protos = x.detach(), prototypes.detach()

    def penalty(x_k: Tensor, rows: Tensor) -> Tensor:
        delta = (x_k - x0[rows]).flatten(1)
        out = beta * delta.abs().sum(1) + delta.pow(2).sum(1)
        if gamma:
            out = out + gamma * (x_k - autoencoder(x_k)).pow(2).flatten(1).sum(1)
        if theta:
            out = out + theta * (encoder(x_k) - protos[rows]).pow(2).sum(1)
        return out

    return penalty


@torch.no_grad()
def natural_adversarial_search(f: nn.Module, x: Tensor, target: Target, g: Generator, n_samples: int = 64,
                               band: float = 1.0, max_bands: int = 50,
                               bounds: tuple[float, float] | None = None, seed: int = 0,
                               progress: bool = False, chunk: int = 4096) -> SearchResult:
    """Zhao et al.'s iterative stochastic search for a batch: from ``z = g⁻¹(x)``, draw ``n_samples``
    perturbations ``z + ρ u`` per image (``u`` uniform on the unit sphere, ``ρ`` uniform in
    ``[b·band, (b+1)·band)``) in band ``b = 0, 1, ...`` until one reaches the target; keep the one
    of smallest ``ρ``. An image that no band up to ``max_bands`` flips fails (its ``x`` stays the
    original). ``steps`` counts the bands each image used (``n_samples`` queries of ``f`` each).
    Perturbations are decoded and classified ``chunk`` at a time (memory, not results).
    """
    check_generator(g)
    if not all(isinstance(v, int) and v >= 1 for v in (n_samples, max_bands, chunk)):
        raise ValueError(f"n_samples, max_bands and chunk must be integers >= 1, "
                         f"got {n_samples}, {max_bands}, {chunk}")
    if not band > 0:
        raise ValueError(f"band (the width Δr of each radius band) must be > 0, got {band}")
    gen = torch.Generator(device=x.device).manual_seed(seed)
    z = g.encode(x)
    n, d = z.shape
    x_out, z_out = x.clone(), z.clone()
    out = f(x)
    target.check(out)
    success = torch.zeros(n, dtype=torch.bool, device=x.device)
    steps = torch.full((n,), max_bands, dtype=torch.long, device=x.device)
    seconds = torch.zeros(n, device=x.device)
    idx = torch.arange(n, device=x.device)
    bar = progress_bar(max_bands, "natural adversarial search (bands)", show=progress)
    t0 = time.perf_counter()
    for b in range(max_bands):
        m = len(idx)
        u = torch.randn(m, n_samples, d, generator=gen, device=x.device)
        u = u / u.norm(dim=2, keepdim=True)
        rho = (b + torch.rand(m, n_samples, 1, generator=gen, device=x.device)) * band
        z_try = (z[idx, None] + rho * u).reshape(m * n_samples, d)
        x_try = torch.cat([g.decode(part) for part in z_try.split(chunk)])
        if bounds is not None:
            x_try = x_try.clamp(*bounds)
        out = torch.cat([f(part) for part in x_try.split(chunk)])
        hit = target.select(idx.repeat_interleave(n_samples)).reached(out).reshape(m, n_samples)
        found = hit.any(1)
        if found.any():
            best = torch.where(hit, rho[..., 0], torch.full_like(rho[..., 0], float("inf"))).argmin(1)
            pick = torch.arange(m, device=x.device) * n_samples + best
            rows = idx[found]
            x_out[rows] = x_try.reshape(m * n_samples, *x.shape[1:])[pick[found]]
            z_out[rows] = z_try[pick[found]]
            success[rows], steps[rows] = True, b + 1
            seconds[rows] = time.perf_counter() - t0
            idx = idx[~found]
        if bar is not None:
            bar.update(1)
        if len(idx) == 0:
            break
    close_bar(bar)
    seconds[idx] = time.perf_counter() - t0
    return SearchResult(x=x_out, z=z_out, success=success, steps=steps, seconds=seconds, output=f(x_out))


def prototype_search(f: nn.Module, x: Tensor, target: ClassTarget, autoencoder: nn.Module, encoder: nn.Module,
                     prototypes: Tensor, c: tuple[float, ...] = (1.0, 10.0, 100.0), kappa: float = 0.0,
                     beta: float = 0.1, gamma: float = 100.0, theta: float = 100.0, lr: float = 1e-2,
                     steps: int = 300, bounds: tuple[float, float] | None = None,
                     progress: bool = False) -> SearchResult:
    """Van Looveren & Klaise's counterfactual guided by prototypes for a batch: Adam on ``x' = x + δ``
    for ``steps`` steps on ``c·L_pred + β‖δ‖₁ + ‖δ‖₂² + γ‖x' − AE(x')‖₂² + θ‖enc(x') − proto‖₂²``
    with ``L_pred = max(max_{i≠t} p_i − p_t, −κ)``; the answer is, per image, the iterate of lowest
    loss among those where ``p_t > Λ`` (``steps`` is its step). The weights ``c`` are tried in turn
    on the images still without one (their bisection on ``c``, its increasing half); an image none
    of them gives a valid iterate fails. The defaults of ``β, γ, θ`` are their paper's."""
    if not c:
        raise ValueError("c must list at least one weight of the prediction loss")
    for name, value in (("kappa", kappa), *(("c", ci) for ci in c)):
        _check_weight(name, value)
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if len(prototypes) != len(x):
        raise ValueError(f"need one prototype per image: {len(prototypes)} prototypes for {len(x)} images")
    n = len(x)
    best_x = x.detach().clone()
    best_step = torch.full((n,), steps, dtype=torch.long, device=x.device)
    success = torch.zeros(n, dtype=torch.bool, device=x.device)
    left = torch.arange(n, device=x.device)
    t0 = time.perf_counter()
    for ci in c:
        xs, ok, at = _prototype_run(f, x[left], target.select(left), autoencoder, encoder, prototypes[left],
                                    ci, kappa, beta, gamma, theta, lr, steps, bounds, progress)
        best_x[left[ok]], best_step[left[ok]], success[left[ok]] = xs[ok], at[ok], True
        left = left[~ok]
        if len(left) == 0:
            break
    seconds = torch.full((n,), time.perf_counter() - t0, device=x.device)
    with torch.no_grad():
        return SearchResult(x=best_x, z=None, success=success, steps=best_step, seconds=seconds,
                            output=f(best_x))


def _prototype_run(f: nn.Module, x: Tensor, target: ClassTarget, autoencoder: nn.Module, encoder: nn.Module,
                   prototypes: Tensor, c: float, kappa: float, beta: float, gamma: float, theta: float,
                   lr: float, steps: int, bounds: tuple[float, float] | None,
                   progress: bool) -> tuple[Tensor, Tensor, Tensor]:
    """One run of :func:`prototype_search` at weight ``c``: best valid iterates, found, their steps."""
    penalty = prototype_penalty(x, autoencoder, encoder, prototypes, beta, gamma, theta)
    rows = torch.arange(len(x), device=x.device)
    v = x.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([v], lr=lr)
    best_loss = torch.full((len(x),), float("inf"), device=x.device)
    best_x, best_step = x.detach().clone(), torch.full((len(x),), steps, dtype=torch.long, device=x.device)
    bar = progress_bar(steps, f"prototype search, c = {c:g}", show=progress)
    for k in range(steps + 1):
        x_k = v.clamp(*bounds) if bounds is not None else v
        logits = f(x_k)
        if k == 0:
            target.check(logits)
        p = logits.softmax(1)
        t = target.classes(logits)
        p_t = p.gather(1, t[:, None])[:, 0]
        p_other = p.scatter(1, t[:, None], float("-inf")).amax(1)
        loss = c * (p_other - p_t).clamp(min=-kappa) + penalty(x_k, rows)
        with torch.no_grad():
            better = target.reached(logits) & (loss < best_loss)
            best_loss = torch.where(better, loss, best_loss)
            best_x = torch.where(better.view(-1, *[1] * (x.ndim - 1)), x_k, best_x)
            best_step = torch.where(better, k, best_step)
        if k == steps:
            break
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        if bar is not None:
            bar.update(1)
    close_bar(bar)
    return best_x, torch.isfinite(best_loss), best_step
