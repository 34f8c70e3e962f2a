import math

import pytest
import torch

from diffcf.data.mall_crops import density_map
from diffcf.evaluate import (
    attribute_flips,
    change_share_outside,
    fig14_distances,
    im1_score,
    knn_labels,
    knn_mean_value,
    knn_target_share,
    l2_to_pool,
    l2_to_source,
    localize_heads,
    oracle_target_share,
    paired_mean_difference,
    region_margin,
    search_margin,
)


def test_knn_against_brute_force():
    gen = torch.Generator().manual_seed(0)
    bank = torch.randn(200, 1, 4, 4, generator=gen)
    labels = torch.randint(0, 3, (200,), generator=gen)
    x = torch.randn(7, 1, 4, 4, generator=gen)
    got = knn_labels(x, bank, labels, k=5, batch_size=3)
    for i in range(7):
        d = ((bank - x[i]) ** 2).flatten(1).sum(1)
        assert sorted(got[i].tolist()) == sorted(labels[d.argsort()[:5]].tolist())
    # an image of the bank is its own nearest neighbour
    assert knn_target_share(bank[:10], bank, labels, labels[:10], k=1) == 1.0
    with pytest.raises(ValueError, match="k must lie"):
        knn_labels(x, bank, labels, k=0)


def test_oracle_share_and_im1():
    oracle = lambda x: torch.nn.functional.one_hot((x.flatten(1).mean(1) > 0).long(), 2).float()  # noqa: E731
    x = torch.cat([torch.ones(3, 1, 2, 2), -torch.ones(1, 1, 2, 2)])
    assert oracle_target_share(oracle, x, 1) == 0.75
    perfect = lambda x: x  # noqa: E731
    half = lambda x: 0.5 * x  # noqa: E731
    # the target AE reconstructs perfectly, the original-class one does not: IM1 = 0
    assert torch.allclose(im1_score(x, perfect, half), torch.zeros(4))
    assert torch.allclose(im1_score(x, half, half), torch.ones(4), atol=1e-6)


def test_l2_helpers():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.ones(2, 1, 2, 2)
    assert torch.allclose(l2_to_source(a, b), torch.full((2,), 2.0))
    assert l2_to_pool(a, torch.cat([a[:1], b[:1]])).tolist() == [[0.0, 2.0], [0.0, 2.0]]
    with pytest.raises(ValueError, match="shapes differ"):
        l2_to_source(a, b[:1])


def test_fig14_distances_only_successes_and_in_both_spaces():
    class Doubling:  # a "flow" whose latent is twice the image: every Z distance is twice the X one
        def encode(self, x):
            return 2 * x

    x = torch.zeros(3, 1, 2, 2)
    adv = x + torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1) / 2  # L2 to its source 1, 2, 3
    pool = torch.zeros(4, 1, 2, 2)
    dist = fig14_distances(Doubling(), x, {"x": adv}, {"x": torch.tensor([True, False, True])}, pool)
    assert dist[("X", "x", "own")].tolist() == [1.0, 3.0]  # the failed row is left out
    assert dist[("Z", "x", "own")].tolist() == [2.0, 6.0]
    assert dist[("X", "x", "others")].tolist() == [1.0] * 4 + [3.0] * 4
    assert sorted(dist) == [("X", "x", "others"), ("X", "x", "own"), ("Z", "x", "others"), ("Z", "x", "own")]


def test_share_matrix():
    from diffcf.evaluate import share_matrix

    src = torch.tensor([0, 0, 1, 1, 1])
    tgt = torch.tensor([1, 1, 0, 0, 2])
    hit = torch.tensor([True, False, True, True, False])
    m = share_matrix(hit, src, tgt, 3)
    assert m[0, 1] == 0.5 and m[1, 0] == 1.0 and m[1, 2] == 0.0
    assert torch.isnan(m[0, 0]) and torch.isnan(m[2, 1])


