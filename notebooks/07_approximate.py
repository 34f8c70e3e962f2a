# %% [markdown]
# # 07 · Approximately diffeomorphic counterfactuals: a VAE and a GAN instead of a flow
#
# **Claim.** A normalizing flow is not the only generator that keeps a counterfactual search on the
# data. The decoder of a VAE or the generator of a GAN works too, *approximately*: ascent in its
# latent space still moves the image along the manifold the generator has learned (Theorem 2), but
# the image has to be brought into that latent space first, by the VAE's encoder or by inverting
# the GAN, and that step may lose information, $g(g^{-1}(x)) \neq x$.
#
# **Paper.** §II (approximately diffeomorphic counterfactuals), Theorem 2, Fig. 9 (MNIST: conv VAE
# and dcGAN), Fig. 10 (CelebA-HQ: StyleGAN with a learned inversion).
#
# **What you will see.** On MNIST (sections 1–5): (1) reconstructions $g(g^{-1}(x))$ of the flow,
# the VAE and the GAN, and the two ways to invert a GAN, the paper's optimisation from a random start
# and a learned encoder followed by the same refinement (the idea of e4e / HyperStyle).
# (2) Counterfactuals 4 → 9 in each generator's latent space beside adversarials in pixel space,
# judged as in notebook 03 (oracle, nearest neighbours, IM1). (3) The geometry behind Theorem 2:
# the spectrum of $JJ^\top$ for the three generators, and how much of a latent step stays on their
# manifolds. On CelebA (section 6): the same three steps for "not blond → blond" with a VAE, a dcGAN
# and a small style-based GAN inverted into $W^+$ by a learned encoder, beside notebook 04's flow.
#
# **Runtime.** About 4½ minutes on a 2-core CPU with the shipped checkpoints (4.5 measured). MNIST:
# 300 test 4s drawn at random for 4 → 9, 32 of them for the inversion comparison, inversions of at
# most 500 steps, latent searches of at most 300, and 300 of each generator's own 4s; CelebA: 24
# faces, inversions of at most 200 steps, searches of at most 500. The full run
# (`notebooks/params/full.yaml`: all 979 test 4s the CNN calls 4 and 200 faces, the paper's
# 3000 / 2000 inversion steps and its MNIST latent search) is not timed; expect well over an hour
# on the CPU.
#
# **Data.** Real MNIST from `$DIFFCF_DATA/mnist` and real CelebA from `$DIFFCF_DATA/celeba`
# (`make data`), as in notebooks 03 and 04 (CelebA: the 8000 training faces at 32 × 32, 5 bits).

# %% tags=["parameters"]
n_images = 300  # test 4s for the 4 -> 9 study, drawn at random (paper and full.yaml: all, None)
n_recon = 32  # of them, the images on which the two GAN inversions are compared
n_own = 300  # the generators' own 4s (no inversion) searched in section 4 (full.yaml: 1000)
source, target = 4, 9  # the paper's pair
confidence = 0.99  # Λ
inversion_steps = 500  # most Adam steps of a GAN inversion (paper's code: 3000; full.yaml)
lr_latent, max_steps_latent = 2e-2, 300  # Adam in the VAE's and GAN's latents (paper's code: 5e-3, 1000)
lr_z, max_steps_z = 5e-2, 500  # Adam in the flow's latent space (as notebook 03; its cap 1000)
lr_x, max_steps_x = 5e-3, 2000  # Adam in X (as notebook 03)
k_neighbours = 10  # k-NN check (paper: 10)
n_metric = 12  # images at which the spectrum of J Jᵀ is computed for each generator
n_faces = 24  # CelebA: not-blond test faces, reconstructed and searched (full.yaml: 200)
celeba_inversion_steps = 200  # most Adam steps of a CelebA GAN inversion (paper's code, pGAN: 2000)
lr_z_celeba, max_steps_celeba = 5e-3, 500  # Adam in the flow's Z (as 04); cap of every CelebA search (04: 1000)
lr_x_celeba = 1.4e-3  # Adam in X (04 and the paper's code: 7e-4 over 1000 steps; here twice it over half)
lr_latent_celeba = 5e-2  # Adam in the CelebA VAE's and GANs' latents (paper's code: 5e-3; see section 6)
n_metric_celeba = 1  # faces at which the spectrum of J Jᵀ is computed (the flow's J is 3072 × 3072)
seed = 0
device = "auto"  # "cpu", "cuda", or "auto": CUDA when torch sees one

# %%
import time

import matplotlib.pyplot as plt
import torch
from torchmetrics.functional import structural_similarity_index_measure as ssim

from diffcf import paper, seed_everything, zoo
from diffcf.data.celeba import BLOND_HAIR, attribute_index
from diffcf.data.mnist import load_dataset
from diffcf.evaluate import (
    judge_searches,
    oracle_target_share,
    predict,
    sample_sources,
    search_margin,
    target_shares,
)
from diffcf.geometry import onmanifold_shares
from diffcf.inversion import KnownLatents, invert
from diffcf.plotting import COLORS, generator_spectra, image_rows, share_bars
from diffcf.recipes.celeba import load_quantized
from diffcf.search import ClassTarget, counterfactual_search
from diffcf.utils import get_device, save_figure, save_results

STEM = "07_approximate"
gen = seed_everything(seed)
device = get_device(device)

# %% [markdown]
# ## 1. Three generators
#
# | name | $g^{-1}(x)$ | $g(g^{-1}(x)) = x$? | latent size |
# |---|---|---|---|
# | `mnist_flow` (notebooks 02, 03) | exact inverse | yes (to float precision) | 784 |
# | `mnist_vae`: conv VAE (paper: 10-d latent) | encoder: posterior mean $\mu(x)$ | no | 10 |
# | `mnist_gan`: dcGAN (paper: nz 100, ngf 32) | inversion: $\arg\min_z \lVert g(z) - x\rVert^2$ | no | 100 |
# | `mnist_gan_encoder` | a learned start for that inversion | — | — |
#
# The judges are those of notebook 03: the CNN being explained, the linear SVM oracle (92%), the
# class-specific autoencoders for IM1. Each model's manifest entry says how it was trained.

# %%
x_train, y_train = (t.to(device) for t in load_dataset("mnist", "train"))
x_test, y_test = (t.to(device) for t in load_dataset("mnist", "test"))
f, flow, vae, gan, encoder, svm, svm_rbf, aes = (zoo.frozen(zoo.load_or_train(name, device=device)) for name in (
    "mnist_classifier", "mnist_flow", "mnist_vae", "mnist_gan", "mnist_gan_encoder", "mnist_svm", "mnist_svm_rbf",
    "mnist_autoencoders"))
gan = gan.generator  # the discriminator is only kept in the checkpoint to resume training


def print_training(names):
    """How each generator was trained, from its manifest entry."""
    for name in names:
        entry = zoo.manifest_entry(name)
        print(f"{name:24s} {entry['steps_done']} steps in {entry['train_seconds'] / 60:.0f} min on "
              f"{entry['device']}: {entry['metrics']}")


print_training(("mnist_vae", "mnist_gan", "mnist_gan_encoder"))

# %% [markdown]
# What the generators produce on their own, from the prior $z \sim \mathcal{N}(0, I)$ (the flow at
# temperature 0.7, as in notebook 03):

# %%
with torch.no_grad():
    z_gen = torch.Generator().manual_seed(seed)
    prior_samples = {
        "flow": flow.sample(12, z_gen, temperature=0.7).clamp(0, 1),
        "VAE": vae.decode(torch.randn(12, vae.latent, generator=z_gen).to(device)),
        "GAN": gan.decode(torch.randn(12, gan.nz, generator=z_gen).to(device)),
    }
fig = image_rows(prior_samples, size=0.8)
fig.suptitle("Samples g(z), z drawn from each generator's prior", y=1.02)
save_figure(fig, STEM, "samples")
plt.show()

