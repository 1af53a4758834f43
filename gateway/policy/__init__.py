"""Who may see what: the policy model, its decisions, masks, row filters and per-role schemas."""
