"""The training protocol: split by patient, build features on training patients, fit, threshold, evaluate.

Protocol (why): every statistic (feature clipping/standardisation, imputation, scaling, early
stopping) is learned from **training** patients only; the decision threshold of each model and the
choice of the reference (best classical) model are made on **validation** patients; metrics,
confidence intervals and paired tests are reported on **test** patients only, which nothing has seen.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from core.cohort import Cohort
from core.config import EvaluationConfig, FeatureConfig, SplitConfig
from core.evaluation import (ComparisonResult, EvaluationResult, bootstrap_indices, choose_threshold, compare,
                             evaluate)
from core.exceptions import CohortError
from core.features import FeatureBuilder, FeatureSet
from core.models import registry
from core.models.base import available_threads, check_preset

__all__ = ["ExperimentResult", "run_experiment", "split_by_patient", "cross_validate", "fit_model", "Progress"]

#: ``progress(message, fraction_done)``; fraction over the whole experiment, in [0, 1].
Progress = Callable[[str, float], None]


def split_by_patient(cohort: Cohort, config: SplitConfig | None = None) -> dict[str, np.ndarray]:
    """Stratified patient-level split of the labelled patients.

    Returns
    -------
    dict with keys ``"train"``, ``"validation"``, ``"test"``: sorted arrays of patient ids (str).

    Raises
    ------
    CohortError
        No labels, or too few patients of each outcome to split.
    """
    config = config or SplitConfig()
    ids = cohort.labelled_ids
    if cohort.labels is None or len(ids) == 0:
        raise CohortError("The cohort has no labelled patients, so models cannot be trained. Load a labels "
                          "file and name the outcome column (e.g. --labels outcomes.csv --target in_hospital_death).")
    y = cohort.labels.loc[ids].to_numpy()
    counts = np.bincount(y, minlength=2)
    if counts.min() < 4:
        raise CohortError(f"Training needs at least 4 patients of each outcome; got {counts[0]} negatives and "
                          f"{counts[1]} positives. Use more patients or another target.")
    rest, test = train_test_split(ids, test_size=config.test_size, stratify=y, random_state=config.random_state)
    y_rest = cohort.labels.loc[rest].to_numpy()
    val_frac = config.validation_size / (1 - config.test_size)
    train, val = train_test_split(rest, test_size=val_frac, stratify=y_rest, random_state=config.random_state + 1)
    return {"train": np.sort(train), "validation": np.sort(val), "test": np.sort(test)}


@dataclass
class ExperimentResult:
    """Everything one comparison produced (what :mod:`core.runs` saves and reopens).

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
        return {"target": self.config.get("target"), "reference": self.reference, "models": models,
                "comparisons": [c.to_dict() for c in self.comparisons],
                "n_patients": {k: int(len(v)) for k, v in self.splits.items()}}

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
            r["train_seconds"] = self.train_seconds.get(name, np.nan)
            rows.append(r)
        return pd.DataFrame(rows).sort_values("auroc", ascending=False).reset_index(drop=True)


def fit_model(model, input_kind: str, X: np.ndarray, y: np.ndarray, progress=None):
    """Fit one registry model on its view (``"tabular"`` or ``"sequence"``) and return it.

    Sequence models report per-epoch ``progress``; OpenMP fits (forest, boosting) are capped at the
    threads the machine has free (:func:`available_threads`): two threads on a busy 2-core box stalled
    gradient boosting 30x.
    """
    from threadpoolctl import threadpool_limits
    if input_kind == "sequence":
        return model.fit(X, y, progress=progress)
    with threadpool_limits(limits=available_threads(), user_api="openmp"):
        return model.fit(X, y)


def _fit_model(name: str, preset: str, seed: int, fs: FeatureSet, y: np.ndarray, progress):
    spec = registry.get(name)
    model = spec.make(preset=preset, random_state=seed)
    return fit_model(model, spec.input_kind, fs.get(spec.input_kind), y, progress)


def _risk(model, name: str, fs: FeatureSet) -> np.ndarray:
    spec = registry.get(name)
    return np.asarray(model.predict_proba(fs.get(spec.input_kind)), dtype=float)[:, 1]


