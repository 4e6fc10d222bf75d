"""Reading user files into raw tables, with a clear message for anything unreadable.

Supports CSV (``,`` ``;`` tab or ``|`` delimited, decimal commas with ``;``), gzip-compressed
CSV, Parquet, and the original PhysioNet 2012 layout (a folder or zip of per-patient
``Time,Parameter,Value`` files, plus an optional outcomes file). Encodings: UTF-8 (with or
without BOM) and Latin-1; LF or CRLF line ends. Files on disk are only ever read.

Hostile input is refused with a message, never a traceback or minutes of work: archives
inflate under a cap (:data:`MAX_INFLATED_MB`, env ``CHRONOSCOPE_MAX_INFLATED_MB``), tables
are at most :data:`MAX_COLUMNS` wide (env ``CHRONOSCOPE_MAX_COLUMNS``), and a file that
mixes encodings, holds NUL bytes or repeats a column name is refused with where it happens.
"""
from __future__ import annotations

import csv
import gzip
import io
import lzma
import os
import re
import shutil
import tempfile
import weakref
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.data import duck
from core.data.duck import EngineConfig
from core.exceptions import DataReadError
from core.data.validation import clip_text

__all__ = ["Source", "RawTable", "TableProbe", "MemoryCheck", "read_table", "env_limit", "validate_limit_mb",
           "out_of_memory_message",
           "MAX_INFLATED_MB", "MAX_VALIDATE_MB", "MAX_COLUMNS", "MAX_ARCHIVE_FILES"]

#: the most a gzip, zip or Parquet file may inflate to while reading (MB); a decompression bomb stops here.
#: The environment variable ``CHRONOSCOPE_MAX_INFLATED_MB`` overrides it.
MAX_INFLATED_MB = 2048
#: the most memory one validation may take (MB), checked before a table is read whole (see :class:`TableProbe`);
#: the environment variable ``CHRONOSCOPE_MAX_VALIDATE_MB`` overrides it. The default is this or half the
#: machine's memory, whichever is less.
MAX_VALIDATE_MB = 4096
#: the widest table read (columns); the environment variable ``CHRONOSCOPE_MAX_COLUMNS`` overrides it.
MAX_COLUMNS = 5000
#: the most files one zip archive or folder may hold (PhysioNet 2012 has 4,000 per set).
MAX_ARCHIVE_FILES = 100_000
_MAX_NESTING = 2      # a zip of .csv.gz files is fine; an archive in an archive in an archive is not
_CHUNK = 8 << 20      # inflate in 8 MiB steps: memory stays within the cap plus one step

#: a path on disk, an upload as (file name, content bytes), or an upload kept on disk as (file name, Path).
Source = Union[str, os.PathLike, tuple[str, bytes], tuple[str, Path]]

_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls / .doc
_DELIMITERS = [",", ";", "\t", "|"]


@dataclass
class RawTable:
    """A table as read from the user's file(s), before any interpretation.

    ``frame`` holds the rows; ``line`` (if present in ``line_numbers``) maps each row to its
    1-based line in the file for error messages. ``outcomes`` is set when the source itself
    carried an outcomes table (PhysioNet folder/zip). ``notes`` are informational findings
    about the read (encoding, delimiter) that ingestion copies into the report.
    """

    frame: pd.DataFrame
    name: str
    fmt: str
    outcomes: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    #: data row i sits on file line ``i + first_line`` (header is line 1) when the file is one CSV.
    first_line: int | None = 2
    #: ``raw_texts(i)``: the distinct cells of column ``i`` exactly as the file writes them, for a column whose
    #: cells the frame may not show as written (numbers parsed, so `` 1`` and ``1`` are both 1; leading spaces
    #: skipped); ``None`` (the function, or what it returns) when the frame shows them. Used to report ids that
    #: differ only by surrounding whitespace before they are merged.
    raw_texts: Callable[[int], list[str] | None] | None = field(default=None, repr=False)


def env_limit(env: str, default: float) -> float:
    """A positive number from the environment variable ``env``, else ``default``.

    Raises
    ------
    DataReadError
        When the variable is set to something that is not a positive number.
    """
    raw = os.environ.get(env, "").strip()
    if not raw:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise DataReadError(f"The environment variable {env} must be a positive number; got {clip_text(raw, 40)!r}. "
                            f"Example: {env}={default:g}, or unset it for the default ({default:g}).")
    return value


def _max_columns() -> int:
    return int(env_limit("CHRONOSCOPE_MAX_COLUMNS", MAX_COLUMNS))


@dataclass(frozen=True)
class TableProbe:
    """What a table holds, measured before it is read whole: what the memory check of :func:`read_table` judges.

    Attributes
    ----------
    name : str
        The file (as shown to the user).
    rows : int
        Data rows: counted, or at least this many (a count stopped early), or estimated from the
        bytes per line of the first lines.
    sample : DataFrame
        The first rows (up to 1,000) with every column, as the reader reads them.
    text_bytes : int
        Bytes of the table's text (a CSV, inflated) kept in memory while it is parsed; 0 when it is not
        (Parquet, or read by DuckDB from a file).
    compact : bool
        Read by DuckDB: text columns come back as categoricals (each distinct value once), numbers as they are.
    rows_are : {"counted", "at least", "about"}
        How ``rows`` is known: counted to the end, a count stopped early, or estimated from the first lines.
    """

    name: str
    rows: int
    sample: pd.DataFrame = field(repr=False)
    text_bytes: int = 0
    compact: bool = False
    rows_are: str = "counted"


