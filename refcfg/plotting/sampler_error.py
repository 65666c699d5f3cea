"""The sampler-error figure: RMS error against the exact ODE solution versus the number of field
evaluations (log-log), one panel per guidance weight, with reference slopes of order 1 and 2 (the
fitted orders are in the table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["sampler_error_figure"]


def sampler_error_figure(result, out) -> Path:
    """Write the figure of a :class:`refcfg.experiments.sampler_error.SamplerErrorResult` to
    ``out`` (a .png or .pdf path); returns the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.suffix not in (".png", ".pdf"):
        raise ValueError(f"out must end in .png or .pdf, got {str(out)!r}")
    ws = sorted({r["w"] for r in result.rows})
    fig, axes = plt.subplots(1, len(ws), figsize=(3.6 * len(ws), 3.3), squeeze=False, sharey=True)
    names = list(dict.fromkeys(r["sampler"] for r in result.rows))
    for ax, w in zip(axes[0], ws):
        lo, hi = np.inf, 0
        for name in names:
            rows = [r for r in result.rows if r["sampler"] == name and r["w"] == w]
            if not rows:
                continue
            nfe = np.array([r["nfe"] for r in rows])
            err = np.array([r["error"] for r in rows])
            lo, hi = min(lo, nfe.min()), max(hi, nfe.max())
            ax.loglog(nfe, err, "o-", ms=3.5, lw=1.2, label=name)
        ref = np.array([lo, hi], dtype=float)
        top = max(r["error"] for r in result.rows if r["w"] == w)
        for p, style in ((1, ":"), (2, "--")):
            ax.loglog(ref, top * (ref / lo) ** -p, "k" + style, lw=0.8, label=f"slope -{p}")
        ax.set_title(f"w = {w:g}")
        ax.set_xlabel("field evaluations (NFE)")
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
    axes[0][0].set_ylabel("RMS error vs exact ODE")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False
    )
    fig.tight_layout()
    fig.savefig(
        out,
        dpi=150,
        facecolor="white",
        bbox_inches="tight",
        metadata={"Software": "refcfg"} if out.suffix == ".png" else None,
    )
    plt.close(fig)
    return out
