import copy

import numpy as np
import pytest
import torch

from conftest import random_flow
from diffcf import zoo
from diffcf.data.helix import sample_helix
from diffcf.search import ClassTarget, RegressionTarget, _MaskedAdam, counterfactual_search


def _starts(n, seed=0):
    return sample_helix(n, torch.Generator().manual_seed(seed))[0]


@pytest.mark.parametrize("space", ["x", "z"])
def test_batched_search_equals_one_point_at_a_time(helix_models, space):
    g, f = helix_models
    x0 = _starts(12)
    with torch.no_grad():
        t = 1 - f(x0).argmax(1)
    batch = counterfactual_search(f, x0, ClassTarget(t, 0.9), space=space, g=g, lr=3e-2, max_steps=300)
    for i in range(len(x0)):
        one = counterfactual_search(f, x0[i : i + 1], ClassTarget(t[i : i + 1], 0.9), space=space,
                                    g=g, lr=3e-2, max_steps=300)
        assert bool(one.success[0]) == bool(batch.success[i])
        assert int(one.steps[0]) == int(batch.steps[i])
        # equal up to float32 round-off of batched vs single matrix products
        assert torch.allclose(one.x[0], batch.x[i], atol=1e-3)


@pytest.mark.parametrize("check_every", [1, 7, 1000])  # 1000: only the masked Adam update freezes
def test_finished_sample_does_not_move(helix_models, check_every):
    g, f = helix_models
    x0 = _starts(64, seed=1)
    with torch.no_grad():
        t = 1 - f(x0).argmax(1)
    run = counterfactual_search(f, x0, ClassTarget(t, 0.9), space="z", g=g, lr=3e-2,
                                max_steps=200, record_trajectory=True, check_every=check_every)
    assert run.success.all()
    steps = run.steps
    assert steps.min() < steps.max(), "need samples that finish at different steps"
    traj = run.trajectory  # (T+1, B, 3), until all are done (or max_steps)
    assert int(steps.max()) + 1 <= traj.shape[0] <= min(201, int(steps.max()) + 1 + check_every)
    for i in range(len(x0)):
        k = int(steps[i])
        # frozen from its first success on: Adam's momentum must not move it
        assert torch.equal(traj[k:, i], traj[k, i].expand_as(traj[k:, i]))
        if k > 0:
            assert not torch.equal(traj[k - 1, i], traj[k, i])
    # the result is the point at first success (decoded again in a different batch: round-off only)
    assert torch.allclose(run.x, traj[steps, torch.arange(len(x0))], atol=1e-6)


def test_stop_at_first_success_and_failure_bookkeeping(helix_models):
    g, f = helix_models
    x0 = _starts(16, seed=2)
    with torch.no_grad():
        t = 1 - f(x0).argmax(1)
    run = counterfactual_search(f, x0, ClassTarget(t, 0.9), space="x", g=None, lr=3e-2,
                                max_steps=3, record_trajectory=True)
    p_t = run.trajectory.new_tensor(0)
    with torch.no_grad():
        probs = torch.stack([f(xs).softmax(1) for xs in run.trajectory])  # (T+1, B, 2)
        p_t = probs.gather(2, t[None, :, None].expand(len(probs), -1, 1))[..., 0]
    for i in range(len(x0)):
        hits = (p_t[:, i] > 0.9).nonzero()
        if run.success[i]:
            assert int(run.steps[i]) == int(hits[0])
        else:
            assert len(hits) == 0 and int(run.steps[i]) == 3
    # already successful at the start: zero steps, unchanged
    with torch.no_grad():
        t_same = f(x0).argmax(1)
    same = counterfactual_search(f, x0, ClassTarget(t_same, 0.6), space="x", lr=3e-2, max_steps=50)
    assert same.success.all() and (same.steps == 0).all() and torch.equal(same.x, x0)


def test_masked_adam_matches_torch_adam():
    v0 = torch.randn(1, 5)
    grads = [torch.randn(1, 5) for _ in range(20)]
    p = v0.clone().requires_grad_(True)
    ref = torch.optim.Adam([p], lr=0.05)
    adam = _MaskedAdam(v0, lr=0.05)
    v = v0.clone()
    for gr in grads:
        p.grad = gr.clone()
        ref.step()
        v = adam.step(v, gr, torch.tensor([True]))
    assert torch.allclose(v, p.detach(), atol=1e-6)


