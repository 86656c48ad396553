"""Builders and runners: compile candidate configurations of a kernel task and time them.

`cpu_runner` (in process, or isolated in `cpu_worker` subprocesses), `cuda_runner` (on a local
GPU, or exported as `batch` directories that `wpk measure` times on a GPU host without MLIR),
and `recorded` (replayed or cached measurements). The selection and the tuner both use them.
"""
