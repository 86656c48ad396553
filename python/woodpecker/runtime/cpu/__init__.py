"""Running CPU code without MLIR: numpy and ctypes (plus the OpenMP runtime, oneDNN and BLAS
when the code calls them).

* `host`: the CPU this process runs on (its instruction-set extensions, read from /proc/cpuinfo);
* `memref`: MLIR's memref descriptors as ctypes structures, the arguments of compiled code;
* `onednn`, `blas`: the vendor libraries through ctypes;
* `library_calls`: the library objects a compiled model calls and the handle tables through which
  the code reaches them (filled at compile time for the JIT, at load time for a saved model);
* `link`: an object file into a shared library (the system's C compiler driver);
* `deploy`: the saved model directory (shared library, weights, manifest.json) and
  `DeployedCpuModel`, which `woodpecker.load(directory)` returns for it.
"""
