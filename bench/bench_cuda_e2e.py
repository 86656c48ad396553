"""Whole models on one NVIDIA GPU: Woodpecker's CUDA plans next to PyTorch eager and torch.compile.

    python bench/bench_cuda_e2e.py [--models resnet18 resnet50 mobilenet_v2] [--batch 1 8] [--rounds 5]
                                   [--repeat 20] [--db RECORDS.db] [--no-torch-compile] [--json OUT]
    python bench/bench_cuda_e2e.py --compile-only ...      # no GPU needed: the plans only

Models: .cache/models/<model>.onnx (tools/export_torchvision_models.py writes them: torchvision's
architectures, random weights, batch 1, input `input`); a missing one is exported first when
PyTorch and torchvision are installed, else skipped. Batch 8 is compiled with
input_shapes={"input": (8, 3, 224, 224)}.

Per model and batch, in one run:

  wpk all    libraries="all": the plan's choice per kernel (generated, cuDNN, cuBLASLt);
             select="measure" (recorded choices in --db reused, new ones stored there; without
             --db in a scratch database), "records"/"heuristic" with --compile-only or --select;
  wpk none   libraries="none": our generated kernels only (default schedules, or --db's records);
  torch eager       the same torchvision architecture, eval mode, under torch.no_grad;
  torch.compile     torch.compile(model, mode="max-autotune") (--torch-compile-mode), compiled
                    before the timing starts (its compile time is printed).

Everything is f32 with TF32 off (torch.backends.cuda.matmul.allow_tf32 = cudnn.allow_tf32 =
False, matmul precision "highest"; Woodpecker's cuDNN and cuBLASLt calls never use TF32).
Plans are timed by their executors (`executor.time`: CUDA graph replay, CUDA events, L2 flushed
before each repeat); PyTorch the same way (CUDA events around each call, the same L2 flush).
The candidates alternate round by round (--rounds, each --repeat timed runs after --warmup); the
table shows medians and their ratios. Woodpecker's outputs are checked against ONNX Runtime on
the CPU (relative L2 error <= 1e-4, else MISMATCH and exit code 1). PyTorch's model has its own
random weights (the architecture is what is compared), so its outputs are not checked against
ONNX Runtime; torch.compile's are checked against eager's (reported when above 1e-4).

The PyTorch columns need PyTorch with CUDA and torchvision; without them they are skipped (the
script says so). Without a usable GPU the script says so and exits with code 2 (unless
--compile-only).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cuda_common as cc

MODELS = ("resnet18", "resnet50", "mobilenet_v2")
EXPORT_TOOL = cc.REPO / "tools" / "export_torchvision_models.py"
PLANS = {"wpk all": "choice", "wpk none": "generated"}
COLUMNS = ("wpk all", "wpk none", "torch eager", "torch.compile")


@dataclass
class E2EResult:
    model: str
    batch: int
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    ms: dict[str, float | None] = field(default_factory=dict)
    rel_l2: dict[str, float | None] = field(default_factory=dict)
    mismatch: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    torch_compile_s: float | None = None


def _export_tool() -> Any:
    spec = importlib.util.spec_from_file_location("export_torchvision_models", EXPORT_TOOL)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {EXPORT_TOOL}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torchvision_status() -> str | None:
    try:
        import torchvision  # noqa: F401
    except ImportError as err:
        return f"torchvision is not installed ({err}; pip install torchvision)"
    return None


def model_path(name: str, models_dir: Path, can_export: bool) -> tuple[Path | None, str]:
    """(the ONNX file of `name`, or None with why not); exports it when missing and possible."""
    path = models_dir / f"{name}.onnx"
    if path.exists():
        return path, str(path)
    if not can_export:
        return None, (f"{path} is missing (python tools/export_torchvision_models.py --models {name} "
                      "writes it; needs torch and torchvision)")
    models_dir.mkdir(parents=True, exist_ok=True)
    exported = _export_tool().export(name, models_dir, "torchscript", 17)
    return exported, f"{exported} (exported now)"


def with_batch(proto: Any, batch: int) -> Any:
    """A copy of `proto` whose runtime inputs (and outputs) have batch dimension `batch`."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    initializers = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name not in initializers and value.type.tensor_type.shape.dim:
            value.type.tensor_type.shape.dim[0].dim_value = batch
    del model.graph.value_info[:]
    for value in model.graph.output:
        if value.type.tensor_type.shape.dim:
            value.type.tensor_type.shape.dim[0].dim_value = batch
    return model


def input_shapes(proto: Any, batch: int) -> dict[str, tuple[int, ...]]:
    initializers = {init.name for init in proto.graph.initializer}
    shapes = {}
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        if len(dims) < 2 or not all(dims[1:]):
            raise ValueError(f"input {value.name} has shape {dims}; expected a static shape but the batch")
        shapes[value.name] = (batch, *dims[1:])
    return shapes


