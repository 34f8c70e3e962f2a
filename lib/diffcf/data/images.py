"""The image files of the real datasets (:mod:`~diffcf.data.celeba`, :mod:`~diffcf.data.chestxray`,
:mod:`~diffcf.data.mall`): where they are read from, how they are decoded and checked, and the cache
of the decoded images. Each dataset's own docstring gives its files, preprocessing, split and numbers.

**Reading.** A dataset's images are read from an unpacked folder or in place, with :mod:`tarfile`,
from the uncompressed tar(s) that hold them. Both are addressed alike: a file is a :data:`Location`,
``(file, "")`` in a folder or ``(tar, member name)`` in a tar, and a folder's files are matched by
their path relative to the data folder, which is the name the tar gives them
(``img_align_celeba/000001.jpg``; a member's leading ``./`` is dropped).

**Decoding.** :meth:`ImageFiles.decode` opens each file with PIL and checks its format, its size and,
where one is required, its mode before the dataset's preprocessing; a file that fails raises
:class:`~diffcf.data.DataError` naming it (``tar:member`` in a tar), what it is and what was expected.
:func:`to_array` is the one resize: PIL's **bilinear** filter, which PIL antialiases when it shrinks
(the filter support widens with the scale factor, like torchvision's ``Resize`` on PIL images).

**Cache.** The decoded uint8 images are cached in ``$DIFFCF_CACHE`` (default ``build/cache`` under
the project root, :func:`cache_dir`), one file per dataset and size. The file carries a digest
(:func:`cache_key`) of its recipe: the preprocessing constants and the sources, i.e. the tar's path,
size and mtime or every image file's (:func:`stamp`) and the sha256 of a label file cached with the
images. It is rebuilt whenever that digest changes or the file cannot be read back or its contents
do not hold together, never trusted; it is written atomically, and a cache that cannot be written
only warns.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from diffcf.data import DataError
from diffcf.utils import atomic_write, close_bar, progress_bar, project_root

CACHE_VERSION = 1
RESAMPLE = "bilinear"  # PIL's filter in every resize (to_array)
Location = tuple[Path, str]  # (file, "") in a folder, (tar, member name) in a tar
K = TypeVar("K")


def data_error(path: Path | str, problem: str, expected: str, how_to_get: str) -> DataError:
    """The error about a dataset file ``path``: its problem, what was expected, how to get the files."""
    return DataError(f"{path}: {problem}; expected {expected}. {how_to_get}.")


def cache_dir() -> Path:
    """Where the preprocessed tensors are cached: ``$DIFFCF_CACHE``, else ``<root>/build/cache``."""
    env = os.environ.get("DIFFCF_CACHE")
    return Path(env).resolve() if env else project_root() / "build" / "cache"


def cache_key(recipe: dict) -> str:
    """The sha256 of ``recipe`` as JSON, :data:`CACHE_VERSION` first: the key a cache must carry."""
    return hashlib.sha256(json.dumps({"version": CACHE_VERSION, **recipe}).encode()).hexdigest()


def stamp(source: Path, files: dict[K, Location] | None = None) -> list:
    """What a cache key records of the images: ``[tar, size, mtime]`` of a tar, or of a folder
    (``files``, its listing) ``[folder, [key, size, mtime], …]``, every file's, in key order."""
    if files is None:
        stat = source.stat()
        return [str(source), stat.st_size, stat.st_mtime_ns]
    stats = [(key, os.stat(files[key][0])) for key in sorted(files)]
    return [str(source), *([key, stat.st_size, stat.st_mtime_ns] for key, stat in stats)]


def increasing_ids(ids: torch.Tensor) -> bool:
    """Whether a cache's ``ids`` are a non-empty, strictly increasing int64 vector."""
    return (ids.dtype == torch.int64 and ids.ndim == 1 and len(ids) > 0
            and bool((ids[1:] > ids[:-1]).all()))


