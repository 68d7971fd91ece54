"""carecontracts: health and care contracts as code.

Contracts are written as YAML, activity is measured into tallies, and tallies are priced
into statement lines that say what each party owes the other, per month, to the penny.
"""

__version__ = "0.1.0"
