"""Saving and reopening training runs, in safe formats only (no pickle).

A run folder holds::

    config.json          preset, seed, models, feature/split/evaluation configs, target, data fingerprint
    versions.json        python, numpy, pandas, scikit-learn, torch, skops versions
    split.json           patient ids of train / validation / test
    metrics.json         {"models": {name: {auroc, auprc, brier, threshold, train_seconds, *_ci...}}, ...}
    predictions.csv      validation + test risks (spreadsheet-safe); predictions.parquet (exact copy); online
                         runs have one row per patient-hour (a ``time`` column)
    features.json/.npz   the fitted FeatureBuilder
    models/<name>.skops  scikit-learn models (loaded with an explicit list of trusted types)
    models/<name>.pt     torch state_dict (loaded with weights_only=True) + models/<name>.json hyper-parameters
    models/refit/...     optional (``train --refit``): the same models refitted on training + validation
                         patients, used by ``predict``; the reported metrics stay those of the test patients
    manifest.json        written last: the SHA-256 of every other file, and what each model is (below)

:func:`load_run` reopens a folder on any machine with the same libraries and scores new patients.

Tamper evidence. ``manifest.json`` is::

    {"format": 1, "algorithm": "sha256",
     "files": {"config.json": "<hex>", "models/lr.skops": "<hex>", ...},      # every file but itself
     "sizes": {"config.json": 947, ...},                                       # bytes (runs saved since issue 21)
     "models": {"lr": {"files": ["models/lr.skops"], "class": "sklearn.pipeline.Pipeline",
                       "components": [...], "input_kind": "tabular", "n_features": 120,
                       "feature_names_sha256": "<hex of the JSON list of the builder's names>"}, ...},
     "refit": {...}}                                                             # the same for models/refit/

:func:`verify_run` (called by :func:`load_run`, :func:`copy_run` and :func:`match_run_folder`) refuses a
run with a missing, changed or linked file, or an unlisted file in the run's own places (the top level,
``models/``, ``models/refit/``; only ``cv.csv`` / ``cv.json`` of ``train --cv`` may be added at the top).
:func:`load_run` then checks each model it loads (:func:`core.models.persist.check_model`: class,
components, finite parameters) and its input width and feature names against the run's feature builder.
Runs saved without a manifest (older versions) are refused. A folder is a complete run once it has
``config.json`` and ``manifest.json``. The manifest is not signed: it shows edits and swapped files (its
recorded sizes before any hashing), but not someone who rewrites it too; so every JSON file of a run is read
with :mod:`core.runs.runfiles` (size and depth limits, strict JSON) and checked against its schema before use, and
the model checks still refuse other classes and NaN weights.

Privacy: run folders are owner-only (directories 0700, files 0600); :func:`delete_run` removes one.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.cohort import Cohort
from core.config import EvaluationConfig
from core.evaluation.metrics import ClusterBootstrap, bootstrap_indices, compare, evaluate
from core.exceptions import RunError
from core.runs.export import jsonable, safe_csv
from core.features import FeatureBuilder, FeatureSet
from core.models import registry
from core.models.persist import TRUSTED_SKOPS_TYPES, check_model, describe_model, load_model, save_model
from core.runs.runfiles import (RESTORE, check_config, check_data_report, check_feature_meta, check_manifest, check_metrics,
                           check_split, check_versions, parse_json, read_json_file, size_limit)

__all__ = ["save_run", "remove_partial_runs", "load_run", "Run", "list_runs", "TRUSTED_SKOPS_TYPES",
           "DEFAULT_RUNS_DIR", "RunSummary", "find_run", "copy_run", "read_json", "DataMatch",
           "match_data", "match_run_folder", "verify_run", "delete_run", "MANIFEST", "RUN_EXTRAS", "ANALYSES",
           "attach_files", "read_attached", "read_attached_json", "list_attached", "is_staging_name"]

DEFAULT_RUNS_DIR = Path("runs")
#: alarm metrics of an online run, per model in metrics.json (see core.evaluation.metrics.alarm_metrics).
ALARM_KEYS = ("positive_stays", "alarmed_before_onset", "median_warning_hours", "false_alarms_per_patient_day",
              "alarm_hours_share")
#: the run's file of file hashes and model descriptions, written last.
MANIFEST = "manifest.json"
#: top-level files a command may add to a complete run after saving it (``train --cv``); never read by load_run.
RUN_EXTRAS = frozenset({"cv.csv", "cv.json"})
#: the folder of a run that holds analyses computed on it after it was saved (time order, explanations,
#: cross-validation): files of the run like any other, listed in its manifest (:func:`attach_files`).
ANALYSES = "analyses"
_ANALYSIS_NAME = __import__("re").compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
#: the fix every tamper message ends with.
_RESTORE = RESTORE
#: a hidden staging folder of :func:`save_run` / :func:`copy_run` (``.NAME.partial-PID``), and a file
#: :func:`attach_files` is writing (``.NAME.part-PID``).
_STAGING = __import__("re").compile(r"^\..+\.(partial|part)-(\d+)$")


def _versions() -> dict:
    import sklearn
    import skops
    import torch
    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__, "torch": torch.__version__, "skops": skops.__version__}


def _dump(path: Path, obj) -> None:
    path.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False))



# --------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _names_sha256(names) -> str:
    return hashlib.sha256(json.dumps([str(n) for n in names]).encode()).hexdigest()


def _feature_names(builder: FeatureBuilder, input_kind: str) -> list:
    """The names of the columns (tabular) or channels (sequence) a model of ``input_kind`` reads."""
    return list(builder.seq_names if input_kind == "sequence" else builder.tab_names)


def _save_model(model, name: str, folder: Path) -> list[str]:
    return save_model(model, folder, name)


def _model_entry(model, name: str, folder: Path, builder: FeatureBuilder, run_folder: Path) -> dict:
    """Save ``model`` into ``folder``; return its manifest entry (files, class, components, input kind, features)."""
    files = _save_model(model, name, folder)
    kind = registry.get(name).input_kind
    names = _feature_names(builder, kind)
    return {"files": [(folder / f).relative_to(run_folder).as_posix() for f in files], **describe_model(model),
            "input_kind": kind, "feature_names_sha256": _names_sha256(names), "n_feature_names": len(names)}


def _write_manifest(folder: Path, models: dict, refit: dict) -> None:
    paths = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST]
    files = {p.relative_to(folder).as_posix(): _sha256(p) for p in paths}
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size for p in paths}
    _dump(folder / MANIFEST, {"format": 1, "algorithm": "sha256", "files": files, "sizes": sizes, "models": models,
                              "refit": refit})


def _make_private(folder: Path) -> None:
    """Owner-only access to ``folder`` and everything in it: directories 0700, files 0600 (links left alone)."""
    os.chmod(folder, 0o700)
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            if not os.path.islink(os.path.join(root, d)):
                os.chmod(os.path.join(root, d), 0o700)
        for f in files:
            if not os.path.islink(os.path.join(root, f)):
                os.chmod(os.path.join(root, f), 0o600)


def save_run(result, folder: str | Path) -> Path:
    """Write an :class:`~core.training.experiment.ExperimentResult` to ``folder`` (created; its run files replaced).

    Never leaves a half-written run: everything is written to a hidden staging folder beside
    ``folder`` (``.NAME.partial-PID``), made owner-only (directories 0700, files 0600), then moved in,
    ``config.json`` and then ``manifest.json`` last (a folder is only a run, for :func:`list_runs` and
    :func:`load_run`, once it has both). An interrupted save (Ctrl-C, a cancelled job) removes the
    staging folder; a killed process leaves only that hidden folder, which :func:`list_runs` never lists and
    :func:`remove_partial_runs` deletes (called here first, on ``folder``'s parent, and by the server at start).

    Returns
    -------
    Path of the run folder.
    """
    import shutil
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_partial_runs(folder.parent)           # what killed saves left here (their processes are gone)
    staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(mode=0o700)
        _write_run(result, staging)
        _make_private(staging)
        _move_into(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _move_into(staging: Path, folder: Path) -> None:
    """Move a complete staged run into ``folder``: renamed when new; else its files replaced, config and
    manifest last (the folder is not a complete run in between)."""
    import shutil
    if not folder.exists():
        os.replace(staging, folder)
        return
    entries = sorted(staging.iterdir(), key=lambda q: (q.name == MANIFEST, q.name == "config.json"))
    (folder / MANIFEST).unlink(missing_ok=True)
    (folder / "config.json").unlink(missing_ok=True)
    os.chmod(folder, 0o700)
    for src in entries:
        dst = folder / src.name
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(src, dst)


def copy_run(source: str | Path, folder: str | Path) -> Path:
    """Copy the complete run ``source`` to ``folder`` (as :func:`save_run` would write it: staged, owner-only,
    config and manifest last). The files are copied byte for byte, so the manifest stays valid.

    Raises
    ------
    RunError
        ``source`` fails :func:`verify_run` (a changed, missing or added file; no manifest).
    """
    import shutil
    source, folder = Path(source), Path(folder)
    verify_run(source)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_partial_runs(folder.parent)
    staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns(".*"), symlinks=True)
        _make_private(staging)
        _move_into(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def is_staging_name(name: str) -> bool:
    """Whether ``name`` is a hidden staging folder or part file (``.NAME.partial-PID``, ``.NAME.part-PID``)."""
    return bool(_STAGING.match(str(name)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):       # another user's process (alive), or not a pid at all
        return pid > 0
    return True


def remove_partial_runs(root: str | Path, pid: int | None = None) -> int:
    """Delete what interrupted saves left under ``root``: the staging folders of :func:`save_run` and
    :func:`copy_run` (``.NAME.partial-PID``) and the part files of :func:`attach_files` in the run folders
    (``.NAME.part-PID``), of process ``pid``, or (default) of every process that is no longer running.

    The server calls it on its runs folders when it starts and the CLI before it saves a run; a staging
    folder of a save still under way (its process is alive) is left alone.

    Returns the number removed.
    """
    import shutil
    root = Path(root)
    if not root.is_dir() or root.is_symlink():
        return 0

    def stale(p: Path) -> bool:
        m = _STAGING.match(p.name)
        return bool(m) and (int(m.group(2)) == pid if pid is not None else not _pid_alive(int(m.group(2))))

    n = 0
    for p in sorted(root.iterdir()):
        if stale(p) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
            n += 1
        elif p.is_dir() and not p.is_symlink() and not p.name.startswith("."):        # a run: attach leftovers
            for place in (p, p / ANALYSES):
                if place.is_symlink() or not place.is_dir():
                    continue
                for q in place.iterdir():
                    if stale(q) and q.is_file() and not q.is_symlink():
                        q.unlink(missing_ok=True)
                        n += 1
    return n


def _write_run(result, folder: Path) -> None:
    """Every file of a run into the empty ``folder``; ``config.json``, then ``manifest.json`` last."""
    (folder / "models").mkdir(parents=True, exist_ok=True)
    _dump(folder / "versions.json", _versions())
    _dump(folder / "split.json", {k: [str(i) for i in v] for k, v in result.splits.items()})
    _dump(folder / "metrics.json", jsonable(result.metrics_dict()))
    extra = getattr(result, "extra", None) or {}
    if extra.get("data_report") is not None:      # the validation report of the data it was trained on
        _dump(folder / "data_report.json", jsonable({"report": extra["data_report"],
                                                     "split_counts": extra.get("split_counts", {})}))
    rows = []
    for split_name, res in (("validation", result.validation), ("test", result.test)):
        for name, ev in res.items():
            frame = {"patient_id": ev.patient_ids.astype(str)}
            if ev.times is not None:            # online: one row per patient-hour
                frame["time"] = ev.times
            frame.update({"split": split_name, "model": name, "risk": ev.y_proba,
                          "predicted": (ev.y_proba >= ev.threshold).astype(int), "y_true": ev.y_true.astype(int)})
            rows.append(pd.DataFrame(frame))
    preds = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["patient_id", "split", "model", "risk", "predicted", "y_true"])
    safe_csv(preds, folder / "predictions.csv")
    preds.to_parquet(folder / "predictions.parquet", index=False)
    result.builder.save(folder)
    entries = {name: _model_entry(model, name, folder / "models", result.builder, folder)
               for name, model in result.models.items()}
    refit = {}
    if result.refit:
        (folder / "models" / "refit").mkdir(exist_ok=True)
        refit = {name: _model_entry(model, name, folder / "models" / "refit", result.builder, folder)
                 for name, model in result.refit.items()}
    cfg = dict(result.config)
    cfg.update({"fingerprint": result.fingerprint, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "reference": result.reference, "thresholds": {n: ev.threshold for n, ev in result.test.items()},
                "format": 1})
    _dump(folder / "config.json", jsonable(cfg))
    _write_manifest(folder, entries, refit)


# --------------------------------------------------------------------------------------------
# analyses attached to a saved run
# --------------------------------------------------------------------------------------------
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
        A run folder written by :func:`save_run`.
    files : dict of str to bytes or str
        Plain file names (``"timeorder.json"``) and their content.

    Returns
    -------
    list of str
        The files' paths inside the run (``"analyses/timeorder.json"``).

    Raises
    ------
    RunError
        The run fails :func:`verify_run`, or a name is not a plain file name.
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

    Raises RunError when the run fails :func:`verify_run` (the file was changed, added or removed)."""
    folder = Path(folder)
    rel = f"{ANALYSES}/{_check_analysis_name(name)}"
    manifest = verify_run(folder)
    if rel not in manifest["files"]:
        return None
    return (folder / ANALYSES / name).read_bytes()


def read_attached_json(folder: str | Path, name: str):
    """The analysis file ``name`` of the run ``folder`` parsed as JSON (:func:`core.runs.runfiles.parse_json`: strict,
    depth-limited), or ``None`` when the run has none.

    Raises RunError when the run fails :func:`verify_run`, or the file is not JSON (naming it)."""
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


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def read_json(path: Path):
    """A JSON file of a run folder, read with :func:`core.runs.runfiles.read_json_file` (its size limit, strict JSON,
    at most :data:`core.runs.runfiles.MAX_DEPTH` levels). Files with a schema are checked too: ``config.json``,
    ``manifest.json``, ``split.json``, ``metrics.json``, ``versions.json``, ``data_report.json`` (only files
    directly in the run folder are recognised by name).

    Raises
    ------
    RunError
        Missing, too large, not JSON, nested too deeply, or a field of the wrong type or range; the message
        names the file and the field.
    """
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path.name} is missing from the run folder {path.parent}. The folder is incomplete: "
                       "train again (python -m core train ...) or pick another run.")
    value = read_json_file(path, name=path.name)
    check = _SCHEMAS.get(path.name)
    return check(value) if check else value


