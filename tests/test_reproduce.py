import json
import os
import re

import nbformat
import pytest

from diffcf import params, reproduce


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFCF_ROOT", str(tmp_path))
    monkeypatch.delenv("DIFFCF_FIGURES", raising=False)
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


def _write_params_nb(path, sources, parameters="n = 1  # a parameter\nname: str = 'x'"):
    """A notebook whose first cell is tagged ``parameters``, then ``sources``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell] + [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _stream(text, name="stdout"):
    return nbformat.v4.new_output("stream", name=name, text=text)


def test_failed_checks_are_read_from_the_stdout_verdicts():
    nb = nbformat.v4.new_notebook()
    first, second = nbformat.v4.new_code_cell("..."), nbformat.v4.new_code_cell("...")
    first.outputs = [_stream("PASS  a holds\nFAIL  b holds\nFAILED is not a verdict\n"),
                     _stream("FAIL  on stderr is not a verdict\n", name="stderr")]
    second.outputs = [_stream(["PASS  c\n", "FAIL  d  \n"]),
                      nbformat.v4.new_output("display_data", data={"text/plain": "FAIL  e"})]
    nb.cells = [nbformat.v4.new_markdown_cell("FAIL  f"), first, second]
    assert reproduce.failed_checks(nb) == ["b holds", "d"]
    first.outputs, second.outputs = [_stream("PASS  a\n")], []
    assert reproduce.failed_checks(nb) == []


def test_notebook_parameters_are_the_names_of_the_tagged_cell(tmp_root):
    nb = tmp_root / "notebooks" / "01_demo.ipynb"
    _write_params_nb(nb, ["m = 2"], parameters="a = 1\nb: int = 2\nc, d = 3, 4\ne = f(a)\nprint(a)")
    assert params.notebook_parameters(nb) == {"a": 1, "b": 2, "c": ..., "d": ..., "e": ...}
    _write_nb(nb, ["a = 1"])
    assert params.notebook_parameters(nb) == {}


BAD_PARAMS = {
    "missing": (None, r"my\.yaml does not exist"),
    "not yaml": ("01_demo:\n  n: [1, 2\n", r"my\.yaml is not valid YAML \(line \d+, column \d+\)"),
    "a list": ("- 01_demo\n- 02_other\n", r"my\.yaml must map notebook stems .* got a list"),
    "entry not a mapping": ("01_demo: 3\n", r"my\.yaml: the entry of '01_demo' must be a mapping"),
    "unknown stem": ("01_demo: {n: 2}\n03_mnsit: {n: 2}\n",
                     r"my\.yaml: unknown notebook\(s\) \['03_mnsit'\]; the notebooks are \['01_demo'\]"),
    "misspelt name": ("01_demo:\n  n: 2\n  nn_steps: 3\n",
                      r"my\.yaml: 01_demo has no parameter\(s\) \['nn_steps'\]; its parameters are "
                      r"\['n', 'name'\]"),
    "number as text": ("01_demo:\n  n: 5e-3\n",  # YAML 1.1 reads 5e-3 as a string
                       r"my\.yaml: 01_demo: n = '5e-3' is a string, but its default 1 is not"),
}


@pytest.mark.parametrize("case", list(BAD_PARAMS))
def test_bad_parameter_files_stop_the_run_before_anything_runs(tmp_root, capsys, case):
    text, message = BAD_PARAMS[case]
    _write_params_nb(tmp_root / "notebooks" / "01_demo.ipynb", ["print(n)"])
    params = tmp_root / "my.yaml"
    if text is not None:
        params.write_text(text)
    assert reproduce.main(["--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: parameter file ") and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_root / "build").exists() and not (tmp_root / "figures").exists()


def test_update_notebooks_refuses_non_default_parameters(tmp_root, capsys):
    _write_params_nb(tmp_root / "notebooks" / "01_demo.ipynb", ["print(n)"])
    (tmp_root / "my.yaml").write_text("01_demo: {n: 2}\n")
    assert reproduce.main(["--params", str(tmp_root / "my.yaml"), "--update-notebooks"]) == 2
    assert "cannot be combined with --params" in capsys.readouterr().err


def test_output_dirs_keep_non_default_runs_out_of_figures(tmp_root, monkeypatch):
    assert reproduce.output_dirs(None) == (tmp_root / "figures", tmp_root / "build" / "executed")
    assert reproduce.output_dirs(tmp_root / "full.yaml") == (tmp_root / "build" / "figures-full",
                                                             tmp_root / "build" / "executed-full")
    monkeypatch.setenv("DIFFCF_FIGURES", str(tmp_root / "mine"))
    assert reproduce.output_dirs(tmp_root / "full.yaml")[0] == tmp_root / "mine"


def test_results_markdown_names_the_parameter_file(tmp_root):
    d = tmp_root / "build" / "figures-full" / "01_toy_helix"
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({"median_distance_x": 2.3}))
    default = reproduce.results_markdown(d.parent)
    assert "(default CPU parameters)" in default and "Parameters:" not in default
    text = reproduce.results_markdown(d.parent, tmp_root / "notebooks" / "params" / "full.yaml",
                                      {"01_toy_helix": {"n_starts": 1000, "retrain": True}})
    assert "(default CPU parameters)" not in text
    assert "`python -m diffcf.reproduce --params notebooks/params/full.yaml`" in text
    assert "from `build/figures-full/<notebook>/results.json`" in text
    assert "non-default parameters from `notebooks/params/full.yaml`" in text
    assert "Parameters: `n_starts=1000`, `retrain=True`." in text
    assert "| `median_distance_x` | 2.34 | 2.3 |" in text


def test_params_run_writes_elsewhere_and_reports_failed_checks(tmp_root, capsys):
    """End to end (one tiny kernel): a --params run leaves figures/ alone, writes its results and
    RESULTS.md under build/figures-<file>/, and a FAIL verdict makes the run fail."""
    committed = tmp_root / "figures" / "01_demo"
    committed.mkdir(parents=True)
    (committed / "results.json").write_text('{"n": 1}\n')
    (tmp_root / "figures" / "RESULTS.md").write_text("committed\n")
    _write_params_nb(tmp_root / "notebooks" / "01_demo.ipynb", [
        "from diffcf.utils import print_checks, save_results\n"
        "save_results('01_demo', {'n': n})\n"
        "print_checks({'n is positive': n > 0, 'n is small': n < 5})",
    ])
    (tmp_root / "my.yaml").write_text("01_demo:\n  n: 7\n")
    assert reproduce.main(["--params", str(tmp_root / "my.yaml")]) == 1
    out = capsys.readouterr().out
    assert re.search(r"01_demo\s+checks failed .*\n\s+└─ FAIL: n is small\n", out), out
    assert "0 ok, 1 with failed checks, 0 failed" in out
    mine = tmp_root / "build" / "figures-my"
    assert json.loads((mine / "01_demo" / "results.json").read_text()) == {"n": 7}
    assert "--params my.yaml" in (mine / "RESULTS.md").read_text()
    assert (tmp_root / "build" / "executed-my" / "01_demo.ipynb").exists()
    assert (committed / "results.json").read_text() == '{"n": 1}\n'
    assert (tmp_root / "figures" / "RESULTS.md").read_text() == "committed\n"
    assert "DIFFCF_FIGURES" not in os.environ


def test_runner_refuses_notebooks_out_of_sync_with_their_sources(tmp_root, capsys):
    import jupytext

    py = tmp_root / "notebooks" / "01_demo.py"
    py.write_text("# %%\nx = 1\n")
    jupytext.write(jupytext.read(py), py.with_suffix(".ipynb"))
    py.write_text("# %%\nx = 2\n")  # edited after the last sync: running the .ipynb would ignore it
    assert reproduce.main(["--only", "01", "--update-notebooks"]) == 2
    assert "differ from their .py sources: run `make sync`" in capsys.readouterr().err
    assert "x = 1" in py.with_suffix(".ipynb").read_text()  # nothing was run or written
