"""Recipes of the MNIST models (notebooks 02, 03, 09, 10): flow, CNN classifier, SVM oracle, class
autoencoders for IM1."""

from __future__ import annotations

import torch
from torch import nn

from diffcf.data.mnist import load_dataset
from diffcf.models.classifiers import MNISTClassifier
from diffcf.models.multiscale import MultiscaleFlow
from diffcf.models.oracles import ClassAutoencoders, LinearSVMOracle, RBFSVMOracle
from diffcf.recipes.common import image_batches, stream_seed, train_image_flow
from diffcf.training import Stage, accuracy, cross_entropy_loss, fit, per_rank
from diffcf.zoo import ModelSpec, register


def train_mnist_flow(flow: nn.Module, device: torch.device, stage: Stage, dataset: str, steps: int,
                     batch_size: int, lr: float, clip_grad: float, seed: int,
                     warmup_steps: int = 0) -> dict[str, float]:
    x, _ = load_dataset(dataset, "train")
    x_test, _ = load_dataset(dataset, "test")
    return train_image_flow(flow, device, stage, x, x_test, steps, batch_size, lr, clip_grad, seed,
                            desc=f"{dataset} flow", warmup_steps=warmup_steps)


def train_mnist_classifier(f: nn.Module, device: torch.device, stage: Stage, dataset: str, steps: int,
                           batch_size: int, lr: float, weight_decay: float, seed: int,
                           input_noise: float = 0.0) -> dict[str, float]:
    """With ``input_noise`` ``s > 0`` each training image gets Gaussian noise of a standard deviation
    drawn per image from ``U(0, s)``: a smoother classifier (``benchmarks/mnist_oracle_gap.py``)."""
    if not 0.0 <= input_noise < float("inf"):
        raise ValueError(f"input_noise must be a finite standard deviation >= 0, got {input_noise}")
    x, y = load_dataset(dataset, "train")
    loss = cross_entropy_loss
    if input_noise:
        draws = torch.Generator(device=device).manual_seed(stream_seed(seed, stage))

        def noisy_cross_entropy(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            sigma = input_noise * torch.rand(len(xb), 1, 1, 1, generator=draws, device=device)
            noise = sigma * torch.randn(xb.shape, generator=draws, device=device)
            return cross_entropy_loss(model, xb + noise, yb)

        loss = noisy_cross_entropy

    fit(f, image_batches(x, y, per_rank(batch_size), stream_seed(seed, stage), device), loss,
        steps=steps, lr=lr, weight_decay=weight_decay, desc=f"{dataset} classifier", stage=stage)
    x_test, y_test = load_dataset(dataset, "test")
    return {"test_accuracy": round(accuracy(f, x_test.to(device), y_test.to(device)), 4)}


def train_mnist_svm(svm: nn.Module, device: torch.device, stage: Stage, dataset: str, C: float,
                    seed: int) -> dict[str, float]:
    from sklearn.svm import LinearSVC

    x, y = load_dataset(dataset, "train")
    clf = LinearSVC(C=C, dual=False, random_state=seed).fit(x.flatten(1).numpy(), y.numpy())
    svm.set_from_sklearn(clf)
    x_test, y_test = load_dataset(dataset, "test")
    return {
        "test_accuracy": round(accuracy(svm.cpu(), x_test, y_test), 4),
        "train_accuracy": round(accuracy(svm.cpu(), x, y), 4),
    }


def train_mnist_svm_rbf(svm: nn.Module, device: torch.device, stage: Stage, dataset: str, n_train: int,
                        C: float, seed: int, gamma: float | str = "scale") -> dict[str, float]:
    from sklearn.svm import SVC

    x, y = load_dataset(dataset, "train")
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n_train]
    svc = SVC(kernel="rbf", gamma=gamma, C=C).fit(x[pick].flatten(1).numpy(), y[pick].numpy())
    svm.set_from_sklearn(svc)
    x_test, y_test = load_dataset(dataset, "test")
    return {"test_accuracy": round(accuracy(svm.cpu(), x_test, y_test), 4),
            "support_vectors": int(svm.support.shape[0])}


def train_mnist_autoencoders(aes: nn.Module, device: torch.device, stage: Stage, dataset: str,
                             steps: int, batch_size: int, lr: float, seed: int) -> dict[str, float]:
    x, y = load_dataset(dataset, "train")
    x_test, y_test = load_dataset(dataset, "test")
    mse_loss = lambda ae, xb, _: nn.functional.mse_loss(ae(xb), xb)
    metrics: dict[str, float] = {}
    for c in range(len(aes)):
        xc = x[y == c]
        fit(aes[c], image_batches(xc, y[y == c], batch_size, seed + c, device), mse_loss,
            steps=steps, lr=lr, desc=f"{dataset} autoencoder {c}")
        with torch.no_grad():
            xt = x_test[y_test == c].to(device)
            metrics[f"test_mse_{c}"] = round(nn.functional.mse_loss(aes[c](xt), xt).item(), 5)
    metrics["test_mse_mean"] = round(sum(metrics.values()) / len(aes), 5)
    return metrics


