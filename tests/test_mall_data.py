"""The Mall loader on tiny fixtures written here in the real formats: 640×480 JPEG frames in the
mirror's two tars (members ``frames/seq_NNNNNN.jpg``) or an unpacked ``frames/``, ``mall_gt.mat``
(``count``, and ``frame``, a cell of structs with ``loc``) and ``perspective_roi.mat`` (``roi.mask``,
``pMapN``) written with scipy in the structure of the originals. The fixtures annotate all 2,000
frames but hold images of a few, so loads warn that the others are left out: that warning is
expected here (and checked once); any other warning is an error."""

from __future__ import annotations

import functools
import io
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torch.nn import functional as F

import image_fixtures as fx
from diffcf.data import fetch, mall
from diffcf.data.mall import (
    FRAME_DIR,
    GT_NAME,
    ROI_NAME,
    TEST_TAR,
    TRAIN_TAR,
    density_map,
    frame_shape,
    load_mall,
    load_mall_crops,
    load_mall_frames,
    read_ground_truth,
    read_roi,
    sample_crops,
)

pytestmark = [  # the last filter listed takes precedence
    pytest.mark.filterwarnings("error::UserWarning"),
    pytest.mark.filterwarnings("ignore:Mall. [0-9]+ frame.s. of the (train|test) split:UserWarning"),
    pytest.mark.usefixtures("isolated"),
]

TRAIN = [1, 2, 800]
TEST = [801, 2000]
FRAMES = TRAIN + TEST
N_GT = 2000
# the only 128x128 window of the frame inside this ROI: frame rows 100-227, columns 200-327, i.e.
# rows 50-113 and columns 100-163 of the 320x240 resized frame, one 64x64 crop with corner (50, 100)
ONE_CROP = (100, 200)
# heads of frame 1 in MATLAB coordinates (pixel centres at 1, 2, ...): x = 200.5 is the crop's left
# edge (inside), x = 328.5 its right edge (outside), y = 100.5 its top edge (inside)
FRAME1_HEADS = [(200.5, 150.0), (328.4, 150.0), (328.5, 150.0), (250.0, 100.5), (250.0, 228.5), (20.0, 30.0)]


def jpeg(rng: np.random.Generator, size: tuple[int, int] = (640, 480), fmt: str = "JPEG") -> bytes:
    """A smooth random RGB image of ``size`` (width, height), encoded as ``fmt``."""
    return fx.image_file(rng, size, (6, 8, 3), fmt=fmt)


def make_frames(seed: int = 0, frames=FRAMES) -> dict[int, bytes]:
    return dict(_frames(seed, tuple(frames)))


@functools.cache
def _frames(seed: int, frames: tuple[int, ...]) -> tuple[tuple[int, bytes], ...]:
    rng = np.random.default_rng(seed)
    return tuple((i, jpeg(rng)) for i in frames)


def make_heads(seed: int = 0, n: int = N_GT) -> list[np.ndarray]:
    """Head positions (MATLAB coordinates) of ``n`` frames: frame 1's are FRAME1_HEADS, the others
    0-6 random heads inside the frame (a new list of the same arrays at each call)."""
    return list(_heads(seed, n))


@functools.cache
def _heads(seed: int, n: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed + 100)
    heads = [np.array(FRAME1_HEADS)]
    for _ in range(n - 1):
        k = int(rng.integers(0, 7))
        heads.append(np.stack([rng.uniform(0.5, 640.5, k), rng.uniform(0.5, 480.5, k)], axis=1))
    for h in heads:
        h.flags.writeable = False
    return tuple(heads)


def members(images: dict[int, bytes]) -> dict[str, bytes]:
    """The frames under their names in the tars (and in the data folder)."""
    return {f"{FRAME_DIR}/seq_{i:06d}.jpg": data for i, data in images.items()}


def write_tars(folder: Path, images: dict[int, bytes], names=(TRAIN_TAR, TEST_TAR)) -> None:
    """Frames 1-800 into the first tar, the others into the second, as the mirror packs them."""
    for name, keep in zip(names, (range(1, 801), range(801, 100000)), strict=True):
        chosen = {i: data for i, data in images.items() if i in keep}
        if chosen:
            fx.write_tar(folder / name, members(chosen), folders=(FRAME_DIR,))


