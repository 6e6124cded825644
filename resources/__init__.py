"""Dagster resources and IO managers of bio-assets."""
