"""Chest X-rays with a Cardiomegaly label for notebook 05 (the paper's §IV-B medical setting).

**NIH ChestX-ray14 images, not CheXpert** (whose licence forbids redistribution): the Kaggle set
"Cardiomegaly Disease Prediction using CNN", frontal NIH films downscaled to **128×128, 8-bit grey**,
the resolution the paper uses. The mirror's PROVENANCE.md says where it comes from and how its
labels were checked. ``$DIFFCF_DATA/chestxray/`` (``make data``) holds

- the images, either still in ``nih_cxr14_cardiomegaly_128px_kaggle_subset.tar`` (read in place with
  :mod:`tarfile`) or unpacked as ``cardiomegaly_128/{train,test}/{true,false}/N.png``; the folder is
  used when both are present;
- ``labels_cardiomegaly_128.csv``, one row per image, columns ``path_in_tar, split, cardiomegaly,
  bytes, sha256, source_path`` (label 1 = Cardiomegaly, 0 = none).

The csv decides which images are read, and in which order (its row order: in the mirror, numeric
file order within ``false`` then ``true``). Each row's label and split are checked against its path:
the folder ``true``/``false`` is the label the Kaggle uploader gave, and a row that disagrees with
its folder is an error, as is a row whose image is missing. Images the csv does not list are left
out with a warning. ``verify=True`` also checks every listed file's size and sha256 against the csv
(reads and hashes all 4,810 files: 1.3 s from the tar on one core); by default the files are trusted.

The split is the **given Kaggle train/test split**, kept as it is. It **mixes patients**: NIH has many
follow-up films per patient, the file names that carried the patient id were replaced by running
numbers, and the few images matched back to NIH ids show patients with films on both sides. A
classifier can therefore recognise a test patient's other films, so **test accuracy is optimistic
for unseen patients**; a patient-disjoint split is impossible without the ids.

Class balance, measured on the mirror (artificial: all of NIH's 2,776 Cardiomegaly films against a
subset of negatives; NIH's prevalence is about 2.5%; "negative" means no Cardiomegaly, not no
finding)::

    split   cardiomegaly  none   total   share positive
    train   2219          1477   3696    60.0%
    test     557           557   1114    50.0%

so a constant "cardiomegaly" guess scores 50% on test and 60% on train (balanced accuracy is the
fairer figure). Pixel values (k/255) average 0.62 in both splits, standard deviation 0.28 (0.27 at 64).

Preprocessing (:func:`preprocess`): ``size = 128`` keeps the pixels; a smaller size is PIL's
**bilinear** resize, antialiased when it shrinks (the filter support widens with the scale factor,
so 128→64 averages each output pixel over a 4×4 input patch with weights (1, 3, 3, 1)/8 per axis), as
for CelebA and torchvision's ``Resize``; then ``k/255`` for the uint8 ``k``, shape ``(N, 1, size,
size)``.

Decoding the 4,810 PNGs takes about 5 s on one core (from the tar, either size), reading the cache
0.7 s at 128 (79 MB) and 0.2 s at 64 (20 MB), so the uint8 images of both splits, with labels,
splits and names, are cached per size in ``build/cache/chestxray_<size>.pt`` under the project root
(``$DIFFCF_CACHE`` overrides the folder). The cache records a digest of its sources (the tar's, or
every image file's, path, size and mtime; the csv's sha256; the preprocessing constants) and is
rebuilt whenever that changes or the file cannot be read back, never trusted.

Terms: NIH states that use of ChestX-ray14 is unrestricted and asks for a link to its download site,
a citation of Wang et al., CVPR 2017, and an acknowledgement of the NIH Clinical Center; the Kaggle
repackaging's own licence is unknown (PROVENANCE.md).
"""

from __future__ import annotations

import csv
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
from diffcf.utils import atomic_write, close_bar, data_root, file_digest, progress_bar, project_root

