"""The live job status names the slowest fit still running, with its seconds and last message."""
import sys

from streamlit.testing.v1 import AppTest

from tests.helpers.pages import unescape


def _status_of_a_training():
    import time

    from app.jobs import draw_progress
    from core.service.jobs import FitStatus, JobInfo
    now = time.time()
    draw_progress(JobInfo(id="j", kind="train", label="Train 3 models", state="running", started=now - 50,
                          message="rf: trees 60/100", fraction=0.4,
                          fits=(FitStatus("logistic regression", "done", now - 50, now - 48, "done in 2.0 s"),
                                FitStatus("random forest", "running", now - 45, 0.0, "trees 60/100"),
                                FitStatus("GRU", "waiting"))))


def test_the_status_names_the_slowest_remaining_fit(monkeypatch):
    # the script runs as __main__; put ours back after it, or a job's fork server started later in this
    # process would run the script again (as __mp_main__) in every worker
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    at = AppTest.from_function(_status_of_a_training, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [unescape(c.value) for c in at.caption]
    assert any(c.startswith("1 of 3 fits done. Slowest remaining fit: random forest, 45 s (trees 60/100).")
               and c.endswith("Not started: GRU.") for c in captions), captions