def compile_plans(path: Path, shapes: dict[str, tuple[int, ...]], args: argparse.Namespace, arch: str,
                  mode: str, measure_db: str, result: E2EResult) -> dict[str, Any]:
    import woodpecker

    models = {}
    for column, which in PLANS.items():
        start = time.perf_counter()
        try:
            model = woodpecker.compile(str(path), options=cc.plan_options(which, arch, args.db, mode, measure_db),
                                       input_shapes=shapes)
        except Exception as err:
            result.notes.append(f"{column}: compile failed: {type(err).__name__}: {err}")
            continue
        models[column] = model
        summary = cc.plan_summary(model)
        summary["compile_s"] = time.perf_counter() - start
        summary.pop("step_impls", None)
        result.plans[column] = summary
    return models


def torch_models(torch: Any, name: str, x: Any, args: argparse.Namespace, result: E2EResult) -> dict[str, Any]:
    """The callables of the PyTorch columns (eager, and torch.compile'd unless turned off), run
    under torch.no_grad (TorchTimer's mode, so torch.compile does not recompile)."""
    model = _export_tool().build(name).to("cuda").eval()
    calls: dict[str, Any] = {"torch eager": lambda: model(x)}
    with torch.no_grad():  # as TorchTimer runs it
        eager_out = model(x).float()
    if args.no_torch_compile:
        return calls
    if args.inductor_freezing:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
    try:
        compiled = torch.compile(model, mode=args.torch_compile_mode)
        # A new step per call, so that CUDA-graph trees (max-autotune's "cudagraphs") replay.
        mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None) or (lambda: None)

        def run_compiled() -> Any:
            mark_step()
            return compiled(x)

        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(3):  # compiles (and autotunes), then records its CUDA graphs
                out = run_compiled()
            torch.cuda.synchronize()
            error = cc.rel_l2(out.float().cpu().numpy(), eager_out.cpu().numpy())
        result.torch_compile_s = time.perf_counter() - start
        result.rel_l2["torch.compile vs eager"] = error
        if not error <= cc.TOLERANCE:
            result.notes.append(f"torch.compile's output differs from eager's: rel L2 {error:.2e}")
        calls["torch.compile"] = run_compiled
    except Exception as err:
        result.notes.append(f"torch.compile({args.torch_compile_mode}) failed: {type(err).__name__}: {err}")
    return calls


