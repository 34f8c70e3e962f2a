# %% [markdown]
# # 01 · Toy helix: ascent in Z stays on the data manifold, ascent in X leaves it
#
# **Claim.** Gradient ascent on a classifier's *input* (eq. 4) walks straight off the data
# manifold and produces an adversarial example; the same ascent in the *latent space* of a
# normalizing flow (eq. 5) moves along the manifold and produces a counterfactual that is still data.
#
# **Paper.** Dombrowski et al., *Diffeomorphic Counterfactuals With Generative Models*, TPAMI 2023:
# §IV-A, Fig. 6 (trajectories), Fig. 17 (distances over 1000 optimisations).
#
# **What you will see.** Data on a helix in $\mathbb{R}^3$, a flow that learned it, a classifier for
# its upper vs lower half, two ascents from one start point, and the distance to the helix of 1000
# counterfactuals and 1000 adversarials computed in one batched run each.
#
# **Runtime.** About 15 seconds on a 2-core CPU with the shipped checkpoints (default);
# `retrain=True` retrains flow and classifier first (about 2.5 minutes more). No GPU needed.

# %% tags=["parameters"]
retrain = False  # True: train flow and classifier from scratch instead of loading checkpoints
n_starts = 1000  # start points for the quantitative comparison (paper: 1000)
max_steps = 1000  # most Adam steps per start point (paper: 1000)
lr = 3e-2  # Adam learning rate, in X and in Z (paper: 3e-2)
confidence = 0.9  # target probability: 0.9 for the other class (paper: 0.9 / 0.1)
seed = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from diffcf import paper, seed_everything, zoo
from diffcf.data.helix import distance_to_helix, helix, helix_labels, sample_helix
from diffcf.generative import reconstruction_error
from diffcf.plotting import COLORS, distance_boxplot, helix_axes
from diffcf.search import ClassTarget, counterfactual_search
from diffcf.training import accuracy
from diffcf.utils import save_figure, save_results

STEM = "01_toy_helix"
gen = seed_everything(seed)

# %% [markdown]
# ## 1. Data on a helix
#
# The data manifold is the curve $h(s) = (r\sin s,\ r\cos s,\ s)$ with $r = 1$ and
# $s \sim \mathcal{U}(-4, 4)$: a 1-dimensional manifold in a 3-dimensional space. Class 1 is the
# upper half ($x_3 > 0$), class 0 the lower half. The data has no thickness at all, which is the
# limit $\delta \to 0$ of Theorem 1.

# %%
x_data, s_data = sample_helix(2000, gen)
y_data = helix_labels(x_data)

fig = plt.figure(figsize=(5, 5))
ax = helix_axes(fig, title="Data on the helix")
for c in (0, 1):
    pts = x_data[y_data == c].numpy()
    ax.scatter(*pts.T, s=2, color=COLORS[f"class{c}"], label=f"class {c}")
ax.legend(loc="upper left")
save_figure(fig, STEM, "data")
plt.show()

# %% [markdown]
# ## 2. The flow $g$ and the classifier $f$
#
# The flow is a RealNVP (§II): twelve affine couplings
# $y_{d+1:D} = x_{d+1:D} \odot \exp(s(x_{1:d})) + t(x_{1:d})$ on alternating 3-d masks, with
# MLPs of width 256 for $s$ (Tanh output) and $t$. It is exactly invertible, and its density follows
# from the change of variables,
#
# $$q(x) = q_Z\big(g^{-1}(x)\big)\,\Big|\det \tfrac{\partial g^{-1}}{\partial x}\Big|,$$
#
# maximised on helix samples. The classifier is an MLP 3-256-1 with a sigmoid output, written as two
# logits $[0, \ell]$ so that the same search serves binary and multi-class problems. Both are loaded
# from `data/checkpoints/` after their sha256 is checked against `manifest.json`.

# %%
g = zoo.frozen(zoo.load_or_train("helix_flow", retrain=retrain))
f = zoo.frozen(zoo.load_or_train("helix_classifier", retrain=retrain))

# %% [markdown]
# How good are they? The classifier is scored on fresh helix points; the flow by its test negative
# log-likelihood (nats per point; negative because the density concentrates on a curve, so it has
# no lower bound) and by how far its own samples fall from the helix.