#: ``check(probe)``: raises :class:`DataReadError` when validating the table would take too much memory.
MemoryCheck = Callable[[TableProbe], None]
#: rows of a probe's sample.
_SAMPLE_ROWS = 1000


def validate_limit_mb() -> float:
    """The most memory one validation may take (MB): ``$CHRONOSCOPE_MAX_VALIDATE_MB``, else :data:`MAX_VALIDATE_MB`
    or half the machine's memory, whichever is less."""
    return env_limit("CHRONOSCOPE_MAX_VALIDATE_MB", min(MAX_VALIDATE_MB, duck.machine_memory_mb() / 2))


class _Inflation:
    """The limits of one read, shared by nested members: what archives may still inflate to (a cap against
    decompression bombs), how deep they nest, the memory check (``check``) and the engine that decides which
    tables are read in memory and which out of core. Content that is too large for memory is spilled to a
    private folder (``spill``), removed with the table read from it (or when the read fails)."""

    def __init__(self, engine: EngineConfig | None = None, check: MemoryCheck | None = None) -> None:
        self.limit_mb = env_limit("CHRONOSCOPE_MAX_INFLATED_MB", MAX_INFLATED_MB)
        self.left = int(self.limit_mb * 2 ** 20)
        self.depth = 0
        self.engine = engine or EngineConfig.from_env()
        self.check = check
        self.tmp: str | None = None

    @property
    def in_memory_bytes(self) -> int:
        """Tables at most this large (text inflated) are read in memory by pandas; larger ones by DuckDB."""
        if self.engine.engine == "pandas":
            return 1 << 62
        return 0 if self.engine.engine == "duckdb" else int(self.engine.min_mb * 2 ** 20)

    def probe(self, probe: TableProbe) -> None:
        if self.check is not None:
            self.check(probe)

    def spill(self, name: str, suffix: str) -> Path:
        """A new file (owner-only) in this read's spill folder."""
        if self.tmp is None:
            root = self.engine.temp_dir or None
            if root:
                Path(root).mkdir(parents=True, exist_ok=True)
            self.tmp = tempfile.mkdtemp(prefix="chronoscope-spill-", dir=root)
        path = Path(self.tmp) / f"{len(os.listdir(self.tmp))}{suffix}"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return path

    def release(self, table: RawTable | None) -> None:
        """Remove the spill folder now (no table) or when ``table`` is gone (its ``raw_texts`` may read it)."""
        if self.tmp is None:
            return
        if table is None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            weakref.finalize(table, shutil.rmtree, self.tmp, True)
        self.tmp = None

    def refuse(self, name: str, what: str = "inflates to") -> None:
        raise DataReadError(
            f"{name}: the archive {what} more than {self.limit_mb:,g} MB when decompressed, the limit set "
            "against decompression bombs. If the file is genuine, decompress it yourself and upload the "
            "CSV or Parquet file, or raise the limit: set the environment variable CHRONOSCOPE_MAX_INFLATED_MB "
            f"(e.g. CHRONOSCOPE_MAX_INFLATED_MB={int(self.limit_mb * 2)}) before starting the app or the CLI.")

    def read(self, name: str, stream) -> bytes:
        """Everything ``stream.read`` gives, in steps, refused as soon as it passes the cap."""
        parts = []
        while True:
            chunk = stream.read(min(_CHUNK, self.left + 1))
            if not chunk:
                return b"".join(parts)
            self.left -= len(chunk)
            if self.left < 0:
                self.refuse(name)
            parts.append(chunk)

    def enter(self, name: str) -> None:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise DataReadError(f"{name}: archives nested more than {_MAX_NESTING} deep (an archive in an archive "
                                "in an archive). Unpack them and upload the table itself, or one zip of the "
                                "per-patient files.")


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
    budget = _Inflation(engine, check)
    table = None
    try:
        table = _read_source(source, budget)
        return table
    except MemoryError:
        raise DataReadError(out_of_memory_message(_source_name(source), _source_bytes(source))) from None
    finally:
        budget.release(table)


def _source_name(source: Source) -> str:
    return str(source[0]) if isinstance(source, tuple) else str(source)


def _source_bytes(source: Source) -> int | None:
    try:
        if isinstance(source, tuple):
            return source[1].stat().st_size if isinstance(source[1], Path) else len(source[1])
        return Path(source).stat().st_size if Path(source).is_file() else None
    except OSError:
        return None


def out_of_memory_message(name: str, n_bytes: int | None) -> str:
    """What to say when the machine ran out of memory reading or validating ``name`` (``n_bytes`` on disk)."""
    size = f" ({n_bytes / 2**20:,.1f} MB as uploaded)" if n_bytes is not None else ""
    limit = validate_limit_mb()
    return (f"{name}{size}: the machine ran out of memory while reading and checking this table. A validation may "
            f"take up to {limit:,.0f} MB (CHRONOSCOPE_MAX_VALIDATE_MB), but less than that was free. Split the "
            "table into smaller files (e.g. by patient) and validate each, close other work, or run `python -m "
            "core validate` on a machine with more memory.")