def write_frames(folder: Path, images: dict[int, bytes]) -> None:
    """The frames unpacked in the original layout, ``frames/seq_NNNNNN.jpg``."""
    fx.write_folder(folder, members(images))


def cell_array(locs: list) -> np.ndarray:
    cells = np.empty((1, len(locs)), dtype=object)
    for i, loc in enumerate(locs):
        cells[0, i] = {"loc": loc}
    return cells


def write_gt(folder: Path, heads: list[np.ndarray], count=None, **override) -> Path:
    """``mall_gt.mat`` as the original: ``count`` uint8 (N, 1), ``frame`` a 1×N cell of structs."""
    count = np.array([[len(h)] for h in heads], dtype=np.uint8) if count is None else count
    contents = {"count": count, "frame": cell_array(heads), **override}
    path = folder / GT_NAME
    scipy.io.savemat(path, {k: v for k, v in contents.items() if v is not None})
    return path


@functools.cache
def default_gt(seed: int) -> bytes:
    """The bytes of :func:`write_gt` of ``make_heads(seed)`` (2,000 structs take scipy 0.5 s)."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"count": np.array([[len(h)] for h in make_heads(seed)], dtype=np.uint8),
                              "frame": cell_array(make_heads(seed))})
    return buffer.getvalue()


def roi_mask(window=None) -> np.ndarray:
    """The ROI: by default the whole frame but the black band of rows 0-15; ``window`` = (top, left)
    of a 128×128 square ROI."""
    mask = np.zeros((480, 640), dtype=np.uint8)
    if window is None:
        mask[16:] = 1
    else:
        mask[window[0]:window[0] + 128, window[1]:window[1] + 128] = 1
    return mask


def write_roi(folder: Path, mask: np.ndarray | None = None, perspective=None, **override) -> Path:
    mask = roi_mask() if mask is None else mask
    perspective = np.linspace(14.8, 0.77, 480)[:, None].repeat(640, 1) if perspective is None else perspective
    contents = {"roi": {"mask": mask}, "pMapN": perspective, **override}
    path = folder / ROI_NAME
    scipy.io.savemat(path, {k: v for k, v in contents.items() if v is not None})
    return path


def write_mall(folder: Path, layout: str = "tar", seed: int = 0, frames=FRAMES, mask=None):
    folder.mkdir(parents=True, exist_ok=True)
    images, heads = make_frames(seed, frames), make_heads(seed)
    (write_tars if layout == "tar" else write_frames)(folder, images)
    (folder / GT_NAME).write_bytes(default_gt(seed))
    write_roi(folder, mask)
    return images, heads


def resized(data: bytes, shape=(240, 320)) -> np.ndarray:
    """The fixture frame as PIL decodes and resizes it, uint8 (3, *shape)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if shape != (480, 640):
        image = image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.asarray(image).transpose(2, 0, 1)


def folder_of(tmp_path: Path) -> Path:
    return tmp_path / "data" / "mall"


# ---- frames, heads, split ------------------------------------------------------------------------

def test_frames_heads_and_split(tmp_path):
    images, heads = write_mall(folder_of(tmp_path))
    train, test = load_mall_frames("train"), load_mall_frames("test")
    assert train.ids.tolist() == TRAIN and test.ids.tolist() == TEST
    assert train.frames.shape == (3, 3, 240, 320) and train.frames.dtype == torch.uint8
    assert frame_shape() == (240, 320) and frame_shape(32, 128) == (120, 160)
    assert frame_shape(8, 8) == (480, 640)
    for frames in (train, test):
        for i, frame in enumerate(frames.ids.tolist()):
            assert np.array_equal(frames.frames[i].numpy(), resized(images[frame]))
            # heads: MATLAB (x, y) - 0.5, scaled by 320/640 and 240/480
            assert np.allclose(frames.heads[i].numpy(), (heads[frame - 1] - 0.5) * 0.5, atol=1e-5)
        assert torch.equal(frames.count, torch.tensor([float(len(heads[f - 1])) for f in frames.ids]))
    assert train.roi.shape == (240, 320) and not train.roi[:8].any() and train.roi[8:].all()
    # the resize is an antialiased bilinear one: torch's antialiased bilinear agrees to rounding
    full = torch.stack([torch.from_numpy(resized(images[f], (480, 640)).copy()) for f in TEST]).float()
    reference = F.interpolate(full, size=(240, 320), mode="bilinear", antialias=True, align_corners=False)
    assert (test.frames.float() - reference).abs().max() <= 1.5
    # window == size: the frames as decoded, nothing resampled
    same = load_mall_frames("test", 16, 16)
    assert same.frames.shape == (2, 3, 480, 640)
    assert np.array_equal(same.frames[1].numpy(), resized(images[2000], (480, 640)))
    assert np.allclose(same.heads[1].numpy(), heads[1999] - 0.5)