def bench(name: str, path: Path, batch: int, args: argparse.Namespace, arch: str, mode: str, measure_db: str,
          torch: Any, timer: Any) -> E2EResult:
    import onnx

    result = E2EResult(name, batch)
    proto = onnx.load(str(path))
    shapes = input_shapes(proto, batch)
    models = compile_plans(path, shapes, args, arch, mode, measure_db, result)
    if args.compile_only:
        return result
    try:
        import onnxruntime as ort

        rng = np.random.default_rng(0)
        feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
        session = ort.InferenceSession(with_batch(proto, batch).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        expected = session.run(None, feeds)
        timers = {}
        for column, model in models.items():
            try:
                got = model.run(None, feeds)
            except Exception as err:
                result.notes.append(f"{column}: run failed: {type(err).__name__}: {err}")
                continue
            errors = [cc.rel_l2(g, e) for g, e in zip(got, expected, strict=True)]
            result.rel_l2[column] = max(errors)
            if not max(errors) <= cc.TOLERANCE:
                result.mismatch.append(column)
            fallbacks = cc.executor_fallbacks(model)
            if fallbacks:
                result.plans[column]["fallbacks"] = fallbacks
                step, why = next(iter(fallbacks.items()))
                result.notes.append(f"{column}: {len(fallbacks)} library steps ran their generated kernel instead "
                                    f"(first, {step}: {why})")
            split = cc.executor_split(model)
            if split:
                result.notes.append(f"{column}: {len(split)} cuDNN steps ran the plain convolution + their epilogue "
                                    f"kernel (first, {next(iter(split.items()))[0]}: {next(iter(split.values()))})")
            timers[column] = cc.plan_timer(model, args.repeat, args.warmup)
        if torch is not None:
            (feed,) = feeds.values()
            x = torch.from_numpy(feed).to("cuda")
            try:
                for column, fn in torch_models(torch, name, x, args, result).items():
                    timers[column] = timer.timer(fn, args.repeat, args.warmup)
            except Exception as err:
                result.notes.append(f"PyTorch: {type(err).__name__}: {err}")

        def failed(column: str, err: BaseException) -> None:
            result.notes.append(f"{column}: timing failed: {type(err).__name__}: {err}")

        samples = cc.alternate({c: timers[c] for c in COLUMNS if c in timers}, args.rounds, failed)
        result.ms = {c: cc.median_ms(samples.get(c)) for c in COLUMNS}
    finally:
        for model in models.values():
            model.close()
        if torch is not None:
            import torch._dynamo

            torch._dynamo.reset()
            torch.cuda.empty_cache()
    return result


def print_table(results: list[E2EResult], torch_label: str) -> None:
    print(f"\n### median ms per inference ({torch_label})\n")
    rows = []
    for r in results:
        ms = r.ms

        def cell(column: str, ms: dict = ms, r: E2EResult = r) -> str:
            return cc.fmt_ms(ms.get(column)) + (" MISMATCH" if column in r.mismatch else "")

        rows.append([
            r.model, str(r.batch), cell("wpk all"), cell("wpk none"), cell("torch eager"), cell("torch.compile"),
            cc.fmt_ratio(cc.ratio(ms.get("wpk all"), ms.get("torch eager"))),
            cc.fmt_ratio(cc.ratio(ms.get("wpk all"), ms.get("torch.compile"))),
            cc.fmt_ratio(cc.ratio(ms.get("wpk none"), ms.get("wpk all"))),
            cc.fmt_ratio(cc.ratio(ms.get("wpk none"), ms.get("torch.compile"))),
        ])
    headers = ["model", "batch", "wpk all ms", "wpk none ms", "torch eager ms", "torch.compile ms",
               "all / eager", "all / compile", "none / all", "none / compile"]
    print(cc.markdown_table(headers, rows, [False] + [True] * 9))
    for r in results:
        checks = ", ".join(f"{c} {e:.1e}" for c, e in r.rel_l2.items() if e is not None)
        plans = "; ".join(f"{c}: {cc.summary_text(s)}" for c, s in r.plans.items())
        compile_s = f"; torch.compile took {r.torch_compile_s:.0f} s" if r.torch_compile_s is not None else ""
        print(f"  {r.model} b{r.batch}: rel L2 {checks or '-'}; {plans}{compile_s}")
        for note in r.notes:
            print(f"  note: {r.model} b{r.batch}: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cc.add_common_arguments(parser, MODELS, "how the libraries=all plan chooses")
    parser.add_argument("--models-dir", type=Path, default=cc.MODELS_DIR,
                        help=f"where <model>.onnx is looked for (default {cc.MODELS_DIR})")
    parser.add_argument("--no-torch-compile", action="store_true", help="skip the torch.compile column")
    parser.add_argument("--torch-compile-mode", default="max-autotune")
    parser.add_argument("--inductor-freezing", action="store_true",
                        help="torch._inductor.config.freezing = True (folds batch norm into the convolutions)")
    args = parser.parse_args(argv)
    cc.check_common_arguments(parser, args)

    target = cc.resolve_target(args, "bench_cuda_e2e.py")
    if target is None:
        return cc.NO_GPU_EXIT
    reason, arch, mode = target
    has_gpu = reason is None
    torch, timer, torch_label = None, None, "PyTorch columns skipped"
    vision_reason = torchvision_status()
    if not args.compile_only:
        from woodpecker.runtime.cuda.launch import device_info

        torch, why = cc.import_torch()
        if torch is not None and vision_reason is not None:
            torch, why = None, vision_reason
        if torch is None:
            print(f"note: the PyTorch columns need PyTorch with CUDA and torchvision, skipped: {why}")
        else:
            timer = cc.TorchTimer(torch)
            compile_mode = "off" if args.no_torch_compile else args.torch_compile_mode
            torch_label = (f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
                           f"torch.compile mode {compile_mode}{', freezing' if args.inductor_freezing else ''}")
        info = device_info()
        print(f"device: {info.name} ({info.arch}); plans for {arch}; wpk all: select={mode}"
              f"{' with ' + args.db if args.db else ''}; {args.rounds} rounds x {args.repeat} runs, medians")
    else:
        print(f"compile only: plans for {arch}; wpk all: select={mode}{' with ' + args.db if args.db else ''}"
              f"{'' if has_gpu else f' (no GPU: {reason})'}")

    results: list[E2EResult] = []
    can_export = vision_reason is None and importlib.util.find_spec("torch") is not None
    with tempfile.TemporaryDirectory(prefix="wpk-bench-e2e-") as scratch:
        measure_db = str(Path(scratch) / "selection.db")
        for name in args.models:
            path, source = model_path(name, args.models_dir, can_export)
            if path is None:
                print(f"\n{name}: skipped: {source}")
                continue
            print(f"\n{name}: {source}", flush=True)
            for batch in args.batch:
                result = bench(name, path, batch, args, arch, mode, measure_db, torch, timer)
                results.append(result)
                plans = "; ".join(f"{c}: {cc.summary_text(s)} (compiled in {s['compile_s']:.1f} s)"
                                  for c, s in result.plans.items())
                times = ", ".join(f"{c} {cc.fmt_ms(v)}" for c, v in result.ms.items())
                print(f"  batch {batch}: {plans}{'; ' + times if times else ''}", flush=True)
                for note in result.notes:
                    print(f"  note: {note}", flush=True)
    if not results:
        print("no model to benchmark")
        return 1
    if args.compile_only:
        rows = [[r.model, str(r.batch), *(cc.summary_text(r.plans[c]) if c in r.plans else "-" for c in PLANS)]
                for r in results]
        print("\n### plans (compile only)\n")
        print(cc.markdown_table(["model", "batch", *PLANS], rows, [False, True, False, False]))
    else:
        print_table(results, torch_label)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 1 if any(r.mismatch for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
