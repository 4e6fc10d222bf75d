"""Property-based fuzzing of reading and validation (hypothesis, derandomized so runs repeat).

Whatever the bytes (random, mutated CSVs, Parquet files of every type in every column role,
odd labels files), :func:`read_table`, :func:`validate_data` and :func:`inspect_columns` raise
nothing but our own errors (:class:`CoreError`), and a returned cohort's rows add up:
``rows_read == rows_used + sum(rows_excluded)``.
"""
from __future__ import annotations

import datetime as dt
import decimal
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data import readers
from core.config import DataConfig
from core.exceptions import CoreError
from core.data.ingest import inspect_columns, validate_data
from core.data.readers import read_table
from core.data.validation import ValidationReport

FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=80,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SEED_LONG = ("patient_id,time,variable,value\n"
             + "".join(f"p{i},{h},{v},{70 + i + h}\n" for i in range(4) for h in range(3) for v in ("HR", "Temp"))
             + "p0,0,Age,54\np1,0,Age,61\n")
SEED_WIDE = ("patient_id,time,HR,Temp,Age\n"
             + "".join(f"p{i},{h:02d}:00,{70 + h},{36 + i / 10},{50 + i}\n" for i in range(4) for h in range(3)))
SEED_DATES = ("patient_id,charttime,variable,value\n"
              + "".join(f"p{i},2024-01-0{i + 1}T{h:02d}:30,HR,{80 + h}\n" for i in range(3) for h in range(4)))
LABELS = "patient_id,died\np0,1\np1,0\np2,1\np3,0\n"
CONFIGS = [DataConfig(), DataConfig(target="died"), DataConfig(time_format="hhmm"),
           DataConfig(time_format="datetime"), DataConfig(layout="wide"), DataConfig(task="online", target="HR")]

TOKENS = ["", " ", "nan", "NA", "inf", "-inf", "1e400", "-1", "0", "1", "00:75", "99:59", "2024-13-45",
          "0001-01-01", "9999-12-31T23:59", "2024-01-01T00:00+05:00", "TRUE", "é", "\u00a0", "\u2028", "\ufeff",
          '"', '""', "'", ",", ";", "\t", "|", "\r", "\n", "\x00", "9" * 400, "p0", "HR", "Age", "died",
          "1,5", "−3", "٣", "1_000", "0x10", "NaT"]


def _check_validate(events, labels=None, config=None) -> None:
    try:
        result = validate_data(events, labels, config=config)
    except CoreError:
        return
    assert isinstance(result, tuple) and len(result) == 2
    cohort, report = result
    assert isinstance(report, ValidationReport)
    if cohort is not None:
        assert report.rows_read == report.rows_used + sum(report.rows_excluded.values()), report.to_text()
    report.to_text()


def _check_all(source, labels=None, config=None) -> None:
    try:
        read_table(source)
    except CoreError:
        pass
    try:
        out = inspect_columns(source, labels)
        assert isinstance(out, dict)
    except CoreError:
        pass
    _check_validate(source, labels, config)


@pytest.fixture(autouse=True)
def _small_limits(monkeypatch):
    """Small caps, so a mutation that inflates or widens a file is refused at once."""
    monkeypatch.setattr(readers, "MAX_INFLATED_MB", 4)
    monkeypatch.setenv("CHRONOSCOPE_MAX_COLUMNS", "200")
    monkeypatch.setenv("CHRONOSCOPE_MAX_VARIABLES", "200")


# -- random bytes ------------------------------------------------------------------------------

MAGICS = [b"", b"PAR1", b"\x1f\x8b\x08\x00", b"PK\x03\x04", b"\xef\xbb\xbf", b"\xff\xfe", b"\xd0\xcf\x11\xe0",
          b"<html>", b"patient_id,time,variable,value\n"]


@FUZZ
@given(st.sampled_from(MAGICS), st.binary(max_size=600), st.sampled_from(["x.csv", "x.csv.gz", "x.parquet", "x.zip"]))
def test_random_bytes(magic, tail, name):
    _check_all((name, magic + tail))


