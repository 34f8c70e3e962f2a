"""The methods of Table IV (diffcf.comparison) on the helix: REVISE at λ = 0 is the paper's search,
the penalty sees the right rows, Zhao et al.'s answer lies in the band that found it, Van Looveren
& Klaise's answer is valid and their weight schedule retries only the failures."""

import pytest
import torch
from torch import nn

from diffcf.comparison import (
    class_prototypes,
    natural_adversarial_search,
    prototype_search,
    revise_penalty,
)
from diffcf.data.helix import sample_helix
from diffcf.search import ClassTarget, counterfactual_search


def _task(helix_models, n=24, seed=0):
    g, f = helix_models
    x0 = sample_helix(n, torch.Generator().manual_seed(seed))[0]
    with torch.no_grad():
        t = 1 - f(x0).argmax(1)
    return g, f, x0, ClassTarget(t, 0.9)


def test_revise_at_zero_lambda_is_our_search(helix_models):
    g, f, x0, target = _task(helix_models)
    ours = counterfactual_search(f, x0, target, space="z", g=g, lr=3e-2, max_steps=300)
    revise = counterfactual_search(f, x0, target, space="z", g=g, lr=3e-2, max_steps=300,
                                   penalty=revise_penalty(x0, 0.0))
    assert ours.success.all()
    assert torch.equal(ours.x, revise.x) and torch.equal(ours.steps, revise.steps)


class _Identity(nn.Module):
    """The generator g = id: a latent search on it is a pixel search."""

    def encode(self, x):
        return x.clone()

    def decode(self, z):
        return z.clone()


def _linear_task(n=16):
    """f says class 1 where x₁ + x₂ / 2 > 1 (2-d), sources on the class-0 side near the boundary."""
    f = nn.Linear(2, 2)
    with torch.no_grad():
        f.weight.copy_(torch.tensor([[0.0, 0.0], [4.0, 2.0]]))
        f.bias.copy_(torch.tensor([0.0, -4.0]))
    x0 = torch.rand(n, 2, generator=torch.Generator().manual_seed(0)) * 0.4
    return f.requires_grad_(False), x0, ClassTarget(1, 0.6)


def test_revise_penalty_keeps_answers_closer_in_x():
    f, x0, target = _linear_task()
    runs = {lam: counterfactual_search(f, x0, target, space="z", g=_Identity(), lr=1e-2, max_steps=3000,
                                       penalty=revise_penalty(x0, lam)) for lam in (0.0, 1.5)}
    assert all(run.success.all() for run in runs.values())
    dist = {lam: (run.x - x0).abs().sum(1) for lam, run in runs.items()}
    assert (dist[1.5] < dist[0.0]).all()
    # Adam alone moves both coordinates alike; the L1 penalty moves x₁ only, the cheaper way across
    assert ((runs[0.0].x - x0)[:, 1] > 0.3).all() and ((runs[1.5].x - x0)[:, 1].abs() < 0.05).all()


def test_penalty_receives_the_working_set_and_its_rows(helix_models):
    g, f, x0, target = _task(helix_models)
    seen = []

    def penalty(x_k, rows):
        seen.append((x_k.detach().clone(), rows.clone()))
        return torch.zeros(len(x_k))

    run = counterfactual_search(f, x0, target, space="z", g=g, lr=3e-2, max_steps=300, check_every=1,
                                penalty=penalty)
    assert torch.allclose(seen[0][0], x0, atol=1e-4) and torch.equal(seen[0][1], torch.arange(len(x0)))
    sizes = [len(rows) for _, rows in seen]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < len(x0)  # finished samples leave
    for k, (x_k, rows) in enumerate(seen):  # step k: exactly the samples not finished before k
        assert len(x_k) == len(rows)
        assert torch.equal(rows, (run.steps >= k).nonzero()[:, 0])


