"""Vendor library kernels (oneDNN, BLAS) that compete with generated code."""
