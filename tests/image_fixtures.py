"""Helpers of the image datasets' tests (test_celeba_data, test_chestxray_data, test_mall_data): image
files, tars and folders written in the real layouts, and the checks the three loaders share. Their
``isolated`` fixture (data root and cache in tmp_path) is in conftest.py."""

from __future__ import annotations

import io
import os
import tarfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffcf.data import DataError, fetch
from diffcf.data.registry import get


def image_file(rng: np.random.Generator, size: tuple[int, int], grid: tuple[int, ...], mode: str = "RGB",
               fmt: str = "JPEG") -> bytes:
    """A smooth random image of ``size`` (width, height) in PIL ``mode``, encoded as ``fmt``: random
    uint8 pixels of shape ``grid`` (rows, columns[, 3]) resized bicubically."""
    coarse = rng.integers(0, 256, size=grid, dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    """An image file as PIL decodes it: (height, width[, channels]) uint8."""
    return np.asarray(Image.open(io.BytesIO(data)))


def write_tar(path: Path, files: dict[str, bytes], folders: tuple[str, ...] = ()) -> None:
    """An uncompressed tar of ``folders`` (directory members) and ``files`` (member name → content)."""
    with tarfile.open(path, "w") as tar:
        for name in folders:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """``files`` (path relative to ``folder`` → content) unpacked in ``folder``."""
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def count_calls(monkeypatch, module, name: str = "_decode") -> list:
    """Record every call of ``module.name`` (still made) in the list returned."""
    calls, original = [], getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def load_without_cache(tmp_path: Path, monkeypatch, load):
    """``load()`` where no cache can be written (``$DIFFCF_CACHE`` is a file), which must warn."""
    (tmp_path / "blocked").write_text("a file where the cache folder should be")
    monkeypatch.setenv("DIFFCF_CACHE", str(tmp_path / "blocked"))
    with pytest.warns(UserWarning, match="cannot write the cache"):
        return load()


@contextmanager
def same_mtime(path: Path):
    """Rewrite ``path`` in the block and give it back its mtime: only its content tells the change."""
    stat = path.stat()
    yield
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def bump_mtime(path: Path) -> None:
    """Move ``path``'s mtime a second on, so that a coarse clock cannot hide a change."""
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))


def assert_change_noticed(load, path: Path, data: bytes) -> None:
    """A cache of unpacked images notices one file rewritten: after ``path``, the file of the second
    image that ``load()`` returns, is given the content ``data`` (and a later mtime), the second image
    changes and the first does not."""
    before = load()
    path.write_bytes(data)
    bump_mtime(path)
    after = load()
    assert torch.equal(after[0], before[0]) and not torch.equal(after[1], before[1])


def assert_layouts_agree(tmp_path: Path, write, load) -> None:
    """``load(split, root)`` of each split is the same from the tar as from the unpacked folder,
    ``write(folder, layout)`` writing the same fixtures in either layout."""
    write(tmp_path / "tar", "tar")
    write(tmp_path / "folder", "folder")
    for split in ("train", "test"):
        from_tar, from_folder = load(split, tmp_path / "tar"), load(split, tmp_path / "folder")
        assert all(torch.equal(a, b) for a, b in zip(from_tar, from_folder, strict=True))


def fetched_from_mirror(tmp_path: Path, name: str, write, extras: tuple[str, ...] = ("PROVENANCE.md",)):
    """The registered dataset ``name``, missing at first, after ``fetch --mirror`` of a mirror that
    ``write(folder)`` fills (``extras`` beside): complete, the extras linked, no public download."""
    ds = get(name)
    assert ds.path() == tmp_path.resolve() / "data" / name and ds.missing() == list(ds.files)
    mirror = tmp_path / "mirror"
    write(mirror)
    for extra in extras:
        (mirror / extra).write_text("fixtures")
    assert fetch.main([name, "--mirror", str(mirror)]) == 0
    assert ds.missing() == [] and all((ds.path() / extra).is_symlink() for extra in extras)
    with pytest.raises(fetch.FetchError, match="no public download source"):
        fetch.download(ds)
    return ds


def expect_data_error(load, pattern: str) -> str:
    """The message of the :class:`DataError` matching ``pattern`` that ``load()`` raises, which must
    also say how to get the data (``make data``)."""
    with pytest.raises(DataError, match=pattern) as info:
        load()
    assert "make data" in str(info.value)
    return str(info.value)
