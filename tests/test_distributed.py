"""Training under ``torchrun``: two CPU processes (gloo) hold identical weights afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import torch

RANK_SCRIPT = textwrap.dedent("""
    import sys, torch
    from diffcf.training import Stage, fit, init_distributed
    rank, world = init_distributed(torch.device("cpu"))
    torch.manual_seed(100 + rank)            # different starting weights on each rank: DDP must align them
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    gen = torch.Generator().manual_seed(rank)  # different batches on each rank
    def batches():
        while True:
            x = torch.randn(16, 3, generator=gen)
            yield x, x.sum(1, keepdim=True)
    fit(model, batches(), lambda m, x, y: ((m(x) - y) ** 2).mean(), steps=5, progress=False, stage=Stage())
    torch.save(model.state_dict(), f"{sys.argv[1]}/rank{rank}.pt")
    print("world", world)
""")


def _torchrun(args, tmp_path, env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_two_ranks_hold_identical_weights(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    run = _torchrun([str(script), str(tmp_path)], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    torch.manual_seed(100)
    start = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    assert not torch.equal(start[0].weight, w0["0.weight"])  # they trained


def test_zoo_entry_point_runs_unchanged_under_torchrun(tmp_path):
    """``torchrun -m diffcf.zoo train NAME``: a flow (actnorm's data-dependent start is broadcast),
    a bounded stage, one manifest entry written by rank 0 that records both processes."""
    env = {"DIFFCF_CHECKPOINTS": str(tmp_path / "ckpt"), "DIFFCF_ROOT": str(tmp_path)}
    run = _torchrun(["-m", "diffcf.zoo", "train", "shapes_flow", "--device", "cpu", "--stage-steps", "3"],
                    tmp_path, env)
    assert run.returncode == 0, run.stderr[-2000:]
    entry = json.loads((tmp_path / "ckpt" / "manifest.json").read_text())["shapes_flow"]
    assert entry["steps_done"] == 3 and entry["stages"][0]["processes"] == 2
    assert (tmp_path / "build" / "train" / "shapes_flow.state.pt").exists()