def _inside(folder: Path, rel) -> Path:
    """``folder / rel`` for a manifest entry, refusing absolute paths and ``..`` (nothing outside is read)."""
    parts = str(rel).split("/")
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel or any(
            p in ("", ".", "..") for p in parts):
        raise RunError(f"{MANIFEST} of the run {folder} lists {rel!r}, which is not a file inside the run folder: "
                       f"the manifest was edited. {_RESTORE}")
    return folder.joinpath(*parts)


def _read_manifest(folder: Path) -> dict:
    if not (folder / MANIFEST).is_file():
        if (folder / "config.json").is_file():
            raise RunError(f"The run {folder} was saved by an older version without a manifest ({MANIFEST}), so "
                           "its files cannot be checked for changes and it is refused: retrain it "
                           f"(python -m core train ... --out {folder}).")
        raise RunError(f"{folder} is not a complete run folder (it has no config.json and no {MANIFEST}). Pass "
                       "the --out folder of a finished `python -m core train` (e.g. runs/my_run), or train again.")
    if (folder / MANIFEST).is_symlink():
        raise RunError(f"{MANIFEST} in the run folder {folder} is a link, not the file the run saved. {_RESTORE}")
    return check_manifest(read_json_file(folder / MANIFEST, name=MANIFEST))


