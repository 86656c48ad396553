"""CLI and API arguments: each bad value is one clear error line (exit status 1 or 2, or a raised
WoodpeckerError), never a traceback or a silent acceptance."""

from __future__ import annotations

from dataclasses import replace
from textwrap import dedent

from case import CORRECT, WRONG, Case

K = "arguments"
TINY = 'save(model([node("Relu", ["x"], ["y"])], [vi("x", [1, 3, 4, 4])], [vi("y", [1, 3, 4, 4])]))\n'

CLI = {  # name: (setup, argv)
    "run-repeat-0": (TINY, ["run", "model.onnx", "--repeat", "0", "--no-compare"]),
    "run-repeat-negative": (TINY, ["run", "model.onnx", "--repeat", "-4", "--no-compare"]),
    "run-repeat-float": (TINY, ["run", "model.onnx", "--repeat", "1.5", "--no-compare"]),
    "run-seed-negative": (TINY, ["run", "model.onnx", "--seed", "-1", "--no-compare"]),
    "run-seed-2^64": (TINY, ["run", "model.onnx", "--seed", str(2**64), "--no-compare"]),
    "run-opt-level-3": (TINY, ["run", "model.onnx", "--opt-level", "3"]),
    "run-input-shape-no-equals": (TINY, ["run", "model.onnx", "--input-shape", "x1x3x4x4"]),
    "run-input-shape-letters": (TINY, ["run", "model.onnx", "--input-shape", "x=axb"]),
    "run-input-shape-empty-dims": (TINY, ["run", "model.onnx", "--input-shape", "x="]),
    "run-input-shape-zero-dim": (TINY, ["run", "model.onnx", "--input-shape", "x=0x3x4x4"]),
    "run-input-shape-negative-dim": (TINY, ["run", "model.onnx", "--input-shape", "x=-1x3x4x4"]),
    "run-input-shape-unknown-input": (TINY, ["run", "model.onnx", "--input-shape", "nope=1x3x4x4"]),
    "run-input-shape-contradicts-static": (TINY, ["run", "model.onnx", "--input-shape", "x=2x3x4x4"]),
    "run-input-prefix-of-input-shape": (TINY, ["run", "model.onnx", "--input", "x.npy"]),
    "run-input-prefix-silently-accepted": (TINY, ["run", "model.onnx", "--inp", "x=1x3x4x4", "--no-compare",
                                                  "--repeat", "1"]),
    "run-schedule-missing-file": (TINY, ["run", "model.onnx", "--schedule", "nope.json"]),
    "run-schedule-bad-json": (TINY + 'Path("s.json").write_text("{not json")\n',
                              ["run", "model.onnx", "--schedule", "s.json"]),
    "run-schedule-list-top-level": (TINY + 'Path("s.json").write_text("[1, 2]")\n',
                                    ["run", "model.onnx", "--schedule", "s.json"]),
    "run-schedule-wrong-knob-type": (TINY + 'Path("s.json").write_text(\'{"target": "cpu", "kernels": '
                                            '{"elementwise": {"vector": "wide"}}}\')\n',
                                     ["run", "model.onnx", "--schedule", "s.json", "--no-compare"]),
    "run-schedule-deep-nesting": (TINY + 'Path("s.json").write_text("[" * 100000 + "]" * 100000)\n',
                                  ["run", "model.onnx", "--schedule", "s.json"]),
    "run-libraries-bogus": (TINY, ["run", "model.onnx", "--libraries", "mkl"]),
    "run-select-bogus": (TINY, ["run", "model.onnx", "--select", "fastest"]),
    "run-report-is-a-directory": (TINY + 'Path("r").mkdir()\n', ["run", "model.onnx", "--report", "r",
                                                                   "--no-compare", "--repeat", "1"]),
    "run-report-under-a-file": (TINY + 'Path("f").write_text("x")\n', ["run", "model.onnx", "--report", "f/r.json",
                                                                         "--no-compare", "--repeat", "1"]),
    "run-missing-model": ("", ["run", "nope.onnx"]),
    "run-unknown-flag": (TINY, ["run", "model.onnx", "--fast"]),
    "compile-o-names-a-file": (TINY + 'Path("out").write_text("keep me")\n',
                               ["compile", "model.onnx", "--target", "cuda", "-o", "out", "--no-records"]),
    "compile-o-under-a-file": (TINY + 'Path("f").write_text("x")\n',
                               ["compile", "model.onnx", "--target", "cuda", "-o", "f/plan", "--no-records"]),
    "compile-arch-bogus": (TINY, ["compile", "model.onnx", "--target", "cuda", "--arch", "sm_12", "--no-records"]),
    "compile-arch-garbage": (TINY, ["compile", "model.onnx", "--target", "cuda", "--arch", "../../x", "--no-records"]),
    "compile-target-tpu": (TINY, ["compile", "model.onnx", "--target", "tpu"]),
    "tune-threads-0": (TINY, ["tune", "model.onnx", "--threads", "0", "--trials", "2", "--in-process"]),
    "tune-threads-negative": (TINY, ["tune", "model.onnx", "--threads", "-3", "--trials", "2", "--in-process"]),
    "tune-trials-0": (TINY, ["tune", "model.onnx", "--trials", "0", "--in-process", "--no-progress"]),
    "tune-trials-negative": (TINY, ["tune", "model.onnx", "--trials", "-1", "--in-process", "--no-progress"]),
    "tune-timeout-0": (TINY, ["tune", "model.onnx", "--timeout", "0", "--trials", "2", "--no-progress"]),
    "tune-time-budget-negative": (TINY, ["tune", "model.onnx", "--time-budget", "-5", "--trials", "2",
                                         "--in-process", "--no-progress"]),
    "tune-confirm-negative": (TINY, ["tune", "model.onnx", "--confirm", "-1", "--trials", "2", "--in-process",
                                     "--no-progress"]),
    "tune-seed-negative": (TINY, ["tune", "model.onnx", "--seed", "-1", "--trials", "2", "--in-process",
                                  "--no-progress", "--confirm", "0"]),
    "tune-kernel-unknown": (TINY, ["tune", "model.onnx", "--kernel", "k99_conv", "--trials", "2", "--in-process"]),
    "tune-strategy-bogus": (TINY, ["tune", "model.onnx", "--strategy", "annealing"]),
    "tune-import-records-missing": ("", ["tune", "--import-records", "nope.jsonl"]),
    "tune-import-records-garbage": ('Path("r.jsonl").write_text("{]\\n")\n', ["tune", "--import-records", "r.jsonl"]),
    "tune-export-records-to-dir": ('Path("d").mkdir()\n', ["tune", "--export-records", "d"]),
    "tune-report-o-names-a-file": ('Path("out").write_text("keep")\n', ["tune-report", "-o", "out"]),
    "measure-missing-dir": ("", ["measure", "nope"]),
    "measure-a-file": ('Path("b").write_text("x")\n', ["measure", "b"]),
    "no-subcommand": ("", []),
    "unknown-subcommand": ("", ["frobnicate"]),
}  # fmt: skip

