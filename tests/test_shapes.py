import math

import pytest
import torch

from diffcf.data import shapes as S


def test_confounded_factors_circles_twice_the_area():
    _, fac = S.make_shapes(2000, "confounded", torch.Generator().manual_seed(0))
    sq, ci = fac.area[fac.shape == S.SQUARE], fac.area[fac.shape == S.CIRCLE]
    assert len(sq) == len(ci) == 1000
    assert abs(ci.mean() / sq.mean() - 2.0) < 0.05
    assert ci.min() > sq.max()  # size alone separates the classes


def test_crossed_factors_sizes_independent_of_shape():
    _, fac = S.make_shapes(2000, "crossed", torch.Generator().manual_seed(1))
    threshold = 2 * S.AREA_LO  # small: u < AREA_HI < 2·AREA_LO <= large
    for s in (S.SQUARE, S.CIRCLE):
        a = fac.area[fac.shape == s]
        assert (a < threshold).sum() == (a >= threshold).sum() == 500
    sq, ci = fac.area[fac.shape == S.SQUARE], fac.area[fac.shape == S.CIRCLE]
    assert abs(ci.mean() / sq.mean() - 1.0) < 0.05


def test_rendered_images_match_their_factors():
    x, fac = S.make_shapes(400, "uniform", torch.Generator().manual_seed(2))
    assert x.shape == (400, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    # pixel sum = covered area (supersampled rendering), to a few percent
    rel = (x.flatten(1).sum(1) / fac.area - 1).abs()
    assert rel.max() < 0.05
    # measured area (threshold 0.5) close to the true one, fill ratio tells the shape
    rel_area = (S.object_area(x) / fac.area - 1).abs()
    assert rel_area.mean() < 0.08 and rel_area.max() < 0.3
    fill = S.fill_ratio(x)
    assert (fill[fac.shape == S.SQUARE] > 0.99).all()
    assert abs(fill[fac.shape == S.CIRCLE].mean() - math.pi / 4) < 0.05
    assert (S.shape_class(x) == fac.shape).float().mean() > 0.99


def test_template_match_is_robust_to_ragged_edges_and_aspect_ratio():
    x = torch.zeros(3, 1, 28, 28)
    x[0, 0, 8:16, 8:18] = 1.0  # a rectangle
    x[1, 0, 8:16, 8:16] = 1.0
    x[1, 0, 7, 10] = 1.0  # a stray pixel
    x[1, 0, 15, 12] = 0.0  # a notch
    x[2] = S.render(torch.tensor([S.CIRCLE]), torch.tensor([90.0]), torch.tensor([[14.0, 14.0]]))
    assert S.shape_class(x).tolist() == [S.SQUARE, S.SQUARE, S.CIRCLE]
    assert S.fill_ratio(x[1:2]).item() < 0.9  # the bounding-box fill ratio is not robust


def test_generator_is_seeded_and_errors_are_clear():
    a, _ = S.make_shapes(10, "confounded", torch.Generator().manual_seed(3))
    b, _ = S.make_shapes(10, "confounded", torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown size mode"):
        S.make_shapes(10, "random")
    with pytest.raises(ValueError, match="even"):
        S.make_shapes(7)
    with pytest.raises(ValueError, match="shape"):
        S.fill_ratio(torch.zeros(2, 28, 28))
    assert S.fill_ratio(torch.zeros(1, 1, 28, 28)).item() == 0.0


def test_shipped_shapes_classifier_uses_the_size_shortcut():
    from diffcf import zoo
    from diffcf.training import accuracy

    f = zoo.load("shapes_classifier")
    x, y = S.load_shapes("test", n=1000)
    xd, yd = S.load_shapes("deconfounded", n=1000)
    assert accuracy(f, x, y) >= 0.98
    assert accuracy(f, xd, yd) <= 0.6
