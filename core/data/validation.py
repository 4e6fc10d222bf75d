"""Validation findings: blocking errors and non-blocking warnings.

Every loader step appends :class:`Finding` objects to one
:class:`ValidationReport`. A finding says *what* is wrong, *how many* rows or
patients it touches, gives a few *examples* (row numbers, patient ids,
values) and *how to fix it*. Nothing is dropped silently: every excluded row
is counted in ``ValidationReport.rows_excluded`` under a reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

__all__ = ["Finding", "ValidationReport", "Level", "MAX_SHOWN_CHARS", "clip_text", "show_value"]

#: how serious a finding is.
Level = Literal["error", "warning", "info"]

#: the longest cell, name or value a message echoes; longer ones are cut (a 50 MB cell stays out of the report).
MAX_SHOWN_CHARS = 100


def clip_text(text: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """``str(text)``, cut to ``limit`` characters with an ellipsis and the original length.

    Examples
    --------
    >>> clip_text("x" * 500, 5)
    'xxxxx… (500 characters)'
    """
    s = str(text)
    return s if len(s) <= limit else f"{s[:limit]}… ({len(s):,} characters)"


def show_value(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """``repr(value)`` for a message, a long text cut like :func:`clip_text`.

    Examples
    --------
    >>> show_value("9" * 300, 4)
    "'9999'… (300 characters)"
    """
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value):,} characters)"
    return clip_text(repr(value), limit)


@dataclass(frozen=True)
class Finding:
    """One validation result.

    Parameters
    ----------
    level : {"error", "warning", "info"}
        ``error`` blocks training; ``warning`` is accepted but reported.
    code : str
        Stable machine-readable identifier (``"non_numeric_value"``...).
    message : str
        What is wrong, in plain words.
    count : int
        Number of rows (or patients, see ``unit``) affected.
    unit : str
        What ``count`` counts: ``"rows"``, ``"patients"``, ``"columns"``, ``"files"``.
    examples : tuple of str
        A few concrete cases (``"row 12: value='abc'"``).
    fix : str
        How to fix it.
    """

    level: Level
    code: str
    message: str
    count: int = 0
    unit: str = "rows"
    examples: tuple[str, ...] = ()
    fix: str = ""

    def to_text(self) -> str:
        head = f"[{self.level.upper()}] {self.message}"
        if self.count:
            head += f" ({self.count:,} {self.unit})"
        lines = [head]
        if self.examples:
            lines.append("    e.g. " + "; ".join(self.examples))
        if self.fix:
            lines.append("    fix: " + self.fix)
        return "\n".join(lines)


@dataclass
class ValidationReport:
    """All findings about one upload, plus summary counts.

    ``rows_excluded`` maps a reason code to the number of input rows that were
    not used because of it, so the totals always add up:
    ``rows_read == rows_used + sum(rows_excluded.values())``.
    """

    findings: list[Finding] = field(default_factory=list)
    rows_read: int = 0
    rows_used: int = 0
    rows_excluded: dict[str, int] = field(default_factory=dict)
    summary: dict[str, object] = field(default_factory=dict)

    # -- building -------------------------------------------------------
    def add(self, level: Level, code: str, message: str, *, count: int = 0, unit: str = "rows",
            examples: Sequence[str] = (), fix: str = "") -> Finding:
        # A safety net under the callers' own cutting: no example, message or fix echoes a huge cell.
        finding = Finding(level, code, clip_text(message, 4000), int(count), unit,
                          tuple(clip_text(e, 3 * MAX_SHOWN_CHARS) for e in examples[:5]),
                          clip_text(fix, 4000))
        self.findings.append(finding)
        return finding

    def error(self, code: str, message: str, **kw) -> Finding:
        return self.add("error", code, message, **kw)

    def warning(self, code: str, message: str, **kw) -> Finding:
        return self.add("warning", code, message, **kw)

    def info(self, code: str, message: str, **kw) -> Finding:
        return self.add("info", code, message, **kw)

    def exclude(self, code: str, n_rows: int) -> None:
        """Count ``n_rows`` input rows as excluded for reason ``code``."""
        if n_rows:
            self.rows_excluded[code] = self.rows_excluded.get(code, 0) + int(n_rows)

    # -- reading --------------------------------------------------------
    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when nothing blocks training."""
        return not self.errors

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def to_text(self) -> str:
        lines: list[str] = []
        if self.summary:
            lines.append("Summary")
            for k, v in self.summary.items():
                lines.append(f"  {k}: {v:,}" if isinstance(v, int) else f"  {k}: {v}")
        if self.rows_read:
            lines.append(f"Rows: {self.rows_read:,} read, {self.rows_used:,} used, "
                         f"{sum(self.rows_excluded.values()):,} excluded")
            for code, n in sorted(self.rows_excluded.items(), key=lambda kv: -kv[1]):
                lines.append(f"  excluded ({code}): {n:,}")
        for title, items in (("Errors", self.errors), ("Warnings", self.warnings)):
            lines.append(f"{title}: {len(items)}")
            lines.extend("  " + f.to_text().replace("\n", "\n  ") for f in items)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "summary": dict(self.summary),
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_excluded": dict(self.rows_excluded),
            "findings": [f.__dict__ | {"examples": list(f.examples)} for f in self.findings],
        }
