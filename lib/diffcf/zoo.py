"""Named models: train once, then load verified checkpoints (``data/checkpoints`` + ``manifest.json``).

Every model has a name, a builder with its parameters and a training recipe. ``load_or_train(name)``
loads ``<name>.pt`` after checking its sha256 against the manifest (``torch.load(weights_only=True)``),
or trains it with the recipe when asked (``retrain=True``) or when no checkpoint exists. The manifest
records, per model: file, sha256, bytes, the command and parameters that made it, training time,
device and key metrics. Files are written atomically.

Command line::

    python -m diffcf.zoo list
    python -m diffcf.zoo train helix_flow helix_classifier   # or: make checkpoints
    python -m diffcf.zoo verify
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diffcf.generative import reconstruction_error
from diffcf.utils import (
    atomic_write,
    file_digest,
    get_device,
    project_root,
    seed_everything,
    write_json,
)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unknown, or does not match its manifest entry."""


@dataclass
class ModelSpec:
    """A named model: ``build(**params)`` makes it, ``train(model, device, **train_params)`` trains it
    in place and returns its key metrics."""

    name: str
    build: Callable[..., nn.Module]
    params: dict[str, Any]
    train: Callable[..., dict[str, float]]
    train_params: dict[str, Any] = field(default_factory=dict)
    description: str = ""


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    REGISTRY[spec.name] = spec
    return spec


def checkpoint_dir() -> Path:
    """``$DIFFCF_CHECKPOINTS`` or ``<root>/data/checkpoints``."""
    return Path(os.environ.get("DIFFCF_CHECKPOINTS", project_root() / "data" / "checkpoints"))


def _manifest_path() -> Path:
    return checkpoint_dir() / "manifest.json"


def read_manifest() -> dict[str, dict[str, Any]]:
    path = _manifest_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); restore it from git") from err


def sha256_file(path: Path) -> str:
    return file_digest(path, "sha256")


def _spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def load(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """Load the checkpoint of ``name`` after verifying its sha256 against the manifest."""
    spec = _spec(name)
    entry = read_manifest().get(name)
    path = checkpoint_dir() / f"{name}.pt"
    if entry is None or not path.exists():
        raise CheckpointError(
            f"no checkpoint for {name!r} in {checkpoint_dir()}: run `make checkpoints` "
            f"or load_or_train({name!r}, retrain=True)"
        )
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupted or was changed: sha256 {digest[:12]}… does not match "
            f"the manifest's {entry['sha256'][:12]}…. Restore it (git checkout -- {path.name}) "
            f"or retrain it with load_or_train({name!r}, retrain=True)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = spec.build(**entry.get("params", spec.params))
    model.load_state_dict(state)
    model.eval()
    return model.to(device)


def train(name: str, device: str | torch.device = "auto", **overrides: Any
          ) -> tuple[nn.Module, dict[str, float], float]:
    """Train ``name`` with its recipe; ``overrides`` replace recipe parameters (e.g. ``steps``).

    Returns the model (eval mode), its test metrics and the training time in seconds; writes nothing.
    """
    spec = _spec(name)
    unknown = set(overrides) - set(spec.train_params)
    if unknown:
        raise ValueError(f"{name!r} has no training parameters {sorted(unknown)}; "
                         f"its recipe takes {sorted(spec.train_params)}")
    train_params = {**spec.train_params, **overrides}
    dev = get_device(device) if isinstance(device, str) else device
    seed_everything(train_params.get("seed", 0))
    model = spec.build(**spec.params).to(dev)
    start = time.perf_counter()
    metrics = spec.train(model, dev, **train_params)
    seconds = time.perf_counter() - start
    return model.eval(), metrics, seconds


def train_and_save(name: str, device: str | torch.device = "auto") -> nn.Module:
    """Train ``name`` with its recipe, write ``<name>.pt`` atomically and update the manifest."""
    spec = _spec(name)
    dev = get_device(device) if isinstance(device, str) else device
    model, metrics, seconds = train(name, dev)
    path = checkpoint_dir() / f"{name}.pt"
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda p: torch.save(state, p))
    manifest = read_manifest()
    manifest[name] = {
        "file": path.name,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "description": spec.description,
        "command": f"python -m diffcf.zoo train {name}",
        "params": spec.params,
        "train_params": spec.train_params,
        "train_seconds": round(seconds, 1),
        "device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "metrics": metrics,
    }
    write_json(_manifest_path(), manifest)
    return model


