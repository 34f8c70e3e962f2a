"""CelebA's attribute file, in either of the formats :mod:`diffcf.data.celeba` describes: the 40
attribute names, :func:`read_attributes` and :func:`attribute_index`; and :data:`HOW_TO_GET`, which
ends every CelebA :class:`~diffcf.data.DataError`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from diffcf.data import DataError
from diffcf.data.images import data_error

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
_ROW_VALUES = {"-1", "1"}


def _fail(path: Path | str, problem: str, expected: str) -> DataError:
    return data_error(path, problem, expected, HOW_TO_GET)


def attribute_index(name: str) -> int:
    """The column of attribute ``name`` (e.g. ``attribute_index(BLOND_HAIR) == 9``)."""
    if name not in ATTRIBUTES:
        close = difflib.get_close_matches(name, ATTRIBUTES, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; CelebA's are {', '.join(ATTRIBUTES)}"
        raise ValueError(f"unknown attribute {name!r}{hint}")
    return ATTRIBUTES.index(name)


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
