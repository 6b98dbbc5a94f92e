"""Benchmarks that print figures (median of repeats, with a reference measured in the same run)."""
