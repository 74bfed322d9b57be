"""VM operations: plan, up, down, destroy, list, status. No Click in here."""
