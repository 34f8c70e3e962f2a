"""MNIST (§IV-B) read from its original IDX ``.gz`` files, and scikit-learn's 8×8 digits.

Real MNIST lives in ``$DIFFCF_DATA/mnist/`` in the layout LeCun et al. published::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

An IDX file is a big-endian header (magic ``0x00000803`` for 3-d uint8 images, ``0x00000801`` for
1-d uint8 labels, then one 32-bit size per dimension) followed by the raw uint8 values. The reader
checks magic, sizes and that images and labels agree, and fails with a message naming the file.

``load_dataset("digits", split)`` offers the same interface on scikit-learn's bundled 8×8 digits
(no download), upsampled to 1×28×28, so notebooks can switch with one parameter.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from diffcf.data import DataError
from diffcf.utils import data_root

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
DATASETS = ("mnist", "digits")
SPLITS = ("train", "test")
HOW_TO_GET = (
    "`make data` assembles the data root (or run `python -m diffcf.data.fetch mnist --mirror DIR`, "
    "or `... --download`); set DIFFCF_DATA to point at it"
)


def mnist_dir() -> Path:
    """``$DIFFCF_DATA/mnist``."""
    return data_root() / "mnist"


def _fail(path: Path, problem: str, expected: str) -> DataError:
    return DataError(f"{path}: {problem}; expected {expected}. {HOW_TO_GET}.")


def read_idx(path: str | Path, magic: int, ndim: int) -> np.ndarray:
    """Read a gzipped IDX file of uint8 values and return its array (shape from the header).

    Raises :class:`DataError` naming ``path`` if the file is missing, not gzip, has the wrong magic
    number or dimension count, or holds fewer/more bytes than its header announces.
    """
    path = Path(path)
    expected = f"a gzipped IDX file with magic 0x{magic:08X} and {ndim} dimension(s)"
    if not path.is_file():
        raise _fail(path, "file not found", expected)
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise _fail(path, f"cannot be decompressed ({err})", expected) from err
    if len(raw) < 4 + 4 * ndim:
        raise _fail(path, f"only {len(raw)} bytes, too short for the header", expected)
    (found,) = struct.unpack(">I", raw[:4])
    if found != magic:
        raise _fail(path, f"magic number is 0x{found:08X}", expected)
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    payload = raw[4 + 4 * ndim :]
    if len(payload) != int(np.prod(dims)):
        raise _fail(
            path,
            f"header announces {'x'.join(map(str, dims))} = {int(np.prod(dims))} values but the "
            f"file holds {len(payload)}",
            "an untruncated file",
        )
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


def load_mnist(split: str = "train", root: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """Real MNIST: images ``(N, 1, 28, 28)`` float in ``[0, 1]`` (``value / 255``) and long labels.

    ``root`` defaults to :func:`mnist_dir` (``$DIFFCF_DATA/mnist``).
    """
    if split not in FILES:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    folder = Path(root) if root is not None else mnist_dir()
    img_name, lab_name = FILES[split]
    images = read_idx(folder / img_name, IMAGES_MAGIC, 3)
    labels = read_idx(folder / lab_name, LABELS_MAGIC, 1)
    if images.shape[1:] != (28, 28):
        raise _fail(folder / img_name, f"images are {images.shape[1]}x{images.shape[2]}",
                    "28x28 images")
    if len(images) != len(labels):
        raise _fail(folder / lab_name, f"{len(labels)} labels for {len(images)} images in "
                    f"{img_name}", "one label per image")
    if labels.size and labels.max() > 9:
        raise _fail(folder / lab_name, f"label {int(labels.max())} found", "labels 0..9")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def load_digits_28(split: str = "train", test_size: int = 297, seed: int = 0
                   ) -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8×8 digits (values 0..16), bilinearly upsampled to ``(N, 1, 28, 28)``
    in ``[0, 1]``, with a fixed random train/test split (1500 / 297 images)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    # Pad one pixel of background on each side (the 8×8 digits touch their border; MNIST digits
    # sit in a 20×20 box inside 28×28), then resize to 28×28.
    x = torch.nn.functional.pad(x, (1, 1, 1, 1))
    x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    x = x.clamp(0.0, 1.0)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    idx = perm[test_size:] if split == "train" else perm[:test_size]
    return x[idx], y[idx]


def load_dataset(name: str, split: str = "train") -> tuple[Tensor, Tensor]:
    """``(x, y)`` for ``name`` in ``{"mnist", "digits"}``: ``x`` is ``(N, 1, 28, 28)`` in
    ``[0, 1]``, ``y`` long labels 0..9. ``"digits"`` needs no files; ``"mnist"`` reads
    ``$DIFFCF_DATA/mnist``."""
    if name == "mnist":
        return load_mnist(split)
    if name == "digits":
        return load_digits_28(split)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
