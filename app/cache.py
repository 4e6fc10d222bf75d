"""The ONLY place with ``st.cache_data`` / ``st.cache_resource``: thin wrappers around core.

The cohort is cached with ``st.cache_resource`` (one shared, read-only object) because copying a
1.7 M-row frame on every rerun would make the timeline sluggish; pages never mutate it.
"""
from __future__ import annotations


import pandas as pd
import streamlit as st

from app import auth
from app.state import DataSource, get_source
from core import explore
from core.cohort import Cohort
from core.duck import EngineConfig, estimate_seconds
from core.demo import DEMO_TARGET, demo_paths
from core.ingest import inspect_columns, validate_data
from core.exceptions import CoreError
from core.validation import ValidationReport

__all__ = ["load_source", "load_estimate", "load_current_cohort", "events_arg", "inspect_upload", "missingness", "coverage", "sampling",
           "lengths",
           "patient_values", "runs_dir", "run_match", "job_manager", "list_saved_runs", "open_run", "patient_risk",
           "load_run_recurrent", "EXPLAIN_QUICK_MODELS", "EXPLAIN_QUICK_PRESET", "explain_runs", "load_explain_run",
           "explain_patient", "decision_curves", "run_report"]


def _source_key(source: DataSource) -> tuple:
    """Content *and* owner: one user's cached data is never handed to another (app/auth.py)."""
    names = tuple(name for name, _ in source.events) + ((source.labels[0],) if source.labels is not None else ())
    return (auth.owner(), source.kind, names, source.digests, repr(source.config))


def events_arg(source: DataSource):
    if len(source.events) == 1:
        name, content = source.events[0]
        if len(content) >= EngineConfig.from_env().min_mb * 2**20:
            return name, _on_disk(name, content, source.digests[0])
        return source.events[0]
    # Several uploaded files: the PhysioNet per-patient layout, packed as one zip in memory.
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in source.events:
            zf.writestr(name, content)
    return ("uploaded files.zip", buf.getvalue())


def _on_disk(name: str, content: bytes, digest: str):
    """A large upload written once to the user's scratch folder (0600, removed when the server stops), so
    DuckDB reads it with bounded memory instead of pandas parsing it in memory. The upload is not changed."""
    import os
    folder = scratch_dir() / "uploads" / digest
    path = folder / "upload.bin"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = folder / "upload.part"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            fh.write(content)
        tmp.replace(path)
    return path


def load_estimate(source: DataSource) -> str | None:
    """What loading ``source`` will do and about how long it takes, for a large upload (``None``: quick)."""
    if source.kind != "upload":
        return None
    size = source.size_bytes
    engine = EngineConfig.from_env()
    if size < engine.min_mb * 2**20:
        return None
    head = source.events[0][1][:4]
    seconds = estimate_seconds(size, gzip=head[:2] == b"\x1f\x8b", parquet=head == b"PAR1")
    return (f"Reading {size / 2**20:,.0f} MB with DuckDB (memory limit {engine.limit_mb:,.0f} MB), then checking every "
            f"row: about {seconds:,.0f} s on this machine.")


@st.cache_resource(show_spinner=False, hash_funcs={DataSource: _source_key}, max_entries=4)
def load_source(source: DataSource) -> tuple[Cohort | None, ValidationReport]:
    """Validate a data source; returns (cohort or None, report). Shared and read-only."""
    if source.kind == "demo":
        events, labels = demo_paths()
        return validate_data(events, labels, config=source.config)
    return validate_data(events_arg(source), source.labels, config=source.config)


def load_current_cohort() -> Cohort | None:
    """The cohort of the current data source (``None`` if it could not be built)."""
    cohort, _ = load_source(get_source())
    return cohort


def demo_source() -> DataSource:
    from core.config import DataConfig
    return DataSource(kind="demo", config=DataConfig(target=DEMO_TARGET))


@st.cache_data(show_spinner="Reading the columns...", max_entries=8)
def _inspect_upload(owner: str, events: tuple[str, bytes], labels: tuple[str, bytes] | None) -> dict:
    return inspect_columns(events, labels)


