"""Known calendar effects on waiting-time distributions, as ranges of the wait to keep out of
the bunching fits.

Referrals fall by half or more from about 22 December to 2 January. A month's figures count
patients by how long they had waited when their clock stopped (completed pathways) or at the
month end (the waiting list), so those referred over Christmas sit in a band of waits fixed by
the month: in a March file, 8 to 14 weeks for completed pathways and 12 to 14 weeks for the
list. A polynomial cannot follow that trough; left in the fit it drags the counterfactual
down (or up, beside it) and reads as bunching. The rule: the waits of anyone referred 22
December to 2 January and counted in the period are kept out of the fit.
"""

from __future__ import annotations

import calendar
import datetime as dt

HOLIDAY = ((12, 22), (1, 2))  # first and last day of the Christmas referral trough
DAYS_PER_WEEK = 7


def month_range(month: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the month holding `month`."""
    first = month.replace(day=1)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def christmas_waits(first: dt.date, last: dt.date) -> list[tuple[float, float]]:
    """Ranges of waits (weeks) of patients referred over any Christmas and counted between
    `first` and `last` (the same day for a snapshot of the waiting list), for waits up to
    three years."""
    (m1, d1), (m2, d2) = HOLIDAY
    ranges = []
    for year in range(first.year - 3, last.year + 1):
        start, end = dt.date(year, m1, d1), dt.date(year + 1, m2, d2)
        if start > last:
            continue
        shortest = max(0, (first - end).days)
        longest = (last - start).days
        if longest < 0:
            continue
        ranges.append((shortest / DAYS_PER_WEEK, (longest + 1) / DAYS_PER_WEEK))
    return sorted(ranges)
