import dataclasses
import math

import pytest
import torch

from diffcf import stages, zoo
from diffcf.models.realnvp import RealNVP


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_flow(dim: int = 3, n_couplings: int = 6, hidden: int = 32, dtype=torch.float32):
    """A RealNVP whose couplings are not the identity (the zero init is perturbed)."""
    flow = RealNVP(dim, n_couplings, hidden)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return zoo.frozen(flow.to(dtype))


def closed_form_bits_per_dim(x: torch.Tensor, n_bits: int, alpha: float, noise_seed: int):
    """Bits/dim of images ``x`` (``k / (2**n_bits − 1)`` for 8 bits, ``k / 2**n_bits`` below) under
    a flow that is orthogonal after its logit ``y = logit(alpha + (1 − 2 alpha) x_deq)``, as a
    freshly built MultiscaleFlow is: its density is then the standard normal of ``y`` times the
    logit's Jacobian. The dequantisation noise is drawn as the flow draws it (``torch.rand`` of
    ``x``'s shape from ``noise_seed``). Returns ``(bits/dim, log q(x_deq), x_deq)``."""
    levels = 2**n_bits
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(noise_seed), dtype=x.dtype)
    x_deq = (torch.round(x * (levels - 1 if n_bits == 8 else levels)) + u) / levels
    p = alpha + (1 - 2 * alpha) * x_deq
    y = torch.log(p / (1 - p))
    log_q = (-0.5 * y**2 - 0.5 * math.log(2 * math.pi)
             + math.log(1 - 2 * alpha) - torch.log(p) - torch.log(1 - p)).flatten(1).sum(1)
    d = x[0].numel()
    return -(log_q - d * math.log(levels)) / (d * math.log(2)), log_q, x_deq


def tiny_zoo(monkeypatch, tmp_path, params: dict[str, dict], train_params: dict[str, dict]) -> None:
    """Checkpoints and build/ in ``tmp_path``, no progress bars, and the registered models ``params``
    names rebuilt with those (tiny) params and their train_params updated by ``train_params[name]``."""
    monkeypatch.setenv("DIFFCF_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.setenv("DIFFCF_ROOT", str(tmp_path))
    monkeypatch.setenv("DIFFCF_PROGRESS", "0")
    for name, tiny in params.items():
        spec = zoo.REGISTRY[name]
        monkeypatch.setitem(zoo.REGISTRY, name, dataclasses.replace(
            spec, params=tiny, train_params={**spec.train_params, **train_params[name]}))



def check_gan_stage_resumes(name: str, gan_class: type) -> dict:
    """Train the (tiny) GAN ``name`` one step of three, resume for a second: both Adam states are
    saved with their moments and restored; returns the saved state for further checks."""
    _, _, first = stages.train(name, "cpu", stages.StagePlan(steps=1), steps=3)
    state = torch.load(stages.state_path(name), weights_only=True)
    assert first.step == 1 and state["step"] == 1
    assert set(state["optimizer"]) == {"generator", "discriminator"}
    assert all(s["state"] for s in state["optimizer"].values())  # Adam moments were saved
    gan, _, second = stages.train(name, "cpu", stages.StagePlan(resume=True, steps=1), steps=3)
    assert second.start_step == 1 and second.step == 2 and second.warmup_steps == 0
    assert set(second.optimizer_state) == {"generator", "discriminator"}
    assert isinstance(gan, gan_class) and not gan.training
    return state

@pytest.fixture
def helix_models():
    return zoo.frozen(zoo.load("helix_flow")), zoo.frozen(zoo.load("helix_classifier"))


# ---- the image datasets' tests (their helpers: image_fixtures.py) --------------------------------

@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Data root and cache in tmp_path: the real data and build/cache are never touched."""
    monkeypatch.setenv("DIFFCF_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DIFFCF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DIFFCF_PROGRESS", "0")
    return tmp_path
