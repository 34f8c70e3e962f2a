"""Quantitative checks of counterfactuals (§IV-C): oracles, nearest neighbours, IM1, distances; beyond
the paper, where in the image the change happens and which other attributes flip (MNAC); head
localisation from a density map (Fig. 12); and the balanced accuracy of classifiers on unbalanced
classes.

The counterfactual checks compare *modified* images (counterfactuals ``x_cf`` or adversarials
``x_adv``) with the target class ``t`` or with their sources; all work on whole batches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _flat(x: Tensor) -> Tensor:
    return x.flatten(1)


@torch.no_grad()
def predict(model: Callable[[Tensor], Tensor], x: Tensor, batch_size: int = 512) -> Tensor:
    """``argmax model(x)`` in batches."""
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def balanced_accuracy(predicted: Tensor, labels: Tensor) -> float:
    """Mean over the classes present in ``labels`` of the share of that class predicted correctly
    (the recall of each class), scikit-learn's ``balanced_accuracy_score``; for two classes
    ``(TPR + TNR) / 2``. Reported beside accuracy where classes are unbalanced (CelebA's
    Blond_Hair: 14.5 % positive), where always answering "not blond" scores 85.5 % accuracy but 50 %
    balanced accuracy. ``predicted`` and ``labels``: integer class labels of the same shape."""
    if predicted.shape != labels.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} and labels {tuple(labels.shape)} "
                         f"differ in shape")
    if labels.numel() == 0:
        return float("nan")
    predicted, labels = predicted.flatten(), labels.flatten()
    recalls = [(predicted[labels == c] == c).float().mean() for c in labels.unique()]
    return torch.stack(recalls).mean().item()


def oracle_target_share(oracle: Callable[[Tensor], Tensor], x: Tensor, t: Tensor | int) -> float:
    """Share of images an independently trained oracle assigns to the target class (Fig. 11)."""
    if len(x) == 0:
        return float("nan")
    t = torch.as_tensor(t).to(x.device).expand(len(x))
    return (predict(oracle, x) == t).float().mean().item()


def paired_mean_difference(value_a: Tensor, found_a: Tensor, value_b: Tensor, found_b: Tensor,
                           level: float = 0.95, n_resamples: int = 4000, seed: int = 0,
                           ) -> tuple[float, float, float]:
    """How far the mean of a per-source value for search ``a`` exceeds that for search ``b``, with a
    paired bootstrap interval over the source images. For a judge's verdicts (``value_*`` bool:
    does the judge assign the target?) it is the difference of the shares, e.g. the oracle's share
    for latent counterfactuals minus that for adversarials, the margin of Fig. 11.

    Both searches started from the same ``n`` sources; per source, ``found_*`` says whether the
    search succeeded and ``value_*`` is the value of its result (bool or float; ignored, even NaN,
    where ``found_*`` is False). Each mean is taken over the successful searches only, as
    :func:`judge_searches` does. The interval is the percentile interval of the difference over
    ``n_resamples`` resamples of the *sources* (with replacement, the same sources for ``a`` and
    ``b``, so the pairing is kept): it shows how much the difference would move on another ``n``
    test images of the same kind, not how it varies between training runs of the generators.
    Returns ``(difference, low, high)``.
    """
    tensors = (value_a, found_a, value_b, found_b)
    if any(t.shape != value_a.shape or t.ndim != 1 for t in tensors):
        raise ValueError("value_a, found_a, value_b, found_b must be 1-d tensors of one length, got "
                         f"{[tuple(t.shape) for t in tensors]}")
    if found_a.dtype != torch.bool or found_b.dtype != torch.bool:
        raise ValueError(f"found_a and found_b must be bool tensors, got {found_a.dtype}, {found_b.dtype}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    values = [torch.where(found, value.float(), 0.0)
              for value, found in ((value_a, found_a), (value_b, found_b))]
    if not all(torch.isfinite(v).all() for v in values):
        raise ValueError("value_a and value_b must be finite wherever found_a / found_b is True")
    n = len(value_a)
    if n == 0:
        return (float("nan"),) * 3
    weights = torch.stack([values[0], found_a.float(), values[1], found_b.float()]).cpu()
    gen = torch.Generator().manual_seed(seed)
    counts = torch.zeros(n_resamples, n).scatter_add_(  # how often each source is drawn, per resample
        1, torch.randint(n, (n_resamples, n), generator=gen), torch.ones(n_resamples, n))

    def difference(c: Tensor) -> Tensor:
        s = c @ weights.T  # (..., 4): sums of the values and successes of a and b
        return s[..., 0] / s[..., 1] - s[..., 2] / s[..., 3]

    low, high = torch.nanquantile(difference(counts), torch.tensor([(1 - level) / 2, (1 + level) / 2]))
    return difference(torch.ones(n)).item(), low.item(), high.item()


def search_margin(oracle: Callable[[Tensor], Tensor], run, baseline, target: int, **interval
                  ) -> tuple[float, float, float]:
    """:func:`paired_mean_difference` of two searches from the same sources (search results with
    ``x`` and ``success``, e.g. counterfactuals and adversarials): the share of their successful
    images ``oracle`` assigns to ``target``, ``run``'s minus ``baseline``'s, with its interval."""
    return paired_mean_difference(predict(oracle, run.x) == target, run.success,
                                  predict(oracle, baseline.x) == target, baseline.success, **interval)


@torch.no_grad()
def confident_share(f: Callable[[Tensor], Tensor], x: Tensor, threshold: float = 0.9,
                    batch_size: int = 512) -> float:
    """Share of images to which the classifier gives *some* class a probability above ``threshold``.

    On a generator's samples this is a classifier-judged sample quality: blobs and half-strokes
    rarely get a confident class. It cannot see diversity (a generator drawing one good digit scores
    1) nor details the classifier ignores.
    """
    if len(x) == 0:
        return float("nan")
    top = torch.cat([f(x[i : i + batch_size]).softmax(1).amax(1) for i in range(0, len(x), batch_size)])
    return (top > threshold).float().mean().item()


@torch.no_grad()
def knn_labels(x: Tensor, bank: Tensor, bank_labels: Tensor, k: int = 10,
               batch_size: int = 256) -> Tensor:
    """Labels of the ``k`` Euclidean nearest neighbours of each image in ``bank``: ``(N, k)``."""
    if k < 1 or k > len(bank):
        raise ValueError(f"k must lie in [1, {len(bank)}], got {k}")
    bank_flat = _flat(bank)
    out = []
    for i in range(0, len(x), batch_size):
        d = torch.cdist(_flat(x[i : i + batch_size]), bank_flat)
        out.append(bank_labels[d.topk(k, dim=1, largest=False).indices])
    return torch.cat(out)


def knn_mean_value(x: Tensor, bank: Tensor, bank_values: Tensor, k: int = 3) -> Tensor:
    """Per image, the mean of ``bank_values`` (e.g. the true head counts) over its ``k`` nearest
    dataset neighbours: Fig. 13 for a regression target (Mall: k = 3)."""
    if len(x) == 0:
        return torch.zeros(0, device=bank_values.device)
    return knn_labels(x, bank, bank_values.float(), k).mean(1)


def knn_target_share(x: Tensor, bank: Tensor, bank_labels: Tensor, t: Tensor | int, k: int = 10) -> float:
    """Mean share of the ``k`` nearest dataset neighbours that carry the target label (Fig. 13)."""
    if len(x) == 0:
        return float("nan")
    labels = knn_labels(x, bank, bank_labels, k)
    t = torch.as_tensor(t).to(labels.device).reshape(-1, 1)
    return (labels == t).float().mean().item()


@torch.no_grad()
def im1_score(x: Tensor, ae_target: Callable[[Tensor], Tensor], ae_original: Callable[[Tensor], Tensor],
              eps: float = 1e-8) -> Tensor:
    """IM1 of Van Looveren & Klaise (Table I), per image; lower is more interpretable::

        IM1 = ‖x' − AE_t(x')‖² / (‖x' − AE_{c0}(x')‖² + ε)

    with autoencoders trained only on the target class ``t`` and only on the original class ``c0``.
    """
    err_t = _flat(x - ae_target(x)).pow(2).sum(1)
    err_0 = _flat(x - ae_original(x)).pow(2).sum(1)
    return err_t / (err_0 + eps)


def l2_to_source(x_mod: Tensor, x_src: Tensor) -> Tensor:
    """Per-image L2 distance between each modified image (or latent) and its own source."""
    if x_mod.shape != x_src.shape:
        raise ValueError(f"shapes differ: {tuple(x_mod.shape)} vs {tuple(x_src.shape)}")
    return _flat(x_mod - x_src).norm(dim=1)


@torch.no_grad()
def l2_to_pool(x_mod: Tensor, pool: Tensor, batch_size: int = 256) -> Tensor:
    """L2 distances of every modified image to every image of a pool, ``(N, M)`` (Fig. 14: the pool
    is all images of the source class)."""
    pool_flat = _flat(pool)
    return torch.cat([torch.cdist(_flat(x_mod[i : i + batch_size]), pool_flat)
                      for i in range(0, len(x_mod), batch_size)])


@torch.no_grad()
def fig14_distances(g, x: Tensor, modified: dict[str, Tensor], success: dict[str, Tensor],
                    pool: Tensor) -> dict[tuple[str, str, str], Tensor]:
    """Fig. 14's distances for :func:`diffcf.plotting.distance_histograms`: for each search space
    ``s`` of ``modified`` (``"x"`` adversarials, ``"z"`` counterfactuals of the sources ``x``), over
    its successful rows ``success[s]``, the L2 distances in pixels (``"X"``) and in the flow's latent
    space (``"Z"``, ``g.encode``) to the own source (``"own"``) and to every image of ``pool``, the
    source class (``"others"``). Keys ``(metric, space, which)``."""
    z_src, z_pool = g.encode(x), g.encode(pool)
    dist = {}
    for space, x_mod in modified.items():
        ok = success[space]
        z_mod = g.encode(x_mod[ok])
        dist[("X", space, "own")] = l2_to_source(x_mod[ok], x[ok])
        dist[("X", space, "others")] = l2_to_pool(x_mod[ok], pool).flatten()
        dist[("Z", space, "own")] = l2_to_source(z_mod, z_src[ok])
        dist[("Z", space, "others")] = l2_to_pool(z_mod, z_pool).flatten()
    return dist


def change_share_outside(x_mod: Tensor, x_src: Tensor, region: Tensor) -> Tensor:
    """Per image, the share of the change ``|x_mod − x_src|`` (summed over channels) that lies
    *outside* ``region`` (a boolean ``(H, W)`` mask): 0 = every change inside the region, 1 = none.
    NaN for an image that did not change at all."""
    if x_mod.shape != x_src.shape:
        raise ValueError(f"shapes differ: {tuple(x_mod.shape)} vs {tuple(x_src.shape)}")
    if region.dtype != torch.bool or tuple(region.shape) != tuple(x_mod.shape[-2:]):
        raise ValueError(f"region must be a boolean mask of shape {tuple(x_mod.shape[-2:])}, got "
                         f"{region.dtype} {tuple(region.shape)}")
    change = (x_mod - x_src).abs().sum(dim=1)  # (B, H, W)
    total = change.flatten(1).sum(1)
    outside = change[:, ~region.to(change.device)].sum(1)
    return outside / total.where(total > 0, torch.full_like(total, float("nan")))


def region_margin(run, baseline, x: Tensor, region: Tensor, inside: bool = False, **interval
                  ) -> tuple[float, float, float]:
    """:func:`paired_mean_difference` of two searches from the same sources ``x``: the mean share of
    each result's change that lies outside ``region`` (inside it with ``inside=True``;
    :func:`change_share_outside`), ``run``'s minus ``baseline``'s, over the successful searches whose
    result changed at all, with its interval."""
    terms = []
    for result in (run, baseline):
        share = change_share_outside(result.x, x, region)
        terms += [1 - share if inside else share, result.success & share.isfinite()]
    return paired_mean_difference(*terms, **interval)


def attribute_flips(before: Tensor, after: Tensor, exclude: int | None = None) -> tuple[Tensor, Tensor]:
    """Which binary attributes changed between ``before`` and ``after`` (``(N, A)`` 0/1 predictions of
    an attribute oracle on the originals and on their modifications), leaving out column ``exclude``
    (the attribute the search was asked to change). Returns the number of *other* attributes that
    flipped per image, ``(N,)``, whose mean is the MNAC of the diffusion-counterfactual literature
    (mean number of attributes changed), and the share of images in which each attribute flipped,
    ``(A,)`` (0 for ``exclude``)."""
    if before.shape != after.shape or before.ndim != 2:
        raise ValueError(f"before and after must be (N, A) predictions of one shape, got "
                         f"{tuple(before.shape)} and {tuple(after.shape)}")
    flipped = before != after
    if exclude is not None:
        flipped[:, exclude] = False
    return flipped.sum(1), flipped.float().mean(0)


def sample_sources(labels: Tensor, predicted: Tensor, source: int, n: int | None = None,
                   seed: int = 0, at_random: bool = True) -> Tensor:
    """Indices of ``n`` images of class ``source`` that the classifier also calls ``source`` (all of
    them for ``n=None``), drawn at random with ``seed`` (the same draw on every device), or the first
    ``n`` in file order with ``at_random=False``.

    Draw at random: a test file may be ordered by population. MNIST's is (its first 5000 images were
    written by other writers than its last 5000, LeCun et al.), and its first 500 4s are exactly the
    4s of the first half.
    """
    members = ((labels == source) & (predicted == source)).nonzero()[:, 0]
    if n is not None and not 0 < n <= len(members):
        raise ValueError(f"asked for {n} images of class {source}; there are {len(members)} "
                         f"correctly classified ones")
    if not at_random:
        return members[:n]
    order = torch.randperm(len(members), generator=torch.Generator().manual_seed(seed))
    return members[order.to(members.device)[:n]]


def pair_study(labels: Tensor, predicted: Tensor, n_per_pair: int,
               n_classes: int = 10, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Pick ``n_per_pair`` correctly classified images for every (source, target) pair with
    source ≠ target, at random (:func:`sample_sources` with ``seed``); different targets of one
    source get different images where there are enough.

    Returns ``(index, source, target)``, each of length ``n_classes · (n_classes - 1) · n_per_pair``.
    """
    if n_per_pair < 1:
        raise ValueError(f"n_per_pair must be >= 1, got {n_per_pair}")
    index, source, target = [], [], []
    for s in range(n_classes):
        members = sample_sources(labels, predicted, s, seed=seed + s)
        if len(members) < n_per_pair:
            raise ValueError(f"class {s} has {len(members)} correctly classified images, need {n_per_pair}")
        for t in range(n_classes):
            if t != s:
                offset = (t * n_per_pair) % max(len(members) - n_per_pair, 1)
                index.append(members[offset : offset + n_per_pair])
                source.append(torch.full((n_per_pair,), s))
                target.append(torch.full((n_per_pair,), t))
    return torch.cat(index), torch.cat(source), torch.cat(target)


