"""The dataset registry, in the spirit of d2l's ``DATA_HUB``: one :class:`Dataset` entry per real
dataset says everything the tools need to know about it:

- ``folder``: its folder under the data root (:func:`diffcf.utils.data_root`, ``$DIFFCF_DATA``,
  default ``data/``), and the name of its folder in a mirror (``$(MIRROR)/<folder>``);
- ``files``: the files that make it up, in their original published names, each with the checksum
  (``checksum``, md5 for MNIST) of the original file (for CelebA, whose mirror files are not the
  originals, sha256 of the mirror's files);
- ``aliases``: other names under which a mirror may hold a file; ``extras``: optional notes such
  as ``PROVENANCE.md``, placed beside the files when the mirror has them;
- ``assemble``: how ``make data`` places the files from a mirror folder, ``"link"`` (symlinks) or
  ``"copy"``;
- ``url``: an optional base URL for an opt-in download (``python -m diffcf.data.fetch NAME
  --download``), the file name appended; ``None`` when there is no public source to download from;
- ``loader``: ``"module:function"`` that reads it, imported only when called (:meth:`Dataset.load`).

Adding a dataset is one :func:`register` call below; :mod:`diffcf.data.fetch` and ``make data`` then
assemble it from ``$(MIRROR)/<folder>`` with no further change. Datasets the code generates (the
helix, the shapes) or that ship with a package (scikit-learn's digits) are not registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffcf.utils import data_root


@dataclass(frozen=True)
class Dataset:
    """One registered dataset (see the module docstring for the fields)."""

    name: str
    folder: str
    files: Mapping[str, str]
    loader: str
    checksum: str = "md5"
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    extras: tuple[str, ...] = ("PROVENANCE.md",)
    assemble: str = "link"
    url: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.assemble not in ("link", "copy"):
            raise ValueError(f"{self.name}: assemble must be 'link' or 'copy', got {self.assemble!r}")
        if ":" not in self.loader:
            raise ValueError(f"{self.name}: loader must read 'module:function', got {self.loader!r}")
        unknown = set(self.aliases) - set(self.files)
        if unknown:
            raise ValueError(f"{self.name}: aliases for files it does not have: {sorted(unknown)}")

    def path(self) -> Path:
        """Its folder in the data root: ``$DIFFCF_DATA/<folder>``."""
        return data_root() / self.folder

    def missing(self, folder: str | Path | None = None) -> list[str]:
        """The files absent from ``folder`` (default :meth:`path`); a dangling link is absent."""
        folder = Path(folder) if folder is not None else self.path()
        return [name for name in self.files if not (folder / name).is_file()]

    def loader_function(self) -> Callable[..., Any]:
        module, function = self.loader.split(":")
        return getattr(importlib.import_module(module), function)

    def load(self, *args: Any, **kwargs: Any) -> Any:
        """Call its loader, e.g. ``DATASETS["mnist"].load("test")``."""
        return self.loader_function()(*args, **kwargs)


DATASETS: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    """Add ``dataset`` to :data:`DATASETS` (a name or folder registered twice is an error)."""
    for other in DATASETS.values():
        if dataset.name == other.name or dataset.folder == other.folder:
            raise ValueError(f"dataset {dataset.name!r} (folder {dataset.folder!r}) clashes with "
                             f"{other.name!r} (folder {other.folder!r})")
    DATASETS[dataset.name] = dataset
    return dataset


def get(name: str) -> Dataset:
    """The registered dataset ``name``; ``ValueError`` naming the registered ones otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; registered: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


# ---- the registered datasets ---------------------------------------------------------------------

register(Dataset(
    name="mnist",
    folder="mnist",
    description="MNIST handwritten digits (LeCun et al. 1998), the four IDX .gz files (§IV-B)",
    files={  # md5 of the original .gz files (torchvision's list)
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    # the project's mirror holds train images rebuilt from PNGs under this name (its PROVENANCE.md)
    aliases={"train-images-idx3-ubyte.gz": ("train-images-idx3-ubyte.APPROX_from_png.gz",)},
    url="https://ossci-datasets.s3.amazonaws.com/mnist/",  # the public mirror torchvision uses
    loader="diffcf.data.mnist:load_mnist",
))

register(Dataset(
    name="celeba",
    folder="celeba",
    description="CelebA (Liu et al. 2015): the first 10,000 aligned faces at HALF resolution "
                "(89x109 JPEG tar) and their 40 attributes (csv); non-commercial research use only",
    files={  # sha256 of the mirror's files (its PROVENANCE.md): the tar is not an original CelebA file
        "img_align_celeba_HALFRES_89x109_000001-010000.tar":
            "e5436d65a48ad501ac7b014aa28c6fabc1fb21cfe89f98cee97dad0ef532000b",
        "list_attr_celeba_000001-010000.csv":
            "d4d0097d4ff44bb50180bd93f2a333c99c7542030613256fd2ec6e32d645f14c",
    },
    checksum="sha256",
    url=None,  # no public download: CelebA's terms ask for it to be obtained from its project page
    loader="diffcf.data.celeba:load_celeba",
))

register(Dataset(
    name="chestxray",
    folder="chestxray",
    description="Chest X-rays with a Cardiomegaly label: NIH ChestX-ray14 films (Wang et al. 2017) at "
                "128x128 grey, Kaggle's 2,776 positives and a subset of negatives (PNG tar + label csv); "
                "not CheXpert",
    files={  # sha256 of the mirror's files (its PROVENANCE.md): a repackaging, not an NIH file
        "nih_cxr14_cardiomegaly_128px_kaggle_subset.tar":
            "d9f429dc88f5be612d1ad0fb761f5e49ae4c78f9c9b1c7d58e2c48d3a2e9c522",
        "labels_cardiomegaly_128.csv":
            "e65469ab0226a4b20fac26c01b23a4cbc4852989d3d34596f2b0d298c8612698",
    },
    checksum="sha256",
    extras=("PROVENANCE.md", "nih_id_matches_partial.csv"),
    url=None,  # no public download of this subset: the mirror assembled it (its PROVENANCE.md)
    loader="diffcf.data.chestxray:load_chestxray",
))

register(Dataset(
    name="mall",
    folder="mall",
    description="Mall crowd counting (Chen, Loy et al. 2012): 2,000 640x480 CCTV frames in two JPEG tars "
                "(frames 1-800 train, 801-2000 test), head positions and counts (mall_gt.mat), ROI and "
                "perspective map; research use",
    files={  # sha256 of the mirror's files (its PROVENANCE.md): the tars re-pack the original frames
        "mall_frames_0001-0800.tar": "98b6b696a7f4684df475f531c55b62fcae12c8dcf0010278a4a8263e844801fa",
        "mall_frames_0801-2000.tar": "002e7046b6024fac4101abcecc7ff160126a9ef2ce0bc37e30dd288d9c161205",
        "mall_gt.mat": "aa2fb21370c9c12d279a4bf1835ea51da91adf4c65e86f76a91ca23a2e51583a",
        "perspective_roi.mat": "aa8ca5fe26b755bbac55562ca33c338597bffddf7ac7c367e2269749ea20de7f",
    },
    checksum="sha256",
    extras=("PROVENANCE.md", "readme.txt"),
    url=None,  # the project page offers one zip, not these files: assemble from a mirror
    loader="diffcf.data.mall:load_mall",
))