# %% [markdown]
# The VAE's samples are digits, blurred where the 10-d latent is unsure (the seventh and eighth);
# the GAN's are sharp digits, with the odd stroke that is none (the second, an "x"); the flow's
# are mostly fragments. Notebook 03's measure of sample quality, the share of 1000 samples the CNN
# assigns to some class with probability above 0.9, is 85% for this GAN
# (`benchmarks/mnist_latent_lr.py` prints it): trained for 30 000 steps. Trained for 6000, as an
# earlier version of this notebook shipped it, its samples scored 78%, and section 4 shows what
# that cost.
#
# ## 2. Bringing an image into the latent space: $g^{-1}$ and what it loses
#
# The flow inverts exactly. The VAE's encoder gives the mean of $q(z \mid x)$, and decoding it
# returns a smoothed version of the digit: the VAE's bottleneck of 10 numbers keeps the shape, not
# every pixel. The GAN has no encoder at all; the paper's code **inverts** it by optimisation,
#
# $$g^{-1}(x) = \arg\min_z \tfrac{1}{D}\lVert \mathrm{clip}(g(z), 0, 1) - x \rVert^2,$$
#
# with Adam (learning rate 0.1) from a random $z \sim \mathcal{N}(0, I)$, stopping at a mean squared
# error below $10^{-3}$ or after 3000 steps (here `inversion_steps`). Beyond the paper's code, a
# **learned encoder** $E$ gives the starting point instead, and the same optimisation refines it;
# this is how learned inversions of large GANs work (e4e, HyperStyle; the paper uses HyperStyle for
# its StyleGAN, Fig. 10). All inversions run batched, each image stopping at its own step.
#
# The source images are `n_images` test 4s that the CNN calls 4, drawn at random
# (:func:`~diffcf.evaluate.sample_sources`; the paper uses all of them, as `full.yaml` does). A
# random draw, not the first ones in the file: MNIST's test file is ordered by writers (its first
# 5000 images come from one population, its last 5000 from another), its first 500 4s are exactly the
# 4s of the first half, and section 4 shows that the two halves get different verdicts.
#
# First the two GAN inversions on the first `n_recon` of these 4s, with the same budget: from a random
# start, and from $E(x)$. Then a third run asks how many refinement steps from $E(x)$ each image
# needs to match the error the random start reached at the end of its budget.

# %%
pred_test = predict(f, x_test)
x = x_test[sample_sources(y_test, pred_test, source, n_images, seed)]
x_r = x[:n_recon]

with torch.no_grad():
    e_start = encoder(x)
inv = invert(gan, x, start=e_start, max_steps=inversion_steps, progress=True)  # used from here on
inv_random = invert(gan, x_r, max_steps=inversion_steps, seed=seed, progress=True)
inv_match = invert(gan, x_r, start=e_start[:n_recon], max_steps=inversion_steps,
                   tol=inv_random.mse.clamp_min(1e-3))
with torch.no_grad():
    rec = {"flow": flow.decode(flow.encode(x)).clamp(0, 1), "VAE": vae.decode(vae.encode(x)),
           "GAN": inv.x, "GAN, E(x) only": gan.decode(e_start).clamp(0, 1)}


def mse(images, originals):
    return (images - originals).square().flatten(1).mean(1)


def reconstruction_table(f, originals, candidates, source, source_name):
    """Print one row per reconstruction ``name -> (images, steps)`` of ``originals``: mean and
    median MSE, SSIM, the share below the paper's 1e-3, the share ``f`` still assigns to ``source``,
    the mean inversion steps (nan: no inversion)."""
    rows = {}
    for name, (images, steps) in candidates.items():
        err = mse(images, originals)
        rows[name] = {"MSE": err.mean().item(), "median": err.median().item(),
                      "SSIM": ssim(images, originals, data_range=1.0).item(),
                      "MSE < 1e-3": (err < 1e-3).float().mean().item(),
                      f"f: {source_name}": (predict(f, images) == source).float().mean().item(),
                      "mean steps": steps.float().mean().item()}
    print(f"{'':26s}" + "".join(f"{c:>13s}" for c in rows[next(iter(rows))]))
    for name, row in rows.items():
        print(f"{name:26s}" + "".join(f"{v:13.5f}" if c in ("MSE", "median") else f"{v:13.3g}"
                                      for c, v in row.items()))


def steps_to_match(runs, n):
    """Print how many steps each inversion in ``runs`` took to reach its tolerance."""
    print(f"\nto reach the error of the plain start's last step (or 1e-3), on the same {n} images:")
    for name, run in runs.items():
        print(f"  {name:13s} {run.steps.float().mean():6.0f} steps on average, the batch done after "
              f"{run.seconds.max():5.1f} s (reached for {run.success.float().mean():.0%})")


# %%
nan = torch.full((n_recon,), float("nan"))
print(f"reconstructions of {n_recon} test {source}s; inversions of at most {inversion_steps} steps")
reconstruction_table(f, x_r, {
    "flow": (rec["flow"][:n_recon], nan),
    "VAE": (rec["VAE"][:n_recon], nan),
    "GAN, E(x) only": (rec["GAN, E(x) only"][:n_recon], torch.zeros(n_recon)),
    "GAN, random start": (inv_random.x, inv_random.steps),
    "GAN, E(x) + refinement": (inv.x[:n_recon], inv.steps[:n_recon]),
}, source, str(source))
steps_to_match({"random start": inv_random, "from E(x)": inv_match}, n_recon)

# %%
cols = 10
fig = image_rows({"$x$": x[:cols], "flow": rec["flow"][:cols], "VAE": rec["VAE"][:cols],
                  "GAN: E(x)": rec["GAN, E(x) only"][:cols], "GAN: random start": inv_random.x[:cols],
                  "GAN: E(x) + refine": inv.x[:cols]})
fig.suptitle("Reconstructions g(g⁻¹(x))", y=0.95)
save_figure(fig, STEM, "reconstructions")
plt.show()

recon_mse = {name: mse(images, x).mean().item() for name, images in rec.items()}
recon_ssim = {name: ssim(rec[name], x, data_range=1.0).item() for name in ("VAE", "GAN")}
inversion_steps_random = inv_random.steps.float().mean().item()
inversion_steps_encoder_to_match = inv_match.steps.float().mean().item()


# %% [markdown]
# The column "f: 4" (the share `f` still calls a 4) matters for what follows: a search starts from the reconstruction, and a
# reconstruction the classifier no longer calls a 4 starts the search somewhere else.
#
# What the table and the grid show (the run stored with this notebook). The flow's error is
# round-off: it *is* a diffeomorphism. The VAE's reconstructions are smoothed versions of each
# digit: shape and slant survive the 10-number bottleneck, the stroke's detail does not, and an
# unusual 4 can come back as another digit (the tenth column, a 4 with a looped crossbar, returns
# as a blurred 6, and the fourth nearly closes into a 9; 6% of the 32 are no 4 to `f`). The GAN
# can only return images it can draw. Its encoder alone gives a plausible digit of the right
# slant, but not always a 4 (the fourth and ninth columns come back with closed tops, the tenth as
# a 6; 9% of the 32 are no 4 to `f`). The paper's inversion from a random start gets closer on
# average, but it stalls for some images in a wrong basin (a loose loop in the ninth column, a 6
# with a box in the tenth; 22% are no 4 to `f`), and 16% reach the paper's MSE of 1e-3 within 500
# steps (exercise 1 gives it the paper's 3000). Starting the same optimisation at $E(x)$ gives the
# most faithful reconstructions (SSIM 0.98, a quarter below 1e-3, 31 of 32 still 4s to `f`; the
# tenth column's odd 4 comes back whole), and the last printed lines answer the question a
# learned inversion is for: to reach the error at which the random start *ended*, the refinement
# from $E(x)$ needs 40% of the steps (192 against 483) and two thirds of the time.
#
# Whatever is lost here is lost for the counterfactual too: the search starts from $g(g^{-1}(x))$,
# not from $x$, and the counterfactual differs from the original by the reconstruction error *plus*
# the change the search makes. The figures below show the two apart.
#
# ## 3. Counterfactuals 4 → 9 in four spaces (Fig. 9)
#
# The same search as notebook 03 (Adam on the cross-entropy to class 9, every image stopping at
# $f_9 > \Lambda = 0.99$, pixels clipped to $[0, 1]$), run in the flow's latent space, the VAE's,
# the GAN's (from the inversion above) and in pixel space. The VAE and GAN searches use Adam with
# learning rate `lr_latent` = 2e-2 and at most 300 steps; the paper's code uses 5e-3 and 1000
# (`full.yaml`). `benchmarks/mnist_latent_lr.py --n 0 --settings 2e-2:300 5e-3:1000` measured
# both on all 979 test 4s the CNN calls 4 (about 9 CPU minutes): 5e-3 / 1000 steps reach Λ for 97%
# (VAE) and 96% (GAN) in 142 and 96 s, 2e-2 / 300 for 97% and 95% in 36 and 28 s, and the judges
# below change by a few points only, in favour of the larger step (linear oracle 0.46 → 0.48 for
# the VAE, 0.44 → 0.48 for the GAN; RBF oracle 0.65 → 0.69, 0.59 → 0.66).