def test_natural_adversarial_answer_lies_in_the_band_that_found_it(helix_models):
    g, f, x0, target = _task(helix_models)
    band = 0.05
    run = natural_adversarial_search(f, x0, target, g, n_samples=16, band=band, max_bands=40, seed=3)
    assert 0 < run.n_success
    with torch.no_grad():
        assert target.reached(f(run.x))[run.success].all()
        radius = (run.z - g.encode(x0)).norm(dim=1)
    ok = run.success
    assert (radius[ok] >= (run.steps[ok] - 1) * band - 1e-5).all()
    assert (radius[ok] < run.steps[ok] * band + 1e-5).all()
    assert torch.equal(run.x[~ok], x0[~ok])
    again = natural_adversarial_search(f, x0, target, g, n_samples=16, band=band, max_bands=40, seed=3)
    assert torch.equal(again.x, run.x)
    chunked = natural_adversarial_search(f, x0, target, g, n_samples=16, band=band, max_bands=40, seed=3,
                                         chunk=7)
    assert torch.equal(chunked.success, run.success) and torch.allclose(chunked.x, run.x, atol=1e-5)


def test_natural_adversarial_search_fails_honestly_within_too_few_bands(helix_models):
    g, f, x0, target = _task(helix_models)
    run = natural_adversarial_search(f, x0, target, g, n_samples=4, band=1e-6, max_bands=2)
    assert run.n_success == 0 and torch.equal(run.x, x0) and (run.steps == 2).all()


def test_class_prototypes_are_the_mean_of_the_nearest_codes():
    encoder = nn.Linear(3, 2)
    bank, x = torch.randn(30, 3), torch.randn(5, 3)
    with torch.no_grad():
        codes, queries = encoder(bank), encoder(x)
        expected = torch.stack([codes[torch.cdist(q[None], codes)[0].argsort()[:4]].mean(0) for q in queries])
    assert torch.allclose(class_prototypes(encoder, x, bank, k=4), expected, atol=1e-6)
    with pytest.raises(ValueError, match="k must be"):
        class_prototypes(encoder, x, bank, k=31)


def test_prototype_search_returns_valid_answers_and_retries_only_failures():
    f, x0, target = _linear_task()
    torch.manual_seed(0)
    encoder = nn.Linear(2, 1)
    ae = nn.Sequential(encoder, nn.Linear(1, 2)).requires_grad_(False)
    bank = torch.rand(20, 2) * 0.5 + torch.tensor([0.9, 0.2])  # class-1 points
    protos = class_prototypes(encoder, x0, bank, k=3)
    kw = {"gamma": 0.1, "theta": 0.1, "lr": 1e-2, "steps": 300}
    weak = prototype_search(f, x0, target, ae, encoder, protos, c=(0.0,), **kw)
    assert weak.n_success == 0 and torch.equal(weak.x, x0)  # no pull toward the target: nothing valid
    run = prototype_search(f, x0, target, ae, encoder, protos, c=(0.0, 10.0), **kw)
    assert run.success.all()
    with torch.no_grad():
        assert target.reached(f(run.x)).all()
    alone = prototype_search(f, x0, target, ae, encoder, protos, c=(10.0,), **kw)
    assert torch.equal(alone.x, run.x)  # c = 0 found nothing, so c = 10 saw every image


@pytest.mark.parametrize("call, error", [
    (lambda f, g, x, t: revise_penalty(x, -1.0), ValueError),
    (lambda f, g, x, t: counterfactual_search(f, x, t, space="z", g=g, penalty="l1"), TypeError),
    (lambda f, g, x, t: natural_adversarial_search(f, x, t, g, band=0.0), ValueError),
    (lambda f, g, x, t: natural_adversarial_search(f, x, t, g, n_samples=0), ValueError),
    (lambda f, g, x, t: natural_adversarial_search(f, x, t, g, chunk=0), ValueError),
    (lambda f, g, x, t: prototype_search(f, x, t, nn.Identity(), nn.Identity(), x[:2]), ValueError),
    (lambda f, g, x, t: prototype_search(f, x, t, nn.Identity(), nn.Identity(), x, c=()), ValueError),
    (lambda f, g, x, t: prototype_search(f, x, t, nn.Identity(), nn.Identity(), x, beta=float("nan")),
     ValueError),
])
def test_bad_arguments_are_refused(helix_models, call, error):
    g, f, x0, target = _task(helix_models, n=4)
    with pytest.raises(error):
        call(f, g, x0, target)
