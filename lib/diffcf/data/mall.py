"""The Mall crowd-counting dataset (Chen, Loy, Gong & Xiang, BMVC 2012) for notebook 06: 64×64 crops
of the frames with the number of annotated heads in each (the paper's regression task, §IV-B, Fig. 8).

**Files.** 2,000 RGB frames, 640 wide × 480 high JPEGs, from one CCTV camera in a shopping mall, and
their annotations. ``$DIFFCF_DATA/mall/`` (``make data``) holds

- the frames, either unpacked in the original layout ``frames/seq_000001.jpg`` … ``seq_002000.jpg``
  or still in the mirror's two uncompressed tars ``mall_frames_0001-0800.tar`` and
  ``mall_frames_0801-2000.tar`` (members ``frames/seq_NNNNNN.jpg``, bytes as published), read in
  place with :mod:`tarfile`; the folder is used when it is present;
- ``mall_gt.mat`` (MATLAB v5): ``count``, 2000×1, the people in each frame, and ``frame``, a 1×2000
  cell whose ``frame{i}.loc`` is the ``(count(i), 2)`` array of head positions ``(x, y)`` of frame
  ``i`` in MATLAB's 1-based pixel coordinates (pixel centres at integers);
- ``perspective_roi.mat``: ``roi.mask``, the 480×640 region of interest (the annotated floor; the
  black band of rows 0–15 and two upper corners lie outside it), and ``pMapN``, the 480×640
  perspective-normalisation map, constant along each row (14.8 on the top row, 0.77 on the bottom
  one: it weighs up the people far from the camera, who look smaller); :func:`read_roi` returns both
  (the crops use the mask only).

The ``.mat`` files are read with :func:`scipy.io.loadmat` (scipy comes with scikit-learn and is a
declared dependency); only the variables named above are used. ``mall_feat.mat`` (the hand-crafted
features of the original papers) is not needed.

**Coordinates.** :func:`read_ground_truth` returns head positions in continuous pixel coordinates
with the origin at the top-left corner of the frame, pixel ``(column c, row r)`` (0-based) covering
``[c, c+1) × [r, r+1)``: the file's ``(x, y)`` minus 0.5. In the real file they lie in
``[0.31, 638.14] × [15.97, 477.46]``; 4 of the 62,315 heads lie just outside the ROI mask.

**Split.** The standard one of the crowd-counting literature: **frames 1–800 train, 801–2000 test**
(:data:`TRAIN_FRAMES`, :data:`TEST_FRAMES`). The frames are consecutive frames of one video, so the
frames, and the crops, within a split are strongly correlated; the two splits are disjoint in time.

**Crops** (:func:`load_mall`, :func:`load_mall_crops`, :func:`sample_crops`). As in the paper, the
models work on ``3 × 64 × 64`` RGB crops. A crop covers a ``window × window`` square of the frame
(``window = 128`` frame pixels by default) shown at ``size × size`` (64 by default): each frame is
resized as a whole to ``(640·size/window) × (480·size/window)`` (320 × 240 by default) with PIL's
**bilinear** filter, antialiased when it shrinks as torchvision's ``Resize`` is, and the crops are
``size × size`` squares of that resized frame whose every pixel lies inside the ROI (a resized pixel
is inside when the whole frame area it averages is; :attr:`MallFrames.roi`). The window of 128 frame
pixels is our choice, made to match the paper's examples, which show 0–5 people per crop: over
20,000 uniformly drawn crops inside the ROI a 128-pixel window holds 1.87 heads on average, 95% of
crops hold 0–5 and the most seen is 18, while a 64-pixel window (crops at full resolution) holds
0.48 on average and 71% of its crops are empty. ``size = 32`` keeps the same window (and the same
counts) at half the resolution, for CPU defaults.

``load_mall`` draws ``crops_per_frame`` crops from every frame of the split, their top-left
corners uniform over the positions allowed (with replacement), from ``numpy``'s generator seeded with
``[seed, frame number]``: the crops of a frame do not depend on which other frames are loaded, and
``seed`` gives a fresh set (for instance one per training epoch, through :func:`sample_crops`).

**Counts and density.** The count of a crop is the number of heads whose position lies in it
(half-open: ``left ≤ x < left + size``, likewise for y, in resized-frame pixels), a float. Its
density target (:func:`density_map`, :meth:`MallCrops.density`) is a sum of small Gaussians, one per
head, of standard deviation ``sigma`` crop pixels (default :data:`DENSITY_SIGMA` = 4 frame pixels,
2 crop pixels at the defaults), each truncated to the crop and normalised there, so that the map
sums to the count exactly.

**Cache.** Decoding and resizing the 2,000 frames takes about 20 s (a busy 2-core CPU), so the
resized uint8 frames are cached per split, size and window in
``build/cache/mall_<split>_<size>_<window>.pt`` under the project root (``$DIFFCF_CACHE`` overrides
the folder). The cache records a digest of its sources
(each tar's path, size and mtime, or every frame file's; the preprocessing constants) and is rebuilt
whenever that changes or the file cannot be read back, never trusted. The annotations are read anew
at every load (a fraction of a second).

Every problem with the files raises :class:`DataError` naming the file and how to get it: a missing
tar, folder or ``.mat``, a ``.mat`` that cannot be read or lacks a variable, a ``count`` whose length
differs from the number of ``frame`` cells or from a frame's heads, heads outside the frame, a frame
that is not a readable 640×480 JPEG. Frames the annotations cover but the images lack are left out
with a warning that counts them and names the first few.

The Mall dataset is released for research use (its project page,
https://personal.ie.cuhk.edu.hk/~ccloy/downloads_mall_dataset.html); see the mirror's PROVENANCE.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import warnings
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from diffcf.data import DataError
from diffcf.data.celeba import cache_dir
from diffcf.utils import atomic_write, close_bar, data_root, progress_bar

TRAIN_TAR = "mall_frames_0001-0800.tar"
TEST_TAR = "mall_frames_0801-2000.tar"
TARS = (TRAIN_TAR, TEST_TAR)
FRAME_DIR = "frames"
GT_NAME = "mall_gt.mat"
ROI_NAME = "perspective_roi.mat"
WIDTH, HEIGHT = 640, 480  # every frame
TRAIN_FRAMES = range(1, 801)
TEST_FRAMES = range(801, 2001)
SPLITS = {"train": TRAIN_FRAMES, "test": TEST_FRAMES}
SIZE = 64  # crop side in pixels, as in the paper
WINDOW = 128  # the side of the frame square a crop shows, in frame pixels (module docstring)
CROPS_PER_FRAME = 4
DENSITY_SIGMA = 4.0  # standard deviation of a head's Gaussian, in frame pixels
RESAMPLE = "bilinear"
CACHE_VERSION = 1
HOW_TO_GET = (
    "`make data` links the project's mirror (../shared/data/mall) into the data root (or run "
    "`python -m diffcf.data.fetch mall --mirror DIR`); the Mall dataset comes from "
    "https://personal.ie.cuhk.edu.hk/~ccloy/downloads_mall_dataset.html, its frames re-packed in two "
    "tars (see the mirror's PROVENANCE.md). Set DIFFCF_DATA to point at the data root"
)
_FRAME_NAME = re.compile(r"seq_(\d{6})\.jpg")
_MEMBER_NAME = re.compile(rf"(?:\./)?{FRAME_DIR}/seq_(\d{{6}})\.jpg")
_ROI_OUTSIDE = 1e-4  # a resized pixel is in the ROI when its box average of the mask is >= 1 - this


def mall_dir() -> Path:
    """``$DIFFCF_DATA/mall``."""
    return data_root() / "mall"


def frame_name(frame: int) -> str:
    """``seq_000123.jpg`` for frame 123."""
    return f"seq_{frame:06d}.jpg"


def _fail(path: Path | str, problem: str, expected: str) -> DataError:
    return DataError(f"{path}: {problem}; expected {expected}. {HOW_TO_GET}.")


# ---- the .mat files ------------------------------------------------------------------------------

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


# ---- frames --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sources:
    """Where the frames are: ``kind`` ``"folder"`` (``paths`` is the ``frames/`` folder) or ``"tar"``
    (``paths`` are the tars present)."""

    kind: str
    paths: tuple[Path, ...]

    def describe(self) -> str:
        return " and ".join(str(p) for p in self.paths)

    def frame_files(self) -> dict[int, tuple[Path, str]]:
        """Frame number → ``(file, "")`` (folder) or ``(tar, member name)``."""
        found: dict[int, tuple[Path, str]] = {}
        if self.kind == "folder":
            for entry in os.scandir(self.paths[0]):
                match = _FRAME_NAME.fullmatch(entry.name)
                if match and int(match.group(1)) > 0:
                    found[int(match.group(1))] = (Path(entry.path), "")
            return found
        for path in self.paths:
            with _open_tar(path) as tar:
                for member in tar:
                    match = _MEMBER_NAME.fullmatch(member.name)
                    if not (match and member.isfile() and int(match.group(1)) > 0):
                        continue
                    frame = int(match.group(1))
                    if frame in found and found[frame][0] != path:
                        raise _fail(path, f"holds {frame_name(frame)}, which {found[frame][0]} holds too",
                                    "each frame in one tar")
                    found[frame] = (path, member.name)
        return found

    def fingerprint(self, files: dict[int, tuple[Path, str]]) -> list:
        """Path, size and mtime of each tar, or of every frame file in ``files``."""
        if self.kind == "tar":
            return ["tar", [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in self.paths]]
        stats = []
        for frame in sorted(files):
            stat = os.stat(files[frame][0])
            stats.append([frame, stat.st_size, stat.st_mtime_ns])
        return ["folder", str(self.paths[0]), stats]


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as err:
        raise _fail(path, f"cannot be read as an uncompressed tar archive ({err})",
                    f"a tar of {FRAME_DIR}/seq_NNNNNN.jpg") from err


def find_sources(root: str | Path | None = None) -> Sources:
    """The frames in ``root`` (default :func:`mall_dir`): the ``frames/`` folder, else the tars."""
    folder = Path(root) if root is not None else mall_dir()
    if (folder / FRAME_DIR).is_dir():
        return Sources("folder", (folder / FRAME_DIR,))
    tars = tuple(folder / name for name in TARS if (folder / name).is_file())
    if not tars:
        raise _fail(folder, f"no frames: neither {FRAME_DIR}/ nor {TRAIN_TAR} or {TEST_TAR} is there",
                    "the 2,000 Mall frames seq_000001.jpg … seq_002000.jpg")
    return Sources("tar", tars)


def frame_shape(size: int = SIZE, window: int = WINDOW) -> tuple[int, int]:
    """``(height, width)`` of a frame resized so that ``window`` frame pixels become ``size``:
    ``(240, 320)`` at the defaults."""
    return round(HEIGHT * size / window), round(WIDTH * size / window)


def preprocess(image: Image.Image, shape: tuple[int, int]) -> np.ndarray:
    """One 640×480 frame → uint8 ``(3, height, width)`` of ``shape``: PIL's antialiased bilinear
    resize (none when ``shape`` is the frame's)."""
    image = image.convert("RGB")
    if shape != (HEIGHT, WIDTH):
        image = image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def _decode_one(data: bytes, where: str, shape: tuple[int, int]) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format != "JPEG":
                raise _fail(where, f"is a {image.format} image, not a JPEG", "a JPEG frame")
            if image.size != (WIDTH, HEIGHT):
                raise _fail(where, f"is {image.size[0]}x{image.size[1]} (width x height)",
                            f"a Mall frame, {WIDTH}x{HEIGHT}")
            return preprocess(image, shape)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise _fail(where, f"cannot be decoded ({err})", "a readable JPEG frame") from err


def _decode(files: dict[int, tuple[Path, str]], frames: list[int], shape: tuple[int, int]) -> np.ndarray:
    """The resized uint8 frames ``(len(frames), 3, *shape)``, in ``frames`` order."""
    out = np.empty((len(frames), 3, *shape), dtype=np.uint8)
    bar = progress_bar(len(frames), f"decoding Mall frames at {shape[1]}x{shape[0]}", show=len(frames) >= 200)
    tars: dict[Path, tarfile.TarFile] = {}
    try:
        for i, frame in enumerate(frames):
            path, member = files[frame]
            if not member:
                where, data = str(path), path.read_bytes()
            else:
                where = f"{path}:{member}"
                if path not in tars:
                    tars[path] = _open_tar(path)
                handle = tars[path].extractfile(member)
                if handle is None:
                    raise _fail(where, "is not a regular file", "a JPEG frame")
                data = handle.read()
            out[i] = _decode_one(data, where, shape)
            if bar is not None and (i + 1) % 50 == 0:
                bar.update(50)
    finally:
        for tar in tars.values():
            tar.close()
        if bar is not None:
            bar.update(len(frames) - bar.n)
        close_bar(bar)
    return out


# ---- cache ---------------------------------------------------------------------------------------

def _cache_path(split: str, size: int, window: int) -> Path:
    return cache_dir() / f"mall_{split}_{size}_{window}.pt"


def _cache_key(sources: Sources, files: dict[int, tuple[Path, str]], split: str, size: int,
               window: int) -> str:
    frames = SPLITS[split]
    recipe = {"version": CACHE_VERSION, "split": [frames.start, frames.stop], "size": size,
              "window": window, "shape": list(frame_shape(size, window)), "resample": RESAMPLE,
              "sources": sources.fingerprint(files)}
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()


def _read_cache(path: Path, key: str, split: str, shape: tuple[int, int]) -> dict | None:
    """The cached record if it exists, loads, carries ``key`` and has consistent contents."""
    if not path.is_file():
        return None
    frames = SPLITS[split]
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
        ids, images = record["ids"], record["frames"]
        n = len(ids)
        valid = (record["version"] == CACHE_VERSION and record["key"] == key
                 and ids.dtype == torch.int64 and ids.shape == (n,) and n > 0
                 and bool((ids[1:] > ids[:-1]).all())
                 and frames.start <= int(ids[0]) and int(ids[-1]) < frames.stop
                 and images.dtype == torch.uint8 and images.shape == (n, 3, *shape))
    except Exception:  # an unreadable or foreign file is simply rebuilt
        return None
    return record if valid else None


def _in_split(files: dict[int, tuple[Path, str]], split: str) -> dict[int, tuple[Path, str]]:
    return {frame: where for frame, where in files.items() if frame in SPLITS[split]}


def _load_split(split: str, size: int, window: int, root: str | Path | None) -> dict:
    """The split's frame numbers and resized uint8 frames, from the cache or decoded."""
    sources = find_sources(root)
    shape = frame_shape(size, window)
    # a tar's fingerprint is its stat: listing its members waits for a rebuild
    files = _in_split(sources.frame_files(), split) if sources.kind == "folder" else {}
    key = _cache_key(sources, files, split, size, window)
    path = _cache_path(split, size, window)
    record = _read_cache(path, key, split, shape)
    if record is None:
        files = files or _in_split(sources.frame_files(), split)
        if not files:
            frames = SPLITS[split]
            expected = TRAIN_TAR if split == "train" else TEST_TAR
            raise _fail(sources.describe(), f"no frame of the {split} split ({frame_name(frames.start)} … "
                        f"{frame_name(frames.stop - 1)})", f"{expected} or the unpacked {FRAME_DIR}/")
        ids = sorted(files)
        record = {"version": CACHE_VERSION, "key": key, "size": size, "window": window,
                  "ids": torch.tensor(ids, dtype=torch.int64),
                  "frames": torch.from_numpy(_decode(files, ids, shape))}
        try:
            atomic_write(path, lambda p: torch.save(record, p))
        except OSError as err:
            warnings.warn(f"Mall: cannot write the cache {path} ({err}); the frames will be decoded "
                          f"again next time", stacklevel=4)
    return record


# ---- frames with their annotations ---------------------------------------------------------------

@dataclass
class MallFrames:
    """The frames of one split, resized (:func:`frame_shape`), with their annotations.

    ``ids``: frame numbers ``(F,)`` int64; ``frames``: uint8 ``(F, 3, height, width)``; ``heads``:
    per frame a float32 ``(count, 2)`` tensor of head positions ``(x, y)`` in pixels of the resized
    frame (continuous, origin at its top-left corner); ``roi``: bool ``(height, width)``, the resized
    pixels that lie wholly inside the region of interest; ``size`` and ``window`` as loaded.
    """

    ids: Tensor
    frames: Tensor
    heads: list[Tensor]
    roi: Tensor
    size: int
    window: int

    @property
    def count(self) -> Tensor:
        """People per frame, float32 ``(F,)``."""
        return torch.tensor([len(h) for h in self.heads], dtype=torch.float32)

    def crop_corners(self) -> Tensor:
        """Every allowed crop position: ``(top, left)`` int64 ``(P, 2)`` of the ``size × size``
        squares wholly inside :attr:`roi`, in row-major order."""
        inside = np.pad(self.roi.numpy().astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        s = self.size
        sums = inside[s:, s:] - inside[:-s, s:] - inside[s:, :-s] + inside[:-s, :-s]
        return torch.from_numpy(np.argwhere(sums == s * s).astype(np.int64))


def load_mall_frames(split: str = "train", size: int = SIZE, window: int = WINDOW,
                     root: str | Path | None = None) -> MallFrames:
    """The frames of ``split`` (``"train"``: 1–800, ``"test"``: 801–2000) present in the data,
    resized so that ``window`` frame pixels become ``size`` (320×240 at the defaults), with their
    heads and the ROI (see :class:`MallFrames` and the module docstring).

    ``root`` defaults to :func:`mall_dir` (``$DIFFCF_DATA/mall``). The first call per split, size and
    window decodes the JPEGs (seconds) and caches them.
    """
    split_frames = _check_split(split)
    size, window = _check_size(size, window)
    folder = Path(root) if root is not None else mall_dir()
    counts, heads = read_ground_truth(folder / GT_NAME)  # the annotations first: they fail fast
    mask, _ = read_roi(folder / ROI_NAME)
    record = _load_split(split, size, window, root)
    ids = record["ids"].tolist()
    if ids[-1] > len(counts):
        beyond = [frame_name(i) for i in ids if i > len(counts)][:5]
        raise _fail(folder / GT_NAME, f"covers frames 1–{len(counts)} but the frames include "
                    f"{', '.join(beyond)}", "annotations for every frame")
    lacking = sorted(set(range(split_frames.start, min(split_frames.stop, len(counts) + 1))) - set(ids))
    if lacking:
        first = ", ".join(frame_name(i) for i in lacking[:5])
        warnings.warn(f"Mall: {len(lacking)} frame(s) of the {split} split in {GT_NAME} have no image in "
                      f"{find_sources(root).describe()} and are left out (first: {first})", stacklevel=2)
    height, width = frame_shape(size, window)
    scale = np.array([width / WIDTH, height / HEIGHT])
    return MallFrames(
        ids=record["ids"], frames=record["frames"],
        heads=[torch.from_numpy((heads[i - 1] * scale).astype(np.float32)) for i in ids],
        roi=torch.from_numpy(_resize_mask(mask, (height, width))), size=size, window=window)


def _resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The resized pixels whose box average of ``mask`` is 1: wholly inside it."""
    image = Image.fromarray(mask.astype(np.float32), mode="F")
    if shape != mask.shape:
        image = image.resize((shape[1], shape[0]), Image.Resampling.BOX)
    return np.asarray(image) >= 1.0 - _ROI_OUTSIDE


# ---- crops ---------------------------------------------------------------------------------------

@dataclass
class MallCrops:
    """Crops of the frames: ``x`` float32 ``(N, 3, size, size)`` in ``[0, 1]``; ``count`` float32
    ``(N,)``, the heads in each; ``heads``, per crop a float32 ``(count, 2)`` tensor of ``(x, y)`` in
    crop pixels; ``frame``, the frame number ``(N,)``; ``corner``, ``(top, left)`` ``(N, 2)`` in the
    resized frame; ``size`` and ``window`` as loaded."""

    x: Tensor
    count: Tensor
    heads: list[Tensor]
    frame: Tensor
    corner: Tensor
    size: int
    window: int

    def density(self, sigma: float | None = None) -> Tensor:
        """The density targets ``(N, 1, size, size)``, each summing to its crop's count
        (:func:`density_map`; ``sigma`` in crop pixels, default :data:`DENSITY_SIGMA` frame pixels)."""
        sigma = DENSITY_SIGMA * self.size / self.window if sigma is None else sigma
        maps = [density_map(h, self.size, sigma) for h in self.heads]
        return torch.stack(maps)[:, None] if maps else torch.zeros(0, 1, self.size, self.size)


def sample_crops(frames: MallFrames, crops_per_frame: int = CROPS_PER_FRAME, seed: int = 0) -> MallCrops:
    """``crops_per_frame`` crops of every frame, their corners drawn uniformly (with replacement) from
    :meth:`MallFrames.crop_corners` by ``numpy.random.default_rng([seed, frame number])``."""
    crops_per_frame = _check_count(crops_per_frame, "crops_per_frame")
    seed = _check_count(seed, "seed", least=0)
    corners = frames.crop_corners().numpy()
    s = frames.size
    if len(corners) == 0:
        raise ValueError(f"no {s}x{s} crop lies wholly inside the region of interest of the "
                         f"{frames.roi.shape[1]}x{frames.roi.shape[0]} frames; use a smaller window "
                         f"(got window={frames.window})")
    chosen = np.concatenate([corners[np.random.default_rng([seed, frame]).integers(
        0, len(corners), size=crops_per_frame)] for frame in frames.ids.tolist()])
    x = torch.empty(len(chosen), 3, s, s, dtype=torch.uint8)
    heads = []
    for k, (top, left) in enumerate(chosen.tolist()):  # python ints: torch slices them fast
        i = k // crops_per_frame
        x[k] = frames.frames[i, :, top:top + s, left:left + s]
        xy = frames.heads[i].numpy()
        inside = (xy[:, 0] >= left) & (xy[:, 0] < left + s) & (xy[:, 1] >= top) & (xy[:, 1] < top + s)
        heads.append(torch.from_numpy(xy[inside] - np.array([left, top], dtype=np.float32)))
    return MallCrops(
        x=x.float().div_(255.0), count=torch.tensor([len(h) for h in heads], dtype=torch.float32),
        heads=heads, frame=frames.ids.repeat_interleave(crops_per_frame), corner=torch.from_numpy(chosen),
        size=s, window=frames.window)


def density_map(heads: Tensor, size: int, sigma: float) -> Tensor:
    """A ``size × size`` float32 map, the sum over ``heads`` (``(n, 2)`` positions ``(x, y)`` in
    pixels, pixel ``(c, r)`` covering ``[c, c+1) × [r, r+1)``) of a Gaussian of standard deviation
    ``sigma`` sampled at the pixel centres and normalised over the map: each head adds exactly 1, so
    the map sums to ``n`` (a head near the border keeps all its mass inside)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    heads = torch.as_tensor(heads, dtype=torch.float64).reshape(-1, 2)
    centres = torch.arange(size, dtype=torch.float64) + 0.5

    def weights(coordinate: Tensor) -> Tensor:  # (n, size), rows summing to 1
        logits = -((centres[None, :] - coordinate[:, None]) ** 2) / (2 * sigma**2)
        w = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
        return w / w.sum(dim=1, keepdim=True)

    return (weights(heads[:, 1]).T @ weights(heads[:, 0])).float()


def load_mall_crops(split: str = "train", size: int = SIZE, window: int = WINDOW,
                    crops_per_frame: int = CROPS_PER_FRAME, seed: int = 0,
                    root: str | Path | None = None) -> MallCrops:
    """:func:`sample_crops` of :func:`load_mall_frames`: the crops of ``split`` with their counts,
    head positions, frames and corners."""
    return sample_crops(load_mall_frames(split, size, window, root), crops_per_frame, seed)


def load_mall(split: str = "train", size: int = SIZE, window: int = WINDOW,
              crops_per_frame: int = CROPS_PER_FRAME, seed: int = 0, root: str | Path | None = None
              ) -> tuple[Tensor, Tensor]:
    """Mall crops ``x`` float32 ``(N, 3, size, size)`` in ``[0, 1]`` and their head counts ``(N,)``
    float32, ``crops_per_frame`` from each frame of ``split`` (``"train"``: frames 1–800,
    ``"test"``: 801–2000), each showing a ``window × window`` square of the frame; ``N`` is
    ``crops_per_frame`` × the frames present. See the module docstring; :func:`load_mall_crops`
    also gives the heads (for the density targets), frames and corners."""
    crops = load_mall_crops(split, size, window, crops_per_frame, seed, root)
    return crops.x, crops.count


# ---- arguments -----------------------------------------------------------------------------------

def _check_split(split: str) -> range:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return SPLITS[split]


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_size(size: int, window: int) -> tuple[int, int]:
    if not _is_int(window) or not 1 <= window <= HEIGHT:
        raise ValueError(f"window must be an integer from 1 to {HEIGHT} (the side, in frame pixels, of "
                         f"the square a crop shows; {WINDOW} by default), got {window!r}")
    if not _is_int(size) or not 1 <= size <= window:
        raise ValueError(f"size must be an integer from 1 to window={window} (the crop side in pixels; "
                         f"64 as in the paper, 32 on CPU), got {size!r}")
    return int(size), int(window)


def _check_count(value: int, name: str, least: int = 1) -> int:
    if not _is_int(value) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)
