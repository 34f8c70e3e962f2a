# %% [markdown]
# # 02 · Metric geometry: why a latent step stays on the manifold
#
# **Claim.** A gradient step in the latent space of a generator $g$ moves the image along the
# *metric-weighted* gradient $\gamma^{-1}\,\partial f/\partial x$, where $\gamma^{-1} = JJ^\top$ is the
# inverse metric that $g$ induces on X. For a flow trained on data near a manifold, $\gamma^{-1}$
# squeezes every direction normal to the manifold, so the step stays on it.
#
# **Paper.** §III (induced metric, Theorem 1), Fig. 7 left (helix) and right (MNIST).
#
# **What you will see.** The first-order identity checked numerically (residual $\propto \lambda^2$);
# the eigenvalues and eigenvectors of $\gamma^{-1}$ on the helix, drawn as the paper's
# parallelepipeds; how much of an X-gradient vs a Z-step points along the manifold; and the same
# spectrum for the MNIST flow of notebook 03, whose 784 × 784 Jacobians reveal a low-dimensional
# data manifold.
#
# **Runtime.** About 2 minutes on a 2-core CPU (shipped checkpoints; the 100 MNIST Jacobians, about
# 1 s each, dominate).

# %% tags=["parameters"]
n_points = 200  # helix points at which the metric is examined
n_lambdas = 11  # step sizes λ for the first-order check, log-spaced in [1e-6, 1e-1]
n_mnist_images = 100  # test images at which the 784 x 784 metric is computed
flow = "mnist_flow"  # the zoo's MNIST flow for section 5 ("mnist_flow_wide": the larger one)
seed = 0
device = "auto"  # for the MNIST section: "cpu", "cuda", or "auto" (CUDA when torch sees one)

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch

from diffcf import paper, seed_everything, zoo
from diffcf.data.helix import helix, helix_tangent, sample_helix
from diffcf.geometry import (
    first_order_check,
    induced_inverse_metric,
    metric_spectrum,
    metric_step,
    subspace_share,
    trace_dimension,
)
from diffcf.plotting import COLORS, helix_axes, metric_spectrum_figure, parallelepiped
from diffcf.utils import get_device, save_figure, save_results

STEM = "02_metric_geometry"
gen = seed_everything(seed)
g = zoo.frozen(zoo.load_or_train("helix_flow"))
f = zoo.frozen(zoo.load_or_train("helix_classifier"))

# %% [markdown]
# ## 1. The induced metric
#
# The latent space Z carries the flat metric. Through $g$ it induces a metric on X whose inverse is
#
# $$\gamma^{-1}(x) = J J^\top, \qquad J = \frac{\partial g}{\partial z}\Big|_{z = g^{-1}(x)} .$$
#
# `induced_inverse_metric` computes $J$ for a whole batch at once with `torch.func.vmap(jacfwd(...))`
# and returns $JJ^\top$. With the SVD $J = U\Sigma V^\top$ we have $\gamma^{-1} = U\Sigma^2U^\top$:
# eigenvalues $\sigma_i^2$, eigenvectors the left singular vectors of $J$.

# %%
x_pts, s_pts = sample_helix(n_points, gen)
gamma_inv, J = induced_inverse_metric(g, x_pts)
evals, evecs = metric_spectrum(J)
print("γ⁻¹ at the first point:\n", gamma_inv[0].numpy().round(4))
print("its eigenvalues:", evals[0].numpy())

# %% [markdown]
# ## 2. The first-order identity
#
# Take one latent step of size $\lambda$ along the gradient of $f_t \circ g$. By the chain rule,
# $\partial (f_t\circ g)/\partial z = J^\top \partial f_t/\partial x$, and a Taylor expansion of $g$ gives
#
# $$g\big(z + \lambda\, \partial (f_t\circ g)/\partial z\big) = x + \lambda\, \gamma^{-1}(x)\, \frac{\partial f_t}{\partial x} + O(\lambda^2).$$
#
# So the residual divided by $\lambda$ must shrink *linearly* in $\lambda$: a line of slope 1 on a
# log-log plot. We check it in float64 (in float32 round-off swamps the residual below
# $\lambda \approx 10^{-3}$), with $f_t$ the logit of the upper class.