TAR_NAME = "nih_cxr14_cardiomegaly_128px_kaggle_subset.tar"
IMAGE_DIR = "cardiomegaly_128"
CSV_NAME = "labels_cardiomegaly_128.csv"
COLUMNS = ("path_in_tar", "split", "cardiomegaly", "bytes", "sha256")  # the ones read; others ignored
SIDE = 128  # the images are SIDE x SIDE, 8-bit grey
RESAMPLE = "bilinear"
SPLITS = ("train", "test")
FOLDER_LABELS = {"false": 0, "true": 1}  # label folder -> cardiomegaly
CACHE_VERSION = 1
HOW_TO_GET = (
    "`make data` links the project's mirror (../shared/data/chestxray) into the data root (or run "
    "`python -m diffcf.data.fetch chestxray --mirror DIR`); the images are NIH ChestX-ray14 films as "
    "repackaged on Kaggle (see the mirror's PROVENANCE.md). Set DIFFCF_DATA to point at the data root"
)
_PATH = re.compile(rf"{IMAGE_DIR}/(train|test)/(true|false)/([1-9]\d*)\.png")
_MEMBER = re.compile(rf"(?:\./)?({_PATH.pattern})")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def chestxray_dir() -> Path:
    """``$DIFFCF_DATA/chestxray``."""
    return data_root() / "chestxray"


def cache_dir() -> Path:
    """Where the preprocessed tensors are cached: ``$DIFFCF_CACHE``, else ``<root>/build/cache``."""
    env = os.environ.get("DIFFCF_CACHE")
    return Path(env).resolve() if env else project_root() / "build" / "cache"


def _fail(path: Path | str, problem: str, expected: str) -> DataError:
    return DataError(f"{path}: {problem}; expected {expected}. {HOW_TO_GET}.")


