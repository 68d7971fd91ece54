"""Outcome statistics from patient-level pre/post scores: Ibis tallies that run on any
backend, then exact estimates with 95% intervals computed in Python from one tally row.

The heavy part (pairing scores into episodes, counting and summing per group) is Ibis, so
it runs unchanged on DuckDB and Spark. The light part (a share, a mean, an interval) is
Python over the tallies: counts are integers and sums exact decimals, so an achievement
such as successes / episodes is exact in `Decimal`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from enum import Enum
from types import ModuleType
from typing import Any, Iterable, Mapping

import ibis
import ibis.expr.types as ir

from carecontracts.instruments import Instrument, instrument as instrument_named
from carecontracts.problems import Problem

SCORE_TYPE = "decimal(18, 6)"  # as stored by the loader (OUTCOMES score)
PREDICTED_TYPE = "decimal(18, 10)"  # as stored by the loader (OUTCOMES predicted: as published, to 9 places)
CHANGE_TYPE = "decimal(19, 6)"  # a difference of two scores
RESIDUAL_TYPE = "decimal(14, 10)"  # a score less its prediction: both within an instrument's range (below 10^3)
TOTAL_TYPE = "decimal(38, 6)"  # sums of scores or changes: exact
PREDICTED_TOTAL_TYPE = "decimal(38, 10)"  # sums of predictions: exact
SQUARES_TYPE = "decimal(38, 20)"  # sums of squared scores, changes or residuals: exact too
EPISODE_KEYS = ["provider", "instrument", "patient_id", "episode_id"]
PLACES = Decimal("1e-10")  # estimates are given to 10 decimal places
CONFIDENCE = 0.95



def _scipy_stats() -> ModuleType:
    """scipy.stats, imported when an interval is first needed: it takes about two seconds to
    import, which every payment run would otherwise pay whether it prices outcomes or not."""
    from scipy import stats

    return stats

class Kind(str, Enum):
    """How a statistic summarises episodes: a share of them, or a mean over them."""

    SHARE = "share"
    MEAN = "mean"


@dataclass(frozen=True)
class StatisticInfo:
    """What a statistic is called in words and what it needs."""

    label: str
    kind: Kind
    needs_threshold: bool = False
    needs_predicted: bool = False


class Statistic(str, Enum):
    """The outcome statistics a contract metric can name."""

    SHARE_IMPROVED = "share_improved"
    MEAN_CHANGE = "mean_change"
    SHARE_REACHING = "share_reaching"
    MEAN_POST = "mean_post"
    MEAN_PRE = "mean_pre"
    CASEMIX_ADJUSTED_MEAN = "casemix_adjusted_mean"

    @property
    def info(self) -> StatisticInfo:
        return STATISTICS[self]

    @property
    def kind(self) -> Kind:
        return STATISTICS[self].kind


STATISTICS: dict[Statistic, StatisticInfo] = {
    Statistic.SHARE_IMPROVED: StatisticInfo("share improved by at least the minimal important difference", Kind.SHARE),
    Statistic.MEAN_CHANGE: StatisticInfo("mean change from pre to post", Kind.MEAN),
    Statistic.SHARE_REACHING: StatisticInfo("share reaching a threshold at the end", Kind.SHARE, needs_threshold=True),
    Statistic.MEAN_POST: StatisticInfo("mean post score", Kind.MEAN),
    Statistic.MEAN_PRE: StatisticInfo("mean pre score", Kind.MEAN),
    Statistic.CASEMIX_ADJUSTED_MEAN: StatisticInfo("case-mix adjusted mean post score", Kind.MEAN, needs_predicted=True),
}


def statistic_named(name: str | Statistic) -> Statistic:
    """The statistic called `name`; KeyError naming the known statistics if there is none."""
    if isinstance(name, Statistic):
        return name
    try:
        return Statistic(name)
    except ValueError:
        raise KeyError(f"unknown statistic {name!r}: expected one of {', '.join(s.value for s in Statistic)}") from None


class NoEpisodesError(ValueError):
    """Raised when an estimate is asked of a group with no usable episodes."""


# ----------------------------------------------------------------------------- episodes


def _with_optional_columns(outcomes: ir.Table) -> ir.Table:
    """Give outcomes the optional columns they lack (provider, predicted) as nulls, and
    scores the stored decimal type so sums are exact."""
    extra: dict[str, ir.Value] = {}
    if "provider" not in outcomes.columns:
        extra["provider"] = ibis.literal(None, type="string")
    if "predicted" not in outcomes.columns:
        extra["predicted"] = ibis.literal(None, type=PREDICTED_TYPE)
    outcomes = outcomes.mutate(**extra) if extra else outcomes
    return outcomes.mutate(score=outcomes.score.cast(SCORE_TYPE), predicted=outcomes.predicted.cast(PREDICTED_TYPE))


def _keys(outcomes: ir.Table) -> list[str]:
    """The columns that identify an episode (with `scenario` first when there is one)."""
    return (["scenario"] if "scenario" in outcomes.columns else []) + EPISODE_KEYS


def duplicate_scores(outcomes: ir.Table) -> ir.Table:
    """Episodes with more than one score at a timepoint: one row per episode and timepoint,
    with how many scores there are (`scores`), their first and last dates, and, when the
    outcomes came from files, the first and last source rows. `episodes` keeps the latest."""
    outcomes = _with_optional_columns(outcomes)
    keys = [*_keys(outcomes), "timepoint"]
    located = "source_row" in outcomes.columns
    metrics: dict[str, ir.Value] = {
        "scores": outcomes.count(),
        "first_date": outcomes.date.min(),
        "last_date": outcomes.date.max(),
    }
    if located:
        metrics["source_file"] = outcomes.source_file.min()
        metrics["first_source_row"] = outcomes.source_row.min()
        metrics["last_source_row"] = outcomes.source_row.max()
    grouped = outcomes.group_by(keys).aggregate(**metrics)
    return grouped.filter(grouped.scores > 1)


def duplicate_problems(duplicates: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """Rows of `duplicate_scores` (as dicts) as located problems: which episode has more
    than one score at a timepoint and which one is used. Lines are CSV lines (header 1)."""
    problems = []
    for row in duplicates:
        source = row.get("source_file") or "outcomes"
        last_row: int | None = row.get("last_source_row")
        on_line = str(source).lower().endswith(".csv")
        problems.append(
            Problem(
                source,
                f"episode {row['episode_id']} of patient {row['patient_id']} has {row['scores']} {row['instrument']} "
                f"{row['timepoint']} scores ({row['first_date']} to {row['last_date']}); the latest is used",
                line=last_row + 1 if last_row is not None and on_line else None,
                row=last_row if not on_line else None,
                field="timepoint",
                value=row["timepoint"],
                expected=f"one {row['timepoint']} score per episode and instrument",
            )
        )
    return problems


def episodes(outcomes: ir.Table) -> ir.Table:
    """One row per episode (provider, instrument, patient_id, episode_id) with its `pre` and
    `post` scores and their dates, the `predicted` post score, and whether it is `paired`.

    Where an episode has several scores at one timepoint, the latest by date is used (the
    pre score nearest the intervention, the post score at the end of follow-up; on the same
    date, the higher score). `duplicate_scores` lists them so they can be reported. The
    prediction is taken from the post row, or the pre row when the post row has none.
    Without a `provider` column the provider is null.
    """
    outcomes = _with_optional_columns(outcomes)
    keys = _keys(outcomes)
    latest = ibis.window(group_by=[*keys, "timepoint"], order_by=[ibis.desc("date"), ibis.desc("score")])
    ranked = outcomes.mutate(_rank=ibis.row_number().over(latest))
    kept = ranked.filter(ranked._rank == 0)
    is_pre = kept.timepoint == "pre"
    is_post = kept.timepoint == "post"

    def at(condition: ir.BooleanValue, value: ir.Value) -> ir.Value:
        return ibis.cases((condition, value), else_=None).max()

    grouped = kept.group_by(keys).aggregate(
        pre=at(is_pre, kept.score),
        post=at(is_post, kept.score),
        pre_date=at(is_pre, kept.date),
        post_date=at(is_post, kept.date),
        _predicted_post=at(is_post, kept.predicted),
        _predicted_pre=at(is_pre, kept.predicted),
    )
    return grouped.mutate(
        predicted=grouped._predicted_post.coalesce(grouped._predicted_pre).cast(PREDICTED_TYPE),
        paired=grouped.pre.notnull() & grouped.post.notnull(),
    ).select(*keys, "pre", "post", "predicted", "pre_date", "post_date", "paired")


def pairing(episodes: ir.Table) -> ir.Table:
    """Per instrument: episodes, how many have both scores, and how many lack one (a post
    score without a pre score, or the reverse), so unpaired episodes are always reported."""
    grouped = episodes.group_by("instrument").aggregate(
        episodes=episodes.count(),
        paired=_count(episodes.pre.notnull() & episodes.post.notnull()),
        post_without_pre=_count(episodes.pre.isnull() & episodes.post.notnull()),
        pre_without_post=_count(episodes.pre.notnull() & episodes.post.isnull()),
    )
    return grouped.order_by("instrument")


# ----------------------------------------------------------------------------- tallies


def _count(condition: ir.BooleanValue) -> ir.IntegerValue:
    return ibis.cases((condition, 1), else_=0).sum().cast("int64")


def outcome_tallies(
    episodes: ir.Table,
    by: list[str],
    instrument: str,
    statistic: str | Statistic,
    min_change: Decimal | None = None,
    threshold: Decimal | None = None,
) -> ir.Table:
    """Counts and exact sums per group of `by` for one statistic of one instrument.

    Every statistic is over paired episodes (both scores present), so statistics of one
    group describe the same patients; episodes missing a score are counted, never dropped:
    `unpaired` (either score missing), `post_without_pre` and `pre_without_post`. The
    case-mix adjusted mean also needs a predicted score: paired episodes without one are
    counted in `excluded` (always 0 for the other statistics).

    Columns: the `by` columns, `instrument`, `statistic`, `min_change` and `threshold` used,
    `episodes` (the count used), `unpaired`, `post_without_pre`, `pre_without_post`,
    `excluded`, `successes` (shares; null for means), `total` (sum of the change, post or
    pre score; exact), `total_squares` (sum of squared values, for the t interval; for the
    case-mix statistic, of post − predicted; exact) and `total_predicted` (case-mix only).
    """
    chosen = statistic_named(statistic)
    scale = instrument_named(instrument)
    if chosen.info.needs_threshold and threshold is None:
        raise ValueError(f"statistic {chosen.value} needs a threshold")
    change_needed = min_change if min_change is not None else scale.min_change
    mine = episodes.filter(episodes.instrument == instrument)
    paired = mine.pre.notnull() & mine.post.notnull()
    used = paired & mine.predicted.notnull() if chosen.info.needs_predicted else paired
    change = (mine.post.cast(CHANGE_TYPE) - mine.pre.cast(CHANGE_TYPE)).cast(CHANGE_TYPE)
    value, success = _value_and_success(mine, chosen, scale, change, change_needed, threshold)
    squared = (mine.post.cast(RESIDUAL_TYPE) - mine.predicted.cast(RESIDUAL_TYPE)).cast(RESIDUAL_TYPE) if chosen.info.needs_predicted else value
    metrics: dict[str, ir.Value] = {
        "episodes": _count(used),
        "unpaired": _count(~paired),
        "post_without_pre": _count(mine.pre.isnull() & mine.post.notnull()),
        "pre_without_post": _count(mine.pre.notnull() & mine.post.isnull()),
        "excluded": _count(paired & ~used),
        "successes": _count(used & success) if success is not None else ibis.literal(None, type="int64"),
        "total": ibis.cases((used, value), else_=None).sum().cast(TOTAL_TYPE),
        "total_squares": ibis.cases((used, squared * squared), else_=None).sum().cast(SQUARES_TYPE),
        "total_predicted": (
            ibis.cases((used, mine.predicted), else_=None).sum().cast(PREDICTED_TOTAL_TYPE)
            if chosen.info.needs_predicted
            else ibis.literal(None, type=PREDICTED_TOTAL_TYPE)
        ),
    }
    tallies = mine.group_by(by).aggregate(**metrics) if by else mine.aggregate(**metrics)
    zero, zero_squares = ibis.literal(0).cast(TOTAL_TYPE), ibis.literal(0).cast(SQUARES_TYPE)
    described: dict[str, ir.Value] = {
        "statistic": ibis.literal(chosen.value),
        "min_change": ibis.literal(change_needed if chosen is Statistic.SHARE_IMPROVED else None, type=SCORE_TYPE),
        "threshold": ibis.literal(threshold if chosen is Statistic.SHARE_REACHING else None, type=SCORE_TYPE),
        "total": tallies.total.fill_null(zero),
        "total_squares": tallies.total_squares.fill_null(zero_squares),
    }
    if "instrument" not in by:
        described["instrument"] = ibis.literal(instrument)
    if chosen.info.needs_predicted:
        described["total_predicted"] = tallies.total_predicted.fill_null(ibis.literal(0).cast(PREDICTED_TOTAL_TYPE))
    tallies = tallies.mutate(**described)
    return tallies.select(*by, *TALLY_COLUMNS)


TALLY_COLUMNS = [
    "instrument", "statistic", "min_change", "threshold", "episodes", "unpaired", "post_without_pre",
    "pre_without_post", "excluded", "successes", "total", "total_squares", "total_predicted",
]


def _value_and_success(
    mine: ir.Table,
    statistic: Statistic,
    scale: Instrument,
    change: ir.NumericValue,
    min_change: Decimal,
    threshold: Decimal | None,
) -> tuple[ir.NumericValue, ir.BooleanValue | None]:
    """Each episode's value summed into `total`, and for shares whether it is a success.

    Improvement is in the instrument's direction: post − pre ≥ min_change when higher is
    better, pre − post ≥ min_change when lower is; reaching likewise (post ≥ threshold, or
    ≤ when lower is better). The summed change is always post − pre, as measured."""
    if statistic is Statistic.SHARE_IMPROVED:
        needed = ibis.literal(min_change, type=CHANGE_TYPE)
        return change, (change >= needed) if scale.higher_is_better else (change <= -needed)
    if statistic is Statistic.MEAN_CHANGE:
        return change, None
    if statistic is Statistic.SHARE_REACHING:
        line = ibis.literal(threshold, type=SCORE_TYPE)
        return mine.post, (mine.post >= line) if scale.higher_is_better else (mine.post <= line)
    if statistic is Statistic.MEAN_PRE:
        return mine.pre, None
    return mine.post, None  # mean_post and casemix_adjusted_mean


# ----------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Estimate:
    """A statistic with its 95% interval and the counts behind it.

    `value` is exact (to 10 places); the interval bounds are floats, being approximations
    anyway. For a share, `successes` of `episodes`; for a rate, events of persons.
    """

    statistic: str
    value: Decimal
    lower: float
    upper: float
    episodes: int
    successes: int | None
    unpaired: int
    wording: str = ""
    percent: bool = False
    excluded: int = 0  # paired episodes left out: for the case-mix adjusted mean, those without a prediction

    def describe(self) -> str:
        """Plain words: '78.4% improved by ≥ 8 points (95% CI 75.1%–81.4%; 612 of 781
        episodes; 12 unpaired)'."""
        if self.statistic == "rate_per_thousand":
            interval = f"95% CI {self.lower:,.1f}–{self.upper:,.1f}"
            return f"{self.value:,.1f} {self.wording} ({interval}; {self.successes:,} events in {self.episodes:,} persons)"
        if self.percent:
            shown = f"{self.value * 100:.1f}%"
            interval = f"95% CI {self.lower * 100:.1f}%–{self.upper * 100:.1f}%"
            counts = f"{self.successes:,} of {self.episodes:,} episodes"
            return f"{shown} {self.wording} ({interval}; {counts}; {self.unpaired:,} unpaired)"
        interval = f"95% CI {self.lower:.2f}–{self.upper:.2f}" if math.isfinite(self.lower) else "no interval from one episode"
        left_out = f"; {self.excluded:,} paired without a prediction, left out" if self.excluded else ""
        return f"{self.wording}: {self.value:.2f} ({interval}; {self.episodes:,} episodes; {self.unpaired:,} unpaired{left_out})"


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a proportion: well behaved near 0 and 1 and for small n."""
    if trials <= 0:
        raise NoEpisodesError("a share needs at least one episode")
    z = float(_scipy_stats().norm.ppf(0.5 + confidence / 2))
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def t_interval(count: int, total: Decimal, total_squares: Decimal, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student t interval for a mean from n, Σx and Σx² (variance computed exactly in
    Decimal); infinite bounds for a single value, whose spread is unknown."""
    if count <= 0:
        raise NoEpisodesError("a mean needs at least one episode")
    with localcontext() as context:
        context.prec = 60
        mean = total / count
        if count == 1:
            return -math.inf, math.inf
        variance = (total_squares - total * total / count) / (count - 1)
    spread = float(_scipy_stats().t.ppf(0.5 + confidence / 2, count - 1)) * math.sqrt(max(float(variance), 0.0) / count)
    return float(mean) - spread, float(mean) + spread


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _wording(statistic: Statistic, row: Mapping[str, Any]) -> str:
    """The words after the value in `Estimate.describe`."""
    scale = instrument_named(row["instrument"]) if row.get("instrument") else None
    unit = scale.unit if scale else "points"
    if statistic is Statistic.SHARE_IMPROVED:
        if row.get("min_change") is None:
            return "improved"
        change = _decimal(row["min_change"]).normalize()
        return f"improved by ≥ {change:f} {unit[:-1] if change == 1 and unit.endswith('s') else unit}"
    if statistic is Statistic.SHARE_REACHING:
        return f"reached {_decimal(row['threshold']).normalize():f} or better" if row.get("threshold") is not None else "reached the threshold"
    label = statistic.info.label
    return f"{scale.label} {label}" if scale else label