# %%
def search_every_space(f, x, target, latent_spaces, lr_x, max_steps_x):
    """The same search in each latent space ``name -> (g, lr, max_steps)`` and in X ("X"); prints
    success, median steps and seconds per space and returns the runs."""
    runs, seconds = {}, {}
    spaces = {**{name: ("z", g, lr, steps) for name, (g, lr, steps) in latent_spaces.items()},
              "X": ("x", None, lr_x, max_steps_x)}
    for name, (space, g, lr, steps) in spaces.items():
        t0 = time.perf_counter()
        runs[name] = counterfactual_search(f, x, ClassTarget(target, confidence), space=space, g=g, lr=lr,
                                           max_steps=steps, bounds=(0.0, 1.0), progress=True)
        seconds[name] = time.perf_counter() - t0
    print(f"{'space':10s}{'success':>9s}{'median steps':>14s}{'seconds':>9s}")
    for name, run in runs.items():
        print(f"{name:10s}{run.success.float().mean().item():9.2f}{run.steps.median().item():14.0f}"
              f"{seconds[name]:9.1f}")
    return runs


print(f"{len(x)} test images of class {source} -> {target}")
runs = search_every_space(f, x, target, {
    "flow": (flow, lr_z, max_steps_z), "VAE": (vae, lr_latent, max_steps_latent),
    "GAN": (KnownLatents(gan, inv.z), lr_latent, max_steps_latent)}, lr_x, max_steps_x)

# %% tags=["nbval-check-output"]
print(f"at least 90% of the searches succeed in every generator's latent space: "
      f"{all(runs[n].success.float().mean().item() >= 0.9 for n in ('flow', 'VAE', 'GAN'))}")

# %%
fig = image_rows({
    "$x$": x[:cols], "flow: $x'$": runs["flow"].x[:cols],
    "VAE: $g(g^{-1}(x))$": rec["VAE"][:cols], "VAE: $x'$": runs["VAE"].x[:cols],
    "$|x' - g(g^{-1}(x))|$, VAE": (runs["VAE"].x - rec["VAE"])[:cols],
    "GAN: $g(g^{-1}(x))$": rec["GAN"][:cols], "GAN: $x'$": runs["GAN"].x[:cols],
    "$|x' - g(g^{-1}(x))|$, GAN": (runs["GAN"].x - rec["GAN"])[:cols],
    "X: $x'$": runs["X"].x[:cols],
})
fig.suptitle(f"{source} → {target} at Λ = {confidence} in the latent spaces of three generators and in X",
             y=0.92)
save_figure(fig, STEM, "fig9_examples")
plt.show()


# %% [markdown]
# How to read the grid (the paper's Fig. 9 shows the VAE and GAN rows): for the VAE and the GAN, the
# difference row is taken to the *reconstruction*, so it shows what the search changed, not what
# the inversion lost.
#
# What a reader sees, row by row, in the run stored with this notebook:
#
# - **VAE**: eight of the ten counterfactuals are 9s that keep the slant and thickness of their
#   4 (all but the third and the tenth): the open top is closed into a loop and the stem kept. The
#   difference row draws exactly that loop. The third stays a 4 whose top has only just closed, and
#   the tenth starts from the VAE's blurred 6 (its reconstruction of the odd 4) and ends as a
#   blurred shape between 4 and 9. This is the paper's claim at its clearest, with the price
#   visible one row up: the 9s are as smooth as the VAE's reconstructions.
# - **GAN**: eight of the ten close the 4 into a 9 in its own slant and stroke width (first, third
#   to ninth; the eighth is the wide 4 with its top closed into a broad loop); the second is redrawn
#   whole into a 0, and the tenth, the odd 4 with the looped crossbar, ends at strokes that are no
#   digit. The strokes stay sharp (the GAN draws sharp digits), and the difference row shows the
#   change following the strokes: the top closed, the 4's crossbar bent into the loop.
# - **Flow** (the shipped `mnist_flow`, as in notebook 03): broken strokes, blobs and fragments
#   (the fourth a dotted trace); a few (third, seventh) read as 9s. Notebook 03 discusses why (a
#   flow far from the data manifold in its samples).
# - **X**: the original plus a haze over the whole image, as in notebook 03.
#
# ## 4. Do independent judges agree? (Fig. 11, Fig. 13, Table I)
#
# The same judges as notebook 03, on the successful searches: the linear SVM oracle (the paper's
# judge: a linear SVM matches its 92% test accuracy), beside it the RBF-kernel SVM of notebook 03
# (96.5%, not in the paper), the labels of the 10 nearest training images, and IM1 (below 1: the
# target class's autoencoder explains the image better than the source class's).

# %%
def judge(runs, x, svm, x_train, y_train, aes, source, target, other_oracles=None):
    """The judges of notebook 03 (:func:`~diffcf.evaluate.judge_searches`), printed as a table."""
    judged = judge_searches(runs, x, svm, x_train, y_train, aes, source, target, k=k_neighbours,
                            other_oracles=other_oracles)
    print(f"{'':10s}" + "".join(f"{c:>12s}" for c in judged["original"]))
    for name, row in judged.items():
        print(f"{name:10s}" + "".join(f"{v:12.2f}" for v in row.values()))
    return judged


def judge_bars(judged, target_name, colors):
    """Fig. 11 / Fig. 13 bars: each oracle's and the k-NN's share of the target, originals first."""
    names = list(judged)
    titles = {"oracle": f"linear SVM oracle says {target_name} (Fig. 11)",
              "RBF oracle": f"RBF SVM oracle says {target_name} (not in the paper)",
              "k-NN": f"{k_neighbours}-NN labels that are {target_name} (Fig. 13)"}
    return share_bars({title: [judged[n][column] for n in names] for column, title in titles.items()
                       if column in judged["original"]},
                      labels=tuple(n if n != "X" else "X\nadversarial" for n in names), colors=colors)


judged = judge({n: runs[n] for n in ("X", "flow", "VAE", "GAN")}, x, svm, x_train, y_train, aes, source,
               target, other_oracles={"RBF oracle": svm_rbf})
order = ["X", "flow", "VAE", "GAN"]

# %%
fig = judge_bars(judged, str(target), (COLORS["data"], COLORS["x"], COLORS["z"], COLORS["vae"], COLORS["gan"]))
save_figure(fig, STEM, "oracle_knn")
plt.show()

# %% [markdown]
# The check below asks whether an oracle calls at least 20 points more of a generator's
# counterfactuals a 9 than of the adversarials. On 300 images a share carries a sampling error of
# up to 3 points, so each margin is printed with a 95% interval: a paired bootstrap over the source
# 4s (:func:`~diffcf.evaluate.search_margin`; both searches started from the same 4s, so
# the resamples keep the pairs). The interval says how far the margin could move on another 300
# test 4s drawn the same way; it does not include the variation between training runs of the
# generators (section 4's last paragraphs measure that separately).

# %%
def oracle_margins(runs, oracles, target, latent_names, baseline="X", level=0.95):
    """``(latent, oracle) -> (margin, low, high)``: each oracle's share of ``target`` among a latent
    search's successes minus its share among the ``baseline``'s, with a paired bootstrap interval."""
    margins = {(n, o): search_margin(oracle, runs[n], runs[baseline], target, level=level, seed=seed)
               for o, oracle in oracles.items() for n in latent_names}
    print(f"{'':30s}{'share of ' + str(target) + 's':>14s}{'in X':>7s}{'margin':>9s}  ({level:.0%} interval)")
    for (n, o), (margin, low, high) in margins.items():
        share, share_x = (oracle_target_share(oracles[o], runs[m].x[runs[m].success], target)
                          for m in (n, baseline))
        print(f"{n:5s} {o:24s}{share:14.2f}{share_x:7.2f}{100 * margin:+9.1f}  [{100 * low:+6.1f}, {100 * high:+6.1f}]")
    return margins


margins = oracle_margins(runs, {"linear SVM (the paper's)": svm, "RBF SVM": svm_rbf}, target,
                         ("flow", "VAE", "GAN"))

# %% tags=["nbval-check-output"]
for name in ("VAE", "GAN"):
    for oracle_name in ("linear SVM (the paper's)", "RBF SVM"):
        print(f"{name}: the {oracle_name} oracle's share exceeds the adversarials' by >= 20 points: "
              f"{margins[name, oracle_name][0] >= 0.20}")

