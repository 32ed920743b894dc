"""The CUDA backend's building blocks (numba-cuda kernels as source text, cuBLAS products,
device-resident training state). Importing this package imports no numba: the kernels are
text until a generated module is loaded, so a CPU-only machine can test all of it."""
