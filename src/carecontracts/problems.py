"""Located problems: every user-facing error names where it is and what was expected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input, located as precisely as we can."""

    source: str
    message: str
    line: int | None = None
    field: str | None = None
    value: object = None
    expected: str | None = None
    row: int | None = None

    def where(self) -> str:
        """File, then line or row, then field: `contracts/msk.yaml:14 components[1].pot`."""
        place = self.source
        if self.line is not None:
            place += f":{self.line}"
        if self.row is not None:
            place += f" row {self.row}"
        if self.field:
            place += f" {self.field}"
        return place

    def __str__(self) -> str:
        text = f"{self.where()}: {self.message}"
        if self.expected and self.expected not in self.message:
            text += f" (expected {self.expected})"
        return text


class ProblemsError(Exception):
    """Raised with every problem found, so users fix them all in one pass."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = list(problems)
        super().__init__(self.summary())

    def summary(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found"
        return head + ":\n" + "\n".join(f"  {p}" for p in self.problems)


def raise_if_any(problems: Iterable[Problem]) -> None:
    """Raise a ProblemsError if any problems were collected."""
    collected = list(problems)
    if collected:
        raise ProblemsError(collected)
