"""risk_share and gain_share (alliances, pooled budgets): variance = actual cost − target,
split in bands between the commissioner and the providers, with a cap on the providers'
side. The pooled budget paid is the target, so this component settles the commissioner's
side of the variance on the year to date: more when overspent, less when underspent.
gain_share shares underspends only; the providers bear any overspend.

The split is one rule written once over `Arithmetic`, so the engine prices it and Python
can check it (risk_share.split_variance) with the same code."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Sequence

import ibis
import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import COMPONENT_KEYS, FRACTION_TYPE, actual_cost, fraction_value, in_force, money_text, pro_rata, settle_year_to_date
from carecontracts.engine.price import KindContext, Placed
from carecontracts.engine.registry import register
from carecontracts.language.model import Band, RiskShareTerms
from carecontracts.money import AMOUNT_TYPE, VALUE_TYPE, format_money


@dataclass(frozen=True)
class Arithmetic:
    """The few operations the split needs, for Decimals or engine expressions."""

    absolute: Callable[[Any], Any]
    least: Callable[[Any, Any], Any]
    greatest: Callable[[Any, Any], Any]
    scale: Callable[[Any, Decimal], Any]
    negative: Callable[[Any], Any]
    where: Callable[[Any, Any, Any], Any]


DECIMALS = Arithmetic(
    absolute=abs,
    least=min,
    greatest=max,
    scale=lambda value, factor: value * factor,
    negative=lambda value: value < 0,
    where=lambda condition, yes, no: yes if condition else no,
)


def _engine_scale(value: ir.NumericValue, factor: Any) -> ir.NumericValue:
    factor = ibis.literal(factor, type=FRACTION_TYPE) if isinstance(factor, Decimal) else factor.cast(FRACTION_TYPE)
    return (value.cast(VALUE_TYPE) * factor).cast(VALUE_TYPE)


ENGINE = Arithmetic(
    absolute=lambda value: value.abs(),
    least=lambda a, b: ibis.least(a, b).cast(VALUE_TYPE),
    greatest=lambda a, b: ibis.greatest(a, b).cast(VALUE_TYPE),
    scale=_engine_scale,
    negative=lambda value: value < 0,
    where=lambda condition, yes, no: ibis.cases((condition, yes), else_=no).cast(VALUE_TYPE),
)


@dataclass(frozen=True)
class BandFactors:
    """A band as fractions of target: its lower edge, its width (unused when open) and the
    providers' fraction of the variance in it; Decimals, or columns in the engine."""

    lower: Any
    width: Any
    provider: Any
    open: Any


def band_factors(bands: Sequence[Band]) -> list[BandFactors]:
    """The bands up to the first open one, as fractions of target (6 places)."""
    found, lower = [], Decimal(0)
    for band in bands:
        width = (band.up_to_percent - lower) if band.up_to_percent is not None else Decimal(0)
        found.append(BandFactors(fraction_value(lower), fraction_value(width), fraction_value(band.provider_percent), band.up_to_percent is None))
        if band.up_to_percent is None:
            break
        lower = band.up_to_percent
    return found


def providers_side(variance: Any, target: Any, bands: Sequence[BandFactors], cap: Any | None, sums: Arithmetic) -> Any:
    """The providers' part of the variance (same sign as it): each band's slice of |variance|,
    measured in percent of target, times the providers' percent for that band; capped."""
    size = sums.absolute(variance)
    side: Any = None
    for band in bands:
        above_lower = sums.greatest(size - sums.scale(target, band.lower), sums.scale(size, Decimal(0)))
        in_band = sums.where(band.open, above_lower, sums.least(above_lower, sums.scale(target, band.width)))
        part = sums.scale(in_band, band.provider)
        side = part if side is None else side + part
    if cap is not None:
        side = sums.least(side, cap)
    return sums.where(sums.negative(variance), -side, side)


def split_variance(variance: Decimal, target: Decimal, bands: Sequence[Band], cap: Decimal | None = None) -> tuple[Decimal, Decimal]:
    """(commissioner, providers) parts of a variance, which sum to it exactly."""
    providers = providers_side(variance, target, band_factors(bands), cap, DECIMALS)
    return variance - providers, providers


def _band_words(terms: RiskShareTerms) -> str:
    words, lower = [], Decimal(0)
    for band in terms.bands:
        edge = f"up to {band.up_to_percent.normalize():f}%" if band.up_to_percent is not None else f"beyond {lower.normalize():f}%"
        words.append(f"{band.provider_percent.normalize():f}% {edge}")
        lower = band.up_to_percent or lower
    return "providers bear " + ", ".join(words) + " of target"


