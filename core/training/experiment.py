"""The model comparison and cross-validation, both on the one protocol of :mod:`core.training.protocol`.

Protocol (why): every statistic (feature clipping/standardisation, imputation, scaling, early
stopping) is learned from **training** patients only; the decision threshold of each model and the
choice of the reference (best classical) model are made on **validation** patients; metrics,
confidence intervals and paired tests are reported on **test** patients only, which nothing has seen.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from core.data.cohort import Cohort
from core.config import EvaluationConfig, FeatureConfig, SplitConfig
from core.evaluation.metrics import ComparisonResult, adjust_for_multiplicity
from core.features import FeatureBuilder
from core.models import registry
from core.models.base import check_preset
from core.training.engine import Backend
from core.training.protocol import (
    Progress,
    ProtocolRequest,
    patient_folds,
    refit_models,
    run_protocol,
    run_protocols,
    split_by_patient,
)

__all__ = ["ExperimentResult", "run_experiment", "training_request", "cross_validate", "default_features"]


def default_features(cohort: Cohort, window_hours: float = 48.0, max_hours: float = 336.0) -> FeatureConfig:
    """The features a cohort's task shape asks for: the first ``window_hours`` of each stay (one label
    per stay), or every hour of stays up to ``max_hours`` (a label per hour: the online task)."""
    if cohort.is_online:
        return FeatureConfig(task="online", window_hours=max_hours)
    return FeatureConfig(window_hours=window_hours)


@dataclass
class ExperimentResult:
    """Everything one comparison produced (what :mod:`core.runs.store` saves and reopens).

    Attributes
    ----------
    builder : FeatureBuilder (fitted on training patients)
    models : dict name -> fitted estimator
    splits : dict "train"/"validation"/"test" -> patient ids
    test : dict name -> EvaluationResult on test patients
    validation : dict name -> EvaluationResult on validation patients (threshold chosen here)
    comparisons : list of ComparisonResult (each model vs ``reference``)
    reference : str
        Best classical model by validation AUROC.
    train_seconds : dict name -> float
    config : dict (preset, seed, models, feature/split/evaluation configs, target)
    fingerprint : str (data hash)
    refit : dict name -> estimator refitted on training + validation patients (empty unless asked for)
    """

    builder: FeatureBuilder
    models: dict
    splits: dict
    test: dict
    validation: dict
    comparisons: list
    reference: str | None
    train_seconds: dict
    config: dict
    fingerprint: str = ""
    extra: dict = field(default_factory=dict)
    refit: dict = field(default_factory=dict)

    @property
    def fitted(self):
        """The fitted builder, models and splits (a :class:`core.training.protocol.FittedRun`)."""
        from core.training.protocol import FittedRun
        return FittedRun(self.builder, self.models, self.splits)

    def metrics_dict(self) -> dict:
        """The content of ``metrics.json``: per-model test metrics with CIs, threshold and timings."""
        models = {}
        for name, ev in self.test.items():
            d = ev.summary()
            d["train_seconds"] = round(float(self.train_seconds.get(name, float("nan"))), 3)
            d["label"] = ev.label
            if name in self.validation:
                d["validation_auroc"] = self.validation[name].metrics["auroc"]
            models[name] = d
        out = {"target": self.config.get("target"), "reference": self.reference, "models": models,
               "comparisons": [c.to_dict() for c in self.comparisons],
               "n_patients": {k: int(len(v)) for k, v in self.splits.items()}}
        if self.extra.get("importance"):      # per model, per variable (core.analysis.importance)
            out["importance"] = self.extra["importance"]
        return out

    def leaderboard(self):
        """A DataFrame, one row per model, sorted by test AUROC (for pages and the CLI)."""
        import pandas as pd
        rows = []
        for name, ev in self.test.items():
            r = {"model": name, "label": ev.label}
            for k in ("auroc", "auprc", "brier", "min_se_ppv", "sensitivity", "ppv"):
                r[k] = ev.metrics[k]
                if k in ev.ci:
                    r[f"{k}_low"], r[f"{k}_high"] = ev.ci[k]
            r["threshold"] = ev.threshold
            for k in ("alarmed_before_onset", "median_warning_hours", "false_alarms_per_patient_day"):
                if k in ev.extra:             # online task: alarm behaviour at the threshold
                    r[k] = ev.extra[k]
            r["train_seconds"] = self.train_seconds.get(name, np.nan)
            rows.append(r)
        return pd.DataFrame(rows).sort_values("auroc", ascending=False).reset_index(drop=True)


def training_request(cohort: Cohort, models=None, *, preset: str = "full", features: FeatureConfig | None = None,
                     split: SplitConfig | None = None, evaluation: EvaluationConfig | None = None,
                     random_state: int = 0, refit: bool = False) -> dict:
    """The resolved configuration of one training (defaults filled in), with its ``request`` key.

    This is what ``config.json`` of the run holds (plus its fingerprint and thresholds); two trainings
    with the same ``request`` give the same run (:mod:`core.runs.reuse`), so the second one reuses the first
    (:func:`core.runs.store.find_run`).
    """
    from core.runs.reuse import request_key
    check_preset(preset)
    names = tuple(models) if models else registry.names()
    for n in names:
        registry.get(n)                      # ValueError naming the valid models
    features, split = features or default_features(cohort), split or SplitConfig()
    evaluation = evaluation or EvaluationConfig()
    config = {"preset": preset, "random_state": int(random_state), "models": list(names), "target": cohort.target,
              "task": features.task, "features": asdict(features), "split": asdict(split),
              "evaluation": asdict(evaluation), "refit": bool(refit)}
    config["request"] = request_key("train", cohort.fingerprint(), config)
    return config


def split_counts(cohort: Cohort, splits: dict) -> dict:
    """Patients (and, stay task, positive patients) per split: what a report needs of the training side.

    A run keeps only validation and test labels (in its predictions); this is the one count of the
    training patients it saves.
    """
    out = {}
    for name, ids in splits.items():
        row = {"patients": int(len(ids))}
        if cohort.labels is not None and not cohort.is_online:
            y = cohort.labels.reindex(pd.Index([str(i) for i in ids]))
            row["positives"] = int((y == 1).sum())
        out[name] = row
    return out


def _importance(res, specs, random_state: int, progress: Progress | None) -> dict:
    """Each model's variable importance on a sample of its validation patients (:mod:`core.analysis.importance`):
    saved with the run, so scoring data that lack a model's important variables can be refused."""
    from core.analysis.importance import variable_importance
    fs = (res.features or {}).get("validation")
    if fs is None:
        return {}
    variables = list(res.builder.variables_) + list(res.builder.static_columns_)
    out = {}
    for i, spec in enumerate(specs):
        if progress is not None:          # after every fit: the fraction stays where the fits left it
            progress(f"variable importance: {spec.label} ({i + 1} of {len(specs)})", 1.0)
        out[spec.name] = variable_importance(res.models[spec.name], spec.input_kind, fs, variables,
                                             random_state=random_state)
    return out


