"""core.service.jobs: jobs run in worker processes, queue, report progress and failures, cancel within seconds."""
from __future__ import annotations

import os
import time

import pytest

from core.service.jobs import JobManager
from core.service import TrainRequest
from tests.helpers.cohorts import make_tiny_cohort
from tests.helpers.paths import ROOT


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


@pytest.mark.slow  # Ray
def test_a_ray_job_is_cancelled_and_leaves_no_ray_worker(tmp_path):
    """A job on the Ray backend: cancel stops its tasks and its private Ray instance, all within seconds."""
    import subprocess
    pytest.importorskip("ray", reason="ray is in requirements.txt; install it to test the Ray backend")
    from core.training.engine import BackendConfig

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


# ----------------------------------------------------------------------------------------------
# the backend is the operator's; an unreachable one fails fast; workers die with their server
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def silent_port():
    """A TCP port on 127.0.0.1 that accepts connections and never says a word (not Ray)."""
    import socket
    import threading
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for c in accepted:
        c.close()
    server.close()


def _closed_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]          # nothing listens there once it is closed


@pytest.mark.slow  # Ray
def test_a_job_whose_cluster_cannot_be_reached_fails_with_a_message_and_frees_its_slot(tmp_path, silent_port):
    """Nothing listening: refused at once. A port that accepts but does not speak Ray: failed after the
    connect timeout, not hung in the only slot; the next job runs."""
    pytest.importorskip("ray", reason="ray is in requirements.txt; install it to test the Ray backend")
    from core.training.engine import BackendConfig
    m = JobManager(slots=1)
    try:
        # three different requests (identical ones would share one job, whatever the backend)
        dead = m.submit(_train(tmp_path, "dead"), make_tiny_cohort(40, seed=8),
                        backend=BackendConfig("ray", address=f"127.0.0.1:{_closed_port()}"))
        silent = m.submit(_train(tmp_path, "silent"), make_tiny_cohort(40, seed=9),
                          backend=BackendConfig("ray", address=f"127.0.0.1:{silent_port}", connect_timeout_s=3))
        after = m.submit(_train(tmp_path, "after"), make_tiny_cohort(40, seed=10))
        t0 = time.monotonic()
        info = m.wait(dead, timeout=30)
        assert info.state == "failed" and time.monotonic() - t0 < 15, info
        assert "nothing listens" in info.message and "CHRONOSCOPE_RAY_ADDRESS" in info.message, info.message
        t0 = time.monotonic()
        info = m.wait(silent, timeout=30)
        assert info.state == "failed" and time.monotonic() - t0 < 15, info
        assert f"127.0.0.1:{silent_port}" in info.message and "did not answer" in info.message, info.message
        assert "Traceback" not in info.message
        assert m.wait(after, timeout=120).state == "done"          # the slot was freed
    finally:
        m.shutdown()


def _gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


_SERVER = """
import sys, time
from core.training.engine import BackendConfig
from core.service.jobs import JobManager
from core.service import TrainRequest
from tests.helpers.cohorts import make_tiny_cohort
m = JobManager(slots=1)
request = TrainRequest(models=("lr",), preset="test", out=sys.argv[2] + "/r")
jid = m.submit(request, make_tiny_cohort(40, seed=1), backend=BackendConfig("ray", address="127.0.0.1:" + sys.argv[1]))
while not m.get(jid).pid and m.get(jid).active:
    time.sleep(0.1)
print(m.get(jid).pid, m.get(jid).state, flush=True)
time.sleep(600)
"""


@pytest.mark.slow  # Ray
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc (Linux)")
def test_job_workers_die_with_their_server_even_after_kill_9(tmp_path, silent_port):
    """The server is killed with SIGKILL while its job's worker hangs (joining a 'cluster' that never answers):
    the worker exits within seconds instead of holding on for minutes."""
    import signal
    import subprocess
    import sys
    root = ROOT
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(silent_port), str(tmp_path)], cwd=root,
                              stdout=subprocess.PIPE, text=True)
    worker = 0
    try:
        pid, state = server.stdout.readline().split()
        worker = int(pid)
        assert state == "running" and not _gone(worker)
        time.sleep(1.0)                                     # the worker is now inside ray.init
        server.send_signal(signal.SIGKILL)
        server.wait()
        t0 = time.monotonic()
        while not _gone(worker) and time.monotonic() - t0 < 10:
            time.sleep(0.1)
        assert _gone(worker), "the worker outlived its server"
        assert time.monotonic() - t0 < 6
    finally:
        server.kill()
        if worker and not _gone(worker):
            os.killpg(worker, signal.SIGKILL)


def _slow(tmp_path, name):
    """About 20 s on 2 cores with :func:`_slow_cohort` (one GRU on 300 short stays took 5 s here and under 3 s on CI,
    which then finished before the test looked)."""
    return _train(tmp_path, name, ("gru", "lstm", "grud"), "full")


def _slow_cohort():
    return make_tiny_cohort(2000, n_hours=48, seed=3)


def test_a_job_bound_to_a_browser_session_is_cancelled_when_nobody_wants_it_any_more(tmp_path):
    """``cancel_if`` is asked every few seconds; once it has said True for the grace period the job is cancelled.
    An identical request of another session shares the job: it runs until every session that wants it is gone."""
    m = JobManager(slots=1)
    m.cancel_check_s, m.cancel_grace_s = 0.1, 0.5
    gone = {"a": False, "b": False, "c": False}
    try:
        cohort = _slow_cohort()
        jid = m.submit(_slow(tmp_path, "slow"), cohort, cancel_if=lambda: gone["a"])
        assert m.submit(_slow(tmp_path, "slow"), cohort, cancel_if=lambda: gone["b"]) == jid      # shared
        queued = m.submit(_train(tmp_path, "queued"), cohort, cancel_if=lambda: gone["c"])
        kept = m.submit(_train(tmp_path, "kept", ("svm",)), cohort)      # bound to nobody: never cancelled so
        t0 = time.monotonic()
        while not m.get(jid).pid and time.monotonic() - t0 < 60:     # its worker has started
            time.sleep(0.1)
        gone["c"] = True                                  # a queued job nobody wants is dropped before it starts
        assert m.wait(queued, timeout=30).state == "cancelled"
        gone["a"] = True                                  # one of its two sessions left: it keeps running
        time.sleep(1.5)
        assert m.get(jid).state == "running"
        gone["b"] = True
        t0 = time.monotonic()
        info = m.wait(jid, timeout=40)                    # generous: CI machines are loaded (SIGKILL after KILL_AFTER_S)
        assert info.state == "cancelled" and time.monotonic() - t0 < 30, info
        assert "browser session" in info.message, info.message
        assert m.wait(kept, timeout=300).state == "done"
    finally:
        m.shutdown()


def test_a_failing_liveness_check_never_cancels_and_never_stops_the_manager(tmp_path):
    def broken() -> bool:
        raise RuntimeError("the app's check is broken")
    m = JobManager(slots=1)
    m.cancel_check_s, m.cancel_grace_s = 0.05, 0.0
    try:
        jid = m.submit(_train(tmp_path, "r"), make_tiny_cohort(40, seed=1), cancel_if=broken)
        assert m.wait(jid, timeout=120).state == "done"
    finally:
        m.shutdown()
