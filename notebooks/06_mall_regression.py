# %% [markdown]
# # 06 · Counting people: regression counterfactuals on the Mall dataset
#
# **Claim.** Counterfactuals are not only for classifiers. A U-Net counts the people in a crop of a
# shopping-mall camera; gradient ascent in the latent space of a Glow makes it count many more people
# (or none) by painting or erasing people-like blobs where people walk, while the same ascent on
# the pixels fools the U-Net with faint noise that a second, independently trained U-Net (the
# oracle) does not believe.
#
# **Paper.** §IV-B/C/D on Mall: Fig. 8 (Mall rows), Fig. 11 right (oracle counts), Fig. 12 (head
# localisation), Fig. 13 right (k-NN counts).
#
# **What you will see.** Crops with few people pushed up until the U-Net counts more than 10, crops
# with many people pushed down until it counts fewer than 0.01, in Z (counterfactuals) and in X
# (adversarials), in one batched search per space; then three judges of what changed.
#
# **Runtime.** RUNTIME_DEFAULT on a 2-core CPU with the shipped checkpoints; the full run
# (`notebooks/params/full.yaml`) RUNTIME_FULL.
#
# **Data.** The real Mall dataset (Chen et al. 2012; 2000 frames of one camera, 640 × 480, every head
# annotated) from `$DIFFCF_DATA/mall` (`make data`; read its PROVENANCE.md). Frames 1–800 train,
# 801–2000 test (the standard split). A crop shows a 128 × 128 window of the frame inside the region of
# interest, resized to SIZE_NOTE; its count is the number of annotated heads inside it, its density
# target one small Gaussian per head (summing to the count). Test crops: 4 per test frame at random
# positions (seed 0), the ones every metric below uses.

# %% tags=["parameters"]
size = 32  # crop side: 32 (the CPU models, names ending in _32) or 64 (the paper's; train those first)
n_images = 50  # crops per direction (maximise and minimise)
few, many = 1, 4  # sources: at most `few` people (maximise) / at least `many` people (minimise)
up_to, down_to = 10.0, 0.01  # stop when the U-Net counts more than up_to / fewer than down_to
lr_z, lr_x, max_steps = 5e-3, 1e-4, 5000  # Adam in Z and in X (the paper's code for Mall)
k_neighbours = 3  # k-NN check (paper: 3)
seed = 0
device = "auto"  # "cpu", "cuda", or "auto": CUDA when torch sees one

# %%
import matplotlib.pyplot as plt
import torch

from diffcf import paper, seed_everything, zoo
from diffcf.evaluate import knn_mean_value, localize_heads
from diffcf.plotting import COLORS, flow_samples, image_rows
from diffcf.recipes.mall import count_metrics, load_quantized, predict_counts
from diffcf.search import counterfactual_search
from diffcf.targets import RegressionTarget
from diffcf.utils import get_device, save_figure, save_results

STEM = "06_mall_regression"
gen = seed_everything(seed)
device = get_device(device)
suffix = "" if size == 64 else f"_{size}"

# %% [markdown]
# ## 1. Crops, the two U-Nets and the flow
#
# | name | what | role |
# |---|---|---|
# | `mall_unet` | U-Net after Ribera et al. (the paper's code): density map, count from bottleneck and map | $f$, the regressor explained |
# | `mall_unet_oracle` | a deeper U-Net, other training crops, count = sum of its density map | oracle (Fig. 11, 12) |
# | `mall_flow` | three-scale Glow on the 5-bit crops | $g$, the diffeomorphism |
#
# Every model sees the crops quantised to 5 bits, as the paper's Glow models them. A model that
# learned nothing and always answers the training crops' mean count scores the "constant" RMSE.

# %%
train, test = load_quantized("train", size), load_quantized("test", size)
f, oracle, g = (zoo.frozen(zoo.load_or_train(name + suffix, device=device))
                for name in ("mall_unet", "mall_unet_oracle", "mall_flow"))
x_train, count_train = train.x.to(device), train.count.to(device)
x_test, count_test = test.x.to(device), test.count.to(device)

rmse = {}
for name, model in (("f", f), ("oracle", oracle)):
    predicted, map_sums = predict_counts(model, x_test)
    metrics = count_metrics(predicted, map_sums, test.count, train.count.mean().item())
    rmse[name] = metrics["test_rmse"]
    print(f"{name:7s} test RMSE {metrics['test_rmse']:.3f}, MAE {metrics['test_mae']:.3f} "
          f"(constant: {metrics['test_rmse_constant']:.3f}); its density map sums to the count with "
          f"RMSE {metrics['test_map_rmse']:.3f}")
unet_rmse, oracle_rmse = rmse["f"], rmse["oracle"]
flow_entry = zoo.manifest_entry("mall_flow" + suffix)
flow_bits_per_dim = flow_entry["metrics"]["test_bits_per_dim"]
print(f"crops: {len(x_train)} train, {len(x_test)} test, {size} × {size}; test counts: mean "
      f"{test.count.mean().item():.2f}, {(test.count == 0).float().mean().item():.0%} empty, "
      f"max {test.count.max().item():.0f}")
