"""What a counterfactual search aims for (§II): a target class ``t`` reached with probability above
``Λ`` (the set ``S_{t,Λ}``), or, for regression, an output driven past a threshold.

A target gives the search a per-sample loss to minimise (cross-entropy to ``t``, or ∓ the output),
a per-sample success test, and its restriction to the samples still searching.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn


def _class_indices(t: int | Tensor) -> Tensor:
    """``t`` as a long tensor of class indices; whole-valued floats are fine, ``9.7`` or NaN are not."""
    raw = torch.as_tensor(t)
    if raw.dtype == torch.bool or raw.is_complex():
        raise ValueError(f"target classes must be integer class indices, got dtype {raw.dtype}: "
                         f"pass e.g. ClassTarget(9) or a long tensor of classes")
    if raw.is_floating_point():
        whole = torch.isfinite(raw) & (raw == raw.round())
        if not whole.all():
            bad = raw[~whole].unique()[:5].tolist()
            raise ValueError(f"target classes must be whole numbers (class indices), got {bad}: "
                             f"a fractional class would be truncated; pass e.g. ClassTarget(9)")
    return raw.to(torch.long)



class Target(Protocol):
    """What the search aims for: a per-sample loss to minimise and a per-sample success test."""

    def loss(self, output: Tensor) -> Tensor: ...

    def reached(self, output: Tensor) -> Tensor: ...

    def select(self, idx: Tensor) -> Target: ...


class ClassTarget:
    """Reach class ``t`` with probability above ``confidence`` (Λ): the set ``S_{t,Λ}`` of §II.

    ``t`` is one class for the whole batch or a tensor with one class per sample. Success means
    ``argmax_j f_j(x) = t`` and ``softmax(f(x))_t > Λ``; the loss is the cross-entropy to ``t``.
    Classes may be ints, integer tensors or whole-valued floats; ``9.7`` or a bool is an error.
    """

    def __init__(self, t: int | Tensor, confidence: float = 0.99):
        if isinstance(confidence, bool) or not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence (Λ) must lie in (0, 1), strictly: a probability such as 0.99; "
                             f"got {confidence}")
        self.t = _class_indices(t)
        if self.t.ndim > 1:
            raise ValueError(f"t must be an int or a 1-d tensor, got shape {tuple(self.t.shape)}")
        self.confidence = confidence

    def classes(self, logits: Tensor) -> Tensor:
        """The target class of every row of ``logits``, ``(batch,)``."""
        if logits.ndim != 2:
            raise ValueError(f"a classifier must return (batch, classes) logits, got {tuple(logits.shape)}")
        n, c = logits.shape
        t = self.t.to(logits.device).expand(n) if self.t.ndim == 0 else self.t.to(logits.device)
        if t.shape[0] != n:
            raise ValueError(f"{t.shape[0]} targets given for a batch of {n}")
        return t

    def check(self, logits: Tensor) -> None:
        """Validate the target classes against the classifier's output once, before the search."""
        t = self.classes(logits)
        c = logits.shape[1]
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= c):
            raise ValueError(f"target classes must lie in [0, {c - 1}], got {t.unique().tolist()}")

    def select(self, idx: Tensor) -> ClassTarget:
        """The target of the samples ``idx`` of the batch."""
        return self if self.t.ndim == 0 else ClassTarget(self.t[idx.cpu()], self.confidence)

    def loss(self, logits: Tensor) -> Tensor:
        return nn.functional.cross_entropy(logits, self.classes(logits), reduction="none")

    def reached(self, logits: Tensor) -> Tensor:
        t = self.classes(logits)
        p = logits.softmax(dim=1)
        p_t = p.gather(1, t[:, None])[:, 0]
        return (p.argmax(dim=1) == t) & (p_t > self.confidence)


class RegressionTarget:
    """Push a scalar output ``r`` (shape ``(batch,)`` or ``(batch, 1)``) past ``threshold``:
    maximise until ``r > threshold`` or minimise until ``r < threshold`` (Mall, §IV-D)."""

    def __init__(self, threshold: float | Tensor, maximize: bool | Tensor = True):
        self.threshold = torch.as_tensor(threshold, dtype=torch.float32)
        if not torch.isfinite(self.threshold).all():
            raise ValueError(f"threshold must be finite, got {threshold}: a NaN threshold is never reached")
        self.maximize = torch.as_tensor(maximize, dtype=torch.bool)

    @staticmethod
    def _flat(r: Tensor) -> Tensor:
        if r.ndim == 2 and r.shape[1] == 1:
            r = r[:, 0]
        if r.ndim != 1:
            raise ValueError(f"a regressor must return (batch,) or (batch, 1), got {tuple(r.shape)}")
        return r

    def check(self, output: Tensor) -> None:
        self._flat(output)

    def select(self, idx: Tensor) -> RegressionTarget:
        """The target of the samples ``idx`` of the batch."""
        idx = idx.cpu()
        thr = self.threshold if self.threshold.ndim == 0 else self.threshold[idx]
        up = self.maximize if self.maximize.ndim == 0 else self.maximize[idx]
        return RegressionTarget(thr, up)

    def loss(self, output: Tensor) -> Tensor:
        r = self._flat(output)
        return torch.where(self.maximize.to(r.device), -r, r)

    def reached(self, output: Tensor) -> Tensor:
        r = self._flat(output)
        thr = self.threshold.to(r.device, r.dtype)
        return torch.where(self.maximize.to(r.device), r > thr, r < thr)
