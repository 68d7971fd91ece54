"""The engine: measure (events → tallies) then price (tallies × terms → statement lines)."""
