"""How often an MNIST flow's samples are digits the CNN is sure of, and a grid of them to look at.

    python benchmarks/flow_samples.py [--flow mnist_flow_large] [--device auto] [--out FILE.png]

Draws 1000 samples (four seeds of 250) at temperatures 0.7 and 1.0, prints for each the share the CNN
``mnist_classifier`` assigns to some class with probability > 0.9 (notebook 03's
``flow_sample_confident_share`` is the one at T = 0.7: a classifier-judged sample quality that cannot
see diversity) and saves the first 32 samples of each as a grid (default
``build/benchmarks/<flow>_samples.png``). Runs in seconds on a GPU; on a 2-core CPU about a minute for
the shipped flows and several for ``mnist_flow_large``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch

from diffcf import get_device, zoo
from diffcf.evaluate import confident_share
from diffcf.plotting import image_rows
from diffcf.utils import project_root


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flow", default="mnist_flow_large", help="an MNIST flow of the zoo")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", help="the grid's png (default: build/benchmarks/<flow>_samples.png)")
    args = parser.parse_args()
    device = get_device(args.device)
    out = Path(args.out) if args.out else project_root() / "build" / "benchmarks" / f"{args.flow}_samples.png"
    f = zoo.frozen(zoo.load("mnist_classifier", device))
    g = zoo.frozen(zoo.load(args.flow, device))
    rows = {}
    for temperature in (0.7, 1.0):
        with torch.no_grad():
            x = torch.cat([g.sample(250, torch.Generator().manual_seed(seed), temperature=temperature)
                           for seed in range(4)]).clamp(0, 1)
        share = confident_share(f, x)
        print(f"{args.flow}, T = {temperature}: the CNN is confident (p > 0.9) for {share:.3f} of "
              f"{len(x)} samples", flush=True)
        rows[f"T = {temperature}, {share:.0%} confident"] = x[:16]
        rows[" " * len(rows)] = x[16:32]  # a second row of the same temperature, unnamed
    fig = image_rows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    print(f"grid: {out}")


if __name__ == "__main__":
    main()