def run_experiment(cohort: Cohort, models=None, *, preset: str = "full", features: FeatureConfig | None = None,
                   split: SplitConfig | None = None, evaluation: EvaluationConfig | None = None,
                   random_state: int = 0, progress: Progress | None = None) -> ExperimentResult:
    """Train and compare ``models`` on one cohort with the patient-level protocol.

    Parameters
    ----------
    cohort : Cohort
        Must have labels.
    models : sequence of str, optional
        Registry names (default: all seven).
    preset : {"test", "quick", "full"}
    features, split, evaluation : configs, optional
    random_state : int
        Seed of every model.
    progress : callable(message, fraction), optional
        Called per model and per epoch; ``fraction`` covers the whole experiment.

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
    check_preset(preset)
    names = tuple(models) if models else registry.names()
    for n in names:
        registry.get(n)
    features, split = features or FeatureConfig(), split or SplitConfig()
    evaluation = evaluation or EvaluationConfig()
    splits = split_by_patient(cohort, split)
    report = progress or (lambda msg, frac: None)
    report("building features", 0.0)
    builder = FeatureBuilder(features).fit(cohort, splits["train"])
    fsets = {k: builder.transform(cohort, v) for k, v in splits.items()}
    ys = {k: cohort.labels.loc[v].to_numpy().astype(int) for k, v in splits.items()}
    fitted, seconds, val_res, test_res = {}, {}, {}, {}
    n_test = len(splits["test"])
    idx = bootstrap_indices(n_test, evaluation.n_bootstrap, evaluation.random_state) \
        if evaluation.n_bootstrap > 0 else None
    for i, name in enumerate(names):
        label = registry.get(name).label

        def sub(msg, frac, i=i, name=name):
            report(f"{name}: {msg}", (i + min(max(frac, 0.0), 1.0)) / len(names))

        sub("training", 0.0)
        t0 = time.perf_counter()
        model = _fit_model(name, preset, random_state, fsets["train"], ys["train"], sub)
        seconds[name] = time.perf_counter() - t0
        fitted[name] = model
        p_val = _risk(model, name, fsets["validation"])
        thr = choose_threshold(ys["validation"], p_val, evaluation.threshold_rule, evaluation.target_sensitivity)
        val_res[name] = evaluate(name, ys["validation"], p_val, thr, splits["validation"],
                                 EvaluationConfig(n_bootstrap=0), label=label)
        test_res[name] = evaluate(name, ys["test"], _risk(model, name, fsets["test"]), thr, splits["test"],
                                  evaluation, label=label, idx=idx)
        sub(f"done in {seconds[name]:.1f} s, test AUROC {test_res[name].metrics['auroc']:.3f}", 1.0)
    reference = _pick_reference(names, val_res)
    comparisons: list[ComparisonResult] = []
    if reference is not None:
        for name in names:
            if name != reference:
                comparisons.append(compare(test_res[name], test_res[reference], evaluation, idx=idx))
    report("done", 1.0)
    config = {"preset": preset, "random_state": random_state, "models": list(names), "target": cohort.target,
              "features": asdict(features), "split": asdict(split), "evaluation": asdict(evaluation)}
    return ExperimentResult(builder=builder, models=fitted, splits=splits, test=test_res, validation=val_res,
                            comparisons=comparisons, reference=reference, train_seconds=seconds, config=config,
                            fingerprint=cohort.fingerprint())


def _pick_reference(names, val_res: dict) -> str | None:
    """Best classical model by *validation* AUROC (choosing on test would flatter it)."""
    pool = [n for n in names if registry.get(n).family == "classical"] or list(names)
    if len(names) < 2:
        return None
    scores = {n: val_res[n].metrics["auroc"] for n in pool}
    scores = {n: (s if np.isfinite(s) else -1.0) for n, s in scores.items()}
    return max(scores, key=scores.get)


def cross_validate(cohort: Cohort, models=None, *, preset: str = "full", n_folds: int = 5,
                   features: FeatureConfig | None = None, random_state: int = 0,
                   progress: Progress | None = None):
    """Stratified k-fold AUROC/AUPRC per model (features refitted on each training fold).

    Returns
    -------
    DataFrame with columns ``model, fold, auroc, auprc, train_seconds``.
    """
    import pandas as pd
    from sklearn.metrics import average_precision_score
    check_preset(preset)
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2; got {n_folds!r}. Example: cross_validate(..., n_folds=5).")
    names = tuple(models) if models else registry.names()
    ids = cohort.labelled_ids
    if not len(ids):
        raise CohortError("The cohort has no labelled patients; load labels to cross-validate.")
    y = cohort.labels.loc[ids].to_numpy().astype(int)
    rows = []
    folds = list(StratifiedKFold(n_folds, shuffle=True, random_state=random_state).split(ids, y))
    for f, (tr, te) in enumerate(folds):
        fb = FeatureBuilder(features).fit(cohort, ids[tr])
        ftr, fte = fb.transform(cohort, ids[tr]), fb.transform(cohort, ids[te])
        for i, name in enumerate(names):
            if progress:
                progress(f"fold {f + 1}/{n_folds}: {name}", (f * len(names) + i) / (n_folds * len(names)))
            t0 = time.perf_counter()
            m = _fit_model(name, preset, random_state, ftr, y[tr], None)
            sec = time.perf_counter() - t0
            p = _risk(m, name, fte)
            rows.append({"model": name, "fold": f, "auroc": roc_auc_score(y[te], p),
                         "auprc": average_precision_score(y[te], p), "train_seconds": sec})
    return pd.DataFrame(rows)
