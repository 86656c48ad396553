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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from woodpecker.runtime.cuda.launch import read_format_json

PLAN_FILE = "plan.json"
WEIGHTS_FILE = "weights.npy"
FORMAT = "woodpecker.cuda-plan"
FORMAT_VERSION = 2  # 2: a step has a list of generated kernels (1: one kernel, pad steps)
GENERATED = "generated"
BUFFER_KINDS = ("input", "weight", "output", "intermediate")


class PlanError(ValueError):
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

    def validate(self) -> None:
        """Raises PlanError when a step uses an unknown buffer, a view does not fit its buffer,
        or a buffer leaves its region."""
        for buffer in self.buffers.values():
            if buffer.kind not in BUFFER_KINDS:
                raise PlanError(f"buffer {buffer.name}: unknown kind {buffer.kind!r}")
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
                if "y" not in step.library.operands:
                    raise PlanError(f"step {step.name}: the {step.library.library} call has no output")
                for role, buffer in step.library.operands.items():
                    if buffer not in self.buffers:
                        raise PlanError(f"step {step.name}: {step.library.library} operand {role} is unknown {buffer}")

    # -- saving and loading ----------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, weight_block: np.ndarray) -> Path:
        """Writes plan.json, the PTX (and cubins) and the weight block (`pack_weights`); returns
        the directory."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        if weight_block.dtype != np.float32 or weight_block.nbytes < self.weight_bytes:
            raise PlanError(f"a weight block of {self.weight_bytes} bytes of f32 is needed, not {weight_block.nbytes}")
        np.save(out / WEIGHTS_FILE, np.ascontiguousarray(weight_block).reshape(-1))
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
        """The plan saved in `directory` and its weight block (PlanError when it is not one)."""
        root = Path(directory)
        path = root / PLAN_FILE
        data = read_format_json(path, "Woodpecker CUDA plan", FORMAT, FORMAT_VERSION, PlanError)
        try:
            plan = cls(
                arch=data["arch"],
                inputs=[(i["name"], i["buffer"]) for i in data["inputs"]],
                outputs=[(o["name"], o["buffer"]) for o in data["outputs"]],
                buffers={
                    b["name"]: PlanBuffer(b["name"], b["kind"], tuple(b["shape"]), int(b["offset"]))
                    for b in data["buffers"]
                },
                steps=[_step_from_json(s, root) for s in data["steps"]],
                arena_bytes=int(data["arena_bytes"]),
                weight_bytes=int(data["weight_bytes"]),
                calling_convention=data.get("calling_convention", "bare_ptr"),
                memory=dict(data.get("memory", {})),
                selection=dict(data.get("selection", {})),
            )
            block = np.load(root / data.get("weights", WEIGHTS_FILE))
        except (KeyError, TypeError, OSError, ValueError) as err:
            raise PlanError(f"{path}: malformed plan ({type(err).__name__}: {err})") from None
        plan.validate()
        if block.dtype != np.float32 or block.ndim != 1 or block.nbytes < plan.weight_bytes:
            raise PlanError(f"{root / WEIGHTS_FILE}: {block.dtype} {block.shape}, not {plan.weight_bytes} bytes of f32")
        return plan, block


def _write_kernel(out: Path, kernel: KernelLaunch) -> dict[str, Any]:
    """Writes the kernel's PTX (and cubin) next to plan.json; returns its JSON entry."""
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


def _read_kernel(k: Mapping[str, Any], root: Path) -> KernelLaunch:
    return KernelLaunch(
        entry=k["entry"],
        ptx=(root / k["ptx"]).read_text(),
        grid=tuple(int(g) for g in k["grid"]),
        block=tuple(int(b) for b in k["block"]),
        shared_bytes=int(k["shared_bytes"]),
        args=[(a["buffer"], tuple(int(d) for d in a["shape"]), a["access"]) for a in k["args"]],
        cubin=None if k.get("cubin") is None else (root / k["cubin"]).read_bytes(),
        config=dict(k.get("config") or {}),
    )


def _library_json(out: Path, library: LibraryStep) -> dict[str, Any]:
    epilogue = None if library.epilogue is None else _write_kernel(out, library.epilogue)
    return {"library": library.library, "spec": library.spec, "operands": library.operands, "epilogue": epilogue}


def _index(name: str) -> int:
    return int(name[name.index("[") + 1 : -1])


def _step_from_json(data: Mapping[str, Any], root: Path) -> Step:
    kernels = [_read_kernel(kernel, root) for kernel in data["kernels"]]
    lib = data.get("library")
    library = None
    if lib is not None:
        epilogue = None if lib.get("epilogue") is None else _read_kernel(lib["epilogue"], root)
        library = LibraryStep(lib["library"], dict(lib["spec"]), dict(lib["operands"]), epilogue)
    return Step(name=data["name"], kind=data["kind"], kernels=kernels, library=library, how=data.get("how", ""))


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
