"""Oracles: the models that judge a counterfactual, not the ones explained (§IV-B, MNIST and CelebA).

- :class:`LinearSVMOracle`: the paper's "SVM, 92 %" (MNIST) and "85 %" (CelebA) oracle, a linear SVM
  on pixels as a torch module;
- :class:`RBFSVMOracle`: a kernel SVM on pixels (RBF kernel, one-vs-one), a second, non-linear oracle
  the paper does not use (it does not name its SVM's kernel);
- :class:`ClassAutoencoders`: one :class:`ConvAutoencoder` per class, for the IM1 score of
  Van Looveren & Klaise (2021).

Checkpoints hold state dicts (``weights_only=True``), so the classes may move between modules
without breaking them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LinearSVMOracle(nn.Module):
    """A linear SVM on pixels as a torch module (the paper's oracle, §IV-B: "SVM, 92 %").

    Holds only ``coef`` ``(n_classes, in_dim)`` and ``intercept`` ``(n_classes,)`` buffers, so it is
    saved and loaded with ``weights_only=True``. ``forward`` returns the one-vs-rest decision
    values ``x·coefᵀ + intercept``; their argmax is scikit-learn's ``predict``.
    """

    def __init__(self, in_dim: int = 784, n_classes: int = 10):
        super().__init__()
        self.register_buffer("coef", torch.zeros(n_classes, in_dim))
        self.register_buffer("intercept", torch.zeros(n_classes))

    @torch.no_grad()
    def set_from_sklearn(self, clf) -> LinearSVMOracle:
        """Copy ``coef_``/``intercept_`` from a fitted scikit-learn linear classifier (multi-class,
        one-vs-rest: ``LinearSVC`` or ``SGDClassifier``). A binary classifier (one row ``w``, one
        ``b``, class 1 where ``x·w + b > 0``) becomes the two scores ``[0, x·w + b]``, the project's
        binary convention (:mod:`diffcf.models.classifiers`)."""
        coef = torch.as_tensor(clf.coef_, dtype=self.coef.dtype)
        intercept = torch.as_tensor(clf.intercept_, dtype=self.intercept.dtype).reshape(-1)
        if self.coef.shape[0] == 2 and coef.shape[0] == 1:
            coef = torch.cat([torch.zeros_like(coef), coef])
            intercept = torch.cat([torch.zeros_like(intercept), intercept])
        if coef.shape != self.coef.shape:
            raise ValueError(f"classifier has coef_ of shape {tuple(coef.shape)}, "
                             f"expected {tuple(self.coef.shape)}")
        self.coef.copy_(coef)
        self.intercept.copy_(intercept)
        return self

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1).to(self.coef.dtype) @ self.coef.T + self.intercept


class RBFSVMOracle(nn.Module):
    """A kernel SVM with an RBF kernel (scikit-learn ``SVC``, one-vs-one) as a torch module.

    Buffers: the support vectors ``support`` ``(S, in_dim)`` sorted by class, ``dual_coef``
    ``(n_classes - 1, S)``, the per-class counts ``n_support`` and one ``intercept`` per class pair
    ``(i, j)``, ``i < j``, and ``gamma``. ``S`` is known only after fitting; loading a state dict
    takes its sizes from the checkpoint. ``forward`` returns scikit-learn's one-vs-rest
    ``decision_function`` (votes of the 45 pairwise SVMs plus a tie-breaking confidence in
    ``(-1/3, 1/3)``); its argmax is the predicted class.
    """

    _SIZED_BY_CHECKPOINT = ("support", "dual_coef")

    def __init__(self, in_dim: int = 784, n_classes: int = 10):
        super().__init__()
        self.n_classes = n_classes
        self.register_buffer("support", torch.zeros(0, in_dim))
        self.register_buffer("dual_coef", torch.zeros(n_classes - 1, 0))
        self.register_buffer("n_support", torch.zeros(n_classes, dtype=torch.long))
        self.register_buffer("intercept", torch.zeros(n_classes * (n_classes - 1) // 2))
        self.register_buffer("gamma", torch.tensor(0.0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self._SIZED_BY_CHECKPOINT:
            if prefix + name in state_dict:
                sized = torch.empty_like(state_dict[prefix + name], dtype=self.support.dtype)
                setattr(self, name, sized)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def set_from_sklearn(self, svc) -> RBFSVMOracle:
        """Copy a fitted ``sklearn.svm.SVC(kernel="rbf")`` with ``n_classes`` classes ``0..n-1``."""
        if svc.kernel != "rbf" or len(svc.classes_) != self.n_classes:
            raise ValueError(f"expected an RBF SVC with {self.n_classes} classes, got kernel "
                             f"{svc.kernel!r} with {len(svc.classes_)} classes")
        if svc.support_vectors_.shape[1] != self.support.shape[1]:
            raise ValueError(f"SVC has {svc.support_vectors_.shape[1]} features, "
                             f"expected {self.support.shape[1]}")
        dtype = self.support.dtype
        self.support = torch.as_tensor(svc.support_vectors_, dtype=dtype).clone()
        self.dual_coef = torch.as_tensor(svc.dual_coef_, dtype=dtype).clone()
        self.n_support.copy_(torch.as_tensor(svc.n_support_))
        self.intercept.copy_(torch.as_tensor(svc.intercept_))
        self.gamma.fill_(float(svc._gamma))
        return self

    def forward(self, x: Tensor) -> Tensor:
        distance = torch.cdist(x.flatten(1).to(self.support.dtype), self.support)
        kernel = torch.exp(-self.gamma * distance.square())
        bounds = [0, *torch.cumsum(self.n_support, 0).tolist()]
        votes = kernel.new_zeros(len(x), self.n_classes)
        confidence = kernel.new_zeros(len(x), self.n_classes)
        pair = 0
        for i in range(self.n_classes):
            si = slice(bounds[i], bounds[i + 1])
            for j in range(i + 1, self.n_classes):
                sj = slice(bounds[j], bounds[j + 1])  # libsvm: i's SVs use row j - 1, j's row i
                dec = (kernel[:, si] @ self.dual_coef[j - 1, si] + kernel[:, sj] @ self.dual_coef[i, sj]
                       + self.intercept[pair])
                votes[:, i] += dec > 0
                votes[:, j] += dec <= 0
                confidence[:, i] += dec
                confidence[:, j] -= dec
                pair += 1
        return votes + confidence / (3 * (confidence.abs() + 1))


class ConvAutoencoder(nn.Module):
    """A small convolutional autoencoder ``(B, C, s, s) → R^latent → (B, C, s, s)`` (sigmoid output),
    for the IM1 score of Van Looveren & Klaise (2021), used in §IV-B: two stride-2 convolutions
    (``channels``, ``2·channels``) down to ``s/4 × s/4``, a linear bottleneck, and the mirror image.
    ``C = 1, s = 28`` (the defaults) is the MNIST autoencoder; CelebA uses ``C = 3, s = 32`` or 64.
    ``s`` must be divisible by 4."""

    def __init__(self, channels: int = 16, latent: int = 32, in_channels: int = 1, size: int = 28):
        super().__init__()
        if size < 4 or size % 4:
            raise ValueError(f"size must be divisible by 4 (two stride-2 convolutions), got {size}")
        self.in_channels, self.size = in_channels, size
        c, s = channels, size // 4
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, stride=2, padding=1), nn.ReLU(),      # s/2
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU(),            # s/4
            nn.Flatten(), nn.Linear(2 * c * s * s, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 2 * c * s * s), nn.ReLU(), nn.Unflatten(1, (2 * c, s, s)),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),            # s/2
            nn.ConvTranspose2d(c, in_channels, 4, stride=2, padding=1), nn.Sigmoid(),  # s
        )

    def forward(self, x: Tensor) -> Tensor:
        shape = (self.in_channels, self.size, self.size)
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
        return self.decoder(self.encoder(x))


class ClassAutoencoders(nn.Module):
    """One :class:`ConvAutoencoder` per class, autoencoder ``c`` trained only on class ``c`` (MNIST:
    ten, CelebA: not blond and blond).

    ``self[c](x)`` reconstructs with autoencoder ``c``; :meth:`reconstruction_errors` gives the
    per-sample, per-class mean squared errors that IM1 compares.
    """

    def __init__(self, n_classes: int = 10, channels: int = 16, latent: int = 32, in_channels: int = 1,
                 size: int = 28):
        super().__init__()
        self.aes = nn.ModuleList(ConvAutoencoder(channels, latent, in_channels, size)
                                 for _ in range(n_classes))

    def __getitem__(self, c: int) -> ConvAutoencoder:
        return self.aes[c]

    def __len__(self) -> int:
        return len(self.aes)

    def forward(self, x: Tensor, c: int) -> Tensor:
        return self.aes[c](x)

    def reconstruction_errors(self, x: Tensor) -> Tensor:
        """``‖x − AE_c(x)‖² / D`` for every class ``c``: shape ``(B, n_classes)``."""
        return torch.stack([(ae(x) - x).pow(2).flatten(1).mean(1) for ae in self.aes], dim=1)