# %%
g64, f64 = copy.deepcopy(g).double(), copy.deepcopy(f).double()
lambdas = torch.logspace(-6, -1, n_lambdas, dtype=torch.float64)
x_check = x_pts[:32].double()
resid_over_lambda = first_order_check(g64, lambda x: f64(x)[:, 1], x_check, lambdas)
median_resid = resid_over_lambda.median(dim=1).values
first_order_slope = float(np.polyfit(np.log(lambdas.numpy()), np.log(median_resid.numpy()), 1)[0])

fig, ax = plt.subplots(figsize=(5, 4))
for i in range(resid_over_lambda.shape[1]):
    ax.loglog(lambdas, resid_over_lambda[:, i], color=COLORS["data"], lw=0.5, alpha=0.5)
ax.loglog(lambdas, median_resid, "o-", color=COLORS["z"], label=f"median, slope {first_order_slope:.2f}")
ax.loglog(lambdas, median_resid[-1] * lambdas / lambdas[-1], "--", color="black", lw=0.8,
          label="slope 1")
ax.set_xlabel("step size $\\lambda$")
ax.set_ylabel("$\\|g(z+\\lambda\\nabla_z) - x - \\lambda\\gamma^{-1}\\nabla_x f\\| / \\lambda$")
ax.set_title("First-order identity (32 helix points)")
ax.legend()
save_figure(fig, STEM, "first_order_identity")
plt.show()

# %% tags=["nbval-check-output"]
print(f"fitted slope of residual/λ vs λ: {first_order_slope:.2f}")

# %% [markdown]
# The residual over $\lambda$ falls by a factor of ten for every factor of ten in $\lambda$: the
# latent step *is* the metric-weighted gradient step, up to second order. (A caveat worth knowing:
# the coupling networks use ReLU, so $g$ is only *piecewise* smooth. A step large enough to cross a
# kink of some ReLU breaks the Taylor expansion; at some points this shows as a jump in the grey
# curves at large $\lambda$.)
#
# ## 3. Eigen-structure on the helix (Fig. 7 left)
#
# The helix is 1-dimensional, so Theorem 1 predicts **one** large eigenvalue of $\gamma^{-1}$, with
# its eigenvector along the helix's tangent $h'(s)/\|h'(s)\|$, and two small ones (the normal
# directions, squeezed by the flow). We measure the ratio of the largest to the second largest
# eigenvalue and the angle between the top eigenvector and the true tangent.

# %%
tangent = helix_tangent(s_pts)
cos = (evecs[:, :, 0] * tangent).sum(-1).abs().clamp(max=1)
angle_deg = torch.rad2deg(torch.arccos(cos))
ratio = evals[:, 0] / evals[:, 1]
helix_eigenvalue_ratio_median = ratio.median().item()
helix_tangent_angle_deg_median = angle_deg.median().item()

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
order = s_pts.argsort()
for i, name in enumerate(["largest", "middle", "smallest"]):
    axes[0].semilogy(s_pts[order], evals[order, i], label=name)
axes[0].set_xlabel("position on the helix $s$")
axes[0].set_ylabel("eigenvalue of $\\gamma^{-1}$")
axes[0].legend()
axes[0].set_title("Spectrum of $\\gamma^{-1}$ along the helix")
axes[1].hist(angle_deg, bins=30, color=COLORS["z"])
axes[1].set_xlabel("angle(top eigenvector, true tangent) [deg]")
axes[1].set_title("Top eigenvector vs tangent")
save_figure(fig, STEM, "helix_spectrum")
plt.show()

# %% tags=["nbval-check-output"]
print(f"median ratio λ1/λ2:                  {helix_eigenvalue_ratio_median:.0e}")
print(f"ratio >= 100 at {int((ratio >= 100).sum())} of {n_points} points")
print(f"median angle to the tangent (deg):   {helix_tangent_angle_deg_median:.2f}")

# %% [markdown]
# The paper draws, at points of the helix, the parallelepiped spanned by the eigenvectors of
# $\gamma^{-1}$ scaled by their eigenvalues. Where the metric squeezes two directions the
# parallelepiped collapses to a segment along the curve. The overall size of $\gamma^{-1}$ varies
# along the helix (left panel above), so each box is drawn relative to its own largest eigenvalue:
# its longest edge is 0.7 units, the others are $0.7\,\lambda_i/\lambda_1$ long.

