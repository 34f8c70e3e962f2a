"""Chest X-rays with a Cardiomegaly label for notebook 05 (the paper's §IV-B medical setting).

**NIH ChestX-ray14 images, not CheXpert** (whose licence forbids redistribution): the Kaggle set
"Cardiomegaly Disease Prediction using CNN", frontal NIH films downscaled to **128×128, 8-bit grey**,
the resolution the paper uses. The mirror's PROVENANCE.md says where it comes from and how its
labels were checked. ``$DIFFCF_DATA/chestxray/`` (``make data``) holds

- the images, either still in ``nih_cxr14_cardiomegaly_128px_kaggle_subset.tar`` (read in place with
  :mod:`tarfile`) or unpacked as ``cardiomegaly_128/{train,test}/{true,false}/N.png``; the folder is
  used when both are present;
- ``labels_cardiomegaly_128.csv``, one row per image, columns ``path_in_tar, split, cardiomegaly,
  bytes, sha256, source_path`` (label 1 = Cardiomegaly, 0 = none), read by
  :mod:`diffcf.data.chestxray_labels`.

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
antialiased **bilinear** resize (:func:`diffcf.data.images.to_array`; 128→64 averages each output
pixel over a 4×4 input patch with weights (1, 3, 3, 1)/8 per axis), as for CelebA; then ``k/255``
for the uint8 ``k``, shape ``(N, 1, size, size)``.

Decoding the 4,810 PNGs takes about 5 s on one core (from the tar, either size), reading the cache
0.7 s at 128 (79 MB) and 0.2 s at 64 (20 MB), so the uint8 images of both splits, with labels,
splits and names, are cached per size in ``chestxray_<size>.pt`` (:mod:`diffcf.data.images`).

Terms: NIH states that use of ChestX-ray14 is unrestricted and asks for a link to its download site,
a citation of Wang et al., CVPR 2017, and an acknowledgement of the NIH Clinical Center; the Kaggle
repackaging's own licence is unknown (PROVENANCE.md).
"""

from __future__ import annotations

import hashlib
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from diffcf.data import check_split
from diffcf.data.chestxray_labels import COLUMNS as COLUMNS
from diffcf.data.chestxray_labels import FOLDER_LABELS as FOLDER_LABELS
from diffcf.data.chestxray_labels import HOW_TO_GET, IMAGE_DIR, IMAGE_PATH, SPLITS, Row, read_labels
from diffcf.data.images import RESAMPLE, ImageFiles, Location, ellipse, stamp, to_array
from diffcf.data.images import cache_dir as cache_dir
from diffcf.utils import check_int, data_root, file_digest

TAR_NAME = "nih_cxr14_cardiomegaly_128px_kaggle_subset.tar"
CSV_NAME = "labels_cardiomegaly_128.csv"
SIDE = 128  # the images are SIDE x SIDE, 8-bit grey
_FILES = ImageFiles("chest X-rays", HOW_TO_GET, IMAGE_DIR, "{train,test}/{true,false}/N.png", "PNG",
                    (SIDE, SIDE), f"a {SIDE}x{SIDE} 8-bit grey PNG", mode=("L", "8-bit grey"))
_fail = _FILES.fail


def chestxray_dir() -> Path:
    """``$DIFFCF_DATA/chestxray``."""
    return data_root() / "chestxray"


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

    def image_files(self) -> dict[str, Location]:
        """Every image path ``cardiomegaly_128/…/N.png`` the folder or the tar holds → its file or
        tar member (:mod:`diffcf.data.images`)."""
        if self.kind == "folder":
            return _FILES.list_folder(self.images, _image_path)
        return _FILES.list_tar(self.images, _image_path)

    def fingerprint(self, files: dict[str, Location]) -> list:
        """Path, size and mtime of the tar or of every image file, and the csv's sha256."""
        images = stamp(self.images, files if self.kind == "folder" else None)
        return [self.kind, images, str(self.labels), file_digest(self.labels, "sha256")]


def _image_path(name: str) -> str | None:
    return name if IMAGE_PATH.fullmatch(name) else None


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
    return to_array(image, (size, size))


def _listed(sources: Sources, rows: list[Row], files: dict[str, Location]) -> list[Location]:
    """The files of ``rows``, in order; :class:`DataError` names the first one missing."""
    lacking = [row for row in rows if row.path not in files]
    if lacking:
        first = lacking[0]
        raise _fail(sources.where(first.path),
                    f"not found, though {sources.labels} lists it on line {first.line} "
                    f"({len(lacking)} listed image(s) missing in all)", "every image the csv lists")
    return [files[row.path] for row in rows]


def _unlisted_notes(sources: Sources, rows: list[Row], names: list[str]) -> list[str]:
    listed = {row.path for row in rows}
    extra = [name for name in sorted(names) if name not in listed]
    if not extra:
        return []
    return [f"chest X-rays: {len(extra)} image(s) in {sources.images} have no row in {sources.labels} "
            f"and are left out (first: {', '.join(extra[:3])})"]