def verify_run(run_dir: str | Path) -> dict:
    """Check a run folder against its ``manifest.json``; return the manifest.

    Every listed file must exist, be a plain file (no link) and have its recorded SHA-256; the run's own
    places (the top level, ``models/``, ``models/refit/``) must hold nothing unlisted (only
    :data:`RUN_EXTRAS` may be added at the top). Nothing is deserialised here.

    Raises
    ------
    RunError
        No folder; no manifest (a run saved by an older version); a missing, changed, linked or added
        file. The message names the file and says how to fix it.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise RunError(f"Run folder {folder} does not exist. Pass the --out folder of a finished "
                       "`python -m core train` (e.g. runs/my_run).")
    manifest = _read_manifest(folder)
    files, sizes = manifest["files"], manifest.get("sizes", {})
    paths = {}
    for rel in files:                                  # first what costs nothing: links, missing files, sizes
        path = _inside(folder, rel)
        if path.is_symlink() or any(p.is_symlink() for p in path.parents if folder in p.parents):
            raise RunError(f"{rel} in the run folder {folder} is a link, not the file the run saved. {_RESTORE}")
        if not path.is_file():
            raise RunError(f"{rel} is missing from the run folder {folder} ({MANIFEST} lists it). The folder is "
                           f"incomplete. {_RESTORE}")
        paths[rel] = path
    _refuse_unlisted(folder, set(files) | {MANIFEST})
    derived = _prediction_limit(folder) if {"predictions.csv", "predictions.parquet"} & set(files) else None
    for rel, path in paths.items():
        size, limit = path.stat().st_size, size_limit(rel)
        if derived is not None and rel in ("predictions.csv", "predictions.parquet"):
            limit = min(limit, derived)
        if size > limit or (rel in sizes and size != sizes[rel]):
            what = (f"{size:,} bytes, more than such a file of a run can hold ({limit:,})" if size > limit else
                    f"{size:,} bytes, not the {sizes[rel]:,} bytes it had when the run was saved")
            raise RunError(f"{rel} in the run folder {folder} is {what}: it was changed after the run was saved, "
                           f"so it is not trusted and the run is refused (nothing was read). {_RESTORE}")
    for rel, path in paths.items():                    # then the hashes
        if _sha256(path) != files[rel]:
            raise RunError(f"{rel} in the run folder {folder} was changed after the run was saved (its SHA-256 "
                           f"does not match {MANIFEST}), so it is not trusted and the run is refused. {_RESTORE}")
    return manifest


def _prediction_limit(folder: Path) -> int | None:
    """The most bytes the run's predictions can take: 1 KiB per row (an id, a time, split, model, risk, label)
    for each validation and test patient (x steps, online) and model, plus 64 MiB; ``None`` when config.json or
    split.json cannot say (their own checks refuse them later). Read before anything is hashed, so a huge
    predictions file of a run saved without recorded sizes is refused at once too."""
    try:
        config = check_config(read_json_file(folder / "config.json", name="config.json"))
        split = check_split(read_json_file(folder / "split.json", name="split.json"))
    except RunError:
        return None
    features = config["features"]
    steps = 1 if config.get("task", "stay") == "stay" else int(np.ceil(
        float(features.get("window_hours", 48.0)) / float(features.get("bin_hours", 1.0)) - 1e-9))
    rows = (len(split["validation"]) + len(split["test"])) * len(config["models"]) * steps
    return 64 * 2**20 + 1024 * rows


def _refuse_unlisted(folder: Path, listed: set) -> None:
    """RunError when the run's own places hold a file or folder its manifest does not list."""
    for place in (folder, folder / "models", folder / "models" / "refit", folder / ANALYSES):
        if place.is_symlink():
            raise RunError(f"{place.relative_to(folder).as_posix()} in the run folder {folder} is a link, not the "
                           f"folder the run saved. {_RESTORE}")
        if not place.is_dir():
            continue
        for p in sorted(place.iterdir()):
            rel = p.relative_to(folder).as_posix()
            own_dir = rel in ("models", "models/refit", ANALYSES) and p.is_dir() and not p.is_symlink()
            extra = place == folder and rel in RUN_EXTRAS and p.is_file() and not p.is_symlink()
            if rel in listed or own_dir or extra:
                continue
            raise RunError(f"{rel} in the run folder {folder} is not listed in {MANIFEST}: it was added after the "
                           "run was saved, and the run is refused rather than risk reading it. Delete "
                           f"{rel}, or restore the run from a backup (or train it again).")


