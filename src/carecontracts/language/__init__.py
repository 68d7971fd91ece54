"""The contract language: YAML contracts validated into typed, dated terms."""

from carecontracts.language.load import load_contracts
from carecontracts.language.model import Contract

__all__ = ["Contract", "load_contracts"]
