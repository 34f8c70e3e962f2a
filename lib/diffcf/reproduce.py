"""The runner behind ``make reproduce``: execute every notebook with papermill, report, write RESULTS.md.

- Notebooks ``notebooks/NN_*.ipynb`` run on their default parameters (the CPU profile), or on the
  values of a YAML file (``--params notebooks/params/full.yaml``: one mapping per notebook stem).
- Executed copies go to ``build/executed/``; a failing notebook is reported with its cell and error
  and the others still run; the exit status is non-zero if any failed.
- ``figures/RESULTS.md`` is rebuilt from every ``figures/<stem>/results.json`` beside the paper's
  numbers (:data:`diffcf.paper.PAPER`).
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

from diffcf.paper import PAPER
from diffcf.utils import atomic_write, project_root

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
