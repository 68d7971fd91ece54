"""spell: each spell priced as the NHS Payment Scheme prices it, from a prices workbook.

A spell is paid its HRG's price for the point its pod maps to (day case, ordinary elective,
non-elective, ...; a day case or elective spell at the combined price where the workbook
gives one). Non-elective spells of patients aged 19 or over staying 0 or 1 days, on an HRG
the workbook flags, are paid the reduced short-stay emergency tariff. Each day of a spell
past its trim point (its length of stay net of critical care, rehabilitation and
palliative days) is paid the per-day long-stay payment. A spell that met every
best-practice criterion earns the differential the terms give its HRG; the whole is
raised by the specialised top-up of its service, then × MFF, half-up to pence once per
line. Policy exclusions are lines of £0 saying why: an ungrouped spell (UZ01Z), and an HRG
the workbook has no national price for (unless the terms give a local price list). An HRG
or price the workbook lacks altogether is a problem with the data, refused naming it."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.data.books import UNGROUPED
from carecontracts.engine.mechanisms.shared import labelled, monthly_factor, number_text, price_text
from carecontracts.engine.price import KindContext, fraction
from carecontracts.engine.registry import register
from carecontracts.language.model import SpellTerms
from carecontracts.money import AMOUNT_TYPE, FACTOR_TYPE, QUANTITY_TYPE, RATE_TYPE
from carecontracts.problems import Problem

POINT_NOUNS = {
    "day_case": ("day case spell", "day case spells"),
    "elective": ("ordinary elective spell", "ordinary elective spells"),
    "non_elective": ("non-elective spell", "non-elective spells"),
    "outpatient_procedure": ("outpatient procedure", "outpatient procedures"),
    "first_single": ("first attendance (single professional)", "first attendances (single professional)"),
    "first_multi": ("first attendance (multi-professional)", "first attendances (multi-professional)"),
    "follow_up_single": ("follow-up attendance (single professional)", "follow-up attendances (single professional)"),
    "follow_up_multi": ("follow-up attendance (multi-professional)", "follow-up attendances (multi-professional)"),
    "ae": ("A&E attendance (type 1 and 2 departments)", "A&E attendances (type 1 and 2 departments)"),
    "ae_type_3": ("A&E attendance (type 3 departments)", "A&E attendances (type 3 departments)"),
}
# Exact types chosen so every product below stays within 38 digits on every backend.
SPELLS_TYPE = "decimal(16, 4)"  # spells as activity counts them (4 places; no readmission share is taken off a spell)
UNIT_TYPE = "decimal(18, 4)"
BASE_TYPE = "decimal(25, 10)"
UPLIFT_TYPE = "decimal(12, 10)"


def _terms(context: KindContext) -> tuple[ir.Table, ir.Table, ir.Table, ir.Table]:
    """The components' books in each payable month, pod → point maps, best-practice differentials and top-ups as tables."""
    components, pods, differentials, topups = [], [], [], []
    for placed in context.placed:
        terms: SpellTerms = placed.component  # type: ignore[assignment]
        for month in placed.months:
            book = terms.book_on(max(month, placed.agreement.term.start))
            assert book is not None, f"{placed.contract} {placed.id}: no book in {month}"  # contracts are checked for gaps when loaded
            components.append((placed.contract, placed.id, month, placed.agreement.payee, book, terms.local_prices))
        pods += [(placed.contract, placed.id, pod, point) for pod, point in terms.pods.items()]
        differentials += [(placed.contract, placed.id, hrg.upper(), amount) for hrg, amount in terms.best_practice.items()]
        topups += [(placed.contract, placed.id, service, fraction(percent), f"{percent.normalize():f}") for service, percent in terms.topups.items()]
    key = {"contract": pa.string(), "component": pa.string()}
    return (
        context.table(key | {"month": pa.date32(), "payee": pa.string(), "book": pa.string(), "local_list": pa.string()}, components),
        context.table(key | {"pod": pa.string(), "point": pa.string()}, pods),
        context.table(key | {"currency": pa.string(), "differential": pa.decimal128(18, 4)}, differentials),
        context.table(key | {"service": pa.string(), "topup": pa.decimal128(9, 6), "topup_percent": pa.string()}, topups),
    )


def _unclashed(rows: ir.Table) -> ir.Table:
    """A left join's rows without the right side's copies of the keys."""
    return rows.drop(*[c for c in rows.columns if c.endswith("_right")])


