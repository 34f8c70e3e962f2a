"""The chest X-ray loader on tiny fixtures written here in the mirror's format: 128×128 8-bit grey
PNGs in a tar under ``cardiomegaly_128/{train,test}/{true,false}/N.png`` and unpacked, and the label
csv in its column layout. Unexpected warnings are errors: a clean data set loads silently."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

import image_fixtures as fx
from diffcf.data import DataError, chestxray, fetch
from diffcf.data.chestxray import (
    CSV_NAME,
    IMAGE_DIR,
    TAR_NAME,
    chestxray_names,
    load_chestxray,
    read_labels,
    verify_files,
)

pytestmark = [pytest.mark.filterwarnings("error::UserWarning"), pytest.mark.usefixtures("isolated")]

# (split, folder, number) of the fixture images, in the mirror csv's order
FILES = [("test", "false", 1), ("test", "false", 2), ("test", "true", 1),
         ("train", "false", 1), ("train", "false", 3), ("train", "true", 1), ("train", "true", 2)]
HEADER = "path_in_tar,split,cardiomegaly,bytes,sha256,source_path"


def name(split: str, folder: str, number: int) -> str:
    return f"{IMAGE_DIR}/{split}/{folder}/{number}.png"


NAMES = [name(*f) for f in FILES]


def png(rng: np.random.Generator, size: tuple[int, int] = (128, 128), mode: str = "L",
        fmt: str = "PNG") -> bytes:
    """A smooth random image of ``size`` (width, height) in PIL ``mode``, encoded as ``fmt``."""
    return fx.image_file(rng, size, (5, 5), mode, fmt)


def make_images(seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {n: png(rng) for n in NAMES}


def csv_lines(images: dict[str, bytes]) -> list[str]:
    lines = [HEADER]
    for member, data in images.items():
        _, split, folder, file = member.split("/")
        label = int(folder == "true")
        lines.append(f"{member},{split},{label},{len(data)},{hashlib.sha256(data).hexdigest()},"
                     f"data/raw/{split}/{folder}/{file}")
    return lines


def write_csv(folder: Path, lines: list[str]) -> Path:
    path = folder / CSV_NAME
    path.write_text("\n".join(lines) + "\n")
    return path


def write_chestxray(folder: Path, layout: str = "tar", seed: int = 0) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    images = make_images(seed)
    if layout == "tar":
        fx.write_tar(folder / TAR_NAME, images)
    else:
        fx.write_folder(folder, images)
    write_csv(folder, csv_lines(images))
    return images


def expected(images: dict[str, bytes], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    members = [n for n in NAMES if n.split("/")[1] == split]
    x = torch.stack([torch.from_numpy(fx.decoded(images[n]).copy()) for n in members])[:, None]
    return x.float() / 255, torch.tensor([int("/true/" in n) for n in members])


def test_images_labels_and_split(tmp_path):
    images = write_chestxray(tmp_path / "data" / "chestxray")
    for split, n in (("train", 4), ("test", 3)):
        x, y = load_chestxray(split)
        assert x.shape == (n, 1, 128, 128) and x.dtype == torch.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert torch.equal(x * 255, (x * 255).round())  # uint8 values / 255
        assert y.dtype == torch.int64 and y.shape == (n,)
        x_ref, y_ref = expected(images, split)
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)  # 128: the pixels, unchanged
        assert chestxray_names(split) == [m for m in NAMES if m.split("/")[1] == split]
    assert load_chestxray("train")[1].tolist() == [0, 0, 1, 1]
    # 64: an antialiased bilinear resize; torch's antialiased bilinear agrees to rounding
    x128, _ = load_chestxray("test", 128)
    x64, _ = load_chestxray("test", 64)
    assert x64.shape == (3, 1, 64, 64)
    reference = F.interpolate(x128, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    assert (x64 - reference).abs().max() <= 1.5 / 255
    assert (x64 - F.interpolate(x128, size=(64, 64), mode="nearest")).abs().max() > 5 / 255


def test_tar_and_folder_agree_and_the_folder_wins(tmp_path):
    fx.assert_layouts_agree(tmp_path, write_chestxray, lambda split, root: (
        *load_chestxray(split, 128, root=root), *load_chestxray(split, 32, root=root)))
    both = tmp_path / "both"
    write_chestxray(both, "tar", seed=0)
    other = make_images(seed=1)
    fx.write_folder(both, other)
    write_csv(both, csv_lines(other))
    x, _ = load_chestxray("test", root=both)
    assert torch.equal(x, expected(other, "test")[0])


def test_csv_order_and_extra_columns_and_blank_lines(tmp_path):
    folder = tmp_path / "data" / "chestxray"
    images = write_chestxray(folder)
    lines = csv_lines(images)
    # columns in another order, an extra one, rows reversed, blank lines: same images, csv order
    table = [line.split(",") for line in lines]
    order = [4, 2, 0, 5, 1, 3]
    shuffled = [",".join([row[i] for i in order] + ["note"]) for row in table]
    shuffled[0] = shuffled[0].replace("note", "comment")
    write_csv(folder, [shuffled[0], "", *reversed(shuffled[1:]), ""])
    x, y = load_chestxray("test")
    x_ref, y_ref = expected(images, "test")
    assert torch.equal(x, x_ref.flip(0)) and torch.equal(y, y_ref.flip(0))
    assert chestxray_names("test") == list(reversed(NAMES[:3]))
    rows = read_labels(folder / CSV_NAME)
    assert [r.line for r in rows[:2]] == [3, 4] and rows[0].path == NAMES[-1] and rows[0].label == 1


def test_unlisted_images_are_left_out_with_a_warning(tmp_path):
    folder = tmp_path / "data" / "chestxray"
    folder.mkdir(parents=True)
    images = make_images()
    extra = {**images, name("train", "true", 9): images[NAMES[0]], "cardiomegaly_128/README.txt": b"x"}
    fx.write_tar(folder / TAR_NAME, extra)
    write_csv(folder, csv_lines(images))
    pattern = (r"1 image\(s\) in .* have no row in .*labels_cardiomegaly_128\.csv and are left out "
               r"\(first: cardiomegaly_128/train/true/9\.png")
    with pytest.warns(UserWarning, match=pattern):
        x, _ = load_chestxray("train")
    assert len(x) == 4
    with pytest.warns(UserWarning, match="left out"):  # said again when the cache is read
        load_chestxray("train")


def test_cache_is_reused_and_rebuilt_when_a_source_changes(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "chestxray"
    images = write_chestxray(folder)
    x, y = load_chestxray("train", 32)
    cache = tmp_path / "cache" / "chestxray_32.pt"
    assert cache.is_file() and not (tmp_path / "cache" / "chestxray_128.pt").exists()
    calls = fx.count_calls(monkeypatch, chestxray)
    x2, y2 = load_chestxray("train", 32)
    assert calls == [] and torch.equal(x, x2) and torch.equal(y, y2)
    load_chestxray("test", 32)  # both splits are in one cache
    assert calls == []
    # the csv changes (same size, same mtime): rebuilt; here its rows come in another order
    lines = csv_lines(images)
    with fx.same_mtime(folder / CSV_NAME):
        write_csv(folder, [lines[0], *lines[1:4], lines[7], lines[6], lines[5], lines[4]])
    x3, y3 = load_chestxray("train", 32)
    assert len(calls) == 1 and torch.equal(x3, x.flip(0)) and torch.equal(y3, y.flip(0))
    # an image changes: the tar is rewritten, rebuilt
    other = make_images(seed=7)
    images[NAMES[3]] = other[NAMES[3]]
    fx.write_tar(folder / TAR_NAME, images)
    x4, _ = load_chestxray("train", 32)
    assert len(calls) == 2 and not torch.equal(x4[3], x3[3]) and torch.equal(x4[:3], x3[:3])
    # a corrupt cache, or one whose contents do not hold together, is rebuilt, not trusted
    cache.write_bytes(cache.read_bytes()[:1000])
    assert torch.equal(load_chestxray("train", 32)[0], x4) and len(calls) == 3
    record = torch.load(cache, weights_only=True)
    record["labels"][0] = 7
    torch.save(record, cache)
    assert set(load_chestxray("train", 32)[1].tolist()) <= {0, 1} and len(calls) == 4
    record = torch.load(cache, weights_only=True)
    record["key"] = "0" * 64
    torch.save(record, cache)
    load_chestxray("train", 32)
    assert len(calls) == 5


def test_unpacked_folder_cache_notices_a_changed_image(tmp_path):
    folder = tmp_path / "data" / "chestxray"
    write_chestxray(folder, "folder")
    fx.assert_change_noticed(lambda: load_chestxray("test", 16)[0], folder / NAMES[1],
                             make_images(seed=3)[NAMES[1]])


def test_unwritable_cache_still_loads(tmp_path, monkeypatch):
    write_chestxray(tmp_path / "data" / "chestxray")
    x, _ = fx.load_without_cache(tmp_path, monkeypatch, lambda: load_chestxray("test", 8))
    assert x.shape == (3, 1, 8, 8)


@pytest.mark.parametrize("layout", ["tar", "folder"])
def test_verify_catches_a_changed_file(tmp_path, layout):
    folder = tmp_path / "data" / "chestxray"
    images = write_chestxray(folder, layout)
    assert verify_files() == len(NAMES)
    x, _ = load_chestxray("test", verify=True)
    changed = dict(images)
    pixels = fx.decoded(images[NAMES[2]]).copy()
    pixels[0, 0] ^= 1  # one grey level of one pixel: still a valid 128x128 grey PNG
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    changed[NAMES[2]] = buffer.getvalue()
    if layout == "tar":
        fx.write_tar(folder / TAR_NAME, changed)
        where = rf"{TAR_NAME}:{NAMES[2]}"
    else:
        fx.write_folder(folder, changed)
        fx.bump_mtime(folder / NAMES[2])
        where = rf"chestxray/{NAMES[2]}"
    x2, _ = load_chestxray("test")  # trusted by default
    assert (x2 != x).sum() == 1
    fx.expect_data_error(lambda: load_chestxray("test", verify=True),
                         rf"{where}: \d+ bytes with sha256 [0-9a-f]{{64}}, where .*{CSV_NAME} line 4 says "
                         r"\d+ bytes, sha256 [0-9a-f]{64}")


# ---- every error names the file and `make data` ---------------------------------------------------

def expect_error(pattern: str, **kwargs) -> str:
    return fx.expect_data_error(lambda: load_chestxray("train", 8, **kwargs), pattern)


def test_missing_images_or_labels(tmp_path):
    folder = tmp_path / "data" / "chestxray"
    expect_error(rf"chestxray: no images: neither {IMAGE_DIR}/ nor {TAR_NAME} is there")
    folder.mkdir(parents=True)
    images = make_images()
    fx.write_tar(folder / TAR_NAME, images)
    expect_error(rf"chestxray/{CSV_NAME}: file not found; expected the label csv")
    write_csv(folder, csv_lines(images))
    fx.write_tar(folder / TAR_NAME, {n: d for n, d in images.items() if n != NAMES[4]})
    message = expect_error(rf"{TAR_NAME}:{NAMES[4]}: not found, though .*{CSV_NAME} lists it on line 6 "
                           r"\(1 listed image\(s\) missing in all\)")
    assert "expected every image the csv lists" in message
    with pytest.raises(DataError, match="not found, though"):
        verify_files()
    (folder / TAR_NAME).write_bytes(b"not a tar" * 100)
    expect_error(r"cannot be read as an uncompressed tar archive")
    (folder / TAR_NAME).unlink()
    fx.write_folder(folder, {n: d for n, d in images.items() if n != NAMES[0]})
    expect_error(rf"chestxray/{NAMES[0]}: not found, though")


def row_of(lines: list[str], index: int, **changes) -> str:
    """Row ``index`` of the csv with some fields replaced."""
    fields = dict(zip(HEADER.split(","), lines[index].split(","), strict=True))
    fields.update(changes)
    return ",".join(fields.values())


@pytest.mark.parametrize(("edit", "pattern"), [
    (lambda lines: [lines[0].replace(",cardiomegaly", ",label"), *lines[1:]],
     r"line 1: the header lacks the column\(s\) cardiomegaly \(it has path_in_tar, split, label"),
    (lambda lines: [lines[0].replace("split,", "").replace("sha256,", ""), *lines[1:]],
     r"the header lacks the column\(s\) split, sha256"),
    (lambda lines: [*lines[:3], lines[3] + ",extra", *lines[4:]], r"line 4 holds 7 fields; expected 6"),
    (lambda lines: [*lines[:3], lines[3].rsplit(",", 1)[0], *lines[4:]], r"line 4 holds 5 fields"),
    (lambda lines: [*lines[:5], row_of(lines, 5, cardiomegaly="2"), *lines[6:]],
     r"line 6 \(cardiomegaly_128/train/false/3\.png\): cardiomegaly is '2'; expected 0 or 1"),
    (lambda lines: [*lines[:5], row_of(lines, 5, cardiomegaly=""), *lines[6:]], r"cardiomegaly is ''"),
    (lambda lines: [*lines[:5], row_of(lines, 5, cardiomegaly="yes"), *lines[6:]], r"cardiomegaly is 'yes'"),
    (lambda lines: [*lines[:5], row_of(lines, 5, split="val"), *lines[6:]],
     r"line 6 \(cardiomegaly_128/train/false/3\.png\): split is 'val'; expected one of train, test"),
    (lambda lines: [*lines[:5], row_of(lines, 5, split="test"), *lines[6:]],
     r"line 6 \(.*\): split is 'test' but the image lies in the train folder"),
    (lambda lines: [*lines[:5], row_of(lines, 5, cardiomegaly="1"), *lines[6:]],
     r"line 6 \(cardiomegaly_128/train/false/3\.png\): cardiomegaly is 1 but the image lies in the "
     r"'false' folder; expected 1 for true/, 0 for false/"),
    (lambda lines: [*lines[:6], row_of(lines, 6, cardiomegaly="0"), *lines[7:]],
     r"line 7 .*: cardiomegaly is 0 but the image lies in the 'true' folder"),
    (lambda lines: [*lines[:5], row_of(lines, 5, path_in_tar="train/false/3.png"), *lines[6:]],
     r"line 6: path_in_tar is 'train/false/3\.png'; expected cardiomegaly_128/\{train,test\}/"),
    (lambda lines: [*lines[:5], row_of(lines, 5, path_in_tar=NAMES[4].replace("false", "maybe")), *lines[6:]],
     r"path_in_tar is 'cardiomegaly_128/train/maybe/3\.png'"),
    (lambda lines: [*lines[:5], row_of(lines, 5, bytes="-3"), *lines[6:]],
     r"line 6 .*: bytes is '-3'; expected the file size"),
    (lambda lines: [*lines[:5], row_of(lines, 5, sha256="abc"), *lines[6:]],
     r"line 6 .*: sha256 is 'abc'; expected 64 lower-case hex digits"),
    (lambda lines: [*lines, lines[2]],
     r"line 9: cardiomegaly_128/test/false/2\.png already has a row \(line 3\); expected one row per image"),
    (lambda lines: lines[:1], r"the file holds a header but no rows"),
    (lambda lines: ["", ""], r"the file is empty"),
])
def test_malformed_csv(tmp_path, edit, pattern):
    folder = tmp_path / "data" / "chestxray"
    images = write_chestxray(folder)
    path = write_csv(folder, edit(csv_lines(images)))
    assert str(path) in expect_error(pattern)
    with pytest.raises(DataError, match=pattern):
        chestxray_names("test")


def test_binary_csv(tmp_path):
    folder = tmp_path / "data" / "chestxray"
    write_chestxray(folder)
    (folder / CSV_NAME).write_bytes(b"PK\x03\x04\xff")
    expect_error(r"labels_cardiomegaly_128\.csv: not UTF-8 text \(byte 4 is 0xff\)")


@pytest.mark.parametrize("layout", ["tar", "folder"])
def test_unreadable_or_wrong_images(tmp_path, layout):
    folder = tmp_path / "data" / "chestxray"
    rng = np.random.default_rng(5)
    images = make_images()
    folder.mkdir(parents=True)
    write_csv(folder, csv_lines(images))
    bad = NAMES[4]
    place = (lambda imgs: fx.write_tar(folder / TAR_NAME, imgs)) if layout == "tar" else \
        (lambda imgs: fx.write_folder(folder, imgs))
    where = rf"{TAR_NAME}:{bad}" if layout == "tar" else rf"chestxray/{bad}"
    place({**images, bad: images[bad][:200]})
    expect_error(rf"{where}: cannot be decoded \(.*\); expected a 128x128 8-bit grey PNG")
    place({**images, bad: b"\x89PNG\r\n\x1a\n garbage"})
    expect_error(rf"{where}: cannot be decoded")
    place({**images, bad: png(rng, (128, 96))})
    expect_error(rf"{where}: is 128x96 \(width x height\); expected a 128x128 8-bit grey PNG")
    place({**images, bad: png(rng, (256, 256))})
    expect_error(rf"{where}: is 256x256")
    place({**images, bad: png(rng, mode="RGB")})
    expect_error(rf"{where}: has PIL mode 'RGB', not 'L' \(8-bit grey\)")
    place({**images, bad: png(rng, mode="I;16")})
    expect_error(rf"{where}: has PIL mode 'I;16'")
    place({**images, bad: png(rng, mode="LA")})
    expect_error(rf"{where}: has PIL mode 'LA'")
    place({**images, bad: png(rng, fmt="JPEG")})
    expect_error(rf"{where}: is a JPEG image, not a PNG")


def test_bad_arguments(tmp_path):
    write_chestxray(tmp_path / "data" / "chestxray")
    for split in ("val", "all", "Train"):
        with pytest.raises(ValueError, match=f"unknown split '{split}'; choose one of train, test"):
            load_chestxray(split)
    with pytest.raises(ValueError, match="unknown split"):
        chestxray_names("val")
    for size in (0, 129, 256, 64.0, True, "64", None):
        with pytest.raises(ValueError, match=r"size must be an integer from 1 to 128 .*got"):
            load_chestxray("train", size)
    assert load_chestxray("train", np.int64(4))[0].shape == (4, 1, 4, 4)


def test_registry_entry_and_fetch(tmp_path):
    ds = fx.fetched_from_mirror(tmp_path, "chestxray", write_chestxray,
                                extras=("PROVENANCE.md", "nih_id_matches_partial.csv"))
    assert set(ds.files) == {TAR_NAME, CSV_NAME} and ds.checksum == "sha256" and ds.url is None
    assert ds.folder == "chestxray" and "not CheXpert" in ds.description
    assert ds.loader_function() is load_chestxray
    assert len(fetch.checksum_notes(ds)) == 2  # the fixtures are not the mirror's files
    x, y = ds.load("test", 8)
    assert x.shape == (3, 1, 8, 8) and y.tolist() == [0, 0, 1]
