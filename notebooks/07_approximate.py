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
# **What you will see.** (1) Reconstructions $g(g^{-1}(x))$ of the flow, the VAE and the GAN, and
# the two ways to invert a GAN, the paper's optimisation from a random start and a learned encoder
# followed by the same refinement (the idea of e4e / HyperStyle). (2) Counterfactuals 4 → 9 in each
# generator's latent space beside adversarials in pixel space, judged as in notebook 03 (oracle,
# nearest neighbours, IM1). (3) The geometry behind Theorem 2: the spectrum of $JJ^\top$ for the
# three generators, and how much of a latent step stays on their manifolds.
#
# **Runtime.** About 4 minutes on a 2-core CPU with the shipped checkpoints (default: 100 images
# for 4 → 9, 32 for the inversion comparison, inversions of at most 1000 steps); the full run
# (`notebooks/params/full.yaml`: 500 images, the paper's 3000 inversion steps) takes about half an
# hour on the CPU.
#
# **Data.** Real MNIST from `$DIFFCF_DATA/mnist` (`make data`), as in notebook 03. The CelebA half
# of the paper's approximate experiments (a VAE, a GAN and a style-based generator on faces) is not
# in this notebook yet; the section at the end says what is and is not reproduced.

# %% tags=["parameters"]
n_images = 100  # source images for the 4 -> 9 study (paper: all test 4s)
n_recon = 32  # of them, the images on which the two GAN inversions are compared
source, target = 4, 9  # the paper's pair
confidence = 0.99  # Λ
inversion_steps = 1000  # most Adam steps of a GAN inversion (paper's code: 3000; full.yaml)
lr_latent, max_steps_latent = 5e-3, 1000  # Adam in the VAE's and the GAN's latent space (paper's code)
lr_z, max_steps_z = 5e-2, 1000  # Adam in the flow's latent space (as notebook 03)
lr_x, max_steps_x = 5e-3, 2000  # Adam in X (as notebook 03)
k_neighbours = 10  # k-NN check (paper: 10)
n_metric = 24  # images at which the spectrum of J Jᵀ is computed for each generator
seed = 0
device = "auto"  # "cpu", "cuda", or "auto": CUDA when torch sees one

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torchmetrics.functional import structural_similarity_index_measure as ssim

from diffcf import paper, seed_everything, zoo
from diffcf.data.mnist import load_dataset
from diffcf.evaluate import im1_score, knn_target_share, l2_to_source, oracle_target_share, predict
from diffcf.geometry import (
    induced_inverse_metric,
    metric_spectrum,
    metric_step,
    subspace_share,
    trace_dimension,
)
from diffcf.inversion import KnownLatents, invert
from diffcf.plotting import COLORS, image_rows, share_bars
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
f, flow, vae, gan, encoder, svm, aes = (zoo.frozen(zoo.load_or_train(name, device=device)) for name in (
    "mnist_classifier", "mnist_flow", "mnist_vae", "mnist_gan", "mnist_gan_encoder", "mnist_svm",
    "mnist_autoencoders"))
gan = gan.generator  # the discriminator is only kept in the checkpoint to resume training
for name in ("mnist_vae", "mnist_gan", "mnist_gan_encoder"):
    entry = zoo.manifest_entry(name)
    print(f"{name:18s} {entry['steps_done']} steps in {entry['train_seconds'] / 60:.0f} min on "
          f"{entry['device']}: {entry['metrics']}")

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
# First the two GAN inversions on the first `n_recon` test 4s, with the same budget: from a random
# start, and from $E(x)$. Then a third run asks how many refinement steps from $E(x)$ each image
# needs to match the error the random start reached at the end of its budget.

# %%
pred_test = predict(f, x_test)
is_source = (y_test == source) & (pred_test == source)
x = x_test[is_source][:n_images]
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


