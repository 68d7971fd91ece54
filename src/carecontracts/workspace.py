"""A workspace: carecontracts.toml, contracts/, data/, prices/ and the .carecontracts/ warehouse."""

from __future__ import annotations

import re
from decimal import Decimal
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from carecontracts.language.model import Number
from carecontracts.periods import FinancialYear
from carecontracts.problems import Problem, ProblemsError

CONFIG_FILE = "carecontracts.toml"


OperationalDays = Annotated[int, Field(ge=1, le=250, strict=True)]


class ContractManagement(BaseModel):
    """Time limits and bounds of the Standard Contract's contract-management levers (GC9 and
    SC29), in operational days (weekdays other than England's bank holidays). The defaults are
    common values; set each to what the contract in use says."""

    model_config = ConfigDict(extra="forbid")

    cpn_meeting_days: OperationalDays = Field(default=10, description="Operational days from a contract performance notice to the contract management meeting.")
    rap_agreement_days: OperationalDays = Field(default=5, description="Operational days from that meeting to agreeing a remedial action plan or a joint investigation.")
    investigation_days: OperationalDays = Field(default=20, description="Operational days from agreeing a joint investigation to its report and a plan.")
    withhold_max_percent: Annotated[Number, Field(gt=0, le=100, decimal_places=2)] = Field(
        default=Decimal(2), description="The most of the actual monthly value a missed milestone may withhold.")
    retain_after_months: Annotated[int, Field(ge=1, le=36, strict=True)] = Field(
        default=3, description="Months after withholding starts, unremedied, after which the sums withheld may be retained.")
    aqn_meeting_days: OperationalDays = Field(default=10, description="Operational days from an activity query notice to the activity management meeting.")
    activity_review_days: OperationalDays = Field(default=20, description="Operational days from that meeting to the joint activity review's end.")
    amp_agreement_days: OperationalDays = Field(default=5, description="Operational days from the review to agreeing an activity management plan.")


class Settings(BaseModel):
    """The contents of carecontracts.toml."""

    model_config = ConfigDict(extra="forbid")

    name: str = "workspace"
    financial_year: str = Field(default="2025-26", description="The year `pay year` means: 2025-26 (or 2025), a year from 2000 to 2098.")
    financial_year_start_month: int = Field(default=4, ge=1, le=12, strict=True)
    currency: Literal["GBP", "USD", "EUR"] = Field(default="GBP", description="The currency amounts are priced, stated and shown in: GBP (£), USD ($) or EUR (€).")
    backend: str = Field(default="duckdb", pattern="^(duckdb|spark)$")
    spark_master: str = Field(default="local[*]", description="Where Spark runs: local[*], or a cluster's master URL (spark://host:7077, yarn).")
    records: str | None = Field(
        default=None, description="Where the records (submissions, closes, invoices, challenges, events) are kept: a SQLAlchemy URL; "
        "by default .carecontracts/records.sqlite.")
    contract_management: ContractManagement = Field(default_factory=ContractManagement)
    budgets: dict[str, Annotated[Number, Field(ge=0, le=1_000_000_000_000, decimal_places=2)]] = Field(
        default_factory=dict, description="Each commissioner's budget for the year's contracts: [budgets] ICB-NCL = 495_000_000."
    )

    @field_validator("financial_year")
    @classmethod
    def _a_year(cls, text: str) -> str:
        """A financial year as 2025-26, 2025/26, 2025-2026 or 2025, its two years consecutive."""
        match = re.fullmatch(r"(\d{4})(?:[-/](\d{2}|\d{4}))?", text.strip())
        if not match or not 2000 <= int(match.group(1)) <= 2098:
            raise ValueError(f"{text!r} is not a financial year")
        first, second = int(match.group(1)), match.group(2)
        if second is not None and int(second) != ((first + 1) % 100 if len(second) == 2 else first + 1):
            raise ValueError(f"{text!r} is not a financial year: {second} does not follow {first}")
        return text


