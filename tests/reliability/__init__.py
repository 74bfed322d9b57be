"""The reliability harness: kills, faults and races against a simulator, then invariants."""
