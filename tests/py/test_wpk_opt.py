"""wpk-opt in-process (main(argv) -> status), the pass registry/pipeline builder, and the diagnostics verifier."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from mlir import ir
from mlir.passmanager import PassManager

from woodpecker import passes
from woodpecker.dialect import create_context
from woodpecker.passes import (
    GRAPH_PIPELINES,
    OPT_LEVEL_PIPELINES,
    LazyPass,
    PassInfo,
    PassPipelineError,
    build_pass_manager,
    expand_pipeline,
    wpk_passes,
)
from woodpecker.tools.diagnostics import Diag, DiagnosticVerifier, SourceBuffers, SourcePos
from woodpecker.tools.wpk_opt import main, parse_args
from woodpecker.verify import verify_module

ROOT = Path(__file__).resolve().parents[2]

RELU = """func.func @f(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = "wpk.relu"(%a) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}
"""

DYNAMIC = """func.func @g(%a: tensor<?x3xf32>) -> tensor<?x3xf32> {
  %0 = "wpk.relu"(%a) : (tensor<?x3xf32>) -> tensor<?x3xf32>
  return %0 : tensor<?x3xf32>
}
"""


def write(tmp_path: Path, text: str, name: str = "in.mlir") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ----------------------------------------------------------------------------
# The pass registry and pipelines.


def test_registry_names_and_summaries() -> None:
    registry = wpk_passes()
    assert {"wpk-verify", "wpk-lower-to-linalg"} <= set(registry)
    for name, info in registry.items():
        assert isinstance(info, PassInfo) and info.name == name and info.summary
    assert registry is not wpk_passes()  # built on each call
    assert GRAPH_PIPELINES["wpk-lower"] == "builtin.module(wpk-verify,wpk-lower-to-linalg,canonicalize,cse)"


def test_pipeline_parsing_and_alias_expansion() -> None:
    elems = expand_pipeline("builtin.module(wpk-lower, func.func(cse, canonicalize{top-down=false}))")
    assert [e.text for e in elems] == [
        "wpk-verify",
        "wpk-lower-to-linalg",
        "canonicalize",
        "cse",
        "func.func(cse, canonicalize{top-down=false})",
    ]
    assert [e.text for e in expand_pipeline("a,b{x={1,2}}")] == ["a", "b{x={1,2}}"]
    assert expand_pipeline("builtin.module()") == []
    with pytest.raises(PassPipelineError, match="expected ',' or '\\)'"):
        expand_pipeline("builtin.module(cse")


def test_build_pass_manager_preserves_order() -> None:
    context = create_context()
    pm = build_pass_manager("builtin.module(cse,wpk-verify,canonicalize{top-down=false})", context)
    text = str(pm)
    assert text.index("cse") < text.index("wpk-verify") < text.index("canonicalize")


def test_unknown_wpk_pass_lists_known_ones() -> None:
    with pytest.raises(PassPipelineError) as info:
        build_pass_manager("builtin.module(wpk-nope)", create_context())
    for name in wpk_passes():
        assert name in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_upstream_pass_keeps_mlir_message() -> None:
    with pytest.raises(PassPipelineError, match="'no-such-pass' does not refer to a registered pass") as info:
        build_pass_manager("builtin.module(no-such-pass)", create_context())
    assert "upstream MLIR pass" in str(info.value) and "wpk-verify" in str(info.value)


def test_wpk_pass_must_be_top_level_and_takes_no_options() -> None:
    with pytest.raises(PassPipelineError, match=r"nested in 'func\.func"):
        build_pass_manager("builtin.module(func.func(wpk-verify))", create_context())
    with pytest.raises(PassPipelineError, match="takes no options"):
        build_pass_manager("builtin.module(wpk-verify{a=1})", create_context())


def test_unavailable_pass_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = PassInfo("wpk-broken", "never importable", LazyPass("woodpecker.no_such_module", "run"))
    monkeypatch.setattr(passes, "wpk_passes", lambda: {"wpk-broken": broken})
    assert broken.unavailable_reason() is not None
    with pytest.raises(PassPipelineError, match="'wpk-broken' is unavailable"):
        build_pass_manager("wpk-broken", create_context())


def test_wpk_verify_pass_emits_diagnostics() -> None:
    context = create_context()
    module = ir.Module.parse(DYNAMIC, context)
    failures = verify_module(module.operation)
    assert len(failures) == 1
    assert failures[0].text().startswith("'wpk.relu' op operand #0 must be a statically shaped f32 tensor")
    pm = build_pass_manager("wpk-verify", context)
    with pytest.raises(ir.MLIRError) as info:
        pm.run(module.operation)
    assert "statically shaped" in info.value.error_diagnostics[0].message


# ----------------------------------------------------------------------------
# wpk-opt.


def test_list_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-passes"]) == 0
    out = capsys.readouterr().out
    for name, info in wpk_passes().items():
        assert f"--{name}" in out and info.summary in out
    assert "--wpk-lower" in out and "upstream mlir-opt passes are accepted" in out


def test_roundtrip_and_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path, RELU)
    out = tmp_path / "out.mlir"
    assert main([src, "--wpk-verify", "--canonicalize", "-o", str(out)]) == 0
    assert '"wpk.relu"(%arg0)' in out.read_text()
    assert capsys.readouterr().out == ""


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(RELU))
    assert main(["-"]) == 0
    assert "func.func @f" in capsys.readouterr().out


def test_pass_flags_build_a_pipeline_in_order() -> None:
    opts = parse_args(["x.mlir", "--wpk-verify", "--canonicalize=top-down=false", "-cse", "--wpk-lower"])
    assert opts.pipeline == "builtin.module(wpk-verify,canonicalize{top-down=false},cse,wpk-lower)"
    assert opts.input == "x.mlir"


def test_opt_level_flags_insert_the_graph_pipeline_in_place() -> None:
    opts = parse_args(["x.mlir", "--wpk-verify", "-O2", "--wpk-lower"])
    assert opts.pipeline == (
        "builtin.module(wpk-verify,wpk-fold-constants,wpk-fold-batchnorm,wpk-fold-transpose,wpk-fuse-attention,wpk-fuse-layernorm,wpk-fuse,wpk-cleanup,wpk-lower)"
    )
    assert parse_args(["x.mlir", "-O1"]).pipeline == "builtin.module(wpk-fold-constants,wpk-fold-batchnorm,wpk-cleanup)"
    assert parse_args(["x.mlir", "-O0"]).pipeline == ""
    assert GRAPH_PIPELINES["wpk-graph-opt"] == f"builtin.module({OPT_LEVEL_PIPELINES[2]})"


def test_graph_passes_fold_and_fuse_from_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = """
func.func @main(%x: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %w = "wpk.weight"() {value = dense_resource<w> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  %t = "wpk.transpose"(%w) {perm = array<i64: 1, 0>} : (tensor<2x2xf32>) -> tensor<2x2xf32>
  %m = "wpk.matmul"(%x, %t) : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %r = "wpk.relu"(%m) : (tensor<2x2xf32>) -> tensor<2x2xf32>
  return %r : tensor<2x2xf32>
}
{-# dialect_resources: { builtin: { w: "0x040000000000803F000000400000404000008040" } } #-}
"""
    assert main([write(tmp_path, text), "-O2"]) == 0
    out = capsys.readouterr().out
    assert '"wpk.fused_matmul"(%arg0, %0) {epilogue = ["relu"]' in out
    assert "wpk.transpose" not in out
    # [[1, 2], [3, 4]] transposed, in a new 64-byte aligned blob.
    assert '"0x400000000000803F0000404000000040' in out


def test_unknown_pass_flag_lists_known_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path, RELU)
    assert main([src, "--wpk-frobnicate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wpk-opt: error: unknown wpk pass 'wpk-frobnicate'")
    for name in wpk_passes():
        assert name in err
    assert "Traceback" not in err


def test_unknown_upstream_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path, RELU)
    assert main([src, "--pass-pipeline=builtin.module(not-a-pass)"]) == 1
    assert "'not-a-pass' does not refer to a registered pass" in capsys.readouterr().err


def test_pipeline_and_pass_flags_conflict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path, RELU)
    assert main([src, "--pass-pipeline=builtin.module(cse)", "--cse"]) == 1
    assert "can't be used with individual pass options" in capsys.readouterr().err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.mlir"
    assert main([str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"wpk-opt: error: cannot open input file '{missing}'" in err
    assert "Traceback" not in err


def test_malformed_ir_reports_file_line_col(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path, "func.func @f() {\n  %0 = arith.constant 1 : i32\n  %1 = arith.addi %0, %0 : i64\n}\n")
    out = tmp_path / "out.mlir"
    assert main([src, "-o", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{src}:3:19: error: use of value '%0' expects different type than prior uses: 'i64' vs 'i32'"
    assert err[1] == "  %1 = arith.addi %0, %0 : i64"
    assert err[2] == " " * 18 + "^"
    assert err[3] == f"{src}:2:3: note: prior use here"
    assert not out.exists()


def test_verifier_error_from_irdl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(
        tmp_path,
        RELU.replace('"wpk.relu"(%a)', '"wpk.relu"(%a, %a)').replace(
            "(tensor<2x3xf32>) ->", "(tensor<2x3xf32>, tensor<2x3xf32>) ->", 1
        ),
    )
    assert main([src]) == 1
    assert f"{src}:2:8: error: op expects exactly 1 operands, but got 2" in capsys.readouterr().err


def test_wpk_verify_failure_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # IRDL accepts dynamic shapes; wpk-opt runs the Woodpecker verifier after parsing anyway
    # (as mlir-opt verifies what it parsed), with or without --wpk-verify, reporting it once.
    src = write(tmp_path, DYNAMIC)
    for args in ([src], [src, "--wpk-verify"], [src, "-O2"]):
        assert main(args) == 1
        captured = capsys.readouterr()
        message = f"{src}:2:8: error: 'wpk.relu' op operand #0 must be a statically shaped f32 tensor"
        assert captured.err.count(message) == 1
        assert captured.out == ""


def test_split_input_file_keeps_going_and_line_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path, RELU + "// -----\n" + DYNAMIC + "// -----\n" + RELU)
    assert main([src, "--split-input-file", "--wpk-verify"]) == 1
    captured = capsys.readouterr()
    chunks = captured.out.split("// -----\n")
    assert len(chunks) == 3
    assert "func.func @f" in chunks[0] and chunks[1] == "" and "func.func @f" in chunks[2]
    assert f"{src}:7:8: error: 'wpk.relu' op operand #0" in captured.err


def test_verify_diagnostics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = DYNAMIC.replace("  %0 =", "  // expected-error @+1 {{must be a statically shaped f32 tensor}}\n  %0 =")
    src = write(tmp_path, RELU + "// -----\n" + expected)
    assert main([src, "--split-input-file", "--verify-diagnostics", "--wpk-verify"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("module {")  # the chunk without errors still prints

    wrong = expected.replace("@+1", "@+2")
    src = write(tmp_path, wrong, "wrong.mlir")
    assert main([src, "--verify-diagnostics", "--wpk-verify"]) == 1
    err = capsys.readouterr().err
    assert f"{src}:3:8: error: unexpected error: 'wpk.relu' op operand #0" in err
    assert f'{src}:2:6: error: expected error "must be a statically shaped f32 tensor" was not produced' in err


def test_print_ir_after_all_goes_to_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path, RELU)
    assert main([src, "--wpk-verify", "--cse", "--mlir-print-ir-after-all"]) == 0
    captured = capfd.readouterr()
    assert "// -----// IR Dump After wpk-verify (wpk-verify) //----- //" in captured.err
    assert "IR Dump After CSE (cse)" in captured.err
    assert "IR Dump" not in captured.out


def test_print_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = RELU.replace(
        "  return %0",
        '  %1 = "wpk.constant"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>} : () -> tensor<3xf32>\n  return %0',
    )
    src = write(tmp_path, text)
    assert main([src, "--mlir-elide-elementsattrs-if-larger=2", "--mlir-print-debuginfo"]) == 0
    out = capsys.readouterr().out
    assert "dense_resource<__elided__>" in out
    assert f'loc("{src}":2:8)' in out


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "usage: wpk-opt" in capsys.readouterr().out
    assert main(["--input-shape", "x=1x2"]) == 1
    assert "--input-shape needs --import-onnx" in capsys.readouterr().err
    assert main(["--import-onnx", "--input-shape", "x=1xq", "m.onnx"]) == 1
    assert "invalid --input-shape 'x=1xq'" in capsys.readouterr().err
    assert main(["--mlir-elide-elementsattrs-if-larger", "many"]) == 1


def test_checkout_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "wpk-opt"), "--list-passes"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "wpk-verify" in result.stdout


# ----------------------------------------------------------------------------
# The --verify-diagnostics matcher on its own.


def _verifier(text: str) -> DiagnosticVerifier:
    return DiagnosticVerifier.from_text("t.mlir", text, SourceBuffers())


def test_designators_resolve_lines() -> None:
    text = "\n".join(
        [
            "op1",  # 1
            "// expected-warning @above {{w1}}",  # 2 -> 1
            "// expected-note @below {{n1}}",  # 3 -> 8 (the next line without a designator)
            "// expected-remark @-3 {{r1}}",  # 4 -> 1
            "op2 // expected-error {{e1}}",  # 5 -> 5
            "// expected-error @unknown {{u1}}",  # -> no position
            "// expected-error-re @+1 {{value {{[0-9]+}} is bad}}",  # 7 -> 8
            "op3",
        ]
    )
    verifier = _verifier(text)
    lines = {e.text: e.line for e in verifier.expected}
    assert lines == {"w1": 1, "n1": 8, "r1": 1, "e1": 5, "u1": None, "value {{[0-9]+}} is bad": 8}

    verifier.process(Diag("warning", "has w1 inside", SourcePos("t.mlir", 1, 1)))
    verifier.process(Diag("remark", "r1", SourcePos("t.mlir", 1, 3)))
    verifier.process(Diag("error", "e1", SourcePos("t.mlir", 5, 1)))
    verifier.process(Diag("error", "u1 somewhere"))
    note = Diag("note", "n1", SourcePos("t.mlir", 8, 2))
    verifier.process(Diag("error", "value 42 is bad", SourcePos("t.mlir", 8, 1), notes=(note,)))
    assert verifier.finish() == []


def test_unmatched_and_near_miss() -> None:
    verifier = _verifier("op\n// expected-warning @above {{careful}}\n")
    verifier.process(Diag("error", "be careful", SourcePos("t.mlir", 1, 1)))
    messages = verifier.finish()
    assert messages[0] == "t.mlir:2:4: error: 'error' diagnostic emitted when expecting a 'warning'"
    assert messages[1] == 't.mlir:2:4: error: expected warning "careful" was not produced'

    verifier = _verifier("op\n")
    verifier.process(Diag("error", "boom", SourcePos("t.mlir", 1, 1)))
    verifier.process(Diag("error", "elsewhere", SourcePos("other.mlir", 1, 1)))
    assert verifier.finish() == [
        "t.mlir:1:1: error: unexpected error: boom",
        "other.mlir:1:1: error: unexpected error: elsewhere",
    ]


def test_op_notes_are_ignored() -> None:
    verifier = _verifier("op // expected-error {{bad}}\n")
    note = Diag("note", "see current operation: %0 = ...", SourcePos("t.mlir", 1, 1))
    verifier.process(Diag("error", "bad", SourcePos("t.mlir", 1, 1), notes=(note,)))
    assert verifier.finish() == []


def _bad_result_shape(op: ir.Operation, pass_: object) -> None:
    """A buggy pass: gives the relu a result shape its operand does not have."""
    del pass_

    def visit(child: ir.Operation) -> ir.WalkResult:
        if child.name == "wpk.relu":
            child.results[0].set_type(ir.RankedTensorType.get([3, 2], ir.F32Type.get()))
        return ir.WalkResult.ADVANCE

    with op.context, ir.Location.unknown():
        op.walk(visit)


def test_woodpecker_verifier_runs_after_each_wpk_pass(tmp_path: Path) -> None:
    """MLIR verifies after every pass; with PassChecks(verify_each=True) (as wpk-opt runs them)
    the Woodpecker verifier does too, so a pass that breaks an op's shape rule fails at the op."""
    buggy = passes.PassInfo("wpk-buggy", "breaks a result shape", _bad_result_shape)
    context = create_context()
    module = ir.Module.parse(
        """func.func @main(%a: tensor<2x3xf32>) -> tensor<6xf32> {
          %0 = "wpk.relu"(%a) : (tensor<2x3xf32>) -> tensor<2x3xf32>
          %1 = "wpk.reshape"(%0) : (tensor<2x3xf32>) -> tensor<6xf32>
          return %1 : tensor<6xf32>
        }""",
        context,
    )
    for verify_each, fails in ((False, False), (True, True)):
        pm = PassManager("builtin.module", context=context)
        pm.add(buggy.load(checks=passes.PassChecks(verify_each=verify_each)), name="wpk-buggy")
        copy = ir.Module.parse(str(module), context)
        if not fails:
            pm.run(copy.operation)  # the shape rule alone is not MLIR's business
            continue
        with pytest.raises(ir.MLIRError) as info:
            pm.run(copy.operation)
        messages = [d.message for d in info.value.error_diagnostics]
        assert any("'wpk.relu' op result shape [3, 2] does not match the expected shape [2, 3]" in m for m in messages)


def test_lowering_failure_is_a_diagnostic_at_the_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lowering failure is reported like a verifier error (file:line:col of the op), so that
    --verify-diagnostics can match it."""
    import woodpecker.lowering as lowering

    monkeypatch.setattr(lowering, "lowering_of", lambda op: None)  # no lowering for any op
    src = write(tmp_path, RELU)
    assert main([src, "--wpk-lower-to-linalg"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{src}:2:8: error: cannot lower 'wpk.relu': no lowering for this op (lowered ops: ")
    assert "Traceback" not in err
    expected = RELU.replace(
        '  %0 = "wpk.relu"',
        "  // expected-error @+1 {{cannot lower 'wpk.relu': no lowering for this op}}\n  %0 = \"wpk.relu\"",
    )
    assert main([write(tmp_path, expected, "expected.mlir"), "--wpk-lower-to-linalg", "--verify-diagnostics"]) == 0
