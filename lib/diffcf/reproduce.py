"""The runner behind ``make reproduce``: execute every notebook with papermill, report, write RESULTS.md.

- Notebooks ``notebooks/NN_*.ipynb`` run on their default parameters (the CPU profile), or on the
  values of a YAML file (``--params notebooks/params/full.yaml``: one mapping per notebook stem).
- Executed copies go to ``build/executed/``; a failing notebook is reported with its cell and error
  and the others still run; the exit status is non-zero if any failed.
- ``figures/RESULTS.md`` is rebuilt from every ``figures/<stem>/results.json`` beside the paper's
  numbers (:data:`PAPER`).
- ``--update-notebooks`` writes the executed outputs back into ``notebooks/*.ipynb`` (the nbval
  reference) and ``--check-pairs`` only checks that every jupytext pair is in sync.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from diffcf.utils import atomic_write, project_root

# Published numbers, per notebook stem and results key: (paper value, note).
PAPER: dict[str, dict[str, tuple[str, str]]] = {
    "01_toy_helix": {
        "successes_x": ("1000", "successful X optimisations (paper: 1000 successful ones reported)"),
        "successes_z": ("1000", "successful Z optimisations"),
        "median_distance_x": ("2.34", "median distance to the helix, X-ascent (Fig. 17)"),
        "median_distance_z": ("0.01", "median distance to the helix, Z-ascent (Fig. 17)"),
        "classifier_accuracy": ("—", "MLP 3-256-1 on fresh helix points"),
        "flow_test_nll": ("—", "nats per point; unbounded below on zero-thickness data"),
    },
    "02_metric_geometry": {
        "first_order_slope": ("1 (theory)", "slope of residual/λ vs λ, log-log"),
        "helix_eigenvalue_ratio_median": ("≫ 1 (Fig. 7 left)", "largest / second eigenvalue of γ⁻¹"),
        "helix_tangent_angle_deg_median": ("0 (Fig. 7 left)", "top eigenvector vs true tangent"),
        "helix_onmanifold_share_x": ("—", "share of ∂f/∂x along the helix (not in the paper)"),
        "helix_onmanifold_share_z": ("—", "share of γ⁻¹∂f/∂x along the helix (not in the paper)"),
        "mnist_manifold_dim_estimate": ("~30 (§III)", "eigenvalues holding 90% of the trace of γ⁻¹"),
        "mnist_onmanifold_share_x": ("—", "X-gradient share in the top eigenspace (not in the paper)"),
        "mnist_onmanifold_share_z": ("—", "Z-step share in the top eigenspace; must exceed X's"),
    },
    "03_mnist": {
        "classifier_accuracy": ("0.99", "CNN test accuracy (§IV-B)"),
        "svm_accuracy": ("0.92", "linear SVM oracle, test accuracy (§IV-C)"),
        "flow_bits_per_dim": ("1.06 (RealNVP paper)", "test bits/dim; this project's target <= 1.5"),
        "success_rate_x": ("—", "4 -> 9 at Λ = 0.99, adversarials; target >= 0.95"),
        "success_rate_z": ("—", "4 -> 9 at Λ = 0.99, counterfactuals; target >= 0.95"),
        "oracle_target_share_original": ("≈ 0 (Fig. 11)", "SVM says 9 for the original 4s"),
        "oracle_target_share_x": ("low (Fig. 11)", "SVM says 9 for adversarials"),
        "oracle_target_share_z": ("high (Fig. 11)", "SVM says 9 for counterfactuals; Z - X >= 0.30"),
        "knn_target_share_x": ("low (Fig. 13)", "share of 9s among 10 nearest training images"),
        "knn_target_share_z": ("high (Fig. 13)", "Z - X >= 0.20"),
        "im1_mean_x": ("Z < X (Table I)", "IM1, adversarials"),
        "im1_mean_z": ("Z < X (Table I)", "IM1, counterfactuals"),
        "l2_x_to_source_x": ("X < Z (Table II)", "pixel L2 to the source, adversarials"),
        "l2_x_to_source_z": ("X < Z (Table II)", "pixel L2 to the source, counterfactuals"),
        "l2_z_to_source_x": ("X > Z (Table III)", "latent L2 to the source, adversarials"),
        "l2_z_to_source_z": ("X > Z (Table III)", "latent L2 to the source, counterfactuals"),
    },
    "09_attributions": {
        "shortcut_accuracy_confounded": ("—", "§I example, qualitative; must reach >= 0.98"),
        "shortcut_accuracy_deconfounded": ("—", "sizes crossed; a size rule gives 0.5; must reach <= 0.60"),
        "cf_area_ratio_circle_to_square": ("< 1 (§I: smaller circles)", "mean CF / original area; <= 0.7"),
        "cf_area_ratio_square_to_circle": ("> 1 (§I: larger squares)", "mean CF / original area; >= 1.4"),
        "cf_shape_change_share": ("—", "share of CFs whose measured shape changed (low: size, not shape)"),
        "ig_completeness_gap": ("0 (completeness axiom)", "median relative gap, default steps; <= 0.01"),
    },
    "10_ig_baselines": {
        "topk_auc_random": ("—", "random ranking control (mean log-odds over top-k ablation)"),
        "topk_auc_ig_black": ("< random", "Distill: lower is better; every method must beat random"),
        "topk_auc_expected_gradients": ("< random", "Expected Gradients with the training data"),
        "topk_auc_meaningful_perturbation": ("< random", "Fong & Vedaldi mask"),
        "completeness_gap_black": ("0 (completeness axiom)", "median relative gap at the default steps"),
        "all_methods_below_random": ("true", "every method's top-k AUC below the random control"),
    },
}


@dataclass
class RunRow:
    notebook: str
    status: str
    seconds: float
    error: str = ""


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def list_notebooks(only: list[str] | None = None) -> list[Path]:
    """``notebooks/NN_*.ipynb``, optionally those whose stem starts with one of ``only``."""
    books = sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if only:
        books = [b for b in books if any(b.stem.startswith(o) for o in only)]
        if not books:
            raise SystemExit(f"no notebook matches {only}; have: {[b.stem for b in list_notebooks()]}")
    return books


def check_pairs() -> list[str]:
    """Names of jupytext pairs (``.py`` + ``.ipynb``) that are out of sync or incomplete."""
    import jupytext

    bad = []
    for py in sorted(notebooks_dir().glob("[0-9][0-9]_*.py")):
        nb = py.with_suffix(".ipynb")
        if not nb.exists():
            bad.append(f"{py.name}: no paired {nb.name}")
            continue
        text = jupytext.writes(jupytext.read(nb), fmt="py:percent")
        if text != py.read_text():
            bad.append(f"{py.name} and {nb.name} disagree (run `make sync`)")
    for nb in sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        if not nb.with_suffix(".py").exists():
            bad.append(f"{nb.name}: no paired .py source")
    return bad


def run_notebook(nb: Path, out: Path, parameters: dict) -> RunRow:
    """Execute one notebook with papermill; never raises for a failing notebook."""
    import papermill as pm

    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb), str(out), parameters=parameters, kernel_name="python3",
            cwd=str(nb.parent), progress_bar=False,
        )
        return RunRow(nb.stem, "ok", time.perf_counter() - start)
    except pm.PapermillExecutionError as err:
        msg = f"cell {err.exec_count}: {err.ename}: {err.evalue}"
        return RunRow(nb.stem, "FAILED", time.perf_counter() - start, msg)
    except Exception as err:  # a kernel crash, a missing kernel, …: report and go on
        return RunRow(nb.stem, "FAILED", time.perf_counter() - start, f"{type(err).__name__}: {err}")


def clean_executed(src: Path) -> str:
    """An executed notebook as text, with papermill's per-cell metadata (timings, empty tag lists)
    removed so that it stays in sync with its ``.py`` pair; outputs and real tags are kept."""
    import nbformat

    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = nbformat.NotebookNode({"tags": tags} if tags else {})
    nb.metadata.pop("papermill", None)
    return nbformat.writes(nb) + "\n"


def results_markdown() -> str:
    """``figures/RESULTS.md``: each notebook's results.json beside the paper's numbers."""
    lines = [
        "# Results: this project vs the paper",
        "",
        "Written by `make reproduce` from `figures/<notebook>/results.json` (default CPU parameters).",
        "Every number under *ours* comes from running the notebooks; *paper* is the published value",
        "(Dombrowski et al., TPAMI 2023) where one exists.",
        "",
    ]
    for res in sorted((project_root() / "figures").glob("*/results.json")):
        stem = res.parent.name
        ours = json.loads(res.read_text())
        paper = PAPER.get(stem, {})
        lines += [f"## {stem}", "", "| metric | paper | ours | note |", "|---|---|---|---|"]
        for key in list(paper) + sorted(k for k in ours if k not in paper):
            value = ours.get(key, "not run")
            if isinstance(value, float):
                value = f"{value:.4g}"
            ref, note = paper.get(key, ("—", ""))
            lines.append(f"| `{key}` | {ref} | {value} | {note} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffcf.reproduce", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="notebook stems or prefixes, e.g. 01 02")
    parser.add_argument("--params", type=Path, help="YAML file: {notebook stem: {parameter: value}}")
    parser.add_argument("--out", type=Path, default=project_root() / "build" / "executed")
    parser.add_argument("--update-notebooks", action="store_true",
                        help="write the executed outputs back into notebooks/*.ipynb")
    parser.add_argument("--check-pairs", action="store_true", help="only check the jupytext pairs")
    args = parser.parse_args(argv)

    if args.check_pairs:
        bad = check_pairs()
        for line in bad:
            print(f"out of sync: {line}")
        print("jupytext pairs in sync" if not bad else f"{len(bad)} pair(s) out of sync")
        return 1 if bad else 0

    from tqdm.auto import tqdm

    params: dict = {}
    if args.params:
        import yaml

        params = yaml.safe_load(args.params.read_text()) or {}
    books = list_notebooks(args.only)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    bar = tqdm(books, desc="notebooks", unit="nb")
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        out = args.out / nb.name
        row = run_notebook(nb, out, params.get(nb.stem, {}))
        rows.append(row)
        if row.status == "ok" and args.update_notebooks:
            text = clean_executed(out)
            atomic_write(nb, lambda p, text=text: p.write_text(text))
    bar.close()

    results = project_root() / "figures" / "RESULTS.md"
    text = results_markdown()
    atomic_write(results, lambda p: p.write_text(text))
    width = max(len(r.notebook) for r in rows)
    print(f"\n{'notebook':{width}s}  status  wall time")
    for r in rows:
        print(f"{r.notebook:{width}s}  {r.status:6s}  {r.seconds:7.1f} s")
        if r.error:
            print(f"{'':{width}s}  └─ {r.error}")
    failed = sum(r.status != "ok" for r in rows)
    print(f"\n{len(rows) - failed} passed, {failed} failed · executed notebooks in {args.out} · "
          f"results in {results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
