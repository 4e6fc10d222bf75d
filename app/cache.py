"""Data and run caches (``st.cache_data`` / ``st.cache_resource``): thin wrappers around core.

Process-wide singletons are in :mod:`app.resources`; the user's runs (folders, ownership) in
:mod:`app.workspace`, whose owner-checked functions are the pages' way to the run caches below (keyed by the
run folder and the time its manifest last changed).

The cohort is cached with ``st.cache_resource`` (one shared, read-only object) because copying a
1.7 M-row frame on every rerun would make the timeline sluggish; pages never mutate it.
"""
from __future__ import annotations


import pandas as pd
import streamlit as st

from app import auth
from app.resources import scratch_root
from app.state import DataSource, get_source, session_gone
from core.data import explore
from core.data.cohort import Cohort
from core.data.duck import EngineConfig, estimate_seconds
from core.data.demo import DEMO_TARGET, demo_paths
from core.data.ingest import inspect_columns, validate_data
from core.data.validation import ValidationReport

__all__ = ["load_source", "validation_request", "load_estimate", "load_current_cohort", "events_arg", "inspect_upload", "missingness",
           "coverage", "sampling", "lengths", "patient_values", "open_run", "load_run", "load_run_recurrent", "run_match",
           "patient_risk", "explain_patient", "patient_whatif", "decision_curves", "load_timeorder",
           "saved_explanations", "load_explanation", "clear_runs"]


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
    import tempfile

    from core.settings import read_settings
    folder = scratch_root(read_settings().tmp_dir or tempfile.gettempdir()) / (auth.owner() or "local") \
        / "uploads" / digest
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


def validation_request(source: DataSource):
    """The :class:`core.service.ValidateRequest` of an uploaded source (a large upload kept on disk), with this
    server's reading limits (the job's worker reads as the server would)."""
    from core.data.ingest import reading_settings
    from core.service import ValidateRequest
    return ValidateRequest(events=events_arg(source), labels=source.labels, config=source.config, name=source.label,
                           digests=source.digests, settings=tuple(reading_settings().items()))


class _NotValidated(Exception):
    """The validation job of a source did not finish (cancelled, failed): nothing is cached."""


@st.cache_resource(show_spinner="Reading and checking the data...", hash_funcs={DataSource: _source_key},
                   max_entries=4)
def _validated(source: DataSource) -> tuple[Cohort | None, ValidationReport]:
    if source.kind == "demo":      # the bundled demo: known, small, read in the server
        events, labels = demo_paths()
        return validate_data(events, labels, config=source.config)
    # An upload is validated as a job: in a worker process (its memory is not the server's), cancellable, and
    # cancelled when this browser session has gone. An identical job already running (the Data page's) is
    # joined; one that has finished is reused at once.
    from app.resources import job_manager
    manager, request = job_manager(), validation_request(source)
    jid = manager.submit(request, None, label=request.describe(), owner=auth.owner(), cancel_if=session_gone())
    info = manager.wait(jid)
    if info is None or info.state != "done":
        raise _NotValidated(info.message if info is not None else "the server forgot the job")
    return manager.result(jid)


def load_source(source: DataSource) -> tuple[Cohort | None, ValidationReport]:
    """Validate a data source; returns (cohort or None, report). Shared and read-only (cached per content, config
    and owner). An upload is validated by a job (see :func:`validation_request`); when that job was cancelled
    or failed, the report says so and nothing is kept."""
    try:
        return _validated(source)
    except _NotValidated as err:
        report = ValidationReport()
        report.error("not_validated", f"The check of {source.label} did not finish ({err}).",
                     fix="Open the Data page and press 'Validate again'.")
        return None, report


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


# -- runs: cached by folder and manifest time (callers pass through app.workspace, which checks the owner) ----
@st.cache_resource(max_entries=4, show_spinner="Reopening the run...")
def open_run(path: str, stamp: float):
    """A saved run's ``RunSummary`` (shared, read-only)."""
    from core.runs.store import RunSummary, load_run as load
    return RunSummary.from_run(load(path))


@st.cache_resource(max_entries=2, show_spinner="Loading the run's models...")
def load_run(path: str, stamp: float):
    """A saved run with all its models (a ``core.runs.store.Run``; shared, read-only)."""
    from core.runs.store import load_run as load
    return load(path)


