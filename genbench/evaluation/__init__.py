"""The family-agnostic evaluation stage."""
