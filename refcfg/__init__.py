"""refcfg: exact classifier-free guidance for Gaussian-mixture flow matching and diffusion.

Data laws are Gaussian mixtures per class, so along Gaussian probability paths x_t = alpha_t z +
beta_t eps every field has a closed form: densities, scores, velocities, the noisy classifier
p_t(y|x), classifier guidance and CFG. Conventions: t = 0 noise, t = 1 data; x (N, d) float64;
CFG u~ = w u(x|y) + (1 - w) u(x|null) (w = 1 + omega for Ho-Salimans' omega).
"""

from . import convert, metrics
from ._validation import NULL
from .guidance import CFGField, ClassifierGuidedField, ExactField, Field, GuidedField, guided
from .mixture import GMM, LabeledGMM
from .paths import GMMPath
from .problems import DEFAULT_PROBLEM, PROBLEMS, load_problem, problem
from .sampling import log_likelihood, sample
from .schedules import Schedule, ScheduleValues, custom_schedule, schedule

__version__ = "0.2.0"

__all__ = [
    "NULL",
    "GMM",
    "LabeledGMM",
    "GMMPath",
    "Schedule",
    "ScheduleValues",
    "schedule",
    "custom_schedule",
    "Field",
    "ExactField",
    "GuidedField",
    "CFGField",
    "ClassifierGuidedField",
    "guided",
    "problem",
    "load_problem",
    "PROBLEMS",
    "DEFAULT_PROBLEM",
    "sample",
    "log_likelihood",
    "convert",
    "metrics",
    "__version__",
]
