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

The ``.mat`` files are read (:mod:`diffcf.data.mall_annotations`) with :func:`scipy.io.loadmat`
(scipy comes with scikit-learn and is a declared dependency); only the variables named above are
used. ``mall_feat.mat`` (the hand-crafted features of the original papers) is not needed.

**Coordinates.** :func:`read_ground_truth` returns head positions in continuous pixel coordinates
with the origin at the top-left corner of the frame, pixel ``(column c, row r)`` (0-based) covering
``[c, c+1) × [r, r+1)``: the file's ``(x, y)`` minus 0.5. In the real file they lie in
``[0.31, 638.14] × [15.97, 477.46]``; 4 of the 62,315 heads lie just outside the ROI mask.

**Split.** The standard one of the crowd-counting literature: **frames 1–800 train, 801–2000 test**
(:data:`TRAIN_FRAMES`, :data:`TEST_FRAMES`). The frames are consecutive frames of one video, so the
frames, and the crops, within a split are strongly correlated; the two splits are disjoint in time.

**Crops** (:func:`load_mall`, :func:`load_mall_crops`; :mod:`diffcf.data.mall_crops`). As in the
paper, the models work on ``3 × 64 × 64`` RGB crops. A crop covers a ``window × window`` square of the frame
(``window = 128`` frame pixels by default) shown at ``size × size`` (64 by default): each frame is
resized as a whole to ``(640·size/window) × (480·size/window)`` (320 × 240 by default) with PIL's
antialiased **bilinear** filter (:func:`diffcf.data.images.to_array`), and the crops are
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
resized uint8 frames are cached per split, size and window in ``mall_<split>_<size>_<window>.pt``
(:mod:`diffcf.data.images`). The annotations are read anew at every load (a fraction of a second).

Every problem with the files raises :class:`DataError` naming the file and how to get it: a missing
tar, folder or ``.mat``, a ``.mat`` that cannot be read or lacks a variable, a ``count`` whose length
differs from the number of ``frame`` cells or from a frame's heads, heads outside the frame, a frame
that is not a readable 640×480 JPEG. Frames the annotations cover but the images lack are left out
with a warning that counts them and names the first few.

