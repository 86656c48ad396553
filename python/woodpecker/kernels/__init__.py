"""What every target, the tuner and the selection share about kernels (no MLIR).

`task`: `KernelTask` (one kernel cut out of a model, with its signature), `MeasureResult` and
the `Runner` protocol that measures configurations.
"""