def test_read_annotations_in_the_original_structure(tmp_path):
    heads = make_heads(n=5)
    heads[3] = np.zeros((0, 0))  # MATLAB's [] for a frame without people
    write_gt(tmp_path, heads)
    counts, read = read_ground_truth(tmp_path / GT_NAME)
    assert counts.dtype == np.float64
    assert counts.tolist() == [6, len(heads[1]), len(heads[2]), 0, len(heads[4])]
    assert read[3].shape == (0, 2) and np.allclose(read[0], np.array(FRAME1_HEADS) - 0.5)
    mask = roi_mask(ONE_CROP)
    write_roi(tmp_path, mask)
    roi, perspective = read_roi(tmp_path / ROI_NAME)
    assert roi.dtype == bool and roi.sum() == 128 * 128 and np.array_equal(roi, mask > 0)
    assert perspective.shape == (480, 640) and perspective[0, 0] == pytest.approx(14.8)


def test_tar_and_folder_agree_and_the_folder_wins(tmp_path):
    def load(split, root):
        crops = load_mall_crops(split, 16, root=root)
        return crops.x, crops.count, crops.corner

    fx.assert_layouts_agree(tmp_path, write_mall, load)
    both = tmp_path / "both"
    write_mall(both, "tar", seed=0)
    other = make_frames(seed=1)
    write_frames(both, other)
    frames = load_mall_frames("test", root=both)
    assert np.array_equal(frames.frames[0].numpy(), resized(other[801]))


def test_missing_frames_are_named_and_a_complete_set_loads_silently(tmp_path):
    folder = folder_of(tmp_path)
    write_mall(folder)
    with pytest.warns(UserWarning) as caught:
        load_mall_frames("train")
    assert [str(w.message) for w in caught if "left out" in str(w.message)] == [
        f"Mall: 797 frame(s) of the train split in {GT_NAME} have no image in {folder / TRAIN_TAR} and "
        f"{folder / TEST_TAR} and are left out (first: seq_000003.jpg, seq_000004.jpg, seq_000005.jpg, "
        f"seq_000006.jpg, seq_000007.jpg)"]
    complete = tmp_path / "complete"
    complete.mkdir()
    write_tars(complete, make_frames(frames=[1, 2, 3]))
    write_gt(complete, make_heads(n=3))
    write_roi(complete)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, count = load_mall("train", 32, root=complete)
    assert x.shape == (12, 3, 32, 32)


# ---- crops, counts, density ----------------------------------------------------------------------

