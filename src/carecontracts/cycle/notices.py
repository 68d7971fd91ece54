"""Contract management: the NHS Standard Contract's levers as state machines with dates.

GC9 (contract performance notice): notice → contract management meeting → withdrawn, or a
remedial action plan (after a joint investigation, if agreed) whose milestones are met, or one
missed → withholding of up to 2% of the actual monthly value → remedied and repaid, or an
exception report → retained → termination. SC29 (managing activity): an indicative activity
plan agreed or set by the commissioner, early warnings, and an activity query notice →
activity management meeting → joint activity review → activity management plan.

Which step follows which state, who takes it and the time limit for it are data (`STEPS`,
`DUE`); each step is an event in the log. A withholding is priced as a `withhold` component
of the contract, so it reaches the statements as any other term does."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterable

import holidays
import sqlalchemy as sa
from sqlalchemy.orm import Session

from carecontracts.cycle.close import current_closes, first_open
from carecontracts.cycle.contracts import find
from carecontracts.cycle.submissions import open_records
from carecontracts.language import Contract
from carecontracts.language.model import WithholdTerms
from carecontracts.periods import add_months, month_label, month_start
from carecontracts.problems import Problem, ProblemsError
from carecontracts.records import actor, record_event
from carecontracts.records.schema import Notice, NoticeStep
from carecontracts.records.store import digest, now
from carecontracts.workspace import ContractManagement, Workspace

COMMISSIONER, PROVIDER, EITHER = "commissioner", "provider", "either"


@dataclass(frozen=True)
class Lever:
    """One kind of notice: its references' prefix, what it is called and the clause it is under."""

    name: str
    prefix: str
    title: str
    clause: str
    ended: tuple[str, ...]  # the states in which nothing more is due


LEVERS = {lever.name: lever for lever in (
    Lever("cpn", "CPN", "Contract performance notice", "GC9", ("withdrawn", "completed", "remedied", "terminated")),
    Lever("aqn", "AQN", "Activity query notice", "SC29", ("withdrawn", "justified", "completed")),
    Lever("iap", "IAP", "Indicative activity plan", "SC29", ("agreed", "set")),
    Lever("early-warning", "EW", "Early warning", "SC29", ("given",)),
)}


@dataclass(frozen=True)
class Step:
    """A step of a lever: the states it may follow (none: it opens a notice), the state it
    leads to, whose act it is, and what it must be told."""

    name: str
    lever: str
    after: tuple[str, ...]
    to: str
    by: str
    title: str
    needs: tuple[str, ...] = ()  # of: milestone (with its due day), percent, month


STEPS: tuple[Step, ...] = (
    # GC9: contract performance notice.
    Step("issue", "cpn", (), "issued", COMMISSIONER, "Contract performance notice issued"),
    Step("meet", "cpn", ("issued",), "met", EITHER, "Contract management meeting held"),
    Step("investigate", "cpn", ("met",), "investigating", EITHER, "Joint investigation agreed"),
    Step("agree-plan", "cpn", ("met", "investigating"), "plan", EITHER, "Remedial action plan agreed", ("milestone",)),
    Step("milestone-met", "cpn", ("plan",), "plan", COMMISSIONER, "Milestone met; the next one set", ("milestone",)),
    Step("complete", "cpn", ("plan",), "completed", COMMISSIONER, "Remedial action plan completed"),
    Step("miss", "cpn", ("plan",), "missed", COMMISSIONER, "Milestone missed"),
    Step("withhold", "cpn", ("missed",), "withholding", COMMISSIONER, "Withholding notified", ("percent", "month")),
    Step("remedy", "cpn", ("withholding", "excepted", "retained"), "remedied", COMMISSIONER, "Failure remedied", ("month",)),
    Step("exception-report", "cpn", ("withholding",), "excepted", COMMISSIONER, "Exception report issued"),
    Step("retain", "cpn", ("excepted",), "retained", COMMISSIONER, "Sums withheld retained"),
    Step("terminate", "cpn", ("retained",), "terminated", COMMISSIONER, "Termination notice given"),
    Step("withdraw", "cpn", ("issued", "met", "investigating"), "withdrawn", COMMISSIONER, "Notice withdrawn"),
    # SC29: activity query notice.
    Step("issue", "aqn", (), "issued", COMMISSIONER, "Activity query notice issued"),
    Step("meet", "aqn", ("issued",), "met", EITHER, "Activity management meeting held"),
    Step("review", "aqn", ("met",), "reviewing", EITHER, "Joint activity review agreed"),
    Step("justified", "aqn", ("reviewing",), "justified", COMMISSIONER, "Review found the activity justified"),
    Step("agree-plan", "aqn", ("reviewing",), "plan", EITHER, "Activity management plan agreed", ("milestone",)),
    Step("complete", "aqn", ("plan",), "completed", COMMISSIONER, "Activity management plan completed"),
    Step("withdraw", "aqn", ("issued", "met"), "withdrawn", COMMISSIONER, "Notice withdrawn"),
    # SC29: the indicative activity plan, and early warnings.
    Step("agree", "iap", (), "agreed", EITHER, "Indicative activity plan agreed"),
    Step("set", "iap", (), "set", COMMISSIONER, "Indicative activity plan set by the commissioner"),
    Step("give", "early-warning", (), "given", EITHER, "Early warning given"),
)


