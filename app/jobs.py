"""Long work as background jobs on every page: submit, follow live, cancel, pick up the result.

A page submits its work with :func:`submit` (it runs in a worker process of the server's one
:class:`core.service.jobs.JobManager`, see ``app/resources.job_manager``), then calls :func:`follow` on every
run. While the job is queued or running, :func:`follow` draws a live ``st.status`` with a
progress bar, the fits still to finish (the slowest running one named, with its seconds and last
message: :meth:`core.service.jobs.JobInfo.describe_fits`) and a **Cancel** button (a fragment that polls every
second); when it has finished it
returns the result once, so the page can keep it in its session state. The job's id is kept in
the session (page changes) and in the URL (``?job=``: a browser reload picks it up again).

Where a job's fits run is the server's configuration (:func:`core.training.engine.configured_backend`), never a
session's: nothing here passes a backend. Work nobody should finish for a closed tab (validating an upload)
is submitted with ``follow_session=True``: the manager cancels it once this browser session has gone
(:func:`app.state.session_gone`).
"""
from __future__ import annotations

import time
import uuid

import streamlit as st

from app import auth, state, workspace
from app.resources import job_manager
from app.components import gui_text, gui_words, plain
from core.service.jobs import JobInfo

__all__ = ["submit", "training_request", "follow", "session_jobs", "cancel", "describe_state",
           "draw_progress", "measured_duration", "latest_result", "request_of"]

_STATES = {"queued": "waiting", "running": "running", "done": "finished", "failed": "failed",
           "cancelled": "cancelled"}


def _remember(job_id: str) -> None:
    ids = st.session_state.setdefault(state.JOBS, [])
    if job_id not in ids:
        ids.append(job_id)


def submit(page: str, request, cohort, label: str = "", follow_session: bool = False) -> str:
    """Queue ``request`` (a :mod:`core.service.requests` object) on ``cohort`` as ``page``'s current job; returns
    the job id. An identical request already queued or running is followed instead (core.service.jobs decides).

    ``follow_session``: cancel the job when this browser session has gone (:func:`app.state.session_gone`), for work
    whose only use is to be shown in this session (a validation); a training keeps running for its saved run.
    """
    manager = job_manager()
    jid = manager.new_id()
    _remember(jid)                 # recorded first: a page change during this run must not lose the job
    st.session_state[f"{page}.job"] = jid
    got = manager.submit(request, cohort, label=label or request.describe(cohort.n_patients), owner=auth.owner(),
                         job_id=jid, cancel_if=state.session_gone() if follow_session else None)
    if got != jid:                 # the same request is already running: follow that one
        _remember(got)
        st.session_state[f"{page}.job"] = jid = got
    st.query_params["job"] = jid
    return jid


def _data_name() -> str:
    """A short file-name-safe name of the current data: ``demo`` or the first uploaded file's stem."""
    import re
    source = state.get_source()
    if source.kind == "demo" or not source.events:
        return "demo"
    stem = source.events[0][0].split("/")[-1].split(".")[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:40] or "upload"


def training_request(names, preset: str, seed: int, refit: bool = False, max_hours: float = 336.0,
                     save: bool = False):
    """The :class:`core.service.TrainRequest` of a page's training: a new run with a unique name that says what it
    was trained on (date, data, preset, models), saved under the user's runs when ``save``, else in this server's
    temporary folder (the Compare page can save it later); an identical earlier run of this user, saved or not, is
    reused. ``state.TRAIN_OVERRIDE`` (tests) replaces fields."""
    from dataclasses import replace

    from core.service import TrainRequest
    name = (f"{time.strftime('%Y%m%d-%H%M%S')}-{_data_name()}-{preset}-{'-'.join(names)}"[:110]
            + f"-{uuid.uuid4().hex[:6]}")
    request = TrainRequest(models=tuple(names), preset=preset, seed=int(seed), refit=bool(refit),
                           max_hours=float(max_hours), out=workspace.new_run_folder(name, save),
                           reuse_dirs=(str(workspace.runs_dir()), str(workspace.scratch_dir())))
    override = st.session_state.get(state.TRAIN_OVERRIDE)
    return replace(request, **override) if override else request


def request_of(job_id: str):
    """The request a job of this server runs (``None`` for an unknown id)."""
    return job_manager().request(job_id)


def latest_result(kind: str, match) -> tuple[object, object]:
    """The request and result of this user's newest finished job of ``kind`` whose request satisfies
    ``match(request)`` (``(None, None)`` when there is none): results survive page changes and reloads while the
    server keeps them."""
    manager = job_manager()
    for info in manager.list(owner=auth.owner()):
        if info.kind == kind and info.state == "done":
            request = manager.request(info.id)
            result = manager.result(info.id)
            if request is not None and result is not None and match(request):
                return request, result
    return None, None


