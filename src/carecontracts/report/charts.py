"""Charts for the audit report, drawn with matplotlib and returned as inline SVG text so the
HTML stays one self-contained file that works offline."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from carecontracts.audit.bunching import Bunching  # noqa: E402
from carecontracts.audit.spc import Meaning, XmR  # noqa: E402

GREY, BLUE, ORANGE, INK = "#a5a5a5", "#289de0", "#fab428", "#231f20"
COMMON, IMPROVEMENT, CONCERN = "#7f7f7f", "#361475", "#fab428"  # Making Data Count colours


def _svg(figure: Figure) -> str:
    """The figure as an SVG element (no XML prolog), then closed."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def bunching_chart(estimate: Bunching, title: str) -> str:
    """Bars of the observed counts, the counterfactual curve over them, the excess window and
    the missing-mass bins shaded, and the threshold marked."""
    bins = estimate.histogram
    figure, axis = plt.subplots(figsize=(7.5, 3.4))
    colours = np.where(estimate.window, ORANGE, np.where(estimate.missing, "#bcd9f0", GREY))
    axis.bar(bins.lower, bins.counts, width=bins.widths, align="edge", color=colours, edgecolor="white", linewidth=0.5, label="observed")
    axis.plot(bins.centres, estimate.counterfactual, color=INK, linewidth=1.8, label=f"counterfactual (degree {estimate.degree})")
    excluded = estimate.window | estimate.missing
    if excluded.any():
        axis.axvspan(float(bins.lower[excluded].min()), float(bins.upper[excluded].max()), color=BLUE, alpha=0.08, label="excluded from the fit")
    axis.axvline(estimate.threshold, color="#d5281b", linestyle="--", linewidth=1.2, label=f"threshold {estimate.scale.amount(estimate.threshold)}")
    axis.set_xlabel(estimate.scale.unit or "value")
    axis.set_ylabel(estimate.scale.counted)
    axis.set_title(title, fontsize=10, loc="left")
    axis.legend(fontsize=7, frameon=False, loc="upper right")
    axis.spines[["top", "right"]].set_visible(False)
    return _svg(figure)


def xmr_chart(chart: XmR, title: str, unit: str = "") -> str:
    """The XmR chart: values, mean, process limits, and points of special cause coloured by
    meaning (improvement, concern) as Making Data Count draws them."""
    figure, axis = plt.subplots(figsize=(7.5, 3.0))
    x = np.arange(len(chart.values))
    axis.plot(x, chart.values, color=COMMON, linewidth=1.2, zorder=1)
    colour = [COMMON] * len(x)
    for meaning, shade in ((Meaning.NEITHER, BLUE), (Meaning.CONCERN, CONCERN), (Meaning.IMPROVEMENT, IMPROVEMENT)):
        for point in chart.flagged(meaning):
            colour[point] = shade
    axis.scatter(x, chart.values, c=colour, s=28, zorder=2)
    axis.axhline(chart.mean, color=INK, linewidth=1, label=f"mean {chart.mean:.1f}")
    axis.axhline(chart.upper, color="#d5281b", linestyle="--", linewidth=1, label=f"process limits {chart.lower:.1f}–{chart.upper:.1f}")
    axis.axhline(chart.lower, color="#d5281b", linestyle="--", linewidth=1)
    for level in (chart.mean + 2 * chart.sigma, chart.mean - 2 * chart.sigma):
        axis.axhline(level, color=GREY, linestyle=":", linewidth=0.8)
    axis.set_xticks(x, chart.labels, rotation=45, ha="right", fontsize=7)
    axis.set_ylabel(unit)
    axis.set_title(title, fontsize=10, loc="left")
    axis.legend(fontsize=7, frameon=False, loc="best")
    axis.spines[["top", "right"]].set_visible(False)
    return _svg(figure)