The Mall dataset is released for research use (its project page,
https://personal.ie.cuhk.edu.hk/~ccloy/downloads_mall_dataset.html); see the mirror's PROVENANCE.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from diffcf.data import check_split
from diffcf.data.images import RESAMPLE, ImageFiles, Location, increasing_ids, numbered, stamp, to_array
from diffcf.data.mall_annotations import HEIGHT, HOW_TO_GET, WIDTH, frame_name, read_ground_truth, read_roi
from diffcf.data.mall_crops import CROPS_PER_FRAME, MallCrops, MallFrames, resize_roi, sample_crops
from diffcf.data.mall_crops import DENSITY_SIGMA as DENSITY_SIGMA
from diffcf.data.mall_crops import density_map as density_map
from diffcf.utils import check_int, data_root

TRAIN_TAR = "mall_frames_0001-0800.tar"
TEST_TAR = "mall_frames_0801-2000.tar"
TARS = (TRAIN_TAR, TEST_TAR)
FRAME_DIR = "frames"
GT_NAME = "mall_gt.mat"
ROI_NAME = "perspective_roi.mat"
TRAIN_FRAMES = range(1, 801)
TEST_FRAMES = range(801, 2001)
SPLITS = {"train": TRAIN_FRAMES, "test": TEST_FRAMES}
SIZE = 64  # crop side in pixels, as in the paper
WINDOW = 128  # the side of the frame square a crop shows, in frame pixels (module docstring)
_FILES = ImageFiles("Mall", HOW_TO_GET, FRAME_DIR, "seq_NNNNNN.jpg", "JPEG", (WIDTH, HEIGHT),
                     "a readable JPEG frame", expected_size=f"a Mall frame, {WIDTH}x{HEIGHT}")
_fail = _FILES.fail
_frame_number = numbered(rf"{FRAME_DIR}/seq_(\d{{6}})\.jpg", range(1, 10**6))


def mall_dir() -> Path:
    """``$DIFFCF_DATA/mall``."""
    return data_root() / "mall"


def frame_shape(size: int = SIZE, window: int = WINDOW) -> tuple[int, int]:
    """``(height, width)`` of a frame resized so that ``window`` frame pixels become ``size``:
    ``(240, 320)`` at the defaults."""
    return round(HEIGHT * size / window), round(WIDTH * size / window)


# ---- frames --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sources:
    """Where the frames are: ``kind`` ``"folder"`` (``paths`` is the ``frames/`` folder) or ``"tar"``
    (``paths`` are the tars present)."""

    kind: str
    paths: tuple[Path, ...]

    def describe(self) -> str:
        return " and ".join(str(p) for p in self.paths)

    def frame_files(self) -> dict[int, Location]:
        """Frame number → its file or tar member (:mod:`diffcf.data.images`)."""
        if self.kind == "folder":
            return _FILES.list_folder(self.paths[0].parent, _frame_number)
        found: dict[int, Location] = {}
        for path in self.paths:
            for frame, location in _FILES.list_tar(path, _frame_number).items():
                if frame in found:
                    raise _fail(path, f"holds {frame_name(frame)}, which {found[frame][0]} holds too",
                                "each frame in one tar")
                found[frame] = location
        return found

    def fingerprint(self, files: dict[int, Location]) -> list:
        """Path, size and mtime of each tar, or of every frame file in ``files``."""
        if self.kind == "tar":
            return ["tar", [stamp(path) for path in self.paths]]
        return ["folder", stamp(self.paths[0], files)]


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


def preprocess(image: Image.Image, shape: tuple[int, int]) -> np.ndarray:
    """One 640×480 frame → uint8 ``(3, height, width)`` of ``shape``: PIL's antialiased bilinear
    resize (none when ``shape`` is the frame's)."""
    return to_array(image.convert("RGB"), shape)


def _decode(files: dict[int, Location], frames: list[int], shape: tuple[int, int]) -> np.ndarray:
    """The resized uint8 frames ``(len(frames), 3, *shape)``, in ``frames`` order."""
    return _FILES.decode_all([files[f] for f in frames], (3, *shape), lambda image: preprocess(image, shape))


# ---- cache ---------------------------------------------------------------------------------------

def _valid(record: dict, split: str, shape: tuple[int, int]) -> bool:
    """Whether a cached record's contents hold together."""
    ids, frames = record["ids"], record["frames"]
    return (increasing_ids(ids) and SPLITS[split].start <= int(ids[0]) and int(ids[-1]) < SPLITS[split].stop
            and frames.dtype == torch.uint8 and frames.shape == (len(ids), 3, *shape))


def _in_split(files: dict[int, Location], split: str) -> dict[int, Location]:
    return {frame: where for frame, where in files.items() if frame in SPLITS[split]}


def _load_split(split: str, size: int, window: int, root: str | Path | None) -> dict:
    """The split's frame numbers and resized uint8 frames, from the cache or decoded."""
    sources = find_sources(root)
    shape = frame_shape(size, window)
    # a tar's fingerprint is its stat: listing its members waits for a rebuild
    files = _in_split(sources.frame_files(), split) if sources.kind == "folder" else {}
    frames = SPLITS[split]
    recipe = {"split": [frames.start, frames.stop], "size": size, "window": window, "shape": list(shape),
              "resample": RESAMPLE, "sources": sources.fingerprint(files)}

    def build() -> dict:
        found = files or _in_split(sources.frame_files(), split)
        if not found:
            expected = TRAIN_TAR if split == "train" else TEST_TAR
            raise _fail(sources.describe(), f"no frame of the {split} split ({frame_name(frames.start)} … "
                        f"{frame_name(frames.stop - 1)})", f"{expected} or the unpacked {FRAME_DIR}/")
        ids = sorted(found)
        return {"size": size, "window": window, "ids": torch.tensor(ids, dtype=torch.int64),
                "frames": torch.from_numpy(_decode(found, ids, shape))}

    name = f"mall_{split}_{size}_{window}.pt"
    return _FILES.cached(name, recipe, lambda record: _valid(record, split, shape), build)


# ---- the loaders ---------------------------------------------------------------------------------

def load_mall_frames(split: str = "train", size: int = SIZE, window: int = WINDOW,
                     root: str | Path | None = None) -> MallFrames:
    """The frames of ``split`` (``"train"``: 1–800, ``"test"``: 801–2000) present in the data,
    resized so that ``window`` frame pixels become ``size`` (320×240 at the defaults), with their
    heads and the ROI (see :class:`MallFrames` and the module docstring).

    ``root`` defaults to :func:`mall_dir` (``$DIFFCF_DATA/mall``). The first call per split, size and
    window decodes the JPEGs (seconds) and caches them.
    """
    split_frames = SPLITS[check_split(split, SPLITS)]
    window = check_int(window, "window", 1, HEIGHT, f"the side, in frame pixels, of the square a crop shows; "
                                                    f"{WINDOW} by default")
    size = check_int(size, "size", 1, window, "the crop side in pixels; 64 as in the paper, 32 on CPU",
                     high_name="window")
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
        roi=torch.from_numpy(resize_roi(mask, (height, width))), size=size, window=window)


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
