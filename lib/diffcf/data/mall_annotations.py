"""The Mall annotations (:mod:`diffcf.data.mall` describes them): :func:`read_ground_truth` of
``mall_gt.mat`` and :func:`read_roi` of ``perspective_roi.mat``, with the frame geometry they are
checked against; and :data:`HOW_TO_GET`, which ends every Mall :class:`~diffcf.data.DataError`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffcf.data import DataError
from diffcf.data.images import data_error

WIDTH, HEIGHT = 640, 480  # every frame
HOW_TO_GET = (
    "`make data` links the project's mirror (../shared/data/mall) into the data root (or run "
    "`python -m diffcf.data.fetch mall --mirror DIR`); the Mall dataset comes from "
    "https://personal.ie.cuhk.edu.hk/~ccloy/downloads_mall_dataset.html, its frames re-packed in two "
    "tars (see the mirror's PROVENANCE.md). Set DIFFCF_DATA to point at the data root"
)


def _fail(path: Path | str, problem: str, expected: str) -> DataError:
    return data_error(path, problem, expected, HOW_TO_GET)


def frame_name(frame: int) -> str:
    """``seq_000123.jpg`` for frame 123."""
    return f"seq_{frame:06d}.jpg"


def _loadmat(path: Path, form: str) -> dict:
    if not path.is_file():
        raise _fail(path, "file not found", form)
    from scipy.io import loadmat

    try:
        return loadmat(path)
    except Exception as err:  # scipy raises ValueError, TypeError, MatReadError, NotImplementedError (v7.3)
        raise _fail(path, f"cannot be read as a MATLAB v5 .mat file ({type(err).__name__}: {err})",
                    form) from err


def _variable(contents: dict, name: str, path: Path, form: str) -> np.ndarray:
    if name not in contents:
        held = ", ".join(k for k in contents if not k.startswith("__")) or "none"
        raise _fail(path, f"has no variable {name!r} (it holds: {held})", form)
    return contents[name]


def _field(struct: object, name: str, path: Path, what: str, form: str) -> object:
    """The field ``name`` of a 1×1 MATLAB struct as :func:`scipy.io.loadmat` returns it."""
    names = getattr(getattr(struct, "dtype", None), "names", None) or ()
    if name not in names or struct.size != 1:
        raise _fail(path, f"{what} is not a struct with a field {name!r}", form)
    return struct[name].ravel()[0]


def _numeric(value: object, path: Path, what: str, form: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise _fail(path, f"{what} is not a numeric array (it is {kind})", form)
    if not np.isfinite(value).all():
        raise _fail(path, f"{what} holds NaN or infinite values", form)
    return value


def read_ground_truth(path: str | Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Read ``mall_gt.mat``: ``(counts, heads)``, the people in each frame as float64 ``(N,)`` and,
    per frame, its heads as a float64 ``(count, 2)`` array of ``(x, y)`` in continuous pixel
    coordinates (the file's 1-based values minus 0.5; module docstring); entry ``i`` is frame
    ``i + 1``, ``seq_{i+1:06d}.jpg``.

    Raises :class:`DataError` naming the file for a missing or unreadable file, a missing variable,
    a ``count`` that is not a column of non-negative integers, a ``count`` whose length differs from
    the number of ``frame`` cells, a cell without an ``(n, 2)`` ``loc``, a frame whose ``loc`` holds
    another number of heads than its ``count``, and a head outside the 640×480 frame.
    """
    path = Path(path)
    form = ("the Mall ground truth: 'count' (frames x 1) and 'frame' (1 x frames cell of structs "
            "with 'loc', the (count, 2) head positions x, y)")
    contents = _loadmat(path, form)
    count = _numeric(_variable(contents, "count", path, form), path, "'count'", form)
    cells = _variable(contents, "frame", path, form)
    if count.ndim > 2 or (count.ndim == 2 and min(count.shape) > 1):
        raise _fail(path, f"'count' has shape {count.shape}", form)
    count = count.ravel().astype(np.float64)
    if (count < 0).any() or (count != np.round(count)).any():
        bad = int(np.flatnonzero((count < 0) | (count != np.round(count)))[0])
        raise _fail(path, f"'count' of frame {bad + 1} is {count[bad]:g}", "a non-negative integer count")
    if not isinstance(cells, np.ndarray) or cells.dtype != object:
        raise _fail(path, "'frame' is not a cell array", form)
    cells = cells.ravel()
    if len(cells) != len(count):
        raise _fail(path, f"'count' has {len(count)} entries but 'frame' has {len(cells)} cells",
                    "one count per frame cell")
    locs = []
    for i, cell in enumerate(cells):  # cheap checks per cell; values are checked all at once below
        loc = _field(cell, "loc", path, f"'frame' cell {i + 1}", form)
        if not isinstance(loc, np.ndarray) or loc.dtype.kind not in "biuf":
            _numeric(loc, path, f"'loc' of frame {i + 1} ({frame_name(i + 1)})", form)  # raises
        if loc.size == 0:
            loc = np.zeros((0, 2))
        if loc.ndim != 2 or loc.shape[1] != 2:
            raise _fail(path, f"'loc' of frame {i + 1} ({frame_name(i + 1)}) has shape {loc.shape}",
                        "(heads, 2) positions x, y")
        locs.append(loc)
    lengths = np.array([len(loc) for loc in locs])
    if (lengths != count).any():
        i = int(np.flatnonzero(lengths != count)[0])
        raise _fail(path, f"frame {i + 1} ({frame_name(i + 1)}): 'count' says {count[i]:g} but 'loc' "
                    f"holds {lengths[i]} heads", "one position per counted person")
    xy = np.concatenate(locs).astype(np.float64) - 0.5
    frame_of = np.repeat(np.arange(len(locs)), lengths)
    bad = ~np.isfinite(xy).all(axis=1)
    if bad.any():
        i = int(frame_of[np.flatnonzero(bad)[0]])
        raise _fail(path, f"'loc' of frame {i + 1} ({frame_name(i + 1)}) holds NaN or infinite values", form)
    outside = (xy[:, 0] < 0) | (xy[:, 0] > WIDTH) | (xy[:, 1] < 0) | (xy[:, 1] > HEIGHT)
    if outside.any():
        j = int(np.flatnonzero(outside)[0])
        i = int(frame_of[j])
        x, y = xy[j] + 0.5
        raise _fail(path, f"frame {i + 1} ({frame_name(i + 1)}) has a head at ({x:g}, {y:g}), outside "
                    f"the frame", f"positions in MATLAB pixel coordinates within [0.5, {WIDTH + 0.5}] x "
                    f"[0.5, {HEIGHT + 0.5}]")
    heads = np.split(xy, np.cumsum(lengths)[:-1])
    return count, heads


