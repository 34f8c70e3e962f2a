"""CelebA: the Adam step size of the search in the VAE's latent space against success and time
(not a speed test of code).

    .venv/bin/python benchmarks/celeba_latent_lr.py [--n 32] [--lrs 5e-3 2e-2 5e-2] [--max-steps 1000]

Notebook 07 searches "not blond → blond" (Λ = 0.99) from the first ``--n`` test faces that are not
blond and that the classifier calls not blond, in the latent space of ``celeba_vae`` (128-d, from
the encoder's mean). Each learning rate prints its wall time, success and the quantiles of the steps.
The paper's code uses 5e-3 and 1000 steps for VAE and GAN latents; this is the measurement behind
notebook 07's CelebA step size (5e-2, at most 500 steps: ``--max-steps 500``).
"""

from __future__ import annotations

import argparse
import time

import torch

from diffcf import seed_everything, zoo
from diffcf.data.celeba import BLOND_HAIR, attribute_index
from diffcf.evaluate import predict
from diffcf.recipes.celeba import load_quantized
from diffcf.search import ClassTarget, counterfactual_search


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=32, help="not-blond test faces")
    parser.add_argument("--lrs", nargs="+", type=float, default=[5e-3, 2e-2, 5e-2])
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seed_everything(args.seed)

    x_test, attributes = load_quantized("test")
    y = attributes[:, attribute_index(BLOND_HAIR)]
    f, vae = (zoo.frozen(zoo.load(name)) for name in ("celeba_classifier", "celeba_vae"))
    x = x_test[(y == 0) & (predict(f, x_test) == 0)][: args.n]
    with torch.no_grad():
        p_blond = f(vae.decode(vae.encode(x))).softmax(1)[:, 1]
    print(f"{len(x)} not-blond faces; f's mean P(blond) of their VAE reconstructions {p_blond.mean():.3f}")
    print(f"{'lr':>8s}{'secs':>8s}{'success':>9s}{'steps50':>9s}{'steps90':>9s}")
    for lr in args.lrs:
        start = time.perf_counter()
        run = counterfactual_search(f, x, ClassTarget(1, 0.99), space="z", g=vae, lr=lr,
                                    max_steps=args.max_steps, bounds=(0.0, 1.0))
        seconds = time.perf_counter() - start
        steps = run.steps.float().quantile(torch.tensor([0.5, 0.9])).tolist()
        print(f"{lr:8g}{seconds:8.1f}{run.success.float().mean().item():9.3f}{steps[0]:9.0f}{steps[1]:9.0f}",
              flush=True)


if __name__ == "__main__":
    main()
