"""Parameter files for the runner: ``{notebook stem: {parameter: value}}`` in YAML, checked before
anything runs (:mod:`diffcf.reproduce`).

A notebook's parameters are the names its cell tagged ``parameters`` assigns (with their default
values). A file that is missing, not YAML, not a mapping of mappings, names an unknown notebook or a
parameter the notebook does not have (a misspelling), or gives text where the default is a number,
is a :class:`RunnerError` that lists every problem and the valid names.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

PARAMS_EXAMPLE = "03_mnist:\n  n_images: 500"


class RunnerError(ValueError):
    """A bad command line or parameter file, found before any notebook runs."""


def load_params(path: Path) -> dict[str, dict[str, Any]]:
    """Read a parameter file: ``{notebook stem: {parameter: value}}``; an empty file is ``{}``.

    Raises :class:`RunnerError` naming the file and the problem (missing, not YAML, wrong shape).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RunnerError(f"parameter file {path} does not exist: give a YAML file such as "
                          f"notebooks/params/full.yaml")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise RunnerError(f"parameter file {path} is not valid YAML{where}: {problem}; "
                          f"expected e.g.\n{PARAMS_EXAMPLE}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RunnerError(f"parameter file {path} cannot be read as text: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RunnerError(f"parameter file {path} must map notebook stems to mappings of parameters, "
                          f"got a {type(data).__name__} at the top level; expected e.g.\n{PARAMS_EXAMPLE}")
    params: dict[str, dict[str, Any]] = {}
    for stem, values in data.items():
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise RunnerError(f"parameter file {path}: the entry of {str(stem)!r} must be a mapping of "
                              f"parameter names to values, got {type(values).__name__} {values!r}; "
                              f"expected e.g.\n{PARAMS_EXAMPLE}")
        bad = [name for name in values if not isinstance(name, str)]
        if bad:
            raise RunnerError(f"parameter file {path}: parameter names of {str(stem)!r} must be "
                              f"strings, got {bad}")
        params[str(stem)] = dict(values)
    return params


def notebook_parameters(nb: Path) -> dict[str, Any]:
    """The names assigned at top level in the notebook's cell(s) tagged ``parameters`` (what papermill
    may override), in order, each with its default when that is a literal (else ``...``); ``{}`` if
    the notebook has no such cell."""
    import nbformat

    names: dict[str, Any] = {}
    for cell in nbformat.read(nb, as_version=4).cells:
        if cell.cell_type != "code" or "parameters" not in cell.metadata.get("tags", []):
            continue
        try:
            body = ast.parse(cell.source).body
        except SyntaxError as err:
            raise RunnerError(f"{nb.name}: the cell tagged 'parameters' is not plain Python "
                              f"(line {err.lineno}: {err.msg}); papermill cannot override it") from None
        for node in body:
            if not isinstance(node, ast.Assign | ast.AnnAssign):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            try:
                default = ast.literal_eval(node.value) if node.value is not None else ...
            except (ValueError, TypeError, SyntaxError):
                default = ...
            for target in targets:
                single = isinstance(target, ast.Name)
                names.update({n.id: default if single else ... for n in ast.walk(target)
                              if isinstance(n, ast.Name)})
    return names


def _type_problem(stem: str, name: str, value: Any, default: Any) -> str | None:
    """A string given for a number or bool parameter (YAML reads ``5e-3`` as a string)."""
    if isinstance(default, bool | int | float) and isinstance(value, str):
        return (f"{stem}: {name} = {value!r} is a string, but its default {default!r} is not "
                f"(YAML reads 5e-3 as text: write 5.0e-3 or 0.005; booleans as true/false)")
    return None


def validate_params(params: dict[str, dict[str, Any]], source: Path | str, notebooks: list[Path]) -> None:
    """Every stem in ``params`` must be a notebook, every name one of its parameters, and no value a
    string where the default is a number or bool.

    Raises :class:`RunnerError` listing all problems (from ``source``, the parameter file) at once,
    before anything runs.
    """
    known = {b.stem: b for b in notebooks}
    problems = []
    unknown = [stem for stem in params if stem not in known]
    if unknown:
        problems.append(f"unknown notebook(s) {unknown}; the notebooks are {sorted(known)} "
                        f"(use full stems as keys)")
    for stem, values in params.items():
        if stem not in known or not values:
            continue
        defaults = notebook_parameters(known[stem])
        extra = [name for name in values if name not in defaults]
        if extra and not defaults:
            problems.append(f"{stem} has no cell tagged 'parameters', so it takes no parameters; "
                            f"got {extra}")
        elif extra:
            problems.append(f"{stem} has no parameter(s) {extra}; its parameters are {list(defaults)}")
        for name, value in values.items():
            problem = _type_problem(stem, name, value, defaults.get(name, ...))
            if problem:
                problems.append(problem)
    if problems:
        raise RunnerError(f"parameter file {source}: " + "\n  ".join(problems))