def test_crops_and_their_counts(tmp_path):
    images, _ = write_mall(folder_of(tmp_path), mask=roi_mask(ONE_CROP))
    x, count = load_mall("train")
    assert x.shape == (12, 3, 64, 64) and x.dtype == torch.float32 and count.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and torch.equal(x * 255, (x * 255).round())
    crops = load_mall_crops("train")
    assert (crops.corner == torch.tensor([50, 100])).all()  # the ROI allows this crop only
    assert crops.frame.tolist() == [1] * 4 + [2] * 4 + [800] * 4
    expected = torch.from_numpy(resized(images[2])[:, 50:114, 100:164].astype(np.float32) / 255)
    assert torch.equal(crops.x[4], expected) and torch.equal(crops.x, x) and torch.equal(crops.count, count)
    # frame 1: left edge in, right edge out (half-open), top edge in, bottom edge out, one far away
    assert count[0] == 3
    assert torch.allclose(crops.heads[0], torch.tensor([[0.0, 24.75], [63.95, 24.75], [24.75, 0.0]]))
    frames = load_mall_frames("train")
    for k in range(12):  # counts against the frame's heads
        xy = frames.heads[k // 4]
        inside = (xy[:, 0] >= 100) & (xy[:, 0] < 164) & (xy[:, 1] >= 50) & (xy[:, 1] < 114)
        assert count[k] == inside.sum() == len(crops.heads[k])
    x32, count32 = load_mall("train", 32)  # the same window at half the resolution: the same counts
    assert x32.shape == (12, 3, 32, 32) and torch.equal(count32, count)


def test_sampling_is_seeded_per_frame_and_stays_in_the_roi(tmp_path):
    write_mall(folder_of(tmp_path))
    frames = load_mall_frames("test", 32)
    corners = frames.crop_corners()
    assert len(corners) == (120 - 4 - 32 + 1) * (160 - 32 + 1)  # rows 4.. of 120 are inside the ROI
    a, b = sample_crops(frames, 50, seed=3), sample_crops(frames, 50, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.corner, b.corner) and len(a.x) == 100
    assert not torch.equal(sample_crops(frames, 50, seed=4).corner, a.corner)
    assert (a.corner[:, 0] >= 4).all() and (a.corner[:, 0] <= 120 - 32).all()
    assert (a.corner[:, 1] <= 160 - 32).all()
    # a frame's crops do not depend on the other frames loaded
    alone = mall.MallFrames(frames.ids[1:], frames.frames[1:], frames.heads[1:], frames.roi, 32, 128)
    assert torch.equal(sample_crops(alone, 50, seed=3).corner, a.corner[50:])
    for k in range(len(a.x)):
        top, left = a.corner[k].tolist()
        i = k // 50
        assert torch.equal(a.x[k], frames.frames[i, :, top:top + 32, left:left + 32].float() / 255)
        xy = frames.heads[i]
        inside = (xy[:, 0] >= left) & (xy[:, 0] < left + 32) & (xy[:, 1] >= top) & (xy[:, 1] < top + 32)
        assert a.count[k] == inside.sum()
        assert torch.allclose(a.heads[k], xy[inside] - torch.tensor([left, top], dtype=torch.float32))
    assert a.count.sum() > 0
    density = a.density()
    assert density.shape == (100, 1, 32, 32)
    assert torch.allclose(density.sum((1, 2, 3)), a.count, atol=1e-4)


def test_density_map():
    heads = torch.tensor([[10.5, 20.5], [0.0, 31.9], [16.0, 16.0]])
    d = density_map(heads, 32, 2.0)
    assert d.shape == (32, 32) and d.dtype == torch.float32 and float(d.sum()) == pytest.approx(3.0, abs=1e-5)
    one = density_map(heads[:1], 32, 2.0)
    assert one[20, 10] == one.max()  # the peak is on the pixel whose centre is the head
    assert float(density_map(heads[1:2], 32, 2.0).sum()) == pytest.approx(1.0, abs=1e-6)  # corner: all kept
    one = density_map(torch.tensor([[5.5, 7.5]]), 16, 1.5).double()  # the Gaussian, sampled
    r, c = torch.meshgrid(torch.arange(16) + 0.5, torch.arange(16) + 0.5, indexing="ij")
    gauss = torch.exp(-((c - 5.5) ** 2 + (r - 7.5) ** 2) / (2 * 1.5**2)).double()
    assert torch.allclose(one, gauss / gauss.sum(), atol=1e-7)
    assert torch.equal(density_map(torch.zeros(0, 2), 8, 1.0), torch.zeros(8, 8))
    assert float(density_map(torch.tensor([[3.0, 3.0]]), 8, 1e-3).sum()) == pytest.approx(1.0)
    for sigma in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma must be positive"):
            density_map(heads, 8, sigma)


# ---- cache ---------------------------------------------------------------------------------------

def test_cache_is_reused_and_rebuilt_when_a_source_changes(tmp_path, monkeypatch):
    folder = folder_of(tmp_path)
    images, heads = write_mall(folder)
    first = load_mall_frames("test", 16)
    cache = tmp_path / "cache" / "mall_test_16_128.pt"
    assert cache.is_file() and sorted(p.name for p in cache.parent.iterdir()) == [cache.name]
    calls = fx.count_calls(monkeypatch, mall)
    again = load_mall_frames("test", 16)
    assert calls == [] and torch.equal(first.frames, again.frames)
    # the annotations are read at every load, never cached
    heads[800] = np.array([[10.0, 20.0]])
    write_gt(folder, heads)
    changed = load_mall_frames("test", 16)
    assert calls == [] and torch.allclose(changed.heads[0], torch.tensor([[1.1875, 2.4375]]))
    # a frame changes: the test tar is rewritten, rebuilt
    images[2000] = make_frames(seed=9, frames=[2000])[2000]
    write_tars(folder, images)
    rebuilt = load_mall_frames("test", 16)
    assert len(calls) == 1 and torch.equal(rebuilt.frames[0], first.frames[0])
    assert not torch.equal(rebuilt.frames[1], first.frames[1])
    # another split, size or window has its own cache
    load_mall_frames("train", 16)
    load_mall_frames("test", 16, 64)
    assert len(calls) == 3 and (tmp_path / "cache" / "mall_test_16_64.pt").is_file()
    # a corrupt cache, or one whose contents do not hold together, is rebuilt, not trusted
    cache.write_bytes(cache.read_bytes()[:1000])
    assert torch.equal(load_mall_frames("test", 16).frames, rebuilt.frames) and len(calls) == 4
    record = torch.load(cache, weights_only=True)
    record["ids"] = torch.tensor([801, 5000])
    torch.save(record, cache)
    assert load_mall_frames("test", 16).ids.tolist() == TEST and len(calls) == 5
    load_mall_frames("test", 16)
    assert len(calls) == 5


def test_unpacked_folder_cache_notices_a_changed_frame(tmp_path):
    folder = folder_of(tmp_path)
    write_mall(folder, "folder")
    fx.assert_change_noticed(lambda: load_mall_frames("train", 8).frames,
                             folder / FRAME_DIR / "seq_000002.jpg", make_frames(seed=5, frames=[2])[2])


def test_unwritable_cache_still_loads(tmp_path, monkeypatch):
    write_mall(folder_of(tmp_path))
    x, count = fx.load_without_cache(tmp_path, monkeypatch, lambda: load_mall("test", 8))
    assert x.shape == (8, 3, 8, 8) and count.shape == (8,)


# ---- every error names the file and `make data` ---------------------------------------------------

def expect_error(pattern: str, split: str = "train", **kwargs) -> str:
    return fx.expect_data_error(lambda: load_mall(split, 8, **kwargs), pattern)


def test_missing_files(tmp_path):
    folder = folder_of(tmp_path)
    images = make_frames()
    folder.mkdir(parents=True)
    (folder / GT_NAME).write_bytes(default_gt(0))
    write_roi(folder)
    expect_error(rf"mall: no frames: neither {FRAME_DIR}/ nor {TRAIN_TAR} or {TEST_TAR} is there")
    write_tars(folder, {i: images[i] for i in TRAIN})
    message = expect_error(r"no frame of the test split \(seq_000801\.jpg … seq_002000\.jpg\); "
                           rf"expected {TEST_TAR} or the unpacked frames/", split="test")
    assert str(folder / TRAIN_TAR) in message
    (folder / TRAIN_TAR).write_bytes(b"not a tar" * 100)
    expect_error(r"cannot be read as an uncompressed tar archive")
    write_tars(folder, images)
    (folder / GT_NAME).unlink()
    message = expect_error(r"mall_gt\.mat: file not found; expected the Mall ground truth")
    assert str(folder / GT_NAME) in message
    (folder / GT_NAME).write_bytes(default_gt(0))
    (folder / ROI_NAME).unlink()
    expect_error(r"perspective_roi\.mat: file not found; expected the Mall ROI")
    write_roi(folder)
    with tarfile.open(folder / TEST_TAR, "a") as tar:  # frame 2 in both tars
        info = tarfile.TarInfo(f"{FRAME_DIR}/seq_000002.jpg")
        info.size = len(images[2])
        tar.addfile(info, io.BytesIO(images[2]))
    expect_error(rf"{TEST_TAR}: holds seq_000002\.jpg, which .*{TRAIN_TAR} holds too")


def counts_of(heads, change=None, value=None, dtype=np.uint8) -> np.ndarray:
    """The ``count`` column of ``heads``, with entry ``change`` set to ``value``."""
    count = np.array([[len(h)] for h in heads], dtype=np.float64)
    if change is not None:
        count[change] = value
    return count.astype(dtype)


def with_loc(heads, i, loc):
    """``heads`` with frame ``i + 1``'s positions replaced by ``loc``."""
    return [*heads[:i], np.array(loc), *heads[i + 1:]]


@pytest.mark.parametrize(("edit", "pattern"), [
    (lambda f, h: (f / GT_NAME).write_bytes(b"MATLAB? no" * 20),
     r"cannot be read as a MATLAB v5 \.mat file"),
    (lambda f, h: scipy.io.savemat(f / GT_NAME, {"count": [[1]]}),
     r"has no variable 'frame' \(it holds: count\)"),
    (lambda f, h: scipy.io.savemat(f / GT_NAME, {"frame": cell_array(h)}), r"has no variable 'count'"),
    (lambda f, h: write_gt(f, h[:-1], count=counts_of(h)),
     r"'count' has 10 entries but 'frame' has 9 cells; expected one count per frame cell"),
    (lambda f, h: write_gt(f, h, count=counts_of(h, 4, len(h[4]) + 1)),
     r"frame 5 \(seq_000005\.jpg\): 'count' says \d+ but 'loc' holds \d+ heads"),
    (lambda f, h: write_gt(f, h, count=counts_of(h, 6, len(h[6]) + 0.5, np.float64)),
     r"'count' of frame 7 is \d+\.5; expected a non-negative integer count"),
    (lambda f, h: write_gt(f, h, count=np.ones((2, 10))), r"'count' has shape \(2, 10\)"),
    (lambda f, h: write_gt(f, with_loc(h, 2, np.ones((3, 3)))),
     r"'loc' of frame 3 \(seq_000003\.jpg\) has shape \(3, 3\)"),
    (lambda f, h: write_gt(f, with_loc(h, 2, [[np.nan, 1.0]])),
     r"'loc' of frame 3 \(seq_000003\.jpg\) holds NaN or infinite values"),
    (lambda f, h: write_gt(f, with_loc(h, 2, [[641.0, 5.0]])),
     r"frame 3 \(seq_000003\.jpg\) has a head at \(641, 5\), outside the frame"),
    (lambda f, h: scipy.io.savemat(f / GT_NAME, {"count": counts_of(h), "frame": np.ones((1, 10))}),
     r"'frame' is not a cell array"),
    (lambda f, h: write_gt(f, h[:3]),
     r"mall_gt\.mat: covers frames 1–3 but the frames include seq_000800\.jpg"),
])
def test_malformed_ground_truth(tmp_path, edit, pattern):
    folder = folder_of(tmp_path)
    write_mall(folder)
    edit(folder, make_heads(n=10))  # the annotations are checked before the frames are looked at
    assert str(folder / GT_NAME) in expect_error(pattern)


def test_a_cell_without_loc(tmp_path):
    folder = folder_of(tmp_path)
    write_mall(folder)
    heads = make_heads(n=10)
    cells = cell_array(heads)
    cells[0, 9] = {"position": heads[9]}
    scipy.io.savemat(folder / GT_NAME, {"count": [[len(h)] for h in heads], "frame": cells})
    expect_error(r"'frame' cell 10 is not a struct with a field 'loc'")


@pytest.mark.parametrize(("write", "pattern"), [
    (lambda f: write_roi(f, pMapN=None), r"has no variable 'pMapN' \(it holds: roi\)"),
    (lambda f: scipy.io.savemat(f / ROI_NAME, {"pMapN": np.ones((480, 640))}), r"has no variable 'roi'"),
    (lambda f: write_roi(f, roi={"mas": roi_mask()}), r"'roi' is not a struct with a field 'mask'"),
    (lambda f: write_roi(f, roi_mask()[:, :600]), r"'roi\.mask' has shape \(480, 600\); expected 480x640"),
    (lambda f: write_roi(f, perspective=np.ones((480, 64))), r"'pMapN' has shape \(480, 64\)"),
    (lambda f: write_roi(f, roi_mask() * 0), r"'roi\.mask' is zero everywhere"),
    (lambda f: write_roi(f, perspective=np.zeros((480, 640))), r"'pMapN' holds a value 0 <= 0"),
    (lambda f: (f / ROI_NAME).write_bytes(b""), r"cannot be read as a MATLAB v5 \.mat file"),
])
def test_malformed_roi(tmp_path, write, pattern):
    folder = folder_of(tmp_path)
    write_mall(folder)
    write(folder)
    assert str(folder / ROI_NAME) in expect_error(pattern)


@pytest.mark.parametrize("layout", ["tar", "folder"])
def test_unreadable_or_wrong_frames(tmp_path, layout):
    folder = folder_of(tmp_path)
    rng = np.random.default_rng(5)
    images = make_frames()
    folder.mkdir(parents=True)
    (folder / GT_NAME).write_bytes(default_gt(0))
    write_roi(folder)
    place = (lambda imgs: write_tars(folder, imgs)) if layout == "tar" else \
        (lambda imgs: write_frames(folder, imgs))
    where = (rf"{TRAIN_TAR}:" if layout == "tar" else "") + rf"{FRAME_DIR}/seq_000002\.jpg"
    place({**images, 2: images[2][:2000]})
    expect_error(rf"{where}: cannot be decoded \(.*\); expected a readable JPEG frame")
    place({**images, 2: b"\xff\xd8 garbage"})
    expect_error(rf"{where}: cannot be decoded")
    place({**images, 2: jpeg(rng, (320, 240))})
    expect_error(rf"{where}: is 320x240 \(width x height\); expected a Mall frame, 640x480")
    place({**images, 2: jpeg(rng, fmt="PNG")})
    expect_error(rf"{where}: is a PNG image, not a JPEG")


def test_bad_arguments(tmp_path):
    write_mall(folder_of(tmp_path), mask=roi_mask(ONE_CROP))
    with pytest.raises(ValueError, match="unknown split 'val'; choose one of train, test"):
        load_mall("val")
    for size in (0, 129, 32.0, True, "64"):
        with pytest.raises(ValueError, match=r"size must be an integer from 1 to window=128 .*got"):
            load_mall("train", size)
    for window in (0, 481, 128.0, None):
        with pytest.raises(ValueError, match=r"window must be an integer from 1 to 480 .*got"):
            load_mall("train", 16, window)
    for crops in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="crops_per_frame must be an integer >= 1"):
            load_mall("train", 16, crops_per_frame=crops)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        load_mall("train", 16, seed=-1)
    # the 128x128 ROI holds no 129-pixel window
    with pytest.raises(ValueError, match=r"no 64x64 crop lies wholly inside the region of interest"):
        load_mall("train", 64, 129)
    x, _ = load_mall("train", np.int64(16), np.int64(32), crops_per_frame=np.int64(2))
    assert x.shape == (6, 3, 16, 16)


def test_registry_entry_and_fetch(tmp_path):
    ds = fx.fetched_from_mirror(tmp_path, "mall", write_mall, extras=("PROVENANCE.md", "readme.txt"))
    assert set(ds.files) == {TRAIN_TAR, TEST_TAR, GT_NAME, ROI_NAME} and ds.checksum == "sha256"
    assert ds.url is None and ds.loader_function() is load_mall
    assert len(fetch.checksum_notes(ds)) == 4  # the fixtures are not the mirror's files
    x, count = ds.load("test", 8)
    assert x.shape == (8, 3, 8, 8) and count.shape == (8,)
