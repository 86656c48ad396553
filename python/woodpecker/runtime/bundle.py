"""Reading and writing the files of a saved directory (a plan, a kernels-only model, a
measurement batch, a tuning candidate, a deployable CPU model) without trusting them.

Every format that a manifest describes reads through here, so one set of rules holds for all:
- a path named by a manifest is a plain relative name that stays inside its directory once
  resolved (no absolute path, no `..`, no symbolic link out of it) and is a regular file (not
  a FIFO, a device or a directory) no larger than the bound the caller states;
- a manifest is a JSON object of bounded size and nesting depth;
- arrays are `.npy` files (or `.npz` archives of them: `wpk run --inputs`) read without
  pickles, their header checked against the dtype and size the manifest (or the model input)
  promises before any data is read, from regular files only (a FIFO never blocks the read);
- a name that becomes a file name on writing (a kernel's entry, a study's name) is checked to be
  one plain file name.

Each function takes the caller's error type (`PlanError`, `ManifestError`, ...) and raises it
with one line naming the file and the problem. No MLIR here: the runtime layer uses it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MAX_MANIFEST_BYTES = 64 << 20
MAX_JSON_DEPTH = 64
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")


def checked_name(name: object, error: type[Exception], what: str = "name") -> str:
    """`name` when it is one plain file name ([A-Za-z0-9_.-], not starting with '.' or '-', at
    most 200 characters); `error` otherwise. Use it on every name that becomes a file name."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise error(f"{what} {name!r} is not a plain file name ([A-Za-z0-9_.-], at most 200 characters)")
    return name


def member(
    directory: str | os.PathLike,
    name: object,
    error: type[Exception],
    *,
    max_bytes: int | None = None,
    size: int | None = None,
) -> Path:
    """The path of the file `name` (as a manifest wrote it) inside `directory`, checked: a
    relative path that stays inside the directory after resolving links, a regular file, at
    most `max_bytes` (or exactly `size`) bytes."""
    root = Path(directory)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise error(f"{root}: file name {name!r} is not a relative path")
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise error(f"{root}: file {name!r} lies outside the directory")
    try:
        base = root.resolve(strict=True)
        path = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError) as err:
        raise error(f"{root / name}: cannot be read ({_reason(err)})") from None
    if path != base and base not in path.parents:
        raise error(f"{root}: file {name!r} lies outside the directory (it resolves to {path})")
    try:
        info = os.stat(path)
    except OSError as err:
        raise error(f"{root / name}: cannot be read ({_reason(err)})") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{root / name}: not a regular file")
    if size is not None and info.st_size != size:
        raise error(f"{root / name}: {info.st_size} bytes, the manifest says {size}")
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(f"{root / name}: {info.st_size} bytes, more than the {max_bytes} allowed")
    return path


