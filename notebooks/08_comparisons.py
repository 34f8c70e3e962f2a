# %% [markdown]
# # 08 · Three other ways to a counterfactual: Joshi, Zhao, Van Looveren (Table IV, Fig. 15)
#
# **Claim.** Among methods that work with *any* classifier and *any* independently trained
# generative model, gradient ascent in the flow's latent space (the paper's method) is good on every
# measure at once and much faster: REVISE (Joshi et al.) trades the independent oracle's agreement
# and time for pixel similarity, a random latent search (Zhao et al.) is slow, less similar and
# does not always succeed, and prototype-guided pixel perturbations (Van Looveren & Klaise) lose
# the original's content.
#
# **Paper.** §V, Table IV and Fig. 15: CelebA, not blond → blond, target confidence Λ = 0.5 for all
# four methods (Van Looveren & Klaise's search cannot promise a high one), 500 faces. The table's
# columns: runtime, SSIM between original and counterfactual, share the linear SVM oracle calls
# blond, number of successful searches.
#
# **What you will see.** The four methods on the same faces, classifier, flow and oracle as notebook
# 04; a table and a bar chart of the four measures; Fig. 15's grid of faces; and REVISE's λ turned
# down to 0, where it becomes the paper's method.
#
# **Runtime.** Under 4 minutes on a 2-core CPU (default: `n_images` test faces); most of it is
# Zhao et al.'s random search and Van Looveren & Klaise's fixed-length optimisation. The full run
# (`notebooks/params/full.yaml`: 500 faces, the paper's number) took 51 minutes on the same CPU
# (2026-12-05), every check passing: seconds per face ours 0.15 / REVISE 0.21 / Zhao et al. 3.6 /
# Van Looveren & Klaise 1.4, SSIM 0.92 / 0.98 / 0.64 / 0.45, linear SVM says blond 0.28 / 0.23 /
# 0.47 / 0.51, successes 500 / 500 / 454 / 499 (the paper: Zhao et al. 438 of 500).
#
# **Data.** Real CelebA from `$DIFFCF_DATA/celeba` (`make data`), as in notebook 04: 5-bit faces at
# 32 × 32; images 1–8000 train every model, 8001–10 000 are the test split.

# %% tags=["parameters"]
n_images = 40  # not-blond test faces searched by every method (full.yaml: 500, the paper's)
confidence = 0.5  # Λ, the paper's for Table IV
lr_z, max_steps_z = 5e-3, 1000  # Adam in Z (the paper's code for CelebA): ours and REVISE
revise_lambda = 0.05  # REVISE's weight λ of ‖g(z) − x‖₁ in the table (ours: the paper gives none)
revise_lambdas = [0.01, 0.05, 0.1]  # λ → 0 recovers ours (section 5)
vl_c = [1.0, 10.0, 100.0]  # Van Looveren & Klaise: weights of the prediction loss tried in turn
vl_beta, vl_gamma, vl_theta = 0.1, 100.0, 100.0  # their β (L1), γ (autoencoder), θ (prototype)
vl_lr, vl_steps, vl_k = 1e-2, 300, 5  # Adam on δ, steps per c, images per prototype
zhao_samples, zhao_band, zhao_max_bands = 32, 2.0, 40  # perturbations per band, Δr, bands at most (ours)
seed = 0
device = "auto"  # "cpu", "cuda", or "auto": CUDA when torch sees one

# %%
import time

import matplotlib.pyplot as plt
import torch
from torchmetrics.functional.image import structural_similarity_index_measure as ssim

from diffcf import paper, seed_everything, zoo
from diffcf.comparison import class_prototypes, natural_adversarial_search, prototype_search, revise_penalty
from diffcf.data.celeba import BLOND_HAIR, attribute_index
from diffcf.evaluate import oracle_target_share, predict
from diffcf.plotting import image_rows
from diffcf.recipes.celeba import load_quantized
from diffcf.search import ClassTarget, counterfactual_search
from diffcf.utils import get_device, save_figure, save_results

