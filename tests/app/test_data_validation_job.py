"""The Data page validates an upload as a job (issue 21, item 2): in a worker process, listed with this
session's jobs, shown when done; a cancelled check says so and offers to validate again."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.state import DATA_SOURCE, JOBS, DataSource
from core.config import DataConfig
from tests.helpers.data_files import TARGET, labels_frame, long_rows, to_csv_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _large_uploads(monkeypatch, tmp_path):
    # a large upload: the sidebar leaves it to the Data page, which follows its check live
    monkeypatch.setenv("CHRONOSCOPE_DUCKDB_MIN_MB", "0")
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path))


def _source(rows=None) -> DataSource:
    return DataSource("upload", (("ward 7.csv", to_csv_bytes(long_rows() if rows is None else rows)),),
                      ("labels.csv", to_csv_bytes(labels_frame())), DataConfig(target=TARGET))


def _data_page(source: DataSource) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state[DATA_SOURCE] = source
    return at


def test_an_upload_is_checked_by_a_job_of_this_session_then_shown():
    from app.resources import job_manager
    at = _data_page(_source())
    at.switch_page("app/pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    info = job_manager().get(at.session_state["data.job"])
    assert info.kind == "validate" and info.state == "done" and info.id in at.session_state[JOBS]
    assert info.label == "Read and check ward 7.csv + labels labels.csv" and info.pid != os.getpid()
    cohort, report = job_manager().result(info.id)
    assert cohort.n_patients == 30 and report.ok
    assert any("Read and checked 420 rows of 30 patients" in s.label for s in at.status)
    assert at.dataframe and not [b for b in at.button if b.key in ("data.cancel", "data.again")]
    # another page uses the checked cohort: no second job
    at.switch_page("app/pages/cohort.py").run()
    assert not at.exception
    assert sum(job_manager().get(j).kind == "validate" for j in at.session_state[JOBS]) == 1


def test_a_cancelled_check_says_so_and_validates_again_on_request():
    from app.resources import job_manager
    from app.cache import validation_request
    source = _source(long_rows().iloc[:-3])
    request = validation_request(source)
    manager = job_manager()
    jid = manager.submit(request, None, label="check", owner="")
    manager.cancel(jid)
    assert manager.wait(jid, timeout=30).state == "cancelled"
    at = _data_page(source)
    at.session_state["data.job"] = jid
    at.session_state[JOBS] = [jid]
    at.switch_page("app/pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("cancelled" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not at.dataframe                                   # nothing of the data is shown
    at.button(key="data.again").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("cancelled" in w.value for w in at.warning)
    new = at.session_state["data.job"]
    assert new != jid and manager.get(new).state == "done"
    assert at.dataframe                                       # the checked events are shown
