"""Running compiled models without MLIR: numpy, ctypes and cuda-python only.

* `memory`: the liveness-based arena planner any plan uses;
* `cuda/`: the CUDA inference plan (`plan`), its executor (`executor`: one stream, a CUDA
  graph), the cuDNN/cuBLASLt calls (`libraries`), the kernel launcher and device queries
  (`launch`), and `model.load(directory)` for a saved plan.

Nothing in this package imports `mlir` (tests/py/test_layering.py checks it), so a deployment
host needs only the runtime dependencies.
"""
