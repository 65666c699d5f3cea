"""Running sweeps: in one process, resumed after an interruption, with failing cells, through the
command line, and on a 2-worker Dask LocalCluster (processes) -- identical tables throughout.

The cluster tests (marked slow) start worker processes; cell functions defined here are shipped to
them by value (cloudpickle), and a marker file lets a cell kill its own worker exactly once."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).parent))
from refcfg.cli import main  # noqa: E402
from refcfg.sweep import evaluate, load_spec, read_table, run  # noqa: E402
from refcfg.sweep.store import CELLS, SPEC_FILE  # noqa: E402

from _specs import SMALL, small, stable  # noqa: E402


class Stop(KeyboardInterrupt):
    """Raised by on_cell to interrupt a run."""


def _stop_after(k):
    seen = []

    def on_cell(cell, row):
        seen.append(cell.id)
        if len(seen) == k:
            raise Stop

    return on_cell


# functions run on the workers: shipped by value (this module is not importable there)


def _fail_on(cell, *, index, marker_dir=None, times=None):
    """evaluate, except that cell ``index`` raises: always (times None) or on its first ``times``
    attempts (counted with marker files)."""
    if cell.index == index:
        if times is None:
            raise RuntimeError(f"cell {index} is broken")
        attempts = len(list(Path(marker_dir).glob("attempt-*")))
        Path(marker_dir, f"attempt-{attempts}").touch()
        if attempts < times:
            raise RuntimeError(f"transient failure {attempts}")
    return evaluate(cell)


def _kill_once(cell, *, index, marker):
    """evaluate, except that cell ``index`` kills its own worker process the first time."""
    if cell.index == index and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return evaluate(cell)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The SMALL sweep run in this process: the table every other run must reproduce."""
    out = tmp_path_factory.mktemp("ref")
    rep = run(SMALL, out, workers=0, progress=False)
    assert (rep.cells, rep.computed, rep.reused, rep.failed) == (32, 32, 0, 0)
    return read_table(out)


def test_table_layout_and_metadata(reference, tmp_path):
    t = reference
    cells = load_spec(SMALL).cells()
    assert t.num_rows == len(cells)
    assert t.column("cell_id").to_pylist() == [c.id for c in cells]  # the spec's cell order
    assert set(t.column("status").to_pylist()) == {"ok"}
    assert t.column_names[:11] == [
        "cell_id",
        "problem",
        "schedule",
        "rule",
        "w",
        "sampler",
        "steps",
        "n",
        "seed",
        "status",
        "error",
    ]
    assert t.column_names[11:] == [
        "ed_cond",
        "ed_tilted",
        "tilted_ess",
        "confidence",
        "accuracy",
        "loglik",
        "loglik_se",
        "sample_s",
        "metrics_s",
    ]
    # each row's metric values are those of evaluate(cell), bitwise (float64 through JSON and Parquet)
    c = cells[13]
    row = t.slice(13, 1).to_pylist()[0]
    again = evaluate(c)
    for k, v in again.items():
        if not k.endswith("_s"):
            assert row[k] == v, k
    meta = json.loads(t.schema.metadata[b"refcfg"])
    import refcfg

    assert meta["refcfg_version"] == refcfg.__version__
    assert meta["spec"]["axes"]["rule"] == ["cfg", "interval(sigma_hi=3.0,sigma_lo=0.3)"]
    assert meta["spec"]["seeds"] == [0, 1] and meta["spec"]["seed"] == 7


def test_interrupted_run_resumes_and_recomputes_only_missing_cells(reference, tmp_path):
    with pytest.raises(Stop):
        run(SMALL, tmp_path, workers=0, progress=False, on_cell=_stop_after(5))
    assert len(list((tmp_path / CELLS).glob("*.json"))) == 5
    assert not (tmp_path / "results.parquet").exists()
    rep = run(SMALL, tmp_path, workers=0, progress=False)
    assert (rep.reused, rep.computed, rep.failed) == (5, 27, 0)
    assert stable(read_table(tmp_path)).equals(stable(reference))
    rep = run(SMALL, tmp_path, workers=0, progress=False)  # nothing left to do
    assert (rep.reused, rep.computed) == (32, 0)
    # a damaged cell file (say, from a disk error) counts as missing and is recomputed
    victim = sorted((tmp_path / CELLS).glob("*.json"))[7]
    victim.write_text(victim.read_text()[:40])
    rep = run(SMALL, tmp_path, workers=0, progress=False)
    assert (rep.reused, rep.computed) == (31, 1)
    assert stable(read_table(tmp_path)).equals(stable(reference))
    info = json.loads((tmp_path / SPEC_FILE).read_text())
    assert info["computed"] == 1 and info["reused"] == 31 and info["spec"]["name"] == "small"


