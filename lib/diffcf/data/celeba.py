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
  ``image_id,5_o_Clock_Shadow,…,Young``, same values); the ``.txt`` is used when both are present
  (:mod:`diffcf.data.celeba_attributes` reads them).

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
2. resize to ``size × size`` (64 by default, 32 for CPU defaults) with PIL's antialiased
   **bilinear** filter (:func:`diffcf.data.images.to_array`); ``size = 89`` skips the resize;
3. values ``k/255`` for the uint8 ``k``: float images in ``[0, 1]``, shape ``(N, 3, size, size)``.

The split is fixed by id: **train = 000001–008000, test = 008001–010000** (:data:`TRAIN_IDS`,
:data:`TEST_IDS`). All ten thousand belong to CelebA's standard train partition (ids 1–162,770),
so the test split is carved out of it. CelebA's identity file is not available here, so the same
person may appear in both splits.

Decoding 10,000 JPEGs takes tens of seconds, so the preprocessed uint8 images of every id, with
ids and attributes, are cached per size in ``celeba_<size>.pt`` (:mod:`diffcf.data.images`).

For the CelebA Glow, :func:`quantize` reduces images to ``2**bits`` levels (5 bits in the paper's
code) and :func:`dequantize` adds the uniform noise of maximum-likelihood training
(:mod:`diffcf.data.quantize`).

CelebA is released for non-commercial research purposes only; see the mirror's PROVENANCE.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from diffcf.data import check_split
from diffcf.data.celeba_attributes import ATTRIBUTES, HOW_TO_GET, read_attributes
from diffcf.data.celeba_attributes import BLOND_HAIR as BLOND_HAIR
from diffcf.data.celeba_attributes import attribute_index as attribute_index
from diffcf.data.images import (
    RESAMPLE,
    ImageFiles,
    Location,
    ellipse,
    increasing_ids,
    numbered,
    stamp,
    to_array,
)
from diffcf.data.images import cache_dir as cache_dir
from diffcf.data.quantize import dequantize as dequantize
from diffcf.data.quantize import quantize as quantize
from diffcf.utils import check_int, data_root, file_digest

TAR_NAME = "img_align_celeba_HALFRES_89x109_000001-010000.tar"
IMAGE_DIR = "img_align_celeba"
TXT_NAME = "list_attr_celeba.txt"
CSV_NAME = "list_attr_celeba_000001-010000.csv"
WIDTH, HEIGHT = 89, 109  # the half-resolution copy (the originals are 178x218)
CROP, CROP_TOP = 89, 10  # square crop, rows CROP_TOP .. CROP_TOP + CROP - 1, full width
TRAIN_IDS = range(1, 8001)
TEST_IDS = range(8001, 10001)
SPLITS = {"train": TRAIN_IDS, "test": TEST_IDS}
ID_RANGE = range(TRAIN_IDS.start, TEST_IDS.stop)
_FILES = ImageFiles(
    "CelebA", HOW_TO_GET, IMAGE_DIR, "NNNNNN.jpg", "JPEG", (WIDTH, HEIGHT), "a readable JPEG image",
    expected_size=f"the half-resolution copy, {WIDTH}x{HEIGHT}: this loader's crop is made for it (the "
                  f"original CelebA images are 178x218)")
_fail = _FILES.fail
_image_id = numbered(rf"{IMAGE_DIR}/(\d{{6}})\.jpg", ID_RANGE)


def celeba_dir() -> Path:
    """``$DIFFCF_DATA/celeba``."""
    return data_root() / "celeba"


# ---- images --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sources:
    """What a load reads: the image source (``"folder"`` or ``"tar"``) and the attribute file."""

    kind: str
    images: Path
    attributes: Path

    def image_ids(self) -> dict[int, Location]:
        """Image number → its file or tar member (:mod:`diffcf.data.images`), for ids in :data:`ID_RANGE`."""
        if self.kind == "folder":
            found = _FILES.list_folder(self.images.parent, _image_id)
            if not found:
                raise _fail(self.images, "the folder holds no image NNNNNN.jpg of ids 000001–010000",
                            f"the unpacked {TAR_NAME}")
            return found
        found = _FILES.list_tar(self.images, _image_id)
        if not found:
            raise _fail(self.images, f"the archive holds no {IMAGE_DIR}/NNNNNN.jpg of ids 000001–010000",
                        f"a tar of {IMAGE_DIR}/000001.jpg … {IMAGE_DIR}/010000.jpg")
        return found

    def fingerprint(self, image_ids: dict[int, Location]) -> list:
        """Path, size and mtime of the tar or of every image file, and the attribute file's sha256."""
        images = stamp(self.images, image_ids if self.kind == "folder" else None)
        return [self.kind, images, str(self.attributes), file_digest(self.attributes, "sha256")]


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
    return to_array(image.convert("RGB").crop((0, CROP_TOP, CROP, CROP_TOP + CROP)), (size, size))


