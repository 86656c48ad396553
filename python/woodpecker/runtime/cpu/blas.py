"""A BLAS sgemm for matmul kernels: OpenBLAS from PyPI's `scipy-openblas32`, loaded with ctypes.

The generated code calls `scipy_cblas_sgemm` directly (woodpecker.libs.emit): row-major,
C = A @ op(B) with alpha 1 and beta 0, into a fresh buffer; the kernel's epilogue (bias,
activation) stays a generated elementwise kernel. OpenBLAS runs on its own pthreads pool:
It runs on one thread (`load`, `set_threads`): a second thread pool next to the OpenMP one
(generated code and oneDNN) competed for the cores with the kernels that run next.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

SGEMM_SYMBOL = "scipy_cblas_sgemm"
# (order, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
# stride_c, batch): the strided batch of sgemm of recent OpenBLAS releases (MKL's signature).
SGEMM_BATCH_STRIDED_SYMBOL = "scipy_cblas_sgemm_batch_strided"
# CBLAS enum values (cblas.h): CblasRowMajor, CblasNoTrans, CblasTrans.
ROW_MAJOR = 101
NO_TRANS = 111
TRANS = 112


class BlasUnavailable(Exception):
    """The BLAS package is not installed or its library does not load."""


def library_path() -> Path | None:
    """libscipy_openblas.so of the scipy-openblas32 package, or None."""
    try:
        import scipy_openblas32
    except ImportError:
        return None
    path = Path(scipy_openblas32.get_lib_dir()) / f"lib{scipy_openblas32.get_library()}.so"
    return path if path.exists() else None


@functools.cache
def load() -> ctypes.CDLL:
    """The loaded OpenBLAS (once per process); raises BlasUnavailable with the reason."""
    path = library_path()
    if path is None:
        raise BlasUnavailable("the 'scipy-openblas32' package is not installed (pip install scipy-openblas32)")
    # OpenBLAS runs single-threaded here: its own pthreads pool, next to the OpenMP pool of the
    # generated code and oneDNN, took the cores from the kernels that follow a BLAS call
    # (measured: MobileNetV2 with an OpenBLAS head ran 2x slower, also with its workers told to
    # sleep at once, OPENBLAS_THREAD_TIMEOUT=4). Read when the library loads; a user's value wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        lib = ctypes.CDLL(str(path))
        getattr(lib, SGEMM_SYMBOL)
    except (OSError, AttributeError) as err:
        raise BlasUnavailable(f"{path} does not load: {err}") from None
    lib.scipy_openblas_set_num_threads.argtypes = [ctypes.c_int]
    lib.scipy_openblas_get_num_threads.restype = ctypes.c_int
    return lib


def has_batch_strided() -> bool:
    """Whether the loaded OpenBLAS has `SGEMM_BATCH_STRIDED_SYMBOL` (batched matmul calls need it)."""
    return hasattr(load(), SGEMM_BATCH_STRIDED_SYMBOL)


def availability() -> str | None:
    """None when the BLAS is usable, else why not (never raises)."""
    try:
        load()
    except BlasUnavailable as err:
        return str(err)
    return None


def set_threads(count: int) -> None:
    """The number of threads OpenBLAS uses from now on."""
    if count < 1:
        raise ValueError(f"thread count must be >= 1, got {count}")
    load().scipy_openblas_set_num_threads(count)


def get_threads() -> int:
    return int(load().scipy_openblas_get_num_threads())