# %%
x_test, _ = sample_helix(10_000, torch.Generator().manual_seed(seed + 1))
with torch.no_grad():
    classifier_accuracy = accuracy(f, x_test, helix_labels(x_test))
    flow_test_nll = -g.log_prob(x_test).mean().item()
    x_flow = g.sample(2000, torch.Generator().manual_seed(seed + 2))
round_trip = reconstruction_error(g, x_test).max().item()
sample_distance = distance_to_helix(x_flow).median().item()

# %% tags=["nbval-check-output"]
print(f"classifier test accuracy     {classifier_accuracy:.3f}")
print(f"flow test NLL (nats)         {flow_test_nll:.1f}")
print(f"round trip g(g^-1(x)) ≈ x    {round_trip < 1e-4}")
print(f"flow samples near the helix  {sample_distance < 0.05}")

# %%
fig = plt.figure(figsize=(11, 4.5))
fig.subplots_adjust(wspace=0.4)
ax = helix_axes(fig, 121, title="Samples of the flow $g(z),\\ z\\sim N(0, I)$")
ax.scatter(*x_flow.numpy().T, s=2, color=COLORS["z"])
ax2 = fig.add_subplot(122)
s_grid = torch.linspace(-4, 4, 400)
with torch.no_grad():
    logit_upper = f(helix(s_grid))[:, 1]
ax2.plot(s_grid, logit_upper, color=COLORS["class1"])
ax2.axhline(0.0, color="grey", lw=0.5)
ax2.set_xlabel("position on the helix $s$")
ax2.set_ylabel("logit $\\ell(h(s))$, P(upper) $= \\sigma(\\ell)$")
ax2.set_title("The classifier along the helix")
save_figure(fig, STEM, "flow_and_classifier")
plt.show()

# %% [markdown]
# The flow's samples sit on the helix: it has learned a density that is (almost) zero off the curve.
# The classifier's logit rises monotonically along the curve (weight decay in its training keeps it
# so; without it the logit can have local bumps that trap any ascent, see Exercise 1).
#
# ## 3. One start point, two ascents (Fig. 6)
#
# From the same start point $x$, with target probability 0.9 for the other class:
#
# - **in X** (eq. 4): $x \leftarrow x + \eta\, \partial f_t / \partial x$, an adversarial example;
# - **in Z** (eq. 5): $z \leftarrow z + \lambda\, \partial (f\circ g)_t / \partial z$ from
#   $z = g^{-1}(x)$, and the counterfactual is $x' = g(z)$.
#
# As in the paper's code both use Adam on the cross-entropy to the target class and stop at the first
# step where the target is reached. `counterfactual_search` does this for a whole batch.

# %%
s_start = torch.tensor([-1.2])
x_start = helix(s_start)
with torch.no_grad():
    t_start = 1 - f(x_start).argmax(1)  # the other class
target = ClassTarget(t_start, confidence)
runs = {
    space: counterfactual_search(f, x_start, target, space=space, g=g, lr=lr,
                                 max_steps=max_steps, record_trajectory=True)
    for space in ("x", "z")
}

# %%
fig = plt.figure(figsize=(6, 6))
ax = helix_axes(fig, title="Ascent in X (adversarial) vs in Z (counterfactual)", azim=-40)
ax.scatter(*x_start.numpy().T, s=60, color="black", label="start", zorder=5)
for space, run in runs.items():
    path = run.trajectory[:, 0].numpy()
    name = "X: adversarial" if space == "x" else "Z: counterfactual"
    ax.plot(*path.T, color=COLORS[space], lw=2, label=f"{name} ({int(run.steps[0])} steps)")
    ax.scatter(*path[-1], s=40, color=COLORS[space], marker="X")
ax.legend(loc="upper left")
save_figure(fig, STEM, "fig6_trajectories")
plt.show()

# %% [markdown]
# The X-ascent leaves the curve at once, in whichever direction the classifier's gradient points.
# Off the helix the classifier never saw data, so it extrapolates freely, and a point beside the
# curve, still far below $x_3 = 0$, is already called "upper half" with probability 0.9. The Z-ascent
# follows the helix around until it really is in the upper half. Both reach the target; only one of
# them is still a data point.
#
# ## 4. A thousand start points, one batched run per space (Fig. 17)
#
# Start points are fresh helix points. The target is the other class with probability 0.9
# (0.9 if $f(x) < 0.5$, else 0.1). For each successful optimisation we measure the exact distance of
# the result to the helix: $\min_s \|x' - h(s)\|$, a 1-d minimisation solved by a grid search and
# Newton's method (`distance_to_helix`, tested against brute force).

