"""Reopening a saved run: every file verified (:func:`core.runs.manifest.verify_run`), read with its limits and
schema, and every model checked before it is used (:func:`load_run`).

:func:`load_run` checks each model it loads (:func:`core.models.persist.check_model`: class, components, finite
parameters) and its input width and feature names against the run's feature builder. Model files are only ever
read with skops' trusted types or ``torch.load(weights_only=True)``; the feature builder's arrays with
``allow_pickle=False``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.data.cohort import Cohort
from core.exceptions import RunError
from core.features import FeatureBuilder
from core.models import registry
from core.models.persist import check_model, load_model
from core.runs.manifest import MANIFEST, feature_names, names_sha256, verify_run
from core.runs.runfiles import (RESTORE, check_config, check_data_report, check_feature_meta, check_manifest,
                                check_metrics, check_split, check_versions, read_json_file, size_limit)
from core.runs.saved_run import DataMatch, Run, match_data

__all__ = ["load_run", "read_json", "match_run_folder"]

#: the schema check of each JSON file of a run, by name (core.runs.runfiles).
_SCHEMAS = {"config.json": check_config, MANIFEST: check_manifest, "split.json": check_split,
            "metrics.json": check_metrics, "versions.json": check_versions, "data_report.json": check_data_report,
            "features.json": check_feature_meta}


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


def load_run(run_dir: str | Path, models=None) -> Run:
    """Reopen a run folder written by :func:`core.runs.store.save_run`.

    Parameters
    ----------
    run_dir : str or Path
    models : sequence of str, optional
        Load only these models (default: all in the run).

    Raises
    ------
    RunError
        The folder or one of its files is missing, corrupt, changed or added after saving
        (:func:`~core.runs.manifest.verify_run`), holds untrusted types, or a model is not what the manifest
        recorded (class, parts, NaN / infinite parameters, inputs that do not fit the feature builder). Runs
        without a manifest (saved by an older version) are refused.
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
                       f"{config.get('task', 'stay')!r}; the run was edited (or is damaged). {RESTORE}")
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
                               f"patients can give ({n_units:,}); the run was edited (or is damaged). {RESTORE}")
            preds = pd.read_parquet(folder / "predictions.parquet")
        elif "predictions.csv" in files:
            if (folder / "predictions.csv").stat().st_size > 1024 * max(n_units, 1):
                raise RunError(f"predictions.csv is larger than the run's validation and test patients can give "
                               f"({n_units:,} rows); the run was edited (or is damaged). {RESTORE}")
            preds = pd.read_csv(folder / "predictions.csv", dtype={"patient_id": str})
        else:
            return pd.DataFrame(columns=["patient_id", "split", "model", "risk", "predicted", "y_true"])
    except RunError:
        raise
    except (OSError, ValueError, ImportError) as err:
        raise RunError(f"The predictions of the run {folder} cannot be read ({err}); the run is damaged. "
                       f"{RESTORE}") from None
    need = ["patient_id", "split", "model", "risk", "predicted", "y_true"] + (["time"] if "time" in preds else [])
    missing = [c for c in need if c not in preds.columns]
    if missing:
        raise RunError(f"predictions: column {missing[0]!r} is missing; the run was edited (or is damaged). "
                       f"{RESTORE}")
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
        raise RunError(f"predictions: a row's {bad}; the run was edited (or is damaged). {RESTORE}")
    preds["patient_id"] = preds["patient_id"].astype(str)
    return preds


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
                           f"feature builder holds; the run was edited (or is damaged). {RESTORE}")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in widths if k in z.files}
    except RunError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise RunError(f"features.npz of the run {folder} cannot be read ({err}); the run is damaged. "
                       f"{RESTORE}") from None
    for key, width in widths.items():
        a = arrays.get(key)
        if a is None or a.dtype.kind not in "fiu" or a.shape != (width,):
            raise RunError(f"features.npz: {key} = {'missing' if a is None else f'{a.dtype} {a.shape}'} is not "
                           f"{width} numbers (one per {'static column' if 'static' in key else 'variable'} of "
                           f"features.json); the run was edited (or is damaged). {RESTORE}")
    try:
        return FeatureBuilder.from_state(meta, arrays)
    except (TypeError, ValueError, KeyError) as err:
        raise RunError(f"features.json of the run {folder} cannot rebuild the feature builder ({err}); the run "
                       f"was edited (or is damaged). {RESTORE}") from None


def _load_model(name: str, folder: Path, entry, builder: FeatureBuilder, run_folder: Path):
    """Load model ``name`` from ``folder`` and check it against its manifest ``entry`` and the run's builder."""
    if not isinstance(entry, dict):
        raise RunError(f"Model {name!r} is not described in {MANIFEST} of the run {run_folder} (the run holds "
                       f"no such model, or the manifest was edited). Choose one of the run's models. {RESTORE}")
    where = " + ".join(str(f) for f in entry.get("files", [])) or f"models/{name}"
    spec = registry.get(name)
    if entry.get("input_kind") != spec.input_kind:
        raise RunError(f"{MANIFEST} of the run {run_folder} records {where} as a {entry.get('input_kind')!r} model, "
                       f"but {name!r} reads {spec.input_kind!r} inputs. {RESTORE}")
    model = load_model(folder, name)
    check_model(model, entry, where, reference=[spec.make(preset="test", task=t) for t in ("stay", "online")])
    names = feature_names(builder, spec.input_kind)
    got = int(getattr(model, "n_features_in_", -1))
    if len(names) != got or int(entry.get("n_features", -1)) != got:
        raise RunError(f"Model {name!r} ({where}) in {run_folder} expects {got} inputs but the run's feature "
                       f"builder makes {len(names)} (the manifest recorded {entry.get('n_features')}): the run was "
                       f"written by another version of Chronoscope or edited. {RESTORE}")
    if entry.get("feature_names_sha256") != names_sha256(names):
        raise RunError(f"The feature names of the run's feature builder (features.json) differ from those model "
                       f"{name!r} ({where}) was trained on: the variables were changed after the run was saved. "
                       f"{RESTORE}")
    return model


def match_run_folder(folder: str | Path, cohort: Cohort) -> DataMatch:
    """:func:`~core.runs.saved_run.match_data` for a saved run, reading only its config and feature builder (no models).

    Raises RunError when the run fails :func:`~core.runs.manifest.verify_run`.
    """
    folder = Path(folder)
    verify_run(folder)
    config = read_json(folder / "config.json")
    return match_data(str(config.get("fingerprint", "")), str(config.get("task", "stay")),
                      _load_builder(folder), cohort)
