"""XmR rules on small series where the signal is worked by hand."""

from __future__ import annotations

import pytest

from carecontracts.audit.spc import Improvement, Meaning, Rule, xmr
from carecontracts.problems import ProblemsError


def test_point_beyond_the_limits() -> None:
    # baseline 10, 12, … : mean 11, mean moving range 2, limits 11 ± 5.32 = 5.68 to 16.32
    chart = xmr([10, 12, 10, 12, 10, 12, 10, 12, 30], improvement=Improvement.LOWER, baseline=8)
    assert (chart.mean, chart.moving_range, round(chart.upper, 2), round(chart.lower, 2)) == (11, 2, 16.32, 5.68)
    assert [(s.rule, s.points, s.upward, s.meaning) for s in chart.signals] == [(Rule.OUTSIDE_LIMITS, (8,), True, Meaning.CONCERN)]


def test_run_of_seven_on_one_side_is_a_shift() -> None:
    # baseline mean 5.5; 6 at index 7 and the seven values after it sit above it, inside two sigma (7.27)
    values = [5, 6, 5, 6, 5, 6, 5, 6, 6.4, 6.6, 6.4, 6.6, 6.4, 6.6, 6.4]
    chart = xmr(values, improvement=Improvement.HIGHER, baseline=8)
    assert [(s.rule, s.points, s.meaning) for s in chart.signals] == [(Rule.SHIFT, tuple(range(7, 15)), Meaning.IMPROVEMENT)]
    assert xmr(values[:-2], baseline=8).signals == []  # six above: no shift


def test_six_rising_points_are_a_trend_and_five_are_not() -> None:
    chart = xmr([1, 2, 3, 4, 5, 6], improvement=Improvement.HIGHER)
    assert [(s.rule, s.points, s.upward) for s in chart.signals] == [(Rule.TREND, (0, 1, 2, 3, 4, 5), True)]
    assert Rule.TREND not in {s.rule for s in xmr([1, 2, 3, 4, 5, 5]).signals}  # an equal value ends the run: 5 rising points


def test_two_of_three_beyond_two_sigma() -> None:
    # baseline mean 10.5, mR 1: two sigma at 12.27, limit at 13.16
    chart = xmr([10, 11] * 5 + [12.5, 10, 12.6], improvement=Improvement.LOWER, baseline=10)
    assert [(s.rule, s.points, s.meaning) for s in chart.signals] == [(Rule.TWO_OF_THREE, (10, 12), Meaning.CONCERN)]
    assert "two of three points above the two-sigma line (concern)" in chart.signals[0].describe([str(i) for i in range(13)])


def test_common_cause_variation_gives_no_signal() -> None:
    assert xmr([80.1, 79.6, 80.4, 79.9, 80.2, 79.8, 80.3, 79.7, 80.0, 80.5, 79.5, 80.1]).signals == []


def test_too_few_points_or_a_gap_is_refused() -> None:
    with pytest.raises(ProblemsError, match="at least 3 points"):
        xmr([1.0, 2.0])
    with pytest.raises(ProblemsError, match="not a number"):
        xmr([1.0, float("nan"), 2.0])
