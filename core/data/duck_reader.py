"""Large tables and folders of tables read by DuckDB, under a memory limit (see :mod:`core.data.duck`).

:func:`read_with_duckdb` answers ``None`` for whatever the pandas path reads as well or better (small files,
archives, other encodings, decimal commas, PhysioNet folders, files DuckDB rejects), so the two engines give the
same table and the same messages.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd

from core.data import duck
from core.data.csv_reader import DECIMAL_COMMA, first_lines, header_names, sniff_delimiter
from core.data.duck import EngineConfig
from core.data.physionet_reader import PHYSIONET_HEADER
from core.data.read_limits import (OLE_MAGIC, PARQUET_MAGIC, ZIP_MAGIC, RawTable, ReadBudget, TableProbe,
                                   check_unique_columns, check_width, out_of_memory_message)
from core.exceptions import DataReadError
from core.data.validation import clip_text

__all__ = ["read_with_duckdb"]


def read_with_duckdb(path: Path, budget: ReadBudget, name: str | None = None,
                      force: bool = False) -> RawTable | None:
    """``path`` read by DuckDB, or ``None`` when the pandas path should read it.

    ``None`` for anything the pandas path reads as well or better: a small file under ``auto`` (unless
    ``force``: a small file that is large in memory), an archive, another encoding than UTF-8, decimal
    commas, a PhysioNet folder, or a file DuckDB rejects (the pandas path then gives its own message).
    Raises :class:`DataReadError` with the pandas path's message for a table too wide or with a repeated
    column name, for a folder whose tables do not share one header, for what the memory check refuses
    (judged on the rows DuckDB holds, before any reaches pandas) and when DuckDB runs out of memory.
    """
    engine = budget.engine
    folder = path.is_dir()
    if folder:
        files = duck.table_files(path)
        if files is None:
            return None
    elif path.is_file():
        files = [path]
    else:
        return None
    try:
        if engine.engine == "pandas" or not (force or engine.wants(files, folder)):
            return None
        head = duck.head_bytes(files[0], 1 << 20)
    except (OSError, EOFError, zlib.error):  # unreadable or truncated: the pandas path explains it
        return None
    if not head:
        return None
    name = name or str(path)
    parquet = head.startswith(PARQUET_MAGIC)
    if parquet:
        if any(duck.is_gzip(f) for f in files):
            return None
        return _duckdb_frame(name, files, budget, parquet=True, notes=[])
    if PHYSIONET_HEADER.match(head) or head.startswith((ZIP_MAGIC, OLE_MAGIC, PARQUET_MAGIC)):
        return None
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not merely a character cut at the end of the sample
            return None
        text = head[:err.start].decode("utf-8")
    if text.startswith("\ufeff"):
        return None  # the pandas path strips the BOM and notes it
    lines = first_lines(text.lstrip(), 52)
    if len(lines) < 2:
        return None
    header, body = lines[0], [ln for ln in lines[1:51] if ln.strip()]
    if not body or header.lstrip().lower().startswith("<"):
        return None
    delim = sniff_delimiter(header, body)
    if delim == ";" and any(DECIMAL_COMMA.search(ln) for ln in body):
        return None
    check_width(name, header.count(delim) + 1)
    check_unique_columns(name, header_names(header, delim))
    if folder:
        for f in files[1:]:
            try:
                other = first_lines(duck.head_bytes(f, 64 << 10).decode("utf-8", "replace").lstrip(), 1)
            except (OSError, EOFError, zlib.error):
                return None
            if not other or other[0].strip() != header.strip():
                raise DataReadError(f"{name}: the tables of the folder do not share one header: {f.name} starts "
                                    f"with {clip_text(other[0] if other else '', 200)!r}, {files[0].name} with "
                                    f"{clip_text(header, 200)!r}. Put only tables with the same columns in the "
                                    "folder, or read them one at a time.")
    notes = []
    if delim != ",":
        notes.append(f"Delimiter detected: {'tab' if delim == chr(9) else repr(delim)}.")
    if "\r\n" in text[:4096]:
        notes.append("Windows (CRLF) line endings.")
    return _duckdb_frame(name, files, budget, parquet=False, notes=notes, delim=delim)


def _duckdb_frame(name: str, files: list[Path], budget: ReadBudget, *, parquet: bool, notes: list[str],
                  delim: str = ",") -> RawTable | None:
    import duckdb
    engine = budget.engine
    listing = duck.file_list(files)

    def check(rows: int, sample: pd.DataFrame) -> None:
        budget.probe(TableProbe(name, rows=rows, sample=sample, compact=True))
    if parquet:
        sources = [f"read_parquet({listing})"]
    else:
        # one file: gzip by its bytes, not its name (an upload kept on disk has none)
        gz = ", compression='gzip'" if len(files) == 1 and duck.is_gzip(files[0]) else ""
        common = (f"delim={duck.literal(delim)}, header=true, quote='\"', escape='\"', "
                  f"nullstr={duck.literal_list(duck.NULL_STRINGS)}, strict_mode=true{gz}")
        sources = [f"read_csv({listing}, {common}, auto_type_candidates=['BIGINT', 'DOUBLE', 'VARCHAR'])",
                   f"read_csv({listing}, {common}, all_varchar=true)"]
    for sql in sources:
        try:
            with duck.connect(engine) as session:
                frame = duck.fetch_frame(session, sql, check=check)
            break
        except DataReadError:
            raise     # refused by the memory check
        except duckdb.ConversionException:
            continue  # a text cell in a column sniffed as numbers: read every column as text
        except duckdb.OutOfMemoryException:
            raise DataReadError(out_of_memory_message(name, sum(f.stat().st_size for f in files))) from None
        except (duckdb.Error, TypeError, ValueError, OSError):
            return None
    else:
        return None
    if frame.empty or frame.shape[1] < 2:
        return None  # the pandas path explains an empty or one-column table
    notes = notes + [f"Read by DuckDB ({len(files)} file{'s' if len(files) > 1 else ''}, memory limit "
                     f"{engine.limit_mb:,.0f} MB)."]
    raw_texts = None if parquet else _duckdb_raw_texts(listing, sources[-1], frame, engine)
    return RawTable(frame=frame, name=name, fmt="parquet" if parquet else "csv", notes=notes,
                    first_line=2 if len(files) == 1 and not parquet else None, raw_texts=raw_texts)


def _duckdb_raw_texts(listing: str, text_sql: str, frame: pd.DataFrame, engine: EngineConfig):
    """``RawTable.raw_texts`` of CSV files read by DuckDB: a column read as numbers is read again as text
    (DuckDB's number parsing trims spaces, so `` 1`` and ``1`` are both 1); text columns are the file's text."""
    numeric = [i for i, c in enumerate(frame.columns) if not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    names = list(frame.columns)

    def raw_texts(i: int) -> list[str] | None:
        if i not in numeric:
            return None
        import duckdb
        try:
            with duck.connect(engine) as session:
                rows = session.con.execute(f"SELECT DISTINCT {duck.quote(names[i])} FROM {text_sql}").fetchall()
        except (duckdb.Error, OSError):
            return None
        return [r[0] for r in rows if r[0] is not None]
    return raw_texts
