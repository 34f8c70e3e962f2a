"""The one table of the paper's numbers and the must-reach checks agree with what the notebooks write."""

import json

import pytest

from diffcf import paper
from diffcf.utils import project_root


def _results(stem):
    return json.loads((project_root() / "figures" / stem / "results.json").read_text())


@pytest.mark.parametrize("stem", sorted(paper.CHECKS))
def test_every_check_and_paper_number_has_its_results_key(stem):
    results = _results(stem)
    assert not [t for t in paper.evaluate(stem, results) if "not measured" in t]
    assert not set(paper.PAPER.get(stem, {})) - set(results)


def test_checks_can_fail():
    results = _results("03_mnist")
    good = {**results, "oracle_margin_z": 0.5}
    bad = {**good, "success_rate_z": 0.5}
    assert paper.evaluate("03_mnist", good)["oracle share Z - X >= 30 points"]
    assert not paper.evaluate("03_mnist", bad)["success >= 95% in both spaces"]
    missing = paper.evaluate("03_mnist", {})
    assert not any(missing.values()) and all("not measured" in t for t in missing)


def test_all_below_random_needs_every_method_below():
    test = paper._all_below_random("topk_auc_")
    assert test({"topk_auc_random": 5.0, "topk_auc_ig": 1.0, "topk_auc_blur_ig": 9.0})
    assert not test({"topk_auc_random": 5.0, "topk_auc_ig": 1.0, "topk_auc_gradcam": 6.0})
    assert not test({"topk_auc_random": 5.0})  # nothing to compare is no pass


def test_readme_table_is_generated_from_the_results():
    """The README's results table is what the runner writes from results.json (no hand-typed numbers)."""
    results = {p.parent.name: json.loads(p.read_text())
               for p in (project_root() / "figures").glob("*/results.json")}
    readme = (project_root() / "README.md").read_text()
    assert paper.readme_with_results(readme, results) == readme, "run `make reproduce` to refresh it"
    with pytest.raises(ValueError, match="markers"):
        paper.readme_with_results("no markers here", results)
