"""Studies that run parts of the graph again under other conditions (opt-in: slow)."""
