"""Text tables: decoding, sniffing the delimiter, and reading a CSV with a clear message for anything unreadable.

Encodings: UTF-8 (with or without BOM) and Latin-1; a file that mixes them, holds NUL bytes or is UTF-16 is
refused with where it happens. Delimiters ``,`` ``;`` tab or ``|`` (decimal commas with ``;``); LF or CRLF
line ends. pyarrow's multithreaded parser reads plain UTF-8 files, pandas' C parser the rest.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa

from core.exceptions import DataReadError
from core.data.read_limits import (GZIP_MAGIC, OLE_MAGIC, PARQUET_MAGIC, SAMPLE_ROWS, ZIP_MAGIC, RawTable, ReadBudget,
                                   TableProbe, check_unique_columns, check_width)
from core.data.validation import clip_text

__all__ = ["decode_text", "first_lines", "header_names", "sniff_delimiter", "read_csv_bytes", "sample_csv",
           "probe_text_file", "DECIMAL_COMMA"]

_DELIMITERS = [",", ";", "\t", "|"]
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


def decode_text(name: str, content: bytes) -> tuple[str, str]:
    """``(text, encoding)``: UTF-8 (a BOM dropped) or else Latin-1; refused for NUL bytes, UTF-16, mixed encodings
    and binary junk."""
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


def first_lines(text: str, n: int) -> list[str]:
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


def header_names(header: str, delim: str) -> list[str]:
    """The column names of a header line."""
    try:
        return next(csv.reader([header], delimiter=delim, skipinitialspace=True), [])
    except csv.Error:  # e.g. a header cell over the csv module's field limit
        return [c.strip().strip('"') for c in header.split(delim)]


def sniff_delimiter(header: str, sample_lines: list[str]) -> str:
    """The delimiter of the header that splits the sample lines most consistently (``,`` when none is found)."""
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


#: a field with a decimal comma in a ';'-delimited line ("37,2").
DECIMAL_COMMA = re.compile(r"(^|;)\s*-?\d+,\d+\s*(;|$)")


def read_csv_bytes(name: str, content: bytes, budget: ReadBudget | None = None) -> RawTable:
    """A text table read in memory: encoding, delimiter and decimal comma detected (and noted), width and column
    names checked, the memory check of ``budget`` run first."""
    if budget is not None and budget.check is not None:
        sample = sample_csv(name, content[:1 << 20])
        if sample is not None:    # the bytes and their decoded text are both held while pandas parses
            rows = max(content.count(b"\n") - 1, len(sample))
            budget.probe(TableProbe(name, rows=rows, sample=sample, text_bytes=2 * len(content)))
    text, encoding = decode_text(name, content)
    stripped = text.lstrip()
    low = stripped[:512].lower()
    if low.startswith(("<!doctype html", "<html", "<?xml", "<head", "<body")) or "<html" in low[:200]:
        raise DataReadError(f"{name}: this is a web page (HTML/XML), not a CSV table: the download probably "
                            "saved a login or error page. Download the file again (right-click > Save link) "
                            "and check it opens as a table.")
    if not stripped:
        raise DataReadError(f"{name}: the file holds only blank lines. Upload the exported table.")
    lines = first_lines(stripped, 52)
    header, body = lines[0], [ln for ln in lines[1:51] if ln.strip()]
    delim = sniff_delimiter(header, body)
    decimal = "."
    if delim == ";" and any(DECIMAL_COMMA.search(ln) for ln in body):
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
    check_width(name, header.count(delim) + 1)
    check_unique_columns(name, header_names(header, delim))
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


def sample_csv(name: str, head: bytes) -> pd.DataFrame | None:
    """The first rows (up to :data:`SAMPLE_ROWS`) of a text table from its first bytes; ``None`` when they do
    not read as one (the full read then says why)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        text = head[:err.start].decode("utf-8") if err.start > len(head) - 4 else head.decode("latin-1")
    lines = first_lines(text.lstrip("\ufeff").lstrip(), SAMPLE_ROWS + 2)[:-1]   # the last line may be cut
    if len(lines) < 2:
        return None
    delim = sniff_delimiter(lines[0], [ln for ln in lines[1:51] if ln.strip()])
    check_width(name, lines[0].count(delim) + 1)          # before parsing 100,000 columns
    decimal = "," if delim == ";" and any(DECIMAL_COMMA.search(ln) for ln in lines[1:51]) else "."
    try:
        return pd.read_csv(io.StringIO("\n".join(lines)), sep=delim, decimal=decimal, engine="c",
                           skipinitialspace=True, on_bad_lines="skip", low_memory=False)
    except (ValueError, pd.errors.ParserError, csv.Error):
        return None


def probe_text_file(name: str, path: Path, size: int, budget: ReadBudget) -> None:
    """Check a large text file before it is loaded into memory: rows estimated from its first MB's lines."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    if head.startswith((PARQUET_MAGIC, ZIP_MAGIC, GZIP_MAGIC, OLE_MAGIC)):
        return
    sample = sample_csv(name, head)
    if sample is None:
        return
    per_line = len(head) / max(head.count(b"\n"), 1)
    budget.probe(TableProbe(name, rows=int(size / per_line), sample=sample, text_bytes=size, rows_are="about"))
