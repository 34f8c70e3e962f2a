# %% [markdown]
# # 03 · MNIST: counterfactuals from a flow's latent space, adversarials from pixel space
#
# **Claim.** On real images, gradient ascent in the latent space of a normalizing flow turns a 4
# into a 9 by closing its top (a *diffeomorphic counterfactual*); the same ascent on the pixels adds
# noise that fools the classifier but nothing else (an *adversarial example*). Independent judges, an
# SVM oracle, nearest neighbours in the data and class-specific autoencoders, agree with the
# counterfactuals and not with the adversarials.
#
# **Paper.** §IV-B/C: Fig. 8 (examples), Fig. 11 (oracle), Fig. 13 (k-NN), Fig. 14 and Tables II–III
# (distances), Table I (IM1).
#
# **What you will see.** Counterfactuals 4 → 9 at confidence Λ = 0.99 for a few hundred test images,
# found in one batched run per space, then every quantitative check of the paper side by side, and
# (beyond the paper) the source → target matrix of oracle agreement for all 90 class pairs.
#
# **Runtime.** About 3 minutes on a 2-core CPU with the shipped checkpoints (180–200 s measured;
# default: 200 test 4s for 4 → 9, 90 images for the 10 × 10 study, 50 searched again with
# normalised steps); the full run (`notebooks/params/full.yaml`: all test 4s, 10 images per pair,
# the paper's 2000 Z-steps) wants a GPU.
#
# **Data.** Real MNIST from `$DIFFCF_DATA/mnist` (IDX `.gz` files; `make data`). The copy used in
# this project's CI has the genuine test set, while its *training* images were rebuilt from PNGs and
# differ by at most one grey level on about 3% of pixels; only the models (trained on the training
# set) and the k-NN bank see them.

# %% tags=["parameters"]
n_images = 200  # test 4s for the 4 -> 9 study, drawn at random (paper and full.yaml: all, None)
source, target = 4, 9  # the paper's pair
confidence = 0.99  # Λ
lr_z, max_steps_z = 5e-2, 1000  # Adam in Z (paper's code: 5e-2, 2000 steps; full.yaml uses 2000)
lr_x, max_steps_x = 5e-3, 2000  # Adam in X (paper's code: 5e-4; alike adversarials, ~20x fewer steps)
k_neighbours = 10  # k-NN check (paper: 10)
n_per_pair = 1  # images per (source, target) pair for the 10 x 10 matrix (full.yaml: 10)
n_normalized = 50  # the first images of the 4 -> 9 study searched again with §III's plain ascent
step_z_normalized, step_x_normalized = 0.5, 0.05  # its step length in Z / in X (L2)
flow = "mnist_flow"  # the zoo's MNIST flow; "mnist_flow_wide", "mnist_flow_checkerboard" are larger, "mnist_flow_large" wants a GPU (README)
seed = 0
device = "auto"  # "cpu", "cuda", or "auto": CUDA when torch sees one

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from diffcf import paper, seed_everything, zoo
from diffcf.data.mnist import load_dataset
from diffcf.evaluate import (
    confident_share,
    fig14_distances,
    im1_score,
    knn_labels,
    knn_target_share,
    l2_to_source,
    oracle_target_share,
    pair_study,
    predict,
    sample_sources,
    search_margin,
    share_matrix,
)
from diffcf.generative import reconstruction_error
from diffcf.plotting import distance_histograms, image_rows, share_bars
from diffcf.search import ClassTarget, counterfactual_search
from diffcf.utils import get_device, save_figure, save_results

STEM = "03_mnist"
gen = seed_everything(seed)
device = get_device(device)

# %% [markdown]
# ## 1. Data and models
#
# Four models, each loaded from a verified checkpoint (see `data/checkpoints/manifest.json` for how
# each was trained, on which device and for how long):
#
# | name | role | paper |
# |---|---|---|
# | `f`: CNN classifier | the model being explained | 99% test accuracy |
# | `g`: multi-scale flow (Glow-style) | the generator, $z = g^{-1}(x)$ exactly | RealNVP |
# | linear SVM on pixels | independent **oracle** (Fig. 11) | 92% |
# | RBF-kernel SVM on pixels | a second, non-linear oracle | — |
# | ten autoencoders | one per class, for **IM1** (Table I) | — |
#
# Everything runs on `device` (CUDA when torch sees one, else the CPU).

# %%
x_train, y_train = (t.to(device) for t in load_dataset("mnist", "train"))
x_test, y_test = (t.to(device) for t in load_dataset("mnist", "test"))
f, g, svm, svm_rbf, aes = (zoo.frozen(zoo.load_or_train(name, device=device)) for name in (
    "mnist_classifier", flow, "mnist_svm", "mnist_svm_rbf", "mnist_autoencoders"))

# %%
pred_test = predict(f, x_test)
classifier_accuracy = (pred_test == y_test).float().mean().item()
svm_accuracy = (predict(svm, x_test) == y_test).float().mean().item()
rbf_svm_accuracy = (predict(svm_rbf, x_test) == y_test).float().mean().item()
bits_sample = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(seed))[:2000].to(device)
with torch.no_grad():
    flow_bits_per_dim = g.bits_per_dim(x_test[bits_sample], generator=torch.Generator().manual_seed(seed)).mean().item()
round_trip = reconstruction_error(g, x_test[:500]).max().item()

# %% tags=["nbval-check-output"]
print(f"train / test images            {len(x_train)} / {len(x_test)}")
print(f"round trip max |g(g^-1(x))-x| < 1e-4: {round_trip < 1e-4}")

# %%
paper.compare(STEM, {"classifier_accuracy": classifier_accuracy, "svm_accuracy": svm_accuracy,
                     "rbf_svm_accuracy": rbf_svm_accuracy, "flow_bits_per_dim": flow_bits_per_dim,
                     "flow_roundtrip_max_abs_error": round_trip})
flow_entry = zoo.manifest_entry(flow)
steps_done = flow_entry.get("steps_done", flow_entry["train_params"]["steps"])
print(f"\nhow the flow {flow} was made (manifest): {steps_done} steps in "
      f"{flow_entry['train_seconds'] / 60:.0f} min on {flow_entry['device']}; over all 10 000 test "
      f"images: {flow_entry['metrics']}")

# %% [markdown]
# The flow's bits/dim are measured on 2000 test images drawn at random, because MNIST's test set
# puts its cleaner half first (the first 2000 alone flatter the flow; the manifest's value above is
# for all 10 000), in the standard convention (uniform dequantisation of the 256 grey levels), so
# they compare directly with the literature: RealNVP reports 1.06 and Glow 1.05 on MNIST with far
# larger models and long GPU training. Ours is a small two-scale Glow (6 + 8 steps, coupling
# networks of width 64 and 96, Glow's learned prior for the split-off half) trained on one CPU
# thread, as the manifest line above says. It misses this project's target of 1.20 bits/dim and
# stays well behind the published flows. A larger flow, `mnist_flow_wide` (8 + 8 steps, width 128),
# trained in seven stages to 1.18 bits/dim (its manifest entry lists every stage), meets the target
# but does not take this one's place: "The oracle gap, measured" near the end shows that its
# counterfactuals are judged no better, and its Z-search takes 2.8 times as long. Run as this
# notebook's flow (`flow = "mnist_flow_wide"`, all else default; 2026-12-05) it passes the
# bits/dim (1.18) and round-trip (2.6e-5) checks, but the run takes 6.0 minutes instead of 3,
# only 91% of its Z-searches reach Λ within the 1000 steps (the check asks 95%; the 200 4 → 9
# searches alone, with the paper's 2000 steps: 96%, in 207 s for the Z-search alone), 70% of its
# samples are confident, and the judges' margins Z − X stay within about two points of this flow's
# (linear SVM −0.8 points against −0.9, 10-NN +24.5 against +24.6, 90 pairs +7.8 against +5.6).
# Keep that in mind below: every Z-result here is only as good as this flow.
#
# The round trip above is measured on 500 test images; the manifest's maximum over all 10 000 is
# larger, from a single image: the inverse of the logit pre-processing amplifies rounding error for
# pixels very close to 0 or 1.
#
# ### What the flow has learned: its samples
#
# A flow is a generative model: draw $z \sim \mathcal{N}(0, T^2 I)$ and decode, $x = g(z)$ (Glow
# samples at temperature $T = 0.7$, which trades diversity for typicality). If the flow has learned
# where the digits lie, its samples look like digits. As a number: `flow_sample_confident_share`,
# the share of 1000 samples at $T = 0.7$ to which the CNN gives *some* class a probability above
# 0.9. It is a classifier-judged quality: it sees whether a sample reads as a digit to $f$, but
# not diversity (one perfect digit drawn a thousand times would score 1) nor details $f$ ignores.

