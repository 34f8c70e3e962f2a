"""Datasets. Embedded or generated ones need no files; real ones are read in their original layout
from the data root (``$DIFFCF_DATA``, default ``data/``).

- :mod:`diffcf.data.helix`: the toy helix of §IV-A, its tangent and the exact distance to it;
- :mod:`diffcf.data.shapes`: the generated, confounded circles and squares (notebook 09);
- :mod:`diffcf.data.mnist`: the validated MNIST IDX reader and scikit-learn's 8×8 digits stand-in;
- :mod:`diffcf.data.celeba`: CelebA (the project's half-resolution 10,000-image subset) from its
  image tar or ``img_align_celeba/`` folder and its attribute file
  (:mod:`~diffcf.data.celeba_attributes`), cropped, resized and cached;
- :mod:`diffcf.data.quantize`: n-bit images for the flows (the CelebA Glow's 5 bits);
- :mod:`diffcf.data.chestxray`: 128×128 grey NIH chest X-rays with a Cardiomegaly label (notebook
  05) from their PNG tar or ``cardiomegaly_128/`` folder and the label csv
  (:mod:`~diffcf.data.chestxray_labels`), resized and cached;
- :mod:`diffcf.data.mall`: the Mall crowd-counting frames (notebook 06) from their two tars or
  ``frames/`` folder, head positions and ROI from the ``.mat`` files
  (:mod:`~diffcf.data.mall_annotations`), resized and cached; 64×64 crops with head counts and
  density targets (:mod:`~diffcf.data.mall_crops`);
- :mod:`diffcf.data.images`: what the three share: image files read from a tar or a folder,
  checked and decoded, and the cache of the decoded images;
- :mod:`diffcf.data.registry`: the registry of the real datasets (folder, files with checksums, how
  to assemble them from a mirror, optional download URL, loader);
- :mod:`diffcf.data.fetch`: ``python -m diffcf.data.fetch`` and ``make data``, which assemble the
  data root from a mirror folder (or, opt-in, a download) following the registry.

Every real loader raises :class:`DataError` for a missing or malformed file, naming the file and
how to get it.
"""

from __future__ import annotations

from collections.abc import Iterable


class DataError(RuntimeError):
    """A dataset file is missing or is not in the expected format."""


def check_split(split: str, splits: Iterable[str]) -> str:
    """``split``, if it is one of ``splits``; else a :class:`ValueError` that lists them."""
    if split not in splits:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(splits)}")
    return split
