"""Figures, the interactive page, reports and number formatting of refcfg's studies.

The submodules are imported on demand (``from refcfg.plotting import figures``), so importing this
package does not import matplotlib:

- ``figures``      paper-style figures of the exact fields and ``make_figures``;
- ``interactive``  the self-contained HTML page with sliders for w and t;
- ``report``       self-contained HTML and Markdown reports (``Report``, ``Table``);
- ``format``       the one number formatter of every printed table;
- ``comparison``   the table, JSON record and figure of the guidance-variant comparison;
- ``sweeps``       figures of parameter sweeps (``refcfg sweep``).
"""