def test_failing_cell_is_retried_then_recorded(reference, tmp_path):
    fn = functools.partial(_fail_on, index=3)
    rep = run(SMALL, tmp_path / "a", workers=0, progress=False, evaluate=fn, retries=1)
    assert rep.failed == 1
    t = read_table(tmp_path / "a")
    rows = t.to_pylist()
    assert rows[3]["status"] == "error" and rows[3]["error"] == "RuntimeError: cell 3 is broken"
    assert rows[3]["ed_cond"] is None
    ok = [i for i in range(32) if i != 3]
    assert (
        stable(t)
        .take(ok)
        .drop_columns(["status", "error"])
        .equals(stable(reference).take(ok).drop_columns(["status", "error"]))
    )
    # a rerun retries the failed cell only
    rep = run(SMALL, tmp_path / "a", workers=0, progress=False)
    assert (rep.computed, rep.reused, rep.failed) == (1, 31, 0)
    assert stable(read_table(tmp_path / "a")).equals(stable(reference))
    # a transient failure (first attempt) is absorbed by the retry
    (tmp_path / "m").mkdir()
    fn = functools.partial(_fail_on, index=3, marker_dir=str(tmp_path / "m"), times=1)
    rep = run(SMALL, tmp_path / "b", workers=0, progress=False, evaluate=fn, retries=1)
    assert rep.failed == 0 and len(list((tmp_path / "m").iterdir())) == 2
    assert stable(read_table(tmp_path / "b")).equals(stable(reference))


def _wrong_columns(cell):
    return {"ed_cond": 1.0}


def test_cell_function_must_return_the_spec_columns(tmp_path):
    rep = run(
        small(seeds=1, axes__problem=["gauss-1d"]),
        tmp_path,
        workers=0,
        progress=False,
        evaluate=_wrong_columns,
        retries=0,
    )
    rows = read_table(tmp_path).to_pylist()
    assert rep.failed == len(rows) == 8
    assert rows[0]["error"].startswith(
        "TypeError: the cell function returned ['ed_cond']; required"
    )


def test_bad_spec_is_rejected_before_a_cluster_starts(tmp_path, monkeypatch):
    import distributed

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started for a bad spec")

    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    monkeypatch.setattr(distributed, "Client", no_cluster)
    with pytest.raises(ValueError, match=r"spec: axes.steps\[0\] = -3: required an integer >= 1"):
        run(small(axes__steps=[-3]), tmp_path / "o", workers=2)
    assert not (tmp_path / "o").exists()


def test_progress_bar_when_forced(tmp_path, capsys):
    run(small(seeds=1, axes__problem=["gauss-1d"]), tmp_path, workers=0, progress="force")
    assert "sweep: 100%" in capsys.readouterr().err
    run(small(seeds=1, axes__problem=["gauss-1d"]), tmp_path / "b", workers=0)  # not a terminal
    assert "sweep" not in capsys.readouterr().err


