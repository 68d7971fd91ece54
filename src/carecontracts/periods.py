"""Months and financial years: the calendar every statement is keyed on."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")


def month_start(day: dt.date) -> dt.date:
    """First day of the month containing `day`."""
    return day.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    """The first of the month `count` months after `month`."""
    index = month.year * 12 + (month.month - 1) + count
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(month: dt.date) -> dt.date:
    """Last day of the month starting `month`."""
    return add_months(month, 1) - dt.timedelta(days=1)


def parse_month(text: str) -> dt.date:
    """`2025-11` → 2025-11-01; raises ValueError naming the expected form."""
    match = MONTH_PATTERN.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month; expected YYYY-MM, e.g. 2025-11")
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def month_label(month: dt.date) -> str:
    """2025-11-01 → `2025-11`."""
    return f"{month.year:04d}-{month.month:02d}"


@dataclass(frozen=True)
class FinancialYear:
    """Twelve months from `start` (1 April in the NHS)."""

    start: dt.date

    @classmethod
    def parse(cls, text: str, start_month: int = 4) -> "FinancialYear":
        """`2025-26` or `2025` → the year starting in 2025."""
        match = re.match(r"^(\d{4})(?:[-/](\d{2}|\d{4}))?$", text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a financial year; expected e.g. 2025-26")
        return cls(dt.date(int(match.group(1)), start_month, 1))

    @property
    def months(self) -> list[dt.date]:
        return [add_months(self.start, i) for i in range(12)]

    @property
    def end(self) -> dt.date:
        return month_end(add_months(self.start, 11))

    @property
    def label(self) -> str:
        """`2025-26` for a year from April; `2018` for a calendar year (from January)."""
        if self.start.month == 1:
            return f"{self.start.year}"
        return f"{self.start.year}-{(self.start.year + 1) % 100:02d}"

    def number(self, month: dt.date) -> int:
        """The financial month's number, 1 for the year's first month (M1) to 12 (M12)."""
        count = (month.year - self.start.year) * 12 + month.month - self.start.month + 1
        if not 1 <= count <= 12:
            raise ValueError(f"{month_label(month)} is not in {self.label}")
        return count

    def financial_month(self, month: dt.date) -> str:
        """`M8 2025-11`: the financial month beside the calendar month, as finance teams read them."""
        return f"M{self.number(month)} {month_label(month)}"

    def outturn_spans(self, as_of: dt.date) -> tuple[str, str]:
        """The headings of an outturn's two parts as of a month: `YTD M1–M8` and `projected M9–M12`."""
        done = len([m for m in self.months if m <= as_of])
        return (f"YTD M1–M{done}" if done else "YTD"), (f"projected M{done + 1}–M12" if done < 12 else "projected")

    def period(self, months: list[dt.date]) -> str:
        """A run of months in finance terms: `M8 2025-11`, `2025-26` for the whole year, `M1–M8
        2025-04..2025-11 (year to date)` from the year's start, else `M6–M8 2025-09..2025-11`."""
        if months == self.months:
            return self.label
        if len(months) == 1:
            return self.financial_month(months[0])
        span = f"M{self.number(months[0])}–M{self.number(months[-1])} {month_label(months[0])}..{month_label(months[-1])}"
        return span + (" (year to date)" if months[0] == self.start else "")

    def __contains__(self, day: dt.date) -> bool:
        return self.start <= day <= self.end