RUNS_AND_COMPARES = {"run-input-shape-contradicts-static"}
CASES: list[Case] = []
for name, (setup, argv) in CLI.items():
    slow = argv[:1] in (["run"], ["compile"], ["tune"])
    success = CORRECT if name in RUNS_AND_COMPARES else WRONG  # a stated override, compared with ONNX Runtime
    CASES.append(Case(K, f"cli-{name}", f"{setup}cli({argv!r})\n", timeout_s=60.0 if slow else 20.0,
                      on_success=success, note="wpk " + " ".join(argv)))  # fmt: skip

API_PRELUDE = """
import woodpecker
made = model([node("Relu", ["x"], ["y"])], [vi("x", ["N", 3])], [vi("y", ["N", 3])])
path = save(made)
x = np.ones((2, 3), np.float32)
def compiled():
    return woodpecker.compile(path, input_shapes={"x": (2, 3)})
"""
API = {
    "run-none-none": "m = compiled(); api(lambda: m.run(None, None))",
    "run-none-list": "m = compiled(); api(lambda: m.run(None, [x]))",
    "run-output-name-string": "m = compiled(); api(lambda: m.run('logits', {'x': x}))",
    "run-output-name-own-string": "m = compiled(); api(lambda: m.run('y', {'x': x}))",
    "run-unknown-output-name": "m = compiled(); api(lambda: m.run(['logits'], {'x': x}))",
    "run-output-names-int": "m = compiled(); api(lambda: m.run([0], {'x': x}))",
    "run-feeds-positional-array": "m = compiled(); api(lambda: m.run(None, x))",
    "input-shapes-float-dim": "api(lambda: woodpecker.compile(path, input_shapes={'x': (1.7, 3)}))",
    "input-shapes-string": "api(lambda: woodpecker.compile(path, input_shapes={'x': '2x3'}))",
    "input-shapes-negative": "api(lambda: woodpecker.compile(path, input_shapes={'x': (-2, 3)}))",
    "input-shapes-zero": "api(lambda: woodpecker.compile(path, input_shapes={'x': (0, 3)}))",
    "input-shapes-bool": "api(lambda: woodpecker.compile(path, input_shapes={'x': (True, 3)}))",
    "input-shapes-huge": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2**62, 3)}))",
    "input-shapes-wrong-rank": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2, 3, 4)}))",
    "input-shapes-unknown-name": "api(lambda: woodpecker.compile(path, input_shapes={'z': (2, 3)}))",
    "input-shapes-a-list": "api(lambda: woodpecker.compile(path, input_shapes=[(2, 3)]))",
    "input-shapes-missing": "api(lambda: woodpecker.compile(path))",
    "opt-level-5": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2, 3)}, opt_level=5))",
    "opt-level-string": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2, 3)}, opt_level='2'))",
    "target-tpu": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2, 3)}, target='tpu'))",
    "arch-bogus": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2, 3)}, target='cuda', arch='sm_1'))",
    "model-an-int": "api(lambda: woodpecker.compile(123))",
    "model-missing-path": "api(lambda: woodpecker.compile('nope.onnx'))",
    "model-garbage-bytes": "api(lambda: woodpecker.compile(b'not a model'))",
    "libraries-bogus": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2, 3)}, "
                       "options=woodpecker.CompileOptions(libraries='mkl')))",
    "select-bogus": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2, 3)}, "
                    "options=woodpecker.CompileOptions(select='fastest')))",
    "schedule-knob-negative": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2, 3)}, "
                              "options=woodpecker.CompileOptions(cpu=woodpecker.CpuOptions("
                              "schedules={'elementwise': {'vector': -4}}))))",
    "schedule-config-a-string": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2, 3)}, "
                                "options=woodpecker.CompileOptions(cpu=woodpecker.CpuOptions("
                                "schedules={'elementwise': 'fast'}))))",
    "schedule-unknown-kernel": "api(lambda: woodpecker.compile(path, input_shapes={'x': (2, 3)}, "
                               "options=woodpecker.CompileOptions(cpu=woodpecker.CpuOptions("
                               "schedules={'k42_conv': {'tile_f': 8}}))))",
    "load-missing-dir": "api(lambda: woodpecker.load('nope'))",
    "load-a-file": "Path('f').write_text('x'); api(lambda: woodpecker.load('f'))",
}  # fmt: skip
for name, call in API.items():
    CASES.append(Case(K, f"api-{name}", dedent(API_PRELUDE) + call + "\nwrong('accepted')\n", timeout_s=60.0,
                      note=call.split("api(lambda: ")[-1].rstrip(")")))  # fmt: skip

