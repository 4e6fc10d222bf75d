"""Reading user files into raw tables, with a clear message for anything unreadable.

Supports CSV (``,`` ``;`` tab or ``|`` delimited, decimal commas with ``;``), gzip-compressed
CSV, Parquet, and the original PhysioNet 2012 layout (a folder or zip of per-patient
``Time,Parameter,Value`` files, plus an optional outcomes file). Encodings: UTF-8 (with or
without BOM) and Latin-1; LF or CRLF line ends. Files on disk are only ever read.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import pandas as pd
import pyarrow as pa

from core.exceptions import DataReadError

__all__ = ["Source", "RawTable", "read_table"]

#: a path on disk, or an upload as (file name, content bytes).
Source = Union[str, os.PathLike, tuple[str, bytes]]

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


def read_table(source: Source) -> RawTable:
    """Read one events or labels source into a :class:`RawTable`.

    Raises
    ------
    DataReadError
        With what was found and how to fix it, for an empty file, a header without rows, an
        Excel workbook, an HTML page, binary junk, a truncated gzip or a corrupt Parquet file.
    """
    name, content, path = _read_bytes(source)
    if content is None:  # a folder
        return _read_physionet_folder(path)
    if len(content) == 0:
        raise DataReadError(f"{name}: the file is empty (0 bytes). Upload the exported table itself; "
                            "if the export failed, run it again.")
    head = content[:8]
    if head.startswith(_PARQUET_MAGIC):
        return _read_parquet(name, content)
    if head.startswith(_GZIP_MAGIC):
        content = _gunzip(name, content)
        if len(content) == 0:
            raise DataReadError(f"{name}: the gzip archive holds an empty file. Re-export the data.")
        if content[:4].startswith(_PARQUET_MAGIC):
            return _read_parquet(name, content)
    if content.startswith(_ZIP_MAGIC):
        return _read_zip(name, content)
    if head.startswith(_OLE_MAGIC):
        raise DataReadError(f"{name}: this is a legacy Excel (.xls) or other Office file, not CSV. "
                            "Open it in your spreadsheet program and use File > Save As > CSV (UTF-8).")
    return _read_csv_bytes(name, content)


# -- binary containers ---------------------------------------------------------

def _gunzip(name: str, content: bytes) -> bytes:
    try:
        return gzip.decompress(content)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
        raise DataReadError(f"{name}: the gzip file is truncated or corrupt ({err}). It was probably cut "
                            "off during download or copy; copy it again and check its size, or upload "
                            "the uncompressed CSV.") from None


def _read_parquet(name: str, content: bytes) -> RawTable:
    try:
        frame = pd.read_parquet(io.BytesIO(content))
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataReadError(f"{name}: not a readable Parquet file ({err}). Re-export it, or upload a CSV.") from None
    if frame.empty:
        raise DataReadError(f"{name}: the Parquet file has columns {list(frame.columns)} but no rows. "
                            "Export the data rows too.")
    return RawTable(frame=frame.reset_index(drop=True) if not isinstance(frame.index, pd.RangeIndex) else frame,
                    name=name, fmt="parquet", first_line=None)


def _read_zip(name: str, content: bytes) -> RawTable:
    try:
        zf = zipfile.ZipFile(io.BytesIO(content))
        names = [n for n in zf.namelist() if not n.endswith("/") and not Path(n).name.startswith(".")]
    except zipfile.BadZipFile as err:
        raise DataReadError(f"{name}: corrupt zip archive ({err}). Re-create the archive.") from None
    if any(n.startswith("xl/") or n == "[Content_Types].xml" for n in names):
        raise DataReadError(f"{name}: this is an Excel workbook (.xlsx), not CSV. Open it in your "
                            "spreadsheet program and use File > Save As > CSV (UTF-8), then upload that.")
    tables = [n for n in names if n.lower().endswith((".txt", ".csv", ".psv", ".csv.gz", ".parquet"))]
    if not tables:
        raise DataReadError(f"{name}: the zip holds no .txt/.csv/.parquet files (found: {names[:5]}). "
                            "Zip the per-patient files or the events table itself.")
    if len(tables) == 1:
        inner = read_table((tables[0], zf.read(tables[0])))
        inner.name = f"{name}/{tables[0]}"
        return inner
    files = {n: zf.read(n) for n in tables}
    return _assemble_physionet(name, files)


def _read_physionet_folder(path: Path) -> RawTable:
    files = {str(p.relative_to(path)): p.read_bytes()
             for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in (".txt", ".csv")
             and not p.name.startswith(".")}
    if not files:
        raise DataReadError(f"{path}: the folder holds no .txt or .csv files. Point to the folder of "
                            "per-patient PhysioNet files (e.g. set-a/) or to a single events table.")
    return _assemble_physionet(str(path), files)


_OUTCOME_HEADER = re.compile(rb"^\s*(\xef\xbb\xbf)?recordid\s*,", re.IGNORECASE)
_PN_HEADER = re.compile(rb"^\s*(\xef\xbb\xbf)?time\s*,\s*parameter\s*,\s*value", re.IGNORECASE)


def _assemble_physionet(name: str, files: dict[str, bytes]) -> RawTable:
    """Concatenate per-patient ``Time,Parameter,Value`` files into one long table.

    Each file's ``RecordID`` row gives the patient id (the file name stem if absent). A file
    whose header starts with ``RecordID`` is taken as the outcomes table.
    """
    frames, outcomes, skipped = [], None, []
    for fname, raw in files.items():
        if _OUTCOME_HEADER.match(raw[:64]):
            outcomes = _read_csv_bytes(fname, raw).frame
            continue
        if not _PN_HEADER.match(raw[:64]):
            skipped.append(fname)
            continue
        # Decode like any CSV (BOM, Latin-1) so one odd file cannot crash the whole set.
        text, _ = _decode(f"{name}/{fname}", raw)
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except pd.errors.ParserError as err:
            raise DataReadError(f"{name}/{fname}: this per-patient file is malformed ({str(err).strip()}). Every "
                                "line must have the three fields Time,Parameter,Value; fix that line or remove "
                                "the file from the set.") from None
        frame.columns = [c.strip() for c in frame.columns]
        rid = frame.loc[frame["Parameter"] == "RecordID", "Value"]
        pid = rid.iloc[0].split(".")[0] if len(rid) else Path(fname).stem
        frame = frame[frame["Parameter"] != "RecordID"]
        frame.insert(0, "patient_id", pid)
        frames.append(frame)
    if not frames:
        raise DataReadError(f"{name}: no per-patient file with the header 'Time,Parameter,Value' was found "
                            f"(looked at {len(files)} files, e.g. {list(files)[:3]}). Upload the PhysioNet "
                            "set folder/zip, or a single long/wide events table.")
    table = RawTable(frame=pd.concat(frames, ignore_index=True), name=name, fmt="physionet", outcomes=outcomes,
                     first_line=None)
    table.notes.append(f"Read {len(frames):,} per-patient files (PhysioNet 2012 layout)"
                       + (" and an outcomes file" if outcomes is not None else "")
                       + (f"; ignored {len(skipped)} other files (e.g. {skipped[0]})" if skipped else "") + ".")
    return table


# -- text ----------------------------------------------------------------------

def _decode(name: str, content: bytes) -> tuple[str, str]:
    if b"\x00" in content[:4096]:
        raise DataReadError(f"{name}: this is a binary file, not a text table (it contains NUL bytes). "
                            "Upload a CSV, CSV.gz or Parquet file.")
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8", errors="strict"), "UTF-8 with BOM"
    try:
        return content.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    text = content.decode("latin-1")
    # Latin-1 decodes anything; refuse what is mostly control characters (random bytes).
    sample = text[:4096]
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\r\n\t") or 0x7f <= ord(ch) < 0xa0)
    if bad > 0.01 * max(len(sample), 1):
        raise DataReadError(f"{name}: the file is not readable text (binary or unknown encoding). Upload a "
                            "CSV (UTF-8 or Latin-1), CSV.gz or Parquet file.")
    return text, "Latin-1"


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
    lines = stripped.splitlines()
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
        raise DataReadError(f"{name}: the file has a header ({header[:120]!r}) but no data rows. Export the "
                            "rows too, or check you picked the right file.")
    frame = _parse_csv_text(name, text if encoding != "UTF-8" else content, delim, decimal,
                            utf8=encoding == "UTF-8")
    if frame.empty:
        raise DataReadError(f"{name}: the file has a header but no data rows. Export the rows too.")
    if frame.shape[1] < 2:
        raise DataReadError(f"{name}: only one column ({str(frame.columns[0])[:60]!r}) was found. The file "
                            "must be a delimited table (comma, semicolon, tab or pipe) with a header row.")
    return RawTable(frame=frame, name=name, fmt="csv", notes=notes)


def _parse_csv_text(name: str, data: str | bytes, delim: str, decimal: str, utf8: bool) -> pd.DataFrame:
    buf = io.BytesIO(data) if isinstance(data, bytes) else io.StringIO(data)
    try:
        if utf8 and decimal == "." and isinstance(data, bytes):
            # The fast path: pyarrow's multithreaded parser (about 5x pandas' C parser).
            try:
                return pd.read_csv(buf, sep=delim, engine="pyarrow")
            except (pa.ArrowInvalid, ValueError):
                buf.seek(0)
        return pd.read_csv(buf, sep=delim, decimal=decimal, engine="c", skipinitialspace=True,
                           on_bad_lines="error", low_memory=False)
    except pd.errors.ParserError as err:
        raise DataReadError(f"{name}: the table is malformed: {err}. Each line must have as many fields as "
                            "the header; quote text fields that contain the delimiter.") from None
    except (UnicodeDecodeError, csv.Error, pd.errors.EmptyDataError) as err:
        raise DataReadError(f"{name}: could not be parsed as CSV ({err}). Save it as CSV (UTF-8).") from None