# %%
s_show = torch.linspace(-3.6, 3.6, 14)
x_show = helix(s_show)
_, J_show = induced_inverse_metric(g, x_show)
ev_show, evec_show = metric_spectrum(J_show)
fig = plt.figure(figsize=(6, 6))
ax = helix_axes(fig, title="Eigenvectors of $\\gamma^{-1}$ scaled by eigenvalues (Fig. 7 left)")
for xc, ev, vec in zip(x_show.numpy(), ev_show.numpy(), evec_show.numpy(), strict=True):
    edges = (vec * (0.7 * ev / ev[0])).T  # rows: scaled eigenvectors
    parallelepiped(ax, xc, edges, color=COLORS["z"], alpha=0.9)
    ax.scatter(*xc, s=8, color="black")
save_figure(fig, STEM, "fig7_left_parallelepipeds")
plt.show()

# %% [markdown]
# ## 4. Along or across the manifold? (beyond the paper)
#
# The first-order identity says the X-ascent moves along $\partial f/\partial x$, the Z-ascent along
# $\gamma^{-1}\partial f/\partial x$. Split each into its part along the tangent and its part normal
# to the helix and report the share $\|P_\parallel v\|^2 / \|v\|^2$ that lies along the manifold.
# The paper implies this number but does not report it.

# %%
x_req = x_pts.clone().requires_grad_(True)
(grad_x,) = torch.autograd.grad(f(x_req)[:, 1].sum(), x_req)
z_step = metric_step(gamma_inv, grad_x)
onmanifold_share_x = subspace_share(grad_x, tangent[..., None])
onmanifold_share_z = subspace_share(z_step, tangent[..., None])

fig, ax = plt.subplots(figsize=(5, 3.5))
bins = np.linspace(0, 1, 41)
ax.hist(onmanifold_share_x, bins=bins, color=COLORS["x"], alpha=0.7, label="X: $\\partial f/\\partial x$")
ax.hist(onmanifold_share_z, bins=bins, color=COLORS["z"], alpha=0.7,
        label="Z: $\\gamma^{-1}\\partial f/\\partial x$")
ax.set_xlabel("share of the step along the helix")
ax.set_ylabel("points")
ax.legend()
save_figure(fig, STEM, "onmanifold_share")
plt.show()

# %% tags=["nbval-check-output"]
print(f"median share along the manifold, X-gradient: {onmanifold_share_x.median().item():.2f}")
print(f"median share along the manifold, Z-step:     {onmanifold_share_z.median().item():.4f}")

# %% [markdown]
# ## 5. Images: the metric of the MNIST flow (Fig. 7 right)
#
# For images nobody hands us the manifold, but the spectrum of $\gamma^{-1} = JJ^\top$ shows how many
# directions the flow treats as "along the data". Each $J$ is a 784 × 784 Jacobian of the decoder,
# computed in reverse mode: 784 backward passes per image, vectorised with `vmap(jacrev)` in chunks
# of 196 rows (on a CPU, small chunks keep the work in cache and are several times faster than one
# pass over all rows or forward mode; `benchmarks/mnist_search.py` times it). If MNIST lies near a
# low-dimensional manifold, a few eigenvalues dominate and the rest fall off by orders of magnitude.
#
# **Rule for the dimension estimate** (ours; the paper says MNIST lies on a manifold of about 30
# dimensions, without a rule): the number of
# eigenvalues needed to hold 90% of the trace of $\gamma^{-1}$, i.e. of the squared length a random
# unit latent step produces in X; median over the images.

# %%
from diffcf.data.mnist import load_dataset
from diffcf.evaluate import predict

device = get_device(device)  # the helix sections above are small enough for the CPU
x_img = load_dataset("mnist", "test")[0][:n_mnist_images].to(device)
g_img = zoo.frozen(zoo.load_or_train(flow, device=device))
f_img = zoo.frozen(zoo.load_or_train("mnist_classifier", device=device))
gamma_img, J_img = induced_inverse_metric(g_img, x_img, mode="rev", chunk_size=1, row_chunk=196)
ev_img, U_img = metric_spectrum(J_img)
mnist_manifold_dim_estimate = int(trace_dimension(ev_img, 0.9).median())

fig = metric_spectrum_figure(ev_img, x_img, U_img, mnist_manifold_dim_estimate)
save_figure(fig, STEM, "fig7_right_mnist_spectrum")
plt.show()

# %% [markdown]
# The eigen-images are smooth, stroke-shaped changes of the digit: the directions in which the flow
# lets a latent step move the image. Now the share of a classifier gradient that falls into the
# top-$k$ eigenspace ($k$ = the estimate above), for the raw X-gradient and for the Z-step
# $\gamma^{-1}\partial f/\partial x$ (the gradient of the log-probability of the class the image is
# *not*: here the next class, $(c + 1) \bmod 10$).