def _read_source(source: Source, budget: _Inflation) -> RawTable:
    if isinstance(source, tuple) and not isinstance(source[1], Path):
        return _read_content(str(source[0]), bytes(source[1]), budget)
    if isinstance(source, tuple):
        # an upload kept on disk (the app's large uploads): read from the file, shown by its own name
        name, path = str(source[0]), source[1]
    else:
        path = Path(source)
        name = str(path)
    if path.is_dir():
        table = _read_with_duckdb(path, budget, name)
        return table if table is not None else _read_physionet_folder(path, budget)
    if not path.exists():
        raise DataReadError(f"File not found: {path}. Check the path (relative paths start from "
                            f"{Path.cwd()}).")
    return _read_file(name, path, budget)


def _read_file(name: str, path: Path, budget: _Inflation) -> RawTable:
    """A file on disk: by DuckDB when it is large (see :meth:`EngineConfig.wants`), else in memory."""
    table = _read_with_duckdb(path, budget, name)
    if table is not None:
        return table
    size = path.stat().st_size
    if size > budget.in_memory_bytes:
        _probe_text_file(name, path, size, budget)    # refuse before loading a large text into memory
    return _read_content(name, path.read_bytes(), budget, on_disk=True)


def _read_content(name: str, content: bytes, budget: _Inflation, on_disk: bool = False) -> RawTable:
    if len(content) == 0:
        raise DataReadError(f"{name}: the file is empty (0 bytes). Upload the exported table itself; "
                            "if the export failed, run it again.")
    head = content[:8]
    if head.startswith(_PARQUET_MAGIC):
        return _read_parquet(name, content, budget)
    if head.startswith(_GZIP_MAGIC):
        budget.enter(name)
        inner = _gunzip(name, content, budget)
        if isinstance(inner, Path):       # too large for memory: inflated into a spill file
            return _read_file(name, inner, budget)
        content = inner
        if len(content) == 0:
            raise DataReadError(f"{name}: the gzip archive holds an empty file. Re-export the data.")
        if content[:4].startswith(_PARQUET_MAGIC):
            return _read_parquet(name, content, budget)
    if content.startswith(_ZIP_MAGIC):
        budget.enter(name)
        return _read_zip(name, content, budget)
    if head.startswith(_OLE_MAGIC):
        raise DataReadError(f"{name}: this is a legacy Excel (.xls) or other Office file, not CSV. "
                            "Open it in your spreadsheet program and use File > Save As > CSV (UTF-8).")
    if not on_disk and len(content) > budget.in_memory_bytes:
        # a large upload held in memory: DuckDB reads it from a spill file into compact columns, if even those fit
        sample = _sample_csv(name, content[:1 << 20]) if budget.check is not None else None
        if sample is not None:
            budget.probe(TableProbe(name, rows=max(content.count(b"\n") - 1, len(sample)), sample=sample,
                                    text_bytes=len(content), compact=True))
        spilled = budget.spill(name, ".csv")
        spilled.write_bytes(content)
        table = _read_with_duckdb(spilled, budget, name, force=True)
        if table is not None:
            return table
    return _read_csv_bytes(name, content, budget)


# -- binary containers ---------------------------------------------------------

def _gunzip(name: str, content: bytes, budget: _Inflation) -> bytes | Path:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as stream:
            return _inflate(name, stream, budget)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
        raise DataReadError(f"{name}: the gzip file is truncated or corrupt ({clip_text(err)}). It was probably cut "
                            "off during download or copy; copy it again and check its size, or upload "
                            "the uncompressed CSV.") from None


#: while a text inflates, the memory check runs again after every this many bytes.
_CHECK_EVERY = 64 << 20


def _inflate(name: str, stream, budget: _Inflation) -> bytes | Path:
    """Everything ``stream`` inflates to: in memory up to ``budget.in_memory_bytes``, past that in a spill file
    (whose path is returned). Refused past the inflation cap, and (a text table) as soon as the rows counted
    so far are more than the memory check allows, even read the compact way: a bomb stops early."""
    parts, total, lines, checked = [], 0, 0, 0
    out, spilled, sample, suffix = None, None, None, ".csv"
    try:
        while True:
            chunk = stream.read(min(_CHUNK, budget.left + 1))
            if not chunk:
                break
            budget.left -= len(chunk)
            if budget.left < 0:
                budget.refuse(name)
            if total == 0:
                binary = {_PARQUET_MAGIC: ".parquet", _ZIP_MAGIC: ".zip", _GZIP_MAGIC: ".gz"}
                suffix = next((v for k, v in binary.items() if chunk.startswith(k)), ".csv")
                sample = _sample_csv(name, chunk[:1 << 20]) if suffix == ".csv" else None
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


def _sample_csv(name: str, head: bytes) -> pd.DataFrame | None:
    """The first rows (up to :data:`_SAMPLE_ROWS`) of a text table from its first bytes; ``None`` when they do
    not read as one (the full read then says why)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        text = head[:err.start].decode("utf-8") if err.start > len(head) - 4 else head.decode("latin-1")
    lines = _first_lines(text.lstrip("\ufeff").lstrip(), _SAMPLE_ROWS + 2)[:-1]   # the last line may be cut
    if len(lines) < 2:
        return None
    delim = _sniff_delimiter(lines[0], [ln for ln in lines[1:51] if ln.strip()])
    _check_width(name, lines[0].count(delim) + 1)          # before parsing 100,000 columns
    decimal = "," if delim == ";" and any(_DECIMAL_COMMA.search(ln) for ln in lines[1:51]) else "."
    try:
        return pd.read_csv(io.StringIO("\n".join(lines)), sep=delim, decimal=decimal, engine="c",
                           skipinitialspace=True, on_bad_lines="skip", low_memory=False)
    except (ValueError, pd.errors.ParserError, csv.Error):
        return None


def _probe_text_file(name: str, path: Path, size: int, budget: _Inflation) -> None:
    """Check a large text file before it is loaded into memory: rows estimated from its first MB's lines."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    if head.startswith((_PARQUET_MAGIC, _ZIP_MAGIC, _GZIP_MAGIC, _OLE_MAGIC)):
        return
    sample = _sample_csv(name, head)
    if sample is None:
        return
    per_line = len(head) / max(head.count(b"\n"), 1)
    budget.probe(TableProbe(name, rows=int(size / per_line), sample=sample, text_bytes=size, rows_are="about"))


