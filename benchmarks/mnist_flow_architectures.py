"""Which MNIST flow learns the digits fastest on a CPU? Candidates trained for the same CPU time.

Each candidate flow is trained with the recipe of ``mnist_flow`` (dequantised maximum likelihood,
Adam 1e-3 with a cosine decay that ends when the budget is spent) for ``--cpu-minutes`` of process
CPU time (measured per step first, so the machine's other load does not bias the comparison), then
judged by test bits/dim on 2000 random test images and by the share of 1000 samples at temperature
0.7 that the CNN classifies with probability > 0.9 (``evaluate.confident_share``). Nothing is written
but ``build/benchmarks/mnist_flow_architectures.jsonl`` (one line per candidate).

    python benchmarks/mnist_flow_architectures.py --cpu-minutes 15          # all, one after another
    python benchmarks/mnist_flow_architectures.py --only wide --threads 1   # one, e.g. two in parallel
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from diffcf import seed_everything, zoo
from diffcf.data.mnist import load_dataset
from diffcf.evaluate import confident_share
from diffcf.models.multiscale import MultiscaleFlow, bits_per_dim_loss
from diffcf.recipes.common import train_image_flow
from diffcf.training import Stage
from diffcf.utils import project_root

CANDIDATES = {
    "shipped": {"steps_per_scale": [6, 8], "hidden": [64, 96]},      # the current mnist_flow
    "wide": {"steps_per_scale": [8, 8], "hidden": [128, 128]},
    "deep": {"steps_per_scale": [12, 12], "hidden": [128, 128]},
    "wider": {"steps_per_scale": [8, 8], "hidden": [256, 256]},
}


def cpu_seconds_per_step(params: dict, x: torch.Tensor, batch_size: int) -> float:
    """Process CPU time of one training step of a flow built with ``params`` (median of 3)."""
    probe = MultiscaleFlow(**params).train()
    opt = torch.optim.Adam(probe.parameters(), 1e-3)
    times = []
    for _ in range(4):
        t0 = time.process_time()
        loss = bits_per_dim_loss(probe, x[:batch_size])
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.process_time() - t0)
    return sorted(times[1:])[1]


def run(name: str, cpu_minutes: float, batch_size: int, seed: int) -> dict:
    spec = zoo.REGISTRY["mnist_flow"]
    params = {**spec.params, **CANDIDATES[name]}
    x, _ = load_dataset("mnist", "train")
    x_test, _ = load_dataset("mnist", "test")
    pick = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(0))[:2000]
    per_step = cpu_seconds_per_step(params, x, batch_size)
    steps = max(1, int(cpu_minutes * 60 / per_step))
    seed_everything(seed)
    flow = MultiscaleFlow(**params)
    t0, c0 = time.perf_counter(), time.process_time()
    metrics = train_image_flow(flow, torch.device("cpu"), Stage(), x, x_test[pick], steps, batch_size,
                               spec.train_params["lr"], spec.train_params["clip_grad"], seed, desc=name)
    f = zoo.frozen(zoo.load("mnist_classifier"))
    samples = flow.sample(1000, torch.Generator().manual_seed(seed), temperature=0.7).clamp(0, 1)
    return {"name": name, **CANDIDATES[name],
            "params_M": round(sum(p.numel() for p in flow.parameters()) / 1e6, 2),
            "cpu_ms_per_step": round(1000 * per_step), "steps": steps,
            "wall_min": round((time.perf_counter() - t0) / 60, 1),
            "cpu_min": round((time.process_time() - c0) / 60, 1),
            "bits_per_dim": metrics["test_bits_per_dim"],
            "confident_share": round(confident_share(f, samples), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-minutes", type=float, default=15.0)
    parser.add_argument("--only", nargs="*", choices=sorted(CANDIDATES))
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = project_root() / "build" / "benchmarks" / "mnist_flow_architectures.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.only or CANDIDATES:
        row = run(name, args.cpu_minutes, args.batch_size, seed=3)
        print(json.dumps(row), flush=True)
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
