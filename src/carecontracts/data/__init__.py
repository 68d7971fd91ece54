"""Data in: schemas, checks and loading into the warehouse."""