#: what a damaged, encrypted or exotic zip member raises while it is read.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, lzma.LZMAError, OSError,
               NotImplementedError, RuntimeError, ValueError)

#: Arrow types that are not one value per cell.
_NESTED = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list, pa.types.is_struct,
           pa.types.is_map, pa.types.is_union)


def _read_parquet(name: str, content: bytes, budget: _Inflation) -> RawTable:
    try:
        pfile = pq.ParquetFile(io.BytesIO(content))
        schema, meta = pfile.schema_arrow, pfile.metadata
        _check_width(name, len(schema))
        # Parquet compresses too: refuse before reading what would inflate past the cap.
        inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if max(inflated, meta.num_rows * max(len(schema), 1) * 8) > budget.left:
            budget.refuse(name, "holds")
        nested = [f.name for f in schema if any(test(f.type) for test in _NESTED)]
        if nested:
            raise DataReadError(f"{name}: the Parquet columns {[clip_text(c) for c in nested[:5]]} hold lists or "
                                "records, not one value per cell. Flatten them (one row per value, e.g. "
                                "DataFrame.explode) and export again.")
        # What the rows cost in pandas, text cells at their real size: from the first rows, decoded.
        first = next(pfile.iter_batches(batch_size=_SAMPLE_ROWS), None)
        sample = _parquet_frame(name, pa.Table.from_batches([first]) if first is not None else schema.empty_table())
        per_row = sample.memory_usage(deep=True, index=False).sum() / max(len(sample), 1)
        budget.probe(TableProbe(name, rows=meta.num_rows, sample=sample, compact=True))   # even out of core?
        if meta.num_rows * per_row > budget.in_memory_bytes:
            spilled = budget.spill(name, ".parquet")
            spilled.write_bytes(content)
            table = _read_with_duckdb(spilled, budget, name, force=True)
            if table is not None:
                return table
        budget.probe(TableProbe(name, rows=meta.num_rows, sample=sample))
        frame = _parquet_frame(name, pfile.read())
    except DataReadError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as err:
        if isinstance(err, MemoryError):
            raise
        raise DataReadError(f"{name}: not a readable Parquet file ({clip_text(err)}). Re-export it, or upload "
                            "a CSV.") from None
    if frame.empty:
        raise DataReadError(f"{name}: the Parquet file has columns {[clip_text(c) for c in frame.columns[:12]]} but "
                            "no rows. Export the data rows too.")
    if not isinstance(frame.index, pd.RangeIndex):
        # A named index (e.g. written from a frame indexed by patient id) is data: keep it as columns.
        named = any(n is not None for n in frame.index.names)
        frame = frame.reset_index(drop=not named)
    _check_unique_columns(name, [str(c) for c in frame.columns])
    return RawTable(frame=frame, name=name, fmt="parquet", first_line=None)


def _parquet_frame(name: str, table: pa.Table) -> pd.DataFrame:
    table = pa.table([_plain_column(name, f, table.column(i)) for i, f in enumerate(table.schema)],
                     schema=None, names=table.schema.names, metadata=table.schema.metadata)
    return table.to_pandas()


def _plain_column(name: str, fld: pa.Field, col: pa.ChunkedArray) -> pa.ChunkedArray:
    """A Parquet column as plain values: dictionaries (categoricals) decoded, binary read as UTF-8 text."""
    typ = fld.type
    if pa.types.is_dictionary(typ):
        col, typ = col.cast(typ.value_type), typ.value_type
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ):
        try:
            return col.cast(pa.large_binary()).cast(pa.large_string())
        except pa.ArrowInvalid:
            raise DataReadError(f"{name}: the Parquet column {clip_text(fld.name)!r} holds binary data that is not "
                                "UTF-8 text. Store ids and values as text or numbers, and export again.") from None
    return col


def _check_width(name: str, n_columns: int) -> None:
    limit = _max_columns()
    if n_columns > limit:
        raise DataReadError(f"{name}: the table has {n_columns:,} columns, more than the limit of {limit:,}. A "
                            "table this wide is probably not a patient table (or one variable per column of "
                            "something else): use the long layout (patient, time, variable, value), keep only "
                            "the variables you need, or raise the limit with the environment variable "
                            f"CHRONOSCOPE_MAX_COLUMNS (e.g. CHRONOSCOPE_MAX_COLUMNS={limit * 2}).")


def _check_unique_columns(name: str, names: list[str]) -> None:
    """Refuse a repeated column name (pandas would quietly rename the second ``HR`` to ``HR.1``)."""
    seen: dict[str, int] = {}
    for i, raw in enumerate(names, start=1):
        key = raw.strip()
        if not key:
            continue  # unnamed columns get distinct names ("Unnamed: 3")
        if key in seen:
            raise DataReadError(f"{name}: the column name {clip_text(key)!r} appears more than once in the header "
                                f"(columns {seen[key]} and {i}). Rename them so each is unique (e.g. HR_monitor, "
                                "HR_manual), or delete the duplicate column.")
        seen[key] = i


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


