"""The CelebA loader on tiny fixtures written here in the real formats: 89×109 JPEGs in the mirror's
tar and in an unpacked ``img_align_celeba/``, ``list_attr_celeba.txt`` (with and without its count
line, CRLF) and the csv subset. Unexpected warnings are errors: a clean data set loads silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import image_fixtures as fx
from diffcf.data import celeba, fetch
from diffcf.data.celeba import (
    ATTRIBUTES,
    BLOND_HAIR,
    CSV_NAME,
    IMAGE_DIR,
    TAR_NAME,
    TXT_NAME,
    attribute_index,
    celeba_ids,
    dequantize,
    load_celeba,
    quantize,
    read_attributes,
)

pytestmark = [pytest.mark.filterwarnings("error::UserWarning"), pytest.mark.usefixtures("isolated")]

TRAIN = [1, 2, 5, 8000]
TEST = [8001, 9999, 10000]
IDS = TRAIN + TEST + [10001]  # 010001.jpg lies beyond the split's ids: ignored


def jpeg(rng: np.random.Generator, size: tuple[int, int] = (89, 109), fmt: str = "JPEG") -> bytes:
    """A smooth random RGB image of ``size`` (width, height), encoded as ``fmt``."""
    return fx.image_file(rng, size, (6, 5, 3), fmt=fmt)


def members(images: dict[int, bytes]) -> dict[str, bytes]:
    """The images under their names in the tar (and in the data folder)."""
    return {f"{IMAGE_DIR}/{image_id:06d}.jpg": data for image_id, data in images.items()}


def attribute_text(values: dict[int, np.ndarray], form: str) -> str:
    """The attribute file in ``form``: ``"csv"``, ``"txt"`` (original, CRLF, padded columns) or
    ``"nocount"`` (the mirror zip's txt, without the count line)."""
    if form == "csv":
        lines = ["image_id," + ",".join(ATTRIBUTES)]
        lines += [f"{i:06d}.jpg," + ",".join(str(v) for v in row) for i, row in values.items()]
        return "\n".join(lines) + "\n"
    lines = [str(len(values))] if form == "txt" else []  # CRLF line ends, as the originals
    lines.append(" ".join(ATTRIBUTES) + " ")
    lines += [f"{i:06d}.jpg " + " ".join(f"{v:2d}" for v in row) for i, row in values.items()]
    return "\r\n".join(lines) + "\r\n"


def write_attributes(folder: Path, values: dict[int, np.ndarray], form: str = "csv") -> Path:
    path = folder / (CSV_NAME if form == "csv" else TXT_NAME)
    path.write_bytes(attribute_text(values, form).encode())
    return path


def make_data(seed: int = 0, ids=IDS) -> tuple[dict[int, bytes], dict[int, np.ndarray]]:
    rng = np.random.default_rng(seed)
    images = {i: jpeg(rng) for i in ids}
    values = {i: rng.choice(np.array([-1, 1], dtype=np.int8), size=len(ATTRIBUTES)) for i in ids}
    return images, values


def write_celeba(folder: Path, layout: str = "tar", form: str = "csv", seed: int = 0, ids=IDS):
    folder.mkdir(parents=True, exist_ok=True)
    images, values = make_data(seed, ids)
    if layout == "tar":
        fx.write_tar(folder / TAR_NAME, members(images))
    else:
        fx.write_folder(folder, members(images))
    write_attributes(folder, values, form)
    return images, values


def test_images_attributes_and_split(tmp_path):
    images, values = write_celeba(tmp_path / "data" / "celeba")
    x, y = load_celeba("train", 32)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert torch.equal(x * 255, (x * 255).round())  # uint8 values / 255
    assert y.shape == (4, 40) and y.dtype == torch.int64 and set(y.unique().tolist()) <= {0, 1}
    assert celeba_ids("train").tolist() == TRAIN and celeba_ids("test").tolist() == TEST
    assert torch.equal(y, torch.tensor(np.stack([values[i] for i in TRAIN]) > 0).long())
    x_test, y_test = load_celeba("test", 32)
    assert len(x_test) == len(y_test) == 3
    assert torch.equal(y_test[:, attribute_index(BLOND_HAIR)],
                       torch.tensor([int(values[i][9] > 0) for i in TEST]))
    # size 89: the crop alone, rows 10..98 of the decoded JPEG, nothing resampled
    x89, _ = load_celeba("test", 89)
    for row, image_id in zip(x89, TEST, strict=True):
        crop = fx.decoded(images[image_id])[10:99].transpose(2, 0, 1)
        assert torch.equal(row, torch.from_numpy(crop.astype(np.float32) / 255))
    # the resize is an antialiased bilinear one: torch's antialiased bilinear agrees to rounding
    crops = torch.stack([torch.from_numpy(fx.decoded(images[i])[10:99].transpose(2, 0, 1).copy())
                         for i in TEST]).float() / 255
    reference = F.interpolate(crops, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    assert (x_test - reference).abs().max() <= 1.5 / 255
    assert (x_test - F.interpolate(crops, size=(32, 32), mode="nearest")).abs().max() > 10 / 255


def test_tar_and_folder_agree_and_the_folder_wins(tmp_path):
    fx.assert_layouts_agree(tmp_path, write_celeba, lambda split, root: load_celeba(split, 16, root=root))
    both = tmp_path / "both"
    write_celeba(both, "tar", seed=0)
    other, _ = make_data(seed=1)
    fx.write_folder(both, members(other))
    x, _ = load_celeba("test", 89, root=both)
    expected = fx.decoded(other[TEST[0]])[10:99].transpose(2, 0, 1).astype(np.float32) / 255
    assert torch.equal(x[0], torch.from_numpy(expected))


def test_txt_with_and_without_count_line_equals_csv(tmp_path):
    results = []
    for form in ("csv", "txt", "nocount"):
        folder = tmp_path / form
        write_celeba(folder, form=form)
        results.append((load_celeba("train", 8, root=folder), celeba_ids("test", root=folder)))
    (x0, y0), ids0 = results[0]  # from the csv
    for (x, y), ids in results[1:]:
        assert torch.equal(x, x0) and torch.equal(y, y0) and torch.equal(ids, ids0)
    # both files present: the original-format txt is read
    _, values = make_data(seed=0)
    flipped = {i: -row for i, row in values.items()}
    write_attributes(tmp_path / "csv", flipped, "txt")
    _, y = load_celeba("train", 8, root=tmp_path / "csv")
    assert torch.equal(y, 1 - results[0][0][1])


def test_read_attributes_of_the_original_layout(tmp_path):
    _, values = make_data()
    path = write_attributes(tmp_path, values, "txt")
    ids, rows = read_attributes(path)
    assert ids.tolist() == IDS and rows.dtype == np.int8 and np.array_equal(rows[0], values[1])
    ids, rows = read_attributes(path, keep=range(2, 9000))
    assert ids.tolist() == [2, 5, 8000, 8001] and rows.shape == (4, 40)
    # columns separated by one or more spaces, blank lines ignored
    text = attribute_text(values, "nocount").replace(" -1", "   -1") + "\r\n\r\n"
    path.write_text(text, newline="")
    assert np.array_equal(read_attributes(path)[1], np.stack(list(values.values())))


def test_ids_with_only_an_image_or_only_a_row_are_named(tmp_path):
    folder = tmp_path / "data" / "celeba"
    images, values = make_data()
    folder.mkdir(parents=True)
    fx.write_tar(folder / TAR_NAME, members({i: images[i] for i in IDS if i != 5}))
    write_attributes(folder, {i: values[i] for i in IDS if i not in (2, 9999)})
    with pytest.warns(UserWarning) as caught:
        x, y = load_celeba("train", 8)
    messages = [str(w.message) for w in caught]
    assert any("2 image(s) of ids 000001–010000 have no attribute row in" in m
               and "000002.jpg, 009999.jpg" in m and CSV_NAME in m for m in messages)
    assert any("1 attribute row(s) of ids 000001–010000 have no image in" in m
               and "000005.jpg" in m and TAR_NAME in m for m in messages)
    assert len(x) == 2 and celeba_ids("train").tolist() == [1, 8000]
    with pytest.warns(UserWarning, match="left out"):  # said again when the cache is read
        load_celeba("train", 8)


def test_cache_is_reused_and_rebuilt_when_a_source_changes(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "celeba"
    images, values = write_celeba(folder)
    x, y = load_celeba("train", 16)
    cache = tmp_path / "cache" / "celeba_16.pt"
    assert cache.is_file() and not (tmp_path / "cache" / "celeba_8.pt").exists()
    calls = fx.count_calls(monkeypatch, celeba)
    x2, y2 = load_celeba("train", 16)
    assert calls == [] and torch.equal(x, x2) and torch.equal(y, y2)
    # the attribute file changes (same size, same mtime): rebuilt
    values[1] = -values[1]
    with fx.same_mtime(folder / CSV_NAME):
        write_attributes(folder, values)
    _, y3 = load_celeba("train", 16)
    assert len(calls) == 1 and torch.equal(y3[0], 1 - y[0]) and torch.equal(y3[1:], y[1:])
    # an image changes: the tar is rewritten, rebuilt
    other, _ = make_data(seed=7)
    images[2] = other[2]
    fx.write_tar(folder / TAR_NAME, members(images))
    x4, _ = load_celeba("train", 16)
    assert len(calls) == 2 and not torch.equal(x4[1], x[1]) and torch.equal(x4[0], x[0])
    # a corrupt cache, or one whose contents do not hold together, is rebuilt, not trusted
    cache.write_bytes(cache.read_bytes()[:1000])
    assert torch.equal(load_celeba("train", 16)[0], x4) and len(calls) == 3
    record = torch.load(cache, weights_only=True)
    record["attributes"][0, 0] = 7
    torch.save(record, cache)
    assert set(load_celeba("train", 16)[1].unique().tolist()) <= {0, 1} and len(calls) == 4
    load_celeba("test", 16)
    assert len(calls) == 4


def test_unpacked_folder_cache_notices_a_changed_image(tmp_path):
    folder = tmp_path / "data" / "celeba"
    write_celeba(folder, "folder")
    other, _ = make_data(seed=3)
    fx.assert_change_noticed(lambda: load_celeba("test", 8)[0], folder / IMAGE_DIR / "009999.jpg",
                             other[9999])


def test_unwritable_cache_still_loads(tmp_path, monkeypatch):
    write_celeba(tmp_path / "data" / "celeba")
    x, _ = fx.load_without_cache(tmp_path, monkeypatch, lambda: load_celeba("test", 8))
    assert x.shape == (3, 3, 8, 8)


# ---- every error names the file and `make data` ---------------------------------------------------

def expect_error(pattern: str, **kwargs) -> str:
    return fx.expect_data_error(lambda: load_celeba("train", 8, **kwargs), pattern)


def test_missing_images_or_attributes(tmp_path):
    folder = tmp_path / "data" / "celeba"
    expect_error(rf"celeba: no images: neither {IMAGE_DIR}/ nor {TAR_NAME}")
    folder.mkdir(parents=True)
    images, values = make_data()
    fx.write_tar(folder / TAR_NAME, members(images))
    expect_error(rf"no attribute file: neither {TXT_NAME} nor {CSV_NAME}")
    (folder / IMAGE_DIR).mkdir()
    write_attributes(folder, values)
    expect_error(rf"{IMAGE_DIR}: the folder holds no image NNNNNN\.jpg")
    (folder / IMAGE_DIR).rmdir()
    fx.write_tar(folder / TAR_NAME, members({20000: images[1]}))
    expect_error(r"the archive holds no img_align_celeba/NNNNNN\.jpg of ids 000001–010000")
    (folder / TAR_NAME).write_bytes(b"not a tar" * 100)
    expect_error(r"cannot be read as an uncompressed tar archive")
    fx.write_tar(folder / TAR_NAME, members({3: images[1], 4: images[2]}))
    expect_error(r"none of its images has an attribute row in .*list_attr_celeba_000001-010000\.csv")


GOOD_ROW = "000001.jpg," + ",".join(["-1", "1"] * 20)


@pytest.mark.parametrize(("line", "pattern"), [
    ("000001.jpg," + ",".join(["1"] * 39), r"line 3 \(000001\.jpg\) holds 39 values; expected 40 values"),
    ("000001.jpg," + ",".join(["1"] * 41), r"holds 41 values"),
    (GOOD_ROW.replace(",-1,", ",0,", 1),
     r"line 3 \(000001\.jpg\) holds the value '0'; expected values -1 or 1"),
    (GOOD_ROW.replace(",-1,", ",yes,", 1), r"holds the value 'yes'"),
    (GOOD_ROW.replace(",-1,", ",,", 1), r"holds the value ''"),
    (GOOD_ROW.replace("000001.jpg", "img1.png"), r"line 3 starts with 'img1\.png'; expected an image name"),
    (GOOD_ROW, r"line 3: 000001\.jpg already has a row \(line 2\); expected one row per image"),
])
def test_malformed_csv_line(tmp_path, line, pattern):
    folder = tmp_path / "data" / "celeba"
    write_celeba(folder)
    path = folder / CSV_NAME
    lines = path.read_text().splitlines()
    lines[2] = line  # the row of 000002.jpg
    path.write_text("\n".join(lines) + "\n")
    message = expect_error(pattern)
    assert str(path) in message


@pytest.mark.parametrize(("edit", "pattern"), [
    (lambda lines: ["10", *lines[1:]], r"the first line announces 10 rows but the file holds 8"),
    (lambda lines: [lines[0], lines[1].replace("Blond_Hair", "Blonde_Hair"), *lines[2:]],
     r"line 2: attribute 10 is 'Blonde_Hair' where CelebA's is 'Blond_Hair'"),
    (lambda lines: [lines[0], lines[1].replace("Young", ""), *lines[2:]], r"line 2 holds 39 attribute names"),
    (lambda lines: [*lines[:3], lines[3].replace("-1", "- 1", 1), *lines[4:]],
     r"line 4 \(000002\.jpg\) holds 41 values"),
    (lambda lines: [*lines[:3], lines[3].replace(" 1", " 1.0", 1), *lines[4:]], r"holds the value '1\.0'"),
    (lambda lines: lines[:1], r"no attribute names after the count line"),
])
def test_malformed_txt(tmp_path, edit, pattern):
    folder = tmp_path / "data" / "celeba"
    write_celeba(folder, form="txt")
    path = folder / TXT_NAME
    path.write_bytes("\r\n".join(edit(path.read_text().splitlines())).encode() + b"\r\n")
    assert str(path) in expect_error(pattern)


def test_empty_or_binary_attribute_file(tmp_path):
    folder = tmp_path / "data" / "celeba"
    write_celeba(folder)
    (folder / CSV_NAME).write_text("\n\n")
    expect_error(r"list_attr_celeba_000001-010000\.csv: the file is empty")
    (folder / CSV_NAME).write_bytes(b"PK\x03\x04\xff")
    expect_error(r"not plain text")
    (folder / CSV_NAME).write_text("id," + ",".join(ATTRIBUTES) + "\n")
    expect_error(r"the header starts with 'id'")


@pytest.mark.parametrize("layout", ["tar", "folder"])
def test_unreadable_or_wrong_images(tmp_path, layout):
    folder = tmp_path / "data" / "celeba"
    rng = np.random.default_rng(5)
    images, values = make_data()
    folder.mkdir(parents=True)
    write_attributes(folder, values)
    place = (lambda imgs: fx.write_tar(folder / TAR_NAME, members(imgs))) if layout == "tar" else \
        (lambda imgs: fx.write_folder(folder, members(imgs)))
    where = rf"{TAR_NAME}:{IMAGE_DIR}/000005\.jpg" if layout == "tar" else rf"{IMAGE_DIR}/000005\.jpg"
    place({**images, 5: images[5][:300]})
    expect_error(rf"{where}: cannot be decoded \(.*\); expected a readable JPEG image")
    place({**images, 5: b"\xff\xd8 garbage"})
    expect_error(rf"{where}: cannot be decoded")
    place({**images, 5: jpeg(rng, (178, 218))})
    message = expect_error(rf"{where}: is 178x218 \(width x height\); "
                           r"expected the half-resolution copy, 89x109")
    assert "original CelebA images are 178x218" in message
    place({**images, 5: jpeg(rng, fmt="PNG")})
    expect_error(rf"{where}: is a PNG image, not a JPEG")


def test_bad_arguments(tmp_path):
    write_celeba(tmp_path / "data" / "celeba")
    with pytest.raises(ValueError, match="unknown split 'val'; choose one of train, test"):
        load_celeba("val")
    with pytest.raises(ValueError, match="unknown split"):
        celeba_ids("all")
    for size in (0, 90, 32.0, True, "64"):
        with pytest.raises(ValueError, match=r"size must be an integer from 1 to 89 .*got"):
            load_celeba("train", size)
    assert load_celeba("train", np.int64(4))[0].shape == (4, 3, 4, 4)
    assert ATTRIBUTES[attribute_index(BLOND_HAIR)] == "Blond_Hair" and attribute_index("Young") == 39
    assert len(ATTRIBUTES) == 40 == len(set(ATTRIBUTES))
    with pytest.raises(ValueError, match="unknown attribute 'Blonde_Hair'; did you mean Blond_Hair"):
        attribute_index("Blonde_Hair")


def test_quantize_levels_and_dequantize():
    k = torch.arange(256, dtype=torch.float32)
    x = k / 255
    for bits in (1, 5, 8):
        x_q = quantize(x, bits)
        levels = torch.arange(2**bits, dtype=torch.float32) / 2**bits
        assert torch.equal(x_q.unique(), levels)  # every level used, each 2**(8-bits) values
        assert torch.equal(x_q, torch.floor(k / 2 ** (8 - bits)) / 2**bits)
        assert x_q.max() < 1.0
    assert quantize(x, 5)[[0, 7, 8, 255]].mul(32).tolist() == [0, 0, 1, 31]
    for bits in (1, 5, 8):  # idempotent: an image on the grid keeps its levels
        assert torch.equal(quantize(quantize(x, bits), bits), quantize(x, bits))
    # float error in x = k/255 never drops a value to the level below
    assert torch.equal(quantize((k / 255).double(), 5).float(), quantize(x, 5))
    x_q = quantize(torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)))
    x_deq = dequantize(x_q, 5, generator=torch.Generator().manual_seed(1))
    assert ((x_deq >= x_q) & (x_deq < x_q + 1 / 32)).all() and x_deq.max() < 1.0
    assert torch.equal(torch.floor(x_deq * 32) / 32, x_q)
    with pytest.raises(ValueError, match=r"quantize expects images in \[0, 1\]"):
        quantize(x * 2)
    with pytest.raises(ValueError, match="bits must be an integer from 1 to 8"):
        quantize(x, 0)
    with pytest.raises(ValueError, match="dequantize expects 5-bit images"):
        dequantize(x)


def test_registry_entry_and_fetch(tmp_path):
    ds = fx.fetched_from_mirror(tmp_path, "celeba", write_celeba)
    assert set(ds.files) == {TAR_NAME, CSV_NAME} and ds.checksum == "sha256" and ds.url is None
    assert ds.loader_function() is load_celeba
    assert len(fetch.checksum_notes(ds)) == 2  # the fixtures are not the mirror's files
    x, y = ds.load("test", 8)
    assert x.shape == (3, 3, 8, 8) and y.shape == (3, 40)


def test_face_region_is_the_inner_face_and_scales_with_the_size():
    m = celeba.face_region(32)
    rows, cols = m.nonzero().T
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (13, 28, 10, 21)
    assert torch.equal(m, m.flip(1))  # left-right symmetric
    big = celeba.face_region(64)
    assert abs(big.float().mean() - m.float().mean()) < 0.01  # the same share of the image
    with pytest.raises(ValueError, match="size"):
        celeba.face_region(2)
