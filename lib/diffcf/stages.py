"""Training a named model in stages (:mod:`diffcf.zoo` keeps the registry, manifest and CLI).

A :class:`StagePlan` says what one sitting does: start afresh or resume, and stop after some minutes
or steps. :func:`train` runs the recipe through :func:`diffcf.training.fit` from the furthest saved
point (the resumable state in ``build/train/<name>.state.pt``: weights, Adam's state, step; or, on a
machine without it, the committed checkpoint with a fresh Adam and a warm-up), and
:func:`train_and_save` writes the checkpoint and a manifest entry that lists every stage.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diffcf import zoo
from diffcf.training import Stage, rank
from diffcf.utils import atomic_write, get_device, project_root, seed_everything

WARMUP_AFTER_LOST_OPTIMIZER = 200  # steps of learning-rate warm-up when Adam restarts mid-schedule


def state_path(name: str) -> Path:
    """Where a staged model's resumable state (weights, Adam, step) lives: ``build/train/``."""
    return project_root() / "build" / "train" / f"{name}.state.pt"


@dataclass
class _Start:
    """Where a stage starts: a model, the step reached and (if kept) Adam's state."""

    model: nn.Module
    step: int = 0
    optimizer_state: dict[str, Any] | None = None


def _resume_point(name: str, dev: torch.device) -> _Start:
    """The furthest saved point of ``name``: its resumable state or its committed checkpoint."""
    spec = zoo._spec(name)
    entry = zoo.read_manifest().get(name, {})
    done = entry.get("steps_done", 0)
    path = state_path(name)
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["params"] == spec.params and state["step"] >= done:
            model = spec.build(**spec.params)
            model.load_state_dict(state["model"])
            return _Start(model.to(dev), state["step"], state["optimizer"])
    if not done:
        raise zoo.CheckpointError(f"nothing to resume for {name!r}: no state in {path} and no "
                                  f"trained stage in the manifest; train it without --resume first")
    return _Start(zoo.load(name, dev), done)


@dataclass(frozen=True)
class StagePlan:
    """What one training sitting does: start afresh or ``resume``, and stop after ``minutes`` or
    ``steps`` (``None``: run the recipe's schedule to its end)."""

    resume: bool = False
    minutes: float | None = None
    steps: int | None = None

    @property
    def bounded(self) -> bool:
        return self.minutes is not None or self.steps is not None


def train(name: str, device: str | torch.device = "auto", plan: StagePlan = StagePlan(),
          **overrides: Any) -> tuple[nn.Module, dict[str, float], Stage]:
    """Train ``name`` with its recipe; write nothing but the resumable state of a staged plan.

    ``overrides`` replace recipe parameters (e.g. ``steps``). Without ``plan.resume`` training
    starts from scratch; with it, from :func:`_resume_point`. ``plan.minutes`` / ``plan.steps`` end
    the stage early (the schedule continues with the next resume). Returns the model (eval mode),
    its test metrics and the :class:`~diffcf.training.Stage` (steps reached, seconds).
    """
    spec = zoo._spec(name)
    unknown = set(overrides) - set(spec.train_params)
    if unknown:
        raise ValueError(f"{name!r} has no training parameters {sorted(unknown)}; "
                         f"its recipe takes {sorted(spec.train_params)}")
    train_params = {**spec.train_params, **overrides}
    dev = get_device(device) if isinstance(device, str) else device
    seed_everything(train_params.get("seed", 0))
    start = _resume_point(name, dev) if plan.resume else _Start(spec.build(**spec.params).to(dev))
    stage = Stage(
        start_step=start.step,
        optimizer_state=start.optimizer_state,
        warmup_steps=WARMUP_AFTER_LOST_OPTIMIZER if start.step and start.optimizer_state is None else 0,
        max_steps=plan.steps,
        max_seconds=None if plan.minutes is None else 60.0 * plan.minutes,
        save=_state_saver(name) if plan.bounded or plan.resume else None,
    )
    started = time.perf_counter()
    metrics = spec.train(start.model, dev, stage=stage, **train_params)
    if not stage.seconds:  # a recipe whose loops take no stage (an SVM, per-class autoencoders) ran whole
        stage.step, stage.seconds = train_params.get("steps") or 0, time.perf_counter() - started
    return start.model.eval(), metrics, stage


def _state_saver(name: str) -> Callable[[nn.Module, dict[str, Any], int], None]:
    spec = zoo._spec(name)

    def save(model: nn.Module, optimizer_state: dict[str, Any], step: int) -> None:
        state = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                 "optimizer": optimizer_state, "step": step, "params": spec.params}
        atomic_write(state_path(name), lambda p: torch.save(state, p))

    return save


def _device_name(dev: torch.device) -> str:
    return str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev)


def train_and_save(name: str, device: str | torch.device = "auto", plan: StagePlan = StagePlan()
                   ) -> nn.Module:
    """Train ``name`` (one stage), then write ``<name>.pt`` and its manifest entry together.

    The manifest is read before training, so an unreadable manifest fails before any work.
    Under ``torchrun`` only rank 0 writes.
    """
    spec = zoo._spec(name)
    zoo.read_manifest()
    dev = get_device(device) if isinstance(device, str) else device
    model, metrics, stage = train(name, dev, plan)
    if rank() != 0:
        return model
    manifest = zoo.read_manifest()
    previous = manifest.get(name, {}).get("stages", []) if plan.resume else []
    world = int(os.environ.get("WORLD_SIZE", "1"))
    stages = [*previous, {
        "steps": [stage.start_step, stage.step],
        "minutes": round(stage.seconds / 60.0, 1),
        "device": _device_name(dev),
        "processes": world,
        "cpu_threads": stage.threads or torch.get_num_threads(),  # per process, while training
        "optimizer": ("fresh" if not stage.start_step else "restored" if stage.optimizer_state
                      else f"restarted, {stage.warmup_steps}-step warm-up"),
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "metrics": metrics,
    }]
    total = spec.train_params.get("steps")
    command = f"python -m diffcf.zoo train {name}"
    entry = {
        "file": f"{name}.pt",
        "description": spec.description,
        "command": command if len(stages) == 1 and not plan.bounded else
        f"{command} --minutes M, then `{command} --resume --minutes M` until steps_done = steps_total",
        "params": spec.params,
        "train_params": spec.train_params,
        "steps_done": stage.step,
        "steps_total": total,
        "stages": stages,
        "train_seconds": round(sum(s["minutes"] for s in stages) * 60.0, 1),
        "device": ", ".join(sorted({s["device"] for s in stages})),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "metrics": metrics,
    }
    if spec.needs:
        entry["trained_with"] = {other: manifest[other]["sha256"] for other in spec.needs}
    zoo._commit_checkpoint(name, model, entry)
    return model