def test_sample_sources_draws_correct_images_at_random_and_reproducibly():
    from diffcf.evaluate import sample_sources

    labels = torch.arange(200) % 4
    predicted = labels.clone()
    predicted[::8] = 3  # every other class-0 image is misclassified
    idx = sample_sources(labels, predicted, 0, 20, seed=1)
    assert len(idx) == 20 and len(set(idx.tolist())) == 20
    assert bool((labels[idx] == 0).all() and (predicted[idx] == 0).all())
    assert torch.equal(idx, sample_sources(labels, predicted, 0, 20, seed=1))
    assert not torch.equal(idx, sample_sources(labels, predicted, 0, 20, seed=2))
    assert idx.max() > 156  # not the first 20 of the 25 members, which all lie at or below 156
    assert sample_sources(labels, predicted, 0, 3, at_random=False).tolist() == [4, 12, 20]
    everything = sample_sources(labels, predicted, 0)
    assert sorted(everything.tolist()) == [i for i in range(200) if i % 4 == 0 and i % 8 != 0]
    for bad in (0, 26):
        with pytest.raises(ValueError, match="correctly classified"):
            sample_sources(labels, predicted, 0, bad)


def test_pair_study_covers_every_pair_with_correct_images():
    from diffcf.evaluate import pair_study

    labels = torch.arange(4).repeat_interleave(5)  # 5 images per class
    predicted = labels.clone()
    predicted[0] = 1  # misclassified: must never be picked
    index, source, target = pair_study(labels, predicted, n_per_pair=2, n_classes=4)
    assert len(index) == 4 * 3 * 2
    assert (labels[index] == source).all() and (predicted[index] == source).all()
    assert (source != target).all()
    pairs = set(zip(source.tolist(), target.tolist(), strict=True))
    assert pairs == {(s, t) for s in range(4) for t in range(4) if s != t}
    assert torch.equal(index, pair_study(labels, predicted, n_per_pair=2, n_classes=4)[0])  # seeded
    assert not torch.equal(index, pair_study(labels, predicted, n_per_pair=2, n_classes=4, seed=1)[0])
    with pytest.raises(ValueError, match="class 0 has 4 correctly classified images, need 5"):
        pair_study(labels, predicted, n_per_pair=5, n_classes=4)


def test_change_share_outside_a_region():
    region = torch.zeros(4, 4, dtype=torch.bool)
    region[1:3, 1:3] = True
    src = torch.zeros(3, 2, 4, 4)
    mod = src.clone()
    mod[0, :, 1, 1] = 1.0  # inside only
    mod[1, 0, 0, 0] = -2.0  # outside only (sign does not matter)
    mod[2, 0, 1, 1], mod[2, 1, 0, 3] = 1.0, 3.0  # a quarter inside
    share = change_share_outside(mod, src, region)
    assert torch.allclose(share, torch.tensor([0.0, 1.0, 0.75]))
    assert torch.isnan(change_share_outside(src, src, region)).all()  # no change: no share
    with pytest.raises(ValueError, match="boolean mask of shape"):
        change_share_outside(mod, src, region.float())
    with pytest.raises(ValueError, match="shapes differ"):
        change_share_outside(mod[:2], src, region)


def test_attribute_flips_counts_the_other_attributes():
    before = torch.tensor([[0, 1, 0], [1, 1, 0]])
    after = torch.tensor([[1, 1, 1], [0, 1, 0]])
    per_image, per_attribute = attribute_flips(before, after, exclude=0)
    assert per_image.tolist() == [1, 0]  # the asked-for attribute 0 is not counted
    assert per_attribute.tolist() == [0.0, 0.0, 0.5]
    assert attribute_flips(before, after)[0].tolist() == [2, 1]
    with pytest.raises(ValueError, match="one shape"):
        attribute_flips(before, after[:1])


