"""The test tiers."""

# The fast tier, `pytest -m "not slow"`, is the exact core (fields, conversions, guidance, lowering,
# kernels against NumPy, learning maths) for everyday work. These modules run the command line in
# subprocesses, draw figures, start Dask clusters, run the CUDA simulator, drive a browser or draw
# large Monte Carlo samples: each is slow as a whole (single tests elsewhere carry their own mark).
# The full suite, the README's test command and CI, runs everything.
SLOW_MODULES = frozenset(
    {
        "tests/commands/test_command_edges.py",
        "tests/experiments/test_exp_cli.py",
        "tests/experiments/test_exp_digits.py",
        "tests/experiments/test_exp_sampling.py",
        "tests/experiments/test_exp_gaussian.py",
        "tests/experiments/test_tilted.py",
        "tests/interop/test_interop_diffusers.py",
        "tests/interop/test_interop_docs.py",
        "tests/interop/test_interop_imports.py",
        "tests/interop/test_interop_jax.py",
        "tests/interop/test_interop_kdiffusion.py",
        "tests/interop/test_interop_torch.py",
        "tests/interop/test_sample_checks.py",
        "tests/interop/test_sampler_error.py",
        "tests/sampling/test_cuda_sim.py",
        "tests/sweep/test_run.py",
        "tests/sweep/test_shipped_specs.py",
        "tests/test_cli_check.py",
        "tests/test_compare_guidance.py",
        "tests/test_demo.py",
        "tests/test_docs.py",
        "tests/test_figures.py",
        "tests/test_gaussian.py",
        "tests/test_interactive.py",
        "tests/test_plotting_lazy.py",
        "tests/test_testing.py",
    }
)
