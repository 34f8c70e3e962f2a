"""Assemble the data root (``$DIFFCF_DATA``) in each dataset's original layout.

From a local mirror folder (symlinks by default, ``--copy`` to copy), or, only when asked with
``--download``, from the public source::

    python -m diffcf.data.fetch mnist --mirror ../shared/data/mnist
    python -m diffcf.data.fetch mnist --download

A mirror may hold the MNIST train images under the name
``train-images-idx3-ubyte.APPROX_from_png.gz`` (a reconstruction from PNGs, see its PROVENANCE.md);
it is linked under the standard name ``train-images-idx3-ubyte.gz``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import urllib.request
from pathlib import Path

from diffcf.data.mnist import FILES, mnist_dir
from diffcf.utils import atomic_write, file_digest

MNIST_NAMES = [name for pair in FILES.values() for name in pair]
# Other names under which a mirror may hold a file, tried after the standard name.
MNIST_ALIASES = {"train-images-idx3-ubyte.gz": ["train-images-idx3-ubyte.APPROX_from_png.gz"]}
# The public mirror torchvision uses, and the md5 of each original .gz file.
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def _find_in_mirror(mirror: Path, name: str) -> Path:
    for candidate in [name, *MNIST_ALIASES.get(name, [])]:
        if (mirror / candidate).is_file():
            return mirror / candidate
    tried = ", ".join([name, *MNIST_ALIASES.get(name, [])])
    raise FileNotFoundError(f"mirror {mirror} has none of: {tried}")


def fetch_mnist_from_mirror(mirror: str | Path, dest: str | Path | None = None,
                            copy: bool = False) -> Path:
    """Link (or copy) the four MNIST files from ``mirror`` into ``dest`` (default
    ``$DIFFCF_DATA/mnist``) under their original names; return ``dest``."""
    mirror = Path(mirror).resolve()
    dest = Path(dest) if dest is not None else mnist_dir()
    sources = {name: _find_in_mirror(mirror, name) for name in MNIST_NAMES}  # all found, or fail
    dest.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():
        target = dest / name
        if target.is_symlink() or target.exists():
            target.unlink()
        if copy:
            atomic_write(target, lambda p, src=src: shutil.copyfile(src, p))
        else:
            target.symlink_to(src)
    for extra in ("PROVENANCE.md",):
        if (mirror / extra).is_file() and not (dest / extra).exists():
            (dest / extra).symlink_to(mirror / extra)
    return dest


def _md5(path: Path) -> str:
    return file_digest(path, "md5")


def download_mnist(dest: str | Path | None = None, url: str = MNIST_URL) -> Path:
    """Download the four original MNIST ``.gz`` files into ``dest`` (default ``$DIFFCF_DATA/mnist``)
    and check each file's md5; network access happens only here, and only when called."""
    dest = Path(dest) if dest is not None else mnist_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for name in MNIST_NAMES:
        target = dest / name
        if target.is_file() and _md5(target) == MNIST_MD5[name]:
            continue
        print(f"downloading {url}{name}")
        atomic_write(target, lambda p, name=name: urllib.request.urlretrieve(url + name, p))
        digest = _md5(target)
        if digest != MNIST_MD5[name]:
            target.unlink()
            raise OSError(f"{name}: md5 {digest} does not match the original {MNIST_MD5[name]}")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffcf.data.fetch",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=["mnist"])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--mirror", type=Path, help="a local folder holding the original files")
    source.add_argument("--download", action="store_true",
                        help="download from the public source (needs network access)")
    parser.add_argument("--dest", type=Path, default=None,
                        help="target folder (default: $DIFFCF_DATA/mnist)")
    parser.add_argument("--copy", action="store_true", help="copy instead of symlinking")
    args = parser.parse_args(argv)
    if args.download:
        dest = download_mnist(args.dest)
    else:
        try:
            dest = fetch_mnist_from_mirror(args.mirror, args.dest, copy=args.copy)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    print(f"mnist ready in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
