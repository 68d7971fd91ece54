"""Outcome statistics on small cases worked by hand (the arithmetic is in the comments).

The central cases run on DuckDB and, marked `spark`, on Spark (the `engine` fixture); the
rest on DuckDB, with one Spark test checking every statistic's tallies equal DuckDB's."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from carecontracts.data.schemas import OUTCOMES
from carecontracts.engine.backend import Engine
from carecontracts.instruments import INSTRUMENTS, Instrument
from carecontracts.outcomes import (
    STATISTICS,
    Kind,
    NoEpisodesError,
    Statistic,
    duplicate_scores,
    episodes,
    estimate,
    outcome_tallies,
    rate_per_thousand,
    statistic_named,
)
from carecontracts.outcomes.statistics import t_interval, wilson_interval

D = Decimal
PRE_DAY, POST_DAY = dt.date(2025, 4, 1), dt.date(2025, 10, 1)
SCHEMA = OUTCOMES.arrow_schema()


def score(episode: str, timepoint: str, value: str, provider: str | None = "A", instrument: str = "oxford_hip",
          predicted: str | None = None, day: dt.date | None = None) -> dict[str, Any]:
    return {
        "patient_id": "P" + episode, "episode_id": episode, "instrument": instrument, "timepoint": timepoint,
        "date": day or (PRE_DAY if timepoint == "pre" else POST_DAY), "score": D(value),
        "predicted": None if predicted is None else D(predicted), "provider": provider,
    }


# Provider A, Oxford Hip Score (MID 8):
#   E1 10 → 30 change +20 improved  predicted 28  residual  +2
#   E2 20 → 27 change  +7 not       predicted 30  residual  -3
#   E3 15 → 23 change  +8 improved (exactly the MID counts)  predicted 25  residual -2
#   E6 30 → 22 change  -8 worse     predicted 33  residual -11
#   E4 post 40 only (post without pre); E5 pre 12 only (pre without post)
# Provider B:
#   F1  5 → 45 change +40 improved  predicted 40
#   F2 20 → 20 change   0; F2 also has an earlier post score of 10 (a duplicate: the latest is used)
# Provider C: G1 post 30 only. Provider A also has a Barthel episode (must not count for hips).
ROWS = [
    score("E1", "pre", "10"), score("E1", "post", "30", predicted="28"),
    score("E2", "pre", "20"), score("E2", "post", "27", predicted="30"),
    score("E3", "pre", "15"), score("E3", "post", "23", predicted="25"),
    score("E6", "pre", "30"), score("E6", "post", "22", predicted="33"),
    score("E4", "post", "40", predicted="35"),
    score("E5", "pre", "12"),
    score("F1", "pre", "5", "B"), score("F1", "post", "45", "B", predicted="40"),
    score("F2", "pre", "20", "B"), score("F2", "post", "10", "B", day=dt.date(2025, 7, 1)), score("F2", "post", "20", "B"),
    score("G1", "post", "30", "C"),
    score("H1", "pre", "10", instrument="barthel"), score("H1", "post", "12", instrument="barthel"),
]


def tallies(engine: Engine, statistic: str, rows: list[dict[str, Any]] = ROWS, by: list[str] | None = None,
            instrument: str = "oxford_hip", **options: Any) -> dict[str | None, dict[str, Any]]:
    """Tally rows by provider (or as `by` says), keyed by provider."""
    table = engine.put(pa.Table.from_pylist(rows, schema=SCHEMA))
    found = engine.to_arrow(outcome_tallies(episodes(table), ["provider"] if by is None else by, instrument, statistic, **options))
    return {row.get("provider"): row for row in found.to_pylist()}


def test_share_improved_counts_episodes_at_or_above_the_mid(engine: Engine) -> None:
    a = tallies(engine, "share_improved")["A"]
    # Paired: E1, E2, E3, E6. Improved by >= 8: E1 (+20) and E3 (+8) → 2 of 4.
    assert (a["episodes"], a["successes"]) == (4, 2)
    # Σ change = 20 + 7 + 8 - 8 = 27; Σ change² = 400 + 49 + 64 + 64 = 577.
    assert (a["total"], a["total_squares"]) == (D(27), D(577))
    assert a["min_change"] == D(8)
    assert estimate(a, "share_improved").value == D("0.5")


def test_min_change_can_be_overridden(duck: Engine) -> None:
    # With 7 points, E2 (+7) counts too: 3 of 4.
    a = tallies(duck, "share_improved", min_change=D(7))["A"]
    assert (a["episodes"], a["successes"], a["min_change"]) == (4, 3, D(7))
    assert estimate(a, "share_improved").value == D("0.75")


def test_unpaired_episodes_are_counted_never_dropped(engine: Engine) -> None:
    found = tallies(engine, "mean_change")
    a, c = found["A"], found["C"]
    # E4 has a post score but no pre; E5 a pre score but no post.
    assert (a["unpaired"], a["post_without_pre"], a["pre_without_post"]) == (2, 1, 1)
    # A provider with only a post score still gets a row saying so.
    assert (c["episodes"], c["unpaired"], c["post_without_pre"], c["total"]) == (0, 1, 1, D(0))
    with pytest.raises(NoEpisodesError, match="1 unpaired"):
        estimate(c, "mean_change")


def test_mean_change_and_its_t_interval(duck: Engine) -> None:
    a = tallies(duck, "mean_change")["A"]
    result = estimate(a, "mean_change")
    # 27 / 4 = 6.75. s² = (577 - 27²/4) / 3 = (577 - 182.25) / 3 = 131.58333; s = 11.47098;
    # se = s / 2 = 5.735489; t(0.975, 3 df) = 3.182446; half-width 5.735489 × 3.182446 = 18.25289.
    assert result.value == D("6.75")
    assert result.lower == pytest.approx(6.75 - 18.25289, abs=1e-4)
    assert result.upper == pytest.approx(6.75 + 18.25289, abs=1e-4)
    assert (result.episodes, result.unpaired, result.successes) == (4, 2, None)


def test_mean_pre_and_mean_post(duck: Engine) -> None:
    # Pre: (10 + 20 + 15 + 30) / 4 = 18.75. Post: (30 + 27 + 23 + 22) / 4 = 25.5. The unpaired
    # E4 (post 40) and E5 (pre 12) are not in either mean, so both describe the same patients.
    assert estimate(tallies(duck, "mean_pre")["A"], "mean_pre").value == D("18.75")
    assert estimate(tallies(duck, "mean_post")["A"], "mean_post").value == D("25.5")


def test_share_reaching_counts_a_score_equal_to_the_threshold(duck: Engine) -> None:
    # Post scores 30, 27, 23, 22: at or above 25 → 2; at or above 23 → 3.
    assert tallies(duck, "share_reaching", threshold=D(25))["A"]["successes"] == 2
    a = tallies(duck, "share_reaching", threshold=D(23))["A"]
    assert (a["successes"], a["episodes"], a["threshold"]) == (3, 4, D(23))
    with pytest.raises(ValueError, match="threshold"):
        tallies(duck, "share_reaching")


def test_casemix_adjusted_mean_by_hand(engine: Engine) -> None:
    a = tallies(engine, "casemix_adjusted_mean")["A"]
    # Observed 30 + 27 + 23 + 22 = 102, mean 25.5; predicted 28 + 30 + 25 + 33 = 116, mean 29.
    # Against a reference mean prediction of 30: 25.5 - 29 + 30 = 26.5.
    assert (a["episodes"], a["total"], a["total_predicted"]) == (4, D(102), D(116))
    # Residuals 2, -3, -2, -11: squares 4 + 9 + 4 + 121 = 138.
    assert a["total_squares"] == D(138)
    result = estimate(a, "casemix_adjusted_mean", reference_mean_predicted=D(30))
    assert result.value == D("26.5")
    # Residual s² = (138 - (-14)²/4) / 3 = (138 - 49) / 3 = 29.6667; s = 5.446712; se = 2.723356;
    # half-width 3.182446 × 2.723356 = 8.66693 around 26.5.
    assert (result.lower, result.upper) == (pytest.approx(26.5 - 8.66693, abs=1e-4), pytest.approx(26.5 + 8.66693, abs=1e-4))
    with pytest.raises(ValueError, match="reference"):
        estimate(a, "casemix_adjusted_mean")
    # A tally of one statistic is not read as another (its `total` means something else).
    with pytest.raises(ValueError, match="casemix_adjusted_mean tally"):
        estimate(a, "mean_post")


def test_casemix_needs_a_prediction_and_says_how_many_lacked_one(duck: Engine) -> None:
    rows = [score("E1", "pre", "10"), score("E1", "post", "30", predicted="28"), score("E2", "pre", "20"), score("E2", "post", "27")]
    a = tallies(duck, "casemix_adjusted_mean", rows)["A"]
    assert (a["episodes"], a["excluded"], a["total"], a["total_predicted"]) == (1, 1, D(30), D(28))
    assert tallies(duck, "mean_post", rows)["A"]["excluded"] == 0


def test_duplicate_scores_use_the_latest_and_are_reported(engine: Engine) -> None:
    b = tallies(engine, "mean_post")["B"]
    # F1 45 and F2's latest post score 20: (45 + 20) / 2 = 32.5 (the earlier 10 would give 27.5).
    assert (b["episodes"], b["total"]) == (2, D(65))
    found = engine.to_arrow(duplicate_scores(engine.put(pa.Table.from_pylist(ROWS, schema=SCHEMA)))).to_pylist()
    assert [(r["episode_id"], r["timepoint"], r["scores"], r["first_date"], r["last_date"]) for r in found] == [
        ("F2", "post", 2, dt.date(2025, 7, 1), POST_DAY)
    ]


def test_instruments_are_kept_apart(duck: Engine) -> None:
    # Only H1 is a Barthel episode: 10 → 12, +2 reaches the Barthel MID of 2.
    barthel = tallies(duck, "share_improved", instrument="barthel")
    assert list(barthel) == ["A"]
    assert (barthel["A"]["episodes"], barthel["A"]["successes"], barthel["A"]["min_change"]) == (1, 1, D(2))


def test_grouping_by_nothing_gives_one_row(duck: Engine) -> None:
    # All hips: A's 4 paired + B's 2 = 6 episodes; improved: E1, E3, F1 = 3.
    whole = tallies(duck, "share_improved", by=[])[None]
    assert (whole["episodes"], whole["successes"], whole["unpaired"]) == (6, 3, 3)


def test_improvement_follows_the_instrument_direction(duck: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(INSTRUMENTS, "pain", Instrument("pain", "Pain score", D(0), D(100), D(10), higher_is_better=False))
    rows = [
        score("K1", "pre", "70", instrument="pain"), score("K1", "post", "50", instrument="pain"),  # -20: improved
        score("K2", "pre", "30", instrument="pain"), score("K2", "post", "35", instrument="pain"),  # +5: worse
        score("K3", "pre", "40", instrument="pain"), score("K3", "post", "31", instrument="pain"),  # -9: short of 10
    ]
    improved = tallies(duck, "share_improved", rows, instrument="pain")["A"]
    assert (improved["successes"], improved["episodes"]) == (1, 3)
    # The summed change is as measured, post - pre: -20 + 5 - 9 = -24.
    assert improved["total"] == D(-24)
    # Reaching 40 or better means 40 or lower: 35 and 31.
    assert tallies(duck, "share_reaching", rows, instrument="pain", threshold=D(40))["A"]["successes"] == 2


def test_outcomes_without_a_provider_column(duck: Engine) -> None:
    rows = [{k: v for k, v in r.items() if k not in ("provider", "predicted")} for r in ROWS[:4]]
    table = duck.put(pa.Table.from_pylist(rows, schema=OUTCOMES.arrow_schema(["patient_id", "episode_id", "instrument", "timepoint", "date", "score"])))
    found = duck.to_arrow(episodes(table)).to_pylist()
    assert {r["provider"] for r in found} == {None}
    assert sorted((r["episode_id"], r["pre"], r["post"], r["post_date"], r["paired"]) for r in found) == [
        ("E1", D(10), D(30), POST_DAY, True), ("E2", D(20), D(27), POST_DAY, True)
    ]


@pytest.mark.spark
def test_spark_tallies_equal_duckdb() -> None:
    from tests.conftest import _spark_engine

    spark, duck = _spark_engine(), Engine.duckdb()
    for statistic in Statistic:
        options = {"threshold": D(25)} if statistic is Statistic.SHARE_REACHING else {}
        on_spark = tallies(spark, statistic, by=["provider"], **options)
        on_duck = tallies(duck, statistic, by=["provider"], **options)
        assert on_spark == on_duck, statistic


def test_wilson_interval_by_hand() -> None:
    # 8 of 10: z = 1.959964, z² = 3.841459, z²/n = 0.3841459.
    # centre = (0.8 + 3.841459/20) / 1.3841459 = 0.99207295 / 1.3841459 = 0.7167402
    # half   = (1.959964 / 1.3841459) × √(0.8 × 0.2 / 10 + 3.841459 / 400)
    #        = 1.4160097 × √0.02560365 = 1.4160097 × 0.1600114 = 0.2265777
    # → 0.4901625 to 0.9433179 (the textbook 0.4902 – 0.9433).
    lower, upper = wilson_interval(8, 10)
    assert lower == pytest.approx(0.4901625, abs=2e-6)
    assert upper == pytest.approx(0.9433179, abs=2e-6)
    # 0 of 10: lower 0, upper = (z²/n) / (1 + z²/n) = 0.3841459 / 1.3841459 = 0.277533.
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.277533, abs=2e-6))
    # 10 of 10 mirrors it.
    assert wilson_interval(10, 10) == (pytest.approx(1 - 0.277533, abs=2e-6), pytest.approx(1.0))


def test_t_interval_by_hand() -> None:
    # 2, 4, 6, 8: n 4, Σx 20, Σx² 120, mean 5, s² = (120 - 400/4) / 3 = 6.6666667,
    # s = 2.5819889, se = 1.2909944, t(0.975, 3) = 3.1824463 → half-width 1.2909944 × 3.1824463
    # = 3.8729832 + 0.2355374 = 4.1085206: 0.8914794 to 9.1085206.
    lower, upper = t_interval(4, D(20), D(120))
    assert lower == pytest.approx(0.8914794, abs=1e-6)
    assert upper == pytest.approx(9.1085206, abs=1e-6)
    # One value has no spread to estimate.
    assert t_interval(1, D(5), D(25)) == (-math.inf, math.inf)


def test_rate_per_thousand_exact_poisson() -> None:
    # 10 events in 1,000 persons: 10 per 1,000; exact Poisson limits for 10 events are
    # 4.7954 and 18.3904 (Garwood; tabulated), per 1,000 persons the same numbers.
    rate = rate_per_thousand(10, 1000)
    assert rate.value == D(10)
    assert (rate.lower, rate.upper) == (pytest.approx(4.7954, abs=1e-4), pytest.approx(18.3904, abs=1e-4))
    # No events: lower 0, upper -ln(0.025) = 3.688879 events, over 2,000 persons = 1.844440 per 1,000.
    none = rate_per_thousand(0, 2000)
    assert (none.value, none.lower, none.upper) == (D(0), 0.0, pytest.approx(1.844440, abs=1e-6))
    # 123 emergency admissions of people over 65 among 4,567 such residents: 26.9324... per 1,000.
    assert rate_per_thousand(123, 4567).value == D("26.9323407051")
    assert rate.describe() == "10.0 per 1,000 population (95% CI 4.8–18.4; 10 events in 1,000 persons)"
    with pytest.raises(NoEpisodesError):
        rate_per_thousand(1, 0)


def test_share_described_in_plain_words() -> None:
    row = {"instrument": "oxford_hip", "min_change": D(8), "episodes": 781, "successes": 612, "unpaired": 12,
           "total": D(0), "total_squares": D(0)}
    result = estimate(row, "share_improved")
    # 612 / 781 = 0.78361075...; Wilson: centre (0.783611 + 0.0024593) / 1.0049186 = 0.782223,
    # half 1.950371 × √(0.00021711 + 0.0000015744) = 0.028842 → 75.3% to 81.1%.
    assert result.value == D("0.7836107554")
    assert result.describe() == "78.4% improved by ≥ 8 points (95% CI 75.3%–81.1%; 612 of 781 episodes; 12 unpaired)"


def test_statistics_registry() -> None:
    assert {s.value for s in STATISTICS} == {
        "share_improved", "mean_change", "share_reaching", "mean_post", "mean_pre", "casemix_adjusted_mean"
    }
    assert [s.value for s in Statistic if s.kind is Kind.SHARE] == ["share_improved", "share_reaching"]
    assert statistic_named("mean_post") is Statistic.MEAN_POST
    with pytest.raises(KeyError, match="share_improved"):
        statistic_named("share_better")
