#!/usr/bin/env python3
"""CPU schedules: GFLOP/s of a 1024^3 matmul and the ResNet-50 3x3 conv, next to numpy and ORT.

Problems (f32, one ONNX node each, weights as initializers as in a real model):
  matmul   X[1024x1024] @ W[1024x1024]
  conv3x3  ResNet-50 layer: N=1, C=K=64, 56x56, 3x3, pad 1, stride 1

For each, on 1 core and on all cores, in this one run on this machine:
  numpy    numpy's BLAS (matmul: X @ W; conv: im2col + X @ W), threads set through threadpoolctl
           when available, else what OpenBLAS uses
  ORT      onnxruntime CPU provider with intra_op_num_threads = cores
  default  Woodpecker with every kernel's default schedule configuration
  best     the fastest of a few hand-picked configurations (listed with --verbose)
and the peak of one core: a JIT-compiled loop of independent vector FMAs (the most this
core's vector units do), so "% peak" = GFLOP/s / (cores x peak per core).

    python bench/bench_schedules.py [--repeat 20] [--verbose]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from mlir import ir
from mlir.execution_engine import ExecutionEngine
from mlir.passmanager import PassManager
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.backend.cpu import CpuOptions, available_cores
from woodpecker.cli.common import time_calls
from woodpecker.compiler import CompileOptions
from woodpecker.schedule.target import CpuMachine


@dataclass
class Problem:
    name: str
    model: onnx.ModelProto
    feeds: dict[str, np.ndarray]
    flops: float
    numpy_fn: Callable[[], object]
    hand_configs: list[dict]
    factory: str  # the function of this module that builds it (for the numpy subprocess)


def matmul_problem(n: int = 1024) -> Problem:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n)).astype(np.float32)
    w = rng.standard_normal((n, n)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    hand = [
        {"matmul": {"tile_m": 128, "tile_n": 256, "tile_k": 1024}},
        {"matmul": {"tile_m": 64, "tile_n": 128, "tile_k": 512}},
        {"matmul": {"tile_m": 64, "tile_n": 256, "tile_k": 256}},
        {"matmul": {"reg_m": 8, "reg_n": 8, "tile_n": 256}},
        {"matmul": {"pack_b": False, "tile_n": 1024, "tile_k": 64}},
    ]
    return Problem(f"matmul {n}^3", model, {"x": x}, 2.0 * n**3, lambda: x @ w, hand, "matmul_problem")


def conv_problem() -> Problem:
    rng = np.random.default_rng(1)
    c = k = 64
    h = 56
    x = rng.standard_normal((1, c, h, h)).astype(np.float32)
    w = (rng.standard_normal((k, c, 3, 3)) * 0.05).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, h])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, k, h, h])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    wmat = w.reshape(k, -1)

    def im2col_gemm() -> np.ndarray:
        padded = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
        cols = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))  # c, h, w, 3, 3
        cols = np.ascontiguousarray(cols.transpose(0, 3, 4, 1, 2)).reshape(c * 9, h * h)
        return wmat @ cols

    hand = [
        {"conv": {"tile_f": 16, "tile_oh": 4, "tile_c": 16, "unroll_c": 8, "reg_f": 4, "reg_oh": 2}},
        {"conv": {"tile_f": 16, "tile_oh": 8, "tile_c": 16, "unroll_c": 8, "reg_f": 4, "reg_oh": 2}},
        {"conv": {"tile_f": 32, "tile_oh": 4, "tile_c": 16, "unroll_c": 4, "reg_f": 4, "reg_oh": 2}},
        {"conv": {"tile_f": 16, "tile_oh": 4, "tile_c": 32, "unroll_c": 8, "reg_f": 8, "reg_oh": 1}},
        {"conv": {"tile_f": 8, "tile_oh": 4, "tile_c": 8, "unroll_c": 8, "reg_f": 2, "reg_oh": 4}},
    ]
    flops = 2.0 * k * h * h * c * 9
    return Problem("conv3x3 r50 64x56x56", model, {"x": x}, flops, im2col_gemm, hand, "conv_problem")


# -- peak ----------------------------------------------------------------------------------------

FMA_CHAINS = 12


def fma_peak_gflops(lanes: int, iterations: int = 20_000_000) -> float:
    """GFLOP/s of one core running FMA_CHAINS independent vector FMA chains (JIT, LLVM -O3)."""
    vec = f"vector<{lanes}xf32>"
    args = ", ".join(f"%a{i} = %init" for i in range(FMA_CHAINS))
    types = ", ".join([vec] * FMA_CHAINS)
    body = "\n".join(f"      %n{i} = vector.fma %a{i}, %m, %add : {vec}" for i in range(FMA_CHAINS))
    yields = ", ".join(f"%n{i}" for i in range(FMA_CHAINS))
    sums = "\n".join(f"  %s{i} = arith.addf %s{i - 1}, %r#{i} : {vec}" for i in range(1, FMA_CHAINS))
    src = f"""
