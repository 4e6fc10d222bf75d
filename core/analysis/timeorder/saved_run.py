"""The time-order analysis of a saved run: its config, split, saved risks and fitted models; and keeping the
result with the run (``analyses/timeorder.json``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.analysis.timeorder.config import TimeOrderConfig
from core.analysis.timeorder.results import TimeOrderResult, read_float
from core.analysis.timeorder.tasks import TaskShape
from core.config import EvaluationConfig
from core.data.cohort import Cohort
from core.evaluation.metrics import evaluate
from core.exceptions import RunError
from core.features import FeatureSet
from core.models import registry
from core.runs.export import jsonable
from core.training.protocol import ProtocolResult

__all__ = ["check_run_config", "run_results", "run_notes", "save_timeorder", "load_timeorder", "TIMEORDER_FILE"]

#: the settings an analysis of a run takes from the run (TimeOrderConfig.for_run); the rest are free.
_RUN_FIELDS = ("models", "features", "preset", "sequence_params", "split", "evaluation", "max_patients", "random_state")


def check_run_config(cohort: Cohort, config: TimeOrderConfig | None, run) -> TimeOrderConfig:
    """``config`` (default :meth:`TimeOrderConfig.for_run`) after checking it and ``cohort`` against ``run``."""
    expected = TimeOrderConfig.for_run(run) if config is None else TimeOrderConfig.for_run(
        run, model=config.model, horizons_hours=config.horizons_hours, tiers=config.tiers,
        n_bootstrap=config.evaluation.n_bootstrap)
    bad = [] if config is None else [f for f in _RUN_FIELDS if getattr(config, f) != getattr(expected, f)]
    if bad:
        what = "; ".join(f"{f} is {getattr(config, f)!r}, the run's {getattr(expected, f)!r}" for f in bad)
        raise RunError(f"This time-order config contradicts the run {run.name} ({what}). The analysis of a run uses "
                       "the run's split, features, models, preset and seed; build its config from the run: "
                       "TimeOrderConfig.for_run(run, model='gru', horizons_hours=(6, 12, 24)).")
    fp, have = str(run.config.get("fingerprint", "")), cohort.fingerprint()
    if have != fp:
        raise RunError(f"This run ({run.name}) was trained on other data (data fingerprint {fp}; these data's is "
                       f"{have}): load the data it was trained on (the same file, labels, target and options) to "
                       "analyse its time order, or train a run on these data first.")
    return config or expected


def run_results(run, cohort: Cohort, splits: dict, config: TimeOrderConfig, abl_name: str,
                task: TaskShape) -> ProtocolResult:
    """The run's own full-horizon results, as the protocol would give them: the validation and test risks it
    saved, aligned by patient (and hour) to the rows of the run's builder on ``cohort``, thresholds as saved,
    the test resample the protocol draws (so the metrics and CIs are those of its metrics.json), and the
    ablation's fitted model when the run has it."""
    builder = run.builder
    fsets = {k: builder.transform(cohort, splits[k]) for k in ("validation", "test")}
    ys = {k: builder.targets(cohort, fs) for k, fs in fsets.items()}
    val, test = fsets["validation"], fsets["test"]
    ev_cfg = config.evaluation
    idx, clusters = task.draw_resamples(test, ev_cfg)
    no_ci = EvaluationConfig(n_bootstrap=0)
    saved = run.metrics.get("models", {})
    thresholds = run.config.get("thresholds", {})
    val_res, test_res, seconds = {}, {}, {}
    for name in config.models:
        label = registry.get(name).label
        thr = float(thresholds[name])
        p_val = _saved_risks(run, name, "validation", val, ys["validation"])
        p_test = _saved_risks(run, name, "test", test, ys["test"])
        val_res[name] = evaluate(name, ys["validation"], p_val, thr, val.unit_ids, no_ci, label=label,
                                 times=val.unit_time)
        test_res[name] = evaluate(name, ys["test"], p_test, thr, test.unit_ids, ev_cfg, label=label, idx=idx,
                                  clusters=clusters, times=test.unit_time)
        seconds[name] = read_float((saved.get(name) or {}).get("train_seconds"))
    models = {abl_name: _run_model(run, abl_name)} if abl_name in config.models else {}
    return ProtocolResult(builder=builder, models=models, splits=splits, validation=val_res, test=test_res,
                          train_seconds=seconds, features=fsets, bootstrap=idx, clusters=clusters)


def _saved_risks(run, name: str, split: str, fs: FeatureSet, y: np.ndarray) -> np.ndarray:
    """Model ``name``'s saved risks of ``split`` in the order of ``fs``'s units (matched by patient id, and hour
    online: the run saved them sorted by patient), after checking that its saved labels are ``y``."""
    pr = run.predictions
    d = pr[(pr["split"] == split) & (pr["model"] == name)] if len(pr) else pr
    unit = "patient-hours" if fs.online else "patients"
    if fs.online:
        saved = pd.MultiIndex.from_arrays([d["patient_id"].astype(str).to_numpy(),
                                           np.round(d["time"].to_numpy(dtype=float), 6)]) if len(d) else pd.Index([])
        want = pd.MultiIndex.from_arrays([fs.unit_ids.astype(str), np.round(fs.unit_time.astype(float), 6)])
    else:
        saved = pd.Index(d["patient_id"].astype(str).to_numpy()) if len(d) else pd.Index([])
        want = pd.Index(fs.unit_ids.astype(str))
    pos = saved.get_indexer(want) if len(saved) == len(want) and saved.is_unique else None
    if pos is None or (pos < 0).any():
        raise RunError(f"The saved {split} predictions of {name!r} in the run {run.name} do not match its {split} "
                       f"{unit} on these data one to one ({len(saved)} saved, {len(want)} here): its "
                       "predictions.parquet is incomplete, or the data were read with other options. Load the data "
                       "exactly as for training, or retrain the run.")
    if not np.array_equal(d["y_true"].to_numpy()[pos].astype(int), np.asarray(y, dtype=int)):
        raise RunError(f"The labels the run {run.name} saved for its {split} {unit} differ from these data's, so "
                       "its numbers cannot be paired with a refit on them. Load the data it was trained on with the "
                       "same target and options.")
    return d["risk"].to_numpy(dtype=float)[pos]


