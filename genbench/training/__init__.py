"""Lightning callbacks every run composes (divergence, RNG state, timing, EMA, budgets)."""
