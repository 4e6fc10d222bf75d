"""Stage 1 of a validation, read: the events table read whole, if validating it fits in memory.

:func:`estimate_memory` costs a table from a :class:`~core.data.read_limits.TableProbe` (its first rows and its row
count) and :func:`memory_check` refuses one over the limit before it is read; :func:`read_events` reads the events
with that check and reports an unreadable file as the blocking error ``unreadable_events``.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd

from core.config import DataConfig
from core.data.read_limits import MemoryCheck, RawTable, Source, TableProbe, source_name, validate_limit_mb
from core.data.readers import read_table
from core.data.stages.cells import blank_cells
from core.data.stages.columns import detect_columns
from core.data.validation import ValidationReport
from core.exceptions import CohortError, DataReadError

__all__ = ["read_events", "estimate_memory", "memory_check", "Progress", "LONG_ROW_BYTES", "WIDE_CELL_BYTES"]

#: ``progress(message, fraction)``: hears of each stage of a validation.
Progress = Callable[[str, float], None]

#: memory the validation takes beyond the raw table, per row of a long table (B), measured: 3 M rows validated
#: with ~115-130 B per row over the raw table's own (pandas and DuckDB paths), 20 M rows at 165 B per row in all.
LONG_ROW_BYTES = 150
#: the same per observation (filled value cell) of a wide table (B), measured at ~310-360 B (300,000 rows x 30 columns).
WIDE_CELL_BYTES = 370


def estimate_memory(probe: TableProbe, config: DataConfig) -> int:
    """About how much memory validating the table of ``probe`` takes (bytes, the interpreter aside).

    The raw table (its rows at the cost of the sample's rows in pandas, text at its real size; read by DuckDB,
    4 bytes per text cell and 8 per number), the text held while it is parsed, and what the validation adds:
    :data:`LONG_ROW_BYTES` per row of a long table, :data:`WIDE_CELL_BYTES` per filled value cell of a wide one
    (the layout and columns detected on the sample as the validation will; a table whose columns are not
    recognised is costed as wide).
    """
    sample = probe.sample.rename(columns=lambda c: str(c).strip())
    if probe.compact:
        raw_row = sum(8 if pd.api.types.is_numeric_dtype(sample[c]) or pd.api.types.is_bool_dtype(sample[c])
                      else 4 for c in sample.columns)
    elif len(sample):
        raw_row = sample.memory_usage(deep=True, index=False).sum() / len(sample)
    else:
        raw_row = 16 * sample.shape[1]
    try:
        mapping = detect_columns(sample, config)
    except CohortError:
        mapping = None
    if mapping is not None and mapping.layout == "long":
        per_row = raw_row + LONG_ROW_BYTES
    else:
        skip = {mapping.patient, mapping.time, mapping.target, mapping.group} if mapping is not None else set()
        values = [c for c in sample.columns if c not in skip]
        filled = (sum(int((~blank_cells(sample[c])).sum()) for c in values) / len(sample)) if len(sample) \
            else len(values)
        filled += 1 if config.task == "online" else 0      # one hour entry per file row
        per_row = raw_row + max(filled, 1.0) * WIDE_CELL_BYTES
    return int(probe.text_bytes + probe.rows * per_row)


def memory_check(config: DataConfig, limit_mb: float | None = None) -> MemoryCheck:
    """The check :func:`core.data.readers.read_table` runs before it reads a table whole: refuse (``DataReadError``
    with the rows, the estimate, the limit and what to do) when :func:`estimate_memory` passes ``limit_mb``
    (default :func:`core.data.readers.validate_limit_mb`)."""
    limit = validate_limit_mb() if limit_mb is None else float(limit_mb)

    def check(probe: TableProbe) -> None:
        need = estimate_memory(probe, config)
        if need <= limit * 2 ** 20:
            return
        rows = {"counted": "", "at least": "at least ", "about": "about "}.get(probe.rows_are, "")
        text = f", {probe.text_bytes / 2 ** 20:,.0f} MB of text in memory" if probe.text_bytes else ""
        raise DataReadError(
            f"{probe.name}: this table is too large to validate here: {rows}{probe.rows:,} rows of "
            f"{probe.sample.shape[1]} columns{text}, which would take about {need / 2 ** 20:,.0f} MB of memory, more "
            f"than the limit of {limit:,.0f} MB for one validation. Split it into smaller files (e.g. by patient) "
            "and validate them one by one, or validate it with `python -m core validate` on a machine with more "
            f"memory, raising the limit there (e.g. CHRONOSCOPE_MAX_VALIDATE_MB={_round_up(need / 2 ** 20)}).")
    return check


def _round_up(mb: float) -> int:
    step = 1024 if mb > 4096 else 256
    return int(-(-mb * 1.25 // step) * step)


def read_events(events: Source, config: DataConfig, report: ValidationReport, progress: Progress) -> RawTable | None:
    """The events table, read under :func:`memory_check`, its reading notes reported; ``None`` after the blocking
    error ``unreadable_events``. ``report.rows_read`` becomes the rows of the file (the wide layout counts its
    observations later, see :func:`core.data.stages.normalise.normalise_table`)."""
    check = memory_check(config)     # outside the ``try``: a bad limit in the environment is no file's fault
    progress(f"reading {source_name(events)}", 0.02)
    try:
        table = read_table(events, check=check)
    except DataReadError as err:
        report.error("unreadable_events", str(err), fix="See the message: re-export or convert the file.")
        return None
    for note in table.notes:
        report.info("read", f"{table.name}: {note}")
    report.rows_read = int(len(table.frame))
    return table
