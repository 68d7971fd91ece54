"""A deterministic, seeded example workspace: one ICB, six providers, a year of activity."""

from carecontracts.examples.generate import ExampleSummary, write_example

__all__ = ["ExampleSummary", "write_example"]