def _load_builder(folder: Path) -> FeatureBuilder:
    """The run's fitted feature builder from ``features.json`` (schema-checked) and ``features.npz`` (plain
    arrays, no pickle; each the length of the variables or static columns it describes)."""
    import zipfile
    meta = check_feature_meta(read_json_file(folder / "features.json", name="features.json"))
    path = folder / "features.npz"
    widths = {"clip_lo": len(meta["variables"]), "clip_hi": len(meta["variables"]), "mean": len(meta["variables"]),
              "std": len(meta["variables"]), "static_mean": len(meta["static_columns"]),
              "static_std": len(meta["static_columns"])}
    try:
        with zipfile.ZipFile(path) as z:            # never inflate more than the file could hold
            inflated = sum(i.file_size for i in z.infolist())
        if inflated > size_limit("features.npz"):
            raise RunError(f"features.npz of the run {folder} inflates to {inflated:,} bytes, more than a run's "
                           f"feature builder holds; the run was edited (or is damaged). {_RESTORE}")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in widths if k in z.files}
    except RunError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise RunError(f"features.npz of the run {folder} cannot be read ({err}); the run is damaged. "
                       f"{_RESTORE}") from None
    for key, width in widths.items():
        a = arrays.get(key)
        if a is None or a.dtype.kind not in "fiu" or a.shape != (width,):
            raise RunError(f"features.npz: {key} = {'missing' if a is None else f'{a.dtype} {a.shape}'} is not "
                           f"{width} numbers (one per {'static column' if 'static' in key else 'variable'} of "
                           f"features.json); the run was edited (or is damaged). {_RESTORE}")
    try:
        return FeatureBuilder.from_state(meta, arrays)
    except (TypeError, ValueError, KeyError) as err:
        raise RunError(f"features.json of the run {folder} cannot rebuild the feature builder ({err}); the run "
                       f"was edited (or is damaged). {_RESTORE}") from None


def _load_model(name: str, folder: Path, entry, builder: FeatureBuilder, run_folder: Path):
    """Load model ``name`` from ``folder`` and check it against its manifest ``entry`` and the run's builder."""
    if not isinstance(entry, dict):
        raise RunError(f"Model {name!r} is not described in {MANIFEST} of the run {run_folder} (the run holds "
                       f"no such model, or the manifest was edited). Choose one of the run's models. {_RESTORE}")
    where = " + ".join(str(f) for f in entry.get("files", [])) or f"models/{name}"
    spec = registry.get(name)
    if entry.get("input_kind") != spec.input_kind:
        raise RunError(f"{MANIFEST} of the run {run_folder} records {where} as a {entry.get('input_kind')!r} model, "
                       f"but {name!r} reads {spec.input_kind!r} inputs. {_RESTORE}")
    model = load_model(folder, name)
    check_model(model, entry, where, reference=[spec.make(preset="test", task=t) for t in ("stay", "online")])
    names = _feature_names(builder, spec.input_kind)
    got = int(getattr(model, "n_features_in_", -1))
    if len(names) != got or int(entry.get("n_features", -1)) != got:
        raise RunError(f"Model {name!r} ({where}) in {run_folder} expects {got} inputs but the run's feature "
                       f"builder makes {len(names)} (the manifest recorded {entry.get('n_features')}): the run was "
                       f"written by another version of Chronoscope or edited. {_RESTORE}")
    if entry.get("feature_names_sha256") != _names_sha256(names):
        raise RunError(f"The feature names of the run's feature builder (features.json) differ from those model "
                       f"{name!r} ({where}) was trained on: the variables were changed after the run was saved. "
                       f"{_RESTORE}")
    return model


