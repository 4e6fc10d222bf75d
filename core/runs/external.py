"""External validation: measure a saved run on labelled data from elsewhere (another hospital, another period).

A model moved to another hospital loses more than the choice of model ever wins (a multi-centre sepsis study:
0.846 internal against 0.761 external AUROC). :func:`validate_external` scores the new patients with every model
of a run exactly as Predict does (variables matched first: :func:`core.runs.predict.map_to_run`; the run's
features, models and saved thresholds, never refitted) and measures them against the new labels:

* every model's metrics with bootstrap 95% intervals, the keys of the run's own ``metrics.json`` (``auroc_ci``
  included); for online runs pooled over patient-hours with a bootstrap over patients, plus the alarm metrics;
* calibration-in-the-large and the calibration slope (:mod:`core.evaluation.calibration`);
* the difference from the run's internal test metrics;
* which variables' distributions moved most: the standardised mean difference of each variable's hourly values
  between the run's training patients and the new patients (:func:`core.features.FeatureBuilder.value_moments`;
  about 0.1 is a small shift, 0.5 a large one, by Cohen's conventions);
* metrics per subgroup of each static attribute (:mod:`core.evaluation.subgroups`).

:func:`write_external` writes ``metrics.json``, ``subgroups.csv``, ``shift.csv`` and ``predictions.csv`` to a
folder (``python -m core evaluate``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from core.config import EvaluationConfig
from core.data.cohort import Cohort
from core.data.mapping import VariableMapping
from core.evaluation.alarms import alarm_metrics
from core.evaluation.bootstrap import bootstrap_indices
from core.evaluation.calibration import calibration_intercept_slope
from core.evaluation.cluster import ClusterBootstrap
from core.evaluation.metrics import evaluate
from core.evaluation.subgroups import subgroup_metrics
from core.exceptions import CohortError, RunError
from core.models import registry

__all__ = ["ExternalValidation", "validate_external", "write_external", "variable_shift", "COMPARED"]

Progress = Callable[[str, float], None]
#: metrics whose internal (the run's test patients) and external values are shown side by side.
COMPARED = ("auroc", "auprc", "brier", "min_se_ppv")


@dataclass
class ExternalValidation:
    """A run measured on labelled data from elsewhere.

    Attributes
    ----------
    run_name : str
    source : str
        The new data in words (file names).
    online : bool
    results : dict name -> EvaluationResult
        Every model on the new patients (rows: patients, or patient-hours).
    calibration : dict name -> dict
        ``calibration_in_the_large`` and ``calibration_slope``.
    internal : dict name -> dict
        The run's own test metrics (``metrics.json``).
    shift : DataFrame
        ``variable, kind, mean_train, sd_train, mean_new, sd_new, n_new, smd``, largest ``|smd|`` first (``n_new``:
        hourly values, or patients with a value, in the new data).
    subgroups : DataFrame
        :func:`core.evaluation.subgroups.subgroup_metrics` (empty without static attributes).
    mapping : VariableMapping
    match : str
        How the data compare with the run's training data (missing variables...).
    target : str or None
    """

    run_name: str
    source: str
    online: bool
    results: dict
    calibration: dict
    internal: dict
    shift: pd.DataFrame
    subgroups: pd.DataFrame
    mapping: VariableMapping = field(default_factory=VariableMapping)
    match: str = ""
    target: str | None = None
    #: per model, the share of its importance carried by variables missing here; and the warnings kept.
    missing_importance: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    @property
    def n_patients(self) -> int:
        first = next(iter(self.results.values()))
        return int(pd.unique(np.asarray(first.patient_ids)).size)

    def metrics_dict(self) -> dict:
        """The content of ``metrics.json``: the run's keys per model, plus calibration and the internal values."""
        models = {}
        for name, ev in self.results.items():
            d = ev.summary()
            d["label"] = ev.label
            d.update(self.calibration[name])
            if name in self.missing_importance:
                d["missing_importance_share"] = self.missing_importance[name]
            for k in COMPARED:
                inside = self.internal.get(name, {}).get(k)
                d[f"internal_{k}"] = inside
                d[f"{k}_difference"] = None if inside is None or not np.isfinite(d[k]) else float(d[k] - inside)
            models[name] = d
        first = next(iter(self.results.values()))
        return {"run": self.run_name, "source": self.source, "target": self.target,
                "task": "online" if self.online else "stay", "models": models,
                "n_patients": {"external": self.n_patients},
                "n_rows": int(len(first.y_true)), "n_positive_rows": int(np.sum(first.y_true)),
                "mapping": self.mapping.to_dict(), "match": self.match, "warnings": list(self.warnings)}

    def table(self) -> pd.DataFrame:
        """One row per model for a page: external AUROC with its interval beside the internal one, calibration."""
        rows = []
        for name, ev in self.results.items():
            lo, hi = ev.ci.get("auroc", (np.nan, np.nan))
            inside = self.internal.get(name, {}).get("auroc", np.nan)
            rows.append({"model": ev.label or name, "auroc": ev.metrics["auroc"],
                         "auroc 95% CI": f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else "",
                         "internal auroc": inside, "difference": ev.metrics["auroc"] - inside,
                         "auprc": ev.metrics["auprc"], "brier": ev.metrics["brier"],
                         "calibration in the large": self.calibration[name]["calibration_in_the_large"],
                         "calibration slope": self.calibration[name]["calibration_slope"],
                         "sensitivity": ev.metrics["sensitivity"], "ppv": ev.metrics["ppv"],
                         "threshold": ev.threshold})
        return pd.DataFrame(rows)

    def predictions(self) -> pd.DataFrame:
        """``patient_id, [time,] model, risk, predicted, y_true``: every scored row."""
        parts = []
        for name, ev in self.results.items():
            d = {"patient_id": np.asarray(ev.patient_ids).astype(str)}
            if ev.times is not None:
                d["time"] = ev.times
            d.update({"model": name, "risk": ev.y_proba, "predicted": (ev.y_proba >= ev.threshold).astype(int),
                      "y_true": ev.y_true})
            parts.append(pd.DataFrame(d))
        return pd.concat(parts, ignore_index=True)


