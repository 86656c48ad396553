"""The CUDA inference plan: memory planning, library calls and the executor (no MLIR needed)."""