# %%
t_img = (predict(f_img, x_img) + 1) % 10
x_req = x_img.clone().requires_grad_(True)
logp = f_img(x_req).log_softmax(1).gather(1, t_img[:, None]).sum()
(grad_img,) = torch.autograd.grad(logp, x_req)
grad_img = grad_img.flatten(1)
step_img = metric_step(gamma_img, grad_img)
top = U_img[:, :, :mnist_manifold_dim_estimate]
mnist_onmanifold_share_x = subspace_share(grad_img, top).median().item()
mnist_onmanifold_share_z = subspace_share(step_img, top).median().item()

# %%
print(f"manifold dimension estimate (90% of the trace): {mnist_manifold_dim_estimate}")
print(f"median share in the top eigenspace, X-gradient: {mnist_onmanifold_share_x:.2f}")
print(f"median share in the top eigenspace, Z-step:     {mnist_onmanifold_share_z:.2f}")

# %% tags=["nbval-check-output"]
print(f"a few dozen of 784 directions hold 90% of the trace: {5 <= mnist_manifold_dim_estimate <= 100}")
print(f"Z-step more on the manifold than the X-gradient: {mnist_onmanifold_share_z > mnist_onmanifold_share_x}")

# %% [markdown]
# The spectrum falls over many orders of magnitude: the few directions counted above carry 90% of
# what a latent step can do to the image, the same order as the paper's "about 30" though fewer (a
# rule with 95% or 99% gives more; the exact number depends on the rule and on the flow). Almost
# all of a Z-step lies in that small eigenspace, while most of the raw X-gradient lies outside it
# (the shares printed above), in directions the flow considers off the data. Our MNIST flow is
# small and CPU-trained (notebook 03 measures its bits/dim against the published flows'), so its
# spectrum is a rougher estimate than the paper's.

# %% [markdown]
# ## Results

# %%
results = {
    "first_order_slope": round(first_order_slope, 4),
    "helix_eigenvalue_ratio_median": round(helix_eigenvalue_ratio_median, 1),
    "helix_tangent_angle_deg_median": round(helix_tangent_angle_deg_median, 4),
    "helix_onmanifold_share_x": round(onmanifold_share_x.median().item(), 4),
    "helix_onmanifold_share_z": round(onmanifold_share_z.median().item(), 4),
    "mnist_manifold_dim_estimate": mnist_manifold_dim_estimate,
    "mnist_onmanifold_share_x": round(mnist_onmanifold_share_x, 4),
    "mnist_onmanifold_share_z": round(mnist_onmanifold_share_z, 4),
}
save_results(STEM, results)
paper.compare(STEM, results)

# %% tags=["nbval-check-output"]
paper.check(STEM, results)

# %% [markdown]
# The paper shows these facts as a figure rather than numbers: the parallelepipeds of Fig. 7 left
# collapse to segments along the helix. Here the collapse is measured: the largest eigenvalue
# exceeds the second by the ratio printed above, and the top eigenvector deviates from the
# tangent by a fraction of a degree.
#
# ## Summary
#
# - A latent step moves x along $\gamma^{-1}\partial f/\partial x$ to first order; the residual
#   shrinks like $\lambda^2$ (slope 1 for residual/λ).
# - On the helix, $\gamma^{-1}$ has one large eigenvalue whose eigenvector is the tangent: the
#   flow has learned the manifold's tangent space.
# - Hence the Z-step is (almost) all tangent, while the raw X-gradient has a large normal part:
#   the geometric reason behind notebook 01's distances.
# - On MNIST the metric of the flow has a few dominant directions out of 784: a latent step moves the
#   image mostly within them, an X-gradient mostly outside them.
#
# ## Exercises
#
# 1. Repeat section 3 at points *off* the helix (e.g. $x + 0.3\,n$ for a normal $n$). Does the
#    metric still single out one direction?
# 2. Run the first-order check in float32. Below which $\lambda$ does the slope break down, and why?
# 3. Replace `mode="fwd"` by `mode="rev"` in `induced_inverse_metric`. Which is faster here, and which
#    would be faster for a 784-dimensional image with a 784-dimensional latent?
# 4. Show that $\gamma^{-1}\nabla_x f$ is the gradient of $f$ with respect to the metric $\gamma$
#    (raise the index of $df$ with $\gamma^{-1}$).
