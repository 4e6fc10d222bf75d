"""Page-test helpers: let background jobs (app/jobs.py) finish, as a person waiting on the page would."""
from __future__ import annotations

import re
import time

from streamlit.testing.v1 import AppTest

__all__ = ["finish_jobs", "session_job_states", "page_job", "unescape", "tiny_upload"]


def session_job_states(at: AppTest, checks: bool = False) -> dict:
    """``{job id: state}`` of the analyses (trainings, explanations, ...) the session of ``at`` submitted; with
    ``checks``, also the checks of its uploads (``validate`` jobs: the Data page runs one for every upload it
    is given, as the upload's own step, so "nothing starts on opening a page" is about the analyses)."""
    from app.resources import job_manager
    from app.state import JOBS
    ids = at.session_state[JOBS] if JOBS in at.session_state else []
    return {i: job_manager().get(i).state for i in ids if checks or job_manager().get(i).kind != "validate"}


def page_job(at: AppTest, page: str) -> tuple:
    """``(JobInfo, result)`` of the last job the page ``page`` of ``at``'s session submitted (``app.jobs.submit``)."""
    from app.resources import job_manager
    jid = at.session_state[f"{page}.job"]
    return job_manager().get(jid), job_manager().result(jid)


def finish_jobs(at: AppTest, timeout: float = 240.0) -> AppTest:
    """Rerun the page until none of its session's jobs is queued or running (a page may start another)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        states = session_job_states(at)
        if not any(s in ("queued", "running") for s in states.values()):
            at.run()
            if session_job_states(at) == states:   # the rerun started nothing new
                return at
            continue
        time.sleep(0.3)
    raise AssertionError(f"jobs still running after {timeout:.0f} s: {session_job_states(at)}")


def unescape(text: str) -> str:
    """What a person reads in a Markdown element whose user text was escaped (``app.components.plain``)."""
    return re.sub(r"\\(.)", r"\1", text)


def tiny_upload(folder, n_patients: int = 60, seed: int = 3):
    """The tiny synthetic cohort (tests/helpers/cohorts.py) written to ``folder`` as an upload of long events and labels
    (target ``died``): ``(DataSource, Cohort)``, the cohort as the app reads that upload."""
    from app.state import DataSource
    from core.config import DataConfig
    from core.data.ingest import validate_data
    from tests.helpers.cohorts import make_tiny_cohort
    from tests.helpers.cohorts import write_long
    events, labels = write_long(make_tiny_cohort(n_patients=n_patients, seed=seed), folder)
    source = DataSource("upload", ((events.name, events.read_bytes()),), (labels.name, labels.read_bytes()),
                        DataConfig(target="died"))
    return source, validate_data(source.events[0], source.labels, config=source.config)[0]