def test_knn_mean_value_is_the_mean_over_brute_force_neighbours():
    gen = torch.Generator().manual_seed(1)
    bank = torch.randn(50, 3, 2, 2, generator=gen)
    counts = torch.randint(0, 6, (50,), generator=gen).float()
    x = torch.randn(4, 3, 2, 2, generator=gen)
    got = knn_mean_value(x, bank, counts, k=3)
    for i in range(4):
        d = ((bank - x[i]) ** 2).flatten(1).sum(1)
        assert got[i].item() == pytest.approx(counts[d.argsort()[:3]].mean().item())
    assert knn_mean_value(x[:0], bank, counts).shape == (0,)


def test_localize_heads_recovers_the_heads_of_a_density_map():
    heads = torch.tensor([[8.3, 20.0], [24.5, 6.2], [40.0, 44.7]])
    density = density_map(heads, 64, sigma=2.0)
    found = localize_heads(density, 3)
    expected = heads[heads[:, 0].argsort()]
    assert found.shape == (3, 2)
    assert (found - expected).abs().max().item() < 0.5
    assert localize_heads(density, 0).shape == (0, 2)
    with pytest.raises(ValueError, match="non-negative int"):
        localize_heads(density, -1)
    with pytest.raises(ValueError, match="no mass"):
        localize_heads(torch.zeros(8, 8), 2)
    with pytest.raises(ValueError, match=r"one \(H, W\) map"):
        localize_heads(density[None], 2)


def test_judge_searches_judges_only_successful_images_and_gives_failed_searches_nan():
    from types import SimpleNamespace

    from diffcf.evaluate import judge_searches

    x = torch.zeros(4, 1, 2, 2)
    bank = torch.cat([torch.zeros(3, 1, 2, 2), torch.ones(3, 1, 2, 2)])
    bank_labels = torch.tensor([0, 0, 0, 1, 1, 1])
    oracle = lambda v: torch.stack([1 - v.flatten(1).mean(1), v.flatten(1).mean(1)], 1)  # noqa: E731
    identity = {0: lambda v: v, 1: lambda v: v}
    ones = torch.ones(4, 1, 2, 2)
    runs = {"half": SimpleNamespace(x=ones, success=torch.tensor([True, True, False, False])),
            "none": SimpleNamespace(x=ones, success=torch.zeros(4, dtype=torch.bool))}
    table = judge_searches(runs, x, oracle, bank, bank_labels, identity, source=0, target=1, k=3)
    assert list(table) == ["original", "half", "none"]
    assert table["original"]["oracle"] == 0.0 and table["original"]["L2 to x"] == 0.0
    assert table["half"]["success"] == 0.5
    assert table["half"]["oracle"] == 1.0 and table["half"]["k-NN"] == 1.0
    assert table["half"]["L2 to x"] == pytest.approx(2.0)
    assert table["none"]["success"] == 0.0 and math.isnan(table["none"]["oracle"])

    says_source = lambda v: torch.stack([torch.ones(len(v)), torch.zeros(len(v))], 1)  # noqa: E731
    table = judge_searches(runs, x, oracle, bank, bank_labels, identity, source=0, target=1, k=3,
                           other_oracles={"second": says_source})
    assert list(table["half"])[:3] == ["success", "oracle", "second"]
    assert table["half"]["oracle"] == 1.0 and table["half"]["second"] == 0.0
    assert math.isnan(table["none"]["second"])


