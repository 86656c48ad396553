"""NVIDIA targets the GPU backend compiles for, and their per-block limits."""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024


@dataclass(frozen=True)
class GpuArch:
    """One `sm_XX` target: PTX features for `#nvvm.target` and the launch limits we check."""

    chip: str
    ptx_features: str
    max_threads_per_block: int = 1024
    max_block_dims: tuple[int, int, int] = (1024, 1024, 64)
    max_grid_dims: tuple[int, int, int] = (2**31 - 1, 65535, 65535)
    # Shared memory a block may use without and with `cudaFuncAttributeMaxDynamicSharedMemorySize`.
    shared_default_bytes: int = 48 * KIB
    shared_opt_in_bytes: int = 48 * KIB


ARCHS: dict[str, GpuArch] = {
    # A100: 164 KiB per SM, 163 KiB per block with the opt-in.
    "sm_80": GpuArch("sm_80", "+ptx70", shared_opt_in_bytes=163 * KIB),
    "sm_86": GpuArch("sm_86", "+ptx71", shared_opt_in_bytes=99 * KIB),
    "sm_89": GpuArch("sm_89", "+ptx78", shared_opt_in_bytes=99 * KIB),
    # H100: 228 KiB per SM, 227 KiB per block with the opt-in.
    "sm_90": GpuArch("sm_90", "+ptx80", shared_opt_in_bytes=227 * KIB),
}


def get_arch(chip: str) -> GpuArch:
    try:
        return ARCHS[chip]
    except KeyError:
        raise ValueError(f"unsupported GPU architecture '{chip}'; supported: {', '.join(ARCHS)}") from None
