"""The figure helpers draw what they say they draw."""

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from diffcf.plotting import image_rows  # noqa: E402


def test_difference_rows_share_one_scale_of_summed_absolute_changes():
    """A signed RGB difference is drawn as Σ_c |δ_c|, and the colour scale of every ``|`` row ends at
    the largest such sum among them, so no difference map saturates."""
    delta = torch.zeros(2, 3, 4, 4)
    delta[0, :, 0, 0] = torch.tensor([-0.5, 0.25, -0.25])  # Σ|δ| = 1.0, while its largest value is 0.25
    delta[1, 0, 1, 1] = 0.4
    fig = image_rows({"x": torch.rand(2, 3, 4, 4), "|δ| a": delta, "|δ| b": delta / 2})
    for ax in fig.axes[2:]:
        shown = ax.get_images()[0]
        assert shown.get_clim() == (0, 1.0)
    assert torch.allclose(torch.as_tensor(fig.axes[2].get_images()[0].get_array()[0, 0]), torch.tensor(1.0))
    assert torch.allclose(torch.as_tensor(fig.axes[4].get_images()[0].get_array()[0, 0]), torch.tensor(0.5))