# -- mutated CSVs ------------------------------------------------------------------------------

def _mutate(text: str, ops: list[tuple[int, int, int]]) -> bytes:
    """Apply cell, line, delimiter, quote and encoding mutations; return the file's bytes."""
    lines = text.split("\n")
    encodings = {}
    for op, a, b in ops:
        i = a % len(lines)
        cells = lines[i].split(",")
        j = b % max(len(cells), 1)
        token = TOKENS[(a + b) % len(TOKENS)]
        if op == 0:     # delete a cell
            del cells[j:j + 1]
        elif op == 1:   # insert a cell
            cells.insert(j, token)
        elif op == 2:   # replace a cell
            cells[j:j + 1] = [token]
        elif op == 3:   # duplicate a cell
            cells[j:j] = cells[j:j + 1]
        if op <= 3:
            lines[i] = ",".join(cells)
        elif op == 4:   # delete a line
            del lines[i]
            lines = lines or [""]
        elif op == 5:   # duplicate a line
            lines.insert(i, lines[i])
        elif op == 6:   # change the delimiter of a line
            lines[i] = lines[i].replace(",", ";\t|"[b % 3])
        elif op == 7:   # an unbalanced quote
            lines[i] = lines[i][: b % (len(lines[i]) + 1)] + '"' + lines[i][b % (len(lines[i]) + 1):]
        elif op == 8:   # a line in another encoding
            encodings[i] = ["latin-1", "cp1252", "utf-16-le"][b % 3]
            lines[i] = lines[i] + "é"
        elif op == 9:   # CRLF line ends
            lines[i] = lines[i] + "\r"
    out = []
    for i, line in enumerate(lines):
        enc = encodings.get(i, "utf-8")
        out.append(line.encode(enc, errors="replace"))
    return b"\n".join(out)


OPS = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1, max_size=8)


@FUZZ
@given(st.sampled_from([SEED_LONG, SEED_WIDE, SEED_DATES]), OPS, st.sampled_from(range(len(CONFIGS))))
def test_mutated_csv(seed, ops, config_index):
    content = _mutate(seed, ops)
    _check_all(("events.csv", content), config=CONFIGS[config_index])


@settings(FUZZ, max_examples=20)
@given(OPS, st.sampled_from(["gz", "zip", "physionet"]))
def test_mutated_csv_in_archives(ops, kind):
    import gzip
    import zipfile
    content = _mutate(SEED_LONG, ops)
    if kind == "gz":
        source = ("events.csv.gz", gzip.compress(content))
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            if kind == "zip":
                zf.writestr("events.csv", content)
            else:
                pn = _mutate("Time,Parameter,Value\n00:00,RecordID,132539\n00:00,Age,54\n00:30,HR,80\n01:00,HR,82", ops)
                zf.writestr("set-a/132539.txt", pn)
                zf.writestr("set-a/132540.txt", b"Time,Parameter,Value\n00:00,RecordID,132540\n00:30,HR,81\n")
                zf.writestr("Outcomes-a.txt", b"RecordID,In-hospital_death\n132539,1\n132540,0\n")
        source = ("events.zip", buf.getvalue())
    _check_all(source)


# -- Parquet of every type in every role ---------------------------------------------------------

N = 6


