"""`python -m woodpecker.gpu IN.mlir`: compile a linalg-on-tensors module to PTX and describe it.

Prints one line per kernel (grid, block, dynamic shared memory, parameters, fused ops and,
when assembled, ptxas' registers and spills), then the buffer plan. `--print-ptx` adds each
kernel's PTX, `--ptx-dir` writes `<kernel>.ptx` files. Configs: `--config KIND_OR_NAME=JSON`
with GpuConfig fields, e.g. `--config 'matmul={"block_tile": [32, 32], "thread_tile": [4, 4]}'`;
`--knobs KIND_OR_NAME=JSON` takes the same fields as search-space knobs (checked against the
kernel's space, the rest from its default). `--print-ir-after-schedule` prints the kernel
functions after the transform schedules, `--print-nvvm` the gpu.modules lowered to NVVM (before
PTX), `--print-space` each kernel's search space.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mlir import ir

from woodpecker.errors import WoodpeckerError
from woodpecker.gpu.arch import ARCHS
from woodpecker.gpu.codegen import ConfigSpec, compile_gpu, kernel_search_spaces
from woodpecker.gpu.config import GpuConfig
from woodpecker.gpu.program import GpuKernel, GpuProgram
from woodpecker.gpu.space import config_from_knobs, describe_space


def parse_knobs(text: str, flag: str = "--knobs") -> tuple[str, dict[str, object]]:
    """`KIND_OR_NAME=JSON` with a JSON object of knob values."""
    key, sep, body = text.partition("=")
    if not sep:
        raise ValueError(f"{flag} wants KIND_OR_NAME=JSON, got {text!r}")
    knobs = json.loads(body)
    if not isinstance(knobs, dict):
        raise ValueError(f"{flag} {key}: the JSON must be an object of knob values")
    return key, knobs


def parse_config(text: str) -> tuple[str, GpuConfig]:
    """`KIND_OR_NAME=JSON` with GpuConfig fields, taken as given (not checked against a space)."""
    key, knobs = parse_knobs(text, "--config")
    return key, config_from_knobs(knobs)


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def describe_kernel(kernel: GpuKernel) -> str:
    args = ", ".join(f"{a.buffer}:{_dims(a.shape)}{'(w)' if a.access == 'write' else ''}" for a in kernel.args)
    line = (
        f"kernel {kernel.name} kind={kernel.kind} grid={kernel.grid} block={kernel.block} "
        f"shared={kernel.shared_bytes} args=[{args}] ops=[{', '.join(kernel.ops)}]"
    )
    if kernel.resources is not None:
        r = kernel.resources
        line += f" registers={r.registers} spills={r.spill_stores}/{r.spill_loads} stack={r.stack_frame}"
    return line


def describe(program: GpuProgram) -> str:
    lines = [f"program arch={program.arch} kernels={len(program.kernels)}"]
    lines += [describe_kernel(k) for k in program.kernels]
    lines.append("inputs " + " ".join(_dims(s) for s in program.inputs))
    lines.append("weights " + " ".join(_dims(s) for s in program.weights))
    lines.append("outputs " + " ".join(_dims(s) for s in program.outputs))
    lines.append("intermediates " + " ".join(f"{i}:{_dims(s)}" for i, s in program.intermediates))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m woodpecker.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("input", help="MLIR file with a linalg-on-tensors func.func @main ('-' for stdin)")
    parser.add_argument("--arch", default="sm_90", choices=sorted(ARCHS))
    parser.add_argument("--num-inputs", type=int, default=None, help="graph inputs among @main's arguments")
    parser.add_argument("--config", action="append", default=[], metavar="KIND_OR_NAME=JSON")
    parser.add_argument("--knobs", action="append", default=[], metavar="KIND_OR_NAME=JSON")
    parser.add_argument("--print-ir-after-schedule", action="store_true", help="kernel functions after the schedules")
    parser.add_argument("--print-nvvm", action="store_true", help="gpu.modules lowered to NVVM, before PTX")
    parser.add_argument("--print-space", action="store_true", help="each kernel's schedule search space")
    parser.add_argument("--no-assemble", action="store_true", help="do not run ptxas")
    parser.add_argument("--print-ptx", action="store_true")
    parser.add_argument("--ptx-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text()
    try:
        configs: dict[str, ConfigSpec] = dict(parse_config(c) for c in args.config)
        configs.update(parse_knobs(k) for k in args.knobs)
        wanted = {"schedule": args.print_ir_after_schedule, "nvvm": args.print_nvvm}

        def on_stage(stage: str, device: ir.Module) -> None:
            if wanted.get(stage):
                print(f"// ----- IR after {stage}\n{device}")

        with ir.Context() as ctx, ir.Location.unknown(ctx):
            module = ir.Module.parse(text)
            if args.print_space:
                for space in kernel_search_spaces(module, args.arch, args.num_inputs).values():
                    print(describe_space(space))
            start = time.perf_counter()
            program = compile_gpu(
                module,
                args.arch,
                configs,
                num_inputs=args.num_inputs,
                assemble=False if args.no_assemble else None,
                on_stage=on_stage,
            )
            elapsed = time.perf_counter() - start
    except (WoodpeckerError, ValueError, ir.MLIRError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(describe(program))
    print(f"compile time {elapsed:.2f} s", file=sys.stderr)
    for kernel in program.kernels:
        if args.print_ptx:
            print(f"// ----- PTX of {kernel.name}\n{kernel.ptx}")
        if args.ptx_dir is not None:
            args.ptx_dir.mkdir(parents=True, exist_ok=True)
            (args.ptx_dir / f"{kernel.name}.ptx").write_text(kernel.ptx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
