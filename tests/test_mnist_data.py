"""The MNIST IDX reader, its registry entry, the fetch tool and the digits stand-in, on tiny fixtures
written here (the fetch tool's safety checks: test_data_fetch.py)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from diffcf.data import fetch
from diffcf.data.mnist import (
    FILES,
    IMAGES_MAGIC,
    LABELS_MAGIC,
    DataError,
    load_dataset,
    load_digits_28,
    load_mnist,
    mnist_dir,
)
from diffcf.data.registry import get


def write_idx(path: Path, array: np.ndarray, magic: int, truncate: int = 0) -> Path:
    """Write ``array`` (uint8) as a gzipped IDX file, optionally dropping the last bytes."""
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw[: len(raw) - truncate]))
    return path


def write_mnist(folder: Path, n_train: int = 5, n_test: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n, prefix in [("train", n_train, "train"), ("test", n_test, "t10k")]:
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images, IMAGES_MAGIC)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, LABELS_MAGIC)
        data[split] = (images, labels)
    return data


def test_reads_good_files(tmp_path, monkeypatch):
    data = write_mnist(tmp_path / "mnist")
    x, y = load_mnist("train", root=tmp_path / "mnist")
    images, labels = data["train"]
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.tolist() == labels.tolist()
    assert torch.equal(x[:, 0], torch.from_numpy(images.astype(np.float32) / 255.0))
    monkeypatch.setenv("DIFFCF_DATA", str(tmp_path))
    x_test, y_test = load_dataset("mnist", "test")
    assert x_test.shape == (3, 1, 28, 28) and 0.0 <= x_test.min() and x_test.max() <= 1.0


def test_missing_file_names_path_and_fix(tmp_path):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*not found.*make data"):
        load_mnist("train", root=tmp_path)


def test_bad_magic(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28)), LABELS_MAGIC)
    with pytest.raises(DataError, match=r"t10k-images.*magic number is 0x00000801.*0x00000803"):
        load_mnist("test", root=tmp_path)


def test_truncated_payload(tmp_path):
    write_mnist(tmp_path)
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, IMAGES_MAGIC, truncate=10)
    with pytest.raises(DataError, match=r"announces 3x28x28 = 2352 values but the file holds 2342"):
        load_mnist("test", root=tmp_path)


def test_truncated_gzip_stream(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match=r"t10k-labels.*cannot be decompressed"):
        load_mnist("test", root=tmp_path)


def test_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4), LABELS_MAGIC)
    with pytest.raises(DataError, match=r"4 labels for 3 images"):
        load_mnist("test", root=tmp_path)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset 'fashion'"):
        load_dataset("fashion")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_mnist("val")


def test_fetch_from_mirror_maps_approx_name(tmp_path):
    mirror = tmp_path / "mirror"
    data = write_mnist(mirror)
    (mirror / "train-images-idx3-ubyte.gz").rename(
        mirror / "train-images-idx3-ubyte.APPROX_from_png.gz")
    ds = get("mnist")
    dest = fetch.assemble_from_mirror(ds, mirror, tmp_path / "root" / "mnist")
    assert sorted(p.name for p in dest.glob("*.gz")) == sorted(ds.files)
    x, _ = ds.load("train", root=dest)
    assert torch.equal(x[:, 0], torch.from_numpy(data["train"][0].astype(np.float32) / 255.0))
    # the fixtures are not the original files: every one is reported, none refused
    assert len(fetch.checksum_notes(ds, dest)) == 4
    assert fetch.main(["mnist", "--mirror", str(tmp_path / "empty")]) == 1


def test_registry_entry_matches_the_reader(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFCF_DATA", str(tmp_path))
    ds = get("mnist")
    assert set(ds.files) == {name for pair in FILES.values() for name in pair}
    assert ds.path() == mnist_dir() == tmp_path.resolve() / "mnist"
    assert ds.loader_function() is load_mnist
    assert ds.missing() == list(ds.files)
    write_mnist(tmp_path / "mnist")
    assert ds.missing() == []
    assert ds.load("test")[0].shape == (3, 1, 28, 28)


def test_digits_stand_in():
    x_train, y_train = load_digits_28("train")
    x_test, y_test = load_dataset("digits", "test")
    assert x_train.shape == (1500, 1, 28, 28) and x_test.shape == (297, 1, 28, 28)
    assert x_train.min() >= 0.0 and x_train.max() <= 1.0 and x_train.max() > 0.9
    assert set(y_train.tolist()) == set(range(10)) and y_test.dtype == torch.int64
    # the split is fixed and disjoint
    assert torch.equal(load_digits_28("test")[0], x_test)
    flat_train = {tuple(v) for v in x_train.flatten(1).mul(1000).round().int().tolist()}
    flat_test = x_test.flatten(1).mul(1000).round().int().tolist()
    overlap = sum(tuple(v) in flat_train for v in flat_test)
    assert overlap <= 3  # the 8x8 set holds a few exact duplicates; no split leakage beyond them
