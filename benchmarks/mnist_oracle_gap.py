"""MNIST: is the missing oracle gap of notebook 03 a matter of the search, or of the oracle?

    .venv/bin/python benchmarks/mnist_oracle_gap.py [--n 200] [--sources random|first] [--flow mnist_flow]
        [--device auto]
        [--flow-steps 3000 6000 | --confidence 0.99 0.999 0.9999
         | --normalized 0.25 1 --normalized-x 0.05 0.2 | --scales | --tangent 16 32 64
         | --classifier-noise 0.6 [--figure build/smoothed_cnn.png]]

Not a speed benchmark: a small ablation that notebook 03 quotes. For ``--n`` test 4s (drawn as notebook
03 draws them, :func:`~diffcf.evaluate.sample_sources`; ``--n 0``: all; ``--sources first``: the first
ones in the test file, as the tables in notebook 03 were made) it searches 4 → 9 at Λ = 0.99
with Adam in Z at two learning rates and with Adam in X at three (2000 steps at most, pixels clipped
to [0, 1]), and for every variant prints

- success rate and median steps,
- the share that the shipped *linear* SVM oracle and the shipped *RBF* SVM (``mnist_svm_rbf``, fitted on
  10 000 training images; test accuracies printed) call a 9, and the k-NN (k = 10) share of 9s,
- the mean pixel L2 to the source and the flow's bits/dim of the results (originals for reference):
  how far from the flow's high-density region the search ended.

With ``--flow-steps`` it asks instead whether a better density model would help: it trains the shipped
flow's recipe for fewer steps than the shipped 11 000 (a few minutes per 1000 steps on the CPU) and runs
the paper's Z-search (Adam 5e-2) with each of these weaker flows and with the shipped one. Bits/dim of
the results are always measured with the shipped flow, the best density model we have.

With ``--confidence`` it asks whether the searches stop too early: notebook 03's two searches (Z: Adam
5e-2, at most 1000 steps; X: Adam 5e-3, at most 2000) run to each given target confidence Λ.

With ``--normalized`` (step lengths in Z) and ``--normalized-x`` (in X) it compares notebook 03's Adam
searches with §III's plain ascent, every step of the given L2 length (``step="normalized"``).
With ``--scales`` it asks whether the fragments come from the flow's finest latents: notebook 03's
Z-search (Adam 5e-2, at most 1000 steps, and a normalised step of 0.5) moves either every latent
coordinate (the paper), only the coarsest scale's (the finer scales' latents stay as encoded: as the
split priors are conditional, their pixels still follow the coarse change) or only the finest
scale's.

With ``--tangent`` it asks whether the search leaks off the flow's manifold (Theorem 1 collapses the
off-manifold directions only for a perfect flow): each image's Z-search is confined to the ``k``
directions in Z that the decoder stretches most at its start, the top ``k`` right singular vectors of
``J = ∂g/∂z`` (their images span the flow's tangent space, §III; notebook 02), with the notebook's
Adam step and cap, for each given ``k``. As a confined search fails more often, two more lines judge
the confined and the free search on the images where both succeeded.

With ``--classifier-noise`` it asks whether the classifier, not the generator, decides: for each
given ``s`` it trains the shipped CNN's recipe (same architecture, steps, batches, learning rate; about
5 minutes) on inputs with Gaussian noise of a standard deviation drawn per image from ``U(0, s)``, a
smoother classifier whose input gradients are known to look more like the data, then runs notebook
03's two searches from the same 4s with the shipped CNN and with each smoothed one. The ``i``-th
given ``s`` trains with the recipe's seed + ``i``, so a repeated ``s`` shows the spread between
trainings. A last column gives the share of each search's results that the *other* CNN calls a 9
(for the shipped CNN's searches: the first smoothed one). With ``--figure PNG`` it also draws the
first ten 4s with each classifier's counterfactual and adversarial, as notebook 03's Fig. 8.

``--flow`` picks the flow of the Z-searches and of the bits/dim (default: notebook 03's); ``--device``
where everything runs (default: the CPU, whose timings the notebook quotes; ``auto``: a GPU if torch
sees one, for flows too large for CPU searches).

Runs in about 15 minutes on a 2-core CPU; with ``--flow-steps 3000 6000`` in about 45 (13 and 24 minutes
of training, 2 to 3 per search); with ``--confidence 0.99 0.999 0.9999`` in about 15; with
``--scales`` in about 8; with ``--tangent 16 32 64`` in about 25 (a confined search keeps every image
in its batch for all its steps); with ``--classifier-noise 0.6`` in about 10 (about 7 more for each
further ``s``).
"""

