"""Self-contained reports: one HTML file (images embedded as base64, no network) and the same
content in Markdown (images as files next to it).

A report is a title plus an ordered list of blocks: headings, paragraphs, links (to files next to
the report, such as the interactive page), tables, figures and preformatted text. ``Report.write(out)`` writes ``report.html`` and ``report.md`` to directory out.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from .._format import format_value

__all__ = ["Report", "Table"]


@dataclass
class Table:
    """A table: column names, rows (sequences of values), an optional caption."""

    columns: list
    rows: list
    caption: str = ""

    def __post_init__(self):
        self.columns = [str(c) for c in self.columns]
        self.rows = [list(r) for r in self.rows]
        for i, r in enumerate(self.rows):
            if len(r) != len(self.columns):
                raise ValueError(
                    f"rows[{i}] has {len(r)} cells but there are {len(self.columns)} columns"
                )

    def cells(self) -> list[list[str]]:
        return [[format_value(v) for v in r] for r in self.rows]

    def to_text(self) -> str:
        """Fixed-width text for the terminal."""
        cells = self.cells()
        widths = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(self.columns)]
        line = "  ".join(c.rjust(wd) for c, wd in zip(self.columns, widths))
        out = ([self.caption] if self.caption else []) + [line, "-" * len(line)]
        out += ["  ".join(v.rjust(wd) for v, wd in zip(r, widths)) for r in cells]
        return "\n".join(out)

    def to_markdown(self) -> str:
        esc = lambda s: s.replace("|", "\\|")  # noqa: E731
        out = []
        if self.caption:
            out += [f"*{self.caption}*", ""]
        out.append("| " + " | ".join(esc(c) for c in self.columns) + " |")
        out.append("|" + "|".join("---:" for _ in self.columns) + "|")
        out += ["| " + " | ".join(esc(v) for v in r) + " |" for r in self.cells()]
        return "\n".join(out)

    def to_html(self) -> str:
        e = html.escape
        head = "".join(f"<th>{e(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{e(v)}</td>" for v in r) + "</tr>" for r in self.cells()
        )
        cap = f"<caption>{e(self.caption)}</caption>" if self.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}caption{text-align:left;font-style:italic;
padding:.3em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f5f8}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555}pre{background:#f6f8fa;padding:.7em;overflow-x:auto;font-size:.85em}
"""


@dataclass
class Report:
    """An ordered report. Add blocks with heading(), text(), link(), table(), figure(), pre()."""

    title: str
    blocks: list = field(default_factory=list)

    def heading(self, text: str) -> Report:
        self.blocks.append(("h", str(text)))
        return self

    def text(self, text: str) -> Report:
        self.blocks.append(("p", str(text)))
        return self

    def link(self, href: str, label: str, before: str = "", after: str = "") -> Report:
        """A paragraph ``before`` + a link to ``href`` (a relative path or URL) reading ``label``
        + ``after``."""
        for name, v in (("href", href), ("label", label)):
            if not isinstance(v, str) or not v:
                raise ValueError(f"{name} must be a non-empty str, got {v!r}")
        self.blocks.append(("a", (href, label, str(before), str(after))))
        return self

    def pre(self, text: str) -> Report:
        self.blocks.append(("pre", str(text)))
        return self

    def table(self, table: Table) -> Report:
        if not isinstance(table, Table):
            raise TypeError(
                f"table must be a refcfg.plotting.report.Table, got {type(table).__name__}"
            )
        self.blocks.append(("table", table))
        return self

    def figure(self, png_path, caption: str = "") -> Report:
        """A PNG file (it must exist; it is read when the report is written)."""
        p = Path(png_path)
        if p.suffix.lower() != ".png":
            raise ValueError(f"png_path must be a .png file, got {str(p)!r}")
        if not p.is_file():
            raise ValueError(f"png_path {str(p)!r} does not exist")
        self.blocks.append(("fig", (p, str(caption))))
        return self

    # ------------------------------------------------------------------ writers
    def to_html(self) -> str:
        """One self-contained HTML document: no external resource, images as data: URIs."""
        e = html.escape
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{e(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{e(self.title)}</h1>",
        ]
        for kind, val in self.blocks:
            if kind == "h":
                parts.append(f"<h2>{e(val)}</h2>")
            elif kind == "p":
                parts.append(f"<p>{e(val)}</p>")
            elif kind == "pre":
                parts.append(f"<pre>{e(val)}</pre>")
            elif kind == "a":
                href, label, before, after = val
                parts.append(f'<p>{e(before)}<a href="{e(href)}">{e(label)}</a>{e(after)}</p>')
            elif kind == "table":
                parts.append(val.to_html())
            else:
                p, cap = val
                data = base64.b64encode(p.read_bytes()).decode("ascii")
                parts.append(
                    f'<figure><img alt="{e(cap or p.stem)}" '
                    f'src="data:image/png;base64,{data}">'
                    f"<figcaption>{e(cap)}</figcaption></figure>"
                )
        parts.append("</body></html>")
        return "\n".join(parts)

    def to_markdown(self, relative_to=None) -> str:
        """Markdown; figure links are relative to directory ``relative_to`` when given."""
        parts = [f"# {self.title}", ""]
        for kind, val in self.blocks:
            if kind == "h":
                parts += [f"## {val}", ""]
            elif kind == "p":
                parts += [val, ""]
            elif kind == "pre":
                parts += ["```text", val, "```", ""]
            elif kind == "a":
                href, label, before, after = val
                parts += [f"{before}[{label}]({href}){after}", ""]
            elif kind == "table":
                parts += [val.to_markdown(), ""]
            else:
                p, cap = val
                link = p
                if relative_to is not None:
                    try:
                        link = p.resolve().relative_to(Path(relative_to).resolve())
                    except ValueError:
                        link = p.resolve()
                parts += [f"![{cap or p.stem}]({link.as_posix()})", ""]
                if cap:
                    parts += [f"*{cap}*", ""]
        return "\n".join(parts)

    def write(self, out, stem: str = "report") -> dict:
        """Write ``stem.html`` and ``stem.md`` into directory ``out``; returns their paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        h, m = out / f"{stem}.html", out / f"{stem}.md"
        h.write_text(self.to_html(), encoding="utf-8")
        m.write_text(self.to_markdown(relative_to=out), encoding="utf-8")
        return {"html": h, "markdown": m}
