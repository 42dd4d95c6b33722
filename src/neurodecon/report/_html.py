"""A self-contained HTML page: figures embedded as base64 PNG, tables as plain HTML.

The page opens offline (no scripts, no external CSS or fonts). Each embedded figure also names
its PNG file beside the page (``data-file``), and each table carries an ``id``, so tests and users
can find every piece the page refers to.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["figure_block", "table_block", "key_values", "section", "render_page", "fmt"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;
padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.86em;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
tr.failed td{color:#a00}tr.best td{background:#eef8ee;font-weight:600}
tr.inconsistent td{color:#b45309;font-style:italic}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.88em;color:#444;margin-top:.3em}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;font-size:.9em}
dl.kv dt{font-weight:600}dl.kv dd{margin:0;font-family:ui-monospace,monospace}
.note{font-size:.88em;color:#555}
"""


def fmt(value: Any, digits: int = 4) -> str:
    """Format a table cell: floats with ``digits`` significant digits, NaN/None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.{digits}g}"
    return str(value)


def figure_block(png: str | Path, caption: str, *, page_dir: str | Path, fig_id: str) -> str:
    """Return an embedded PNG with its caption; ``data-file`` is its path relative to the page."""
    png = Path(png)
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    rel = png.resolve().relative_to(Path(page_dir).resolve()).as_posix()
    return (
        f'<figure id="{html.escape(fig_id)}">'
        f'<img alt="{html.escape(caption)}" data-file="{html.escape(rel)}" '
        f'src="data:image/png;base64,{data}">'
        f'<figcaption>{html.escape(caption)} (<a href="{html.escape(rel)}">PNG</a>)'
        "</figcaption></figure>"
    )


def table_block(
    table_id: str,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    caption: str = "",
    row_classes: Sequence[str] | None = None,
) -> str:
    """Return a plain HTML table (``id=table_id``); cells go through :func:`fmt`, then escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f"<td>{html.escape(fmt(c))}</td>" for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table id="{html.escape(table_id)}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def key_values(pairs: Sequence[tuple[str, Any]]) -> str:
    """Return a definition list of ``(label, value)`` pairs."""
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(fmt(v))}</dd>" for k, v in pairs)
    return f'<dl class="kv">{items}</dl>'


def section(title: str, *blocks: str, note: str = "") -> str:
    """Return an ``<h2>`` section holding already-rendered blocks (and an optional note)."""
    extra = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return f"<section><h2>{html.escape(title)}</h2>{extra}{''.join(blocks)}</section>"


def render_page(title: str, subtitle: str, sections: Sequence[str]) -> str:
    """Return the whole page as one string (title, subtitle, then the sections)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="note">{html.escape(subtitle)}</p>'
        f"{''.join(sections)}</body></html>\n"
    )
