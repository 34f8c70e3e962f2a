"""Recipes of the Mall models (notebook 06, §IV-B and §IV-D): the counting U-Net ``f``, the oracle
U-Net that judges its counterfactuals, and the Glow ``g`` of the crops.

**One pixel domain.** Every Mall model sees the images the flow models: the ``3 × 64 × 64`` crops of
:func:`diffcf.data.mall.load_mall_crops` (the data layer's default size and window) quantised to 5
bits (``k/32``, :func:`load_quantized`), as the paper's Glow is trained. The U-Nets are trained and
tested on the same 5-bit crops, so originals, counterfactuals and adversarials are judged in one domain.

**Data.** Training crops: 16 per training frame (frames 1–800, 12,800 crops; ``crops_per_frame``),
drawn with the recipe's ``seed``, so the oracle sees other crops than ``f``. Test crops: the data
layer's own, 4 per test frame (frames 801–2000, 4,800 crops, seed 0), the crops notebook 06 searches
from; every metric is on them. The U-Nets' crops are mirrored left-right at random (``hflip``,
image and density map together: a count does not depend on the side); the flow's are not, as it
models this one camera's scene as it is.

**Loss of the U-Nets** (:func:`counting_loss`): ``map_weight · MSE(s·d̂, s·d) + MSE(ĉ, c)``, the
density map ``d̂`` against the data's map ``d`` (:meth:`~diffcf.data.mall_crops.MallCrops.density`,
one normalised Gaussian per head, σ = 2 crop pixels) and the count ``ĉ`` against the true count. The
maps are compared in units of ``1/s`` heads per pixel, ``s = density_scale = 100`` of the model, in
which a lone head's peak (``1/(2πσ²)`` ≈ 0.04 heads per pixel) is about 4, and the map term is
weighted by ``map_weight = 10``: for a model that predicts an empty map and a zero count, the map
term is then 0.97 and the count term 6.8 (the mean of ``c²`` over the training crops), so both drive
training from the start. The metrics: test RMSE and MAE of the count, the RMSE of the sum of the
density map (how well the map that Fig. 12's head localisation reads is a density), and the RMSE of
always answering the training crops' mean count (what a model that learned nothing scores: 1.97 on the
test crops, whose counts have mean 1.96 and standard deviation 1.96, 29 % of them empty; issue 19
asks for a test RMSE of at most 1.0, the paper reports 0.63).

**Size, measured.** On the 2-core CPU with one thread (while a 2-process training job and a notebook
run shared the cores), one Adam step at batch 64 on 64 × 64 crops takes

- 0.80 s for :class:`~diffcf.models.unet.CountingUNet` at widths ``8-16-32-64`` (0.65 M
  parameters); 4,000 steps are about 54 CPU-minutes: about 30 minutes on both cores (``torchrun
  --nproc_per_node=2``, one thread each), an hour in one single-threaded process. Widths
  ``16-32-64-128`` cost 2.2 s a step (the paper's ``64-128-256-512``, 16 times the convolutions of
  those, is far beyond a CPU), and more steps of the narrower net were preferred to fewer of a wider;
- 1.48 s for :class:`~diffcf.models.unet.OracleUNet` at widths ``12-24-48-96-192`` (1.09 M
  parameters, larger than ``f`` as the paper's oracle is); 2,400 steps, about 59 CPU-minutes;
- 5.6 s for the four-scale Glow registered as ``mall_flow`` (8 steps per scale, coupling widths
  ``64-96-128-128``, 2.97 M parameters, 11 MB): its 20,000 steps are about 31 CPU-hours, trained in
  stages (``--minutes``, ``--resume``; ``torchrun`` on several processes or GPUs).

**The paper's Glow** (4 scales × 32 steps, couplings of width 512, additive) would hold 75.5 M
parameters in the project's affine-coupling Glow, 288 MB of float32: seven times the project's 40 MB
per checkpoint, and each step costs far more than the registered one on a CPU. ``mall_flow`` keeps
its four scales at 64 × 64, 5 bits and learned split priors with a quarter of its depth and at most
a quarter of its width. Its 31 CPU-hours are beyond this project's CPU, so :func:`mall_specs` also
registers all three models at ``size = 32`` (the same windows and counts at half the resolution, names
ending in ``_32``; people stay recognisable in the crops; a three-scale Glow, 2.1 s a step), the CPU
models of notebook 06; the 64 × 64 ones are for a GPU. The U-Net and the flow must share the size,
since ``f`` judges what ``g`` decodes.

All recipes train through :func:`diffcf.training.fit` (stages, ``--resume``, ``torchrun``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from diffcf.data.mall import SIZE, load_mall_crops
from diffcf.data.mall_crops import MallCrops
from diffcf.data.quantize import quantize
from diffcf.models.unet import CountingUNet, OracleUNet
from diffcf.recipes.common import glow_spec, stream_seed, train_image_flow
from diffcf.training import Stage, fit, per_rank, rank
from diffcf.zoo import ModelSpec, register

N_BITS = 5                  # the paper's Glow models 5-bit crops
TRAIN_CROPS_PER_FRAME = 16  # 12,800 training crops from the 800 training frames
TEST_SEED = 0               # the data layer's test crops (4 per frame, seed 0), notebook 06's


def load_quantized(split: str, size: int = SIZE, n_bits: int = N_BITS, crops_per_frame: int | None = None,
                   seed: int = TEST_SEED) -> MallCrops:
    """The crops every Mall model sees: :func:`~diffcf.data.mall.load_mall_crops` of ``split`` at
    ``size`` (the default window), ``x`` quantised to ``n_bits`` (``k / 2**n_bits``; 8 keeps them as
    they are). ``crops_per_frame=None``: the data layer's default (4)."""
    kwargs = {} if crops_per_frame is None else {"crops_per_frame": crops_per_frame}
    crops = load_mall_crops(split, size, seed=seed, **kwargs)
    return crops if n_bits == 8 else dataclasses.replace(crops, x=quantize(crops.x, n_bits))


