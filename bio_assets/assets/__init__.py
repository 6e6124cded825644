"""Dagster assets of bio-assets, built per registered dataset."""
