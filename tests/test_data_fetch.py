"""The dataset registry and the fetch tool behind `make data`: assembling from a mirror, refusing when
the mirror is the destination (data loss), offline downloads, checksums, `--all` / `--if-missing`.
The files here are arbitrary bytes: the tool never parses them (the reader: test_mnist_data.py)."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from diffcf.data import fetch
from diffcf.data.registry import DATASETS, Dataset, get, register

MNIST = get("mnist")


def write_files(folder: Path, names, tag: str = "") -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    content = {name: f"{tag}{name}".encode() * 100 for name in names}
    for name, data in content.items():
        (folder / name).write_bytes(data)
    return content


def snapshot(folder: Path) -> dict[str, tuple[str | None, bytes]]:
    """Every entry of ``folder``: its link target (None for a file) and the bytes it reads as."""
    return {p.name: (os.readlink(p) if p.is_symlink() else None, p.read_bytes())
            for p in sorted(folder.iterdir())}


def fake_dataset(tmp_path: Path) -> Dataset:
    names = ("a.bin", "b.bin")
    content = write_files(tmp_path / "source", names)
    files = {n: hashlib.md5(content[n]).hexdigest() for n in names}
    return Dataset(name="fake", folder="fake", files=files, loader="builtins:print",
                   url=(tmp_path / "source").as_uri() + "/")


@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlinked"])
def test_refuses_when_mirror_is_the_data_folder(tmp_path, monkeypatch, capsys, copy, spelling):
    """`fetch mnist --mirror $DIFFCF_DATA/mnist` used to print "mnist ready" and turn every file into
    a link to itself (with --copy: delete it). Now it refuses and touches nothing, whatever the
    spelling of the path, for real files and for links into a mirror alike."""
    monkeypatch.setenv("DIFFCF_DATA", str(tmp_path / "data"))
    write_files(tmp_path / "shared", MNIST.files)
    data = tmp_path / "data" / "mnist"
    fetch.assemble_from_mirror(MNIST, tmp_path / "shared", data)  # links into the mirror
    (data / "t10k-images-idx3-ubyte.gz").unlink()
    write_files(data, ["t10k-images-idx3-ubyte.gz"], tag="real file ")  # and one real file
    before = snapshot(data)
    mirror = {"same": data, "dotdot": data / ".." / "mnist", "symlinked": tmp_path / "alias"}[spelling]
    if spelling == "symlinked":
        mirror.symlink_to(data)
    argv = ["mnist", "--mirror", str(mirror)] + (["--copy"] if copy else [])
    assert fetch.main(argv) == 1
    out = capsys.readouterr()
    assert "same folder" in out.err and "Nothing was changed" in out.err and "ready" not in out.out
    assert snapshot(data) == before


def test_refuses_a_mirror_whose_files_are_the_destination(tmp_path):
    """A mirror folder of links to the destination's files is the destination, file by file."""
    dest = tmp_path / "dest"
    write_files(dest, MNIST.files)
    before = snapshot(dest)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in MNIST.files:
        (mirror / name).symlink_to(dest / name)
    for copy in (False, True):
        with pytest.raises(fetch.FetchError, match="itself.*Nothing was changed"):
            fetch.assemble_from_mirror(MNIST, mirror, dest, copy=copy)
    assert snapshot(dest) == before


def test_link_then_copy_keeps_the_mirror(tmp_path):
    mirror, dest = tmp_path / "mirror", tmp_path / "dest"
    content = write_files(mirror, [*MNIST.files, "PROVENANCE.md"])
    fetch.assemble_from_mirror(MNIST, mirror, dest)
    fetch.assemble_from_mirror(MNIST, mirror, dest)  # again: the links stay as they are
    assert all((dest / n).is_symlink() and (dest / n).resolve() == (mirror / n).resolve() for n in content)
    fetch.assemble_from_mirror(MNIST, mirror, dest, copy=True)  # links replaced by copies
    assert all(not (dest / n).is_symlink() and (dest / n).read_bytes() == content[n] for n in content)
    assert {n: (mirror / n).read_bytes() for n in content} == content
    assert sorted(p.name for p in dest.iterdir()) == sorted(content)  # no temporary files left


