"""price: tallies × contract terms → statement lines, for every scenario at once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement
from carecontracts.engine.backend import Engine
from carecontracts.engine.registry import MECHANISMS
from carecontracts.engine.statement import conform
from carecontracts.language.model import ComponentTerms
from carecontracts.periods import FinancialYear
from carecontracts.problems import Problem, ProblemsError


class PricingError(ProblemsError):
    """Terms and data that cannot be priced (e.g. a currency with no price on a date)."""


@dataclass(frozen=True)
class PricingInputs:
    """Everything pricing reads besides the terms: tallies and reference data."""

    engine: Engine
    year: FinancialYear
    scenarios: tuple[str, ...]
    tallies: ir.Table | None
    prices: ir.Table | None = None
    plans: ir.Table | None = None
    population: ir.Table | None = None


@dataclass(frozen=True)
class PricingContext:
    """One component of one agreement, with its inputs, handed to its mechanism."""

    inputs: PricingInputs
    agreement: Agreement
    component: ComponentTerms
    index: int

    @property
    def engine(self) -> Engine:
        return self.inputs.engine

    @property
    def months(self) -> list[dt.date]:
        """Months of the financial year that the agreement's term covers."""
        return [m for m in self.inputs.year.months if self.agreement.term.covers_month(m)]

    @property
    def path(self) -> tuple[str | int, ...]:
        return self.agreement.component_path(self.index)

    def where(self, field: str | None = None) -> str:
        """`contracts/x.yaml:14` of this component or one of its fields."""
        return self.agreement.location(self.path + ((field,) if field else ()))

    def scenarios(self) -> ir.Table:
        return self.engine.put(pa.table({"scenario": pa.array(self.inputs.scenarios, pa.string())}))

    def tallies(self) -> ir.Table:
        """This component's tallies (possibly none: an empty table of the right shape)."""
        tallies = self.inputs.tallies
        if tallies is None:
            raise PricingError([Problem(self.agreement.contract.source, "no activity tallies to price", field=self.component.id)])
        return tallies.filter(tallies.contract == self.agreement.id, tallies.component == self.component.id)

    def problem(self, message: str, field: str | None = None, expected: str | None = None) -> PricingError:
        line = self.agreement.contract.line_of(self.path + ((field,) if field else ()))
        dotted = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in self.path).replace(".[", "[")
        return PricingError([Problem(self.agreement.contract.source, message, line=line, field=dotted + (f".{field}" if field else ""), expected=expected)])


def price(inputs: PricingInputs, agreements: list[Agreement]) -> ir.Table:
    """Statement lines for every component of every agreement, in every scenario."""
    parts: list[ir.Table] = []
    for agreement in agreements:
        for index, component in enumerate(agreement.components):
            context = PricingContext(inputs, agreement, component, index)
            parts.append(conform(MECHANISMS[component.kind].price(context)))
    if not parts:
        raise PricingError([Problem("contracts", "no components to price")])
    return ibis.union(*parts, distinct=False)


def fraction(percent: Decimal) -> Decimal:
    """25 → 0.25, exactly."""
    return percent / Decimal(100)