rows = {}
nan = torch.full((n_recon,), float("nan"))
for name, images, steps in [
    ("flow", rec["flow"][:n_recon], nan),
    ("VAE", rec["VAE"][:n_recon], nan),
    ("GAN, E(x) only", rec["GAN, E(x) only"][:n_recon], torch.zeros(n_recon)),
    ("GAN, random start", inv_random.x, inv_random.steps),
    ("GAN, E(x) + refinement", inv.x[:n_recon], inv.steps[:n_recon]),
]:
    err = mse(images, x_r)
    rows[name] = {"MSE": err.mean().item(), "median": err.median().item(),
                  "SSIM": ssim(images, x_r, data_range=1.0).item(),
                  "MSE < 1e-3": (err < 1e-3).float().mean().item(),
                  f"f says {source}": (predict(f, images) == source).float().mean().item(),
                  "mean steps": steps.float().mean().item()}

# %%
print(f"reconstructions of the first {n_recon} test {source}s; inversions of at most {inversion_steps} steps")
print(f"{'':24s}" + "".join(f"{c:>11s}" for c in rows["flow"]))
for name, row in rows.items():
    print(f"{name:24s}" + "".join(f"{v:11.5f}" if c in ("MSE", "median") else f"{v:11.3g}"
                                  for c, v in row.items()))
print(f"\nto reach the error of the random start's last step (or 1e-3), on the same {n_recon} images:")
for name, run in (("random start", inv_random), ("from E(x)", inv_match)):
    print(f"  {name:13s} {run.steps.float().mean():6.0f} steps on average, the batch done after "
          f"{run.seconds.max():5.1f} s (reached for {run.success.float().mean():.0%})")

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
# The column "f says 4" matters for what follows: a search starts from the reconstruction, and a
# reconstruction the classifier no longer calls a 4 starts the search somewhere else.
#
# What the table and the grid show (the run stored with this notebook). The flow's error is
# round-off: it *is* a diffeomorphism. The VAE's reconstructions are smoothed versions of each
# digit: shape and slant survive the 10-number bottleneck, the stroke's detail does not, and an
# unusual 4 can come back as another digit (the sixth column returns a blob; 3% of the
# reconstructions are no longer 4s to `f`). The GAN can only return images it can draw. Its
# encoder alone gives a plausible digit of the right slant, but not always a 4 (the second and
# fourth columns come back as 9s). The paper's inversion from a random start gets closer on
# average but stalls for a third of the images in a wrong basin (fragments in the fifth and sixth
# columns), and only a third reach the paper's MSE of 1e-3 within 1000 steps. Starting the same
# optimisation at $E(x)$ gives the most faithful reconstructions (SSIM 0.98, every one a 4 to
# `f`), and the last printed lines answer the question a learned inversion is for: to reach the
# error at which the random start *ended*, the refinement from $E(x)$ needs well under half the
# steps and time.
#
# Whatever is lost here is lost for the counterfactual too: the search starts from $g(g^{-1}(x))$,
# not from $x$, and the counterfactual differs from the original by the reconstruction error *plus*
# the change the search makes. The figures below show the two apart.
#
# ## 3. Counterfactuals 4 → 9 in four spaces (Fig. 9)
#
# The same search as notebook 03 (Adam on the cross-entropy to class 9, every image stopping at
# $f_9 > \Lambda = 0.99$, pixels clipped to $[0, 1]$), run in the flow's latent space, the VAE's,
# the GAN's (from the inversion above) and in pixel space. The VAE and GAN searches use the paper
# code's settings for these latents: Adam with learning rate 5e-3, at most 1000 steps.

# %%
runs, seconds = {}, {}
settings = {"flow": (flow, lr_z, max_steps_z), "VAE": (vae, lr_latent, max_steps_latent),
            "GAN": (KnownLatents(gan, inv.z), lr_latent, max_steps_latent)}
for name, (g, lr, steps) in settings.items():
    t0 = time.perf_counter()
    runs[name] = counterfactual_search(f, x, ClassTarget(target, confidence), space="z", g=g, lr=lr,
                                       max_steps=steps, bounds=(0.0, 1.0), progress=True)
    seconds[name] = time.perf_counter() - t0
