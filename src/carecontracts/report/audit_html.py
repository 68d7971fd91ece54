"""The audit as one self-contained HTML page: findings first, then per provider the
distribution with its counterfactual, the density test and the XmR chart, then the logical
checks and reported-against-recomputed tables."""

from __future__ import annotations

import html
from pathlib import Path

from carecontracts.audit.findings import Severity
from carecontracts.audit.run import Audit
from carecontracts.report.charts import bunching_chart, xmr_chart

STYLE = """
body { font-family: Arial, Helvetica, sans-serif; color: #231f20; max-width: 1100px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 2px solid #005eb8; padding-bottom: 4px; margin-top: 32px; } h3 { font-size: 15px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #d8dde0; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f0f4f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.error { color: #fff; background: #d5281b; } .warning { color: #231f20; background: #ffeb3b; } .info { color: #fff; background: #007f3b; }
.badge { padding: 1px 6px; border-radius: 3px; font-size: 12px; font-weight: bold; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } .charts > div { flex: 1 1 480px; } svg { max-width: 100%; height: auto; }
p.note { color: #425563; font-size: 13px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def render(audit: Audit) -> str:
    """The page's HTML."""
    options = audit.options
    doubtful = audit.doubtful
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(audit.title)}</title><style>{STYLE}</style></head><body>"]
    parts.append(f"<h1>{_e(audit.title)}</h1>")
    parts.append(f"<p class='note'>Source: {_e(audit.source)}. Threshold {_e(audit.scale.amount(options.threshold))}, met {'at or below' if options.side.value == 'below' else 'at or above'} it. "
                 f"Bunching: polynomial counterfactual (degree up to {options.degree}), {options.replicates} bootstrap resamples, seed {options.seed}; "
                 f"flagged when the {1 - options.alpha:.0%} interval of the excess lies above zero. Density test: McCrary, flagged at p &lt; {options.alpha:g} towards the target side.</p>")
    summary = f"{len(doubtful)} finding{'s' if len(doubtful) != 1 else ''} to explain" if doubtful else "nothing found that needs explaining"
    parts.append(f"<h2>Findings: {_e(summary)}</h2><table><tr><th>severity</th><th>subject</th><th>check</th><th>finding</th></tr>")
    for finding in audit.findings:
        parts.append(f"<tr><td><span class='badge {finding.severity.value}'>{finding.severity.value}</span></td><td>{_e(finding.subject)}</td>"
                     f"<td>{_e(finding.check)}</td><td><b>{_e(finding.title)}</b><br>{_e(finding.sentence)}</td></tr>")
    parts.append("</table>")
    for subject in audit.subjects:
        flagged = [f for f in doubtful if f.subject == subject.subject]
        parts.append(f"<h2>{_e(subject.subject)} <span class='badge {'warning' if flagged else 'info'}'>{len(flagged)} to explain</span></h2>")
        parts.append(f"<p class='note'>{subject.records:,} {_e(audit.scale.counted)}.</p>")
        charts = []
        if subject.bunching is not None:
            b = subject.bunching
            charts.append(bunching_chart(b, f"{subject.subject}: distribution and counterfactual"))
            parts.append(f"<p>Bunching: {_e(b.sentence())} Excess {b.excess:,.0f} (interval {b.interval[0]:,.0f} to {b.interval[1]:,.0f}), "
                         f"{b.normalised:.2f} bins' worth; missing mass beyond the threshold {b.missing_mass:,.0f} over {int(b.missing.sum())} bins.</p>")
        if subject.discontinuity is not None:
            parts.append(f"<p>Density test: {_e(subject.discontinuity.sentence())}.</p>")
        if subject.chart is not None:
            charts.append(xmr_chart(subject.chart, f"{subject.subject}: {subject.chart_title} (XmR)", "%"))
        for note in subject.notes:
            parts.append(f"<p class='note'>{_e(note)}</p>")
        if charts:
            parts.append("<div class='charts'>" + "".join(f"<div>{c}</div>" for c in charts) + "</div>")
    if audit.checks:
        parts.append("<h2>Logical checks</h2><table><tr><th>check</th><th>result</th><th>severity if failed</th><th>subject</th><th class='num'>bad rows</th><th>examples</th><th>expected</th></tr>")
        for result in audit.checks:
            check = result.check
            status = (check.severity.value, "fail") if result.bad else (Severity.INFO.value, "pass")
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
    parts.append("</body></html>")
    return "\n".join(parts)


def write_audit_html(audit: Audit, path: Path) -> Path:
    """Write the page; the folder is made if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(audit), encoding="utf-8")
    return path
