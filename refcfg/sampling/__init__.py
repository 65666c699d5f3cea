"""Sampling guided fields: ``sample`` (public), NumPy reference integrators, Numba and CUDA kernels,
and the ODE log-likelihood ``log_likelihood``. Importing this package imports no numba kernel."""

from .api import BACKENDS, SAMPLERS, sample, sigma_values, time_grid
from .likelihood import log_likelihood

__all__ = ["sample", "log_likelihood", "SAMPLERS", "BACKENDS", "time_grid", "sigma_values"]
