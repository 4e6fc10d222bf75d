"""A large upload through the Data page: kept on disk in the user's scratch folder (byte for byte, owner
only), read by DuckDB, shown by its own name, with a status box that says what is done and how long."""
from __future__ import annotations

import stat
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.state import DATA_SOURCE, DataSource
from core.config import DataConfig
from tests.helpers.pages import unescape
from tests.helpers.data_files import TARGET, labels_frame, long_rows, to_csv_bytes

ROOT = Path(__file__).resolve().parents[2]


def test_large_upload_is_read_by_duckdb_from_a_private_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_DUCKDB_MIN_MB", "0")      # every upload counts as large
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path))
    events = to_csv_bytes(long_rows())
    source = DataSource("upload", (("ward 7.csv", events),), ("labels.csv", to_csv_bytes(labels_frame())),
                        DataConfig(target=TARGET))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state[DATA_SOURCE] = source
    at.switch_page("app/pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [unescape(s.label) for s in at.status]
    assert any("Read and checked 420 rows of 30 patients" in t for t in labels), labels
    text = " ".join(unescape(m.value) for m in at.markdown)
    assert "Read by DuckDB" in text and "ward 7.csv" in text
    assert "upload.bin" not in text                           # the copy's path is never shown
    copies = list(tmp_path.rglob("upload.bin"))
    assert len(copies) == 1 and copies[0].read_bytes() == events
    assert stat.S_IMODE(copies[0].stat().st_mode) == 0o600
    # other pages reuse the loaded cohort: no second status box in this session
    at.switch_page("app/pages/cohort.py").run()
    assert not at.exception and not at.status


def test_the_estimate_says_what_is_done_and_how_long(monkeypatch):
    from app.cache import load_estimate
    monkeypatch.setenv("CHRONOSCOPE_DUCKDB_MIN_MB", "1")
    monkeypatch.setenv("CHRONOSCOPE_MEMORY_LIMIT_MB", "2048")
    big = DataSource("upload", (("big.csv", b"patient_id,time,variable,value\n" + b"p1,1,HR,80\n" * 600_000),))
    note = load_estimate(big)
    assert note.startswith("Reading 6 MB with DuckDB (memory limit 2,048 MB)") and note.endswith("about 1 s on this machine.")
    small = DataSource("upload", (("small.csv", b"patient_id,time,variable,value\np1,1,HR,80\n"),))
    assert load_estimate(small) is None and load_estimate(DataSource()) is None