def test_missing_mirror_files_are_all_named_before_anything_is_placed(tmp_path):
    mirror = tmp_path / "mirror"
    write_files(mirror, ["train-labels-idx1-ubyte.gz"])
    with pytest.raises(fetch.FetchError, match=r"lacks 3 file\(s\).*APPROX_from_png.*t10k-labels"):
        fetch.assemble_from_mirror(MNIST, mirror, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_download_offline_is_one_clear_error(tmp_path, monkeypatch, capsys):
    """Offline, `--download` used to end in urllib's traceback; now one message names the URL and
    the alternatives, and a file already in place is kept."""
    def offline(url, filename=None, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlretrieve", offline)
    dest = tmp_path / "mnist"
    kept = write_files(dest, ["train-images-idx3-ubyte.gz"], tag="earlier ")
    assert fetch.main(["mnist", "--download", "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1
    assert f"cannot download {MNIST.url}train-images-idx3-ubyte.gz" in err
    assert "name resolution" in err and "--mirror DIR" in err and "place the files by hand" in err
    assert snapshot(dest) == {n: (None, b) for n, b in kept.items()}


def test_download_checks_checksums_before_replacing(tmp_path):
    ds = fake_dataset(tmp_path)
    dest = fetch.download(ds, tmp_path / "dest")  # a file:// URL: no network
    assert snapshot(dest) == snapshot(tmp_path / "source")
    assert fetch.checksum_notes(ds, dest) == []
    (dest / "a.bin").write_bytes(b"stale")
    (tmp_path / "source" / "a.bin").write_bytes(b"corrupt at the source")
    with pytest.raises(fetch.FetchError, match="a.bin: md5 .* does not match .*nothing was replaced"):
        fetch.download(ds, dest)
    assert (dest / "a.bin").read_bytes() == b"stale"
    assert sorted(p.name for p in dest.iterdir()) == ["a.bin", "b.bin"]
    no_url = Dataset(name="x", folder="x", files={}, loader="builtins:print")
    with pytest.raises(fetch.FetchError, match="no public download source"):
        fetch.download(no_url, tmp_path / "x")


def test_all_assembles_every_mirrored_dataset_once(tmp_path, monkeypatch, capsys):
    """What `make data` and `make data-if-mirror` run."""
    monkeypatch.setenv("DIFFCF_DATA", str(tmp_path / "data"))
    root = tmp_path / "shared"
    write_files(root / "mnist", MNIST.files)
    assert fetch.main(["--all", "--mirror-root", str(root)]) == 0
    assert "mnist ready" in capsys.readouterr().out
    before = snapshot(tmp_path / "data" / "mnist")
    os.utime(tmp_path / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz", (0, 0), follow_symlinks=False)
    assert fetch.main(["--all", "--mirror-root", str(root), "--if-missing"]) == 0
    assert capsys.readouterr().out == ""  # complete: not assembled again
    assert snapshot(tmp_path / "data" / "mnist") == before
    assert os.lstat(tmp_path / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz").st_mtime == 0
    assert fetch.main(["--all", "--mirror-root", str(tmp_path / "none"), "--if-missing"]) == 0
    assert fetch.main(["--all", "--mirror-root", str(tmp_path / "none")]) == 1
    assert "no registered dataset has a mirror folder" in capsys.readouterr().err


def test_cli_errors(capsys):
    assert fetch.main(["fashion", "--mirror", "x"]) == 1
    registered = ", ".join(sorted(DATASETS))
    assert f"unknown dataset 'fashion'; registered: {registered}" in capsys.readouterr().err
    for argv in ([], ["--all", "mnist"], ["mnist", "mnist", "--mirror", "x"]):
        with pytest.raises(SystemExit):
            fetch.main(argv)
    assert fetch.main(["--list"]) == 0
    assert capsys.readouterr().out.startswith("mnist")


def test_registry_rejects_bad_entries(tmp_path):
    with pytest.raises(ValueError, match="clashes"):
        register(Dataset(name="mnist2", folder="mnist", files={}, loader="m:f"))
    with pytest.raises(ValueError, match="assemble must be"):
        Dataset(name="y", folder="y", files={}, loader="m:f", assemble="extract")
    with pytest.raises(ValueError, match="module:function"):
        Dataset(name="y", folder="y", files={}, loader="load_y")
    with pytest.raises(ValueError, match="aliases for files it does not have"):
        Dataset(name="y", folder="y", files={"a": "0"}, loader="m:f", aliases={"b": ("c",)})
    before = list(DATASETS)
    with pytest.raises(ValueError, match="clashes"):
        register(Dataset(name="mnist", folder="elsewhere", files={}, loader="m:f"))
    assert list(DATASETS) == before  # nothing registered by the failed calls
    assert "mnist2" not in DATASETS and "y" not in DATASETS
