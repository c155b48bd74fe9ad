"""Statistical core: array kernels and the public estimators built on them."""
