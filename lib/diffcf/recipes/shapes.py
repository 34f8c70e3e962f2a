"""Recipes of the circles-vs-squares shortcut set (notebooks 09, 10): classifier and flow."""

from __future__ import annotations

import torch
from torch import nn

from diffcf.data.shapes import load_shapes
from diffcf.models.classifiers import SmallCNN
from diffcf.models.multiscale import MultiscaleFlow
from diffcf.recipes.common import image_batches, stream_seed, train_image_flow
from diffcf.training import Stage, accuracy, cross_entropy_loss, fit, per_rank
from diffcf.zoo import ModelSpec, register


def train_shapes_flow(flow: nn.Module, device: torch.device, stage: Stage, steps: int, batch_size: int,
                      lr: float, clip_grad: float, seed: int) -> dict[str, float]:
    x, _ = load_shapes("flow", seed=seed)
    x_test, _ = load_shapes("flow", n=2000, seed=seed + 1)
    return train_image_flow(flow, device, stage, x, x_test, steps, batch_size, lr, clip_grad, seed,
                            desc="shapes flow")


def train_shapes_classifier(f: nn.Module, device: torch.device, stage: Stage, steps: int,
                            batch_size: int, lr: float, seed: int) -> dict[str, float]:
    x, y = load_shapes("train")
    fit(f, image_batches(x, y, per_rank(batch_size), stream_seed(seed, stage), device), cross_entropy_loss,
        steps=steps, lr=lr, desc="shapes classifier", stage=stage)
    metrics = {}
    for split in ("test", "deconfounded"):
        xs, ys = load_shapes(split)
        metrics[f"{split}_accuracy"] = round(accuracy(f, xs.to(device), ys.to(device)), 4)
    return metrics


register(ModelSpec(
    name="shapes_classifier",
    build=SmallCNN,
    params={"channels": 16, "hidden": 64, "n_classes": 2},
    train=train_shapes_classifier,
    train_params={"steps": 600, "batch_size": 128, "lr": 1e-3, "seed": 7},
    description="CNN, square (0) vs circle (1), trained on the confounded shapes (every circle "
                "twice the area of every square): learns the size shortcut",
))
register(ModelSpec(
    name="shapes_flow",
    build=MultiscaleFlow,
    params={"in_channels": 1, "size": 28, "steps_per_scale": [4, 4], "hidden": 48, "alpha": 0.05},
    train=train_shapes_flow,
    train_params={"steps": 5000, "batch_size": 64, "lr": 1e-3, "clip_grad": 50.0, "seed": 8},
    description="two-scale Glow on circles and squares of independent, uniform sizes "
                "(knows small circles and large squares)",
))