def _read_member(name: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Inflation,
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


def _read_zip(name: str, content: bytes, budget: _Inflation) -> RawTable:
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
        _probe_physionet(name, first, sum(i.file_size for i in tables), budget)
        files = {tables[0].filename: first}
        files.update((i.filename, _read_member(name, zf, i, budget)) for i in tables[1:])
        table = _assemble_physionet(name, files)
    read = {i.filename for i in tables}
    others = [n for n in names if n not in read]
    if others:  # said, not silently dropped
        table.notes.append(f"Ignored {len(others):,} file(s) of the zip that are not tables (.txt, .csv, .psv, "
                           f".csv.gz, .parquet), e.g. {clip_text(others[0])}.")
    return table


def _read_physionet_folder(path: Path, budget: _Inflation) -> RawTable:
    found = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in (".txt", ".csv")
             and not p.name.startswith(".")]
    if len(found) > MAX_ARCHIVE_FILES:
        raise DataReadError(f"{path}: the folder holds {len(found):,} .txt/.csv files, more than the "
                            f"{MAX_ARCHIVE_FILES:,} read. Point to one set folder (e.g. set-a/).")
    if not found:
        raise DataReadError(f"{path}: the folder holds no .txt or .csv files. Point to the folder of "
                            "per-patient PhysioNet files (e.g. set-a/) or to a single events table.")
    first = found[0].read_bytes()
    _probe_physionet(str(path), first, sum(p.stat().st_size for p in found), budget)
    files = {str(found[0].relative_to(path)): first}
    files.update((str(p.relative_to(path)), p.read_bytes()) for p in found[1:])
    return _assemble_physionet(str(path), files)


def _probe_physionet(name: str, first: bytes, total_bytes: int, budget: _Inflation) -> None:
    """Check a set of per-patient files before it is read: rows estimated from the first file's bytes per line,
    the files' bytes and their decoded text held while they are parsed."""
    if budget.check is None or not _PN_HEADER.match(first[:64]):
        return
    try:
        sample = _physionet_file(name, "first file", _decode(name, first)[0])
    except DataReadError:
        return                    # the full read names the file and what is wrong with it
    per_line = len(first) / max(first.count(b"\n"), 1)
    budget.probe(TableProbe(name, rows=int(total_bytes / per_line), sample=sample.head(_SAMPLE_ROWS),
                            text_bytes=2 * total_bytes, rows_are="about"))


_OUTCOME_HEADER = re.compile(rb"^\s*(\xef\xbb\xbf)?recordid\s*,", re.IGNORECASE)
_PN_HEADER = re.compile(rb"^\s*(\xef\xbb\xbf)?time\s*,\s*parameter\s*,\s*value", re.IGNORECASE)
_PN_COLUMNS = {"time": "Time", "parameter": "Parameter", "value": "Value"}
#: a non-empty line of a per-patient file with other than exactly three fields (no, one, or three or more commas).
_NOT_THREE_FIELDS = re.compile(r"^(?:[^,\n]+|[^,\n]*,[^,\n]*|(?:[^,\n]*,){3}.*)$", re.MULTILINE)


def _assemble_physionet(name: str, files: dict[str, bytes]) -> RawTable:
    """Concatenate per-patient ``Time,Parameter,Value`` files into one long table.

    Each file's ``RecordID`` row gives the patient id (the file name stem if absent). A file
    whose header starts with ``RecordID`` is taken as the outcomes table. Header names are
    matched whatever their case (``time,parameter,value`` too).

    Plain files (the header exactly those three names, three unquoted fields on every line) are parsed
    together in one pass, which keeps 20,000 tiny files to seconds; any other file is parsed on its own
    (:func:`_physionet_file`), with the same result.
    """
    outcomes, skipped, n_read = None, [], 0
    segments: list = []        # in file order: (fname, rows, pid or None) of plain files, or a parsed frame
    bodies: list[str] = []
    for fname, raw in files.items():
        if _OUTCOME_HEADER.match(raw[:64]):
            outcomes = _read_csv_bytes(f"{name}/{fname}", raw).frame
            continue
        if not _PN_HEADER.match(raw[:64]):
            skipped.append(fname)
            continue
        n_read += 1
        # Decode like any CSV (BOM, Latin-1) so one odd file cannot crash the whole set.
        text, _ = _decode(f"{name}/{fname}", raw)
        plain = _plain_physionet_body(text)
        if plain is None:
            segments.append(_physionet_file(name, fname, text))
        else:
            body, rows = plain
            bodies.append(body)
            segments.append((fname, rows))
    if not n_read:
        raise DataReadError(f"{name}: no per-patient file with the header 'Time,Parameter,Value' was found "
                            f"(looked at {len(files)} files, e.g. {[clip_text(f) for f in list(files)[:3]]}). "
                            "Upload the PhysioNet set folder/zip, or a single long/wide events table.")
    table = RawTable(frame=_join_physionet(segments, bodies), name=name, fmt="physionet", outcomes=outcomes,
                     first_line=None)
    table.notes.append(f"Read {n_read:,} per-patient files (PhysioNet 2012 layout)"
                       + (" and an outcomes file" if outcomes is not None else "")
                       + (f"; ignored {len(skipped)} other files (e.g. {clip_text(skipped[0])})" if skipped else "")
                       + ".")
    return table


