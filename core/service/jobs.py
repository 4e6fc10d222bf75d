"""Long work as jobs: each in its own worker process, queued, with progress, cancel and clear failures.

The app submits every long piece of work (train and compare, refit, time order, explanations of
many patients, gate models) to one process-wide :class:`JobManager` and polls it; the work runs in
a worker process (a child of a ``forkserver``: fast to start, no threads inherited from the web
server), never in a page's script, so it survives page changes and browser reloads.

* **Queue.** At most ``slots`` jobs run at once (default: cores // threads per fit, at least 1;
  ``CHRONOSCOPE_JOB_SLOTS`` overrides); the others wait in submission order, so two users training
  at once do not oversubscribe the cores. Upload checks have a lane of their own (:data:`LANES`).
* **Progress.** The worker sends ``(message, fraction)`` through a pipe (at most ~5 per second), with the
  state of every fit of the job (:class:`FitStatus`: not started, running, done; when it started, what it
  last said). Every fit reports at least every 5 s (:mod:`core.models.staged`), so a page can name the
  slowest fit still running (:meth:`JobInfo.describe_fits`) and is never stuck on an old message.
* **Cancel.** SIGTERM to the worker, which stops its work at once (a Ray backend cancels its tasks
  and shuts its private Ray instance down); SIGKILL to the worker's whole process group after
  :data:`KILL_AFTER_S` seconds if it is still running (a long C call does not see SIGTERM). A cancelled training leaves no run: runs are written through a
  staging folder (:func:`core.runs.store.save_run`), and the staging folder of a killed worker is removed.
* **Failure.** A :class:`~core.exceptions.CoreError` becomes the job's message as it is; anything
  else becomes "internal error: ..." (the traceback goes to the server log, not to the page).
* **Where.** The fits run on the manager's backend: by default the server's configuration
  (:func:`core.training.engine.configured_backend`, read in the worker), never anything a user typed. A cluster that
  does not answer fails the job within :data:`core.training.engine.CONNECT_TIMEOUT_S` and frees its slot.
* **Nobody left.** A job submitted with ``cancel_if`` (the app: "this browser session has closed") is
  cancelled once every ``cancel_if`` of the sessions that asked for it has said True for
  ``cancel_grace_s`` seconds (asked every ``cancel_check_s``).
* **Server death.** A worker watches its server: when the server process is gone (even after ``kill -9``)
  it cancels itself, and its whole process group (a private Ray instance too) is killed
  :data:`KILL_AFTER_S` seconds later if it is still there.

A job runs one request of :mod:`core.service.requests` with its runner
(:func:`core.service.runners.run_request`); :data:`JOB_KINDS` lists the kinds. The result goes back to the manager through the pipe (between our own processes; nothing a user
supplied is ever unpickled) and is kept in memory for the last :data:`KEEP_FINISHED` jobs.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.exceptions import CoreError
from core.settings import Settings, read_settings

__all__ = ["JobManager", "JobInfo", "JobCancelled", "FitStatus", "JOB_KINDS", "JOB_STATES", "KILL_AFTER_S",
           "SLOTS_ENV", "LANES", "default_slots"]

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
#: seconds between SIGTERM and SIGKILL when a job is cancelled.
KILL_AFTER_S = 4.0
#: finished jobs whose results are kept in memory (older ones keep only their status).
KEEP_FINISHED = 16
#: fits named one by one in :meth:`JobInfo.describe_fits` (the others are counted).
_NAMED_FITS = 4
#: environment variable: how many jobs may run at once.
SLOTS_ENV = Settings.job_slots.env
_POLL_S = 0.2
#: how often a worker checks that its server still runs (seconds).
_WATCH_S = 0.5


#: kinds with their own lane of slots, beside the trainings' ``slots``: checking an upload (bounded in memory,
#: one thread) never waits behind someone's hour-long training, and trainings never wait behind a check.
LANES = {"validate": 1}


class JobCancelled(KeyboardInterrupt):
    """Raised inside a worker when its job is cancelled (SIGTERM)."""


def default_slots() -> int:
    """Jobs that may run at once: ``$CHRONOSCOPE_JOB_SLOTS``, else cores // threads per fit (>= 1)."""
    from core.training.threads import MAX_THREADS, cpu_count
    settings = read_settings()
    if settings.job_slots is not None:
        return settings.job_slots
    return max(1, cpu_count() // (settings.threads or MAX_THREADS))


# ----------------------------------------------------------------------------------------------
# the work: a request of core.service, run by its runner in the worker
# ----------------------------------------------------------------------------------------------
#: the kinds of work a job can be (``request.kind`` of each request type of :mod:`core.service.requests`).
JOB_KINDS = ("train", "timeorder", "explain", "predict", "gates", "cv", "validate", "pair", "evaluate", "subgroups")


def _runs_root(request) -> str | None:
    """The folder a request's training writes its run into (its staging folder is removed if the job dies)."""
    train = getattr(request, "train", None) if getattr(request, "kind", "") != "train" else request
    out = getattr(train, "out", "") if train is not None else ""
    return str(Path(out).parent) if out else None


def _send(conn, message) -> None:
    try:
        conn.send(message)
    except (BrokenPipeError, OSError):   # the manager is gone
        pass


@dataclass(frozen=True)
class FitStatus:
    """One fit of a job (a model on one split, fold, horizon or refit), as its progress messages tell it.

    Attributes
    ----------
    title : str
        For people: ``"random forest"``, ``"fold 2/5: GRU"`` (the registry's ``label``).
    state : {"waiting", "running", "done"}
    started, finished : float
        ``time.time()`` stamps (0 when not yet).
    detail : str
        The fit's last message, without its name (``"trees 60/100"``); heartbeats do not replace it.
    """

    title: str
    state: str = "waiting"
    started: float = 0.0
    finished: float = 0.0
    detail: str = ""

    @property
    def seconds(self) -> float:
        """Running time so far (or in all, once done; 0 before it started)."""
        if not self.started:
            return 0.0
        return (self.finished or time.time()) - self.started


class _FitBoard:
    """The fits of one job, updated from every progress message (in the worker, before any is dropped)."""

    def __init__(self) -> None:
        self.fits: dict[str, FitStatus] = {}

    def observe(self, message) -> bool:
        """Update from one message; True when a fit was announced, started or finished (worth sending now)."""
        from core.models.staged import FitMessage, FitPlan
        if isinstance(message, FitPlan):
            new = [(k, t) for k, t in message.fits if k not in self.fits]
            self.fits.update((k, FitStatus(title=t)) for k, t in new)
            return bool(new)
        if not isinstance(message, FitMessage) or not message.key:
            return False
        fit = self.fits.get(message.key) or FitStatus(title=message.title or message.label)
        before, now = fit.state, time.time()
        if fit.state == "waiting":
            fit = replace(fit, state="running", started=now)
        if message.state == "done" and fit.state != "done":
            fit = replace(fit, state="done", finished=now)
        if not message.heartbeat:
            fit = replace(fit, detail=message.detail)
        self.fits[message.key] = fit
        return fit.state != before

    def snapshot(self) -> tuple:
        return tuple(self.fits.values())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # exists, someone else's (the pid was reused)
        return True
    return True


def _die_with(server_pid: int) -> None:
    """Worker thread: when the server (``server_pid``) is gone, or the fork server that started this worker
    (its parent) is, cancel this job (SIGTERM to itself: Ray shuts down cleanly), then kill what is left of
    its process group after :data:`KILL_AFTER_S` seconds (a long C call does not see SIGTERM)."""
    parent = os.getppid()
    while os.getppid() == parent and _alive(server_pid):
        time.sleep(_WATCH_S)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(KILL_AFTER_S)
    if os.getpgid(0) == os.getpid():            # its own group (setsid): the worker and what it started
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _worker(request, cohort, backend, conn, server_pid: int) -> None:
    """Worker process body: own process group, SIGTERM -> JobCancelled, messages through ``conn``; ends when
    the server ``server_pid`` does."""
    try:
        os.setsid()                  # cancel signals the whole group (a private Ray instance too)
    except OSError:
        pass

    def on_term(signum, frame):
        raise JobCancelled()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C in the server's terminal is the server's
    threading.Thread(target=_die_with, args=(server_pid,), name="chronoscope-die-with-server", daemon=True).start()
    last, board, lock = [0.0], _FitBoard(), threading.Lock()

    def progress(message: str, fraction: float) -> None:
        with lock:                   # a fit's heartbeat thread reports too
            changed = board.observe(message)
            now = time.monotonic()
            if changed or now - last[0] >= 0.2 or fraction >= 1.0:
                last[0] = now
                try:
                    conn.send(("progress", str(message), float(min(max(fraction, 0.0), 1.0)), board.snapshot()))
                except (BrokenPipeError, OSError):    # the manager is gone: nobody wants the result
                    raise JobCancelled() from None
    try:
        conn.send(("started", os.getpid()))
        from core.training.engine import configured_backend, make_backend
        from core.service.runners import run_request
        result = run_request(request, cohort, progress, make_backend(backend or configured_backend()))
        # plain pickle, not multiprocessing's: its torch reductions pass tensors as shared memory that
        # vanishes when this process exits
        conn.send(("done", pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)))
    except KeyboardInterrupt:        # JobCancelled, or Ray's own translation of the SIGTERM
        _send(conn, ("cancelled", None))
    except CoreError as err:
        _send(conn, ("failed", str(err)))
    except Exception as err:         # a bug: the page gets one clear line, the log gets the traceback
        traceback.print_exc(file=sys.stderr)
        _send(conn, ("failed", f"internal error ({type(err).__name__}: {err}). The details are in the server log; "
                               "please report it."))
    finally:
        try:
            if "ray" in sys.modules and sys.modules["ray"].is_initialized():
                sys.modules["ray"].shutdown()
        except Exception:            # shutting down is best effort; the process group is ending anyway
            pass
        conn.close()


