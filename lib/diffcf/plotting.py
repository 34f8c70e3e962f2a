"""Figure helpers shared by the notebooks (3-d helix scenes, parallelepipeds, distance box plots)."""

from __future__ import annotations

import itertools
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from diffcf.data.helix import S_RANGE, helix

COLORS = {"x": "#d1495b", "z": "#00798c", "data": "#8d99ae", "class0": "#edae49", "class1": "#30638e",
          "vae": "#6a4c93", "gan": "#e07a1f", "stylegan": "#43aa8b"}


def helix_axes(fig=None, position=111, title: str = "", elev: float = 18, azim: float = -60):
    """A 3-d axis showing the helix segment as a thin grey curve."""
    fig = fig or plt.figure(figsize=(5, 5))
    ax = fig.add_subplot(position, projection="3d")
    s = torch.linspace(*S_RANGE, 400)
    h = helix(s).numpy()
    ax.plot(h[:, 0], h[:, 1], h[:, 2], color=COLORS["data"], lw=1.0, alpha=0.8)
    ax.set_xlabel("$x_1$", labelpad=-4)
    ax.set_ylabel("$x_2$", labelpad=-4)
    ax.set_zlabel("$x_3$", labelpad=-4)
    ax.tick_params(labelsize=7, pad=-2)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):  # few ticks: 3-d tick labels crowd easily
        axis.set_major_locator(plt.MaxNLocator(3))
    ax.view_init(elev=elev, azim=azim)
    if title:
        ax.set_title(title)
    return ax


def parallelepiped(ax, center: np.ndarray, vectors: np.ndarray, color: str, alpha: float = 0.35):
    """Draw the parallelepiped ``center + Σ_i c_i v_i``, ``c_i ∈ [−½, ½]`` (vectors as rows)."""
    corners = {
        signs: center + 0.5 * (np.array(signs)[:, None] * vectors).sum(0)
        for signs in itertools.product((-1, 1), repeat=3)
    }
    faces = []
    for axis in range(3):
        for side in (-1, 1):
            quad = [s for s in corners if s[axis] == side]
            # order the four corners around the face
            quad.sort(key=lambda s: (s[(axis + 1) % 3], s[(axis + 2) % 3] * s[(axis + 1) % 3]))
            faces.append([corners[s] for s in quad])
    ax.add_collection3d(Poly3DCollection(faces, facecolor=color, edgecolor=color, alpha=alpha, lw=2.0))


def distance_boxplot(ax, distances: dict[str, np.ndarray], log: bool = True, ylabel: str = ""):
    """Box plot of distance samples, one box per key (coloured by space if the key is x/z)."""
    labels = list(distances)
    box = ax.boxplot([distances[k] for k in labels], tick_labels=labels, patch_artist=True,
                     showfliers=True, flierprops={"markersize": 2, "alpha": 0.4})
    for patch, key in zip(box["boxes"], labels, strict=True):
        patch.set_facecolor(COLORS.get(key.split()[0].lower(), "#cccccc"))
        patch.set_alpha(0.7)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    return ax


def image_rows(rows: dict[str, torch.Tensor], n_cols: int | None = None, diff_cmap: str = "magma",
               size: float = 1.1):
    """A grid with one row per entry of ``rows`` (name → images ``(N, C, H, W)`` in [0, 1]), as in
    the paper's Fig. 8. Rows whose name starts with ``|`` are difference maps: each image shows
    ``Σ_c |δ_c|`` (signed differences allowed) with ``diff_cmap``, on one scale shared by all such
    rows; grey-scale images use ``gray``."""
    names = list(rows)
    n_cols = n_cols or min(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(names), n_cols, figsize=(size * n_cols, size * len(names)),
                             squeeze=False)
    vmax_diff = max((rows[n][:n_cols].abs().sum(1).max().item() for n in names if n.startswith("|")),
                    default=1.0)
    for r, name in enumerate(names):
        for c in range(n_cols):
            img = rows[name][c].detach().cpu()
            ax = axes[r, c]
            if name.startswith("|"):
                ax.imshow(img.abs().sum(0), cmap=diff_cmap, vmin=0, vmax=vmax_diff)
            elif img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


@torch.no_grad()
def flow_samples(g, x: torch.Tensor, seed: int = 0, temperatures: tuple[float, ...] = (0.7, 1.0),
                 name: str = "test images"):
    """What a flow has learned, in one grid: a row of samples ``g(z)``, ``z ~ N(0, T²I)``, per
    temperature ``T`` (the same ``z`` directions in every row), the images ``x`` and their round
    trip ``g(g⁻¹(x))``. Returns the figure and the largest round-trip error ``max |g(g⁻¹(x)) − x|``."""
    rows = {f"samples, T = {t}": g.sample(len(x), torch.Generator().manual_seed(seed), temperature=t)
            for t in temperatures}
    round_trip = g.decode(g.encode(x))
    fig = image_rows({**{k: v.clamp(0, 1) for k, v in rows.items()}, f"{name} $x$": x,
                      "$g(g^{-1}(x))$": round_trip.clamp(0, 1)})
    return fig, (round_trip - x).abs().max().item()


