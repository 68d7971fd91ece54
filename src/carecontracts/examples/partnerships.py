"""The example's partnerships: a musculoskeletal (MSK) prime contractor with three
sub-contractors, paid partly on hip outcomes, and an older people's alliance on a pooled
budget with a risk share, paid on independence.

Hip outcomes are real: each hip replacement draws a patient's pre- and post-operative
Oxford Hip Score and EQ-5D index (and the national model's predicted score) from the
PROMs hip replacement records for 2018-19 shipped in data/proms_2018_19. Barthel scores
for the alliance's interventions are drawn from a plausible distribution. Everything is
seeded, and drawn from generators of its own, so the rest of the example is unchanged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from carecontracts.data.proms import hip_outcomes_table
from carecontracts.data.schemas import ACTIVITY, OUTCOMES, SPELL_DAY_COLUMNS
from carecontracts.examples.national_costs import ELECTIVE, shipped_costs

YEAR_START = dt.date(2025, 4, 1)
YEAR_DAYS = 365
ICB = "ICB-NCL"

PRIME = "PRIME-MSK"
ORTHO = "ACUTE-WHH"
PHYSIO = "GP-MSK"
CHARITY = "MOVE-CHARITY"
HIP_CURRENCIES = ("HN12D", "HN12E", "HN12F")
HIP_OPERATIONS = 720  # a year
ORTHO_MFF = Decimal("1.0493")
PHYSIO_CONTACTS, PHYSIO_COST = 16_000, 138
SUPPORT_CONTACTS, SUPPORT_COST = 4_200, 74
MSK_CORE = 10_400_000
PHYSIO_BLOCK = 2_400_000
SUPPORT_BLOCK = 330_000
UNPAIRED_SHARE = 0.03  # post-operative questionnaires whose pre-operative one never came back

ALLIANCE = "OP-ALLIANCE"
MEMBERS = (("ACUTE-RFH", "0.40", "IC-BED"), ("COMMUNITY-CT", "0.35", "IC-HOME"), ("LA-ADULT-CARE", "0.15", "REABLE"), ("AGE-UK-NCL", "0.10", "HOME-SUPPORT"))
MEMBER_COST = (4_100, 2_650, 2_300, 900)  # mean cost of an intervention, £
MEMBER_EFFECT = (0.0, 0.3, 0.1, -0.2)  # Barthel points more (or less) improvement than average
INTERVENTIONS = 9_800
OVER_65_RATES = {"65-84": "9.80", "85+": "31.50"}
ALLIANCE_OVERSPEND = 1.04  # the year's costs run 4% over the pooled budget
INDEPENDENCE_POT = 1_200_000


@dataclass(frozen=True)
class Partnerships:
    """What the partnerships add to the example workspace."""

    contracts: dict[str, str]
    activity: pa.Table
    outcomes: pa.Table
    prices: list[tuple[str, str, str, str]]


def _days(rng: np.random.Generator, size: int, low: int, high: int) -> np.ndarray:
    return rng.integers(low, high, size)


def _date(offsets: np.ndarray) -> pa.Array:
    return pa.array(np.datetime64(YEAR_START.isoformat(), "D") + offsets.astype("timedelta64[D]"), pa.date32())


def _activity(columns: dict[str, list | np.ndarray | pa.Array], rows: int) -> pa.Table:
    """Columns of activity rows, others null, in the example's activity schema."""
    schema = ACTIVITY.arrow_schema([c.name for c in ACTIVITY.columns if c.name != "compliant" and c.name not in SPELL_DAY_COLUMNS])
    arrays = []
    for field in schema:
        value = columns.get(field.name)
        arrays.append(pa.nulls(rows, field.type) if value is None else pa.array(value, field.type) if not isinstance(value, pa.Array) else value.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _hip_prices(listed: dict[str, str]) -> dict[str, Decimal]:
    """National elective unit costs of the hip replacement HRGs (the example's own list
    price where it already has one)."""
    found: dict[str, Decimal] = {}
    for row in shipped_costs():
        if row.currency in HIP_CURRENCIES and row.service_code == ELECTIVE[0]:
            found[row.currency] = Decimal(str(listed.get(row.currency) or f"{row.unit_cost:.2f}"))
    return found


def msk(seed: int, listed: dict[str, str]) -> tuple[pa.Table, pa.Table, dict[str, Decimal]]:
    """A year of MSK activity (hip replacements, physiotherapy and support contacts) and the
    hip outcomes of operations from October 2024 (whose six-month questionnaires fall in the
    year) to March 2026."""
    rng = np.random.default_rng([seed, 31])
    prices = _hip_prices(listed)
    weights = np.array([6390, 14605, 18294], dtype=float)  # national elective activity, HN12D/E/F
    currency = rng.choice(len(HIP_CURRENCIES), HIP_OPERATIONS, p=weights / weights.sum())
    end = np.sort(_days(rng, HIP_OPERATIONS, 3, YEAR_DAYS))
    stay = rng.integers(1, 6, HIP_OPERATIONS)
    price = np.array([float(prices[c]) for c in HIP_CURRENCIES])[currency]
    hip_cost = np.round(price * rng.normal(0.93, 0.08, HIP_OPERATIONS), 2)
    wait = np.round(14 + rng.gamma(2.2, 45.0, HIP_OPERATIONS)).astype(np.int64)  # referral to admission, days
    hips = _activity(
        {
            "activity_id": [f"MSK-H{i:05d}" for i in range(HIP_OPERATIONS)],
            "patient_id": [f"MSKP{i:06d}" for i in range(HIP_OPERATIONS)],
            "provider": [ORTHO] * HIP_OPERATIONS, "commissioner": [ICB] * HIP_OPERATIONS,
            "service": ["msk"] * HIP_OPERATIONS, "currency": [HIP_CURRENCIES[c] for c in currency],
            "pod": ["EL"] * HIP_OPERATIONS, "start_date": _date(end - stay), "end_date": _date(end),
            "referral_date": _date(end - stay - wait),
            "quantity": [Decimal(1)] * HIP_OPERATIONS, "admission_method": ["elective"] * HIP_OPERATIONS,
            "age": rng.integers(52, 90, HIP_OPERATIONS), "cost": [Decimal(f"{c:.2f}") for c in hip_cost],
        },
        HIP_OPERATIONS,
    )
    contacts = []
    for provider, count, cost, pod in ((PHYSIO, PHYSIO_CONTACTS, PHYSIO_COST, "COMM"), (CHARITY, SUPPORT_CONTACTS, SUPPORT_COST, "COMM")):
        day = _days(rng, count, 0, YEAR_DAYS)
        contacts.append(
            _activity(
                {
                    "activity_id": [f"MSK-{provider}-{i:06d}" for i in range(count)],
                    "patient_id": [f"MSKQ{i % (count // 4):06d}" for i in range(count)],
                    "provider": [provider] * count, "commissioner": [ICB] * count, "service": ["msk"] * count,
                    "currency": ["MSK-CONTACT"] * count, "pod": [pod] * count, "start_date": _date(day), "end_date": _date(day),
                    "quantity": [Decimal(1)] * count, "age": rng.integers(18, 90, count),
                    "cost": [Decimal(f"{c:.2f}") for c in np.round(rng.gamma(8, cost / 8, count), 2)],
                },
                count,
            )
        )
    outcomes = _hip_outcomes(rng, end, stay)
    return pa.concat_tables([hips, *contacts]), outcomes, prices


def _hip_outcomes(rng: np.random.Generator, end: np.ndarray, stay: np.ndarray) -> pa.Table:
    """Real PROMs episodes (primary hips with both Oxford Hip Scores) re-dated to this
    year's operations and to the half year before it."""
    records = hip_outcomes_table(primary_only=True)
    ohs = records.filter(pc.equal(records["instrument"], "oxford_hip"))
    paired = pc.value_counts(ohs["episode_id"])
    complete = [v["values"] for v in paired.to_pylist() if v["counts"] == 2]
    complete.sort()
    earlier = rng.integers(-183, 0, HIP_OPERATIONS // 2)
    operations = np.concatenate([np.sort(earlier), end])
    chosen = rng.choice(len(complete), len(operations), replace=False)
    rows = records.filter(pc.is_in(records["episode_id"], pa.array([complete[i] for i in chosen])))
    position = {complete[i]: n for n, i in enumerate(chosen)}
    stays = np.concatenate([rng.integers(1, 6, len(earlier)), stay])
    lose_pre = rng.random(len(operations)) < UNPAIRED_SHARE
    start = np.datetime64(YEAR_START.isoformat(), "D")
    out: dict[str, list] = {name: [] for name in ("patient_id", "episode_id", "instrument", "timepoint", "date", "score", "predicted", "provider")}
    for row in rows.to_pylist():
        n = position[row["episode_id"]]
        if row["timepoint"] == "pre" and lose_pre[n]:
            continue
        operated = int(operations[n])
        offset = operated - int(stays[n]) - 21 if row["timepoint"] == "pre" else operated + 182
        out["patient_id"].append(f"MSKH{n:05d}")
        out["episode_id"].append(f"HIP-{n:05d}")
        out["instrument"].append(row["instrument"])
        out["timepoint"].append(row["timepoint"])
        out["date"].append((start + np.timedelta64(offset, "D")).astype(dt.date))
        out["score"].append(row["score"])
        out["predicted"].append(row["predicted"])
        out["provider"].append(ORTHO)
    return pa.table(out, schema=OUTCOMES.arrow_schema())


def alliance(seed: int, population: list[tuple[str, str, str, int]]) -> tuple[pa.Table, pa.Table, Decimal]:
    """The alliance's interventions (costed, 4% over the budget in all) and their Barthel
    scores at the start and end; returns the activity, outcomes and the year's budget."""
    rng = np.random.default_rng([seed, 37])
    budget = sum(
        (Decimal(OVER_65_RATES[band]) * persons for commissioner, _, band, persons in population if commissioner == ICB and band in OVER_65_RATES),
        Decimal(0),
    )
    # Each member delivers about its share of the alliance's costs.
    likelihood = np.array([float(m[1]) for m in MEMBERS]) / np.array(MEMBER_COST, dtype=float)
    member = rng.choice(len(MEMBERS), INTERVENTIONS, p=likelihood / likelihood.sum())
    length = rng.integers(7, 43, INTERVENTIONS)
    end = rng.integers(0, YEAR_DAYS, INTERVENTIONS)
    start = end - length
    raw = rng.gamma(6, 1 / 6, INTERVENTIONS) * np.array(MEMBER_COST, dtype=float)[member]
    cost = np.round(raw * float(budget) * ALLIANCE_OVERSPEND / raw.sum(), 2)
    activity = _activity(
        {
            "activity_id": [f"OPA-{i:06d}" for i in range(INTERVENTIONS)],
            "patient_id": [f"OPAP{i:06d}" for i in range(INTERVENTIONS)],
            "provider": [MEMBERS[m][0] for m in member], "commissioner": [ICB] * INTERVENTIONS,
            "service": ["older-people"] * INTERVENTIONS, "currency": ["INTERMEDIATE-CARE"] * INTERVENTIONS,
            "pod": [MEMBERS[m][2] for m in member], "start_date": _date(start), "end_date": _date(end),
            "quantity": [Decimal(1)] * INTERVENTIONS, "age": rng.integers(65, 101, INTERVENTIONS),
            "cost": [Decimal(f"{c:.2f}") for c in cost],
        },
        INTERVENTIONS,
    )
    before = np.clip(np.round(rng.normal(11, 3.5, INTERVENTIONS)), 0, 19).astype(int)
    change = np.round(rng.normal(1.5, 2.5, INTERVENTIONS) + np.array(MEMBER_EFFECT)[member]).astype(int)
    after = np.clip(before + change, 0, 20)
    lose_pre = rng.random(INTERVENTIONS) < 0.02
    year = np.datetime64(YEAR_START.isoformat(), "D")
    rows: dict[str, list] = {name: [] for name in ("patient_id", "episode_id", "instrument", "timepoint", "date", "score", "predicted", "provider")}
    for i in range(INTERVENTIONS):
        for timepoint, score, day in (("pre", before[i], start[i]), ("post", after[i], end[i])):
            if timepoint == "pre" and lose_pre[i]:
                continue
            rows["patient_id"].append(f"OPAP{i:06d}")
            rows["episode_id"].append(f"OPA-{i:06d}")
            rows["instrument"].append("barthel")
            rows["timepoint"].append(timepoint)
            rows["date"].append((year + np.timedelta64(int(day), "D")).astype(dt.date))
            rows["score"].append(Decimal(int(score)))
            rows["predicted"].append(None)
            rows["provider"].append(MEMBERS[member[i]][0])
    return activity, pa.table(rows, schema=OUTCOMES.arrow_schema()), budget


def contracts(header) -> dict[str, str]:
    """The two contracts as YAML text with plain-words headers (`header` formats them)."""
    term = "term: {start: 2025-04-01, end: 2026-03-31}"
    files: dict[str, str] = {}
    files["msk-prime.yaml"] = header(f"""
        {PRIME}: the prime contractor for musculoskeletal services. It receives one block
        (£{MSK_CORE:,} a year) and an outcome incentive of 5% of it, earned on hip
        replacement outcomes: the share of patients whose Oxford Hip Score improves by at least
        8 points six months after the operation (60%), and the share whose EQ-5D index improves
        by at least 0.074 (40%), each paid on a line from floor to target.

        It pays three sub-contractors: {ORTHO}, an acute trust, per hip replacement at national
        prices × its MFF; {PHYSIO}, a GP-led physiotherapy service, on a block; and
        {CHARITY}, a charity running self-management and exercise groups, on a block.
        Outcome data: data/outcomes/hip-proms.csv (real PROMs records, re-dated).
    """) + f"""
id: MSK-2025
title: Integrated MSK service, prime contract
commissioner: {ICB}
provider: {PRIME}
{term}
services:
  msk: {{service: [msk]}}
components:
  - {{id: core, kind: block, annual: {MSK_CORE:_d}}}
  - id: outcomes
    kind: outcome_incentive
    pot: {{percent_of: core, percent: 5}}
    settle: annual
    metrics:
      - id: hip-function
        measure: {{instrument: oxford_hip, statistic: share_improved, min_change: 8}}
        schedule: {{floor: 0.80, target: 0.95}}
        weight: 0.6
      - id: quality-of-life
        measure: {{instrument: eq5d_index, statistic: share_improved, min_change: 0.074}}
        schedule: {{floor: 0.70, target: 0.90}}
        weight: 0.4
subcontracts:
  - id: MSK-2025-ORTHO
    title: Hip replacements
    provider: {ORTHO}
    services: {{hips: {{service: [msk], pod: [EL, DC]}}}}
    components:
      - {{id: ortho, kind: activity, prices: national-2025, mff: {ORTHO_MFF}, unit: spells}}
  - id: MSK-2025-PHYSIO
    title: Community physiotherapy
    provider: {PHYSIO}
    components:
      - {{id: physio, kind: block, annual: {PHYSIO_BLOCK:_d}}}
  - id: MSK-2025-SUPPORT
    title: Self-management and exercise groups
    provider: {CHARITY}
    components:
      - {{id: support, kind: block, annual: {SUPPORT_BLOCK:_d}}}
"""
    members = "\n".join(f"  - {{provider: {name}, share: {share}}}" for name, share, _ in MEMBERS)
    rates = ", ".join(f"{band}: {rate}" for band, rate in OVER_65_RATES.items())
    files["older-people-alliance.yaml"] = header(f"""
        {ALLIANCE}: an alliance of the acute trust, the community trust, the council's adult
        social care and a charity, caring for people over 65 from one pooled budget: a rate per
        person over 65 per month. Every payment to the alliance is shared among its members by
        their agreed shares.

        The members' costs (in the activity) are compared with the budget year to date: within
        5% of it the commissioner bears half of any overspend (or keeps half of any
        underspend), beyond 5% a quarter; the members' side is capped at £2,000,000 a year.

        An independence incentive of £{INDEPENDENCE_POT:,} a year is paid quarterly on the share of
        interventions that end with a higher Barthel score than they began (data/outcomes/barthel.csv):
        nothing at 55%, all at 75%.
    """) + f"""
id: OPA-2025
title: Older people's alliance
commissioner: {ICB}
provider: {ALLIANCE}
members:
{members}
{term}
services:
  older-people: {{service: [older-people]}}
components:
  - id: budget
    kind: capitation
    rates: {{{rates}}}
    population_bands: [{", ".join(OVER_65_RATES)}]
  - id: risk
    kind: risk_share
    target_of: budget
    bands: [{{up_to_percent: 5, provider_percent: 50}}, {{provider_percent: 75}}]
    provider_cap: 2_000_000
  - id: independence
    kind: outcome_incentive
    pot: {{amount: {INDEPENDENCE_POT:_d}}}
    settle: quarterly
    metrics:
      - id: more-independent
        measure: {{instrument: barthel, statistic: share_improved, min_change: 1}}
        schedule: {{floor: 0.55, target: 0.75}}
"""
    return files


def write(root: Path, seed: int, listed: dict[str, str], population: list[tuple[str, str, str, int]], header) -> tuple[list[Path], list[tuple[str, str, str, str]]]:
    """Write the partnerships' contracts, activity and outcomes under `root`; return the
    files and the price-list rows the example's list lacks."""
    msk_activity, hip_outcomes, hip_prices = msk(seed, listed)
    opa_activity, barthel, _ = alliance(seed, population)
    written: list[Path] = []
    for name, text in contracts(header).items():
        path = root / "contracts" / name
        path.write_text(text.lstrip("\n"), encoding="utf-8")
        written.append(path)
    activity_path = root / "data" / "activity" / "partnerships.parquet"
    pq.write_table(pa.concat_tables([msk_activity, opa_activity]), activity_path)
    outcomes = root / "data" / "outcomes"
    outcomes.mkdir(parents=True, exist_ok=True)
    for name, table in (("hip-proms.csv", hip_outcomes), ("barthel.csv", barthel)):
        pacsv.write_csv(table, outcomes / name)
        written.append(outcomes / name)
    written.append(activity_path)
    extra = [(code, f"{price:.2f}", "2025-04-01", "2026-03-31") for code, price in hip_prices.items() if code not in listed]
    return written, extra
