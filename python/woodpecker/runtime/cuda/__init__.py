"""The CUDA runtime: plans, their executor, library calls and the kernel launcher (no MLIR)."""