def variable_shift(builder, cohort: Cohort, patient_ids=None) -> pd.DataFrame:
    """Standardised mean difference of every run variable between the run's training patients and ``cohort``.

    Time series: the mean and SD of the hourly (binned) values, as the run's feature builder measured them on its
    training patients; static attributes: mean and SD over patients. ``smd = (mean_new - mean_train) /
    sqrt((sd_train^2 + sd_new^2) / 2)``; NaN for a variable absent from the new data. Largest ``|smd|`` first.
    """
    rows = []
    moments = builder.value_moments(cohort, patient_ids)
    for i, v in enumerate(builder.variables_):
        rows.append((v, "time series", builder.mean_[i], builder.std_[i], *moments["series"][i]))
    for i, v in enumerate(builder.static_columns_):
        rows.append((v, "static", builder.static_mean_[i], builder.static_std_[i], *moments["static"][i]))
    out = pd.DataFrame(rows, columns=["variable", "kind", "mean_train", "sd_train", "mean_new", "sd_new", "n_new"])
    out["n_new"] = out["n_new"].astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.sqrt((out["sd_train"] ** 2 + out["sd_new"] ** 2) / 2)
        out["smd"] = np.where(pooled > 0, (out["mean_new"] - out["mean_train"]) / pooled, np.nan)
    return out.sort_values("smd", key=lambda s: -s.abs().fillna(-1), kind="stable").reset_index(drop=True)


