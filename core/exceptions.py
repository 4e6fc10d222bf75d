"""Error types raised by :mod:`core`.

Pages catch only these (and show ``st.error(str(err))``); the CLI turns them
into a message and exit status 2. Anything else is a bug and propagates.
"""
from __future__ import annotations

__all__ = ["CoreError", "CohortError", "DataReadError", "ValidationFailed", "RunError"]


class CoreError(ValueError):
    """Base class of every user-facing error in :mod:`core`."""


class DataReadError(CoreError):
    """A file could not be read as a table (wrong format, corrupt, empty...)."""


class CohortError(CoreError):
    """The data were read but cannot form a usable cohort (columns, labels, ...)."""


class ValidationFailed(CohortError):
    """Validation found blocking errors; ``report`` holds all findings."""

    def __init__(self, report) -> None:  # report: core.data.validation.ValidationReport
        self.report = report
        super().__init__(report.to_text())


class RunError(CoreError):
    """A saved run folder is missing, incomplete or incompatible."""