t0 = time.perf_counter()
runs["X"] = counterfactual_search(f, x, ClassTarget(target, confidence), space="x", lr=lr_x,
                                  max_steps=max_steps_x, bounds=(0.0, 1.0), progress=True)
seconds["X"] = time.perf_counter() - t0

# %%
print(f"{len(x)} test images of class {source} -> {target}")
print(f"{'space':8s}{'success':>9s}{'median steps':>14s}{'seconds':>9s}")
for name, run in runs.items():
    print(f"{name:8s}{run.success.float().mean().item():9.2f}{run.steps.median().item():14.0f}{seconds[name]:9.1f}")

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
# - **VAE**: every one of the ten counterfactuals is a 9 that keeps the slant and thickness of its
#   4: the open top is closed into a loop and the stem kept. The difference row draws exactly that
#   loop. This is the paper's claim at its clearest, with the price visible one row up: the 9s are
#   as smooth as the VAE's reconstructions.
# - **GAN**: most columns close the 4 into a 9 (third, fourth, seventh to ninth); others end at a
#   loop that is neither (first, fifth), a boxy 9 (sixth) or a fragment of strokes (second, last).
#   The strokes stay sharp (the GAN draws sharp digits), and the changes follow strokes.
# - **Flow** (the shipped `mnist_flow`, as in notebook 03): broken strokes and fragments, not 9s;
#   notebook 03 discusses why (a flow far from the data manifold in its samples).
# - **X**: the original plus a haze over the whole image, as in notebook 03.
#
# ## 4. Do independent judges agree? (Fig. 11, Fig. 13, Table I)
#
# The same judges as notebook 03, on the successful searches: the linear SVM oracle, the labels of
# the 10 nearest training images, and IM1 (below 1: the target class's autoencoder explains the
# image better than the source class's).

# %%
judged = {}
for name, run in runs.items():
    ok = run.success
    images = run.x[ok]
    if not len(images):
        raise RuntimeError(f"no search in {name} reached Λ = {confidence}: raise its max_steps or lr")
    judged[name] = {
        "success": ok.float().mean().item(),
        "oracle: 9": oracle_target_share(svm, images, target),
        f"{k_neighbours}-NN: 9": knn_target_share(images, x_train, y_train, target, k=k_neighbours),
        "IM1": im1_score(images, aes[target], aes[source]).mean().item(),
        "L2 to x": l2_to_source(images, x[ok]).mean().item(),
    }
original = {"oracle: 9": oracle_target_share(svm, x, target),
            f"{k_neighbours}-NN: 9": knn_target_share(x, x_train, y_train, target, k=k_neighbours)}

# %%
print(f"{'':8s}" + "".join(f"{c:>12s}" for c in judged["flow"]))
for name, row in judged.items():
    print(f"{name:8s}" + "".join(f"{v:12.2f}" for v in row.values()))

# %%
order = ["X", "flow", "VAE", "GAN"]
fig = share_bars({
    f"linear SVM oracle says {target} (Fig. 11)": [original["oracle: 9"]] + [judged[n]["oracle: 9"] for n in order],
    f"{k_neighbours}-NN labels that are {target} (Fig. 13)":
        [original[f"{k_neighbours}-NN: 9"]] + [judged[n][f"{k_neighbours}-NN: 9"] for n in order],
}, labels=("original", "X\nadversarial", "flow", "VAE", "GAN"),
    colors=(COLORS["data"], COLORS["x"], COLORS["z"], COLORS["vae"], COLORS["gan"]))
save_figure(fig, STEM, "oracle_knn")
plt.show()

# %% tags=["nbval-check-output"]
for name in ("VAE", "GAN"):
    print(f"{name}: oracle share exceeds the adversarials' by >= 20 points: "
          f"{judged[name]['oracle: 9'] - judged['X']['oracle: 9'] >= 0.20}")

