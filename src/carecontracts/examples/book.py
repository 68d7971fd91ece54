"""A whole contract book: N contracts across many ICBs and providers, for 2025-26.

An Integrated Care Board holds a book of 100–400 contracts; the national view is over
10,000. `write_book` writes a seeded, deterministic workspace holding such a book: one ICB
per ~200 contracts (at least two), providers of every sort (acute, mental health and
community trusts, independent-sector hospitals, hospices, charities, GP-led services, prime
contractors with sub-contractors, alliances with members, integrated care providers), every
component kind of the contract language in realistic proportions, and the price lists,
plans, population and outcomes those kinds read.

The book is planned first (who holds which contract, with which lines of business and how
big), then the year's activity is drawn in chunks of vectorised numpy draws and written as
Parquet, then every contract's money terms are set from what was drawn, so the terms fit the
activity at any size (a cost and volume baseline near the contacts delivered, a block near
the value of what it covers). Each (provider, commissioner) pair belongs to one contract
only, so no activity is priced twice.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from carecontracts.data.schemas import ACTIVITY, OUTCOMES, SPELL_DAY_COLUMNS
from carecontracts.examples.generate import (
    AGES,
    BAND_SHARES,
    CAPITATION_RATES,
    CHUNK_ROWS,
    DAYS,
    ELECTIVE_POD,
    MONTH_OF_DAY,
    MONTHS,
    NO_REFERRAL,
    PRICE_LIST,
    QUANTITY_SCALE,
    ROW_GROUP_ROWS,
    SEASONS,
    TERM,
    YEAR_DAYS,
    YEAR_START,
    Currencies,
    _ages,
    _csv,
    _currencies,
    _dates,
    _decimal,
    _header,
    _identifiers,
    _labels,
    _money,
    _population,
    _prices,
    _stays,
    _yaml_number,
    allocate,
    chunk_sizes,
    spread_plan,
    write_settings,
)
from carecontracts.examples.national_costs import shipped_costs

Progress = Callable[[str], None]

CONTRACTS_PER_ICB = 200
ROWS_PER_CONTRACT = 500  # the default: 25,000 activity rows per 50 contracts
DEFAULT_SEED = 20250401
LOCAL_LIST = "local-2025"
PRICE_CHANGE = "2025-10-01"  # local prices rise 2.5% from October
ACTIVITY_COLUMNS = [c.name for c in ACTIVITY.columns if c.name != "site" and c.name not in SPELL_DAY_COLUMNS]
ACTIVITY_SCHEMA = ACTIVITY.arrow_schema(ACTIVITY_COLUMNS)
LOCAL_COST_SHARE = 0.93  # a local service's unit cost, as a share of its price

# Local prices (April–September, October–March): services with no national price.
LOCAL_PRICES: dict[str, tuple[str, str]] = {
    "MSK-CONTACT": ("52.00", "53.30"),
    "HOSPICE-BED-DAY": ("412.00", "422.30"),
    "HOSPICE-DAY-CARE": ("168.00", "172.20"),
    "TALKING-THERAPY": ("96.00", "98.40"),
    "SOCIAL-PRESCRIBING": ("38.50", "39.46"),
    "GP-APPOINTMENT": ("41.00", "42.03"),
    "GP-MINOR-SURGERY": ("118.00", "120.95"),
    "IC-BED-DAY": ("265.00", "271.63"),
    "IC-HOME-VISIT": ("58.00", "59.45"),
}
LOCAL_MIXES: dict[str, tuple[tuple[str, float], ...]] = {
    "msk": (("MSK-CONTACT", 1.0),),
    "hospice-bed": (("HOSPICE-BED-DAY", 1.0),),
    "hospice-day": (("HOSPICE-DAY-CARE", 1.0),),
    "talking": (("TALKING-THERAPY", 1.0),),
    "social": (("SOCIAL-PRESCRIBING", 1.0),),
    "gp": (("GP-APPOINTMENT", 1.0),),
    "minor-surgery": (("GP-MINOR-SURGERY", 1.0),),
    "intermediate-care": (("IC-BED-DAY", 0.35), ("IC-HOME-VISIT", 0.65)),
}

# The terms a contract can run for: the whole year, starting part-way, or ending early.
TERMS: tuple[tuple[str, str], ...] = (TERM, ("2025-07-01", "2026-03-31"), ("2025-10-01", "2026-03-31"), ("2025-04-01", "2025-12-31"))


@dataclass(frozen=True)
class Line:
    """A line of business: one kind of activity a provider delivers, and how it is drawn."""

    service: str
    pod: str
    mix: str
    season: str
    ages: str
    stay: str = "none"
    method: str | None = None
    referred: bool = False
    bed_days: bool = False  # quantity is the stay in days


LINES: dict[str, Line] = {
    "elective": Line("elective", ELECTIVE_POD, "elective", "elective", "elective", "elective", "elective", True),
    "isp-elective": Line("elective", ELECTIVE_POD, "isp-elective", "elective", "surgical", "elective", "elective", True),
    "msk-surgery": Line("msk-surgery", ELECTIVE_POD, "isp-elective", "elective", "surgical", "elective", "elective", True),
    "op-procedure": Line("outpatient-procedures", "OPPROC", "op-procedure", "elective", "all", referred=True),
    "op-first": Line("outpatients", "OPFA", "op-first", "elective", "all", referred=True),
    "op-follow-up": Line("outpatients", "OPFU", "op-follow-up", "elective", "all"),
    "emergency": Line("emergency", "NEL", "non-elective", "emergency", "emergency", "emergency", "emergency"),
    "maternity": Line("maternity", "NEL", "maternity", "maternity", "maternity", "maternity", "maternity"),
    "hip-fracture": Line("hip-fracture", "NEL", "non-elective", "emergency", "older-people", "emergency", "emergency"),
    "a-and-e": Line("a-and-e", "AE", "a-and-e", "emergency", "all"),
    "urgent-care": Line("urgent-care", "UTC", "a-and-e", "emergency", "all"),
    "community": Line("community", "COMM", "community", "community", "community"),
    "mental-health": Line("mental-health", "MH", "mental-health", "mental-health", "mental-health"),
    "msk": Line("msk", "COMM", "msk", "community", "community"),
    "hospice-inpatient": Line("hospice-inpatient", "BED", "hospice-bed", "community", "older-people", bed_days=True),
    "hospice-day": Line("hospice-day-care", "DAY", "hospice-day", "community", "older-people"),
    "talking-therapies": Line("talking-therapies", "COMM", "talking", "mental-health", "mental-health"),
    "social-prescribing": Line("social-prescribing", "COMM", "social", "community", "community"),
    "same-day": Line("same-day-access", "GP", "gp", "community", "all"),
    "minor-surgery": Line("minor-surgery", "GP", "minor-surgery", "elective", "all", referred=True),
    "intermediate-care": Line("older-people", "IC", "intermediate-care", "community", "older-people"),
}

# Provider kinds: a label, and how often a contract of this kind goes to a provider that
# already holds a contract with another ICB (trusts and hospital chains serve several).
KINDS: dict[str, tuple[str, float]] = {
    "ACUTE": ("acute hospital trust", 0.5),
    "ISH": ("independent-sector hospital", 0.4),
    "COMM": ("community health trust", 0.2),
    "MHT": ("mental health trust", 0.3),
    "HOSPICE": ("hospice", 0.05),
    "CHARITY": ("charity", 0.1),
    "GPLED": ("GP-led service", 0.05),
    "PRIME": ("prime contractor", 0.0),
    "ALLIANCE": ("alliance", 0.0),
    "LA": ("council adult social care", 0.0),
    "ICP": ("integrated care provider", 0.0),
}


@dataclass(frozen=True)
class Form:
    """A kind of contract in the book: its share of contracts, its typical size (relative
    activity), the provider kind holding it and its lines of business with their shares."""

    weight: float
    size: float
    kind: str
    lines: tuple[tuple[str, float], ...]


FORMS: dict[str, Form] = {
    "acute": Form(0.06, 40, "ACUTE", (("elective", 0.08), ("op-procedure", 0.04), ("op-first", 0.12), ("op-follow-up", 0.26), ("emergency", 0.07),
                                     ("maternity", 0.015), ("hip-fracture", 0.005), ("a-and-e", 0.15))),
    "independent": Form(0.11, 5, "ISH", (("isp-elective", 0.45), ("op-first", 0.25), ("op-follow-up", 0.30))),
    "community": Form(0.14, 12, "COMM", (("community", 0.85), ("msk", 0.15))),
    "mental-health": Form(0.05, 10, "MHT", (("mental-health", 0.8), ("talking-therapies", 0.2))),
    "hospice": Form(0.10, 1, "HOSPICE", (("hospice-inpatient", 0.4), ("hospice-day", 0.6))),
    "charity": Form(0.20, 0.4, "CHARITY", (("social-prescribing", 0.7), ("talking-therapies", 0.3))),
    "gp-led": Form(0.12, 2, "GPLED", (("same-day", 0.85), ("minor-surgery", 0.15))),
    "out-of-area": Form(0.07, 0.3, "ACUTE", (("elective", 0.3), ("emergency", 0.3), ("op-first", 0.2), ("a-and-e", 0.2))),
    "urgent-care": Form(0.05, 3, "GPLED", (("urgent-care", 1.0),)),
    "prime": Form(0.04, 5, "PRIME", ()),
    "alliance": Form(0.03, 6, "ALLIANCE", ()),
    "accountable-care": Form(0.03, 12, "ICP", (("community", 0.55), ("emergency", 0.2), ("a-and-e", 0.25))),
}

# The first contracts of every book, so a book of 14 or more holds every component kind;
# after them, forms are drawn by their weights. (form, options forced on)
STARTERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("acute", frozenset({"shared", "topup", "withhold", "dated-mff"})),
    ("community", frozenset()),
    ("independent", frozenset({"readmission", "topup", "quality"})),
    ("mental-health", frozenset()),
    ("out-of-area", frozenset()),
    ("urgent-care", frozenset()),
    ("gp-led", frozenset({"capitation"})),
    ("prime", frozenset()),
    ("alliance", frozenset({"risk"})),
    ("alliance", frozenset({"gain"})),
    ("accountable-care", frozenset({"losses"})),
    ("hospice", frozenset({"quarterly"})),
    ("charity", frozenset({"referrals", "quality", "late-start"})),
    ("gp-led", frozenset()),
)

# Sub-contractors of a prime and members of an alliance: (role, provider kind, line, share).
PRIME_SUBS: tuple[tuple[str, str, str, float], ...] = (("ORTHO", "ISH", "msk-surgery", 0.35), ("PHYSIO", "GPLED", "msk", 0.5), ("SUPPORT", "CHARITY", "social-prescribing", 0.15))
ALLIANCE_MEMBERS: tuple[tuple[str, str], ...] = (("ACUTE", "0.40"), ("COMM", "0.35"), ("LA", "0.15"), ("CHARITY", "0.10"))
HOST_SHARES = ("0.8", "0.75", "0.7", "0.6")


@dataclass(frozen=True)
class Stream:
    """Activity one provider delivers for one commissioner on one line of business, under
    one agreement (a contract or sub-contract), with its relative volume."""

    agreement: str
    line: str
    provider: str
    commissioner: str
    weight: float
    term: int
    compliant: float = 0.0


@dataclass
class Plan:
    """One contract of the book as planned before its activity is drawn."""

    number: int
    form: str
    id: str
    commissioners: list[tuple[str, str]]  # (ICB, share as written)
    provider: str
    term: int
    size: float
    options: frozenset[str]
    subcontracts: list[tuple[str, str, str]] = field(default_factory=list)  # (id, role, provider)
    members: list[tuple[str, str]] = field(default_factory=list)  # (provider, share)

    @property
    def icb(self) -> str:
        """The co-ordinating (host) commissioner."""
        return self.commissioners[0][0]


class Providers:
    """Provider ids by kind, and which (provider, commissioner) pairs a contract already holds."""

    def __init__(self, rng: np.random.Generator) -> None:
        """Start with no providers."""
        self.rng = rng
        self.by_kind: dict[str, list[str]] = defaultdict(list)
        self.taken: set[tuple[str, str]] = set()

    def pick(self, kind: str, commissioners: list[str]) -> str:
        """A provider of `kind` holding no contract yet with any of the commissioners: an
        existing one (as often as the kind serves several ICBs) or a new one."""
        pool = self.by_kind[kind]
        if pool and self.rng.random() < KINDS[kind][1]:
            for _ in range(4):
                candidate = pool[int(self.rng.integers(len(pool)))]
                if all((candidate, c) not in self.taken for c in commissioners):
                    return self._take(candidate, commissioners)
        name = f"{kind}-{len(pool) + 1:04d}"
        pool.append(name)
        return self._take(name, commissioners)

    def _take(self, provider: str, commissioners: list[str]) -> str:
        """Mark the pairs as held and return the provider."""
        self.taken.update((provider, c) for c in commissioners)
        return provider


def icb_count(contracts: int) -> int:
    """ICBs in a book: one per ~200 contracts, at least two."""
    return max(2, round(contracts / CONTRACTS_PER_ICB))


def _options(form: str, rng: np.random.Generator) -> frozenset[str]:
    """The optional terms a drawn contract of this form carries."""
    chances = {
        "acute": {"shared": 0.4, "topup": 0.5, "withhold": 0.08, "dated-mff": 0.3, "quality": 0.9},
        "independent": {"readmission": 0.5, "topup": 0.25, "quality": 0.6, "withhold": 0.04},
        "community": {"quality": 0.95, "withhold": 0.04},
        "mental-health": {"shared": 0.3, "quality": 0.95},
        "hospice": {"quarterly": 0.3, "quality": 0.95},
        "charity": {"referrals": 0.95, "quality": 0.95, "late-start": 0.1, "early-end": 0.05},
        "gp-led": {"capitation": 0.25, "quality": 0.95},
        "out-of-area": {},
        "urgent-care": {"generous": 0.5},
        "prime": {"quality-of-life": 0.7},
        "alliance": {"risk": 0.65, "gain": 0.35, "admissions": 0.5},
        "accountable-care": {"losses": 0.5},
    }[form]
    drawn = {name for name, chance in chances.items() if rng.random() < chance}
    if form == "alliance":
        drawn -= {"gain"} if "risk" in drawn else {"risk"}
        drawn |= set() if drawn & {"risk", "gain"} else {"gain"}
    return frozenset(drawn)


def plan_book(contracts: int, seed: int, icbs: list[str]) -> tuple[list[Plan], list[Stream]]:
    """Every contract of the book (form, parties, size, options) and its activity streams."""
    rng = np.random.default_rng([seed, 100])
    providers = Providers(rng)
    names = list(FORMS)
    weights = np.array([FORMS[n].weight for n in names])
    drawn = rng.choice(len(names), size=contracts, p=weights / weights.sum())
    plans: list[Plan] = []
    streams: list[Stream] = []
    for number in range(contracts):
        if number < len(STARTERS):
            form, forced = STARTERS[number]
            options = _options(form, rng) - ({"risk", "gain"} if form == "alliance" else set()) | forced
        else:
            form = names[int(drawn[number])]
            options = _options(form, rng)
        spec = FORMS[form]
        host = icbs[int(rng.integers(len(icbs)))]
        commissioners = [(host, "1")]
        if "shared" in options:
            share = HOST_SHARES[int(rng.integers(len(HOST_SHARES)))]
            other = icbs[(icbs.index(host) + 1) % len(icbs)]
            commissioners = [(host, share), (other, str(Decimal(1) - Decimal(share)))]
        ids = [c for c, _ in commissioners]
        provider = providers.pick(spec.kind, ids)
        term = 1 if "late-start" in options else 3 if "early-end" in options else 0
        if "late-start" in options and rng.random() < 0.5:
            term = 2
        size = float(spec.size * rng.lognormal(0, 0.6))
        plan = Plan(number, form, f"{host}-{provider}", commissioners, provider, term, size, options)
        plans.append(plan)

        def add(agreement: str, line: str, who: str, weight: float, compliant: float = 0.0) -> None:
            """Streams of a line for each of the plan's commissioners, by share."""
            for icb, share in commissioners:
                streams.append(Stream(agreement, line, who, icb, weight * float(share), term, compliant))

        for line, part in spec.lines:
            compliant = 0.0
            if "topup" in options and (line == "hip-fracture" or (form == "independent" and line == "isp-elective")):
                compliant = 0.7 if line == "hip-fracture" else 0.55
            add(plan.id, line, provider, size * part, compliant)
        if form == "prime":
            for role, kind, line, part in PRIME_SUBS:
                sub = providers.pick(kind, ids)
                plan.subcontracts.append((f"{plan.id}-{role}", role, sub))
                add(f"{plan.id}-{role}", line, sub, size * part)
        if form == "alliance":
            for kind, member_share in ALLIANCE_MEMBERS:
                member = providers.pick(kind, ids)
                plan.members.append((member, member_share))
                add(plan.id, "intermediate-care", member, size * float(member_share))
    return plans, streams


