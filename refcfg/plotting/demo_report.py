"""The prose of the report that ``refcfg demo`` writes: its introduction, the notes under its
sections and its links, as functions of the numbers the demo computed. ``refcfg.commands.demo``
runs the computations and adds these blocks to a ``Report``."""

from __future__ import annotations

from .report import Report, Table

__all__ = ["result_table", "intro", "CFG_NOTE", "training_text", "not_drawn_text", "page_link"]

CFG_NOTE = (
    "w = 1 samples p(x|y) (its distance to p(x|y) is at the noise floor). For w > 1 the "
    "confidence rises, but the samples do not follow the tilted law p(x|y)^w "
    "p(x)^(1-w)/Z either: CFG is a heuristic (notes, section 5.2)."
)


def result_table(result) -> Table:
    """A report Table from an experiments Result (dict rows; the title is the caption)."""
    cols = list(result.table[0])
    return Table(cols, [[r[c] for c in cols] for r in result.table], caption=result.title)


def intro(label: str, mix, seed: int, n: int, fast: bool) -> str:
    """The report's first paragraph: the problem, the schedule, the CFG convention and the command
    that reproduces every number (``n`` as the user gave it)."""
    return (
        f"Problem {label}: {mix.n_classes} classes, d = {mix.d}, "
        f"{mix.marginal.K} Gaussian components; schedule alpha_t = t, beta_t = 1 - t "
        f"(t = 0 noise, t = 1 data); CFG u~ = w u(x|y) + (1 - w) u(x|null) (notes eq. 65; "
        f"Ho-Salimans omega = w - 1). Every number below is reproducible with "
        f"`refcfg demo --problem {label} --seed {seed} --n {n}"
        f"{' --fast' if fast else ''}`."
    )


def training_text(model, steps: int, seconds: float, label: str, saved) -> str:
    """The paragraph on the short CFG training: the network, its steps and time, where it was
    saved and the command that draws its errors."""
    return (
        f"An MLP ({model.n_params} parameters) trained for {steps} "
        f"steps ({seconds:.1f} s) by conditional flow matching with label "
        f"dropout eta = 0.1 (notes eq. 66); saved as model.npz "
        f"(`refcfg figures --problem {label} --model {saved}`)."
    )


def not_drawn_text(skipped: str) -> str:
    """The sentence naming the figures left out (``skipped``: the command's "skipped ..." text)."""
    return "Not drawn: " + skipped.removeprefix("skipped ") + "."


def page_link(report: Report, href: str = "interactive.html") -> Report:
    """Add the link to the interactive page (a file next to the report) to ``report``."""
    return report.link(
        href,
        href,
        before="The interactive page ",
        after=" (next to this report) shows the exact guided field and CFG samples "
        "with sliders for w and t.",
    )