def _bernoulli(p: float, n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def test_paired_mean_difference_is_the_difference_of_the_shares_over_successes():
    gen = torch.Generator().manual_seed(0)
    hit_a, found_a, hit_b, found_b = (_bernoulli(p, 50, gen) for p in (0.6, 0.8, 0.3, 0.9))
    diff, low, high = paired_mean_difference(hit_a, found_a, hit_b, found_b)
    expected = (hit_a & found_a).sum() / found_a.sum() - (hit_b & found_b).sum() / found_b.sum()
    assert diff == pytest.approx(expected.item())
    assert low < diff < high
    same = paired_mean_difference(hit_a, found_a, hit_a, found_a)
    assert same == (0.0, 0.0, 0.0)  # a search against itself: every resample gives 0


def test_paired_mean_difference_interval_covers_the_true_difference_and_narrows_with_n():
    gen = torch.Generator().manual_seed(1)
    covered, widths = 0, {100: [], 400: []}
    for trial in range(200):
        for n in widths:
            ok = torch.ones(n, dtype=torch.bool)
            a, b = _bernoulli(0.5, n, gen), _bernoulli(0.3, n, gen)
            _, low, high = paired_mean_difference(a, ok, b, ok, n_resamples=1000, seed=trial)
            widths[n].append(high - low)
            covered += n == 100 and low <= 0.2 <= high
    assert 0.90 <= covered / 200 <= 0.99  # nominal 0.95
    ratio = sum(widths[100]) / sum(widths[400])
    assert 1.8 < ratio < 2.2  # width ~ 1/sqrt(n)


def test_paired_mean_difference_of_values_ignores_the_failed_searches():
    value_a = torch.tensor([0.2, 0.4, float("nan"), 0.9])
    value_b = torch.tensor([0.1, 0.1, 0.3, 5.0])
    found_a = torch.tensor([True, True, False, True])
    found_b = torch.tensor([True, True, True, False])
    diff, low, high = paired_mean_difference(value_a, found_a, value_b, found_b)
    assert diff == pytest.approx(0.5 - 0.5 / 3)
    assert low <= diff <= high


def test_paired_mean_difference_rejects_bad_input():
    ok = torch.ones(4, dtype=torch.bool)
    with pytest.raises(ValueError, match="bool"):
        paired_mean_difference(ok, ok.float(), ok, ok)
    with pytest.raises(ValueError, match="finite"):
        paired_mean_difference(torch.full((4,), float("nan")), ok, ok, ok)
    with pytest.raises(ValueError, match="one length"):
        paired_mean_difference(ok, ok, ok[:3], ok[:3])
    with pytest.raises(ValueError, match="level"):
        paired_mean_difference(ok, ok, ok, ok, level=95)


def test_search_margin_judges_the_successful_images_of_two_searches():
    from types import SimpleNamespace

    oracle = lambda x: torch.stack([-x.flatten(1).sum(1), x.flatten(1).sum(1)], dim=1)  # class 1 iff sum > 0
    run = SimpleNamespace(x=torch.tensor([[1.0], [2.0], [-1.0], [5.0]]),
                          success=torch.tensor([True, True, True, False]))
    baseline = SimpleNamespace(x=torch.tensor([[-1.0], [-2.0], [3.0], [-4.0]]),
                               success=torch.ones(4, dtype=torch.bool))
    margin, low, high = search_margin(oracle, run, baseline, 1)
    assert margin == pytest.approx(2 / 3 - 1 / 4)
    assert (margin, low, high) == paired_mean_difference(
        torch.tensor([True, True, False, True]), run.success, torch.tensor([False, False, True, False]),
        baseline.success)


def test_region_margin_compares_where_the_successful_changes_lie():
    from types import SimpleNamespace

    region = torch.zeros(2, 2, dtype=torch.bool)
    region[0, 0] = True
    x = torch.zeros(3, 1, 2, 2)
    inside, outside, none = (torch.zeros(1, 2, 2) for _ in range(3))
    inside[0, 0, 0], outside[0, 1, 1] = 1.0, 1.0
    run = SimpleNamespace(x=torch.stack([outside, outside, none]), success=torch.tensor([True, False, True]))
    baseline = SimpleNamespace(x=torch.stack([inside, inside, inside]),
                               success=torch.ones(3, dtype=torch.bool))
    margin, _, _ = region_margin(run, baseline, x, region)  # only the first image counts for run
    assert margin == pytest.approx(1.0)
    margin_inside, _, _ = region_margin(run, baseline, x, region, inside=True)
    assert margin_inside == pytest.approx(-1.0)
