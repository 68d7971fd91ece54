"""Outcome statistics against NHS Digital's published PROMs figures, hip replacement 2018/19.

From the national record-level file (primary hips, Revision Flag 0), per provider: the
number of modelled records, mean pre- and post-operative Oxford Hip Score, and the case-mix
adjusted post-operative score (provider mean post − provider mean predicted + national mean
predicted), computed with `episodes` and `outcome_tallies` on DuckDB and compared with the
published aggregates.

The published "modelled records" are the records with a case-mix prediction (a prediction
needs both scores): 38,136 in England against 38,029 such records in the record file (38,432
paired without the prediction condition fits worse). The record file is disclosure
controlled, so provider counts differ by a few records. Measured (within 0.1):

    counts equal             136 of 283 providers (48%); every provider within 5 records
    mean pre-operative       237 of 283 (84%)
    mean post-operative      234 of 283 (83%)
    adjusted post-operative  206 of 234 providers with a published adjusted score (88%)

Nine published providers (30 records) have no records in the file; they count as disagreeing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from carecontracts.data.proms import hip_outcomes_table, published_hip_aggregates
from carecontracts.engine.backend import Engine
from carecontracts.outcomes import episodes, estimate, mean_predicted, outcome_tallies

WITHIN = 0.1


class Measured:
    """Tallies per provider and for England from the record file, on DuckDB."""

    def __init__(self) -> None:
        engine = Engine.duckdb()
        rows = hip_outcomes_table(instruments=("oxford_hip",), primary_only=True)
        paired = engine.cache(episodes(engine.put(rows)))
        modelled = paired.filter(paired.predicted.notnull())

        def tallies(table: Any, by: list[str], statistic: str) -> dict[str | None, dict[str, Any]]:
            found = engine.to_arrow(outcome_tallies(table, by, "oxford_hip", statistic)).to_pylist()
            return {row.get("provider"): row for row in found}

        self.england = tallies(paired, [], "casemix_adjusted_mean")[None]
        self.england_pre = tallies(modelled, [], "mean_pre")[None]
        self.england_post = tallies(modelled, [], "mean_post")[None]
        self.reference = mean_predicted(self.england)
        self.adjusted = tallies(paired, ["provider"], "casemix_adjusted_mean")
        self.pre = tallies(modelled, ["provider"], "mean_pre")
        self.post = tallies(modelled, ["provider"], "mean_post")
        engine.close()


@pytest.fixture(scope="module")
def measured() -> Measured:
    return Measured()


@pytest.fixture(scope="module")
def published() -> list[dict[str, Any]]:
    """Published rows for providers and England: Oxford Hip Score, primary hip replacement."""
    return [
        row
        for row in published_hip_aggregates().to_pylist()
        if row["measure"] == "Oxford Hip Score" and row["procedure"] == "Hip Replacement Primary"
        and row["organisation_type"] in ("Provider", "England")
    ]


def providers(published: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in published if row["organisation_type"] == "Provider"]


def share_within(pairs: list[tuple[float | None, float]]) -> float:
    """Share of (ours, published) pairs that agree within 0.1; ours None (no records) disagrees."""
    return sum(1 for ours, theirs in pairs if ours is not None and abs(ours - theirs) <= WITHIN) / len(pairs)


def test_provider_counts_agree(measured: Measured, published: list[dict[str, Any]]) -> None:
    rows = providers(published)
    assert len(rows) == 283
    counts = [(measured.adjusted[r["organisation_code"]]["episodes"] if r["organisation_code"] in measured.adjusted else None, r["modelled_records"]) for r in rows]
    assert share_within(counts) >= 0.45  # measured 136 / 283 = 0.481
    # Disclosure control moves a few records, never many.
    assert all(abs(ours - theirs) <= 5 for ours, theirs in counts if ours is not None)
    assert sum(1 for ours, _ in counts if ours is None) == 9


def test_provider_mean_pre_and_post_scores_agree(measured: Measured, published: list[dict[str, Any]]) -> None:
    rows = providers(published)

    def mean(tallies: dict[str | None, dict[str, Any]], code: str, statistic: str) -> float | None:
        return float(estimate(tallies[code], statistic).value) if code in tallies else None

    pre = [(mean(measured.pre, r["organisation_code"], "mean_pre"), r["average_pre"]) for r in rows]
    post = [(mean(measured.post, r["organisation_code"], "mean_post"), r["average_post"]) for r in rows]
    assert share_within(pre) >= 0.80  # measured 237 / 283 = 0.837
    assert share_within(post) >= 0.80  # measured 234 / 283 = 0.827


def test_provider_casemix_adjusted_scores_agree(measured: Measured, published: list[dict[str, Any]]) -> None:
    rows = [r for r in providers(published) if r["adjusted_post"] is not None]
    assert len(rows) == 234  # 49 providers' adjusted scores are suppressed ('*')
    adjusted = [
        (float(estimate(measured.adjusted[r["organisation_code"]], "casemix_adjusted_mean", measured.reference).value)
         if r["organisation_code"] in measured.adjusted else None, r["adjusted_post"])
        for r in rows
    ]
    assert share_within(adjusted) >= 0.85  # measured 206 / 234 = 0.880


def test_national_totals_agree(measured: Measured, published: list[dict[str, Any]]) -> None:
    (england,) = [r for r in published if r["organisation_type"] == "England"]
    assert england["modelled_records"] == 38136
    # 38,029 records with a prediction in the file: 107 (0.3%) fewer than published.
    assert measured.england["episodes"] == 38029
    assert abs(measured.england["episodes"] - england["modelled_records"]) / england["modelled_records"] < 0.003
    assert measured.england_pre["episodes"] == 38029
    assert measured.england_post["episodes"] == 38029
    post = estimate(measured.england_post, "mean_post").value
    assert abs(float(estimate(measured.england_pre, "mean_pre").value) - england["average_pre"]) < 0.01  # 17.4329 vs 17.4338
    assert abs(float(post) - england["average_post"]) < 0.01  # 40.1111 vs 40.1136
    # Adjusting England against its own mean prediction leaves its mean post score.
    adjusted = estimate(measured.england, "casemix_adjusted_mean", measured.reference).value
    assert abs(adjusted - post) < Decimal("1e-9")
    assert abs(float(adjusted) - england["adjusted_post"]) < 0.01
    # The published standard deviation is that of observed − predicted (7.67145): the exact
    # sums of squares reproduce it.
    n = measured.england["episodes"]
    residual = measured.england["total"] - measured.england["total_predicted"]
    variance = (measured.england["total_squares"] - residual * residual / n) / (n - 1)
    assert abs(float(variance) ** 0.5 - england["standard_deviation"]) < 0.005


def test_unpaired_records_are_counted_not_dropped(measured: Measured) -> None:
    # Primary hip records missing the pre-operative total (460) or the post-operative total
    # (349) are unpaired episodes; those paired but without a prediction (403) are excluded
    # from case-mix adjustment. 38,029 + 403 = 38,432 paired primary records (as counted
    # straight from the file's columns). The 13 primary records with neither total give no
    # Oxford Hip Score rows at all: there is nothing to pair.
    assert (measured.england["post_without_pre"], measured.england["pre_without_post"]) == (460, 349)
    assert measured.england["unpaired"] == 809
    assert measured.england["excluded"] == 403
    assert measured.england["episodes"] + measured.england["excluded"] == 38432