def _plain_physionet_body(text: str) -> tuple[str, int] | None:
    """A plain per-patient file's lines after the header and how many rows they are, or ``None`` when the file
    is not plain: quotes, lone carriage returns, another header than ``Time,Parameter,Value`` (any case, spaces
    around names), or a non-empty line without exactly three fields. pandas reads a plain file's rows as the
    non-empty lines split at the two commas, so one joint parse gives what one parse per file gives."""
    if '"' in text:
        return None
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        return None
    cut = text.find("\n")
    header, body = (text, "") if cut < 0 else (text[:cut], text[cut + 1:])
    if [c.strip().lower() for c in header.split(",")] != ["time", "parameter", "value"]:
        return None
    if _NOT_THREE_FIELDS.search(body):
        return None
    body = body.strip("\n")
    if "\n\n" in body:                 # blank lines between rows: pandas skips them
        rows = sum(1 for line in body.split("\n") if line)
    else:
        rows = body.count("\n") + 1 if body else 0
    return body, rows


def _physionet_file(name: str, fname: str, text: str) -> pd.DataFrame:
    """One per-patient file on its own: ``patient_id`` (from its RecordID row, else the file name) and its rows."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, csv.Error) as err:
        raise DataReadError(f"{name}/{fname}: this per-patient file is malformed ({clip_text(str(err).strip())}). "
                            "Every line must have the three fields Time,Parameter,Value; fix that line or "
                            "remove the file from the set.") from None
    names = [c.strip() for c in frame.columns]
    _check_unique_columns(f"{name}/{fname}", names)
    frame.columns = [_PN_COLUMNS.get(c.lower(), c) for c in names]
    if not set(_PN_COLUMNS.values()) <= set(frame.columns):
        raise DataReadError(f"{name}/{fname}: this per-patient file's header is "
                            f"{[clip_text(c, 40) for c in names[:6]]}, not Time,Parameter,Value. Fix the first "
                            "line, or remove the file from the set.")
    is_rid = frame["Parameter"].str.strip().str.lower() == "recordid"
    rid = frame.loc[is_rid, "Value"]
    pid = rid.iloc[0].split(".")[0] if len(rid) else Path(fname).stem
    frame = frame[~is_rid]
    frame.insert(0, "patient_id", pid)
    return frame


def _join_physionet(segments: list, bodies: list[str]) -> pd.DataFrame:
    """The rows of every file in file order: the plain files' bodies parsed at once, the others as parsed."""
    plain = [s for s in segments if isinstance(s, tuple)]
    joint = None
    if plain:
        counts = np.array([rows for _, rows in plain], dtype=np.int64)
        joint = pd.read_csv(io.StringIO("\n".join(b for b in bodies if b)), header=None,
                            names=["Time", "Parameter", "Value"], dtype=str, keep_default_na=False, engine="c")
        if len(joint) != int(counts.sum()):   # cannot happen for plain files; never mis-assign a patient
            raise RuntimeError(f"per-patient files: {len(joint)} rows parsed, {int(counts.sum())} expected")
        file_of = np.repeat(np.arange(len(plain)), counts)
        is_rid = (joint["Parameter"].str.strip().str.lower() == "recordid").to_numpy(dtype=bool)
        pids = np.array([Path(fname).stem for fname, _ in plain], dtype=object)
        rid_rows = np.flatnonzero(is_rid)
        first = pd.Series(rid_rows).groupby(file_of[rid_rows]).first() if len(rid_rows) else pd.Series(dtype=int)
        if len(first):
            values = joint["Value"].to_numpy(dtype=object)[first.to_numpy()]
            pids[first.index.to_numpy()] = [str(v).split(".")[0] for v in values]
        joint.insert(0, "patient_id", pd.array(pids[file_of], dtype=joint["Time"].dtype))
        keep = ~is_rid
        starts = np.concatenate([[0], np.cumsum(counts)])
    pieces, k = [], 0
    for seg in segments:
        if isinstance(seg, tuple):
            rows = slice(int(starts[k]), int(starts[k + 1]))
            pieces.append((rows, keep[rows]))
            k += 1
        else:
            pieces.append(seg)
    if all(isinstance(p, tuple) for p in pieces):
        return joint[keep].reset_index(drop=True)
    return pd.concat([joint.iloc[p[0]][p[1]] if isinstance(p, tuple) else p for p in pieces], ignore_index=True)


# -- text ----------------------------------------------------------------------

_BAD_UTF8 = re.compile("[\udc80-\udcff]+")         # undecodable bytes, as surrogateescape gives them
_UTF8_CHAR = re.compile("[^\x00-\x7f\udc80-\udcff]")  # a real non-ASCII character
_LINE_END = re.compile(r"\r\n|\r|\n")


def _check_nul(name: str, content: bytes) -> None:
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataReadError(f"{name}: the file is UTF-16 text. Save it as CSV (UTF-8) (in Excel: File > Save As > "
                            "CSV UTF-8) and upload that.")
    pos = content.find(b"\x00")
    if pos < 0:
        return
    if pos < 4096:
        raise DataReadError(f"{name}: this is a binary file, not a text table (it contains NUL bytes). "
                            "Upload a CSV, CSV.gz or Parquet file.")
    line = content.count(b"\n", 0, pos) + 1
    raise DataReadError(f"{name}: the file holds a NUL byte (0x00) at byte {pos:,} (line {line:,}); a text table "
                        "never does, so the file is damaged or partly binary (e.g. a copy cut off and padded). "
                        "Export it again, or remove the NUL bytes (e.g. tr -d '\\000' < in.csv > out.csv) and "
                        "check that line.")


