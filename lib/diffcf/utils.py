"""Small shared helpers: seeding, paths, atomic writes, the results contract.

Figures and ``results.json`` go to ``figures/<stem>/`` (:func:`figure_dir`), or under
``$DIFFCF_FIGURES`` when it is set: the runner sets it for runs with non-default parameters, so that
they never overwrite the committed default-parameter figures. JSON is written strictly: NaN and
Infinity are not JSON, and :func:`write_json`/:func:`save_results` refuse them, naming the key.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import tempfile
from collections.abc import Callable
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed ``random``, ``numpy`` and ``torch``; return a fresh ``torch.Generator`` seeded alike.

    Every notebook calls this in its first code cell (STYLE.md, convention 4).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def check_int(value: object, name: str, low: int, high: int | None = None, why: str = "",
              high_name: str = "") -> int:
    """``value`` as an int if it is an integer (a numpy one too, not a bool) from ``low`` to ``high``
    (``None``: no upper bound); else a ValueError that names the argument ``name``, the range (the
    upper end as ``high_name=high`` if named) and ``why``."""
    if isinstance(value, Integral) and not isinstance(value, bool) and low <= value \
            and (high is None or value <= high):
        return int(value)
    upper = f"{high_name}={high}" if high_name else str(high)
    bound = f">= {low}" if high is None else f"from {low} to {upper}"
    raise ValueError(f"{name} must be an integer {bound}{f' ({why})' if why else ''}, got {value!r}")


def project_root() -> Path:
    """The repository root: ``$DIFFCF_ROOT`` if set, else the folder holding ``pyproject.toml``
    above this package (editable install), else the current directory."""
    env = os.environ.get("DIFFCF_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def data_root() -> Path:
    """Where datasets live: ``$DIFFCF_DATA`` (default ``<root>/data``)."""
    return Path(os.environ.get("DIFFCF_DATA", project_root() / "data")).resolve()


def figures_root() -> Path:
    """Where figures and results go: ``$DIFFCF_FIGURES`` if set (relative to the project root
    unless absolute), else ``<root>/figures``, the committed default-parameter results."""
    env = os.environ.get("DIFFCF_FIGURES")
    if not env:
        return project_root() / "figures"
    return (project_root() / Path(env).expanduser()).resolve()


def figure_dir(stem: str) -> Path:
    """``figures/<notebook stem>/`` (or ``$DIFFCF_FIGURES/<stem>/``), created if missing
    (STYLE.md, convention 8)."""
    d = figures_root() / stem
    d.mkdir(parents=True, exist_ok=True)
    return d


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A crash half-way never leaves a truncated file at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints and figures are shared files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (checkpoint hashes, dataset checksums)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _non_finite(obj: Any, where: str = "") -> tuple[str, float] | None:
    """The first NaN/Infinity in a JSON-like object: ``("['a'][0]", nan)``, or ``None``."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where, obj)
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        found = _non_finite(value, f"{where}[{key!r}]")
        if found:
            return found
    return None


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically. NaN and Infinity are refused (they are not JSON,
    and strict readers reject the whole file): a ``ValueError`` names the first such value."""
    found = _non_finite(obj)
    if found:
        where, value = found
        raise ValueError(f"{Path(path).name}: the value at {where or 'top level'} is {value}, which "
                         f"JSON cannot hold; nothing was written. Store a finite number or leave the "
                         f"entry out")
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write(Path(path), lambda p: p.write_text(text))


def save_results(stem: str, results: dict[str, float | int | bool]) -> Path:
    """The results contract: write ``figure_dir(stem)/results.json`` (a flat object of finite
    numbers; ``figures/<stem>/`` unless ``$DIFFCF_FIGURES`` is set). Nothing is written if a value
    is not a number or is NaN/Infinity (e.g. a mean over no successful searches)."""
    flat: dict[str, float | int | bool] = {}
    for key, value in results.items():
        if isinstance(value, torch.Tensor):
            value = value.item()
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, bool | int | float):
            raise TypeError(f"results[{key!r}] must be a number, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(
                f"results[{key!r}] is {value}: results.json holds finite numbers only (NaN/Infinity "
                f"are not JSON); nothing was written. Is it a mean over an empty selection (e.g. no "
                f"successful searches)? Report the count instead, or leave the key out"
            )
        flat[key] = value
    path = figure_dir(stem) / "results.json"
    write_json(path, flat)
    return path


def print_checks(checks: dict[str, bool]) -> None:
    """Print ``PASS``/``FAIL`` for each must-reach target of a notebook.

    This is what each notebook's last nbval-checked cell prints: the verdicts are stable across
    CPUs and thread counts, while the last digits of long optimisations are not (STYLE.md, 5).
    """
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")


def save_figure(fig, stem: str, name: str, dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``figure_dir(stem)/<name>.png`` (atomically)."""
    path = figure_dir(stem) / f"{name}.png"
    atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, bbox_inches="tight", format="png"))
    return path


def progress_bar(total: int, desc: str, show: bool = True, initial: int = 0):
    """A tqdm bar, or ``None`` when ``show`` is false or ``$DIFFCF_PROGRESS`` is ``0`` (the runner
    sets it, so stored notebook outputs hold no bars). Close it with :func:`close_bar`."""
    if not show or os.environ.get("DIFFCF_PROGRESS", "1") == "0":
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, initial=initial, mininterval=1.0, leave=False)


def close_bar(bar) -> None:
    """Close a bar at its real end: a search or stage that stops early ends at 100% of what it did,
    not as a red bar stuck part-way."""
    if bar is not None:
        bar.total = bar.n
        bar.refresh()
        bar.close()


def get_device(prefer: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; ``"cpu"``/``"cuda"`` force one."""
    if prefer not in {"auto", "cpu", "cuda"}:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {prefer!r}")
    if prefer == "auto":
        prefer = "cuda" if torch.cuda.is_available() else "cpu"
    if prefer == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for, but torch sees no CUDA device")
    return torch.device(prefer)
