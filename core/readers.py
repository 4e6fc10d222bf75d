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
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import duck
from core.duck import EngineConfig
from core.exceptions import DataReadError
from core.validation import clip_text

__all__ = ["Source", "RawTable", "read_table", "env_limit", "MAX_INFLATED_MB", "MAX_COLUMNS", "MAX_ARCHIVE_FILES"]

#: the most a gzip, zip or Parquet file may inflate to while reading (MB); a decompression bomb stops here.
#: The environment variable ``CHRONOSCOPE_MAX_INFLATED_MB`` overrides it.
MAX_INFLATED_MB = 2048
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


class _Inflation:
    """What the archives of one read may still inflate to, shared by nested members."""

    def __init__(self) -> None:
        self.limit_mb = env_limit("CHRONOSCOPE_MAX_INFLATED_MB", MAX_INFLATED_MB)
        self.left = int(self.limit_mb * 2 ** 20)
        self.depth = 0

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


def _read_bytes(source: Source) -> tuple[str, bytes | None, Path | None]:
    if isinstance(source, tuple):
        name, content = source
        return str(name), bytes(content), None
    path = Path(source)
    if path.is_dir():
        return str(path), None, path
    if not path.exists():
        raise DataReadError(f"File not found: {path}. Check the path (relative paths start from "
                            f"{Path.cwd()}).")
    return str(path), path.read_bytes(), path


def read_table(source: Source, engine: EngineConfig | None = None) -> RawTable:
    """Read one events or labels source into a :class:`RawTable`.

    Large files on disk, and folders of CSV / CSV.gz / Parquet tables, are read by DuckDB with a
    bounded memory (``engine``, default :meth:`EngineConfig.from_env`; see :mod:`core.duck`); the rest,
    and anything DuckDB cannot read as the pandas path would, by pandas.

    Raises
    ------
    DataReadError
        With what was found and how to fix it, for an empty file, a header without rows, an
        Excel workbook, an HTML page, binary junk, a truncated gzip or a corrupt Parquet file;
        for an archive that inflates past :data:`MAX_INFLATED_MB`, a table wider than
        :data:`MAX_COLUMNS`, NUL bytes, mixed encodings or a repeated column name.
    """
    if isinstance(source, tuple) and isinstance(source[1], Path):
        # an upload kept on disk (the app's large uploads): read from the file, shown by its own name
        shown, on_disk = str(source[0]), source[1]
        table = _read_with_duckdb(on_disk, engine or EngineConfig.from_env(), name=shown)
        if table is not None:
            return table
        source = (shown, on_disk.read_bytes())
    elif not isinstance(source, tuple):
        table = _read_with_duckdb(Path(source), engine or EngineConfig.from_env())
        if table is not None:
            return table
    name, content, path = _read_bytes(source)
    if content is None:  # a folder
        return _read_physionet_folder(path)
    return _read_content(name, content, _Inflation())


def _read_content(name: str, content: bytes, budget: _Inflation) -> RawTable:
    if len(content) == 0:
        raise DataReadError(f"{name}: the file is empty (0 bytes). Upload the exported table itself; "
                            "if the export failed, run it again.")
    head = content[:8]
    if head.startswith(_PARQUET_MAGIC):
        return _read_parquet(name, content, budget)
    if head.startswith(_GZIP_MAGIC):
        budget.enter(name)
        content = _gunzip(name, content, budget)
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
    return _read_csv_bytes(name, content)


# -- binary containers ---------------------------------------------------------

def _gunzip(name: str, content: bytes, budget: _Inflation) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as stream:
            return budget.read(name, stream)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
        raise DataReadError(f"{name}: the gzip file is truncated or corrupt ({clip_text(err)}). It was probably cut "
                            "off during download or copy; copy it again and check its size, or upload "
                            "the uncompressed CSV.") from None


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
        table = pfile.read()
        table = pa.table([_plain_column(name, f, table.column(i)) for i, f in enumerate(table.schema)],
                         schema=None, names=table.schema.names, metadata=table.schema.metadata)
        frame = table.to_pandas()
    except DataReadError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as err:
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


