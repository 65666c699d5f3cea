"""``refcfg demo`` end to end (--fast), its tables' claims, and the report writer."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import refcfg
from refcfg.cli import main
from refcfg.experiments import demo as D
from refcfg.plotting.report import Report, Table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    import contextlib
    import io

    from refcfg.sampling import ahead, api

    backends = []  # the backend of every refcfg.sample call of the demo
    children = []  # every compile_ahead call
    dispatch = api._dispatch
    start_child = ahead.compile_ahead

    def recording(be, *args, **kwargs):
        backends.append(be)
        return dispatch(be, *args, **kwargs)

    def recording_ahead(*args, **kwargs):
        children.append((args, kwargs))
        return start_child(*args, **kwargs)

    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(buf):
        mp.setattr(api, "_dispatch", recording)
        mp.setattr(ahead, "compile_ahead", recording_ahead)
        status = main(["demo", "--fast", "--out", str(out), "--no-progress", "--seed", "1"])
    return status, buf.getvalue(), out, backends, children


def test_demo_runs_and_prints_the_report_path(demo_run):
    status, text, out, *_ = demo_run
    assert status == 0, text
    last = text.strip().splitlines()[-1]
    assert last.endswith("report.html") and (out / "report.html").resolve() == Path(last).resolve()
    # the training runs before the exact sampling (a compile-ahead child can use the other core)
    sections = (
        "== 1. exact fields",
        "== 2. a short CFG training",
        "== 3. CFG sampling with the exact field",
        "== 4. learned vs exact",
        "== 5. figures",
    )
    at = [text.find(section) for section in sections]
    assert min(at) >= 0 and at == sorted(at), at
    md = (out / "report.md").read_text(encoding="utf-8")
    headings = ("1. Exact fields", "2. A learned CFG field", "3. CFG with the exact field")
    at = [md.find(h) for h in headings + ("4. Learned vs exact", "5. Figures")]
    assert min(at) >= 0 and at == sorted(at), at


def test_fast_demo_samples_on_numpy(demo_run):
    # every sampling job of --fast is below backend="auto"'s NumPy threshold, so a fresh machine
    # runs it without compiling a kernel (cold within a few percent of warm, docs/performance.md)
    status, text, _, backends, children = demo_run
    assert status == 0
    assert len(backends) >= len(D.DEMO_WS) and set(backends) == {"numpy"}, backends
    # so no child compiles kernels ahead, and nothing waits for one
    assert children == [] and "waiting for the sampling kernels" not in text


def test_default_sizes_compile_ahead_in_a_child(monkeypatch):
    # the default sampling table (4000 x 100 Heun steps) runs on the kernels: the demo starts the
    # child on its job; at --fast sizes (300 x 20) it runs on NumPy and no child starts
    from refcfg.commands import demo as cmd
    from refcfg.sampling import ahead, api

    calls = []
    monkeypatch.setattr(ahead, "compile_ahead", lambda *a, **k: calls.append((a, k)) or "child")
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    full, fast = D.sizes(4000, False), D.sizes(4000, True)
    assert cmd._compile_ahead(path, 0, full) == "child"
    (((field, sampler), kwargs),) = calls
    assert sampler == D.SAMPLER and kwargs == {"n": full.n}
    work = api.auto_work(field, full.n, full.steps, sampler)
    assert api.resolve_backend("auto", field, work) == "cpu"
    assert cmd._compile_ahead(path, 0, fast) is None and len(calls) == 1
    # nothing to train meanwhile (--train-steps 0): no child, the first sampling call compiles
    assert cmd._compile_ahead(path, 0, D.sizes(4000, False, 0)) is None and len(calls) == 1


class _Child:
    def __init__(self, done, ok=True):
        self.started, self.done, self.ok, self.waited = True, done, ok, 0

    def wait(self, timeout=None):
        self.waited += 1
        return self.ok


@pytest.mark.parametrize("done", [False, True])
def test_waiting_for_the_child_is_said(done, capsys):
    from refcfg.commands import demo as cmd

    child = _Child(done)
    cmd._wait_for(child)
    text = capsys.readouterr().out
    assert child.waited == 1
    # a running child: one line before the wait (nothing stalls silently); a finished one: quiet
    assert ("waiting for the sampling kernels compiling in the background" in text) == (not done)
    assert ("kernels ready after" in text) == (not done)


def test_demo_writes_a_self_contained_report(demo_run):
    status, text, out, *_ = demo_run
    html = (out / "report.html").read_text(encoding="utf-8")
    n_img = html.count('src="data:image/png;base64,')
    assert n_img >= 6, n_img
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<table>" in html
    md = (out / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == n_img and all((out / link).is_file() for link in links)
    assert (out / "interactive.html").is_file()


def test_demo_trains_and_compares_when_learn_is_available(demo_run):
    pytest.importorskip("refcfg.learn.train")
    status, text, out, *_ = demo_run
    assert "4. learned vs exact" in text
    assert (out / "model.npz").is_file() and (out / "figures" / "learned_errors.png").is_file()


def test_cfg_table_claims():
    """On the default problem (N = 600, seed 2, Heun 30 steps): the mean Bayes confidence of exact
    CFG samples rises with w (differences >= 0.004, about 4 standard errors of a paired difference
    here), and w = 1 samples are the closest to p(x|y) (energy distance below the others')."""
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    res = D.cfg_sampling(path, 0, 600, 30, 2)
    assert [r["w"] for r in res.table] == list(D.DEMO_WS)
    conf = np.array([r["E p(y|x)"] for r in res.table])
    assert np.all(np.diff(conf) > 0.004), conf
    ed_cond = np.array([r["ED to p(x|y)"] for r in res.table])
    floor = res.key["noise_floor"]
    i1 = D.DEMO_WS.index(1.0)
    assert ed_cond[i1] == ed_cond.min() and ed_cond[i1] < 5 * floor + 0.01, (ed_cond, floor)
    # tilted reference: at w = 1 the tilted law is p(x|y), so the resampling weights are uniform
    assert res.table[i1]["ESS frac"] == pytest.approx(1.0)


def test_exact_checks_are_at_rounding_level():
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    res = D.exact_checks(path, 200, 0)
    cg, conv, prob = list(res.table[0])[1:]
    assert [r["t"] for r in res.table] == list(D.CHECK_TIMES)
    for row in res.table:
        assert row[cg] < 1e-12
        if row["t"] == 0.0:  # alpha_0 = 0: a_t, b_t undefined
            assert row[conv] == "undefined (alpha_t = 0)"
        else:  # incl. t = 1, where a_1 = 0, b_1 = 1
            assert row[conv] < 1e-12
    p = [r[prob] for r in res.table]
    assert p[0] == pytest.approx(0.5, abs=1e-12)  # t = 0: the prior p(y)
    assert p[-1] > 0.8


def test_demo_sizes():
    assert D.sizes(4000, True) == D.Sizes(n=300, steps=20, train_steps=40)
    assert D.sizes(100, True, 0) == D.Sizes(n=100, steps=20, train_steps=0)
    assert D.sizes(4000, False) == D.Sizes(n=4000, steps=100, train_steps=6000)


def test_demo_on_gauss_1d_says_what_it_skipped(tmp_path, capsys):
    from refcfg.plotting.figures import FIGURES

    out = tmp_path / "d"
    assert (
        main(
            [
                "demo",
                "--fast",
                "--problem",
                "gauss-1d",
                "--n",
                "60",
                "--train-steps",
                "0",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "2. a short CFG training: skipped (--train-steps 0)" in text
    assert "4. learned vs exact: skipped (no training: --train-steps 0)" in text
    line = next(ln.strip() for ln in text.splitlines() if ln.strip().startswith("skipped 6 of"))
    assert line.startswith(f"skipped 6 of {len(FIGURES)} figures: ")
    assert "needs a 2-D problem (d = 1)" in line and "no training (--train-steps 0)" in line
    assert "skipped the interactive page: it needs a 2-D problem, this one has d = 1" in text
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == ["gaussian_variance"]
    assert not (out / "interactive.html").exists()
    assert "Not drawn: 6 of 7 figures" in (out / "report.md").read_text()


def test_demo_writes_pdfs_beside_pngs_except_when_fast(tmp_path, monkeypatch, capsys):
    # the formats the command asks for; the figures themselves are tested in test_figures.py
    import refcfg.plotting.figures as F

    asked = []

    def record(out, path, **kw):
        asked.append(kw["formats"])
        return {}

    monkeypatch.setattr(F, "make_figures", record)
    for fast in (True, False):
        assert (
            main(
                [
                    "demo",
                    "--problem",
                    "gauss-1d",
                    "--n",
                    "40",
                    "--train-steps",
                    "0",
                    "--out",
                    str(tmp_path / str(fast)),
                    "--no-progress",
                ]
                + (["--fast"] if fast else [])
            )
            == 0
        )
    capsys.readouterr()
    assert asked == [("png",), ("png", "pdf")]


def test_report_writer(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    png = tmp_path / "f.png"
    fig.savefig(png)
    rep = (
        Report("T <&>")
        .heading("H")
        .text("a | b")
        .table(Table(["w", "x"], [[1, 0.5], [2, 1e-9]], caption="cap"))
        .figure(png, "fig")
        .pre("x = 1")
    )
    paths = rep.write(tmp_path / "out")
    html = paths["html"].read_text()
    assert "T &lt;&amp;&gt;" in html and "1.000e-09" in html and "data:image/png;base64," in html
    md = paths["markdown"].read_text()
    assert "| w | x |" in md and "![fig](" in md
    with pytest.raises(ValueError, match="rows\\[0\\] has 1 cells but there are 2 columns"):
        Table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="png_path"):
        Report("x").figure(tmp_path / "missing.png")