# ---- labels --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One image of the label csv: its path (as in the tar), split, label, size and sha256, and the
    csv line it came from."""

    path: str
    split: str
    label: int
    size: int
    sha256: str
    line: int


def read_labels(path: str | Path) -> list[Row]:
    """Read ``labels_cardiomegaly_128.csv`` and return its rows in file order.

    Raises :class:`DataError` naming the file (and the line) for a missing, empty or non-UTF-8 file,
    a header without one of :data:`COLUMNS`, a row with the wrong number of fields, a path not of
    the form ``cardiomegaly_128/{train,test}/{true,false}/N.png``, a split other than train/test, a
    label other than 0/1, a split or label that disagrees with the path's folders, a byte count that
    is not a positive integer, a sha256 that is not 64 hex digits, or a path listed twice.
    """
    path = Path(path)
    form = f"a csv with the columns {', '.join(COLUMNS)} (and source_path), one row per image"
    if not path.is_file():
        raise _fail(path, "file not found", form)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _fail(path, f"not UTF-8 text (byte {err.start} is 0x{err.object[err.start]:02x})",
                    form) from err
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next((fields for fields in reader if any(f.strip() for f in fields)), None)
    if header is None:
        raise _fail(path, "the file is empty", form)
    header = [name.strip() for name in header]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise _fail(path, f"line {reader.line_num}: the header lacks the column(s) {', '.join(missing)} "
                          f"(it has {', '.join(header)})", form)
    where = {name: header.index(name) for name in COLUMNS}
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for fields in reader:
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise _fail(path, f"line {line} holds {len(fields)} fields", f"{len(header)}, one per column")
        value = {name: fields[i].strip() for name, i in where.items()}
        name, split, label = value["path_in_tar"], value["split"], value["cardiomegaly"]
        row = f"line {line} ({name[:60]})"
        match = _PATH.fullmatch(name)
        if not match:
            raise _fail(path, f"line {line}: path_in_tar is {name[:60]!r}",
                        f"{IMAGE_DIR}/{{train,test}}/{{true,false}}/N.png")
        if split not in SPLITS:
            raise _fail(path, f"{row}: split is {split[:20]!r}", f"one of {', '.join(SPLITS)}")
        if label not in ("0", "1"):
            raise _fail(path, f"{row}: cardiomegaly is {label[:20]!r}", "0 or 1")
        if split != match.group(1):
            raise _fail(path, f"{row}: split is {split!r} but the image lies in the {match.group(1)} folder",
                        "the split of the image's folder")
        if int(label) != FOLDER_LABELS[match.group(2)]:
            raise _fail(path, f"{row}: cardiomegaly is {label} but the image lies in the "
                              f"{match.group(2)!r} folder", "1 for true/, 0 for false/")
        if not value["bytes"].isdigit() or int(value["bytes"]) == 0:
            raise _fail(path, f"{row}: bytes is {value['bytes'][:20]!r}", "the file size, a positive integer")
        if not _SHA256.fullmatch(value["sha256"]):
            raise _fail(path, f"{row}: sha256 is {value['sha256'][:70]!r}", "64 lower-case hex digits")
        if name in seen:
            raise _fail(path, f"line {line}: {name} already has a row (line {seen[name]})",
                        "one row per image")
        seen[name] = line
        rows.append(Row(name, split, int(label), int(value["bytes"]), value["sha256"], line))
    if not rows:
        raise _fail(path, "the file holds a header but no rows", form)
    return rows


# ---- images --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sources:
    """What a load reads: the image source (``"folder"``: the ``cardiomegaly_128`` folder's parent,
    or ``"tar"``) and the label csv."""

    kind: str
    images: Path
    labels: Path

    def where(self, name: str) -> str:
        """How errors name the image ``name`` (a path in the tar)."""
        return str(self.images / name) if self.kind == "folder" else f"{self.images}:{name}"

    def image_names(self) -> list[str]:
        """Every image path ``cardiomegaly_128/…/N.png`` the folder or the tar holds (sorted)."""
        if self.kind == "folder":
            found = []
            for split in SPLITS:
                for label in FOLDER_LABELS:
                    folder = self.images / IMAGE_DIR / split / label
                    if folder.is_dir():
                        found += [f"{IMAGE_DIR}/{split}/{label}/{entry.name}" for entry in os.scandir(folder)
                                  if entry.is_file()]
            return sorted(name for name in found if _PATH.fullmatch(name))
        with _open_tar(self.images) as tar:
            return sorted(match.group(1) for member in tar
                          if member.isfile() and (match := _MEMBER.fullmatch(member.name)))

    def read(self, names: set[str]) -> dict[str, bytes]:
        """The bytes of the images ``names`` that exist (the tar is read once, in its order)."""
        if self.kind == "folder":
            out = {}
            for name in sorted(names):
                file = self.images / name
                if file.is_file():
                    out[name] = file.read_bytes()
            return out
        out = {}
        with _open_tar(self.images) as tar:
            for member in tar:
                match = _MEMBER.fullmatch(member.name)
                if match and member.isfile() and match.group(1) in names:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        out[match.group(1)] = handle.read()
        return out

    def fingerprint(self, names: list[str]) -> list:
        """Path, size and mtime of the tar or of every image file, and the csv's sha256."""
        if self.kind == "tar":
            stat = self.images.stat()
            images = [str(self.images), stat.st_size, stat.st_mtime_ns]
        else:
            images = [str(self.images)]
            for name in names:
                stat = os.stat(self.images / name)
                images.append([name, stat.st_size, stat.st_mtime_ns])
        return [self.kind, images, str(self.labels), file_digest(self.labels, "sha256")]


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as err:
        raise _fail(path, f"cannot be read as an uncompressed tar archive ({err})",
                    f"a tar of {IMAGE_DIR}/{{train,test}}/{{true,false}}/N.png") from err


