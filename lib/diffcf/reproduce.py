"""The runner behind ``make reproduce``: execute every notebook with papermill, report, write RESULTS.md.

- Notebooks ``notebooks/NN_*.ipynb`` run on their default parameters (the CPU profile), or on the
  values of a YAML file (``--params notebooks/params/full.yaml``: one mapping per notebook stem).
  The file is checked before anything runs: it must exist, be valid YAML and map notebook stems to
  mappings of parameter names; an unknown stem, or a name that the notebook's cell tagged
  ``parameters`` does not assign (a misspelling), is an error that lists the known ones.
- Executed copies go to ``build/executed/``; a failing notebook is reported with its cell and error
  and the others still run. A notebook that runs to the end but prints a ``FAIL  `` verdict (its
  must-reach checks, :func:`diffcf.utils.print_checks`) is reported as ``checks failed`` with the
  failed checks. The exit status is non-zero unless every notebook is ``ok``.
- Where results go: with the default parameters, ``figures/<stem>/`` and ``figures/RESULTS.md`` (the
  committed results). With ``--params P.yaml`` the runner sets ``$DIFFCF_FIGURES`` (which the
  notebooks' kernels inherit, see :func:`diffcf.utils.figure_dir`) to ``build/figures-P/``, unless it
  is already set, and executed copies go to ``build/executed-P/``: such a run never overwrites the
  default results, and its RESULTS.md names the parameter file and each notebook's values.
- RESULTS.md is rebuilt from every ``<figures>/<stem>/results.json`` beside the paper's numbers
  (:data:`diffcf.paper.PAPER`).
- ``--update-notebooks`` writes the executed outputs back into ``notebooks/*.ipynb`` (the nbval
  reference) for every notebook that ran to the end, ``checks failed`` included (an honest FAIL
  verdict is a legitimate stored output); it refuses ``--params``, since the stored outputs are
  those of the default parameters. ``--check-pairs`` only checks that every jupytext pair is in sync.
- A notebook whose ``.py`` source differs from its ``.ipynb`` is not run (``make sync`` first): the
  runner executes the ``.ipynb``, so an edit to the ``.py`` would be ignored, and worse, with
  ``--update-notebooks`` the executed ``.ipynb`` would become the newer file of the pair, which the
  next ``jupytext --sync`` copies over the edited ``.py``.
- A bad command line or parameter file is reported as one ``error:`` line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffcf.paper import PAPER, evaluate, readme_with_results
from diffcf.params import RunnerError, load_params, validate_params
from diffcf.utils import atomic_write, figures_root, project_root

OK, FAILED, CHECKS_FAILED = "ok", "FAILED", "checks failed"
FAIL_PREFIX = "FAIL  "  # how diffcf.utils.print_checks starts a failed verdict
@dataclass
class RunRow:
    notebook: str
    status: str
    seconds: float
    error: str = ""

    @property
    def ran_to_end(self) -> bool:
        """Executed every cell (its checks may still have failed)."""
        return self.status in (OK, CHECKS_FAILED)


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


def _pair_differs(py: Path, nb: Path) -> bool:
    """Whether the notebook ``nb``, written as jupytext's percent script, differs from ``py``."""
    import jupytext

    return jupytext.writes(jupytext.read(nb), fmt="py:percent") != py.read_text()


def check_pairs() -> list[str]:
    """Names of jupytext pairs (``.py`` + ``.ipynb``) that are out of sync or incomplete."""
    bad = []
    for py in sorted(notebooks_dir().glob("[0-9][0-9]_*.py")):
        nb = py.with_suffix(".ipynb")
        if not nb.exists():
            bad.append(f"{py.name}: no paired {nb.name}")
        elif _pair_differs(py, nb):
            bad.append(f"{py.name} and {nb.name} disagree (run `make sync`)")
    for nb in sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        if not nb.with_suffix(".py").exists():
            bad.append(f"{nb.name}: no paired .py source")
    return bad


def failed_checks(nb: Any) -> list[str]:
    """The checks an executed notebook reports as failed: every stdout line starting ``FAIL  ``
    (as :func:`diffcf.utils.print_checks` prints them), without the prefix."""
    failed = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") != "stream" or out.get("name") != "stdout":
                continue
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            failed += [line[len(FAIL_PREFIX):].strip() for line in text.splitlines()
                       if line.startswith(FAIL_PREFIX)]
    return failed


