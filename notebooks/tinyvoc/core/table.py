"""Results that show themselves: a short two-column table as HTML in a notebook cell and as text elsewhere.

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