def test_bad_output_directory_and_arguments(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        run(SMALL, f, workers=0)
    with pytest.raises(ValueError, match="workers must be an integer >= 0"):
        run(SMALL, tmp_path / "o", workers=-1)
    with pytest.raises(ValueError, match="cannot be combined"):
        run(SMALL, tmp_path / "o", workers=0, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match=r"axes.w\[0\]"):  # spec first
        run(small(axes__w=["x"]), tmp_path / "o", workers=0)
    assert not (tmp_path / "o").exists()


def _write_spec(path, spec) -> Path:
    lines = []
    for k, v in spec.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {json.dumps(v)}")
    for table in ("axes", "metrics"):
        lines.append(f"[{table}]")
        for k, v in spec[table].items():
            if k == "rule":
                items = [
                    json.dumps(r)
                    if isinstance(r, str)
                    else "{" + ", ".join(f"{a} = {json.dumps(b)}" for a, b in r.items()) + "}"
                    for r in v
                ]
                lines.append(f"rule = [{', '.join(items)}]")
            else:
                lines.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_run_plot_and_bad_spec(reference, tmp_path, capsys):
    spec = _write_spec(tmp_path / "s.toml", SMALL)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "32 cells: 32 computed, 0 reused, 0 failed" in out
    assert stable(read_table(tmp_path / "o")).equals(stable(reference))
    assert (
        main(
            ["sweep", "plot", str(tmp_path / "o"), "--metric", "confidence", "--metric", "ed_cond"]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "o").glob("*.png")) == [
        "sweep-confidence.png",
        "sweep-ed_cond.png",
    ]
    bad = _write_spec(tmp_path / "bad.toml", small(axes__sampler=["heun", "leapfrog"]))
    assert main(["sweep", str(bad), "--out", str(tmp_path / "b"), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "axes.sampler[1] = 'leapfrog'" in err[0] and "one of" in err[0]
    assert not (tmp_path / "b").exists()  # rejected before any work
    assert main(["sweep", str(spec)]) == 2
    assert "--out DIR is required" in capsys.readouterr().err
    assert main(["sweep", "plot"]) == 2
    assert main(["sweep", "plot", str(tmp_path / "o"), "--metric", "fid"]) == 2
    assert "'fid' is not a column" in capsys.readouterr().err


def test_plot_aggregates_seeds(reference):
    from refcfg.plotting.sweeps import aggregate

    agg = aggregate(reference, "confidence")
    ws, mean, std, k = agg[("two-class-2d", "linear", 6, 200)][("cfg", "heun")]
    rows = [
        r
        for r in reference.to_pylist()
        if r["problem"] == "two-class-2d" and r["rule"] == "cfg" and r["sampler"] == "heun"
    ]
    for i, w in enumerate(ws):
        vals = [r["confidence"] for r in rows if r["w"] == w]
        assert len(vals) == 2 and k[i] == 2
        assert mean[i] == pytest.approx((vals[0] + vals[1]) / 2, rel=1e-15)
        assert std[i] == pytest.approx(abs(vals[0] - vals[1]) / np.sqrt(2), rel=1e-12)


# -- on a 2-worker LocalCluster ------------------------------------------------------------------


@pytest.fixture(scope="module")
def cloudpickle_by_value():
    import cloudpickle

    mod = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(mod)
    yield
    cloudpickle.unregister_pickle_by_value(mod)


@pytest.mark.slow
def test_two_workers_give_the_one_process_table(reference, tmp_path):
    rep = run(SMALL, tmp_path, workers=2, progress=False)
    assert (rep.computed, rep.failed) == (32, 0)
    assert stable(read_table(tmp_path)).equals(stable(reference))


@pytest.fixture(scope="module")
def cluster():
    import logging

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as c:
        yield c


@pytest.mark.slow
def test_killed_worker_is_replaced_and_the_table_is_identical(
    reference, cluster, tmp_path, cloudpickle_by_value
):
    marker = tmp_path / "killed"
    fn = functools.partial(_kill_once, index=9, marker=str(marker))
    rep = run(
        SMALL, tmp_path / "o", scheduler=cluster.scheduler_address, progress=False, evaluate=fn
    )
    assert marker.exists()  # the worker did die
    assert (rep.computed, rep.failed) == (32, 0)
    assert stable(read_table(tmp_path / "o")).equals(stable(reference))


@pytest.mark.slow
def test_cluster_interrupt_resume_and_failure(reference, cluster, tmp_path, cloudpickle_by_value):
    with pytest.raises(Stop):
        run(
            SMALL,
            tmp_path / "o",
            scheduler=cluster.scheduler_address,
            progress=False,
            on_cell=_stop_after(4),
        )
    written = len(list((tmp_path / "o" / CELLS).glob("*.json")))
    assert written == 4
    rep = run(SMALL, tmp_path / "o", scheduler=cluster.scheduler_address, progress=False)
    assert (rep.reused, rep.computed, rep.failed) == (4, 28, 0)
    assert stable(read_table(tmp_path / "o")).equals(stable(reference))
    # a cell that always fails is retried, then recorded; the others complete
    (tmp_path / "m").mkdir()
    fn = functools.partial(_fail_on, index=20, marker_dir=str(tmp_path / "m"), times=10)
    rep = run(
        SMALL,
        tmp_path / "f",
        scheduler=cluster.scheduler_address,
        progress=False,
        evaluate=fn,
        retries=2,
    )
    assert rep.failed == 1 and len(list((tmp_path / "m").iterdir())) == 3  # 1 + 2 retries
    rows = read_table(tmp_path / "f").to_pylist()
    assert rows[20]["status"] == "error" and rows[20]["error"].startswith("RuntimeError: transient")
    assert sum(r["status"] == "ok" for r in rows) == 31
