"""The current user's workspace of runs: their folders, ownership, listing, save and delete, and the
owner-checked entry points to the run caches of :mod:`app.cache` (a path outside the user's folders is refused).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from app import auth, cache
from app.resources import runs_cleaned, scratch_root
from core.data.cohort import Cohort
from core.exceptions import CoreError
from core.settings import read_settings

__all__ = ["runs_dir", "scratch_dir", "check_owned", "list_user_runs", "runs_on_data", "run_info", "open_run",
           "run_match", "patient_risk", "load_run_recurrent", "load_run", "explain_patient", "patient_whatif",
           "save_user_run", "delete_user_run", "run_report", "new_run_folder", "is_saved", "load_timeorder",
           "saved_explanations", "load_explanation", "explain_records"]


def runs_dir() -> Path:
    """The current user's saved runs: $CHRONOSCOPE_RUNS_DIR (default ``runs/``), and with login on its
    ``users/<owner>/`` sub-folder. The first call of the server removes what killed saves left there
    (:func:`app.resources.runs_cleaned`)."""
    root = Path(read_settings().runs_dir)
    runs_cleaned(str(root))                 # once per server: leftovers of killed saves are removed at start
    who = auth.owner()
    return root / "users" / who if who else root


def scratch_dir() -> Path:
    """Where the current user's unsaved runs live until they save them or the server stops
    (``$CHRONOSCOPE_TMP_DIR``, default the system temp folder, / ``chronoscope-server-<pid>`` / owner)."""
    return scratch_root(read_settings().tmp_dir or tempfile.gettempdir()) / (auth.owner() or "local")


def is_saved(path: str | Path) -> bool:
    """Whether a run of the user is in their saved runs (not in the server's temporary folder)."""
    return Path(path).resolve().parent == runs_dir().resolve()


def check_owned(path: str | Path) -> str:
    """``path`` when it is a run of the current user (saved or not); CoreError otherwise."""
    p = Path(path).resolve()
    for root in (runs_dir(), scratch_dir()):
        if p.parent == Path(root).resolve():
            return str(path)
    raise CoreError("This run was not found among your runs. Pick one of the runs listed on the Compare page.")


def list_user_runs() -> list[dict]:
    """The current user's runs, newest first: saved ones (``"saved": True``) and this server's unsaved ones
    (:func:`core.runs.store.list_runs` entries: path, name, created, models, fingerprint, task...)."""
    from core.runs.store import list_runs
    runs = [{**r, "saved": True} for r in list_runs(runs_dir())]
    runs += [{**r, "saved": False} for r in list_runs(scratch_dir())]
    return sorted(runs, key=lambda r: r["created"], reverse=True)


def runs_on_data(fingerprint: str) -> list[dict]:
    """The user's runs trained on the data with this fingerprint, newest first."""
    return [r for r in list_user_runs() if r.get("fingerprint") == fingerprint]


def run_info(path: str | Path) -> dict | None:
    """The listing entry of one of the user's runs (``None`` when it is not, or no longer, there)."""
    want = str(Path(path).resolve())
    return next((r for r in list_user_runs() if str(Path(r["path"]).resolve()) == want), None)


def new_run_folder(name: str, save: bool) -> str:
    """Where a new run called ``name`` is written: the saved runs, or this server's temporary folder."""
    return str((runs_dir() if save else scratch_dir()) / name)


# -- owner-checked entry points of the run caches ---------------------------------------------------------
def open_run(path: str):
    """A run of the current user as a ``RunSummary`` (shared, read-only)."""
    return cache.open_run(check_owned(path), _stamp(path))


def load_run(path: str):
    """A run of the current user with all its models (a ``core.runs.store.Run``, shared, read-only)."""
    return cache.load_run(check_owned(path), _stamp(path))


def load_run_recurrent(path: str, names: tuple):
    """A run of the current user with only its recurrent models loaded."""
    return cache.load_run_recurrent(check_owned(path), names, _stamp(path))


def run_match(path: str, cohort: Cohort):
    """How the current data compare with one of the current user's runs (``core.runs.store.DataMatch``)."""
    return cache.run_match(check_owned(path), cohort, _stamp(path))


def patient_risk(path: str, cohort: Cohort, patient_id: str) -> pd.DataFrame:
    """One patient's risk per hour under a run of the current user (``core.runs.store.Run.risk_table``)."""
    return cache.patient_risk(check_owned(path), cohort, str(patient_id), _stamp(path))


def explain_patient(path: str, cohort: Cohort, names: tuple, patient_id: str, hour: float | None = None) -> tuple:
    """(risk per hour, explanations) of one patient under a run of the current user."""
    return cache.explain_patient(check_owned(path), cohort, names, str(patient_id), hour, _stamp(path))


def patient_whatif(path: str, cohort: Cohort, patient_id: str, edits):
    """A ``core.analysis.whatif.WhatIfResult`` for one patient under a run of the current user."""
    key = tuple((e.kind, e.variable, e.hour, e.value) for e in edits)
    return cache.patient_whatif(check_owned(path), cohort, str(patient_id), key, _stamp(path))


def load_timeorder(path: str):
    """The time-order analysis kept with one of the user's runs (``None`` when none was run on it)."""
    return cache.load_timeorder(check_owned(path), _stamp(path))


def run_cv(path: str):
    """The cross-validation kept with one of the user's runs: ``(folds, summary)`` or ``None``."""
    return cache.run_cv(check_owned(path), _stamp(path))


def run_subgroups(path: str):
    """The subgroup table kept with one of the user's runs: ``(attributes, table)`` or ``None``."""
    return cache.run_subgroups(check_owned(path), _stamp(path))


def saved_explanations(path: str) -> list[dict]:
    """The explanations kept with one of the user's runs (model, patients, hour, seconds)."""
    return cache.saved_explanations(check_owned(path), _stamp(path))


def load_explanation(path: str, model: str, n_patients: int, hour: float | None):
    """One model's global explanation kept with one of the user's runs (``None`` when not computed)."""
    return cache.load_explanation(check_owned(path), model, int(n_patients), hour, _stamp(path))


def explain_records() -> list[dict]:
    """Every explanation kept with any of the user's runs (for time estimates: model, patients, seconds)."""
    out = []
    for r in list_user_runs():
        try:
            out += saved_explanations(r["path"])
        except CoreError:
            continue
    return out


def _stamp(path: str | Path) -> float:
    """When the run's manifest last changed (an analysis attached, a folder trained again): part of every
    cache key, so a cached copy is never older than the run's files."""
    try:
        return (Path(path) / "manifest.json").stat().st_mtime
    except OSError:
        return 0.0


def save_user_run(path: str):
    """Save one of the current user's unsaved runs (moved into their runs folder); returns its folder."""
    import shutil

    from core.runs.store import copy_run
    src = Path(check_owned(path))
    dst = runs_dir() / src.name
    copy_run(src, dst)
    shutil.rmtree(src, ignore_errors=True)
    return dst


def delete_user_run(path: str) -> None:
    """Delete one of the current user's runs (saved or not) with all its files; cached copies are dropped."""
    from core.runs.store import delete_run
    p = Path(check_owned(path))
    delete_run(p, p.parent)
    cache.clear_runs()


def run_report(path: str):
    """A function building the self-contained HTML report of one of the current user's runs, for a deferred
    download button (built only when clicked: the file holds plotly.js, about 5 MB). The owner is checked now."""
    from core.runs.report import build_report
    from core.runs.store import load_run as load
    checked = check_owned(path)

    def build() -> str:
        return build_report(load(checked))
    return build