def numbered(pattern: str, numbers: range) -> Callable[[str], int | None]:
    """The key of files named by their number (for :meth:`ImageFiles.list_folder` and
    :meth:`ImageFiles.list_tar`): the number ``pattern``'s group 1 matches in a name, if in ``numbers``."""
    regex = re.compile(pattern)

    def key(name: str) -> int | None:
        match = regex.fullmatch(name)
        return int(match.group(1)) if match and int(match.group(1)) in numbers else None

    return key


def to_array(image: Image.Image, shape: tuple[int, int]) -> np.ndarray:
    """``image`` as uint8 ``(channels, height, width)``, resized to ``shape`` (height, width) with
    PIL's antialiased bilinear filter unless it has that size already."""
    if image.size != (shape[1], shape[0]):
        image = image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def ellipse(size: int, centre: tuple[float, float], semi_axes: tuple[float, float]) -> torch.Tensor:
    """A boolean ``(size, size)`` mask of the ellipse with ``centre`` (row, column) and
    ``semi_axes`` (rows, columns), both in units of the image side, measured on pixel centres: the
    regions where notebooks 04 and 05 measure how much of a change falls (their loaders'
    ``face_region``, ``cardiac_region``)."""
    axis = (torch.arange(size) + 0.5) / size
    rows = (axis[:, None] - centre[0]) / semi_axes[0]
    cols = (axis[None, :] - centre[1]) / semi_axes[1]
    return rows.square() + cols.square() <= 1.0


