"""A compiled CPU model saved as a directory, and running it with numpy and ctypes (no MLIR).

    manifest.json   format and version; inputs and outputs (names, dtypes, shapes); the shared
                    library (file, bytes, sha256, entry symbol, calling convention); the CPU it
                    was compiled for (machine, model, instruction-set extensions, threads, LLVM
                    -O level); the weights (block file, bytes, per array offset and shape); the
                    runtime libraries the code calls (openmp, onednn, blas); the library calls
                    (kernel, library, op, parameters, weights) whose objects the loader builds;
                    the arena (bytes, the largest buffer in it)
    model.so        the machine code: `_mlir__mlir_ciface_main(void **args)`, args = pointers to
                    pointers to the memref descriptors of the inputs, weights, outputs (f32) and
                    the arena (bytes, allocated by each run: `runtime.memory.allocate_arena`)
    weights.npy     one f32 block: every weight as the code reads it (packed where it packs),
                    then the originals of packed weights a library call also reads

The manifest is bound to the code: the code holds the digest of its argument shapes and arena
size (`INTERFACE_SYMBOL`) and each library call's table the digest of its spec, and loading refuses a
manifest that does not match them. Every file is read through woodpecker.runtime.bundle (paths
inside the directory, regular files, exact sizes, bounded JSON, npy headers checked).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from woodpecker.errors import WoodpeckerError
from woodpecker.runtime import bundle
from woodpecker.runtime.cpu import host
from woodpecker.runtime.cpu.library_calls import (
    LIBRARY_NAMES,
    ONEDNN_OPS,
    LibraryCallSpec,
    fill_table,
    handle_symbol,
    json_digest,
)
from woodpecker.runtime.cpu.memref import CALLING_CONVENTION, ENTRY_SYMBOL, EntryCall, memref_arg
from woodpecker.runtime.feeds import InputSpec, check_feeds, check_output_names, pick_outputs, static_specs
from woodpecker.runtime.memory import allocate_arena

FORMAT = "woodpecker.cpu-model"
FORMAT_VERSION = 2  # 2: the arena argument (the code's buffers, allocated by each run)
MANIFEST = "manifest.json"
LIBRARY_FILE = "model.so"
WEIGHTS_FILE = "weights.npy"
INTERFACE_SYMBOL = "_mlir_wpk_interface"
RUNTIME_LIBRARIES = ("openmp", *LIBRARY_NAMES)
MAX_LIBRARY_BYTES = 1 << 30
MAX_WEIGHT_BYTES = 1 << 36
MAX_DIMS = 12
_ALIGN = 64


class CpuModelError(WoodpeckerError):
    """A saved CPU model that is malformed, tampered with, or compiled for another CPU (one line
    naming the file or field and the problem)."""


def interface_digest(
    inputs: Sequence[Sequence[int]],
    weights: Sequence[Sequence[int]],
    outputs: Sequence[Sequence[int]],
    arena_bytes: int = 0,
    dtypes: Sequence[str] = (),
) -> int:
    """The digest of the code's argument shapes and of the bytes of its arena (the last
    argument: its buffers, woodpecker.backend.arena), which the code holds and a manifest must
    match. The weights are float32; `dtypes` are those of the inputs then the outputs (TENSOR_DTYPES
    names), part of the digest where one is not float32."""
    shapes = {
        k: [[int(d) for d in s] for s in v] for k, v in (("inputs", inputs), ("weights", weights), ("outputs", outputs))
    }
    typed = {"dtypes": list(dtypes)} if any(d != "float32" for d in dtypes) else {}
    return json_digest({"dtype": "float32", **shapes, "arena_bytes": int(arena_bytes), **typed})


# The dtypes of a saved model's inputs and outputs (a bool is one byte, 0 or 1).
TENSOR_DTYPES = ("float32", "int64", "int32", "bool")


@dataclass
class CpuModelFiles:
    """What a saved model holds, before it is written (`write_model`)."""

    inputs: list[tuple[str, tuple[int, ...]]]
    outputs: list[tuple[str, tuple[int, ...]]]
    weights: list[np.ndarray]  # as the code reads them
    originals: dict[int, np.ndarray] = field(default_factory=dict)  # packed weights a library call reads
    library_calls: list[LibraryCallSpec] = field(default_factory=list)
    libraries: list[str] = field(default_factory=list)  # of RUNTIME_LIBRARIES
    threads: int = 1
    llvm_opt_level: int = 2
    arena_bytes: int = 0  # the code's buffers, allocated by each run (the last argument)
    arena_largest: str = ""  # the largest of them, described (for the error when it cannot be allocated)
    input_dtypes: list[str] = field(default_factory=list)  # per input (TENSOR_DTYPES); empty: all float32
    output_dtypes: list[str] = field(default_factory=list)  # per output


def write_model(directory: str | os.PathLike, files: CpuModelFiles, library: Path) -> Path:
    """Writes `library` (the linked shared library), the weight block and manifest.json into
    `directory` (created if needed); returns it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    arrays = [np.ascontiguousarray(w, dtype=np.float32) for w in files.weights]
    originals = {}
    for index, array in sorted(files.originals.items()):
        originals[str(index)] = len(arrays)
        arrays.append(np.ascontiguousarray(array, dtype=np.float32))
    entries, offset = [], 0
    for array in arrays:
        entries.append({"offset": offset, "shape": list(array.shape)})
        offset += -(-array.nbytes // _ALIGN) * _ALIGN
    block = np.zeros(offset // 4, dtype=np.float32)
    for entry, array in zip(entries, arrays, strict=True):
        start = entry["offset"] // 4
        block[start : start + array.size] = array.reshape(-1)
    _write_atomic(out / WEIGHTS_FILE, lambda f: np.save(f, block, allow_pickle=False))
    data = library.read_bytes()
    _write_atomic(out / LIBRARY_FILE, lambda f: f.write(data))
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "inputs": [
            {"name": n, "dtype": d, "shape": list(s)}
            for (n, s), d in zip(files.inputs, files.input_dtypes or ["float32"] * len(files.inputs), strict=True)
        ],
        "outputs": [
            {"name": n, "dtype": d, "shape": list(s)}
            for (n, s), d in zip(files.outputs, files.output_dtypes or ["float32"] * len(files.outputs), strict=True)
        ],
        "library": {
            "file": LIBRARY_FILE,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "entry": ENTRY_SYMBOL,
            "calling_convention": CALLING_CONVENTION,
            "arguments": "inputs, weights, outputs, arena: void **args, args[i] -> pointer to a ranked memref "
            "descriptor (of the tensor's dtype, a bool one byte; the weights f32; the arena: bytes)",
        },
        "arena": {"bytes": files.arena_bytes, "largest": files.arena_largest},
        "target": {
            "machine": host.machine(),
            "cpu": host.cpu_model(),
            "features": host.isa_features(),
            "threads": files.threads,
            "llvm_opt_level": files.llvm_opt_level,
        },
        "weights": {
            "file": WEIGHTS_FILE,
            "dtype": "float32",
            "bytes": block.nbytes,
            "arrays": entries[: len(files.weights)],
            "originals": {k: entries[v] for k, v in originals.items()},
        },
        "libraries": sorted(files.libraries),
        "library_calls": [spec.to_json() for spec in files.library_calls],
    }
    import json

    _write_atomic(out / MANIFEST, lambda f: f.write((json.dumps(manifest, indent=1) + "\n").encode()))
    return out


def _write_atomic(path: Path, write: Any) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        write(f)
    os.replace(partial, path)


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def is_cpu_model(directory: str | os.PathLike) -> bool:
    """Whether `directory` holds a manifest.json (the CPU format's; a CUDA plan has plan.json)."""
    return (Path(directory) / MANIFEST).is_file()


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_DIMS:
        raise CpuModelError(f"{where}: a shape is a list of at most {MAX_DIMS} sizes, not {value!r:.60}")
    if any(isinstance(d, bool) or not isinstance(d, int) or d < 0 or d > 1 << 40 for d in value):
        raise CpuModelError(f"{where}: shape {value!r:.60} is not a list of sizes")
    return tuple(value)


def _tensors(manifest: dict, key: str, where: str) -> list[tuple[str, tuple[int, ...]]]:
    items = bundle.field(manifest, key, list, CpuModelError, where)
    result = []
    for i, item in enumerate(items):
        at = f"{where}: {key}[{i}]"
        name = bundle.field(item, "name", str, CpuModelError, at)
        _dtype(item, at)
        result.append((name, _shape(bundle.field(item, "shape", list, CpuModelError, at), at)))
    return result


def _dtype(item: Any, at: str) -> str:
    dtype = bundle.field(item, "dtype", str, CpuModelError, at)
    if dtype not in TENSOR_DTYPES:
        raise CpuModelError(f"{at}: dtype {dtype!r}; the code takes {', '.join(TENSOR_DTYPES)} tensors")
    return dtype


def _tensor_dtypes(manifest: dict, key: str, where: str) -> list[str]:
    items = bundle.field(manifest, key, list, CpuModelError, where)
    return [_dtype(item, f"{where}: {key}[{i}]") for i, item in enumerate(items)]


def _arrays(block: np.ndarray, entries: Any, where: str) -> list[np.ndarray]:
    if not isinstance(entries, list):
        raise CpuModelError(f"{where}: a list of arrays expected, not {type(entries).__name__}")
    arrays = []
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        offset = bundle.field(entry, "offset", int, CpuModelError, at)
        shape = _shape(bundle.field(entry, "shape", list, CpuModelError, at), at)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if offset < 0 or offset % 4 or offset + 4 * count > block.nbytes:
            raise CpuModelError(f"{at}: {count} floats at byte {offset} lie outside the {block.nbytes}-byte block")
        arrays.append(block[offset // 4 : offset // 4 + count].reshape(shape))
    return arrays


@dataclass
class CpuManifest:
    """A checked manifest.json."""

    inputs: list[tuple[str, tuple[int, ...]]]
    outputs: list[tuple[str, tuple[int, ...]]]
    library: dict[str, Any]
    target: dict[str, Any]
    weights: dict[str, Any]
    libraries: list[str]
    library_calls: list[LibraryCallSpec]
    arena_bytes: int = 0
    arena_largest: str = ""
    input_dtypes: list[str] = field(default_factory=list)  # per input, TENSOR_DTYPES names
    output_dtypes: list[str] = field(default_factory=list)


def read_manifest(directory: str | os.PathLike) -> CpuManifest:
    """The checked manifest.json of a saved CPU model (CpuModelError naming the problem)."""
    root = Path(directory)
    data = bundle.read_json(root, MANIFEST, CpuModelError)
    where = str(root / MANIFEST)
    form = bundle.field(data, "format", str, CpuModelError, where)
    version = bundle.field(data, "version", int, CpuModelError, where)
    if form != FORMAT or version != FORMAT_VERSION:
        raise CpuModelError(f"{where}: format {form!r} version {version}, expected {FORMAT!r} version {FORMAT_VERSION}")
    library = bundle.field(data, "library", dict, CpuModelError, where)
    for key, kind in (("file", str), ("bytes", int), ("sha256", str), ("entry", str), ("calling_convention", str)):
        bundle.field(library, key, kind, CpuModelError, f"{where}: library")
    if library["entry"] != ENTRY_SYMBOL or library["calling_convention"] != CALLING_CONVENTION:
        raise CpuModelError(
            f"{where}: library: entry {library['entry']!r} ({library['calling_convention']!r}); this runtime calls "
            f"{ENTRY_SYMBOL!r} ({CALLING_CONVENTION!r})"
        )
    target = bundle.field(data, "target", dict, CpuModelError, where)
    bundle.field(target, "machine", str, CpuModelError, f"{where}: target")
    features = bundle.field(target, "features", list, CpuModelError, f"{where}: target")
    if not all(isinstance(f, str) for f in features):
        raise CpuModelError(f"{where}: target: features must be a list of names")
    threads = bundle.field(target, "threads", int, CpuModelError, f"{where}: target")
    if not 1 <= threads <= 4096:
        raise CpuModelError(f"{where}: target: threads {threads} is not a thread count")
    weights = bundle.field(data, "weights", dict, CpuModelError, where)
    bundle.field(weights, "file", str, CpuModelError, f"{where}: weights")
    bundle.field(weights, "bytes", int, CpuModelError, f"{where}: weights")
    bundle.field(weights, "arrays", list, CpuModelError, f"{where}: weights")
    bundle.field(weights, "originals", dict, CpuModelError, f"{where}: weights")
    if bundle.field(weights, "dtype", str, CpuModelError, f"{where}: weights") != "float32":
        raise CpuModelError(f"{where}: weights: dtype {weights['dtype']!r}; the code takes float32")
    libraries = bundle.field(data, "libraries", list, CpuModelError, where)
    unknown = [name for name in libraries if name not in RUNTIME_LIBRARIES]
    if unknown:
        raise CpuModelError(
            f"{where}: libraries: unknown library {unknown[0]!r} (known: {', '.join(RUNTIME_LIBRARIES)})"
        )
    arena = bundle.field(data, "arena", dict, CpuModelError, where)
    arena_bytes = bundle.field(arena, "bytes", int, CpuModelError, f"{where}: arena")
    if arena_bytes < 0:
        raise CpuModelError(f"{where}: arena: bytes {arena_bytes} is negative")
    arena_largest = bundle.field(arena, "largest", str, CpuModelError, f"{where}: arena")
    calls = []
    for i, item in enumerate(bundle.field(data, "library_calls", list, CpuModelError, where)):
        at = f"{where}: library_calls[{i}]"
        kernel = bundle.checked_name(
            bundle.field(item, "kernel", str, CpuModelError, at), CpuModelError, f"{at}: kernel"
        )
        name = bundle.field(item, "library", str, CpuModelError, at)
        op = bundle.field(item, "op", str, CpuModelError, at)
        if name not in LIBRARY_NAMES or name not in libraries or (name == "onednn" and op not in ONEDNN_OPS):
            raise CpuModelError(f"{at}: {name} {op} is not a library call of this model's libraries")
        roles = bundle.field(item, "weights", dict, CpuModelError, at)
        count = len(weights["arrays"])
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < count for v in roles.values()):
            raise CpuModelError(f"{at}: weights {roles!r:.60} are not positions among the {count} weights")
        calls.append(LibraryCallSpec(kernel, name, op, bundle.field(item, "params", dict, CpuModelError, at), roles))
    return CpuManifest(
        inputs=_tensors(data, "inputs", where),
        outputs=_tensors(data, "outputs", where),
        library=library,
        target=target,
        weights=weights,
        libraries=list(libraries),
        library_calls=calls,
        arena_bytes=arena_bytes,
        arena_largest=arena_largest[:200],
        input_dtypes=_tensor_dtypes(data, "inputs", where),
        output_dtypes=_tensor_dtypes(data, "outputs", where),
    )


def check_host(manifest: CpuManifest, where: str) -> None:
    """CpuModelError unless this host can run code compiled for the manifest's CPU."""
    target = manifest.target
    if target["machine"] != host.machine():
        raise CpuModelError(f"{where}: compiled for {target['machine']}, this host is {host.machine()}")
    missing = host.missing_features(target["features"])
    if missing:
        raise CpuModelError(
            f"{where}: compiled for a CPU with {', '.join(missing)}, which this CPU ({host.cpu_model()}) lacks: "
            "recompile the model on this host"
        )


def _load_runtime_libraries(names: Sequence[str], where: str) -> None:
    """Loads the libraries the code calls (by path, before the model, so that the model's
    DT_NEEDED sonames are found among the loaded ones)."""
    from woodpecker.runtime.shared_libs import openmp_runtime

    if "openmp" in names:
        path = openmp_runtime()
        if path is None:
            raise CpuModelError(f"{where}: the code runs on OpenMP: libiomp5.so not found (pip install intel-openmp)")
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    if "onednn" in names:
        from woodpecker.runtime.cpu import onednn

        try:
            onednn.load()
        except onednn.OneDnnError as err:
            raise CpuModelError(f"{where}: the code calls oneDNN: {err}") from None
    if "blas" in names:
        from woodpecker.runtime.cpu import blas

        try:
            blas.load()
        except blas.BlasUnavailable as err:
            raise CpuModelError(f"{where}: the code calls BLAS: {err}") from None


class DeployedCpuModel:
    """A saved CPU model loaded with ctypes; runs like `onnxruntime.InferenceSession`."""

    target = "cpu"

    def __init__(self, directory: str | os.PathLike) -> None:
        start = time.perf_counter()
        root = Path(directory)
        self.directory = root
        manifest = read_manifest(root)
        where = str(root / MANIFEST)
        check_host(manifest, where)
        self.manifest = manifest
        self.input_names = [n for n, _ in manifest.inputs]
        self.output_names = [n for n, _ in manifest.outputs]
        self.input_shapes = dict(manifest.inputs)
        self.output_shapes = dict(manifest.outputs)
        self.input_dtypes = {n: np.dtype(d) for (n, _), d in zip(manifest.inputs, manifest.input_dtypes, strict=True)}
        self.output_dtypes = {
            n: np.dtype(d) for (n, _), d in zip(manifest.outputs, manifest.output_dtypes, strict=True)
        }
        if len(set(self.input_names)) != len(self.input_names) or len(set(self.output_names)) != len(self.output_names):
            raise CpuModelError(f"{where}: input or output names repeat")
        info = manifest.weights
        block = bundle.load_npy(root, info["file"], CpuModelError, dtype=np.float32, nbytes=info["bytes"])
        if block.ndim != 1:
            raise CpuModelError(f"{root / info['file']}: a {block.ndim}-D array, not the 1-D weight block")
        weights = _arrays(block, info["arrays"], f"{where}: weights.arrays")
        originals = dict(
            zip(
                info["originals"],
                _arrays(block, list(info["originals"].values()), f"{where}: weights.originals"),
                strict=True,
            )
        )
        digest = interface_digest(
            [s for _, s in manifest.inputs],
            [w.shape for w in weights],
            [s for _, s in manifest.outputs],
            arena_bytes=manifest.arena_bytes,
            dtypes=[*manifest.input_dtypes, *manifest.output_dtypes],
        )
        library = manifest.library
        path = bundle.member(root, library["file"], CpuModelError, size=library["bytes"])
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != library["sha256"]:
            raise CpuModelError(f"{path}: its sha256 is not the manifest's (the file changed after it was saved)")
        _load_runtime_libraries(manifest.libraries, where)
        try:
            self._lib = ctypes.CDLL(str(path))
            entry = getattr(self._lib, ENTRY_SYMBOL)
            code_digest = ctypes.c_int64.in_dll(self._lib, INTERFACE_SYMBOL).value
        except (OSError, AttributeError, ValueError) as err:
            raise CpuModelError(f"{path}: cannot be loaded ({err})") from None
        if code_digest != digest:
            raise CpuModelError(
                f"{where}: the inputs, weights, outputs and arena it lists do not match the code's arguments "
                "(shapes or sizes differ)"
            )
        entry.restype, entry.argtypes = None, [ctypes.c_void_p]
        self._entry = entry
        # The library objects, built again from their specs and weights, fill the code's tables.
        self._calls: list[object] = []
        threads = int(manifest.target["threads"])
        for spec in manifest.library_calls:
            by_role = {}
            for role, index in spec.weights.items():
                by_role[role] = originals.get(str(index), weights[index])
            try:
                call = spec.build(by_role, threads)
            except (KeyError, TypeError, ValueError, IndexError) as err:
                raise CpuModelError(
                    f"{where}: kernel {spec.kernel_name}: malformed {spec.library} call ({err})"
                ) from None
            except Exception as err:  # the library refused the parameters
                raise CpuModelError(
                    f"{where}: kernel {spec.kernel_name}: {spec.library} failed to build: {err}"
                ) from None
            try:
                table = ctypes.c_int64.in_dll(self._lib, handle_symbol(spec.kernel_name))
            except ValueError:
                raise CpuModelError(f"{path}: the code has no library call for kernel {spec.kernel_name}") from None
            fill_table(ctypes.addressof(table), spec, call, f"{where}: kernel {spec.kernel_name}", CpuModelError)
            self._calls.append(call)
        self._weights = weights
        self._weight_args = [memref_arg(w) for w in weights]
        manifest = self.manifest
        self._entry_call = EntryCall(
            self._entry, self._weight_args, lambda: allocate_arena(manifest.arena_bytes, manifest.arena_largest)
        )
        self.load_seconds = time.perf_counter() - start

    @cached_property
    def input_specs(self) -> list[InputSpec]:
        """What `run` checks the feeds against (computed once, not per run)."""
        return static_specs(self.input_names, self.input_shapes, self.input_dtypes)

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        wanted = check_output_names(output_names, self.output_names)
        inputs = check_feeds(feeds, self.input_specs)
        outputs = [np.empty(self.output_shapes[name], dtype=self.output_dtypes[name]) for name in self.output_names]
        self._entry_call(inputs, outputs)
        return pick_outputs(self.output_names, outputs, None if output_names is None else wanted)

    __call__ = run


def load_cpu_model(directory: str | os.PathLike) -> DeployedCpuModel:
    """A model saved by `CompiledModel.save` / `wpk compile --target cpu -o DIR` (no MLIR needed)."""
    path = Path(directory)
    if not path.is_dir():
        raise CpuModelError(f"{path}: no such model directory")
    return DeployedCpuModel(path)