STEM = "08_comparisons"
seed_everything(seed)
device = get_device(device)
source, target = 0, 1  # class 0: not blond, class 1: Blond_Hair

# %% [markdown]
# ## 1. The shared setting
#
# Every method explains the same classifier $f$ (notebook 04's CNN, not blond vs blond), starts
# from the same faces (not blond by the attribute file, and by $f$) and stops at the same set
# $S_{t,\Lambda}$: $f$ gives "blond" a probability above Λ = 0.5. The generator is notebook 04's
# Glow $g$; the methods that need an encoder use its exact inverse $g^{-1}$. Van Looveren & Klaise
# need an autoencoder trained on all faces (`celeba_autoencoder`, new here: the class autoencoders of
# IM1 know one class each). The judge is notebook 04's linear SVM oracle.

# %%
x_train, a_train = (t.to(device) for t in load_quantized("train"))
x_test, a_test = (t.to(device) for t in load_quantized("test"))
blond = attribute_index(BLOND_HAIR)
y_train, y_test = a_train[:, blond], a_test[:, blond]
f, g, svm, ae = (zoo.frozen(zoo.load_or_train(name, device=device)) for name in (
    "celeba_classifier", "celeba_flow", "celeba_svm", "celeba_autoencoder"))
pred_test = predict(f, x_test)
x = x_test[(y_test == source) & (pred_test == source)][:n_images]
targets = ClassTarget(target, confidence)
print(f"{len(x)} not-blond test faces; target: f says blond with probability > {confidence}")
print("autoencoder:", zoo.manifest_entry("celeba_autoencoder")["metrics"])


# %% [markdown]
# ## 2. Four methods, one question
#
# With $x$ the original, $x'$ the answer, $t$ = blond and $\mathcal{L}$ the cross-entropy to $t$:
#
# | method | searches | objective | stops |
# |---|---|---|---|
# | **ours** (eq. 5) | $z$, from $g^{-1}(x)$ | $\mathcal{L}(f(g(z)))$ | first step in $S_{t,\Lambda}$ |
# | **REVISE** (Joshi et al.) | $z$, from $g^{-1}(x)$ | $\mathcal{L}(f(g(z))) + \lambda\,\lVert g(z) - x\rVert_1$ | first step in $S_{t,\Lambda}$ |
# | **natural adversarial** (Zhao et al.) | $z$, no gradient | random $z + \rho u$, $\rho \in [r, r + \Delta r)$, $r$ growing | smallest $\rho$ in $S_{t,\Lambda}$ |
# | **prototypes** (Van Looveren & Klaise) | $x' = x + \delta$ | $c\,L_\text{pred} + \beta\lVert\delta\rVert_1 + \lVert\delta\rVert_2^2 + \gamma\lVert x' - \mathrm{AE}(x')\rVert_2^2 + \theta\lVert \mathrm{enc}(x') - \mathrm{proto}_t\rVert_2^2$ | best iterate in $S_{t,\Lambda}$ after a fixed number of steps |
#
# Van Looveren & Klaise's prediction loss is a hinge on probabilities,
# $L_\text{pred} = \max(\max_{i \ne t} p_i - p_t, -\kappa)$ (κ = 0), and the prototype
# $\mathrm{proto}_t$ of a face is the mean encoding of the 5 blond training faces nearest to it in
# the autoencoder's latent space. Their weight $c$ is searched by bisection; we try 1, 10 and 100 in
# turn on the faces still without a counterfactual. All four are in `diffcf.comparison` (REVISE is
# our search with a penalty, `counterfactual_search(..., penalty=revise_penalty(x, λ))`), with the
# deviations from the authors' code listed in its docstring. The paper does not give REVISE's λ or
# Zhao et al.'s band width and samples per band; ours are in the parameters cell (section 5 and the
# exercises vary them). Runtime is each method's wall time for the whole batch divided by the number
# of faces.