func.func @peak(%n: index, %out: memref<{lanes}xf32>) attributes {{llvm.emit_c_interface}} {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %pad = arith.constant 0.0 : f32
  %init = vector.transfer_read %out[%c0], %pad : memref<{lanes}xf32>, {vec}
  %m = arith.mulf %init, %init : {vec}
  %add = arith.addf %init, %m : {vec}
  %r:{FMA_CHAINS} = scf.for %i = %c0 to %n step %c1 iter_args({args}) -> ({types}) {{
{body}
      scf.yield {yields} : {types}
  }}
  %s0 = arith.addf %r#0, %r#0 : {vec}
{sums}
  vector.transfer_write %s{FMA_CHAINS - 1}, %out[%c0] : {vec}, memref<{lanes}xf32>
  return
}}"""
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(src)
        PassManager.parse(
            "builtin.module(convert-vector-to-scf,convert-scf-to-cf,convert-vector-to-llvm,"
            "finalize-memref-to-llvm,convert-arith-to-llvm,convert-func-to-llvm,convert-cf-to-llvm,"
            "reconcile-unrealized-casts)"
        ).run(module.operation)
        engine = ExecutionEngine(module, opt_level=3)
    out = np.full(lanes, 0.5, np.float32)
    from mlir.runtime import get_ranked_memref_descriptor

    out_arg = ctypes.pointer(ctypes.pointer(get_ranked_memref_descriptor(out)))
    best = float("inf")
    for _ in range(3):
        n = ctypes.c_longlong(iterations)
        start = time.perf_counter()
        engine.invoke("peak", ctypes.pointer(n), out_arg)
        best = min(best, time.perf_counter() - start)
    return 2.0 * lanes * FMA_CHAINS * iterations / best / 1e9


# -- measuring -------------------------------------------------------------------------------------


NUMPY_TIMER = """
import sys, time
import numpy as np
sys.path.insert(0, {bench_dir!r})
import bench_schedules as b
problem = getattr(b, {factory!r})()
problem.numpy_fn()
times = []
for _ in range({repeat}):
    start = time.perf_counter()
    problem.numpy_fn()
    times.append(time.perf_counter() - start)
print(sorted(times)[len(times) // 2] * 1e3)
"""


def numpy_ms(factory: str, threads: int, repeat: int) -> float:
    """numpy's median time in a fresh process whose BLAS uses `threads` threads (the BLAS
    reads its thread count when it loads)."""
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    code = NUMPY_TIMER.format(bench_dir=str(Path(__file__).parent), factory=factory, repeat=repeat)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def gflops(flops: float, ms: float) -> float:
    return flops / (ms * 1e-3) / 1e9


def measure(problem: Problem, threads: int, repeat: int, verbose: bool) -> dict[str, tuple[float, str]]:
    results: dict[str, tuple[float, str]] = {}
    results["numpy"] = (numpy_ms(problem.factory, threads, repeat), "")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    session = ort.InferenceSession(problem.model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    results["ORT"] = (time_calls(lambda: session.run(None, problem.feeds), repeat).median_ms, "")
    reference = None
    best: tuple[float, str] | None = None
    for label, configs in [("default", None), *[(f"hand{i}", c) for i, c in enumerate(problem.hand_configs)]]:
        options = CompileOptions(cpu=CpuOptions(parallel=threads > 1, threads=threads, schedules=configs))
        try:
            model = woodpecker.compile(problem.model, options=options)
        except woodpecker.WoodpeckerError as err:
            if verbose:
                print(f"    {label}: rejected: {err}")
            continue
        out = model.run(None, problem.feeds)[0]
        if reference is None:
            reference = out
        error = float(np.abs(out - reference).max())
        ms = time_calls(lambda m=model: m.run(None, problem.feeds), repeat).median_ms
        used = "; ".join(
            f"{s.kernel.name}={s.config}" for s in model.executable.schedules if s.kernel.kind != "elementwise"
        )
        if verbose:
            print(f"    {label}: {gflops(problem.flops, ms):6.1f} GFLOP/s  max diff vs default {error:.1e}  {used}")
        if label == "default":
            results["default"] = (ms, used)
        if best is None or ms < best[0]:
            best = (ms, used)
        del model
    if best is not None:
        results["best"] = best
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--verbose", action="store_true", help="print every configuration tried")
    args = parser.parse_args()
    target = CpuMachine.host()
    cores = available_cores()
    peak = fma_peak_gflops(target.vector_lanes)
    print(f"machine: {cores} cores, {target.describe()}; {os.uname().machine}")
    print(f"peak of one core (independent vector FMAs, measured): {peak:.1f} GFLOP/s\n")
    header = (
        f"{'problem':<22} {'cores':>5} {'numpy':>7} {'ORT':>7} {'default':>8} {'best':>7}  "
        f"{'def %peak':>9} {'def/ORT':>8} {'def/numpy':>9}"
    )
    print(header)
    print("-" * len(header))
    notes = []
    for problem in (matmul_problem(), conv_problem()):
        for threads in sorted({1, cores}):
            if args.verbose:
                print(f"  {problem.name}, {threads} cores:")
            r = measure(problem, threads, args.repeat, args.verbose)
            g = {name: gflops(problem.flops, ms) for name, (ms, _) in r.items()}
            print(
                f"{problem.name:<22} {threads:>5} {g['numpy']:7.1f} {g['ORT']:7.1f} {g['default']:8.1f} "
                f"{g['best']:7.1f}  {100 * g['default'] / (peak * threads):8.0f}% {g['default'] / g['ORT']:8.2f} "
                f"{g['default'] / g['numpy']:9.2f}"
            )
            notes.append(f"{problem.name}, {threads} cores: default {r['default'][1]}; best {r['best'][1]}")
    print("\nGFLOP/s (median of --repeat calls, each runtime measured in its own block).")
    for note in notes:
        print("  " + note)


if __name__ == "__main__":
    main()
