"""Metrics with known-answer tests: classification now, image-generation metrics later."""