@dataclass(frozen=True)
class Due:
    """What is due of a notice in a state, whose act it is, and when: a time limit in the
    settings (operational days from the step before), the milestone's day, or the end of the
    months allowed to remedy a withholding; None when the contract sets no time."""

    what: str
    by: str
    when: str | None


DUE = {
    ("cpn", "issued"): Due("contract management meeting", "commissioner and provider", "cpn_meeting_days"),
    ("cpn", "met"): Due("agree a remedial action plan or a joint investigation, or withdraw the notice", "commissioner and provider",
                        "rap_agreement_days"),
    ("cpn", "investigating"): Due("joint investigation report and a remedial action plan", "commissioner and provider", "investigation_days"),
    ("cpn", "plan"): Due("milestone", "provider", "milestone"),
    ("cpn", "missed"): Due("decide whether to withhold (up to the settings' withhold_max_percent)", "commissioner", None),
    ("cpn", "withholding"): Due("remedy the failure, or the sums withheld may be retained", "provider", "retention"),
    ("cpn", "excepted"): Due("remedy the failure, or the sums withheld may be retained", "provider", "retention"),
    ("cpn", "retained"): Due("remedy the failure, or the contract may be terminated", "provider", None),
    ("aqn", "issued"): Due("activity management meeting", "commissioner and provider", "aqn_meeting_days"),
    ("aqn", "met"): Due("agree a joint activity review, or withdraw the notice", "commissioner and provider", "activity_review_days"),
    ("aqn", "reviewing"): Due("agree an activity management plan, or find the activity justified", "commissioner and provider",
                              "amp_agreement_days"),
    ("aqn", "plan"): Due("milestone of the activity management plan", "provider", "milestone"),
}

def steps_of(lever: str) -> list[Step]:
    return [s for s in STEPS if s.lever == lever]


# The ways a notice is opened, as typed, and the step each is.
OPENING_STEPS = {"cpn": ("cpn", "issue"), "aqn": ("aqn", "issue"), "iap-agreed": ("iap", "agree"), "iap-set": ("iap", "set"),
                 "early-warning": ("early-warning", "give")}


def openings() -> list[str]:
    """`cpn`, `aqn`, `iap-agreed`, `iap-set`, `early-warning`."""
    return list(OPENING_STEPS)


@functools.lru_cache(maxsize=8)
def _bank_holidays(first: int, last: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=range(first, last + 1)))


def operational_days_after(day: dt.date, count: int) -> dt.date:
    """The `count`th operational day after `day`: weekdays other than England's bank holidays
    (Christmas Day and Good Friday among them)."""
    closed = _bank_holidays(day.year, day.year + 2)
    found = day
    for _ in range(count):
        found += dt.timedelta(days=1)
        while found.weekday() >= 5 or found in closed:
            found += dt.timedelta(days=1)
    return found


@dataclass(frozen=True)
class Doing:
    """What a step is told: its day, a note, and as it needs a milestone and its due day, the
    percent withheld or the month."""

    on: dt.date | None = None
    note: str | None = None
    milestone: str | None = None
    due: dt.date | None = None
    percent: str | None = None
    month: dt.date | None = None