def run_experiment(cohort: Cohort, models=None, *, preset: str = "full", features: FeatureConfig | None = None,
                   split: SplitConfig | None = None, evaluation: EvaluationConfig | None = None,
                   random_state: int = 0, refit: bool = False, progress: Progress | None = None,
                   backend: Backend | None = None) -> ExperimentResult:
    """Train and compare ``models`` on one cohort with the patient-level protocol.

    Parameters
    ----------
    cohort : Cohort
        Must have labels.
    models : sequence of str, optional
        Registry names (default: all eight).
    preset : {"test", "quick", "full"}
    features, split, evaluation : configs, optional
        Default features follow the cohort's task shape (:func:`default_features`).
    random_state : int
        Seed of every model.
    refit : bool
        Also refit every model on training + validation patients after the evaluation
        (:func:`core.training.protocol.refit_models`), for prediction; the metrics stay the test ones.
    progress : callable(message, fraction), optional
        Called per model and per epoch; ``fraction`` covers the whole experiment.
    backend : Backend, optional
        Where the independent fits run (:func:`core.training.engine.make_backend`; default local).

    Returns
    -------
    ExperimentResult

    Raises
    ------
    CohortError
        Not enough labelled patients; ValueError for an unknown model name or preset.

    Examples
    --------
    >>> res = run_experiment(cohort, ["lr", "gru"], preset="quick")       # doctest: +SKIP
    >>> res.test["gru"].metrics["auroc"]                                 # doctest: +SKIP
    """
    features, split = features or default_features(cohort), split or SplitConfig()
    evaluation = evaluation or EvaluationConfig()
    config = training_request(cohort, models, preset=preset, features=features, split=split,
                              evaluation=evaluation, random_state=random_state, refit=refit)
    names = tuple(config["models"])
    specs = [registry.get(n) for n in names]
    splits = split_by_patient(cohort, split)
    res = run_protocol(cohort, specs, splits, features=features, evaluation=evaluation, preset=preset,
                       random_state=random_state, progress=progress, backend=backend)
    val_res, test_res = res.validation, res.test
    reference = _pick_reference(names, val_res)
    comparisons: list[ComparisonResult] = []
    if reference is not None:
        comparisons = adjust_for_multiplicity([res.compare(name, reference, evaluation) for name in names
                                               if name != reference], {n: ev.label for n, ev in test_res.items()})
    importance = _importance(res, specs, random_state, progress)
    refitted = refit_models(cohort, res, specs, preset=preset, random_state=random_state, progress=progress,
                            backend=backend) if refit else {}
    if progress is not None:
        progress("done", 1.0)
    return ExperimentResult(builder=res.builder, models=res.models, splits=splits, test=test_res,
                            validation=val_res, comparisons=comparisons, reference=reference,
                            train_seconds=res.train_seconds, config=config, fingerprint=cohort.fingerprint(),
                            refit=refitted, extra={"data_report": cohort.report.to_dict(), "importance": importance,
                                                   "split_counts": split_counts(cohort, splits)})


