"""The compile targets: `cpu.CpuTarget` and `cuda.CudaTarget`, both `woodpecker.kernels.target.Target`s.

A target cuts a lowered model into kernels, gives each its search space, lists the library
calls that can compute it, measures candidates, and generates code from per-kernel decisions;
`woodpecker.compile`, the selection and `wpk tune` drive every target the same way.
`schedule_pass` is `wpk-opt --wpk-apply-schedule`, which applies either target's schedules.
"""
