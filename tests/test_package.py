"""The package's core API: `import diffcf` stays light, `diffcf.zoo` loads on first use without a
circular import (zoo imports the recipes, which import zoo), and `python -m diffcf.zoo` still runs."""

from __future__ import annotations

import subprocess
import sys

import diffcf


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_core_api_exports():
    for name in diffcf.__all__:
        assert getattr(diffcf, name) is not None, name
    from diffcf import ClassTarget, RegressionTarget, counterfactual_search, zoo
    from diffcf.search import ClassTarget as CT
    assert ClassTarget is CT and callable(counterfactual_search) and RegressionTarget is not None
    assert zoo.load is diffcf.zoo.load and "zoo" in dir(diffcf)


def test_fresh_import_is_light_and_zoo_loads_on_first_use():
    code = ("import sys, diffcf; assert 'diffcf.zoo' not in sys.modules; "
            "m = diffcf.zoo.load('helix_flow'); print(type(m).__name__)")
    out = run("-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "RealNVP"
    out = run("-m", "diffcf.zoo", "list")
    assert out.returncode == 0, out.stderr
    assert "helix_flow" in out.stdout and "mnist_svm" in out.stdout
