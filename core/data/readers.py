"""Reading user files into raw tables, with a clear message for anything unreadable.

Supports CSV (``,`` ``;`` tab or ``|`` delimited, decimal commas with ``;``), gzip-compressed
CSV, Parquet, and the original PhysioNet 2012 layout (a folder or zip of per-patient
``Time,Parameter,Value`` files, plus an optional outcomes file). Encodings: UTF-8 (with or
without BOM) and Latin-1; LF or CRLF line ends. Files on disk are only ever read.

Hostile input is refused with a message, never a traceback or minutes of work: archives
inflate under a cap (:data:`MAX_INFLATED_MB`, env ``CHRONOSCOPE_MAX_INFLATED_MB``), tables
are at most :data:`MAX_COLUMNS` wide (env ``CHRONOSCOPE_MAX_COLUMNS``), and a file that
mixes encodings, holds NUL bytes or repeats a column name is refused with where it happens.

This module dispatches a source to its reader by its first bytes and opens gzip and zip containers; the readers
are :mod:`core.data.csv_reader` (text), :mod:`core.data.parquet_reader`, :mod:`core.data.physionet_reader` and
:mod:`core.data.duck_reader` (large tables, out of core), on the limits of :mod:`core.data.read_limits`. The
names of ``__all__`` are the reading API; import them from here.
"""
from __future__ import annotations

import gzip
import io
import lzma
import zipfile
import zlib
from pathlib import Path

from core.data.csv_reader import probe_text_file, read_csv_bytes, sample_csv
from core.data.duck import EngineConfig
from core.data.duck_reader import read_with_duckdb
from core.data.parquet_reader import read_parquet
from core.data.physionet_reader import assemble_physionet, probe_physionet, read_physionet_folder
from core.data.read_limits import (CHUNK_BYTES, GZIP_MAGIC, MAX_ARCHIVE_FILES, MAX_COLUMNS, MAX_VALIDATE_MB, OLE_MAGIC,
                                   PARQUET_MAGIC, ZIP_MAGIC, MemoryCheck, RawTable, ReadBudget, Source, TableProbe,
                                   env_limit, out_of_memory_message, source_bytes, source_name, validate_limit_mb)
from core.exceptions import DataReadError
from core.data.validation import clip_text

__all__ = ["Source", "RawTable", "TableProbe", "MemoryCheck", "read_table", "env_limit", "validate_limit_mb",
           "out_of_memory_message",
           "MAX_INFLATED_MB", "MAX_VALIDATE_MB", "MAX_COLUMNS", "MAX_ARCHIVE_FILES"]

#: the most a gzip, zip or Parquet file may inflate to while reading (MB); a decompression bomb stops here.
#: The environment variable ``CHRONOSCOPE_MAX_INFLATED_MB`` overrides it; :func:`read_table` reads both when it
#: starts a read.
MAX_INFLATED_MB = 2048


def read_table(source: Source, engine: EngineConfig | None = None, check: MemoryCheck | None = None) -> RawTable:
    """Read one events or labels source into a :class:`RawTable`.

    Tables of at most ``engine.min_mb`` MB of text (inflated: a gzip, zip or Parquet file counts as what it
    decompresses to) are read in memory by pandas; larger ones, and folders of CSV / CSV.gz / Parquet tables,
    by DuckDB with a bounded memory (``engine``, default :meth:`EngineConfig.from_env`; see :mod:`core.data.duck`),
    an upload or an inflated archive member being spilled to a private file for it first. Anything DuckDB
    cannot read as the pandas path would goes to pandas.

    ``check`` (see :class:`TableProbe`) is called before any table is read whole, with its rows counted or
    estimated and its first rows; it raises to refuse a table too large for memory. A compressed stream is
    counted while it inflates, so a bomb is refused after its first few hundred MB, never materialised.

    Raises
    ------
    DataReadError
        With what was found and how to fix it, for an empty file, a header without rows, an
        Excel workbook, an HTML page, binary junk, a truncated gzip or a corrupt Parquet file;
        for an archive that inflates past :data:`MAX_INFLATED_MB`, a table wider than
        :data:`MAX_COLUMNS`, NUL bytes, mixed encodings or a repeated column name; for what ``check``
        refuses, and when the machine runs out of memory all the same.
    """
    budget = ReadBudget(env_limit("CHRONOSCOPE_MAX_INFLATED_MB", MAX_INFLATED_MB), engine, check)
    table = None
    try:
        table = _read_source(source, budget)
        return table
    except MemoryError:
        raise DataReadError(out_of_memory_message(source_name(source), source_bytes(source))) from None
    finally:
        budget.release(table)


