"""Attribution maps and their tests: what Captum lacks, on top of Captum (notebooks 09 and 10).

Captum computes Saliency, SmoothGrad (``NoiseTunnel``), Integrated Gradients, Grad-CAM and
GradientShap; :func:`attribute` calls them with the project's defaults, batched (Captum's
``internal_batch_size``). Written here is only what Captum does not offer:

- :class:`LogOdds`: the explained quantity, ``log p_c − log(1 − p_c)`` per class (binary: the
  logit difference), so attributions and ablation curves speak about the same number;
- **Meaningful Perturbations** (Fong & Vedaldi 2017), :func:`meaningful_perturbation`;
- IG **baselines** (Distill, Sturmfels et al. 2020): :func:`make_baseline` and its constructors;
- IG averaged over many baselines and **Expected Gradients** (:func:`expected_gradients`, Captum's
  GradientShap with ``stdevs=0``, which is exactly the EG estimator);
- the teaching **Riemann sum** of IG (:func:`integrated_gradients_riemann`), its path
  (:func:`ig_path`) and the **completeness gap** (:func:`completeness_gap`);
- the **ablation tests**: top-k (:func:`topk_ablation_curve`) and mass-centre
  (:func:`mass_centre_ablation_curve`) with their area under the curve (:func:`curve_auc`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

METHODS = ("gradient", "smoothgrad", "ig", "gradcam", "meaningful_perturbation")
BASELINES = ("black", "max_distance", "blurred", "uniform", "gaussian", "training")


class LogOdds(nn.Module):
    """Wrap a classifier ``f`` (logits) so that it returns the **log-odds** of every class,
    ``log p_c − log(1 − p_c) = ℓ_c − logsumexp_{j≠c} ℓ_j``; for two classes, ``ℓ_c − ℓ_other``."""

    def __init__(self, f: nn.Module):
        super().__init__()
        self.f = f

    def forward(self, x: Tensor) -> Tensor:
        logits = self.f(x)
        c = logits.shape[1]
        eye = torch.eye(c, dtype=torch.bool, device=logits.device)
        others = logits[:, None, :].expand(-1, c, -1).masked_fill(eye, float("-inf"))
        return logits - torch.logsumexp(others, dim=2)


def _check_images(x: Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"x must be a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or Inf")


def _leaf(x: Tensor) -> Tensor:
    """A copy of ``x`` that requires gradients (Captum warns about inputs that do not)."""
    return x.detach().clone().requires_grad_(True)


def _targets(target: int | Tensor, n: int) -> Tensor:
    t = torch.as_tensor(target, dtype=torch.long)
    return t.expand(n).clone() if t.ndim == 0 else t


@torch.no_grad()
def target_scores(model: nn.Module, x: Tensor, target: int | Tensor, batch_size: int = 1024) -> Tensor:
    """``model(x)[i, target_i]`` per sample, computed in batches."""
    t = _targets(target, len(x)).to(x.device)
    out = torch.cat([model(xb) for xb in x.split(batch_size)])
    return out.gather(1, t[:, None])[:, 0]


# ---- blur and baselines (Distill: "Visualizing the Impact of Feature Attribution Baselines") -----


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` images (kernel ±3σ, reflect padding);
    ``sigma = 0`` returns ``x``."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return x.clone()
    radius = max(1, min(math.ceil(3 * sigma), min(x.shape[-2:]) - 1))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    h = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.reshape(1, 1, 1, -1).expand(c, 1, 1, -1),
                 groups=c)
    return F.conv2d(F.pad(h, (0, 0, radius, radius), mode="reflect"),
                    k.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def black_baseline(x: Tensor) -> Tensor:
    """All zeros: IG can never credit a black pixel (its ``x_i − x'_i`` is 0)."""
    return torch.zeros_like(x)


def max_distance_baseline(x: Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """The image farthest from ``x`` in L1 within ``bounds``: each pixel goes to the far end,
    ``hi`` where ``x < (lo + hi)/2`` else ``lo`` (it still contains the object's outline, inverted)."""
    lo, hi = bounds
    return torch.where(x < (lo + hi) / 2, torch.full_like(x, hi), torch.full_like(x, lo))


def blurred_baseline(x: Tensor, sigma: float) -> Tensor:
    """``x`` blurred with a Gaussian of width ``sigma`` pixels: removes edges, keeps mean brightness."""
    return gaussian_blur(x, sigma)


def uniform_baseline(x: Tensor, generator: torch.Generator | None = None,
                     bounds: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """Uniform noise in ``bounds``, independent of ``x``."""
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(x.shape, generator=generator).to(x)


def gaussian_baseline(x: Tensor, sigma: float, generator: torch.Generator | None = None,
                      bounds: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """``x + ε``, ``ε ~ N(0, σ²)``, clipped to ``bounds``: a baseline *around* ``x``."""
    return (x + sigma * torch.randn(x.shape, generator=generator).to(x)).clamp(*bounds)


def training_baseline(x: Tensor, data: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One random training image per sample of ``x`` (Expected Gradients draws many)."""
    idx = torch.randint(len(data), (len(x),), generator=generator)
    return data[idx].to(x)


def make_baseline(name: str, x: Tensor, sigma: float = 1.0, data: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
    """A baseline for every sample of ``x`` by name: one of :data:`BASELINES`."""
    if name == "black":
        return black_baseline(x)
    if name == "max_distance":
        return max_distance_baseline(x)
    if name == "blurred":
        return blurred_baseline(x, sigma)
    if name == "uniform":
        return uniform_baseline(x, generator)
    if name == "gaussian":
        return gaussian_baseline(x, sigma, generator)
    if name == "training":
        if data is None:
            raise ValueError("the 'training' baseline needs data= (training images)")
        return training_baseline(x, data, generator)
    raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")


# ---- Integrated Gradients: teaching version, path, completeness, many baselines, EG -------------


def integrated_gradients_riemann(model: nn.Module, x: Tensor, baseline: Tensor, target: int | Tensor,
                                 n_steps: int = 50) -> Tensor:
    """IG by the midpoint Riemann sum (the teaching version written out in notebook 09):

    ``φ_i = (x_i − x'_i) · (1/k) Σ_{j=0}^{k−1} ∂f_t/∂x_i (x' + α_j (x − x'))``, ``α_j = (j + ½)/k``.

    Equals Captum's ``IntegratedGradients(..., method="riemann_middle")``.
    """
    t = _targets(target, len(x)).to(x.device)
    total = torch.zeros_like(x)
    for j in range(n_steps):
        alpha = (j + 0.5) / n_steps
        xi = (baseline + alpha * (x - baseline)).detach().requires_grad_(True)
        out = model(xi).gather(1, t[:, None]).sum()
        total += torch.autograd.grad(out, xi)[0]
    return (x - baseline) * total / n_steps


def ig_path(model: nn.Module, x: Tensor, baseline: Tensor, target: int | Tensor,
            n_steps: int = 50) -> dict[str, Tensor]:
    """Everything along the IG path of one batch (Distill's figure rows), midpoint rule:

    ``alphas (k,)``, ``images (k, N, ...)`` = ``x' + α (x − x')``, ``gradients (k, N, ...)``,
    ``cumulative (k, N, ...)`` = attribution accumulated up to ``α_j``, ``sum (k, N)`` = its total
    over pixels, and ``gap_target (N,)`` = ``f(x) − f(x')``.
    """
    t = _targets(target, len(x)).to(x.device)
    alphas = (torch.arange(n_steps, dtype=x.dtype) + 0.5) / n_steps
    images = baseline[None] + alphas.reshape(-1, *[1] * x.ndim).to(x) * (x - baseline)[None]
    flat = images.reshape(-1, *x.shape[1:]).detach().requires_grad_(True)
    out = model(flat).gather(1, t.repeat(n_steps)[:, None]).sum()
    grads = torch.autograd.grad(out, flat)[0].reshape(images.shape)
    cumulative = (x - baseline)[None] * grads.cumsum(0) / n_steps
    return {"alphas": alphas, "images": images.detach(), "gradients": grads,
            "cumulative": cumulative, "sum": cumulative.flatten(2).sum(2),
            "gap_target": target_scores(model, x, t) - target_scores(model, baseline, t)}


def completeness_gap(model: nn.Module, x: Tensor, baseline: Tensor, attributions: Tensor,
                     target: int | Tensor) -> Tensor:
    """Relative completeness gap per sample, ``|Σ_i φ_i − (f(x) − f(x'))| / |f(x) − f(x')|``."""
    t = _targets(target, len(x)).to(x.device)
    diff = target_scores(model, x, t) - target_scores(model, baseline, t)
    return (attributions.flatten(1).sum(1) - diff).abs() / diff.abs().clamp(min=1e-12)


def integrated_gradients(model: nn.Module, x: Tensor, target: int | Tensor, baseline: Tensor,
                         n_steps: int = 64, method: str = "gausslegendre",
                         internal_batch_size: int = 1024) -> Tensor:
    """Captum's Integrated Gradients from ``baseline`` (one per sample)."""
    from captum.attr import IntegratedGradients

    _check_images(x)
    ig = IntegratedGradients(model)
    return ig.attribute(_leaf(x), baselines=baseline, target=_targets(target, len(x)), n_steps=n_steps,
                        method=method, internal_batch_size=internal_batch_size).detach()


def averaged_ig(model: nn.Module, x: Tensor, target: int | Tensor,
                baseline_fn: Callable[[Tensor], Tensor], n_baselines: int = 8, n_steps: int = 32,
                internal_batch_size: int = 1024) -> Tensor:
    """IG averaged over ``n_baselines`` draws of ``baseline_fn(x)`` (all draws in one Captum call)."""
    xs = x.repeat(n_baselines, 1, 1, 1)
    baselines = torch.cat([baseline_fn(x) for _ in range(n_baselines)])
    t = _targets(target, len(x)).repeat(n_baselines)
    phi = integrated_gradients(model, xs, t, baselines, n_steps, internal_batch_size=internal_batch_size)
    return phi.reshape(n_baselines, *x.shape).mean(0)


def expected_gradients(model: nn.Module, x: Tensor, target: int | Tensor, data: Tensor,
                       n_samples: int = 64, generator: torch.Generator | None = None,
                       internal_batch_size: int = 1024) -> Tensor:
    """Expected Gradients (Erion et al. 2021) with the training distribution ``data``:

    ``φ_i = E_{x'∼D, α∼U(0,1)} [(x_i − x'_i) ∂f(x' + α(x − x'))/∂x_i]``, by ``n_samples`` draws of
    ``(x', α)`` per sample. This is Captum's GradientShap with ``stdevs = 0`` and the data as
    baselines; to seed it, this function draws the reference images and ``α`` itself and calls
    Captum's batched gradient on the interpolated points.
    """
    _check_images(x)
    t = _targets(target, len(x)).to(x.device)
    n = len(x)
    idx = torch.randint(len(data), (n_samples, n), generator=generator)
    alpha = torch.rand(n_samples, n, generator=generator).to(x)
    ref = data[idx].to(x)  # (S, N, ...)
    a = alpha.reshape(n_samples, n, *[1] * (x.ndim - 1))
    points = (ref + a * (x[None] - ref)).reshape(-1, *x.shape[1:])
    grads = _batched_gradient(model, points, t.repeat(n_samples), internal_batch_size)
    return ((x[None] - ref) * grads.reshape(n_samples, *x.shape)).mean(0)


def _batched_gradient(model: nn.Module, x: Tensor, target: Tensor, batch_size: int) -> Tensor:
    from captum.attr import Saliency

    sal = Saliency(model)
    return torch.cat([sal.attribute(_leaf(xb), target=tb, abs=False).detach()
                      for xb, tb in zip(x.split(batch_size), target.split(batch_size), strict=True)])


# ---- Meaningful Perturbations (Fong & Vedaldi 2017) ---------------------------------------------


def meaningful_perturbation(model: nn.Module, x: Tensor, target: int | Tensor, sigma: float = 4.0,
                            l1: float = 0.02, tv: float = 0.3, floor: float = -2.0, mask_size: int = 14,
                            steps: int = 150, lr: float = 0.1, return_mask: bool = False) -> Tensor:
    """Meaningful Perturbations (Fong & Vedaldi 2017): learn a mask ``m ∈ [0, 1]`` (1 keeps a pixel)
    minimising

    ``λ₁ Σ_i (1 − m_i) + λ_TV Σ_{neighbours} (m_i − m_j)² + max(s_t(Φ(x; m)), floor)``,
    ``Φ(x; m) = m ⊙ x + (1 − m) ⊙ blur_σ(x)``,

    the smallest, smooth region whose blurring deletes the evidence for class ``t`` (the TV term
    with β = 2 is the smoothness term). ``s_t`` is the model's target output: with :class:`LogOdds`
    the log-odds. (Fong & Vedaldi use the softmax probability; for a confident classifier,
    ``p_t ≈ 1`` saturates and its gradient vanishes, so the unsaturated log-odds are used, with a
    ``floor`` below which deleting more earns nothing.) The mask lives on a coarse
    ``mask_size × mask_size`` grid and is upsampled bilinearly; all images are optimised at once
    with Adam. Returns the saliency ``1 − m`` (the deleted region explains), or ``m`` with
    ``return_mask``.
    """
    _check_images(x)
    t = _targets(target, len(x)).to(x.device)
    blurred = gaussian_blur(x, sigma)
    logit_m = torch.full((len(x), 1, mask_size, mask_size), 3.0, device=x.device, requires_grad=True)
    opt = torch.optim.Adam([logit_m], lr=lr)

    def upsampled_mask() -> Tensor:
        return F.interpolate(torch.sigmoid(logit_m), size=x.shape[-2:], mode="bilinear", align_corners=False)

    for _ in range(steps):
        m_small = torch.sigmoid(logit_m)
        m = upsampled_mask()
        score = model(m * x + (1 - m) * blurred).gather(1, t[:, None])[:, 0]
        smooth = ((m_small[..., 1:, :] - m_small[..., :-1, :]) ** 2).flatten(1).sum(1) + \
            ((m_small[..., :, 1:] - m_small[..., :, :-1]) ** 2).flatten(1).sum(1)
        area = (1 - m_small).flatten(1).sum(1) * (x.shape[-1] / mask_size) ** 2
        loss = l1 * area + tv * smooth + score.clamp(min=floor)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        m = upsampled_mask().expand_as(x).clone()
    return m if return_mask else 1 - m


# ---- the Captum methods with the project's defaults -----------------------------------------------


def attribute(method: str, model: nn.Module, x: Tensor, target: int | Tensor,
              layer: nn.Module | None = None, n_steps: int = 64, smoothgrad_sigma: float = 0.15,
              smoothgrad_samples: int = 32, internal_batch_size: int = 1024, **mp_kwargs) -> Tensor:
    """One attribution map per sample, shape of ``x``, by name (:data:`METHODS`).

    - ``gradient``: ``|∂f_t/∂x|`` (Captum ``Saliency``);
    - ``smoothgrad``: mean ``|∂f_t/∂x|`` over ``x + ε``, ``ε ~ N(0, σ²)`` (``NoiseTunnel``);
    - ``ig``: Integrated Gradients from the black image (``IntegratedGradients``, Gauss–Legendre);
    - ``gradcam``: Grad-CAM of ``layer`` (``LayerGradCam``, ReLU), upsampled to the image;
    - ``meaningful_perturbation``: :func:`meaningful_perturbation` (``1 − m``).
    """
    from captum.attr import LayerAttribution, LayerGradCam, NoiseTunnel, Saliency

    _check_images(x)
    t = _targets(target, len(x)).to(x.device)
    if method == "gradient":
        return Saliency(model).attribute(_leaf(x), target=t, abs=True).detach()
    if method == "smoothgrad":
        nt = NoiseTunnel(Saliency(model))
        out = []
        for xb, tb in zip(x.split(max(1, internal_batch_size // smoothgrad_samples)),
                          t.split(max(1, internal_batch_size // smoothgrad_samples)), strict=True):
            out.append(nt.attribute(_leaf(xb), nt_type="smoothgrad", nt_samples=smoothgrad_samples,
                                    stdevs=smoothgrad_sigma, target=tb, abs=True).detach())
        return torch.cat(out)
    if method == "ig":
        return integrated_gradients(model, x, t, black_baseline(x), n_steps,
                                    internal_batch_size=internal_batch_size)
    if method == "gradcam":
        if layer is None:
            raise ValueError("gradcam needs layer= (a convolutional layer of the model)")
        cam = LayerGradCam(model, layer).attribute(_leaf(x), target=t, relu_attributions=True)
        return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear").expand_as(x).detach()
    if method == "meaningful_perturbation":
        return meaningful_perturbation(model, x, t, **mp_kwargs)
    raise ValueError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")


# ---- ablation tests -----------------------------------------------------------------------------


def _replacement(x: Tensor, replacement: str, mean_value: float | None, sigma: float) -> Tensor:
    if replacement == "mean":
        value = float(x.mean()) if mean_value is None else mean_value
        return torch.full_like(x, value)
    if replacement == "blur":
        return gaussian_blur(x, sigma)
    raise ValueError(f"replacement must be 'mean' or 'blur', got {replacement!r}")


@torch.no_grad()
def topk_ablation_curve(model: nn.Module, x: Tensor, target: int | Tensor, attributions: Tensor,
                        ks: list[int] | Tensor, replacement: str = "mean", mean_value: float | None = None,
                        sigma: float = 4.0, batch_size: int = 1024) -> Tensor:
    """Top-k ablation: replace the ``k`` pixels with the largest attribution (summed over channels;
    ties broken at random by the order of a stable sort) by the mean value or by the blurred image
    and record ``model(x_k)[target]`` (the log-odds with :class:`LogOdds`). Returns ``(N, len(ks))``.

    A faithful ranking makes the target score fall fast: lower curves are better. A random ranking
    (``torch.rand_like(x)`` as attributions) is the control.
    """
    _check_images(x)
    t = _targets(target, len(x)).to(x.device)
    ks = torch.as_tensor(ks, dtype=torch.long)
    n, d = len(x), x.shape[-2] * x.shape[-1]
    if attributions.shape != x.shape:
        raise ValueError(f"attributions must have the shape of x {tuple(x.shape)}, "
                         f"got {tuple(attributions.shape)}")
    if int(ks.max()) > d or int(ks.min()) < 0:
        raise ValueError(f"k must lie in [0, {d}], got {ks.tolist()}")
    score = attributions.sum(1).flatten(1)  # (N, H·W)
    rank = torch.empty_like(score, dtype=torch.long)
    order = score.argsort(dim=1, descending=True, stable=True)
    rank.scatter_(1, order, torch.arange(d, device=x.device).expand(n, -1))
    repl = _replacement(x, replacement, mean_value, sigma)
    out = torch.empty(n, len(ks))
    for j, k in enumerate(ks.tolist()):
        drop = (rank < k).reshape(n, 1, *x.shape[-2:])
        xk = torch.where(drop, repl, x)
        out[:, j] = target_scores(model, xk, t, batch_size).cpu()
    return out


def mass_centre(attributions: Tensor) -> Tensor:
    """Centre of mass ``(row, col)`` of the positive part of each map (image centre if all ≤ 0)."""
    w = attributions.sum(1).clamp(min=0)
    h, wd = w.shape[-2:]
    total = w.flatten(1).sum(1)
    rows = torch.arange(h, dtype=w.dtype, device=w.device)
    cols = torch.arange(wd, dtype=w.dtype, device=w.device)
    r = (w.sum(2) * rows).sum(1) / total.clamp(min=1e-12)
    c = (w.sum(1) * cols).sum(1) / total.clamp(min=1e-12)
    empty = total <= 0
    r = torch.where(empty, torch.full_like(r, (h - 1) / 2), r)
    c = torch.where(empty, torch.full_like(c, (wd - 1) / 2), c)
    return torch.stack([r, c], dim=1)


@torch.no_grad()
def mass_centre_ablation_curve(model: nn.Module, x: Tensor, target: int | Tensor, attributions: Tensor,
                               radii: list[float] | Tensor, replacement: str = "mean",
                               mean_value: float | None = None, sigma: float = 4.0) -> Tensor:
    """Mass-centre ablation: replace a disc of radius ``r`` around the attribution's centre of mass
    and record the target score; ``(N, len(radii))``, lower is better."""
    _check_images(x)
    t = _targets(target, len(x)).to(x.device)
    centre = mass_centre(attributions)
    h, w = x.shape[-2:]
    rows = torch.arange(h, dtype=x.dtype, device=x.device)[None, :, None]
    cols = torch.arange(w, dtype=x.dtype, device=x.device)[None, None, :]
    dist = ((rows - centre[:, 0, None, None]) ** 2 + (cols - centre[:, 1, None, None]) ** 2).sqrt()
    repl = _replacement(x, replacement, mean_value, sigma)
    radii = torch.as_tensor(radii, dtype=x.dtype)
    out = torch.empty(len(x), len(radii))
    for j, r in enumerate(radii.tolist()):
        drop = (dist <= r)[:, None]
        out[:, j] = target_scores(model, torch.where(drop, repl, x), t).cpu()
    return out


def curve_auc(xs: list[float] | Tensor, curve: Tensor) -> float:
    """Normalised area under the mean curve (trapezoid rule over ``xs``, divided by its range):
    the average target score over the ablation schedule. Lower is better."""
    xs = torch.as_tensor(xs, dtype=torch.float64)
    y = curve.double().mean(0) if curve.ndim == 2 else curve.double()
    return float(torch.trapezoid(y, xs) / (xs[-1] - xs[0]))


def object_share(attributions: Tensor, x: Tensor, threshold: float = 0.5, margin: int = 1) -> Tensor:
    """Share of the absolute attribution that falls on the object: inside the mask ``x > threshold``
    dilated by ``margin`` pixels (edges count as object). ``(N,)``; the object's own share of the
    image area is the chance level."""
    mask = (x.sum(1, keepdim=True) > threshold).float()
    if margin > 0:
        mask = F.max_pool2d(mask, 2 * margin + 1, stride=1, padding=margin)
    a = attributions.abs().sum(1, keepdim=True)
    return (a * mask).flatten(1).sum(1) / a.flatten(1).sum(1).clamp(min=1e-12)


# ---- the full study of notebook 10 --------------------------------------------------------------


def baseline_suite(x: Tensor, blur_sigmas: list[float] = (1.0, 3.0, 8.0), gaussian_sigma: float = 0.3,
                   generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """One baseline per name for every image of ``x``: black, maximum distance, blurred (each σ),
    uniform, Gaussian around ``x`` (keys like ``"blurred_3"``; σ written without ``.0``)."""
    out = {"black": black_baseline(x), "max_distance": max_distance_baseline(x)}
    for sigma in blur_sigmas:
        out[f"blurred_{sigma:g}".replace(".", "p")] = blurred_baseline(x, sigma)
    out["uniform"] = uniform_baseline(x, generator)
    out["gaussian"] = gaussian_baseline(x, gaussian_sigma, generator)
    return out


def attribution_suite(model: nn.Module, layer: nn.Module, x: Tensor, target: int | Tensor, data: Tensor,
                      baselines: dict[str, Tensor], n_steps: int = 32, n_average: int = 8,
                      gaussian_sigma: float = 0.3, eg_samples: int = 64,
                      generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Every map of notebooks 09 and 10 for one batch: the five methods of :data:`METHODS` (IG from
    black is ``ig_black``), IG from each of ``baselines`` (``ig_<name>``), IG averaged over
    ``n_average`` uniform and Gaussian baselines, and Expected Gradients with ``data``."""
    maps = {m: attribute(m, model, x, target, layer=layer, n_steps=n_steps) for m in METHODS if m != "ig"}
    for name, b in baselines.items():
        maps[f"ig_{name}"] = integrated_gradients(model, x, target, b, n_steps)
    maps["ig_uniform_avg"] = averaged_ig(model, x, target, lambda v: uniform_baseline(v, generator),
                                         n_average, n_steps)
    maps["ig_gaussian_avg"] = averaged_ig(
        model, x, target, lambda v: gaussian_baseline(v, gaussian_sigma, generator), n_average, n_steps)
    maps["expected_gradients"] = expected_gradients(model, x, target, data, eg_samples, generator)
    return maps