print(f"flow: {flow_entry['steps_done']} steps in {flow_entry['train_seconds'] / 60:.0f} min, "
      f"{flow_bits_per_dim:.3f} test bits/dim (5-bit), round trip "
      f"{flow_entry['metrics']['test_roundtrip_max_abs_error']:.1e}")

# %% [markdown]
# What the flow has learned: samples $g(z)$, $z \sim \mathcal{N}(0, T^2 I)$, at $T = 0.7$ and $1.0$,
# and the round trip $g(g^{-1}(x))$ of test crops, which must return each crop exactly.

# %%
fig, round_trip_error = flow_samples(g, x_test[:10], seed, temperatures=(0.7, 1.0), name="test crops")
save_figure(fig, STEM, "flow_samples")
plt.show()
print(f"largest round-trip error on these crops: {round_trip_error:.1e}")

# %% [markdown]
# FLOW_COMMENT
#
# ## 2. More people, fewer people: the searches (Fig. 8)
#
# The regression target of §IV-D: maximise the count $r = f(x)$ until $r > 10$ for crops with at
# most one person, minimise it until $r < 0.01$ for crops with at least four, with Adam on the latent
# $z$ (counterfactuals) or on the pixels (adversarials), every crop stopping on its own. Both
# directions go in one batch: each crop carries its own threshold and direction.

# %%
picks = {"max": torch.nonzero(count_test <= few)[:, 0], "min": torch.nonzero(count_test >= many)[:, 0]}
perm = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(seed)).to(device)
picks = {k: perm[torch.isin(perm, v)][:n_images] for k, v in picks.items()}  # a random subset of each
x = torch.cat([x_test[picks["max"]], x_test[picks["min"]]])
up = torch.arange(len(x), device=device) < len(picks["max"])
targets = RegressionTarget(torch.where(up.cpu(), up_to, down_to), up.cpu())
runs = {
    "z": counterfactual_search(f, x, targets, space="z", g=g, lr=lr_z, max_steps=max_steps,
                               bounds=(0.0, 1.0), progress=True),
    "x": counterfactual_search(f, x, targets, space="x", lr=lr_x, max_steps=max_steps,
                               bounds=(0.0, 1.0), progress=True),
}
direction = {"max": up, "min": ~up}

# %%
with torch.no_grad():
    r_original = f(x)
print(f"{len(picks['max'])} crops with ≤ {few} person (f counts {r_original[up].mean().item():.2f} on "
      f"average) pushed above {up_to:g}; {len(picks['min'])} crops with ≥ {many} people (f: "
      f"{r_original[~up].mean().item():.2f}) pushed below {down_to:g}")
success = {}
for space, run in runs.items():
    for d, rows in direction.items():
        success[d, space] = run.success[rows].float().mean().item()
        print(f"{d}imise in {space.upper()}: success {success[d, space]:.2f}, median steps "
              f"{run.steps[rows].float().median().item():.0f}")

# %%
cols = 8
with torch.no_grad():
    recon = g.decode(g.encode(x)).clamp(0, 1)
for d, rows in direction.items():
    i = torch.nonzero(rows)[:cols, 0]
    fig = image_rows({"$x$": x[i], "$g(g^{-1}(x))$": recon[i],
                      "Z: $x'$": runs["z"].x[i], "|δ| Z": (runs["z"].x - x)[i],
                      "X: $x'$": runs["x"].x[i], "|δ| X": (runs["x"].x - x)[i]}, size=1.4)
    counts = " ".join(f"{a:.1f}→{b:.1f}/{c:.1f}" for a, b, c in zip(
        r_original[i].tolist(), runs["z"].output[i].tolist(), runs["x"].output[i].tolist(), strict=True))
    fig.suptitle(f"{d}imise the count: f's count original → Z / X per column\n{counts}", y=0.99, fontsize=9)
    save_figure(fig, STEM, f"fig8_{d}imise")
    plt.show()

# %% [markdown]
# FIG8_COMMENT
#
# ## 3. Does the oracle count the same? (Fig. 11 right)
#
# The oracle U-Net never saw $f$'s training crops nor its gradients. If a modification really adds
# (or removes) people, the oracle's count moves with $f$'s; if it is noise that exploits $f$, the
# oracle's count stays where it was. We report, over the successful searches, the mean change of the
# oracle's count, result minus original.

# %%
with torch.no_grad():
    counted = {"original": oracle(x), "X": oracle(runs["x"].x), "Z": oracle(runs["z"].x)}
