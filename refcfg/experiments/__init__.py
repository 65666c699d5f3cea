"""The studies: one module per reproduced result, plus the tilted law they compare with.

Each module defines ``NAME``, ``TITLE`` and ``run(fast=False, seed=0, ...) -> Result`` (a table of
dict rows, key numbers, and ``figure_data``: the arrays its figure shows). ``run_experiment(name)``
dispatches by name; the ``refcfg reproduce NAME`` command and ``verification/reproduce_*.py`` call
it. Results are written up in docs/verification.md and docs/guidance-variants.md. Studies compute
and never draw: ``refcfg.plotting.studies.write_figure(result, path)`` draws what a study returned;
tables print through ``refcfg._format``. ``figure_set`` computes what the figure set of
``refcfg figures`` and the interactive page show. ``tilted`` holds the one log-density and sampler
of the tilted law p(x|y)^w p(x)^(1-w)/Z.

1. gaussian-pushforward  Gaussian CFG endpoint laws (ODE, DDPM-like SDE, tilted) and the samplers
2. cfg-vs-tilted         CFG samples vs the tilted law on 1-D and 2-D mixtures
3. classifier-vs-cfg     classifier guidance = CFG trajectories with exact fields
4. guidance-interval     guidance interval vs guidance everywhere (mode dropping)
5. tree                  the autoguidance tree: CFG vs a weaker exact model
6. predictor-corrector   large-w limits of the ODE and SDE laws (arXiv 2408.09000)
7. compare-guidance      guidance variants (interval, rescale, APG, CFG-Zero*, autoguidance, w(t))
8. digits                exact CFG on the handwritten digits: point masses vs fitted mixtures
9. noisy-labels          CFG of a model of noisy prompt pairs vs the clean class law
10. vector-prompts       prompts in R^m: classifier guidance = CFG, CFG samples vs p(x|y)
11. underfit             CFG of underfit learned models vs p(x|y) and vs exact CFG
"""

from __future__ import annotations

import importlib

from .._validation import as_int
from ._common import Result, format_table

__all__ = ["EXPERIMENTS", "run_experiment", "Result", "format_table"]

EXPERIMENTS = {
    "gaussian-pushforward": "gaussian_pushforward",
    "cfg-vs-tilted": "cfg_vs_tilted",
    "classifier-vs-cfg": "classifier_vs_cfg",
    "guidance-interval": "guidance_interval",
    "tree": "tree",
    "predictor-corrector": "predictor_corrector",
    "compare-guidance": "compare_guidance",
    "digits": "digits",
    "noisy-labels": "noisy_labels",
    "vector-prompts": "vector_prompts",
    "underfit": "underfit",
}


def run_experiment(name: str, fast: bool = False, seed: int = 0) -> Result:
    """Run the named experiment (see ``EXPERIMENTS``) and return its Result."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    # checked here, before a study derives its own seeds from it (the tree uses seed + 1)
    seed = as_int(seed, "seed", lo=0)
    module = importlib.import_module(f"{__name__}.{EXPERIMENTS[name]}")
    return module.run(fast=fast, seed=seed)