@dataclass(frozen=True)
class DataMatch:
    """How a run's training data compares with other data (:meth:`Run.match`).

    Attributes
    ----------
    same_data : bool
        Same data fingerprint as the run's training data.
    run_task, data_task : {"stay", "online"}
    missing : list of str
        The run's variables (time series and static) absent from the data.
    new : list of str
        Variables of the data the run never saw (ignored by its models).
    patients_missing_share : float
        Share of the data's patients with no value at all of at least one of the run's variables.
    n_run_variables : int
    """

    same_data: bool
    run_task: str
    data_task: str
    missing: list
    new: list
    patients_missing_share: float
    n_run_variables: int

    @property
    def usable(self) -> bool:
        """False when none of the run's variables is in the data (scoring would be meaningless)."""
        return len(self.missing) < self.n_run_variables

    def sentence(self) -> str:
        """Plain words for a page or the CLI; empty when the data are the run's own."""
        if self.same_data:
            return ""
        parts = ["This run was trained on other data (the data fingerprint differs)."]
        if self.run_task != self.data_task:
            parts.append(f"It predicts {'every hour' if self.run_task == 'online' else 'once per stay'}, "
                         f"but these data are {'hourly-labelled' if self.data_task == 'online' else 'per stay'}.")
        if not self.usable:
            parts.append(f"None of its {self.n_run_variables} variables is in these data, so it cannot score them.")
            return " ".join(parts)
        if self.missing:
            shown = ", ".join(self.missing[:8]) + (f" and {len(self.missing) - 8} more" if len(self.missing) > 8 else "")
            parts.append(f"{len(self.missing)} of its {self.n_run_variables} variables are missing here ({shown}); "
                         "the models see them as never measured.")
        if self.patients_missing_share > 0:
            parts.append(f"{self.patients_missing_share:.0%} of these patients lack at least one of the run's "
                         "variables.")
        if self.new:
            shown = ", ".join(self.new[:8]) + (f" and {len(self.new) - 8} more" if len(self.new) > 8 else "")
            parts.append(f"{len(self.new)} variable(s) here were not in the training data and are ignored ({shown}).")
        return " ".join(parts)


def match_data(fingerprint: str, task: str, builder: FeatureBuilder, cohort: Cohort) -> DataMatch:
    """Compare a run's training data (fingerprint, task, fitted builder) with ``cohort``."""
    run_vars = list(builder.variables_) + list(builder.static_columns_)
    have_series = set(cohort.series_variables)
    have_static = set(cohort.static_variables)
    have = have_series | have_static
    missing = [v for v in run_vars if v not in have]
    new = sorted(v for v in have if v not in set(run_vars))
    n_pat = max(len(cohort.patient_ids), 1)
    if missing:
        share = 1.0
    else:
        counts = cohort.events.groupby("variable", observed=True)["patient_id"].nunique()
        per_var = [counts.get(v, 0) if v in have_series else int(cohort.static[v].notna().sum())
                   for v in run_vars]
        share = 0.0 if not per_var else float(1 - min(per_var) / n_pat)
    return DataMatch(same_data=fingerprint == cohort.fingerprint(), run_task=task,
                     data_task="online" if cohort.is_online else "stay", missing=missing, new=new,
                     patients_missing_share=max(0.0, share), n_run_variables=len(run_vars))


def match_run_folder(folder: str | Path, cohort: Cohort) -> DataMatch:
    """:func:`match_data` for a saved run, reading only its config and feature builder (no models).

    Raises RunError when the run fails :func:`verify_run`.
    """
    folder = Path(folder)
    verify_run(folder)
    config = read_json(folder / "config.json")
    return match_data(str(config.get("fingerprint", "")), str(config.get("task", "stay")),
                      _load_builder(folder), cohort)


