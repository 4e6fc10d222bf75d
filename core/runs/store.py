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
The store, one import for every caller (the names below are re-exported here):

* saving, staged: :func:`save_run`, :func:`copy_run` (this module), and the leftovers of killed saves
  (:func:`remove_partial_runs`, :func:`is_staging_name`);
* listing and cleanup: :func:`list_runs`, :func:`find_run`, :func:`delete_run`, and :class:`RunSummary` (what
  the Compare page shows);
* tamper evidence (:mod:`core.runs.manifest`): ``manifest.json`` holds the SHA-256 and size of every other file
  and what each model is; :func:`verify_run` refuses a missing, changed, linked or added file, and runs saved
  without a manifest (older versions);
* reopening (:mod:`core.runs.loading`): :func:`load_run` (every model checked against its manifest entry and
  the run's feature builder), :func:`read_json`, :func:`match_run_folder`; the reopened :class:`Run` and
  :class:`DataMatch` are in :mod:`core.runs.saved_run`;
* analyses attached to a saved run (:mod:`core.runs.attached`): :func:`attach_files`, :func:`read_attached`,
  :func:`read_attached_json`, :func:`list_attached`.

A folder is a complete run once it has ``config.json`` and ``manifest.json``.

Privacy: run folders are owner-only (directories 0700, files 0600); :func:`delete_run` removes one.
"""
from __future__ import annotations

import json
import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.exceptions import RunError
from core.features import FeatureBuilder
from core.models import registry
from core.models.persist import TRUSTED_SKOPS_TYPES, describe_model, save_model
from core.runs.attached import attach_files, list_attached, read_attached, read_attached_json
from core.runs.export import jsonable, safe_csv
from core.runs.loading import load_run, match_run_folder, read_json
from core.runs.manifest import (ANALYSES, MANIFEST, RUN_EXTRAS, feature_names, names_sha256, verify_run,
                                write_manifest)
from core.runs.runfiles import read_json_file
from core.runs.saved_run import DataMatch, Run, match_data

__all__ = ["save_run", "remove_partial_runs", "load_run", "Run", "list_runs", "TRUSTED_SKOPS_TYPES",
           "DEFAULT_RUNS_DIR", "RunSummary", "find_run", "copy_run", "read_json", "DataMatch",
           "match_data", "match_run_folder", "verify_run", "delete_run", "MANIFEST", "RUN_EXTRAS", "ANALYSES",
           "attach_files", "read_attached", "read_attached_json", "list_attached", "is_staging_name"]

DEFAULT_RUNS_DIR = Path("runs")
#: a hidden staging folder of :func:`save_run` / :func:`copy_run` (``.NAME.partial-PID``), and a file
#: :func:`attach_files` is writing (``.NAME.part-PID``).
_STAGING = re.compile(r"^\..+\.(partial|part)-(\d+)$")


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
def _save_model(model, name: str, folder: Path) -> list[str]:
    """One model's files (its own seam: tests interrupt a save here, tests/core/cli/test_cli_cancel.py)."""
    return save_model(model, folder, name)


def _model_entry(model, name: str, folder: Path, builder: FeatureBuilder, run_folder: Path) -> dict:
    """Save ``model`` into ``folder``; return its manifest entry (files, class, components, input kind, features)."""
    files = _save_model(model, name, folder)
    kind = registry.get(name).input_kind
    names = feature_names(builder, kind)
    return {"files": [(folder / f).relative_to(run_folder).as_posix() for f in files], **describe_model(model),
            "input_kind": kind, "feature_names_sha256": names_sha256(names), "n_feature_names": len(names)}


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
    write_manifest(folder, entries, refit)



# --------------------------------------------------------------------------------------------
# listing and cleanup
# --------------------------------------------------------------------------------------------
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
            if ev.times is not None:          # online: alarm behaviour at the threshold, with intervals
                for key, col in (("alarmed_before_onset", "alarmed before onset"),
                                 ("median_warning_hours", "median warning (h)"),
                                 ("false_alarms_per_patient_day", "false alarms / patient-day")):
                    r[col] = ev.extra.get(key)
                    lo, hi = ev.extra.get(f"{key}_ci") or (None, None)
                    r[f"{col} 95% CI"] = f"[{lo:.2f}, {hi:.2f}]" if lo is not None and np.isfinite(lo) else ""
            r["train seconds"] = m.get("train_seconds")
            rows.append(r)
        return pd.DataFrame(rows).sort_values("auroc", ascending=False).reset_index(drop=True)