def open_notice(workspace: Workspace, contracts: list[Contract], opening: str, contract_id: str, about: str, doing: Doing = Doing(),
                who: str | None = None) -> Notice:
    """Open a notice on a contract: a contract performance notice (`cpn`), an activity query
    notice (`aqn`), an indicative activity plan agreed or set, or an early warning."""
    step = opening_step(opening)
    if step is None:
        raise ProblemsError([Problem("notice", f"{opening!r} is not a kind of notice", value=opening, expected="one of " + ", ".join(openings()))])
    contract, body = find(contracts, contract_id)
    if body is not contract:
        raise ProblemsError([Problem("contract", f"{contract_id} is a sub-contract of {contract.id}: contract management is between the "
                                     "commissioner and the provider", value=contract_id, expected="a contract with a commissioner")])
    if not about.strip():
        raise ProblemsError([Problem("--about", "a notice says what it is about", expected='--about "what is failing, or the plan"')])
    lever = step.lever
    on = _day(doing.on)
    who = who or actor()
    with open_records(workspace).session() as session:
        prefix = LEVERS[lever].prefix
        count = session.scalar(sa.select(sa.func.count(Notice.id)).where(Notice.lever == lever)) or 0
        notice = Notice(reference=f"{prefix}-{count + 1:04d}", lever=lever, contract=contract_id, about=about.strip(), state=step.to,
                        opened_on=on, last_on=on)
        session.add(notice)
        session.flush()
        _record(session, notice, step, on, doing.note, who)
    return notice


def take_step(workspace: Workspace, reference: str, step_name: str, doing: Doing = Doing(), who: str | None = None) -> tuple[Notice, Step]:
    """Take a step of a notice: it must follow the notice's state, on or after its last step's
    day, with what the step needs; a withholding and its remedy name open months only."""
    who = who or actor()
    settings = workspace.settings.contract_management
    with open_records(workspace).session() as session:
        notice = _find(session, reference)
        step = _step_for(notice, step_name)
        on = _day(doing.on)
        if on < notice.last_on:
            raise ProblemsError([Problem("--on", f"{reference}'s last step was on {notice.last_on}: a later step cannot come before it",
                                         value=str(on), expected=f"a day from {notice.last_on} to today")])
        for need in step.needs:
            getattr(_Needs, need)(notice, doing, on, settings, workspace, session)
        if step.name == "miss" and notice.milestone_due and on < notice.milestone_due:
            raise ProblemsError([Problem("--on", f"the milestone is due on {notice.milestone_due}: it cannot be missed before then",
                                         value=str(on), expected=f"a day from {notice.milestone_due}")])
        if step.name == "retain" and notice.withheld_from and notice.retain_after_months:
            allowed = add_months(notice.withheld_from, notice.retain_after_months)
            if on < allowed:
                raise ProblemsError([Problem("--on", f"sums withheld from {month_label(notice.withheld_from)} may be retained only once "
                                             f"{notice.retain_after_months} months have passed unremedied, from {allowed}", value=str(on),
                                             expected=f"a day from {allowed}")])
        notice.state, notice.last_on = step.to, on
        _record(session, notice, step, on, doing.note, who)
    return notice, step


class _Needs:
    """What a step needs, checked and written onto the notice."""

    @staticmethod
    def milestone(notice: Notice, doing: Doing, on: dt.date, settings: ContractManagement, workspace: Workspace, session: Session) -> None:
        problems = []
        if not (doing.milestone or "").strip():
            problems.append(Problem("--milestone", "the plan's next milestone", expected='--milestone "what is to be done"'))
        if doing.due is None:
            problems.append(Problem("--due", "the day the milestone is due", expected="--due YYYY-MM-DD"))
        elif doing.due < on:
            problems.append(Problem("--due", f"{doing.due} is before the step itself ({on})", value=str(doing.due), expected=f"a day from {on}"))
        if problems:
            raise ProblemsError(problems)
        notice.milestone, notice.milestone_due = (doing.milestone or "").strip(), doing.due

    @staticmethod
    def percent(notice: Notice, doing: Doing, on: dt.date, settings: ContractManagement, workspace: Workspace, session: Session) -> None:
        most = settings.withhold_max_percent
        expected = f"a percent above 0 and at most {most.normalize():f} (contract_management.withhold_max_percent), to 2 places"
        try:
            percent = Decimal((doing.percent or "").strip())
        except InvalidOperation:
            raise ProblemsError([Problem("--percent", f"{doing.percent!r} is not a percent", value=doing.percent, expected=expected)]) from None
        if not percent.is_finite() or not 0 < percent <= most or percent != percent.quantize(Decimal("0.01")):
            raise ProblemsError([Problem("--percent", f"{doing.percent} cannot be withheld", value=doing.percent, expected=expected)])
        notice.percent, notice.retain_after_months = percent, settings.retain_after_months

    @staticmethod
    def month(notice: Notice, doing: Doing, on: dt.date, settings: ContractManagement, workspace: Workspace, session: Session) -> None:
        field = "--month"
        closes = current_closes(session)
        months = workspace.year.months
        month = month_start(doing.month) if doing.month else first_open(months, closes)
        if month is None:
            raise ProblemsError([Problem(field, f"every month of {workspace.year.label} is closed", expected="an open month")])
        if month not in months:
            raise ProblemsError([Problem(field, f"{month_label(month)} is outside the financial year {workspace.year.label}", value=month_label(month),
                                         expected=f"a month from {month_label(months[0])} to {month_label(months[-1])}")])
        if month in closes:
            raise ProblemsError([Problem(field, f"{month_label(month)} is closed: a closed month is never restated", value=month_label(month),
                                         expected="an open month, from " + month_label(first_open(months, closes) or months[-1]))])
        if notice.withheld_from is None:
            notice.withheld_from = month
            return
        if month < notice.withheld_from:
            raise ProblemsError([Problem(field, f"{month_label(month)} is before the withholding began ({month_label(notice.withheld_from)})",
                                         value=month_label(month), expected=f"a month from {month_label(notice.withheld_from)}")])
        notice.remedied_in = month


