"""CelebA (Liu et al., ICCV 2015) for notebook 04: face images and their 40 binary attributes.

**The images are the project's half-resolution subset**, not the original files: the first 10,000
aligned faces ``000001.jpg`` … ``010000.jpg``, downscaled by exactly 1/2 to **89 wide × 109 high**
(the originals are 178×218) and re-encoded as JPEG. ``$DIFFCF_DATA/celeba/`` (``make data``) holds

- the images, either unpacked as ``img_align_celeba/NNNNNN.jpg`` or still in
  ``img_align_celeba_HALFRES_89x109_000001-010000.tar`` (members ``img_align_celeba/NNNNNN.jpg``),
  read in place with :mod:`tarfile`; the folder is used when both are present;
- the attributes, either in CelebA's original ``list_attr_celeba.txt`` (a line with the row count,
  a line with the 40 attribute names, then one ``NNNNNN.jpg v1 … v40`` row per image, values -1/1
  separated by one or more spaces; CRLF accepted, and so is the file without its count line, as in
  the mirror's ``list_attr_celeba.zip``) or in ``list_attr_celeba_000001-010000.csv`` (header
  ``image_id,5_o_Clock_Shadow,…,Young``, same values); the ``.txt`` is used when both are present.

Only ids 000001–010000 are read (ids beyond them are ignored: the split below covers these ten
thousand), and of those only ids with both an image and an attribute row. Images without a row, or
rows without an image, are left out with a warning that counts them and names the first few.

Preprocessing (:func:`preprocess`), one definition for every size:

1. a square **89×89 crop, rows 10–98** (``CROP_TOP = 10``): the full width, and the vertical
   offset that centres the crop in the 109-pixel height, ``(109 − 89) / 2 = 10``, which also
   centres it on the head. In the mean of 500 of these images (every 20th id) the eyes lie on row
   55 and the mouth on row 76; the hair starts near row 13 and the chin ends near row 91, so the
   head is centred near row 53 and the crop (centre 54.5) holds all of it, the hair that
   Blond_Hair is about included, while dropping neck and shoulders. It is the region that
   torchvision's ``Resize(s)`` then ``CenterCrop(s)`` keeps of a full-resolution image (the usual
   CelebA pipeline of Glow code) and the half-size ``CenterCrop(89)`` the mirror's PROVENANCE.md
   suggests; crops tuned for 178×218 (``CenterCrop(148)``, or offset 40) would cut the wrong region;
2. resize to ``size × size`` (64 by default, 32 for CPU defaults) with PIL's
   **bilinear** filter, which PIL antialiases when it shrinks (the filter support widens with the
   scale factor, like torchvision's ``Resize`` on PIL images); ``size = 89`` skips the resize;
3. values ``k/255`` for the uint8 ``k``: float images in ``[0, 1]``, shape ``(N, 3, size, size)``.

The split is fixed by id: **train = 000001–008000, test = 008001–010000** (:data:`TRAIN_IDS`,
:data:`TEST_IDS`). All ten thousand belong to CelebA's standard train partition (ids 1–162,770),
so the test split is carved out of it. CelebA's identity file is not available here, so the same
person may appear in both splits.

Decoding 10,000 JPEGs takes tens of seconds, so the preprocessed uint8 images of every id, with
ids and attributes, are cached per size in ``build/cache/celeba_<size>.pt`` under the project
root (``$DIFFCF_CACHE`` overrides the folder). The cache records a digest of its sources (the image
tar's or every image file's path, size and mtime; the attribute file's sha256; the preprocessing
constants) and is rebuilt whenever that changes or the file cannot be read back, never trusted.

For the CelebA Glow, :func:`quantize` reduces images to ``2**bits`` levels (5 bits in the paper's
code) and :func:`dequantize` adds the uniform noise of maximum-likelihood training.

CelebA is released for non-commercial research purposes only; see the mirror's PROVENANCE.md.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import re
import tarfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from diffcf.data import DataError
from diffcf.utils import atomic_write, close_bar, data_root, file_digest, progress_bar, project_root

TAR_NAME = "img_align_celeba_HALFRES_89x109_000001-010000.tar"
IMAGE_DIR = "img_align_celeba"
TXT_NAME = "list_attr_celeba.txt"
CSV_NAME = "list_attr_celeba_000001-010000.csv"
WIDTH, HEIGHT = 89, 109  # the half-resolution copy (the originals are 178x218)
CROP, CROP_TOP = 89, 10  # square crop, rows CROP_TOP .. CROP_TOP + CROP - 1, full width
RESAMPLE = "bilinear"
TRAIN_IDS = range(1, 8001)
TEST_IDS = range(8001, 10001)
SPLITS = {"train": TRAIN_IDS, "test": TEST_IDS}
ID_RANGE = range(TRAIN_IDS.start, TEST_IDS.stop)
CACHE_VERSION = 1
ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)  # in the order of the attribute file's columns
BLOND_HAIR = "Blond_Hair"
HOW_TO_GET = (
    "`make data` links the project's mirror (../shared/data/celeba) into the data root (or run "
    "`python -m diffcf.data.fetch celeba --mirror DIR`); there is no public download: CelebA comes "
    "from its project page under non-commercial terms. Set DIFFCF_DATA to point at the data root"
)
_IMAGE_NAME = re.compile(r"(\d{6})\.jpg")
_MEMBER_NAME = re.compile(rf"(?:\./)?{IMAGE_DIR}/(\d{{6}})\.jpg")
_ROW_VALUES = {"-1", "1"}


def celeba_dir() -> Path:
    """``$DIFFCF_DATA/celeba``."""
    return data_root() / "celeba"


def cache_dir() -> Path:
    """Where the preprocessed tensors are cached: ``$DIFFCF_CACHE``, else ``<root>/build/cache``."""
    env = os.environ.get("DIFFCF_CACHE")
    return Path(env).resolve() if env else project_root() / "build" / "cache"


def _fail(path: Path | str, problem: str, expected: str) -> DataError:
    return DataError(f"{path}: {problem}; expected {expected}. {HOW_TO_GET}.")


def attribute_index(name: str) -> int:
    """The column of attribute ``name`` (e.g. ``attribute_index(BLOND_HAIR) == 9``)."""
    if name not in ATTRIBUTES:
        close = difflib.get_close_matches(name, ATTRIBUTES, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; CelebA's are {', '.join(ATTRIBUTES)}"
        raise ValueError(f"unknown attribute {name!r}{hint}")
    return ATTRIBUTES.index(name)


# ---- attributes ----------------------------------------------------------------------------------

def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of the non-blank lines; CRLF and LF alike."""
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError as err:
        raise _fail(path, f"not plain text (byte {err.start} is 0x{err.object[err.start]:02x})",
                    "CelebA's attribute file") from err
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _check_names(path: Path, number: int, names: list[str]) -> None:
    if tuple(names) == ATTRIBUTES:
        return
    if len(names) != len(ATTRIBUTES):
        problem = f"line {number} holds {len(names)} attribute names"
    else:
        i = next(i for i, (a, b) in enumerate(zip(names, ATTRIBUTES, strict=True)) if a != b)
        problem = f"line {number}: attribute {i + 1} is {names[i]!r} where CelebA's is {ATTRIBUTES[i]!r}"
    raise _fail(path, problem, f"CelebA's 40 attribute names in order, {ATTRIBUTES[0]} … {ATTRIBUTES[-1]}")


