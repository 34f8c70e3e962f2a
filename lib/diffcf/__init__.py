"""diffcf: a literate reproduction of *Diffeomorphic Counterfactuals With Generative Models*.

Dombrowski, Gerken, Müller, Kessel, IEEE TPAMI 2023 (arXiv:2206.05075).

The core API, importable from here: :func:`counterfactual_search` with its targets
:class:`ClassTarget` and :class:`RegressionTarget`, the model zoo :mod:`zoo` (``diffcf.zoo.load``),
and :func:`seed_everything`, :func:`project_root`, :func:`get_device`.

The library holds what the notebooks share; each module is named after the paper's object:

- :mod:`diffcf.generative`         the generator interface ``encode(x) -> z``, ``decode(z) -> x``
- :mod:`diffcf.search`             the counterfactual search, eqs. (4) and (5)
- :mod:`diffcf.geometry`           the induced metric ``γ⁻¹ = J Jᵀ`` (§III)
- :mod:`diffcf.evaluate`           oracle and k-NN shares, IM1, distances, source → target matrices
- :mod:`diffcf.attribution`        attribution maps, IG baselines, ablation tests (notebooks 09, 10)
- :mod:`diffcf.plotting`           the figures the notebooks share
- :mod:`diffcf.models`             generators (``realnvp``, ``multiscale``), ``classifiers``, ``oracles``
- :mod:`diffcf.data`               datasets: ``helix``, ``shapes``, ``mnist``; ``registry`` and
  ``fetch`` assemble the data root (``make data``)
- :mod:`diffcf.zoo`                named models: train or load verified checkpoints
- :mod:`diffcf.recipes`            the training recipe of every named model, one module per dataset
- :mod:`diffcf.training`           the one training loop: stages, warm-up, cosine schedule, DDP
- :mod:`diffcf.paper`              the paper's published numbers, in one place
- :mod:`diffcf.reproduce`          the runner behind ``make reproduce``
- :mod:`diffcf.utils`              seeding, paths, atomic writes, the results contract

``zoo`` is imported on first use (it registers every recipe, which imports the models and data), so
``import diffcf`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from diffcf.search import ClassTarget, RegressionTarget, counterfactual_search
from diffcf.utils import get_device, project_root, seed_everything

if TYPE_CHECKING:
    from diffcf import zoo

__all__ = [
    "ClassTarget",
    "RegressionTarget",
    "counterfactual_search",
    "get_device",
    "project_root",
    "seed_everything",
    "zoo",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "zoo":
        return importlib.import_module("diffcf.zoo")
    raise AttributeError(f"module 'diffcf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "zoo"])
