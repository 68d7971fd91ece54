"""The audit as one self-contained HTML page: what needs explaining first, with its numbers
(the excess, its interval, the placebo rank); what could not be tested and why; then per
subject the distribution with its counterfactual and placebos, and the control chart of its own
share with the Making Data Count icons; then the logical checks, reported against
recomputed, and the method in words."""

from __future__ import annotations

import html
from pathlib import Path

from carecontracts.audit.export import write_whole
from carecontracts.audit.findings import Finding, Severity, grouped, subjects_text
from carecontracts.audit.run import Audit, SubjectAudit
from carecontracts.audit.spc import Assurance, ControlChart, Variation
from carecontracts.report.charts import MDC_COMMON, MDC_CONCERN, MDC_IMPROVEMENT, MDC_NEITHER, bunching_chart, control_chart

STYLE = """
body { font-family: Arial, Helvetica, sans-serif; color: #231f20; max-width: 1100px; margin: 24px auto; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 2px solid #005eb8; padding-bottom: 4px; margin-top: 32px; } h3 { font-size: 15px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #d8dde0; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f0f4f5; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.error { color: #fff; background: #d5281b; } .warning { color: #231f20; background: #ffeb3b; } .info { color: #fff; background: #007f3b; }
.untested { color: #fff; background: #6f2c91; }
.badge { padding: 1px 6px; border-radius: 3px; font-size: 12px; font-weight: bold; white-space: nowrap; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; } .charts > div { flex: 1 1 520px; max-width: 820px; } .charts svg { width: 100%; height: auto; } svg { max-width: 100%; }
p.note, li.note { color: #425563; font-size: 13px; }
.summary { display: flex; gap: 12px; margin: 12px 0; } .summary div { padding: 10px 14px; border-radius: 4px; background: #f0f4f5; font-size: 14px; }
.summary b { font-size: 22px; display: block; }
.icons { display: inline-flex; gap: 6px; vertical-align: middle; margin-left: 8px; }
details summary { cursor: pointer; color: #005eb8; margin: 8px 0; }
"""

BADGE = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.UNTESTED: "untested", Severity.INFO: "info"}


def _e(text: object) -> str:
    return html.escape(str(text))


def _badge(severity: Severity) -> str:
    return f"<span class='badge {BADGE[severity]}'>{_e(severity.value)}</span>"


def _icon(letter: str, colour: str, label: str, fill: str = "#fff") -> str:
    """A round Making Data Count style icon: a coloured ring with a letter."""
    return (f"<svg width='30' height='30' viewBox='0 0 30 30' role='img' aria-label='{_e(label)}'><title>{_e(label)}</title>"
            f"<circle cx='15' cy='15' r='13' fill='{fill}' stroke='{colour}' stroke-width='3'/>"
            f"<text x='15' y='20' font-size='14' font-weight='bold' text-anchor='middle' fill='{colour}' font-family='Arial'>{_e(letter)}</text></svg>")


def icons(chart: ControlChart) -> str:
    """The variation icon (latest point) and, with a target, the assurance icon."""
    variation = chart.variation
    colour, letter = {
        Variation.COMMON: (MDC_COMMON, "~"), Variation.IMPROVEMENT_HIGH: (MDC_IMPROVEMENT, "H"), Variation.IMPROVEMENT_LOW: (MDC_IMPROVEMENT, "L"),
        Variation.CONCERN_HIGH: (MDC_CONCERN, "H"), Variation.CONCERN_LOW: (MDC_CONCERN, "L"), Variation.NEITHER_HIGH: (MDC_NEITHER, "H"),
        Variation.NEITHER_LOW: (MDC_NEITHER, "L"),
    }[variation]
    parts = [_icon(letter, colour, f"variation: {variation.value}")]
    assurance = chart.assurance
    if assurance is not None:
        colour, letter = {Assurance.PASS: (MDC_IMPROVEMENT, "P"), Assurance.FAIL: (MDC_CONCERN, "F"), Assurance.HIT_AND_MISS: (MDC_COMMON, "?")}[assurance]
        parts.append(_icon(letter, colour, f"assurance: {assurance.value}"))
    return "<span class='icons'>" + "".join(parts) + "</span>"


