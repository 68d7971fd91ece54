"""Synthetic figures in the layouts NHS England publishes, for trying the audit as a new
user would on real data, and for testing it against a known truth.

- `rtt_rows`: referral-to-treatment waits in the "full CSV" layout, one row per provider ×
  commissioner × treatment function × part (admitted, non-admitted, incomplete), the wait
  in weekly bands `Gt 00 To 01 Weeks SUM 1` … `Gt 52 Weeks SUM 1`, with a `Total` treatment
  function row (C_999) that sums the others.
- `ae_rows`: A&E attendances and waits over four hours by provider and month in the layout
  of the monthly situation report (`A&E attendances Type 1`, `Attendances over 4hrs Type 1`, …)
  with the national `TOTAL` row.

The shapes are those the audit has to survive on real data: referrals that follow the
seasons and fall by two thirds over Christmas (so a March file has a trough 9 to 14 weeks
back), national and local week-to-week noise, providers of very different sizes, and A&E
performance that dips every winter. Exactly one thing is planted in each: one provider stops
the clock on a share of the patients about to breach 18 weeks (their waits of 18–24 weeks
are recorded as 17–18), and a few trusts nudge months that fell just short of 95% to just
over it. Everything comes from the seed, and the truth is returned beside the rows.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# --- referral to treatment ----------------------------------------------------------------

RTT_ID_COLUMNS = (
    "Period", "Provider Parent Org Code", "Provider Parent Name", "Provider Org Code", "Provider Org Name",
    "Commissioner Parent Org Code", "Commissioner Parent Name", "Commissioner Org Code", "Commissioner Org Name",
    "RTT Part Type", "RTT Part Description", "Treatment Function Code", "Treatment Function Name",
)
PARTS = {
    "Part_1A": "Completed Pathways For Admitted Patients",
    "Part_1B": "Completed Pathways For Non-Admitted Patients",
    "Part_2": "Incomplete Pathways",
}
# Treatment functions: code, name, share of referrals, waits relative to the average.
TREATMENT_FUNCTIONS = (
    ("C_100", "General Surgery Service", 0.16, 1.0),
    ("C_101", "Urology Service", 0.09, 1.05),
    ("C_110", "Trauma and Orthopaedic Service", 0.17, 1.3),
    ("C_120", "Ear Nose and Throat Service", 0.10, 1.15),
    ("C_130", "Ophthalmology Service", 0.14, 0.9),
    ("C_320", "Cardiology Service", 0.08, 0.85),
    ("C_502", "Gynaecology Service", 0.11, 1.1),
    ("X02", "Other - Medical Services", 0.15, 0.8),
)
TOTAL_FUNCTION = ("C_999", "Total")
# Mean wait (weeks) and gamma shape of completed pathways; the waiting list's own shape.
WAITS = {"Part_1A": (15.0, 2.4), "Part_1B": (9.0, 1.6), "Part_2": (13.0, 1.5)}
MONTHLY = {"Part_1A": 0.22, "Part_1B": 0.78, "Part_2": 1.0}  # completions per referral-month; the list is summed
CHRISTMAS = ((12, 22), (1, 2))  # referrals fall from 22 December to 2 January
CHRISTMAS_LEVEL = 0.35
HISTORY_DAYS = 3 * 365
STOP_FROM_WEEK, STOP_TO_WEEK = 18, 24  # waits 18–24 weeks are pulled back …
STOP_INTO_WEEK = 17  # … to 17–18 weeks


def rtt_band_columns(last_week: int = 52) -> list[str]:
    """`Gt 00 To 01 Weeks SUM 1` … `Gt 51 To 52 Weeks SUM 1`, `Gt 52 Weeks SUM 1`."""
    return [f"Gt {w:02d} To {w + 1:02d} Weeks SUM 1" for w in range(last_week)] + [f"Gt {last_week:02d} Weeks SUM 1"]


def rtt_columns(last_week: int = 52) -> list[str]:
    return list(RTT_ID_COLUMNS) + rtt_band_columns(last_week) + ["Total", "Patients with unknown clock start date", "Total All"]


@dataclass(frozen=True)
class Organisation:
    code: str
    name: str
    parent_code: str
    parent_name: str


@dataclass
class RttTruth:
    """What was planted: patients moved into 17–18 weeks, by provider and part."""

    clock_stopper: str | None
    moved: dict[tuple[str, str], int] = field(default_factory=dict)  # (provider, part) → patients


def _month_end(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def _referral_intensity(days: np.ndarray, rng: np.random.Generator, national_noise: np.ndarray) -> np.ndarray:
    """Relative referrals per day: seasons, weekends, the Christmas fall, week-to-week noise."""
    dates = days.astype("datetime64[D]")
    month = (dates.astype("datetime64[M]").astype(np.int64) % 12) + 1
    day = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    weekday = (days + 3) % 7
    # Seasons change smoothly through the year (a step at each month's edge would itself read as bunching).
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    middles = np.array([15, 45, 74, 105, 135, 166, 196, 227, 258, 288, 319, 349])
    seasonal = np.interp(day_of_year, middles, [1.02, 1.03, 1.05, 0.97, 1.0, 1.03, 0.93, 0.9, 1.02, 1.04, 1.05, 0.92], period=365)
    rate = seasonal * np.where(weekday >= 5, 0.08, 1.0)
    (m1, d1), (m2, d2) = CHRISTMAS
    xmas = ((month == m1) & (day >= d1)) | ((month == m2) & (day <= d2))
    rate = np.where(xmas, rate * CHRISTMAS_LEVEL, rate)
    week = (days - days[0]) // 7
    local = np.exp(rng.normal(0, 0.05, week.max() + 1))
    return rate * national_noise[week] * local[week]


def _band_means(period: dt.date, part: str, scale: float, rate: np.ndarray, first_day: int, last_week: int) -> np.ndarray:
    """Expected patients in each weekly band (last one open) for one provider and function."""
    mean, shape = WAITS[part]
    mean *= scale
    waits = np.arange(0, 7 * 160)  # days
    from scipy import stats

    density = stats.gamma.pdf(waits + 0.5, shape, scale=7 * mean / shape)
    cumulative = np.concatenate([[0.0], np.cumsum(rate)])

    def summed(start: int, stop: int) -> np.ndarray:  # Σ rate over days start..stop (inclusive) for each wait
        lo = np.clip(start - waits - first_day, 0, len(rate))
        hi = np.clip(stop - waits - first_day + 1, 0, len(rate))
        return cumulative[hi] - cumulative[lo]

    start = int(np.datetime64(period, "D").astype(np.int64))
    stop = int(np.datetime64(_month_end(period), "D").astype(np.int64))
    if part == "Part_2":  # still waiting at the month end: referred `wait` days before it and not yet treated
        survival = stats.gamma.sf(waits, shape, scale=7 * mean / shape)
        per_day = summed(stop, stop) * survival
    else:
        per_day = summed(start, stop) * density
    weeks = np.minimum(waits // 7, last_week)
    return np.bincount(weeks, weights=per_day, minlength=last_week + 1)


def rtt_rows(
    period: dt.date = dt.date(2026, 3, 1),
    seed: int = 17,
    providers: int = 12,
    commissioners: int = 9,
    clock_stopper: int | None = 0,
    stop_share: float = 0.35,
    stop_parts: tuple[str, ...] = ("Part_1A",),
    size: float = 1.0,
    last_week: int = 52,
) -> tuple[list[list[str]], RttTruth]:
    """One month's RTT full CSV rows (header first) and what was planted.

    `clock_stopper` is the index of the provider that stops clocks (None: nobody does);
    `size` scales every provider's referrals."""
    rng = np.random.default_rng([seed, 17])
    period = period.replace(day=1)
    label = f"RTT-{period.strftime('%B').upper()}-{period.year}"
    regions = [("Y56", "NHS ENGLAND LONDON"), ("Y61", "NHS ENGLAND MIDLANDS"), ("Y63", "NHS ENGLAND NORTH EAST AND YORKSHIRE")]
    provs = [Organisation(f"Z{i + 1:02d}", f"{name} NHS Trust", regions[i % 3][0], regions[i % 3][1])
             for i, name in enumerate(["Northfield Hospitals", "Eastbrook Teaching", "Westmoor", "Southvale", "Riverside University",
                                       "Hillcrest", "Kingsway", "Lakeshore", "Marshgate", "Oakhurst", "Pinewood", "Queensbridge",
                                       "Redcliffe", "Stonebridge", "Thornbury", "Upton", "Valeview", "Whitmore", "Yardley", "Ashgrove"]
                                      * (providers // 20 + 1))][:providers]
    comms = [Organisation(f"{i + 1:02d}X", f"NHS {name} ICB - {i + 1:02d}X", f"QZ{i % 4}", f"NHS {name} INTEGRATED CARE BOARD")
             for i, name in enumerate(["Northern", "Eastern", "Western", "Southern", "Central", "Coastal", "Upland", "Valley", "Forest",
                                       "Harbour", "Moorland", "Downs"] * (commissioners // 12 + 1))][:commissioners]
    first_day = int(np.datetime64(period, "D").astype(np.int64)) - HISTORY_DAYS
    days = np.arange(first_day, first_day + HISTORY_DAYS + 31)
    national = np.exp(rng.normal(0, 0.03, len(days) // 7 + 2))
    sizes = np.exp(rng.normal(0, 0.6, providers)) * 12000 * size  # referrals a month
    truth = RttTruth(provs[clock_stopper].code if clock_stopper is not None else None)
    rows: list[list[str]] = [rtt_columns(last_week)]
    for p, provider in enumerate(provs):
        rate = _referral_intensity(days, rng, national)
        rate = rate / rate.mean() * sizes[p] / 30.4
        home = rng.choice(commissioners, size=min(commissioners, 4), replace=False)
        shares = np.full(commissioners, 0.01)
        shares[home] = rng.dirichlet(np.full(len(home), 2.0)) * 0.9 + 0.01
        shares /= shares.sum()
        served = np.flatnonzero(rng.random(commissioners) < 0.35) if commissioners > 4 else np.arange(commissioners)
        served = np.union1d(served, home)
        for part, description in PARTS.items():
            totals = np.zeros((commissioners, last_week + 1), dtype=np.int64)
            function_rows = []
            for code, name, share, scale in TREATMENT_FUNCTIONS:
                means = _band_means(period, part, scale, rate * share * MONTHLY[part], first_day, last_week)
                counts = rng.poisson(means * np.exp(rng.normal(0, 0.02, len(means))))
                if clock_stopper == p and part in stop_parts:
                    due = counts[STOP_FROM_WEEK:STOP_TO_WEEK]
                    moved = rng.binomial(due, stop_share)
                    counts[STOP_FROM_WEEK:STOP_TO_WEEK] -= moved
                    counts[STOP_INTO_WEEK] += moved.sum()
                    truth.moved[(provider.code, part)] = truth.moved.get((provider.code, part), 0) + int(moved.sum())
                by_commissioner = np.zeros((commissioners, last_week + 1), dtype=np.int64)
                weights = np.where(np.isin(np.arange(commissioners), served), shares, 0)
                weights /= weights.sum()
                for band, n in enumerate(counts):
                    by_commissioner[:, band] = rng.multinomial(int(n), weights)
                totals += by_commissioner
                function_rows.append((code, name, by_commissioner))
            function_rows.append((*TOTAL_FUNCTION, totals))
            for c in served:
                commissioner = comms[c]
                for code, name, table in function_rows:
                    bands = table[c]
                    if bands.sum() == 0:
                        continue
                    unknown = int(rng.poisson(0.002 * bands.sum())) if part == "Part_2" else 0
                    rows.append([label, provider.parent_code, provider.parent_name, provider.code, provider.name,
                                 commissioner.parent_code, commissioner.parent_name, commissioner.code, commissioner.name,
                                 part, description, code, name, *[str(int(v)) for v in bands],
                                 str(int(bands.sum())), str(unknown), str(int(bands.sum()) + unknown)])
    return rows, truth


# --- A&E four-hour performance ---------------------------------------------------------------

AE_COLUMNS = (
    "Period", "Org Code", "Parent Org", "Org name",
    "A&E attendances Type 1", "A&E attendances Type 2", "A&E attendances Other A&E Department",
    "A&E attendances Booked Appointments Type 1", "A&E attendances Booked Appointments Type 2",
    "A&E attendances Booked Appointments Other Department",
    "Attendances over 4hrs Type 1", "Attendances over 4hrs Type 2", "Attendances over 4hrs Other Department",
    "Attendances over 4hrs Booked Appointments Type 1", "Attendances over 4hrs Booked Appointments Type 2",
    "Attendances over 4hrs Booked Appointments Other Department",
    "Patients who have waited 4-12 hs from DTA to admission", "Patients who have waited 12+ hrs from DTA to admission",
    "Emergency admissions via A&E - Type 1", "Emergency admissions via A&E - Type 2",
    "Emergency admissions via A&E - Other A&E department", "Other emergency admissions",
)
WINTER = np.array([0, -3.5, -3.0, -1.5, -0.5, 0.5, 1.0, 1.0, 0.8, 0.3, -0.5, -1.5, -3.0])  # points by calendar month


@dataclass
class AeTruth:
    """What was planted: the trusts that nudge, and each provider-month moved over 95%."""

    nudgers: list[str]
    nudged: list[tuple[str, str]] = field(default_factory=list)  # (provider, period label)


def ae_rows(
    first: dt.date = dt.date(2024, 4, 1),
    months: int = 24,
    seed: int = 95,
    providers: int = 120,
    nudgers: int = 12,
    nudge_share: float = 0.7,
    level: float = 91.5,
    spread: float = 3.5,
) -> tuple[list[list[str]], AeTruth]:
    """Monthly A&E rows (header first) for `providers` trusts over `months` months.

    Each trust has its own level (normal around `level` points, `spread` between trusts),
    the winter dip, a month-to-month wander and binomial noise on its attendances. The
    `nudgers` trusts report a month that fell 93–95% as 95–95.5% with chance `nudge_share`."""
    rng = np.random.default_rng([seed, 95])
    codes = [f"Z{i + 1:02d}" if i < 99 else f"ZA{i - 98:02d}" for i in range(providers)]
    regions = ["NHS ENGLAND LONDON", "NHS ENGLAND MIDLANDS", "NHS ENGLAND NORTH WEST", "NHS ENGLAND SOUTH WEST", "NHS ENGLAND EAST OF ENGLAND"]
    size = np.exp(rng.normal(np.log(9000), 0.45, providers))
    base = rng.normal(level, spread, providers)
    cheats = set(rng.choice(providers, size=nudgers, replace=False).tolist()) if nudgers else set()
    truth = AeTruth([codes[i] for i in sorted(cheats)])
    rows: list[list[str]] = [list(AE_COLUMNS)]
    wander = np.zeros(providers)
    for m in range(months):
        year, month = first.year + (first.month - 1 + m) // 12, (first.month - 1 + m) % 12 + 1
        label = f"MSitAE-{calendar.month_name[month].upper()}-{year}"
        wander = 0.6 * wander + rng.normal(0, 0.9, providers)
        totals = np.zeros(len(AE_COLUMNS) - 4, dtype=np.int64)
        for i, code in enumerate(codes):
            type1 = int(rng.poisson(size[i] * (1.08 if month in (12, 1, 2) else 1.0)))
            other = int(rng.poisson(size[i] * 0.35))
            share = np.clip(base[i] + WINTER[month] + wander[i], 40, 99.7) / 100
            within1 = rng.binomial(type1, share)
            within_other = rng.binomial(other, min(0.995, share + 0.06))
            percent = 100 * (within1 + within_other) / (type1 + other)
            if i in cheats and 93 <= percent < 95 and rng.random() < nudge_share:
                target = rng.uniform(95.0, 95.45)
                needed = int(np.ceil(target / 100 * (type1 + other))) - within_other
                within1 = min(type1, max(within1, needed))
                truth.nudged.append((code, label))
            over1, over_other = type1 - within1, other - within_other
            admissions = int(rng.poisson(type1 * 0.28))
            dta_4_12 = int(rng.binomial(admissions, 0.25))
            dta_12 = int(rng.binomial(admissions, 0.04))
            values = [type1, 0, other, 0, 0, 0, over1, 0, over_other, 0, 0, 0, dta_4_12, dta_12, admissions, 0, 0, int(rng.poisson(size[i] * 0.1))]
            totals += np.array(values)
            rows.append([label, code, regions[i % len(regions)], f"{code} Hospitals NHS Foundation Trust", *[str(v) for v in values]])
        rows.append([label, "TOTAL", "-", "Total", *[str(int(v)) for v in totals]])
    return rows, truth


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    """Rows as CSV (quoted where a value holds a comma), Unix line ends."""

    def cell(value: str) -> str:
        return f'"{value}"' if ("," in value or '"' in value) else value

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(",".join(cell(v) for v in row) for row in rows) + "\n", encoding="utf-8")
    return path


RTT_EXAMPLE = "rtt-full-2026-03.csv"
AE_EXAMPLE = "ae-monthly-2024-04-to-2026-03.csv"


def write_example_files(folder: Path, seed: int = 20250401) -> list[Path]:
    """The published-layout files shipped with the example workspace: one month of RTT waits
    (March 2026, 12 providers; Z01 stops clocks on admitted pathways) and two years of
    monthly A&E figures (120 providers; 12 nudge months just short of 95% over it)."""
    rtt, _ = rtt_rows(period=dt.date(2026, 3, 1), seed=seed)
    ae, _ = ae_rows(first=dt.date(2024, 4, 1), months=24, seed=seed)
    return [write_csv(folder / RTT_EXAMPLE, rtt), write_csv(folder / AE_EXAMPLE, ae)]
