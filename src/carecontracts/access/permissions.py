"""What each user may do, as data: an action on a contract is allowed by the user's part in
that contract; an action on the whole book by its role. An auditor only reads."""

from __future__ import annotations

from carecontracts.access.parties import Book, Viewer

# Actions on one contract: the parts in it that may take them.
ON_CONTRACT = {
    "read": {"commissioner", "provider", "prime", "sub-contractor", "alliance member", "all"},
    "challenge.raise": {"commissioner", "prime"},  # the payer challenges what it is asked to pay
    "challenge.decide": {"commissioner", "prime"},  # uphold, reject or withdraw
    "challenge.answer": {"provider", "sub-contractor", "alliance member"},  # the payee answers
    # Contract management (GC9, SC29) is between the commissioners and the provider of a contract;
    # of several commissioners, only the co-ordinating one acts (`notices.acting_commissioners`).
    "notice.commissioner": {"commissioner"},
    "notice.provider": {"provider", "alliance member"},
    "notice.either": {"commissioner", "provider", "alliance member"},
}
# How an action is said in a refusal, where its name does not say it.
SAID = {
    "notice.commissioner": "take the commissioner's steps in contract management",
    "notice.provider": "take the provider's steps in contract management",
    "notice.either": "take steps in contract management",
}
# Actions on the whole book: the roles that may take them.
ON_BOOK = {
    "submit": {"provider"},  # a provider submits its own activity only
    "close": {"commissioner", "admin"},
    "pay": {"commissioner", "admin"},
    "outlook": {"commissioner", "admin"},  # forecast and simulate the year: each party then sees its own row
}


class Refused(Exception):
    """An action the user may not take: 404 where it may not even see the contract, else 403."""

    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail
        super().__init__(detail)


def check(book: Book, viewer: Viewer, action: str, contract: str | None = None) -> str | None:
    """Raise Refused unless the viewer may take the action; returns its part in the contract."""
    if action in ON_BOOK:
        if viewer.role not in ON_BOOK[action]:
            raise Refused(403, f"a {viewer.role} user may not {action}: only {' or '.join(sorted(ON_BOOK[action]))} users may")
        return None
    assert contract is not None, action
    part = book.visible(viewer).get(contract)
    if part is None:
        raise Refused(404, f"no contract {contract!r} that you are party to")
    if viewer.role == "auditor" and action != "read":
        raise Refused(403, "an auditor reads everything and changes nothing")
    if part not in ON_CONTRACT[action]:
        raise Refused(403, f"as {part} of {contract} you may not {SAID.get(action, action.replace('.', ' '))}: "
                           f"the {' or '.join(sorted(ON_CONTRACT[action] - {'all'}))} may")
    return part
