"""Assemble the data root (``$DIFFCF_DATA``) in each registered dataset's original layout.

From a local mirror folder (how is the dataset's ``assemble``: symlinks, or ``--copy`` to copy), or,
only when asked with ``--download``, from its public source (:mod:`diffcf.data.registry`)::

    python -m diffcf.data.fetch mnist --mirror ../shared/data/mnist
    python -m diffcf.data.fetch mnist --download
    python -m diffcf.data.fetch --all --mirror-root ../shared/data    # what `make data` runs
    python -m diffcf.data.fetch --list

A mirror may hold a file under another name (a registry alias; MNIST's train images as
``train-images-idx3-ubyte.APPROX_from_png.gz``, a reconstruction from PNGs, see its PROVENANCE.md);
it is placed under the original name. Each placed file's checksum is compared with the original's
and a difference is reported (a mirror copy may be re-compressed or approximate). Nothing is
touched when the mirror is the destination itself, and every file is replaced atomically.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from diffcf.data.registry import DATASETS, Dataset, get
from diffcf.utils import atomic_write, file_digest, project_root


class FetchError(RuntimeError):
    """A dataset could not be assembled; the message says why and what to do instead."""


def default_mirror_root() -> Path:
    """``$DIFFCF_MIRROR``, else ``shared/data`` beside the project (the Makefile's ``MIRROR``)."""
    return Path(os.environ.get("DIFFCF_MIRROR", project_root().parent / "shared" / "data"))


def _entry(path: Path) -> Path:
    """Where the directory entry ``path`` really is: its folder resolved, the name kept (a symlink
    stays the link, not its target)."""
    return path.parent.resolve() / path.name


def _find_in_mirror(ds: Dataset, mirror: Path, name: str) -> Path | None:
    for candidate in (name, *ds.aliases.get(name, ())):
        if (mirror / candidate).is_file():
            return (mirror / candidate).resolve()
    return None


def _check_not_same(mirror: Path, dest: Path, placed: dict[str, Path]) -> None:
    """Refuse (before touching anything) when the destination is the mirror itself: replacing a file
    by a link to itself, or by a copy of itself, destroys it."""
    same_folder = mirror.resolve() == dest.resolve() or (dest.is_dir() and os.path.samefile(mirror, dest))
    if same_folder:
        raise FetchError(
            f"the mirror {mirror} and the destination {dest} are the same folder "
            f"({dest.resolve()}); linking or copying its files onto themselves would destroy them. "
            "Nothing was changed. Point --mirror at the folder holding the original files "
            "(e.g. ../shared/data/<dataset>) or --dest at another folder.")
    for name, src in placed.items():
        target = dest / name
        if _entry(target) == src or (target.exists() and not target.is_symlink()
                                     and os.path.samefile(target, src)):
            raise FetchError(
                f"{target} is the mirror's file {src} itself; replacing it would destroy it. "
                "Nothing was changed. Point --mirror at the folder holding the original files.")


def _atomic_symlink(src: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    os.symlink(src, tmp)
    os.replace(tmp, target)


def assemble_from_mirror(ds: Dataset, mirror: str | Path, dest: str | Path | None = None,
                         copy: bool | None = None) -> Path:
    """Place the files of ``ds`` from the folder ``mirror`` into ``dest`` (default its data-root
    folder, ``$DIFFCF_DATA/<folder>``) under their original names: symlinks to the resolved mirror
    files, or copies (``copy``; default the dataset's ``assemble``). Every file must be found, and
    the mirror must not be the destination, before any file is placed; return ``dest``."""
    mirror = Path(mirror)
    dest = Path(dest) if dest is not None else ds.path()
    copy = ds.assemble == "copy" if copy is None else copy
    if not mirror.is_dir():
        raise FetchError(f"mirror folder {mirror} does not exist")
    sources = {name: _find_in_mirror(ds, mirror, name) for name in ds.files}
    missing = [name for name, src in sources.items() if src is None]
    if missing:
        tried = "; ".join(" or ".join((n, *ds.aliases.get(n, ()))) for n in missing)
        raise FetchError(f"mirror {mirror} lacks {len(missing)} file(s) of {ds.name}: {tried}")
    sources.update({name: (mirror / name).resolve() for name in ds.extras if (mirror / name).is_file()})
    _check_not_same(mirror, dest, sources)
    dest.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():
        target = dest / name
        if copy:
            atomic_write(target, lambda p, src=src: shutil.copyfile(src, p))
        elif not (target.is_symlink() and target.resolve() == src):
            _atomic_symlink(src, target)
    return dest


def checksum_notes(ds: Dataset, folder: str | Path | None = None) -> list[str]:
    """One line per file of ``ds`` in ``folder`` whose checksum differs from the original's."""
    folder = Path(folder) if folder is not None else ds.path()
    notes = []
    for name, expected in ds.files.items():
        digest = file_digest(folder / name, ds.checksum)
        if digest != expected:
            notes.append(f"note: {name} is not the original file ({ds.checksum} {digest}, original "
                         f"{expected}); see PROVENANCE.md beside it for what this copy is")
    return notes


def download(ds: Dataset, dest: str | Path | None = None, url: str | None = None) -> Path:
    """Download the files of ``ds`` from ``url`` (default its registered ``url``) into ``dest``
    (default ``$DIFFCF_DATA/<folder>``), each checked against the original's checksum before it
    replaces anything; files already there with the right checksum are kept. Network access happens
    only here, and only when called."""
    url = url or ds.url
    dest = Path(dest) if dest is not None else ds.path()
    if url is None:
        raise FetchError(f"{ds.name} has no public download source; assemble it from a mirror "
                         f"(make data, or python -m diffcf.data.fetch {ds.name} --mirror DIR)")
    for name, expected in ds.files.items():
        target = dest / name
        if target.is_file() and file_digest(target, ds.checksum) == expected:
            continue
        source = url + name
        print(f"downloading {source}")

        def fetch_one(tmp: Path, source: str = source, name: str = name, expected: str = expected) -> None:
            try:
                urllib.request.urlretrieve(source, tmp)
            except (urllib.error.URLError, OSError) as err:
                reason = getattr(err, "reason", None) or err
                raise FetchError(
                    f"cannot download {source}: {reason}. Instead, assemble {ds.name} from a local "
                    f"mirror (make data MIRROR=DIR, or python -m diffcf.data.fetch {ds.name} "
                    f"--mirror DIR), or place the files by hand in {dest}: "
                    f"{', '.join(ds.files)}") from err
            digest = file_digest(tmp, ds.checksum)
            if digest != expected:
                raise FetchError(f"{source}: {ds.checksum} {digest} does not match the original "
                                 f"{expected}; nothing was replaced")

        atomic_write(target, fetch_one)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffcf.data.fetch",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"registered datasets ({', '.join(DATASETS)})")
    parser.add_argument("--all", action="store_true",
                        help="every registered dataset whose folder exists under --mirror-root")
    parser.add_argument("--list", action="store_true", help="list the registered datasets")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--mirror", type=Path, help="a local folder holding one dataset's files")
    source.add_argument("--download", action="store_true",
                        help="download from the public source (needs network access)")
    parser.add_argument("--mirror-root", type=Path, default=None,
                        help="a folder holding one mirror folder per dataset (default "
                             "$DIFFCF_MIRROR or shared/data beside the project)")
    parser.add_argument("--dest", type=Path, default=None,
                        help="target folder (default: $DIFFCF_DATA/<folder>)")
    parser.add_argument("--copy", action="store_true", help="copy instead of symlinking")
    parser.add_argument("--if-missing", action="store_true",
                        help="skip, silently, datasets whose files are all in place already")
    args = parser.parse_args(argv)
    if args.list:
        for ds in DATASETS.values():
            print(f"{ds.name:10s} {ds.folder + '/':12s} {ds.description}")
        return 0
    root = args.mirror_root if args.mirror_root is not None else default_mirror_root()
    try:
        if args.all:
            if args.names or args.mirror or args.download or args.dest:
                parser.error("--all takes no NAME, --mirror, --download or --dest")
            chosen = [ds for ds in DATASETS.values() if (root / ds.folder).is_dir()]
            if not chosen and not args.if_missing:
                raise FetchError(f"no registered dataset has a mirror folder under {root} "
                                 f"(looked for {', '.join(ds.folder + '/' for ds in DATASETS.values())})")
        else:
            if not args.names:
                parser.error("name a dataset, or give --all or --list")
            chosen = [get(name) for name in args.names]
            if len(chosen) > 1 and (args.mirror or args.dest):
                parser.error("--mirror and --dest take one dataset at a time")
        for ds in chosen:
            dest = args.dest if args.dest is not None else ds.path()
            if args.if_missing and not ds.missing(dest):
                continue
            if args.download:
                dest = download(ds, dest)
            else:
                dest = assemble_from_mirror(ds, args.mirror or root / ds.folder, dest,
                                            copy=True if args.copy else None)
            for line in checksum_notes(ds, dest):
                print(line)
            print(f"{ds.name} ready in {dest}")
    except (FetchError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