def inspect_upload(events: tuple[str, bytes], labels: tuple[str, bytes] | None) -> dict:
    """The upload's columns and what auto-detection picks (cached per content and owner)."""
    return _inspect_upload(auth.owner(), events, labels)


def _cohort_key(cohort: Cohort) -> str:
    """Content (the data fingerprint) and owner: cached results are never shared between users."""
    return f"{auth.owner()}/{cohort.fingerprint() if cohort is not None else ''}"


@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=4)
def missingness(cohort: Cohort, max_hours: float) -> pd.DataFrame:
    return explore.missingness_by_hour(cohort, max_hours=max_hours)


@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=4)
def coverage(cohort: Cohort) -> pd.DataFrame:
    return explore.coverage_by_variable(cohort)


@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=4)
def sampling(cohort: Cohort) -> pd.DataFrame:
    return explore.sampling_intervals(cohort)


@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=4)
def lengths(cohort: Cohort) -> pd.DataFrame:
    return explore.sequence_lengths(cohort)


@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=32)
def patient_values(cohort: Cohort, variable: str, stat: str) -> pd.DataFrame:
    return explore.per_patient_summary(cohort, variable, stat)


# -- Compare page: training is never cached (it is an action); reopened runs are ----------------
def runs_dir():
    """The current user's saved runs: $CHRONOSCOPE_RUNS_DIR (default ``runs/``), and with login on its
    ``users/<owner>/`` sub-folder."""
    import os
    from pathlib import Path
    root = Path(os.environ.get("CHRONOSCOPE_RUNS_DIR", "runs"))
    who = auth.owner()
    return root / "users" / who if who else root


@st.cache_resource(show_spinner=False)
def _scratch_root(base_dir: str):
    """This server's temporary folder (unsaved runs), owner-only, removed when the server stops.

    ``$CHRONOSCOPE_TMP_DIR`` (default: the system temp folder) / ``chronoscope-server-<pid>``. Folders of
    servers that are no longer running are removed when a server starts.
    """
    import atexit
    import os
    import shutil
    from pathlib import Path
    base = Path(base_dir)
    base.mkdir(parents=True, exist_ok=True)
    for old in base.glob("chronoscope-server-*"):
        try:
            pid = int(old.name.rsplit("-", 1)[1])
            os.kill(pid, 0)                        # still running: leave it
        except (ValueError, ProcessLookupError):
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:
            pass
    root = base / f"chronoscope-server-{os.getpid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    atexit.register(shutil.rmtree, root, True)
    return root


def scratch_dir():
    """Where the current user's unsaved runs live until they save them or the server stops."""
    import os
    import tempfile
    return _scratch_root(os.environ.get("CHRONOSCOPE_TMP_DIR") or tempfile.gettempdir()) / (auth.owner() or "local")


def check_owned(path: str) -> str:
    """``path`` when it is a run of the current user (saved or not); CoreError otherwise."""
    from pathlib import Path
    p = Path(path).resolve()
    for root in (runs_dir(), scratch_dir()):
        if p.parent == Path(root).resolve():
            return path
    raise CoreError("This run was not found among your runs. Pick one of the runs listed on the Compare page.")


@st.cache_resource(show_spinner=False)
def login_throttle():
    """One :class:`core.users.LoginThrottle` for the whole server: repeated failures slow down every session
    trying that name."""
    from core.users import LoginThrottle
    return LoginThrottle()


@st.cache_resource(show_spinner=False)
def job_manager():
    """The one :class:`core.jobs.JobManager` of this server (shared by every session; see app/jobs.py)."""
    from core.jobs import JobManager
    return JobManager()


def list_saved_runs() -> list[dict]:
    """The current user's runs, newest first: saved ones (``"saved": True``) and this server's unsaved ones."""
    from core.runs import list_runs
    runs = [{**r, "saved": True} for r in list_runs(runs_dir())]
    runs += [{**r, "saved": False} for r in list_runs(scratch_dir())]
    return sorted(runs, key=lambda r: r["created"], reverse=True)