oracle_change = {}
for d, rows in direction.items():
    for space in ("x", "z"):
        ok = rows & runs[space].success
        oracle_change[d, space] = (counted[space.upper()] - counted["original"])[ok].mean().item()

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for ax, (d, rows) in zip(axes, direction.items(), strict=True):
    values = [counted["original"][rows].mean().item()] + [
        counted[s.upper()][rows & runs[s].success].mean().item() for s in ("x", "z")]
    ax.bar(["original", "X\nadversarial", "Z\ncounterfactual"], values,
           color=[COLORS["data"], COLORS["x"], COLORS["z"]])
    for j, v in enumerate(values):
        ax.text(j, v, f"{v:.2f}", ha="center", va="bottom", fontsize=9)
    ax.set(ylabel="mean count of the oracle", title=f"{d}imise f's count: the oracle counts")
fig.tight_layout()
save_figure(fig, STEM, "oracle_counts")
plt.show()
for d in direction:
    print(f"{d}imise: oracle count change X {oracle_change[d, 'x']:+.2f}, Z {oracle_change[d, 'z']:+.2f}")

# %% [markdown]
# ORACLE_COMMENT
#
# ## 4. Where are the heads? (Fig. 12)
#
# Both U-Nets also draw a density map. The paper localises heads by rounding the count to an integer
# $n$ and fitting a Gaussian mixture with $n$ components to the map
# (`diffcf.evaluate.localize_heads`); the means are the heads. Drawn below for $f$ (circles) and the
# oracle (crosses) on originals, counterfactuals and adversarials of the maximised crops.

# %%
show = torch.nonzero(up & runs["z"].success & runs["x"].success)[:4, 0]
fig, axes = plt.subplots(len(show), 3, figsize=(7.2, 2.5 * len(show)), squeeze=False)
with torch.no_grad():
    for c, (name, img) in enumerate((("original", x), ("Z", runs["z"].x), ("X", runs["x"].x))):
        batch = img[show]
        counts = {}
        for model, marker, color in ((f, "o", "cyan"), (oracle, "x", "orange")):
            n_hat, density = model.density_and_count(batch)  # one pass: counts and maps
            counts[marker] = n_hat.tolist()
            for r in range(len(show)):
                heads = localize_heads(density[r, 0], int(round(counts[marker][r])), seed=seed)
                axes[r, c].plot(heads[:, 0] - 0.5, heads[:, 1] - 0.5, marker, ms=7, mfc="none", color=color)
        for r in range(len(show)):
            axes[r, c].imshow(batch[r].permute(1, 2, 0).cpu())
            axes[r, c].set(xticks=[], yticks=[])
            axes[r, c].set_title(f"{name}: f {counts['o'][r]:.1f}, oracle {counts['x'][r]:.1f}", fontsize=8)
fig.tight_layout()
save_figure(fig, STEM, "fig12_heads")
plt.show()

# %% [markdown]
# HEADS_COMMENT
#
# ## 5. What do the nearest real crops say? (Fig. 13 right)
#
# For each result, the mean true count of its 3 nearest training crops in pixel space: a
# counterfactual that looks like a busier (or emptier) crop has busier (or emptier) neighbours.

# %%
knn = {name: knn_mean_value(img, x_train, count_train, k=k_neighbours)
       for name, img in (("original", x), ("x", runs["x"].x), ("z", runs["z"].x))}
knn_change = {}
for d, rows in direction.items():
    for space in ("x", "z"):
        ok = rows & runs[space].success
        knn_change[d, space] = (knn[space] - knn["original"])[ok].mean().item()
    print(f"{d}imise: mean true count of the {k_neighbours} nearest training crops: original "
          f"{knn['original'][rows].mean().item():.2f}, change X {knn_change[d, 'x']:+.2f}, "
          f"Z {knn_change[d, 'z']:+.2f}")

# %% [markdown]
# KNN_COMMENT
#
# ## Results

# %%
results = {"unet_rmse": unet_rmse, "oracle_rmse": oracle_rmse, "flow_bits_per_dim": flow_bits_per_dim}
for d in direction:
    for space in ("x", "z"):
        results[f"success_rate_{d}_{space}"] = success[d, space]
        results[f"oracle_count_change_{d}_{space}"] = oracle_change[d, space]
        results[f"knn_count_change_{d}_{space}"] = knn_change[d, space]
results = {key: round(float(value), 4) for key, value in results.items()}
save_results(STEM, results)
paper.compare(STEM, results)

# %% tags=["nbval-check-output"]
paper.check(STEM, results)

# %% [markdown]
# ## Summary
#
# SUMMARY
#
# ## Exercises
#
# 1. Lower the threshold of the maximisation to 5. Do the counterfactuals add people one at a time?
# 2. The oracle is a different architecture trained on other crops. Train a second `mall_unet`
#    with another seed as the oracle instead: is a same-architecture oracle fooled by the adversarials?
# 3. Where do new people appear? Average |δ| of the maximising counterfactuals over many crops and
#    compare with the mean density map of the training crops.