# Run with --all only: kept out of the default run so that it stays within ~12 minutes.
EXTENDED = {
    "cli-tune-import-records-missing",
    "api-input-shapes-zero",
    "cli-unknown-subcommand",
    "cli-tune-timeout-0",
    "api-schedule-config-a-string",
    "cli-tune-seed-negative",
    "api-model-an-int",
    "cli-measure-missing-dir",
    "cli-run-input-shape-letters",
    "api-arch-bogus",
    "cli-run-input-shape-no-equals",
    "api-run-output-names-int",
    "api-input-shapes-a-list",
    "cli-run-input-shape-empty-dims",
    "api-opt-level-string",
    "cli-run-select-bogus",
    "cli-run-input-shape-zero-dim",
    "cli-run-repeat-negative",
    "cli-run-repeat-float",
    "cli-run-report-is-a-directory",
    "cli-run-seed-2^64",
    "cli-no-subcommand",
    "cli-tune-confirm-negative",
    "cli-tune-report-o-names-a-file",
    "cli-tune-strategy-bogus",
    "cli-compile-target-tpu",
    "api-input-shapes-bool",
    "cli-run-unknown-flag",
    "api-load-a-file",
    "api-select-bogus",
}
CASES = [replace(c, extended=True) if c.name in EXTENDED else c for c in CASES]