def find_sources(root: str | Path | None = None) -> Sources:
    """The image source and label csv in ``root`` (default :func:`chestxray_dir`): the
    ``cardiomegaly_128/`` folder, else the tar."""
    folder = Path(root) if root is not None else chestxray_dir()
    if (folder / IMAGE_DIR).is_dir():
        kind, images = "folder", folder
    elif (folder / TAR_NAME).is_file():
        kind, images = "tar", folder / TAR_NAME
    else:
        raise _fail(folder, f"no images: neither {IMAGE_DIR}/ nor {TAR_NAME} is there",
                    f"the {SIDE}x{SIDE} grey chest X-ray PNGs")
    if not (folder / CSV_NAME).is_file():
        raise _fail(folder / CSV_NAME, "file not found", "the label csv beside the images")
    return Sources(kind, images, folder / CSV_NAME)


def preprocess(image: Image.Image, size: int) -> np.ndarray:
    """One 128×128 grey image → uint8 ``(1, size, size)``: unchanged at 128, else PIL's
    antialiased bilinear resize (see the module docstring)."""
    if size != SIDE:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)[None]


def _decode_one(data: bytes, where: str, size: int) -> np.ndarray:
    expected = f"a {SIDE}x{SIDE} 8-bit grey PNG"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format != "PNG":
                raise _fail(where, f"is a {image.format} image, not a PNG", expected)
            if image.mode != "L":
                raise _fail(where, f"has PIL mode {image.mode!r}, not 'L' (8-bit grey)", expected)
            if image.size != (SIDE, SIDE):
                raise _fail(where, f"is {image.size[0]}x{image.size[1]} (width x height)", expected)
            return preprocess(image, size)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise _fail(where, f"cannot be decoded ({err})", expected) from err


def _check_present(sources: Sources, rows: list[Row], present) -> None:
    lacking = [row for row in rows if row.path not in present]
    if lacking:
        first = lacking[0]
        raise _fail(sources.where(first.path),
                    f"not found, though {sources.labels} lists it on line {first.line} "
                    f"({len(lacking)} listed image(s) missing in all)", "every image the csv lists")


def _unlisted_notes(sources: Sources, rows: list[Row], names: list[str]) -> list[str]:
    listed = {row.path for row in rows}
    extra = [name for name in names if name not in listed]
    if not extra:
        return []
    return [f"chest X-rays: {len(extra)} image(s) in {sources.images} have no row in {sources.labels} "
            f"and are left out (first: {', '.join(extra[:3])})"]


def _decode(sources: Sources, rows: list[Row], size: int) -> np.ndarray:
    """The preprocessed uint8 images ``(len(rows), 1, size, size)``, in row order."""
    data = sources.read({row.path for row in rows})
    _check_present(sources, rows, data)
    out = np.empty((len(rows), 1, size, size), dtype=np.uint8)
    bar = progress_bar(len(rows), f"decoding chest X-rays at {size}x{size}", show=len(rows) >= 1000)
    try:
        for i, row in enumerate(rows):
            out[i] = _decode_one(data[row.path], sources.where(row.path), size)
            if bar is not None and (i + 1) % 250 == 0:
                bar.update(250)
    finally:
        if bar is not None:
            bar.update(len(rows) - bar.n)
        close_bar(bar)
    return out


def verify_files(root: str | Path | None = None) -> int:
    """Check every image the csv lists against the csv's ``bytes`` and ``sha256``; return how many
    were checked. :class:`DataError` names the first file that is missing or differs."""
    sources = find_sources(root)
    rows = read_labels(sources.labels)
    data = sources.read({row.path for row in rows})
    _check_present(sources, rows, data)
    for row in rows:
        content = data[row.path]
        digest = hashlib.sha256(content).hexdigest()
        if len(content) != row.size or digest != row.sha256:
            raise _fail(sources.where(row.path),
                        f"{len(content)} bytes with sha256 {digest}, where {sources.labels} line "
                        f"{row.line} says {row.size} bytes, sha256 {row.sha256}",
                        "the file the csv lists (a changed or corrupted copy?)")
    return len(rows)


# ---- cache and the loader ------------------------------------------------------------------------

def _cache_path(size: int) -> Path:
    return cache_dir() / f"chestxray_{size}.pt"


def _cache_key(sources: Sources, names: list[str], size: int) -> str:
    recipe = {"version": CACHE_VERSION, "size": size, "side": SIDE, "resample": RESAMPLE,
              "sources": sources.fingerprint(names)}
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()


