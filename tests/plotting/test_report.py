"""The report writer (refcfg.plotting.report): HTML self-contained, Markdown with relative links,
the link block (the demo links its interactive page), cells through the one number formatter."""

from __future__ import annotations

import pytest

from refcfg.plotting.report import Report, Table


def test_link_block_in_html_and_markdown(tmp_path):
    rep = (
        Report("R")
        .text("before")
        .link(
            "interactive.html",
            "the interactive page",
            before="Open ",
            after=" (sliders for w and t).",
        )
    )
    paths = rep.write(tmp_path)
    html = paths["html"].read_text(encoding="utf-8")
    md = paths["markdown"].read_text(encoding="utf-8")
    assert (
        '<p>Open <a href="interactive.html">the interactive page</a> (sliders for w and t).</p>'
        in html
    )
    assert "Open [the interactive page](interactive.html) (sliders for w and t)." in md
    with pytest.raises(ValueError, match="href must be a non-empty str"):
        Report("R").link("", "x")


def test_table_cells_use_the_formatter():
    t = Table(["a", "b", "c"], [[0.123456, 1e-7, 3], [float("nan"), 12345.6, True]], caption="c")
    assert t.cells() == [["0.1235", "1.000e-07", "3"], ["nan", "1.235e+04", "True"]]
    assert t.to_markdown().splitlines()[2] == "| a | b | c |"
    with pytest.raises(ValueError, match=r"rows\[0\] has 2 cells but there are 3 columns"):
        Table(["a", "b", "c"], [[1, 2]])
