"""The session's current data and current run, shown in the sidebar on every page.

The current run is the one a training of this session made or the user opened; changing the data clears it
(``state.set_source``), and then the newest of the user's runs trained on the new data becomes current, if
any. Every page that shows results shows those of the current data and the current run only.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import cache, state, workspace
from app.components import plain

__all__ = ["current_run", "set_current_run", "sidebar", "run_on_data", "show_note"]


def set_current_run(path: str | Path | None, note: str = "") -> None:
    """Make the run in ``path`` the current run (``None``: none). When that changes the current run, the script
    runs again at once, so the sidebar (drawn before the page) names the new run; ``note`` (Markdown, already
    escaped) is shown once on the page after that rerun (:func:`show_note`)."""
    new = None if path is None else str(workspace.check_owned(path))
    old = st.session_state.get(state.CURRENT_RUN)
    if new is None:
        st.session_state.pop(state.CURRENT_RUN, None)
    else:
        st.session_state[state.CURRENT_RUN] = new
    if note:
        st.session_state[_NOTE] = note
    if new != old:
        st.rerun()


_NOTE = "context.note"


def show_note() -> None:
    """The note of the last :func:`set_current_run` (once)."""
    note = st.session_state.pop(_NOTE, None)
    if note:
        st.success(note)


def current_run(cohort=None) -> dict | None:
    """The current run's listing entry (path, name, models, fingerprint, saved...), or ``None``.

    With none chosen (a new session, or the data changed), the newest of the user's runs trained on
    ``cohort`` becomes current."""
    path = st.session_state.get(state.CURRENT_RUN)
    if path:
        info = workspace.run_info(path)
        if info is not None:
            return info
        st.session_state.pop(state.CURRENT_RUN, None)          # deleted meanwhile
    if cohort is None:
        return None
    runs = workspace.runs_on_data(cohort.fingerprint())
    if not runs:
        return None
    st.session_state[state.CURRENT_RUN] = runs[0]["path"]
    return runs[0]


def run_on_data(cohort) -> dict | None:
    """The current run if it was trained on ``cohort`` (same data fingerprint), else ``None``."""
    run = current_run(cohort)
    return run if run is not None and cohort is not None and run.get("fingerprint") == cohort.fingerprint() else None


def sidebar() -> None:
    """Current data and current run, in the sidebar of every page (cheap: nothing is loaded here that the
    page would not load anyway)."""
    source = state.get_source()
    loaded = cache.load_estimate(source) is None or st.session_state.get(state.LOADED_SOURCE) == source.digests
    cohort = cache.load_source(source)[0] if loaded else None
    box = st.sidebar.container(border=True)
    box.markdown(f"**Data:** {plain(source.label)}"
                 + (f" ({cohort.n_patients:,} patients)" if cohort is not None else ""))
    run = current_run(cohort)
    if run is None:
        box.caption("No run on this data yet: train one on *Compare models*.")
        return
    here = cohort is not None and run.get("fingerprint") == cohort.fingerprint()
    box.markdown(f"**Run:** {plain(run['name'])}")
    box.caption(("trained on this data" if here else "trained on OTHER data")
                + ("" if run.get("saved") else "; not saved"))
