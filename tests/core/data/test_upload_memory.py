"""Every upload is read with bounded memory and time, whatever its compression (issue 21, item 2).

The bombs of the probe are built here small (the real sizes are in bench/bench_upload_bombs.py) and the
limits patched down to match, so each test runs in about a second.
"""
from __future__ import annotations

import gzip
import importlib.util
import io
import time
import tracemalloc
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.data import csv_reader, ingest, physionet_reader, readers
from core.cli import main
from core.config import DataConfig
from core.data.ingest import inspect_columns, validate_data
from tests.helpers.data_files import long_rows, to_csv_bytes
from tests.helpers.paths import ROOT

_BENCH = ROOT / "bench" / "bench_upload_bombs.py"
_spec = importlib.util.spec_from_file_location("bench_upload_bombs", _BENCH)
bombs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bombs)

H = "Time,Parameter,Value\n"


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


# -- a zip of many tiny per-patient files ----------------------------------------------------------------

def test_many_tiny_per_patient_files_are_parsed_in_one_pass(tmp_path, monkeypatch):
    path = tmp_path / "patients.zip"
    bombs.patient_zip(path, 300)
    calls = []
    real = pd.read_csv
    monkeypatch.setattr(physionet_reader.pd, "read_csv", lambda *a, **k: calls.append(1) or real(*a, **k))
    cohort, report = validate_data(str(path))
    assert cohort is not None and cohort.n_patients == 300
    assert report.rows_read == report.rows_used + sum(report.rows_excluded.values()) == 300 * 9
    assert len(calls) <= 2, f"{len(calls)} parses for 300 files: one per file is what took 145 s for 20,000"


def test_5000_member_zip_validates_in_seconds(tmp_path):
    path = tmp_path / "patients.zip"
    bombs.patient_zip(path, 5000)
    start = time.perf_counter()
    cohort, report = validate_data(str(path))
    took = time.perf_counter() - start
    assert cohort is not None and cohort.n_patients == 5000 and report.rows_read == 5000 * 9
    assert took < 10, f"{took:.1f} s for 5,000 tiny files (the 20,000-file target is 20 s)"


def test_one_pass_gives_what_one_parse_per_file_gives():
    """Odd files (quotes, extra columns, CRLF, blank lines, a BOM, short lines) are parsed on their own, in
    file order, beside the plain ones parsed together: the table is what parsing every file alone gives."""
    files = {"a.txt": H + "00:00,RecordID,1.0\n00:01,HR,70\n",
             "b.txt": H + '00:00,RecordID,2\n00:01,"HR",71\n',
             "c.txt": H + "00:00,HR,72\n\n\n00:03,HR, 73\r\n",
             "d.txt": "time, parameter ,value\r\n00:00,recordid,4\r\n 00:01,HR,\r\n",
             "e.txt": H,
             "f.txt": H + "00:00,HR\n",
             "g.txt": "Time,Parameter,Value,Extra\n00:00,RecordID,7,x\n00:01,HR,1,y\n",
             "h.txt": H + " \n00:01,HR,5\n",
             "i.txt": "\ufeff" + H + "00:00,RecordID,9\n00:02,HR,9\n",
             "j.txt": H + "00:00,RecordID,10\n00:00,RecordID,11\n00:02,HR,9\n"}
    raw = {k: v.encode() for k, v in files.items()}
    table = physionet_reader.assemble_physionet("set.zip", raw)
    alone = pd.concat([physionet_reader.physionet_file("set.zip", k, csv_reader.decode_text(k, v)[0])
                       for k, v in raw.items()],
                      ignore_index=True)
    pd.testing.assert_frame_equal(table.frame, alone)
    assert list(table.frame["patient_id"].unique()) == ["1", "2", "c", "4", "f", "7", "h", "9", "10"]


# -- bombs: refused before they are materialised, with the numbers and the limit -------------------------------

def _message(report) -> str:
    [finding] = [f for f in report.errors if f.code == "unreadable_events"]
    return finding.message


def _peak_mb(fn):
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_gzip_bomb_is_refused_early_with_rows_estimate_and_limit(tmp_path, monkeypatch):
    """The probe's 3.6 MB gzip of 1.9 GB, scaled down: 64 MB of rows in 130 kB, a 16 MB limit. The stream is
    counted while it inflates (checked every MB here) and stops long before the whole text is in memory."""
    monkeypatch.setenv("CHRONOSCOPE_MAX_VALIDATE_MB", "16")
    monkeypatch.setenv("CHRONOSCOPE_DUCKDB_MIN_MB", "1")
    monkeypatch.setattr(readers, "_CHECK_EVERY", 1 << 20)
    meta = bombs.gzip_bomb(tmp_path / "bomb.csv.gz", 64)
    for source in (str(tmp_path / "bomb.csv.gz"), ("bomb.csv.gz", (tmp_path / "bomb.csv.gz").read_bytes())):
        (cohort, report), peak = _peak_mb(lambda: validate_data(source))
        message = _message(report)
        assert cohort is None and "bomb.csv.gz" in message and "too large to validate" in message
        assert "at least" in message and "limit of 16 MB" in message and "CHRONOSCOPE_MAX_VALIDATE_MB" in message
        assert "Split it" in message
        assert peak < 24, f"peak {peak:.0f} MB: the {meta['inflated_mb']} MB text was materialised"
    assert "too large to validate" in inspect_columns(("bomb.csv.gz", (tmp_path / "bomb.csv.gz").read_bytes()))["error"]


