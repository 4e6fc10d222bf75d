"""Every upload is read with bounded memory and time, whatever its compression (issue 21, item 2).

The bombs of the probe are built here small (the real sizes are in bench/bench_upload_bombs.py) and the
limits patched down to match, so each test runs in about a second.
"""
from __future__ import annotations

import importlib.util
import io
import time
import zipfile
from pathlib import Path

import pandas as pd

from core import readers
from core.ingest import validate_data

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_upload_bombs.py"
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
    monkeypatch.setattr(readers.pd, "read_csv", lambda *a, **k: calls.append(1) or real(*a, **k))
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
    table = readers._assemble_physionet("set.zip", raw)
    alone = pd.concat([readers._physionet_file("set.zip", k, readers._decode(k, v)[0]) for k, v in raw.items()],
                      ignore_index=True)
    pd.testing.assert_frame_equal(table.frame, alone)
    assert list(table.frame["patient_id"].unique()) == ["1", "2", "c", "4", "f", "7", "h", "9", "10"]
