import json
import shutil

import pytest
import torch

from diffcf import stages, zoo
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


def test_verify_lists_untrained_models_without_failing(ckpt_dir, capsys):
    _copy_shipped("helix_classifier", ckpt_dir)  # every other registered model: no entry, no file
    assert zoo.main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "ok      helix_classifier" in out and "not yet helix_flow: no checkpoint" in out
    (ckpt_dir / "helix_flow.pt").write_bytes(b"stray")  # a file the manifest does not know fails
    assert zoo.main(["verify"]) == 1


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
    def train(model, device, stage, steps, seed):
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
        # a recipe that takes no stage (an SVM, per-class autoencoders) is recorded as one whole run
        assert entry["steps_done"] == 1 and entry["stages"][0]["steps"] == [0, 1]
        assert entry["train_seconds"] == entry["stages"][0]["minutes"] * 60.0 >= 0.0
        again = zoo.load("tiny")
        assert torch.equal(again.net[0].weight, model.net[0].weight)
        assert not list(ckpt_dir.glob("*.tmp"))
    finally:
        zoo.REGISTRY.pop("tiny")


def test_train_with_overrides_writes_nothing(ckpt_dir):
    seen = {}

    def train(model, device, stage, steps, seed):
        seen.update(steps=steps, seed=seed)
        return {"steps": steps}

    zoo.register(zoo.ModelSpec("tiny", MLPClassifier, {"in_dim": 3, "hidden": 4}, train,
                               {"steps": 1, "seed": 0}))
    try:
        model, metrics, stage = stages.train("tiny", "cpu", steps=7)
        assert seen == {"steps": 7, "seed": 0} and metrics == {"steps": 7} and stage.seconds >= 0
        assert not model.training
        assert not list(ckpt_dir.iterdir())  # no checkpoint, no manifest
        with pytest.raises(ValueError, match="no training parameters \\['epochs'\\]"):
            stages.train("tiny", "cpu", epochs=3)
    finally:
        zoo.REGISTRY.pop("tiny")


def test_results_contract_rejects_non_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFCF_ROOT", str(tmp_path))
    path = save_results("99_demo", {"a": 1, "b": 0.5, "c": torch.tensor(2.0)})
    assert json.loads(path.read_text()) == {"a": 1, "b": 0.5, "c": 2.0}
    with pytest.raises(TypeError, match="must be a number"):
        save_results("99_demo", {"a": "high"})


# ---- training in stages ---------------------------------------------------------------------


def _train_regression(model, device, stage, steps, seed):
    """A real recipe on a tiny problem: fit y = sum(x) with the project's loop."""
    from diffcf.training import fit

    gen = torch.Generator().manual_seed(seed + stage.start_step)

    def batches():
        while True:
            x = torch.randn(16, 3, generator=gen)
            yield x, x.sum(1, keepdim=True)

    fit(model, batches(), lambda m, x, y: ((m(x) - y) ** 2).mean(), steps=steps, lr=1e-2,
        progress=False, stage=stage)
    return {"step": stage.step}