def _refuse_mixed(name: str, text: str, bom: bool) -> None:
    """Some bytes are not UTF-8 although the file is UTF-8 elsewhere: say which lines."""
    lines, shown, line, last = [], [], 1, 0
    for m in _BAD_UTF8.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        if not lines or lines[-1] != line:
            lines.append(line)
            if len(shown) < 3:
                start = text.rfind("\n", 0, m.start()) + 1
                end = text.find("\n", m.start())
                raw = text[start:end if end >= 0 else len(text)].rstrip("\r")
                latin = raw.encode("utf-8", errors="surrogateescape").decode("latin-1")
                shown.append(f"line {line}: byte 0x{ord(m.group()[0]) - 0xdc00:02x} in {clip_text(latin, 80)!r}")
    where = "starts with a UTF-8 marker (BOM)" if bom else "is UTF-8 elsewhere"
    listed = ", ".join(f"{n:,}" for n in lines[:10]) + (f" and {len(lines) - 10:,} more" if len(lines) > 10 else "")
    raise DataReadError(f"{name}: the file mixes two text encodings: it {where}, but line(s) {listed} are not UTF-8 "
                        f"(probably Latin-1; e.g. {'; '.join(shown)}). Reading it either way would change those "
                        "values (a patient 'pé1' would become another patient). Re-save the whole file as UTF-8 "
                        "(e.g. in a text editor: Save As, encoding UTF-8), or fix those lines.")


def _decode(name: str, content: bytes) -> tuple[str, str]:
    _check_nul(name, content)
    bom = content.startswith(b"\xef\xbb\xbf")
    body = content[3:] if bom else content
    try:
        return body.decode("utf-8"), "UTF-8 with BOM" if bom else "UTF-8"
    except UnicodeDecodeError:
        pass
    escaped = body.decode("utf-8", errors="surrogateescape")
    if bom or _UTF8_CHAR.search(escaped):
        _refuse_mixed(name, escaped, bom)
    text = body.decode("latin-1")
    # Latin-1 decodes anything; refuse what is mostly control characters (random bytes).
    sample = text[:4096]
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\r\n\t") or 0x7f <= ord(ch) < 0xa0)
    if bad > 0.01 * max(len(sample), 1):
        raise DataReadError(f"{name}: the file is not readable text (binary or unknown encoding). Upload a "
                            "CSV (UTF-8 or Latin-1), CSV.gz or Parquet file.")
    return text, "Latin-1"


def _first_lines(text: str, n: int) -> list[str]:
    """The first ``n`` lines of ``text`` (any line end), without splitting the whole file."""
    out, start = [], 0
    for m in _LINE_END.finditer(text):
        out.append(text[start:m.start()])
        start = m.end()
        if len(out) == n:
            return out
    if start < len(text):
        out.append(text[start:])
    return out


def _header_names(header: str, delim: str) -> list[str]:
    try:
        return next(csv.reader([header], delimiter=delim, skipinitialspace=True), [])
    except csv.Error:  # e.g. a header cell over the csv module's field limit
        return [c.strip().strip('"') for c in header.split(delim)]


def _sniff_delimiter(header: str, sample_lines: list[str]) -> str:
    best, best_score = ",", -1
    for d in _DELIMITERS:
        n = header.count(d)
        if n == 0:
            continue
        consistent = sum(1 for line in sample_lines if line.count(d) == n)
        score = n * 10 + consistent * 100
        if score > best_score:
            best, best_score = d, score
    return best


_DECIMAL_COMMA = re.compile(r"(^|;)\s*-?\d+,\d+\s*(;|$)")


def _read_csv_bytes(name: str, content: bytes, budget: _Inflation | None = None) -> RawTable:
    if budget is not None and budget.check is not None:
        sample = _sample_csv(name, content[:1 << 20])
        if sample is not None:    # the bytes and their decoded text are both held while pandas parses
            rows = max(content.count(b"\n") - 1, len(sample))
            budget.probe(TableProbe(name, rows=rows, sample=sample, text_bytes=2 * len(content)))
    text, encoding = _decode(name, content)
    stripped = text.lstrip()
    low = stripped[:512].lower()
    if low.startswith(("<!doctype html", "<html", "<?xml", "<head", "<body")) or "<html" in low[:200]:
        raise DataReadError(f"{name}: this is a web page (HTML/XML), not a CSV table: the download probably "
                            "saved a login or error page. Download the file again (right-click > Save link) "
                            "and check it opens as a table.")
    if not stripped:
        raise DataReadError(f"{name}: the file holds only blank lines. Upload the exported table.")
    lines = _first_lines(stripped, 52)
    header, body = lines[0], [ln for ln in lines[1:51] if ln.strip()]
    delim = _sniff_delimiter(header, body)
    decimal = "."
    if delim == ";" and any(_DECIMAL_COMMA.search(ln) for ln in body):
        decimal = ","
    notes = []
    if encoding != "UTF-8":
        notes.append(f"Read as {encoding}.")
    if delim != ",":
        notes.append(f"Delimiter detected: {'tab' if delim == chr(9) else repr(delim)}"
                     + (" with decimal commas." if decimal == "," else "."))
    if "\r\n" in text[:4096]:
        notes.append("Windows (CRLF) line endings.")
    if len(lines) < 2 or not body:
        raise DataReadError(f"{name}: the file has a header ({clip_text(header)!r}) but no data rows. Export the "
                            "rows too, or check you picked the right file.")
    _check_width(name, header.count(delim) + 1)
    _check_unique_columns(name, _header_names(header, delim))
    data = text if encoding != "UTF-8" else content
    frame, skipped_spaces = _parse_csv_text(name, data, delim, decimal, utf8=encoding == "UTF-8")
    if frame.empty:
        raise DataReadError(f"{name}: the file has a header but no data rows. Export the rows too.")
    if frame.shape[1] < 2:
        raise DataReadError(f"{name}: only one column ({clip_text(frame.columns[0], 60)!r}) was found. The file "
                            "must be a delimited table (comma, semicolon, tab or pipe) with a header row.")
    return RawTable(frame=frame, name=name, fmt="csv", notes=notes,
                    raw_texts=_csv_raw_texts(data, delim, frame, skipped_spaces))