# %%
samples = {T: g.sample(1000, torch.Generator().manual_seed(seed), temperature=T).clamp(0, 1)
           for T in (0.7, 1.0)}
flow_sample_confident_share = confident_share(f, samples[0.7])
fig = image_rows({f"T = {T}": s[:16] for T, s in samples.items()}, size=0.8)
fig.suptitle("Samples of the flow g(T z), z ~ N(0, I)", y=1.02)
save_figure(fig, STEM, "flow_samples")
plt.show()
paper.compare(STEM, {"flow_sample_confident_share": flow_sample_confident_share})
print(f"the same share at T = 1.0: {confident_share(f, samples[1.0]):.2f}")

# %% [markdown]
# What the samples show (each column decodes the same $z$ at both temperatures): strokes and loops,
# some clear digits (a 9, a 6, a 2), many that are half a digit or two merged, and a few fragments;
# at $T = 1$ the strokes fray. The share above says how many the CNN reads as a clear digit. A flow whose samples are
# fragments has not learned the digit manifold well, and ascent in its latent space can leave the
# digits the same way. This is the flow's weakness that the rest of this notebook runs into.
#
# The classifier is the CNN of the paper's code (two blocks of two 3×3 convolutions, 16-32 and 64-64
# channels, then 3136 → 512 → 256 → 10). The Adam step in X is 5e-3 instead of the paper code's
# 5e-4, to fit this notebook into its CPU budget. `benchmarks/mnist_oracle_gap.py --sources first`
# compares them on the first 200 test 4s (its table is at the end of this notebook): 5e-4 needs a median of 1012 steps
# and 2% of the images do not reach Λ within 2000, 5e-3 needs 45, and the adversarials are alike to
# every judge used here (mean pixel L2 2.40 vs 2.69; the SVM says 9 for 26% vs 26%, the k-NN share
# is 12% for both). Only the flow tells them apart: both are wildly unlikely images (17.6 and 35.6
# bits/dim, originals 1.31), the larger steps more so.
#
# ## 2. Counterfactuals and adversarials, 4 → 9 (Fig. 8)
#
# Both searches minimise the cross-entropy to the target class with Adam and stop each image at the
# first step where $f_t > \Lambda = 0.99$. Pixels are clipped to $[0, 1]$ (decoded images too).
#
# The `n_images` sources are test 4s the CNN calls 4, drawn at random
# (:func:`~diffcf.evaluate.sample_sources`; the paper and `full.yaml` use all of them). Not the first
# ones in the file: MNIST's test file is ordered by writers (the first 5000 images from one
# population, the last 5000 from another), and its first 500 4s are exactly the first half's 4s.
# Notebook 07 (section 4) measures how differently the judges treat the two halves.
#
# One call of `counterfactual_search` per space handles *every* search of this notebook: the 4 → 9
# study and the 10 × 10 study of section 6 (`n_per_pair` images for each of the 90 source → target
# pairs), each image with its own target class. Finished images are frozen and leave the working
# set, so the few slow searches at the end are paid for once, not once per study. Each image's
# search is independent of the others in the batch (the loss is a sum of per-image terms and Adam
# works elementwise), so batching changes the speed, not the algorithm; only float round-off differs
# between batch sizes, and over hundreds of Adam steps it can change an image's details.

# %%
source_index = sample_sources(y_test, pred_test, source, n_images, seed)
x = x_test[source_index]
idx_pair, src_pair, tgt_pair = (t.to(device) for t in pair_study(y_test, pred_test, n_per_pair, seed=seed))
x_all = torch.cat([x, x_test[idx_pair]])
targets_all = ClassTarget(torch.cat([torch.full((len(x),), target, device=device), tgt_pair]), confidence)
runs = {
    "z": counterfactual_search(f, x_all, targets_all, space="z", g=g, lr=lr_z, max_steps=max_steps_z,
                               bounds=(0.0, 1.0), progress=True),
    "x": counterfactual_search(f, x_all, targets_all, space="x", lr=lr_x, max_steps=max_steps_x,
                               bounds=(0.0, 1.0), progress=True),
}
n_study = len(x)  # the first rows are the 4 -> 9 study, the rest the pair study of section 6
z_cf, x_adv_run = runs["z"].subset(slice(0, n_study)), runs["x"].subset(slice(0, n_study))
pair_runs = {space: run.subset(slice(n_study, None)) for space, run in runs.items()}
x_cf, x_adv = z_cf.x, x_adv_run.x
with torch.no_grad():
    x_rec = g.decode(g.encode(x)).clamp(0, 1)

# %%
success_rate_z = z_cf.success.float().mean().item()
success_rate_x = x_adv_run.success.float().mean().item()
print(f"{len(x)} test images of class {source}")
print(f"success in Z: {z_cf.n_success} ({success_rate_z:.0%}), median steps {int(z_cf.steps.median())}")
print(f"success in X: {x_adv_run.n_success} ({success_rate_x:.0%}), median steps {int(x_adv_run.steps.median())}")

# %% tags=["nbval-check-output"]
print(f"at least 95% of the {len(x)} searches succeed, in Z: {success_rate_z >= 0.95}, in X: {success_rate_x >= 0.95}")

# %%
cols = 10
fig = image_rows({
    "$x$": x[:cols], "$g(g^{-1}(x))$": x_rec[:cols],
    "$x'_Z$": x_cf[:cols], "$|\\delta_Z|$": (x_cf - x)[:cols],
    "$x'_X$": x_adv[:cols], "$|\\delta_X|$": (x_adv - x)[:cols],
})
fig.suptitle(f"{source} → {target} at Λ = {confidence}: counterfactuals (Z) vs adversarials (X)", y=0.93)
save_figure(fig, STEM, "fig8_examples")
plt.show()

# %% [markdown]
# What the paper shows (its Fig. 8): the Z-row closes the open top of the 4 into the loop of a 9 and
# keeps the stroke's width and slant, while the X-row looks like the original plus a faint haze.
#
# What our run shows (the grid stored here; on another machine, float round-off can change its
# details): the X-row is as in the paper, a haze spread over the whole image. The Z-row does **not**
# show the paper's claim. Column by column:
#
# - **reads as a 9**: column 3 (the 4's open top closed into a loop, with the source's stroke width
#   and slant: the kind of counterfactual the paper shows), column 7 (a small loop on the stem, the
#   stroke thicker than the source's) and column 5 (the loop filled solid, a blob on a stem);
# - **a loop at best**: column 10 (a loop in the middle, a spur above and a short tail below: a 9
#   only if one squints);
# - **still a 4**: columns 1 and 9 (arms bent or shortened, the top still open), 2 and 6 (the 4
#   thickened, with blotches at the top);
# - **fragments**: column 4 (the ink erased but for a short stroke and specks along the bottom) and
#   column 8 (the left arm and the stem, with specks above).
#
# Three of the ten read as 9s, and only column 3 as cleanly as the paper's. The changes follow
# strokes (no haze), but the CNN is 99% sure of "9" for all ten (section 3 prints each judge's
# label per column). The search stops at the *first* step where the CNN is 99% sure, and
# removing ink is a cheap way to leave the 4's region of latent space for a flow that is not a sharp
# density model: its samples above are fragments just as often. A better flow (lower bits/dim) makes
# this path less likely, which is why the paper's results depend on one (issue 16 trains one).
#
# ## 3. Do independent judges agree? Oracle (Fig. 11) and nearest neighbours (Fig. 13)
#
# An **oracle** is a second classifier trained independently (the paper's: an SVM on pixels, 92%
# accurate; a linear one matches that). If a modified image really shows a 9, the oracle should say 9
# too. Beside it, an SVM with an RBF kernel (96% accurate), which the paper does not use: a
# non-linear judge that pixel noise moves less easily. The **k-NN** check asks which labels the
# $k = 10$ nearest training images (Euclidean, in pixel space) carry.