def day_of(text: str | None, field: str) -> dt.date | None:
    """A day given as YYYY-MM-DD (empty: none), or a problem naming the field it was given to."""
    if text is None or not text.strip():
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ProblemsError([Problem(field, f"{text!r} is not a day", value=text, expected="YYYY-MM-DD, e.g. 2025-11-14")]) from None


def acting_commissioners(contract: Contract) -> set[str]:
    """Who acts for the commissioners in contract management: the co-ordinating commissioner,
    or each of them where the contract names none."""
    shares = contract.commissioner_shares
    return {c.id for c in shares if c.coordinating} or {c.id for c in shares}


def step_named(lever: str, name: str) -> Step | None:
    """The lever's step of that name that follows a state (not one that opens a notice)."""
    return next((s for s in steps_of(lever) if s.name == name and s.after), None)


def opening_step(opening: str) -> Step | None:
    """The step that opens a notice of that kind (`cpn`, `iap-set`, ...)."""
    if opening not in OPENING_STEPS:
        return None
    lever, name = OPENING_STEPS[opening]
    return next(s for s in STEPS if s.lever == lever and s.name == name)


def _day(on: dt.date | None) -> dt.date:
    today = now().date()
    if on is None:
        return today
    if on > today:
        raise ProblemsError([Problem("--on", f"{on} is in the future: a step is recorded once it has happened", value=str(on),
                                     expected=f"a day up to today ({today})")])
    return on


def _find(session: Session, reference: str) -> Notice:
    notice = session.scalar(sa.select(Notice).where(Notice.reference == reference))
    if notice is None:
        raise ProblemsError([Problem("notice", f"no notice {reference}", value=reference, expected="a reference from `carecontracts notice list`")])
    return notice


def _step_for(notice: Notice, name: str) -> Step:
    """The lever's step of that name, which must follow the notice's state."""
    found = step_named(notice.lever, name)
    possible = [s.name for s in next_steps(notice)]
    if found is None or notice.state not in found.after:
        why = f"{name!r} is not a step of a {LEVERS[notice.lever].title.lower()}" if found is None else f"{notice.reference} is {notice.state}"
        raise ProblemsError([Problem("step", f"{why}: it cannot be taken now", value=name,
                                     expected="one of " + ", ".join(possible) if possible else f"nothing: {notice.reference} has ended ({notice.state})")])
    return found


def _record(session: Session, notice: Notice, step: Step, on: dt.date, note: str | None, who: str) -> None:
    session.add(NoticeStep(notice_id=notice.id, step=step.name, state=step.to, on=on, note=note, recorded_at=now(), recorded_by=who))
    record_event(session, f"notice.{step.name}", notice.reference, details(notice, step, on, note), who=who)


def details(notice: Notice, step: Step | None = None, on: dt.date | None = None, note: str | None = None) -> dict:
    """A notice as the log and the API show it."""
    shown = {"reference": notice.reference, "lever": notice.lever, "clause": LEVERS[notice.lever].clause, "contract": notice.contract,
             "about": notice.about, "state": notice.state, "opened_on": str(notice.opened_on), "last_on": str(notice.last_on),
             "milestone": notice.milestone, "milestone_due": str(notice.milestone_due) if notice.milestone_due else None,
             "percent": None if notice.percent is None else format(notice.percent, "f"),
             "withheld_from": month_label(notice.withheld_from) if notice.withheld_from else None,
             "retain_after_months": notice.retain_after_months,
             "remedied_in": month_label(notice.remedied_in) if notice.remedied_in else None}
    if step is not None:
        shown |= {"step": step.name, "title": step.title, "on": str(on), "note": note}
    return shown


