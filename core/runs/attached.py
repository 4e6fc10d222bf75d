"""Analyses attached to a saved run: files under its ``analyses/`` folder, listed in its manifest like the run's own.

Time order, explanations and cross-validation computed on a run after it was saved are kept with it
(:func:`attach_files`), so they outlive the session and are verified like every other file of the run
(:func:`read_attached`, :func:`read_attached_json`). :func:`core.runs.store.remove_partial_runs` removes the part
files (``.NAME.part-PID``) a killed writer leaves.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from core.exceptions import RunError
from core.runs.manifest import ANALYSES, MANIFEST, verify_run
from core.runs.runfiles import parse_json, read_json_file

__all__ = ["attach_files", "read_attached", "read_attached_json", "list_attached", "read_cv", "read_subgroups"]

_ANALYSIS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def _check_analysis_name(name: str) -> str:
    if not isinstance(name, str) or not _ANALYSIS_NAME.match(name) or name.startswith("."):
        raise RunError(f"An analysis file of a run needs a plain file name (letters, digits, '.', '_', '-'); got "
                       f"{name!r}. Example: 'timeorder.json'.")
    return name


def attach_files(folder: str | Path, files: dict) -> list[str]:
    """Add (or replace) analysis files of the complete run ``folder``, under ``analyses/``, and record their
    SHA-256 in its manifest, so they are covered like the run's own files.

    The run is verified first (a changed run is never extended). Each file is written beside its place and
    renamed in (owner-only), then the manifest is rewritten the same way; a lock beside the run folder
    (``.NAME.lock``) keeps two jobs attaching at once from losing each other's entries.

    Parameters
    ----------
    folder : str or Path
        A run folder written by :func:`core.runs.store.save_run`.
    files : dict of str to bytes or str
        Plain file names (``"timeorder.json"``) and their content.

    Returns
    -------
    list of str
        The files' paths inside the run (``"analyses/timeorder.json"``).

    Raises
    ------
    RunError
        The run fails :func:`~core.runs.manifest.verify_run`, or a name is not a plain file name.
    """
    import fcntl
    folder = Path(folder)
    names = {_check_analysis_name(n): (c.encode() if isinstance(c, str) else bytes(c)) for n, c in files.items()}
    lock_path = folder.parent / f".{folder.name}.lock"
    with open(os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = verify_run(folder)
        place = folder / ANALYSES
        place.mkdir(mode=0o700, exist_ok=True)
        written = []
        for name, content in names.items():
            tmp = place / f".{name}.part-{os.getpid()}"
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
                fh.write(content)
            os.replace(tmp, place / name)
            rel = f"{ANALYSES}/{name}"
            manifest["files"][rel] = hashlib.sha256(content).hexdigest()
            if "sizes" in manifest:
                manifest["sizes"][rel] = len(content)
            written.append(rel)
        tmp = folder / f".{MANIFEST}.part-{os.getpid()}"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            fh.write(json.dumps(manifest, indent=2, allow_nan=False))
        os.replace(tmp, folder / MANIFEST)
    return written


def read_attached(folder: str | Path, name: str) -> bytes | None:
    """The content of the analysis file ``name`` of the run ``folder`` (``None`` when it has none).

    Raises RunError when the run fails :func:`~core.runs.manifest.verify_run` (the file was changed, added or
    removed)."""
    folder = Path(folder)
    rel = f"{ANALYSES}/{_check_analysis_name(name)}"
    manifest = verify_run(folder)
    if rel not in manifest["files"]:
        return None
    return (folder / ANALYSES / name).read_bytes()


def read_attached_json(folder: str | Path, name: str):
    """The analysis file ``name`` of the run ``folder`` parsed as JSON (:func:`core.runs.runfiles.parse_json`: strict,
    depth-limited), or ``None`` when the run has none.

    Raises RunError when the run fails :func:`~core.runs.manifest.verify_run`, or the file is not JSON (naming it)."""
    raw = read_attached(folder, name)
    return None if raw is None else parse_json(raw, name=f"{ANALYSES}/{name}")


def list_attached(folder: str | Path) -> list[str]:
    """The names of the run's analysis files (from its manifest; nothing else is read or checked here)."""
    try:
        manifest = read_json_file(Path(folder) / MANIFEST, name=MANIFEST)
    except RunError:
        return []
    files = manifest.get("files") if isinstance(manifest, dict) else None
    prefix = f"{ANALYSES}/"
    return sorted(r[len(prefix):] for r in (files or {}) if isinstance(r, str) and r.startswith(prefix))



def read_cv(folder: str | Path):
    """The cross-validation kept with a run (``cv.csv`` and ``cv.json``, :func:`core.service.runners.cross_validate_run`):
    ``(folds DataFrame, summary dict)``, or ``None`` when it has none.

    Raises RunError when the run fails its checks or a file is not what it should be."""
    import io

    import pandas as pd
    raw, info = read_attached(folder, "cv.csv"), read_attached_json(folder, "cv.json")
    if raw is None or not isinstance(info, dict):
        return None
    try:
        folds = pd.read_csv(io.BytesIO(raw))
    except (ValueError, pd.errors.ParserError) as err:
        raise RunError(f"The cross-validation table of run {Path(folder).name} cannot be read ({err}); run the "
                       "cross-validation again.") from None
    if not {"model", "fold", "auroc", "auprc"} <= set(folds.columns):
        raise RunError(f"The cross-validation table of run {Path(folder).name} lacks its columns; run the "
                       "cross-validation again.")
    if "repeat" not in folds.columns:
        folds["repeat"] = 0
    return folds, info


def read_subgroups(folder: str | Path):
    """The subgroup table kept with a run (``subgroups.json``, the Compare page's Subgroups): ``(attributes,
    DataFrame with core.evaluation.subgroups.COLUMNS)``, or ``None`` when it has none.

    Raises RunError when the run fails its checks or the file is not what it should be."""
    import pandas as pd

    from core.evaluation.subgroups import COLUMNS
    d = read_attached_json(folder, "subgroups.json")
    if d is None:
        return None
    rows = d.get("rows") if isinstance(d, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise RunError(f"The subgroup table of run {Path(folder).name} is not a list of rows; measure the subgroups "
                       "again.")
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    return tuple(str(a) for a in d.get("attributes") or ()), table