@dataclass
class Run:
    """A reopened run folder.

    Attributes
    ----------
    folder : Path
    config : dict (config.json)
    metrics : dict (metrics.json)
    splits : dict "train"/"validation"/"test" -> ndarray of patient ids
    builder : FeatureBuilder (fitted on the run's training patients)
    models : dict name -> fitted estimator
    thresholds : dict name -> decision threshold
    predictions : DataFrame (validation + test rows: patient_id, [time,] split, model, risk, predicted, y_true)
    versions : dict
    refitted : bool
        Whether ``models`` are the refits on training + validation patients (``train --refit``).
    data_report : dict or None
        ``data_report.json``: the validation report of the data the run was trained on (``report``:
        :meth:`core.data.validation.ValidationReport.to_dict`) and patients per split (``split_counts``);
        None for runs saved before it was kept.
    """

    folder: Path
    config: dict
    metrics: dict
    splits: dict
    builder: FeatureBuilder
    models: dict
    thresholds: dict
    predictions: pd.DataFrame
    versions: dict = field(default_factory=dict)
    refitted: bool = False
    data_report: dict | None = None

    @property
    def fitted(self):
        """The fitted builder, models and splits (a :class:`core.training.protocol.FittedRun`)."""
        from core.training.protocol import FittedRun
        return FittedRun(self.builder, self.models, self.splits)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def online(self) -> bool:
        """Whether the run predicts every patient-hour (the online task)."""
        return self.builder.config.task == "online"

    def features(self, cohort: Cohort, patient_ids=None) -> FeatureSet:
        """``X_tab``/``X_seq`` (and names, variables, channel kinds) built with the run's fitted builder."""
        return self.builder.transform(cohort, patient_ids)

    def match(self, cohort: Cohort) -> DataMatch:
        """How ``cohort`` compares with this run's training data (fingerprint, task, variables)."""
        return match_data(str(self.config.get("fingerprint", "")), str(self.config.get("task", "stay")),
                          self.builder, cohort)

    def check_data(self, cohort: Cohort) -> DataMatch:
        """:meth:`match`, raising RunError when none of the run's variables is in ``cohort``."""
        m = self.match(cohort)
        if not m.usable:
            raise RunError(m.sentence() + " Use data with the variables the run was trained on "
                           f"(for example {', '.join(m.missing[:5])}).")
        return m

    def score(self, cohort: Cohort, patient_ids=None, models=None, features: FeatureSet | None = None) -> pd.DataFrame:
        """Risk of every patient (every patient-hour for an online run) under every model.

        Raises RunError when none of the run's variables is in ``cohort`` (:meth:`check_data`), or when a
        model gives a NaN or infinite risk (the message names the patients and the model).

        Returns
        -------
        DataFrame with columns ``patient_id, model, risk, predicted`` (one row per patient and model;
        ``predicted`` is 1 when ``risk >= threshold`` saved with the model). Online runs add ``time``
        (the hour's own time; its risk uses data up to and including it): one row per patient, hour
        and model, for every hour that has a row in the data.
        """
        from core.training.protocol import predict_units
        self.check_data(cohort)
        fs = features if features is not None else self.features(cohort, patient_ids)   # built once by callers that loop
        rows = []
        for name in models or list(self.models):
            risk = predict_units(self.models[name], registry.get(name).input_kind, fs)
            bad = ~np.isfinite(risk)
            if bad.any():      # never written as an empty risk with predicted=0: a silent false negative
                ids = list(dict.fromkeys(fs.unit_ids[bad].astype(str)))
                shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
                raise RunError(f"Model {name!r} of the run {self.name} gave no valid risk (NaN or infinite) for "
                               f"{len(ids)} patient(s): {shown}. No risk is reported rather than a wrong 'not at "
                               "risk'. Check those patients' values, or score with the run's other models "
                               f"(--models); if it happens for every patient, the model is damaged: {_RESTORE}")
            frame = {"patient_id": fs.unit_ids.astype(str)}
            if fs.online:
                frame["time"] = fs.unit_time
            frame.update({"model": name, "risk": risk, "predicted": (risk >= self.thresholds[name]).astype(int)})
            rows.append(pd.DataFrame(frame))
        return pd.concat(rows, ignore_index=True)

    def risk_table(self, cohort: Cohort, patient_id: str, step_hours: float | None = None) -> pd.DataFrame:
        """One patient's risk under every model, hour by hour: ``time_hours`` + one column per model.

        Online run: the risk the models give at every hour of the patient (data up to and including it).
        Stay run: the risk trajectory, i.e. at each step ``h`` (``step_hours``, default the run's bin, up to
        its window) the risk the model gives the stay when only the data up to hour ``h`` exist; the last
        point is the stay's risk. Classical models see the summaries of those hours, sequence models the
        hours in order.
        """
        if self.online:
            scores = self.score(cohort, [str(patient_id)])
            table = scores.pivot_table(index="time", columns="model", values="risk", sort=True)
            return table.reset_index().rename(columns={"time": "time_hours"})
        return self.risk_trajectory(cohort.patient_events(str(patient_id)), cohort.static.loc[
            cohort.static.index.intersection([str(patient_id)])], step_hours)

    def risk_trajectory(self, events: pd.DataFrame, static: pd.DataFrame,
                        step_hours: float | None = None) -> pd.DataFrame:
        """Stay run: one patient's risk from the data up to each hour (see :meth:`risk_table`).

        ``events`` are the patient's events (``time_hours, variable, value``; any patient id) and ``static``
        its static row (or empty). Every prefix is scored in one batch, as a pseudo-patient.
        """
        from core.data.cohort import make_cohort
        if self.online:
            raise RunError(f"Run {self.name} predicts every hour; use risk_table for its hourly risks.")
        cfg = self.builder.config
        step = float(step_hours or cfg.bin_hours)
        ev = events[["time_hours", "variable", "value"]]
        last = min(float(ev["time_hours"].max()) if len(ev) else step, float(cfg.window_hours))
        hours = np.arange(step, last + step - 1e-9, step)
        hours = np.unique(np.append(hours[hours < last], last))
        frames = [ev[ev["time_hours"] <= h].assign(patient_id=f"h{i:05d}") for i, h in enumerate(hours)]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame(columns=["time_hours", *self.models])
        ids = [f["patient_id"].iat[0] for f in frames]
        row = static.iloc[:1] if len(static) else pd.DataFrame(index=[0])
        pseudo_static = pd.DataFrame(np.repeat(row.to_numpy(), len(ids), axis=0), index=pd.Index(ids, name="patient_id"),
                                     columns=row.columns) if len(static) else None
        pseudo = make_cohort(pd.concat(frames, ignore_index=True), pseudo_static)
        scores = self.score(pseudo)
        table = scores.pivot_table(index="patient_id", columns="model", values="risk", sort=True)
        table = table[[m for m in self.models if m in table.columns]]
        table.index = [float(hours[int(p[1:])]) for p in table.index]
        table.columns.name = None
        return table.rename_axis("time_hours").reset_index()

    def evaluations(self, split: str = "test", config: EvaluationConfig | None = None):
        """Rebuild ``(results, comparisons)`` from the saved predictions (bootstrap re-seeded: identical)."""
        if config is None:
            config = EvaluationConfig(**self.config.get("evaluation", {}))
        pr = self.predictions[self.predictions["split"] == split]
        online = "time" in pr.columns
        results = {}
        idx = clusters = None
        saved = self.metrics.get("models", {})
        for name in self.config.get("models", []):
            d = pr[pr["model"] == name].sort_values(["patient_id", "time"] if online else "patient_id")
            if not len(d):
                continue
            ids = d["patient_id"].to_numpy(dtype=object)
            if online and clusters is None and config.n_bootstrap > 0:
                clusters = ClusterBootstrap.from_config(ids, config)
            elif not online and idx is None and config.n_bootstrap > 0:
                idx = bootstrap_indices(len(d), config.n_bootstrap, config.random_state)
            label = registry.get(name).label
            results[name] = evaluate(name, d["y_true"].to_numpy(), d["risk"].to_numpy(), self.thresholds[name],
                                     ids, config, label=label, idx=idx, clusters=clusters,
                                     times=d["time"].to_numpy(dtype=float) if online else None)
            if online:
                results[name].extra.update({k: saved.get(name, {}).get(k) for k in ALARM_KEYS})
        ref = self.config.get("reference")
        comps = [compare(r, results[ref], config, idx=idx, clusters=clusters) for n, r in results.items()
                 if ref in results and n != ref]
        return results, comps


