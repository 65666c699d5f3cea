"""Sampling guided fields: ``sample`` (public), NumPy reference integrators, Numba and CUDA kernels."""

from .api import SAMPLERS, sample, sigma_values, time_grid

__all__ = ["sample", "SAMPLERS", "time_grid", "sigma_values"]
