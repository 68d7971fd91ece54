"""The catalogue's fixtures, for every module in this folder."""

from tests.errors.catalogue import example, example_template  # noqa: F401

__all__ = ["example", "example_template"]
