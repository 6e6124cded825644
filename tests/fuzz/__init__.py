"""Fuzz targets (``fuzz_*.py``), run by ``make fuzz`` and briefly by ``tests/test_fuzz.py``."""
