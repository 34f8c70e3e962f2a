"""The label csv of the chest X-rays (:mod:`diffcf.data.chestxray` describes it): :func:`read_labels`,
its :class:`Row`; and :data:`HOW_TO_GET`, which ends every chest X-ray :class:`~diffcf.data.DataError`."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from diffcf.data import DataError
from diffcf.data.images import data_error

IMAGE_DIR = "cardiomegaly_128"
COLUMNS = ("path_in_tar", "split", "cardiomegaly", "bytes", "sha256")  # the ones read; others ignored
SPLITS = ("train", "test")
FOLDER_LABELS = {"false": 0, "true": 1}  # label folder -> cardiomegaly
HOW_TO_GET = (
    "`make data` links the project's mirror (../shared/data/chestxray) into the data root (or run "
    "`python -m diffcf.data.fetch chestxray --mirror DIR`); the images are NIH ChestX-ray14 films as "
    "repackaged on Kaggle (see the mirror's PROVENANCE.md). Set DIFFCF_DATA to point at the data root"
)
IMAGE_PATH = re.compile(rf"{IMAGE_DIR}/(train|test)/(true|false)/([1-9]\d*)\.png")  # an image's path_in_tar
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _fail(path: Path | str, problem: str, expected: str) -> DataError:
    return data_error(path, problem, expected, HOW_TO_GET)


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
        match = IMAGE_PATH.fullmatch(name)
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
