"""Charts for the audit report, drawn with matplotlib and returned as inline SVG text so the
HTML stays one self-contained file that works offline."""

from __future__ import annotations

import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from carecontracts.audit.bunching import Bunching  # noqa: E402
from carecontracts.audit.spc import ControlChart, Meaning  # noqa: E402

GREY, BLUE, ORANGE, INK = "#a5a5a5", "#289de0", "#fab428", "#231f20"
COMMON, IMPROVEMENT, CONCERN = "#7f7f7f", "#361475", "#fab428"  # Making Data Count colours


def _svg(figure: Figure) -> str:
    """The figure as an SVG element (no XML prolog), then closed."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def bunching_chart(estimate: Bunching, title: str) -> str:
    """Above: bars of the observed counts coloured by their part in the fit (the window, the
    missing range, bins kept out for another reason, bins fitted), the counterfactual with its
    bootstrap band, and the threshold. Below: the same estimator's z at every placebo threshold,
    with the target's marked, so the reader sees how it ranks."""
    bins = estimate.histogram
    placebo = estimate.placebo
    rows = 2 if placebo is not None and placebo.count else 1
    figure, axes = plt.subplots(rows, 1, figsize=(7.5, 3.4 + 1.5 * (rows - 1)), gridspec_kw={"height_ratios": [3, 1.2][:rows]}, squeeze=False)
    axis = axes[0, 0]
    roles = ((estimate.window, ORANGE, "window (excess measured here)"), (estimate.missing, "#9ccbee", "missing range (excess came from here)"),
             (estimate.excluded, "#d8dde0", "kept out (calendar, another target, a heap)"))
    fitted = ~(estimate.window | estimate.missing | estimate.excluded)
    axis.bar(bins.lower[fitted], bins.counts[fitted], width=bins.widths[fitted], align="edge", color=GREY, edgecolor="white", linewidth=0.5, label="fitted")
    for mask, colour, label in roles:
        if mask.any():
            axis.bar(bins.lower[mask], bins.counts[mask], width=bins.widths[mask], align="edge", color=colour, edgecolor="white", linewidth=0.5, label=label)
    low, high = estimate.counterfactual_band
    axis.fill_between(bins.centres, low, high, color=INK, alpha=0.12, linewidth=0, label=f"{estimate.level:.0%} band (bootstrap)")
    axis.plot(bins.centres, estimate.counterfactual, color=INK, linewidth=1.6, label=f"counterfactual (NB, degree {estimate.degree})")
    axis.axvline(estimate.threshold, color="#d5281b", linestyle="--", linewidth=1.2, label=f"threshold {estimate.scale.amount(estimate.threshold)}")
    axis.set_xlabel(estimate.scale.unit or "value", fontsize=8)
    axis.set_ylabel(estimate.scale.counted, fontsize=8)
    axis.set_ylim(bottom=0)
    axis.set_title(title, fontsize=10, loc="left")
    axis.legend(fontsize=6.5, frameon=False, loc="best")
    axis.tick_params(labelsize=7)
    axis.spines[["top", "right"]].set_visible(False)
    if rows == 2 and placebo is not None:
        strip = axes[1, 0]
        strip.axhline(0, color=GREY, linewidth=0.8)
        strip.scatter(placebo.thresholds, placebo.z, s=14, color=GREY, label=f"{placebo.count} placebo thresholds")
        colour = "#d5281b" if estimate.significant else INK
        strip.scatter([estimate.threshold], [estimate.z], s=36, color=colour, marker="D",
                      label=f"target: z {estimate.z:.1f}, rank {placebo.rank} of {placebo.count + 1}")
        strip.set_xlim(axis.get_xlim())
        strip.set_ylabel("z of excess", fontsize=8)
        strip.tick_params(labelsize=7)
        strip.legend(fontsize=6.5, frameon=False, loc="best")
        strip.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return _svg(figure)


MDC_IMPROVEMENT, MDC_CONCERN, MDC_NEITHER, MDC_COMMON = "#289de0", "#fab428", "#361475", "#a6a6a6"  # Making Data Count colours


