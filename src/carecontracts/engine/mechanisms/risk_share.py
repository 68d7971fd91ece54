"""risk_share and gain_share (alliances, pooled budgets): variance = actual cost − target,
split in bands between the commissioner and the providers, with a cap on the providers'
side. The pooled budget paid is the target, so this component settles the commissioner's
side of the variance on the year to date: more when overspent, less when underspent.
gain_share shares underspends only; the providers bear any overspend.

The split is one rule written once over `Arithmetic`, so the engine prices it and Python
can check it (risk_share.split_variance) with the same code."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Sequence

import ibis
import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import actual_cost, money_text, pro_rata, settle_year_to_date
from carecontracts.engine.price import PricingContext
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


def _engine_scale(value: ir.NumericValue, factor: Decimal) -> ir.NumericValue:
    return (value.cast(VALUE_TYPE) * ibis.literal(factor, type="decimal(9, 6)")).cast(VALUE_TYPE)


ENGINE = Arithmetic(
    absolute=lambda value: value.abs(),
    least=lambda a, b: ibis.least(a, b).cast(VALUE_TYPE),
    greatest=lambda a, b: ibis.greatest(a, b).cast(VALUE_TYPE),
    scale=_engine_scale,
    negative=lambda value: value < 0,
    where=lambda condition, yes, no: ibis.cases((condition, yes), else_=no).cast(VALUE_TYPE),
)


def providers_side(variance: Any, target: Any, bands: Sequence[Band], cap: Any | None, sums: Arithmetic) -> Any:
    """The providers' part of the variance (same sign as it): each band's slice of |variance|,
    measured in percent of target, times the providers' percent for that band; capped."""
    size = sums.absolute(variance)
    side: Any = None
    lower = Decimal(0)
    for band in bands:
        above_lower = sums.greatest(size - sums.scale(target, lower / 100), sums.scale(size, Decimal(0)))
        if band.up_to_percent is None:
            in_band = above_lower
        else:
            in_band = sums.least(above_lower, sums.scale(target, (band.up_to_percent - lower) / 100))
        part = sums.scale(in_band, band.provider_percent / 100)
        side = part if side is None else side + part
        if band.up_to_percent is None:
            break
        lower = band.up_to_percent
    if cap is not None:
        side = sums.least(side, cap)
    return sums.where(sums.negative(variance), -side, side)


def split_variance(variance: Decimal, target: Decimal, bands: Sequence[Band], cap: Decimal | None = None) -> tuple[Decimal, Decimal]:
    """(commissioner, providers) parts of a variance, which sum to it exactly."""
    providers = providers_side(variance, target, bands, cap, DECIMALS)
    return variance - providers, providers


def _band_words(terms: RiskShareTerms) -> str:
    words, lower = [], Decimal(0)
    for band in terms.bands:
        edge = f"up to {band.up_to_percent.normalize():f}%" if band.up_to_percent is not None else f"beyond {lower.normalize():f}%"
        words.append(f"{band.provider_percent.normalize():f}% {edge}")
        lower = band.up_to_percent or lower
    return "providers bear " + ", ".join(words) + " of target"


@register("risk_share", measures_activity=True, summary="the commissioner bears its banded share of any variance from target")
@register("gain_share", measures_activity=True, summary="the commissioner recovers its banded share of an underspend; providers bear overspends")
def price_risk_share(context: PricingContext) -> ir.Table:
    terms: RiskShareTerms = context.component  # type: ignore[assignment]
    cost = actual_cost(context)
    zero = ibis.literal(0).cast(VALUE_TYPE)
    measures = ["cost"]
    if terms.target_of is not None:
        budget = context.lines_of(terms.target_of)
        budget = budget.filter(budget.month.isin(context.months))
        monthly = ibis.union(
            cost.mutate(budget=zero),
            budget.select("scenario", "payer", "month", cost=zero, budget=budget.amount.cast(VALUE_TYPE)),
            distinct=False,
        )
        measures.append("budget")
    else:
        monthly = cost
    annual = {name: value for name, value in (("target", terms.target), ("cap", terms.provider_cap)) if value is not None}

    def parameters(share: Decimal, k: int) -> dict[str, Decimal]:
        return {name: pro_rata(value, share, k) for name, value in annual.items()}

    def target_to_date(table: ir.Table) -> ir.NumericValue:
        return (table.target if terms.target is not None else table.ytd_budget).cast(VALUE_TYPE)

    def parts(table: ir.Table) -> tuple[ir.NumericValue, ir.NumericValue]:
        variance = (table.ytd_cost - target_to_date(table)).cast(VALUE_TYPE)
        cap = table.cap.cast(VALUE_TYPE) if terms.provider_cap is not None else None
        providers = providers_side(variance, target_to_date(table), terms.bands, cap, ENGINE).cast(VALUE_TYPE)
        return variance, providers

    def cumulative(table: ir.Table) -> ir.NumericValue:
        variance, providers = parts(table)
        commissioner = (variance - providers).cast(VALUE_TYPE)
        if terms.kind == "gain_share":
            commissioner = ibis.cases((variance < 0, commissioner), else_=zero).cast(VALUE_TYPE)
        return commissioner

    def basis(table: ir.Table) -> ir.StringValue:
        variance, providers = parts(table)
        bear = ibis.cases((variance < 0, "providers keep "), else_="providers bear ")
        if terms.kind == "gain_share":
            bear = ibis.cases((variance < 0, "providers keep "), else_="providers bear all, ")
            providers = ibis.cases((variance < 0, providers), else_=variance)
        return (
            "year to date: actual cost " + money_text(context, table.ytd_cost) + " − target " + money_text(context, target_to_date(table))
            + " = variance " + money_text(context, variance) + "; " + bear + money_text(context, providers.abs())
            + f" ({_band_words(terms)}" + (f", capped at {format_money(terms.provider_cap)} a year)" if terms.provider_cap is not None else ")")
            + "; commissioner's side " + money_text(context, table.due_to_date) + ", less " + money_text(context, table.paid_before) + " due before"
        )

    settled = settle_year_to_date(context, monthly, measures, parameters, {name: VALUE_TYPE for name in annual}, cumulative, basis)
    return settled.mutate(amount=settled.amount.cast(AMOUNT_TYPE))