@dataclass
class BookCurrencies:
    """The national currencies (from the shipped unit costs) and the local ones: each
    currency's price list, price by month, unit costs, and the case mixes lines draw from."""

    codes: list[str]
    lists: list[str]
    price: np.ndarray  # (currencies, 12) £ by month, for setting terms only
    cost: np.ndarray
    cost_elective: np.ndarray
    cost_day_case: np.ndarray
    elective_share: np.ndarray
    mixes: dict[str, tuple[np.ndarray, np.ndarray]]
    national: Currencies

    @classmethod
    def build(cls) -> "BookCurrencies":
        """National prices and mixes from the example's table, local ones appended."""
        national = _currencies(shipped_costs())
        local = list(LOCAL_PRICES)
        n, k = len(national.codes), len(local)
        change = MONTHS.index(PRICE_CHANGE[:7])
        local_price = np.array([[float(LOCAL_PRICES[c][0])] * change + [float(LOCAL_PRICES[c][1])] * (12 - change) for c in local])
        price = np.vstack([np.repeat(national.price[:, None], 12, axis=1), local_price])
        local_cost = local_price.mean(axis=1) * LOCAL_COST_SHARE
        mixes = dict(national.mixes)
        for name, parts in LOCAL_MIXES.items():
            index = np.array([n + local.index(code) for code, _ in parts], dtype=np.int64)
            share = np.array([w for _, w in parts])
            mixes[name] = (index, share / share.sum())
        return cls(
            codes=national.codes + local,
            lists=[PRICE_LIST] * n + [LOCAL_LIST] * k,
            price=price,
            cost=np.concatenate([national.cost, local_cost]),
            cost_elective=np.concatenate([national.cost_elective, local_cost]),
            cost_day_case=np.concatenate([national.cost_day_case, local_cost]),
            elective_share=np.concatenate([national.elective_share, np.zeros(k)]),
            mixes=mixes,
            national=national,
        )

    def list_price(self, code: str) -> str:
        """The national list price of a currency, as written in the price list."""
        return f"{self.national.price[self.national.codes.index(code)]:.2f}"


