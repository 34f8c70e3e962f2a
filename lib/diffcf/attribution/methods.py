"""The attribution methods of notebook 09 by name (:func:`attribute`): gradient, SmoothGrad,
Integrated Gradients and Grad-CAM through Captum with the project's defaults, batched; Meaningful
Perturbations (Fong & Vedaldi 2017), which Captum lacks, written here; and :func:`attribution_suite`,
every map of notebooks 09 and 10 for one batch."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from diffcf.attribution.baselines import black_baseline, gaussian_baseline, uniform_baseline
from diffcf.attribution.core import check_images, gaussian_blur, leaf, targets
from diffcf.attribution.ig import averaged_ig, expected_gradients, integrated_gradients

METHODS = ("gradient", "smoothgrad", "ig", "gradcam", "meaningful_perturbation")


def meaningful_perturbation(model: nn.Module, x: Tensor, target: int | Tensor, sigma: float = 4.0,
                            l1: float = 0.02, tv: float = 0.3, floor: float = -2.0, mask_size: int = 14,
                            steps: int = 150, lr: float = 0.1, return_mask: bool = False) -> Tensor:
    """Meaningful Perturbations (Fong & Vedaldi 2017): learn a mask ``m ∈ [0, 1]`` (1 keeps a pixel)
    minimising

    ``λ₁ Σ_i (1 − m_i) + λ_TV Σ_{neighbours} (m_i − m_j)² + max(s_t(Φ(x; m)), floor)``,
    ``Φ(x; m) = m ⊙ x + (1 − m) ⊙ blur_σ(x)``,

    the smallest, smooth region whose blurring deletes the evidence for class ``t`` (the TV term
    with β = 2 is the smoothness term). ``s_t`` is the model's target output: with
    :class:`~diffcf.attribution.core.LogOdds` the log-odds. (Fong & Vedaldi use the softmax
    probability; for a confident classifier, ``p_t ≈ 1`` saturates and its gradient vanishes, so the
    unsaturated log-odds are used, with a ``floor`` below which deleting more earns nothing.) The
    mask lives on a coarse ``mask_size × mask_size`` grid and is upsampled bilinearly; all images are
    optimised at once with Adam. Returns the saliency ``1 − m`` (the deleted region explains), or
    ``m`` with ``return_mask``.
    """
    check_images(x)
    t = targets(target, len(x)).to(x.device)
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

    check_images(x)
    t = targets(target, len(x)).to(x.device)
    if method == "gradient":
        return Saliency(model).attribute(leaf(x), target=t, abs=True).detach()
    if method == "smoothgrad":
        nt = NoiseTunnel(Saliency(model))
        out = []
        for xb, tb in zip(x.split(max(1, internal_batch_size // smoothgrad_samples)),
                          t.split(max(1, internal_batch_size // smoothgrad_samples)), strict=True):
            out.append(nt.attribute(leaf(xb), nt_type="smoothgrad", nt_samples=smoothgrad_samples,
                                    stdevs=smoothgrad_sigma, target=tb, abs=True).detach())
        return torch.cat(out)
    if method == "ig":
        return integrated_gradients(model, x, t, black_baseline(x), n_steps,
                                    internal_batch_size=internal_batch_size)
    if method == "gradcam":
        if layer is None:
            raise ValueError("gradcam needs layer= (a convolutional layer of the model)")
        cam = LayerGradCam(model, layer).attribute(leaf(x), target=t, relu_attributions=True)
        return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear").expand_as(x).detach()
    if method == "meaningful_perturbation":
        return meaningful_perturbation(model, x, t, **mp_kwargs)
    raise ValueError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")


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