EXPECTED_SETTING = {
    "financial_year": "a financial year such as 2025-26",
    "financial_year_start_month": "a month number, 1 to 12",
    "backend": "duckdb or spark",
    "currency": "GBP (£), USD ($) or EUR (€): the currency amounts are priced, stated and shown in",
    "budgets": "amounts in the workspace's currency, to the penny: ICB-NCL = 495_000_000",
    "contract_management": "a time limit in operational days (1 to 250), or a percent or months as the README's contract management section says",
}


def setting_line(text: str, loc: tuple) -> int | None:
    """The line that sets `loc` (a key, or a table then a key) in TOML text."""
    table: tuple = ()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\s*([^\[\]]+?)\s*\]", stripped)
        if header:
            table = tuple(part.strip().strip('"') for part in header.group(1).split("."))
            if table == tuple(loc):
                return number
            continue
        key = re.match(r'^("[^"]*"|[A-Za-z0-9_-]+)\s*=', stripped)
        if key and table + (key.group(1).strip('"'),) == tuple(str(part) for part in loc[: len(table) + 1]):
            return number
    return None


def _setting_problem(text: str, error: ErrorDetails) -> Problem:
    """A settings error located at its line of carecontracts.toml."""
    loc = tuple(error["loc"])
    unknown = error["type"] == "extra_forbidden"
    message = "unknown setting" if unknown else error["msg"].replace("Value error, ", "").replace("Input should be", "should be")
    value = error.get("input")
    return Problem(
        CONFIG_FILE, message, line=setting_line(text, loc), field=".".join(map(str, loc)), value=None if unknown else value,
        expected="a setting described in the README (check its spelling)" if unknown else EXPECTED_SETTING.get(str(loc[0])),
    )


@dataclass(frozen=True)
class Workspace:
    """Paths and settings of one workspace folder."""

    root: Path
    settings: Settings

    @classmethod
    def open(cls, root: Path) -> "Workspace":
        """Open the workspace at `root`, checking carecontracts.toml."""
        config = root / CONFIG_FILE
        if not config.is_file():
            raise ProblemsError(
                [Problem(str(config), "not a carecontracts workspace", expected=f"a {CONFIG_FILE} file; create one with `carecontracts init`")]
            )
        from carecontracts.language.yaml_lines import utf8_text

        text = utf8_text(config.read_bytes(), CONFIG_FILE)
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            at = re.search(r"\(at line (\d+)", str(error))
            raise ProblemsError([Problem(CONFIG_FILE, f"TOML syntax error: {error}", line=int(at.group(1)) if at else None)]) from None
        try:
            settings = Settings.model_validate(raw)
        except ValidationError as error:
            raise ProblemsError([_setting_problem(text, e) for e in error.errors(include_url=False)]) from None
        from carecontracts.money import use_currency

        use_currency(settings.currency)
        return cls(root, settings)

    def setting_line(self, key: str) -> int | None:
        """The line of a top-level setting in carecontracts.toml, if it is written there."""
        config = self.root / CONFIG_FILE
        return setting_line(config.read_text(encoding="utf-8"), (key,)) if config.is_file() else None

    @property
    def contracts_dir(self) -> Path:
        return self.root / "contracts"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def prices_dir(self) -> Path:
        return self.root / "prices"

    @property
    def state_dir(self) -> Path:
        return self.root / ".carecontracts"

    @property
    def outputs_dir(self) -> Path:
        """Where statements and reports go unless the user says: a folder anyone can see."""
        return self.root / "outputs"

    @property
    def warehouse_path(self) -> Path:
        return self.state_dir / "warehouse.duckdb"

    @property
    def year(self) -> FinancialYear:
        return FinancialYear.parse(self.settings.financial_year, self.settings.financial_year_start_month)

    def price_lists(self) -> set[str]:
        """Names of the price lists in prices/ (file stems), and of its prices workbooks with
        their suffix (`nps-2025-26.xlsx`)."""
        lists = {p.stem for p in self.prices_dir.glob("*.csv")} | {p.stem for p in self.prices_dir.glob("*.parquet")}
        return lists | {p.name for p in self.prices_dir.glob("*.xlsx")}

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)