# ----------------------------------------------------------------------------------------------
# the manager (in the app's process)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobInfo:
    """A snapshot of one job.

    Attributes
    ----------
    id, kind, label : str
        ``label`` is what the job does, in words ("Train 4 models (quick) on 2,000 patients").
    state : {"queued", "running", "done", "failed", "cancelled"}
    fraction : float
        Progress in [0, 1].
    message : str
        Last progress message, or the failure / cancellation reason.
    submitted, started, finished : float
        ``time.time()`` stamps (0 when not yet).
    queue_position : int
        Jobs ahead of it in the queue (0 when running or finished).
    owner : str
        Who submitted it (the app's session token).
    pid : int
        The worker's process id once started (0 before).
    key, reused_from : str
        The request key, and the job whose result was reused (see :meth:`JobManager.submit`).
    """

    id: str
    kind: str
    label: str
    state: str = "queued"
    fraction: float = 0.0
    message: str = "waiting for a free worker"
    submitted: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    queue_position: int = 0
    owner: str = ""
    pid: int = 0
    #: :func:`core.runs.reuse.request_key` of the request ("" when none was given).
    key: str = ""
    #: the id of the finished identical job whose result this one reuses ("" when it ran itself).
    reused_from: str = ""
    #: the fits of the job announced or seen so far (:class:`FitStatus`), in the order they were planned.
    fits: tuple = ()

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def remaining_fits(self) -> tuple:
        """The fits not done yet: the running ones (longest running first), then those not started (in order)."""
        running = sorted((f for f in self.fits if f.state == "running"), key=lambda f: -f.seconds)
        return tuple(running) + tuple(f for f in self.fits if f.state == "waiting")

    @property
    def slowest_fit(self) -> FitStatus | None:
        """The running fit that has taken longest so far (None when none is running)."""
        running = [f for f in self.remaining_fits if f.state == "running"]
        return running[0] if running else None

    def describe_fits(self) -> str:
        """The fits still to finish, in words ("" when the job has no fits, or none is left).

        Examples
        --------
        ``"3 of 8 fits done. Slowest remaining fit: random forest, 45 s (trees 60/100). Not started: GRU,
        LSTM, RNN, GRU-D."``
        """
        left = self.remaining_fits
        if not left or not self.active:
            return ""
        parts = [f"{len(self.fits) - len(left)} of {len(self.fits)} fits done."]
        slowest = self.slowest_fit
        if slowest is not None:
            detail = f" ({slowest.detail[:60]})" if slowest.detail else ""
            parts.append(f"Slowest remaining fit: {slowest.title}, {slowest.seconds:.0f} s{detail}.")
        others = [f"{f.title} ({f.seconds:.0f} s)" for f in left if f.state == "running" and f is not slowest]
        if others:
            parts.append(f"Also running: {_some(others)}.")
        waiting = [f.title for f in left if f.state == "waiting"]
        if waiting:
            parts.append(f"Not started: {_some(waiting)}.")
        return " ".join(parts)

    @property
    def seconds(self) -> float:
        """Running time so far (or in all, once finished)."""
        if not self.started:
            return 0.0
        return (self.finished or time.time()) - self.started


