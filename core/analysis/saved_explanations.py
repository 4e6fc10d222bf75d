"""Explanations kept with a saved run: one file per model, patients and hour, under the run's ``analyses/``.

A saved run's explanations are computed one model at a time, on a click
(:func:`core.analysis.explain.explain_run_model`), and kept as files of the run (:func:`save_explanation`,
:func:`load_explanation`, :func:`saved_explanations`; ``analyses/explain-MODEL-nN[-hH].json``, named by
:func:`explanation_file`), so they outlive the session and the report can summarise them. They are written and
read with :func:`core.runs.store.attach_files` and :func:`core.runs.store.read_attached`: listed with their
SHA-256 in the run's manifest and verified like the run's own files.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np

from core.analysis.explanation import ExplanationResult, decode_float, encode_float
from core.exceptions import RunError

__all__ = ["explanation_file", "save_explanation", "load_explanation", "saved_explanations", "SAVED_KEYS",
           "check_n_patients", "check_hour"]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9_]{1,40}$")
_FILE = re.compile(r"^explain-(?P<model>[A-Za-z0-9_]+)-n(?P<n>[0-9]+)(?:-h(?P<hour>[0-9.]+))?\.json$")
#: keys of a saved explanation file besides the full ``result`` (the metadata :func:`saved_explanations` lists).
SAVED_KEYS = ("model", "label", "method", "output", "n_patients", "n_explained", "hour", "data_fingerprint", "run",
              "seconds", "saved")


def check_n_patients(n_patients) -> int:
    """``n_patients`` as an int, the number of test patients an explanation of a run is asked for.

    Raises
    ------
    ValueError
        Not a whole number >= 1 (a bool is not a number of patients).
    """
    if isinstance(n_patients, (bool, np.bool_)) or not isinstance(n_patients, (int, np.integer)) or n_patients < 1:
        raise ValueError(f"n_patients must be a whole number of patients >= 1; got {n_patients!r}. "
                         "Example: n_patients=50.")
    return int(n_patients)


def check_hour(hour) -> float | None:
    """``hour`` as a float (the hour of an online run explained), or None (a stay run).

    Raises
    ------
    ValueError
        Not a finite number >= 0.
    """
    if hour is None:
        return None
    try:
        h = float(hour)
    except (TypeError, ValueError):
        h = float("nan")
    if not np.isfinite(h) or h < 0:
        raise ValueError(f"hour must be a number of hours >= 0 (or None for a stay run); got {hour!r}. "
                         "Example: hour=24.")
    return h


def explanation_file(model: str, n_patients: int, hour: float | None = None) -> str:
    """The file name, inside a run, of ``model``'s explanation on ``n_patients`` test patients (at ``hour``).

    ``explain-gru-n50.json`` (stay run) or ``explain-gru-n50-h24.json``, ``explain-lr-n50-h24.5.json``
    (online run at hour 24, 24.5): what was explained is the identity, so the same request finds the same file.

    Raises
    ------
    ValueError
        ``model`` is not a plain model name (letters, digits, ``_``), ``n_patients < 1`` or ``hour < 0``.

    Examples
    --------
    >>> explanation_file("gru", 50), explanation_file("lr", 100, 24.0)
    ('explain-gru-n50.json', 'explain-lr-n100-h24.json')
    """
    if not isinstance(model, str) or not _MODEL_NAME.match(model):
        raise ValueError(f"model must be a registry model name such as 'gru' (letters, digits, '_'); got {model!r}.")
    name = f"explain-{model}-n{check_n_patients(n_patients)}"
    h = check_hour(hour)
    if h is not None:
        name += "-h" + np.format_float_positional(h, trim="-")
    return name + ".json"


def save_explanation(run_folder, result: ExplanationResult, *, n_patients: int, hour: float | None,
                     data_fingerprint: str) -> str:
    """Keep ``result`` with its run: the file :func:`explanation_file` under the run's ``analyses/``.

    Written with :func:`core.runs.store.attach_files` (listed with its SHA-256 in the run's manifest, so it is
    verified like the run's own files); an earlier file of the same model, patients and hour is replaced.

    File format (strict JSON, UTF-8)::

        {"model": "gru", "label": "GRU", "method": "integrated gradients (...)", "output": "probability",
         "n_patients": 50,            # as requested (the identity; see n_explained)
         "n_explained": 48,           # patients actually explained (online: those still in the stay)
         "hour": 24.0 or null,        # online runs: the hour explained; stay runs: null
         "data_fingerprint": "...",   # Cohort.fingerprint() of the data explained
         "run": "quick-2024...",      # the run folder's name
         "seconds": 3.2,              # wall time: features + explanation (result.seconds if unknown)
         "saved": "2024-05-01T12:00:00.123",   # local time
         "importance": {"Lactate": 0.12, "HR": 0.05, ...},   # mean |attribution| per variable, largest first
         "result": {...}}             # ExplanationResult.to_dict()

    Parameters
    ----------
    run_folder : str or Path
        A saved run (``core.runs.store.save_run``).
    result : ExplanationResult
        From :func:`core.analysis.explain.explain_run_model` (or :func:`core.analysis.explain.explain_model` of
        that run).
    n_patients : int
        The number of test patients asked for (with ``hour``, the identity of the file).
    hour : float or None
    data_fingerprint : str

    Returns
    -------
    str
        The file name (``"explain-gru-n50.json"``), for :func:`load_explanation` and ``core.runs.store.read_attached``.

    Raises
    ------
    RunError
        The run folder fails ``core.runs.store.verify_run``.
    ValueError
        Bad ``n_patients``, ``hour`` or model name (see :func:`explanation_file`).
    """
    from core.runs.store import attach_files
    name = explanation_file(result.model_name, n_patients, hour)
    imp = result.importance()
    seconds = result.extra.get("wall_seconds", result.seconds)
    doc = {"model": str(result.model_name), "label": str(result.label or result.model_name),
           "method": str(result.method), "output": str(result.output), "n_patients": int(n_patients),
           "n_explained": len(result.patient_ids), "hour": check_hour(hour), "data_fingerprint": str(data_fingerprint),
           "run": Path(run_folder).name, "seconds": encode_float(seconds),
           "saved": datetime.now().isoformat(timespec="milliseconds"),
           "importance": {str(k): encode_float(v) for k, v in imp.items()}, "result": result.to_dict()}
    attach_files(run_folder, {name: json.dumps(doc, allow_nan=False, separators=(",", ":"))})
    return name


def _parse_saved(name: str, content: bytes) -> dict:
    from core.runs.runfiles import parse_json
    try:
        doc = parse_json(content, name=f"analyses/{name}")     # strict, depth-limited: the one reader of run files
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not all(k in doc for k in ("model", "n_patients", "result")):
        raise RunError(f"The run's analysis file {name} is not an explanation written by this version. "
                       "Explain the model again (the new file replaces it).")
    return doc


def load_explanation(run_folder, model: str, n_patients: int, hour: float | None = None, *,
                     data_fingerprint: str | None = None) -> ExplanationResult | None:
    """The explanation kept with the run for ``model`` on ``n_patients`` test patients (at ``hour``), or None.

    Parameters
    ----------
    run_folder : str or Path
    model, n_patients, hour
        As given to :func:`save_explanation`.
    data_fingerprint : str, optional
        When given, an explanation of other data (another fingerprint) counts as absent (None).

    Raises
    ------
    RunError
        The run fails ``core.runs.store.verify_run`` (a file changed), or the file is not a saved explanation.
    """
    from core.runs.store import read_attached
    name = explanation_file(model, n_patients, hour)
    content = read_attached(run_folder, name)
    if content is None:
        return None
    doc = _parse_saved(name, content)
    if data_fingerprint is not None and doc.get("data_fingerprint") != data_fingerprint:
        return None
    try:
        return ExplanationResult.from_dict(doc["result"])
    except ValueError as err:
        raise RunError(f"The run's analysis file {name} cannot be read: {err}") from None


def saved_explanations(run_folder) -> list[dict]:
    """The explanations kept with a run: their metadata, without the arrays, newest first.

    Returns
    -------
    list of dict
        One per file: :data:`SAVED_KEYS` (``model, label, method, output, n_patients, n_explained, hour,
        data_fingerprint, run, seconds, saved``) and ``file`` (its name). Sorted by ``saved`` (newest
        first), then file name. Files that are not explanations of this version are left out with a warning.

    Raises
    ------
    RunError
        The run fails ``core.runs.store.verify_run``.
    """
    from core.runs.store import ANALYSES, list_attached, read_attached, verify_run
    folder = Path(run_folder)
    names = [n for n in list_attached(folder) if _FILE.match(n)]
    if not names:
        return []
    listed = verify_run(folder)["files"]        # one verification for every file (each holds big arrays)
    out = []
    for name in names:
        content = (folder / ANALYSES / name).read_bytes()
        if hashlib.sha256(content).hexdigest() != listed.get(f"{ANALYSES}/{name}"):
            content = read_attached(folder, name)       # replaced meanwhile: read it verified
        try:
            doc = _parse_saved(name, content or b"")
        except RunError as err:
            warnings.warn(str(err), stacklevel=2)
            continue
        meta = {k: doc.get(k) for k in SAVED_KEYS}
        meta["seconds"] = None if meta["seconds"] is None else decode_float(meta["seconds"])
        meta["file"] = name
        out.append(meta)
    out.sort(key=lambda m: m["file"])
    out.sort(key=lambda m: str(m["saved"] or ""), reverse=True)
    return out

