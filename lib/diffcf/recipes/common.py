"""What the recipes share: mini-batch streams, the one image-flow training loop, and the recipes of
binary image classifiers and their linear SVM oracles (CelebA's Blond_Hair, the X-rays'
Cardiomegaly), which take the data as a function ``split -> (x, y)``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from diffcf.evaluate import balanced_accuracy, predict
from diffcf.generative import reconstruction_error
from diffcf.models.multiscale import MultiscaleFlow
from diffcf.training import Stage, fit, per_rank, rank
from diffcf.zoo import ModelSpec


def stream_seed(seed: int, stage: Stage) -> int:
    """The seed of this rank's batch stream in this stage: differs by rank and by starting step, so
    a resumed stage or a second DDP rank does not repeat the same batches."""
    return seed + 1_000_003 * rank() + stage.start_step


def image_batches(x: Tensor, y: Tensor, batch_size: int, seed: int, device: torch.device,
                  hflip: bool = False, shift: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless random mini-batches ``(x, y)`` drawn with their own generator; with ``hflip`` each
    image is mirrored left-right with probability 1/2 (faces: a label-preserving augmentation);
    with ``shift`` each is moved by up to ``shift`` pixels in each direction (edge pixels
    repeated; films lie a few pixels off centre)."""
    if shift < 0 or (shift and 2 * shift >= min(x.shape[-2:])):
        raise ValueError(f"shift must lie in [0, {min(x.shape[-2:]) // 2}), got {shift}")
    gen = torch.Generator().manual_seed(seed)
    while True:
        idx = torch.randint(len(x), (batch_size,), generator=gen)
        xb = x[idx]
        if hflip:
            flip = torch.rand(batch_size, generator=gen) < 0.5
            xb[flip] = xb[flip].flip(-1)
        if shift:
            xb = shifted(xb, torch.randint(-shift, shift + 1, (batch_size, 2), generator=gen))
        yield xb.to(device), y[idx].to(device)


def shifted(x: Tensor, offsets: Tensor) -> Tensor:
    """Each image of ``x`` ``(B, C, H, W)`` moved by its ``offsets[b] = (rows, columns)`` pixels
    (positive: down, right), the border pixels repeated into the space it leaves."""
    s = int(offsets.abs().max())
    if s == 0:
        return x.clone()
    h, w = x.shape[-2:]
    padded = nn.functional.pad(x, (s, s, s, s), mode="replicate")
    return torch.stack([padded[b, :, s - dr : s - dr + h, s - dc : s - dc + w]
                        for b, (dr, dc) in enumerate(offsets.tolist())])


def train_image_flow(flow: nn.Module, device: torch.device, stage: Stage, x: Tensor, x_test: Tensor,
                     steps: int, batch_size: int, lr: float, clip_grad: float, seed: int,
                     desc: str, hflip: bool = False, warmup_steps: int = 0) -> dict[str, float]:
    """Maximum likelihood on dequantised discrete images (``bits_per_dim`` of the flow: 8-bit
    ``k/255``, or ``k/2**n_bits`` for a flow with ``n_bits < 8``, see
    :class:`~diffcf.models.multiscale.MultiscaleFlow`), then test bits/dim and the largest
    round-trip error ``max |g(g⁻¹(x)) − x|`` on ``x_test``. ``hflip``: mirror half the training
    images of each batch.

    A fresh flow first runs actnorm's data-dependent initialisation on 1024 training images and, with
    ``warmup_steps``, raises the learning rate linearly over its first steps: Adam's first steps
    move every weight by about ``lr`` at once, which deep flows with many channels amplify through
    their chain of couplings (the 24-step CelebA Glow, at batch 16, jumps from 3.6 to 7.2 bits/dim at
    its second step without it, and descends smoothly with a 100-step warm-up).
    """
    from diffcf.models.multiscale import bits_per_dim_loss

    for images in (x, x_test):  # the loss does not check the levels per step: check them once here
        flow.levels(images)
    stream = ((xb,) for xb, _ in image_batches(x, torch.zeros(len(x)), per_rank(batch_size),
                                                stream_seed(seed, stage), device, hflip=hflip))
    if stage.start_step == 0:
        stage.warmup_steps = max(stage.warmup_steps, warmup_steps)
        flow.train()
        with torch.no_grad():
            init = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:1024]]
            flow.log_prob(init.to(device))
    fit(flow, stream, bits_per_dim_loss, steps=steps, lr=lr, clip_grad=clip_grad, desc=desc, stage=stage)
    if rank() != 0:
        return {}
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # the other ranks are done: evaluate on every core
    gen = torch.Generator().manual_seed(seed + 1000)
    bpd, err = [], []
    # full float32 on a GPU too: cuDNN's default TF32 convolutions keep 10 mantissa bits (~1e-3
    # relative), too coarse for a round-trip check at 1e-4
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        for xb in x_test.split(500):
            xb = xb.to(device)
            bpd.append(flow.bits_per_dim(xb, generator=gen).cpu())
            err.append(reconstruction_error(flow, xb).cpu())
    torch.set_num_threads(threads)  # what the caller set, for what it does next (a benchmark's next run)
    return {
        "test_bits_per_dim": round(torch.cat(bpd).mean().item(), 4),
        "test_roundtrip_max_abs_error": float(f"{torch.cat(err).max().item():.3g}"),
    }


