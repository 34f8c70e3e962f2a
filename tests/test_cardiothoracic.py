"""The cardiothoracic-ratio proxy of notebook 05 on phantoms whose widths are known."""

import pytest
import torch

from diffcf.cardiothoracic import cardiothoracic_ratio
from diffcf.data.chestxray import cardiac_region

BODY, LUNG, OUTSIDE = 0.8, 0.3, 0.1


def phantom(heart: tuple[int, int] = (26, 38), thorax: tuple[int, int] = (10, 54),
            size: int = 64) -> torch.Tensor:
    """A film of one row pattern repeated: outside the body, body, left lung, heart (body),
    right lung, body, outside. Lungs span columns [thorax[0], heart[0]) and [heart[1], thorax[1])."""
    row = torch.full((size,), BODY)
    row[:4], row[-4:] = OUTSIDE, OUTSIDE
    row[thorax[0] : heart[0]] = LUNG
    row[heart[1] : thorax[1]] = LUNG
    return row.expand(1, 1, size, size).clone()


def test_widths_of_a_phantom_are_read_at_the_edges_midpoints():
    """A 3×3 box filter turns each step edge into a symmetric ramp that crosses the halfway
    threshold exactly between the two columns of the step."""
    m = cardiothoracic_ratio(phantom())
    assert torch.allclose(m.heart, torch.tensor([12.0]))  # 25.5 .. 37.5
    assert torch.allclose(m.thorax, torch.tensor([44.0]))  # 9.5 .. 53.5
    assert torch.allclose(m.ratio, torch.tensor([12 / 44]))
    assert torch.allclose(m.borders[0, 0], torch.tensor([9.5, 25.5, 37.5, 53.5]))


def test_a_larger_heart_gives_a_larger_ratio_and_the_change_is_continuous():
    small, large = phantom((26, 38)), phantom((24, 40))
    r_small, r_large = cardiothoracic_ratio(small).ratio, cardiothoracic_ratio(large).ratio
    assert torch.allclose(r_large, torch.tensor([16 / 44]))
    halfway = cardiothoracic_ratio(0.5 * small + 0.5 * large).ratio
    assert r_small < halfway < r_large  # a blend moves the borders by a fraction of a pixel


def test_rows_without_two_lung_valleys_are_not_counted():
    film = phantom()
    film[..., 40:, :] = BODY  # below the "diaphragm": no lungs, the band's lower rows have no valley
    m = cardiothoracic_ratio(film)
    assert torch.allclose(m.ratio, torch.tensor([12 / 44]))
    assert m.borders[0, -1].isnan().all() and not m.borders[0, 0].isnan().any()
    flat = cardiothoracic_ratio(torch.full((2, 1, 32, 32), 0.5))
    assert flat.ratio.isnan().all()


def test_shallow_valleys_do_not_count():
    film = phantom()
    faint = BODY - 0.5 * (BODY - film)  # lungs only 0.25 below the body
    assert not cardiothoracic_ratio(faint, min_contrast=0.2).ratio.isnan().any()
    assert cardiothoracic_ratio(faint, min_contrast=0.3).ratio.isnan().all()


def test_median_over_rows_ignores_a_few_misread_rows():
    film = phantom()
    film[..., 40:42, 20:26] = BODY  # two rows where a dense lower lung joins the heart shadow
    assert torch.allclose(cardiothoracic_ratio(film).ratio, torch.tensor([12 / 44]))
    assert cardiothoracic_ratio(film, quantile=1.0).ratio > 12 / 44  # the textbook maximum follows them


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (64, 64), (1, 1, 8, 8)])
def test_refuses_what_is_not_a_batch_of_grey_films(shape):
    with pytest.raises(ValueError):
        cardiothoracic_ratio(torch.rand(shape))


def test_refuses_a_bad_band():
    with pytest.raises(ValueError, match="band"):
        cardiothoracic_ratio(phantom(), band=(0.8, 0.4))


def test_cardiac_region_lies_right_of_centre_in_the_lower_half_and_scales():
    m = cardiac_region(64)
    rows, cols = m.nonzero().T.float()
    assert 0.55 < rows.mean() / 64 < 0.7 and cols.mean() / 64 > 0.5
    assert 0.13 < m.float().mean() < 0.18
    assert abs(cardiac_region(128).float().mean() - m.float().mean()) < 0.01
    with pytest.raises(ValueError, match="size"):
        cardiac_region(2)
