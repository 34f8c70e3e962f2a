"""The one interface every generator ``g`` offers to the search and to the geometry code.

- ``encode(x) -> z``: for a flow, the exact inverse ``g⁻¹``; for a VAE, the encoder mean; for a GAN,
  an inversion (:mod:`diffcf.inversion`, :class:`~diffcf.inversion.InvertedGAN`).
- ``decode(z) -> x``: the generator ``g: Z → X``.

Latents are flat ``(batch, d)`` tensors behind this interface; image flows flatten their multi-scale
latents (every split kept) so that ``z`` can be optimised as one tensor.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Generator(Protocol):
    def encode(self, x: Tensor) -> Tensor: ...

    def decode(self, z: Tensor) -> Tensor: ...


def check_generator(g: object) -> Generator:
    """Raise a clear error when ``g`` does not offer ``encode``/``decode``."""
    if not isinstance(g, Generator):
        raise TypeError(
            f"a generator needs encode(x) -> z and decode(z) -> x methods; got {type(g).__name__}"
        )
    return g


@torch.no_grad()
def reconstruction_error(g: Generator, x: Tensor) -> Tensor:
    """``max |g(g⁻¹(x)) − x|`` per sample: zero (to rounding) for a flow, positive for a VAE/GAN."""
    x_rec = g.decode(g.encode(x))
    err = (x_rec - x).abs().flatten(1).amax(dim=1)
    if not torch.isfinite(err).all():
        raise FloatingPointError("the generator's inverse produced NaN/Inf: check inputs and model")
    return err
