"""The deployable CUDA inference plan: steps in launch order over one planned arena.

An `InferencePlan` is what `woodpecker.compile(model, target="cuda")` produces and what the
executor (`woodpecker.runtime.cuda.executor`) runs; it imports no MLIR, so a GPU host with numpy and
cuda-python (and optionally the cuDNN frontend and nvmath-python) runs a saved plan.

* Buffers: graph inputs, outputs and intermediates live in one arena at planned byte offsets
  (`woodpecker.runtime.memory`: reused by liveness); weights live in one weight block, uploaded
  once. Buffer names are `input[0]`, `intermediate[3]`, `output[1]`, `weight[2]`.
* Steps: one per model kernel (`k3_conv`), in order. Every step carries its generated kernels
  (one or more launches: a convolution's padding gather and the convolution; PTX, entry, grid,
  block, dynamic shared memory, arguments as buffer views); a step whose chosen implementation
  is a library call also carries the call (`LibraryStep`: "cudnn" or "cublas", its spec and
  which buffer fills each role, and its epilogue as a kernel of its own for a library that
  cannot fuse it), and the generated kernels are its fallback where the library cannot run it.
* `selection`: the per-kernel choice report (candidates, times or reasons, how chosen).

`save(directory, weights)` writes

    plan.json           format, arch, buffers with offsets, arena and weight sizes, steps, selection
    <entry>.ptx         one PTX module per step (and <entry>.cubin when assembled)
    weights.npy         the weight block: every weight, f32, at its offset / 4

and `load(directory)` reads them back (`woodpecker.load` returns a runnable model).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from woodpecker.errors import WoodpeckerError
from woodpecker.runtime import bundle
from woodpecker.runtime.cuda.launch import read_format_json
from woodpecker.runtime.cuda.libraries import LIBRARIES, operand_elements

PLAN_FILE = "plan.json"
WEIGHTS_FILE = "weights.npy"
FORMAT = "woodpecker.cuda-plan"
FORMAT_VERSION = 2  # 2: a step has a list of generated kernels (1: one kernel, pad steps)
GENERATED = "generated"
BUFFER_KINDS = ("input", "weight", "output", "intermediate")
CALLING_CONVENTIONS = ("bare_ptr", "memref")
MAX_PTX_BYTES = 64 << 20  # one kernel's PTX or cubin


class PlanError(WoodpeckerError, ValueError):
    """A plan directory or plan that is malformed or of a format this version cannot run."""


@dataclass(frozen=True)
class PlanBuffer:
    """A dense row-major f32 buffer at `offset` bytes into the arena (or the weight block)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * 4

    @property
    def region(self) -> str:
        return "weights" if self.kind == "weight" else "arena"


@dataclass
class KernelLaunch:
    """A generated kernel: PTX entry `entry` and how to launch it."""

    entry: str
    ptx: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_bytes: int
    args: list[tuple[str, tuple[int, ...], str]]  # (buffer name, the shape it is viewed with, "read"|"write")
    cubin: bytes | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the schedule knobs it was compiled with

    @property
    def reads(self) -> list[str]:
        return [name for name, _, access in self.args if access == "read"]

    @property
    def writes(self) -> list[str]:
        return [name for name, _, access in self.args if access == "write"]