def run_notebook(nb: Path, out: Path, parameters: dict) -> RunRow:
    """Execute one notebook with papermill; never raises for a failing notebook.

    ``ok`` only if every cell ran and no check printed ``FAIL``; else ``checks failed`` (listing
    them) or ``FAILED`` (with the cell and the error).
    """
    import nbformat
    import papermill as pm

    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb), str(out), parameters=parameters, kernel_name="python3",
            cwd=str(nb.parent), progress_bar=False,
        )
    except pm.PapermillExecutionError as err:
        msg = f"cell {err.exec_count}: {err.ename}: {err.evalue}"
        return RunRow(nb.stem, FAILED, time.perf_counter() - start, msg)
    except Exception as err:  # a kernel crash, a missing kernel, …: report and go on
        return RunRow(nb.stem, FAILED, time.perf_counter() - start, f"{type(err).__name__}: {err}")
    seconds = time.perf_counter() - start
    failed = failed_checks(nbformat.read(out, as_version=4))
    if failed:
        return RunRow(nb.stem, CHECKS_FAILED, seconds, "FAIL: " + "; ".join(failed))
    return RunRow(nb.stem, OK, seconds)


KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def clean_executed(src: Path) -> str:
    """An executed notebook as text, with papermill's per-cell metadata (timings, empty tag lists)
    removed so that it stays in sync with its ``.py`` pair; outputs and real tags are kept."""
    import nbformat

    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = nbformat.NotebookNode({"tags": tags} if tags else {})
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = KERNELSPEC  # plain papermill and JupyterLab need it
    return nbformat.writes(nb) + "\n"


def _shown(path: Path) -> str:
    """``path`` relative to the project root when inside it (for headers and messages)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)


def _results_header(figures: Path, params_file: Path | None) -> list[str]:
    source = f"`{_shown(figures)}/<notebook>/results.json`"
    if params_file is None:
        ran = f"Written by `make reproduce` from {source} (default CPU parameters)."
    else:
        ran = (f"Written by `python -m diffcf.reproduce --params {_shown(params_file)}` from {source}: "
               f"**non-default parameters from `{_shown(params_file)}`** (listed per notebook; the "
               f"committed `figures/RESULTS.md` holds the default CPU parameters).")
    return [
        "# Results: this project vs the paper",
        "",
        ran,
        "Every number under *ours* comes from running the notebooks; *paper* is the published value",
        "(Dombrowski et al., TPAMI 2023) where one exists.",
        "",
    ]


def results_markdown(figures: Path | None = None, params_file: Path | None = None,
                     params: dict[str, dict[str, Any]] | None = None) -> str:
    """RESULTS.md: each notebook's results.json under ``figures`` (default: :func:`figures_root`)
    beside the paper's numbers; the header names ``params_file`` when the run used one."""
    figures = figures_root() if figures is None else Path(figures)
    params = params or {}
    lines = _results_header(figures, params_file)
    for res in sorted(figures.glob("*/results.json")):
        stem = res.parent.name
        ours = json.loads(res.read_text())
        paper = PAPER.get(stem, {})
        lines += [f"## {stem}", ""]
        if params_file is not None:
            given = ", ".join(f"`{k}={v!r}`" for k, v in params.get(stem, {}).items())
            lines += [f"Parameters: {given or 'the defaults'}.", ""]
        lines += ["| metric | paper | ours | note |", "|---|---|---|---|"]
        for key in list(paper) + sorted(k for k in ours if k not in paper):
            value = ours.get(key, "not run")
            if isinstance(value, float):
                value = f"{value:.4g}"
            ref, note = paper.get(key, ("—", ""))
            lines.append(f"| `{key}` | {ref} | {value} | {note} |")
        verdicts = evaluate(stem, ours)
        if verdicts:
            lines += ["", "Checks (`lib/diffcf/paper.py`):", ""]
            lines += [f"- {'PASS' if ok else '**FAIL**'} {text}" for text, ok in verdicts.items()]
        lines.append("")
    return "\n".join(lines)


def output_dirs(params_file: Path | None) -> tuple[Path, Path]:
    """``(figures, executed)`` folders of a run: ``figures/`` and ``build/executed/`` for the default
    parameters; ``build/figures-P/`` and ``build/executed-P/`` for ``--params P.yaml``
    (``$DIFFCF_FIGURES`` wins when set)."""
    build = project_root() / "build"
    if params_file is None:
        return figures_root(), build / "executed"
    stem = Path(params_file).stem
    figures = figures_root() if os.environ.get("DIFFCF_FIGURES") else build / f"figures-{stem}"
    return figures, build / f"executed-{stem}"


