"""Sampling guided fields: ``sample`` (public), NumPy reference integrators, Numba and CUDA kernels,
and the ODE log-likelihood ``log_likelihood``. Importing this package imports no numba kernel."""

from ..guidance.nonlinear import register_input_velocity
from .api import BACKENDS, SAMPLERS, sample, sigma_values, time_grid
from .likelihood import log_likelihood


def _kernel_velocity(field, x, t):
    """A nonlinear rule's input field on the CPU kernels when it lowers and the call's backend
    choice allows it (``api.inputs_on_kernels``), else its own method."""
    from . import api, cpu

    if api.inputs_on_kernels() and cpu.supports(field):
        return cpu.velocity(field, x, t)
    return field.velocity(x, t)


register_input_velocity(_kernel_velocity)

__all__ = ["sample", "log_likelihood", "SAMPLERS", "BACKENDS", "time_grid", "sigma_values"]