# %% [markdown]
# What the judges say. The nearest neighbours agree with the grid: more than half of the ten
# nearest training images of a VAE or a GAN counterfactual are 9s (62% and 58%), a third for the
# flow, and one in nine for the adversarials. IM1 puts the three generators a little ahead of X
# (values near 1 mean "as much a 9 as a 4" to the two autoencoders; the VAE's 0.92 and the GAN's
# 0.93 are below it). The RBF oracle sides with the generators as clearly: it calls 69% of the VAE
# counterfactuals and 66% of the GAN's a 9, against 5% of the adversarials. The paper's linear SVM
# oracle follows less far, but past this project's threshold: it calls 50% of the VAE
# counterfactuals a 9, 25 points more than the adversarials (25%), and 47% of the GAN's, 22 points
# more (target: 20). The intervals (VAE +19 to +31, GAN +16 to +28) say that another 300 test 4s
# could leave either margin a little below 20; the flow's (−0.4, from −6 to +5) is not even above
# zero. The same oracle fails on the flow in notebook 03, where the measurements point at the
# judge: dense pixel noise moves a linear model on pixels toward "9" almost as well as it moves the
# CNN (a quarter of the adversarials here; Adam's sign-like steps in X, notebook 03 section 3),
# while 9s drawn in a 4's slant and position are not always on the 9 side of a linear boundary
# that is only 92% accurate, and the flow's fragments rarely are.
#
# **All test 4s, and the two halves of the test file.** The paper searches from every test 4.
# `benchmarks/mnist_latent_lr.py --n 0 --settings 2e-2:300 5e-3:1000` does the same for the VAE and
# the GAN (all 979 test 4s the CNN calls 4, the GAN inverted in at most 500 steps as here; about 9
# CPU minutes) and prints each linear-oracle margin with its interval and within each half of the
# test file (the first half holds 497 of these 4s, the second 482):
#
# | search | linear SVM: 9 | margin over X (95% interval) | first half | second half | RBF SVM: 9 | 10-NN: 9 |
# |---|---|---|---|---|---|---|
# | X, Adam 5e-3 (adversarials) | 0.24 | | 0.30 | 0.17 | 0.06 | 0.09 |
# | VAE, Adam 2e-2 / 300 (this notebook) | 0.48 | +24.4 (+20.9 to +27.7) | +21.5 | +27.3 | 0.69 | 0.62 |
# | GAN, Adam 2e-2 / 300 (this notebook) | 0.48 | +24.6 (+21.1 to +28.3) | +19.1 | +30.4 | 0.66 | 0.60 |
# | VAE, Adam 5e-3 / 1000 (the paper's code) | 0.46 | +22.0 (+18.6 to +25.3) | +19.0 | +25.1 | 0.65 | 0.59 |
# | GAN, Adam 5e-3 / 1000 (the paper's code) | 0.44 | +20.5 (+17.0 to +24.0) | +13.4 | +27.8 | 0.59 | 0.55 |
#
# (The X row's half columns are the linear oracle's share of 9s among the adversarials of each
# half.) On all test 4s both generators clear the threshold with this notebook's step, with
# intervals that stay above 20; with the paper's smaller step both margins are a little lower,
# still above 20, with intervals reaching down to 17 and 19. The flow's searches (notebook 03's;
# `benchmarks/mnist_oracle_gap.py --n 0 --confidence 0.99`) give no margin on all test 4s either:
# the linear oracle calls 22% of its counterfactuals a 9, against 24% of the adversarials (RBF
# oracle 22% against 6%, neighbours 34% against 9%).
#
# The two halves disagree. On the first half's 4s the adversarials fool the linear oracle nearly
# twice as often (30% against 17%), the counterfactuals' shares differ less, and the margins there
# are 6 (VAE) to 14 (GAN) points lower. An earlier version of this notebook took the *first* 100
# test 4s in the file (and its benchmarks the first 500): all from the first half, where the GAN's
# margin stayed below 20 in every measurement (+16 on those 100). This version draws its 4s at
# random (section 2). That change was made after seeing the halves differ, which is why the table
# prints both: the verdict of the paper's protocol (all test 4s) is the column of margins with
# intervals, and the first half alone would still fail the GAN.
#
# How much does the generator decide? The runs below were measured on the first 500 test 4s
# (`--sources first`, before this notebook drew at random), the half where margins run lowest; they
# compare training runs of the recipes on the same images, not the verdict of the table above.
#
# For the GAN, its training length decides a lot, its seed little.
# This notebook's GAN trained for 30 000 steps; an earlier version shipped the same recipe after
# 6000, whose samples the CNN trusted for 78% (85% now) and whose counterfactuals the linear oracle
# called a 9 no more often than the adversarials: margins of −2 and +1 points on the 500 4s.
# `benchmarks/mnist_latent_lr.py --sources first --n 500 --settings 5e-3:1000 2e-2:300 --gan-steps
# 6000` trains the recipe afresh for 6000 steps, then an encoder for it by the encoder's recipe, and
# searches it as here (about 12 CPU minutes): 78% confident samples, margins −2 and −1 (linear
# oracle 28% and 29%), RBF oracle 41% and 46%, neighbours 41% and 45%, success 95% and 96%. Two
# more runs of the shipped 30 000-step recipe with other seeds, each with its own encoder
# (`--gan-steps 30000 --seeds 1 2`, about 23 CPU minutes each), draw samples the CNN trusts as
# often as the shipped GAN's (86% both) and give margins of +12 and +19 (linear oracle 42%, 49%; RBF
# 58%, 65%; neighbours 52%, 58%) and +14 and +19 (44%, 49%; RBF 60%, 68%; neighbours 52%, 60%); the
# shipped GAN gave +13 and +17 there. Three runs of the recipe agree within two points: +12 to +14
# with the paper's step, +17 to +19 with this notebook's. Unlike the flows of notebook 03, the GAN's
# margin with the paper's oracle follows its sample quality; on this half the recipe settles 1 to 8
# points below the threshold in every run, and the other two seeds were not measured on all test
# 4s.
#
# For the VAE, the training run decides more than its length. `--vae-steps 6000 18000` trains the
# VAE's recipe afresh, in one process, for the shipped 6000 steps and for three times as many (test
# ELBO −100.6 and −97.2 nats; the shipped VAE −100.7; about 4 and 11 CPU minutes) and searches each
# from its own encoder: margins +24 and +28 after 6000 steps (linear oracle 54% and 58%; RBF 70%,
# 73%; neighbours 59%, 62%), +22 and +25 after 18 000 (52%, 55%; RBF 64%, 72%; neighbours 59%, 62%).
# A fourth run, 18 000 steps on two DDP processes like the shipped VAE (`torchrun --nproc_per_node=2
# -m diffcf.zoo train mnist_vae` with the recipe's steps set to 18 000; ELBO −97.3), gave +11 and
# +18 (41%, 48%; RBF 54%, 61%; neighbours 53%, 56%). Two more runs of the shipped recipe in one
# process with other seeds (`--vae-steps 6000 --seeds 1 2`, about 3 CPU minutes each; ELBO −103.1
# and −101.7) gave +19 and +22 (49%, 52%; RBF 61%, 69%; neighbours 55%, 58%) and +25 and +28 (55%,
# 58%; RBF 69%, 74%; neighbours 58%, 61%). With the shipped VAE's +19 and +22 there, six runs of
# the recipe (two lengths, one or two processes, three seeds) span +11 to +28 on this half; the four
# of the shipped length lie at +19 to +25 with the paper's step and +22 to +28 with this notebook's.
# The notebook keeps the shipped VAE and GAN rather than choose among runs by the judges' verdict
# on the test 4s.
#
# Could the linear oracle simply not read a *generated* digit: the VAE's smooth strokes, the GAN's
# drawing? That is testable. Each generator reconstructs real test 9s the same way it reconstructed
# the 4s ($g(g^{-1}(x))$: the VAE's encoder, the GAN's $E(x)$ + refinement), and the judges read
# those: their share of 9s is what they can say about this generator's 9s at best.

# %%
x_target = x_test[sample_sources(y_test, pred_test, target, n_images, seed)]
with torch.no_grad():
    target_recs = {"original": x_target, "VAE": vae.decode(vae.encode(x_target))}
    target_start = encoder(x_target)
target_recs["GAN"] = invert(gan, x_target, start=target_start, max_steps=inversion_steps).x
print(f"real test {target}s, reconstructed: share each judge calls a {target}")
print(f"{'':10s}{'CNN':>8s}{'oracle':>8s}{'RBF':>8s}{'k-NN':>8s}")
ceiling = {name: target_shares(images, {"CNN": f, "oracle": svm, "RBF": svm_rbf}, x_train, y_train, target,
                               k=k_neighbours) for name, images in target_recs.items()}