def _refuse_gaps(context: KindContext, rows: ir.Table) -> None:
    """Spells whose pod maps to no price point, or whose HRG the book has no row for at
    that point (neither a price nor 'no national price'): a problem naming them."""
    missing = rows.filter(rows.currency != UNGROUPED).filter(rows.point.isnull() | rows.national.isnull())
    found = context.engine.to_arrow(
        missing.select("contract", "component", "book", "pod", "point", "currency").distinct().order_by(["contract", "component", "pod", "currency"]).limit(200)
    ).to_pylist()
    if not found:
        return
    where = {(p.contract, p.id): p for p in context.placed}
    problems: list[Problem] = []
    for key in dict.fromkeys((r["contract"], r["component"]) for r in found):
        gaps = [r for r in found if (r["contract"], r["component"]) == key]
        placed = where[key]
        pods = sorted({r["pod"] for r in gaps if r["point"] is None})
        if pods:
            problems.append(placed.problem(f"spells of pod {', '.join(pods)} have no price point", "pods",
                                           "every pod of the component's spells mapped to a price point (day_case, elective, non_elective, ...)"))
        priced = [r for r in gaps if r["point"] is not None]
        if priced:
            listed = "; ".join(f"{r['currency']} {POINT_NOUNS[r['point']][0]}" for r in priced[:10]) + (" and more" if len(priced) > 10 else "")
            problems.append(placed.problem(f"prices workbook '{priced[0]['book']}' has no price for {listed}", "book",
                                           f"a row for every HRG priced, in prices/{priced[0]['book']}.xlsx"))
    raise context.fail(problems)


@register("spell", measures_activity=True, summary="each spell is paid its HRG's price from the prices workbook")
def price_spell(context: KindContext) -> ir.Table:
    """Lines per service, HRG, month and price point of every spell component, from the books in force."""
    books = context.inputs.books
    if books is None:
        raise context.fail([p.problem("no prices workbook is read", "book", "a prices workbook in prices/ (.xlsx)") for p in context.placed[:20]])
    components, pods, differentials, topups = _terms(context)
    tallies = context.tallies()
    rows = tallies.join(components, ["contract", "component", "month"]).join(monthly_factor(context, "mff"), ["contract", "component", "month"])
    rows = _unclashed(rows.left_join(pods, ["contract", "component", "pod"]))
    books = books.select("book", "issue", "currency", "point", "national", "price", "combined", "trim", "excess_day",
                         "short_stay_percent", "short_stay_price", applies=books.short_stay)
    rows = _unclashed(rows.left_join(books, [rows.book == books.book, rows.currency == books.currency, rows.point == books.point]))
    if not context.inputs.repricing.prices_checked:  # a simulation's runs price the HRGs and pods of the actual year
        _refuse_gaps(context, rows)
    prices = context.inputs.prices
    if prices is not None:
        local_prices = prices.select("price_list", "currency", "unit_price", "valid_from", "valid_to")
        rows = _unclashed(rows.left_join(local_prices, [rows.local_list == local_prices.price_list, rows.currency == local_prices.currency,
                                                        local_prices.valid_from <= rows.month, local_prices.valid_to >= rows.month]))
        rows = rows.drop("price_list", "valid_from", "valid_to")
    else:
        rows = rows.mutate(unit_price=ibis.null("decimal(18, 4)"))
    rows = _unclashed(rows.left_join(differentials, ["contract", "component", "currency"]))
    rows = _unclashed(rows.left_join(topups, ["contract", "component", "service"]))

    ungrouped = rows.currency == UNGROUPED
    listed = rows.national.notnull()
    local = ~ungrouped & listed & ~rows.national.fill_null(True) & rows.unit_price.notnull()
    national = ~ungrouped & rows.national.fill_null(False)
    reduced = national & (rows.point == "non_elective") & rows.applies & rows.short_stay
    spell_price = ibis.cases(
        (reduced, rows.short_stay_price), (national, rows.price), (local, rows.unit_price), else_=ibis.literal(0).cast(UNIT_TYPE)
    ).cast(UNIT_TYPE)
    zero_days = ibis.literal(0).cast("int64")
    past_trim = ibis.cases(
        (national & rows.trim.notnull() & rows.excess_day.notnull(), ibis.greatest(rows.spell_days - rows.trim, zero_days)), else_=zero_days
    )
    per_day = ibis.cases((national & rows.excess_day.notnull(), rows.excess_day), else_=ibis.literal(0).cast(UNIT_TYPE)).cast(UNIT_TYPE)
    differential = ibis.cases((national | local, rows.differential.fill_null(0)), else_=0).cast(UNIT_TYPE)
    unit_value = (spell_price + past_trim.cast("decimal(8, 0)") * per_day).cast(UNIT_TYPE)
    spells = rows.chargeable.cast(SPELLS_TYPE)
    compliant = rows.compliant.fill_null(0)
    base = (spells * unit_value + compliant.cast("decimal(12, 0)") * differential).cast(BASE_TYPE)
    uplift = ((1 + rows.topup.fill_null(0)).cast("decimal(6, 4)") * rows.mff.cast(FACTOR_TYPE)).cast(UPLIFT_TYPE)
    status = ibis.cases((ungrouped, "ungrouped"), (national, "national"), (local, "local"), else_="unpriced")
    rows = rows.mutate(
        status=status, reduced=reduced.fill_null(False), spell_price=spell_price, per_day=per_day, differential=differential,
        excess_days=(spells * past_trim.cast("decimal(8, 0)")).cast(QUANTITY_TYPE), exact=base * uplift,
        met=ibis.cases((differential > 0, compliant), else_=0), combined=rows.combined.fill_null(False), topup_percent=rows.topup_percent, full_price=rows.price,
    )
    keys = ["scenario", "contract", "component", "payer", "payee", "service", "currency", "month", "point", "combined", "status", "reduced",
            "spell_price", "full_price", "short_stay_percent", "per_day", "trim", "differential", "topup_percent", "mff", "book", "issue", "local_list"]
    lines = rows.group_by(keys).aggregate(
        spells=rows.chargeable.sum().cast(QUANTITY_TYPE), excess=rows.excess_days.sum().cast(QUANTITY_TYPE),
        met=rows.met.sum().cast("int64"), exact=rows.exact.sum(),
    )
    return labelled(lines.mutate(
        quantity=lines.spells,
        rate=ibis.cases((lines.status.isin(["national", "local"]), lines.spell_price.cast("decimal(18, 6)") * lines.mff.cast(FACTOR_TYPE)),
                        else_=ibis.null(RATE_TYPE)).cast(RATE_TYPE),
        amount=lines.exact.round(2).cast(AMOUNT_TYPE),
        basis=_basis(context, lines),
    ))


