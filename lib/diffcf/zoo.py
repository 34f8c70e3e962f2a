"""Named models: train once, then load verified checkpoints (``data/checkpoints`` + ``manifest.json``).

Every model has a name, a builder with its parameters and a training recipe (the recipes live in
:mod:`diffcf.recipes`, one module per dataset). ``load_or_train(name)`` loads ``<name>.pt`` after
checking its sha256 against the manifest (``torch.load(weights_only=True)``), or trains it with the
recipe when asked (``retrain=True``) or when no checkpoint exists. The manifest records, per model:
file, sha256, bytes, the command and parameters that made it, its training stages (steps, minutes,
device, metrics) and key metrics.

A checkpoint and its manifest entry change together or not at all: the new weights are written
beside the old ones (``<name>.pt.new``), the manifest is rewritten, and only then does the new file
take the old one's place; :func:`load` completes an interrupted swap.

**Training in stages.** Models that need more than one sitting train with ``--minutes`` or
``--stage-steps`` per sitting and continue with ``--resume``. The resumable state (weights, Adam
state, step) is kept in ``build/train/<name>.state.pt`` (not in git); on a machine without it, a stage
resumes from the committed checkpoint with a fresh Adam and a short warm-up, and the manifest says so
(:mod:`diffcf.stages`).

Command line (also under ``torchrun --nproc_per_node=N``, see :mod:`diffcf.training`)::

    python -m diffcf.zoo list
    python -m diffcf.zoo train helix_flow helix_classifier   # or: make checkpoints
    python -m diffcf.zoo train mnist_flow --minutes 120      # a first stage of two hours
    python -m diffcf.zoo train mnist_flow --resume --minutes 120
    python -m diffcf.zoo verify
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diffcf.training import init_distributed, rank
from diffcf.utils import atomic_write, file_digest, get_device, project_root, write_json


class CheckpointError(RuntimeError):
    """A checkpoint or the manifest is missing, unknown, malformed or does not match."""


@dataclass
class ModelSpec:
    """A named model: ``build(**params)`` makes it; ``train(model, device, stage=stage,
    **train_params)`` trains it in place through :func:`diffcf.training.fit` and returns its key
    metrics. ``train_params["steps"]``, where present, is the length of the whole schedule.
    ``needs``: other named models its training loads (a GAN's encoder needs that GAN); their sha256
    is recorded in the manifest, and :func:`load` refuses the model once one of them has changed."""

    name: str
    build: Callable[..., nn.Module]
    params: dict[str, Any]
    train: Callable[..., dict[str, float]]
    train_params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    needs: tuple[str, ...] = ()


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
    """The manifest as ``{name: entry}``; raises :class:`CheckpointError` naming the file if it is
    not a JSON object of objects."""
    path = _manifest_path()
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); restore it from git") from err
    if not isinstance(manifest, dict) or not all(isinstance(v, dict) for v in manifest.values()):
        raise CheckpointError(f"{path} must be a JSON object {{name: entry}}, got "
                              f"{type(manifest).__name__}; restore it from git")
    return manifest


def sha256_file(path: Path) -> str:
    return file_digest(path, "sha256")


def _spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def _verified_path(name: str, entry: dict[str, Any]) -> Path:
    """The checkpoint file of ``name`` after checking its sha256 (finishing an interrupted swap)."""
    path = checkpoint_dir() / f"{name}.pt"
    expected = entry.get("sha256")
    if not isinstance(expected, str):
        raise CheckpointError(f"the manifest entry of {name!r} has no sha256; restore "
                              f"{_manifest_path()} from git or retrain {name!r}")
    pending = path.with_name(path.name + ".new")
    if pending.exists() and sha256_file(pending) == expected:
        _swap_in(pending, path)  # the manifest was written, the swap was not: finish it
    if not path.exists():
        raise CheckpointError(f"no checkpoint file {path} for {name!r}: restore it from git, run "
                              f"`make checkpoints` or load_or_train({name!r}, retrain=True)")
    digest = sha256_file(path)
    if digest != expected:
        raise CheckpointError(
            f"checkpoint {path} is corrupted or was changed: sha256 {digest[:12]}… does not match "
            f"the manifest's {expected[:12]}…. Restore it (git checkout -- {path.name}) "
            f"or retrain it with load_or_train({name!r}, retrain=True)"
        )
    return path


def load(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """Load the checkpoint of ``name`` after verifying its sha256 against the manifest."""
    spec = _spec(name)
    entry = read_manifest().get(name)
    if entry is None:
        raise CheckpointError(
            f"no checkpoint for {name!r} in {checkpoint_dir()}: run `make checkpoints` "
            f"or load_or_train({name!r}, retrain=True)"
        )
    path = _verified_path(name, entry)
    manifest = read_manifest()
    for other, digest in entry.get("trained_with", {}).items():
        if manifest.get(other, {}).get("sha256") != digest:
            raise CheckpointError(
                f"{name!r} was trained for the {other!r} whose sha256 was {digest[:12]}…, which has "
                f"changed since: retrain it with load_or_train({name!r}, retrain=True)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = spec.build(**entry.get("params", spec.params))
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[1:2] or [str(err)]
        raise CheckpointError(
            f"checkpoint {path} does not fit the model {name!r} builds ({type(model).__name__} "
            f"with {entry.get('params', spec.params)}): {first[0].strip()} Retrain it with "
            f"load_or_train({name!r}, retrain=True)"
        ) from None
    model.eval()
    return model.to(device)


def _commit_checkpoint(name: str, model: nn.Module, entry: dict[str, Any]) -> None:
    """Write weights and manifest entry so that a loader sees both new or both old: new weights to
    ``<name>.pt.new``, then the manifest, then the rename (which :func:`load` completes if a crash
    came first)."""
    path = checkpoint_dir() / f"{name}.pt"
    pending = path.with_name(path.name + ".new")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(pending, lambda p: torch.save(state, p))
    manifest = read_manifest()
    manifest[name] = {**entry, "sha256": sha256_file(pending), "bytes": pending.stat().st_size}
    write_json(_manifest_path(), manifest)
    _swap_in(pending, path)


def _swap_in(pending: Path, path: Path) -> None:
    """The last step of a checkpoint commit: the new weights take the old ones' place."""
    os.replace(pending, path)


def load_or_train(
    name: str, retrain: bool = False, device: str | torch.device = "cpu", verbose: bool = True
) -> nn.Module:
    """Load ``name`` from its verified checkpoint, or train it (``retrain=True`` or none shipped).

    A checkpoint whose hash does not match is never silently retrained: that raises
    :class:`CheckpointError`, so a corrupted file is noticed.
    """
    path = checkpoint_dir() / f"{name}.pt"
    if not retrain and (path.exists() or path.with_name(path.name + ".new").exists()):
        if verbose:
            print(f"Found pretrained model {name!r}, loading (sha256 verified).")
        return load(name, device)
    if verbose:
        print(f"Training {name!r} with its recipe (this is what `make checkpoints` runs)…")
    from diffcf.stages import train_and_save

    return train_and_save(name, device=device).to(device)


def manifest_entry(name: str) -> dict[str, Any]:
    """The manifest entry of ``name`` (metrics, training stages, device, …)."""
    _spec(name)
    entry = read_manifest().get(name)
    if entry is None:
        raise CheckpointError(f"{name!r} has no manifest entry yet: train it first")
    return entry


def flow_summary(name: str) -> str:
    """One line on how flow ``name`` was trained, from its manifest entry: steps, minutes, test
    bits/dim (at its ``n_bits``) and the largest round-trip error on test images."""
    entry = manifest_entry(name)
    metrics = entry["metrics"]
    return (f"{entry['steps_done']} steps in {entry['train_seconds'] / 60:.0f} min, "
            f"{metrics['test_bits_per_dim']:.3f} test bits/dim ({entry['params']['n_bits']}-bit), "
            f"round trip {metrics['test_roundtrip_max_abs_error']:.1e}")


def frozen(model: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients: models are fixed during a counterfactual search."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffcf.zoo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the named models and their manifest metrics")
    p_train = sub.add_parser("train", help="train models and write their checkpoints")
    p_train.add_argument("names", nargs="*", help="models to train (default: all)")
    p_train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p_train.add_argument("--resume", action="store_true",
                         help="continue from the last saved stage (build/train state, else the checkpoint)")
    p_train.add_argument("--minutes", type=float, help="end this stage after so many minutes")
    p_train.add_argument("--stage-steps", type=int, help="end this stage after so many steps")
    sub.add_parser("verify", help="check every checkpoint's sha256 against the manifest (models never "
                                  "trained are listed, not failed)")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        manifest = read_manifest()
        for name, spec in sorted(REGISTRY.items()):
            entry = manifest.get(name, {})
            progress = (f" ({entry['steps_done']}/{entry['steps_total']} steps)"
                        if entry.get("steps_total") else "")
            metrics = entry.get("metrics", "not trained")
            print(f"{name:24s} {spec.description}\n{'':24s} {metrics}{progress}")
        return 0
    if args.cmd == "train":
        for value, flag in ((args.minutes, "--minutes"), (args.stage_steps, "--stage-steps")):
            if value is not None and not value > 0:
                parser.error(f"{flag} must be positive, got {value}")
        unknown = [n for n in args.names if n not in REGISTRY]
        if unknown:
            parser.error(f"unknown model(s) {unknown}; known: {', '.join(sorted(REGISTRY))}")
        dev = get_device(args.device)
        if dev.type == "cuda" and "LOCAL_RANK" in os.environ:
            dev = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(dev)
        init_distributed(dev)
        from diffcf.stages import StagePlan, train_and_save

        for name in args.names or sorted(REGISTRY):
            t0 = time.perf_counter()
            train_and_save(name, dev, StagePlan(args.resume, args.minutes, args.stage_steps))
            if rank() == 0:
                entry = read_manifest()[name]
                steps = (f"steps {entry['steps_done']}/{entry['steps_total']}, "
                         if entry.get("steps_total") else "")
                print(f"{name}: {steps}{(time.perf_counter() - t0) / 60:.1f} min, {entry['metrics']}")
        return 0
    bad = 0
    try:
        read_manifest()
    except CheckpointError as err:
        print(f"FAILED  manifest: {err}")
        return 1
    manifest = read_manifest()
    for name in sorted(REGISTRY):
        if name not in manifest and not (checkpoint_dir() / f"{name}.pt").exists():
            print(f"not yet {name}: no checkpoint (python -m diffcf.zoo train {name})")
            continue
        try:
            load(name)
            print(f"ok      {name}")
        except CheckpointError as err:
            bad += 1
            print(f"FAILED  {name}: {err}")
    return 1 if bad else 0


from diffcf import recipes  # noqa: E402,F401  (registers the named models)

if __name__ == "__main__":  # run the imported module's main: the recipes registered into it
    from diffcf.zoo import main as zoo_main

    sys.exit(zoo_main())