def read_attributes(path: str | Path, keep: range | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read an attribute file (the original ``list_attr_celeba.txt``, with or without its count
    line, or the csv subset; see the module docstring) and return ``(ids, values)``: the image
    numbers (``000123.jpg`` → 123) as int64 and the ``(rows, 40)`` int8 values, -1 or 1, of the
    rows whose id is in ``keep`` (default: every row; every row is checked either way).

    Raises :class:`DataError` naming the file and the line for a missing file, wrong attribute
    names, a row with the wrong number of values, a value other than -1/1, a bad image name, a
    repeated image, or a count line that disagrees with the rows.
    """
    path = Path(path)
    csv = path.suffix.lower() == ".csv"
    form = ("a csv with header image_id,5_o_Clock_Shadow,…,Young" if csv else
            "CelebA's list_attr_celeba.txt (count line, names line, 'NNNNNN.jpg v1 … v40' rows)")
    if not path.is_file():
        raise _fail(path, "file not found", form)
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise _fail(path, "the file is empty", form)
    count = None
    if csv:
        number, header = first
        names = [name.strip() for name in header.split(",")]
        if names[0] != "image_id":
            raise _fail(path, f"line {number}: the header starts with {names[0]!r}", form)
        _check_names(path, number, names[1:])
    else:
        if first[1].strip().isdigit():
            count = int(first[1])
            first = next(lines, None)
            if first is None:
                raise _fail(path, "no attribute names after the count line", form)
        _check_names(path, first[0], first[1].split())
    ids, rows, seen = [], [], {}
    for number, line in lines:
        fields = line.replace(" ", "").split(",") if csv else line.split()
        match = _IMAGE_NAME.fullmatch(fields[0])
        if not match:
            raise _fail(path, f"line {number} starts with {fields[0][:30]!r}", "an image name NNNNNN.jpg")
        values = fields[1:]
        if len(values) != len(ATTRIBUTES):
            raise _fail(path, f"line {number} ({fields[0]}) holds {len(values)} values",
                        f"{len(ATTRIBUTES)} values, one per attribute")
        if not _ROW_VALUES.issuperset(values):
            bad = next(v for v in values if v not in _ROW_VALUES)
            raise _fail(path, f"line {number} ({fields[0]}) holds the value {bad[:20]!r}", "values -1 or 1")
        image_id = int(match.group(1))
        if image_id in seen:
            raise _fail(path, f"line {number}: {fields[0]} already has a row (line {seen[image_id]})",
                        "one row per image")
        seen[image_id] = number
        if keep is None or image_id in keep:
            ids.append(image_id)
            rows.append(values)
    if count is not None and count != len(seen):
        raise _fail(path, f"the first line announces {count} rows but the file holds {len(seen)}",
                    "an untruncated file")
    values = np.array(rows, dtype=np.int8).reshape(len(ids), len(ATTRIBUTES))
    return np.array(ids, dtype=np.int64), values


# ---- images --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sources:
    """What a load reads: the image source (``"folder"`` or ``"tar"``) and the attribute file."""

    kind: str
    images: Path
    attributes: Path

    def image_ids(self) -> dict[int, str]:
        """Image number → file path (folder) or member name (tar), for ids in :data:`ID_RANGE`."""
        found = {}
        if self.kind == "folder":
            for entry in os.scandir(self.images):
                match = _IMAGE_NAME.fullmatch(entry.name)
                if match and int(match.group(1)) in ID_RANGE:
                    found[int(match.group(1))] = entry.path
            if not found:
                raise _fail(self.images, "the folder holds no image NNNNNN.jpg of ids 000001–010000",
                            f"the unpacked {TAR_NAME}")
            return found
        with _open_tar(self.images) as tar:
            for member in tar:
                match = _MEMBER_NAME.fullmatch(member.name)
                if match and member.isfile() and int(match.group(1)) in ID_RANGE:
                    found[int(match.group(1))] = member.name
        if not found:
            raise _fail(self.images, f"the archive holds no {IMAGE_DIR}/NNNNNN.jpg of ids 000001–010000",
                        f"a tar of {IMAGE_DIR}/000001.jpg … {IMAGE_DIR}/010000.jpg")
        return found

    def fingerprint(self, image_ids: dict[int, str]) -> list:
        """Path, size and mtime of the tar or of every image file, and the attribute file's sha256."""
        if self.kind == "tar":
            stat = self.images.stat()
            images = [str(self.images), stat.st_size, stat.st_mtime_ns]
        else:
            images = [str(self.images)]
            for image_id in sorted(image_ids):
                stat = os.stat(image_ids[image_id])
                images.append([image_id, stat.st_size, stat.st_mtime_ns])
        return [self.kind, images, str(self.attributes), file_digest(self.attributes, "sha256")]


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as err:
        raise _fail(path, f"cannot be read as an uncompressed tar archive ({err})",
                    f"a tar of {IMAGE_DIR}/NNNNNN.jpg") from err


def find_sources(root: str | Path | None = None) -> Sources:
    """The image source and attribute file in ``root`` (default :func:`celeba_dir`): the
    ``img_align_celeba/`` folder, else the tar; ``list_attr_celeba.txt``, else the csv."""
    folder = Path(root) if root is not None else celeba_dir()
    if (folder / IMAGE_DIR).is_dir():
        kind, images = "folder", folder / IMAGE_DIR
    elif (folder / TAR_NAME).is_file():
        kind, images = "tar", folder / TAR_NAME
    else:
        raise _fail(folder, f"no images: neither {IMAGE_DIR}/ nor {TAR_NAME} is there",
                    "CelebA's aligned images at half resolution (89x109)")
    for name in (TXT_NAME, CSV_NAME):
        if (folder / name).is_file():
            return Sources(kind, images, folder / name)
    raise _fail(folder, f"no attribute file: neither {TXT_NAME} nor {CSV_NAME} is there",
                "CelebA's attribute file")


def preprocess(image: Image.Image, size: int) -> np.ndarray:
    """One 89×109 image → uint8 ``(3, size, size)``: the 89×89 crop of rows 10–98, then PIL's
    antialiased bilinear resize to ``size`` (see the module docstring)."""
    image = image.convert("RGB").crop((0, CROP_TOP, CROP, CROP_TOP + CROP))
    if size != CROP:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def _decode_one(data: bytes, where: str, size: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format != "JPEG":
                raise _fail(where, f"is a {image.format} image, not a JPEG", "a JPEG image")
            if image.size != (WIDTH, HEIGHT):
                raise _fail(where, f"is {image.size[0]}x{image.size[1]} (width x height)",
                            f"the half-resolution copy, {WIDTH}x{HEIGHT}: this loader's crop is made "
                            f"for it (the original CelebA images are 178x218)")
            return preprocess(image, size)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise _fail(where, f"cannot be decoded ({err})", "a readable JPEG image") from err


def _decode(sources: Sources, image_ids: dict[int, str], ids: list[int], size: int) -> np.ndarray:
    """The preprocessed uint8 images ``(len(ids), 3, size, size)``, decoded in ``ids`` order."""
    out = np.empty((len(ids), 3, size, size), dtype=np.uint8)
    bar = progress_bar(len(ids), f"decoding CelebA at {size}x{size}", show=len(ids) >= 1000)
    tar = _open_tar(sources.images) if sources.kind == "tar" else None
    try:
        for i, image_id in enumerate(ids):
            name = image_ids[image_id]
            if tar is None:
                where, data = name, Path(name).read_bytes()
            else:
                where = f"{sources.images}:{name}"
                member = tar.extractfile(name)
                if member is None:
                    raise _fail(where, "is not a regular file", "a JPEG image")
                data = member.read()
            out[i] = _decode_one(data, where, size)
            if bar is not None and (i + 1) % 250 == 0:
                bar.update(250)
    finally:
        if tar is not None:
            tar.close()
        if bar is not None:
            bar.update(len(ids) - bar.n)
        close_bar(bar)
    return out


# ---- index, cache and the loader -----------------------------------------------------------------

def _name(image_id: int) -> str:
    return f"{image_id:06d}.jpg"


def _mismatch_notes(sources: Sources, images: set[int], rows: set[int]) -> list[str]:
    notes = []
    for lacking, have, what, where in (
        (images - rows, "image", "attribute row in", sources.attributes),
        (rows - images, "attribute row", "image in", sources.images),
    ):
        if lacking:
            first = ", ".join(_name(i) for i in sorted(lacking)[:5])
            notes.append(f"CelebA: {len(lacking)} {have}(s) of ids 000001–010000 have no {what} "
                         f"{where} and are left out (first: {first})")
    return notes


def _index(sources: Sources, image_ids: dict[int, str] | None = None
           ) -> tuple[dict[int, str], list[int], np.ndarray, list[str]]:
    """Image locations, the ids with both an image and a row (sorted), their -1/1 attributes and
    the notes on ids that have only one of the two."""
    image_ids = image_ids or sources.image_ids()
    row_ids, values = read_attributes(sources.attributes, keep=ID_RANGE)
    rows = dict(zip(row_ids.tolist(), values, strict=True))
    notes = _mismatch_notes(sources, set(image_ids), set(rows))
    ids = sorted(set(image_ids) & set(rows))
    if not ids:
        raise _fail(sources.images, f"none of its images has an attribute row in {sources.attributes}",
                    "images and attributes of the same ids")
    return image_ids, ids, np.stack([rows[i] for i in ids]), notes


def _cache_path(size: int) -> Path:
    return cache_dir() / f"celeba_{size}.pt"


def _cache_key(sources: Sources, image_ids: dict[int, str], size: int) -> str:
    recipe = {"version": CACHE_VERSION, "size": size, "crop": [CROP, CROP_TOP], "resample": RESAMPLE,
              "ids": [ID_RANGE.start, ID_RANGE.stop], "sources": sources.fingerprint(image_ids)}
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()


def _read_cache(path: Path, key: str, size: int) -> dict | None:
    """The cached record if it exists, loads, carries ``key`` and has consistent contents."""
    if not path.is_file():
        return None
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
        ids, images, attributes = record["ids"], record["images"], record["attributes"]
        n = len(ids)
        valid = (record["version"] == CACHE_VERSION and record["key"] == key
                 and ids.dtype == torch.int64 and ids.shape == (n,) and n > 0
                 and bool((ids[1:] > ids[:-1]).all())
                 and images.dtype == torch.uint8 and images.shape == (n, 3, size, size)
                 and attributes.dtype == torch.uint8 and attributes.shape == (n, len(ATTRIBUTES))
                 and int(attributes.max()) <= 1
                 and list(record["names"]) == list(ATTRIBUTES)
                 and all(isinstance(note, str) for note in record["notes"]))
    except Exception:  # an unreadable or foreign file is simply rebuilt
        return None
    return record if valid else None


def _load_all(size: int, root: str | Path | None = None) -> dict:
    """Every id's preprocessed uint8 images, 0/1 attributes and ids, from the cache or decoded."""
    sources = find_sources(root)
    if sources.kind == "folder":
        image_ids = sources.image_ids()
    else:  # the tar's fingerprint is its stat: listing its members waits for a rebuild
        image_ids = {}
    key = _cache_key(sources, image_ids, size)
    path = _cache_path(size)
    record = _read_cache(path, key, size)
    if record is None:
        image_ids, ids, attributes, notes = _index(sources, image_ids)
        images = _decode(sources, image_ids, ids, size)
        record = {"version": CACHE_VERSION, "key": key, "size": size, "notes": notes,
                  "names": list(ATTRIBUTES), "ids": torch.tensor(ids, dtype=torch.int64),
                  "images": torch.from_numpy(images),
                  "attributes": torch.from_numpy((attributes > 0).astype(np.uint8))}
        try:
            atomic_write(path, lambda p: torch.save(record, p))
        except OSError as err:
            warnings.warn(f"CelebA: cannot write the cache {path} ({err}); the images will be decoded "
                          f"again next time", stacklevel=3)
    for note in record["notes"]:
        warnings.warn(note, stacklevel=3)
    return record


def _check_split(split: str) -> range:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return SPLITS[split]


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, Integral) or not 1 <= size <= CROP:
        raise ValueError(f"size must be an integer from 1 to {CROP} (the side of the square crop of "
                         f"the {WIDTH}x{HEIGHT} images; 64 as in the paper, 32 on CPU), got {size!r}")
    return int(size)


def load_celeba(split: str = "train", size: int = 64, root: str | Path | None = None
                ) -> tuple[Tensor, Tensor]:
    """CelebA images ``(N, 3, size, size)`` float32 in ``[0, 1]`` and attributes ``(N, 40)`` long
    0/1 (1 where the file says 1), columns in :data:`ATTRIBUTES` order, for the ids of ``split``
    (``"train"``: 000001–008000, ``"test"``: 008001–010000) that have an image and a row.

    ``root`` defaults to :func:`celeba_dir` (``$DIFFCF_DATA/celeba``). The first call per size
    decodes the JPEGs (tens of seconds) and caches the result; see the module docstring.
    """
    ids_range = _check_split(split)
    record = _load_all(_check_size(size), root)
    keep = (record["ids"] >= ids_range.start) & (record["ids"] < ids_range.stop)
    x = record["images"][keep].float().div_(255.0)
    y = record["attributes"][keep].long()
    return x, y


def celeba_ids(split: str = "train", root: str | Path | None = None) -> Tensor:
    """The image numbers (``000123.jpg`` → 123) of :func:`load_celeba`'s rows for ``split``, in the
    same order (no decoding: the image list and the attribute file decide them)."""
    ids_range = _check_split(split)
    _, ids, _, _ = _index(find_sources(root))
    ids = torch.tensor(ids, dtype=torch.int64)
    return ids[(ids >= ids_range.start) & (ids < ids_range.stop)]


# ---- quantisation --------------------------------------------------------------------------------

def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, Integral) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer from 1 to 8, got {bits!r}")
    return int(bits)


