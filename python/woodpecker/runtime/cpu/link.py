"""An object file into a shared library: the system's C compiler driver (`$CC`, `cc`, `gcc`,
`clang`) runs the linker; the LLVM wheels ship no `ld.lld`. No MLIR here.

The library exports only the entry point and the tables the loader fills (a version script),
binds its own references locally, and names the libraries it calls (OpenMP, oneDNN, BLAS) as
DT_NEEDED by their sonames, so that every undefined symbol is checked at link time
(`-z defs`); the loader loads those libraries by path before the model, and the dynamic loader
finds them by soname among the loaded ones.

The code of strided copies calls `memrefCopy` of MLIR's runner utilities, whose library needs
libMLIR and libLLVM (hundreds of MB): the same routine (`MEMREF_COPY_C`, the algorithm of
mlir/lib/ExecutionEngine/CRunnerUtils.cpp) is compiled into every library instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from woodpecker.errors import WoodpeckerError

DRIVERS = ("cc", "gcc", "clang")

MEMREF_COPY_C = r"""
#include <stdint.h>
#include <string.h>
typedef struct { int64_t rank; void *descriptor; } UnrankedMemRef;
typedef struct { char *allocated; char *aligned; int64_t offset; int64_t sizes_and_strides[]; } Descriptor;
void memrefCopy(int64_t elem_size, UnrankedMemRef *src_arg, UnrankedMemRef *dst_arg) {
  int64_t rank = src_arg->rank;
  Descriptor *src = (Descriptor *)src_arg->descriptor, *dst = (Descriptor *)dst_arg->descriptor;
  const int64_t *sizes = src->sizes_and_strides, *src_strides = src->sizes_and_strides + rank;
  const int64_t *dst_sizes = dst->sizes_and_strides, *dst_strides = dst->sizes_and_strides + rank;
  for (int64_t axis = 0; axis < rank; ++axis)
    if (sizes[axis] == 0) return;
  char *src_ptr = src->aligned + src->offset * elem_size, *dst_ptr = dst->aligned + dst->offset * elem_size;
  if (rank == 0) { memcpy(dst_ptr, src_ptr, elem_size); return; }
  int64_t indices[rank];
  for (int64_t axis = 0; axis < rank; ++axis) indices[axis] = 0;
  int64_t read = 0, write = 0;
  for (;;) {
    memcpy(dst_ptr + write, src_ptr + read, elem_size);
    for (int64_t axis = rank - 1; axis >= 0; --axis) {
      int64_t index = ++indices[axis];
      read += src_strides[axis] * elem_size;
      write += dst_strides[axis] * elem_size;
      if (index < sizes[axis]) break;
      if (axis == 0) return;
      indices[axis] = 0;
      read -= sizes[axis] * src_strides[axis] * elem_size;
      write -= dst_sizes[axis] * dst_strides[axis] * elem_size;
    }
  }
}
"""


class LinkError(WoodpeckerError):
    """No linker here, or the link failed (one line with the linker's first error)."""


def find_driver() -> str:
    """The C compiler driver that links: `$CC`, else the first of DRIVERS on PATH."""
    for name in ([os.environ["CC"]] if os.environ.get("CC") else []) + list(DRIVERS):
        path = shutil.which(name)
        if path:
            return path
    raise LinkError(f"no C compiler driver to link the shared library with (tried $CC, {', '.join(DRIVERS)})")


def link_shared(object_file: Path, output: Path, exports: Sequence[str], libraries: Sequence[Path]) -> None:
    """Links `object_file` (and `MEMREF_COPY_C`) into the shared library `output` exporting
    `exports`, with the `libraries` as dependencies (by soname) and libm/libc; every symbol must resolve."""
    script = output.with_suffix(".map")
    script.write_text("{\n  global:\n" + "".join(f"    {name};\n" for name in exports) + "  local: *;\n};\n")
    support = output.with_name("memref_copy.c")
    support.write_text(MEMREF_COPY_C)
    command = [find_driver(), "-shared", "-O2", "-fPIC", "-o", str(output), str(object_file), str(support)]
    command += ["-Wl,-z,defs", "-Wl,-Bsymbolic", f"-Wl,--version-script={script}", "-Wl,-z,noexecstack"]
    for library in libraries:
        command += [f"-L{library.parent}", f"-l:{library.name}"]
    command += ["-lm", "-lc"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise LinkError(f"linking {output.name} failed: {err}") from None
    finally:
        script.unlink(missing_ok=True)
        support.unlink(missing_ok=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        first = next((line for line in lines if "error" in line or "undefined" in line), lines[0] if lines else "")
        raise LinkError(f"linking {output.name} with {Path(command[0]).name} failed: {first.strip()}")
