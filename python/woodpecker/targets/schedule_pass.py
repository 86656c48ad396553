"""The `wpk-apply-schedule` pass: per-kernel schedule configurations, read from a JSON file,
applied to a module of linalg on tensors with a `func.func @main` (what `wpk-lower-to-linalg`
produces), so that an engineer can read the code a configuration makes:

    wpk-opt in.mlir --wpk-lower-to-linalg --wpk-apply-schedule=config.json --wpk-print-schedules

The file (every key optional):

    {"target": "cpu" | "cuda",
     "arch": "sm_90",                                   (cuda)
     "cpu": {"threads": 2, "vector_lanes": 8, ...},    (CpuMachine fields; default: this host)
     "kernels": {"k0_matmul": {"tile_m": 8, ...}, "conv": {...}}}

A file with none of these four keys is the "kernels" object itself (`{"k0_matmul": {...}}`).
Kernels are named `k<i>_<kind>` or by kind, as in `CpuOptions.schedules` and
`CompileOptions.gpu_configs`; knobs left out take the template's default.

* target "cpu": every kernel of @main is scheduled in place (`apply_schedules`: tiles,
  `scf.forall` across the cores, vectorization, vector ops lowered); the module is left on
  tensors, before bufferization.
* target "cuda": the module is replaced by the device module of `compile_gpu`, one
  `func.func @k<i>_<kind>` per kernel right after the transform schedules (stage
  "schedule"), or its `gpu.module`s lowered to NVVM (stage "nvvm").

Pass options (`wpk-apply-schedule{...}`, separated by spaces): `FILE` or `config=FILE`,
`target=cpu|cuda`, `arch=sm_XX`, `stage=schedule|nvvm` and `print-schedules` (each kernel's
template, configuration and search space, as `//` comment lines on stderr); options override
the file. An invalid configuration (unknown kernel or knob, a value out of its domain, a
violated constraint) raises a WoodpeckerError naming the file, the kernel, the knob and why.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from mlir import ir

from woodpecker.errors import WoodpeckerError
from woodpecker.runtime.bundle import read_regular_file
from woodpecker.schedule.apply import ScheduledKernel, apply_schedules
from woodpecker.schedule.target import CpuMachine

TARGETS = ("cpu", "cuda")
STAGES = ("schedule", "nvvm")
FILE_KEYS = ("target", "arch", "cpu", "kernels")
MAX_REQUEST_BYTES = 64 << 20  # a schedule file: configurations, not data
_BOOL = {"true": True, "1": True, "false": False, "0": False}


class ScheduleRequestError(WoodpeckerError, ValueError):
    """A schedule file or pass option that cannot be used, or a configuration a kernel rejects."""


@dataclass(frozen=True)
class ScheduleRequest:
    """What `wpk-apply-schedule` does: the target, the configurations and what it prints."""

    kernels: dict[str, dict[str, Any]] = field(default_factory=dict)
    target: str = "cpu"
    arch: str = "sm_90"
    cpu: dict[str, int] = field(default_factory=dict)
    stage: str = "schedule"
    print_schedules: bool = False
    source: str = "default schedules"

    def cpu_target(self) -> CpuMachine:
        return replace(CpuMachine.host(), **self.cpu)

    def check(self) -> ScheduleRequest:
        if self.target not in TARGETS:
            raise ScheduleRequestError(f"{self.source}: target '{self.target}' is not one of {', '.join(TARGETS)}")
        if self.stage not in STAGES:
            raise ScheduleRequestError(f"{self.source}: stage '{self.stage}' is not one of {', '.join(STAGES)}")
        if self.stage != "schedule" and self.target != "cuda":
            raise ScheduleRequestError(f"{self.source}: stage '{self.stage}' needs target cuda")
        if self.target == "cuda":
            from woodpecker.gpu.arch import ARCHS

            if self.arch not in ARCHS:
                raise ScheduleRequestError(f"{self.source}: unknown arch '{self.arch}' (known: {', '.join(ARCHS)})")
        return self


# ----------------------------------------------------------------------------
# Reading the file and the options.


def parse_request(data: Any, source: str) -> ScheduleRequest:
    """A request from the JSON value of a schedule file (either form)."""
    if not isinstance(data, dict):
        raise ScheduleRequestError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if not any(key in data for key in FILE_KEYS):
        data = {"kernels": data}
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ScheduleRequestError(
            f"{source}: unknown key '{unknown[0]}' (keys: {', '.join(FILE_KEYS)}; "
            f"or a file that is only the object of kernel configurations)"
        )
    kernels = data.get("kernels", {})
    if not isinstance(kernels, dict):
        raise ScheduleRequestError(f"{source}: 'kernels' must be an object of kernel configurations")
    for name, config in kernels.items():
        if not isinstance(config, dict):
            raise ScheduleRequestError(f"{source}: kernel {name}: expected an object of knob values, got {config!r}")
    return ScheduleRequest(
        kernels=kernels,
        target=str(data.get("target", "cpu")),
        arch=str(data.get("arch", "sm_90")),
        cpu=_cpu_fields(data.get("cpu", {}), source),
        source=source,
    )


def _cpu_fields(value: Any, source: str) -> dict[str, int]:
    known = [f.name for f in fields(CpuMachine)]
    if not isinstance(value, dict):
        raise ScheduleRequestError(f"{source}: 'cpu' must be an object with some of {', '.join(known)}")
    for key, number in value.items():
        if key not in known:
            raise ScheduleRequestError(f"{source}: 'cpu': unknown field '{key}' (fields: {', '.join(known)})")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise ScheduleRequestError(f"{source}: 'cpu': {key} must be a positive integer, got {number!r}")
    return dict(value)


def load_request(path: str) -> ScheduleRequest:
    data = read_regular_file(path, ScheduleRequestError, max_bytes=MAX_REQUEST_BYTES, what="schedule file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScheduleRequestError(f"{path}: not UTF-8 text") from None
    try:
        request = json.loads(text)
    except json.JSONDecodeError as err:
        raise ScheduleRequestError(f"{path}: invalid JSON: {err}") from None
    except RecursionError:
        raise ScheduleRequestError(f"{path}: invalid JSON: nested deeper than Python's parser goes") from None
    return parse_request(request, path)


def parse_options(options: str | None) -> ScheduleRequest:
    """The request of `wpk-apply-schedule{options}` (the file they name, then the overrides)."""
    try:
        tokens = shlex.split(options or "")
    except ValueError as err:
        raise ScheduleRequestError(f"invalid options '{options}': {err}") from None
    settings: dict[str, str] = {}
    for token in tokens:
        key, eq, value = token.partition("=")
        if not eq:
            key, value = ("print-schedules", "true") if token == "print-schedules" else ("config", token)
        if key not in ("config", "target", "arch", "stage", "print-schedules"):
            raise ScheduleRequestError(
                f"unknown option '{key}' (options: FILE or config=FILE, target=cpu|cuda, arch=sm_XX, "
                f"stage=schedule|nvvm, print-schedules)"
            )
        if key in settings:
            raise ScheduleRequestError(f"option '{key}' is given twice")
        settings[key] = value
    request = load_request(settings["config"]) if "config" in settings else ScheduleRequest()
    overrides: dict[str, Any] = {k: settings[k] for k in ("target", "arch", "stage") if k in settings}
    if "print-schedules" in settings:
        flag = _BOOL.get(settings["print-schedules"].lower())
        if flag is None:
            raise ScheduleRequestError(f"print-schedules takes true or false, got '{settings['print-schedules']}'")
        overrides["print_schedules"] = flag
    return replace(request, **overrides).check()


# ----------------------------------------------------------------------------
# The pass.


def schedule_pass(options: str | None) -> Callable[[ir.Operation], None]:
    """The `wpk-apply-schedule` transformation for `options` (checked now, applied per run)."""
    request = parse_options(options)

    def run(op: ir.Operation) -> None:
        apply_request(op, request)

    return run


def apply_request(module: ir.Operation, request: ScheduleRequest, out: Any = None) -> list[str]:
    """Applies `request` to `module` in place; returns the report lines (printed to `out`,
    default stderr, with `print_schedules`)."""
    try:
        with module.context, ir.Location.unknown(module.context):
            lines = _apply_cuda(module, request) if request.target == "cuda" else _apply_cpu(module, request)
    except (WoodpeckerError, ValueError) as err:
        if isinstance(err, ScheduleRequestError):
            raise
        raise ScheduleRequestError(f"wpk-apply-schedule ({request.source}): {err}") from None
    if request.print_schedules:
        print("\n".join("// " + line for line in lines), file=out or sys.stderr, flush=True)
    return lines


def _apply_cpu(module: ir.Operation, request: ScheduleRequest) -> list[str]:
    target = request.cpu_target()
    scheduled = apply_schedules(module, request.kernels, target)  # type: ignore[arg-type]
    lines = [f"target cpu: {target.describe()}; configurations from {request.source}"]
    for item in scheduled:
        lines.extend(describe_cpu_kernel(item))
    return lines


def describe_cpu_kernel(item: ScheduledKernel) -> list[str]:
    kernel = item.kernel
    parts = [kernel.named_op]
    parts += ["fill"] if kernel.fill is not None else []
    parts += ["epilogue"] if kernel.epilogue is not None else []
    origin = "default" if item.is_default else "requested"
    return [
        f"kernel {kernel.name} ({' + '.join(parts)}, loops {list(kernel.loops.extents)}): {item.space.template}",
        f"  config ({origin}): {_json(item.config)}",
        *("  " + line for line in item.space.describe().splitlines()),
    ]


def _json(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config))


def _apply_cuda(module: ir.Operation, request: ScheduleRequest) -> list[str]:
    """The GPU pipelines run in a context of their own: inside a pass run, MLIR forbids the
    dialect registrations their passes (NVVM, LLVM) make in the module's context."""
    from woodpecker.dialect import create_context
    from woodpecker.gpu.codegen import lower_gpu_kernels, schedule_gpu_kernels

    lines = [f"target cuda {request.arch}: stage {request.stage}; configurations from {request.source}"]
    build = lower_gpu_kernels if request.stage == "nvvm" else schedule_gpu_kernels
    with create_context() as context, ir.Location.unknown(context):
        copy = ir.Module.parse(module.get_asm(binary=True), context=context)
        if request.print_schedules:
            lines += describe_cuda_kernels(copy.operation, request)
        device = build(copy, request.arch, request.kernels)  # type: ignore[arg-type]
        bytecode = device.operation.get_asm(binary=True)
    replace_module_body(module, ir.Module.parse(bytecode, context=module.context))
    return lines


