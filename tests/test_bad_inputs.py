"""Bad inputs to the results contract (diffcf.utils): one clear error, and nothing on disk is lost."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from diffcf import utils

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFCF_ROOT", str(tmp_path))
    monkeypatch.delenv("DIFFCF_FIGURES", raising=False)
    return tmp_path


def _strict(text: str) -> object:
    """Parse JSON as the standard says: NaN and Infinity are not numbers."""
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.float32("nan"), torch.tensor(float("-inf"))])
def test_save_results_refuses_nan_and_keeps_the_previous_file(tmp_root, bad):
    path = utils.save_results("03_mnist", {"oracle_target_share_z": 0.5, "n": 3})
    before = path.read_text()
    with pytest.raises(ValueError, match=r"results\['oracle_target_share_z'\] is -?(nan|inf): .*not JSON"):
        utils.save_results("03_mnist", {"n": 4, "oracle_target_share_z": bad})
    assert path.read_text() == before
    assert _strict(before) == {"n": 3, "oracle_target_share_z": 0.5}


def test_write_json_refuses_nan_anywhere_naming_where(tmp_root):
    path = tmp_root / "manifest.json"
    with pytest.raises(ValueError, match=r"manifest\.json: the value at \['flow'\]\['metrics'\]\[1\] is inf"):
        utils.write_json(path, {"flow": {"metrics": [1.0, float("inf")]}})
    assert not path.exists() and not list(tmp_root.glob("*.tmp"))
    utils.write_json(path, {"flow": {"metrics": [1.0, 2.0]}, "ok": True})
    assert _strict(path.read_text()) == {"flow": {"metrics": [1.0, 2.0]}, "ok": True}


def test_figures_go_to_DIFFCF_FIGURES_when_set(tmp_root, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert utils.figure_dir("01_toy_helix") == tmp_root / "figures" / "01_toy_helix"
    monkeypatch.setenv("DIFFCF_FIGURES", "build/figures-full")  # relative: to the project root
    assert utils.figure_dir("01_toy_helix") == tmp_root / "build" / "figures-full" / "01_toy_helix"
    monkeypatch.setenv("DIFFCF_FIGURES", str(tmp_root / "elsewhere"))
    fig = plt.figure()
    assert utils.save_figure(fig, "01_toy_helix", "a") == tmp_root / "elsewhere" / "01_toy_helix" / "a.png"
    plt.close(fig)
    assert utils.save_results("01_toy_helix", {"n": 1}).parent == tmp_root / "elsewhere" / "01_toy_helix"
    assert not (tmp_root / "figures" / "01_toy_helix" / "results.json").exists()


@pytest.mark.parametrize("path", sorted(REPO.glob("figures/*/results.json")), ids=lambda p: p.parent.name)
def test_committed_results_are_strict_json(path):
    assert isinstance(_strict(path.read_text()), dict)
