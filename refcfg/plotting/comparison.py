"""Table, JSON record and figure of the guidance-variant comparison
(``refcfg.experiments.compare_guidance``): what ``refcfg compare-guidance`` prints and writes."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .._format import format_value

__all__ = ["format_table", "to_json", "comparison_figure", "plot_comparison"]


def _fixed(v, decimals: int) -> str:
    """v with a fixed number of decimals and no switch to scientific notation."""
    return format_value(v, digits=decimals, fixed=True, sci_below=0.0, sci_above=math.inf)


def _general(v) -> str:
    """v as Python's "{:g}" writes it (6 significant digits)."""
    return format_value(v, digits=6, sci_below=0.0, sci_above=math.inf)


def format_table(result: dict) -> str:
    """The comparison as a Markdown table (one row per variant and w), the settings on top."""
    r = result
    if all(w >= 1.0 for w in r["ess"]):
        proposals = "SIR from p(x|y)"
    else:
        proposals = "SIR from p(x) for w < 1 and from p(x|y) for w >= 1"
    lines = [
        f"problem `{r['problem']}`, class y = {r['y']}, n = {r['n']}, {r['sampler']} "
        f"{r['steps']} steps, schedule {r['schedule']}, seed {r['seed']}, reference samples "
        f"n_ref = {r['n_ref']} (tilted law: {proposals} with {r['oversample']} x n_ref "
        f"proposals, ESS "
        + ", ".join(f"w={_general(w)}: {_fixed(e, 0)}" for w, e in r["ess"].items())
        + ")",
        "",
        "| variant | w | conf p(y\\|x) | acc | mean log p(x\\|y) | mode TV | ED p(x\\|y) "
        "| ED tilted | mass per mode of y |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        mm = row.mode_mass
        mass = (
            " ".join(_fixed(v, 2) for v in mm)
            if len(mm) <= 6
            else f"{sum(v > 0 for v in mm)}/{len(mm)} modes hit"
        )
        cells = [
            row.variant,
            _general(row.w),
            _fixed(row.confidence, 3),
            _fixed(row.accuracy, 3),
            _fixed(row.loglik, 3),
            _fixed(row.mode_tv, 3),
            _fixed(row.ed_cond, 4),
            _fixed(row.ed_tilted, 4),
            mass,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for v, why in r.get("skipped", {}).items():
        lines.append(f"\nskipped {v}: {why}")
    return "\n".join(lines)


def to_json(result: dict) -> str:
    """The settings and rows as JSON (samples left out)."""
    out = {k: v for k, v in result.items() if k not in ("samples", "exact", "rows", "ess")}
    out["ess"] = {f"{w:g}": e for w, e in result["ess"].items()}
    out["rows"] = [asdict(row) for row in result["rows"]]
    return json.dumps(out, indent=1)


_METRICS = (
    ("confidence", "mean $p(y|x)$", "class confidence (higher: more of class y)"),
    ("loglik", "mean $\\log p(x|y)$", "likelihood under p(x|y)"),
    ("ed_cond", "energy distance", "distance to p(x|y)"),
    ("ed_tilted", "energy distance", "distance to the tilted law"),
)


def comparison_figure(result: dict):
    """Metrics against w for every variant (top: one panel per metric, one shared legend) and the
    samples at the largest w (bottom) beside an exact sample of p(x|y). Returns a Figure."""
    from .figures import CLASS_COLORS, _new_figure, _style

    r = result
    variants = list(r["variants"])
    ws = r["ws"]
    d = r["exact"].shape[1]
    w_max = ws[-1]
    panels = [("exact p(x|y)", r["exact"])] + [(v, r["samples"][(v, w_max)]) for v in variants]
    ncols = max(4, len(panels))
    series = variants + ["tilted (SIR)", "exact p(x|y)"]
    palette = list(CLASS_COLORS) + ["#6b6b6b", "#a0522d", "#1b9e77", "#e7298a"]
    with _style():
        fig = _new_figure(2.15 * ncols, 5.6)
        top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 0.8])
        axes = top.subplots(1, 4)
        handles = []
        for ax, (key, ylabel, title) in zip(axes, _METRICS):
            for k, v in enumerate(series):
                ys = [getattr(row, key) for row in r["rows"] if row.variant == v]
                if not ys:
                    continue
                base = v in ("tilted (SIR)", "exact p(x|y)")
                (h,) = ax.plot(
                    ws,
                    ys,
                    marker="o",
                    ms=3.5,
                    lw=1.2,
                    ls="--" if base else "-",
                    color="#333333" if v == "exact p(x|y)" else palette[k % len(palette)],
                    label=v,
                )
                if ax is axes[0]:
                    handles.append(h)
            ax.set_xlabel("guidance weight w")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.set_xticks(ws)
            if key.startswith("ed"):
                ax.set_yscale("log")
        top.legend(handles=handles, loc="outside right center", frameon=False, fontsize=8.5)
        top.suptitle(
            f"{r['problem']}: guidance variants vs ground truth (class {r['y']}, "
            f"n = {r['n']}, {r['sampler']} {r['steps']} steps; dashed: baselines)"
        )
        # one box for every sample panel: the data, cut to a margin around the exact sample
        lo = np.min(np.concatenate([p[1] for p in panels]), axis=0)
        hi = np.max(np.concatenate([p[1] for p in panels]), axis=0)
        q_lo, q_hi = np.percentile(r["exact"], [0.5, 99.5], axis=0)
        pad = 0.3 * (q_hi - q_lo)
        lo, hi = np.maximum(lo, q_lo - 2 * pad), np.minimum(hi, q_hi + 2 * pad)
        baxes = bottom.subplots(1, ncols, squeeze=False)[0]
        for j, ax in enumerate(baxes):
            if j >= len(panels):
                ax.set_axis_off()
                continue
            title, x = panels[j]
            if d >= 2:
                ax.scatter(
                    x[:, 0],
                    x[:, 1],
                    s=1.5,
                    alpha=0.45,
                    lw=0,
                    rasterized=True,
                    color="#333333" if j == 0 else palette[(j - 1) % len(palette)],
                )
                ax.set_xlim(lo[0], hi[0])
                ax.set_ylim(lo[1], hi[1])
                ax.set_aspect("equal", adjustable="box")
                ax.set_xlabel("$x_1$")
                if j == 0:
                    ax.set_ylabel("$x_2$")
            else:
                ax.hist(
                    x[:, 0],
                    bins=60,
                    density=True,
                    color="#333333" if j == 0 else palette[(j - 1) % len(palette)],
                )
                ax.set_xlabel("x")
                if j == 0:
                    ax.set_ylabel("density")
            ax.set_title(title if j == 0 else f"{title}, w = {w_max:g}")
        bottom.suptitle(f"samples at w = {w_max:g} (left: a fresh exact sample of p(x|y))")
    return fig


def plot_comparison(result: dict, path, *, dpi: int = 200) -> Path:
    """Write ``comparison_figure(result)`` to ``path`` (format from the suffix: .png, .pdf, .svg)
    and return the path."""
    path = Path(path)
    fig = comparison_figure(result)
    fmt = path.suffix.lstrip(".").lower() or "png"
    meta = {"Software": None} if fmt == "png" else ({"CreationDate": None} if fmt == "pdf" else {})
    fig.savefig(
        path,
        format=fmt,
        dpi=dpi,
        metadata=meta,
        facecolor="white",
        bbox_inches="tight",
        pad_inches=0.06,
    )
    return path