# %%
x0, _ = sample_helix(n_starts, torch.Generator().manual_seed(seed + 3))
with torch.no_grad():
    t0 = 1 - f(x0).argmax(1)
batch_runs = {
    space: counterfactual_search(f, x0, ClassTarget(t0, confidence), space=space, g=g, lr=lr,
                                 max_steps=max_steps, progress=True)
    for space in ("x", "z")
}
distances = {
    space: distance_to_helix(run.x[run.success]).numpy() for space, run in batch_runs.items()
}

# %% tags=["nbval-check-output"]
for space, run in batch_runs.items():
    print(f"{space.upper()}: {run.n_success} / {n_starts} successful")

# %%
median_distance_x = float(np.median(distances["x"]))
median_distance_z = float(np.median(distances["z"]))
for space, run in batch_runs.items():
    print(f"{space.upper()}: median steps {int(run.steps.float().median())}")
print(f"median distance to the helix, X: {median_distance_x:.2f}")
print(f"median distance to the helix, Z: {median_distance_z:.1e}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1, 1.3]})
distance_boxplot(axes[0], {"X (adversarial)": distances["x"], "Z (counterfactual)": distances["z"]},
                 ylabel="distance to the helix")
axes[0].set_title(f"{n_starts} optimisations per space (Fig. 17)")
ax = axes[1]
ax.remove()
ax = helix_axes(fig, 122, title="Where the results land", azim=-40)
for space in ("x", "z"):
    pts = batch_runs[space].x[:300].numpy()
    ax.scatter(*pts.T, s=3, color=COLORS[space], label=space.upper())
ax.legend(loc="upper left")
save_figure(fig, STEM, "fig17_distances")
plt.show()

# %% [markdown]
# ## Results
#
# The paper reports, over 1000 successful optimisations, a median distance to the helix of
# **2.34 in X** and **0.01 in Z**.

# %%
results = {
    "n_starts": n_starts,
    "successes_x": batch_runs["x"].n_success,
    "successes_z": batch_runs["z"].n_success,
    "median_distance_x": round(median_distance_x, 4),
    "median_distance_z": round(median_distance_z, 6),
    "classifier_accuracy": round(classifier_accuracy, 4),
    "flow_test_nll": round(flow_test_nll, 3),
}
save_results(STEM, results)
paper.compare(STEM, results)

# %% tags=["nbval-check-output"]
paper.check(STEM, results)

# %% [markdown]
# **How close to the paper.** The X-distance lands close to the paper's 2.34: how far an adversarial
# leaves the curve depends on how the classifier extrapolates off the manifold, which our MLP does
# much like the paper's. Our Z-distance is *smaller* than the paper's 0.01: our flow was trained on
# points exactly on the helix (zero thickness), so it squeezes the normal directions harder than a
# flow trained on slightly noisy data; what matters, the gap of more than two orders of magnitude
# between X and Z, is reproduced. All optimisations succeed in both spaces; the paper ran until it had
# 1000 successes.
#
# ## Summary
#
# - Ascent on the input (eq. 4) reaches the target class by moving *off* the data: the median result
#   lies about two units from the helix, as far as the helix's radius and more.
# - The same ascent in the flow's latent space (eq. 5) reaches the target by moving *along* the data:
#   its results lie on the helix up to the flow's own precision.
# - The batched search does 1000 optimisations at once, each stopping at its first success.
#
# Notebook 02 explains *why*: the flow's Jacobian turns the gradient step into a metric-weighted step
# that has no component normal to the manifold.
#
# ## Exercises
#
# 1. Retrain the classifier without weight decay (`zoo.REGISTRY["helix_classifier"].train_params`)
#    and rerun section 4. How many Z-searches fail now, and where on the helix do they get stuck?
# 2. Raise `confidence` to 0.999. Which distance grows, and why does the other one not?
# 3. Add Gaussian noise of standard deviation δ to the flow's training data. How does the median
#    Z-distance scale with δ? (Theorem 1 ties the squeezing of the normal directions to δ.)
# 4. Replace Adam by plain gradient ascent (eq. 4 and 5 literally). What happens to the step counts?