def _run_model(run, name: str):
    """The run's fitted ``name`` that made its saved predictions (never its refit on training + validation
    patients, ``train --refit``), read and checked against the run's manifest if not loaded yet."""
    if not run.refitted and name in run.models:
        return run.models[name]
    from core.models.persist import check_model, load_model
    from core.runs.store import verify_run
    entry = verify_run(run.folder).get("models", {}).get(name)
    if not isinstance(entry, dict):
        raise RunError(f"Model {name!r} is not described in the manifest of the run {run.name}; the run was edited. "
                       "Train it again (retrain), or restore the run from a backup.")
    spec = registry.get(name)
    model = load_model(run.folder / "models", name)
    check_model(model, entry, f"models/{name}",
                reference=[spec.make(preset="test", task=t) for t in ("stay", "online")])
    width = len(run.builder.seq_names if spec.input_kind == "sequence" else run.builder.tab_names)
    if int(getattr(model, "n_features_in_", -1)) != width:
        raise RunError(f"Model {name!r} of the run {run.name} reads {getattr(model, 'n_features_in_', None)} inputs "
                       f"but the run's feature builder makes {width}. Train it again (retrain), or restore the run "
                       "from a backup.")
    return model


def run_notes(run, abl, config: TimeOrderConfig) -> tuple:
    """What an analysis of ``run`` did beyond the run's own fits, in words."""
    if run is None or abl.name in config.models:
        return ()
    return (f"The {abl.label} (the ablation model) is not among the run's models, so its ordered arm was trained "
            f"here on the run's split, features and seed ({config.preset} preset); the gap and the curves use the "
            "run's models.",)



#: the name of the time-order result among a run's attached analyses (``analyses/timeorder.json``).
TIMEORDER_FILE = "timeorder.json"


def save_timeorder(run_folder: str | Path, result: TimeOrderResult) -> str:
    """Attach ``result`` to the saved run it analysed, as ``analyses/timeorder.json`` (covered by the run's manifest,
    :func:`core.runs.store.attach_files`; a previous one is replaced).

    Parameters
    ----------
    run_folder : str or Path
        The run folder (:func:`core.runs.store.save_run`).
    result : TimeOrderResult
        From ``run_timeorder(cohort, config, run=run)`` on this run.

    Returns
    -------
    str
        The file's path inside the run (``"analyses/timeorder.json"``).

    Raises
    ------
    RunError
        ``result`` was not computed on a saved run, or on another run or other data; the run fails
        :func:`core.runs.store.verify_run`.

    Examples
    --------
    >>> save_timeorder("runs/my_run", run_timeorder(cohort, TimeOrderConfig.for_run(run), run=run))  # doctest: +SKIP
    'analyses/timeorder.json'
    """
    from core.runs.store import attach_files, read_json
    folder = Path(run_folder)
    if not result.run:
        raise RunError("This time-order result drew its own split and trained its own models, so it belongs to no "
                       "run and is not attached to one. Analyse the run itself: run_timeorder(cohort, "
                       "TimeOrderConfig.for_run(run), run=run) (python -m core timeorder DATA --run RUN --out DIR).")
    cfg = read_json(folder / "config.json")
    request = str(cfg.get("request") or "")
    same_run = result.run_request == request if result.run_request and request else result.run == folder.name
    if str(cfg.get("fingerprint", "")) != result.data_fingerprint or not same_run:
        raise RunError(f"This time-order result analysed the run {result.run} (data fingerprint "
                       f"{result.data_fingerprint}), not the run {folder.name}: attach it to the run it was computed on, "
                       "or analyse this run (run_timeorder(cohort, TimeOrderConfig.for_run(run), run=run)).")
    text = json.dumps(jsonable(result.to_dict()), indent=2, allow_nan=False)
    return attach_files(folder, {TIMEORDER_FILE: text})[0]


def load_timeorder(run_folder: str | Path) -> TimeOrderResult | None:
    """The time-order result attached to the run (:func:`save_timeorder`), or ``None`` when it has none.

    Raises
    ------
    RunError
        The run fails :func:`core.runs.store.verify_run` (a file was changed), or its timeorder.json is not a
        time-order result.
    """
    from core.runs.store import read_attached
    folder = Path(run_folder)
    raw = read_attached(folder, TIMEORDER_FILE)
    if raw is None:
        return None
    from core.runs.runfiles import parse_json
    try:
        return TimeOrderResult.from_dict(parse_json(raw, name=f"analyses/{TIMEORDER_FILE}"))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise RunError(f"analyses/{TIMEORDER_FILE} of the run {folder.name} cannot be read ({err}). Compute it "
                       "again: python -m core timeorder DATA --run RUN --out DIR.") from None