for name, row in ceiling.items():
    print(f"{name:10s}" + "".join(f"{v:8.2f}" for v in row.values()))


# %% [markdown]
# It can: the linear oracle calls 88% of these real 9s a 9 (its accuracy is 92%), 91% of the
# VAE's reconstructions of them and 87% of the GAN's; the RBF oracle and the nearest neighbours
# read all three at 0.92 or more. So the generators' strokes are not what the linear oracle
# misreads. What it misreads are the counterfactuals' *shapes*: 9s that keep a 4's slant and
# position, stopped at the first step where the CNN is 99% sure. The oracle's share of about one
# half on them measures how far such a minimal 9 generalises to a linear model on pixels, which is
# the paper's question.
#
# ### Does the round trip cost margin?
#
# Theorem 2 assumes more than Theorem 1: the data manifold must lie *inside* the generated manifold,
# $D \subset g(Z)$. A real 4 is not exactly in $g(Z)$ (section 2: the reconstruction differs), so
# the search starts from $g(g^{-1}(x))$, a nearby 4 the generator can draw. What if the start were
# on $g(Z)$ exactly? Below, the generators draw their own 4s: latents from the prior whose images
# the CNN calls 4 with probability above 0.99, `n_own` of them per generator (as many as the real
# 4s above, in the default run). Their latents are known, so there is no inversion and nothing is
# lost; the same searches as above run from them, in the latent space and in X, and the linear
# oracle judges both.

# %%
def own_sources(g, latent_size, n, target_class, generator):
    """``n`` latents of the generator's own images the CNN calls ``target_class`` at p > 0.99, and
    those images (drawn from the prior in batches of 1000 until ``n`` are found)."""
    zs = []
    while sum(len(z) for z in zs) < n:
        z = torch.randn(1000, latent_size, generator=generator).to(device)
        with torch.no_grad():
            p = torch.softmax(f(g.decode(z).clamp(0, 1)), dim=1)[:, target_class]
        zs.append(z[p > 0.99])
    z = torch.cat(zs)[:n]
    with torch.no_grad():
        return z, g.decode(z).clamp(0, 1)


own_gen = torch.Generator().manual_seed(seed + 1)
own_x, own_runs, own_margins = {}, {}, {}
for name, g, size in (("VAE", vae, vae.latent), ("GAN", gan, gan.nz)):
    z_own, own_x[name] = own_sources(g, size, n_own, source, own_gen)
    own_runs[name] = search_every_space(f, own_x[name], target, {name: (KnownLatents(g, z_own), lr_latent,
                                                                        max_steps_latent)}, lr_x, max_steps_x)
    own_margins |= oracle_margins(own_runs[name], {"linear SVM (the paper's)": svm}, target, (name,))

# %%
fig = image_rows({row: images[:cols] for name in own_runs for row, images in (
    (f"{name}'s own {source}", own_x[name]), (f"{name}: $x'$", own_runs[name][name].x),
    (f"X: $x'$ (of {name}'s)", own_runs[name]["X"].x))})
fig.suptitle(f"{source} → {target} from the generators' own {source}s: no inversion, nothing lost", y=0.92)
save_figure(fig, STEM, "own_sources")
plt.show()

# %% [markdown]
# What the grid shows (first ten of each, in the run stored here). The VAE's own 4s are smooth, and
# several have a top that is closed or nearly so (the first, fourth, sixth and ninth): 4s the CNN is
# sure about, drawn near the 4/9 border. All ten of its counterfactuals are 9s. The GAN's own 4s
# are sharp; six of its ten counterfactuals read as 9s (first to third, fifth, seventh, eighth), two
# end at open loops (fourth, ninth) and two at strokes that are no digit (sixth, tenth), and the
# first and fourth redraw the whole digit instead of closing the 4's top. The adversarials are the
# 4s under a haze, as everywhere.
#
# What the judges say: from their own 4s, the linear oracle's margin over the adversarials of the
# same images is +26 points for the VAE (95% interval +20 to +32) and +27 for the GAN (+21 to +33),
# against +25 and +22 from the real test 4s above: for the VAE no difference, for the GAN five
# points, inside both intervals. The GAN's counterfactuals are called a 9 more often from its own
# 4s (55%, against 47% from real 4s), its adversarials about as often (28% against 25%): a search
# that starts on $g(Z)$ ends where the oracle sees a 9 a little more often, and the round trip that
# section 2 measured (the search starts from the GAN's version of the 4, and the 9 it reaches is a
# 9 of that version) costs the GAN a few points at most. The VAE's counterfactuals are called a 9
# as often as from real 4s (49% against 50%), and so are its adversarials (23% against 25%). An
# earlier version of this notebook, whose real 4s all came from the first half of the test file
# (GAN +16 there), read this comparison as locating the GAN's shortfall in the round trip; with a
# random draw of real 4s there is no shortfall left to locate. Three cautions. The generators' own
# 4s are the 4s each draws best, and for the VAE they lie nearer the 9s than real 4s do (the grid).
# 11% (VAE) and 7% (GAN) of the searches from them fail within 300 steps (from real 4s: 3% and
# 6%), and shares count successes only: this compares two sets of sources, not a controlled
# experiment. And the higher oracle share of the GAN's counterfactuals does not come with cleaner
# pictures than in Fig. 9 above. The project's check stays on real test 4s, where a user's images
# come from.
#
# ## 5. Why it works: the metric of a generator with fewer latent dimensions (Theorem 2)
#
# Notebook 02 showed for the flow that a gradient step in $Z$ moves the image, to first order, by
# $\gamma^{-1}\,\partial f/\partial x$ with $\gamma^{-1} = JJ^\top$, $J = \partial g/\partial z$,
# and that this step mostly lies in the few directions where $\gamma^{-1}$ is large: along the
# data. For a VAE decoder or a GAN generator, $J$ is a $784 \times d$ matrix with $d = 10$ or
# $100$, so $JJ^\top$ has at most $d$ non-zero eigenvalues, and its eigenvectors with non-zero
# eigenvalue span the tangent space of the generated manifold $g(Z)$. A latent step can only move
# the image along that manifold; nothing of it can leave (Theorem 2: the approximate counterfactual
# stays on $g(Z)$, which approximates the data manifold as well as the generator has learned it).
#
# Below: the eigenvalues of $JJ^\top$ at `n_metric` reconstructed 4s for the three generators, and
# the share of the first-order Z-step $JJ^\top \nabla_x \log f_9$ and of the plain X-gradient
# $\nabla_x \log f_9$ (both at $g(g^{-1}(x))$) inside the top-$k$ eigenspace, where $k$ holds 90%
# of the trace (the rule of notebook 02).

# %%
def theorem2(f, decoders, latents, target, colors, stem_name):
    """:func:`~diffcf.geometry.onmanifold_shares` for each generator ``name -> g`` at its latents;
    draws, saves and prints the result."""
    measured = {name: onmanifold_shares(f, g, latents[name], target,
                                        # a flow's square J: row-chunked reverse mode (benchmarks/mnist_search.py)
                                        **(dict(mode="rev", chunk_size=1, row_chunk=196) if name == "flow" else {}))
                for name, g in decoders.items()}
    fig = generator_spectra(measured, colors)
    save_figure(fig, STEM, stem_name)
    plt.show()
    for name, m in measured.items():
        print(f"{name:8s} k = {m.dim:4d} of {m.eigenvalues.shape[1]:4d}: median share in the top-k eigenspace "
              f"X-gradient {m.x_gradient.median():.3f}, Z-step {m.z_step.median():.3f}; "
              f"Z-step inside span(J): {m.z_step_in_span.median():.4f}")
    return measured


decoders = {"flow": flow, "VAE": vae, "GAN": gan}
latents = {"flow": flow.encode(x[:n_metric]), "VAE": vae.encode(x[:n_metric]), "GAN": inv.z[:n_metric]}
shares = theorem2(f, decoders, latents, target, (COLORS["z"], COLORS["vae"], COLORS["gan"]), "theorem2_spectra")
names = list(decoders)

# %% tags=["nbval-check-output"]
print("the Z-step lies more in the top eigenspace than the X-gradient, for every generator: "
      f"{all(shares[n].z_step.median() > shares[n].x_gradient.median() for n in names)}")