@st.cache_resource(max_entries=4, show_spinner="Reopening the run...")
def _open_run(path: str):
    """A saved run's ``RunSummary`` (shared, read-only)."""
    from core.runs import RunSummary, load_run
    return RunSummary.from_run(load_run(path))


@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=32, show_spinner=False)
def _run_match(path: str, cohort: Cohort):
    """How the current data compare with a saved run's training data (``core.runs.DataMatch``)."""
    from core.runs import match_run_folder
    return match_run_folder(path, cohort)


@st.cache_data(max_entries=64, show_spinner="Scoring the patient hour by hour...",
               hash_funcs={Cohort: _cohort_key})
def _patient_risk(path: str, cohort: Cohort, patient_id: str) -> pd.DataFrame:
    """A run's risk per hour for one patient: every hour of an online run, the risk trajectory of a stay
    run (``core.runs.Run.risk_table``)."""
    return _load_explain_run(path).risk_table(cohort, patient_id)




# -- Models page: a saved run's recurrent models to look inside -----------------------------------
@st.cache_resource(max_entries=2, show_spinner="Loading the run's recurrent models...")
def _load_run_recurrent(path: str, names: tuple):
    """A saved run with only its recurrent models loaded (a ``core.runs.Run``; shared, read-only)."""
    from core.runs import load_run
    return load_run(path, models=list(names))




# -- Explain page: explanations are cached per (run folder, cohort, models, patients) -------------
EXPLAIN_QUICK_MODELS = ("lr", "rf", "gbm", "gru")
#: preset of the one-click training on the Explain page (tests use "test").
EXPLAIN_QUICK_PRESET = "quick"


def explain_runs(cohort: Cohort) -> list[dict]:
    """Saved runs trained on this cohort (same data fingerprint), newest first."""
    import json
    from pathlib import Path
    fp = _cohort_key(cohort)
    out = []
    for r in list_saved_runs():
        try:
            if json.loads((Path(r["path"]) / "config.json").read_text()).get("fingerprint") == fp:
                out.append(r)
        except (OSError, ValueError):
            continue
    return out


@st.cache_resource(max_entries=2, show_spinner="Loading the run's models...")
def _load_explain_run(path: str):
    """A saved run with all its models (a ``core.runs.Run``; shared, read-only)."""
    from core.runs import load_run
    return load_run(path)


@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=32, show_spinner="Explaining this patient...")
def _explain_patient(path: str, cohort: Cohort, names: tuple, patient_id: str, hour: float | None = None) -> tuple:
    """(``Run.risk_table`` of the chosen models, list of ``ExplanationResult`` for one patient; online: at ``hour``)."""
    from core.explain import explain_models
    run = _load_explain_run(path)
    table = run.risk_table(cohort, patient_id)
    risk = table[["time_hours", *[n for n in names if n in table.columns]]]
    return risk, explain_models(run, list(names), cohort, [patient_id], hour=hour)




# -- the public, owner-checked entry points of the run caches above -------------------------------
# (cached by path, and a path is inside one user's folders; the check refuses any other path)
def open_run(path: str):
    """A run of the current user as a ``RunSummary`` (shared, read-only)."""
    return _open_run(check_owned(path))


def run_match(path: str, cohort: Cohort):
    """How the current data compare with one of the current user's runs (``core.runs.DataMatch``)."""
    return _run_match(check_owned(path), cohort)


def patient_risk(path: str, cohort: Cohort, patient_id: str) -> pd.DataFrame:
    """One patient's risk per hour under a run of the current user (``core.runs.Run.risk_table``)."""
    return _patient_risk(check_owned(path), cohort, patient_id)


def load_run_recurrent(path: str, names: tuple):
    """A run of the current user with only its recurrent models loaded."""
    return _load_run_recurrent(check_owned(path), names)


def load_explain_run(path: str):
    """A run of the current user with all its models (a ``core.runs.Run``)."""
    return _load_explain_run(check_owned(path))


