"""The commands check before they work: every bad argument or output path is refused with exit
status 2 and one line on stderr that names the option, before any computation and before any file
is written; work that is skipped is said.

"Before any computation" is shown by replacing the computation with a function that fails the test
if it is called."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from refcfg.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _never(*args, **kwargs):
    raise AssertionError("the command started working before checking its arguments")


def _files(root: Path) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _one_line_error(capsys, *needles):
    # the one-line compile announcement may precede the error where a check evaluates a field
    # (compare-guidance probes every rule on two points); it is information, not part of the error
    err = "".join(
        line
        for line in capsys.readouterr().err.splitlines(keepends=True)
        if not line.startswith("compiling the sampling kernels once")
    )
    assert err.startswith("refcfg: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# ---------------------------------------------------------------------------------------- train


def test_train_out_in_a_missing_directory_is_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("refcfg.learn.train.train_cfg", _never)
    out = tmp_path / "missing" / "m.npz"
    assert main(["train", "--out", str(out), "--steps", "5", "--no-progress"]) == 2
    _one_line_error(capsys, "--out", "does not exist")
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--w", "1,x"], "--w must be comma-separated numbers"),
        (["--steps", "0"], "--steps must be >= 1, got 0"),
        (["--eta", "1.5"], "--eta must be a probability in [0, 1]"),
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
        (["--problem", "nope"], "--problem: unknown problem 'nope'"),
        (["--schedule", "nope"], "--schedule: "),
        (["--classifier", "--problem", "DIR"], "--out"),
    ],
)
def test_train_bad_arguments_are_refused_before_training(
    tmp_path, capsys, monkeypatch, extra, needle
):
    monkeypatch.setattr("refcfg.learn.train.train_cfg", _never)
    out = tmp_path / "m.npz"
    if "DIR" in extra:  # the classifier's sibling file is a directory: refused up front
        (tmp_path / "m-classifier.npz").mkdir()
        extra = [a if a != "DIR" else "two-class-2d" for a in extra]
    assert main(["train", "--out", str(out), "--no-progress"] + extra) == 2
    _one_line_error(capsys, needle)
    assert not out.exists()


def test_train_out_that_is_a_directory_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("refcfg.learn.train.train_cfg", _never)
    assert main(["train", "--out", str(tmp_path), "--no-progress"]) == 2
    _one_line_error(capsys, "--out", "is a directory")


def test_train_reports_the_true_number_of_averaged_steps(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert (
        main(
            [
                "train",
                "--out",
                str(out),
                "--steps",
                "40",
                "--width",
                "8",
                "--depth",
                "1",
                "--batch",
                "32",
                "--no-progress",
                "--no-compare",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "40 steps" in err and "final loss (mean of last 40)" in err and "last 100" not in err
    assert out.is_file()


# ----------------------------------------------------------------------------------------- demo


def test_demo_out_under_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("refcfg.experiments.demo.exact_checks", _never)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub" / "dir"):
        assert main(["demo", "--fast", "--out", str(out), "--no-progress"]) == 2
        _one_line_error(capsys, "--out", str(out))
    assert _files(tmp_path) == ["a-file"] and blocker.read_text() == "x"


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--n", "0"], "--n must be >= 1, got 0"),
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
        (["--train-steps", "-1"], "--train-steps must be >= 0, got -1"),
        (["--problem", "nope"], "--problem: unknown problem 'nope'"),
    ],
)
def test_demo_bad_arguments(tmp_path, capsys, monkeypatch, extra, needle):
    monkeypatch.setattr("refcfg.experiments.demo.exact_checks", _never)
    out = tmp_path / "demo"
    assert main(["demo", "--fast", "--out", str(out), "--no-progress"] + extra) == 2
    _one_line_error(capsys, needle)
    assert not out.exists()


def test_demo_fast_on_a_big_problem_says_it_is_slow_before_starting(tmp_path, capsys, monkeypatch):
    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr("refcfg.experiments.demo.exact_checks", stop)
    with pytest.raises(Stop):
        main(["demo", "--fast", "--problem", "tree", "--out", str(tmp_path / "d"), "--no-progress"])
    text = capsys.readouterr().out
    assert "2032 components" in text and "one to a few minutes" in text


@pytest.mark.parametrize(
    "command, words",
    [
        ("demo", "Run the main job of refcfg"),
        ("figures", "Write the figure set of a problem"),
        ("compare-guidance", "Run every guidance variant"),
    ],
)
def test_help_has_a_description(capsys, command, words):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert words in text


# -------------------------------------------------------------------------------------- figures


def test_figures_interactive_on_a_problem_without_a_plane_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("refcfg.plotting.figures.make_figures", _never)
    out = tmp_path / "figs"
    assert main(["figures", "--out", str(out), "--problem", "gauss-1d", "--interactive"]) == 2
    _one_line_error(capsys, "--interactive needs a 2-D problem", "d = 1")
    assert not out.exists()


def test_figures_model_that_is_not_a_model_says_so_in_refcfgs_words(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("refcfg.plotting.figures.make_figures", _never)
    py = tmp_path / "model.py"
    py.write_text("x = 1\n")
    out = tmp_path / "figs"
    assert main(["figures", "--out", str(out), "--model", str(py)]) == 2
    err = _one_line_error(capsys, "--model", "is not a refcfg model file")
    assert "pickle" not in err
    assert main(["figures", "--out", str(out), "--model", str(tmp_path / "none.npz")]) == 2
    _one_line_error(capsys, "--model", "does not exist")
    assert not out.exists()


def test_figures_model_of_another_problem_is_refused_before_work(tmp_path, capsys, monkeypatch):
    from refcfg.learn.mlp import MLP, MLPConfig

    monkeypatch.setattr("refcfg.plotting.figures.make_figures", _never)
    one_d = MLP(
        MLPConfig(d_in=1, d_out=1, n_classes=2, width=8, depth=1, seed=0),
        dict(kind="cfg", schedule="linear"),
    )
    path = one_d.save(tmp_path / "m1.npz")
    out = tmp_path / "figs"
    assert main(["figures", "--out", str(out), "--model", str(path)]) == 2
    _one_line_error(capsys, "--model must be a CFG model of this problem", "d = 1")
    uncond = MLP(
        MLPConfig(d_in=2, d_out=2, n_classes=0, width=8, depth=1, seed=0),
        dict(kind="unconditional", schedule="linear"),
    )
    path = uncond.save(tmp_path / "u.npz")
    assert main(["figures", "--out", str(out), "--model", str(path)]) == 2
    _one_line_error(capsys, "--model must be a CFG model")
    cosine = MLP(
        MLPConfig(d_in=2, d_out=2, n_classes=2, width=8, depth=1, seed=0),
        dict(kind="cfg", schedule="cosine"),
    )
    path = cosine.save(tmp_path / "c.npz")
    assert main(["figures", "--out", str(out), "--model", str(path)]) == 2
    _one_line_error(capsys, "--model was trained with schedule 'cosine'")
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--y", "2"], "--y must be a class of two-class-2d in 0..1, got 2"),
        (["--seed", "-3"], "--seed must be >= 0, got -3"),
        (["--problem", "nope"], "--problem: unknown problem 'nope'"),
    ],
)
def test_figures_bad_arguments(tmp_path, capsys, monkeypatch, extra, needle):
    monkeypatch.setattr("refcfg.plotting.figures.make_figures", _never)
    out = tmp_path / "figs"
    assert main(["figures", "--out", str(out)] + extra) == 2
    _one_line_error(capsys, needle)
    assert not out.exists()


def test_figures_bad_formats_are_named(tmp_path, capsys, monkeypatch):
    import refcfg.plotting.figures as F

    monkeypatch.setattr(F, "path_snapshots", _never)  # nothing is drawn
    out = tmp_path / "figs"
    for formats in ("png,gif", ","):
        assert main(["figures", "--out", str(out), "--formats", formats]) == 2
        _one_line_error(capsys, "--formats must be a non-empty subset of ('png', 'pdf', 'svg')")
    assert not out.exists()


def test_figures_out_under_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("refcfg.plotting.figures.make_figures", _never)
    blocker = tmp_path / "f"
    blocker.write_text("")
    assert main(["figures", "--out", str(blocker / "x")]) == 2
    _one_line_error(capsys, "--out", "is a file, not a directory")


def test_figures_on_highdim_say_which_figures_were_skipped_and_why(tmp_path, capsys):
    from refcfg.plotting.figures import FIGURES

    out = tmp_path / "figs"
    assert (
        main(
            [
                "figures",
                "--out",
                str(out),
                "--problem",
                "highdim",
                "--fast",
                "--formats",
                "png",
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    written = sorted(p.stem for p in out.glob("*.png"))
    assert written == ["gaussian_variance"]
    line = next(ln for ln in text.splitlines() if ln.startswith("skipped"))
    assert line.startswith(f"skipped {len(FIGURES) - 1} of {len(FIGURES)} figures: ")
    for name in FIGURES:
        assert (name in line) == (name != "gaussian_variance"), name
    assert "needs a 2-D problem (d = 64)" in line and "needs a trained model (--model)" in line


# ----------------------------------------------------------------------------- compare-guidance


def test_compare_guidance_refuses_a_variant_the_problem_cannot_run(tmp_path, capsys, monkeypatch):
    import refcfg.sampling

    monkeypatch.setattr(refcfg.sampling, "sample", _never)  # refused before any sampling
    out = tmp_path / "cg"
    assert (
        main(
            [
                "compare-guidance",
                "--problem",
                "gauss-1d",
                "--variants",
                "cfg",
                "rescale",
                "--fast",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    _one_line_error(
        capsys, "--variants: variant 'rescale' cannot run on this problem", "gauss-1d", "d >= 2"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--w", "-1"], "--w must be finite weights >= 0"),
        (["--n", "0"], "--n must be >= 1, got 0"),
        (["--y", "5"], "--y must be a class of two-class-2d in 0..1, got 5"),
        (["--variants", "nope"], "--variants: unknown variant 'nope'"),
        (["--schedule", "nope"], "--schedule: "),
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
    ],
)
def test_compare_guidance_bad_arguments(tmp_path, capsys, monkeypatch, extra, needle):
    monkeypatch.setattr("refcfg.experiments.compare_guidance.compare_guidance", _never)
    assert main(["compare-guidance", "--fast"] + extra) == 2
    _one_line_error(capsys, needle)


def test_compare_guidance_on_gauss_1d_runs_the_applicable_default_set(tmp_path, capsys):
    from refcfg.experiments.compare_guidance import VARIANTS

    out = tmp_path / "cg"
    assert (
        main(
            [
                "compare-guidance",
                "--problem",
                "gauss-1d",
                "--fast",
                "--w",
                "2",
                "--n",
                "40",
                "--n-ref",
                "80",
                "--steps",
                "5",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "skipped variant rescale on gauss-1d: guidance rescale needs d >= 2" in captured.err
    assert "skipped rescale: guidance rescale needs d >= 2" in captured.out
    rows = [ln.split("|")[1].strip() for ln in captured.out.splitlines() if ln.startswith("| ")]
    for v in VARIANTS:
        assert (v in rows) == (v != "rescale"), v
    assert (out / "table.md").is_file()


# ------------------------------------------------------------------------------------ reproduce


@pytest.mark.parametrize("seed", ["-1", "-2"])
def test_reproduce_negative_seed_names_the_option_and_the_value_given(
    tmp_path, capsys, monkeypatch, seed
):
    monkeypatch.setattr("refcfg.experiments.run_experiment", _never)
    out = tmp_path / "r"
    assert main(["reproduce", "tree", "--fast", "--seed", seed, "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert err == f"refcfg: error: --seed must be >= 0, got {seed}\n"  # not seed + 1
    assert not out.exists()


# ---------------------------------------------------------------------------- one line, exit 2


def test_a_cli_error_is_one_line_on_stderr_with_exit_2(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-m", "refcfg", "train", "--out", str(tmp_path / "no" / "m.npz")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("refcfg: error: --out "), r.stderr
    assert _files(tmp_path) == []