# %%
def timed(search):
    t0 = time.perf_counter()
    run = search()
    return run, (time.perf_counter() - t0) / len(x)


def revise(lam, progress=False):
    """REVISE at weight λ: our Z-search with the penalty λ‖g(z) − x‖₁."""
    return counterfactual_search(f, x, targets, space="z", g=g, lr=lr_z, max_steps=max_steps_z,
                                 bounds=(0.0, 1.0), progress=progress, penalty=revise_penalty(x, lam))


protos = class_prototypes(ae.encoder, x, x_train[y_train == target], k=vl_k)
searches = {
    "ours": lambda: counterfactual_search(f, x, targets, space="z", g=g, lr=lr_z, max_steps=max_steps_z,
                                          bounds=(0.0, 1.0), progress=True),
    "REVISE": lambda: revise(revise_lambda, progress=True),
    "Zhao": lambda: natural_adversarial_search(f, x, targets, g, n_samples=zhao_samples, band=zhao_band,
                                               max_bands=zhao_max_bands, bounds=(0.0, 1.0), seed=seed,
                                               progress=True),
    "Van Looveren": lambda: prototype_search(f, x, targets, ae, ae.encoder, protos, c=tuple(vl_c),
                                             beta=vl_beta, gamma=vl_gamma, theta=vl_theta, lr=vl_lr,
                                             steps=vl_steps, bounds=(0.0, 1.0), progress=True),
}
runs, seconds = {}, {}
for name, search in searches.items():
    runs[name], seconds[name] = timed(search)


# %% [markdown]
# ## 3. Table IV
#
# SSIM (structural similarity, 1 for identical images) and the oracle are taken over each method's
# successful searches.

# %%
def measures(run, secs):
    ok = run.success
    return {"seconds": secs, "ssim": ssim(run.x[ok], x[ok], data_range=1.0, reduction="none").mean().item(),
            "oracle": oracle_target_share(svm, run.x[ok], target), "success": int(ok.sum())}


table = {name: measures(runs[name], seconds[name]) for name in runs}
print(f"{'method':14s}{'s / face':>10s}{'SSIM':>8s}{'SVM: blond':>12s}{'successes':>11s}")
for name, row in table.items():
    print(f"{name:14s}{row['seconds']:10.3f}{row['ssim']:8.3f}{row['oracle']:12.2f}"
          f"{row['success']:>6d} / {len(x)}")

# %%
method_colors = {"ours": "#00798c", "REVISE": "#edae49", "Zhao": "#8d99ae", "Van Looveren": "#d1495b"}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
panels = (("seconds", "runtime per face (s)"), ("ssim", "SSIM to the original"),
          ("oracle", "linear SVM says blond"), ("success", f"successful searches of {len(x)}"))
for ax, (key, title) in zip(axes, panels, strict=True):
    values = [table[n][key] for n in table]
    ax.bar(list(table), values, color=[method_colors[n] for n in table])
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=25, labelsize=8)
    ax.margins(y=0.15)  # room for the value labels
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.2f}" if key != "success" else f"{v}", ha="center", va="bottom", fontsize=8)
fig.suptitle(f"Table IV: not blond → blond at Λ = {confidence}, {len(x)} faces", y=1.03)
fig.tight_layout()
save_figure(fig, STEM, "table4")
plt.show()

