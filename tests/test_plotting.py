"""The figure helpers draw what they say they draw."""

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from diffcf.plotting import flow_samples, image_rows  # noqa: E402


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


class _Shift:
    """A toy flow: ``g(z) = z + 0.5`` on ``1 × 2 × 2`` images, so every sample and round trip is known."""

    def encode(self, x):
        return x.flatten(1) - 0.5

    def decode(self, z):
        return z.reshape(-1, 1, 2, 2) + 0.5

    def sample(self, n, generator, temperature=1.0):
        return self.decode(temperature * torch.randn(n, 4, generator=generator))


def test_flow_samples_draws_a_row_per_temperature_and_the_round_trip():
    x = torch.rand(3, 1, 2, 2)
    fig, error = flow_samples(_Shift(), x, seed=1, temperatures=(0.5, 1.0), name="toys")
    assert error < 1e-6
    assert len(fig.axes) == 4 * 3
    labels = [fig.axes[3 * r].get_ylabel() for r in range(4)]
    assert labels == ["samples, T = 0.5", "samples, T = 1.0", "toys $x$", "$g(g^{-1}(x))$"]
    # the same z directions at both temperatures: where T = 1 is not clipped, T = 0.5 is half as far from 0.5
    low, high = (torch.as_tensor(fig.axes[r].get_images()[0].get_array()).float() for r in (0, 3))
    inside = (high > 0) & (high < 1)
    assert inside.any()
    assert torch.allclose(low[inside] - 0.5, (high[inside] - 0.5) / 2, atol=1e-6)