def _column(kind: str, role: str) -> pa.Array:
    base = {"patient_id": ["p0", "p1"] * 3, "time": [0, 1, 2] * 2, "variable": ["HR", "Temp"] * 3,
            "value": [80, 37, 81, 36, 82, 38]}[role]
    if kind == "int":
        return pa.array([i * 7 for i in range(N)], pa.int64())
    if kind == "uint":
        return pa.array([2 ** 64 - 1 - i for i in range(N)], pa.uint64())
    if kind == "float":
        return pa.array([float("nan"), float("inf"), -0.0, 1.5, 1e308, 2.0])
    if kind == "string":
        return pa.array([str(v) for v in base])
    if kind == "large_string":
        return pa.array([str(v) for v in base], pa.large_string())
    if kind == "bool":
        return pa.array([True, False, None, True, False, True])
    if kind == "datetime":
        return pa.array([dt.datetime(2024, 1, 1, h) for h in range(N)], pa.timestamp("us"))
    if kind == "datetime_extreme":
        return pa.array([dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31), None, dt.datetime(2024, 1, 1),
                         dt.datetime(2024, 1, 1, 1), dt.datetime(2024, 1, 2)], pa.timestamp("us", tz="UTC"))
    if kind == "date":
        return pa.array([dt.date(2024, 1, 1 + i) for i in range(N)])
    if kind == "duration":
        return pa.array([dt.timedelta(hours=i) for i in range(N)], pa.duration("s"))
    if kind == "time_of_day":
        return pa.array([dt.time(i, 30) for i in range(N)])
    if kind == "decimal":
        return pa.array([decimal.Decimal(f"{i}.25") for i in range(N)], pa.decimal128(10, 2))
    if kind == "binary":
        return pa.array([str(v).encode() for v in base], pa.binary())
    if kind == "binary_junk":
        return pa.array([b"\xff\x00", b"\x80"] * 3, pa.binary())
    if kind == "list":
        return pa.array([[i] for i in range(N)])
    if kind == "struct":
        return pa.array([{"a": i} for i in range(N)])
    if kind == "null":
        return pa.nulls(N)
    if kind == "categorical":
        return pa.array([str(v) for v in base]).dictionary_encode()
    if kind == "categorical_int":
        return pa.array([i % 3 for i in range(N)]).dictionary_encode()
    raise AssertionError(kind)


KINDS = ["int", "uint", "float", "string", "large_string", "bool", "datetime", "datetime_extreme", "date",
         "duration", "time_of_day", "decimal", "binary", "binary_junk", "list", "struct", "null", "categorical",
         "categorical_int"]
ROLES = ["patient_id", "time", "variable", "value"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", KINDS)
def test_parquet_every_type_in_every_role(kind, role):
    cols = {r: (_column(kind, r) if r == role else _column("string" if r != "value" else "float", r)) for r in ROLES}
    if role != "value":
        cols["value"] = pa.array([80.0, 37.0, 81.0, 36.0, 82.0, 38.0])
    if role != "time":
        cols["time"] = pa.array([0.0, 1.0, 2.0] * 2)
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    source = ("events.parquet", buf.getvalue())
    for config in (DataConfig(), DataConfig(layout="wide")):
        _check_all(source, config=config)


@settings(FUZZ, max_examples=30)
@given(st.lists(st.sampled_from(KINDS), min_size=4, max_size=4))
def test_parquet_random_types_in_all_roles(kinds):
    table = pa.table({r: _column(k, r) for r, k in zip(ROLES, kinds)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    _check_all(("events.parquet", buf.getvalue()))


# -- labels files --------------------------------------------------------------------------------

LABEL_CELLS = st.sampled_from(["0", "1", "", "2", "yes", "no", "TRUE", "nan", "-1", "1.0", "0.5", "died", "é",
                               "9" * 300, "p0", "p9"])


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["p0", "p1", "p2", "p3", "p9", "", "P0", " p1", "1e3"]), LABEL_CELLS),
                max_size=8),
       st.sampled_from(["patient_id,died", "patient_id,died,los", "id,outcome", "patient_id,died,died", "died",
                        "patient_id;died", "", "patient_id,onset_hours"]),
       st.sampled_from(range(4)))
def test_label_file_variants(rows, header, config_index):
    config = [DataConfig(target="died"), DataConfig(), DataConfig(target="onset_hours", task="online",
                                                                    horizon_hours=2.0), DataConfig(target="outcome")]
    body = "".join(f"{p},{v}\n" for p, v in rows)
    labels = ("labels.csv", f"{header}\n{body}".encode())
    _check_all(("events.csv", SEED_LONG.encode()), labels, config[config_index])
