"""Golden test vectors (refcfg.vectors, verification/vectors/, docs/vectors-schema.md).

- the committed set regenerates: fresh vectors equal the committed ones within rtol = 1e-12
  (elementwise |a - b| <= 1e-12 (|b| + s), s = max |b| over the same time slice);
- the committed values agree with an independent oracle (tests/_oracles.py: scipy densities and
  explicit Gaussian conditioning) to 1e-10 relative (row norms floored at 1);
- internal identities: CFG = classifier guidance, w = 1 / w = 0 give the cond / uncond velocity,
  class posteriors normalise, x = alpha z + beta eps consistency with eps and x0 (eq. 41-style
  identity x = alpha x0 + beta eps for the posterior means), JSON == NPZ exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from refcfg import vectors as V

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "verification" / "vectors"
sys.path.insert(0, str(ROOT / "verification"))


@pytest.fixture(scope="module")
def committed():
    return V.read_vectors(COMMITTED)


def test_committed_set_is_small_versioned_and_complete(committed):
    total = sum(p.stat().st_size for p in COMMITTED.iterdir())
    assert total < 2 * 1024 * 1024
    index = json.loads((COMMITTED / "index.json").read_text())
    assert index["format"] == V.FORMAT and index["schema_version"] == V.SCHEMA_VERSION
    assert index["cases"] == [c["name"] for c in V.DEFAULT_CASES]
    schedules = {c["meta"]["schedule"]["name"] for c in committed.values()}
    problems = {c["meta"]["problem"]["name"] for c in committed.values()}
    assert len(schedules) >= 5 and len(problems) >= 3
    for name, case in committed.items():
        A, meta = case["arrays"], case["meta"]
        assert set(A) == set(V.ARRAYS), name
        assert meta["schema_version"] == V.SCHEMA_VERSION
        assert A["times"][0] == 0.0 and A["times"][-1] == 1.0
        T, N, d = A["x"].shape
        W, C = A["w"].size, meta["problem"]["n_classes"]
        for k, a in A.items():
            sym = V.ARRAYS[k][0]
            expect = tuple(
                {"T": T, "N": N, "d": d, "W": W, "C": C}[s.strip()]
                for s in sym.strip("(),").split(",")
                if s.strip()
            )
            assert a.shape == expect, (name, k, a.shape, sym)
            assert meta["arrays"][k]["shape"] == list(a.shape)
        # the fields are defined at both endpoints (every covariance is positive definite):
        # only a_t, b_t are undefined, exactly where alpha_t = 0
        for k, a in A.items():
            if k in ("a", "b"):
                assert np.array_equal(np.isnan(a), A["alpha"] == 0.0), (name, k)
            elif k != "dbeta":
                assert np.all(np.isfinite(a)), (name, k)


def test_fields_recomputed_at_the_stored_points_match(committed):
    """The field code regression check, independent of how problems and points are made: rebuild
    the mixture from the JSON, evaluate GMMPath at the stored x, compare with rtol = 1e-12."""
    from refcfg import GMMPath, schedule
    from refcfg.vectors import _mixture_from_spec

    for name, case in committed.items():
        meta, A = case["meta"], case["arrays"]
        path = GMMPath(
            _mixture_from_spec(meta["problem"]),
            schedule(meta["schedule"]["name"], **meta["schedule"]["params"]),
        )
        got = {k: np.empty_like(v) for k, v in A.items()}
        for k in (
            "times",
            "alpha",
            "beta",
            "dalpha",
            "dbeta",
            "beta_dbeta",
            "a",
            "b",
            "x",
            "y",
            "w",
        ):
            got[k] = A[k]
        y = A["y"]
        for i, t in enumerate(A["times"]):
            x = A["x"][i]
            got["log_prob_cond"][i] = path.log_prob(x, t, y)
            got["log_prob_uncond"][i] = path.log_prob(x, t)
            for k in ("score", "velocity", "x0", "eps"):
                got[k + "_cond"][i] = getattr(path, k)(x, t, y)
                got[k + "_uncond"][i] = getattr(path, k)(x, t)
            got["class_log_probs"][i] = path.class_log_probs(x, t)
            got["classifier_score"][i] = path.classifier_score(x, t, y)
            for j, w in enumerate(A["w"]):
                got["cfg_velocity"][j, i] = path.cfg_velocity(x, t, y, w)
                got["cfg_score"][j, i] = path.cfg_score(x, t, y, w)
                got["classifier_guided_velocity"][j, i] = path.classifier_guided_velocity(
                    x, t, y, w
                )
        assert V.compare_cases({"arrays": got}, case, rtol=1e-12) == [], name


def test_regenerated_vectors_match_the_committed_set(tmp_path, committed):
    from refcfg import problem
    from refcfg.cli import main

    for case in committed.values():  # a changed problem definition needs a regeneration
        spec = case["meta"]["problem"]
        mix = problem(spec["name"])
        same = (
            len(mix.classes) == len(spec["classes"])
            and np.allclose(mix.class_probs, spec["class_probs"], rtol=1e-15, atol=0)
            and all(
                np.allclose(g.means, c["means"], rtol=1e-15, atol=0)
                and np.allclose(g.covs, c["covs"], rtol=1e-15, atol=0)
                and np.allclose(g.weights, c["weights"], rtol=1e-15, atol=0)
                for g, c in zip(mix.classes, spec["classes"])
            )
        )
        assert same, (
            f"problem {spec['name']!r} changed since the vectors were made: run "
            f"python verification/make_vectors.py and commit verification/vectors/"
        )
    assert main(["vectors", "--out", str(tmp_path)]) == 0
    diffs = V.compare_vectors(tmp_path, COMMITTED, rtol=1e-12)
    assert set(diffs) == set(committed)
    assert all(v == [] for v in diffs.values()), diffs


def test_committed_values_agree_with_an_independent_oracle(committed):
    from make_vectors import oracle_discrepancy

    for name, case in committed.items():
        assert oracle_discrepancy(case) < 1e-10, name


def test_identities_between_stored_quantities(committed):
    for name, case in committed.items():
        A = case["arrays"]
        w = A["w"][:, None, None, None]
        cfg = w * A["velocity_cond"][None] + (1 - w) * A["velocity_uncond"][None]
        np.testing.assert_allclose(A["cfg_velocity"], cfg, rtol=1e-12, atol=1e-12)
        scale = np.abs(A["cfg_velocity"]).max()
        assert np.abs(A["classifier_guided_velocity"] - A["cfg_velocity"]).max() < 1e-12 * scale
        lse = np.log(np.exp(A["class_log_probs"]).sum(-1))
        assert np.abs(lse).max() < 1e-12, name
        # E[x_t | x_t] = x: alpha E[z|x] + beta E[eps|x] = x, conditional and unconditional
        al, be = A["alpha"][:, None, None], A["beta"][:, None, None]
        for sfx in ("_cond", "_uncond"):
            recon = al * A["x0" + sfx] + be * A["eps" + sfx]
            assert np.abs(recon - A["x"]).max() < 1e-11 * max(1.0, np.abs(A["x"]).max()), name
        # endpoints (docs/vectors-schema.md): score = -x where alpha_t = 0, eps = 0 at t = 1
        for i in np.flatnonzero(A["alpha"] == 0.0):
            for sfx in ("_cond", "_uncond"):
                assert np.abs(A["score" + sfx][i] + A["x"][i]).max() < 1e-12, name
        assert A["times"][-1] == 1.0
        assert np.all(A["eps_cond"][-1] == 0) and np.all(A["eps_uncond"][-1] == 0), name
        # classifier score = score(x|y) - score(x) (eq. 61)
        diff = A["score_cond"] - A["score_uncond"]
        assert np.abs(A["classifier_score"] - diff).max() < 1e-10 * max(1.0, np.abs(diff).max())


def test_json_and_npz_hold_the_same_numbers(committed):
    for name in committed:
        j = V.read_case(COMMITTED / f"{name}.json")
        assert V.compare_cases(j, committed[name], rtol=0.0) == []
        for k in committed[name]["arrays"]:
            a, b = j["arrays"][k], committed[name]["arrays"][k]
            assert np.array_equal(a, b, equal_nan=True), (name, k)


def test_compare_detects_differences(committed):
    name = next(iter(committed))
    ref = committed[name]
    got = {"meta": ref["meta"], "arrays": {k: v.copy() for k, v in ref["arrays"].items()}}
    assert V.compare_cases(got, ref) == []
    got["arrays"]["velocity_cond"][3, 2, 0] *= 1 + 1e-9
    got["arrays"]["a"][0] = 1.0  # a NaN (t = 0) replaced
    del got["arrays"]["eps_uncond"]
    msgs = V.compare_cases(got, ref)
    assert any(m.startswith("velocity_cond: 1 entries differ") and "(3, 2, 0)" in m for m in msgs)
    assert any(m.startswith("a: NaN at different places") for m in msgs)
    assert "eps_uncond: missing" in msgs


def test_reader_rejects_other_formats_and_newer_versions(tmp_path):
    V.write_vectors(tmp_path, V.DEFAULT_CASES[3:4], n=3)
    name = V.DEFAULT_CASES[3]["name"]
    case = V.read_case(tmp_path / f"{name}.npz")
    assert case["arrays"]["x"].shape[1] == 3
    doc = json.loads((tmp_path / f"{name}.json").read_text())
    doc["schema_version"] = V.SCHEMA_VERSION + 1
    (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="newer"):
        V.read_case(tmp_path / f"{name}.npz")
    doc["format"] = "something-else"
    (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not a refcfg-golden-vectors file"):
        V.read_case(tmp_path / f"{name}.json")
    with pytest.raises(ValueError, match="index.json"):
        V.read_vectors(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"\.npz or \.json"):
        V.read_case(tmp_path / "x.txt")


def test_vectors_cli_usage_errors(tmp_path, capsys):
    from refcfg.cli import main

    assert main(["vectors", "--out", str(tmp_path), "--cases", "nope"]) == 2
    assert "unknown case 'nope'" in capsys.readouterr().err
    assert main(["vectors"]) == 2
    assert main(["vectors", "--out", str(tmp_path), "--cases", "gauss-1d_vp", "--n", "2"]) == 0
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["cases"] == ["gauss-1d_vp"] and index["make_case_kwargs"] == {"n": 2}


def test_schema_doc_lists_every_array_with_the_same_equation_numbers():
    """docs/vectors-schema.md has a row for every array of refcfg.vectors.ARRAYS, and the equation
    numbers a row cites are those of the array's description in ARRAYS (the two must not drift)."""
    import re

    text = (ROOT / "docs" / "vectors-schema.md").read_text(encoding="utf-8")
    rows = []  # (array names of the row, its description cell)
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append((re.findall(r"`([a-z0-9_]+)`", cells[0]), cells[-1]))
    named = {n for names, _ in rows for n in names}
    assert set(V.ARRAYS) <= named, sorted(set(V.ARRAYS) - named)

    def eqs(s):
        return set(re.findall(r"\beqs?\. (\d+(?:[/-]\d+)?)", s))

    for names, cell in rows:
        # a row may list several arrays (cond / uncond): it cites the equations of their union
        want = set().union(*(eqs(V.ARRAYS[n][1]) for n in names if n in V.ARRAYS))
        assert eqs(cell) == want, (names, cell, want)
