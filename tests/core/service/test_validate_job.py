"""Validation as a job (issue 21, item 2): a ValidateRequest runs in a worker process with progress, is
reused when identical, and is cancelled within seconds (by a click, or when its browser session has gone)."""
from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from core.config import DataConfig
from core.data.ingest import validate_data
from core.service.jobs import KILL_AFTER_S, JobManager
from core.service import ValidateRequest, request_key, run_request
from tests.helpers.data_files import TARGET, labels_frame, long_rows, to_csv_bytes


@pytest.fixture(scope="module")
def manager():
    m = JobManager(slots=2)
    yield m
    m.shutdown()


def _request(**kw) -> ValidateRequest:
    return ValidateRequest(events=("events.csv", to_csv_bytes(long_rows())),
                           labels=("labels.csv", to_csv_bytes(labels_frame())), config=DataConfig(target=TARGET), **kw)


def test_the_runner_gives_what_validate_data_gives_and_reports_progress():
    request = _request()
    heard = []
    cohort, report = run_request(request, None, progress=lambda m, f: heard.append((m, f)))
    c0, r0 = validate_data(request.events, request.labels, config=request.config)
    pd.testing.assert_frame_equal(cohort.events, c0.events)
    assert report.to_dict() == r0.to_dict()
    fractions = [f for _, f in heard]
    assert heard[0][0] == "reading events.csv" and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(m.startswith("checking 420 rows") for m, _ in heard)


def test_identity_is_the_content_and_the_settings_not_the_name():
    a, b = _request(name="ward 7"), _request(name="other name")
    assert request_key(a, "") == request_key(b, "")
    other = ValidateRequest(events=("events.csv", to_csv_bytes(long_rows()) + b"p9,1,HR,80\n"), labels=a.labels,
                            config=a.config)
    assert request_key(other, "") != request_key(a, "")
    assert request_key(ValidateRequest(events=a.events, labels=a.labels, config=DataConfig()), "") != request_key(a, "")
    given = ValidateRequest(events=a.events, labels=a.labels, config=a.config, digests=("d1", "d2"))
    assert given.identity()["digests"] == ["d1", "d2"]     # the app's digests: no second hash of a large upload


def test_bad_requests_say_what_to_give():
    with pytest.raises(TypeError, match="DataConfig"):
        ValidateRequest(events="events.csv", config={"target": "died"})
    with pytest.raises(ValueError, match="path or"):
        ValidateRequest(events=("only a name",))


def test_a_validation_job_runs_in_a_worker_and_is_reused(manager):
    request = _request()
    jid = manager.submit(request, None, label=request.describe(), owner="alice")
    info = manager.wait(jid, timeout=120)
    assert info.state == "done", info.message
    assert info.pid and info.pid != os.getpid()                  # the validation's memory was the worker's
    cohort, report = manager.result(jid)
    assert cohort.n_patients == 30 and report.ok
    again = manager.submit(_request(), None, owner="alice")
    assert manager.get(again).state == "done" and manager.get(again).reused_from == jid
    assert manager.submit(_request(), None, owner="bob") != again     # never another user's result
    assert manager.wait(manager.list(owner="bob")[0].id, timeout=120).state == "done"


def test_a_validation_is_cancelled_within_seconds(manager, tmp_path):
    fifo = tmp_path / "events.csv"
    os.mkfifo(fifo)                     # reading it blocks until someone writes: a validation that never ends
    jid = manager.submit(ValidateRequest(events=str(fifo)), None, owner="alice")
    deadline = time.monotonic() + 60
    while manager.get(jid).state != "running" or not manager.get(jid).pid:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)
    start = time.monotonic()
    manager.cancel(jid)
    info = manager.wait(jid, timeout=KILL_AFTER_S + 10)
    assert info.state == "cancelled" and time.monotonic() - start < KILL_AFTER_S + 5


@pytest.mark.slow  # ~12 s; a job nobody wants any more is cancelled in tests/core/service/test_jobs.py
def test_a_validation_nobody_follows_is_cancelled(manager, tmp_path):
    fifo = tmp_path / "events.csv"
    os.mkfifo(fifo)
    gone = []
    jid = manager.submit(ValidateRequest(events=str(fifo)), None, owner="alice", cancel_if=lambda: bool(gone))
    time.sleep(1.0)
    assert manager.get(jid).active
    gone.append(True)                   # the browser session that asked for it has closed
    info = manager.wait(jid, timeout=60)
    assert info.state == "cancelled", info


def test_the_worker_reads_with_the_submitting_process_settings(manager):
    """A job's worker is forked from a server started earlier: the request carries the limits in force."""
    from core.data.ingest import reading_settings
    settings = dict(reading_settings(), CHRONOSCOPE_MAX_COLUMNS="3")
    request = _request(settings=tuple(settings.items()))
    assert request_key(request, "") != request_key(_request(), "")
    jid = manager.submit(request, None, owner="alice")
    assert manager.wait(jid, timeout=120).state == "done"
    cohort, report = manager.result(jid)
    assert cohort is None and "more than the limit of 3" in report.errors[0].message
    assert "CHRONOSCOPE_MAX_COLUMNS" not in os.environ or os.environ["CHRONOSCOPE_MAX_COLUMNS"] != "3"


def test_an_upload_check_never_waits_behind_a_training_nor_a_training_behind_it(tmp_path):
    from tests.helpers.cohorts import make_tiny_cohort
    from core.service import TrainRequest
    m = JobManager(slots=1)
    try:
        fifo = tmp_path / "events.csv"
        os.mkfifo(fifo)                                         # a check that never ends, in the checks' lane
        first = m.submit(ValidateRequest(events=str(fifo)), None, owner="alice")
        second = m.submit(ValidateRequest(events=("events.csv", to_csv_bytes(long_rows()))), None, owner="bob")
        train = m.submit(TrainRequest(models=("lr",), preset="test", out=str(tmp_path / "run")),
                         make_tiny_cohort(), owner="carol")
        assert m.get(second).state == "queued" and m.get(second).queue_position == 0   # behind the other check
        assert m.wait(train, timeout=120).state == "done"       # the one training slot was free all along
        m.cancel(first)
        assert m.wait(second, timeout=60).state == "done"
    finally:
        m.shutdown()