# %%
ok_z, ok_x = z_cf.success, x_adv_run.success
oracle_target_share_original = oracle_target_share(svm, x, target)
oracle_target_share_z = oracle_target_share(svm, x_cf[ok_z], target)
oracle_target_share_x = oracle_target_share(svm, x_adv[ok_x], target)
rbf_oracle_target_share_original = oracle_target_share(svm_rbf, x, target)
rbf_oracle_target_share_z = oracle_target_share(svm_rbf, x_cf[ok_z], target)
rbf_oracle_target_share_x = oracle_target_share(svm_rbf, x_adv[ok_x], target)
knn_target_share_z = knn_target_share(x_cf[ok_z], x_train, y_train, target, k=k_neighbours)
knn_target_share_x = knn_target_share(x_adv[ok_x], x_train, y_train, target, k=k_neighbours)
knn_target_share_original = knn_target_share(x, x_train, y_train, target, k=k_neighbours)

fig = share_bars({
    f"linear SVM oracle says {target} (Fig. 11)":
        [oracle_target_share_original, oracle_target_share_x, oracle_target_share_z],
    f"RBF SVM oracle says {target}":
        [rbf_oracle_target_share_original, rbf_oracle_target_share_x, rbf_oracle_target_share_z],
    f"{k_neighbours}-NN labels that are {target} (Fig. 13)":
        [knn_target_share_original, knn_target_share_x, knn_target_share_z],
})
save_figure(fig, STEM, "fig11_fig13_oracle_knn")
plt.show()

# %%
print(f"linear SVM target share  original {oracle_target_share_original:.2f}  X {oracle_target_share_x:.2f}  Z {oracle_target_share_z:.2f}")
print(f"RBF SVM target share     original {rbf_oracle_target_share_original:.2f}  X {rbf_oracle_target_share_x:.2f}  Z {rbf_oracle_target_share_z:.2f}")
print(f"k-NN target share        original {knn_target_share_original:.2f}  X {knn_target_share_x:.2f}  Z {knn_target_share_z:.2f}")

# %% [markdown]
# How much of such a difference is the draw of the test 4s? The margin Z − X of the linear oracle
# (the quantity the paper's Fig. 11 compares) with a 95% interval: a paired bootstrap over the source
# 4s (:func:`~diffcf.evaluate.search_margin`; the Z- and X-searches start from the same
# images, and every resample keeps the pairs).

# %%
oracle_margin_z, oracle_margin_z_low, oracle_margin_z_high = search_margin(svm, z_cf, x_adv_run, target,
                                                                           seed=seed)
print(f"linear SVM share of {target}s, Z minus X: {100 * oracle_margin_z:+.1f} points "
      f"(95% interval {100 * oracle_margin_z_low:+.1f} to {100 * oracle_margin_z_high:+.1f})")


# %% [markdown]
# In the run stored here the margin is −0.9 points, with an interval from −7 to +6: other test 4s
# could move it by several points either way, but the project's target of +30 lies far outside. The
# oracle's verdict is not an accident of the sample.
#
# ### The ten columns of Fig. 8, judge by judge
#
# The shares above pool hundreds of images. For the ten shown in Fig. 8, here is what each judge
# says, column by column: the CNN $f$ (which the search fooled or convinced), both oracles and the
# majority label of the 10 nearest training images. Compare them with your own reading of the grid.

# %%
def verdicts(images):
    """Each judge's label for each image: the CNN, both SVMs and the k-NN majority vote."""
    return {"CNN f": predict(f, images), "linear SVM": predict(svm, images), "RBF SVM": predict(svm_rbf, images),
            f"{k_neighbours}-NN vote": knn_labels(images, x_train, y_train, k=k_neighbours).mode(1).values}


print(f"{'column':22s}" + "".join(f"{c:>4d}" for c in range(1, cols + 1)))
for space, images, ok in (("Z", x_cf, ok_z), ("X", x_adv, ok_x)):
    for judge, labels in verdicts(images[:cols]).items():
        print(f"{space}  {judge:19s}" + "".join(f"{int(label):>4d}" for label in labels))
    print(f"{space}  {'reached Λ':19s}" + "".join(f"{'yes' if hit else 'no':>4s}" for hit in ok[:cols]))


# %% [markdown]
# In the stored run every one of the twenty searches reached Λ, so the CNN says 9 throughout. Set
# beside the reading of the grid in section 2: all three judges say 9 for column 3, the clean 9.
# The 10-NN vote says 9 for columns 5 and 7 as well (and for column 1, a 4 to the eye), the SVMs do
# not; both SVMs say 9 for column 10, the loop at best, and the linear one for column 6, a 4 to the
# eye. For the adversarials no judge says 9 but one k-NN vote (column 4). Each judge agrees with the
# eye on some columns and not on others; that is why the checks pool hundreds of images (the pooled
# shares for Z above: 0.24 to 0.36).

# %% [markdown]
# ### Adam, or §III's plain ascent with a normalised step?
#
# The paper's theory (§III) analyses plain gradient ascent, $z \leftarrow z + \lambda\,
# \partial (f\circ g)_t/\partial z$; its experiments, like this notebook, use Adam. The two differ
# in more than speed: Adam divides each coordinate's gradient by its own running scale, so its first
# steps are close to $\lambda\,\mathrm{sign}(\nabla)$, a move of the same size in *every* pixel (in
# X) or latent coordinate (in Z), whatever the geometry says. With `step="normalized"` the search
# takes instead $v \leftarrow v + \lambda\, \nabla / \lVert\nabla\rVert$, steps of exactly
# length $\lambda$ along the gradient (of $\log f_t$, whose direction is that of $f_t$). Below, the
# first `n_normalized` images of the 4 → 9 study are searched again that way, in both spaces, and
# judged like the Adam results of the same images. The step lengths (0.5 in Z, 0.05 in X) were
# chosen with `benchmarks/mnist_oracle_gap.py --n 50 --normalized 0.5 1 2 --normalized-x 0.05 0.2`
# (its table is at the end): longer Z-steps fail more often and end less typical for the flow.

# %%
def judge(run, rows):
    """Success, median steps and the three judges' target shares of ``run`` on source rows ``rows``."""
    ok = run.success
    images, sources = run.x[ok], x[rows][ok]
    return {"success": ok.float().mean().item(), "median steps": run.steps.median().item(),
            "linear SVM: 9": oracle_target_share(svm, images, target),
            "RBF SVM: 9": oracle_target_share(svm_rbf, images, target),
            f"{k_neighbours}-NN: 9": knn_target_share(images, x_train, y_train, target, k=k_neighbours),
            "L2 in X": l2_to_source(images, sources).mean().item()}


rows_n = slice(0, n_normalized)
normalized = {space: counterfactual_search(
    f, x[rows_n], ClassTarget(target, confidence), space=space, g=g, bounds=(0.0, 1.0), progress=True,
    lr=step_z_normalized if space == "z" else step_x_normalized, step="normalized",
    max_steps=max_steps_z if space == "z" else max_steps_x) for space in ("z", "x")}
search_table = {"Z, Adam": judge(z_cf.subset(rows_n), rows_n),
                "Z, normalised": judge(normalized["z"], rows_n),
                "X, Adam": judge(x_adv_run.subset(rows_n), rows_n),
                "X, normalised": judge(normalized["x"], rows_n)}