def _read_cache(path: Path, key: str, size: int) -> dict | None:
    """The cached record if it exists, loads, carries ``key`` and has consistent contents."""
    if not path.is_file():
        return None
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
        images, labels, splits, names = record["images"], record["labels"], record["splits"], record["names"]
        n = len(names)
        valid = (record["version"] == CACHE_VERSION and record["key"] == key and n > 0
                 and images.dtype == torch.uint8 and images.shape == (n, 1, size, size)
                 and labels.dtype == torch.uint8 and labels.shape == (n,) and int(labels.max()) <= 1
                 and splits.dtype == torch.uint8 and splits.shape == (n,) and int(splits.max()) < len(SPLITS)
                 and all(isinstance(name, str) for name in names)
                 and all(isinstance(note, str) for note in record["notes"]))
    except Exception:  # an unreadable or foreign file is simply rebuilt
        return None
    return record if valid else None


def _load_all(size: int, root: str | Path | None = None) -> dict:
    """Both splits' uint8 images, labels, split indices and names, from the cache or decoded."""
    sources = find_sources(root)
    # the tar's fingerprint is its stat: listing its members waits for a rebuild
    names = sources.image_names() if sources.kind == "folder" else []
    key = _cache_key(sources, names, size)
    path = _cache_path(size)
    record = _read_cache(path, key, size)
    if record is None:
        rows = read_labels(sources.labels)
        notes = _unlisted_notes(sources, rows, names or sources.image_names())
        images = _decode(sources, rows, size)
        record = {"version": CACHE_VERSION, "key": key, "size": size, "notes": notes,
                  "names": [row.path for row in rows],
                  "images": torch.from_numpy(images),
                  "labels": torch.tensor([row.label for row in rows], dtype=torch.uint8),
                  "splits": torch.tensor([SPLITS.index(row.split) for row in rows], dtype=torch.uint8)}
        try:
            atomic_write(path, lambda p: torch.save(record, p))
        except OSError as err:
            warnings.warn(f"chest X-rays: cannot write the cache {path} ({err}); the images will be "
                          f"decoded again next time", stacklevel=3)
    for note in record["notes"]:
        warnings.warn(note, stacklevel=3)
    return record


def _check_split(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return SPLITS.index(split)


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, Integral) or not 1 <= size <= SIDE:
        raise ValueError(f"size must be an integer from 1 to {SIDE} (the side of the {SIDE}x{SIDE} "
                         f"images; 128 as in the paper, 64 on CPU), got {size!r}")
    return int(size)


def load_chestxray(split: str = "train", size: int = 128, root: str | Path | None = None,
                   verify: bool = False) -> tuple[Tensor, Tensor]:
    """Chest X-rays ``(N, 1, size, size)`` float32 in ``[0, 1]`` and labels ``(N,)`` long, 1 =
    Cardiomegaly, of the given ``split`` (``"train"``: 3,696 films, ``"test"``: 1,114; the split
    mixes patients, see the module docstring), in the csv's row order.

    ``root`` defaults to :func:`chestxray_dir` (``$DIFFCF_DATA/chestxray``). The first call per size
    decodes the PNGs (seconds) and caches the result. ``verify=True`` first checks every listed
    file's size and sha256 against the csv (:func:`verify_files`).
    """
    index = _check_split(split)
    size = _check_size(size)
    if verify:
        verify_files(root)
    record = _load_all(size, root)
    keep = record["splits"] == index
    return record["images"][keep].float().div_(255.0), record["labels"][keep].long()


def chestxray_names(split: str = "train", root: str | Path | None = None) -> list[str]:
    """The image paths (``cardiomegaly_128/test/false/1.png`` …) of :func:`load_chestxray`'s rows
    for ``split``, in the same order (from the csv alone, nothing decoded)."""
    _check_split(split)
    return [row.path for row in read_labels(find_sources(root).labels) if row.split == split]
