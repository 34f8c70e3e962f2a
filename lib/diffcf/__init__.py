"""diffcf: a literate reproduction of *Diffeomorphic Counterfactuals With Generative Models*.

Dombrowski, Gerken, Müller, Kessel, IEEE TPAMI 2023 (arXiv:2206.05075).

The library holds what the notebooks share; each module is named after the paper's object:

- :mod:`diffcf.models.realnvp`   the normalizing flow ``g`` (affine couplings, exact inverse, log-det)
- :mod:`diffcf.generative`       the generator interface ``encode(x) -> z``, ``decode(z) -> x``
- :mod:`diffcf.search`           the counterfactual search, eqs. (4) and (5)
- :mod:`diffcf.geometry`         the induced metric ``γ⁻¹ = J Jᵀ`` (§III)
- :mod:`diffcf.zoo`              named models: train or load verified checkpoints
- :mod:`diffcf.data`             datasets (helix, …)
"""

from diffcf.utils import project_root, seed_everything

__all__ = ["project_root", "seed_everything"]
__version__ = "0.1.0"