def explain_patient(path: str, cohort: Cohort, names: tuple, patient_id: str, hour: float | None = None) -> tuple:
    """(risk after every hour per model, explanations) of one patient under a run of the current user."""
    return _explain_patient(check_owned(path), cohort, names, patient_id, hour)


def save_user_run(path: str):
    """Save one of the current user's unsaved runs (moved into their runs folder); returns its RunSummary."""
    import shutil
    from pathlib import Path

    from core.runs import copy_run
    src = Path(check_owned(path))
    dst = runs_dir() / src.name
    copy_run(src, dst)
    shutil.rmtree(src, ignore_errors=True)
    return open_run(str(dst))


def delete_user_run(path: str) -> None:
    """Delete one of the current user's runs (saved or not) with all its files; cached copies are dropped."""
    from pathlib import Path

    from core.runs import delete_run
    p = Path(check_owned(path))
    delete_run(p, p.parent)
    for fn in (_open_run, _load_explain_run, _load_run_recurrent, _patient_risk, _run_match, _explain_patient):
        fn.clear()


# -- Compare page: decision curves and the HTML report of the open run ----------------------------
def _summary_key(summary) -> str:
    """Owner, run folder and a digest of the test risks (a folder trained again, or a run without a folder,
    never gets another run's curves)."""
    import hashlib

    import numpy as np
    h = hashlib.sha256()
    for name, ev in summary.results.items():
        h.update(str(name).encode())
        h.update(np.ascontiguousarray(ev.y_proba, dtype=np.float64).tobytes())
    return f"{auth.owner()}/{summary.folder}/{h.hexdigest()}"


@st.cache_data(hash_funcs={"core.runs.RunSummary": _summary_key}, max_entries=8, show_spinner=False)
def decision_curves(summary):
    """Decision curves of a run's test predictions (``core.decision.curves_from_results``; band: 200 resamples
    of patients)."""
    from core.decision import curves_from_results
    return curves_from_results(summary.results)


def run_report(path: str):
    """A function building the self-contained HTML report of one of the current user's runs, for a deferred
    download button (built only when clicked: the file holds plotly.js, about 5 MB). The owner is checked now."""
    # imported here, in the page's run: the function runs later on a thread of the server
    from core.report import build_report
    from core.runs import load_run
    checked = check_owned(path)

    def build() -> str:
        return build_report(load_run(checked))
    return build


# -- Patient timeline: temporal what-if (core.whatif) ----------------------------------------------
@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=64, show_spinner="Scoring the what-if...")
def _patient_whatif(path: str, cohort: Cohort, patient_id: str, edits: tuple):
    """One patient's risks before and after ``edits`` (tuples ``(kind, variable, hour, value)``) under a run
    (``core.whatif.whatif``)."""
    from core.whatif import Edit, whatif
    return whatif(_load_explain_run(path), cohort, patient_id, [Edit(*e) for e in edits])


def patient_whatif(path: str, cohort: Cohort, patient_id: str, edits):
    """A ``core.whatif.WhatIfResult`` for one patient under a run of the current user (cached per run,
    data, patient and the list of edits)."""
    key = tuple((e.kind, e.variable, e.hour, e.value) for e in edits)
    return _patient_whatif(check_owned(path), cohort, str(patient_id), key)


# -- Predict page -------------------------------------------------------------------------------
def prediction_runs() -> list[dict]:
    """The runs the current user can score new patients with, newest first: the saved ones, this server's
    unsaved ones, and the run open on the Compare page; each with a ``label`` for a picker."""
    from app import state
    runs = list_saved_runs()
    summary = st.session_state.get(state.COMPARE_SUMMARY)
    if summary is not None and summary.folder is not None and str(summary.folder) not in [r["path"] for r in runs]:
        runs.insert(0, {"path": str(summary.folder), "name": summary.folder.name, "models": list(summary.results),
                        "saved": False})
    for r in runs:
        r["label"] = f"{r['name']} ({len(r['models'])} models{'' if r.get('saved') else ', not saved'})"
    return runs