def read_regular_file(path: str | os.PathLike, error: type[Exception], *, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of the file at `path` (not inside a saved directory: a path the user gave),
    checked: a regular file (a FIFO, a device or a directory is refused without reading or
    blocking on it) of at most `max_bytes` bytes."""
    name = os.fspath(path)
    try:
        fd, mode = _open_fd(name, follow_links=True)
    except OSError as err:
        raise error(f"cannot read {what} '{name}': {_reason(err)}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"cannot read {what} '{name}': {file_kind(mode)}, not a regular file")
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise error(f"cannot read {what} '{name}': {size} bytes, more than the {max_bytes} allowed")
        try:
            data = f.read(max_bytes + 1)
        except OSError as err:
            raise error(f"cannot read {what} '{name}': {_reason(err)}") from None
    if len(data) > max_bytes:
        raise error(f"cannot read {what} '{name}': more than the {max_bytes} bytes allowed")
    return data


def read_range(path: Path, error: type[Exception], *, offset: int, length: int | None, max_bytes: int) -> bytes:
    """`length` bytes (None: to the end) at `offset` of the regular file `path` (a checked
    `member`), at most `max_bytes`; the file must hold them."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            length = size - offset if length is None else length
            if offset < 0 or length < 0 or offset + length > size:
                raise error(f"{path}: bytes [{offset}, {offset + length}) lie outside its {size} bytes")
            if length > max_bytes:
                raise error(f"{path}: {length} bytes, more than the {max_bytes} allowed")
            f.seek(offset)
            data = f.read(length)
    except OSError as err:
        raise error(f"{path}: cannot be read ({_reason(err)})") from None
    if len(data) != length:
        raise error(f"{path}: truncated ({length} bytes expected at offset {offset})")
    return data


def file_kind(mode: int) -> str:
    """'a directory', 'a FIFO', 'a character device', ... for a file mode that is not a regular file."""
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((text for test, text in kinds if test(mode)), "a special file")


def read_bytes(directory: str | os.PathLike, name: object, error: type[Exception], *, max_bytes: int) -> bytes:
    """The bytes of the checked member `name` (see `member`)."""
    path = member(directory, name, error, max_bytes=max_bytes)
    try:
        with open_regular(path, error, follow_links=False) as f:
            data = f.read(max_bytes + 1)
    except error:
        raise
    except OSError as err:
        raise error(f"{path}: cannot be read ({_reason(err)})") from None
    if len(data) > max_bytes:
        raise error(f"{path}: more than the {max_bytes} bytes allowed")
    return data


def read_text(directory: str | os.PathLike, name: object, error: type[Exception], *, max_bytes: int) -> str:
    """The UTF-8 text of the checked member `name`."""
    data = read_bytes(directory, name, error, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{Path(directory) / str(name)}: not UTF-8 text") from None


def read_json(
    directory: str | os.PathLike, name: str, error: type[Exception], *, max_bytes: int = MAX_MANIFEST_BYTES
) -> dict[str, Any]:
    """The JSON object in the checked member `name`: at most `max_bytes`, nested at most
    MAX_JSON_DEPTH deep, an object at the top."""
    text = read_text(directory, name, error, max_bytes=max_bytes)
    path = Path(directory) / name
    try:
        data = json.loads(text)
    except RecursionError:
        raise error(f"{path}: nested more than {MAX_JSON_DEPTH} deep") from None
    except ValueError as err:
        raise error(f"{path}: not JSON ({err})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: a JSON {type(data).__name__}, not an object")
    if _depth(data) > MAX_JSON_DEPTH:
        raise error(f"{path}: nested more than {MAX_JSON_DEPTH} deep")
    return data


@dataclass(frozen=True)
class NpyHeader:
    """What a `.npy` header promises: the shape, the dtype, the memory order."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool

    @property
    def nbytes(self) -> int:
        count = 1
        for extent in self.shape:
            count *= int(extent)
        return count * self.dtype.itemsize


def read_npy_header(f: BinaryIO, path: str | os.PathLike, error: type[Exception]) -> NpyHeader:
    """The header at the start of the open `.npy` stream `f`; `error` for anything that is not
    a plain (no object, no pickle) array header."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"npy version {version}")
    except (OSError, ValueError) as err:
        raise error(f"{path}: not a .npy array ({_reason(err)})") from None
    if dtype.hasobject:
        raise error(f"{path}: {dtype} data holds Python objects (pickles are not read)")
    return NpyHeader(tuple(int(d) for d in shape), dtype, bool(fortran))


def _read_data(
    f: BinaryIO, header: NpyHeader, available: int, path: str | os.PathLike, error: type[Exception]
) -> np.ndarray:
    """The data after `header` in `f`, of which `available` bytes are left: exactly
    header.nbytes bytes, else `error` (truncated; checked before anything is allocated)."""
    if available < header.nbytes:
        raise error(f"{path}: truncated ({header.nbytes} bytes of data expected, {max(available, 0)} there)")
    data = np.empty(header.nbytes // header.dtype.itemsize if header.dtype.itemsize else 0, dtype=header.dtype)
    view = memoryview(data).cast("B") if data.nbytes else memoryview(b"")
    try:
        got = 0
        while got < header.nbytes:
            step = f.readinto(view[got:])
            if not step:
                break
            got += step
    except OSError as err:
        raise error(f"{path}: cannot be read ({_reason(err)})") from None
    if got < header.nbytes:
        raise error(f"{path}: truncated ({header.nbytes} bytes of data expected, {got} there)")
    return data.reshape(header.shape, order="F" if header.fortran else "C")


def load_npy(
    directory: str | os.PathLike,
    name: object,
    error: type[Exception],
    *,
    dtype: np.dtype | type | str,
    nbytes: int | None = None,
    max_bytes: int | None = None,
) -> np.ndarray:
    """The array in the checked `.npy` member `name`: no pickles, the header's dtype must be
    `dtype` and its size `nbytes` (or at most `max_bytes`), checked before the data is read."""
    path = member(directory, name, error)
    want = np.dtype(dtype)

    def accept(header: NpyHeader) -> None:
        if header.dtype != want:
            raise error(f"{path}: {header.dtype} data, expected {want}")
        if nbytes is not None and header.nbytes != nbytes:
            raise error(f"{path}: {header.nbytes} bytes of {want}, the manifest says {nbytes}")
        if max_bytes is not None and header.nbytes > max_bytes:
            raise error(f"{path}: {header.nbytes} bytes, more than the {max_bytes} allowed")

    return load_npy_file(path, error, accept, follow_links=False)


def open_regular(path: str | os.PathLike, error: type[Exception], *, follow_links: bool = True) -> BinaryIO:
    """`path` opened for reading if it is a regular file (a FIFO, a device or a directory is
    `error`, and opening never blocks on one). follow_links=False for a checked `member`: a
    link that replaced the file since `member` resolved it is refused too."""
    try:
        fd, mode = _open_fd(path, follow_links=follow_links)
    except OSError as err:
        raise error(f"{path}: cannot be read ({_reason(err)})") from None
    try:
        if not stat.S_ISREG(mode):
            raise error(f"{path}: not a regular file ({file_kind(mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _open_fd(path: str | os.PathLike, *, follow_links: bool) -> tuple[int, int]:
    """A read-only descriptor of `path`, opened without blocking (a FIFO has no writer to wait
    for) nor becoming a controlling terminal, and its file mode; OSError as os.open raises it."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        return fd, os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise


def load_npy_file(
    path: str | os.PathLike,
    error: type[Exception],
    accept: Callable[[NpyHeader], None] | None = None,
    *,
    follow_links: bool = True,
) -> np.ndarray:
    """The array in the `.npy` file `path` (a regular file, no pickles); `accept` sees the
    header before any data is read and raises to refuse it (follow_links: see open_regular)."""
    with open_regular(path, error, follow_links=follow_links) as f:
        header = read_npy_header(f, path, error)
        if accept is not None:
            accept(header)
        return _read_data(f, header, os.fstat(f.fileno()).st_size - f.tell(), path, error)


def load_npz_file(
    path: str | os.PathLike,
    error: type[Exception],
    accept: Callable[[str, NpyHeader], None] | None = None,
    *,
    max_arrays: int = 4096,
    follow_links: bool = True,
) -> dict[str, np.ndarray]:
    """The arrays of the `.npz` archive `path` (a regular file; members `<key>.npy`, no
    pickles) by key; `accept` sees each key and header before its data is read (follow_links:
    see open_regular)."""
    with open_regular(path, error, follow_links=follow_links) as f:
        try:
            archive = zipfile.ZipFile(f)
        except (OSError, zipfile.BadZipFile) as err:
            raise error(f"{path}: not a .npz archive ({_reason(err)})") from None
        with archive:
            members = archive.infolist()
            if len(members) > max_arrays:
                raise error(f"{path}: {len(members)} arrays, more than the {max_arrays} allowed")
            arrays: dict[str, np.ndarray] = {}
            for info in members:
                key = info.filename.removesuffix(".npy")
                where = f"{path}[{key}]"
                try:
                    with archive.open(info) as stream:
                        header = read_npy_header(stream, where, error)  # type: ignore[arg-type]
                        if accept is not None:
                            accept(key, header)
                        left = info.file_size - stream.tell()
                        arrays[key] = _read_data(stream, header, left, where, error)  # type: ignore[arg-type]
                except (OSError, zipfile.BadZipFile, NotImplementedError) as err:
                    raise error(f"{where}: cannot be read ({_reason(err)})") from None
    return arrays


def field(data: Any, key: str, kind: type | tuple[type, ...], error: type[Exception], where: str) -> Any:
    """`data[key]` when `data` is an object holding a value of `kind` there; `error` naming
    `where` otherwise (bool is not accepted as an int)."""
    if not isinstance(data, dict):
        raise error(f"{where}: a JSON object expected, not {type(data).__name__}")
    if key not in data:
        raise error(f"{where}: missing {key!r}")
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise error(f"{where}: {key!r} is {type(value).__name__} {value!r:.60}, not {names}")
    return value


MAX_EXTENT = (1 << 31) - 1


def integer(value: Any, error: type[Exception], where: str, *, minimum: int = 0, maximum: int = 1 << 48) -> int:
    """`value` when it is an int (not a bool, not a float) in [minimum, maximum]; `error` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{where}: {type(value).__name__} {value!r:.60}, not an integer")
    if not minimum <= value <= maximum:
        raise error(f"{where}: {value} is outside [{minimum}, {maximum}]")
    return value


def integers(
    value: Any,
    error: type[Exception],
    where: str,
    *,
    length: int | None = None,
    minimum: int = 0,
    maximum: int = MAX_EXTENT,
    max_length: int = 16,
) -> tuple[int, ...]:
    """`value` as a tuple of ints (a JSON list of `length`, or at most `max_length`, integers in
    [minimum, maximum]: a shape, a grid); `error` otherwise."""
    if not isinstance(value, list):
        raise error(f"{where}: {type(value).__name__} {value!r:.60}, not a list of integers")
    if (length is not None and len(value) != length) or len(value) > max_length:
        raise error(f"{where}: {len(value)} entries, expected {length if length is not None else max_length}")
    return tuple(integer(v, error, f"{where}[{i}]", minimum=minimum, maximum=maximum) for i, v in enumerate(value))


def text_field(data: Any, key: str, error: type[Exception], where: str, choices: tuple[str, ...] = ()) -> str:
    """The string `data[key]` (one of `choices` when given)."""
    value = field(data, key, str, error, where)
    if choices and value not in choices:
        raise error(f"{where}: {key!r} is {value!r:.60}, not one of {', '.join(choices)}")
    return value


def objects(data: Any, key: str, error: type[Exception], where: str) -> list[dict[str, Any]]:
    """The list of JSON objects `data[key]`."""
    items = field(data, key, list, error, where)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise error(f"{where}: {key}[{i}] is {type(item).__name__}, not a JSON object")
    return items


def optional(data: Any, key: str, kind: type | tuple[type, ...], error: type[Exception], where: str) -> Any:
    """`data[key]` checked as in `field`, or None when it is missing or null."""
    if isinstance(data, dict) and data.get(key) is None:
        return None
    return field(data, key, kind, error, where)


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        nxt: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                nxt.extend(item.values())
            elif isinstance(item, list):
                nxt.extend(item)
        level = nxt
    return depth - 1


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__