@contextmanager
def figures_env(figures: Path) -> Iterator[None]:
    """The notebooks' kernels (which inherit the environment) write figures to ``figures``
    (``$DIFFCF_FIGURES``) and show no progress bars (``$DIFFCF_PROGRESS=0``: stored outputs stay
    free of bars); the environment is restored after."""
    settings = {"DIFFCF_FIGURES": str(Path(figures).resolve()), "DIFFCF_PROGRESS": "0"}
    old = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _prepare(args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], list[Path]]:
    """Check the command line and the parameter file before anything runs."""
    if args.update_notebooks and args.params:
        raise RunnerError("--update-notebooks stores the outputs of the default parameters (the nbval "
                          "reference) and cannot be combined with --params; run it without --params")
    params = load_params(args.params) if args.params else {}
    validate_params(params, args.params, list_notebooks())
    books = list_notebooks(args.only)
    bad = [b.name for b in books if b.with_suffix(".py").exists() and _pair_differs(b.with_suffix(".py"), b)]
    if bad:
        raise RunnerError(f"{', '.join(bad)} differ from their .py sources: run `make sync` first")
    return params, books


def _report(rows: list[RunRow], out: Path, results: Path) -> None:
    width = max(len(r.notebook) for r in rows)
    status_width = max(len("status"), *(len(r.status) for r in rows))
    print(f"\n{'notebook':{width}s}  {'status':{status_width}s}  wall time")
    for r in rows:
        print(f"{r.notebook:{width}s}  {r.status:{status_width}s}  {r.seconds:7.1f} s")
        if r.error:
            print(f"{'':{width}s}  └─ {r.error}")
    counts = {s: sum(r.status == s for r in rows) for s in (OK, CHECKS_FAILED, FAILED)}
    print(f"\n{counts[OK]} ok, {counts[CHECKS_FAILED]} with failed checks, {counts[FAILED]} failed · "
          f"executed notebooks in {out} · results in {results}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffcf.reproduce", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="notebook stems or prefixes, e.g. 01 02")
    parser.add_argument("--params", type=Path,
                        help="YAML file: {notebook stem: {parameter: value}}; results go to "
                             "build/figures-<file stem>/ instead of figures/")
    parser.add_argument("--out", type=Path,
                        help="folder for executed notebooks (default build/executed, or "
                             "build/executed-<file stem> with --params)")
    parser.add_argument("--update-notebooks", action="store_true",
                        help="write the executed outputs back into notebooks/*.ipynb "
                             "(default parameters only)")
    parser.add_argument("--check-pairs", action="store_true", help="only check the jupytext pairs")
    args = parser.parse_args(argv)

    if args.check_pairs:
        bad = check_pairs()
        for line in bad:
            print(f"out of sync: {line}")
        print("jupytext pairs in sync" if not bad else f"{len(bad)} pair(s) out of sync")
        return 1 if bad else 0

    try:
        params, books = _prepare(args)
    except RunnerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from tqdm.auto import tqdm

    figures, executed = output_dirs(args.params)
    out = args.out or executed
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with figures_env(figures):
        bar = tqdm(books, desc="notebooks", unit="nb")
        for nb in bar:
            bar.set_postfix_str(nb.stem)
            row = run_notebook(nb, out / nb.name, params.get(nb.stem, {}))
            rows.append(row)
            if row.ran_to_end and args.update_notebooks:
                text = clean_executed(out / nb.name)
                atomic_write(nb, lambda p, text=text: p.write_text(text))
        bar.close()

    results = figures / "RESULTS.md"
    text = results_markdown(figures, args.params, params)
    atomic_write(results, lambda p: p.write_text(text))
    readme = project_root() / "README.md"
    if args.params is None and readme.exists():  # the README's table shows the default run
        by_stem = {r.parent.name: json.loads(r.read_text()) for r in figures.glob("*/results.json")}
        new = readme_with_results(readme.read_text(), by_stem)
        atomic_write(readme, lambda p: p.write_text(new))
    _report(rows, out, results)
    return 0 if all(r.status == OK for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