def load_or_train(
    name: str, retrain: bool = False, device: str | torch.device = "cpu", verbose: bool = True
) -> nn.Module:
    """Load ``name`` from its verified checkpoint, or train it (``retrain=True`` or none shipped).

    A checkpoint whose hash does not match is never silently retrained: that raises
    :class:`CheckpointError`, so a corrupted file is noticed.
    """
    path = checkpoint_dir() / f"{name}.pt"
    if not retrain and path.exists():
        if verbose:
            print(f"Found pretrained model {name!r}, loading (sha256 verified).")
        return load(name, device)
    if verbose:
        print(f"Training {name!r} with its recipe (this is what `make checkpoints` runs)…")
    model = train_and_save(name, device=device)
    return model.to(device)


def manifest_entry(name: str) -> dict[str, Any]:
    """The manifest entry of ``name`` (metrics, training time, device, …)."""
    _spec(name)
    entry = read_manifest().get(name)
    if entry is None:
        raise CheckpointError(f"{name!r} has no manifest entry yet: train it first")
    return entry


def frozen(model: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients: models are fixed during a counterfactual search."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# --------------------------------------------------------------------------------------------
# Recipes of the named models
# --------------------------------------------------------------------------------------------


def _train_helix_flow(flow: nn.Module, device: torch.device, steps: int, batch_size: int,
                      lr: float, seed: int) -> dict[str, float]:
    from diffcf.data.helix import distance_to_helix, sample_helix
    from diffcf.training import fit, nll_loss

    gen = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            yield (sample_helix(batch_size, gen)[0].to(device),)

    fit(flow, batches(), nll_loss, steps=steps, lr=lr, desc="helix flow")
    x_test, _ = sample_helix(10_000, torch.Generator().manual_seed(seed + 1000))
    with torch.no_grad():
        nll = -flow.log_prob(x_test.to(device)).mean().item()
        samples = flow.sample(10_000, torch.Generator().manual_seed(seed + 2000)).cpu()
    return {
        "test_nll": round(nll, 4),
        "sample_distance_median": round(distance_to_helix(samples).median().item(), 5),
    }


def _train_helix_classifier(f: nn.Module, device: torch.device, steps: int, batch_size: int,
                            lr: float, weight_decay: float, seed: int) -> dict[str, float]:
    from diffcf.data.helix import helix_labels, sample_helix
    from diffcf.training import accuracy, cross_entropy_loss, fit

    gen = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            x, _ = sample_helix(batch_size, gen)
            yield x.to(device), helix_labels(x).to(device)

    fit(f, batches(), cross_entropy_loss, steps=steps, lr=lr, weight_decay=weight_decay,
        desc="helix classifier")
    x_test, _ = sample_helix(10_000, torch.Generator().manual_seed(seed + 1000))
    return {"test_accuracy": round(accuracy(f, x_test.to(device), helix_labels(x_test).to(device)), 4)}


def _image_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                   device: torch.device):
    """Endless random mini-batches ``(x, y)`` drawn with their own generator."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        idx = torch.randint(len(x), (batch_size,), generator=gen)
        yield x[idx].to(device), y[idx].to(device)


def _train_mnist_flow(flow: nn.Module, device: torch.device, dataset: str, steps: int,
                      batch_size: int, lr: float, clip_grad: float, seed: int) -> dict[str, float]:
    from diffcf.data.mnist import load_dataset
    from diffcf.models.multiscale import bits_per_dim_loss
    from diffcf.training import fit

    x, _ = load_dataset(dataset, "train")
    batches = ((xb,) for xb, _ in _image_batches(x, torch.zeros(len(x)), batch_size, seed, device))
    flow.train()
    with torch.no_grad():  # actnorm's data-dependent initialisation on a large first batch
        init = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:1024]]
        flow.log_prob(init.to(device))
    fit(flow, batches, bits_per_dim_loss, steps=steps, lr=lr, clip_grad=clip_grad,
        desc=f"{dataset} flow")
    x_test, _ = load_dataset(dataset, "test")
    gen = torch.Generator().manual_seed(seed + 1000)
    bpd, err = [], []
    with torch.no_grad():
        for xb in x_test.split(500):
            xb = xb.to(device)
            bpd.append(flow.bits_per_dim(xb, generator=gen).cpu())
            err.append(reconstruction_error(flow, xb).cpu())
    return {
        "test_bits_per_dim": round(torch.cat(bpd).mean().item(), 4),
        "test_roundtrip_max_abs_error": float(f"{torch.cat(err).max().item():.3g}"),
    }


def _train_mnist_classifier(f: nn.Module, device: torch.device, dataset: str, steps: int,
                            batch_size: int, lr: float, weight_decay: float,
                            seed: int) -> dict[str, float]:
    from diffcf.data.mnist import load_dataset
    from diffcf.training import accuracy, cross_entropy_loss, fit

    x, y = load_dataset(dataset, "train")
    fit(f, _image_batches(x, y, batch_size, seed, device), cross_entropy_loss, steps=steps, lr=lr,
        weight_decay=weight_decay, desc=f"{dataset} classifier")
    x_test, y_test = load_dataset(dataset, "test")
    return {"test_accuracy": round(accuracy(f, x_test.to(device), y_test.to(device)), 4)}


def _train_mnist_svm(svm: nn.Module, device: torch.device, dataset: str, C: float,
                     seed: int) -> dict[str, float]:
    from sklearn.svm import LinearSVC

    from diffcf.data.mnist import load_dataset
    from diffcf.training import accuracy

    x, y = load_dataset(dataset, "train")
    clf = LinearSVC(C=C, dual=False, random_state=seed).fit(x.flatten(1).numpy(), y.numpy())
    svm.set_from_sklearn(clf)
    x_test, y_test = load_dataset(dataset, "test")
    return {
        "test_accuracy": round(accuracy(svm.cpu(), x_test, y_test), 4),
        "train_accuracy": round(accuracy(svm.cpu(), x, y), 4),
    }


def _train_mnist_autoencoders(aes: nn.Module, device: torch.device, dataset: str, steps: int,
                              batch_size: int, lr: float, seed: int) -> dict[str, float]:
    from diffcf.data.mnist import load_dataset
    from diffcf.training import fit

    x, y = load_dataset(dataset, "train")
    x_test, y_test = load_dataset(dataset, "test")
    mse_loss = lambda ae, xb, _: nn.functional.mse_loss(ae(xb), xb)
    metrics: dict[str, float] = {}
    for c in range(len(aes)):
        xc = x[y == c]
        fit(aes[c], _image_batches(xc, y[y == c], batch_size, seed + c, device), mse_loss,
            steps=steps, lr=lr, desc=f"{dataset} autoencoder {c}")
        with torch.no_grad():
            xt = x_test[y_test == c].to(device)
            metrics[f"test_mse_{c}"] = round(nn.functional.mse_loss(aes[c](xt), xt).item(), 5)
    metrics["test_mse_mean"] = round(sum(metrics.values()) / len(aes), 5)
    return metrics


def _train_shapes_flow(flow: nn.Module, device: torch.device, steps: int, batch_size: int, lr: float,
                       clip_grad: float, seed: int) -> dict[str, float]:
    from diffcf.data.shapes import load_shapes
    from diffcf.models.multiscale import bits_per_dim_loss
    from diffcf.training import fit

    x, y = load_shapes("flow", seed=seed)
    batches = ((xb,) for xb, _ in _image_batches(x, y, batch_size, seed, device))
    flow.train()
    with torch.no_grad():  # actnorm's data-dependent initialisation
        flow.log_prob(x[:1024].to(device))
    fit(flow, batches, bits_per_dim_loss, steps=steps, lr=lr, clip_grad=clip_grad, desc="shapes flow")
    x_test, _ = load_shapes("flow", n=2000, seed=seed + 1)
    with torch.no_grad():
        x_test = x_test.to(device)
        bpd = flow.bits_per_dim(x_test, generator=torch.Generator().manual_seed(seed)).mean().item()
        err = reconstruction_error(flow, x_test).max().item()
    return {"test_bits_per_dim": round(bpd, 4), "test_roundtrip_max_abs_error": float(f"{err:.3g}")}


def _train_shapes_classifier(f: nn.Module, device: torch.device, steps: int, batch_size: int,
                             lr: float, seed: int) -> dict[str, float]:
    from diffcf.data.shapes import load_shapes
    from diffcf.training import accuracy, cross_entropy_loss, fit

    x, y = load_shapes("train")
    fit(f, _image_batches(x, y, batch_size, seed, device), cross_entropy_loss, steps=steps, lr=lr,
        desc="shapes classifier")
    metrics = {}
    for split in ("test", "deconfounded"):
        xs, ys = load_shapes(split)
        metrics[f"{split}_accuracy"] = round(accuracy(f, xs.to(device), ys.to(device)), 4)
    return metrics

def _register_defaults() -> None:
    from diffcf.models.classifiers import (
        ClassAutoencoders,
        LinearSVMOracle,
        MLPClassifier,
        MNISTClassifier,
        SmallCNN,
    )
    from diffcf.models.multiscale import MultiscaleFlow
    from diffcf.models.realnvp import RealNVP

    register(ModelSpec(
        name="helix_flow",
        build=RealNVP,
        params={"dim": 3, "n_couplings": 12, "hidden": 256},
        train=_train_helix_flow,
        train_params={"steps": 2000, "batch_size": 512, "lr": 1e-3, "seed": 1},
        description="RealNVP, 12 affine couplings on 3-d masks, trained by maximum likelihood on the helix",
    ))
    register(ModelSpec(
        name="helix_classifier",
        build=MLPClassifier,
        params={"in_dim": 3, "hidden": 256},
        train=_train_helix_classifier,
        # L2 weight decay keeps the logit monotone along the helix (no spurious local optima).
        train_params={"steps": 2000, "batch_size": 512, "lr": 1e-3, "weight_decay": 2e-3, "seed": 2},
        description="MLP 3-256-1 (sigmoid), upper vs lower half of the helix",
    ))

    register(ModelSpec(
        name="mnist_flow",
        build=MultiscaleFlow,
        params={"in_channels": 1, "size": 28, "steps_per_scale": [6, 8], "hidden": [64, 96],
                "alpha": 0.05},
        train=_train_mnist_flow,
        train_params={"dataset": "mnist", "steps": 11000, "batch_size": 64, "lr": 1e-3,
                      "clip_grad": 50.0, "seed": 3},
        description="two-scale Glow (actnorm, 1x1 conv, affine coupling, learned split prior; "
                    "all split latents kept) on MNIST, dequantised maximum likelihood",
    ))
    register(ModelSpec(
        name="mnist_classifier",
        build=MNISTClassifier,
        params={"n_classes": 10, "dropout": 0.1},
        train=_train_mnist_classifier,
        train_params={"dataset": "mnist", "steps": 3000, "batch_size": 128, "lr": 1e-3,
                      "weight_decay": 0.0, "seed": 4},
        description="CNN of the paper's code (conv 16-32 / 64-64 with batch norm, dropout, "
                    "linear 3136-512-256-10), the MNIST classifier f",
    ))
    register(ModelSpec(
        name="mnist_svm",
        build=LinearSVMOracle,
        params={"in_dim": 784, "n_classes": 10},
        train=_train_mnist_svm,
        train_params={"dataset": "mnist", "C": 0.05, "seed": 5},
        description="linear SVM on pixels (scikit-learn LinearSVC, one-vs-rest), the MNIST oracle",
    ))
    register(ModelSpec(
        name="mnist_autoencoders",
        build=ClassAutoencoders,
        params={"n_classes": 10, "channels": 16, "latent": 32},
        train=_train_mnist_autoencoders,
        train_params={"dataset": "mnist", "steps": 800, "batch_size": 64, "lr": 2e-3, "seed": 6},
        description="ten conv autoencoders, autoencoder c trained only on class c (for IM1)",
    ))

    register(ModelSpec(
        name="shapes_classifier",
        build=SmallCNN,
        params={"channels": 16, "hidden": 64, "n_classes": 2},
        train=_train_shapes_classifier,
        train_params={"steps": 600, "batch_size": 128, "lr": 1e-3, "seed": 7},
        description="CNN, square (0) vs circle (1), trained on the confounded shapes (every circle "
                    "twice the area of every square): learns the size shortcut",
    ))
    register(ModelSpec(
        name="shapes_flow",
        build=MultiscaleFlow,
        params={"in_channels": 1, "size": 28, "steps_per_scale": [4, 4], "hidden": 48,
                "alpha": 0.05},
        train=_train_shapes_flow,
        train_params={"steps": 5000, "batch_size": 64, "lr": 1e-3, "clip_grad": 50.0, "seed": 8},
        description="two-scale Glow on circles and squares of independent, uniform sizes "
                    "(knows small circles and large squares)",
    ))


_register_defaults()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffcf.zoo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the named models and their manifest metrics")
    p_train = sub.add_parser("train", help="train models and write their checkpoints")
    p_train.add_argument("names", nargs="*", help="models to train (default: all)")
    p_train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sub.add_parser("verify", help="check every checkpoint's sha256 against the manifest")
    args = parser.parse_args(argv)
    manifest = read_manifest()
    if args.cmd == "list":
        for name, spec in sorted(REGISTRY.items()):
            metrics = manifest.get(name, {}).get("metrics", "not trained")
            print(f"{name:24s} {spec.description}\n{'':24s} {metrics}")
        return 0
    if args.cmd == "train":
        for name in args.names or sorted(REGISTRY):
            train_and_save(name, device=args.device)
            print(f"{name}: {read_manifest()[name]['metrics']}")
        return 0
    bad = 0
    for name in sorted(REGISTRY):
        try:
            load(name)
            print(f"ok      {name}")
        except CheckpointError as err:
            bad += 1
            print(f"FAILED  {name}: {err}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