def validate_external(run, cohort: Cohort, mapping: dict | None = None, config: EvaluationConfig | None = None,
                      attributes=None, source: str = "", progress: Progress | None = None,
                      allow_missing: bool = False) -> ExternalValidation:
    """Measure every model of ``run`` on the labelled patients of ``cohort`` (see the module docstring).

    Parameters
    ----------
    run : core.runs.store.Run
    cohort : Cohort
        The new patients with their labels (per stay, or per hour for an online run).
    mapping : dict ``{name in the data: name in the run}``, optional
        The user's own pairs; synonyms are matched anyway.
    config : EvaluationConfig, optional
        Bootstrap resamples, confidence level and seed (default 1,000, 95%, 0).
    attributes : sequence of str, optional
        Static attributes to form subgroups by (default: every static attribute of the new data).
    source : str
        The data in words, kept with the result.
    progress : callable ``(message, fraction)``, optional
    allow_missing : bool
        Measure even when the missing variables carry too much of a model's importance (the warning is kept).

    Raises
    ------
    CohortError
        The data have no labels (for the run's task shape), or the mapping names unknown variables.
    RunError
        None of the run's variables is in the data, variables carrying more than 20% of a model's importance
        are missing (unless ``allow_missing``), or a model gives a NaN risk.
    """
    from core.runs.predict import prepare_for_scoring
    from core.training.protocol import predict_units
    config = config or EvaluationConfig()
    if run.online and cohort.hour_labels is None:
        raise CohortError(f"Run {run.name} predicts every hour, so it is measured against a label per hour: load "
                          "the new data as an online task with the hourly label column (--task online --target "
                          "COLUMN; on Predict: tick 'Labels' and name the column).")
    if cohort.labels is None or not len(cohort.labelled_ids):
        raise CohortError("External validation needs the new patients' outcomes: give the labels file and the name "
                          "of the outcome (--labels FILE --target COLUMN), or a label column in the events.")
    if not run.online and cohort.is_online:
        raise CohortError(f"Run {run.name} predicts once per stay, but these data carry a label per hour. Load them "
                          "as a stay task (one outcome per patient) to measure this run.")

    def say(msg: str, frac: float) -> None:
        if progress is not None:
            progress(msg, frac)

    fitted_on = {str(p) for k in ("train", "validation") for p in run.splits.get(k, ())}
    own = [p for p in cohort.labelled_ids if str(p) in fitted_on]
    if own:                  # the run was fitted or tuned on them: measuring them would flatter it
        rest = [p for p in cohort.patient_ids if str(p) not in fitted_on]
        if not any(str(p) in set(map(str, cohort.labelled_ids)) for p in rest):
            raise CohortError(f"Every labelled patient here is one of run {run.name}'s training or validation "
                              "patients: the run was fitted or tuned on them, so they cannot measure it. Use "
                              "patients the run has never seen.")
        cohort = cohort.subset(rest)
    cohort, matched, data_match, shares, warnings = prepare_for_scoring(run, cohort, mapping, allow_missing)
    match = data_match.sentence()
    if own:
        warnings = [f"{len(own):,} of these patients are run {run.name}'s own training or validation patients (by id): "
                    "left out, because the run was fitted or tuned on them."] + warnings
    ids = cohort.labelled_ids
    say(f"building the features of {len(ids):,} labelled patients", 0.05)
    fs = run.features(cohort, ids)
    y = run.builder.targets(cohort, fs)
    idx = clusters = None
    if run.online:
        clusters = ClusterBootstrap(fs.unit_ids, max(config.n_bootstrap, 1), config.random_state)
    elif config.n_bootstrap > 0:
        idx = bootstrap_indices(len(y), config.n_bootstrap, config.random_state)
    results, calibration = {}, {}
    names = list(run.models)
    for i, name in enumerate(names):
        spec = registry.get(name)
        say(f"scoring and measuring {spec.label}", 0.1 + 0.7 * i / max(len(names), 1))
        p = predict_units(run.models[name], spec.input_kind, fs)
        if not np.isfinite(p).all():
            bad = list(dict.fromkeys(fs.unit_ids[~np.isfinite(p)].astype(str)))
            raise RunError(f"Model {name!r} of run {run.name} gave no valid risk (NaN or infinite) for {len(bad)} "
                           f"patient(s), e.g. {', '.join(bad[:5])}; check their values or leave the model out.")
        ev = evaluate(name, y, p, float(run.thresholds[name]), fs.unit_ids, config, label=spec.label, idx=idx,
                      clusters=clusters, times=fs.unit_time)
        if run.online:
            ev.extra.update(alarm_metrics(fs.unit_ids, fs.unit_time, y, p, float(run.thresholds[name]),
                                          cohort.onsets))
        results[name] = ev
        calibration[name] = calibration_intercept_slope(y, p)
    say("subgroups and shifted variables", 0.85)
    static = cohort.static.loc[cohort.static.index.intersection(pd.Index(ids))]
    subgroups = subgroup_metrics(results, static, attributes, config=config) if static.shape[1] or attributes \
        else pd.DataFrame()
    shift = variable_shift(run.builder, cohort, ids)
    say("done", 1.0)
    internal = {n: dict(run.metrics.get("models", {}).get(n, {})) for n in names}
    return ExternalValidation(run.name, source, bool(run.online), results, calibration, internal, shift, subgroups,
                              matched, match, cohort.target, shares, warnings)


def write_external(result: ExternalValidation, out_dir: str | Path) -> Path:
    """``metrics.json``, ``subgroups.csv``, ``shift.csv``, ``predictions.csv`` (spreadsheet-safe) in ``out_dir``."""
    from core.runs.export import jsonable, safe_csv
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file; give a folder to write the results into (it is created).")
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(jsonable(result.metrics_dict()), indent=2))
    safe_csv(result.subgroups, out / "subgroups.csv")
    safe_csv(result.shift, out / "shift.csv")
    safe_csv(result.predictions(), out / "predictions.csv")
    return out