def crop_batches(x: Tensor, density: Tensor, count: Tensor, batch_size: int, seed: int,
                 device: torch.device, hflip: bool = False) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Endless random mini-batches ``(x, density, count)`` drawn with their own generator; with
    ``hflip`` each crop is mirrored left-right with probability 1/2, its density map with it."""
    if not len(x) == len(density) == len(count):
        raise ValueError(f"x, density and count must hold as many crops, got {len(x)}, {len(density)}, "
                         f"{len(count)}")
    gen = torch.Generator().manual_seed(seed)
    while True:
        idx = torch.randint(len(x), (batch_size,), generator=gen)
        xb, db = x[idx], density[idx]
        if hflip:
            flip = torch.rand(batch_size, generator=gen) < 0.5
            xb[flip], db[flip] = xb[flip].flip(-1), db[flip].flip(-1)
        yield xb.to(device), db.to(device), count[idx].to(device)


def counting_loss(model: nn.Module, x: Tensor, density: Tensor, count: Tensor, map_weight: float) -> Tensor:
    """``map_weight · MSE(s·d̂, s·d) + MSE(ĉ, c)`` with ``s = model.density_scale`` (module
    docstring): density maps ``d`` ``(B, 1, H, W)`` in heads per pixel, counts ``c`` ``(B,)``."""
    count_hat, density_hat = model.density_and_count(x)
    s = model.density_scale
    return (map_weight * nn.functional.mse_loss(s * density_hat, s * density)
            + nn.functional.mse_loss(count_hat, count))


@torch.no_grad()
def predict_counts(model: nn.Module, x: Tensor, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """The counts of ``x`` and the sums of their density maps, ``(N,)`` each, on the CPU, in batches
    on the model's device."""
    device = next(model.parameters()).device
    counts, sums = [], []
    for xb in x.split(batch_size):
        count, density = model.density_and_count(xb.to(device))
        counts.append(count.cpu())
        sums.append(density.sum(dim=(1, 2, 3)).cpu())
    return torch.cat(counts), torch.cat(sums)


def count_metrics(predicted: Tensor, map_sums: Tensor, count: Tensor, train_mean: float) -> dict[str, float]:
    """Test RMSE and MAE of the count, RMSE of the density maps' sums, and the RMSE of always
    answering ``train_mean`` (module docstring)."""
    def rmse(a: Tensor) -> float:
        return round(math.sqrt(((a - count) ** 2).mean().item()), 4)

    return {"test_rmse": rmse(predicted), "test_mae": round((predicted - count).abs().mean().item(), 4),
            "test_map_rmse": rmse(map_sums), "test_rmse_constant": rmse(torch.full_like(count, train_mean))}