# ---- attribution figures (notebooks 09 and 10) -------------------------------------------------


def attribution_grid(x: torch.Tensor, maps: dict[str, torch.Tensor], titles: list[str] | None = None,
                     cmap: str = "magma", size: float = 1.25):
    """One row per image: the image, then one map per method (``maps``: name → ``(N, C, H, W)``),
    each map summed over channels and scaled to its own maximum absolute value; signed maps
    (with negative values) are drawn with a diverging colour map."""
    names = list(maps)
    n = len(x)
    fig, axes = plt.subplots(n, 1 + len(names), figsize=(size * (1 + len(names)), size * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(x[i, 0].detach().cpu(), cmap="gray", vmin=0, vmax=1)
        if titles:
            axes[i, 0].set_ylabel(titles[i], rotation=0, ha="right", va="center", fontsize=8)
        for j, name in enumerate(names, start=1):
            a = maps[name][i].detach().cpu().sum(0)
            scale = a.abs().max().clamp(min=1e-12).item()
            if (a < 0).any():
                axes[i, j].imshow(a, cmap="RdBu_r", vmin=-scale, vmax=scale)
            else:
                axes[i, j].imshow(a, cmap=cmap, vmin=0, vmax=scale)
    for j, name in enumerate(["input", *names]):
        axes[0, j].set_title(textwrap.fill(name.replace("_", " "), 12), fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.subplots_adjust(wspace=0.04, hspace=0.04)
    return fig


def ig_path_rows(paths: dict[str, dict[str, torch.Tensor]], index: int = 0, n_alphas: int = 4,
                 size: float = 1.2):
    """Distill's figure: one row per baseline with the interpolated images ``x' + α(x − x')`` at
    ``n_alphas`` values of α, the path gradients there, the final attribution and the cumulative
    sum ``Σ_i φ_i(α)`` against ``f(x) − f(x')`` (a path from :func:`diffcf.attribution.ig_path`)."""
    names = list(paths)
    cols = 2 * n_alphas + 2
    fig, axes = plt.subplots(len(names), cols, figsize=(size * cols, size * len(names)), squeeze=False)
    for r, name in enumerate(names):
        p = paths[name]
        k = len(p["alphas"])
        picks = np.linspace(0, k - 1, n_alphas).round().astype(int)
        gscale = p["gradients"][:, index].abs().max().clamp(min=1e-12).item()
        for c, j in enumerate(picks):
            axes[r, c].imshow(p["images"][j, index, 0].cpu(), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_title(f"α={p['alphas'][j]:.2f}", fontsize=7)
            axes[r, n_alphas + c].imshow(p["gradients"][j, index, 0].cpu(), cmap="RdBu_r",
                                         vmin=-gscale, vmax=gscale)
            axes[r, n_alphas + c].set_title(f"∂f/∂x, α={p['alphas'][j]:.2f}", fontsize=7)
        phi = p["cumulative"][-1, index, 0].cpu()
        s = phi.abs().max().clamp(min=1e-12).item()
        axes[r, 2 * n_alphas].imshow(phi, cmap="RdBu_r", vmin=-s, vmax=s)
        axes[r, 2 * n_alphas].set_title("φ (IG)", fontsize=7)
        ax = axes[r, -1]
        ax.plot(p["alphas"], p["sum"][:, index].cpu(), color=COLORS["z"])
        ax.axhline(p["gap_target"][index].item(), color="grey", ls="--", lw=0.8)
        ax.set_title("Σφ(α) vs f(x)−f(x')", fontsize=7)
        ax.tick_params(labelsize=6)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        for ax in axes[r, :-1]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.subplots_adjust(wspace=0.08, hspace=0.45)
    return fig


def metric_spectrum_figure(eigenvalues: torch.Tensor, x: torch.Tensor, U: torch.Tensor, dim: int):
    """Fig. 7 right: the sorted eigenvalues of ``γ⁻¹`` at many images (median and 10–90% band,
    log-log, the dimension estimate ``dim`` marked) and, for the first image, its top 7 eigen-images."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.3, 1]})
    k_axis = np.arange(1, eigenvalues.shape[1] + 1)
    q10, q50, q90 = (eigenvalues.quantile(q, dim=0).cpu().numpy() for q in (0.1, 0.5, 0.9))
    axes[0].fill_between(k_axis, q10, q90, color=COLORS["z"], alpha=0.3, label="10–90% of images")
    axes[0].plot(k_axis, q50, color=COLORS["z"], label="median")
    axes[0].axvline(dim, color="black", lw=0.8, ls="--", label=f"90% of the trace: {dim} directions")
    axes[0].set(xscale="log", yscale="log", xlabel="index of the eigenvalue (sorted)",
                ylabel="eigenvalue of $\\gamma^{-1}$")
    axes[0].set_title(f"Spectrum of $\\gamma^{{-1}}$ at {len(x)} test images (Fig. 7 right)", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].axis("off")
    side = x.shape[-1]
    tiles = torch.cat([x[0, 0:1] * 2 - 1] + [
        U[0, :, i].reshape(1, side, side) / U[0, :, i].abs().max() for i in range(7)
    ]).reshape(2, 4, side, side).permute(0, 2, 1, 3).reshape(2 * side, 4 * side)
    axes[1].imshow(tiles.detach().cpu(), cmap="RdBu_r", vmin=-1, vmax=1)
    axes[1].set_title("the image and its top 7 eigen-images of $\\gamma^{-1}$", fontsize=9)
    return fig


def generator_spectra(measured: dict, colors: tuple[str, ...]):
    """Theorem 2 for several generators (``name -> OnManifold``, of
    :func:`diffcf.geometry.onmanifold_shares`): left, the spectrum of ``J Jᵀ`` per generator
    (median and 10–90% band, log-log); right, the median share of the X-gradient and of the Z-step
    inside each generator's top-k eigenspace."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for (name, m), color in zip(measured.items(), colors, strict=True):
        ev = m.eigenvalues.clamp_min(1e-12).cpu()
        k_axis = np.arange(1, ev.shape[1] + 1)
        axes[0].plot(k_axis, ev.median(0).values, color=color,
                     label=f"{name} (d = {ev.shape[1]}, k = {m.dim})")
        axes[0].fill_between(k_axis, ev.quantile(0.1, 0).numpy(), ev.quantile(0.9, 0).numpy(), color=color,
                             alpha=0.2)
    axes[0].set(xscale="log", yscale="log", xlabel="eigenvalue index", ylabel="eigenvalue of $JJ^T$",
                title="spectrum of the induced inverse metric (median, 10–90%)")
    axes[0].legend(fontsize=8)
    names = list(measured)
    for j, (which, label, color) in enumerate((("x_gradient", "X-gradient", COLORS["x"]),
                                                ("z_step", "Z-step", COLORS["z"]))):
        med = [getattr(measured[n], which).median().item() for n in names]
        axes[1].bar(np.arange(len(names)) + 0.38 * j, med, width=0.38, color=color, label=label)
        for i, v in enumerate(med):
            axes[1].text(i + 0.38 * j, v + 0.02, f"{v:.2f}", ha="center", fontsize=8)
    axes[1].set(xticks=np.arange(len(names)) + 0.19, ylim=(0, 1.3),
                title="median share inside the top-k eigenspace")
    axes[1].set_xticklabels([f"{n}\n(top {measured[n].dim})" for n in names], fontsize=8)
    axes[1].legend(fontsize=8, loc="upper left", ncol=2)
    fig.tight_layout()
    return fig


SPACE_NAMES = {"x": "adversarial", "z": "counterfactual"}


def share_bars(panels: dict[str, list[float]],
               labels: tuple[str, ...] = ("original", "X\nadversarial", "Z\ncounterfactual"),
               colors: tuple[str, ...] = (COLORS["data"], COLORS["x"], COLORS["z"])):
    """Fig. 11 / 13 style bars: one panel per title, one bar per label (by default original, X, Z)
    with its value."""
    if len(labels) != len(colors):
        raise ValueError(f"{len(labels)} labels but {len(colors)} colours")
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.6, 0.9 * len(labels) + 1.8) * len(panels), 3.2),
                             squeeze=False)
    for ax, (title, values) in zip(axes[0], panels.items(), strict=True):
        ax.bar(labels, values, color=colors)
        ax.set_ylim(0, 1.08)
        ax.set_title(title, fontsize=10)
        for i, v in enumerate(values):
            ax.text(i, v + 0.02, f"{v:.2f}", ha="center", fontsize=9)
    fig.tight_layout()
    return fig


def distance_histograms(dist: dict[tuple[str, str, str], torch.Tensor]):
    """Fig. 14: histograms of L2 distances, ``dist[(metric, space, which)]`` with metric ``"X"``/``"Z"``
    (where measured), space ``"x"``/``"z"`` (adversarial / counterfactual), which ``"own"`` (to its
    source) / ``"others"`` (to every image of the source class). Logarithmic distance axes: the
    adversarials' latent distances span orders of magnitude."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, metric in zip(axes, ("X", "Z"), strict=True):
        values = torch.cat([d for (m, _, _), d in dist.items() if m == metric]).clamp_min(1e-3)
        bins = np.geomspace(values.min().item(), values.max().item(), 60)
        for (m, space, which), d in dist.items():
            if m == metric:
                ax.hist(d.cpu().numpy(), bins=bins, weights=np.full(len(d), 1 / max(len(d), 1)),
                        histtype="step", lw=1.6, ls="-" if which == "own" else ":", color=COLORS[space],
                        label=f"{SPACE_NAMES[space]} ↔ {which}")
        ax.set(xscale="log", xlabel=f"L2 distance in {metric} (log scale)", ylabel="share of pairs")
        ax.set_title(f"Distances in {metric} (Fig. 14)", fontsize=10)
    axes[0].legend(fontsize=8)
    return fig