def _basis(context: KindContext, lines: ir.Table) -> ir.StringValue:
    """The line in words: spells × price, excess bed days, best practice, top-up, MFF, and
    the book (and its issue) the prices came from."""
    engine = context.engine
    count = number_text(context, lines.spells)
    plural = ibis.cases((lines.spells == 1, " spell"), else_=" spells")
    one = lines.spells == 1
    noun = ibis.cases(*[(lines.point == point, ibis.cases((one, single), else_=many)) for point, (single, many) in POINT_NOUNS.items()],
                      else_="spells")
    book = "; book " + lines.book + ibis.cases((lines.issue.notnull(), " issue " + lines.issue), else_="")
    what = count + " " + noun + " of " + lines.currency
    mff = " × MFF " + ibis.cases((lines.mff == lines.mff.round(4), engine.number(lines.mff, 4)), else_=engine.number(lines.mff, 6))
    price = " × " + price_text(context, lines.spell_price)
    price = ibis.cases((lines.combined & (lines.status == "national"), price + " combined day case / ordinary elective price"), else_=price)
    price = ibis.cases(
        (lines.reduced, price + " reduced short-stay emergency tariff (aged 19 or over, 0-1 days"
         + ibis.cases((lines.short_stay_percent.notnull(), ", " + lines.short_stay_percent + "% of "
                       + price_text(context, lines.full_price)), else_="") + ")"),
        else_=price,
    )
    excess = ibis.cases(
        (lines.excess > 0, " + " + number_text(context, lines.excess) + " excess bed days past the trim point of "
         + lines.trim.cast("string") + " days × " + price_text(context, lines.per_day)),
        else_="",
    )
    practice = ibis.cases(
        (lines.met > 0, " + " + number_text(context, lines.met) + " meeting best practice × " + price_text(context, lines.differential)),
        else_="",
    )
    topup = ibis.cases((lines.topup_percent.notnull(), " + specialised top-up " + lines.topup_percent + "%"), else_="")
    priced = what + price + excess + practice + topup + mff
    return ibis.cases(
        (lines.status == "ungrouped", count + plural + " ungrouped (" + lines.currency + "): not priced, a policy exclusion" + book),
        (lines.status == "unpriced", what + ": no national price, not priced, a policy exclusion" + book),
        (lines.status == "local", what + ": no national price, at local price list " + lines.local_list + price + practice + topup + mff + book),
        else_=priced + book,
    )