from __future__ import annotations

import argparse
import time

import torch

from diffcf import get_device, seed_everything, stages, zoo
from diffcf.data.mnist import load_dataset
from diffcf.evaluate import knn_target_share, l2_to_source, oracle_target_share, predict, sample_sources
from diffcf.geometry import jacobian
from diffcf.models.classifiers import MNISTClassifier
from diffcf.plotting import image_rows
from diffcf.recipes.mnist import train_mnist_classifier
from diffcf.search import ClassTarget, counterfactual_search
from diffcf.training import Stage
from reference import NOTEBOOK_03_SEARCH


class ScalesMoved:
    """A multi-scale flow whose search moves only the latents of some scales: ``decode`` cuts the
    gradient to the others, so Adam's (and the normalised step's) update of them is zero."""

    def __init__(self, flow, sizes: list[int], moved: set[int]):
        self.flow, self.sizes, self.moved = flow, sizes, moved

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        parts = z.split(self.sizes, dim=1)
        return self.flow.decode(torch.cat([p if level in self.moved else p.detach()
                                           for level, p in enumerate(parts)], dim=1))


class Confined:
    """The flow seen through per-image coefficients ``c``: ``z = z0 + basis c``, each latent of the
    batch ``z0 = g⁻¹(x)`` with its own ``basis`` ``(B, d, k)``. Rows of ``c`` must stay aligned with
    ``z0``'s: a search over it must not shrink its working set (``check_every > max_steps``)."""

    def __init__(self, flow, z0: torch.Tensor, basis: torch.Tensor):
        self.flow, self.z0, self.basis = flow, z0, basis

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(len(x), self.basis.shape[2])

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        return self.flow.decode(self.z0 + torch.einsum("bdk,bk->bd", self.basis, c))


