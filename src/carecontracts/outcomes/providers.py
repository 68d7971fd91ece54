"""Outcome statistics per provider (or any grouping) with intervals: the view a provider
or commissioner uses to compare outcomes before paying on them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import ibis.expr.types as ir

from carecontracts.engine.backend import Engine
from carecontracts.outcomes.statistics import Estimate, NoEpisodesError, Statistic, episodes, estimate, mean_predicted, outcome_tallies


@dataclass(frozen=True)
class GroupEstimate:
    """One group's estimate, or why there is none."""

    group: str | None
    estimate: Estimate | None
    unpaired: int
    note: str = ""
    excluded: int = 0  # paired episodes left out (case-mix: those without a prediction)


def estimates_by(
    engine: Engine,
    outcomes: ir.Table,
    instrument: str,
    statistic: Statistic,
    by: str = "provider",
    min_change: Decimal | None = None,
    threshold: Decimal | None = None,
) -> tuple[list[GroupEstimate], Estimate | None]:
    """Each group's estimate of the statistic, and everyone's together. A case-mix adjusted
    mean is adjusted to everyone's mean predicted score."""
    paired = episodes(outcomes)
    groups = engine.to_arrow(outcome_tallies(paired, [by], instrument, statistic, min_change, threshold)).to_pylist()
    (overall,) = engine.to_arrow(outcome_tallies(paired, [], instrument, statistic, min_change, threshold)).to_pylist()
    reference = None
    if statistic is Statistic.CASEMIX_ADJUSTED_MEAN and overall["episodes"]:
        reference = mean_predicted(overall)
    results: list[GroupEstimate] = []
    for row in sorted(groups, key=lambda r: (r[by] is None, r[by] or "")):
        excluded = int(row["excluded"] or 0)
        try:
            results.append(GroupEstimate(row[by], estimate(row, statistic, reference), int(row["unpaired"]), excluded=excluded))
        except NoEpisodesError as error:
            results.append(GroupEstimate(row[by], None, int(row["unpaired"]), str(error), excluded))
    try:
        everyone = estimate(overall, statistic, reference)
    except NoEpisodesError:
        everyone = None
    return results, everyone


def instruments_held(engine: Engine, outcomes: ir.Table) -> list[str]:
    """The instruments the outcomes hold scores of, in order."""
    rows = engine.to_arrow(outcomes.select("instrument").distinct().order_by("instrument")).to_pylist()
    return [row["instrument"] for row in rows if row["instrument"] is not None]
