"""An object file into a shared library: the system's C compiler driver (`$CC`, `cc`, `gcc`,
`clang`) runs the linker; the LLVM wheels ship no `ld.lld`. No MLIR here.

The library exports only the entry point and the tables the loader fills (a version script),
binds its own references locally, and names the libraries it calls (OpenMP, oneDNN, BLAS) as
DT_NEEDED by their sonames, so that every undefined symbol is checked at link time
(`-z defs`); the loader loads those libraries by path before the model, and the dynamic loader
finds them by soname among the loaded ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from woodpecker.errors import WoodpeckerError

DRIVERS = ("cc", "gcc", "clang")


class LinkError(WoodpeckerError):
    """No linker here, or the link failed (one line with the linker's first error)."""


def find_driver() -> str:
    """The C compiler driver that links: `$CC`, else the first of DRIVERS on PATH."""
    for name in ([os.environ["CC"]] if os.environ.get("CC") else []) + list(DRIVERS):
        path = shutil.which(name)
        if path:
            return path
    raise LinkError(f"no C compiler driver to link the shared library with (tried $CC, {', '.join(DRIVERS)})")


def link_shared(
    object_file: Path, output: Path, exports: Sequence[str], libraries: Sequence[Path], rpath_origin: bool = False
) -> None:
    """Links `object_file` into the shared library `output` exporting `exports`, with the
    `libraries` as dependencies (by soname) and libm/libc; every symbol must resolve."""
    script = output.with_suffix(".map")
    script.write_text("{\n  global:\n" + "".join(f"    {name};\n" for name in exports) + "  local: *;\n};\n")
    command = [
        find_driver(),
        "-shared",
        "-o",
        str(output),
        str(object_file),
        "-Wl,-z,defs",
        "-Wl,-Bsymbolic",
        f"-Wl,--version-script={script}",
        "-Wl,-z,noexecstack",
    ]
    for library in libraries:
        command += [f"-L{library.parent}", f"-l:{library.name}"]
    if rpath_origin:
        command.append("-Wl,-rpath,$ORIGIN")
    command += ["-lm", "-lc"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise LinkError(f"linking {output.name} failed: {err}") from None
    finally:
        script.unlink(missing_ok=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        first = next((line for line in lines if "error" in line or "undefined" in line), lines[0] if lines else "")
        raise LinkError(f"linking {output.name} with {Path(command[0]).name} failed: {first.strip()}")


def undefined_symbols(error: LinkError) -> bool:
    """Whether the link failed on an undefined symbol (rather than on the tools)."""
    return "undefined" in str(error)