# %% [markdown]
# What the judges say. The nearest neighbours agree with the grid: more than half of the ten
# nearest training images of a VAE counterfactual are 9s, almost half for the GAN, a third for the
# flow, and one in eight for the adversarials. IM1 puts the three generators a little ahead of X
# (values near 1 mean "as much a 9 as a 4" to the two autoencoders). The linear SVM oracle does not
# follow: it calls 43% of the VAE counterfactuals a 9, only 12 points more than the adversarials
# (this project's target: 20), and the GAN's no more often than the adversarials. The same oracle
# failed on the flow in notebook 03, where the measurements point at the judge: dense pixel noise
# moves a linear model on pixels toward "9" almost as well as it moves the CNN (Adam's sign-like
# steps in X, notebook 03 section 3), while clean 9s drawn in a 4's slant and position are not
# always on the 9 side of a linear boundary that is only 92% accurate. The VAE's rows above are
# 9s to the eye; the check against the adversarials fails anyway, and we report it as it is.
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
latents = {"flow": flow.encode(x[:n_metric]), "VAE": vae.encode(x[:n_metric]), "GAN": inv.z[:n_metric]}
decoders = {"flow": flow, "VAE": vae, "GAN": gan}
spectra, shares, dims = {}, {}, {}
for name, g in decoders.items():
    known = KnownLatents(g, latents[name])
    with torch.no_grad():
        at = known.decode(latents[name]).clamp(0, 1)
    mode = dict(mode="rev", chunk_size=1, row_chunk=196) if name == "flow" else dict(mode="fwd")
    gamma_inv, J = induced_inverse_metric(known, at, **mode)
    ev, U = metric_spectrum(J)
    dims[name] = int(trace_dimension(ev, 0.9).median())
    at_req = at.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(at_req).log_softmax(1)[:, target].sum(), at_req)
    grad = grad.flatten(1)
    z_step = metric_step(gamma_inv, grad)
    top = U[:, :, :dims[name]]
    spectra[name] = ev
    shares[name] = {"Z-step": subspace_share(z_step, top), "X-gradient": subspace_share(grad, top),
                    "Z-step, all of span(J)": subspace_share(z_step, U[:, :, :J.shape[-1]])}

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for name, color in zip(decoders, (COLORS["z"], COLORS["vae"], COLORS["gan"]), strict=True):
    ev = spectra[name].clamp_min(1e-12).cpu()
    k_axis = np.arange(1, ev.shape[1] + 1)
    axes[0].plot(k_axis, ev.median(0).values, color=color, label=f"{name} (d = {ev.shape[1]}, k = {dims[name]})")
    axes[0].fill_between(k_axis, ev.quantile(0.1, 0).numpy(), ev.quantile(0.9, 0).numpy(), color=color, alpha=0.2)
axes[0].set(xscale="log", yscale="log", xlabel="eigenvalue index", ylabel="eigenvalue of $JJ^T$",
            title="spectrum of the induced inverse metric (median, 10–90%)")
axes[0].legend(fontsize=8)
names = list(decoders)
for j, (which, color) in enumerate((("X-gradient", COLORS["x"]), ("Z-step", COLORS["z"]))):
    med = [shares[n][which].median().item() for n in names]
    axes[1].bar(np.arange(3) + 0.38 * j, med, width=0.38, color=color, label=which)
    for i, v in enumerate(med):
        axes[1].text(i + 0.38 * j, v + 0.02, f"{v:.2f}", ha="center", fontsize=8)
axes[1].set(xticks=np.arange(3) + 0.19, xticklabels=[f"{n} (top {dims[n]})" for n in names], ylim=(0, 1.1),
            title="median share inside the top-k eigenspace")
axes[1].legend(fontsize=8)
fig.tight_layout()
save_figure(fig, STEM, "theorem2_spectra")
plt.show()