def control_chart(chart: ControlChart, title: str, unit: str = "") -> str:
    """The XmR or p-chart as a small hand-made SVG: each phase's mean and process limits
    (clipped to the scale; stepping point by point on a p-chart), the two-sigma lines, the
    target, and the points of special cause coloured as Making Data Count draws them (blue
    improvement, orange concern, purple neither)."""
    width, height, left, right, top, bottom = 720, 250, 46, 12, 26, 52
    values = chart.values
    n = len(values)
    levels = list(chart.lowers) + list(chart.uppers) + list(values) + ([chart.target] if chart.target is not None else [])
    low, high = min(levels), max(levels)
    pad = (high - low) * 0.08 or 1.0
    low, high = low - pad, high + pad

    def x(i: float) -> float:
        return left + (width - left - right) * (i / max(n - 1, 1))

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - low) / (high - low))

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' "
             f"aria-label='{html.escape(title)}' font-family='Arial, sans-serif'>",
             f"<text x='{left}' y='16' font-size='12' fill='{INK}'>{html.escape(title)}</text>"]
    for tick in np.linspace(low + pad, high - pad, 5):
        parts.append(f"<text x='{left - 6}' y='{y(tick) + 3:.1f}' font-size='9' text-anchor='end' fill='#425563'>{tick:.1f}</text>"
                     f"<line x1='{left}' x2='{width - right}' y1='{y(tick):.1f}' y2='{y(tick):.1f}' stroke='#eef0f1'/>")
    for phase in chart.phases:
        x0, x1 = x(phase.start - 0.5 if phase.start else 0), x(phase.stop - 0.5 if phase.stop < n else n - 1)
        parts.append(f"<line x1='{x0:.1f}' x2='{x1:.1f}' y1='{y(phase.mean):.1f}' y2='{y(phase.mean):.1f}' stroke='{INK}' stroke-width='1.2'/>")
        lo2, hi2 = phase.two_sigmas
        for line, colour, dash, w in ((phase.uppers, "#d5281b", "5,3", 1), (phase.lowers, "#d5281b", "5,3", 1),
                                      (lo2, MDC_COMMON, "2,3", 0.8), (hi2, MDC_COMMON, "2,3", 0.8)):
            steps = []
            for j, level in enumerate(line):  # each point's own limit, as a step from half-way to half-way
                i = phase.start + j
                steps += [f"{max(x(i - 0.5), x0):.1f},{y(level):.1f}", f"{min(x(i + 0.5), x1):.1f},{y(level):.1f}"]
            parts.append(f"<polyline points='{' '.join(steps)}' fill='none' stroke='{colour}' stroke-width='{w}' stroke-dasharray='{dash}'/>")
        if phase.baseline < phase.stop - phase.start:
            edge = x(phase.start + phase.baseline - 0.5)
            parts.append(f"<line x1='{edge:.1f}' x2='{edge:.1f}' y1='{top}' y2='{height - bottom}' stroke='{MDC_COMMON}' stroke-dasharray='1,2'/>"
                         f"<text x='{edge + 3:.1f}' y='{top + 9}' font-size='8' fill='#425563'>baseline ends</text>")
        if phase.start:
            parts.append(f"<line x1='{x0:.1f}' x2='{x0:.1f}' y1='{top}' y2='{height - bottom}' stroke='{INK}' stroke-width='0.8'/>")
    if chart.target is not None:
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{y(chart.target):.1f}' y2='{y(chart.target):.1f}' stroke='#007f3b' stroke-width='1.2' stroke-dasharray='8,3'/>"
                     f"<text x='{width - right}' y='{y(chart.target) - 3:.1f}' font-size='9' text-anchor='end' fill='#007f3b'>target {chart.target:g}{unit}</text>")
    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts.append(f"<polyline points='{points}' fill='none' stroke='{MDC_COMMON}' stroke-width='1.4'/>")
    shades = [MDC_COMMON] * n
    for meaning, shade in ((Meaning.NEITHER, MDC_NEITHER), (Meaning.CONCERN, MDC_CONCERN), (Meaning.IMPROVEMENT, MDC_IMPROVEMENT)):
        for point in chart.flagged(meaning):
            shades[point] = shade
    for i, v in enumerate(values):
        parts.append(f"<circle cx='{x(i):.1f}' cy='{y(v):.1f}' r='3.2' fill='{shades[i]}'><title>{html.escape(chart.labels[i])}: {v:.2f}{unit}</title></circle>")
    step = max(1, int(np.ceil(n / 24)))
    for i in range(0, n, step):
        parts.append(f"<text transform='translate({x(i):.1f},{height - bottom + 10}) rotate(45)' font-size='8.5' fill='#425563'>{html.escape(chart.labels[i])}</text>")
    last = chart.last
    parts.append(f"<text x='{width - right}' y='{height - 4}' font-size='9' text-anchor='end' fill='#425563'>mean {last.mean:.1f}, "
                 f"process limits {last.lower:.1f} to {last.upper:.1f}{unit}{' at the mean denominator' if last.point_sigma is not None else ''}</text></svg>")
    return "".join(parts)
