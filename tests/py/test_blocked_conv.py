"""The generated blocked (NCHW[x]c) convolution kernels (lowering/blocked_conv.py, template
cpu.blocked_conv / cpu.blocked_depthwise_conv):

* numerics of every kind (regular, 1x1, strided, dilated, padded, depthwise, grouped, with a
  bias, a relu, a residual add) against the float64 numpy reference, with the template's
  default configuration and with sampled ones (rtol 1e-4 of the output's largest magnitude:
  float32 accumulation over at most 2 * 16 * 9 terms);
* a default exists for every shape the templates claim, on AVX2 (8 lanes, 16 registers) and
  AVX-512 (16 lanes, 32 registers) machines (a property test over random shapes);
* the machine code of the default schedule is a register-blocked micro-kernel: its hottest loop
  is packed FMAs with broadcast input operands, no scalar FMA and no spill.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlir import ir

from woodpecker.backend.cpu import CpuExecutable, CpuOptions, compile_cpu
from woodpecker.dialect import create_context
from woodpecker.runtime.cpu.host import cpu_flags
from woodpecker.schedule.blocked_conv_task import BlockedConvCase, blocked_arrays, reference, task_of
from woodpecker.schedule.kernels import find_kernels
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.templates import BlockedConvTemplate, schedule_space

RTOL = 1e-4
B = 8  # channel block of the numerics cases (small shapes; 16 is the AVX-512 layout, tested below)

CASES = {
    "regular_3x3": BlockedConvCase(16, 16, (6, 7), block=B),
    "padded_relu": BlockedConvCase(16, 24, (5, 9), pads=(1, 1, 1, 1), block=B, epilogue="relu"),
    "asymmetric_pads": BlockedConvCase(8, 16, (6, 6), pads=(0, 1, 2, 0), block=B, bias=False),
    "pointwise": BlockedConvCase(32, 16, (4, 8), kernel=(1, 1), block=B),
    "strided": BlockedConvCase(16, 16, (9, 11), strides=(2, 2), pads=(1, 1, 1, 1), block=B, epilogue="relu"),
    "strided_pointwise": BlockedConvCase(16, 32, (8, 8), kernel=(1, 1), strides=(2, 2), block=B),
    "dilated": BlockedConvCase(8, 8, (9, 9), dilations=(2, 2), pads=(2, 2, 2, 2), block=B),
    "depthwise": BlockedConvCase(16, 16, (7, 8), pads=(1, 1, 1, 1), groups=16, block=B, epilogue="relu"),
    "depthwise_strided": BlockedConvCase(24, 24, (9, 9), strides=(2, 2), pads=(1, 1, 1, 1), groups=24, block=B),
    "grouped": BlockedConvCase(32, 16, (5, 6), pads=(1, 1, 1, 1), groups=2, block=B),
    "residual_add_relu": BlockedConvCase(16, 16, (6, 6), kernel=(1, 1), block=B, epilogue="add_relu"),
    "block16_batch2": BlockedConvCase(16, 32, (4, 5), pads=(1, 1, 1, 1), block=16, batch=2, epilogue="relu"),
}


def _compile(case: BlockedConvCase, config: dict, args: list[np.ndarray], parallel: bool = True) -> CpuExecutable:
    task = task_of(case)
    split = len(args) - task.num_weights
    with create_context() as context, ir.Location.unknown(context):
        module = ir.Module.parse(task.module_text)
        options = CpuOptions(parallel=parallel, threads=2, schedules={task.kernel_name: config})
        executable = compile_cpu(module, options, num_weights=task.num_weights, weights=args[split:])
    executable.bind_weights(args[split:])
    return executable


def _main_schedule(executable: CpuExecutable):
    return next(s for s in executable.schedules if s.kernel.kind.startswith("blocked"))


def _check(case: BlockedConvCase, executable: CpuExecutable, args: list[np.ndarray], expected: np.ndarray) -> None:
    split = len(args) - case.num_weights
    (out,) = executable(args[:split])
    assert out.shape == expected.shape
    scale = float(np.max(np.abs(expected)))
    worst = float(np.max(np.abs(out - expected)))
    assert worst <= RTOL * scale, f"max |diff| {worst:.3g} > {RTOL} * {scale:.3g}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_default_and_sampled_configurations_match_numpy(name: str) -> None:
    case = CASES[name]
    arrays = blocked_arrays(case, seed=1)
    expected = reference(case, arrays)
    executable = _compile(case, {}, arrays.args)
    scheduled = _main_schedule(executable)
    assert scheduled.is_default
    assert scheduled.space.template == ("cpu.blocked_depthwise_conv" if case.depthwise else "cpu.blocked_conv")
    _check(case, executable, arrays.args, expected)
    config = scheduled.space.sample(random.Random(name))
    sampled = _compile(case, config, arrays.args)
    assert _main_schedule(sampled).config == config
    _check(case, sampled, arrays.args, expected)


@pytest.mark.parametrize("reg_epilogue", [False, True])
@pytest.mark.parametrize(
    "name", ["padded_relu", "pointwise", "residual_add_relu", "depthwise", "strided", "block16_batch2"]
)
def test_epilogue_per_register_tile_or_per_row_matches_numpy(name: str, reg_epilogue: bool) -> None:
    """The fill and the epilogue fused into the register-tile loop (accumulators from zero vectors,
    bias, residual and relu in registers) or tiled by rows after the convolution: the same result."""
    case = CASES[name]
    arrays = blocked_arrays(case, seed=3)
    executable = _compile(case, {"reg_epilogue": reg_epilogue}, arrays.args)
    assert _main_schedule(executable).config["reg_epilogue"] is reg_epilogue
    _check(case, executable, arrays.args, reference(case, arrays))


def test_default_epilogue_is_in_registers_where_the_reduction_is_whole() -> None:
    with create_context(), ir.Location.unknown():
        for name, expected in [("pointwise", True), ("depthwise", True), ("strided", False)]:
            module = ir.Module.parse(task_of(CASES[name]).module_text)
            (kernel,) = [k for k in find_kernels(module) if k.kind.startswith("blocked")]
            _, space = schedule_space(kernel, MACHINES["avx512"])
            assert space.default["reg_epilogue"] is expected, name
            if not CASES[name].depthwise:
                with pytest.raises(ValueError, match="tile_ic to cover all input-channel blocks"):
                    space.validate({**space.default, "reg_epilogue": True, "tile_ic": 1})


def test_serial_code_matches_numpy() -> None:
    case = CASES["padded_relu"]
    arrays = blocked_arrays(case, seed=2)
    executable = _compile(case, {"parallel": False}, arrays.args, parallel=False)
    _check(case, executable, arrays.args, reference(case, arrays))


# -- a default for every shape ----------------------------------------------------------------

MACHINES = {
    "avx2": CpuMachine(vector_lanes=8, registers=16, threads=2),
    "avx512": CpuMachine(vector_lanes=16, registers=32, threads=2),
}


@st.composite
def _cases(draw: st.DrawFn) -> BlockedConvCase:
    block = draw(st.sampled_from((8, 16)))
    kind = draw(st.sampled_from(("regular", "depthwise", "grouped")))
    k = draw(st.sampled_from((1, 3, 5, 7)))
    stride = draw(st.sampled_from((1, 2)))
    pad = draw(st.integers(0, k // 2))
    size = (draw(st.integers(k, 40)), draw(st.integers(k, 40)))
    channels = block * draw(st.integers(1, 8))
    filters = channels if kind == "depthwise" else block * draw(st.integers(1, 8))
    groups = {"regular": 1, "depthwise": channels, "grouped": 2}[kind]
    if kind == "grouped":
        channels, filters = 2 * channels, 2 * filters
    return BlockedConvCase(
        channels, filters, size, kernel=(k, k), strides=(stride, stride), pads=(pad,) * 4, groups=groups, block=block
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_cases())
def test_every_blocked_kernel_has_a_valid_default_on_avx2_and_avx512(case: BlockedConvCase) -> None:
    with create_context(), ir.Location.unknown():
        module = ir.Module.parse(task_of(case).module_text)
        kernels = [k for k in find_kernels(module) if k.kind.startswith("blocked")]
        assert len(kernels) == 1, case
        for machine in MACHINES.values():
            template, space = schedule_space(kernels[0], machine)
            assert isinstance(template, BlockedConvTemplate), (case, machine)
            assert space.is_valid(space.default), (case, machine, space.default)
            accumulators = space.default["reg_oc"] * space.default["reg_n"]
            assert accumulators + space.default["reg_oc"] <= machine.registers


# -- the micro-kernel in machine code -----------------------------------------------------------

_INSTRUCTION = re.compile(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$")
_BRANCH = re.compile(r"^j\w+$")


def _hottest_loop(listing: str, innermost: bool = False) -> list[tuple[str, str]]:
    """The instructions (mnemonic, operands) of the backward-branching loop with the most FMAs
    (`innermost`: among the loops without a backward branch inside them)."""
    rows = [(int(m[1], 16), m[2], m[3]) for m in map(_INSTRUCTION.match, listing.splitlines()) if m]
    where = {address: i for i, (address, _, _) in enumerate(rows)}

    def backward(i: int) -> int | None:
        address, mnemonic, operands = rows[i]
        target = operands.split()[0] if operands else ""
        if _BRANCH.match(mnemonic) and re.fullmatch(r"[0-9a-f]+", target) and int(target, 16) < address:
            return where.get(int(target, 16))
        return None

    best: list[tuple[str, str]] = []
    for i in range(len(rows)):
        start = backward(i)
        if start is None or (innermost and any(backward(j) is not None for j in range(start, i))):
            continue
        body = [(m, o) for _, m, o in rows[start : i + 1]]
        if sum("vfmadd" in m for m, _ in body) > sum("vfmadd" in m for m, _ in best):
            best = body
    return best


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is not installed")
@pytest.mark.parametrize("name", ["pointwise", "regular", "strided", "depthwise"])
def test_default_schedule_is_a_register_blocked_fma_micro_kernel(name: str, tmp_path: Path) -> None:
    flags = cpu_flags()
    if "avx512f" in flags:
        register, block = "zmm", 16
    elif "avx2" in flags and "fma" in flags:
        register, block = "ymm", 8
    else:
        pytest.skip("the host has neither AVX-512 nor AVX2 with FMA")
    case = {
        "pointwise": BlockedConvCase(4 * block, 2 * block, (14, 14), kernel=(1, 1), block=block),
        "regular": BlockedConvCase(2 * block, 2 * block, (14, 14), pads=(1, 1, 1, 1), block=block),
        "strided": BlockedConvCase(2 * block, 2 * block, (15, 15), strides=(2, 2), block=block),
        "depthwise": BlockedConvCase(2 * block, 2 * block, (16, 16), groups=2 * block, block=block),
    }[name]
    arrays = blocked_arrays(case)
    executable = _compile(case, {}, arrays.args)
    config = _main_schedule(executable).config
    obj = tmp_path / "kernel.o"
    executable.engine.dump_to_object_file(str(obj))
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(obj)], capture_output=True, text=True)
    # The loop with the most FMAs may hold the inner loops of several input-channel blocks (and
    # reload their filter addresses from the stack between them): no vector register is spilled
    # there; the innermost loop (the micro-kernel) touches the stack not at all.
    outer = _hottest_loop(listing.stdout)
    assert not any("rsp" in operands and register in operands for _, operands in outer), "the register tile spills"
    loop = _hottest_loop(listing.stdout, innermost=True)
    fmas = [operands for mnemonic, operands in loop if mnemonic.startswith("vfmadd")]
    # Every FMA of the loop is packed; a regular conv's are reg_n per input channel, with
    # broadcast input scalars (an FMA's memory operand or a vbroadcastss); nothing is spilled.
    assert fmas and all(register in operands for operands in fmas), loop
    assert not any(m.startswith("vfmadd") and m.endswith(("ss", "sd")) for m, _ in loop)
    assert not any("rsp" in operands for _, operands in loop), "the register tile spills"
    if name != "depthwise":
        assert len(fmas) >= config["reg_n"] * config["unroll_ib"], (len(fmas), config)
        broadcasts = sum("1to" in operands for operands in fmas) + sum(m == "vbroadcastss" for m, _ in loop)
        assert broadcasts >= config["reg_n"], "the input scalars are not broadcast"