def _read_member(name: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Inflation) -> bytes:
    where = f"{name}/{clip_text(info.filename)}"
    if info.file_size > budget.left:  # declared size: refuse without inflating anything
        budget.refuse(where)
    try:
        with zf.open(info) as stream:
            return budget.read(where, stream)
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
        table = _read_content(tables[0].filename, _read_member(name, zf, tables[0], budget), budget)
        table.name = f"{name}/{tables[0].filename}"
    else:
        table = _assemble_physionet(name, {i.filename: _read_member(name, zf, i, budget) for i in tables})
    read = {i.filename for i in tables}
    others = [n for n in names if n not in read]
    if others:  # said, not silently dropped
        table.notes.append(f"Ignored {len(others):,} file(s) of the zip that are not tables (.txt, .csv, .psv, "
                           f".csv.gz, .parquet), e.g. {clip_text(others[0])}.")
    return table


def _read_physionet_folder(path: Path) -> RawTable:
    found = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in (".txt", ".csv")
             and not p.name.startswith(".")]
    if len(found) > MAX_ARCHIVE_FILES:
        raise DataReadError(f"{path}: the folder holds {len(found):,} .txt/.csv files, more than the "
                            f"{MAX_ARCHIVE_FILES:,} read. Point to one set folder (e.g. set-a/).")
    files = {str(p.relative_to(path)): p.read_bytes() for p in found}
    if not files:
        raise DataReadError(f"{path}: the folder holds no .txt or .csv files. Point to the folder of "
                            "per-patient PhysioNet files (e.g. set-a/) or to a single events table.")
    return _assemble_physionet(str(path), files)


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


def _read_csv_bytes(name: str, content: bytes) -> RawTable:
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


def _padded_cell(delim: str) -> re.Pattern:
    """A cell with a space or tab (other than the delimiter) next to its delimiter or line end (`` 1``, ``1 ``),
    in the file's bytes."""
    d = re.escape(delim.encode())
    pad = b"[" + b"".join(re.escape(c) for c in (b" ", b"\t") if c != delim.encode()) + b"]"
    return re.compile(rb"(?:^|" + d + rb")" + pad + b"|" + pad + rb"(?:" + d + rb"|\r?$)", re.MULTILINE)


def _csv_raw_texts(data: str | bytes, delim: str, frame: pd.DataFrame, skipped_spaces: bool):
    """``RawTable.raw_texts`` of a CSV parsed in memory: ``None`` when no cell of the file has a space or tab
    at its edge (the frame then shows every cell that matters as written)."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if not _padded_cell(delim).search(raw):
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

def _read_with_duckdb(path: Path, engine: EngineConfig, name: str | None = None) -> RawTable | None:
    """``path`` read by DuckDB, or ``None`` when the pandas path should read it.

    ``None`` for anything the pandas path reads as well or better: a small file under ``auto``, an
    upload, an archive, another encoding than UTF-8, decimal commas, a PhysioNet folder, or a file
    DuckDB rejects (the pandas path then gives its own message). Raises :class:`DataReadError` with
    the pandas path's message for a table too wide or with a repeated column name, and for a folder
    whose tables do not share one header.
    """
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
        if not engine.wants(files, folder):
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
        return _duckdb_frame(name, files, engine, parquet=True, notes=[])
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
    return _duckdb_frame(name, files, engine, parquet=False, notes=notes, delim=delim)


def _duckdb_frame(name: str, files: list[Path], engine: EngineConfig, *, parquet: bool, notes: list[str],
                  delim: str = ",") -> RawTable | None:
    import duckdb
    listing = duck.file_list(files)
    if parquet:
        sources = [f"read_parquet({listing})"]
    else:
        common = (f"delim={duck.literal(delim)}, header=true, quote='\"', escape='\"', "
                  f"nullstr={duck.literal_list(duck.NULL_STRINGS)}, strict_mode=true")
        sources = [f"read_csv({listing}, {common}, auto_type_candidates=['BIGINT', 'DOUBLE', 'VARCHAR'])",
                   f"read_csv({listing}, {common}, all_varchar=true)"]
    for sql in sources:
        try:
            with duck.connect(engine) as session:
                frame = duck.fetch_frame(session, sql)
            break
        except duckdb.ConversionException:
            continue  # a text cell in a column sniffed as numbers: read every column as text
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