def _read_source(source: Source, budget: ReadBudget) -> RawTable:
    if isinstance(source, tuple) and not isinstance(source[1], Path):
        return _read_content(str(source[0]), bytes(source[1]), budget)
    if isinstance(source, tuple):
        # an upload kept on disk (the app's large uploads): read from the file, shown by its own name
        name, path = str(source[0]), source[1]
    else:
        path = Path(source)
        name = str(path)
    if path.is_dir():
        table = read_with_duckdb(path, budget, name)
        return table if table is not None else read_physionet_folder(path, budget)
    if not path.exists():
        raise DataReadError(f"File not found: {path}. Check the path (relative paths start from "
                            f"{Path.cwd()}).")
    return _read_file(name, path, budget)


def _read_file(name: str, path: Path, budget: ReadBudget) -> RawTable:
    """A file on disk: by DuckDB when it is large (see :meth:`EngineConfig.wants`), else in memory."""
    table = read_with_duckdb(path, budget, name)
    if table is not None:
        return table
    size = path.stat().st_size
    if size > budget.in_memory_bytes:
        probe_text_file(name, path, size, budget)    # refuse before loading a large text into memory
    return _read_content(name, path.read_bytes(), budget, on_disk=True)


def _read_content(name: str, content: bytes, budget: ReadBudget, on_disk: bool = False) -> RawTable:
    if len(content) == 0:
        raise DataReadError(f"{name}: the file is empty (0 bytes). Upload the exported table itself; "
                            "if the export failed, run it again.")
    head = content[:8]
    if head.startswith(PARQUET_MAGIC):
        return read_parquet(name, content, budget)
    if head.startswith(GZIP_MAGIC):
        budget.enter(name)
        inner = _gunzip(name, content, budget)
        if isinstance(inner, Path):       # too large for memory: inflated into a spill file
            return _read_file(name, inner, budget)
        content = inner
        if len(content) == 0:
            raise DataReadError(f"{name}: the gzip archive holds an empty file. Re-export the data.")
        if content[:4].startswith(PARQUET_MAGIC):
            return read_parquet(name, content, budget)
    if content.startswith(ZIP_MAGIC):
        budget.enter(name)
        return _read_zip(name, content, budget)
    if head.startswith(OLE_MAGIC):
        raise DataReadError(f"{name}: this is a legacy Excel (.xls) or other Office file, not CSV. "
                            "Open it in your spreadsheet program and use File > Save As > CSV (UTF-8).")
    if not on_disk and len(content) > budget.in_memory_bytes:
        # a large upload held in memory: DuckDB reads it from a spill file into compact columns, if even those fit
        sample = sample_csv(name, content[:1 << 20]) if budget.check is not None else None
        if sample is not None:
            budget.probe(TableProbe(name, rows=max(content.count(b"\n") - 1, len(sample)), sample=sample,
                                    text_bytes=len(content), compact=True))
        spilled = budget.spill(name, ".csv")
        spilled.write_bytes(content)
        table = read_with_duckdb(spilled, budget, name, force=True)
        if table is not None:
            return table
    return read_csv_bytes(name, content, budget)


# -- binary containers ---------------------------------------------------------

def _gunzip(name: str, content: bytes, budget: ReadBudget) -> bytes | Path:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as stream:
            return _inflate(name, stream, budget)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
        raise DataReadError(f"{name}: the gzip file is truncated or corrupt ({clip_text(err)}). It was probably cut "
                            "off during download or copy; copy it again and check its size, or upload "
                            "the uncompressed CSV.") from None


#: while a text inflates, the memory check runs again after every this many bytes.
_CHECK_EVERY = 64 << 20


