"""Assembling PTX with `ptxas` and reading what it reports (`-v`): registers, spills, memory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from woodpecker.errors import CompilationError
from woodpecker.gpu.program import KernelResources


@cache
def find_ptxas() -> str | None:
    """ptxas from PATH, else from $CUDA_HOME/$CUDA_PATH/bin or /usr/local/cuda/bin; None if absent."""
    found = shutil.which("ptxas")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "bin" / "ptxas").exists():
            return str(Path(root) / "bin" / "ptxas")
    return None


_PROPS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_FIELDS = {
    "barriers": re.compile(r"used (\d+) barriers"),
    "static_shared": re.compile(r"(\d+) bytes smem"),
    "constant": re.compile(r"(\d+) bytes cmem\[0\]"),
}


def parse_resources(log: str, kernel: str) -> KernelResources:
    """Resources of entry `kernel` from a `ptxas -v` log."""
    section = log.split(f"Function properties for {kernel}", 1)
    if len(section) != 2:
        raise CompilationError(f"ptxas -v reported nothing for {kernel}:\n{log}")
    text = section[1]
    props, used = _PROPS.search(text), _USED.search(text)
    if props is None or used is None:
        raise CompilationError(f"cannot read the ptxas -v report for {kernel}:\n{log}")
    line = text[used.start() :].splitlines()[0]
    extra = {name: int(m.group(1)) if (m := rx.search(line)) else 0 for name, rx in _FIELDS.items()}
    return KernelResources(
        registers=int(used.group(1)),
        stack_frame=int(props.group(1)),
        spill_stores=int(props.group(2)),
        spill_loads=int(props.group(3)),
        **extra,
    )


def assemble(ptx: str, arch: str, kernel: str, ptxas: str | None = None) -> tuple[bytes, KernelResources]:
    """Runs `ptxas -arch=<arch> -v` on `ptx`; returns the cubin and the resources of `kernel`."""
    tool = ptxas or find_ptxas()
    if tool is None:
        raise CompilationError("ptxas is not installed (looked on PATH and in $CUDA_HOME/bin, /usr/local/cuda/bin)")
    with tempfile.TemporaryDirectory(prefix="wpk-ptxas-") as tmp:
        source, cubin = Path(tmp) / f"{kernel}.ptx", Path(tmp) / f"{kernel}.cubin"
        source.write_text(ptx)
        done = subprocess.run(
            [tool, f"-arch={arch}", "-v", "-o", str(cubin), str(source)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise CompilationError(f"ptxas failed on {kernel} for {arch}:\n{done.stderr}")
        return cubin.read_bytes(), parse_resources(done.stdout + done.stderr, kernel)


def assemble_all(ptx: dict[str, str], arch: str) -> dict[str, tuple[bytes, KernelResources]]:
    """Assembles several kernels (entry name -> PTX) in parallel."""
    tool = find_ptxas()
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(ptx)))) as pool:
        futures = {name: pool.submit(assemble, text, arch, name, tool) for name, text in ptx.items()}
        return {name: future.result() for name, future in futures.items()}