# %% [markdown]
# What it means. The flow's spectrum covers all 784 directions and falls off smoothly; "along the
# data" is a matter of degree there. The VAE's has exactly 10 non-zero eigenvalues and the GAN's at
# most 100: beyond them the spectrum drops to round-off, and the last printed column shows that the
# whole first-order Z-step lies in the span of $J$ (share 1 up to round-off). The pixel gradient,
# in contrast, has only a small part inside these few directions. That is Theorem 2 in numbers:
# the step cannot leave the generated manifold. It says nothing about how well $g(Z)$ matches the
# data; the reconstructions of section 2 and the samples of section 1 do.
#
# ## 6. CelebA: not blond → blond with a VAE, a dcGAN and a style-based GAN (Fig. 10)
#
# The paper repeats the experiment on faces: a VAE and a progressive GAN on CelebA, and, in Fig. 10,
# a pre-trained 1024 × 1024 StyleGAN whose images are brought into its latent space by HyperStyle,
# a learned inversion. Those weights cannot be downloaded here, so this section builds the same
# mechanisms at the scale of notebook 04 (the 8000 training faces at 32 × 32, 5 bits), trained on
# this CPU:
#
# | name | $g^{-1}(x)$ | latent |
# |---|---|---|
# | `celeba_flow` (notebook 04) | exact inverse | 3072 |
# | `celeba_vae`: conv VAE (the paper's code: 128-d latent, KL weight 2.5e-4) | encoder mean | 128 |
# | `celeba_gan`: dcGAN (in place of the paper's progressive GAN) | inversion from a random $z$ (paper) | 100 |
# | `celeba_stylegan`: mapping network to $W$, modulated convolutions (StyleGAN2's mechanism) | inversion in $W^+$ | 8 × 128 |
# | `celeba_stylegan_encoder`: $x \to W^+$ (the e4e / HyperStyle idea) | start of that inversion | — |
#
# The classifier and the judges are notebook 04's: `celeba_classifier` (blond or not), the linear
# SVM oracle on pixels, the 10 nearest training faces, the class autoencoders for IM1.

# %%
xc_train, ac_train = (t.to(device) for t in load_quantized("train"))
xc_test, ac_test = (t.to(device) for t in load_quantized("test"))
blond = attribute_index(BLOND_HAIR)
yc_train, yc_test = ac_train[:, blond], ac_test[:, blond]
fc, flow_c, vae_c, gan_c, sgan_c, senc_c, svm_c, aes_c = (zoo.frozen(zoo.load_or_train(name, device=device)) for name in (
    "celeba_classifier", "celeba_flow", "celeba_vae", "celeba_gan", "celeba_stylegan", "celeba_stylegan_encoder",
    "celeba_svm", "celeba_autoencoders"))
gan_c, sgan_c = gan_c.generator, sgan_c.generator
print_training(("celeba_vae", "celeba_gan", "celeba_stylegan", "celeba_stylegan_encoder"))
print(f"{'celeba_flow':24s}", zoo.flow_summary("celeba_flow"))

with torch.no_grad():
    z_gen = torch.Generator().manual_seed(seed)
    fig = image_rows({
        "flow, T = 0.7": flow_c.sample(10, z_gen, temperature=0.7).clamp(0, 1),
        "VAE": vae_c.decode(torch.randn(10, vae_c.latent, generator=z_gen).to(device)),
        "dcGAN": gan_c.decode(torch.randn(10, gan_c.nz, generator=z_gen).to(device)),
        "StyleGAN": sgan_c.decode(sgan_c.sample_latent(10, z_gen)),
    }, size=1.0)
fig.suptitle("CelebA: samples g(z), z drawn from each generator's prior", y=0.97)
save_figure(fig, STEM, "celeba_samples")
plt.show()

# %% [markdown]
# Four generators, four kinds of faces (the run stored with this notebook). The flow's samples at
# T = 0.7 are blurred but whole faces. The VAE's are smooth, almost averaged faces: a 128-number
# bottleneck and a Gaussian likelihood give up detail. The dcGAN's are sharper but speckled with
# high-frequency artefacts; the style-based GAN's vary in colour and pose, with blotches inside the
# faces. Both GANs trained for 20 to 30 CPU minutes (manifest above), far from the paper's
# pre-trained models, and it shows.
#
# **Reconstructions.** The faces are `n_faces` test faces that are not blond and that the classifier
# calls not blond. The dcGAN is inverted as the paper's code inverts its GANs, from a random start.
# The style-based generator is inverted in $W^+$ from its mean $w$ (StyleGAN's projector) and, the
# inversion used from here on, from its encoder's $E(x)$; the same budget of
# `celeba_inversion_steps` steps for each. As on MNIST, a last run asks how many refinement steps
# from $E(x)$ reach the error at which the mean-$w$ start ended.

# %%
source_c, target_c = 0, 1  # not blond, blond
pred_c = predict(fc, xc_test)
xc = xc_test[(yc_test == source_c) & (pred_c == source_c)][:n_faces]
with torch.no_grad():
    e_start_c = senc_c(xc)
inv_dc = invert(gan_c, xc, max_steps=celeba_inversion_steps, seed=seed, progress=True)  # the paper's
inv_sg_mean = invert(sgan_c, xc, max_steps=celeba_inversion_steps, progress=True)  # from the mean w
inv_sg = invert(sgan_c, xc, start=e_start_c, max_steps=celeba_inversion_steps, progress=True)  # used
inv_sg_match = invert(sgan_c, xc, start=e_start_c, max_steps=celeba_inversion_steps,
                      tol=inv_sg_mean.mse.clamp_min(1e-3))
with torch.no_grad():
    rec_c = {"flow": flow_c.decode(flow_c.encode(xc)).clamp(0, 1), "VAE": vae_c.decode(vae_c.encode(xc)),
             "dcGAN": inv_dc.x, "StyleGAN, E(x) only": sgan_c.decode(e_start_c).clamp(0, 1),
             "StyleGAN, mean-w start": inv_sg_mean.x, "StyleGAN": inv_sg.x}

nan_c = torch.full((n_faces,), float("nan"))
print(f"reconstructions of {n_faces} not-blond test faces; inversions of at most {celeba_inversion_steps} steps")
reconstruction_table(fc, xc, {
    "flow": (rec_c["flow"], nan_c), "VAE": (rec_c["VAE"], nan_c),
    "dcGAN, random start": (inv_dc.x, inv_dc.steps),
    "StyleGAN, E(x) only": (rec_c["StyleGAN, E(x) only"], torch.zeros(n_faces)),
    "StyleGAN, mean-w start": (inv_sg_mean.x, inv_sg_mean.steps),
    "StyleGAN, E(x) + refine": (inv_sg.x, inv_sg.steps),
}, source_c, "not blond")
steps_to_match({"mean-w start": inv_sg_mean, "from E(x)": inv_sg_match}, n_faces)

# %%
cols_c = 8
fig = image_rows({"$x$": xc[:cols_c], **{name: images[:cols_c] for name, images in rec_c.items()}}, size=1.0)
fig.suptitle("CelebA: reconstructions g(g⁻¹(x))", y=0.95)
save_figure(fig, STEM, "celeba_reconstructions")
plt.show()

celeba_recon_mse = {name: mse(images, xc).mean().item() for name, images in rec_c.items()}
celeba_recon_ssim = {name: ssim(rec_c[name], xc, data_range=1.0).item() for name in ("VAE", "dcGAN", "StyleGAN")}

# %% [markdown]
# The round trip is where the generators part (run stored with this notebook). The flow returns
# every face exactly. The VAE returns a smooth face with the pose, the colours and large
# accessories (the sunglasses of column 3), not the identity (SSIM 0.62), and `f` no longer calls
# one in eight of them "not blond". The dcGAN, inverted from a random start as the paper's code
# does, keeps layout and colours but breaks the faces into speckle (SSIM 0.66). The style-based
# GAN inverted into $W^+$ comes closest: its encoder's start alone gives blurred but right faces,
# and after the refinement they keep the sunglasses, the blue cap of the last column and the
# hairline (SSIM 0.87, MSE 0.0025). From the mean $w$ the same 200 steps end further away (MSE
# 0.0032), and from $E(x)$ the refinement reaches that error in 110 steps on average, every face
# within the budget. No generator but the flow reaches the paper's 1e-3 here: at 32 × 32 these
# small GANs cannot draw every face. This is Fig. 10's mechanism, a learned inversion followed by
# the search in $W^+$, at the scale this CPU allows.
#
# **Counterfactuals.** The search of section 3 with notebook 04's step size in the flow's $Z$,
# twice notebook 04's in $X$ (`lr_x_celeba` = 1.4e-3: with 04's 7e-4, one face in eight did
# not reach Λ within 500 steps), and Adam with learning rate `lr_latent_celeba` = 5e-2 in the
# latent spaces of the VAE, the dcGAN and the style-based GAN (all of $W^+$), each from its
# reconstruction; every search stops after at most `max_steps_celeba` = 500 steps (notebook 04:
# 1000). The paper's code uses 5e-3 and 1000 steps for
# these latents. In the VAE's, on 32 of these faces, 5e-3 reached Λ for only half of them within
# 1000 steps, 2e-2 for 97% within 1000 steps (69% within 500), 5e-2 for 97% within 500 steps, in a
# median of 73 (`benchmarks/celeba_latent_lr.py`): the VAE's reconstructions start far from
# "blond" (`f` gives them a mean P(blond) of 0.08).