# %% [markdown]
# **What the table says (default run, 2026-12-05).** Read it with the paper's Table IV beside it:
#
# - **Ours** is the fastest (about 0.15 s per face; timings move by 10–15% between runs), succeeds
#   on all 40 faces and keeps them (SSIM 0.92).
#   The oracle calls 32% of its answers blond (notebook 04, at Λ = 0.99: 54%; at Λ = 0.5 the search
#   stops after a median of about 15 steps, as soon as $f$ is undecided).
# - **REVISE** (λ = 0.05) is closer to the original (SSIM 0.98) and the oracle agrees with it less
#   often (20%, 12 points below ours), as the paper says. It is slower, but only by about a
#   third: at Λ = 0.5 both stop within a few dozen steps; section 5 shows the cost growing with λ.
# - **Zhao et al.** is the slowest, about 20 times ours (3 s per face), the least similar latent method
#   (SSIM 0.61), and fails on 3 of 40 faces (the paper: 62 of 500): random directions in the
#   3072-dimensional latent space rarely point where $f$ changes, so the radius grows until the face
#   drowns in the flow's noise.
# - **Van Looveren & Klaise** has the lowest SSIM (0.43), as in the paper, and takes about 8 times
#   our time: it runs its full 300 steps (and again for each $c$). The paper's six minutes per face went
#   mostly into finding prototypes in the full training set, fast here with 8000 faces.
#
# The oracle column needs the SSIM column beside it. The linear SVM on pixels calls 50% of Van
# Looveren & Klaise's answers and 41% of Zhao et al.'s blond, more than ours: a linear function of
# the pixels rewards a bright, pale head whoever it belongs to, and both methods make many of those
# (Fig. 15 below). An answer that the oracle believes but that is no longer the same face is no
# counterfactual *of that face*; among the methods that keep the face (SSIM above 0.9), ours has
# the oracle's agreement. The paper reads its Table IV the same way: its method is good on every
# measure at once, not the best on each.
#
# ## 4. Fig. 15: what the four answers look like

# %%
cols = 8
rows = {"$x$": x[:cols]}
for name, run in runs.items():
    rows[name] = torch.where(run.success[:cols, None, None, None], run.x[:cols], torch.zeros_like(x[:cols]))
    if name == "ours":
        rows["|δ| ours"] = rows[name] - x[:cols]
fig = image_rows(rows, size=1.25)
fig.suptitle("Fig. 15: not blond → blond (black: no counterfactual found)", y=0.94)
save_figure(fig, STEM, "fig15_examples")
plt.show()

# %% [markdown]
# **What you see (default run, 2026-12-05).** At Λ = 0.5 our counterfactuals change little: the
# difference row is brightest on the hair (column 1, the right side of the head) and at the top of
# the head (column 6, over the cap), faint elsewhere and almost black in column 5, a face $f$ was
# already nearly undecided about; the faces keep identity, pose, glasses and hats, with the flow's
# slight blur. A reader sees lighter hair in a few columns, not blond hair (notebook 04 shows the
# stronger change at Λ = 0.99). REVISE's answers
# cannot be told from the originals at this size. Zhao et al.'s are mostly the face under large
# coloured blotches (columns 1, 3, 6, 8): the random latent step of large radius that happened to
# flip $f$; where a small radius sufficed (column 5 again) the face is intact. Van Looveren & Klaise's
# answers are all the same pale, blurred face with long light hair, the blond prototype drawn by
# the autoencoder, with a few isolated coloured pixels (the L1 term's sparse changes): identity,
# pose, glasses and hat are gone, as in the paper's Fig. 15.
#
# ## 5. REVISE with λ → 0 is the paper's method
#
# The penalty $\lambda\lVert g(z) - x\rVert_1$ is the only difference between REVISE and eq. 5. With
# λ = 0 the two searches are the same computation; as λ grows, the answer stays closer to $x$ in
# pixels and the oracle agrees less.

# %%
revise_zero_max_difference = (revise(0.0).x - runs["ours"].x).abs().max().item()
lambda_rows = {0.0: table["ours"]}
for lam in revise_lambdas:  # the table's λ was measured in section 3
    lambda_rows[lam] = table["REVISE"] if lam == revise_lambda else measures(*timed(lambda lam=lam: revise(lam)))
print(f"REVISE at λ = 0 against ours: largest pixel difference {revise_zero_max_difference:.1e}")
print(f"{'λ':>6s}{'s / face':>10s}{'SSIM':>8s}{'SVM: blond':>12s}{'successes':>11s}")
for lam, row in lambda_rows.items():
    print(f"{lam:6.2f}{row['seconds']:10.3f}{row['ssim']:8.3f}{row['oracle']:12.2f}{row['success']:>6d} / {len(x)}")