def quantize(x: Tensor, bits: int = 5) -> Tensor:
    """Reduce 8-bit images ``x = k/255`` in ``[0, 1]`` to ``2**bits`` levels, as the paper's CelebA
    Glow is trained (5 bits): ``x_q = min(floor(2**bits · x), 2**bits − 1) / 2**bits``, i.e.
    ``j / 2**bits`` for ``j ∈ {0, …, 2**bits − 1}``, in ``[0, 1)``. On 8-bit images ``x = k/255``
    this equals the usual ``floor(k / 2**(8 − bits))`` (``255`` never divides ``k · 2**bits``
    for ``0 < k < 255``, so float error cannot cross a level), and it is idempotent: an image
    already on the grid keeps its levels.

    Bits/dim convention: with ``x̃ = dequantize(x_q)`` (uniform noise filling each level's bin) and
    a flow density ``q`` on ``[0, 1)^D``, the discrete model of ``j`` has ``log p(j) ≥ log q(x̃) −
    D·bits·ln 2`` (the bins have width ``2**−bits``), reported as ``−(log q(x̃) − D·bits·ln 2)/(D ln
    2)``: the convention of :meth:`diffcf.models.multiscale.MultiscaleFlow.bits_per_dim` with 256
    replaced by ``2**bits``, and of Glow's ``−log(n_bins)·D`` term (which also shifts by −0.5, a
    translation that leaves bits/dim unchanged).
    """
    bits = _check_bits(bits)
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError(f"quantize expects images in [0, 1], got values in "
                         f"[{float(x.min()):.4g}, {float(x.max()):.4g}]")
    return torch.floor(x * 2**bits).clamp(max=2**bits - 1) / 2**bits


def dequantize(x_q: Tensor, bits: int = 5, generator: torch.Generator | None = None) -> Tensor:
    """``x̃ = x_q + u / 2**bits``, ``u ~ U[0, 1)`` per value: the quantised images
    (:func:`quantize`) spread uniformly over their bins, in ``[0, 1)``, for maximum likelihood."""
    bits = _check_bits(bits)
    levels = x_q * 2**bits
    if x_q.numel() and not torch.allclose(levels, torch.round(levels), atol=1e-4):
        raise ValueError(f"dequantize expects {bits}-bit images j / 2**{bits} (see quantize)")
    u = torch.rand(x_q.shape, generator=generator, dtype=x_q.dtype).to(x_q.device)
    return x_q + u / 2**bits
