"""The arrays `wpk run` reads and writes: `--input NAME=@x.npy`, `--inputs feeds.npz` and
`--output DIR|FILE.npz` (like `iree-run-module --input=@x.npy` and `tvmc run --inputs`).

Files are read through `woodpecker.runtime.bundle` (regular files only, no pickles, each
`.npy` header checked against the model's input by `woodpecker.runtime.feeds.check_feed`
before its data is read); every problem is a `UsageError` naming the option, the file and
the input.
"""

from __future__ import annotations

import argparse
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from woodpecker.cli.parsing import UsageError
from woodpecker.errors import InputError
from woodpecker.runtime import bundle
from woodpecker.runtime.feeds import InputSpec, check_feed


@dataclass(frozen=True)
class FeedFile:
    """`--input NAME=@FILE`: the array in FILE (.npy) feeds the input NAME."""

    name: str
    path: Path

    @property
    def option(self) -> str:
        return f"argument --input {self.name}=@{self.path}"


def parse_input_file(text: str) -> FeedFile:
    """'x=@x.npy' -> FeedFile('x', Path('x.npy'))."""
    name, sep, path = text.partition("=@")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"bad --input '{text}': expected NAME=@FILE.npy, e.g. input=@x.npy")
    return FeedFile(name, Path(path))


def output_path(text: str) -> Path:
    """`--output`: a FILE.npz (its folder must exist) or a directory (need not exist yet),
    never an existing file where a directory is meant."""
    path = Path(text)
    if path.suffix == ".npz":
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"'{text}' is a directory, not a .npz file")
        if not path.parent.is_dir():
            raise argparse.ArgumentTypeError(f"'{path.parent}', the folder of '{text}', is not a directory")
        return path
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' exists and is not a directory (name a FILE.npz for one archive)")
    return path


@dataclass(frozen=True)
class Feed:
    """An input's array and where it came from (for the messages)."""

    array: np.ndarray
    source: str


def load_feeds(files: Sequence[FeedFile], archive: Path | None, specs: Sequence[InputSpec]) -> dict[str, Feed]:
    """The arrays of `--input` files and the `--inputs` archive by input name, each checked
    against the model's input (name, dtype, shape: `specs`, open dimensions take any size)
    before its data is read."""
    by_name = {spec.name: spec for spec in specs}
    feeds: dict[str, Feed] = {}
    for feed in files:
        spec = by_name.get(feed.name)
        if spec is None:
            raise UsageError(f"{feed.option}: the model has no input '{feed.name}'; its inputs are {list(by_name)}")
        if feed.name in feeds:
            raise UsageError(f"{feed.option}: input '{feed.name}' is given twice")
        try:
            array = bundle.load_npy_file(
                feed.path, UsageError, lambda header, s=spec, p=feed.path: check_feed(s, header.dtype, header.shape, p)
            )
        except (UsageError, InputError) as err:
            raise UsageError(f"{feed.option}: {err}") from None
        feeds[feed.name] = Feed(array, str(feed.path))
    if archive is not None:
        option = f"argument --inputs {archive}"

        def accept(key: str, header: bundle.NpyHeader) -> None:
            if key not in by_name:
                raise UsageError(f"array '{key}' names no input of the model; its inputs are {list(by_name)}")
            if key in feeds:
                raise UsageError(f"input '{key}' is also given by --input {key}=@{feeds[key].source}")
            check_feed(by_name[key], header.dtype, header.shape, f"{archive}[{key}]")

        try:
            arrays = bundle.load_npz_file(archive, UsageError, accept)
        except (UsageError, InputError) as err:
            raise UsageError(f"{option}: {err}") from None
        feeds.update({key: Feed(array, f"{archive}[{key}]") for key, array in arrays.items()})
    return feeds


def check_writable_names(path: Path, names: Sequence[str]) -> None:
    """Every output name becomes a file name in a directory `--output`: refuse, before anything
    runs, a name that is not one plain file name."""
    if path.suffix == ".npz":
        return
    for name in names:
        try:
            bundle.checked_name(name, UsageError, what="output name")
        except UsageError as err:
            raise UsageError(
                f"argument --output {path}: {err}; name a FILE.npz to write the outputs into one archive"
            ) from None


def write_outputs(path: Path, outputs: Mapping[str, np.ndarray]) -> list[Path]:
    """`<name>.npy` per output in the directory `path` (created), or one archive `path`.npz
    (written to a temporary name, then renamed); the files written."""
    if path.suffix == ".npz":
        partial = path.with_name(path.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, array in outputs.items():
                with archive.open(name + ".npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(partial, path)
        return [path]
    path.mkdir(parents=True, exist_ok=True)
    written = []
    for name, array in outputs.items():
        target = path / f"{name}.npy"
        np.save(target, array, allow_pickle=False)
        written.append(target)
    return written