def _inflate(name: str, stream, budget: ReadBudget) -> bytes | Path:
    """Everything ``stream`` inflates to: in memory up to ``budget.in_memory_bytes``, past that in a spill file
    (whose path is returned). Refused past the inflation cap, and (a text table) as soon as the rows counted
    so far are more than the memory check allows, even read the compact way: a bomb stops early."""
    parts, total, lines, checked = [], 0, 0, 0
    out, spilled, sample, suffix = None, None, None, ".csv"
    try:
        while True:
            chunk = stream.read(min(CHUNK_BYTES, budget.left + 1))
            if not chunk:
                break
            budget.left -= len(chunk)
            if budget.left < 0:
                budget.refuse(name)
            if total == 0:
                binary = {PARQUET_MAGIC: ".parquet", ZIP_MAGIC: ".zip", GZIP_MAGIC: ".gz"}
                suffix = next((v for k, v in binary.items() if chunk.startswith(k)), ".csv")
                sample = sample_csv(name, chunk[:1 << 20]) if suffix == ".csv" else None
            total += len(chunk)
            lines += chunk.count(b"\n")
            if out is None and total > budget.in_memory_bytes:
                spilled = budget.spill(name, suffix)
                out = open(spilled, "wb")
                out.write(b"".join(parts))
                parts = []
            if out is not None:
                out.write(chunk)
            else:
                parts.append(chunk)
            if sample is not None and total - checked >= _CHECK_EVERY:
                checked = total
                budget.probe(TableProbe(name, rows=max(lines - 1, 0), sample=sample, compact=True, rows_are="at least"))
    finally:
        if out is not None:
            out.close()
    return spilled if spilled is not None else b"".join(parts)


#: what a damaged, encrypted or exotic zip member raises while it is read.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, lzma.LZMAError, OSError,
               NotImplementedError, RuntimeError, ValueError)


def _zip_names(name: str, zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = [i for i in zf.infolist() if not i.is_dir() and not Path(i.filename).name.startswith(".")]
    if len(infos) > MAX_ARCHIVE_FILES:
        raise DataReadError(f"{name}: the zip holds {len(infos):,} files, more than the {MAX_ARCHIVE_FILES:,} "
                            "read. Split it, or upload the events as one table.")
    names = [i.filename for i in infos]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataReadError(f"{name}: the zip holds two files named {clip_text(dup)!r}; only one could be read. "
                            "Re-create the archive with distinct file names.")
    return infos


def _read_member(name: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: ReadBudget,
                 spill: bool = False) -> bytes | Path:
    """A zip member's content (bounded by the inflation cap); with ``spill``, one too large for memory goes to a
    spill file (see :func:`_inflate`) and its path is returned."""
    where = f"{name}/{clip_text(info.filename)}"
    if info.file_size > budget.left:  # declared size: refuse without inflating anything
        budget.refuse(where)
    try:
        with zf.open(info) as stream:
            return _inflate(where, stream, budget) if spill else budget.read(where, stream)
    except DataReadError:
        raise
    except _ZIP_ERRORS as err:
        raise DataReadError(f"{where}: this file of the zip cannot be read ({clip_text(err)}); the archive is "
                            "damaged, encrypted or uses an unsupported compression. Re-create it without a "
                            "password (standard 'deflate' compression).") from None


def _read_zip(name: str, content: bytes, budget: ReadBudget) -> RawTable:
    try:
        zf = zipfile.ZipFile(io.BytesIO(content))
        infos = _zip_names(name, zf)
    except DataReadError:
        raise
    except _ZIP_ERRORS as err:
        raise DataReadError(f"{name}: corrupt zip archive ({clip_text(err)}). Re-create the archive.") from None
    names = [i.filename for i in infos]
    if any(n.startswith("xl/") or n == "[Content_Types].xml" for n in names):
        raise DataReadError(f"{name}: this is an Excel workbook (.xlsx), not CSV. Open it in your "
                            "spreadsheet program and use File > Save As > CSV (UTF-8), then upload that.")
    tables = [i for i in infos if i.filename.lower().endswith((".txt", ".csv", ".psv", ".csv.gz", ".parquet"))]
    if not tables:
        raise DataReadError(f"{name}: the zip holds no .txt/.csv/.parquet files (found: "
                            f"{[clip_text(n) for n in names[:5]]}). Zip the per-patient files or the events table "
                            "itself.")
    if len(tables) == 1:
        inner = _read_member(name, zf, tables[0], budget, spill=True)
        member = tables[0].filename
        table = _read_file(member, inner, budget) if isinstance(inner, Path) else _read_content(member, inner, budget)
        table.name = f"{name}/{tables[0].filename}"
    else:
        first = _read_member(name, zf, tables[0], budget)
        probe_physionet(name, first, sum(i.file_size for i in tables), budget)
        files = {tables[0].filename: first}
        files.update((i.filename, _read_member(name, zf, i, budget)) for i in tables[1:])
        table = assemble_physionet(name, files)
    read = {i.filename for i in tables}
    others = [n for n in names if n not in read]
    if others:  # said, not silently dropped
        table.notes.append(f"Ignored {len(others):,} file(s) of the zip that are not tables (.txt, .csv, .psv, "
                           f".csv.gz, .parquet), e.g. {clip_text(others[0])}.")
    return table