def _decode(image_ids: dict[int, Location], ids: list[int], size: int) -> np.ndarray:
    """The preprocessed uint8 images ``(len(ids), 3, size, size)``, decoded in ``ids`` order."""
    return _FILES.decode_all([image_ids[i] for i in ids], (3, size, size), lambda im: preprocess(im, size))


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


def _index(sources: Sources, image_ids: dict[int, Location] | None = None
           ) -> tuple[dict[int, Location], list[int], np.ndarray, list[str]]:
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


def _valid(record: dict, size: int) -> bool:
    """Whether a cached record's contents hold together."""
    ids, images, attributes = record["ids"], record["images"], record["attributes"]
    n = len(ids)
    return (increasing_ids(ids)
            and images.dtype == torch.uint8 and images.shape == (n, 3, size, size)
            and attributes.dtype == torch.uint8 and attributes.shape == (n, len(ATTRIBUTES))
            and int(attributes.max()) <= 1
            and list(record["names"]) == list(ATTRIBUTES))


def _load_all(size: int, root: str | Path | None = None) -> dict:
    """Every id's preprocessed uint8 images, 0/1 attributes and ids, from the cache or decoded."""
    sources = find_sources(root)
    # the tar's fingerprint is its stat: listing its members waits for a rebuild
    image_ids = sources.image_ids() if sources.kind == "folder" else {}
    recipe = {"size": size, "crop": [CROP, CROP_TOP], "resample": RESAMPLE,
              "ids": [ID_RANGE.start, ID_RANGE.stop], "sources": sources.fingerprint(image_ids)}

    def build() -> dict:
        files, ids, attributes, notes = _index(sources, image_ids)
        return {"size": size, "notes": notes, "names": list(ATTRIBUTES),
                "ids": torch.tensor(ids, dtype=torch.int64),
                "images": torch.from_numpy(_decode(files, ids, size)),
                "attributes": torch.from_numpy((attributes > 0).astype(np.uint8))}

    return _FILES.cached(f"celeba_{size}.pt", recipe, lambda record: _valid(record, size), build)


def load_celeba(split: str = "train", size: int = 64, root: str | Path | None = None
                ) -> tuple[Tensor, Tensor]:
    """CelebA images ``(N, 3, size, size)`` float32 in ``[0, 1]`` and attributes ``(N, 40)`` long
    0/1 (1 where the file says 1), columns in :data:`ATTRIBUTES` order, for the ids of ``split``
    (``"train"``: 000001–008000, ``"test"``: 008001–010000) that have an image and a row.

    ``root`` defaults to :func:`celeba_dir` (``$DIFFCF_DATA/celeba``). The first call per size
    decodes the JPEGs (tens of seconds) and caches the result; see the module docstring.
    """
    ids_range = SPLITS[check_split(split, SPLITS)]
    size = check_int(size, "size", 1, CROP, f"the side of the square crop of the {WIDTH}x{HEIGHT} images; "
                                            "64 as in the paper, 32 on CPU")
    record = _load_all(size, root)
    keep = (record["ids"] >= ids_range.start) & (record["ids"] < ids_range.stop)
    x = record["images"][keep].float().div_(255.0)
    y = record["attributes"][keep].long()
    return x, y


FACE_CENTRE, FACE_SEMI_AXES = (0.66, 0.5), (0.25, 0.19)  # (row, column), in units of the image side


def face_region(size: int) -> Tensor:
    """The inner face of a preprocessed ``size × size`` image as a boolean ``(size, size)`` mask: the
    ellipse centred at row ``0.66·size``, column ``0.5·size`` with semi-axes ``0.25·size`` (rows) and
    ``0.19·size`` (columns), measured on pixel centres. On the mean face at 32×32 it runs from the
    eyebrows (row 13) to the chin (row 28) and from cheek to cheek (columns 10–21): eyes, nose,
    mouth and skin, no hair. Notebook 04 measures how much of a change lies outside it, where
    Blond_Hair is decided."""
    return ellipse(check_int(size, "size", 4), FACE_CENTRE, FACE_SEMI_AXES)


def celeba_ids(split: str = "train", root: str | Path | None = None) -> Tensor:
    """The image numbers (``000123.jpg`` → 123) of :func:`load_celeba`'s rows for ``split``, in the
    same order (no decoding: the image list and the attribute file decide them)."""
    ids_range = SPLITS[check_split(split, SPLITS)]
    _, ids, _, _ = _index(find_sources(root))
    ids = torch.tensor(ids, dtype=torch.int64)
    return ids[(ids >= ids_range.start) & (ids < ids_range.stop)]
