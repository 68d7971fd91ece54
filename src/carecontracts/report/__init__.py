"""Outputs: statement summaries and exports for finance teams (CSV, Parquet, XLSX)."""
