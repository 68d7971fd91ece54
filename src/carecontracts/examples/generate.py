"""The example workspace: North Central ICB buying care from six providers in 2025-26.

Everything is drawn from one seed, so the same seed and size give byte-identical files.
Patient-level activity is generated in chunks of vectorised numpy draws (no loop per row)
and written one Parquet file per chunk, so a hundred million rows never sit in memory at
once. Prices and case mix come from the national average unit costs shipped in `data/`.
"""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from carecontracts.data.schemas import ACTIVITY, SPELL_DAY_COLUMNS
from carecontracts.examples import partnerships, published
from carecontracts.examples.cycle import write_cycle_files
from carecontracts.examples.prices_workbook import write_prices_workbook
from carecontracts.examples.national_costs import (
    COMMUNITY,
    CONSULTANT_LED,
    ELECTIVE,
    EMERGENCY_CARE,
    NON_ELECTIVE,
    ORTHOPAEDIC_AND_EYE_PREFIXES,
    OUTPATIENT_PROCEDURES,
    READMISSION_PREFIXES,
    CostRow,
    shipped_costs,
)
from carecontracts.money import split_exactly

Progress = Callable[[str], None]

# The year, its days and months.
YEAR_START = np.datetime64("2025-04-01", "D")
YEAR_DAYS = 365
DAYS = YEAR_START + np.arange(YEAR_DAYS)
MONTH_OF_DAY = (DAYS.astype("datetime64[M]") - YEAR_START.astype("datetime64[M]")).astype(np.int64)
MONTHS = [str(np.datetime64("2025-04", "M") + m) for m in range(12)]
WEEKDAY_OF_DAY = (DAYS.astype(np.int64) + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
BANK_HOLIDAYS = np.array(
    ["2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26", "2025-08-25", "2025-12-25", "2025-12-26", "2026-01-01"],
    dtype="datetime64[D]",
)
TERM = ("2025-04-01", "2026-03-31")

# Generation sizes.
CHUNK_ROWS = 1_000_000
ROW_GROUP_ROWS = 131_072
QUANTITY_SCALE = 4  # quantity is written as DECIMAL(18, 4)

# Parties.
ICB = "ICB-NCL"
ICB_NAME = "North Central ICB"
ASSOCIATE = "ICB-NEL"
ASSOCIATE_NAME = "North East ICB"
ASSOCIATE_SHARE = 0.2
REGISTERED = {ICB: 1_250_000, ASSOCIATE: 980_000}

ACUTE, ISP, COMMUNITY_TRUST, MH, OOA, GP = "ACUTE-RFH", "ISP-HEALTHCARE", "COMMUNITY-CT", "MH-TRUST", "OOA-TRUST", "GP-FED"
CONTRACT_OF = {
    ACUTE: "ACUTE-2025",
    ISP: "ISP-2025",
    COMMUNITY_TRUST: "COMMUNITY-2025",
    MH: "MH-2025",
    OOA: "OOA-2025",
    GP: "GP-2025",
}

# Terms.
PRICE_LIST = "national-2025"
SPELL_BOOK = "nps-2025-26-illustrative"
ACUTE_MFF = Decimal("1.0461")
ACUTE_FIXED = 412_500_000
ACUTE_PLAN_FACTOR = 0.97  # elective plan a little below what is delivered
ISP_PLAN_FACTOR = 1.02
COMMUNITY_BLOCK = 48_000_000
MH_ABOVE_BASELINE = 1.08  # contacts delivered ÷ baseline: above the ±5% band
OOA_HISTORY = (412_300, 389_750, 436_900)
CAPITATION_RATES = {"0-17": "0.16", "18-64": "0.22", "65-84": "0.31", "85+": "0.45"}
RISK_WEIGHTS = {"65-84": "1.10", "85+": "1.25"}
BAND_SHARES = {"0-17": 0.21, "18-64": 0.63, "65-84": 0.14, "85+": 0.02}
LIST_GROWTH_PER_MONTH = 0.0004


@dataclass(frozen=True)
class Season:
    """Relative volumes by month (April first), weekday (Monday first) and on bank holidays."""

    months: tuple[float, ...]
    weekdays: tuple[float, ...]
    bank_holiday: float

    def daily(self) -> np.ndarray:
        """Probability that an event of this season ends on each day of the year."""
        weight = np.array(self.months)[MONTH_OF_DAY] * np.array(self.weekdays)[WEEKDAY_OF_DAY]
        weight = np.where(np.isin(DAYS, BANK_HOLIDAYS), weight * self.bank_holiday, weight)
        return weight / weight.sum()

    def monthly(self) -> np.ndarray:
        """Expected share of the year's events in each month: a plan's profile."""
        return np.bincount(MONTH_OF_DAY, weights=self.daily(), minlength=12)


WORKING_WEEK = (1.0, 1.0, 1.0, 1.0, 1.0, 0.06, 0.02)
SEASONS = {
    # Winter pressure: emergency admissions and A&E up about a sixth December to February.
    "emergency": Season((0.97, 0.98, 0.96, 0.98, 0.95, 0.98, 1.02, 1.06, 1.17, 1.20, 1.15, 1.06), (1.12, 1.0, 0.98, 0.98, 1.0, 0.94, 0.92), 0.95),
    # Planned care dips over Easter, in August and at Christmas, and happens on working days.
    "elective": Season((0.95, 1.0, 1.03, 1.03, 0.86, 1.02, 1.04, 1.05, 0.84, 1.0, 1.02, 1.04), WORKING_WEEK, 0.03),
    "community": Season((0.98, 1.0, 1.01, 1.0, 0.93, 1.0, 1.03, 1.03, 0.88, 1.02, 1.02, 1.04), (1.0, 1.0, 1.0, 1.0, 1.0, 0.3, 0.2), 0.25),
    "mental-health": Season((0.99, 1.0, 1.01, 1.0, 0.95, 1.0, 1.02, 1.03, 0.93, 1.02, 1.02, 1.03), (1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.12), 0.15),
    "maternity": Season((0.98, 0.99, 1.0, 1.02, 1.03, 1.05, 1.04, 1.0, 0.98, 0.97, 0.96, 0.98), (1.0,) * 7, 1.0),
}

AGES: dict[str, tuple[tuple[int, int, float], ...]] = {
    "all": ((0, 4, 0.06), (5, 17, 0.12), (18, 44, 0.34), (45, 64, 0.25), (65, 84, 0.19), (85, 100, 0.04)),
    "emergency": ((0, 4, 0.08), (5, 17, 0.06), (18, 44, 0.18), (45, 64, 0.18), (65, 84, 0.32), (85, 102, 0.18)),
    "elective": ((0, 17, 0.05), (18, 44, 0.17), (45, 64, 0.33), (65, 84, 0.38), (85, 99, 0.07)),
    "surgical": ((30, 49, 0.1), (50, 64, 0.27), (65, 79, 0.45), (80, 95, 0.18)),
    "maternity": ((16, 19, 0.03), (20, 29, 0.37), (30, 39, 0.52), (40, 47, 0.08)),
    "community": ((0, 17, 0.14), (18, 64, 0.26), (65, 84, 0.38), (85, 104, 0.22)),
    "mental-health": ((14, 17, 0.06), (18, 34, 0.33), (35, 64, 0.45), (65, 94, 0.16)),
    "older-people": ((65, 74, 0.30), (75, 84, 0.42), (85, 101, 0.28)),
}

ELECTIVE_POD = "EL|DC"  # drawn per spell: ordinary elective or day case, by the HRG's national split
NO_REFERRAL = np.iinfo(np.int32).min  # marks rows with no referral (emergencies, follow-ups, contacts)

# The waiting-time story the audit finds: from October one provider stops the clock on most
# patients about to breach 18 weeks, so their recorded waits bunch just under 18 weeks.
CLOCK_STOPPER = "ISP-HEALTHCARE"
CLOCK_STOPS_FROM = int((np.datetime64("2025-10-01", "D") - YEAR_START).astype(np.int64))  # day offset of 1 October
RTT_LIMIT_DAYS = 126  # 18 weeks
CLOCK_STOP_REACH_DAYS = 42  # waits up to 24 weeks are pulled back
CLOCK_STOP_SHARE = 0.6
REPORTED_MEASURE = "rtt_18_weeks"


@dataclass(frozen=True)
class Segment:
    """A slice of the activity: who provides it, for whom, what it is and how it varies."""

    provider: str
    commissioner: str
    service: str
    pod: str
    admission_method: str | None
    mix: str
    season: str
    ages: str
    stay: str
    share: float
    sites: tuple[tuple[str, float], ...]
    referred: bool = False
    planned_as: str | None = None  # the contract service a plan is written for
    readmits_after: str | None = None  # emergency readmissions following this provider's elective spells


def _segments() -> list[Segment]:
    """Every slice of the year's activity with its share of all rows.

    The acute trust's activity is split between the two commissioners of its contract in
    proportion to the associate's share.
    """
    acute_sites = (("RFH-NORTH", 0.65), ("RFH-SOUTH", 0.35))
    acute = [
        # service, pod, admission method, mix, season, ages, stay, share, referred, planned as
        ("elective", ELECTIVE_POD, "elective", "elective", "elective", "elective", "elective", 0.052, True, "elective"),
        ("outpatients", "OPPROC", None, "op-procedure", "elective", "all", "none", 0.030, True, "outpatient-procedures"),
        ("emergency", "NEL", "emergency", "non-elective", "emergency", "emergency", "emergency", 0.038, False, None),
        ("emergency", "NEL", "transfer", "non-elective", "emergency", "emergency", "emergency", 0.002, False, None),
        ("maternity", "NEL", "maternity", "maternity", "maternity", "maternity", "maternity", 0.008, False, None),
        ("outpatients", "OPFA", None, "op-first", "elective", "all", "none", 0.110, True, None),
        ("outpatients", "OPFU", None, "op-follow-up", "elective", "all", "none", 0.240, False, None),
        ("emergency", "AE", None, "a-and-e", "emergency", "all", "none", 0.120, False, None),
    ]
    segments: list[Segment] = []
    for commissioner, part in ((ICB, 1 - ASSOCIATE_SHARE), (ASSOCIATE, ASSOCIATE_SHARE)):
        for service, pod, method, mix, season, ages, stay, share, referred, planned in acute:
            segments.append(Segment(ACUTE, commissioner, service, pod, method, mix, season, ages, stay, share * part, acute_sites, referred, planned))
    isp_site = (("ISP-BARNET", 1.0),)
    segments += [
        Segment(ISP, ICB, "elective", ELECTIVE_POD, "elective", "isp-elective", "elective", "surgical", "elective", 0.0090, isp_site, True, "elective"),
        Segment(ISP, ICB, "outpatients", "OPFA", None, "op-first", "elective", "surgical", "none", 0.0050, isp_site, True, "outpatients"),
        Segment(ISP, ICB, "outpatients", "OPFU", None, "op-follow-up", "elective", "surgical", "none", 0.0054, isp_site, False, "outpatients"),
        # About 1.5% of its elective patients come back as emergencies, within weeks.
        Segment(ISP, ICB, "emergency", "NEL", "emergency", "readmission", "emergency", "surgical", "emergency", 0.000135, isp_site, readmits_after=ISP),
        Segment(COMMUNITY_TRUST, ICB, "community", "COMM", None, "community", "community", "community", "none", 0.2555, (("CT-HQ", 0.6), ("CT-HUBS", 0.4)), planned_as="community"),
        Segment(MH, ICB, "mental-health", "MH", None, "mental-health", "mental-health", "mental-health", "none", 0.1200, (("MH-MAIN", 1.0),), planned_as="mental-health"),
    ]
    ooa_site = (("OOA-MAIN", 1.0),)
    segments += [
        Segment(OOA, ICB, "elective", ELECTIVE_POD, "elective", "elective", "elective", "elective", "elective", 0.00005, ooa_site, True),
        Segment(OOA, ICB, "emergency", "NEL", "emergency", "non-elective", "emergency", "emergency", "emergency", 0.00007, ooa_site),
        Segment(OOA, ICB, "outpatients", "OPFA", None, "op-first", "elective", "all", "none", 0.00012, ooa_site, True),
        Segment(OOA, ICB, "outpatients", "OPFU", None, "op-follow-up", "elective", "all", "none", 0.00016, ooa_site),
        Segment(OOA, ICB, "emergency", "AE", None, "a-and-e", "emergency", "all", "none", 0.00010, ooa_site),
    ]
    return segments


@dataclass
class Currencies:
    """Every currency the example draws, with one price each and its costs by setting."""

    codes: list[str]
    price: np.ndarray
    cost: np.ndarray
    cost_elective: np.ndarray
    cost_day_case: np.ndarray
    elective_share: np.ndarray
    mixes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _penny(value: float) -> float:
    """Half-up to the penny, as a price list states it."""
    return float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _currencies(rows: list[CostRow]) -> Currencies:
    """Prices (combined per setting group) and case-mix weights from the national unit costs."""
    by_code: dict[str, list[CostRow]] = defaultdict(list)
    for row in rows:
        by_code[row.currency].append(row)
    codes = sorted(by_code)
    n = len(codes)
    price, cost, cost_el, cost_dc, el_share, weight = (np.zeros(n) for _ in range(6))
    group: list[str] = []
    for i, code in enumerate(codes):
        settings = {r.service_code: r for r in by_code[code]}
        if set(settings) <= set(ELECTIVE):
            kind = "elective"
        elif set(settings) <= set(NON_ELECTIVE):
            kind = "non-elective"
        elif len(settings) == 1:
            kind = next(iter(settings))
        else:
            raise ValueError(f"currency {code} is costed in settings {sorted(settings)} that would need two prices")
        active = [r for r in settings.values() if r.activity > 0]
        activity = sum(r.activity for r in active)
        combined = sum(r.activity * r.unit_cost for r in active) / activity if activity else next(iter(settings.values())).unit_cost
        price[i] = _penny(combined)
        cost[i] = combined
        el = settings.get(ELECTIVE[0])
        dc = settings.get(ELECTIVE[1])
        cost_el[i] = el.unit_cost if el else combined
        cost_dc[i] = dc.unit_cost if dc else combined
        el_share[i] = (el.activity if el else 0) / activity if kind == "elective" and activity else 0.0
        weight[i] = activity
        group.append(kind)
    table = Currencies(codes, price, cost, cost_el, cost_dc, el_share)

    def mix(name: str, keep: Callable[[str, str], bool]) -> None:
        """Register a case mix: the kept currencies weighted by national activity."""
        index = np.array([i for i, code in enumerate(codes) if keep(code, group[i]) and weight[i] > 0], dtype=np.int64)
        if len(index) == 0:
            raise ValueError(f"no currencies for case mix {name}")
        table.mixes[name] = (index, weight[index] / weight[index].sum())

    mix("elective", lambda c, g: g == "elective")
    mix("isp-elective", lambda c, g: g == "elective" and c.startswith(ORTHOPAEDIC_AND_EYE_PREFIXES))
    mix("non-elective", lambda c, g: g == "non-elective" and not c.startswith("NZ"))
    mix("maternity", lambda c, g: g == "non-elective" and c.startswith("NZ"))
    mix("readmission", lambda c, g: g == "non-elective" and c.startswith(READMISSION_PREFIXES))
    mix("op-procedure", lambda c, g: g == OUTPATIENT_PROCEDURES)
    mix("op-first", lambda c, g: g == CONSULTANT_LED and c in ("WF01B", "WF01D", "WF02B"))
    mix("op-follow-up", lambda c, g: g == CONSULTANT_LED and c in ("WF01A", "WF01C", "WF02A"))
    mix("a-and-e", lambda c, g: g == EMERGENCY_CARE)
    mix("community", lambda c, g: g == COMMUNITY)
    mix("mental-health", lambda c, g: c == "MHCC")
    return table


@dataclass
class Model:
    """What every chunk draws from: segments, their labels, case mixes and seasons."""

    segments: list[Segment]
    currencies: Currencies
    providers: list[str]
    commissioners: list[str]
    services: list[str]
    pods: list[str]
    methods: list[str]
    sites: list[str]
    daily: dict[str, np.ndarray]

    @classmethod
    def build(cls) -> "Model":
        """The model from the segments and the shipped national unit costs."""
        segments = _segments()
        pods = sorted({p for s in segments for p in (s.pod.split("|") if s.pod == ELECTIVE_POD else [s.pod])})

        def labels(values: list[str]) -> list[str]:
            """Distinct labels in a stable order: integer codes index into them."""
            return sorted(set(values))

        return cls(
            segments=segments,
            currencies=_currencies(shipped_costs()),
            providers=labels([s.provider for s in segments]),
            commissioners=labels([s.commissioner for s in segments]),
            services=labels([s.service for s in segments]),
            pods=pods,
            methods=labels([s.admission_method for s in segments if s.admission_method]),
            sites=labels([name for s in segments for name, _ in s.sites]),
            daily={name: season.daily() for name, season in SEASONS.items()},
        )


@dataclass
class Tally:
    """Quantity and value at list price delivered by each segment in each month."""

    quantity: np.ndarray
    value: np.ndarray

    @classmethod
    def empty(cls, segments: int) -> "Tally":
        """Nothing delivered yet by any segment."""
        return cls(np.zeros((segments, 12)), np.zeros((segments, 12)))

    def add(self, other: "Tally") -> None:
        """Add another chunk's deliveries."""
        self.quantity += other.quantity
        self.value += other.value


def allocate(total: int, shares: list[float]) -> np.ndarray:
    """Whole counts in proportion to `shares` that sum exactly to `total` (largest remainder)."""
    weights = np.array(shares, dtype=np.float64)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def _decimal(units: np.ndarray, scale: int) -> pa.Array:
    """Whole minor units (e.g. pence for scale 2) as an exact DECIMAL(18, scale) column."""
    words = np.empty((len(units), 2), dtype="<i8")  # 128-bit two's complement, low word first
    words[:, 0] = units
    words[:, 1] = np.where(units < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(18, scale), len(units), [None, pa.py_buffer(words.tobytes())])


def _labels(index: np.ndarray, names: list[str]) -> pa.Array:
    """Label strings for integer codes; a negative code is a missing value."""
    return pc.take(pa.array(names, pa.string()), pa.array(index, pa.int32(), mask=index < 0))


def _identifiers(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """`P000012345`-style identifiers from integers, built in Arrow rather than per row."""
    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _dates(days: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Day offsets from 1 April 2025 as a date column."""
    return pa.array(YEAR_START + days.astype("timedelta64[D]"), pa.date32(), mask=missing)


ACTIVITY_SCHEMA = ACTIVITY.arrow_schema([c.name for c in ACTIVITY.columns if c.name != "compliant" and c.name not in SPELL_DAY_COLUMNS])


def _patients(rng: np.random.Generator, commissioner: str, size: int) -> np.ndarray:
    """Registered patients of the commissioner: each ICB's people have their own number range."""
    first = 0
    for name, persons in REGISTERED.items():
        if name == commissioner:
            return rng.integers(first, first + persons, size=size, dtype=np.int64)
        first += persons
    raise ValueError(f"no registered population for {commissioner}")


def _ages(rng: np.random.Generator, profile: str, size: int) -> np.ndarray:
    """Ages in whole years from a profile of age bands."""
    bands = AGES[profile]
    chosen = rng.choice(len(bands), size=size, p=np.array([b[2] for b in bands]) / sum(b[2] for b in bands))
    low = np.array([b[0] for b in bands])[chosen]
    high = np.array([b[1] for b in bands])[chosen]
    return (low + np.floor(rng.random(size) * (high - low + 1))).astype(np.int32)


def _stays(rng: np.random.Generator, stay: str, day_case: np.ndarray) -> np.ndarray:
    """Length of stay in days: 0 for day cases and attendances."""
    size = len(day_case)
    if stay == "elective":
        return np.where(day_case, 0, 1 + rng.poisson(2.2, size))
    if stay == "emergency":
        return np.where(rng.random(size) < 0.3, 0, np.minimum(rng.geometric(0.18, size), 60))
    if stay == "maternity":
        return np.minimum(rng.poisson(1.3, size), 10)
    return np.zeros(size, dtype=np.int64)


@dataclass
class Chunk:
    """Column arrays of one chunk of activity, as integer codes and day offsets."""

    provider: np.ndarray
    commissioner: np.ndarray
    service: np.ndarray
    pod: np.ndarray
    method: np.ndarray
    currency: np.ndarray
    site: np.ndarray
    start: np.ndarray
    end: np.ndarray
    referral: np.ndarray
    age: np.ndarray
    cost: np.ndarray
    quantity: np.ndarray
    patient: np.ndarray

    @classmethod
    def empty(cls, size: int) -> "Chunk":
        """Zeroed columns, each in the narrowest integer type that holds it."""
        types = {"currency": np.int32, "start": np.int32, "end": np.int32, "referral": np.int32, "age": np.int32,
                 "cost": np.int64, "quantity": np.int64, "patient": np.int64}
        return cls(*(np.zeros(size, dtype=types.get(name, np.int16)) for name in cls.__dataclass_fields__))

    def take(self, order: np.ndarray) -> "Chunk":
        """The rows reordered (every column alike)."""
        return Chunk(*(getattr(self, name)[order] for name in self.__dataclass_fields__))


def _fill(rng: np.random.Generator, model: Model, segment: Segment, chunk: Chunk, rows: slice, index_spells: np.ndarray | None) -> None:
    """Draw one segment's rows into `chunk[rows]`; readmissions follow `index_spells`."""
    size = rows.stop - rows.start
    if size == 0:
        return
    table = model.currencies
    codes, weights = table.mixes[segment.mix]
    currency = codes[rng.choice(len(codes), size=size, p=weights)]
    if segment.pod == ELECTIVE_POD:
        day_case = rng.random(size) >= table.elective_share[currency]
        pod = np.where(day_case, model.pods.index("DC"), model.pods.index("EL"))
        unit_cost = np.where(day_case, table.cost_day_case[currency], table.cost_elective[currency])
    else:
        day_case = np.zeros(size, dtype=bool)
        pod = np.full(size, model.pods.index(segment.pod))
        unit_cost = table.cost[currency]
    stay = _stays(rng, segment.stay, day_case)
    ages = _ages(rng, segment.ages, size)
    patients = _patients(rng, segment.commissioner, size)
    end = rng.choice(YEAR_DAYS, size=size, p=model.daily[segment.season])
    start = end - stay
    if segment.readmits_after is not None and index_spells is not None and len(index_spells):
        # Back as an emergency 2–45 days after an elective discharge; most within 30 days.
        spell = index_spells[rng.integers(0, len(index_spells), size=size)]
        patients = chunk.patient[spell]
        ages = chunk.age[spell].astype(np.int32)
        gap = np.where(rng.random(size) < 0.85, rng.integers(2, 31, size), rng.integers(31, 46, size))
        start = chunk.end[spell] + gap
        stay = np.minimum(stay, 5)
        end = start + stay
    chunk.provider[rows] = model.providers.index(segment.provider)
    chunk.commissioner[rows] = model.commissioners.index(segment.commissioner)
    chunk.service[rows] = model.services.index(segment.service)
    chunk.pod[rows] = pod
    chunk.method[rows] = model.methods.index(segment.admission_method) if segment.admission_method else -1
    chunk.currency[rows] = currency
    names = [model.sites.index(name) for name, _ in segment.sites]
    site_weights = np.array([w for _, w in segment.sites])
    chunk.site[rows] = np.array(names)[rng.choice(len(names), size=size, p=site_weights / site_weights.sum())]
    chunk.start[rows] = start
    chunk.end[rows] = end
    chunk.referral[rows] = start - (7 + np.round(rng.gamma(2.0, 40.0, size))).astype(np.int64) if segment.referred else NO_REFERRAL
    chunk.age[rows] = ages
    quantity = np.ones(size, dtype=np.int64)
    if segment.pod == "COMM":
        quantity = np.where(rng.random(size) < 0.02, 2, 1)  # double-handed visits: two care contacts
    chunk.quantity[rows] = quantity * 10**QUANTITY_SCALE
    noise = np.exp(rng.normal(-0.5 * 0.35**2, 0.35, size))
    chunk.cost[rows] = np.round(unit_cost * noise * quantity * 100).astype(np.int64)
    chunk.patient[rows] = patients


def _stop_clocks(chunk: Chunk, model: Model, seed: int, number: int) -> None:
    """Plant clock-stopping at CLOCK_STOPPER: from October, a share of its patients whose
    wait would run 18–24 weeks get a later referral date recorded, so the recorded wait is
    17–18 weeks (120–125 days). Drawn from a generator of its own, so every other column,
    and every other provider's referral dates, are exactly as they would be without it."""
    rng = np.random.default_rng([seed, 5, number])
    wait = chunk.start.astype(np.int64) - chunk.referral.astype(np.int64)
    due = np.flatnonzero(
        (chunk.provider == model.providers.index(CLOCK_STOPPER))
        & (chunk.referral != NO_REFERRAL)
        & (chunk.start >= CLOCK_STOPS_FROM)
        & (wait > RTT_LIMIT_DAYS)
        & (wait <= RTT_LIMIT_DAYS + CLOCK_STOP_REACH_DAYS)
    )
    stopped = due[rng.random(len(due)) < CLOCK_STOP_SHARE]
    chunk.referral[stopped] = chunk.start[stopped] - rng.integers(RTT_LIMIT_DAYS - 6, RTT_LIMIT_DAYS, len(stopped))


def _reported_waits(files: list[Path]) -> list[tuple[str, str, str, str]]:
    """What each provider publishes: % treated within 18 weeks by month of treatment, to one
    place, computed from the records it sends (so they reconcile, clock stops and all)."""
    import duckdb

    sources = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    with duckdb.connect() as con:
        rows = con.execute(
            f"""SELECT provider, strftime(date_trunc('month', start_date), '%Y-%m') AS month,
                       round(100.0 * count(*) FILTER (WHERE start_date - referral_date <= {RTT_LIMIT_DAYS}) / count(*), 1)
                FROM read_parquet([{sources}]) WHERE referral_date IS NOT NULL AND start_date >= DATE '{TERM[0]}'
                GROUP BY ALL ORDER BY provider, month"""
        ).fetchall()
    return [(provider, month, REPORTED_MEASURE, f"{percent:.1f}") for provider, month, percent in rows]


def generate_chunk(model: Model, seed: int, number: int, size: int, first_id: int) -> tuple[pa.Table, Tally]:
    """One chunk of activity rows (sorted by end date) and what each segment delivered."""
    rng = np.random.default_rng([seed, 1, number])
    counts = allocate(size, [s.share for s in model.segments])
    bounds = np.concatenate([[0], np.cumsum(counts)])
    chunk = Chunk.empty(size)
    readmissions = [i for i, s in enumerate(model.segments) if s.readmits_after]
    for i, segment in enumerate(model.segments):
        if i not in readmissions:
            _fill(rng, model, segment, chunk, slice(bounds[i], bounds[i + 1]), None)
    filled = np.ones(size, dtype=bool)
    for i in readmissions:
        filled[bounds[i] : bounds[i + 1]] = False
    latest_index_day = YEAR_DAYS - 1 - 45 - 5  # leaves room for the readmission inside the year
    for i in readmissions:
        provider = model.providers.index(model.segments[i].readmits_after or "")
        index_spells = np.flatnonzero(filled & (chunk.provider == provider) & (chunk.pod == model.pods.index("EL")) & (chunk.end <= latest_index_day))
        _fill(rng, model, model.segments[i], chunk, slice(bounds[i], bounds[i + 1]), index_spells)

    tally = Tally.empty(len(model.segments))
    month = MONTH_OF_DAY[np.clip(chunk.end, 0, YEAR_DAYS - 1)]
    units = chunk.quantity / 10**QUANTITY_SCALE
    value = units * model.currencies.price[chunk.currency]
    for i in range(len(model.segments)):
        part = slice(bounds[i], bounds[i + 1])
        tally.quantity[i] = np.bincount(month[part], weights=units[part], minlength=12)
        tally.value[i] = np.bincount(month[part], weights=value[part], minlength=12)

    chunk = chunk.take(np.lexsort((chunk.patient, chunk.provider, chunk.end)))
    _stop_clocks(chunk, model, seed, number)
    missing_referral = chunk.referral == NO_REFERRAL
    columns = {
        "activity_id": _identifiers("A", first_id + np.arange(size, dtype=np.int64), 10),
        "patient_id": _identifiers("P", chunk.patient, 9),
        "provider": _labels(chunk.provider, model.providers),
        "commissioner": _labels(chunk.commissioner, model.commissioners),
        "service": _labels(chunk.service, model.services),
        "currency": _labels(chunk.currency, model.currencies.codes),
        "pod": _labels(chunk.pod, model.pods),
        "start_date": _dates(chunk.start),
        "end_date": _dates(chunk.end),
        "quantity": _decimal(chunk.quantity, QUANTITY_SCALE),
        "referral_date": _dates(np.where(missing_referral, 0, chunk.referral), missing_referral),
        "admission_method": _labels(chunk.method, model.methods),
        "age": pa.array(chunk.age, pa.int64()),
        "cost": _decimal(chunk.cost, 2),
        "site": _labels(chunk.site, model.sites),
    }
    return pa.table(columns, schema=ACTIVITY_SCHEMA), tally


def chunk_sizes(rows: int) -> list[int]:
    """Near-equal chunks of at most CHUNK_ROWS rows that add up to `rows`."""
    count = max(1, math.ceil(rows / CHUNK_ROWS))
    return [rows * (k + 1) // count - rows * k // count for k in range(count)]


def write_activity(folder: Path, model: Model, rows: int, seed: int, progress: Progress | None) -> tuple[list[Path], Tally]:
    """Write `rows` activity rows as Parquet files, one per chunk; return them and the tally."""
    folder.mkdir(parents=True, exist_ok=True)
    total = Tally.empty(len(model.segments))
    files: list[Path] = []
    done = 0
    sizes = chunk_sizes(rows)
    for number, size in enumerate(sizes, start=1):
        table, tally = generate_chunk(model, seed, number, size, done + 1)
        path = folder / f"activity-{number:04d}.parquet"
        pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        total.add(tally)
        files.append(path)
        done += size
        if progress:
            progress(f"activity: {done:,} of {rows:,} rows")
    return files, total


@dataclass(frozen=True)
class ExampleSummary:
    """What write_example wrote: the folder, activity rows, contract ids and files."""

    root: Path
    activity_rows: int
    contracts: list[str]
    files: list[Path]


def _money(value: float | int | Decimal) -> str:
    """£48,000,000 or £302.11 for the prose in contract headers."""
    amount = Decimal(str(value))
    return f"£{amount:,.0f}" if amount == amount.to_integral_value() else f"£{amount:,.2f}"


def _yaml_number(value: int) -> str:
    """412_500_000: thousands separated, as people write amounts in contracts."""
    return f"{value:_d}"


def _header(text: str, break_on_hyphens: bool = True) -> str:
    """A plain-words comment block for the top of a contract file (identifiers with hyphens
    kept whole on one line when `break_on_hyphens` is false)."""
    lines = []
    for paragraph in textwrap.dedent(text).strip().split("\n\n"):
        lines += textwrap.wrap(" ".join(paragraph.split()), 88, break_on_hyphens=break_on_hyphens) + [""]
    return "\n".join(f"# {line}".rstrip() for line in lines[:-1]) + "\n"


@dataclass(frozen=True)
class Delivered:
    """What the generated year holds, which some terms and plans are set from."""

    tally: Tally
    segments: list[Segment]

    def total(self, provider: str, planned_as: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Monthly quantity and list-price value of a provider's segments (optionally of one plan line)."""
        quantity, value = np.zeros(12), np.zeros(12)
        for i, s in enumerate(self.segments):
            if s.provider == provider and (planned_as is None or s.planned_as == planned_as):
                quantity += self.tally.quantity[i]
                value += self.tally.value[i]
        return quantity, value


@dataclass(frozen=True)
class DerivedTerms:
    """Terms set from the generated year so the story holds at any size: the mental health
    baseline sits below the contacts delivered, so the year lands just above the band."""

    mh_price: Decimal
    mh_baseline: int

    @classmethod
    def of(cls, delivered: Delivered, currencies: Currencies) -> "DerivedTerms":
        """Terms for what was generated: the contact price and a baseline below delivery."""
        price = Decimal(f"{currencies.price[currencies.codes.index('MHCC')]:.2f}")
        return cls(price, int(round(delivered.total(MH)[0].sum() / MH_ABOVE_BASELINE)))


def _contract_files(terms: DerivedTerms) -> dict[str, str]:
    """The six contracts as YAML text, each with a plain-words header."""
    mh_price, mh_baseline = terms.mh_price, terms.mh_baseline
    ooa_average = sum(OOA_HISTORY) / len(OOA_HISTORY)
    term = f"term: {{start: {TERM[0]}, end: {TERM[1]}}}"
    files: dict[str, str] = {}

    files["acute-rfh.yaml"] = _header(f"""
        {ACUTE}: the main acute hospital trust for {ICB_NAME}, paid under the NHS aligned
        payment and incentive rules for 2025-26.

        A fixed element of {_money(ACUTE_FIXED)} a year, paid in equal twelfths, pays for
        emergency admissions, maternity, outpatient attendances, A&E and the planned elective
        work. A variable element pays 100% of the national price, times the trust's market
        forces factor ({ACUTE_MFF}), for elective spells, day cases and outpatient procedures
        above the planned value in data/plans/plans.csv, and takes back the same below it.

        {ICB_NAME} ({ICB}) co-ordinates the contract and {ASSOCIATE_NAME} ({ASSOCIATE}) is an
        associate: each pays its share of the fixed element ({1 - ASSOCIATE_SHARE:.0%} and
        {ASSOCIATE_SHARE:.0%}) and the variable element for its own patients.
    """) + f"""
id: {CONTRACT_OF[ACUTE]}
title: Acute hospital services, aligned payment and incentive
commissioners:
  - {{id: {ICB}, share: {1 - ASSOCIATE_SHARE:g}, coordinating: true}}
  - {{id: {ASSOCIATE}, share: {ASSOCIATE_SHARE:g}}}
provider: {ACUTE}
{term}
services:
  elective: {{pod: [EL, DC]}}
  outpatient-procedures: {{pod: [OPPROC]}}
  # Covered by the fixed element only:
  emergency: {{service: [emergency], pod: [NEL]}}
  maternity: {{service: [maternity]}}
  outpatients: {{pod: [OPFA, OPFU]}}
  a-and-e: {{pod: [AE]}}
components:
  - id: api
    title: Aligned payment and incentive
    kind: aligned_payment
    services: [elective, outpatient-procedures]   # what the variable element measures
    fixed: {_yaml_number(ACUTE_FIXED)}
    prices: {PRICE_LIST}
    mff: {ACUTE_MFF}
    variable_percent: 100    # planned value from data/plans/plans.csv
    unit: cases
"""

    files["isp-healthcare.yaml"] = _header(f"""
        {ISP}: an independent-sector hospital doing hip and knee replacements, other
        orthopaedic surgery and cataract operations for {ICB_NAME} patients.

        Cost per case: every spell, day case and outpatient attendance is paid at its price
        in prices/{PRICE_LIST}.csv (national prices, no market forces uplift).

        Emergency readmissions within 30 days of a discharge from the hospital are not paid
        for in the share judged avoidable by clinical review (25%). Maternity, cancer,
        transfers and children under 4 are excluded from the rule.
    """) + f"""
id: {CONTRACT_OF[ISP]}
title: Elective orthopaedics and ophthalmology, cost per case
commissioner: {ICB}
provider: {ISP}
{term}
services:
  elective: {{pod: [EL, DC], currency: [HN*, BZ*]}}   # orthopaedic (HN) and eye (BZ) HRGs
  outpatients: {{pod: [OPFA, OPFU]}}
  readmissions: {{pod: [NEL], admission_method: [emergency]}}
components:
  - id: cases
    title: Cost per case at national prices
    kind: activity
    prices: {PRICE_LIST}
    readmission: {{within_days: 30, avoidable_percent: 25}}
    unit: cases
"""

    files["community-ct.yaml"] = _header(f"""
        {COMMUNITY_TRUST}: the community health services trust: district nursing,
        therapies, intermediate care and children's community services.

        A block contract: {_money(COMMUNITY_BLOCK)} a year in equal monthly twelfths,
        whatever the number of contacts. Contacts are still reported in data/activity so
        both sides can see what the money bought.
    """) + f"""
id: {CONTRACT_OF[COMMUNITY_TRUST]}
title: Community health services, block
commissioner: {ICB}
provider: {COMMUNITY_TRUST}
{term}
services:
  community: {{service: [community]}}
components:
  - id: core
    title: Block
    kind: block
    annual: {_yaml_number(COMMUNITY_BLOCK)}
"""

    files["mh-trust.yaml"] = _header(f"""
        {MH}: community mental health team contacts, on cost and volume.

        Baseline {mh_baseline:,} contacts a year at {_money(mh_price)} each (the national
        average cost of a mental health care contact, 2023/24). Within 5% either side of the
        baseline every contact is paid in full; contacts above the band are paid at 50% of
        the price; nothing is paid for a shortfall below the band. Settled on the year to
        date each month, with the band pro rata.
    """) + f"""
id: {CONTRACT_OF[MH]}
title: Community mental health contacts, cost and volume
commissioner: {ICB}
provider: {MH}
{term}
services:
  mental-health: {{service: [mental-health], pod: [MH]}}
components:
  - id: mh
    title: Cost and volume
    kind: cost_and_volume
    baseline_volume: {_yaml_number(mh_baseline)}
    price: {mh_price}
    tolerance_percent: 5
    above_band_percent: 50
    below_band_percent: 0
    unit: contacts
"""

    files["ooa-trust.yaml"] = _header(f"""
        {OOA}: an acute trust outside the ICB's area that treats a few hundred of its
        residents a year, mostly people taken ill away from home.

        Too small to negotiate line by line: a low-volume block set at the average value of
        the last three years' activity (2022-23 {_money(OOA_HISTORY[0])}, 2023-24
        {_money(OOA_HISTORY[1])}, 2024-25 {_money(OOA_HISTORY[2])}: {_money(round(ooa_average, 2))}
        a year), paid in twelfths with no in-year adjustment.
    """) + f"""
id: {CONTRACT_OF[OOA]}
title: Out-of-area acute activity, low-volume block
commissioner: {ICB}
provider: {OOA}
{term}
components:
  - id: ooa
    title: Low-volume block
    kind: low_volume_block
    history: [{", ".join(_yaml_number(v) for v in OOA_HISTORY)}]   # 2022-23, 2023-24, 2024-25
"""

    rates = "\n".join(f'      "{band}": {rate}' for band, rate in CAPITATION_RATES.items())
    weights = "\n".join(f'      "{band}": {weight}' for band, weight in RISK_WEIGHTS.items())
    files["gp-fed.yaml"] = _header(f"""
        {GP}: the GP federation's extended-access and same-day service for everyone
        registered with a {ICB_NAME} practice.

        Capitation: a rate per registered person per month by age band, weighted up for the
        older bands, who use the service most. Registered persons by band and month are in
        data/population/population.csv.
    """) + f"""
id: {CONTRACT_OF[GP]}
title: Extended access and same-day primary care, capitation
commissioner: {ICB}
provider: {GP}
{term}
components:
  - id: capitation
    title: Capitation by age band
    kind: capitation
    rates:          # £ per registered person per month
{rates}
    risk_weights:
{weights}
"""
    return files


def _plans(delivered: Delivered, terms: DerivedTerms) -> list[tuple[str, str, str, int, str]]:
    """Monthly planned quantity and value by contract and service.

    Plans are spread over the year by each service's expected seasonal profile: the acute
    trust's elective plan sits a little below what it delivers, so its variable element is
    positive; the others are there for monitoring.
    """
    rows: list[tuple[str, str, str, int, str]] = []

    def spread(contract: str, service: str, season: str, quantity: float, value: float) -> None:
        """Add an annual plan spread over the months by the season's profile."""
        rows.extend(spread_plan(contract, service, season, quantity, value))

    mff = float(ACUTE_MFF)
    for service in ("elective", "outpatient-procedures"):
        quantity, value = delivered.total(ACUTE, planned_as=service)
        spread(CONTRACT_OF[ACUTE], service, "elective", quantity.sum() * ACUTE_PLAN_FACTOR, value.sum() * mff * ACUTE_PLAN_FACTOR)
    for service in ("elective", "outpatients"):
        quantity, value = delivered.total(ISP, planned_as=service)
        spread(CONTRACT_OF[ISP], service, "elective", quantity.sum() * ISP_PLAN_FACTOR, value.sum() * ISP_PLAN_FACTOR)
    quantity, _ = delivered.total(COMMUNITY_TRUST)
    spread(CONTRACT_OF[COMMUNITY_TRUST], "community", "community", quantity.sum(), COMMUNITY_BLOCK)
    spread(CONTRACT_OF[MH], "mental-health", "mental-health", terms.mh_baseline, terms.mh_baseline * float(terms.mh_price))
    return rows


def _payment_plans(plans: list[tuple[str, str, str, int, str]], population: list[tuple[str, str, str, int]]) -> list[tuple[str, str, str, str]]:
    """The ICB's financial plan: the payments it plans for each contract and component by
    month (contract, component, month, planned_value), set at the start of the year, so every
    contract has a plan and plan against outturn means the same for fixed and variable money.

    Blocks and the acute trust's fixed element in twelfths, as the contracts pay them; its
    variable element at nothing (delivering the planned activity would pay nothing on it);
    the independent-sector hospital and the mental health trust at their activity plans'
    value; capitation at April's registered list all year (so list growth shows as a small
    adverse variance); incentives at the whole pot in the months they settle; the alliance's
    risk share at nothing."""
    rows: list[tuple[str, str, str, str]] = []

    def twelfths(contract: str, component: str, annual: Decimal) -> None:
        rows.extend((contract, component, month, f"{amount:.2f}") for month, amount in zip(MONTHS, split_exactly(annual, [Decimal(1)] * 12)))

    def monthly(contract: str, component: str, amounts: dict[str, Decimal]) -> None:
        rows.extend((contract, component, month, f"{amounts.get(month, Decimal(0)):.2f}") for month in MONTHS)

    twelfths(CONTRACT_OF[COMMUNITY_TRUST], "core", Decimal(COMMUNITY_BLOCK))
    twelfths(CONTRACT_OF[ACUTE], "api.fixed", Decimal(ACUTE_FIXED))
    monthly(CONTRACT_OF[ACUTE], "api.variable", {})
    for contract, component in ((CONTRACT_OF[ISP], "cases"), (CONTRACT_OF[MH], "mh")):
        valued: dict[str, Decimal] = defaultdict(Decimal)
        for planned_contract, _, month, _, value in plans:
            if planned_contract == contract:
                valued[month] += Decimal(value)
        monthly(contract, component, valued)
    twelfths(CONTRACT_OF[OOA], "ooa", (Decimal(sum(OOA_HISTORY)) / len(OOA_HISTORY)).quantize(Decimal("0.01"), ROUND_HALF_UP))
    april = {band: persons for commissioner, month, band, persons in population if commissioner == ICB and month == MONTHS[0]}

    def per_head(rates: dict[str, str], weights: dict[str, str]) -> Decimal:
        return sum((Decimal(rate) * Decimal(weights.get(band, "1")) * april[band] for band, rate in rates.items()), Decimal(0)).quantize(Decimal("0.01"), ROUND_HALF_UP)

    monthly(CONTRACT_OF[GP], "capitation", dict.fromkeys(MONTHS, per_head(CAPITATION_RATES, RISK_WEIGHTS)))
    twelfths("MSK-2025", "core", Decimal(partnerships.MSK_CORE))
    monthly("MSK-2025", "outcomes", {MONTHS[-1]: Decimal(partnerships.MSK_CORE) * Decimal("0.05")})
    monthly("OPA-2025", "budget", dict.fromkeys(MONTHS, per_head(partnerships.OVER_65_RATES, {})))
    monthly("OPA-2025", "risk", {})
    monthly("OPA-2025", "independence", dict.fromkeys(MONTHS[2::3], Decimal(partnerships.INDEPENDENCE_POT) / 4))
    return rows


def spread_plan(contract: str, service: str, season: str, quantity: float, value: float) -> list[tuple[str, str, str, int, str]]:
    """An annual plan as monthly plan rows spread by the season's profile, whole units and
    pounds: (contract, service, month, planned_quantity, planned_value)."""
    profile = SEASONS[season].monthly()
    return [(contract, service, month, int(round(quantity * weight)), f"{round(value * weight)}.00") for month, weight in zip(MONTHS, profile)]


def _population(seed: int, registered: dict[str, int] = REGISTERED) -> list[tuple[str, str, str, int]]:
    """Registered persons by commissioner, month and age band, growing slowly over the year."""
    rng = np.random.default_rng([seed, 2])
    rows: list[tuple[str, str, str, int]] = []
    for commissioner, persons in registered.items():
        for band, share in BAND_SHARES.items():
            base = persons * share
            drift = np.cumprod(1 + LIST_GROWTH_PER_MONTH + rng.normal(0, 0.0002, 12))
            for month, factor in zip(MONTHS, drift):
                rows.append((commissioner, month, band, int(round(base * factor))))
    return rows


def _csv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> Path:
    """Write a small CSV with Unix line ends (byte-stable across platforms)."""
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _readme() -> str:
    """The workspace's README: what each contract is and the commands to run."""
    return textwrap.dedent(f"""\
        # {ICB_NAME}: example carecontracts workspace, 2025-26

        {ICB_NAME} ({ICB}) buys care from six providers; every term is in contracts/:

        - acute-rfh.yaml, {CONTRACT_OF[ACUTE]}: acute trust {ACUTE} on aligned payment and incentive (fixed element plus elective variable at 100% of price × MFF), shared with {ASSOCIATE} as associate (20%).
        - isp-healthcare.yaml, {CONTRACT_OF[ISP]}: independent-sector hospital {ISP}, cost per case at national prices, avoidable 30-day emergency readmissions not paid.
        - community-ct.yaml, {CONTRACT_OF[COMMUNITY_TRUST]}: community trust {COMMUNITY_TRUST} on a {_money(COMMUNITY_BLOCK)} block.
        - mh-trust.yaml, {CONTRACT_OF[MH]}: mental health trust {MH} on cost and volume (±5% band, 50% above it).
        - ooa-trust.yaml, {CONTRACT_OF[OOA]}: out-of-area acute trust {OOA} on a low-volume block (three-year average).
        - gp-fed.yaml, {CONTRACT_OF[GP]}: GP federation {GP} on capitation by age band, risk weighted.

        Data: data/activity (patient-level activity, April 2025 – March 2026), data/plans (plans.csv: planned activity;
        payments.csv: the ICB's financial plan, the payments planned for every contract and component), data/population;
        prices/{PRICE_LIST}.csv holds national average unit costs 2023/24 (NHS England, Open Government Licence v3.0).
        prices/{SPELL_BOOK}.xlsx is a prices workbook in the NHS Payment Scheme's published layout for `spell` components,
        with made-up prices for a handful of HRGs: illustrative only, not the published prices (no example contract uses it yet).

            carecontracts check                              # validate contracts and data
            carecontracts load                               # load data/ and prices/ into .carecontracts/
            carecontracts pay 2025-11                        # statements for November (or a range, or `year`)
            carecontracts explain {CONTRACT_OF[MH]} mh 2025-11          # the terms and tallies behind a line
            carecontracts plan-vs-actual 2025-04..2025-11    # planned payments against the statements, per component
            carecontracts export statements.xlsx             # the last run's lines as .xlsx, .csv or .parquet
            carecontracts audit --html audit.html            # can the waiting times be believed? (data/reported holds the published figures)
            carecontracts audit --file data/published/{published.RTT_EXAMPLE} --where "RTT Part Type=Part_1A" --group provider
            carecontracts audit --file data/published/{published.AE_EXAMPLE} --threshold 95 --above --group provider

        The month's cycle (data/cycle holds a resubmission and challenged activity):

            carecontracts close 2025-06                      # April to June kept as issued
            carecontracts load --month 2025-05 data/cycle/isp-healthcare-2025-05-resubmission.csv
            carecontracts challenge raise ACUTE-2025 2025-06 --reason duplicate --activity-file data/cycle/acute-rfh-2025-06-challenged.csv
            carecontracts challenge uphold CH-0001
            carecontracts pay year                           # the differences are adjustments in July
            carecontracts invoice record ISP-2025 2025-06 1234567.89
            carecontracts invoice list                       # each invoice beside the statement
            carecontracts history                            # every submission, close, invoice and challenge
        """)


def _prices(currencies: Currencies) -> list[tuple[str, str, str, str]]:
    """One price per currency for the whole year."""
    return [(code, f"{price:.2f}", TERM[0], TERM[1]) for code, price in zip(currencies.codes, currencies.price)]


def write_settings(root: Path, comment: str, name: str, budgets: dict[str, int], readme: str) -> list[Path]:
    """Write a generated workspace's carecontracts.toml (the 2025-26 year on DuckDB, each
    commissioner's budget), .gitignore and README.md; return their paths."""
    config = root / "carecontracts.toml"
    config.write_text(
        f"# {comment}\n"
        f'name = "{name}"\nfinancial_year = "2025-26"\nfinancial_year_start_month = 4\n'
        'currency = "GBP"\nbackend = "duckdb"\n\n'
        "# Each commissioner's budget for these contracts in the year (forecast compares outturn with it).\n"
        "[budgets]\n" + "".join(f"{commissioner} = {_yaml_number(amount)}\n" for commissioner, amount in budgets.items()),
        encoding="utf-8",
    )
    gitignore = root / ".gitignore"
    gitignore.write_text(".carecontracts/\n", encoding="utf-8")
    readme_path = root / "README.md"
    readme_path.write_text(readme, encoding="utf-8")
    return [config, gitignore, readme_path]


def write_example(
    root: Path,
    rows: int = 1_000_000,
    seed: int = 20250401,
    progress: Callable[[str], None] | None = None,
) -> ExampleSummary:
    """Write the example workspace at `root` (new or empty): contracts, prices, a year of
    activity, plans and population, all from `seed`."""
    root = Path(root)
    if rows < 1:
        raise ValueError(f"rows must be at least 1, not {rows}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists and is not an empty folder; choose a new or empty folder")
    root.mkdir(parents=True, exist_ok=True)
    model = Model.build()
    written: list[Path] = []

    activity_files, tally = write_activity(root / "data" / "activity", model, rows, seed, progress)
    written += activity_files
    written += write_cycle_files(root)
    delivered = Delivered(tally, model.segments)

    if progress:
        progress("contracts, prices, plans and population")
    terms = DerivedTerms.of(delivered, model.currencies)
    for name, text in _contract_files(terms).items():
        path = root / "contracts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"), encoding="utf-8")
        written.append(path)
    listed = _prices(model.currencies)
    partnership_files, extra_prices = partnerships.write(root, seed, {code: price for code, price, _, _ in listed}, _population(seed), _header)
    written += partnership_files
    written.append(write_prices_workbook(root / "prices" / f"{SPELL_BOOK}.xlsx"))
    written.append(_csv(root / "prices" / f"{PRICE_LIST}.csv", ("currency", "unit_price", "valid_from", "valid_to"), listed + extra_prices))
    activity_plans = _plans(delivered, terms)
    written.append(_csv(root / "data" / "plans" / "plans.csv", ("contract", "service", "month", "planned_quantity", "planned_value"), activity_plans))
    written.append(_csv(root / "data" / "plans" / "payments.csv", ("contract", "component", "month", "planned_value"), _payment_plans(activity_plans, _population(seed))))
    written.append(_csv(root / "data" / "population" / "population.csv", ("commissioner", "month", "band", "persons"), _population(seed)))
    written.append(_csv(root / "data" / "reported" / "waits.csv", ("provider", "month", "measure", "percent"), _reported_waits(activity_files)))
    written += published.write_example_files(root / "data" / "published", seed)

    written += write_settings(
        root, f"The carecontracts example workspace (seed {seed}, {rows:,} activity rows).", f"{ICB_NAME} example",
        {ICB: 490_000_000, ASSOCIATE: 84_000_000}, _readme(),
    )
    return ExampleSummary(
        root=root,
        activity_rows=rows,
        contracts=[CONTRACT_OF[p] for p in (ACUTE, ISP, COMMUNITY_TRUST, MH, OOA, GP)] + ["MSK-2025", "OPA-2025"],
        files=sorted(p.relative_to(root) for p in written),
    )
