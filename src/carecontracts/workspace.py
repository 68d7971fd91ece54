"""A workspace: carecontracts.toml, contracts/, data/, prices/ and the .carecontracts/ warehouse."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carecontracts.periods import FinancialYear
from carecontracts.problems import Problem, ProblemsError

CONFIG_FILE = "carecontracts.toml"


class Settings(BaseModel):
    """The contents of carecontracts.toml."""

    model_config = ConfigDict(extra="forbid")

    name: str = "workspace"
    financial_year: str = Field(default="2025-26", description="The year `pay year` means.")
    financial_year_start_month: int = Field(default=4, ge=1, le=12)
    currency: str = "GBP"
    backend: str = Field(default="duckdb", pattern="^(duckdb|spark)$")
    spark_master: str = Field(default="local[*]", description="Where Spark runs: local[*], or a cluster's master URL (spark://host:7077, yarn).")
    records: str | None = Field(
        default=None, description="Where the records (submissions, closes, invoices, challenges, events) are kept: a SQLAlchemy URL; "
        "by default .carecontracts/records.sqlite.")
    budgets: dict[str, Annotated[Decimal, Field(ge=0, decimal_places=2)]] = Field(
        default_factory=dict, description="Each commissioner's budget for the year's contracts: [budgets] ICB-NCL = 495_000_000."
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
        try:
            raw = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ProblemsError([Problem(CONFIG_FILE, f"TOML syntax error: {error}")]) from None
        try:
            settings = Settings.model_validate(raw)
        except ValidationError as error:
            raise ProblemsError(
                [
                    Problem(CONFIG_FILE, e["msg"] if e["type"] != "extra_forbidden" else "unknown setting", field=".".join(map(str, e["loc"])), value=e.get("input"))
                    for e in error.errors(include_url=False)
                ]
            ) from None
        return cls(root, settings)

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
    def warehouse_path(self) -> Path:
        return self.state_dir / "warehouse.duckdb"

    @property
    def year(self) -> FinancialYear:
        return FinancialYear.parse(self.settings.financial_year, self.settings.financial_year_start_month)

    def price_lists(self) -> set[str]:
        """Names of the price lists in prices/ (file stems)."""
        return {p.stem for p in self.prices_dir.glob("*.csv")} | {p.stem for p in self.prices_dir.glob("*.parquet")}

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)
