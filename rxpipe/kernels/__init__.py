"""numba kernels: pure functions over numpy arrays, with state arrays passed in explicitly."""