# %%
for name in names:
    print(f"{name:5s} k = {dims[name]:3d} of {spectra[name].shape[1]}: median share in the top-k eigenspace "
          f"X-gradient {shares[name]['X-gradient'].median():.3f}, Z-step {shares[name]['Z-step'].median():.3f}; "
          f"Z-step inside span(J): {shares[name]['Z-step, all of span(J)'].median():.4f}")

# %% tags=["nbval-check-output"]
print("the Z-step lies more in the top eigenspace than the X-gradient, for every generator: "
      f"{all(shares[n]['Z-step'].median() > shares[n]['X-gradient'].median() for n in names)}")

# %% [markdown]
# What it means. The flow's spectrum covers all 784 directions and falls off smoothly; "along the
# data" is a matter of degree there. The VAE's has exactly 10 non-zero eigenvalues and the GAN's at
# most 100: beyond them the spectrum drops to round-off, and the last printed column shows that the
# whole first-order Z-step lies in the span of $J$ (share 1 up to round-off). The pixel gradient,
# in contrast, has only a small part inside these few directions. That is Theorem 2 in numbers:
# the step cannot leave the generated manifold. It says nothing about how well $g(Z)$ matches the
# data; the reconstructions of section 2 and the samples of section 1 do.
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
    **{f"mnist_oracle_target_share_{n.lower()}": judged[n]["oracle: 9"] for n in order},
    **{f"mnist_knn_target_share_{n.lower()}": judged[n][f"{k_neighbours}-NN: 9"] for n in order},
    **{f"mnist_im1_mean_{n.lower()}": judged[n]["IM1"] for n in order},
    **{f"mnist_onmanifold_share_{n.lower()}": shares[n]["Z-step"].median() for n in names},
    **{f"mnist_onmanifold_share_x_{n.lower()}": shares[n]["X-gradient"].median() for n in names},
}.items()}
results["mnist_recon_mse_flow"] = float(f"{recon_mse['flow']:.2g}")
save_results(STEM, results)
paper.compare(STEM, results)

# %% tags=["nbval-check-output"]
paper.check(STEM, results)

# %% [markdown]
# ## Summary
#
# - A VAE decoder and a GAN generator are usable generators for counterfactuals: the searches in
#   their latent spaces succeed (95% and 94% within 1000 steps), every step stays on the manifold
#   the generator has learned (section 5: the first-order step lies entirely in the span of $J$),
#   and the VAE's counterfactuals are the clearest 4 → 9 changes of this project: the paper's
#   Fig. 9, reproduced. Nearest neighbours side with both generators by 33 to 42 points over the
#   adversarials.
# - The price is the round trip. The VAE returns a smoothed digit, the GAN the nearest digit it can
#   draw; the counterfactual inherits that difference from $x$ (section 2, and the reconstruction
#   rows of the grid).
# - A learned encoder makes GAN inversion cheaper *and* better: the refinement from $E(x)$ reaches
#   the random start's final error in well under half the steps, and ends more faithful.
# - Not reproduced: the linear SVM oracle's verdict. It prefers the VAE's counterfactuals to the
#   adversarials by 12 points (target 20) and the GAN's not at all, the same failure as notebook
#   03's, where it is analysed.
# - With generators whose samples look like digits (section 1: the VAE's and the GAN's do, the
#   flow's far less), the counterfactuals look like digits too: the quality of the generator, not
#   exactness of the inverse, decides how semantic the counterfactuals are on MNIST here.
#
# **What is and is not reproduced here.** The paper's MNIST VAE and dcGAN (Fig. 9): reproduced at
# the paper code's sizes (10-d VAE latent, nz 100 / ngf 32 dcGAN), trained on this CPU (manifest).
# Its CelebA models (a VAE with a 128-d latent, a progressive GAN) and the 1024 × 1024 StyleGAN with
# HyperStyle (Fig. 10) are not: their pre-trained weights cannot be downloaded here, and the CelebA
# half of this notebook (a VAE, a GAN and a small style-based generator trained on the 10 000-face
# subset) is still to be built.
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
