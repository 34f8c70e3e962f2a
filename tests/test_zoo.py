import json
import shutil

import pytest
import torch

from diffcf import zoo
from diffcf.models.classifiers import MLPClassifier
from diffcf.utils import save_results


@pytest.fixture
def ckpt_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFCF_CHECKPOINTS", str(tmp_path))
    return tmp_path


def _copy_shipped(name, dst):
    from diffcf.utils import project_root

    src_dir = project_root() / "data" / "checkpoints"
    shutil.copy(src_dir / f"{name}.pt", dst / f"{name}.pt")
    manifest = json.loads((src_dir / "manifest.json").read_text())
    (dst / "manifest.json").write_text(json.dumps({name: manifest[name]}))


def test_shipped_checkpoints_verify():
    assert zoo.main(["verify"]) == 0


def test_tampered_checkpoint_is_refused(ckpt_dir):
    _copy_shipped("helix_classifier", ckpt_dir)
    zoo.load("helix_classifier")  # intact: loads
    path = ckpt_dir / "helix_classifier.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(zoo.CheckpointError, match="corrupted or was changed.*retrain=True"):
        zoo.load("helix_classifier")
    # load_or_train must not silently replace a corrupted file either
    with pytest.raises(zoo.CheckpointError):
        zoo.load_or_train("helix_classifier", verbose=False)


def test_missing_and_unknown_models(ckpt_dir):
    with pytest.raises(zoo.CheckpointError, match="make checkpoints"):
        zoo.load("helix_flow")
    with pytest.raises(KeyError, match="unknown model 'mnist_glow'"):
        zoo.load("mnist_glow")


def test_train_and_save_writes_manifest_and_reloads(ckpt_dir):
    def train(model, device, steps, seed):
        with torch.no_grad():
            model.net[0].weight.fill_(0.5)
        return {"steps": steps}

    zoo.register(zoo.ModelSpec("tiny", MLPClassifier, {"in_dim": 3, "hidden": 4}, train,
                               {"steps": 1, "seed": 0}))
    try:
        model = zoo.load_or_train("tiny", verbose=False)
        entry = zoo.manifest_entry("tiny")
        assert entry["sha256"] == zoo.sha256_file(ckpt_dir / "tiny.pt")
        assert entry["bytes"] == (ckpt_dir / "tiny.pt").stat().st_size
        assert entry["metrics"] == {"steps": 1}
        assert entry["command"] == "python -m diffcf.zoo train tiny"
        again = zoo.load("tiny")
        assert torch.equal(again.net[0].weight, model.net[0].weight)
        assert not list(ckpt_dir.glob("*.tmp"))
    finally:
        zoo.REGISTRY.pop("tiny")


def test_train_with_overrides_writes_nothing(ckpt_dir):
    seen = {}

    def train(model, device, steps, seed):
        seen.update(steps=steps, seed=seed)
        return {"steps": steps}

    zoo.register(zoo.ModelSpec("tiny", MLPClassifier, {"in_dim": 3, "hidden": 4}, train,
                               {"steps": 1, "seed": 0}))
    try:
        model, metrics, seconds = zoo.train("tiny", "cpu", steps=7)
        assert seen == {"steps": 7, "seed": 0} and metrics == {"steps": 7} and seconds >= 0
        assert not model.training
        assert not list(ckpt_dir.iterdir())  # no checkpoint, no manifest
        with pytest.raises(ValueError, match="no training parameters \\['epochs'\\]"):
            zoo.train("tiny", "cpu", epochs=3)
    finally:
        zoo.REGISTRY.pop("tiny")


def test_results_contract_rejects_non_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFCF_ROOT", str(tmp_path))
    path = save_results("99_demo", {"a": 1, "b": 0.5, "c": torch.tensor(2.0)})
    assert json.loads(path.read_text()) == {"a": 1, "b": 0.5, "c": 2.0}
    with pytest.raises(TypeError, match="must be a number"):
        save_results("99_demo", {"a": "high"})