def test_gzip_bomb_under_the_in_memory_size_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_MAX_VALIDATE_MB", "16")
    bombs.gzip_bomb(tmp_path / "bomb.csv.gz", 12)      # 12 MB inflated: the in-memory path (under 32 MB)
    (cohort, report), peak = _peak_mb(lambda: validate_data(str(tmp_path / "bomb.csv.gz")))
    assert cohort is None and "limit of 16 MB" in _message(report)
    assert peak < 40, f"peak {peak:.0f} MB: more than the inflated text and its count"


def test_parquet_bomb_with_text_cells_is_refused_from_its_metadata(tmp_path, monkeypatch):
    """40 M repeated rows in 0.6 MB, scaled down: 2 M rows. The old estimate (8 bytes a value: 61 MB) let it
    through; text cells cost their real size in pandas."""
    monkeypatch.setenv("CHRONOSCOPE_MAX_VALIDATE_MB", "256")
    bombs.parquet_bomb(tmp_path / "bomb.parquet", 2_000_000)
    content = (tmp_path / "bomb.parquet").read_bytes()
    assert len(content) < 200_000
    (cohort, report), peak = _peak_mb(lambda: validate_data(("bomb.parquet", content)))
    message = _message(report)
    assert cohort is None and "2,000,000 rows of 4 columns" in message and "limit of 256 MB" in message
    assert peak < 32, f"peak {peak:.0f} MB: the Parquet rows were read"
    assert "2,000,000 rows" in inspect_columns(("bomb.parquet", content))["error"]


def test_text_cells_are_costed_at_their_real_size(tmp_path):
    from core.data.ingest import estimate_memory
    n, long_id = 50_000, "x" * 200
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"patient_id": [long_id] * n, "time": [1.0] * n, "variable": ["HR"] * n,
                             "value": [80.0] * n}), path)
    seen = []
    readers.read_table(str(path), check=seen.append)
    probe = seen[-1]                       # the check before pandas reads it
    assert not probe.compact and probe.rows == n and estimate_memory(probe, DataConfig()) > n * 200


def test_cli_refuses_a_bomb_with_exit_2_and_the_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHRONOSCOPE_MAX_VALIDATE_MB", "16")
    bombs.gzip_bomb(tmp_path / "bomb.csv.gz", 22)
    assert main(["validate", str(tmp_path / "bomb.csv.gz")]) == 2
    out = capsys.readouterr()
    assert "too large to validate" in out.out and "Traceback" not in out.out + out.err


# -- large in memory, small on disk: read out of core, the same cohort -----------------------------------------

def test_compressed_upload_large_when_inflated_is_read_by_duckdb_alike(tmp_path, monkeypatch):
    rows = long_rows()
    text = to_csv_bytes(rows)
    upload = ("events.csv.gz", gzip.compress(text))
    monkeypatch.setenv("CHRONOSCOPE_ENGINE", "pandas")
    c1, r1 = validate_data(upload)
    monkeypatch.setenv("CHRONOSCOPE_ENGINE", "auto")
    monkeypatch.setenv("CHRONOSCOPE_DUCKDB_MIN_MB", str(len(text) / 2 / 2**20))   # inflated > min, gzip < min
    c2, r2 = validate_data(upload)
    assert any("Read by DuckDB" in f.message for f in r2.findings)
    pd.testing.assert_frame_equal(c1.events, c2.events)
    assert (r1.rows_read, r1.rows_used, r1.rows_excluded) == (r2.rows_read, r2.rows_used, r2.rows_excluded)


def test_parquet_upload_large_in_pandas_is_read_by_duckdb(tmp_path, monkeypatch):
    path = tmp_path / "events.parquet"
    long_rows().to_parquet(path, index=False)
    monkeypatch.setenv("CHRONOSCOPE_DUCKDB_MIN_MB", "0.01")
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "spill"))
    cohort, report = validate_data(("events.parquet", path.read_bytes()))
    assert cohort is not None and any("Read by DuckDB" in f.message for f in report.findings)
    assert report.rows_read == len(long_rows())
    assert not list((tmp_path / "spill").glob("chronoscope-spill-*")), "the spill folder outlived the read"


def test_duckdb_refuses_from_the_exact_row_count_before_pandas_gets_a_row(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_ENGINE", "duckdb")
    monkeypatch.setenv("CHRONOSCOPE_MAX_VALIDATE_MB", "1")
    path = tmp_path / "events.csv"
    path.write_bytes(b"patient_id,time,variable,value\n" + b"p1,1,HR,80\n" * 20_000)
    cohort, report = validate_data(str(path))
    assert cohort is None and "20,000 rows of 4 columns" in _message(report)
    assert "limit of 1 MB" in _message(report)


# -- out of memory all the same: a message, never a traceback ------------------------------------------------

@pytest.mark.parametrize("error", [MemoryError, pa.ArrowMemoryError])
def test_memory_errors_become_a_message(tmp_path, monkeypatch, capsys, error):
    def boom(*a, **k):
        raise error("malloc of size 8589934592 failed")
    path = tmp_path / "events.csv"
    path.write_bytes(to_csv_bytes(long_rows()))
    monkeypatch.setattr(ingest, "clean_rows", boom)
    cohort, report = validate_data(str(path))
    [finding] = report.errors
    assert cohort is None and finding.code == "out_of_memory" and "events.csv" in finding.message
    assert "ran out of memory" in finding.message and "CHRONOSCOPE_MAX_VALIDATE_MB" in finding.message
    assert main(["validate", str(path)]) == 2
    assert "ran out of memory" in capsys.readouterr().out
    monkeypatch.setattr(csv_reader, "_parse_csv_text", boom)
    assert "ran out of memory" in inspect_columns(("events.csv", path.read_bytes()))["error"]
    assert "ran out of memory" in _message_of(validate_data(("events.csv", path.read_bytes()))[1])


def _message_of(report) -> str:
    return " ".join(f.message for f in report.errors)