def describe_cuda_kernels(module: ir.Operation, request: ScheduleRequest) -> list[str]:
    from woodpecker.gpu.arch import get_arch
    from woodpecker.gpu.codegen import kernel_search_spaces, plan_kernels
    from woodpecker.gpu.space import describe_space, knobs_from_config

    spaces = kernel_search_spaces(module, request.arch)  # type: ignore[arg-type]
    _, scheduled = plan_kernels(module, request.kernels, get_arch(request.arch))  # type: ignore[arg-type]
    lines = []
    for item in scheduled:
        space = spaces[item.plan.name]
        knobs = knobs_from_config(item.config, item.plan.problem)
        lines.append(f"kernel {item.plan.name} ({item.plan.kind}): {space.template}")
        lines.append(f"  config ({item.config.notes or 'default'}): {_json(knobs)}")
        lines.append(f"  launch grid {item.shape.grid} block {item.shape.block}")
        lines.extend("  " + line for line in describe_space(space).splitlines())
    return lines


def replace_module_body(module: ir.Operation, new: ir.Module) -> None:
    """Moves the ops and attributes of `new` into `module`, in place of its own."""
    block = module.regions[0].blocks[0]
    for op in reversed(list(block.operations)):
        op.operation.erase()
    for op in list(new.body.operations):
        block.append(op.operation)
    for name in new.operation.attributes:
        module.attributes[name] = new.operation.attributes[name]
