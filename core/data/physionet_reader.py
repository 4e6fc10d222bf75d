"""The PhysioNet 2012 layout: a folder or zip of per-patient ``Time,Parameter,Value`` files, plus an optional
outcomes file, read into one long table (``fmt="physionet"``).

Each file's ``RecordID`` row gives its patient id. :func:`assemble_physionet` joins the files' rows (plain files
parsed together in one pass), :func:`read_physionet_folder` reads a folder, :func:`probe_physionet` checks a set
against the memory limit before it is read; a zip of such files is opened by :mod:`core.data.readers`.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.csv_reader import decode_text, read_csv_bytes
from core.data.read_limits import (MAX_ARCHIVE_FILES, SAMPLE_ROWS, RawTable, ReadBudget, TableProbe,
                                   check_unique_columns)
from core.exceptions import DataReadError, InternalError
from core.data.validation import clip_text

__all__ = ["assemble_physionet", "physionet_file", "read_physionet_folder", "probe_physionet", "PHYSIONET_HEADER"]

_OUTCOME_HEADER = re.compile(rb"^\s*(\xef\xbb\xbf)?recordid\s*,", re.IGNORECASE)
#: the header of a per-patient file (any case, spaces around names, an optional BOM).
PHYSIONET_HEADER = re.compile(rb"^\s*(\xef\xbb\xbf)?time\s*,\s*parameter\s*,\s*value", re.IGNORECASE)
_PN_COLUMNS = {"time": "Time", "parameter": "Parameter", "value": "Value"}
#: a non-empty line of a per-patient file with other than exactly three fields (no, one, or three or more commas).
_NOT_THREE_FIELDS = re.compile(r"^(?:[^,\n]+|[^,\n]*,[^,\n]*|(?:[^,\n]*,){3}.*)$", re.MULTILINE)


def assemble_physionet(name: str, files: dict[str, bytes]) -> RawTable:
    """Concatenate per-patient ``Time,Parameter,Value`` files into one long table.

    Each file's ``RecordID`` row gives the patient id (the file name stem if absent). A file
    whose header starts with ``RecordID`` is taken as the outcomes table. Header names are
    matched whatever their case (``time,parameter,value`` too).

    Plain files (the header exactly those three names, three unquoted fields on every line) are parsed
    together in one pass, which keeps 20,000 tiny files to seconds; any other file is parsed on its own
    (:func:`physionet_file`), with the same result.
    """
    outcomes, skipped, n_read = None, [], 0
    segments: list = []        # in file order: (fname, rows, pid or None) of plain files, or a parsed frame
    bodies: list[str] = []
    for fname, raw in files.items():
        if _OUTCOME_HEADER.match(raw[:64]):
            outcomes = read_csv_bytes(f"{name}/{fname}", raw).frame
            continue
        if not PHYSIONET_HEADER.match(raw[:64]):
            skipped.append(fname)
            continue
        n_read += 1
        # Decode like any CSV (BOM, Latin-1) so one odd file cannot crash the whole set.
        text, _ = decode_text(f"{name}/{fname}", raw)
        plain = _plain_physionet_body(text)
        if plain is None:
            segments.append(physionet_file(name, fname, text))
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


def physionet_file(name: str, fname: str, text: str) -> pd.DataFrame:
    """One per-patient file on its own: ``patient_id`` (from its RecordID row, else the file name) and its rows."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, csv.Error) as err:
        raise DataReadError(f"{name}/{fname}: this per-patient file is malformed ({clip_text(str(err).strip())}). "
                            "Every line must have the three fields Time,Parameter,Value; fix that line or "
                            "remove the file from the set.") from None
    names = [c.strip() for c in frame.columns]
    check_unique_columns(f"{name}/{fname}", names)
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
            raise InternalError(f"per-patient files: {len(joint)} rows parsed, {int(counts.sum())} expected")
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


def read_physionet_folder(path: Path, budget: ReadBudget) -> RawTable:
    """A folder of per-patient files (any depth; ``.txt`` and ``.csv``), checked against the memory limit first."""
    found = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in (".txt", ".csv")
             and not p.name.startswith(".")]
    if len(found) > MAX_ARCHIVE_FILES:
        raise DataReadError(f"{path}: the folder holds {len(found):,} .txt/.csv files, more than the "
                            f"{MAX_ARCHIVE_FILES:,} read. Point to one set folder (e.g. set-a/).")
    if not found:
        raise DataReadError(f"{path}: the folder holds no .txt or .csv files. Point to the folder of "
                            "per-patient PhysioNet files (e.g. set-a/) or to a single events table.")
    first = found[0].read_bytes()
    probe_physionet(str(path), first, sum(p.stat().st_size for p in found), budget)
    files = {str(found[0].relative_to(path)): first}
    files.update((str(p.relative_to(path)), p.read_bytes()) for p in found[1:])
    return assemble_physionet(str(path), files)


def probe_physionet(name: str, first: bytes, total_bytes: int, budget: ReadBudget) -> None:
    """Check a set of per-patient files before it is read: rows estimated from the first file's bytes per line,
    the files' bytes and their decoded text held while they are parsed."""
    if budget.check is None or not PHYSIONET_HEADER.match(first[:64]):
        return
    try:
        sample = physionet_file(name, "first file", decode_text(name, first)[0])
    except DataReadError:
        return                    # the full read names the file and what is wrong with it
    per_line = len(first) / max(first.count(b"\n"), 1)
    budget.probe(TableProbe(name, rows=int(total_bytes / per_line), sample=sample.head(SAMPLE_ROWS),
                            text_bytes=2 * total_bytes, rows_are="about"))