def _number(value: object, places: int = 0) -> str:
    if isinstance(value, (int, float)):
        return f"{value:,.{places}f}"
    return ""


def _interval(finding: Finding) -> tuple[str, str, str]:
    """Excess with its interval, ratio with its interval, placebo rank — blank where not known."""
    n = finding.numbers
    excess = ratio = rank = ""
    if isinstance(n.get("excess"), (int, float)):
        excess = f"{_number(n['excess'])} ({_number(n.get('excess_low'))} to {_number(n.get('excess_high'))})"
    if isinstance(n.get("ratio"), (int, float)):
        ratio = f"{_number(n['ratio'], 2)} ({_number(n.get('ratio_low'), 2)} to {_number(n.get('ratio_high'), 2)})"
    if isinstance(n.get("placebo_rank"), int):
        p = n.get("placebo_p")
        chance = "p < 0.001" if isinstance(p, (int, float)) and p < 0.001 else f"p {_number(p, 3)}"
        rank = f"{n['placebo_rank']} of {int(n.get('placebo_count', 0)) + 1} ({chance})"
    return excess, ratio, rank


def _findings_table(findings: list[Finding], names: dict[str, str]) -> str:
    rows = ["<table><tr><th>severity</th><th>subject</th><th>check</th><th>finding</th><th class='num'>excess (interval)</th>"
            "<th class='num'>× expected (interval)</th><th class='num'>placebo rank</th></tr>"]
    for f in findings:
        excess, ratio, rank = _interval(f)
        name = names.get(f.subject, "")
        rows.append(f"<tr><td>{_badge(f.severity)}</td><td>{_e(f.subject)}{'<br><small>' + _e(name) + '</small>' if name else ''}</td><td>{_e(f.check)}</td>"
                    f"<td><b>{_e(f.title)}</b><br>{_e(f.sentence)}</td><td class='num'>{_e(excess)}</td><td class='num'>{_e(ratio)}</td><td class='num'>{_e(rank)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _chart_words(choice: str) -> str:
    """What --chart asked for, in words."""
    return {
        "auto": "a p-chart where the count behind each period is known, with Laney's p′ correction where the figures vary more than binomial "
                "sampling gives (σ_z over 1); XmR where no counts are known",
        "xmr": "XmR, as asked", "p": "p-charts, as asked", "laney": "Laney's p′-charts, as asked",
    }[choice]


def _method(audit: Audit) -> str:
    o = audit.options
    side = "at or below" if o.side.value == "below" else "at or above"
    return (
        "<h2>How this was worked out</h2><ul>"
        f"<li class='note'>Threshold {_e(audit.scale.amount(o.threshold))}, met {side} it. Bins of {_e(o.bin_width or 'the default width (a week; half a percentage point; seven days)')}.</li>"
        f"<li class='note'>Counterfactual: a negative binomial regression of the counts on a polynomial in the bin centre (degree 1 to {o.max_degree}, "
        f"the smallest AIC), fitted to {o.span} bins each side of the threshold, leaving out the {o.window} bin(s) next to it (the window), the bins beyond "
        "it whose shortfall covers the excess (the missing range), other targets' spikes and ranges kept out (calendar effects, heaps at 0 or 100%, --exclude).</li>"
        f"<li class='note'>Interval: {1 - o.alpha:.0%} percentile interval of a parametric bootstrap ({o.replicates} replicates, seed {o.seed}) that chooses "
        "the degree and the missing range again in every replicate, so it carries the uncertainty of those choices.</li>"
        "<li class='note'>Placebos: the same estimator at every bin edge where no target is, with the target's window and missing range kept out of "
        f"their fits. Bunching is reported only when the interval lies above zero and the target's z, measured from the placebos' mean z (never under 0) "
        f"in their standard deviations (never under 1), has a normal tail probability of at most {o.alpha:.0%}. The density test (McCrary) is ranked "
        "among its placebos (rank p = (1 + placebos at least as large) ÷ (1 + placebos)).</li>"
        f"<li class='note'>Charts ({_e(_chart_words(o.chart.value))}): each subject's own share by period, Making Data Count rules (beyond the limits; 7 on one side; 6 rising or falling; "
        f"2 of 3 beyond two sigma, each point against its own limits on a p-chart), limits clipped to 0–100{', from the first ' + str(o.baseline) + ' points of each phase' if o.baseline else ''}"
        f"{', phases from ' + ', '.join(o.phases) if o.phases else ''}. Signals are information: they say when performance changed, not that a figure is wrong.</li>"
        "</ul>"
    )


def _subject(subject: SubjectAudit, audit: Audit, flagged: list[Finding]) -> str:
    title = subject.subject + (f" — {subject.name}" if subject.name else "")
    parts = [f"<h2 id='s-{_e(subject.subject)}'>{_e(title)} <span class='badge {'warning' if flagged else 'info'}'>{len(flagged)} to explain</span>"
             + (icons(subject.chart.control) if subject.chart else "") + "</h2>"]
    parts.append(f"<p class='note'>{subject.records:,} {_e(audit.scale.counted)}.</p>")
    charts = []
    if subject.bunching is not None:
        b = subject.bunching
        lo, hi = b.specification_range
        parts.append(f"<p>{_e(b.sentence())}</p>")
        parts.append("<table><tr><th class='num'>observed</th><th class='num'>expected</th><th class='num'>excess</th><th class='num'>interval</th>"
                     "<th class='num'>× expected (interval)</th><th class='num'>z</th><th class='num'>placebo rank</th><th class='num'>degree (AIC)</th>"
                     "<th class='num'>excess over supported degrees</th><th class='num'>missing bins</th></tr>"
                     f"<tr><td class='num'>{b.observed:,.0f}</td><td class='num'>{b.expected:,.1f}</td><td class='num'>{b.excess:,.1f}</td>"
                     f"<td class='num'>{b.interval[0]:,.1f} to {b.interval[1]:,.1f}</td><td class='num'>{b.ratio:.2f} ({b.ratio_interval[0]:.2f} to {b.ratio_interval[1]:.2f})</td>"
                     f"<td class='num'>{b.z:.2f}</td><td class='num'>{(str(b.placebo.rank) + ' of ' + str(b.placebo.count + 1)) if b.placebo else ''}</td>"
                     f"<td class='num'>{b.degree}</td><td class='num'>{lo:,.1f} to {hi:,.1f}</td><td class='num'>{int(b.missing.sum())}</td></tr></table>")
        charts.append(bunching_chart(b, f"{subject.subject}: counts, counterfactual and placebos"))
    if subject.discontinuity is not None:
        rank = subject.density_placebo
        ranked = f"; rank {rank[0]} of {rank[1] + 1} among placebo thresholds (p {rank[2]:.3f})" if rank else ""
        parts.append(f"<p>Density test: {_e(subject.discontinuity.sentence())}{_e(ranked)}.</p>")
    if subject.chart is not None:
        chart = subject.chart.control
        icon_words = chart.variation.value + (f"; {chart.assurance.value}" if chart.assurance else "")
        charts.append(control_chart(chart, f"{subject.subject}: {subject.chart_title} ({chart.kind.value} chart)", "%")
                      + f"<p class='note'>{_e(chart.why[0].upper() + chart.why[1:])}. Latest point: {_e(icon_words)}.</p>")
    for note in subject.notes:
        parts.append(f"<p class='note'>{_e(note)}</p>")
    if charts:
        parts.append("<div class='charts'>" + "".join(f"<div>{c}</div>" for c in charts) + "</div>")
    return "".join(parts)


def render(audit: Audit) -> str:
    """The page's HTML."""
    names = {s.subject: s.name for s in audit.subjects if s.name}
    doubtful = audit.doubtful
    untested = audit.untested
    fine = [f for f in audit.findings if f.severity is Severity.INFO]
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(audit.title)}</title><style>{STYLE}</style></head><body>"]
    parts.append(f"<h1>{_e(audit.title)}</h1><p class='note'>Source: {_e(audit.source)}.</p>")
    if audit.notes:
        parts.append("<ul>" + "".join(f"<li class='note'>{_e(n)}</li>" for n in audit.notes) + "</ul>")
    parts.append(f"<div class='summary'><div><b>{len(doubtful)}</b>to explain</div><div><b>{len(untested)}</b>could not be tested</div>"
                 f"<div><b>{len(fine)}</b>checked, nothing to doubt</div></div>")
    parts.append(f"<h2>To explain: {len(doubtful)}</h2>")
    parts.append(_findings_table(doubtful, names) if doubtful else "<p>Nothing found that needs explaining.</p>")
    if untested:
        parts.append(f"<h2>Could not be tested: {len(untested)}</h2><p class='note'>Not evidence either way: the data cannot answer the question, for the reason given.</p>"
                     "<table><tr><th>subjects</th><th>check</th><th>why</th></tr>")
        parts += [f"<tr><td>{_e(subjects_text(subjects, 40))}</td><td>{_e(f.check)}</td><td>{_e(f.sentence)}</td></tr>" for f, subjects in grouped(untested)]
        parts.append("</table>")
    if fine:
        parts.append(f"<details><summary>Checked, nothing to doubt: {len(fine)}</summary>{_findings_table(fine, names)}</details>")
    flagged_subjects = {f.subject for f in doubtful}
    shown = sorted((s for s in audit.subjects if s.bunching is not None or s.chart is not None),
                   key=lambda s: (s.subject not in flagged_subjects, s.subject != "all", s.subject))
    for subject in shown:
        parts.append(_subject(subject, audit, [f for f in doubtful if f.subject == subject.subject]))
    if audit.checks:
        parts.append("<h2>Logical checks</h2><table><tr><th>check</th><th>result</th><th>severity if failed</th><th>subject</th><th class='num'>bad rows</th><th>examples</th><th>expected</th></tr>")
        for result in audit.checks:
            check = result.check
            status = (BADGE[check.severity], "fail") if result.bad else ("info", "pass")
            parts.append(f"<tr><td>{_e(check.id)}</td><td><span class='badge {status[0]}'>{status[1]}</span></td><td>{_e(check.severity.value)}</td><td>{_e(result.subject)}</td>"
                         f"<td class='num'>{result.bad:,}</td><td>{_e(', '.join(result.examples))}</td><td>{_e(check.expected.format(**result.parameters))}</td></tr>")
        parts.append("</table>")
    if audit.comparisons:
        parts.append("<h2>Reported against recomputed</h2><table><tr><th>provider</th><th>measure</th><th>month</th><th class='num'>reported %</th>"
                     "<th class='num'>recomputed %</th><th class='num'>records</th><th class='num'>gap (points)</th></tr>")
        for c in audit.comparisons:
            r, s = c.reported, c.recomputed
            mark = "" if c.within_tolerance else " class='warning'"
            parts.append(f"<tr{mark}><td>{_e(r.provider)}</td><td>{_e(r.measure)}</td><td>{r.month:%b %Y}</td><td class='num'>{r.percent:.1f}</td>"
                         f"<td class='num'>{'' if s is None else f'{s.percent:.2f}'}</td><td class='num'>{'' if s is None else f'{s.total:,}'}</td>"
                         f"<td class='num'>{'' if s is None else f'{c.gap:+.2f}'}</td></tr>")
        parts.append("</table>")
    parts.append(_method(audit))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_audit_html(audit: Audit, path: Path) -> Path:
    """Write the page whole (never half a file); the folder is made if needed."""
    return write_whole(path, render(audit))
