"""core.jobs: jobs run in worker processes, queue, report progress and failures, cancel within seconds."""
from __future__ import annotations

import os
import time

import pytest

from core.jobs import JobManager
from core.service import TrainRequest
from tests.conftest import make_tiny_cohort


@pytest.fixture(scope="module")
def manager():
    m = JobManager(slots=1)
    yield m
    m.shutdown()


def _train(runs, name, models=("lr",), preset="test"):
    return TrainRequest(models=tuple(models), preset=preset, out=str(runs / name), reuse_dirs=(str(runs),))


def test_a_training_job_saves_its_run_and_returns_the_summary(manager, tmp_path):
    cohort = make_tiny_cohort(60, seed=1)
    jid = manager.submit(_train(tmp_path, "r1", ("lr", "gru")), cohort, label="tiny")
    info = manager.wait(jid, timeout=120)
    assert info.state == "done", info
    summary = manager.result(jid)
    assert set(summary.results) == {"lr", "gru"}
    assert (tmp_path / "r1" / "config.json").exists()
    assert not list(tmp_path.glob(".*partial*"))             # nothing left of the staging folder
    assert info.fraction == 1.0 and info.seconds > 0


def test_a_user_error_fails_the_job_with_its_message(manager, tmp_path):
    unlabelled = make_tiny_cohort(30, seed=2)
    unlabelled.labels = None
    jid = manager.submit(_train(tmp_path, "bad"), unlabelled)
    info = manager.wait(jid, timeout=120)
    assert info.state == "failed"
    assert "no labelled patients" in info.message           # the CohortError's own words, not a traceback
    assert "Traceback" not in info.message
    assert not (tmp_path / "bad").exists()


def test_jobs_queue_and_a_running_job_is_cancelled_within_seconds(manager, tmp_path):
    cohort = make_tiny_cohort(300, n_hours=24, seed=3)
    slow = manager.submit(_train(tmp_path, "slow", ("gru",), "full"), cohort)
    queued = manager.submit(_train(tmp_path, "after"), cohort)
    t0 = time.monotonic()
    while manager.get(slow).message in ("starting a worker", "waiting for a free worker") and \
            time.monotonic() - t0 < 60:
        time.sleep(0.2)
    assert manager.get(slow).state == "running"
    assert manager.get(queued).state == "queued" and manager.get(queued).queue_position == 0
    time.sleep(1.0)
    pid = manager._jobs[slow].pid
    t0 = time.monotonic()
    manager.cancel(slow)
    info = manager.wait(slow, timeout=10)
    freed = time.monotonic() - t0
    assert info.state == "cancelled" and freed < 5, (info, freed)
    with pytest.raises(ProcessLookupError):                 # the worker process is gone
        os.kill(pid, 0)
    assert not (tmp_path / "slow").exists() and not list(tmp_path.glob(".*partial*"))
    assert manager.wait(queued, timeout=120).state == "done"  # the queue moved on


def test_a_queued_job_is_cancelled_at_once(tmp_path):
    m = JobManager(slots=1)
    try:
        cohort = make_tiny_cohort(200, n_hours=24, seed=4)
        first = m.submit(_train(tmp_path, "a", ("gru",), "full"), cohort)
        second = m.submit(_train(tmp_path, "b"), cohort)
        assert m.cancel(second).state == "cancelled"
        m.cancel(first)
        assert m.wait(first, timeout=10).state == "cancelled"
        assert not (tmp_path / "b").exists()
        assert [i.id for i in m.list(ids={first, second})] == [second, first]    # newest first
    finally:
        m.shutdown()


def test_unknown_kind_is_refused():
    m = JobManager(slots=1)
    try:
        with pytest.raises(TypeError, match="request of core.service.requests"):
            m.submit({"kind": "mine-bitcoin"}, None)
    finally:
        m.shutdown()


def test_a_ray_job_is_cancelled_and_leaves_no_ray_worker(tmp_path):
    """A job on the Ray backend: cancel stops its tasks and its private Ray instance, all within seconds."""
    import subprocess
    pytest.importorskip("ray", reason="ray is in requirements.txt; install it to test the Ray backend")
    from core.engine import BackendConfig

    def ray_workers() -> int:
        out = subprocess.run(["pgrep", "-fc", "ray/_private/workers/default_worker"], capture_output=True, text=True)
        return int(out.stdout.strip() or 0)
    m = JobManager(slots=1)
    try:
        cohort = make_tiny_cohort(300, n_hours=24, seed=5)
        jid = m.submit(_train(tmp_path, "ray", ("gru", "lstm"), "full"), cohort,
                       backend=BackendConfig("ray", num_cpus=2))
        def on_ray(info) -> bool:        # the fits report from Ray as soon as they run
            return "submitted to Ray" in info.message or any(f.state == "running" for f in info.fits)
        t0 = time.monotonic()
        while not on_ray(m.get(jid)) and time.monotonic() - t0 < 90:
            time.sleep(0.2)
        assert on_ray(m.get(jid)), m.get(jid)
        time.sleep(1.0)
        t0 = time.monotonic()
        m.cancel(jid)
        assert m.wait(jid, timeout=10).state == "cancelled"
        assert time.monotonic() - t0 < 5
        time.sleep(2)
        assert ray_workers() == 0
        assert not (tmp_path / "ray").exists()
    finally:
        m.shutdown()


def test_a_job_follows_each_of_its_fits(manager, tmp_path):
    jid = manager.submit(_train(tmp_path, "fits", ("lr", "rf")), make_tiny_cohort(60, seed=5))
    info = manager.wait(jid, timeout=120)
    assert info.state == "done", info
    assert [(f.title, f.state) for f in info.fits] == [("logistic regression", "done"), ("random forest", "done")]
    assert all(f.seconds > 0 and f.detail.startswith("done in") for f in info.fits)
    assert info.describe_fits() == ""                       # nothing left to name once finished
