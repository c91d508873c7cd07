"""sclab — the self-correction lab."""