def train_mall_counter(model: nn.Module, device: torch.device, stage: Stage, n_bits: int,
                       crops_per_frame: int, steps: int, batch_size: int, lr: float, weight_decay: float,
                       map_weight: float, hflip: bool, seed: int) -> dict[str, float]:
    """A counting U-Net (``f`` or the oracle): :func:`counting_loss` on ``crops_per_frame`` crops
    of every training frame (drawn with ``seed``), Adam; :func:`count_metrics` on the test crops."""
    train = load_quantized("train", model.size, n_bits, crops_per_frame, seed)
    batches = crop_batches(train.x, train.density(), train.count, per_rank(batch_size),
                           stream_seed(seed, stage), device, hflip=hflip)
    fit(model, batches, functools.partial(counting_loss, map_weight=map_weight), steps=steps, lr=lr,
        weight_decay=weight_decay, desc=f"mall {type(model).__name__}", stage=stage)
    if rank() != 0:
        return {}
    test = load_quantized("test", model.size, n_bits)
    predicted, map_sums = predict_counts(model.eval(), test.x)
    return count_metrics(predicted, map_sums, test.count, train.count.mean().item())


def train_mall_flow(flow: nn.Module, device: torch.device, stage: Stage, crops_per_frame: int, steps: int,
                    batch_size: int, lr: float, warmup_steps: int, clip_grad: float,
                    seed: int) -> dict[str, float]:
    """Maximum likelihood on the dequantised ``flow.n_bits``-bit training crops (the shared
    image-flow loop, with a learning-rate warm-up, no mirroring); test bits/dim in that convention
    and the largest round-trip error, on the test crops."""
    x = load_quantized("train", flow.size, flow.n_bits, crops_per_frame, seed).x
    x_test = load_quantized("test", flow.size, flow.n_bits).x
    return train_image_flow(flow, device, stage, x, x_test, steps, batch_size, lr, clip_grad, seed,
                            desc="mall flow", warmup_steps=warmup_steps)


# ---- the named models ----------------------------------------------------------------------------

FLOWS = {  # per size: the Glow's scales, steps per scale and coupling widths, and its schedule
    64: {"steps_per_scale": [8, 8, 8, 8], "hidden": [64, 96, 128, 128], "steps": 20000},
    32: {"steps_per_scale": [8, 8, 8], "hidden": [96, 128, 128], "steps": 30000},
}
COUNTER_WIDTHS = [8, 16, 32, 64]
ORACLE_WIDTHS = [12, 24, 48, 96, 192]
DENSITY_SCALE = 100.0


def mall_specs(size: int = SIZE) -> list[ModelSpec]:
    """The three Mall models at ``size`` (64: the registered models; 32: names ending in ``_32``,
    the fallback of the module docstring)."""
    if size not in FLOWS:
        raise ValueError(f"Mall recipes exist for sizes {sorted(FLOWS)}, got {size}")
    suffix = "" if size == SIZE else f"_{size}"
    flow = FLOWS[size]
    common = {"n_bits": N_BITS, "crops_per_frame": TRAIN_CROPS_PER_FRAME, "batch_size": 64, "lr": 1e-3,
              "weight_decay": 0.0, "map_weight": 10.0, "hflip": True}
    return [
        ModelSpec(
            name=f"mall_unet{suffix}",
            build=CountingUNet,
            params={"in_channels": 3, "size": size, "widths": COUNTER_WIDTHS, "head_width": 64,
                    "density_scale": DENSITY_SCALE, "count_activation": "softplus"},
            train=train_mall_counter,
            train_params={**common, "steps": 4000, "seed": 31},
            description=f"U-Net after Ribera et al. (the paper's code; widths 8-16-32-64) on 5-bit "
                        f"{size}×{size} Mall crops: density map, and the count from bottleneck and map "
                        f"through two linear layers; the regressor f",
        ),
        ModelSpec(
            name=f"mall_unet_oracle{suffix}",
            build=OracleUNet,
            params={"in_channels": 3, "size": size, "widths": ORACLE_WIDTHS, "density_scale": DENSITY_SCALE},
            train=train_mall_counter,
            train_params={**common, "steps": 2400, "seed": 32},
            description=f"deeper U-Net (widths 12-24-48-96-192, transposed-convolution upsampling) "
                        f"whose count is the sum of its density map, trained on other 5-bit "
                        f"{size}×{size} crops: the oracle",
        ),
        glow_spec(f"mall_flow{suffix}", train_mall_flow, "Mall crops", 3, size, N_BITS, **flow, seed=33,
                  crops_per_frame=TRAIN_CROPS_PER_FRAME),
    ]


for _size in FLOWS:
    for _spec in mall_specs(_size):
        register(_spec)
