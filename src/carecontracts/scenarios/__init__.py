"""Scenarios priced by the same price stage as the payments: what-if, forecast, comparison."""