def smoothed_classifier(noise: float, seed: int, device: torch.device) -> torch.nn.Module:
    """The shipped CNN's recipe with ``seed`` for the recipe's and input noise up to ``noise``."""
    spec = zoo.manifest_entry("mnist_classifier")
    seed_everything(seed)
    model = MNISTClassifier(**spec["params"]).to(device)
    train_mnist_classifier(model, device, Stage(), **{**spec["train_params"], "seed": seed},
                           input_noise=noise)
    return zoo.frozen(model)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200, help="test 4s (notebook 03: 200; 0: all)")
    parser.add_argument("--sources", choices=("random", "first"), default="random",
                        help="first: the first n in the test file, as notebook 03 took them until 2026-12-05")
    parser.add_argument("--flow", default="mnist_flow", help="the flow of the Z-searches (a zoo name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--flow-steps", type=int, nargs="*", default=[],
                        help="instead: train the flow recipe for these many steps, search Z with each flow")
    parser.add_argument("--confidence", type=float, nargs="*", default=[],
                        help="instead: notebook 03's two searches with these target confidences Λ")
    parser.add_argument("--normalized", type=float, nargs="*", default=[],
                        help="instead: Adam vs normalised steps of these lengths in Z (with --normalized-x)")
    parser.add_argument("--normalized-x", type=float, nargs="*", default=[],
                        help="normalised step lengths in X, beside --normalized")
    parser.add_argument("--scales", action="store_true",
                        help="instead: Z-searches moving every scale, the coarsest, the finest")
    parser.add_argument("--tangent", type=int, nargs="*", default=[],
                        help="instead: Z-searches confined to the top k right singular vectors of dg/dz")
    parser.add_argument("--classifier-noise", type=float, nargs="*", default=[],
                        help="instead: searches with CNNs trained on inputs with Gaussian noise up to σ")
    parser.add_argument("--figure", default=None,
                        help="with --classifier-noise: save a Fig. 8 grid of each classifier's searches")
    args = parser.parse_args()
    seed_everything(args.seed)
    device = get_device(args.device)

    x_train, y_train = (t.to(device) for t in load_dataset("mnist", "train"))
    x_test, y_test = (t.to(device) for t in load_dataset("mnist", "test"))
    f, g, svm, rbf = (zoo.frozen(zoo.load(name, device))
                      for name in ("mnist_classifier", args.flow, "mnist_svm", "mnist_svm_rbf"))
    print(f"test accuracy: linear SVM {oracle_target_share(svm, x_test, y_test):.3f}; RBF SVM "
          f"{oracle_target_share(rbf, x_test, y_test):.3f}; flow {args.flow} "
          f"({zoo.manifest_entry(args.flow)['metrics']['test_bits_per_dim']} bits/dim)")

    fours = x_test[sample_sources(y_test, predict(f, x_test), 4, args.n or None, args.seed,
                                  at_random=args.sources == "random")]
    bits = torch.Generator().manual_seed(args.seed)

    def bits_per_dim(images: torch.Tensor) -> float:
        with torch.no_grad():
            return g.bits_per_dim(images, generator=bits).mean().item()

    levels = ", ".join(map(str, args.confidence or [0.99]))
    print(f"\n{len(fours)} test 4s -> 9 at Λ = {levels}; shares are of the successful searches")
    columns = ["success", "steps", "linSVM", "rbfSVM", "10-NN", "L2 X", "bits/dim", "secs"]
    if args.classifier_noise:
        columns.append("other f")
    print(f"{'variant':28s}" + "".join(f"{c:>9s}" for c in columns))

    def judged(images: torch.Tensor, sources: torch.Tensor) -> str:
        values = [oracle_target_share(svm, images, 9), oracle_target_share(rbf, images, 9),
                  knn_target_share(images, x_train, y_train, 9),
                  l2_to_source(images, sources).mean().item(), bits_per_dim(images)]
        return "".join(f"{v:9.2f}" for v in values)

    print(f"{'originals':28s}{'':18s}{judged(fours, fours)}")

    def report(name: str, run, seconds: float, other: torch.nn.Module | None = None) -> None:
        ok = run.success
        extra = "" if other is None else f"{oracle_target_share(other, run.x[ok], 9):9.2f}"
        print(f"{name:28s}{ok.float().mean().item():9.2f}{int(run.steps.median()):9d}"
              f"{judged(run.x[ok], fours[ok])}{seconds:9.0f}{extra}", flush=True)

    def variant(name: str, space: str, lr: float, generator: torch.nn.Module | None,
                confidence: float = 0.99, max_steps: int = 2000, step: str = "adam",
                classifier: torch.nn.Module = f, other: torch.nn.Module | None = None):
        start = time.perf_counter()
        run = counterfactual_search(classifier, fours, ClassTarget(9, confidence), space=space, g=generator,
                                    lr=lr, max_steps=max_steps, bounds=(0.0, 1.0), progress=True, step=step)
        report(name, run, time.perf_counter() - start, other)
        return run

    if args.confidence:
        for confidence in args.confidence:
            for space in ("z", "x"):
                lr, max_steps = NOTEBOOK_03_SEARCH[space]
                variant(f"{space.upper()}, Λ = {confidence}", space, lr, g, confidence, max_steps)
        return
    if args.normalized or args.normalized_x:
        for space, lengths in (("z", args.normalized), ("x", args.normalized_x)):
            lr, max_steps = NOTEBOOK_03_SEARCH[space]
            variant(f"{space.upper()}, Adam {lr:g} (nb 03)", space, lr, g, max_steps=max_steps)
            for length in lengths:
                variant(f"{space.upper()}, normalised {length:g}", space, length, g, max_steps=max_steps,
                        step="normalized")
        return
    if args.tangent:
        lr, max_steps = NOTEBOOK_03_SEARCH["z"]
        free = variant("Z, every direction", "z", lr, g, max_steps=max_steps)
        start = time.perf_counter()
        with torch.no_grad():
            z0 = g.encode(fours)
        right = torch.linalg.svd(jacobian(g.decode, z0, mode="rev", chunk_size=1, row_chunk=196)).Vh
        print(f"  (Jacobians of g at the 4s and their SVDs: {time.perf_counter() - start:.0f} s)")
        for k in args.tangent:
            start = time.perf_counter()
            run = counterfactual_search(f, fours, ClassTarget(9), space="z", lr=lr, max_steps=max_steps,
                                        g=Confined(g, z0, right[:, :k].transpose(1, 2)),
                                        bounds=(0.0, 1.0), progress=True, check_every=max_steps + 1)
            report(f"Z, top {k} directions", run, time.perf_counter() - start)
            both = run.success & free.success  # the confined search succeeds less often: compare alike
            print(f"{'  both, top ' + str(k):28s}{both.float().mean().item():9.2f}{'':9s}"
                  f"{judged(run.x[both], fours[both])}")
            print(f"{'  both, every direction':28s}{'':18s}{judged(free.x[both], fours[both])}")
        return
    if args.classifier_noise:
        seed = zoo.manifest_entry("mnist_classifier")["train_params"]["seed"]
        smoothed = {f"CNN noise {noise:g}, seed {seed + i}": smoothed_classifier(noise, seed + i, device)
                    for i, noise in enumerate(args.classifier_noise)}
        for name, model in smoothed.items():
            print(f"  ({name}: test accuracy "
                  f"{oracle_target_share(model, x_test, y_test):.4f}, calls "
                  f"{oracle_target_share(model, fours, 4):.2f} of the 4s a 4; shipped CNN "
                  f"{oracle_target_share(f, x_test, y_test):.4f})")
        first = next(iter(smoothed.values()))
        rows = {"x": fours}
        for space in ("z", "x"):
            lr, max_steps = NOTEBOOK_03_SEARCH[space]
            rows[f"{space.upper()}, shipped CNN"] = variant(
                f"{space.upper()}, shipped CNN", space, lr, g, max_steps=max_steps, other=first).x
            for name, model in smoothed.items():
                rows[f"{space.upper()}, {name}"] = variant(f"{space.upper()}, {name}", space, lr, g,
                                                           max_steps=max_steps, classifier=model, other=f).x
        if args.figure:
            image_rows(rows, n_cols=10).savefig(args.figure, dpi=90, bbox_inches="tight")
            print(f"  (the first ten 4s and their searches: {args.figure})")
        return
    if args.scales:
        sizes = g.scale_sizes
        last = len(sizes) - 1
        lr, max_steps = NOTEBOOK_03_SEARCH["z"]
        for name, moved in (("every scale", None), ("coarsest only", {last}), ("finest only", {0})):
            restricted = g if moved is None else ScalesMoved(g, sizes, moved)
            variant(f"Z, {name}", "z", lr, restricted, max_steps=max_steps)
            variant(f"Z, {name}, norm 0.5", "z", 0.5, restricted, max_steps=max_steps, step="normalized")
        return
    if not args.flow_steps:
        for name, space, lr in [("Z, Adam 5e-2 (paper)", "z", 5e-2), ("Z, Adam 1e-2", "z", 1e-2),
                                ("X, Adam 5e-4 (paper)", "x", 5e-4), ("X, Adam 2e-3", "x", 2e-3),
                                ("X, Adam 5e-3 (nb 03)", "x", 5e-3)]:
            variant(name, space, lr, g)
        return
    shipped = zoo.manifest_entry("mnist_flow")
    variant(f"Z, 5e-2, flow {shipped['train_params']['steps']}", "z", 5e-2, g)
    for steps in args.flow_steps:
        flow, metrics, stage = stages.train("mnist_flow", device, steps=steps)
        print(f"  (flow trained for {steps} steps in {stage.seconds / 60:.0f} min: test bits/dim "
              f"{metrics['test_bits_per_dim']:.2f}; the shipped flow's, {shipped['train_params']['steps']} "
              f"steps: {shipped['metrics']['test_bits_per_dim']:.2f})")
        variant(f"Z, 5e-2, flow {steps}", "z", 5e-2, zoo.frozen(flow))


if __name__ == "__main__":
    main()