@dataclass
class LibraryStep:
    """A vendor library call: `spec` (see woodpecker.runtime.cuda.libraries) and role -> buffer name.

    `epilogue`: the spec's bias and post-ops as a generated kernel of their own, updating the
    output in place (woodpecker.gpu.split_epilogue), for a library that cannot fuse them: the
    executor then runs the plain call followed by this kernel."""

    library: str  # "cudnn" | "cublas"
    spec: dict[str, Any]
    operands: dict[str, str]
    epilogue: KernelLaunch | None = None

    def plain(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The call without its epilogue: (spec, operands)."""
        spec = {**self.spec, "bias": False, "post_ops": []}
        keep = ("x", "w", "a", "b", "y")
        return spec, {role: b for role, b in self.operands.items() if role in keep}


@dataclass
class Step:
    """One model kernel and the implementation the plan runs for it."""

    name: str  # the model kernel (`k3_conv`)
    kind: str  # conv, matmul, pool, elementwise, ...
    kernels: list[KernelLaunch]  # always there: the generated launches (a library step's fallback)
    library: LibraryStep | None = None
    how: str = "only candidate"  # measured | recorded | heuristic | only candidate | configured

    @property
    def impl(self) -> str:
        return GENERATED if self.library is None else self.library.library

    @property
    def generated_reads(self) -> list[str]:
        """What the generated kernels read from outside the step."""
        written = {name for kernel in self.kernels for name in kernel.writes}
        return list(dict.fromkeys(n for kernel in self.kernels for n in kernel.reads if n not in written))

    @property
    def generated_writes(self) -> list[str]:
        return list(dict.fromkeys(n for kernel in self.kernels for n in kernel.writes))

    @property
    def reads(self) -> list[str]:
        """What the chosen implementation reads (`generated_reads`: what the fallback reads)."""
        if self.library is not None:
            return [b for role, b in self.library.operands.items() if role != "y"]
        return self.generated_reads

    @property
    def writes(self) -> list[str]:
        if self.library is not None:
            return [self.library.operands["y"]]
        return self.generated_writes


@dataclass
class InferencePlan:
    """Steps over planned buffers for one GPU architecture (see the module docstring)."""

    arch: str
    inputs: list[tuple[str, str]]  # (graph input name, buffer name)
    outputs: list[tuple[str, str]]
    buffers: dict[str, PlanBuffer]
    steps: list[Step]
    arena_bytes: int
    weight_bytes: int
    calling_convention: str = "bare_ptr"
    memory: dict[str, int] = field(default_factory=dict)  # total / peak bytes (reporting)
    selection: dict[str, Any] = field(default_factory=dict)

    @property
    def input_names(self) -> list[str]:
        return [n for n, _ in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [n for n, _ in self.outputs]

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: self.buffers[b].shape for n, b in self.inputs}

    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: self.buffers[b].shape for n, b in self.outputs}

    @property
    def weights(self) -> list[PlanBuffer]:
        found = [b for b in self.buffers.values() if b.kind == "weight"]
        return sorted(found, key=lambda b: _index(b.name))

    def library_steps(self) -> list[Step]:
        return [s for s in self.steps if s.library is not None]

    def kernels(self) -> list[KernelLaunch]:
        """Every generated kernel of the plan: the steps' launches and the library epilogues."""
        found = []
        for step in self.steps:
            found += step.kernels
            if step.library is not None and step.library.epilogue is not None:
                found.append(step.library.epilogue)
        return found

    def validate(self) -> None:
        """Raises PlanError when a step uses an unknown buffer, a view does not fit its buffer,
        a buffer leaves its region, or a library call's operands are not the buffers its spec
        describes (every role there, each buffer of the size the spec reads or writes)."""
        if self.weight_bytes % 4 or self.arena_bytes % 4:
            raise PlanError(f"arena of {self.arena_bytes} and weights of {self.weight_bytes} bytes: not whole f32s")
        for buffer in self.buffers.values():
            if buffer.kind not in BUFFER_KINDS:
                raise PlanError(f"buffer {buffer.name}: unknown kind {buffer.kind!r}")
            if not re.fullmatch(rf"{buffer.kind}\[(0|[1-9][0-9]{{0,8}})\]", buffer.name):
                raise PlanError(f"buffer {buffer.name!r:.60}: a {buffer.kind} buffer is named {buffer.kind}[<index>]")
            limit = self.weight_bytes if buffer.region == "weights" else self.arena_bytes
            if buffer.offset < 0 or buffer.offset % 4 or buffer.offset + buffer.nbytes > limit:
                raise PlanError(f"buffer {buffer.name} at {buffer.offset} (+{buffer.nbytes} bytes) leaves its region")
        for name, buffer in [*self.inputs, *self.outputs]:
            if buffer not in self.buffers:
                raise PlanError(f"graph value '{name}' names an unknown buffer {buffer}")
        for step in self.steps:
            if not step.kernels:
                raise PlanError(f"step {step.name} has no generated kernel")
            kernels = list(step.kernels)
            if step.library is not None and step.library.epilogue is not None:
                kernels.append(step.library.epilogue)
            for buffer, shape, _access in (arg for kernel in kernels for arg in kernel.args):
                if buffer not in self.buffers:
                    raise PlanError(f"step {step.name}: unknown buffer {buffer}")
                if math.prod(shape) != math.prod(self.buffers[buffer].shape):
                    raise PlanError(f"step {step.name}: view {list(shape)} does not fit {buffer}")
            if step.library is not None:
                self._validate_library(step.name, step.library)

    def _validate_library(self, name: str, library: LibraryStep) -> None:
        where = f"step {name}: the {library.library} call"
        if "y" not in library.operands:
            raise PlanError(f"{where} has no output")
        for role, buffer in library.operands.items():
            if buffer not in self.buffers:
                raise PlanError(f"step {name}: {library.library} operand {role} is unknown {buffer}")
        try:
            sizes = operand_elements(library.library, library.spec)
        except ValueError as err:
            raise PlanError(f"{where}: {err}") from None
        if set(sizes) != set(library.operands):
            raise PlanError(f"{where} binds roles {sorted(library.operands)}, its spec needs {sorted(sizes)}")
        for role, elements in sizes.items():
            buffer = self.buffers[library.operands[role]]
            if math.prod(buffer.shape) != elements:
                raise PlanError(
                    f"{where}: operand {role} needs {elements} f32 elements, its buffer {buffer.name} "
                    f"{list(buffer.shape)} holds {math.prod(buffer.shape)}"
                )

    # -- saving and loading ----------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, weight_block: np.ndarray) -> Path:
        """Writes plan.json, the PTX (and cubins) and the weight block (`pack_weights`); returns
        the directory."""
        out = Path(directory)
        if weight_block.dtype != np.float32 or weight_block.nbytes < self.weight_bytes:
            raise PlanError(f"a weight block of {self.weight_bytes} bytes of f32 is needed, not {weight_block.nbytes}")
        self.validate()
        entries = [kernel.entry for kernel in self.kernels()]
        for entry in entries:  # every name is checked before anything is written
            bundle.checked_name(entry, PlanError, "kernel entry")
        if len(set(entries)) != len(entries):
            twice = sorted({e for e in entries if entries.count(e) > 1})
            raise PlanError(f"kernel entries {twice} appear twice: their PTX files would overwrite each other")
        out.mkdir(parents=True, exist_ok=True)
        block = np.ascontiguousarray(weight_block).reshape(-1)[: self.weight_bytes // 4]
        np.save(out / WEIGHTS_FILE, block)
        steps = []
        for step in self.steps:
            steps.append(
                {
                    "name": step.name,
                    "kind": step.kind,
                    "impl": step.impl,
                    "how": step.how,
                    "kernels": [_write_kernel(out, kernel) for kernel in step.kernels],
                    "library": None if step.library is None else _library_json(out, step.library),
                }
            )
        data = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "arch": self.arch,
            "calling_convention": self.calling_convention,
            "element_type": "f32",
            "inputs": [{"name": n, "buffer": b} for n, b in self.inputs],
            "outputs": [{"name": n, "buffer": b} for n, b in self.outputs],
            "arena_bytes": self.arena_bytes,
            "weight_bytes": self.weight_bytes,
            "weights": WEIGHTS_FILE,
            "memory": self.memory,
            "buffers": [
                {"name": b.name, "kind": b.kind, "shape": list(b.shape), "offset": b.offset}
                for b in self.buffers.values()
            ],
            "steps": steps,
            "selection": self.selection,
        }
        (out / PLAN_FILE).write_text(json.dumps(data, indent=1) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike) -> tuple[InferencePlan, np.ndarray]:
        """The plan saved in `directory` and its weight block (PlanError when it is not one).

        Everything read is checked (woodpecker.runtime.bundle): plan.json's every field for its
        type and range, the files it names for staying inside `directory`, being regular files
        of bounded size, the weight block for its size, the library calls for their operands'
        sizes (`validate`)."""
        root = Path(directory)
        where = str(root / PLAN_FILE)
        data = read_format_json(root, PLAN_FILE, "Woodpecker CUDA plan", FORMAT, FORMAT_VERSION, PlanError)
        calling_convention = data.get("calling_convention", "bare_ptr")
        if calling_convention not in CALLING_CONVENTIONS:
            raise PlanError(f"{where}: calling convention {calling_convention!r:.60}, not one of bare_ptr, memref")
        plan = cls(
            arch=bundle.text_field(data, "arch", PlanError, where),
            inputs=_graph_values(data, "inputs", where),
            outputs=_graph_values(data, "outputs", where),
            buffers=_buffers_from_json(data, where),
            steps=[
                _step_from_json(s, root, f"{where}: steps[{i}]")
                for i, s in enumerate(bundle.objects(data, "steps", PlanError, where))
            ],
            arena_bytes=bundle.integer(data.get("arena_bytes"), PlanError, f"{where}: arena_bytes"),
            weight_bytes=bundle.integer(data.get("weight_bytes"), PlanError, f"{where}: weight_bytes"),
            calling_convention=calling_convention,
            memory={
                k: bundle.integer(v, PlanError, f"{where}: memory.{k}")
                for k, v in (bundle.optional(data, "memory", dict, PlanError, where) or {}).items()
            },
            selection=dict(bundle.optional(data, "selection", dict, PlanError, where) or {}),
        )
        try:
            plan.validate()
        except PlanError as err:
            raise PlanError(f"{where}: {err}") from None
        weights = bundle.optional(data, "weights", str, PlanError, where) or WEIGHTS_FILE
        block = bundle.load_npy(root, weights, PlanError, dtype=np.float32, nbytes=plan.weight_bytes)
        return plan, block.reshape(-1)


def _graph_values(data: Mapping[str, Any], key: str, where: str) -> list[tuple[str, str]]:
    return [
        (
            bundle.text_field(v, "name", PlanError, f"{where}: {key}[{i}]"),
            bundle.text_field(v, "buffer", PlanError, f"{where}: {key}[{i}]"),
        )
        for i, v in enumerate(bundle.objects(data, key, PlanError, where))
    ]


def _buffers_from_json(data: Mapping[str, Any], where: str) -> dict[str, PlanBuffer]:
    buffers: dict[str, PlanBuffer] = {}
    for i, b in enumerate(bundle.objects(data, "buffers", PlanError, where)):
        at = f"{where}: buffers[{i}]"
        name = bundle.text_field(b, "name", PlanError, at)
        if name in buffers:
            raise PlanError(f"{at}: a second buffer named {name}")
        buffers[name] = PlanBuffer(
            name,
            bundle.text_field(b, "kind", PlanError, at, BUFFER_KINDS),
            bundle.integers(b.get("shape"), PlanError, f"{at}: shape"),
            bundle.integer(b.get("offset"), PlanError, f"{at}: offset"),
        )
    return buffers


def _write_kernel(out: Path, kernel: KernelLaunch) -> dict[str, Any]:
    """Writes the kernel's PTX (and cubin) next to plan.json; returns its JSON entry."""
    bundle.checked_name(kernel.entry, PlanError, "kernel entry")
    (out / f"{kernel.entry}.ptx").write_text(kernel.ptx)
    cubin = None
    if kernel.cubin is not None:
        cubin = f"{kernel.entry}.cubin"
        (out / cubin).write_bytes(kernel.cubin)
    return {
        "entry": kernel.entry,
        "ptx": f"{kernel.entry}.ptx",
        "cubin": cubin,
        "grid": list(kernel.grid),
        "block": list(kernel.block),
        "shared_bytes": kernel.shared_bytes,
        "args": [{"buffer": b, "shape": list(s), "access": a} for b, s, a in kernel.args],
        "config": kernel.config,
    }


def _read_kernel(k: Any, root: Path, where: str) -> KernelLaunch:
    """A kernel entry of plan.json, its PTX (and cubin) read from `root`, checked."""
    entry = bundle.checked_name(bundle.field(k, "entry", str, PlanError, where), PlanError, f"{where}: entry")
    where = f"{where} ({entry})"
    cubin = bundle.optional(k, "cubin", str, PlanError, where)
    args = []
    for i, a in enumerate(bundle.objects(k, "args", PlanError, where)):
        at = f"{where}: args[{i}]"
        args.append(
            (
                bundle.text_field(a, "buffer", PlanError, at),
                bundle.integers(a.get("shape"), PlanError, f"{at}: shape"),
                bundle.text_field(a, "access", PlanError, at, ("read", "write")),
            )
        )
    return KernelLaunch(
        entry=entry,
        ptx=bundle.read_text(root, bundle.field(k, "ptx", str, PlanError, where), PlanError, max_bytes=MAX_PTX_BYTES),
        grid=bundle.integers(k.get("grid"), PlanError, f"{where}: grid", length=3, minimum=1),
        block=bundle.integers(k.get("block"), PlanError, f"{where}: block", length=3, minimum=1),
        shared_bytes=bundle.integer(k.get("shared_bytes"), PlanError, f"{where}: shared_bytes", maximum=1 << 20),
        args=args,
        cubin=None if cubin is None else bundle.read_bytes(root, cubin, PlanError, max_bytes=MAX_PTX_BYTES),
        config=dict(bundle.optional(k, "config", dict, PlanError, where) or {}),
    )


def _library_json(out: Path, library: LibraryStep) -> dict[str, Any]:
    epilogue = None if library.epilogue is None else _write_kernel(out, library.epilogue)
    return {"library": library.library, "spec": library.spec, "operands": library.operands, "epilogue": epilogue}


def _index(name: str) -> int:
    return int(name[name.index("[") + 1 : -1])


def _step_from_json(data: Any, root: Path, where: str) -> Step:
    name = bundle.text_field(data, "name", PlanError, where)
    where = f"{where} ({name})"
    kernels = [
        _read_kernel(kernel, root, f"{where}: kernels[{i}]")
        for i, kernel in enumerate(bundle.objects(data, "kernels", PlanError, where))
    ]
    lib = bundle.optional(data, "library", dict, PlanError, where)
    library = None
    if lib is not None:
        at = f"{where}: library"
        epilogue = bundle.optional(lib, "epilogue", dict, PlanError, at)
        operands = bundle.field(lib, "operands", dict, PlanError, at)
        for role, buffer in operands.items():
            if not isinstance(buffer, str):
                raise PlanError(f"{at}: operand {role!r} is {type(buffer).__name__} {buffer!r:.60}, not a buffer name")
        library = LibraryStep(
            bundle.text_field(lib, "library", PlanError, at, LIBRARIES),
            dict(bundle.field(lib, "spec", dict, PlanError, at)),
            dict(operands),
            None if epilogue is None else _read_kernel(epilogue, root, f"{at}: epilogue"),
        )
    impl = bundle.optional(data, "impl", str, PlanError, where)
    if impl is not None and impl != (GENERATED if library is None else library.library):
        raise PlanError(f"{where}: impl {impl!r:.60} but the step's library is {library and library.library}")
    how = bundle.optional(data, "how", str, PlanError, where) or ""
    return Step(
        name=name, kind=bundle.text_field(data, "kind", PlanError, where), kernels=kernels, library=library, how=how
    )


def pack_weights(plan: InferencePlan, weights: Sequence[np.ndarray]) -> np.ndarray:
    """The weight block: `weights[i]` (the plan's `weight[i]`) at its buffer's offset."""
    buffers = plan.weights
    if len(weights) != len(buffers):
        raise PlanError(f"the plan has {len(buffers)} weight buffers, {len(weights)} weights given")
    block = np.zeros(plan.weight_bytes // 4, dtype=np.float32)
    for buffer, array in zip(buffers, weights, strict=True):
        data = np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
        if data.size * 4 != buffer.nbytes:
            raise PlanError(f"{buffer.name}: {np.shape(array)} does not fit shape {list(buffer.shape)}")
        start = buffer.offset // 4
        block[start : start + data.size] = data
    return block