def share_matrix(hit: Tensor, source: Tensor, target: Tensor, n_classes: int) -> Tensor:
    """``M[s, t]`` = mean of ``hit`` over the samples that went from class ``s`` to ``t``
    (NaN where there are none, e.g. the diagonal): the source → target matrix of oracle agreement."""
    m = torch.full((n_classes, n_classes), float("nan"))
    flat = source.cpu() * n_classes + target.cpu()
    sums = torch.zeros(n_classes * n_classes).index_add_(0, flat, hit.float().cpu())
    counts = torch.zeros(n_classes * n_classes).index_add_(0, flat, torch.ones(len(flat)))
    filled = counts > 0
    m.view(-1)[filled] = sums[filled] / counts[filled]
    return m


def localize_heads(density: Tensor, n: int, n_points: int = 4000, seed: int = 0) -> Tensor:
    """Fig. 12's head localisation: ``n`` head positions ``(x, y)`` in pixels, the means of a Gaussian
    mixture with ``n`` components fitted to the density map ``density`` ``(H, W)``.

    The map is read as a distribution over the image: ``n_points`` points are drawn from it (a pixel
    with probability proportional to its value, uniformly inside the pixel, pixel ``(c, r)`` covering
    ``[c, c+1) × [r, r+1)``, as :func:`diffcf.data.mall_crops.density_map` places heads), and
    ``sklearn.mixture.GaussianMixture`` is fitted to them from k-means starts. Returns ``(n, 2)``
    float32 on the CPU, sorted by ``x``; ``n = 0`` gives ``(0, 2)``."""
    from sklearn.mixture import GaussianMixture

    if density.ndim != 2:
        raise ValueError(f"density must be one (H, W) map, got shape {tuple(density.shape)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int (the rounded count), got {n!r}")
    if n == 0:
        return torch.zeros(0, 2)
    weights = density.detach().double().cpu().clamp(min=0).flatten()
    if not weights.sum() > 0:
        raise ValueError(f"the density map has no mass to place {n} heads in")
    gen = torch.Generator().manual_seed(seed)
    pixel = torch.multinomial(weights, n_points, replacement=True, generator=gen)
    width = density.shape[1]
    points = torch.stack([pixel % width, pixel // width], 1).double() + torch.rand(n_points, 2, generator=gen,
                                                                                      dtype=torch.float64)
    mixture = GaussianMixture(n, covariance_type="spherical", n_init=3, random_state=seed).fit(points.numpy())
    means = torch.from_numpy(mixture.means_).float()
    return means[means[:, 0].argsort()]


def target_shares(x: Tensor, oracles: dict[str, Callable[[Tensor], Tensor]], bank: Tensor,
                  bank_labels: Tensor, target: int, k: int = 10) -> dict[str, float]:
    """Each oracle's share of ``target`` in ``x`` (``column -> oracle``, Fig. 11) and, as "k-NN",
    the ``target`` share of the ``k`` nearest ``bank`` images (Fig. 13)."""
    return {**{column: oracle_target_share(o, x, target) for column, o in oracles.items()},
            "k-NN": knn_target_share(x, bank, bank_labels, target, k=k)}


def judge_searches(runs: dict, x: Tensor, oracle: Callable[[Tensor], Tensor], bank: Tensor,
                   bank_labels: Tensor, autoencoders, source: int, target: int,
                   k: int = 10, other_oracles: dict[str, Callable[[Tensor], Tensor]] | None = None,
                   ) -> dict[str, dict[str, float]]:
    """The judges of §IV-C for several searches from the same sources ``x`` (``name ->`` search
    result), on each search's successful images, with the originals as the first row: success, the oracle's
    share of ``target`` (Fig. 11), the same share for each of ``other_oracles`` (``column ->``
    oracle, not in the paper), the ``target`` share of the ``k`` nearest ``bank`` images
    (Fig. 13), mean IM1 (Table I; ``autoencoders[c]`` reconstructs class ``c``) and the mean L2 to
    the source. A search that never succeeded gets nan judges."""
    oracles = {"oracle": oracle, **(other_oracles or {})}

    def judged(images: Tensor, sources: Tensor) -> dict[str, float]:
        if not len(images):
            return dict.fromkeys((*oracles, "k-NN", "IM1", "L2 to x"), float("nan"))
        return {**target_shares(images, oracles, bank, bank_labels, target, k),
                "IM1": im1_score(images, autoencoders[target], autoencoders[source]).mean().item(),
                "L2 to x": l2_to_source(images, sources).mean().item()}

    table = {"original": {"success": float("nan")} | judged(x, x)}
    for name, run in runs.items():
        ok = run.success
        table[name] = {"success": ok.float().mean().item()} | judged(run.x[ok], x[ok])
    return table