def estimate(row: Mapping[str, Any], statistic: str | Statistic, reference_mean_predicted: Decimal | None = None) -> Estimate:
    """The estimate from one tally row of `outcome_tallies`: a share (successes / episodes,
    Wilson interval) or a mean (Student t interval). The case-mix adjusted mean is the
    group's mean observed − its mean predicted + the reference (e.g. national) mean
    predicted, with the t interval of the residuals (observed − predicted) moved by the
    same reference."""
    chosen = statistic_named(statistic)
    tallied = row.get("statistic")
    if tallied is not None and tallied != chosen.value:
        raise ValueError(f"a {tallied} tally cannot give {chosen.value}: tally with statistic {chosen.value}")
    count = int(row["episodes"] or 0)  # null when the tally summed no rows at all
    unpaired = int(row["unpaired"] or 0)
    excluded = int(row.get("excluded") or 0)
    if count == 0:
        if excluded:
            raise NoEpisodesError(f"no paired episodes with a prediction to estimate {chosen.value} from "
                                  f"({excluded} paired without a prediction, {unpaired} unpaired)")
        raise NoEpisodesError(f"no paired episodes to estimate {chosen.value} from ({unpaired} unpaired)")
    total = _decimal(row["total"])
    squares = _decimal(row["total_squares"])
    wording = _wording(chosen, row)
    with localcontext() as context:
        context.prec = 60
        if chosen.kind is Kind.SHARE:
            successes = int(row["successes"])
            lower, upper = wilson_interval(successes, count)
            value = (Decimal(successes) / count).quantize(PLACES)
            return Estimate(chosen.value, value, lower, upper, count, successes, unpaired, wording, percent=True)
        if chosen is Statistic.CASEMIX_ADJUSTED_MEAN:
            if reference_mean_predicted is None:
                raise ValueError("a case-mix adjusted mean needs the reference mean predicted score")
            residuals = total - _decimal(row["total_predicted"])
            low, high = t_interval(count, residuals, squares)
            value = (residuals / count + reference_mean_predicted).quantize(PLACES)
            shift = float(reference_mean_predicted)
            return Estimate(chosen.value, value, low + shift, high + shift, count, None, unpaired, wording, excluded=excluded)
        lower, upper = t_interval(count, total, squares)
        return Estimate(chosen.value, (total / count).quantize(PLACES), lower, upper, count, None, unpaired, wording)


