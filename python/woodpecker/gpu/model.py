"""`compile(model, target="cuda")`: an ONNX model -> `CudaModel` (PTX kernels, plan, weights).

The model goes through the same stages as for the CPU (import, graph optimization, weight
outlining, lowering to linalg), then `compile_gpu`. A `CudaModel` holds the `GpuProgram`
(per kernel: PTX, entry, grid, block, dynamic shared memory, argument buffers), the graph's
input/output names and shapes, the weight arrays in the order of the program's weight
buffers, and the inference plan (`woodpecker.runtime.cuda.plan`): per kernel the chosen
implementation (generated, cuDNN, cuBLAS), buffers in one liveness-planned arena.

* `run(output_names, feeds)` runs the plan on the GPU (`woodpecker.runtime.cuda.executor`: one
  stream, a CUDA graph); without a GPU it raises `CudaUnavailable` saying why.
* `save(directory)` writes the deployable plan (plan.json, PTX, weights.npy) that
  `woodpecker.load(directory)` runs without MLIR.
* `save_kernels(directory)` writes the kernels alone in the launcher's format (what the tuning
  runners measure, `woodpecker.runtime.cuda.launch`):

    manifest.json         format, arch, calling convention, buffers, kernels in launch order
                          (entry, grid, block, shared_bytes, args, config knobs, problem)
    <entry>.ptx           one PTX module per kernel (and <entry>.cubin when assembled)
    weight_<i>.npy        weight buffer i (f32)

* `emulate(feeds)` runs the kernels' schedules on the CPU (no GPU needed).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mlir import ir

from woodpecker.errors import CompilationError
from woodpecker.gpu.codegen import ConfigSpec, compile_gpu, kernel_search_spaces
from woodpecker.gpu.config import GpuConfig, KernelProblem, OperandAccess
from woodpecker.gpu.emulate import run_on_cpu
from woodpecker.gpu.inference_plan import KernelImpl, build_inference_plan
from woodpecker.gpu.program import BufferRef, GpuKernel, GpuProgram, KernelArg, KernelResources
from woodpecker.gpu.space import config_from_knobs, gpu_search_space, knobs_from_config
from woodpecker.importer import ImportedModel
from woodpecker.kernels.space import SearchSpace
from woodpecker.runtime.bundle import checked_name
from woodpecker.runtime.cuda.executor import PlanExecutor
from woodpecker.runtime.cuda.launch import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    ManifestError,
    kernel_cubin,
    kernel_ptx,
    read_manifest,
    weight_array,
)
from woodpecker.runtime.cuda.model import PlanModel
from woodpecker.runtime.cuda.plan import InferencePlan, pack_weights
from woodpecker.runtime.feeds import check_feeds, check_output_names, pick_outputs, static_specs
from woodpecker.stats import CompileStats


@dataclass
class CudaModel:
    """A model compiled to PTX kernels for one GPU architecture (not runnable here yet)."""

    program: GpuProgram
    input_names: list[str]
    output_names: list[str]
    input_shapes: dict[str, tuple[int, ...]]
    output_shapes: dict[str, tuple[int, ...]]
    weights: list[np.ndarray]  # in the order of program.weights
    stats: CompileStats = field(default_factory=CompileStats)
    target: str = "cuda"
    # The linalg-on-tensors module the kernels were cut from (for `emulate` and the tuner's
    # search spaces); None for a model loaded from disk.
    linalg: ir.Module | None = field(default=None, repr=False, compare=False)
    # What runs: per kernel its implementation, the arena (None: kernels loaded with load_kernels).
    plan: InferencePlan | None = field(default=None, repr=False, compare=False)
    # Per kernel signature: the candidates, their times or reasons, the choice (KernelChoice).
    selection: list = field(default_factory=list, repr=False, compare=False)
    _runner: PlanModel | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def arch(self) -> str:
        return self.program.arch

    @property
    def kernels(self) -> list[GpuKernel]:
        return self.program.kernels

    def configs(self) -> dict[str, GpuConfig]:
        """The config each kernel was compiled with, by kernel name (`k0_matmul`)."""
        return {k.function: k.config for k in self.kernels}

    def search_spaces(self) -> dict[str, SearchSpace]:
        """Each kernel's schedule search space on this model's arch, by kernel name."""
        if self.linalg is None:
            return {k.function: gpu_search_space(k.problem, self.arch, k.function) for k in self.kernels}
        return kernel_search_spaces(self.linalg, self.arch, num_inputs=len(self.input_names))

    def _plan_model(self) -> PlanModel:
        if self.plan is None:
            raise CompilationError("this CudaModel has no inference plan (it was loaded with load_kernels)")
        if self._runner is None:
            self._runner = PlanModel(self.plan, pack_weights(self.plan, self.weights))
        return self._runner

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Runs the plan on the GPU (`woodpecker.runtime.cuda.executor`); like `onnxruntime`'s `run`."""
        return self._plan_model().run(output_names, feeds)

    __call__ = run

    @property
    def executor(self) -> PlanExecutor:
        """The plan's executor (created on first use; needs a GPU)."""
        return self._plan_model().executor

    def close(self) -> None:
        """Frees the device memory of the executor, if one was created."""
        if self._runner is not None:
            self._runner.close()

    def emulate(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> list[np.ndarray]:
        """Runs every kernel's schedule (same tiles, no GPU) on the CPU, as `run` would on the GPU."""
        if self.linalg is None:
            raise CompilationError("CudaModel.emulate needs the linalg module, which a loaded model does not have")
        wanted = check_output_names(output_names, self.output_names)
        inputs = check_feeds(feeds, static_specs(self.input_names, self.input_shapes))
        with self.linalg.context:
            results = run_on_cpu(self.linalg, inputs, self.weights, self.configs(), self.arch)
        return pick_outputs(self.output_names, results, None if output_names is None else wanted)

    # -- saving ------------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> Path:
        """Writes the deployable plan (plan.json, PTX, weights.npy) that `woodpecker.load` runs."""
        return self._plan_model().save(directory)

    def save_kernels(self, directory: str | os.PathLike) -> Path:
        """Writes the PTX files, the weights and `manifest.json` in the launcher's format
        (`woodpecker.runtime.cuda.launch.CudaLauncher`, the tuning runners) into `directory`."""
        out = Path(directory)
        program = self.program
        for kernel in program.kernels:  # every name that becomes a file name, before writing
            checked_name(kernel.name, CompilationError, "kernel name")
        out.mkdir(parents=True, exist_ok=True)
        weights = []
        for i, array in enumerate(self.weights):
            name = f"weight_{i}.npy"
            np.save(out / name, np.ascontiguousarray(array, dtype=np.float32))
            weights.append({"file": name, "shape": list(program.weights[i])})
        kernels = []
        for kernel in program.kernels:
            (out / f"{kernel.name}.ptx").write_text(kernel.ptx)
            cubin = None
            if kernel.cubin is not None:
                cubin = f"{kernel.name}.cubin"
                (out / cubin).write_bytes(kernel.cubin)
            kernels.append(_kernel_json(kernel, cubin))
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "target": self.target,
            "arch": program.arch,
            "calling_convention": program.calling_convention,
            "element_type": "f32",
            "inputs": [{"name": n, "shape": list(s)} for n, s in zip(self.input_names, program.inputs, strict=True)],
            "outputs": [{"name": n, "shape": list(s)} for n, s in zip(self.output_names, program.outputs, strict=True)],
            "weights": weights,
            "intermediates": [{"index": i, "shape": list(s)} for i, s in program.intermediates],
            "kernels": kernels,
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        return out

    @classmethod
    def load_kernels(cls, directory: str | os.PathLike) -> CudaModel:
        """A model written by `save_kernels` (without its linalg module or plan)."""
        root = Path(directory)
        try:
            manifest = read_manifest(root)
            kernels = [_kernel_from_json(k, root) for k in manifest["kernels"]]
            weights = [weight_array(root, w) for w in manifest["weights"]]
        except ManifestError as err:
            raise CompilationError(str(err)) from None
        program = GpuProgram(
            arch=manifest["arch"],
            kernels=kernels,
            inputs=[tuple(i["shape"]) for i in manifest["inputs"]],
            weights=[tuple(w["shape"]) for w in manifest["weights"]],
            outputs=[tuple(o["shape"]) for o in manifest["outputs"]],
            intermediates=[(i["index"], tuple(i["shape"])) for i in manifest["intermediates"]],
            calling_convention=manifest.get("calling_convention", "bare_ptr"),
        )
        return cls(
            program=program,
            input_names=[i["name"] for i in manifest["inputs"]],
            output_names=[o["name"] for o in manifest["outputs"]],
            input_shapes={i["name"]: tuple(i["shape"]) for i in manifest["inputs"]},
            output_shapes={o["name"]: tuple(o["shape"]) for o in manifest["outputs"]},
            weights=weights,
            target=str(manifest.get("target", "cuda")),
        )


def _kernel_json(kernel: GpuKernel, cubin: str | None) -> dict[str, Any]:
    return {
        "name": kernel.name,
        "entry": kernel.name,
        "function": kernel.function,
        "model_kernel": kernel.model_kernel,
        "kind": kernel.kind,
        "ptx": f"{kernel.name}.ptx",
        "cubin": cubin,
        "grid": list(kernel.grid),
        "block": list(kernel.block),
        "shared_bytes": kernel.shared_bytes,
        "needs_shared_opt_in": kernel.needs_shared_opt_in,
        "args": [
            {
                "buffer": a.buffer.kind,
                "index": a.buffer.index,
                "shape": list(a.shape),
                "access": a.access,
                "element_type": a.element_type,
                "ptx_type": a.ptx_type,
            }
            for a in kernel.args
        ],
        "ops": kernel.ops,
        "config": knobs_from_config(kernel.config),
        "problem": asdict(kernel.problem),
        "resources": None if kernel.resources is None else asdict(kernel.resources),
    }


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _problem_from_json(data: Mapping[str, Any]) -> KernelProblem:
    operands = tuple(
        OperandAccess(_tuples(o["shape"]), _tuples(o["terms"]), o["promotable"], o["operand"]) for o in data["operands"]
    )
    return KernelProblem(
        kind=data["kind"],
        output_shape=_tuples(data["output_shape"]),
        loop_extents=_tuples(data["loop_extents"]),
        output_loops=_tuples(data["output_loops"]),
        reduction_loops=_tuples(data["reduction_loops"]),
        operands=operands,
    )


def _kernel_from_json(data: Mapping[str, Any], root: Path) -> GpuKernel:
    """A kernel of a checked manifest (`read_manifest`), its files read checked; the parts the
    manifest check leaves to the loader (problem, config, resources) malformed: ManifestError."""
    where = f"{root / MANIFEST}: kernel {data['name']}"
    try:
        args = [
            KernelArg(
                BufferRef(a["buffer"], a["index"]),
                tuple(a["shape"]),
                a["access"],
                str(a["element_type"]),
                a["ptx_type"],
            )
            for a in data["args"]
        ]
        kernel = GpuKernel(
            name=data["name"],
            kind=str(data["kind"]),
            ptx=kernel_ptx(root, data).decode("utf-8"),
            grid=tuple(data["grid"]),
            block=tuple(data["block"]),
            shared_bytes=data["shared_bytes"],
            args=args,
            config=config_from_knobs(dict(data["config"])),
            problem=_problem_from_json(data["problem"]),
            ops=[str(op) for op in data["ops"]],
            resources=None if data["resources"] is None else KernelResources(**data["resources"]),
            cubin=kernel_cubin(root, data),
            function=str(data["function"]),
            model_kernel=str(data.get("model_kernel", "")),
        )
    except ManifestError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ManifestError(f"{where}: malformed ({type(err).__name__}: {err})") from None
    return kernel


# -- compiling ---------------------------------------------------------------------------------


def compile_program(
    module: ir.Module,
    weights: list[np.ndarray],
    imported: ImportedModel,
    arch: str,
    configs: Mapping[str, ConfigSpec] | None,
    stats: CompileStats,
) -> GpuProgram:
    """The CUDA back end's code generation: `module` (@main lowered to linalg with the outlined
    `weights` as trailing arguments) compiled to PTX launches, every configuration checked first."""
    start = time.perf_counter()
    program = compile_gpu(module, arch, configs, num_inputs=len(imported.input_names))
    stats.stage_seconds["codegen"] = stats.stage_seconds.get("codegen", 0.0) + time.perf_counter() - start
    shapes = [tuple(w.shape) for w in weights]
    if program.weights != shapes:
        raise CompilationError(f"the GPU program's weight buffers {program.weights} do not match the weights {shapes}")
    inputs = [tuple(imported.input_shapes[n]) for n in imported.input_names]
    if program.inputs != inputs:
        raise CompilationError(f"the GPU program's input buffers {program.inputs} do not match the inputs {inputs}")
    return program


def build_cuda_model(
    program: GpuProgram,
    module: ir.Module,
    weights: list[np.ndarray],
    imported: ImportedModel,
    stats: CompileStats,
    impls: Mapping[str, KernelImpl] | None = None,
    selection: Sequence | None = None,
    report: Mapping[str, Any] | None = None,
) -> CudaModel:
    """The model of `program` (`compile_program`) with its inference plan: `impls` the chosen
    implementation per model kernel (missing: generated), `selection` the choices made
    (`KernelChoice`s) and `report` the selection report the plan carries."""
    start = time.perf_counter()
    selection = list(selection or [])
    plan = build_inference_plan(program, imported.input_names, imported.output_names, impls, dict(report or {}))
    stats.stage_seconds["plan"] = time.perf_counter() - start
    stats.library_kernels = len(plan.library_steps())
    stats.num_kernels = len(plan.steps)
    return CudaModel(
        program=program,
        input_names=list(imported.input_names),
        output_names=list(imported.output_names),
        input_shapes={k: tuple(v) for k, v in imported.input_shapes.items()},
        output_shapes={k: tuple(v) for k, v in imported.output_shapes.items()},
        weights=list(weights),
        stats=stats,
        linalg=module,
        plan=plan,
        selection=selection,
    )