@dataclass(frozen=True)
class ImageFiles:
    """One dataset's image files: what they must be and how its errors and warnings speak of them.

    ``label`` names the dataset in warnings and progress bars, ``how_to_get`` ends every error,
    ``top`` is the folder that holds the images, in the data folder and in the tars, and ``layout``
    what it holds (``NNNNNN.jpg``), for errors. Every file must be a ``format`` image (PIL's name) of
    ``size`` (width, height) and, if ``mode`` is given, of PIL mode ``mode[0]`` (``mode[1]`` in
    words). ``expected`` describes a good file for errors; ``expected_size``, where given, replaces
    it when the size alone is wrong.
    """

    label: str
    how_to_get: str
    top: str
    layout: str
    format: str
    size: tuple[int, int]
    expected: str
    expected_size: str = ""
    mode: tuple[str, str] | None = None

    def fail(self, path: Path | str, problem: str, expected: str) -> DataError:
        """:func:`data_error` with this dataset's ``how_to_get``."""
        return data_error(path, problem, expected, self.how_to_get)

    def open_tar(self, path: Path) -> tarfile.TarFile:
        try:
            return tarfile.open(path, "r:")
        except (tarfile.TarError, OSError) as err:
            raise self.fail(path, f"cannot be read as an uncompressed tar archive ({err})",
                            f"a tar of {self.top}/{self.layout}") from err

    def list_folder(self, root: Path, key: Callable[[str], K | None]) -> dict[K, Location]:
        """``key(name)`` → ``(file, "")`` for the files below ``root/top`` whose ``key`` is not
        ``None``, ``name`` being the path relative to ``root`` (``top/…``, as a tar names it)."""
        found: dict[K, Location] = {}

        def walk(folder: str, prefix: str) -> None:
            for entry in os.scandir(folder):
                name = prefix + entry.name
                if entry.is_dir():
                    walk(entry.path, name + "/")
                elif entry.is_file() and (k := key(name)) is not None:
                    found[k] = (Path(entry.path), "")

        walk(str(root / self.top), self.top + "/")
        return found

    def list_tar(self, path: Path, key: Callable[[str], K | None]) -> dict[K, Location]:
        """:meth:`list_folder` for the regular files of the tar ``path``: ``key(name)`` →
        ``(path, member name)``, ``name`` being the member's name less a leading ``./``."""
        found: dict[K, Location] = {}
        with self.open_tar(path) as tar:
            for member in tar:
                if member.isfile() and (k := key(member.name.removeprefix("./"))) is not None:
                    found[k] = (path, member.name)
        return found

    def read(self, locations: Iterable[Location]) -> Iterator[tuple[str, bytes]]:
        """``(where, content)`` of each file in turn, ``where`` naming it in errors; each tar is
        opened and indexed once, and closed when the iterator is (use :func:`contextlib.closing`)."""
        tars: dict[Path, tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]] = {}
        try:
            for path, member in locations:
                if not member:
                    yield str(path), path.read_bytes()
                    continue
                if path not in tars:
                    tar = self.open_tar(path)
                    tars[path] = tar, {info.name: info for info in tar.getmembers()}
                tar, index = tars[path]
                where = f"{path}:{member}"
                handle = tar.extractfile(index[member]) if member in index else None
                if handle is None:
                    raise self.fail(where, "is missing or not a regular file", self.expected)
                yield where, handle.read()
        finally:
            for tar, _ in tars.values():
                tar.close()

    def decode(self, data: bytes, where: str, preprocess: Callable[[Image.Image], np.ndarray]) -> np.ndarray:
        """``preprocess`` of the image file ``data`` once its format, mode and size are checked."""
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                if image.format != self.format:
                    raise self.fail(where, f"is a {image.format} image, not a {self.format}", self.expected)
                if self.mode is not None and image.mode != self.mode[0]:
                    raise self.fail(where, f"has PIL mode {image.mode!r}, not {self.mode[0]!r} "
                                           f"({self.mode[1]})", self.expected)
                if image.size != self.size:
                    raise self.fail(where, f"is {image.size[0]}x{image.size[1]} (width x height)",
                                    self.expected_size or self.expected)
                return preprocess(image)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise self.fail(where, f"cannot be decoded ({err})", self.expected) from err

    def decode_all(self, locations: list[Location], shape: tuple[int, ...],
                   preprocess: Callable[[Image.Image], np.ndarray]) -> np.ndarray:
        """The uint8 images ``(len(locations), *shape)``: :meth:`decode` of each file, in order."""
        out = np.empty((len(locations), *shape), dtype=np.uint8)
        bar = progress_bar(len(locations), f"decoding {self.label} at {shape[-1]}x{shape[-2]}",
                           show=len(locations) >= 200)
        try:
            with closing(self.read(locations)) as files:
                for i, (where, data) in enumerate(files):
                    out[i] = self.decode(data, where, preprocess)
                    if bar is not None:
                        bar.update()
        finally:
            close_bar(bar)
        return out

    def cached(self, name: str, recipe: dict, valid: Callable[[dict], bool],
               build: Callable[[], dict]) -> dict:
        """The record cached as ``name`` in :func:`cache_dir` if it loads, carries the key of
        ``recipe`` (:func:`cache_key`) and is ``valid``; else ``build()``'s, saved there with the key.
        Its ``notes``, if any, are warned at every load."""
        path, key = cache_dir() / name, cache_key(recipe)
        record = _read_cache(path, key, valid)
        if record is None:
            record = {"version": CACHE_VERSION, "key": key, **build()}
            try:
                atomic_write(path, lambda p: torch.save(record, p))
            except OSError as err:
                warnings.warn(f"{self.label}: cannot write the cache {path} ({err}); the images will be "
                              f"decoded again next time", stacklevel=4)
        for note in record.get("notes", ()):
            warnings.warn(note, stacklevel=4)
        return record


def _read_cache(path: Path, key: str, valid: Callable[[dict], bool]) -> dict | None:
    if not path.is_file():
        return None
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
        ok = (record["version"] == CACHE_VERSION and record["key"] == key and valid(record)
              and all(isinstance(note, str) for note in record.get("notes", ())))
    except Exception:  # an unreadable or foreign file is simply rebuilt
        return None
    return record if ok else None