# %%
print(f"{len(xc)} not-blond test faces -> blond at Λ = {confidence}")
runs_c = search_every_space(fc, xc, target_c, {
    "flow": (flow_c, lr_z_celeba, max_steps_celeba), "VAE": (vae_c, lr_latent_celeba, max_steps_celeba),
    "dcGAN": (KnownLatents(gan_c, inv_dc.z), lr_latent_celeba, max_steps_celeba),
    "StyleGAN": (KnownLatents(sgan_c, inv_sg.z), lr_latent_celeba, max_steps_celeba)}, lr_x_celeba, max_steps_celeba)

# %% tags=["nbval-check-output"]
print(f"at least 90% of the CelebA searches succeed in every generator's latent space: "
      f"{all(runs_c[n].success.float().mean().item() >= 0.9 for n in ('flow', 'VAE', 'dcGAN', 'StyleGAN'))}")

# %%
fig = image_rows({
    "$x$": xc[:cols_c], "flow: $x'$": runs_c["flow"].x[:cols_c],
    "VAE: $g(g^{-1}(x))$": rec_c["VAE"][:cols_c], "VAE: $x'$": runs_c["VAE"].x[:cols_c],
    "dcGAN: $g(g^{-1}(x))$": rec_c["dcGAN"][:cols_c], "dcGAN: $x'$": runs_c["dcGAN"].x[:cols_c],
    "StyleGAN: $g(g^{-1}(x))$": rec_c["StyleGAN"][:cols_c], "StyleGAN: $x'$": runs_c["StyleGAN"].x[:cols_c],
    "$|x' - g(g^{-1}(x))|$, StyleGAN": (runs_c["StyleGAN"].x - rec_c["StyleGAN"])[:cols_c],
    "X: $x'$": runs_c["X"].x[:cols_c],
}, size=1.0)
fig.suptitle(f"not blond → blond at Λ = {confidence} in four latent spaces and in X", y=0.92)
save_figure(fig, STEM, "fig10_celeba_examples")
plt.show()

# %% [markdown]
# What a reader sees, row by row (run stored with this notebook):
#
# - **Flow**: the hair lightens and everything else stays, as in notebook 04: column 7's brown hair
#   becomes blond, column 2's bald head and column 3's crest brighten.
# - **VAE**: every face becomes a blurred face with light hair. The change is the largest of all
#   (mean L2 to $x$ 10.8 against the flow's 5.7) and takes more than the hair: column 1's young
#   man comes back with the soft features of a blond woman, the "blond drags along female" bias
#   that notebook 04 measures with the attribute oracle.
# - **dcGAN**: lighter, yellower hair in a speckled image (columns 3, 5, 7); the speckle of the
#   reconstruction stays.
# - **Style-based GAN**: column 7 turns blond and keeps the face, column 1 lightens its hair,
#   column 3 keeps the sunglasses; the difference row is bright on the hair and the cap (columns 7,
#   8) and dark on most inner faces. But with Adam at 5e-2 in 1024 dimensions the search reaches
#   Λ in a median of 4 steps, and some steps are coarse: column 2 turns into a blue-green blob,
#   column 4 gets white smears. These are the failures of a 33-minute generator whose $W^+$ holds
#   images it was never trained to draw, and we show them as they are.
# - **X**: indistinguishable from the originals.

# %%
judged_c = judge({n: runs_c[n] for n in ("X", "flow", "VAE", "dcGAN", "StyleGAN")}, xc, svm_c, xc_train,
                 yc_train, aes_c, source_c, target_c)
order_c = ["X", "flow", "VAE", "dcGAN", "StyleGAN"]
fig = judge_bars(judged_c, "blond", (COLORS["data"], COLORS["x"], COLORS["z"], COLORS["vae"], COLORS["gan"],
                                     COLORS["stylegan"]))
save_figure(fig, STEM, "celeba_oracle_knn")
plt.show()

# %% [markdown]
# The judges side with every generator against the adversarials (run stored with this notebook).
# The linear SVM oracle calls 61% of the flow's counterfactuals blond, 71% of the VAE's and 88% of
# the dcGAN's and the style-based GAN's, against 21% of the adversarials (12% of the originals:
# its false positives). The 10 nearest training faces are blond for 30% (flow) to 57% (VAE) against
# 21%. IM1 disagrees for the VAE (2.48: its blurred faces are explained worse by the blond
# autoencoder, which was trained on sharp faces) and is near the originals' 1.53 for the others.
# Unlike on MNIST, the pixel-space oracle finds the counterfactuals of every generator far more
# blond than the adversarials: a change of hair colour is a large, smooth change of many pixels,
# which a linear model on pixels reads well. Every adversarial reaches Λ, in a median of 25 steps.
#
# **Theorem 2 on faces.** The spectrum of $JJ^\top$ at `n_metric_celeba` reconstructed faces, for
# the flow ($J$: 3072 × 3072), the VAE (× 128), the dcGAN (× 100) and the style-based GAN (× 1024),
# and the shares of the Z-step and of the X-gradient inside the top-$k$ eigenspace.

# %%
decoders_c = {"flow": flow_c, "VAE": vae_c, "dcGAN": gan_c, "StyleGAN": sgan_c}
latents_c = {"flow": flow_c.encode(xc[:n_metric_celeba]), "VAE": vae_c.encode(xc[:n_metric_celeba]),
             "dcGAN": inv_dc.z[:n_metric_celeba], "StyleGAN": inv_sg.z[:n_metric_celeba]}
shares_c = theorem2(fc, decoders_c, latents_c, target_c, (
    COLORS["z"], COLORS["vae"], COLORS["gan"], COLORS["stylegan"]), "celeba_theorem2_spectra")

# %% tags=["nbval-check-output"]
print("CelebA: the Z-step lies more in the top eigenspace than the X-gradient, for every generator: "
      f"{all(shares_c[n].z_step.median() > shares_c[n].x_gradient.median() for n in decoders_c)}")

# %% [markdown]
# The picture of section 5, at 3072 pixels (one face by default: the flow's $J$ is 3072 × 3072;
# `full.yaml` uses 16). The VAE's spectrum falls by orders of magnitude after a few tens of
# directions, the dcGAN's has at most 100 non-zero eigenvalues, the style-based GAN's about 600 of
# its 1024 (the last layers' styles move few pixels at 32 × 32), the flow's all 3072, falling off
# smoothly. For every generator 90% of the trace lies in a few tens of directions, the first-order
# Z-step lies there (shares 0.92 to 0.99) and the pixel gradient almost not at all (at most 0.015):
# Theorem 2 in numbers, for four generators of faces.
#
# ## Results