def _pick_reference(names, val_res: dict) -> str | None:
    """Best classical model by *validation* AUROC (choosing on test would flatter it)."""
    pool = [n for n in names if registry.get(n).family == "classical"] or list(names)
    if len(names) < 2:
        return None
    scores = {n: val_res[n].metrics["auroc"] for n in pool}
    scores = {n: (s if np.isfinite(s) else -1.0) for n, s in scores.items()}
    return max(scores, key=scores.get)


def cross_validate(cohort: Cohort, models=None, *, preset: str = "full", n_folds: int = 5,
                   features: FeatureConfig | None = None, split: SplitConfig | None = None,
                   evaluation: EvaluationConfig | None = None, random_state: int = 0,
                   model_params: dict | None = None, progress: Progress | None = None,
                   backend: Backend | None = None):
    """Stratified K-fold cross-validation, each fold one run of the protocol.

    Fold ``k``'s patients are the test patients; the others are split again (stratified) into
    training and validation patients (``split.validation_size`` of all patients), so features and
    models are fitted on training patients and thresholds chosen on validation patients, exactly as
    in :func:`run_experiment`.

    The fits of every fold go to ``backend`` (local: fold after fold, one fold's features in memory
    at a time; Ray: every fold and model at once).

    Returns
    -------
    DataFrame
        One row per (model, fold): ``model, fold, auroc, auprc, brier, min_se_ppv, sensitivity, ppv,
        threshold, n_test, train_seconds``. Online task: the metrics are pooled over patient-hours.

    Raises
    ------
    ValueError
        ``n_folds < 2`` or an unknown model; CohortError without labels.
    """
    import pandas as pd
    check_preset(preset)
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2; got {n_folds!r}. Example: cross_validate(..., n_folds=5).")
    names = tuple(models) if models else registry.names()
    specs = [registry.get(n) for n in names]
    split = split or SplitConfig(random_state=random_state)
    features = features or default_features(cohort)
    evaluation = EvaluationConfig(threshold_rule=(evaluation or EvaluationConfig()).threshold_rule,
                                  target_sensitivity=(evaluation or EvaluationConfig()).target_sensitivity,
                                  n_bootstrap=0)
    folds = list(patient_folds(cohort, n_folds, split, random_state))
    requests = [ProtocolRequest(cohort, tuple(specs), splits, features, label=f"fold {f + 1}/{n_folds}")
                for f, splits in enumerate(folds)]
    results = run_protocols(requests, evaluation=evaluation, preset=preset, random_state=random_state,
                            model_params=model_params, progress=progress, backend=backend, keep_features=False)
    rows = []
    for f, res in enumerate(results):
        for name in names:
            m = res.test[name].metrics
            rows.append({"model": name, "fold": f, **{k: m[k] for k in ("auroc", "auprc", "brier", "min_se_ppv",
                                                                        "sensitivity", "ppv")},
                         "threshold": res.test[name].threshold, "n_test": len(res.test[name].y_true),
                         "train_seconds": res.train_seconds[name]})
    return pd.DataFrame(rows)