# %%
print(f"the first {len(x[rows_n])} images of the 4 -> 9 study; shares of the successful searches")
print(f"{'':16s}" + "".join(f"{c:>15s}" for c in search_table["Z, Adam"]))
for name, row in search_table.items():
    print(f"{name:16s}" + "".join(f"{v:15.2f}" for v in row.values()))

# %%
fig = image_rows({"$x$": x[:cols], "Z, Adam": x_cf[:cols], "Z, normalised": normalized["z"].x[:cols],
                  "X, Adam": x_adv[:cols], "X, normalised": normalized["x"].x[:cols]})
fig.suptitle("The same images, searched with Adam and with §III's normalised steps", y=0.95)
save_figure(fig, STEM, "adam_vs_normalized")
plt.show()


# %% [markdown]
# What the table shows: in **X** the update rule matters for one judge. Adam's sign-like steps
# spread the same small change over every pixel (the haze of the "X, Adam" row), which is exactly
# the perturbation that moves a *linear* model on pixels most (the argument of Goodfellow et al. for
# why adversarial examples transfer to linear models); normalised steps follow the gradient,
# concentrate the change along the strokes (the "X, normalised" row has almost no haze), and the
# linear SVM says 9 less often (10% against 16% of these 50). The RBF SVM and the nearest
# neighbours, which Adam's adversarials did not fool, stay where they were. In **Z** the two rules
# end at similar counterfactuals for every judge (within the ±6 points that 50 images allow); the
# normalised steps get there in fewer steps (a median of 15 against 22), at a smaller pixel
# distance, and (per the benchmark) at points the flow finds far more typical. In the grid, the
# normalised Z-row draws cleaner strokes in several columns (the first, second, third and seventh
# close the top toward a 9), but the fragments of the fourth, eighth and ninth column are there in
# both rows: the flow, not the optimiser, makes them. With normalised steps in both spaces the linear SVM sides with the counterfactuals, by
# 14 points on these 50 images, still short of the paper's clear lead.
#
# So part of the failed linear-oracle check of this notebook is a property of Adam in *X*, not of
# the counterfactuals. This notebook keeps the paper's Adam in both spaces for its main study, the
# one Fig. 8 and all checks use, because the alternative is not better on the oracle *and* the
# k-NN in Z (the rule for changing the default), and because the paper's numbers were made
# with Adam; the table above is reported beside it.

# %% [markdown]
# ## 4. IM1: which class-specific autoencoder explains the image better? (Table I)
#
# $$\mathrm{IM1}(x') = \frac{\|x' - \mathrm{AE}_t(x')\|^2}{\|x' - \mathrm{AE}_{c_0}(x')\|^2 + \varepsilon}$$
#
# with autoencoders trained only on the target class $t = 9$ and only on the original class
# $c_0 = 4$ (Van Looveren & Klaise). Below 1 means the image looks more like a 9 than like a 4.

# %%
def im1(images):
    return im1_score(images, aes[target], aes[source])


im1_original, im1_x, im1_z = im1(x), im1(x_adv[ok_x]), im1(x_cf[ok_z])

# %%
print(f"{'IM1 (lower = more interpretable)':34s}{'mean':>7s}{'std':>7s}")
for name, v in [("original", im1_original), ("X (adversarial)", im1_x), ("Z (counterfactual)", im1_z)]:
    print(f"{name:34s}{v.mean().item():7.2f}{v.std().item():7.2f}")

# %% [markdown]
# ## 5. Distances in X and in Z (Fig. 14, Tables II–III)
#
# How far is each modified image from *its own* source, and how far from all the *other* images of
# the source class? Measured with the L2 norm in pixel space X and in the flow's latent space Z.

# %%
pool = x_test[y_test == source]  # every test image of the source class
dist = fig14_distances(g, x, {"x": x_adv, "z": x_cf}, {"x": ok_x, "z": ok_z}, pool)
fig = distance_histograms(dist)
save_figure(fig, STEM, "fig14_distances")
plt.show()

l2_x_to_source_x = dist[("X", "x", "own")].mean().item()
l2_x_to_source_z = dist[("X", "z", "own")].mean().item()
l2_z_to_source_x = dist[("Z", "x", "own")].mean().item()
l2_z_to_source_z = dist[("Z", "z", "own")].mean().item()

# %%
print(f"{'mean L2 to its own source':30s}{'in X':>8s}{'in Z':>8s}")
print(f"{'adversarial (X-ascent)':30s}{l2_x_to_source_x:8.2f}{l2_z_to_source_x:8.2f}")
print(f"{'counterfactual (Z-ascent)':30s}{l2_x_to_source_z:8.2f}{l2_z_to_source_z:8.2f}")

# %% tags=["nbval-check-output"]
print(f"adversarials closer in X: {l2_x_to_source_x < l2_x_to_source_z};  "
      f"counterfactuals closer in Z: {l2_z_to_source_z < l2_z_to_source_x}")

# %% [markdown]
# Adversarials are the closest images to their source *in pixels* — that is what makes them
# adversarial — but in the flow's latent space they are far away: the flow sees their noise as very
# unlikely. Counterfactuals are the opposite, a small step in Z that is a visible change in X, yet
# still much closer to their own source than to other 4s: they stay individual.
#
# ## 6. Beyond the paper: every source → target pair
#
# The paper studies 4 → 9. Here test images of each class, drawn at random as the 4s were, went to
# every other class (`n_per_pair` images per pair, searched in section 2 in the same batch as the
# 4 → 9 study), and
# the heat map shows the share of successful modifications the SVM oracle assigns to the target.

# %%
matrices = {}
for space, run in pair_runs.items():
    hit = (predict(svm, run.x) == tgt_pair) & run.success
    matrices[space] = share_matrix(hit, src_pair, tgt_pair, 10)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
for ax, space in zip(axes, ("x", "z"), strict=True):
    im = ax.imshow(matrices[space], vmin=0, vmax=1, cmap="viridis")
    ax.set(xticks=range(10), yticks=range(10), xlabel="target class", ylabel="source class")
    ax.set_title("adversarials (X)" if space == "x" else "counterfactuals (Z)", fontsize=10)
fig.suptitle("Share of modified images the SVM oracle assigns to the target class", fontsize=11)
fig.colorbar(im, ax=axes, shrink=0.8)
save_figure(fig, STEM, "pair_matrix_oracle")
plt.show()

# %%
for space in ("x", "z"):
    print(f"{space.upper()}: {len(idx_pair)} searches, {pair_runs[space].n_success} successful, "
          f"mean oracle agreement over pairs {np.nanmean(matrices[space].numpy()):.2f}")


# %% [markdown]
# ## 7. Explore
#
# `show_search` draws one image's path in either space; the widget below scrubs through it.

# %%
def show_search(index: int = 0, target_class: int = 9, space: str = "z", step: int = -1):
    """Search from test image ``index`` to ``target_class`` in ``space``; draw the original, the image
    at ``step`` (``-1``: the end) and the difference."""
    x0 = x_test[index : index + 1]
    run = counterfactual_search(f, x0, ClassTarget(target_class, confidence), space=space, g=g,
                                lr=lr_z if space == "z" else lr_x,
                                max_steps=max_steps_z if space == "z" else max_steps_x,
                                bounds=(0.0, 1.0), record_trajectory=True)
    path = run.trajectory[:, 0]
    k = len(path) - 1 if step < 0 else min(step, len(path) - 1)
    with torch.no_grad():
        p = f(path[k : k + 1]).softmax(1)[0]
    fig, axes = plt.subplots(1, 3, figsize=(6, 2.2))
    for ax, img, title in zip(axes, [x0[0, 0].cpu(), path[k, 0].cpu(), (path[k] - x0[0])[0].abs().cpu()],
                              ["original", f"step {k}: p({target_class}) = {p[target_class]:.2f}", "|δ|"],
                              strict=True):
        ax.imshow(img, cmap="gray" if title != "|δ|" else "magma")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    plt.show()
    return len(path) - 1


