"""The pieces the report pages share: colours, pounds on an axis, a chart as inline SVG, money
in a table cell, the tables themselves and the page's style, so the outlook and the risk
report draw and write alike and neither needs the other's module."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.backends.backend_svg import RendererSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import Bbox

from carecontracts.machine import atomic_write
from carecontracts.money import currency_symbol, format_money, format_signed
from carecontracts.report.sheets import Share, Variance

PLAN_COLOUR, GREEN, RED = "#768692", "#007f3b", "#d5281b"


def month_name(month: dt.date) -> str:
    """2025-04-01 → `Apr 2025`, as finance teams write months."""
    return f"{month:%b %Y}"


NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')


SVG_DPI = 72  # the SVG backend draws in points


def _tight_bbox(figure: Figure) -> Bbox:
    """What `bbox_inches="tight"` crops the figure to (its drawn extent plus savefig's
    padding), measured at the SVG backend's resolution without drawing the figure, which
    savefig would otherwise do once just to measure before drawing it again to save it."""
    dpi = figure.dpi
    figure.dpi = SVG_DPI
    try:
        width, height = figure.get_size_inches() * SVG_DPI
        extent = figure.get_tightbbox(RendererSVG(width, height, io.StringIO(), image_dpi=SVG_DPI))
    finally:
        figure.dpi = dpi
    return extent.padded(mpl.rcParams["savefig.pad_inches"])


def svg(figure: Figure) -> str:
    """The figure as inline SVG cropped to what is drawn, with no metadata and no namespace
    declarations (the HTML parser supplies them), so the page names no address at all."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches=_tight_bbox(figure), metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)
    return NAMESPACES.sub("", text)


def pounds_label(value: float, _position: object = None) -> str:
    """An axis label in pounds: £1.2m, £350k, £900."""
    size = abs(value)
    sign = "-" if value < 0 else ""
    symbol = currency_symbol()
    if size >= 1e9:
        return f"{sign}{symbol}{size / 1e9:.1f}bn"
    if size >= 1e6:
        return f"{sign}{symbol}{size / 1e6:.1f}m"
    if size >= 1e3:
        return f"{sign}{symbol}{size / 1e3:.0f}k"
    return f"{sign}{symbol}{size:.0f}"


def style_axis(axis: Any, title: str) -> None:
    """A chart's title on the left, pounds on the y axis, light grid lines and no box."""
    axis.set_title(title, fontsize=10, loc="left")
    axis.yaxis.set_major_formatter(FuncFormatter(pounds_label))
    axis.spines[["top", "right"]].set_visible(False)
    axis.grid(axis="y", color="#e8edee", linewidth=0.6)
    axis.set_axisbelow(True)


def esc(text: object) -> str:
    """Text made safe to put in the page's HTML."""
    return html.escape(str(text))


def html_cell(value: Any) -> str:
    """A table cell: money in £ right-aligned (red when negative), a variance signed (green when
    favourable, red when adverse), a share as a percentage."""
    if isinstance(value, Variance):
        css = " fav" if value > 0 else " neg" if value < 0 else ""
        return f"<td class='num{css}'>{esc(format_signed(value))}</td>"
    if isinstance(value, Decimal):
        return f"<td class='num{' neg' if value < 0 else ''}'>{esc(format_money(value))}</td>"
    if value is None or isinstance(value, Share):
        return f"<td class='num'>{'' if value is None else esc(value)}</td>"
    return f"<td>{esc(value)}</td>"


def html_table(headings: list[str], rows: list[list[Any]], bold_last: bool = False, css: str = "") -> str:
    """A table of the page: numeric columns' headings right-aligned, the last row bold if a total."""
    money_columns = {i for i in range(len(headings)) if any(isinstance(r[i], (Decimal, Share)) for r in rows)}
    head = "".join(f"<th class='num'>{esc(h)}</th>" if i in money_columns else f"<th>{esc(h)}</th>" for i, h in enumerate(headings))
    body = []
    for index, row in enumerate(rows):
        mark = " class='total'" if bold_last and index == len(rows) - 1 else ""
        body.append(f"<tr{mark}>" + "".join(html_cell(v) for v in row) + "</tr>")
    return f"<table class='{css}'><tr>{head}</tr>{''.join(body)}</table>"


EXTRA_STYLE = """
tr.total td { font-weight: bold; border-top: 2px solid #425563; } td.neg { color: #d5281b; } td.fav { color: #007f3b; } td.num, th.num { white-space: nowrap; text-align: right; }
.small { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
.headline { display: flex; gap: 12px; margin: 12px 0; } .headline div { flex: 1; background: #f0f4f5; padding: 10px 12px; border-left: 4px solid #005eb8; }
.headline b { display: block; font-size: 20px; } .headline span { font-size: 12px; color: #425563; }
table.compact { font-size: 12px; } table.compact th, table.compact td { padding: 4px 5px; }
"""


def write_text(text: str, path: Path) -> Path:
    """Write a page (temporary file, then replace), so a failure leaves no half page."""
    with atomic_write(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path
