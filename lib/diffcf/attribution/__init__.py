"""Attribution maps and their tests: what Captum lacks, on top of Captum (notebooks 09 and 10).

Captum computes Saliency, SmoothGrad (``NoiseTunnel``), Integrated Gradients, Grad-CAM and the
batched gradients of Expected Gradients; :func:`attribute` calls them with the project's defaults,
batched. Written here is only what Captum does not offer. By topic:

- :mod:`~diffcf.attribution.core`: the explained quantity :class:`LogOdds`, ``log p_c − log(1 −
  p_c)`` per class (binary: the logit difference), so attributions and ablation curves speak about
  the same number; :func:`target_scores`; :func:`gaussian_blur`;
- :mod:`~diffcf.attribution.methods`: :func:`attribute` by name (:data:`METHODS`), **Meaningful
  Perturbations** (Fong & Vedaldi 2017, :func:`meaningful_perturbation`) and
  :func:`attribution_suite`, every map of notebooks 09 and 10 for one batch;
- :mod:`~diffcf.attribution.ig`: the teaching **Riemann sum** of IG
  (:func:`integrated_gradients_riemann`), its path (:func:`ig_path`), the **completeness gap**
  (:func:`completeness_gap`), Captum's IG (:func:`integrated_gradients`), IG averaged over many
  baselines (:func:`averaged_ig`) and **Expected Gradients** (:func:`expected_gradients`);
- :mod:`~diffcf.attribution.baselines`: IG **baselines** (Distill, Sturmfels et al. 2020), one
  constructor each, :func:`make_baseline` by name (:data:`BASELINES`), :func:`baseline_suite`;
- :mod:`~diffcf.attribution.ablation`: the **ablation tests**, top-k
  (:func:`topk_ablation_curve`) and mass-centre (:func:`mass_centre_ablation_curve`), their area
  under the curve (:func:`curve_auc`), and :func:`object_share`.

Notebooks write ``from diffcf import attribution as A`` and use every name below as ``A.name``.
"""

from diffcf.attribution.ablation import (
    curve_auc,
    mass_centre,
    mass_centre_ablation_curve,
    object_share,
    topk_ablation_curve,
)
from diffcf.attribution.baselines import (
    BASELINES,
    baseline_suite,
    black_baseline,
    blurred_baseline,
    gaussian_baseline,
    make_baseline,
    max_distance_baseline,
    uniform_baseline,
)
from diffcf.attribution.core import LogOdds, gaussian_blur, target_scores
from diffcf.attribution.ig import (
    averaged_ig,
    completeness_gap,
    expected_gradients,
    ig_path,
    integrated_gradients,
    integrated_gradients_riemann,
)
from diffcf.attribution.methods import METHODS, attribute, attribution_suite, meaningful_perturbation

__all__ = [
    "BASELINES",
    "METHODS",
    "LogOdds",
    "attribute",
    "attribution_suite",
    "averaged_ig",
    "baseline_suite",
    "black_baseline",
    "blurred_baseline",
    "completeness_gap",
    "curve_auc",
    "expected_gradients",
    "gaussian_baseline",
    "gaussian_blur",
    "ig_path",
    "integrated_gradients",
    "integrated_gradients_riemann",
    "make_baseline",
    "mass_centre",
    "mass_centre_ablation_curve",
    "max_distance_baseline",
    "meaningful_perturbation",
    "object_share",
    "target_scores",
    "topk_ablation_curve",
    "uniform_baseline",
]