# Where a component has no provider cap, one no year reaches (in VALUE_TYPE).
NO_CAP = Decimal("100000000000000000")


@register("risk_share", measures_activity=True, summary="the commissioner bears its banded share of any variance from target")
@register("gain_share", measures_activity=True, summary="the commissioner recovers its banded share of an underspend; providers bear overspends")
def price_risk_share(context: KindContext) -> ir.Table:
    gain = context.kind == "gain_share"
    cost = actual_cost(context)
    zero = ibis.literal(0).cast(VALUE_TYPE)
    budgeted = [(p, p.component.target_of) for p in context.placed if p.component.target_of is not None]  # type: ignore[union-attr]
    monthly = cost.mutate(budget=zero)
    if budgeted:
        budget = context.lines_of(budgeted)
        budget = budget.select(*COMPONENT_KEYS, cost=zero, budget=budget.amount.cast(VALUE_TYPE))
        monthly = ibis.union(monthly, budget.select(monthly.columns), distinct=False)
    count = max(len(band_factors(p.component.bands)) for p in context.placed)  # type: ignore[union-attr]
    band_types = {f"band{i}_{name}": "decimal(9, 6)" for i in range(count) for name in ("lower", "width", "provider")}
    band_types |= {f"band{i}_open": "string" for i in range(count)}

    def parameters(placed: Placed, share: Decimal, upto: Sequence[dt.date], month: dt.date) -> dict[str, Any]:
        terms: RiskShareTerms = placed.component  # type: ignore[assignment]
        cap = in_force(placed, terms.provider_cap, month) if terms.provider_cap is not None else None
        values: dict[str, Any] = {
            "target": pro_rata(placed, terms.target, share, upto),
            "cap": pro_rata(placed, terms.provider_cap, share, upto),
            "terms_words": f" ({_band_words(terms)}" + (f", capped at {format_money(cap)} a year)" if cap is not None else ")"),
        }
        bands = band_factors(terms.bands)
        for i in range(count):
            band = bands[i] if i < len(bands) else BandFactors(Decimal(0), Decimal(0), Decimal(0), False)
            values |= {f"band{i}_lower": band.lower, f"band{i}_width": band.width, f"band{i}_provider": band.provider, f"band{i}_open": "open" if band.open else "closed"}
        return values

    def target_to_date(table: ir.Table) -> ir.NumericValue:
        return ibis.cases((table.target.notnull(), table.target.cast(VALUE_TYPE)), else_=table.ytd_budget.cast(VALUE_TYPE))

    def parts(table: ir.Table) -> tuple[ir.NumericValue, ir.NumericValue]:
        variance = (table.ytd_cost - target_to_date(table)).cast(VALUE_TYPE)
        bands = [BandFactors(table[f"band{i}_lower"], table[f"band{i}_width"], table[f"band{i}_provider"], table[f"band{i}_open"] == "open") for i in range(count)]
        cap = table.cap.cast(VALUE_TYPE).fill_null(ibis.literal(NO_CAP, type=VALUE_TYPE))
        providers = providers_side(variance, target_to_date(table), bands, cap, ENGINE).cast(VALUE_TYPE)
        return variance, providers

    def cumulative(table: ir.Table) -> ir.NumericValue:
        variance, providers = parts(table)
        commissioner = (variance - providers).cast(VALUE_TYPE)
        if gain:
            commissioner = ibis.cases((variance < 0, commissioner), else_=zero).cast(VALUE_TYPE)
        return commissioner

    def basis(table: ir.Table) -> ir.StringValue:
        variance, providers = parts(table)
        bear = ibis.cases((variance < 0, "providers keep "), else_="providers bear ")
        if gain:
            bear = ibis.cases((variance < 0, "providers keep "), else_="providers bear all, ")
            providers = ibis.cases((variance < 0, providers), else_=variance)
        return (
            "year to date: actual cost " + money_text(context, table.ytd_cost) + " − target " + money_text(context, target_to_date(table))
            + " = variance " + money_text(context, variance) + "; " + bear + money_text(context, providers.abs())
            + table.terms_words
            + "; commissioner's side " + money_text(context, table.due_to_date) + ", less " + money_text(context, table.paid_before) + " due before"
        )

    types = {"target": VALUE_TYPE, "cap": VALUE_TYPE, "terms_words": "string"} | band_types
    settled = settle_year_to_date(context, monthly, ["cost", "budget"], parameters, types, cumulative, basis)
    return settled.mutate(amount=settled.amount.cast(AMOUNT_TYPE))