@st.cache_resource(max_entries=2, show_spinner="Loading the run's recurrent models...")
def load_run_recurrent(path: str, names: tuple, stamp: float):
    """A saved run with only its recurrent models loaded (a ``core.runs.store.Run``; shared, read-only)."""
    from core.runs.store import load_run as load
    return load(path, models=list(names))


@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=32, show_spinner=False)
def run_match(path: str, cohort: Cohort, stamp: float):
    """How the current data compare with a saved run's training data (``core.runs.store.DataMatch``)."""
    from core.runs.store import match_run_folder
    return match_run_folder(path, cohort)


@st.cache_data(max_entries=64, show_spinner="Scoring the patient hour by hour...", hash_funcs={Cohort: _cohort_key})
def patient_risk(path: str, cohort: Cohort, patient_id: str, stamp: float) -> pd.DataFrame:
    """A run's risk per hour for one patient (``core.runs.store.Run.risk_table``, the one risk-over-time function)."""
    return load_run(path, stamp).risk_table(cohort, patient_id)


@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=32, show_spinner="Explaining this patient...")
def explain_patient(path: str, cohort: Cohort, names: tuple, patient_id: str, hour: float | None, stamp: float) -> tuple:
    """(risk per hour of the chosen models, list of ``ExplanationResult`` for one patient; online: at ``hour``)."""
    from core.analysis.explain import explain_models
    run = load_run(path, stamp)
    risk = run.risk_table(cohort, patient_id)
    risk = risk[["time_hours", *[n for n in names if n in risk.columns]]]
    return risk, explain_models(run, list(names), cohort, [patient_id], hour=hour)


@st.cache_data(hash_funcs={Cohort: _cohort_key}, max_entries=64, show_spinner="Scoring the what-if...")
def patient_whatif(path: str, cohort: Cohort, patient_id: str, edits: tuple, stamp: float):
    """One patient's risks before and after ``edits`` (tuples ``(kind, variable, hour, value)``) under a run
    (``core.analysis.whatif.whatif``)."""
    from core.analysis.whatif import Edit, whatif
    return whatif(load_run(path, stamp), cohort, patient_id, [Edit(*e) for e in edits])


@st.cache_data(max_entries=16, show_spinner=False)
def load_timeorder(path: str, stamp: float):
    """The time-order analysis kept with a run (``None`` when none was run on it)."""
    from core.analysis.timeorder import load_timeorder as load
    return load(path)


@st.cache_data(max_entries=16, show_spinner=False)
def run_cv(path: str, stamp: float):
    """The cross-validation kept with a run (``core.runs.attached.read_cv``: folds and summary, or None)."""
    from core.runs.attached import read_cv
    return read_cv(path)


@st.cache_data(max_entries=16, show_spinner=False)
def run_subgroups(path: str, stamp: float):
    """The subgroup table kept with a run (``core.runs.attached.read_subgroups``, or None)."""
    from core.runs.attached import read_subgroups
    return read_subgroups(path)


@st.cache_data(max_entries=16, show_spinner=False)
def saved_explanations(path: str, stamp: float) -> list[dict]:
    """What explanations a run keeps (model, patients, hour, seconds; no arrays)."""
    from core.analysis.explain import saved_explanations as saved
    return saved(path)


@st.cache_data(max_entries=32, show_spinner=False)
def load_explanation(path: str, model: str, n_patients: int, hour: float | None, stamp: float):
    """One model's global explanation kept with a run (``None`` when not computed)."""
    from core.analysis.explain import load_explanation as load
    return load(path, model, n_patients, hour)


def clear_runs() -> None:
    """Drop every cached run (after a delete)."""
    for fn in (open_run, load_run, load_run_recurrent, run_match, patient_risk, explain_patient, patient_whatif,
               load_timeorder, saved_explanations, load_explanation):
        fn.clear()


# -- Compare page: decision curves of the open run -------------------------------------------------------
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


@st.cache_data(hash_funcs={"core.runs.store.RunSummary": _summary_key}, max_entries=8, show_spinner=False)
def decision_curves(summary):
    """Decision curves of a run's test predictions (``core.evaluation.decision.curves_from_results``; band: 200 resamples
    of patients)."""
    from core.evaluation.decision import curves_from_results
    return curves_from_results(summary.results)