# %%
results = {key: round(float(value), 5) for key, value in {
    "mnist_recon_mse_flow": recon_mse["flow"],
    "mnist_recon_mse_vae": recon_mse["VAE"],
    "mnist_recon_mse_gan": recon_mse["GAN"],
    "mnist_recon_mse_gan_encoder_only": recon_mse["GAN, E(x) only"],
    "mnist_recon_ssim_vae": recon_ssim["VAE"],
    "mnist_recon_ssim_gan": recon_ssim["GAN"],
    "mnist_inversion_steps_random": inversion_steps_random,
    "mnist_inversion_steps_encoder_to_match": inversion_steps_encoder_to_match,
    "mnist_success_rate_flow": judged["flow"]["success"],
    "mnist_success_rate_vae": judged["VAE"]["success"],
    "mnist_success_rate_gan": judged["GAN"]["success"],
    "mnist_success_rate_x": judged["X"]["success"],
    **{f"mnist_oracle_target_share_{n.lower()}": judged[n]["oracle"] for n in order},
    **{f"mnist_oracle_margin_{n.lower()}{end}": margins[n, "linear SVM (the paper's)"][i]
       for n in ("flow", "VAE", "GAN") for i, end in enumerate(("", "_low", "_high"))},
    **{f"mnist_own_sources_oracle_margin_{n.lower()}{end}": own_margins[n, "linear SVM (the paper's)"][i]
       for n in ("VAE", "GAN") for i, end in enumerate(("", "_low", "_high"))},
    **{f"mnist_rbf_oracle_target_share_{n.lower()}": judged[n]["RBF oracle"] for n in order},
    **{f"mnist_knn_target_share_{n.lower()}": judged[n]["k-NN"] for n in order},
    **{f"mnist_oracle_on_reconstructed_targets_{n.lower()}": ceiling[n]["oracle"]
       for n in ceiling},
    **{f"mnist_im1_mean_{n.lower()}": judged[n]["IM1"] for n in order},
    **{f"mnist_onmanifold_share_{n.lower()}": shares[n].z_step.median() for n in names},
    **{f"mnist_onmanifold_share_x_{n.lower()}": shares[n].x_gradient.median() for n in names},
}.items()}
celeba_keys = {"flow": "flow", "vae": "VAE", "gan": "dcGAN", "stylegan": "StyleGAN", "x": "X"}
results |= {key: round(float(value), 5) for key, value in {
    **{f"celeba_recon_mse_{k}": celeba_recon_mse[n] for k, n in celeba_keys.items() if n in celeba_recon_mse},
    "celeba_recon_mse_stylegan_encoder_only": celeba_recon_mse["StyleGAN, E(x) only"],
    "celeba_recon_mse_stylegan_mean_w_start": celeba_recon_mse["StyleGAN, mean-w start"],
    **{f"celeba_recon_ssim_{k}": celeba_recon_ssim[n] for k, n in celeba_keys.items() if n in celeba_recon_ssim},
    "celeba_inversion_steps_mean_w": inv_sg_mean.steps.float().mean().item(),
    "celeba_inversion_steps_encoder_to_match": inv_sg_match.steps.float().mean().item(),
    **{f"celeba_success_rate_{k}": judged_c[n]["success"] for k, n in celeba_keys.items()},
    **{f"celeba_oracle_target_share_{k}": judged_c[n]["oracle"] for k, n in celeba_keys.items()},
    **{f"celeba_knn_target_share_{k}": judged_c[n]["k-NN"] for k, n in celeba_keys.items()},
    **{f"celeba_im1_mean_{k}": judged_c[n]["IM1"] for k, n in celeba_keys.items()},
    **{f"celeba_onmanifold_share_{k}": shares_c[n].z_step.median() for k, n in celeba_keys.items() if n in shares_c},
    **{f"celeba_onmanifold_share_x_{k}": shares_c[n].x_gradient.median()
       for k, n in celeba_keys.items() if n in shares_c},
}.items()}
results["mnist_recon_mse_flow"] = float(f"{recon_mse['flow']:.2g}")  # round-off: two significant digits
results["celeba_recon_mse_flow"] = float(f"{celeba_recon_mse['flow']:.2g}")
save_results(STEM, results)
paper.compare(STEM, results)

# %% tags=["nbval-check-output"]
paper.check(STEM, results)

# %% [markdown]
# ## Summary
#
# - A VAE decoder and a GAN generator are usable generators for counterfactuals: the searches in
#   their latent spaces succeed (97% and 94% within 300 steps), every step stays on the manifold
#   the generator has learned (section 5: the first-order step lies entirely in the span of $J$),
#   and most of the VAE's and the GAN's counterfactuals (eight of ten each in Fig. 9) are the
#   clearest 4 → 9 changes of this project: the paper's Fig. 9, reproduced. Nearest neighbours
#   side with both generators by 47 to 51 points over the adversarials, an RBF-kernel SVM oracle
#   by 60 to 63.
# - The price is the round trip. The VAE returns a smoothed digit, the GAN the nearest digit it can
#   draw; the counterfactual inherits that difference from $x$ (section 2, and the reconstruction
#   rows of the grid).
# - A learned encoder makes GAN inversion cheaper *and* better: the refinement from $E(x)$ reaches
#   the random start's final error in 40% of the steps, and ends more faithful.
# - The paper's linear SVM oracle agrees, by less than the other judges: it prefers the VAE's
#   counterfactuals to the adversarials by 25 points and the GAN's by 22 on this run's 300 random
#   test 4s (this project's threshold: 20; 95% intervals +19 to +31 and +16 to +28), and by 24 and
#   25 on all 979 test 4s (intervals from +21; the paper's smaller step: +22.0 and +20.5). Where it
#   hesitates is the failure of notebook 03 in a milder form, analysed there: the adversarials'
#   pixel noise fools a linear judge on pixels (25% "9"), not the RBF one (5%).
# - Which 4s are searched matters as much as which run of the recipe: on the first half of the
#   test file (other writers than the second's) the margins are 6 to 14 points lower, and the GAN
#   stays below 20 there in all three training runs of its recipe (+17 to +19); 6000 instead of
#   30 000 training steps leave it near zero (78% CNN-confident samples against 85–86%). The VAE's
#   margin spans +11 to +28 over six training runs on that half. From the generators' own 4s (exact
#   latents, no round trip) both clear the threshold (VAE +26, GAN +27): the round trip costs the
#   GAN a few points at most.
# - With generators whose samples look like digits (section 1: the VAE's and the GAN's do, the
#   flow's far less), the counterfactuals look like digits too: the quality of the generator, not
#   exactness of the inverse, decides how semantic the counterfactuals are on MNIST here.
#
# - **CelebA** (section 6): every generator's search reaches "blond" (96–100%), and the linear
#   SVM oracle calls 61–88% of the latent-space counterfactuals blond against 21% of the
#   adversarials; the nearest training faces agree (30–57% against 21%). The flow changes the hair
#   and keeps the face; the VAE makes every face a blurred blond one and drags identity and gender
#   along; the two GANs lighten the hair inside images that carry their own artefacts, and the
#   style-based GAN's coarse steps break some faces. A learned encoder again makes the inversion
#   cheaper and better (the mean-$w$ start's error in 110 of 200 steps).
#
# **What is and is not reproduced here.** The paper's MNIST VAE and dcGAN (Fig. 9): reproduced at
# the paper code's sizes (10-d VAE latent, nz 100 / ngf 32 dcGAN), trained on this CPU (manifest).
# On CelebA, the paper's VAE (128-d latent, its KL weight) is reproduced at 32 × 32 (7531 of its
# 8000 steps); its progressive GAN and the 1024 × 1024 StyleGAN with HyperStyle (Fig. 10) are not:
# their pre-trained weights cannot be downloaded here. In their place, a dcGAN and a small
# style-based GAN (mapping network, modulated convolutions, $W^+$) with an e4e-style encoder,
# trained for 20–30 CPU minutes each on the 8000 training faces at 32 × 32: the mechanism of
# Fig. 10, not its image quality. The latent searches use a larger Adam step than the paper's code
# and fewer steps (MNIST 4× and 300 of its 1000, CelebA 10× and 500; measured above), to keep the
# default run near 4½ minutes; `full.yaml` restores the paper's MNIST setting.
#
# ## Exercises
#
# 1. Set `inversion_steps = 3000` (the paper's) and rerun section 2. How much closer does the
#    random start get, and does the comparison with the encoder change?
# 2. The VAE's encoder gives the posterior *mean*. Start the search from a posterior *sample*
#    instead (`vae.posterior(x)` gives mean and log-variance): how different are the counterfactuals?
# 3. In section 5, replace the top-$k$ rule by the full span of $J$ for the flow (784 directions).
#    Why is the share then 1 for every vector, and what does that say about Theorem 1 versus 2?
# 4. Search the GAN's latent space from the *random-start* inversion (`KnownLatents(gan, inv_random.z)`
#    for the first `n_recon` images). Do worse reconstructions give worse counterfactuals?
# 5. In section 6, search the style-based GAN in the first four layers of $W^+$ only (the coarse
#    styles: set the gradient of the other layers to zero, or wrap `decode` so that it takes only
#    those 512 numbers). Do the counterfactuals keep the faces better, and does the oracle agree?
# 6. Take the first `n_images` test 4s in the file instead of a random draw
#    (`sample_sources(..., at_random=False)`, as an earlier version of this notebook did) and rerun
#    section 4. Which judges move, and why might the writers of a digit matter to a linear oracle?