def load_run(run_dir: str | Path, models=None) -> Run:
    """Reopen a run folder written by :func:`save_run`.

    Parameters
    ----------
    run_dir : str or Path
    models : sequence of str, optional
        Load only these models (default: all in the run).

    Raises
    ------
    RunError
        The folder or one of its files is missing, corrupt, changed or added after saving (:func:`verify_run`),
        holds untrusted types, or a model is not what the manifest recorded (class, parts, NaN / infinite
        parameters, inputs that do not fit the feature builder). Runs without a manifest (saved by an
        older version) are refused.
    """
    folder = Path(run_dir)
    manifest = verify_run(folder)
    config = read_json(folder / "config.json")
    metrics = read_json(folder / "metrics.json")
    splits = {k: np.asarray(v, dtype=object) for k, v in read_json(folder / "split.json").items()}
    versions = read_json(folder / "versions.json") if "versions.json" in manifest["files"] else {}
    builder = _load_builder(folder)
    if builder.config.task != config.get("task", "stay"):
        raise RunError(f"features.json: config.task = {builder.config.task!r} differs from config.json's task "
                       f"{config.get('task', 'stay')!r}; the run was edited (or is damaged). {_RESTORE}")
    names = list(models) if models else list(config.get("models", []))
    unknown = [n for n in names if n not in config.get("models", [])]
    if unknown:
        raise RunError(f"Model(s) {', '.join(map(repr, unknown))} are not in the run {folder}; choose from "
                       f"{', '.join(config.get('models', []))}.")
    refit = manifest.get("refit", {})
    refitted = bool(refit) and all(n in refit for n in names)
    place = folder / "models" / "refit" if refitted else folder / "models"
    entries = refit if refitted else manifest.get("models", {})
    loaded = {n: _load_model(n, place, entries.get(n), builder, folder) for n in names}
    thresholds = {n: float(config["thresholds"][n]) for n in names}
    preds = _read_predictions(folder, manifest, config, splits, builder)
    data_report = read_json(folder / "data_report.json") if "data_report.json" in manifest["files"] else None
    return Run(folder, config, metrics, splits, builder, loaded, thresholds, preds, versions, refitted, data_report)


def _read_predictions(folder: Path, manifest: dict, config: dict, splits: dict, builder: FeatureBuilder) -> pd.DataFrame:
    """``predictions.parquet`` (or, in runs without it, ``predictions.csv``), refused before it is read when it
    holds more rows than the run's validation and test patients could give (x models, x steps for an online
    run), and after when a column the views use is missing or out of range."""
    n_units = (len(splits.get("validation", ())) + len(splits.get("test", ()))) * len(config["models"]) * (
        builder.config.n_steps if builder.config.task == "online" else 1)
    files = manifest["files"]
    try:
        if "predictions.parquet" in files:
            import pyarrow.parquet as pq
            rows = pq.ParquetFile(folder / "predictions.parquet").metadata.num_rows
            if rows > n_units:
                raise RunError(f"predictions.parquet holds {rows:,} rows, more than the run's validation and test "
                               f"patients can give ({n_units:,}); the run was edited (or is damaged). {_RESTORE}")
            preds = pd.read_parquet(folder / "predictions.parquet")
        elif "predictions.csv" in files:
            if (folder / "predictions.csv").stat().st_size > 1024 * max(n_units, 1):
                raise RunError(f"predictions.csv is larger than the run's validation and test patients can give "
                               f"({n_units:,} rows); the run was edited (or is damaged). {_RESTORE}")
            preds = pd.read_csv(folder / "predictions.csv", dtype={"patient_id": str})
        else:
            return pd.DataFrame(columns=["patient_id", "split", "model", "risk", "predicted", "y_true"])
    except RunError:
        raise
    except (OSError, ValueError, ImportError) as err:
        raise RunError(f"The predictions of the run {folder} cannot be read ({err}); the run is damaged. "
                       f"{_RESTORE}") from None
    need = ["patient_id", "split", "model", "risk", "predicted", "y_true"] + (["time"] if "time" in preds else [])
    missing = [c for c in need if c not in preds.columns]
    if missing:
        raise RunError(f"predictions: column {missing[0]!r} is missing; the run was edited (or is damaged). "
                       f"{_RESTORE}")
    bad = None
    if not preds["model"].isin(config["models"]).all():
        bad = "model (a model the run does not hold)"
    elif not preds["split"].isin(["validation", "test"]).all():
        bad = "split (not validation or test)"
    else:
        for col, lo, hi in (("risk", 0.0, 1.0), ("y_true", 0, 1), ("predicted", 0, 1)) + (
                (("time", -np.inf, np.inf),) if "time" in preds else ()):
            v = pd.to_numeric(preds[col], errors="coerce").to_numpy(dtype=float)
            if not (np.isfinite(v).all() and (v >= lo).all() and (v <= hi).all()):
                bad = f"{col} (not a number in [{lo:g}, {hi:g}])"
                break
    if bad:
        raise RunError(f"predictions: a row's {bad}; the run was edited (or is damaged). {_RESTORE}")
    preds["patient_id"] = preds["patient_id"].astype(str)
    return preds