def _decode(files: list[Location], size: int) -> np.ndarray:
    """The preprocessed uint8 images ``(len(files), 1, size, size)``, in order."""
    return _FILES.decode_all(files, (1, size, size), lambda image: preprocess(image, size))


def verify_files(root: str | Path | None = None) -> int:
    """Check every image the csv lists against the csv's ``bytes`` and ``sha256``; return how many
    were checked. :class:`DataError` names the first file that is missing or differs."""
    sources = find_sources(root)
    rows = read_labels(sources.labels)
    with closing(_FILES.read(_listed(sources, rows, sources.image_files()))) as files:
        for row, (where, content) in zip(rows, files, strict=True):
            digest = hashlib.sha256(content).hexdigest()
            if len(content) != row.size or digest != row.sha256:
                raise _fail(where, f"{len(content)} bytes with sha256 {digest}, where {sources.labels} line "
                                   f"{row.line} says {row.size} bytes, sha256 {row.sha256}",
                            "the file the csv lists (a changed or corrupted copy?)")
    return len(rows)


# ---- cache and the loader ------------------------------------------------------------------------

def _valid(record: dict, size: int) -> bool:
    """Whether a cached record's contents hold together."""
    images, labels, splits, names = record["images"], record["labels"], record["splits"], record["names"]
    n = len(names)
    return (n > 0 and images.dtype == torch.uint8 and images.shape == (n, 1, size, size)
            and labels.dtype == torch.uint8 and labels.shape == (n,) and int(labels.max()) <= 1
            and splits.dtype == torch.uint8 and splits.shape == (n,) and int(splits.max()) < len(SPLITS)
            and all(isinstance(name, str) for name in names))


def _load_all(size: int, root: str | Path | None = None) -> dict:
    """Both splits' uint8 images, labels, split indices and names, from the cache or decoded."""
    sources = find_sources(root)
    # the tar's fingerprint is its stat: listing its members waits for a rebuild
    files = sources.image_files() if sources.kind == "folder" else {}
    recipe = {"size": size, "side": SIDE, "resample": RESAMPLE, "sources": sources.fingerprint(files)}

    def build() -> dict:
        rows = read_labels(sources.labels)
        found = files or sources.image_files()
        images = _decode(_listed(sources, rows, found), size)
        return {"size": size, "notes": _unlisted_notes(sources, rows, list(found)),
                "names": [row.path for row in rows], "images": torch.from_numpy(images),
                "labels": torch.tensor([row.label for row in rows], dtype=torch.uint8),
                "splits": torch.tensor([SPLITS.index(row.split) for row in rows], dtype=torch.uint8)}

    return _FILES.cached(f"chestxray_{size}.pt", recipe, lambda record: _valid(record, size), build)


def load_chestxray(split: str = "train", size: int = 128, root: str | Path | None = None,
                   verify: bool = False) -> tuple[Tensor, Tensor]:
    """Chest X-rays ``(N, 1, size, size)`` float32 in ``[0, 1]`` and labels ``(N,)`` long, 1 =
    Cardiomegaly, of the given ``split`` (``"train"``: 3,696 films, ``"test"``: 1,114; the split
    mixes patients, see the module docstring), in the csv's row order.

    ``root`` defaults to :func:`chestxray_dir` (``$DIFFCF_DATA/chestxray``). The first call per size
    decodes the PNGs (seconds) and caches the result. ``verify=True`` first checks every listed
    file's size and sha256 against the csv (:func:`verify_files`).
    """
    index = SPLITS.index(check_split(split, SPLITS))
    size = check_int(size, "size", 1, SIDE, f"the side of the {SIDE}x{SIDE} images; 128 as in the paper, "
                                            "64 on CPU")
    if verify:
        verify_files(root)
    record = _load_all(size, root)
    keep = record["splits"] == index
    return record["images"][keep].float().div_(255.0), record["labels"][keep].long()


def chestxray_names(split: str = "train", root: str | Path | None = None) -> list[str]:
    """The image paths (``cardiomegaly_128/test/false/1.png`` …) of :func:`load_chestxray`'s rows
    for ``split``, in the same order (from the csv alone, nothing decoded)."""
    check_split(split, SPLITS)
    return [row.path for row in read_labels(find_sources(root).labels) if row.split == split]


CARDIAC_CENTRE, CARDIAC_SEMI_AXES = (0.62, 0.53), (0.20, 0.25)  # (row, column), in units of the side


def cardiac_region(size: int) -> Tensor:
    """The heart shadow and its borders on a preprocessed ``size × size`` film as a boolean
    ``(size, size)`` mask: the ellipse centred at row ``0.62·size``, column ``0.53·size`` (the heart
    lies to the patient's left, the image's right) with semi-axes ``0.20·size`` (rows) and
    ``0.25·size`` (columns), about 15% of the image. It covers where the mean Cardiomegaly training
    film is brightest against the mean healthy one, the two lobes on either side of the heart where
    an enlarged heart shadow reaches into the lung fields. Notebook 05 measures how much of a change
    lies inside it."""
    return ellipse(check_int(size, "size", 4), CARDIAC_CENTRE, CARDIAC_SEMI_AXES)