def read_roi(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``perspective_roi.mat``: ``(mask, perspective)``, the region of interest as a bool
    ``(480, 640)`` array (``roi.mask``) and the perspective-normalisation map ``pMapN``, float64
    ``(480, 640)``, positive.

    Raises :class:`DataError` naming the file for a missing or unreadable file, a missing variable or
    field, a wrong shape, an empty mask, or a non-positive perspective value.
    """
    path = Path(path)
    form = f"the Mall ROI: 'roi' (a struct with 'mask', {HEIGHT}x{WIDTH}) and 'pMapN' ({HEIGHT}x{WIDTH})"
    contents = _loadmat(path, form)
    mask = _numeric(_field(_variable(contents, "roi", path, form), "mask", path, "'roi'", form),
                    path, "'roi.mask'", form)
    perspective = _numeric(_variable(contents, "pMapN", path, form), path, "'pMapN'", form)
    for name, value in (("roi.mask", mask), ("pMapN", perspective)):
        if value.shape != (HEIGHT, WIDTH):
            raise _fail(path, f"'{name}' has shape {value.shape}", f"{HEIGHT}x{WIDTH}, one value per pixel")
    if not mask.any():
        raise _fail(path, "'roi.mask' is zero everywhere", "a region of interest")
    if (perspective <= 0).any():
        raise _fail(path, f"'pMapN' holds a value {perspective.min():g} <= 0", "a positive map")
    return mask != 0, perspective.astype(np.float64)