@dataclass
class StreamTable:
    """The streams as integer-coded numpy columns, for drawing rows without a loop per row."""

    weight: np.ndarray
    provider: np.ndarray
    commissioner: np.ndarray
    line: np.ndarray
    term: np.ndarray
    compliant: np.ndarray
    providers: list[str]
    commissioners: list[str]
    lines: list[str]

    @classmethod
    def of(cls, streams: list[Stream], icbs: list[str]) -> "StreamTable":
        """Code every stream's provider, commissioner and line."""
        providers = sorted({s.provider for s in streams})
        lines = list(LINES)
        where = {name: i for i, name in enumerate(providers)}
        return cls(
            weight=np.array([s.weight for s in streams], dtype=np.float64),
            provider=np.array([where[s.provider] for s in streams], dtype=np.int32),
            commissioner=np.array([icbs.index(s.commissioner) for s in streams], dtype=np.int32),
            line=np.array([lines.index(s.line) for s in streams], dtype=np.int32),
            term=np.array([s.term for s in streams], dtype=np.int32),
            compliant=np.array([s.compliant for s in streams], dtype=np.float64),
            providers=providers,
            commissioners=icbs,
            lines=lines,
        )


@dataclass
class Drawn:
    """What the year's activity holds per stream and month (quantity, value at list price,
    cost, rows), and emergency admissions of people 65 and over per commissioner."""

    quantity: np.ndarray
    value: np.ndarray
    cost: np.ndarray
    rows: np.ndarray
    older_emergencies: np.ndarray

    @classmethod
    def empty(cls, streams: int, commissioners: int) -> "Drawn":
        """Nothing drawn yet."""
        return cls(np.zeros((streams, 12)), np.zeros((streams, 12)), np.zeros((streams, 12)), np.zeros((streams, 12)), np.zeros(commissioners))


class Codes:
    """Label lists the activity columns are coded against."""

    def __init__(self, currencies: BookCurrencies) -> None:
        """Services, points of delivery, admission methods and per-line codes."""
        self.services = sorted({line.service for line in LINES.values()})
        self.pods = sorted({p for line in LINES.values() for p in (line.pod.split("|") if line.pod == ELECTIVE_POD else [line.pod])})
        self.methods = sorted({line.method for line in LINES.values() if line.method})
        self.mixes = sorted({line.mix for line in LINES.values()})
        self.seasons = sorted({line.season for line in LINES.values()})
        self.ages = sorted({line.ages for line in LINES.values()})
        self.stays = sorted({line.stay for line in LINES.values()})
        lines = list(LINES.values())
        self.line_service = np.array([self.services.index(x.service) for x in lines], dtype=np.int16)
        self.line_pod = np.array([-1 if x.pod == ELECTIVE_POD else self.pods.index(x.pod) for x in lines], dtype=np.int16)
        self.line_method = np.array([self.methods.index(x.method) if x.method else -1 for x in lines], dtype=np.int16)
        self.line_mix = np.array([self.mixes.index(x.mix) for x in lines], dtype=np.int16)
        self.line_season = np.array([self.seasons.index(x.season) for x in lines], dtype=np.int16)
        self.line_ages = np.array([self.ages.index(x.ages) for x in lines], dtype=np.int16)
        self.line_stay = np.array([self.stays.index(x.stay) for x in lines], dtype=np.int16)
        self.line_referred = np.array([x.referred for x in lines])
        self.line_bed_days = np.array([x.bed_days for x in lines])
        self.line_community = np.array([x.pod == "COMM" for x in lines])
        self.currencies = currencies
        self.daily = {(s, t): _term_daily(name, t) for s, name in enumerate(self.seasons) for t in range(len(TERMS))}


def _term_daily(season: str, term: int) -> np.ndarray:
    """Probability that an event of a season ends on each day of a term."""
    start, end = (np.datetime64(d, "D") for d in TERMS[term])
    weight = SEASONS[season].daily() * ((DAYS >= start) & (DAYS <= end))
    return weight / weight.sum()