def list_runs(root: str | Path = DEFAULT_RUNS_DIR, *, duplicates: bool = False) -> list[dict]:
    """Runs under ``root`` (newest first): ``{"path", "name", "created", "models", "target", "request",
    "fingerprint", "task"}``. Only complete runs (``config.json`` and ``manifest.json``) are listed; their
    files are not checked here (:func:`load_run` does).

    Hidden folders (the staging folders of a save under way or killed, ``.NAME.partial-PID``) are never listed.
    Runs of the same request (:func:`core.training.experiment.training_request`: same data, settings, seed and
    code, so the same numbers) are listed once, the oldest (the one :func:`find_run` reuses), unless
    ``duplicates``.
    """
    root = Path(root)
    out = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():   # staging (.NAME.partial-PID) and hidden folders
            continue
        cfg = folder / "config.json"
        if not cfg.is_file() or not (folder / MANIFEST).is_file():   # not complete yet, or saved by an older version
            continue
        try:
            c = read_json_file(cfg, name="config.json")
        except RunError:
            continue
        if not isinstance(c, dict):
            continue

        def text(key, default=None):
            v = c.get(key, default)
            return v if isinstance(v, str) else default
        models = c.get("models")
        models = [m for m in models if isinstance(m, str)] if isinstance(models, list) else []
        task = c.get("task", "stay")
        out.append({"path": str(folder), "name": folder.name, "created": text("created", ""), "models": models,
                    "target": text("target"), "request": text("request"), "fingerprint": text("fingerprint"),
                    "task": task if task in ("stay", "online") else "stay"})
    out.sort(key=lambda d: (d["created"], d["name"]))
    if not duplicates:
        seen: set = set()
        kept = []
        for d in out:
            if d["request"] and d["request"] in seen:
                continue
            seen.add(d["request"])
            kept.append(d)
        out = kept
    return out[::-1]


#: the schema check of each JSON file of a run, by name (core.runs.runfiles).
_SCHEMAS = {"config.json": check_config, MANIFEST: check_manifest, "split.json": check_split,
            "metrics.json": check_metrics, "versions.json": check_versions, "data_report.json": check_data_report,
            "features.json": check_feature_meta}


def find_run(root: str | Path, request: str) -> Path | None:
    """The saved run of ``request`` under ``root`` (the oldest, if several), or ``None``.

    A run folder is only listed once complete (:func:`save_run` writes ``config.json`` and then
    ``manifest.json`` last), so what this returns can be opened (unless its files were changed since).
    """
    hits = [d for d in list_runs(root, duplicates=True) if request and d["request"] == request]
    return Path(hits[-1]["path"]) if hits else None


def delete_run(folder: str | Path, root: str | Path) -> None:
    """Delete the run ``folder`` and all its files; it must be a run folder directly under ``root``.

    A run folder has a ``config.json`` (complete runs also a ``manifest.json``; runs saved by older versions,
    without one, can be deleted too). Links inside it are removed, never followed.

    Raises
    ------
    RunError
        ``root`` is not a folder; ``folder`` is a link, a hidden (staging) folder, not directly under
        ``root`` (``..``, another folder, a link elsewhere), or not a run folder. Nothing is deleted then.
    """
    import shutil
    root, folder = Path(root), Path(folder)
    if not root.is_dir():
        raise RunError(f"The runs folder {root} does not exist; pass the folder that holds the runs (e.g. runs).")
    if folder.is_symlink():
        raise RunError(f"{folder} is a link, not a run folder; refusing to delete through it. Delete the run "
                       "it points to by its own path.")
    real, real_root = folder.resolve(), root.resolve()
    if real.parent != real_root or folder.name in ("", ".", ".."):
        raise RunError(f"{folder} is not a run folder directly under {root}; refusing to delete it. Pass a run of "
                       f"{root}, e.g. {root / 'my_run'}.")
    if real.name.startswith("."):
        raise RunError(f"{folder} is a hidden folder (a run being saved, or a leftover); refusing to delete it. "
                       "Use remove_partial_runs for leftovers.")
    if not real.is_dir() or not (real / "config.json").is_file():
        raise RunError(f"{folder} is not a run folder (no config.json); refusing to delete it. Pass a run of "
                       f"{root}.")
    shutil.rmtree(real)


@dataclass
class RunSummary:
    """What the Compare page shows, the same whether a run was just trained or reopened.

    Attributes
    ----------
    results : dict name -> EvaluationResult (test patients)
    comparisons : list of ComparisonResult (vs ``reference``)
    reference : str or None
    metrics : dict (metrics.json content)
    predictions : DataFrame (validation + test predictions)
    folder : Path or None
    reused : bool
    """

    results: dict
    comparisons: list
    reference: str | None
    metrics: dict
    predictions: pd.DataFrame
    folder: Path | None = None
    #: True when the run was not trained now but reused (an identical earlier request, :mod:`core.runs.reuse`).
    reused: bool = False

    @property
    def online(self) -> bool:
        """Whether the results are per patient-hour (an online run)."""
        return any(ev.times is not None for ev in self.results.values())

    @classmethod
    def from_experiment(cls, result, folder: str | Path | None = None) -> "RunSummary":
        preds = pd.read_parquet(Path(folder) / "predictions.parquet") if folder else pd.DataFrame()
        return cls(result.test, result.comparisons, result.reference, jsonable(result.metrics_dict()), preds,
                   Path(folder) if folder else None)

    @classmethod
    def from_run(cls, run: "Run") -> "RunSummary":
        results, comps = run.evaluations()
        return cls(results, comps, run.config.get("reference"), run.metrics, run.predictions, run.folder)

    def leaderboard(self) -> pd.DataFrame:
        """One row per model, best test AUROC first: point estimates, 95% CIs, threshold, training time.

        Online runs: the metrics are pooled over patient-hours (CIs from a bootstrap over patients) and the
        alarm metrics at the threshold are added.
        """
        rows = []
        for name, ev in self.results.items():
            m = self.metrics.get("models", {}).get(name, {})
            r = {"model": ev.label or name}
            for k in ("auroc", "auprc", "brier", "min_se_ppv"):
                lo, hi = ev.ci.get(k, (np.nan, np.nan))
                r[k] = ev.metrics[k]
                r[f"{k} 95% CI"] = f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else ""
            r["threshold"] = ev.threshold
            if ev.times is not None:          # online: alarm behaviour at the threshold
                r["alarmed before onset"] = ev.extra.get("alarmed_before_onset")
                r["median warning (h)"] = ev.extra.get("median_warning_hours")
                r["false alarms / patient-day"] = ev.extra.get("false_alarms_per_patient_day")
            r["train seconds"] = m.get("train_seconds")
            rows.append(r)
        return pd.DataFrame(rows).sort_values("auroc", ascending=False).reset_index(drop=True)