def mnist_flow_spec(name: str, steps_per_scale: list[int], hidden: list[int], steps: int,
                    description: str, batch_size: int = 64, warmup_steps: int = 0,
                    **flow_options) -> ModelSpec:
    """A two-scale Glow on MNIST (actnorm, 1x1 conv, affine coupling unless ``flow_options`` name
    another :class:`MultiscaleFlow` ``coupling``, learned split prior; all split latents kept),
    trained by dequantised maximum likelihood with Adam 1e-3 (batch 64 unless ``batch_size``; a
    linear learning-rate warm-up over ``warmup_steps``, if any)."""
    schedule = {"warmup_steps": warmup_steps} if warmup_steps else {}
    return ModelSpec(
        name=name,
        build=MultiscaleFlow,
        params={"in_channels": 1, "size": 28, "steps_per_scale": steps_per_scale, "hidden": hidden,
                "alpha": 0.05, **flow_options},
        train=train_mnist_flow,
        train_params={"dataset": "mnist", "steps": steps, "batch_size": batch_size, "lr": 1e-3,
                      "clip_grad": 50.0, "seed": 3, **schedule},
        description=description,
    )


register(mnist_flow_spec(
    "mnist_flow", [6, 8], [64, 96], 11000,
    "two-scale Glow, 6 + 8 steps, coupling widths 64 / 96, on MNIST: the flow notebooks 02 and 03 use"))
register(mnist_flow_spec(
    "mnist_flow_wide", [8, 8], [128, 128], 40000,
    "the stronger MNIST flow of issue 16, chosen by benchmarks/flow_architectures.py: two-scale "
    "Glow, 8 + 8 steps, coupling width 128, trained in seven stages to 40 000 steps (1.18 bits/dim); "
    "the notebooks keep mnist_flow: its counterfactuals are judged no better (notebook 03)"))
register(mnist_flow_spec(
    "mnist_flow_checkerboard", [8, 8], [128, 128], 40000,
    "RealNVP's flow class for issue 16 (the paper's code trains a multi-scale RealNVP): as "
    "mnist_flow_wide, with spatial checkerboard couplings; trained in stages (40 000 steps planned)",
    coupling="checkerboard"))
register(mnist_flow_spec(
    "mnist_flow_large", [16, 16], [384, 384], 9000,
    "issue 16's GPU-sized MNIST flow: two-scale Glow, 16 + 16 steps, coupling width 384, batch 256 "
    "with a 500-step warm-up; about 12 times the arithmetic of mnist_flow_wide per image, sized "
    "for one short stage on a GPU",
    batch_size=256, warmup_steps=500))
register(ModelSpec(
    name="mnist_classifier",
    build=MNISTClassifier,
    params={"n_classes": 10, "dropout": 0.1},
    train=train_mnist_classifier,
    train_params={"dataset": "mnist", "steps": 3000, "batch_size": 128, "lr": 1e-3,
                  "weight_decay": 0.0, "seed": 4},
    description="CNN of the paper's code (conv 16-32 / 64-64 with batch norm, dropout, "
                "linear 3136-512-256-10), the MNIST classifier f",
))
register(ModelSpec(
    name="mnist_svm",
    build=LinearSVMOracle,
    params={"in_dim": 784, "n_classes": 10},
    train=train_mnist_svm,
    train_params={"dataset": "mnist", "C": 0.05, "seed": 5},
    description="linear SVM on pixels (scikit-learn LinearSVC, one-vs-rest), the MNIST oracle",
))
register(ModelSpec(
    name="mnist_svm_rbf",
    build=RBFSVMOracle,
    params={"in_dim": 784, "n_classes": 10},
    train=train_mnist_svm_rbf,
    train_params={"dataset": "mnist", "n_train": 10000, "C": 1.0, "seed": 7},
    description="kernel SVM on pixels (scikit-learn SVC, RBF kernel, gamma 'scale'), fitted on 10 000 "
                "random training images: a second, non-linear MNIST oracle beside the paper's linear one",
))
register(ModelSpec(
    name="mnist_autoencoders",
    build=ClassAutoencoders,
    params={"n_classes": 10, "channels": 16, "latent": 32},
    train=train_mnist_autoencoders,
    train_params={"dataset": "mnist", "steps": 800, "batch_size": 64, "lr": 2e-3, "seed": 6},
    description="ten conv autoencoders, autoencoder c trained only on class c (for IM1)",
))
