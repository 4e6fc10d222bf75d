"""Error types raised by :mod:`core`.

Pages catch only these (and show ``st.error(str(err))``); the CLI turns them
into a message and exit status 2. Anything else is a bug and propagates.
"""
from __future__ import annotations

__all__ = ["CoreError", "CohortError", "DataReadError", "ValidationFailed", "RunError", "InternalError"]


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


class InternalError(RuntimeError):
    """An internal invariant of :mod:`core` broke: a bug, not a problem with the user's data or settings.

    Deliberately *not* a :class:`CoreError`: pages and the CLI do not show it as a user message, it propagates
    as the bug it is. Raise it where code checks its own assumptions (shapes agreed between stages, a stage
    called out of order), never for anything a user can fix."""
