"""The registry of payment mechanisms: contract `kind` → the function that prices it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from carecontracts.engine.price import KindContext


@dataclass(frozen=True)
class Mechanism:
    kind: str
    price: "Callable[[KindContext], ir.Table]"
    measures_activity: bool
    summary: str
    parts: dict[str, str] | None = None
    settles_yearly: bool = False  # one line for the year's tallies, not the month's

    def why(self, component: str) -> str:
        """Why a component's (or its part's, as in `api.variable`) payment moves or not."""
        part = component.split(".", 1)[1] if "." in component else None
        return (self.parts or {}).get(part or "", self.summary)


class _Registry(dict[str, Mechanism]):
    """Mechanisms by kind; importing the mechanisms package fills it on first use."""

    def __missing__(self, kind: str) -> Mechanism:
        import carecontracts.engine.mechanisms  # noqa: F401  (registers every mechanism)

        if kind not in self.keys():
            raise KeyError(f"no payment mechanism of kind '{kind}'")
        return dict.__getitem__(self, kind)


MECHANISMS: dict[str, Mechanism] = _Registry()


def register(kind: str, *, measures_activity: bool, summary: str, parts: dict[str, str] | None = None, settles_yearly: bool = False):
    """Decorator: register a pricing function under a contract component `kind`."""

    def wrap(function):
        MECHANISMS[kind] = Mechanism(kind, function, measures_activity, summary, parts, settles_yearly)
        return function

    return wrap