def glow_spec(name: str, train: Callable[..., dict[str, float]], images: str, in_channels: int, size: int,
              n_bits: int, steps_per_scale: list[int], hidden: list[int], steps: int, seed: int,
              **recipe: Any) -> ModelSpec:
    """The Glow ``g`` of a dataset of notebooks 04-06: a :class:`MultiscaleFlow` of
    ``len(steps_per_scale)`` scales on ``in_channels×size×size`` images of ``n_bits`` bits, trained
    by ``train`` (which calls :func:`train_image_flow`) with the schedule these flows share: batch 64,
    Adam 1e-3 after a 500-step warm-up, gradient norm clipped at 50, ``steps`` in stages.
    ``recipe``: the dataset's own training parameters (``hflip``, ``crops_per_frame``)."""
    return ModelSpec(
        name=name,
        build=MultiscaleFlow,
        params={"in_channels": in_channels, "size": size, "steps_per_scale": list(steps_per_scale),
                "hidden": list(hidden), "alpha": 0.05, "n_bits": n_bits},
        train=train,
        train_params={**recipe, "steps": steps, "batch_size": 64, "lr": 1e-3, "warmup_steps": 500,
                      "clip_grad": 50.0, "seed": seed},
        description=f"{len(steps_per_scale)}-scale Glow (affine couplings, learned split priors, all latents "
                    f"kept) on {n_bits}-bit {in_channels}×{size}×{size} {images}, trained in stages "
                    f"({steps} steps planned): the generator g",
    )


# ---- binary image classifiers and their linear SVM oracles --------------------------------------

LabelledImages = Callable[[str], tuple[Tensor, Tensor]]  # split ("train"/"test") -> (x, y), y in {0, 1}


def class_weights(labels: Tensor, n_classes: int, balance: float) -> Tensor:
    """Loss weights per class ``∝ frequency^−balance``, scaled so that the mean weight over the
    training labels is 1 (``balance = 0``: all 1; ``1``: every class weighs as much in total)."""
    freq = torch.bincount(labels, minlength=n_classes).float().clamp(min=1) / len(labels)
    weights = freq.pow(-balance)
    return weights / (weights * freq).sum()


def binary_metrics(scores: Tensor, labels: Tensor) -> dict[str, float]:
    """Accuracy, balanced accuracy and ROC AUC of two-class ``scores`` ``(N, 2)`` (logits, or an
    SVM's two scores; class 1 where its score is the larger) against 0/1 ``labels``."""
    from sklearn.metrics import roc_auc_score

    predicted = scores.argmax(1)
    margin = (scores[:, 1] - scores[:, 0]).double().numpy()
    return {"test_accuracy": round((predicted == labels).float().mean().item(), 4),
            "test_balanced_accuracy": round(balanced_accuracy(predicted, labels), 4),
            "test_auc": round(float(roc_auc_score(labels.numpy(), margin)), 4)}


@torch.no_grad()
def _scores(model: nn.Module, x: Tensor, device: torch.device, batch_size: int = 256) -> Tensor:
    return torch.cat([model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


def train_binary_classifier(f: nn.Module, device: torch.device, stage: Stage, data: LabelledImages,
                            steps: int, batch_size: int, lr: float, weight_decay: float, balance: float,
                            hflip: bool, seed: int, desc: str, shift: int = 0) -> dict[str, float]:
    """Two-class classifier (class 1 = present) trained with class-weighted cross-entropy
    (:func:`class_weights`) and Adam on batches augmented by ``hflip`` and ``shift``
    (:func:`image_batches`); test accuracy, balanced accuracy and AUC (:func:`binary_metrics`)."""
    x, y = data("train")
    weight = class_weights(y, 2, balance).to(device)

    def loss(model: nn.Module, xb: Tensor, yb: Tensor) -> Tensor:
        return nn.functional.cross_entropy(model(xb), yb, weight=weight)

    fit(f, image_batches(x, y, per_rank(batch_size), stream_seed(seed, stage), device, hflip=hflip,
                         shift=shift),
        loss, steps=steps, lr=lr, weight_decay=weight_decay, desc=desc, stage=stage)
    x_test, y_test = data("test")
    return binary_metrics(_scores(f.eval(), x_test, device), y_test)


def train_linear_svm(svm: nn.Module, data: LabelledImages, C: float, class_weight: str | None,
                     seed: int) -> dict[str, Any]:
    """Linear SVM on pixels (scikit-learn ``LinearSVC``, primal) copied into ``svm``
    (:class:`~diffcf.models.oracles.LinearSVMOracle`); test metrics (:func:`binary_metrics`) and
    training accuracy."""
    from sklearn.svm import LinearSVC

    x, y = data("train")
    clf = LinearSVC(C=C, dual=False, class_weight=class_weight, random_state=seed)
    clf.fit(x.flatten(1).numpy(), y.numpy())
    svm.set_from_sklearn(clf)
    x_test, y_test = data("test")
    svm = svm.cpu()
    return {**binary_metrics(_scores(svm, x_test, torch.device("cpu")), y_test),
            "train_accuracy": round((predict(svm, x) == y).float().mean().item(), 4)}