first_source = int(source_index[0])  # the first image of the 4 -> 9 study
show_search(first_source, target, "z")

# %% tags=["nbval-ignore-output"]
from ipywidgets import IntSlider, interact

interact(show_search, index=IntSlider(first_source, 0, len(x_test) - 1), target_class=IntSlider(target, 0, 9),
         space=["z", "x"], step=IntSlider(-1, -1, 300));

# %% [markdown]
# ## Results

# %%
results = {key: round(float(value), 4) for key, value in {
    "classifier_accuracy": classifier_accuracy,
    "svm_accuracy": svm_accuracy,
    "rbf_svm_accuracy": rbf_svm_accuracy,
    "flow_bits_per_dim": flow_bits_per_dim,
    "flow_sample_confident_share": flow_sample_confident_share,
    "success_rate_x": success_rate_x,
    "success_rate_z": success_rate_z,
    "oracle_target_share_original": oracle_target_share_original,
    "oracle_target_share_x": oracle_target_share_x,
    "oracle_target_share_z": oracle_target_share_z,
    "oracle_margin_z": oracle_margin_z,
    "oracle_margin_z_low": oracle_margin_z_low,
    "oracle_margin_z_high": oracle_margin_z_high,
    "rbf_oracle_target_share_x": rbf_oracle_target_share_x,
    "rbf_oracle_target_share_z": rbf_oracle_target_share_z,
    "knn_target_share_x": knn_target_share_x,
    "knn_target_share_z": knn_target_share_z,
    "im1_mean_original": im1_original.mean(),
    "im1_mean_x": im1_x.mean(),
    "im1_mean_z": im1_z.mean(),
    "l2_x_to_source_x": l2_x_to_source_x,
    "l2_x_to_source_z": l2_x_to_source_z,
    "l2_z_to_source_x": l2_z_to_source_x,
    "l2_z_to_source_z": l2_z_to_source_z,
    "pair_matrix_oracle_mean_x": np.nanmean(matrices["x"].numpy()),
    "pair_matrix_oracle_mean_z": np.nanmean(matrices["z"].numpy()),
    "oracle_target_share_z_normalized": search_table["Z, normalised"]["linear SVM: 9"],
    "oracle_target_share_x_normalized": search_table["X, normalised"]["linear SVM: 9"],
    "knn_target_share_z_normalized": search_table["Z, normalised"][f"{k_neighbours}-NN: 9"],
    "knn_target_share_x_normalized": search_table["X, normalised"][f"{k_neighbours}-NN: 9"],
}.items()}
results["flow_roundtrip_max_abs_error"] = float(f"{round_trip:.2g}")
save_results(STEM, results)
paper.compare(STEM, results)

# %% tags=["nbval-check-output"]
paper.check(STEM, results)

