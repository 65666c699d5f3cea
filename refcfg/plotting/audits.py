"""The audit figure: each audited sampler's error against the exact endpoint from the same noise
versus the number of steps (log-log), from ``AuditResult.series``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["audit_figure"]


def audit_figure(result, out) -> Path:
    """Write the figure of an ``refcfg.audits.AuditResult`` to ``out`` (.png or .pdf); returns the
    path. ValueError when the result has no error curves."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.suffix not in (".png", ".pdf"):
        raise ValueError(f"out must end in .png or .pdf, got {str(out)!r}")
    if not result.series:
        raise ValueError(f"audit {result.name!r} has no error curves to draw")
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for label, (steps, errors) in result.series.items():
        style = "s--" if "pipeline" in label.lower() or "library" in label.lower() else "o-"
        ax.loglog(steps, errors, style, ms=3.5, lw=1.2, label=label)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ticks = sorted({s for steps, _ in result.series.values() for s in steps})
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("steps")
    ax.set_ylabel("max error vs exact endpoint (same noise)")
    ax.set_title(f"{result.name} ({'fast' if result.fast else 'full'} run)")
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=150, facecolor="white", bbox_inches="tight")
    plt.close(fig)
    return out