def _says_gone(check) -> bool:
    """What a job's ``cancel_if`` says; one that raises says "still wanted" (a bug of the caller, logged)."""
    try:
        return bool(check())
    except Exception:                # never cancel, never stop the scheduler, because of someone else's bug
        traceback.print_exc(file=sys.stderr)
        return False


def _some(names: list) -> str:
    """The first few ``names``, and how many more."""
    more = len(names) - _NAMED_FITS
    return ", ".join(names[:_NAMED_FITS]) + (f" and {more} more" if more > 0 else "")


@dataclass
class _Job:
    info: JobInfo
    request: object
    backend: object = None
    cohort: object = field(repr=False, default=None)
    process: object = None
    conn: object = None
    pid: int | None = None
    cancel_at: float | None = None
    result: object = None
    #: the ``cancel_if`` of every submitter that wants it (``None``: someone wants it whatever happens).
    wanted_by: list | None = None
    #: since when (monotonic) every ``cancel_if`` has said True.
    unwanted_since: float | None = None
    #: the message of a cancellation that did not come from :meth:`JobManager.cancel` ("" for that one).
    cancel_reason: str = ""
    #: when (monotonic) a finished job's worker, if it is still there, is killed.
    reap_at: float | None = None


class JobManager:
    """Runs jobs in worker processes, at most ``slots`` at a time, and keeps their state.

    Parameters
    ----------
    slots : int, optional
        Jobs that may run at once (default :func:`default_slots`).
    backend : core.training.engine.BackendConfig, optional
        Where the fits of every job run (default: the server's configuration,
        :func:`core.training.engine.configured_backend`, read by each worker).

    Examples
    --------
    >>> jobs = JobManager()                                              # doctest: +SKIP
    >>> from core.service import TrainRequest                           # doctest: +SKIP
    >>> jid = jobs.submit(TrainRequest(models=("lr",), out="runs/r1"), cohort, label="LR")  # doctest: +SKIP
    >>> jobs.get(jid).state, jobs.get(jid).fraction                      # doctest: +SKIP
    >>> jobs.cancel(jid)                                                 # doctest: +SKIP
    """

    #: seconds between two questions to the ``cancel_if`` of the running and queued jobs.
    cancel_check_s = 2.0
    #: seconds every ``cancel_if`` of a job must keep saying True before it is cancelled (a browser reconnects
    #: within a few seconds after a network blip).
    cancel_grace_s = 10.0

    def __init__(self, slots: int | None = None, backend=None) -> None:
        self.slots = int(slots or default_slots())
        self.backend = backend
        self._next_check = 0.0
        self._jobs: dict[str, _Job] = {}
        self._order: list[str] = []
        self._lock = threading.RLock()
        self._ctx = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
        if sys.platform.startswith("linux"):
            # imported once in the fork server, so a job starts in a fraction of a second
            self._ctx.set_forkserver_preload(["core.service.jobs", "core.training.experiment", "core.analysis.timeorder", "core.runs.store",
                                             "core.service"])
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chronoscope-jobs", daemon=True)
        self._thread.start()

    # -- public API --------------------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        """A fresh job id (callers that must record the id before submitting get one here)."""
        return uuid.uuid4().hex[:16]

    def submit(self, request, cohort, *, label: str = "", owner: str = "", job_id: str | None = None,
               backend=None, cancel_if=None) -> str:
        """Queue ``request`` (one of :mod:`core.service.requests`) on ``cohort`` and return the job's id at once
        (the scheduler thread starts it; nothing here blocks).

        Identical requests (:func:`core.service.runners.request_key`: same kind, settings, data, owner and
        code) are computed once: while one is queued or running, its id is returned instead (follow that one;
        nothing starts twice); once one has finished, a new job is recorded as done at once with the same
        result (``JobInfo.reused_from``). Trainings are reused from their saved run instead (the runner's
        :func:`core.service.runners.find_trained`), so a deleted run is never handed out again. ``backend``
        (a :class:`core.training.engine.BackendConfig`; default the manager's) is where the fits run; it does not change
        the result: the app never passes one (the operator's configuration decides), the tests and tools may.

        ``cancel_if`` (a callable without arguments, called from the manager's thread; it must be quick and
        thread-safe) binds the job to whoever submitted it: when it has returned True for ``cancel_grace_s``
        seconds the job is cancelled. A job that several submitters share (identical requests) runs until all
        their checks say True; one submitted without ``cancel_if`` is never cancelled that way. A check that
        raises counts as "still wanted" (and goes to the server log).
        """
        from core.service.runners import request_key
        kind = getattr(request, "kind", None)
        if kind not in JOB_KINDS:
            raise TypeError(f"A job runs a request of core.service.requests (kinds {', '.join(JOB_KINDS)}); got "
                            f"{type(request).__name__}.")
        key = request_key(request, cohort.fingerprint() if cohort is not None else "", scope=owner)
        trains = kind == "train" or getattr(request, "train", None) is not None
        jid = job_id or self.new_id()
        now = time.time()
        info = JobInfo(id=jid, kind=kind, label=label or kind, submitted=now, owner=owner, key=key)
        with self._lock:
            if jid in self._jobs:
                raise ValueError(f"Job id {jid!r} is already in use.")
            same = [self._jobs[j] for j in reversed(self._order) if self._jobs[j].info.key == key]
            running = next((j for j in same if j.info.active), None)
            if running is not None:
                if running.wanted_by is not None:          # one more submitter: it runs while anyone wants it
                    running.wanted_by = None if cancel_if is None else running.wanted_by + [cancel_if]
                return running.info.id
            done = next((j for j in same if j.info.state == "done" and j.result is not None and not trains), None)
            if done is not None:
                info = replace(info, state="done", fraction=1.0, started=now, finished=now,
                               reused_from=done.info.id,
                               message=f"reused the result of an identical earlier job ({done.info.label}, "
                                       f"{done.info.seconds:.0f} s): same data, settings, seed and code")
            job = _Job(info=info, request=request, backend=backend or self.backend,
                       cohort=None if done is not None else cohort, wanted_by=None if cancel_if is None else [cancel_if])
            if done is not None:
                job.result = done.result
            self._jobs[jid] = job
            self._order.append(jid)
        self._wake.set()
        return jid

    def get(self, job_id: str) -> JobInfo | None:
        """The job's current snapshot (``None`` for an unknown id)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.info.state == "queued":
                mine = job.info.kind if job.info.kind in LANES else None     # the jobs ahead in its own lane
                queued = [j for j in self._order if self._jobs[j].info.state == "queued"
                          and (self._jobs[j].info.kind if self._jobs[j].info.kind in LANES else None) == mine]
                return replace(job.info, queue_position=queued.index(job_id))
            return replace(job.info, pid=job.pid or 0)

    def request(self, job_id: str):
        """The request a job runs (``None`` for an unknown id)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return job.request if job is not None else None

    def result(self, job_id: str):
        """What a finished job returned (``None`` unless it is done and still kept)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return job.result if job is not None and job.info.state == "done" else None

    def list(self, ids=None, owner: str | None = None) -> list[JobInfo]:
        """Jobs (newest first), all or those in ``ids`` / of ``owner``."""
        with self._lock:
            keep = [j for j in reversed(self._order)
                    if (ids is None or j in ids) and (owner is None or self._jobs[j].info.owner == owner)]
        return [self.get(j) for j in keep]

    def cancel(self, job_id: str, reason: str = "") -> JobInfo | None:
        """Cancel a queued job at once, or a running one (SIGTERM to the worker now, SIGKILL to its group after
        KILL_AFTER_S); ``reason`` becomes its message (default "cancelled")."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.info.active:
                return self.get(job_id)
            job.cancel_reason = job.cancel_reason or reason
            if job.info.state == "queued":
                self._finish(job, "cancelled", reason or "cancelled before it started")
            elif job.cancel_at is None:
                job.cancel_at = time.monotonic() + KILL_AFTER_S
                job.info = replace(job.info, message="cancelling...")
                self._signal(job, signal.SIGTERM)
            return self.get(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> JobInfo:
        """Block until the job has finished (or ``timeout`` seconds passed); returns its snapshot."""
        t0 = time.monotonic()
        while True:
            info = self.get(job_id)
            if info is None or not info.active or (timeout is not None and time.monotonic() - t0 > timeout):
                return info
            time.sleep(_POLL_S)

    def shutdown(self) -> None:
        """Cancel every job and stop the scheduler (tests; the app keeps one manager for its lifetime)."""
        for info in self.list():
            if info.active:
                self.cancel(info.id)
        deadline = time.monotonic() + KILL_AFTER_S + 3
        while any(i.active for i in self.list()) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        self._stop.set()

    # -- internals ---------------------------------------------------------------------------
    def _signal(self, job: _Job, sig) -> None:
        """SIGTERM to the worker alone (it cancels its Ray tasks and shuts Ray down cleanly); SIGKILL to its
        whole process group (the worker and everything it started that is still in the group)."""
        pid = job.pid or (job.process.pid if job.process is not None else None)
        if pid is None:
            return
        if sig == signal.SIGKILL:
            try:
                os.killpg(pid, sig)        # the worker's own group (it called setsid)
                return
            except (ProcessLookupError, PermissionError, OSError):
                pass
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, OSError):
            pass

    def _finish(self, job: _Job, state: str, message: str, result=None) -> None:
        job.info = replace(job.info, state=state, message=message, finished=time.time(),
                           fraction=1.0 if state == "done" else job.info.fraction)
        job.result, job.cohort, job.wanted_by = result, None, None
        job.reap_at = time.monotonic() + KILL_AFTER_S   # a worker still there then (stuck in C) is killed
        if job.conn is not None:
            job.conn.close()
            job.conn = None
        root = _runs_root(job.request)
        if state != "done" and job.pid is not None and root:
            from core.runs.store import remove_partial_runs       # a killed save leaves only its staging folder
            remove_partial_runs(root, job.pid)
        done = [j for j in self._order if self._jobs[j].info.state == "done" and self._jobs[j].result is not None]
        for old in done[:-KEEP_FINISHED]:
            self._jobs[old].result = None

    def _pick(self) -> list[_Job]:
        """Queued jobs that may start now (marked running); called under the lock."""
        lane = {}                              # running jobs per lane: a kind of LANES, or None (the slots)
        for j in self._jobs.values():
            if j.info.state == "running":
                k = j.info.kind if j.info.kind in LANES else None
                lane[k] = lane.get(k, 0) + 1
        picked = []
        for jid in self._order:
            job = self._jobs[jid]
            k = job.info.kind if job.info.kind in LANES else None
            if job.info.state != "queued" or lane.get(k, 0) >= (LANES[k] if k else self.slots):
                continue
            job.info = replace(job.info, state="running", started=time.time(), message="starting a worker")
            picked.append(job)
            lane[k] = lane.get(k, 0) + 1
        return picked

    def _start(self, job: _Job) -> None:
        """Start the worker of ``job`` (scheduler thread, outside the lock: the first start takes seconds)."""
        recv, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_worker, args=(job.request, job.cohort, job.backend, send, os.getpid()),
                                 name=f"chronoscope-job-{job.info.id}", daemon=False)
        try:
            proc.start()
        except Exception as err:           # could not start a process (resources): fail this job clearly
            with self._lock:
                self._finish(job, "failed", f"could not start a worker process: {err}")
            return
        finally:
            send.close()
        with self._lock:
            job.process, job.conn, job.pid = proc, recv, proc.pid
            if job.cancel_at is not None:  # cancelled while it was starting
                self._signal(job, signal.SIGTERM)

    def _poll(self, job: _Job) -> None:
        try:
            while job.conn is not None and job.conn.poll():
                msg = job.conn.recv()
                if msg[0] == "started":
                    job.pid = int(msg[1])
                elif msg[0] == "progress":
                    if job.cancel_at is None:
                        job.info = replace(job.info, message=msg[1], fraction=msg[2], fits=msg[3])
                elif msg[0] == "done":
                    result = pickle.loads(msg[1])          # bytes from our own worker
                    if getattr(result, "reused", False):      # a training answered by its identical saved run
                        self._finish(job, "done", f"reused the identical saved run {result.folder.name} (same data, "
                                     "models, settings, seed and code)", result)
                        job.info = replace(job.info, reused_from=result.folder.name)
                    else:
                        self._finish(job, "done", "finished", result)
                elif msg[0] == "cancelled":
                    self._finish(job, "cancelled", job.cancel_reason or "cancelled")
                elif msg[0] == "failed":
                    self._finish(job, "failed", msg[1])
        except (EOFError, OSError, pickle.UnpicklingError) as err:
            if job.info.active and not isinstance(err, EOFError):
                self._finish(job, "failed", f"the result of the job could not be received ({err}); please report it.")
        if job.info.active and job.process is not None and not job.process.is_alive():
            job.process.join(0)
            if job.cancel_at is not None:
                self._finish(job, "cancelled", job.cancel_reason or "cancelled")
            else:
                self._finish(job, "failed", f"the worker process stopped unexpectedly (exit code "
                                            f"{job.process.exitcode}); the machine may be out of memory.")
        if job.info.active and job.cancel_at is not None and time.monotonic() > job.cancel_at:
            self._signal(job, signal.SIGKILL)
        self._reap(job)

    def _reap(self, job: _Job) -> None:
        """A finished job's worker: joined once it has exited, killed (its group) if it is still there at
        ``reap_at`` (e.g. a thread stuck joining a cluster keeps it from exiting); forgotten after that."""
        if job.info.active or job.process is None:
            return
        job.process.join(0)
        if job.process.is_alive() and job.reap_at is not None and time.monotonic() > job.reap_at:
            self._signal(job, signal.SIGKILL)
            job.reap_at = None
        elif not job.process.is_alive():
            job.process = None

    def _unwanted(self) -> None:
        """Cancel the jobs whose every ``cancel_if`` has said True for ``cancel_grace_s`` (called every
        ``cancel_check_s``; the checks run outside the lock, they may take a moment)."""
        with self._lock:
            bound = [(j, list(j.wanted_by)) for j in self._jobs.values() if j.info.active and j.wanted_by]
        now = time.monotonic()
        for job, checks in bound:
            if not all(_says_gone(check) for check in checks):
                job.unwanted_since = None
                continue
            if job.unwanted_since is None:
                job.unwanted_since = now
            if now - job.unwanted_since >= self.cancel_grace_s:
                self.cancel(job.info.id, reason="cancelled: nobody follows it any more (the browser session that "
                                                "started it has closed)")

    def _loop(self) -> None:
        if sys.platform.startswith("linux"):
            try:                           # start the fork server now, so the first job does not wait for it
                from multiprocessing import forkserver
                forkserver.ensure_running()
            except Exception:              # it is started again on the first job if this failed
                pass
        while not self._stop.is_set():
            if time.monotonic() >= self._next_check:
                self._next_check = time.monotonic() + self.cancel_check_s
                self._unwanted()
            with self._lock:
                for job in list(self._jobs.values()):
                    if job.info.state == "running" and job.process is not None:
                        self._poll(job)
                    else:
                        self._reap(job)
                picked = self._pick()
            for job in picked:
                self._start(job)
            self._wake.wait(_POLL_S)
            self._wake.clear()
