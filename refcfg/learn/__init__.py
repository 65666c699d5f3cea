"""Learned fields: NumPy MLPs trained by flow matching with CFG label dropout, noisy classifiers,
and their comparison against the exact fields (notes arXiv 2506.02070, section 5, eqs. 59-67).

``import refcfg`` does not import this subpackage; ``import refcfg.learn`` does (NumPy only, plus
tqdm when a progress bar is shown and scipy.stats when the comparison computes sample metrics).

- :mod:`refcfg.learn.mlp`: ``MLP`` (manual backprop), ``Adam`` (Kingma and Ba, Algorithm 1), save/load.
- :mod:`refcfg.learn.train`: ``train_cfg`` (label dropout eta), ``train_unconditional``.
- :mod:`refcfg.learn.classifier`: ``NoisyClassifier``, ``train_classifier``.
- :mod:`refcfg.learn.fields`: ``LearnedField``, ``learned_cfg``, ``LearnedClassifierGuidedField``.
- :mod:`refcfg.learn.compare`: ``compare`` and its ``ComparisonReport``.
"""

from .classifier import NoisyClassifier, train_classifier
from .compare import ComparisonReport, classifier_errors, compare, field_errors, sample_comparison
from .fields import LearnedCFGField, LearnedClassifierGuidedField, LearnedField, learned_cfg
from .mlp import MLP, Adam, MLPConfig, load_mlp, time_features
from .train import DEFAULTS, TrainResult, cfg_batch, train_cfg, train_unconditional

__all__ = [
    "MLP",
    "MLPConfig",
    "Adam",
    "load_mlp",
    "time_features",
    "train_cfg",
    "train_unconditional",
    "cfg_batch",
    "TrainResult",
    "DEFAULTS",
    "NoisyClassifier",
    "train_classifier",
    "LearnedField",
    "LearnedCFGField",
    "LearnedClassifierGuidedField",
    "learned_cfg",
    "compare",
    "ComparisonReport",
    "field_errors",
    "classifier_errors",
    "sample_comparison",
]
