"""Results that show themselves: a table as HTML in a notebook cell and as text elsewhere.

A dataclass's own repr (``RunRecord(profile='smoke', max_iter=300, ..., best_ap50=0.9959350593444437, ...)``)
wraps over three lines and shows every float's last digit; the records shown in cells (the run, the plan,
the dataset) give ``_repr_html_`` and ``__repr__`` from :func:`html_table` and :func:`text_table` instead.
"""

from __future__ import annotations

import html


def text_table(title: str, rows: list[tuple[str, object]]) -> str:
    """``title`` then one ``name   value`` line per row, the values aligned."""
    width = max((len(name) for name, _ in rows), default=0)
    return "\n".join([title, *(f"  {name:<{width}}  {value}" for name, value in rows)])


def html_table(title: str, rows: list[tuple[str, object]]) -> str:
    """The same rows as a small HTML table, the title as its caption; every value escaped."""
    body = "".join(
        f'<tr><th style="text-align:left">{html.escape(str(name))}</th>'
        f'<td style="text-align:left">{html.escape(str(value))}</td></tr>'
        for name, value in rows
    )
    return f'<table><caption style="text-align:left"><b>{html.escape(title)}</b></caption>{body}</table>'


def grid_text(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]], empty: str = "") -> str:
    """``title``, then the header and rows in aligned columns (``empty``: the line shown when there is no row)."""
    if not rows:
        return "\n".join([title, empty] if empty else [title])
    lines = [header, *rows]
    widths = [max(len(r[c]) for r in lines) for c in range(len(header))]
    return "\n".join([title, *("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines)])


def grid_html(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]], bold: set[int] = frozenset()) -> str:
    """The same as an HTML table, the title as its caption, the rows numbered in ``bold`` in bold; all escaped."""
    head = "".join(f'<th style="text-align:left">{html.escape(c)}</th>' for c in header)
    body = "".join(
        "<tr" + (' style="font-weight:bold"' if k in bold else "") + ">"
        + "".join(f'<td style="text-align:left">{html.escape(c)}</td>' for c in row) + "</tr>"
        for k, row in enumerate(rows)
    )  # fmt: skip
    return f'<table><caption style="text-align:left"><b>{html.escape(title)}</b></caption><tr>{head}</tr>{body}</table>'