def cancel(job_id: str) -> None:
    job_manager().cancel(job_id)


def session_jobs() -> list[JobInfo]:
    """This session's jobs, newest first (only the current user's, whatever the session holds)."""
    ids = st.session_state.get(state.JOBS, [])
    return job_manager().list(ids=set(ids), owner=auth.owner()) if ids else []


def describe_state(info: JobInfo, markdown: bool = True) -> str:
    """One line for a person: what the job is doing now (escaped for a Markdown element unless ``markdown``
    is False, for a table)."""
    text = gui_text if markdown else gui_words
    if info.state == "queued":
        return f"waiting for a free worker: {info.queue_position} job(s) ahead of it" if info.queue_position \
            else "waiting for a free worker: next in line"
    if info.state == "running":
        return f"running for {info.seconds:.0f} s: {text(info.message)}"
    if info.state == "done":
        return f"finished in {info.seconds:.0f} s"
    word = _STATES[info.state]
    message = text(info.message)
    return message if message.startswith(word) else f"{word}: {message}"


def _page_job(page: str, kinds: tuple) -> str | None:
    key = f"{page}.job"
    jid = st.session_state.get(key)
    if jid is None:                              # after a browser reload: the id in the URL
        q = st.query_params.get("job")
        info = job_manager().get(q) if q else None
        if info is not None and info.kind in kinds and info.owner == auth.owner():   # never another user's
            st.session_state[key] = jid = q
            _remember(q)
    return jid


def draw_progress(info: JobInfo):
    """A running job's ``st.status``: the overall bar with what it does now, then the fits still to finish
    (the slowest running one first). Returns the status container (for the Cancel button)."""
    # not a with-block: leaving one would mark the status complete while the job still runs
    box = st.status(plain(info.label), state="running", expanded=True)
    box.progress(info.fraction, text=describe_state(info)[:120])
    fits = info.describe_fits()
    if fits:
        box.caption(gui_text(fits))
    return box


@st.fragment(run_every=1.0)
def _live(job_id: str) -> None:
    info = job_manager().get(job_id)
    if info is None or not info.active:
        st.rerun()                               # the whole page, which now shows the result
        return
    box = draw_progress(info)
    c = box.columns([1, 4])
    if c[0].button("Cancel", key=f"jobs.cancel.{job_id}", help="Stop this job within a few seconds; a "
                   "cancelled training saves nothing"):
        job_manager().cancel(job_id)
        st.rerun()
    c[1].caption("You can open other pages meanwhile; the job keeps running and this page picks it up again.")


def follow(page: str, kinds: tuple) -> tuple[JobInfo | None, object]:
    """Draw ``page``'s current job; returns ``(info, result)``, the result only once, right after it finished.

    While the job runs this draws the live status (and the page may ``st.stop()`` if it has nothing
    else to show); a failure is shown open, the reason first; a cancellation says nothing was saved.
    """
    jid = _page_job(page, kinds)
    if jid is None:
        return None, None
    manager = job_manager()
    info = manager.get(jid)
    if info is not None and info.owner != auth.owner():
        info = None
    if info is None:
        st.session_state.pop(f"{page}.job", None)
        st.warning("The last job of this page is no longer known to the server (it was restarted). Start it again.")
        return None, None
    st.query_params["job"] = jid
    if info.active:
        _live(jid)
        return info, None
    if info.state == "failed":
        st.error(f"{gui_text(info.message)}\n\n({plain(info.label)}: failed after {info.seconds:.0f} s.)")
        return info, None
    if info.state == "cancelled":
        st.info(f"{plain(info.label)}: cancelled after {info.seconds:.0f} s. Nothing was saved.")
        return info, None
    consumed = f"{page}.job_consumed"
    if st.session_state.get(consumed) == jid:
        return info, None
    st.session_state[consumed] = jid
    if info.reused_from:
        st.info(f"Nothing was recomputed: {gui_text(info.message)}.")
    return info, manager.result(jid)


def measured_duration(kind: str) -> str:
    """How long the last finished job of ``kind`` took on this server, in words ("" when none has run yet):
    time estimates on pages are measurements of this machine, never guesses."""
    done = [i for i in job_manager().list(owner=auth.owner())
            if i.kind == kind and i.state == "done" and not i.reused_from]
    if not done:
        return ""
    last = done[0]                      # newest first
    return f"The last one on this server ({last.label}) took {last.seconds:.0f} s."