# %% [markdown]
# ## How close to the paper, and why not closer
#
# Read against the table above:
#
# - **Classifier and oracle** match the paper's accuracies.
# - **Flow**: its test bits/dim miss this project's target (1.20) and are well above the published
#   RealNVP and Glow (1.06 and 1.05); the round trip is exact to float precision.
# - **Success**: nearly every 4 → 9 search reaches Λ = 0.99 within this CPU profile's 1000 Z-steps
#   (all of them with the paper's 2000, as in `full.yaml`), and every one in X; section 6 printed the
#   same for the 10 × 10 study.
# - **Distances** (Tables II–III): the paper's orderings hold: adversarials are closer to their
#   source in X, counterfactuals in Z, and counterfactuals stay closer to their own source than to
#   other 4s (Fig. 14).
# - **k-NN** (Fig. 13) and **IM1** (Table I): counterfactuals look more like 9s than adversarials do,
#   as in the paper; the k-NN shares differ by just under 25 points, the 25 this project asks for, the
#   mean IM1 by a small margin.
# - **Oracle** (Fig. 11): here we do **not** reproduce the paper. The linear SVM calls fewer
#   counterfactuals than adversarials a 9 (−0.9 points, 95% interval −7 to +6 over the source
#   4s), where the paper finds counterfactuals far ahead (this project's target: 30 points in favour
#   of Z). The RBF SVM (not in the paper) sides with the
#   counterfactuals by 19 points; over the 90 pairs of section 6 the linear SVM does too, by 6 points
#   (target 25). With §III's normalised steps instead of Adam the linear SVM's verdict on 4 → 9 flips
#   to 14 points in favour of Z (section 3). What we measured about why is below.
# - **Runtime**: the default run takes about 3 minutes on the 2-core CPU (budget: 6). Four choices
#   made that possible, each measured: one batched search per space for both studies (the slow tail
#   of the Z-searches, a median of a few dozen steps but some run to the step limit, is paid once);
#   at most 1000 Z-steps (costs a few of the 4 → 9 successes); an Adam step of 5e-3 in X; and one
#   image per pair in the 10 × 10 study (ten in `full.yaml`).
#
# ### The oracle gap, measured
#
# The tables of this section were measured when this notebook took the *first* 200 test 4s in the
# file (`--sources first` reproduces them), all from the first half of the test file; each compares
# variants on the same images, which is what it is for, and the last paragraphs of the section
# give the judges' verdict on all test 4s.
#
# `benchmarks/mnist_oracle_gap.py --sources first` (about 15 minutes on the CPU) reruns the 4 → 9
# study on those 200 images with other step sizes, adds a second oracle (an SVM with an RBF kernel,
# trained on 10 000 training images: 96.5% test accuracy), and measures how likely the flow finds the results
# (bits/dim, lower = more typical). Its output on this project's machine:
#
# | variant | success | median steps | linear SVM: 9 | RBF SVM: 9 | 10-NN: 9 | L2 in X | bits/dim |
# |---|---|---|---|---|---|---|---|
# | originals | | | 0.05 | 0.02 | 0.07 | 0 | 1.31 |
# | Z, Adam 5e-2 (paper) | 1.00 | 28 | 0.19 | 0.21 | 0.34 | 5.39 | 2.25 |
# | Z, Adam 1e-2 | 0.98 | 165 | 0.19 | 0.19 | 0.31 | 4.56 | 1.73 |
# | X, Adam 5e-4 (paper) | 0.98 | 1012 | 0.26 | 0.09 | 0.12 | 2.40 | 17.6 |
# | X, Adam 2e-3 | 1.00 | 214 | 0.25 | 0.09 | 0.12 | 2.49 | 18.8 |
# | X, Adam 5e-3 (this notebook) | 1.00 | 45 | 0.26 | 0.09 | 0.12 | 2.69 | 35.6 |
#
# What it says: (1) the *step size* of the search is not the problem: a five times smaller Z-step keeps the
# counterfactuals closer to the flow's typical set (1.73 vs 2.25 bits/dim) but the oracle shares do
# not move; (2) the *linear* oracle is part of it: the adversarials' dense pixel noise pushes a linear
# model on pixels toward 9 almost as much as it pushes the CNN (26%), while a non-linear oracle of
# higher accuracy is fooled far less (9%) and sides with the counterfactuals by 12 points; (3) the
# counterfactuals stop at the first step where *this* CNN is 99% sure, and the Fig. 8 grid shows many
# 4/9 hybrids there, which neither oracle reads as clear 9s. The paper does not name its SVM's kernel; a
# linear SVM matches its 92% accuracy, so that is what section 3 uses.
#
# The remaining suspect is the density model: the paper's RealNVP was trained far longer, on a GPU.
# `benchmarks/mnist_oracle_gap.py --sources first --flow-steps 3000 6000` (about 45 minutes on the CPU) trains this
# notebook's flow recipe for 3000 and 6000 steps instead of 11 000 and repeats the paper's Z-search
# (Adam 5e-2, up to 2000 steps) on the same 200 images with each flow. Its output:
#
# | flow: training steps | test bits/dim | success | median steps | linear SVM: 9 | RBF SVM: 9 | 10-NN: 9 | L2 in X | bits/dim of the results |
# |---|---|---|---|---|---|---|---|---|
# | 3000 (13 min) | 1.58 | 0.99 | 24 | 0.19 | 0.24 | 0.35 | 5.45 | 2.12 |
# | 6000 (24 min) | 1.45 | 1.00 | 28 | 0.22 | 0.18 | 0.35 | 5.47 | 2.26 |
# | 11 000 (shipped) | 1.36 | 1.00 | 28 | 0.19 | 0.21 | 0.34 | 5.39 | 2.25 |
#
# Over 0.22 bits/dim of flow quality no judge moves by more than 3 points, and not in one direction;
# with 200 images a share near 0.2 carries a sampling error of about ±3 points, so this is no trend
# at all.
#
# The larger flow trained in stages for this question, `mnist_flow_wide` (1.18 bits/dim after
# 40 000 steps, 8.3 CPU-hours), extends the range. `benchmarks/mnist_oracle_gap.py --sources first
# --flow mnist_flow_wide --confidence 0.99` (about 5 minutes) runs this notebook's two searches (Z: Adam
# 5e-2, at most 1000 steps) with it on the same 200 images; the shipped flow's row is the same
# command with `--flow mnist_flow` (bits/dim measured by each flow itself):
#
# | flow | test bits/dim | success | median steps | linear SVM: 9 | RBF SVM: 9 | 10-NN: 9 | L2 in X | bits/dim of the results (originals) | seconds |
# |---|---|---|---|---|---|---|---|---|---|
# | `mnist_flow` (shipped) | 1.36 | 0.98 | 28 | 0.20 | 0.23 | 0.35 | 5.36 | 2.14 (1.31) | 82 |
# | `mnist_flow_wide` | 1.18 | 0.94 | 39 | 0.18 | 0.24 | 0.35 | 5.30 | 4.47 (1.13) | 226 |
# | `mnist_flow_checkerboard` (step 39 071 of 40 000) | 1.29 | 0.98 | 21 | 0.21 | 0.26 | 0.39 | 5.78 | 5.21 (1.23) | 154 |
# | `mnist_flow_large` (one GPU stage: step 3281 of 9000) | 1.30 | 0.89 | 29 | 0.20 | 0.21 | 0.41 | 6.01 | 1.90 (1.24) | 58 on a GPU |
#
# The third row is a flow of another class, RealNVP's checkerboard couplings at the wide flow's
# size (the paper's code trains a multi-scale RealNVP): its samples are the cleanest of the three
# (75% confident at T = 0.7, against 68% for the wide one) at a worse likelihood, and its judges
# are one to four points ahead of the Glows', again within the sampling error.
#
# The last row is the one GPU stage this project has had (6.2 minutes on an H200, the same command
# with `--device cuda`, judges computed there too): a Glow of 6 million parameters (16 + 16 steps,
# width 384), twelve times the wide flow's arithmetic per image, stopped at step 3281 of the 9000 its
# recipe plans, before its learning rate had decayed. At 1.30 bits/dim it is no better a density
# model than the others yet (67% confident samples), its searches fail more often (0.89), and its
# judges fall in the same range. It says nothing about a flow near 1.05; it shows what one short GPU
# stage buys, and the manifest keeps it for the next one (README, "Training").
#
# Is 200 images enough to call these gaps? The same command with `--n 500` (the shipped flow, the
# first 500 test 4s: all of the first half's; about 3 minutes on the CPU) gives Z: success 0.98, linear SVM 0.25, RBF SVM 0.25, 10-NN 0.36; X: 1.00,
# 0.30, 0.09, 0.12. The linear oracle's gap is −5 points, the RBF oracle's +16 and the neighbours'
# +24: the verdict of the 200, with less than two thirds of its sampling error. And on all 979 test
# 4s the CNN calls 4, both halves of the test file, as the paper searches (`--n 0 --confidence
# 0.99`, about 5 minutes): Z success 0.99, linear SVM 0.22, RBF SVM 0.22, 10-NN 0.34; X 1.00, 0.24,
# 0.06, 0.09. The linear oracle's gap is −2 points, the RBF oracle's +16 and the neighbours' +25:
# for this flow the verdict does not depend on which half of the test file the 4s come from.
#
# From 1.58 to 1.18 bits/dim, 0.40 of flow quality, the linear oracle stays at 0.18–0.22, the RBF
# oracle at 0.18–0.24 and the nearest neighbours at 0.34–0.35; the better flow even finds its
# counterfactuals *less* typical (4.47 bits/dim against its originals' 1.13). The published flows
# are another 0.13 bits/dim better than the wide one, and a much better flow, trained on a GPU, may
# still behave differently; that remains untested here, but these measurements, over two classes of
# flow, give no reason to expect the missing 36 points from it.
#
# Point (3) suggests one more suspect: the searches stop too early, at 4/9 hybrids.
# `benchmarks/mnist_oracle_gap.py --sources first --confidence 0.99 0.999 0.9999` (about 15 minutes) runs this
# notebook's two searches on to higher target confidences Λ. Its output (shares of the successful
# searches):
#
# | Λ | space | success | median steps | linear SVM: 9 | RBF SVM: 9 | 10-NN: 9 | L2 in X | bits/dim |
# |---|---|---|---|---|---|---|---|---|
# | 0.99 | Z | 0.98 | 28 | 0.20 | 0.23 | 0.35 | 5.36 | 2.14 |
# | 0.99 | X | 1.00 | 45 | 0.26 | 0.09 | 0.12 | 2.69 | 38.3 |
# | 0.999 | Z | 0.86 | 144 | 0.27 | 0.27 | 0.43 | 5.71 | 2.38 |
# | 0.999 | X | 1.00 | 421 | 0.31 | 0.14 | 0.14 | 2.96 | 96.2 |
# | 0.9999 | Z | 0.39 | 1000 | 0.47 | 0.46 | 0.64 | 5.63 | 2.14 |
# | 0.9999 | X | 0.31 | 2000 | 0.52 | 0.31 | 0.27 | 2.57 | 10.4 |
#
# Going further makes the results of *both* searches look more like 9s to the linear SVM, by the same
# amount: its verdict stays 4 to 6 points in favour of the adversarials at every Λ. The RBF SVM and
# the nearest neighbours keep siding with the counterfactuals (by 12 to 37 points). At Λ = 0.9999
# only a minority of searches succeeds within the step limit, so those shares describe the easy
# cases only. What is left is the judge itself: with this CNN, 4 → 9 adversarials transfer to a
# linear SVM on pixels about as often as counterfactuals convince it, and the paper's text does not
# say enough about its oracle (kernel, training data) to rule out that its oracle differs from ours.
#
# **Which SVM?** The paper says only "a 10-class SVM, 92% test accuracy". `benchmarks/mnist_oracle_kinds.py`
# (about 7 minutes) fits other readings of that sentence and asks each of them about the same results:
# this notebook's counterfactuals and adversarials and notebook 07's VAE and GAN counterfactuals,
# of all 979 test 4s the CNN calls 4 (shares of 9s; margins over X in points, with 95% intervals):
#
# | oracle (kernel, regularisation, training images) | test accuracy | X | flow | flow − X | VAE | VAE − X | GAN | GAN − X |
# |---|---|---|---|---|---|---|---|---|
# | linear, C 0.05, 60 000 (this notebook's `mnist_svm`) | 0.918 | 0.24 | 0.22 | −1.9 [−4.9, +1.1] | 0.48 | +24.4 [+20.9, +27.7] | 0.48 | +24.6 [+21.0, +28.3] |
# | linear, C 1e-3, 60 000 | 0.913 | 0.11 | 0.22 | +10.7 [+8.3, +13.3] | 0.50 | +38.2 [+34.9, +41.4] | 0.51 | +39.3 [+36.0, +42.7] |
# | RBF, γ "scale", 1000 | 0.925 | 0.10 | 0.22 | +11.6 [+9.0, +14.2] | 0.56 | +45.2 [+42.1, +48.3] | 0.56 | +45.2 [+41.9, +48.5] |
# | RBF, γ = 1/784, 5000 | 0.912 | 0.11 | 0.21 | +9.8 [+7.5, +12.2] | 0.57 | +46.5 [+43.2, +49.8] | 0.57 | +46.4 [+43.0, +49.7] |
# | RBF, γ "scale", 10 000 (`mnist_svm_rbf`) | 0.964 | 0.06 | 0.22 | +15.5 [+13.1, +18.1] | 0.69 | +63.1 [+60.0, +66.2] | 0.65 | +59.0 [+55.7, +62.2] |
#
# (γ "scale" is scikit-learn's default since version 0.22, γ = 1/784 its default before; the training
# images are a random draw.) Two things separate cleanly here. First, the *adversarials'* share
# depends on the oracle: the linear SVM this notebook uses calls 24% of them a 9, every other SVM of
# about the paper's accuracy 10–11%. It is the reading of the paper's sentence most easily fooled by
# adversarial noise (a weakly regularised linear model, fitted to every training image), and against
# the other three it lowers every generator's margin, by 12 to 14 points for the flow and 14 to 22
# for the VAE and the GAN. Second, the *flow's counterfactuals* are called a 9 by 21–22% of every
# oracle, the VAE's and the GAN's by 48–69%: whichever judge, the flow's counterfactuals are behind
# by 26 points or more. With any of the other three 92% SVMs the VAE and GAN lead the adversarials
# by 38–47 points, clear of this project's 30, while the flow leads by 10–12. Of the 32 points
# between the flow's −2 and the target's +30, the oracle accounts for 12–14 and the flow's
# counterfactuals for the remaining 18–20. The
# checks above keep `mnist_svm`, the oracle the project fixed before these measurements, since
# picking a judge after seeing its verdict would prove nothing.
#
# The update rule is the last suspect, and the one that moved a judge (section 3's table).
# `benchmarks/mnist_oracle_gap.py --sources first --n 50 --normalized 0.5 1 2 --normalized-x 0.05 0.2`
# (about 10 minutes) compares this notebook's Adam searches with §III's plain ascent at several step lengths,
# on the first 50 of the 200 images (bits/dim of the results measured with the flow):
#
# | variant | success | median steps | linear SVM: 9 | RBF SVM: 9 | 10-NN: 9 | L2 in X | bits/dim |
# |---|---|---|---|---|---|---|---|
# | originals | | | 0.00 | 0.00 | 0.06 | 0 | 1.30 |
# | Z, Adam 5e-2 (this notebook) | 0.98 | 37 | 0.20 | 0.20 | 0.31 | 5.42 | 2.30 |
# | Z, normalised 0.5 | 0.98 | 18 | 0.22 | 0.20 | 0.30 | 4.84 | 1.44 |
# | Z, normalised 1 | 0.94 | 12 | 0.26 | 0.23 | 0.31 | 5.53 | 1.72 |
# | Z, normalised 2 | 0.94 | 14 | 0.49 | 0.30 | 0.34 | 6.78 | 3.83 |
# | X, Adam 5e-3 (this notebook) | 1.00 | 47 | 0.26 | 0.04 | 0.11 | 2.80 | 49.4 |
# | X, normalised 0.05 | 1.00 | 42 | 0.08 | 0.04 | 0.13 | 1.93 | 6.11 |
# | X, normalised 0.2 | 1.00 | 11 | 0.10 | 0.04 | 0.13 | 2.01 | 6.37 |
#
# Normalised Z-steps of 0.5 find counterfactuals the flow considers almost as typical as the
# originals (1.44 bits/dim against 2.30 with Adam), at the same judges' shares; longer steps buy a
# higher linear-SVM share with failed searches and atypical images. In X the normalised adversarials
# are ten times more typical than Adam's and fool the linear SVM three times less often.
#
# **Which latents move?** The flow's $z$ has one part per scale: the finest scale's split
# (2 × 14 × 14 = 392 coordinates) and the coarsest scale's latent (8 × 7 × 7 = 392). The split prior
# makes the fine part a residual *given* the coarse one, so a search that moves only the coarse
# latents still changes every pixel coherently. `benchmarks/mnist_oracle_gap.py --scales` (about 8
# minutes, 200 random test 4s) moves only some of them, with Adam and with normalised steps:
#
# | variant | success | median steps | linear SVM: 9 | RBF SVM: 9 | 10-NN: 9 | L2 in X | bits/dim |
# |---|---|---|---|---|---|---|---|
# | originals | | | 0.06 | 0.04 | 0.06 | 0 | 1.31 |
# | Z, every scale, Adam 5e-2 (this notebook) | 0.97 | 32 | 0.25 | 0.24 | 0.36 | 5.39 | 2.16 |
# | Z, every scale, normalised 0.5 | 1.00 | 18 | 0.20 | 0.22 | 0.35 | 4.98 | 1.47 |
# | Z, coarsest only, Adam 5e-2 | 0.95 | 40 | 0.23 | 0.25 | 0.38 | 5.49 | 1.67 |
# | Z, coarsest only, normalised 0.5 | 1.00 | 17 | 0.24 | 0.24 | 0.37 | 5.02 | 1.44 |
# | Z, finest only, Adam 5e-2 | 0.98 | 298 | 0.13 | 0.07 | 0.16 | 3.75 | 4.37 |
# | Z, finest only, normalised 0.5 | 1.00 | 80 | 0.12 | 0.07 | 0.16 | 3.54 | 1.74 |
#
# Moving only the coarse latents gives results about as typical for the flow as normalised steps do
# (1.67 and 1.44 bits/dim against 2.16) and the same judges' shares: the counterfactuals' changes
# of shape are made in the coarse scale, and holding the fine latents still removes nothing the
# judges count. Moving only the fine latents is a search of another kind: ten times the steps,
# smaller pixel changes, atypical images, and the judges convinced least (RBF 0.07, 10-NN 0.16).
# So the fine scale is not what limits the counterfactuals; what the coarse scale has learned is.
#
# **Does the search leave the flow's manifold?** Theorem 1 collapses the off-manifold directions of
# $\gamma^{-1}$ only for a perfect flow; an imperfect one might let the ascent slip off its manifold
# into directions that change the CNN cheaply. Notebook 02 found a single Z-step lying almost
# entirely (99.7%) in the top eigenspace of $\gamma^{-1}$ at the start; `benchmarks/mnist_oracle_gap.py
# --tangent 16 32 64` (about 25 minutes, the same 200 random 4s) confines the *whole* search to the
# $k$ directions in Z that the decoder stretches most at the start, the top right singular vectors
# of $J = \partial g/\partial z$ (notebook 02's tangent space, of about 12 dimensions by its 90%
# rule). Confined searches fail more often, so the table also judges both searches on the images
# where both succeeded:
#
# | variant | success | median steps | linear SVM: 9 | RBF SVM: 9 | 10-NN: 9 | L2 in X | bits/dim |
# |---|---|---|---|---|---|---|---|
# | Z, every direction (this notebook) | 0.97 | 32 | 0.25 | 0.24 | 0.36 | 5.39 | 2.16 |
# | Z, top 16 directions | 0.67 | 347 | 0.31 | 0.31 | 0.39 | 4.85 | 1.37 |
# | &nbsp;&nbsp;the 65% where both succeeded: top 16 / every direction | | | 0.31 / 0.33 | 0.31 / 0.29 | 0.39 / 0.43 | 4.83 / 5.05 | 1.37 / 1.91 |
# | Z, top 32 directions | 0.89 | 110 | 0.24 | 0.23 | 0.34 | 4.74 | 1.43 |
# | &nbsp;&nbsp;the 88% where both succeeded: top 32 / every direction | | | 0.25 / 0.26 | 0.23 / 0.25 | 0.34 / 0.38 | 4.73 / 5.27 | 1.44 / 2.06 |
# | Z, top 64 directions | 0.96 | 70 | 0.24 | 0.20 | 0.30 | 4.72 | 1.46 |
# | &nbsp;&nbsp;the 95% where both succeeded: top 64 / every direction | | | 0.24 / 0.25 | 0.21 / 0.24 | 0.30 / 0.37 | 4.70 / 5.36 | 1.46 / 2.16 |
#
# Confined to the tangent directions, the counterfactuals are more typical for the flow (1.4 bits/dim
# against about 2) and a little closer to their sources, but on the same images the judges call no
# more of them a 9 than of the free search's (within 2 points; the nearest neighbours 4 to 7 points
# fewer): the higher shares of the top-16 row are those of the easier two thirds that succeed. The search does not need to slip off the flow's manifold to make
# its fragments: they lie *on* the manifold this flow has learned, which is what its samples show too
# (section 1). A better counterfactual needs a better manifold, not a better-confined search.
#
# **Is it the classifier?** Every suspect so far was the generator, the search or the judge; the
# CNN being explained is the other half of every search. A CNN trained on noisy inputs is smoother
# and its input gradients are known to look more like the data, so its counterfactuals, and its
# adversarials, might read more as 9s. `benchmarks/mnist_oracle_gap.py --classifier-noise 0.6 0.6
# 0.3` (about 25 minutes, the same 200 random 4s) trains the shipped CNN's recipe three times on
# inputs with Gaussian noise of a standard deviation drawn per image from $U(0, s)$ (twice with
# $s = 0.6$, recipe seeds 4 and 5, once with 0.3; test accuracies 99.41%, 99.46%, 99.48% against the
# shipped 99.52%) and runs this notebook's two searches with each. The last column is the share the
# *other* CNN calls a 9 (the shipped CNN for the smoothed ones' results; the first smoothed CNN for
# the shipped one's):
#
# | classifier | space | success | median steps | linear SVM: 9 | RBF SVM: 9 | 10-NN: 9 | L2 in X | other CNN: 9 |
# |---|---|---|---|---|---|---|---|---|
# | shipped | Z | 0.97 | 32 | 0.25 | 0.24 | 0.36 | 5.39 | 0.63 |
# | noise 0.6, seed 4 | Z | 0.87 | 86 | 0.39 | 0.47 | 0.59 | 6.10 | 0.95 |
# | noise 0.6, seed 5 | Z | 0.79 | 87 | 0.36 | 0.48 | 0.64 | 5.94 | 0.97 |
# | noise 0.3, seed 6 | Z | 0.92 | 44 | 0.29 | 0.27 | 0.44 | 5.84 | 0.97 |
# | shipped | X | 1.00 | 49 | 0.25 | 0.05 | 0.12 | 2.87 | 0.00 |
# | noise 0.6, seed 4 | X | 1.00 | 133 | 0.26 | 0.56 | 0.36 | 4.67 | 0.93 |
# | noise 0.6, seed 5 | X | 1.00 | 150 | 0.43 | 0.37 | 0.36 | 4.87 | 0.87 |
# | noise 0.3, seed 6 | X | 1.00 | 84 | 0.28 | 0.22 | 0.21 | 4.00 | 0.83 |
#
# The smoother CNN's counterfactuals are judged 9s far more often (with $s = 0.6$: linear SVM
# 0.36–0.39, RBF 0.47–0.48, neighbours 0.59–0.64, against 0.25, 0.24, 0.36), at the price of more
# failed searches within the 1000 steps. But its *X-searches* change too, and are no longer
# adversarial noise. The shipped CNN calls 87–93% of them a 9 (the first smoothed CNN calls none of
# the shipped one's adversarials a 9), and the judges call them 9s as often as, or more often than,
# the shipped CNN's counterfactuals. Drawn as Fig. 8 (the same command with `--classifier-noise 0.6
# --figure out.png`, about 10 minutes: the same ten 4s as this run's Fig. 8), the smoothed CNN's Z-row holds three clear 9s (two of them filled blobs) and two
# ambiguous ones beside fragments and a "1" with dots, against the shipped CNN's three; its X-row
# closes the top of most 4s with a faint grey stroke over a blotchy background, a change of shape
# made in pixel space. So the margins the checks read do not open: Z − X (differences
# of shares) is +13 and −7 points for the linear SVM, −9 and +11 for the RBF one and +23 and +28 for
# the neighbours with the two $s = 0.6$ CNNs; +1, +5 and +23 with $s = 0.3$ (the shipped CNN: 0,
# +19, +24). The two trainings with the same $s$ disagree by up to 19 points on the X-results, so
# one training says little about any single margin; what both say is that a smoother classifier
# moves *both* searches toward the data. That is the paper's geometry seen from the other side: its
# contrast between the spaces needs a classifier whose input gradient points off the data
# manifold, and the smoother $f$ is, the less the generator has to add. A smoother classifier
# is no way to this notebook's targets, and it would explain a different model than the paper's.
#
# ## Summary
#
# - The batched engine finds counterfactuals (Z) and adversarials (X) for hundreds of images in one
#   call each; the flow is exactly invertible, so $g(g^{-1}(x)) = x$ to float precision.
# - Adversarials change pixels a little everywhere; counterfactuals change strokes. Distances in X and
#   Z, nearest neighbours and IM1 all tell the two apart in the paper's direction.
# - To the eye, Fig. 8 does not show the paper's claim: of its ten counterfactuals three read as 9s
#   (one as cleanly as the paper's), four are still 4s, two are fragments and one is a loop at
#   best; the judges agree with the eye, and with each other, on the clean one only.
# - The linear-SVM oracle test fails (for 4 → 9 it prefers Adam's adversarials), and neither the step
#   size, nor the flow's quality between 1.58 and 1.18 bits/dim (two classes of flow), nor a higher
#   target confidence Λ, nor which scale's latents move, nor confining the search to the flow's
#   tangent directions changes that (the benchmark tables above); a CNN trained on noisy inputs
#   makes the counterfactuals read as 9s more often, but its X-searches too, so the margins stay
#   short of the targets;
#   the RBF oracle and the 90-pair study side with the counterfactuals, by far less than the
#   target's 30 points. Searched with §III's normalised steps instead of Adam, the adversarials fool
#   the linear SVM far less and the order flips in favour of the counterfactuals: part of the gap is
#   Adam's sign-like update in X.
# - Part of it is the judge: of five SVMs, the pinned linear one is the most fooled by the
#   adversarials (24%, the other 92% SVMs 10–11%). The larger part is the flow's counterfactuals:
#   every SVM calls 21–22% of them a 9, and 48–69% of notebook 07's VAE and GAN counterfactuals.
#
# ## Exercises
#
# 1. Lower the confidence Λ to 0.9. How do the step counts and the oracle shares change?
# 2. Run the study with `source, target = 7, 1` and `3, 8`. For which pairs do counterfactuals and
#    adversarials differ most?
# 3. Replace the k-NN bank by the test set (excluding each source image). Does the k-NN share change?
# 4. Run this notebook with `flow = "mnist_flow_wide"` (or train it further:
#    `python -m diffcf.zoo train mnist_flow_wide --resume --minutes 60`) and watch the
#    bits/dim, the Fig. 8 grid and the oracle shares with this run's.
# 5. Judge this run with another "SVM of 92%": fit `sklearn.svm.SVC()` (RBF kernel) on 1000 random
#    training images, copy it into `diffcf.models.oracles.RBFSVMOracle().set_from_sklearn(...)` and
#    pass it to `oracle_target_share` for `x_adv[ok_x]` and `x_cf[ok_z]`. Which share moves, the
#    adversarials' or the counterfactuals'? Compare with `benchmarks/mnist_oracle_kinds.py`.
# 6. Explain a smoother classifier: train the CNN on noisy inputs (`input_noise` of
#    `diffcf.recipes.mnist.train_mnist_classifier`; `benchmarks/mnist_oracle_gap.py` shows how) and
#    draw its Fig. 8. Which row changes more, the counterfactuals' or the adversarials'? What does
#    that say about where the gradient of the shipped CNN points?
