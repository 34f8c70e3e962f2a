import json

import nbformat
import pytest

from diffcf import reproduce


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFCF_ROOT", str(tmp_path))
    (tmp_path / "notebooks").mkdir()
    return tmp_path


def _write_nb(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_failing_notebook_is_reported_with_its_cell(tmp_root):
    good = tmp_root / "notebooks" / "01_good.ipynb"
    bad = tmp_root / "notebooks" / "02_bad.ipynb"
    _write_nb(good, ["x = 1", "print(x + 1)"])
    _write_nb(bad, ["x = 1", "raise ValueError('broken on purpose')", "print('never')"])
    rows = [reproduce.run_notebook(nb, tmp_root / f"out_{nb.name}", {}) for nb in (good, bad)]
    assert rows[0].status == "ok"
    assert rows[1].status == "FAILED"
    assert "cell 2" in rows[1].error and "ValueError: broken on purpose" in rows[1].error


def test_results_markdown_puts_ours_beside_the_paper(tmp_root):
    d = tmp_root / "figures" / "01_toy_helix"
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({"median_distance_x": 2.3, "extra_key": 5}))
    text = reproduce.results_markdown()
    assert "| `median_distance_x` | 2.34 | 2.3 |" in text
    assert "| `median_distance_z` | 0.01 | not run |" in text
    assert "| `extra_key` | — | 5 |" in text


def test_check_pairs_flags_drift(tmp_root):
    import jupytext

    py = tmp_root / "notebooks" / "01_demo.py"
    py.write_text("# %%\nx = 1\n")
    assert any("no paired" in b for b in reproduce.check_pairs())
    jupytext.write(jupytext.read(py), py.with_suffix(".ipynb"))
    assert reproduce.check_pairs() == []
    py.write_text("# %%\nx = 2\n")
    assert any("disagree" in b for b in reproduce.check_pairs())
