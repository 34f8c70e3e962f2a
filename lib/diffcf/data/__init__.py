"""Datasets. Embedded or generated ones need no files; real ones are read in their original layout
from the data root (``$DIFFCF_DATA``, default ``data/``).

- :mod:`diffcf.data.helix`: the toy helix of §IV-A, its tangent and the exact distance to it;
- :mod:`diffcf.data.shapes`: the generated, confounded circles and squares (notebook 09);
- :mod:`diffcf.data.mnist`: the validated MNIST IDX reader and scikit-learn's 8×8 digits stand-in;
- :mod:`diffcf.data.registry`: the registry of the real datasets (folder, files with checksums, how
  to assemble them from a mirror, optional download URL, loader);
- :mod:`diffcf.data.fetch`: ``python -m diffcf.data.fetch`` and ``make data``, which assemble the
  data root from a mirror folder (or, opt-in, a download) following the registry.
"""