def _parse_csv_text(name: str, data: str | bytes, delim: str, decimal: str, utf8: bool) -> tuple[pd.DataFrame, bool]:
    """The table, and whether leading spaces of cells were skipped (pandas' C parser) rather than kept."""
    buf = io.BytesIO(data) if isinstance(data, bytes) else io.StringIO(data)
    try:
        if utf8 and decimal == "." and isinstance(data, bytes):
            # The fast path: pyarrow's multithreaded parser (about 5x pandas' C parser).
            try:
                return pd.read_csv(buf, sep=delim, engine="pyarrow"), False
            except (pa.ArrowInvalid, ValueError):
                buf.seek(0)
        return pd.read_csv(buf, sep=delim, decimal=decimal, engine="c", skipinitialspace=True,
                           on_bad_lines="error", low_memory=False), True
    except pd.errors.ParserError as err:
        raise DataReadError(f"{name}: the table is malformed: {clip_text(err, 300)}. Each line must have as many "
                            "fields as the header; quote text fields that contain the delimiter.") from None
    except (UnicodeDecodeError, csv.Error, pd.errors.EmptyDataError) as err:
        raise DataReadError(f"{name}: could not be parsed as CSV ({clip_text(err, 300)}). Save it as CSV "
                            "(UTF-8).") from None


def _has_padded_cell(raw: bytes, delim: str) -> bool:
    """Whether a cell has a space or tab (other than the delimiter) next to its delimiter or line end (`` 1``,
    ``1 ``): a few substring searches, at memory speed."""
    d = delim.encode()
    pads = [p for p in (b" ", b"\t") if p != d]
    edges = [(p + d, d + p, p + b"\n", b"\n" + p, p + b"\r") for p in pads]
    return raw[:1] in pads or any(edge in raw for group in edges for edge in group)


def _csv_raw_texts(data: str | bytes, delim: str, frame: pd.DataFrame, skipped_spaces: bool):
    """``RawTable.raw_texts`` of a CSV parsed in memory: ``None`` when no cell of the file has a space or tab
    at its edge (the frame then shows every cell that matters as written)."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if not _has_padded_cell(raw, delim):
        return None
    altered = {i for i, c in enumerate(frame.columns)
               if skipped_spaces or pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])}
    shape = frame.shape

    def raw_texts(i: int) -> list[str] | None:
        if i not in altered:
            return None
        buf = io.BytesIO(data) if isinstance(data, bytes) else io.StringIO(data)
        try:
            again = pd.read_csv(buf, sep=delim, dtype=str, keep_default_na=False, engine="c",
                                skipinitialspace=False, low_memory=False)
        except (ValueError, pd.errors.ParserError, csv.Error):
            return None
        if again.shape != shape:      # not the same table (e.g. a row wider than the header): no texts
            return None
        return [str(v) for v in pd.unique(again.iloc[:, i])]
    return raw_texts


# -- DuckDB: large files and folders of tables ------------------------------------------

def _read_with_duckdb(path: Path, budget: _Inflation, name: str | None = None,
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
    parquet = head.startswith(_PARQUET_MAGIC)
    if parquet:
        if any(duck.is_gzip(f) for f in files):
            return None
        return _duckdb_frame(name, files, budget, parquet=True, notes=[])
    if _PN_HEADER.match(head) or head.startswith((_ZIP_MAGIC, _OLE_MAGIC, _PARQUET_MAGIC)):
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
    lines = _first_lines(text.lstrip(), 52)
    if len(lines) < 2:
        return None
    header, body = lines[0], [ln for ln in lines[1:51] if ln.strip()]
    if not body or header.lstrip().lower().startswith("<"):
        return None
    delim = _sniff_delimiter(header, body)
    if delim == ";" and any(_DECIMAL_COMMA.search(ln) for ln in body):
        return None
    _check_width(name, header.count(delim) + 1)
    _check_unique_columns(name, _header_names(header, delim))
    if folder:
        for f in files[1:]:
            try:
                other = _first_lines(duck.head_bytes(f, 64 << 10).decode("utf-8", "replace").lstrip(), 1)
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


def _duckdb_frame(name: str, files: list[Path], budget: _Inflation, *, parquet: bool, notes: list[str],
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
