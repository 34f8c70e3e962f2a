"""Where a training step of a large MNIST flow goes: milliseconds per step and images per second.

    python benchmarks/flow_training_speed.py [--flow mnist_flow_large] [--device auto] [--steps 40]

Times ``--steps`` steps of the flow's training (dequantised maximum likelihood, Adam, gradient
clipping; real MNIST batches drawn on the device) after five warm-up steps, for variants that ask
where the time goes:

- *baseline*: actnorm reads its "initialised" flag from the device in every call, as the flows did
  before issue 16's GPU stage (a host synchronisation per actnorm, about a hundred per step);
- *shipped*: the flag is kept on the host (:class:`~diffcf.models.multiscale.ActNorm` today);
- *no slogdet*: as shipped, with the 1×1 convolutions' ``slogdet`` replaced by a stand-in of the same
  shape (timing only: the result is not a density), to see whether the small LU factorisations cost;
- *batch 512*: as shipped at twice the recipe's batch, to see whether the step is bound by the GPU's
  arithmetic or by launching its ~10 000 kernels from Python;

and prints the ratio of each to the baseline. ``--profile`` adds PyTorch's profiler table (five steps,
the shipped variant). Not a test: nothing is asserted. On a CPU a step of ``mnist_flow_large`` takes
about 15 seconds, so run it where the flow is trained, on a GPU.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from diffcf import get_device, zoo
from diffcf.data.mnist import load_dataset
from diffcf.models import multiscale
from diffcf.models.multiscale import bits_per_dim_loss

SHIPPED_ACTNORM = multiscale.ActNorm.forward


def actnorm_reading_its_flag(self, x):
    """The baseline's actnorm: forgets its host copy of the flag, so it reads the device buffer
    ``initialized`` on every call."""
    self._seen_initialized = False
    return SHIPPED_ACTNORM(self, x)


def invconv_without_slogdet(self, x):
    """A 1×1 convolution whose log-determinant is a sync-free stand-in (timing only)."""
    c = self.weight.shape[0]
    y = torch.nn.functional.conv2d(x, self.weight.reshape(c, c, 1, 1))
    return y, (self.weight.diagonal().abs().log().sum() * x.shape[2] * x.shape[3]).expand(x.shape[0])


def seconds_per_step(name: str, x: torch.Tensor, batch: int, steps: int, profile: bool = False,
                     **patches: Callable) -> float:
    """Mean wall time of a training step of ``name``'s flow with ``patches`` applied to its layers."""
    originals = {"actnorm": SHIPPED_ACTNORM, "invconv": multiscale.InvConv1x1.forward}
    multiscale.ActNorm.forward = patches.get("actnorm", originals["actnorm"])
    multiscale.InvConv1x1.forward = patches.get("invconv", originals["invconv"])
    try:
        spec = zoo.REGISTRY[name]
        torch.manual_seed(0)
        flow = spec.build(**spec.params).to(x.device).train()
        with torch.no_grad():
            flow.log_prob(x[:512])
        opt = torch.optim.Adam(flow.parameters(), lr=1e-4)
        gen = torch.Generator(device=x.device).manual_seed(0)

        def step() -> torch.Tensor:
            loss = bits_per_dim_loss(flow, x[torch.randint(len(x), (batch,), device=x.device, generator=gen)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), spec.train_params["clip_grad"])
            opt.step()
            return loss

        for _ in range(5):
            step()
        step().item()  # waits for the warm-up
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss.item()
        seconds = (time.perf_counter() - start) / steps
        if profile:
            from torch.profiler import ProfilerActivity
            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if x.is_cuda else [])
            with torch.profiler.profile(activities=activities) as prof:
                for _ in range(5):
                    loss = step()
                loss.item()
            key = "self_cuda_time_total" if x.is_cuda else "self_cpu_time_total"
            print(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=40))
        return seconds
    finally:
        multiscale.ActNorm.forward, multiscale.InvConv1x1.forward = originals.values()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flow", default="mnist_flow_large", help="an MNIST flow of the zoo")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant")
    parser.add_argument("--profile", action="store_true", help="print the profiler's table")
    args = parser.parse_args()
    device = get_device(args.device)
    torch.backends.cudnn.benchmark = True
    x = load_dataset("mnist", "train")[0].to(device)
    batch = zoo.REGISTRY[args.flow].train_params["batch_size"]
    variants = [("baseline: actnorm reads its flag", batch, {"actnorm": actnorm_reading_its_flag}),
                ("shipped: flag kept on the host", batch, {}),
                ("shipped, no slogdet (stand-in)", batch, {"invconv": invconv_without_slogdet}),
                (f"shipped, batch {2 * batch}", 2 * batch, {})]
    print(f"{args.flow} on {device}, {args.steps} steps per variant")
    base = None
    for label, size, patches in variants:
        seconds = seconds_per_step(args.flow, x, size, args.steps,
                                   profile=args.profile and label.startswith("shipped:"), **patches)
        base = base or seconds / size
        print(f"{label:34s} batch {size:4d}: {1e3 * seconds:7.1f} ms/step, {size / seconds:6.0f} images/s, "
              f"{base / (seconds / size):4.2f}x the baseline's images/s", flush=True)


if __name__ == "__main__":
    main()
