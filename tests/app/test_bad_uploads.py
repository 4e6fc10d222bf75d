"""Bad and hostile uploads through the Data page: each shows its message (an error or a warning),
never an exception, and the app keeps working (another page renders after)."""
from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from app.state import DATA_SOURCE, DataSource
from core.data import readers
from core.config import DataConfig

ROOT = Path(__file__).resolve().parents[2]
HEADER = "patient_id,time,variable,value\n"
ROWS = "".join(f"p{i},{h},HR,{70 + h}\n" for i in range(5) for h in range(6))


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def _parquet_list_ids() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"patient_id": [[1], [2]] * 3, "time": [0.0, 1.0, 2.0] * 2, "variable": ["HR"] * 6,
                             "value": [80.0] * 6}), buf)
    return buf.getvalue()


#: case -> (files, config, where the message shows, what it says)
BAD = {
    "zip_bomb": ((("bomb.zip", _zip({"events.csv": HEADER.encode() + b"p1,1,HR,80\n" * 200_000})),), DataConfig(),
                 "error", "more than 1 MB"),
    "gzip_of_too_many_rows": ((("events.csv.gz", gzip.compress(HEADER.encode() + b"p1,1,HR,80\n" * 200_000)),),
                              DataConfig(), "error", "CHRONOSCOPE_MAX_INFLATED_MB"),
    "nul_bytes": ((("nul.csv", (HEADER + ROWS * 30).encode() + b"p1,1,HR,8\x000\n"),), DataConfig(), "error",
                  "NUL byte"),
    "100k_columns": ((("wide.csv", ("patient_id,time," + ",".join(f"v{i}" for i in range(100_000)) + "\np1,1,"
                                    + ",1" * 99_999 + "1\n").encode()),), DataConfig(), "error", "columns, more than"),
    "huge_cell": ((("huge.csv", (HEADER + ROWS + "p1,1,HR," + "9" * 200_000 + "x\n").encode()),), DataConfig(),
                  "warning", "200,001 characters"),
    "bom_latin1": ((("bom.csv", b"\xef\xbb\xbf" + (HEADER + "p\xe91,1,HR,80\n").encode("latin-1")),), DataConfig(),
                   "error", "mixes two text encodings"),
    "mixed_encodings": ((("mixed.csv", (HEADER + "pé1,1,HR,80\n" * 3).encode() + "pé1,4,HR,80\n".encode("latin-1")),),
                        DataConfig(), "error", "line(s) 5"),
    "duplicate_header": ((("dup.csv", b"patient_id,time,HR,HR\np1,1,80,81\np1,2,80,81\n"),), DataConfig(), "error",
                         "appears more than once"),
    "hhmm_on_numbers": ((("events.csv", (HEADER + ROWS).encode()),), DataConfig(time_format="hhmm"), "error",
                        "could not be parsed as hhmm"),
    "parquet_list_ids": ((("events.parquet", _parquet_list_ids()),), DataConfig(), "error", "lists"),
    "year_0001": ((("dates.csv", (HEADER + "p1,0001-01-01 00:00,HR,80\n" + "".join(
        f"p1,2024-01-01 {h:02d}:00,HR,{70 + h}\n" for h in range(12))).encode()),), DataConfig(), "warning",
                  "absurd date-time"),
    "many_variables": ((("long.csv", (HEADER + "".join(f"p{i % 9},{i % 24},item{i},{i % 50}\n"
                                                       for i in range(20_000))).encode()),), DataConfig(), "error",
                       "distinct variables"),
}


def _run(page: str, source: DataSource) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state[DATA_SOURCE] = source
    at.run()
    at.switch_page(page).run()
    return at


@pytest.mark.parametrize("case", list(BAD))
def test_bad_upload_shows_its_message_and_the_app_keeps_working(case, monkeypatch):
    monkeypatch.setattr(readers, "MAX_INFLATED_MB", 1)
    files, config, where, needle = BAD[case]
    at = _run("app/pages/data.py", DataSource("upload", files, None, config))
    assert not at.exception, [e.value for e in at.exception]
    shown = [e.value.replace("\\", "") for e in (at.error if where == "error" else at.warning)]  # markdown escapes
    assert any(needle in text for text in shown), shown
    assert all(len(text) < 20_000 for text in shown)
    at.switch_page("app/pages/cohort.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title


def test_per_patient_files_with_a_lowercase_header_are_read():
    files = tuple((f"{rid}.txt", f"time,parameter,value\n00:00,recordid,{rid}\n00:10,HR,80\n01:00,HR,82\n".encode())
                  for rid in (132539, 132540, 132541))
    at = _run("app/pages/data.py", DataSource("upload", files, None, DataConfig()))
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("explored" in s.value for s in at.success)
