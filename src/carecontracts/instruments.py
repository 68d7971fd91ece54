"""Outcome instruments: the questionnaires and scales whose pre/post scores contracts pay on.

Each instrument has its valid range (a score outside it is a data error) and a default
minimal important difference (MID): the smallest change a patient would notice, used as the
improvement a metric counts unless the contract sets its own `min_change`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Instrument:
    """A scored outcome measure: its range, default minimal important difference and direction."""

    id: str
    label: str
    minimum: Decimal
    maximum: Decimal
    min_change: Decimal
    higher_is_better: bool = True
    unit: str = "points"

    def contains(self, score: Decimal) -> bool:
        """True when the score is within the instrument's range."""
        return self.minimum <= score <= self.maximum

    def range_expected(self) -> str:
        """What a valid score looks like, in words, for error messages."""
        article = "an" if self.id[0] in "aeiou" else "a"
        return f"{article} {self.id} score between {self.minimum} and {self.maximum}"


INSTRUMENTS: dict[str, Instrument] = {
    i.id: i
    for i in (
        # Oxford Hip and Knee Scores: 12 items scored 0-4, total 0-48, 48 best. The defaults
        # (8 and 7 points) are those the outcome contracts in use name; override per metric.
        Instrument("oxford_hip", "Oxford Hip Score", Decimal(0), Decimal(48), Decimal(8)),
        Instrument("oxford_knee", "Oxford Knee Score", Decimal(0), Decimal(48), Decimal(7)),
        # EQ-5D-3L index on the UK value set: -0.594 (worst state) to 1 (full health). MID 0.074:
        # Walters and Brazier, Quality of Life Research 2005;14:1523-32.
        Instrument("eq5d_index", "EQ-5D index", Decimal("-0.594"), Decimal(1), Decimal("0.074"), unit="index points"),
        # EQ VAS, 0 (worst imaginable health) to 100 (best). MID 7: the lower end of the 7-12
        # range estimated by Pickard, Neary and Cella, Health Qual Life Outcomes 2007;5:70.
        Instrument("eq_vas", "EQ VAS", Decimal(0), Decimal(100), Decimal(7)),
        # Barthel Index of activities of daily living, 0-20 form (20 independent). MID 2: the
        # minimal clinically important difference of 1.85 points found by Hsieh et al.,
        # Neurorehabilitation and Neural Repair 2007;21:233-8, rounded to a whole point.
        Instrument("barthel", "Barthel Index", Decimal(0), Decimal(20), Decimal(2)),
    )
}


def instrument(name: str) -> Instrument:
    """The instrument called `name`; KeyError naming the known instruments if there is none."""
    try:
        return INSTRUMENTS[name]
    except KeyError:
        raise KeyError(f"unknown instrument {name!r}: expected one of {', '.join(sorted(INSTRUMENTS))}") from None
