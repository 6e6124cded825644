"""Errors the ``bio-assets`` console script reports in one line (no traceback), importable without Dagster."""


class ServiceError(RuntimeError):
    """The instance's service cannot start or cannot be used; the message says why and what to do."""