def test_unknown_space_and_bad_arguments_raise_clearly(helix_models):
    g, f = helix_models
    x0 = _starts(4)
    tgt = ClassTarget(1, 0.9)
    with pytest.raises(ValueError, match="space must be 'x'.*or 'z'.*got 'w'"):
        counterfactual_search(f, x0, tgt, space="w", g=g)
    with pytest.raises(ValueError, match="needs a generator"):
        counterfactual_search(f, x0, tgt, space="z")
    with pytest.raises(ValueError, match=r"lr \(the step size\) must be positive and finite"):
        counterfactual_search(f, x0, tgt, space="x", lr=0)
    with pytest.raises(ValueError, match="step must be 'adam'.*or 'normalized'.*got 'sgd'"):
        counterfactual_search(f, x0, tgt, space="x", step="sgd")
    with pytest.raises(ValueError, match="confidence"):
        ClassTarget(1, 1.5)
    with pytest.raises(ValueError, match=r"target classes must lie in \[0, 1\]"):
        counterfactual_search(f, x0, ClassTarget(3, 0.9), space="x", max_steps=2)
    with pytest.raises(ValueError, match="NaN"):
        counterfactual_search(f, x0 * float("nan"), tgt, space="x")
    with pytest.raises(TypeError, match="encode"):
        counterfactual_search(f, x0, tgt, space="z", g=object())


@pytest.mark.parametrize("space", ["x", "z"])
def test_normalized_steps_have_length_lr_until_success_then_freeze(helix_models, space):
    g, f = helix_models
    x0 = _starts(32, seed=3)
    with torch.no_grad():
        t = 1 - f(x0).argmax(1)
    lr = 0.05
    run = counterfactual_search(f, x0, ClassTarget(t, 0.9), space=space, g=g, lr=lr, max_steps=400,
                                record_trajectory=True, step="normalized", check_every=3)
    assert run.success.all()
    path = run.trajectory if space == "x" else None
    if space == "z":  # the steps are taken in Z: measure them there
        with torch.no_grad():
            path = torch.stack([g.encode(p) for p in run.trajectory])
    moves = (path[1:] - path[:-1]).norm(dim=-1)  # (T, B)
    for i in range(len(x0)):
        k = int(run.steps[i])
        assert torch.allclose(moves[:k, i], torch.full((k,), lr), rtol=1e-3 if space == "x" else 2e-2)
        assert (moves[k:, i] == 0).all()


def test_normalized_step_ascends_the_target_probability(helix_models):
    """The first normalised step is -lr * grad(CE) / |grad(CE)| = +lr * grad(f_t) / |grad(f_t)|."""
    _, f = helix_models
    x0 = _starts(8, seed=4)
    with torch.no_grad():
        t = 1 - f(x0).argmax(1)
    run = counterfactual_search(f, x0, ClassTarget(t, 0.999), space="x", lr=1e-3, max_steps=1,
                                record_trajectory=True, step="normalized")
    x = x0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x).softmax(1).gather(1, t[:, None]).sum(), x)
    expected = x0 + 1e-3 * grad / grad.norm(dim=1, keepdim=True)
    assert torch.allclose(run.trajectory[1], expected, atol=1e-6)


def test_regression_target_maximises_and_minimises():
    reg = torch.nn.Linear(3, 1)
    flow = random_flow()
    x0 = torch.randn(6, 3)
    maximize = torch.tensor([True, False] * 3)
    with torch.no_grad():
        r0 = reg(x0)[:, 0]
    thr = torch.where(maximize, r0 + 1.0, r0 - 1.0)
    run = counterfactual_search(reg, x0, RegressionTarget(thr, maximize), space="z", g=flow,
                                lr=5e-2, max_steps=500)
    assert run.success.all()
    r = run.output[:, 0]
    assert ((r > thr) == maximize).all() and ((r < thr) == ~maximize).all()


def test_bounds_clip_images():
    f = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x0 = torch.rand(3, 1, 2, 2)
    run = counterfactual_search(f, x0, ClassTarget(1, 0.999), space="x", lr=0.5, max_steps=50,
                                bounds=(0.0, 1.0))
    assert run.x.min() >= 0 and run.x.max() <= 1


def test_subset_of_a_joint_batch_equals_a_separate_run(helix_models):
    """Two studies searched in one batch give each study's own results (what notebook 03 relies on)."""
    g, f = helix_models
    x0 = _starts(20, seed=2)
    with torch.no_grad():
        t = 1 - f(x0).argmax(1)
    joint = counterfactual_search(f, x0, ClassTarget(t, 0.9), space="z", g=g, lr=3e-2, max_steps=200,
                                  record_trajectory=True)
    alone = counterfactual_search(f, x0[8:], ClassTarget(t[8:], 0.9), space="z", g=g, lr=3e-2,
                                  max_steps=200)
    part = joint.subset(slice(8, None))
    assert torch.equal(part.steps, alone.steps) and torch.equal(part.success, alone.success)
    assert torch.allclose(part.x, alone.x, atol=1e-3) and torch.allclose(part.z, alone.z, atol=1e-3)
    assert part.trajectory.shape[1] == 12 and torch.allclose(part.trajectory[0], x0[8:], atol=1e-5)


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), 0.0, -1e-3, True])
def test_lr_must_be_positive_and_finite(helix_models, lr):
    """lr=nan used to run and return all-NaN points; now every search refuses it up front."""
    g, f = helix_models
    with pytest.raises(ValueError, match=rf"lr .* must be positive and finite, got {lr!r}.*lr=5e-3"):
        counterfactual_search(f, _starts(4), ClassTarget(1, 0.9), space="z", g=g, lr=lr, max_steps=2)