@pytest.fixture
def staged(ckpt_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFCF_ROOT", str(tmp_path))
    build = lambda: torch.nn.Linear(3, 1)
    zoo.register(zoo.ModelSpec("staged", build, {}, _train_regression, {"steps": 30, "seed": 0}))
    yield ckpt_dir
    zoo.REGISTRY.pop("staged")


def test_stages_add_up_and_are_recorded(staged):
    stages.train_and_save("staged", "cpu", stages.StagePlan(steps=10))
    entry = zoo.manifest_entry("staged")
    assert entry["steps_done"] == 10 and entry["steps_total"] == 30
    assert stages.state_path("staged").exists()
    stages.train_and_save("staged", "cpu", stages.StagePlan(resume=True, steps=15))
    stages.train_and_save("staged", "cpu", stages.StagePlan(resume=True))  # runs to the end of the schedule
    entry = zoo.manifest_entry("staged")
    assert [s["steps"] for s in entry["stages"]] == [[0, 10], [10, 25], [25, 30]]
    assert [s["optimizer"] for s in entry["stages"]] == ["fresh", "restored", "restored"]
    assert entry["steps_done"] == 30 and "--resume" in entry["command"]
    assert all(s["device"] == "cpu" and s["processes"] == 1 for s in entry["stages"])
    assert zoo.load("staged").weight.shape == (1, 3)


def test_resume_without_state_restarts_adam_from_the_checkpoint(staged):
    stages.train_and_save("staged", "cpu", stages.StagePlan(steps=10))
    stages.state_path("staged").unlink()  # another machine: only the committed checkpoint
    stages.train_and_save("staged", "cpu", stages.StagePlan(resume=True, steps=5))
    record = zoo.manifest_entry("staged")["stages"]
    assert record[1]["steps"] == [10, 15]
    assert record[1]["optimizer"] == f"restarted, {stages.WARMUP_AFTER_LOST_OPTIMIZER}-step warm-up"


def test_resume_with_nothing_saved_is_refused(staged):
    with pytest.raises(zoo.CheckpointError, match="nothing to resume.*without --resume"):
        stages.train_and_save("staged", "cpu", stages.StagePlan(resume=True))


def test_resumed_schedule_equals_one_long_run(staged):
    """Stages with the optimiser state kept follow the same learning-rate schedule as one run."""
    from diffcf.training import Stage, fit, learning_rate

    assert learning_rate(0, 30, 1e-2) == 1e-2 and learning_rate(30, 30, 1e-2) == 0.0
    assert learning_rate(10, 30, 1e-2, warmup_steps=4, warmup_from=10) == pytest.approx(
        learning_rate(10, 30, 1e-2) / 4)

    def run(stages):
        torch.manual_seed(0)
        model, xs = torch.nn.Linear(3, 1), torch.randn(30, 16, 3, generator=torch.Generator().manual_seed(1))
        state, start = None, 0
        for n in stages:
            batches = ((x, x.sum(1, keepdim=True)) for x in xs[start:])
            saved: dict = {}
            stage = Stage(start_step=start, optimizer_state=state, max_steps=n,
                          save=lambda m, opt, step, saved=saved: saved.update(opt=opt))
            fit(model, batches, lambda m, x, y: ((m(x) - y) ** 2).mean(), 30, 1e-2, progress=False,
                stage=stage)
            state, start = saved["opt"], stage.step
        return model.weight.detach()

    assert torch.allclose(run([30]), run([7, 13, 10]), atol=1e-6)


# ---- checkpoint and manifest change together or not at all --------------------------------


def test_unreadable_manifest_fails_before_training(staged):
    stages.train_and_save("staged", "cpu")
    before = (staged / "staged.pt").read_bytes()
    (staged / "manifest.json").write_text("{not json")
    with pytest.raises(zoo.CheckpointError, match="not valid JSON"):
        zoo.load_or_train("staged", retrain=True, verbose=False)
    assert (staged / "staged.pt").read_bytes() == before


def test_crash_before_manifest_keeps_the_old_pair(staged, monkeypatch):
    stages.train_and_save("staged", "cpu")
    old = zoo.load("staged").weight.clone()
    monkeypatch.setattr(zoo, "write_json", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        stages.train_and_save("staged", "cpu", stages.StagePlan(steps=3))
    assert torch.equal(zoo.load("staged").weight, old)  # old weights, old manifest: consistent


def test_crash_after_manifest_is_completed_by_load(staged, monkeypatch):
    stages.train_and_save("staged", "cpu")
    real_swap = zoo._swap_in
    monkeypatch.setattr(zoo, "_swap_in", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        stages.train_and_save("staged", "cpu", stages.StagePlan(steps=3))
    monkeypatch.setattr(zoo, "_swap_in", real_swap)
    assert (staged / "staged.pt.new").exists()
    zoo.load("staged")  # the manifest is new: load finishes the swap and verifies
    assert not (staged / "staged.pt.new").exists()
    assert zoo.manifest_entry("staged")["steps_done"] == 3


# ---- clear messages ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, match", [
    ("[]", "must be a JSON object"),
    ('{"helix_classifier": 3}', "must be a JSON object"),
])
def test_malformed_manifest_is_named(ckpt_dir, text, match):
    (ckpt_dir / "manifest.json").write_text(text)
    with pytest.raises(zoo.CheckpointError, match=match):
        zoo.load("helix_classifier")
    assert zoo.main(["verify"]) == 1


def test_entry_without_sha256_and_verify_reports_every_model(ckpt_dir, capsys):
    _copy_shipped("helix_classifier", ckpt_dir)
    manifest = json.loads((ckpt_dir / "manifest.json").read_text())
    del manifest["helix_classifier"]["sha256"]
    (ckpt_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(zoo.CheckpointError, match="has no sha256"):
        zoo.load("helix_classifier")
    assert zoo.main(["verify"]) == 1
    out = capsys.readouterr().out
    assert all(name in out for name in zoo.REGISTRY)  # not stopped at the first failure


def test_checkpoint_of_another_architecture_is_named(ckpt_dir):
    _copy_shipped("helix_classifier", ckpt_dir)
    manifest = json.loads((ckpt_dir / "manifest.json").read_text())
    manifest["helix_classifier"]["params"] = {"in_dim": 3, "hidden": 64}
    (ckpt_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(zoo.CheckpointError, match="does not fit the model 'helix_classifier'.*retrain"):
        zoo.load("helix_classifier")


def test_cli_rejects_bad_stage_arguments(capsys):
    for argv in (["train", "nope"], ["train", "helix_flow", "--minutes", "0"],
                 ["train", "helix_flow", "--stage-steps", "2.5"]):
        with pytest.raises(SystemExit):
            zoo.main(argv)
    assert "unknown model(s) ['nope']" in capsys.readouterr().err


def test_flow_summary_reads_the_manifest_entry():
    entry = zoo.manifest_entry("mall_flow_32")
    summary = zoo.flow_summary("mall_flow_32")
    assert summary.startswith(f"{entry['steps_done']} steps in ")
    assert f"{entry['metrics']['test_bits_per_dim']:.3f} test bits/dim (5-bit)" in summary