def mean_predicted(row: Mapping[str, Any]) -> Decimal:
    """The mean predicted score of a case-mix tally row: the reference for adjustment when
    the row is the whole population (e.g. England)."""
    count = int(row["episodes"])
    if count == 0:
        raise NoEpisodesError("no episodes with a predicted score")
    with localcontext() as context:
        context.prec = 60
        return _decimal(row["total_predicted"]) / count


def rate_per_thousand(events: int, persons: int, confidence: float = CONFIDENCE) -> Estimate:
    """Events per 1,000 population with an exact Poisson (Garwood) interval: events such as
    emergency admissions can recur in one person, so the count is treated as Poisson, not
    as successes out of persons."""
    if persons <= 0:
        raise NoEpisodesError("a rate needs a population of at least one person")
    if events < 0:
        raise ValueError("events cannot be negative")
    alpha = 1 - confidence
    low = 0.0 if events == 0 else float(_scipy_stats().chi2.ppf(alpha / 2, 2 * events)) / 2
    high = float(_scipy_stats().chi2.ppf(1 - alpha / 2, 2 * events + 2)) / 2
    with localcontext() as context:
        context.prec = 60
        value = (Decimal(events) * 1000 / persons).quantize(PLACES)
    return Estimate(
        "rate_per_thousand", value, low * 1000 / persons, high * 1000 / persons, persons, events, 0, "per 1,000 population"
    )
