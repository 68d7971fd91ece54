"""The columns each kind of input data must (or may) have, and what each must hold."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pyarrow as pa

from carecontracts.instruments import INSTRUMENTS
from carecontracts.money import INPUT_QUANTITY_TYPE, OPERAND_LIMIT, PRICE_LIMIT, PRICE_TYPE


class Kind(str, Enum):
    TEXT = "text"
    DATE = "date"
    MONTH = "month"
    DECIMAL = "decimal"
    INTEGER = "integer"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    sql_type: str | None = None
    below: int | None = None  # values must be below this: what the engine can multiply exactly

    def expected(self) -> str:
        """What a good value looks like, in words, for error messages."""
        words = {
            Kind.TEXT: "a non-empty value",
            Kind.DATE: "a date like 2025-11-30 (or 30/11/2025, day first)",
            Kind.MONTH: "a month like 2025-11",
            Kind.DECIMAL: "a number (such as 1234.56, or £1,234.56)",
            Kind.INTEGER: "a whole number (such as 1234, or 1,234)",
        }[self.kind]
        if self.choices:
            words = "one of " + ", ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            words += f" between {self.minimum:g} and {self.maximum:g}"
        elif self.minimum is not None:
            words += f" of at least {self.minimum:g}"
        if self.below is not None:
            words += f"{' and' if self.minimum is not None else ''} below {self.below:,}"
        return words

    @property
    def places(self) -> int:
        """Decimal places the stored type keeps (0 for whole numbers)."""
        if self.kind is Kind.INTEGER:
            return 0
        return int(self.target_type.rstrip(")").split(",")[1]) if "," in self.target_type else 0

    @property
    def whole_digits(self) -> int:
        """Digits the stored type keeps before the decimal point."""
        if self.kind is Kind.INTEGER:
            return 18
        if "(" not in self.target_type:
            return 0
        return int(self.target_type.split("(")[1].split(",")[0]) - self.places

    def precision_expected(self) -> str:
        return "a whole number" if self.kind is Kind.INTEGER else f"a number with at most {self.places} decimal places"

    @property
    def arrow_type(self) -> pa.DataType:
        if self.kind is Kind.TEXT:
            return pa.string()
        if self.kind in (Kind.DATE, Kind.MONTH):
            return pa.date32()
        if self.kind is Kind.INTEGER:
            return pa.int64()
        precision = int(self.target_type.split("(")[1].split(",")[0])
        return pa.decimal128(precision, self.places)

    @property
    def target_type(self) -> str:
        if self.sql_type:
            return self.sql_type
        return {
            Kind.TEXT: "VARCHAR",
            Kind.DATE: "DATE",
            Kind.MONTH: "DATE",
            Kind.DECIMAL: "DECIMAL(18, 4)",
            Kind.INTEGER: "BIGINT",
        }[self.kind]


@dataclass(frozen=True)
class Dataset:
    """One kind of input: where its files live and the columns they carry."""

    name: str
    folder: str
    columns: tuple[Column, ...]
    row_checks: tuple[tuple[str, str, str], ...] = ()  # (bad when, on typed t_ columns; field; expected)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def arrow_schema(self, names: list[str] | None = None) -> pa.Schema:
        """The Arrow schema of the dataset as stored (all columns, or those named)."""
        chosen = [c for c in self.columns if names is None or c.name in names]
        return pa.schema([(c.name, c.arrow_type) for c in chosen])


ACTIVITY = Dataset(
    "activity",
    "data/activity",
    (
        Column("activity_id", Kind.TEXT),
        Column("patient_id", Kind.TEXT),
        Column("provider", Kind.TEXT),
        Column("commissioner", Kind.TEXT),
        Column("service", Kind.TEXT),
        Column("currency", Kind.TEXT),
        Column("pod", Kind.TEXT),
        Column("start_date", Kind.DATE),
        Column("end_date", Kind.DATE),
        Column("quantity", Kind.DECIMAL, minimum=0, sql_type=INPUT_QUANTITY_TYPE, below=OPERAND_LIMIT),
        Column("referral_date", Kind.DATE, required=False),
        Column("admission_method", Kind.TEXT, required=False),
        Column("age", Kind.INTEGER, required=False, minimum=0, maximum=130),
        Column("cost", Kind.DECIMAL, required=False, minimum=0, sql_type="DECIMAL(18, 2)"),
        Column("site", Kind.TEXT, required=False),
        Column("compliant", Kind.INTEGER, required=False, minimum=0, maximum=1),
        Column("critical_care_days", Kind.INTEGER, required=False, minimum=0, maximum=36500),
        Column("rehabilitation_days", Kind.INTEGER, required=False, minimum=0, maximum=36500),
        Column("palliative_days", Kind.INTEGER, required=False, minimum=0, maximum=36500),
    ),
    (("t_end_date < t_start_date", "end_date", "an end date on or after start_date"),),
)


# Days of a spell that do not count towards its trim point (spell pricing); added after the
# other columns, so what was loaded before them reads as before.
SPELL_DAY_COLUMNS = ("critical_care_days", "rehabilitation_days", "palliative_days")


# Case-mix predictions are published by NHS England to as many as 9 places (EQ-5D index);
# scores themselves to 6 at most.
PREDICTED_SQL_TYPE = "DECIMAL(18, 10)"


def _outcome_checks() -> tuple[tuple[str, str, str], ...]:
    """From the instruments: the instrument must be known, and the score and predicted
    score within its range."""
    known = ", ".join("'" + name + "'" for name in sorted(INSTRUMENTS))
    checks = [("t_instrument NOT IN (" + known + ")", "instrument", "one of " + ", ".join(sorted(INSTRUMENTS)))]
    for item in INSTRUMENTS.values():
        outside = f"NOT ({{column}} BETWEEN {item.minimum:f} AND {item.maximum:f})"
        for column in ("score", "predicted"):
            condition = f"t_instrument = '{item.id}' AND " + outside.format(column=f"t_{column}")
            expected = item.range_expected() if column == "score" else item.range_expected().replace("score", "predicted score")
            checks.append((condition, column, expected))
    return tuple(checks)


OUTCOMES = Dataset(
    "outcomes",
    "data/outcomes",
    (
        Column("patient_id", Kind.TEXT),
        Column("episode_id", Kind.TEXT),
        Column("instrument", Kind.TEXT),
        Column("timepoint", Kind.TEXT, choices=("pre", "post")),
        Column("date", Kind.DATE),
        Column("score", Kind.DECIMAL, sql_type="DECIMAL(18, 6)"),
        Column("predicted", Kind.DECIMAL, required=False, sql_type=PREDICTED_SQL_TYPE),
        Column("provider", Kind.TEXT, required=False),
    ),
    _outcome_checks(),
)

POPULATION = Dataset(
    "population",
    "data/population",
    (
        Column("commissioner", Kind.TEXT),
        Column("month", Kind.MONTH),
        Column("band", Kind.TEXT),
        Column("persons", Kind.INTEGER, minimum=0),
    ),
)

ACTIVITY_PLAN = "an activity plan (a row naming no component)"

# A plan row is an activity plan (service, planned quantity and its value) or, when it names
# a component (or a part, `api.fixed`), a payment plan: the payment planned for it that month.
# A planned payment may be below nothing (a clawback, a withhold); planned activity may not.
PLANS = Dataset(
    "plans",
    "data/plans",
    (
        Column("contract", Kind.TEXT),
        Column("service", Kind.TEXT, required=False),
        Column("month", Kind.MONTH),
        Column("planned_quantity", Kind.DECIMAL, required=False, minimum=0, sql_type=INPUT_QUANTITY_TYPE, below=OPERAND_LIMIT),
        Column("planned_value", Kind.DECIMAL, sql_type="DECIMAL(18, 2)"),
        Column("commissioner", Kind.TEXT, required=False),
        Column("component", Kind.TEXT, required=False),
    ),
    (
        ("t_component IS NULL AND t_service IS NULL", "service",
         f"a service for {ACTIVITY_PLAN}, or a component for a payment plan"),
        ("t_component IS NULL AND t_planned_quantity IS NULL", "planned_quantity",
         f"a planned quantity for {ACTIVITY_PLAN}, or a component for a payment plan"),
        ("t_component IS NULL AND t_planned_value < 0", "planned_value", f"a number of at least 0 for {ACTIVITY_PLAN}"),
    ),
)

PRICES = Dataset(
    "prices",
    "prices",
    (
        Column("currency", Kind.TEXT),
        Column("unit_price", Kind.DECIMAL, minimum=0, sql_type=PRICE_TYPE, below=PRICE_LIMIT),
        Column("valid_from", Kind.DATE),
        Column("valid_to", Kind.DATE),
    ),
    (
        ("t_valid_to < t_valid_from", "valid_to", "a date on or after valid_from"),
        ("day(t_valid_from) <> 1", "valid_from", "the first day of a month (prices apply to whole months)"),
        ("t_valid_to <> last_day(t_valid_to)", "valid_to", "the last day of a month (prices apply to whole months)"),
    ),
)

DATASETS: tuple[Dataset, ...] = (ACTIVITY, OUTCOMES, POPULATION, PLANS, PRICES)
