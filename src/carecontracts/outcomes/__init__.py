"""Outcome measurement: pre/post scores → episodes → tallies → estimates with intervals."""

from carecontracts.outcomes.statistics import (
    STATISTICS,
    Estimate,
    Kind,
    NoEpisodesError,
    Statistic,
    duplicate_problems,
    duplicate_scores,
    episodes,
    estimate,
    mean_predicted,
    outcome_tallies,
    rate_per_thousand,
    statistic_named,
)

__all__ = [
    "STATISTICS",
    "Estimate",
    "Kind",
    "NoEpisodesError",
    "Statistic",
    "duplicate_problems",
    "duplicate_scores",
    "episodes",
    "estimate",
    "mean_predicted",
    "outcome_tallies",
    "rate_per_thousand",
    "statistic_named",
]