def _groups(codes: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(code, positions) for each distinct code, in code order: rows drawn alike together."""
    order = np.argsort(codes, kind="stable")
    values, starts = np.unique(codes[order], return_index=True)
    bounds = list(starts[1:]) + [len(order)]
    return [(int(v), order[a:b]) for v, a, b in zip(values, starts, bounds)]


def draw_chunk(table: StreamTable, codes: Codes, registered: np.ndarray, seed: int, number: int, size: int, first_id: int) -> tuple[pa.Table, Drawn]:
    """One chunk of activity rows (sorted by end date) and what each stream delivered."""
    rng = np.random.default_rng([seed, 101, number])
    money = codes.currencies
    counts = allocate(size, list(table.weight)) if size else np.zeros(len(table.weight), dtype=np.int64)
    stream = np.repeat(np.arange(len(table.weight)), counts)
    line = table.line[stream]
    commissioner = table.commissioner[stream]

    currency = np.zeros(size, dtype=np.int64)
    for mix, rows in _groups(codes.line_mix[line]):
        index, share = money.mixes[codes.mixes[mix]]
        currency[rows] = index[rng.choice(len(index), size=len(rows), p=share)]
    pod = codes.line_pod[line].astype(np.int16)
    unit_cost = money.cost[currency]
    day_case = np.zeros(size, dtype=bool)
    elective = np.flatnonzero(pod < 0)
    if len(elective):
        day_case[elective] = rng.random(len(elective)) >= money.elective_share[currency[elective]]
        pod[elective] = np.where(day_case[elective], codes.pods.index("DC"), codes.pods.index("EL"))
        unit_cost[elective] = np.where(day_case[elective], money.cost_day_case[currency[elective]], money.cost_elective[currency[elective]])

    stay = np.zeros(size, dtype=np.int64)
    for kind, rows in _groups(codes.line_stay[line]):
        stay[rows] = _stays(rng, codes.stays[kind], day_case[rows])
    beds = np.flatnonzero(codes.line_bed_days[line])
    stay[beds] = np.minimum(1 + rng.poisson(8, len(beds)), 40)

    end = np.zeros(size, dtype=np.int64)
    for key, rows in _groups(codes.line_season[line].astype(np.int64) * len(TERMS) + table.term[stream]):
        end[rows] = rng.choice(YEAR_DAYS, size=len(rows), p=codes.daily[(key // len(TERMS), key % len(TERMS))])
    start = end - stay
    age = np.zeros(size, dtype=np.int32)
    for profile, rows in _groups(codes.line_ages[line]):
        age[rows] = _ages(rng, codes.ages[profile], len(rows))
    offsets = np.concatenate([[0], np.cumsum(registered)[:-1]])
    patient = offsets[commissioner] + np.floor(rng.random(size) * registered[commissioner]).astype(np.int64)
    referred = codes.line_referred[line]
    referral = np.where(referred, start - (7 + np.round(rng.gamma(2.0, 40.0, size))).astype(np.int64), NO_REFERRAL)

    units = np.where(codes.line_bed_days[line], stay, 1)
    units = np.where(codes.line_community[line] & (rng.random(size) < 0.02), 2, units)
    noise = np.exp(rng.normal(-0.5 * 0.35**2, 0.35, size))
    cost = np.round(unit_cost * noise * units * 100).astype(np.int64)
    compliant = (rng.random(size) < table.compliant[stream]).astype(np.int64)

    drawn = Drawn.empty(len(table.weight), len(table.commissioners))
    month = MONTH_OF_DAY[end]
    key = stream * 12 + month
    cells = len(table.weight) * 12
    drawn.quantity = np.bincount(key, weights=units, minlength=cells).reshape(-1, 12)
    drawn.value = np.bincount(key, weights=units * money.price[currency, month], minlength=cells).reshape(-1, 12)
    drawn.cost = np.bincount(key, weights=cost / 100, minlength=cells).reshape(-1, 12)
    drawn.rows = np.bincount(key, minlength=cells).reshape(-1, 12).astype(np.float64)
    older = (pod == codes.pods.index("NEL")) & (age >= 65)
    drawn.older_emergencies = np.bincount(commissioner[older], minlength=len(table.commissioners)).astype(np.float64)

    provider = table.provider[stream]
    order = np.lexsort((patient, provider, end))
    missing = referral[order] == NO_REFERRAL
    method = codes.line_method[line][order]
    columns = {
        "activity_id": _identifiers("A", first_id + np.arange(size, dtype=np.int64), 10),
        "patient_id": _identifiers("P", patient[order], 9),
        "provider": _labels(provider[order], table.providers),
        "commissioner": _labels(commissioner[order], table.commissioners),
        "service": _labels(codes.line_service[line][order], codes.services),
        "currency": _labels(currency[order], money.codes),
        "pod": _labels(pod[order], codes.pods),
        "start_date": _dates(start[order]),
        "end_date": _dates(end[order]),
        "quantity": _decimal(units[order] * 10**QUANTITY_SCALE, QUANTITY_SCALE),
        "referral_date": _dates(np.where(missing, 0, referral[order]), missing),
        "admission_method": _labels(method, codes.methods),
        "age": pa.array(age[order], pa.int64()),
        "cost": _decimal(cost[order], 2),
        "compliant": pa.array(compliant[order], pa.int64()),
    }
    return pa.table(columns, schema=ACTIVITY_SCHEMA), drawn


def write_book_activity(folder: Path, table: StreamTable, codes: Codes, registered: np.ndarray, rows: int, seed: int, progress: Progress | None) -> tuple[list[Path], Drawn]:
    """Write `rows` activity rows as Parquet, one file per chunk; return them and the tally."""
    folder.mkdir(parents=True, exist_ok=True)
    total = Drawn.empty(len(table.weight), len(table.commissioners))
    files: list[Path] = []
    done = 0
    for number, size in enumerate(chunk_sizes(rows), start=1):
        chunk, drawn = draw_chunk(table, codes, registered, seed, number, size, done + 1)
        path = folder / f"activity-{number:04d}.parquet"
        pq.write_table(chunk, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        for name in ("quantity", "value", "cost", "rows", "older_emergencies"):
            setattr(total, name, getattr(total, name) + getattr(drawn, name))
        files.append(path)
        done += size
        if progress:
            progress(f"activity: {done:,} of {rows:,} rows")
    return files, total


@dataclass
class Totals:
    """A year of some streams: quantity, value at list price, cost and rows, by month."""

    quantity: np.ndarray
    value: np.ndarray
    cost: np.ndarray
    rows: np.ndarray


class Delivered:
    """What each agreement's lines delivered in the drawn year, which terms are set from."""

    def __init__(self, streams: list[Stream], drawn: Drawn) -> None:
        """Sum the streams' months by agreement and line (a contract's commissioners together)."""
        self.index: dict[tuple[str, str], int] = {}
        pair = np.array([self.index.setdefault((s.agreement, s.line), len(self.index)) for s in streams], dtype=np.int64)
        self.sums: dict[str, np.ndarray] = {}
        for name in ("quantity", "value", "cost", "rows"):
            summed = np.zeros((len(self.index), 12))
            np.add.at(summed, pair, getattr(drawn, name))
            self.sums[name] = summed

    def of(self, agreement: str, *lines: str) -> Totals:
        """The agreement's totals over the given lines."""
        pick = [self.index[(agreement, line)] for line in lines if (agreement, line) in self.index]
        return Totals(*(self.sums[name][pick].sum(axis=0) for name in ("quantity", "value", "cost", "rows")))


def _thousands(value: float, least: int) -> int:
    """A contract value as people set them: whole thousands of pounds, at least `least`."""
    return max(least, int(round(value / 1000.0)) * 1000)


def _pounds(value: float, least: int = 0) -> int:
    """Whole pounds, at least `least`."""
    return max(least, int(round(value)))


def _factor(rng: np.random.Generator, low: float, high: float, places: int = 4) -> Decimal:
    """A factor drawn between `low` and `high`, to `places` decimal places."""
    return Decimal(f"{rng.uniform(low, high):.{places}f}")


@dataclass
class Written:
    """One contract file's text, its plain-words header, and what else it needs: plan rows,
    outcome episodes to draw, and an approximate annual value per commissioner (for budgets)."""

    header: str
    body: str
    value: float
    plans: list[tuple[str, str, str, int, str]] = field(default_factory=list)
    episodes: list[tuple[str, str, str, float]] = field(default_factory=list)  # (episode prefix, provider, instrument group, count)


class Writer:
    """Writes each planned contract as YAML with terms set from the drawn activity."""

    def __init__(self, delivered: Delivered, currencies: BookCurrencies, population: dict[tuple[str, str], float], drawn: Drawn, icbs: list[str], seed: int) -> None:
        """Everything terms are set from."""
        self.delivered = delivered
        self.currencies = currencies
        self.population = population  # (commissioner, band) → persons summed over the year
        self.drawn = drawn
        self.icbs = icbs
        self.seed = seed

    def write(self, plan: Plan) -> Written:
        """The contract's YAML text (header and body) and its side data."""
        rng = np.random.default_rng([self.seed, 102, plan.number])
        method = getattr(self, "_" + plan.form.replace("-", "_"))
        written: Written = method(plan, rng)
        return written

    # The parts every contract shares.

    def _parties(self, plan: Plan, title: str, services: dict[str, str]) -> str:
        """id, title, commissioner(s), provider, members, term and services."""
        lines = [f"id: {plan.id}", f"title: {title}"]
        if len(plan.commissioners) == 1:
            lines.append(f"commissioner: {plan.icb}")
        else:
            lines.append("commissioners:")
            for position, (icb, share) in enumerate(plan.commissioners):
                lines.append(f"  - {{id: {icb}, share: {share}" + (", coordinating: true}" if position == 0 else "}"))
        lines.append(f"provider: {plan.provider}")
        if plan.members:
            lines.append("members:")
            lines += [f"  - {{provider: {member}, share: {share}}}" for member, share in plan.members]
        start, end = TERMS[plan.term]
        lines.append(f"term: {{start: {start}, end: {end}}}")
        if services:
            lines.append("services:")
            lines += [f"  {name}: {{{rule}}}" for name, rule in services.items()]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _quality(of: str, percent: str, rng: np.random.Generator, identifier: str = "cquin") -> str:
        """A CQUIN-like quality incentive on another component, with assessed indicators."""
        names = ("sepsis-screening", "falls-prevention", "discharge-summaries", "staff-flu-vaccination", "smoking-cessation", "pressure-ulcers")
        count = int(rng.integers(3, 6))
        chosen = [names[i] for i in sorted(rng.choice(len(names), size=count, replace=False))]
        rows = []
        for name in chosen:
            weight = "" if rng.random() < 0.6 else f", weight: {int(rng.integers(1, 4))}"
            rows.append(f"      - {{id: {name}{weight}, met: {'true' if rng.random() < 0.75 else 'false'}}}")
        return (f"  - id: {identifier}\n    title: Quality incentive\n    kind: quality_incentive\n    percent_of: {of}\n    percent: {percent}\n"
                "    indicators:\n" + "\n".join(rows) + "\n")

    @staticmethod
    def _withhold(of: str, rng: np.random.Generator) -> str:
        """A contract-management sanction: 2% withheld from a month, remedied or not."""
        start = MONTHS[int(rng.integers(4, 8))]
        remedied = f"\n    remedied: {MONTHS[MONTHS.index(start) + int(rng.integers(2, 4))]}-01" if rng.random() < 0.6 else ""
        return (f"  - id: sanction\n    title: Withheld for late activity data\n    kind: withhold\n    of: [{of}]\n    percent: 2\n"
                f"    from: {start}-01{remedied}\n    retain_after_months: 6\n    reason: activity data submitted late\n")

    @staticmethod
    def _block(identifier: str, annual: int, title: str, profile: list[int] | None = None) -> str:
        """A block component in whole pounds."""
        text = f"  - id: {identifier}\n    title: {title}\n    kind: block\n    annual: {_yaml_number(annual)}\n"
        if profile:
            text += f"    profile: [{', '.join(str(w) for w in profile)}]\n"
        return text

    def _optional(self, plan: Plan, base: str, rng: np.random.Generator, topup: str = "") -> str:
        """The optional components the plan carries: a CQUIN on `base`, a best-practice
        top-up (`topup`, its YAML), a withhold of `base`."""
        text = self._quality(base, "1.25", rng) if "quality" in plan.options else ""
        text += topup if "topup" in plan.options else ""
        return text + (self._withhold(base, rng) if "withhold" in plan.options else "")

    @staticmethod
    def _topup(identifier: str, title: str, service: str, amount: int) -> str:
        """A best-practice top-up: an amount per compliant case of one service."""
        return f"  - id: {identifier}\n    title: {title}\n    kind: best_practice_topup\n    services: [{service}]\n    amount: {amount}\n"

    @staticmethod
    def _activity(identifier: str, services: list[str], prices: str, mff: str, unit: str, extra: str = "") -> str:
        """A cost-per-case component."""
        return (f"  - id: {identifier}\n    title: Cost per case\n    kind: activity\n    services: [{', '.join(services)}]\n"
                f"    prices: {prices}\n    mff: {mff}\n    unit: {unit}\n{extra}")

    def _mff(self, rng: np.random.Generator, dated: bool) -> tuple[str, float]:
        """A market forces factor as YAML (a number, or dated values changing in October)
        and its mean."""
        first = _factor(rng, 1.0, 1.2)
        if not dated:
            return str(first), float(first)
        second = first + Decimal("0.0014")
        text = f"\n      - {{from: {TERM[0]}, to: 2025-09-30, value: {first}}}\n      - {{from: {PRICE_CHANGE}, value: {second}}}"
        return text, float(first + second) / 2

    # One method per form.

    def _acute(self, plan: Plan, rng: np.random.Generator) -> Written:
        """An acute trust on aligned payment and incentive, with a CQUIN, and sometimes a
        hip fracture best-practice top-up and a withhold."""
        d = self.delivered
        mff, mean_mff = self._mff(rng, "dated-mff" in plan.options)
        other = d.of(plan.id, "op-first", "op-follow-up", "emergency", "maternity", "hip-fracture", "a-and-e").value.sum()
        fixed = _thousands(other * mean_mff * rng.uniform(0.97, 1.05), 250_000)
        variable = "75" if rng.random() < 0.3 else "100"
        services = {"elective": "pod: [EL, DC]", "outpatient-procedures": "pod: [OPPROC]", "emergency": "service: [emergency]",
                    "maternity": "service: [maternity]", "outpatients": "service: [outpatients], pod: [OPFA, OPFU]",
                    "a-and-e": "pod: [AE]", "hip-fracture": "service: [hip-fracture]"}
        body = self._parties(plan, "Acute hospital services, aligned payment and incentive", services) + "components:\n"
        body += (f"  - id: api\n    title: Aligned payment and incentive\n    kind: aligned_payment\n    services: [elective, outpatient-procedures]\n"
                 f"    fixed: {_yaml_number(fixed)}\n    prices: {PRICE_LIST}\n    mff: {mff}\n    variable_percent: {variable}\n    unit: cases\n")
        body += self._optional(plan, "api", rng, self._topup("hip-fracture-bpt", "Best practice tariff, hip fracture", "hip-fracture", 1335))
        factor = rng.uniform(0.94, 1.03)
        rows: list[tuple[str, str, str, int, str]] = []
        planned = 0.0
        for service, lines in (("elective", ("elective",)), ("outpatient-procedures", ("op-procedure",))):
            totals = d.of(plan.id, *lines)
            rows += spread_plan(plan.id, service, "elective", totals.quantity.sum() * factor, totals.value.sum() * mean_mff * factor)
            planned += totals.value.sum() * mean_mff * factor
        shared = "" if len(plan.commissioners) == 1 else f" {plan.icb} co-ordinates; {plan.commissioners[1][0]} is an associate paying its share of the fixed element and its own patients' activity."
        header = (f"{plan.provider}: an acute hospital trust ({plan.id}), paid a fixed element of {_money(fixed)} a year in twelfths "
                  f"and a variable element of {variable}% of the national price × MFF on elective and outpatient procedure value "
                  f"above or below plan (data/plans).{shared}")
        return Written(header, body, fixed + planned, plans=rows)

    def _independent(self, plan: Plan, rng: np.random.Generator) -> Written:
        """An independent-sector hospital on cost per case at national prices."""
        d = self.delivered
        mff = "1" if rng.random() < 0.7 else str(_factor(rng, 1.0, 1.05))
        services = {"elective": 'service: [elective], pod: [EL, DC], currency: ["HN*", "BZ*"]', "outpatients": "service: [outpatients], pod: [OPFA, OPFU]"}
        extra = "    readmission: {within_days: 30, avoidable_percent: 25}\n" if "readmission" in plan.options else ""
        body = self._parties(plan, "Elective orthopaedics and ophthalmology, cost per case", services) + "components:\n"
        body += self._activity("cases", ["elective", "outpatients"], PRICE_LIST, mff, "cases", extra)
        body += self._optional(plan, "cases", rng, self._topup("enhanced-recovery", "Best practice top-up, enhanced recovery", "elective", 250))
        value = d.of(plan.id, "isp-elective", "op-first", "op-follow-up").value.sum() * float(mff)
        header = (f"{plan.provider}: an independent-sector hospital ({plan.id}) paid per case at prices/{PRICE_LIST}.csv"
                  + (f" × MFF {mff}" if mff != "1" else "") + (", avoidable emergency readmissions within 30 days unpaid" if extra else "") + ".")
        return Written(header, body, value)

    def _community(self, plan: Plan, rng: np.random.Generator) -> Written:
        """A community trust on a block, with MSK contacts paid per case and a CQUIN."""
        d = self.delivered
        annual = _thousands(d.of(plan.id, "community").value.sum() * rng.uniform(0.95, 1.1), 50_000)
        body = self._parties(plan, "Community health services, block and cost per case", {"community": "service: [community]", "msk": "service: [msk]"}) + "components:\n"
        body += self._block("core", annual, "Block")
        body += self._activity("msk", ["msk"], LOCAL_LIST, "1", "contacts")
        body += self._optional(plan, "core", rng)
        header = (f"{plan.provider}: community health services ({plan.id}) on a block of {_money(annual)} a year in twelfths, "
                  f"with musculoskeletal contacts paid per case at local prices (prices/{LOCAL_LIST}.csv).")
        return Written(header, body, annual + d.of(plan.id, "msk").value.sum())

    def _mental_health(self, plan: Plan, rng: np.random.Generator) -> Written:
        """A mental health trust: a block, community contacts on cost and volume, a CQUIN."""
        d = self.delivered
        contacts = d.of(plan.id, "mental-health")
        therapies = d.of(plan.id, "talking-therapies").value.sum()
        annual = _thousands(contacts.value.sum() * rng.uniform(0.6, 1.2), 100_000)
        baseline = _pounds(contacts.quantity.sum() / rng.uniform(0.93, 1.1), 100)
        price = self.currencies.list_price("MHCC")
        below = "0" if rng.random() < 0.7 else "25"
        services = {"mental-health": "service: [mental-health], pod: [MH]", "talking-therapies": "service: [talking-therapies]"}
        body = self._parties(plan, "Mental health services, block and cost and volume", services) + "components:\n"
        body += self._block("core", annual, "Inpatient and crisis services, block")
        body += self._activity("therapies", ["talking-therapies"], LOCAL_LIST, "1", "sessions")
        body += (f"  - id: contacts\n    title: Community mental health contacts, cost and volume\n    kind: cost_and_volume\n    services: [mental-health]\n"
                 f"    baseline_volume: {_yaml_number(baseline)}\n    price: {price}\n    tolerance_percent: 5\n    above_band_percent: 50\n"
                 f"    below_band_percent: {below}\n    unit: contacts\n")
        if "quality" in plan.options:
            body += self._quality("core", "1.25", rng)
        header = (f"{plan.provider}: a mental health trust ({plan.id}): a block of {_money(annual)} a year, talking therapy sessions paid "
                  f"per case at local prices, and community contacts on cost and volume (baseline {baseline:,} at £{price}, ±5% band, "
                  f"50% above it, {below}% for a shortfall below it), settled year to date.")
        return Written(header, body, annual + therapies + baseline * float(price))

    def _hospice(self, plan: Plan, rng: np.random.Generator) -> Written:
        """A hospice: a grant block for day care (sometimes paid quarterly) and bed days per case."""
        d = self.delivered
        annual = _thousands(d.of(plan.id, "hospice-day").value.sum() * rng.uniform(0.9, 1.2), 20_000)
        quarterly = [1, 0, 0] * 4 if "quarterly" in plan.options else None
        body = self._parties(plan, "Specialist palliative care, grant and bed days", {"inpatient": "service: [hospice-inpatient]", "day-care": "service: [hospice-day-care]"}) + "components:\n"
        body += self._block("grant", annual, "Day care grant", quarterly)
        body += self._activity("beds", ["inpatient"], LOCAL_LIST, "1", "bed-days")
        if "quality" in plan.options:
            body += self._quality("grant", "1", rng)
        paid = "quarterly in advance" if quarterly else "in twelfths"
        header = (f"{plan.provider}: a hospice ({plan.id}) paid a day care grant of {_money(annual)} a year {paid}, and inpatient bed days "
                  f"at the local price (prices/{LOCAL_LIST}.csv).")
        return Written(header, body, annual + d.of(plan.id, "hospice-inpatient").value.sum())

    def _charity(self, plan: Plan, rng: np.random.Generator) -> Written:
        """A charity: a grant block, often with social prescribing referrals paid per case."""
        d = self.delivered
        annual = _thousands(d.of(plan.id, "talking-therapies").value.sum() * rng.uniform(0.9, 1.15), 10_000)
        services = {"talking": "service: [talking-therapies]", "referrals": "service: [social-prescribing]"}
        body = self._parties(plan, "Voluntary sector services, grant", services) + "components:\n"
        body += self._block("grant", annual, "Grant")
        value = float(annual)
        if "referrals" in plan.options:
            body += self._activity("referrals", ["referrals"], LOCAL_LIST, "1", "referrals")
            value += d.of(plan.id, "social-prescribing").value.sum()
        if "quality" in plan.options:
            body += self._quality("grant", "1", rng)
        start, end = TERMS[plan.term]
        header = (f"{plan.provider}: a charity ({plan.id}) running talking therapies on a grant of {_money(annual)} a year"
                  + (" and social prescribing paid per referral" if "referrals" in plan.options else "")
                  + (f", from {start} to {end}" if plan.term else "") + ".")
        return Written(header, body, value)

    def _gp_led(self, plan: Plan, rng: np.random.Generator) -> Written:
        """A GP-led same-day service: capitation by age band, or a block with minor surgery per case."""
        d = self.delivered
        services = {"same-day": "service: [same-day-access]", "minor-surgery": "service: [minor-surgery]"}
        body = self._parties(plan, "Same-day access and minor surgery, GP-led", services) + "components:\n"
        if "capitation" in plan.options:
            # The example's rates by band, scaled so the year's capitation is near the value of the service.
            value = d.of(plan.id, "same-day", "minor-surgery").value.sum() * rng.uniform(0.9, 1.15)
            at_example_rates = sum(float(rate) * self.population.get((plan.icb, band), 0.0) for band, rate in CAPITATION_RATES.items())
            scale = Decimal(value / at_example_rates) if at_example_rates else Decimal(0)
            rates = "\n".join(f'      "{band}": {(Decimal(rate) * scale).quantize(Decimal("0.000001"))}' for band, rate in CAPITATION_RATES.items())
            body += f"  - id: capitation\n    title: Capitation by age band\n    kind: capitation\n    rates:\n{rates}\n"
            base = "capitation"
            header = f"{plan.provider}: a GP-led same-day access service ({plan.id}) paid a rate per registered person of {plan.icb} per month by age band (data/population)."
        else:
            annual = _thousands(d.of(plan.id, "same-day").value.sum() * rng.uniform(0.95, 1.1), 20_000)
            body += self._block("core", annual, "Same-day access, block")
            body += self._activity("minor-surgery", ["minor-surgery"], LOCAL_LIST, "1", "procedures")
            value = annual + d.of(plan.id, "minor-surgery").value.sum()
            base = "core"
            header = f"{plan.provider}: a GP-led service ({plan.id}) on a block of {_money(annual)} a year, with minor surgery paid per procedure."
        if "quality" in plan.options:
            body += self._quality(base, "1.25", rng)
        return Written(header, body, value)

    def _out_of_area(self, plan: Plan, rng: np.random.Generator) -> Written:
        """An out-of-area acute trust on a low-volume block (three-year rolling average)."""
        value = self.delivered.of(plan.id, "elective", "emergency", "op-first", "a-and-e").value.sum()
        history = [_pounds(value * rng.uniform(low, high), 5_000) for low, high in ((0.85, 1.0), (0.9, 1.05), (0.95, 1.1))]
        body = self._parties(plan, "Out-of-area acute activity, low-volume block", {}) + "components:\n"
        body += f"  - id: ooa\n    title: Low-volume block\n    kind: low_volume_block\n    history: [{', '.join(_yaml_number(v) for v in history)}]   # 2022-23, 2023-24, 2024-25\n"
        header = (f"{plan.provider}: an acute trust outside {plan.icb}'s area ({plan.id}), paid a low-volume block at the average of the "
                  f"last three years' activity value, with no in-year adjustment.")
        return Written(header, body, sum(history) / 3)

    def _urgent_care(self, plan: Plan, rng: np.random.Generator) -> Written:
        """An urgent treatment centre paid on a marginal rate above a baseline value."""
        value = self.delivered.of(plan.id, "urgent-care").value.sum()
        mff = _factor(rng, 1.0, 1.1)
        baseline = _pounds(value * float(mff) * rng.uniform(0.9, 1.05), 10_000)
        marginal = "70" if "generous" in plan.options else "30"
        body = self._parties(plan, "Urgent treatment centre, marginal rate", {"urgent-care": "service: [urgent-care]"}) + "components:\n"
        body += (f"  - id: attendances\n    title: Attendances, marginal rate above baseline\n    kind: marginal_rate\n    services: [urgent-care]\n"
                 f"    prices: {PRICE_LIST}\n    mff: {mff}\n    baseline_value: {_yaml_number(baseline)}\n    marginal_percent: {marginal}\n    unit: attendances\n")
        header = (f"{plan.provider}: an urgent treatment centre ({plan.id}): attendances at national prices × MFF {mff} up to "
                  f"{_money(baseline)} a year, {marginal}% of price above it, settled year to date.")
        return Written(header, body, baseline)

    def _prime(self, plan: Plan, rng: np.random.Generator) -> Written:
        """An MSK prime contractor: a block and an outcome incentive, paying three sub-contractors."""
        d = self.delivered
        (ortho_id, _, ortho), (physio_id, _, physio), (support_id, _, support) = plan.subcontracts
        mff = _factor(rng, 1.0, 1.1)
        ortho_value = d.of(ortho_id, "msk-surgery").value.sum() * float(mff)
        physio_block = _thousands(d.of(physio_id, "msk").value.sum() * rng.uniform(0.95, 1.1), 20_000)
        support_block = _thousands(d.of(support_id, "social-prescribing").value.sum() * rng.uniform(0.95, 1.1), 10_000)
        core = _thousands((ortho_value + physio_block + support_block) * rng.uniform(1.03, 1.1), 100_000)
        metrics = ["      - id: hip-function\n        measure: {instrument: oxford_hip, statistic: share_improved, min_change: 8}\n"
                   "        schedule: {floor: 0.80, target: 0.95}\n        weight: " + ("0.6" if "quality-of-life" in plan.options else "1")]
        if "quality-of-life" in plan.options:
            metrics.append("      - id: quality-of-life\n        measure: {instrument: eq5d_index, statistic: share_improved, min_change: 0.074}\n"
                           "        schedule: {floor: 0.70, target: 0.90}\n        weight: 0.4")
        body = self._parties(plan, "Integrated MSK service, prime contract", {"msk": "service: [msk-surgery, msk, social-prescribing]"}) + "components:\n"
        body += self._block("core", core, "Block")
        body += ("  - id: outcomes\n    title: Outcome incentive\n    kind: outcome_incentive\n    pot: {percent_of: core, percent: 5}\n    settle: annual\n"
                 "    metrics:\n" + "\n".join(metrics) + "\n")
        body += (f"subcontracts:\n  - id: {ortho_id}\n    title: Hip and knee surgery\n    provider: {ortho}\n    services: {{hips: {{service: [msk-surgery], pod: [EL, DC]}}}}\n"
                 f"    components:\n      - {{id: ortho, kind: activity, services: [hips], prices: {PRICE_LIST}, mff: {mff}, unit: spells}}\n"
                 f"  - id: {physio_id}\n    title: Community physiotherapy\n    provider: {physio}\n    services: {{physio: {{service: [msk]}}}}\n"
                 f"    components:\n      - {{id: physio, kind: block, annual: {_yaml_number(physio_block)}}}\n"
                 f"  - id: {support_id}\n    title: Self-management groups\n    provider: {support}\n    services: {{support: {{service: [social-prescribing]}}}}\n"
                 f"    components:\n      - {{id: support, kind: block, annual: {_yaml_number(support_block)}}}\n")
        instruments = "hip+eq5d" if "quality-of-life" in plan.options else "hip"
        episodes = [(ortho_id, ortho, instruments, d.of(ortho_id, "msk-surgery").rows.sum())]
        header = (f"{plan.provider}: the prime contractor for musculoskeletal services ({plan.id}): a block of {_money(core)} a year and up to 5% "
                  f"of it on hip replacement outcomes (data/outcomes). It pays {ortho} per operation at national prices × MFF {mff}, "
                  f"and {physio} and {support} on blocks.")
        return Written(header, body, core, episodes=episodes)

    def _alliance(self, plan: Plan, rng: np.random.Generator) -> Written:
        """An older people's alliance: a pooled capitated budget, a risk or gain share on its
        members' costs, and an independence incentive."""
        d = self.delivered
        costs = d.of(plan.id, "intermediate-care").cost.sum()
        budget = costs / rng.uniform(0.95, 1.06)
        older = [("65-84", Decimal(1)), ("85+", Decimal("3.2"))]
        persons = sum(float(weight) * self.population.get((plan.icb, band), 0.0) for band, weight in older)
        base = Decimal(budget / persons).quantize(Decimal("0.000001")) if persons else Decimal(0)
        rates = ", ".join(f'"{band}": {(base * weight).quantize(Decimal("0.000001"))}' for band, weight in older)
        services = {"older-people": "service: [older-people]"}
        body = self._parties(plan, "Older people's alliance, pooled budget", services) + "components:\n"
        body += f"  - id: budget\n    title: Pooled budget per person over 65\n    kind: capitation\n    rates: {{{rates}}}\n    population_bands: [65-84, 85+]\n"
        cap = _thousands(budget * 0.05, 10_000)
        if "risk" in plan.options:
            body += ("  - id: risk\n    title: Risk share on the members' costs\n    kind: risk_share\n    target_of: budget\n"
                     f"    bands: [{{up_to_percent: 5, provider_percent: 50}}, {{provider_percent: 75}}]\n    provider_cap: {_yaml_number(cap)}\n")
            sharing = f"a risk share: half of any over- or underspend within 5% of the budget, three quarters beyond, capped at {_money(cap)}"
        else:
            body += ("  - id: gain\n    title: Gain share on the members' costs\n    kind: gain_share\n    target_of: budget\n"
                     "    bands: [{up_to_percent: 10, provider_percent: 50}, {provider_percent: 25}]\n")
            sharing = "a gain share: the members keep half of any underspend within 10% of the budget, a quarter beyond"
        pot = _thousands(budget * 0.03, 10_000)
        metrics = ["      - id: more-independent\n        measure: {instrument: barthel, statistic: share_improved, min_change: 1}\n"
                   "        schedule: {floor: 0.55, target: 0.75}"]
        rate = self._older_emergency_rate(plan.icb)
        floor, target = round(rate * 1.05, 2), round(rate * 0.9, 2)
        if "admissions" in plan.options and floor != target and target > 0:
            metrics[0] += "\n        weight: 0.7"
            metrics.append("      - id: fewer-admissions\n        measure: {statistic: rate_per_thousand, events: {pod: [NEL], age_from: 65}, population_bands: [65-84, 85+]}\n"
                           f"        schedule: {{floor: {floor:.2f}, target: {target:.2f}}}   # lower is better\n        weight: 0.3")
        body += (f"  - id: independence\n    title: Independence incentive\n    kind: outcome_incentive\n    pot: {{amount: {_yaml_number(pot)}}}\n"
                 "    settle: quarterly\n    metrics:\n" + "\n".join(metrics) + "\n")
        episodes = [(f"{plan.id}-{member}", member, "barthel", d.of(plan.id, "intermediate-care").rows.sum() * float(share)) for member, share in plan.members]
        header = (f"{plan.provider}: an alliance ({plan.id}) of {', '.join(m for m, _ in plan.members)} caring for people over 65 from one pooled "
                  f"budget (a rate per person over 65 per month), shared among the members by their shares, with {sharing}, and an "
                  f"independence incentive of {_money(pot)} a year paid quarterly on Barthel scores (data/outcomes).")
        return Written(header, body, budget, episodes=episodes)

    def _older_emergency_rate(self, icb: str) -> float:
        """Emergency admissions of people 65 and over per 1,000 such people a year in the ICB."""
        persons = sum(self.population.get((icb, band), 0.0) for band in ("65-84", "85+")) / 12
        return 1000 * float(self.drawn.older_emergencies[self.icbs.index(icb)]) / persons if persons else 0.0

    def _accountable_care(self, plan: Plan, rng: np.random.Generator) -> Written:
        """An integrated care provider on a block with shared savings against a benchmark."""
        d = self.delivered
        cost = d.of(plan.id, "community", "emergency", "a-and-e").cost.sum()
        annual = _thousands(cost * rng.uniform(0.98, 1.04), 100_000)
        benchmark = _pounds(cost * rng.uniform(0.97, 1.07), 100_000)
        losses = "    losses: {loss_rate_floor_percent: 40, loss_rate_ceiling_percent: 75, cap_percent: 5}\n" if "losses" in plan.options else ""
        services = {"community": "service: [community]", "urgent": "service: [emergency, a-and-e]"}
        body = self._parties(plan, "Integrated care, block with shared savings", services) + "components:\n"
        body += self._block("core", annual, "Block")
        body += (f"  - id: savings\n    title: Shared savings\n    kind: shared_savings\n    benchmark: {_yaml_number(benchmark)}\n"
                 "    minimum_savings_percent: 2\n    sharing_percent: 50\n    quality_score: 90\n    cap_percent: 10\n" + losses)
        header = (f"{plan.provider}: an integrated care provider ({plan.id}) on a block of {_money(annual)} a year, sharing half of any "
                  f"saving against a benchmark of {_money(benchmark)} once it reaches 2%" + (", and losses too" if losses else "") + ".")
        return Written(header, body, annual)


INSTRUMENT_DRAWS: dict[str, tuple[float, float, float, float, float, float, int]] = {
    # instrument: pre mean, pre sd, change mean, change sd, lowest, highest, places
    "oxford_hip": (18.0, 7.0, 21.0, 9.0, 0.0, 48.0, 0),
    "eq5d_index": (0.35, 0.3, 0.42, 0.3, -0.594, 1.0, 3),
    "barthel": (11.0, 3.5, 1.6, 2.5, 0.0, 20.0, 0),
}
INSTRUMENT_GROUPS = {"hip": ("oxford_hip",), "hip+eq5d": ("oxford_hip", "eq5d_index"), "barthel": ("barthel",)}
UNPAIRED_SHARE = 0.03


def draw_outcomes(episodes: list[tuple[str, str, str, float]], seed: int) -> pa.Table:
    """Pre and post scores for every group of episodes (post dated in the year), drawn for
    all groups at once per instrument; a few pre scores never came back."""
    rng = np.random.default_rng([seed, 103])
    schema = OUTCOMES.arrow_schema()
    counts = np.array([int(round(count)) for _, _, _, count in episodes], dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return schema.empty_table()
    group = np.repeat(np.arange(len(episodes)), counts)
    number = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    prefixes = pa.array([prefix for prefix, _, _, _ in episodes], pa.string())
    providers = pa.array([provider for _, provider, _, _ in episodes], pa.string())
    post_day = rng.integers(0, YEAR_DAYS, total)
    pre_day = post_day - rng.integers(60, 200, total)
    kept = rng.random(total) >= UNPAIRED_SHARE
    parts: list[pa.Table] = []

    def identifiers(rows: np.ndarray, letter: str) -> pa.Array:
        """`<group prefix>-P000012` style identifiers of the chosen episodes."""
        digits = pc.utf8_lpad(pa.array(number[rows]).cast(pa.string()), 6, "0")
        return pc.binary_join_element_wise(pc.take(prefixes, pa.array(group[rows])), pa.scalar(f"-{letter}"), digits, "")

    for instrument, (pre_mean, pre_sd, change_mean, change_sd, low, high, places) in INSTRUMENT_DRAWS.items():
        has = np.array([instrument in INSTRUMENT_GROUPS[g] for _, _, g, _ in episodes])[group]
        chosen = np.flatnonzero(has)
        pre = np.clip(np.round(rng.normal(pre_mean, pre_sd, len(chosen)), places), low, high)
        post = np.clip(np.round(pre + rng.normal(change_mean, change_sd, len(chosen)), places), low, high)
        for timepoint, score, day, keep in (("pre", pre, pre_day, kept[chosen]), ("post", post, post_day, np.ones(len(chosen), dtype=bool))):
            rows = chosen[keep]
            parts.append(pa.table({
                "patient_id": identifiers(rows, "P"),
                "episode_id": identifiers(rows, "E"),
                "instrument": pa.array(np.full(len(rows), instrument), pa.string()),
                "timepoint": pa.array(np.full(len(rows), timepoint), pa.string()),
                "date": _dates(day[rows]),
                "score": _decimal(np.round(score[keep] * 10**6).astype(np.int64), 6),
                "predicted": pa.nulls(len(rows), schema.field("predicted").type),
                "provider": pc.take(providers, pa.array(group[rows])),
            }, schema=schema))
    return pa.concat_tables(parts)


@dataclass(frozen=True)
class BookSummary:
    """What write_book wrote: the folder, contract ids, ICBs, activity rows, the number of
    components of each kind and of contracts of each form, and the files."""

    root: Path
    contracts: list[str]
    icbs: list[str]
    activity_rows: int
    kinds: dict[str, int]
    forms: dict[str, int]
    files: list[Path]


KIND_KEY = re.compile(r"\bkind: ([a-z_]+)")


def _kinds(texts: list[str]) -> dict[str, int]:
    """Components of each kind in the contract texts (`kind: x`, block or flow style; the
    plain-words headers never say `kind:`)."""
    counted = Counter(kind for text in texts for kind in KIND_KEY.findall(text))
    return dict(sorted(counted.items()))


def _readme(contracts: int, rows: int, seed: int, icbs: list[str], forms: dict[str, int], kinds: dict[str, int]) -> str:
    """The workspace's README: what the book holds and the commands to run."""
    form_lines = "\n".join(f"- {name}: {count:,}" for name, count in sorted(forms.items(), key=lambda kv: -kv[1]))
    kind_lines = ", ".join(f"{name} {count:,}" for name, count in kinds.items())
    return (
        f"# A contract book of {contracts:,} contracts, 2025-26\n\n"
        f"Generated by `carecontracts init --contracts {contracts} --rows {rows} --seed {seed}`: {len(icbs)} ICBs "
        f"({', '.join(icbs[:6])}{', ...' if len(icbs) > 6 else ''}) holding {contracts:,} contracts with trusts, independent-sector "
        f"hospitals, hospices, charities, GP-led services, prime contractors (with sub-contractors) and alliances (with members); "
        f"{rows:,} activity rows in data/activity.\n\nContracts by form:\n\n{form_lines}\n\nComponents by kind: {kind_lines}.\n\n"
        "Each contract file starts with a plain-words header. Prices: prices/national-2025.csv (national average unit costs 2023/24, "
        f"NHS England, Open Government Licence v3.0) and prices/{LOCAL_LIST}.csv (local prices, 2.5% higher from October).\n\n"
        "    carecontracts check          # validate contracts and data\n"
        "    carecontracts load           # load data/ and prices/ into .carecontracts/\n"
        "    carecontracts pay year       # the year's statements for every contract\n"
    )


def write_book(
    root: Path,
    contracts: int,
    rows: int | None = None,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
) -> BookSummary:
    """Write a workspace holding a book of `contracts` contracts and `rows` activity rows in
    all (ROWS_PER_CONTRACT per contract by default) at `root` (new or empty), from `seed`."""
    root = Path(root)
    if contracts < 1:
        raise ValueError(f"a book needs at least 1 contract, not {contracts}")
    rows = ROWS_PER_CONTRACT * contracts if rows is None else rows
    if rows < 0:
        raise ValueError(f"rows cannot be negative ({rows})")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists and is not an empty folder; choose a new or empty folder")
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    icbs = [f"ICB-{n:02d}" for n in range(1, icb_count(contracts) + 1)]
    people = np.random.default_rng([seed, 104])
    registered = {icb: int(people.integers(400, 2_600)) * 1000 for icb in icbs}
    population = _population(seed, registered)
    persons: dict[tuple[str, str], float] = defaultdict(float)
    for commissioner, _, band, count in population:
        persons[(commissioner, band)] += count

    if progress:
        progress(f"planning {contracts:,} contracts")
    plans, streams = plan_book(contracts, seed, icbs)
    currencies = BookCurrencies.build()
    table = StreamTable.of(streams, icbs)
    codes = Codes(currencies)
    files, drawn = write_book_activity(root / "data" / "activity", table, codes, np.array([registered[i] for i in icbs], dtype=np.int64), rows, seed, progress)
    written += files

    if progress:
        progress("contracts, prices, plans, population and outcomes")
    writer = Writer(Delivered(streams, drawn), currencies, persons, drawn, icbs, seed)
    folder = root / "contracts"
    folder.mkdir(parents=True, exist_ok=True)
    plan_rows: list[tuple[str, str, str, int, str]] = []
    episodes: list[tuple[str, str, str, float]] = []
    budgets: dict[str, float] = defaultdict(float)
    texts: list[str] = []
    for plan in plans:
        contract = writer.write(plan)
        path = folder / f"{plan.id.lower()}.yaml"
        text = _header(contract.header, break_on_hyphens=False) + contract.body
        path.write_text(text, encoding="utf-8")
        texts.append(text)
        written.append(path)
        plan_rows += contract.plans
        episodes += contract.episodes
        for icb, share in plan.commissioners:
            budgets[icb] += contract.value * float(share)

    listed = _prices(currencies.national)
    change = np.datetime64(PRICE_CHANGE, "D")
    local = [(code, before, TERM[0], str(change - 1)) for code, (before, _) in LOCAL_PRICES.items()]
    local += [(code, after, PRICE_CHANGE, TERM[1]) for code, (_, after) in LOCAL_PRICES.items()]
    header = ("currency", "unit_price", "valid_from", "valid_to")
    written.append(_csv(root / "prices" / f"{PRICE_LIST}.csv", header, listed))
    written.append(_csv(root / "prices" / f"{LOCAL_LIST}.csv", header, local))
    if plan_rows:
        written.append(_csv(root / "data" / "plans" / "plans.csv", ("contract", "service", "month", "planned_quantity", "planned_value"), plan_rows))
    written.append(_csv(root / "data" / "population" / "population.csv", ("commissioner", "month", "band", "persons"), population))
    outcomes = draw_outcomes(episodes, seed)
    if outcomes.num_rows:
        path = root / "data" / "outcomes" / "outcomes.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(outcomes, path, compression="zstd")
        written.append(path)

    forms = dict(Counter(p.form for p in plans))
    kinds = _kinds(texts)
    written += write_settings(
        root, f"A contract book (seed {seed}, {contracts:,} contracts, {rows:,} activity rows).", f"Contract book of {contracts:,}",
        {icb: _thousands(budgets[icb], 0) for icb in icbs}, _readme(contracts, rows, seed, icbs, forms, kinds),
    )
    return BookSummary(
        root=root,
        contracts=[p.id for p in plans],
        icbs=icbs,
        activity_rows=rows,
        kinds=kinds,
        forms=forms,
        files=sorted(p.relative_to(root) for p in written),
    )


__all__ = ["BookSummary", "FORMS", "icb_count", "plan_book", "write_book"]