fig, ax = plt.subplots(figsize=(5.2, 3.4))
ax.plot([r["ssim"] for r in lambda_rows.values()], [r["oracle"] for r in lambda_rows.values()], "o-",
        color=method_colors["REVISE"])
for lam, r in lambda_rows.items():
    ax.annotate(f"λ = {lam:g}" + (" (ours)" if lam == 0 else "") + f", {r['seconds']:.2f} s",
                (r["ssim"], r["oracle"]), fontsize=8, xytext=(-10, 8 if lam != revise_lambdas[-1] else -14),
                textcoords="offset points")
ax.margins(x=0.2, y=0.15)
ax.set(xlabel="SSIM to the original", ylabel="linear SVM says blond", title="REVISE: similarity against oracle")
fig.tight_layout()
save_figure(fig, STEM, "revise_lambda")
plt.show()

# %% [markdown]
# At λ = 0 REVISE returns our counterfactuals exactly (largest difference 0). Raising λ moves along
# a trade-off (default run): SSIM rises from 0.92 to 0.99 while the oracle's share falls from 32%
# to 20%, and the time per face about doubles from λ = 0 to λ = 0.1, as the penalty and the
# classifier pull against each other. With 40 faces a step of the oracle's share is 2.5 points; on
# the full run's 500 faces the trend holds with smaller steps and one wobble (0.28, 0.29, 0.23,
# 0.20 for λ = 0, 0.01, 0.05, 0.1): a small λ costs the oracle nothing measurable. The paper's reading of Table IV is this curve: a higher
# image-space similarity is not a better counterfactual when the independent judge believes it
# less; the penalty keeps the image near the original *in pixels*, where adversarial directions
# live.
#
# ## Results

# %%
keys = {"ours": "ours", "REVISE": "revise", "Zhao": "zhao", "Van Looveren": "looveren"}
results = {"n_images": len(x), "revise_zero_max_difference": revise_zero_max_difference}
for name, key in keys.items():
    for measure, value in table[name].items():
        results[f"{measure}_{key}"] = value
results = {k: round(float(v), 4) for k, v in results.items()}
save_results(STEM, results)
paper.compare(STEM, results)

# %% tags=["nbval-check-output"]
paper.check(STEM, results)

# %% [markdown]
# ## Summary
#
# On CPU-scale CelebA the paper's Table IV reads the same way: gradient ascent in the flow's latent
# space is the fastest of the four and keeps the face; REVISE's penalty buys pixel similarity with
# oracle agreement and time (and at λ = 0 is our method, to the last bit); a random latent search is
# about 20 times slower, fails on some faces and returns noisy images; prototype guidance in pixel space
# gives up the original's content. The linear pixel oracle alone would rank Van Looveren & Klaise
# and Zhao et al. above us (50% and 41% against our 32%): it is fooled by pale heads that are no
# longer the same person, which is why the table needs its SSIM column. Where our numbers differ
# from the paper's: runtimes are per face of a batched run on a CPU (the paper's minutes for Zhao et
# al. and Van Looveren & Klaise were per face at 64 × 64), the images are 32 × 32, and 40 faces
# instead of 500 (`full.yaml`).
#
# ## Exercises
#
# 1. Give Zhao et al.'s search more perturbations per band (`zhao_samples = 128`) or narrower bands
#    (`zhao_band = 1`). How do success, SSIM and runtime move? (The paper: more success costs time.)
# 2. Set `vl_theta = 0`: Van Looveren & Klaise without prototypes. What happens to SSIM and the
#    oracle? And with `vl_gamma = 0` as well?
# 3. Raise Λ to 0.99 for the three gradient methods. Which of them still succeeds within its steps?
# 4. REVISE with an L2 instead of an L1 penalty is one line in `diffcf.comparison.revise_penalty`.
#    Does the trade-off curve of section 5 change shape?