@pytest.mark.parametrize("name, value", [("max_steps", 2.5), ("max_steps", 0), ("max_steps", -3),
                                         ("max_steps", True), ("check_every", 0), ("check_every", 1.5)])
def test_step_counts_must_be_integers_of_at_least_one(helix_models, name, value):
    g, f = helix_models
    with pytest.raises(ValueError, match=rf"{name} \(.*\) must be an integer >= 1, got {value!r}"):
        counterfactual_search(f, _starts(4), ClassTarget(1, 0.9), space="x", **{name: value})


@pytest.mark.parametrize("t", [9.7, float("nan"), torch.tensor([1.0, 2.5]), True, torch.tensor([True])])
def test_class_target_refuses_classes_that_are_not_whole_numbers(t):
    """ClassTarget(9.7) used to be truncated to class 9 without a word."""
    with pytest.raises(ValueError, match="target classes must be"):
        ClassTarget(t, 0.9)


@pytest.mark.parametrize("t, expected", [(9, [9]), (9.0, [9]), (np.int64(3), [3]), ([1, 2], [1, 2]),
                                         (torch.tensor([1, 0], dtype=torch.int32), [1, 0]),
                                         (torch.tensor([4.0, 9.0]), [4, 9])])
def test_class_target_keeps_integer_classes(t, expected):
    target = ClassTarget(t, 0.9)
    assert target.t.dtype == torch.long and target.t.reshape(-1).tolist() == expected


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.1, 1.5, float("nan"), True])
def test_confidence_must_lie_strictly_between_zero_and_one(confidence):
    with pytest.raises(ValueError, match=r"confidence \(Λ\) must lie in \(0, 1\)"):
        ClassTarget(1, confidence)


def test_regression_threshold_must_be_finite():
    with pytest.raises(ValueError, match="threshold must be finite"):
        RegressionTarget(float("nan"))


def _image_classifier():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))


def test_pixels_outside_the_bounds_raise_instead_of_being_clipped():
    """0-255 images for a search on [0, 1] used to be clipped, i.e. binarised, without a word."""
    f, unit = _image_classifier(), (0.0, 1.0)
    pixels = torch.randint(0, 256, (3, 1, 2, 2))
    for dtype in (torch.int64, torch.uint8):
        with pytest.raises(ValueError,
                           match=rf"floating-point tensor scaled to \[0.0, 1.0\], got dtype {dtype}"):
            counterfactual_search(f, pixels.to(dtype), ClassTarget(1, 0.9), space="x", bounds=unit)
    with pytest.raises(ValueError, match=r"outside bounds \[0.0, 1.0\].*float32 values in \[0.0, 1.0\]"):
        counterfactual_search(f, pixels.float(), ClassTarget(1, 0.9), space="x", bounds=unit)
    # round-off just past a bound is tolerated (and clipped); scaled images run
    x = pixels.float() / 255
    x[0, 0, 0, 0] = 1.0 + 1e-5
    run = counterfactual_search(f, x, ClassTarget(1, 0.9), space="x", bounds=unit, max_steps=3)
    assert run.x.min() >= 0.0 and run.x.max() <= 1.0


def test_start_outside_the_bounds_raises_in_z_too(helix_models):
    g, f = helix_models
    with pytest.raises(ValueError, match=r"outside bounds \[-1.0, 1.0\]"):
        counterfactual_search(f, _starts(4) * 100, ClassTarget(1, 0.9), space="z", g=g, bounds=(-1.0, 1.0))


def test_float64_start_for_float32_models_asks_for_a_cast(helix_models):
    """float64 points for float32 models used to fail inside the first matmul with a raw RuntimeError."""
    g, f = helix_models
    x64 = _starts(4).double()
    with pytest.raises(ValueError, match=r"x is torch.float64 but the weights of f are torch.float32: "
                                         r".*x\.float\(\)"):
        counterfactual_search(f, x64, ClassTarget(1, 0.9), space="x")
    f64 = zoo.frozen(copy.deepcopy(f).double())
    with pytest.raises(ValueError, match=r"x is torch.float64 but the weights of g are torch.float32"):
        counterfactual_search(f64, x64, ClassTarget(1, 0.9), space="z", g=g)
    # consistent float64 runs, and so does the cast the message asks for
    run = counterfactual_search(f64, x64, ClassTarget(1, 0.9), space="z", g=random_flow(dtype=torch.float64),
                                max_steps=3)
    assert run.x.dtype == torch.float64
    cast = counterfactual_search(f, x64.float(), ClassTarget(1, 0.9), space="x", max_steps=3)
    assert cast.x.dtype == torch.float32


def test_target_must_be_a_target_object(helix_models):
    g, f = helix_models
    with pytest.raises(TypeError, match=r"target must be a ClassTarget .* ClassTarget\(9\)"):
        counterfactual_search(f, _starts(4), 1, space="x")
