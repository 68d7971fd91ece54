"""An audit's findings as JSON (everything, for programs) or CSV (one row per finding, for
spreadsheets), every number beside its words: the excess, its interval, the placebo rank.
Files are written whole or not at all."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from carecontracts.audit.bunching import Bunching
from carecontracts.machine import atomic_write
from carecontracts.audit.run import Audit, SubjectAudit

CSV_COLUMNS = (
    "severity", "subject", "name", "check", "title", "threshold", "observed", "expected", "excess", "excess_low", "excess_high",
    "ratio", "ratio_low", "ratio_high", "z", "placebo_rank", "placebo_count", "placebo_p", "degree", "missing_bins",
    "specification_low", "specification_high", "records", "sentence",
)


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite numbers to None."""
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _span(bins: Any, mask: np.ndarray) -> list[float] | None:
    if not mask.any():
        return None
    return [float(bins.lower[mask].min()), float(bins.upper[mask].max())]


def bunching_dict(b: Bunching) -> dict[str, Any]:
    bins = b.histogram
    roles = np.where(b.window, "window", np.where(b.missing, "missing", np.where(b.excluded, "excluded", "fitted")))
    out: dict[str, Any] = {
        "threshold": b.threshold, "window": _span(bins, b.window), "missing": _span(bins, b.missing),
        "degree": b.degree, "dispersion": b.dispersion, "observed": b.observed, "expected": b.expected, "excess": b.excess,
        "interval": list(b.interval), "level": b.level, "ratio": b.ratio, "ratio_interval": list(b.ratio_interval),
        "se": b.se, "z": b.z, "bins_worth": b.normalised, "missing_mass": b.missing_mass,
        "specifications": {str(d): e for d, e in sorted(b.degrees.items())}, "replicates": b.replicates,
        "above_zero": b.above_zero, "stands_out": b.stands_out, "found": b.significant, "notes": list(b.notes),
        "bins": [{"lower": float(lo), "upper": float(hi), "count": float(c), "counterfactual": float(m), "band_low": float(bl),
                  "band_high": float(bh), "role": str(r)}
                 for lo, hi, c, m, bl, bh, r in zip(bins.lower, bins.upper, bins.counts, b.counterfactual, *b.counterfactual_band, roles)],
    }
    if b.placebo is not None:
        out["placebo"] = {"count": b.placebo.count, "rank": b.placebo.rank, "as_large": b.placebo.as_large, "p": b.placebo.p,
                          "needed": b.placebo.needed, "centre": b.placebo.centre, "spread": b.placebo.spread,
                          "by_spread": b.placebo.against_spread, "thresholds": b.placebo.thresholds, "z": b.placebo.z, "excess": b.placebo.excess}
    return out


def subject_dict(s: SubjectAudit) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": s.subject, "name": s.name, "records": s.records, "notes": s.notes,
                           "bunching": bunching_dict(s.bunching) if s.bunching else None}
    if s.discontinuity is not None:
        d = s.discontinuity
        out["discontinuity"] = {"theta": d.theta, "se": d.se, "z": d.z, "p_value": d.p_value, "bandwidth": d.bandwidth}
        if s.density_placebo:
            rank, count, p = s.density_placebo
            out["discontinuity"]["placebo"] = {"rank": rank, "count": count, "p": p}
    if s.chart is not None:
        chart = s.chart.control
        out["chart"] = {
            "title": s.chart.title, "kind": chart.kind.value, "why": chart.why, "labels": chart.labels, "values": chart.values,
            "denominators": chart.sizes, "lower_limits": chart.lowers, "upper_limits": chart.uppers,
            "phases": [{"first": chart.labels[p.start], "last": chart.labels[p.stop - 1], "baseline_points": p.baseline, "mean": p.mean,
                        "lower": p.lower, "upper": p.upper, "moving_range": p.moving_range,
                        **({"sigma_z": p.measured_sigma_z, "sigma_z_used": p.sigma_z} if p.point_sigma is not None else {})}
                       for p in chart.phases],
            "signals": [{"rule": sig.rule.value, "first": chart.labels[sig.points[0]], "last": chart.labels[sig.points[-1]],
                         "meaning": sig.meaning.value, "upward": sig.upward} for sig in chart.signals],
            "variation": chart.variation.value, "assurance": chart.assurance.value if chart.assurance else None, "target": chart.target,
        }
    return out


def to_json(audit: Audit) -> str:
    options = audit.options
    names = {s.subject: s.name for s in audit.subjects}
    document = {
        "title": audit.title, "source": audit.source, "layout": audit.layout, "threshold": options.threshold, "side": options.side.value,
        "unit": audit.scale.unit, "counted": audit.scale.counted, "notes": audit.notes,
        "options": {"bin_width": options.bin_width, "max_degree": options.max_degree, "window": options.window, "span": options.span,
                    "replicates": options.replicates, "seed": options.seed, "alpha": options.alpha, "min_records": options.min_records,
                    "min_per_period": options.min_per_period, "min_periods": options.min_periods, "other_targets": list(options.other_targets),
                    "exclude": [list(r) for r in options.exclude], "calendar": options.calendar, "baseline": options.baseline,
                    "phases": list(options.phases), "chart": options.chart.value, "filters": [f.text for f in options.filters]},
        "summary": {"findings": len(audit.findings), "to_explain": len(audit.doubtful), "cannot_test": len(audit.untested)},
        "findings": [{"severity": f.severity.value, "subject": f.subject, "name": names.get(f.subject, ""), "check": f.check,
                      "title": f.title, "sentence": f.sentence, **f.numbers} for f in audit.findings],
        "subjects": [subject_dict(s) for s in audit.subjects],
        "checks": [{"check": r.check.id, "subject": r.subject, "severity": r.check.severity.value, "bad": r.bad, "examples": r.examples}
                   for r in audit.checks],
        "comparisons": [{"provider": c.reported.provider, "measure": c.reported.measure, "month": c.reported.month.isoformat(),
                         "reported": c.reported.percent, "recomputed": c.recomputed.percent if c.recomputed else None,
                         "gap": c.gap if c.recomputed else None, "within_tolerance": c.within_tolerance} for c in audit.comparisons],
    }
    return json.dumps(_plain(document), indent=2, ensure_ascii=False) + "\n"


def to_csv(audit: Audit) -> str:
    names = {s.subject: s.name for s in audit.subjects}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for f in audit.findings:
        row = {k: ("" if v is None else v) for k, v in _plain(f.numbers).items()}
        writer.writerow({**row, "severity": f.severity.value, "subject": f.subject, "name": names.get(f.subject, ""), "check": f.check,
                         "title": f.title, "sentence": f.sentence})
    return buffer.getvalue()


def write_whole(path: Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path` and move it into place: never half a file."""
    with atomic_write(Path(path)) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    return Path(path)