def notices(workspace: Workspace, contract: str | None = None) -> list[Notice]:
    """Every notice, oldest first, optionally of one contract."""
    query = sa.select(Notice).order_by(Notice.id)
    if contract:
        query = query.where(Notice.contract == contract)
    with open_records(workspace).session() as session:
        return list(session.scalars(query))


def notice(workspace: Workspace, reference: str) -> Notice:
    """One notice by its reference; an unknown one is a problem naming where to find them."""
    with open_records(workspace).session() as session:
        return _find(session, reference)


def history(workspace: Workspace, reference: str) -> list[NoticeStep]:
    """A notice's steps, in the order taken."""
    with open_records(workspace).session() as session:
        notice = _find(session, reference)
        return list(session.scalars(sa.select(NoticeStep).where(NoticeStep.notice_id == notice.id).order_by(NoticeStep.id)))


def next_steps(notice: Notice) -> list[Step]:
    """The steps that may follow the notice's state."""
    return [s for s in steps_of(notice.lever) if notice.state in s.after]


@dataclass(frozen=True)
class Owed:
    """One thing due: of which notice, what, by whom, by when (None: no time is set), and
    whether that day has passed."""

    reference: str
    contract: str
    what: str
    by: str
    when: dt.date | None
    overdue: bool


def due(settings: ContractManagement, open_notices: Iterable[Notice], today: dt.date | None = None) -> list[Owed]:
    """What is due of each notice not ended, soonest first (those with no day set last)."""
    today = today or now().date()
    owed = []
    for notice in open_notices:
        if notice.state in LEVERS[notice.lever].ended:
            continue
        rule = DUE.get((notice.lever, notice.state))
        if rule is None:
            continue
        when: dt.date | None
        what = rule.what
        if rule.when == "milestone":
            when, what = notice.milestone_due, f"{rule.what}: {notice.milestone}"
        elif rule.when == "retention":
            when = add_months(notice.withheld_from, notice.retain_after_months or 0) if notice.withheld_from else None
        elif rule.when is not None:
            when = operational_days_after(notice.last_on, getattr(settings, rule.when))
        else:
            when = None
        owed.append(Owed(notice.reference, notice.contract, what, rule.by, when, when is not None and when < today))
    return sorted(owed, key=lambda o: (o.when is None, o.when or dt.date.max, o.reference))


def withholdings(session: Session) -> list[Notice]:
    """Notices whose withholding is priced: from the month it began to the month remedied."""
    return list(session.scalars(sa.select(Notice).where(Notice.withheld_from.is_not(None)).order_by(Notice.id)))


def withholding_stamp(held: list[Notice]) -> str:
    """Changes whenever a withholding begins, changes or is remedied: what the statements
    were priced from."""
    return digest(*(f"{n.reference}|{n.contract}|{n.percent}|{n.withheld_from}|{n.remedied_in}|{n.retain_after_months}" for n in held))


def with_withholdings(contracts: list[Contract], held: list[Notice]) -> list[Contract]:
    """The contracts with each withholding as a `withhold` component named by its notice: the
    percent of every other component's payment, from its month until remedied."""
    by_contract: dict[str, list[Notice]] = {}
    for notice in held:
        by_contract.setdefault(notice.contract, []).append(notice)
    if not by_contract:
        return contracts
    made = []
    for contract in contracts:
        notices_here = by_contract.get(contract.id)
        if not notices_here:
            made.append(contract)
            continue
        of = [c.id for c in contract.components if c.kind != "withhold"]
        added = [WithholdTerms.model_validate({
            "id": n.reference, "kind": "withhold", "of": of, "percent": n.percent, "from": n.withheld_from, "remedied": n.remedied_in,
            "retain_after_months": n.retain_after_months or 1, "reason": f"{LEVERS[n.lever].clause} notice {n.reference}: {n.about}",
            "title": f"Withholding under {n.reference}"}) for n in notices_here]
        made.append(contract.model_copy(update={"components": [*contract.components, *added]}))
    return made
