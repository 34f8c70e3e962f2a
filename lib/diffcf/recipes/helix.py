"""Recipes of the toy helix (notebooks 01, 02): the RealNVP flow and the MLP classifier."""

from __future__ import annotations

import torch
from torch import nn

from diffcf.data.helix import distance_to_helix, helix_labels, sample_helix
from diffcf.models.classifiers import MLPClassifier
from diffcf.models.realnvp import RealNVP
from diffcf.training import Stage, accuracy, cross_entropy_loss, fit, nll_loss
from diffcf.zoo import ModelSpec, register


def train_helix_flow(flow: nn.Module, device: torch.device, stage: Stage, steps: int, batch_size: int,
                     lr: float, seed: int) -> dict[str, float]:
    gen = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            yield (sample_helix(batch_size, gen)[0].to(device),)

    fit(flow, batches(), nll_loss, steps=steps, lr=lr, desc="helix flow", stage=stage)
    x_test, _ = sample_helix(10_000, torch.Generator().manual_seed(seed + 1000))
    with torch.no_grad():
        nll = -flow.log_prob(x_test.to(device)).mean().item()
        samples = flow.sample(10_000, torch.Generator().manual_seed(seed + 2000)).cpu()
    return {
        "test_nll": round(nll, 4),
        "sample_distance_median": round(distance_to_helix(samples).median().item(), 5),
    }


def train_helix_classifier(f: nn.Module, device: torch.device, stage: Stage, steps: int,
                           batch_size: int, lr: float, weight_decay: float, seed: int) -> dict[str, float]:
    gen = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            x, _ = sample_helix(batch_size, gen)
            yield x.to(device), helix_labels(x).to(device)

    fit(f, batches(), cross_entropy_loss, steps=steps, lr=lr, weight_decay=weight_decay,
        desc="helix classifier", stage=stage)
    x_test, _ = sample_helix(10_000, torch.Generator().manual_seed(seed + 1000))
    return {"test_accuracy": round(accuracy(f, x_test.to(device), helix_labels(x_test).to(device)), 4)}


register(ModelSpec(
    name="helix_flow",
    build=RealNVP,
    params={"dim": 3, "n_couplings": 12, "hidden": 256},
    train=train_helix_flow,
    train_params={"steps": 2000, "batch_size": 512, "lr": 1e-3, "seed": 1},
    description="RealNVP, 12 affine couplings on 3-d masks, trained by maximum likelihood on the helix",
))
register(ModelSpec(
    name="helix_classifier",
    build=MLPClassifier,
    params={"in_dim": 3, "hidden": 256},
    train=train_helix_classifier,
    # L2 weight decay keeps the logit monotone along the helix (no spurious local optima).
    train_params={"steps": 2000, "batch_size": 512, "lr": 1e-3, "weight_decay": 2e-3, "seed": 2},
    description="MLP 3-256-1 (sigmoid), upper vs lower half of the helix",
))
