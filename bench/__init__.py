"""Benchmarks: each times ours against a reference in the same run and prints the ratio."""
