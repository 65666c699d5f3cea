"""Learned fields: NumPy MLPs trained by flow matching with CFG label dropout, noisy classifiers,
and their comparison against the exact fields (notes arXiv 2506.02070 v3, section 5, eqs. 63-67).

Submodules import the core lazily enough that ``import refcfg`` does not pay for them.
"""

from .mlp import MLP, MLPConfig, Adam, load_mlp, time_features

__all__ = ["MLP", "MLPConfig", "Adam", "load_mlp", "time_features"]
