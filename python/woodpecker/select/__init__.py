"""Selection: per kernel, the fastest of the generated code and the vendor libraries (oneDNN, BLAS)."""
