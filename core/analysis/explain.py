"""Why a model predicts what it predicts: per-patient, per-variable attributions for every model family.

Every explainer returns one :class:`~core.analysis.explanation.ExplanationResult` shape, so pages and the CLI
never branch on the model family. Each family gets its fastest *faithful* explainer (why, per family, in the
module named):

* **Random forest, gradient boosting** -> ``shap.TreeExplainer`` (path-dependent TreeSHAP, exact;
  :mod:`core.analysis.exact_shap`). RF explains the probability of the positive class, gradient boosting
  its log-odds (raw score).
* **Logistic regression** -> ``shap.LinearExplainer`` on the pipeline's imputed and scaled features, summed
  per clinical variable (exact, log-odds; :mod:`core.analysis.exact_shap`).
* **SVM** (and any other tabular model) -> Kernel SHAP over **variable groups**, with the efficiency
  constraint exact and a factorised RBF kernel for the SVM (probability; :mod:`core.analysis.kernel_shap`).
* **RNN / LSTM / GRU** -> integrated gradients with torch autograd over background baselines, over time
  step x channel, channels summed per variable (final-step probability;
  :mod:`core.analysis.integrated_gradients`).

This module chooses the explainer (:func:`explainer_kind`), explains built features (:func:`explain`) and
the models of a run on chosen patients (:func:`explain_model`, :func:`explain_models`; online runs at one
hour). The result type and the views across models (:func:`compare_importance`, :func:`importance_agreement`)
are in :mod:`core.analysis.explanation`, the explanations kept with a saved run in
:mod:`core.analysis.saved_explanations`; both are re-exported here.

Budgets (:func:`default_budget`): up to 50 patients the sampled explainers use large budgets (Kernel SHAP
1024 coalitions; 16 baselines x 32 steps), beyond that smaller ones (400 coalitions; 4 baselines x 16
steps) so 500 patients of every model fit in about a minute on 2 cores. Both are arguments.

``additivity_error`` is ``max |sum(attributions) + base_value - prediction|`` over the explained patients.

A saved run's explanations are computed one model at a time, on a click (:func:`explain_run_model`: the
run's first ``n_patients`` test patients), and kept as files of the run (:func:`save_explanation`,
:func:`load_explanation`, :func:`saved_explanations`; ``analyses/explain-MODEL-nN[-hH].json``), so they
outlive the session and the report can summarise them. Their timings estimate the next one
(:func:`estimate_explain_seconds`). Risk over time is ``core.runs.store.Run.risk_table``.

Examples
--------
>>> res = explain_model(run, "gbm", cohort, ["132539", "132540"])   # doctest: +SKIP
>>> res.attributions.shape, res.output, res.additivity_error          # doctest: +SKIP
((2, 41), 'log-odds', 1.1e-15)
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from core.analysis.exact_shap import explain_linear, explain_tree
from core.analysis.explanation import ExplanationResult, compare_importance, importance_agreement, preview_ids
from core.analysis.integrated_gradients import explain_gradient
from core.analysis.kernel_shap import explain_kernel
from core.analysis.saved_explanations import (SAVED_KEYS, check_hour, check_n_patients, explanation_file,
                                              load_explanation, save_explanation, saved_explanations)
from core.data.cohort import Cohort
from core.exceptions import CohortError, InternalError, RunError
from core.features import FeatureSet
from core.models import registry
from core.training.protocol import as_fitted
from core.training.threads import limit_threads

__all__ = ["ExplanationResult", "explain", "explain_model", "explain_models", "patients_at_hour",
           "compare_importance", "importance_agreement", "DEFAULT_BACKGROUND", "DEFAULT_NSAMPLES", "MAX_BACKGROUND",
           "explainer_kind", "default_budget", "explain_run_model", "explanation_file", "save_explanation",
           "load_explanation", "saved_explanations", "estimate_explain_seconds", "SAVED_KEYS", "FEW_PATIENTS"]

#: background patients sampled from the training split, per explainer kind (k-means-summarised to 20
#: centres for Kernel SHAP; each one a baseline for integrated gradients).
DEFAULT_BACKGROUND = {"tree": 100, "linear": 200, "kernel": 200, "gradient": 4}
#: sample budget per explainer kind: Kernel SHAP coalitions, integration steps for gradients.
DEFAULT_NSAMPLES = {"tree": 0, "linear": 0, "kernel": 400, "gradient": 16}
#: up to this many patients the defaults are raised (``FEW_PATIENTS_BUDGET``): one patient's explanation
#: should be as accurate as we can make it in well under a second.
FEW_PATIENTS = 50
FEW_PATIENTS_BUDGET = {"kernel": (200, 1024), "gradient": (16, 32)}
#: the most background patients :func:`explain_models` accepts.
MAX_BACKGROUND = 1000


def default_budget(kind: str, n_patients: int) -> tuple[int, int]:
    """``(background patients, nsamples)`` used by default for an explainer kind and number of patients."""
    if n_patients <= FEW_PATIENTS and kind in FEW_PATIENTS_BUDGET:
        return FEW_PATIENTS_BUDGET[kind]
    return DEFAULT_BACKGROUND[kind], DEFAULT_NSAMPLES[kind]


def _additivity(attr: np.ndarray, base: float, pred: np.ndarray) -> float:
    if not len(pred):
        return 0.0
    return float(np.max(np.abs(attr.sum(axis=1) + base - pred)))


def _check_parts(out: dict, n_patients: int, kind: str) -> None:
    """The one result shape, whatever the family: InternalError when an explainer's parts disagree with it."""
    V = len(out["variables"])
    shapes = {"attributions": (np.shape(out["attributions"]), (n_patients, V)),
              "pred": (np.shape(out["pred"]), (n_patients,))}
    if out.get("time_attributions") is not None:
        T = len(out["times_hours"])
        shapes["time_attributions"] = (np.shape(out["time_attributions"]), (n_patients, T, V))
    for key, (got, want) in shapes.items():
        if got != want:
            raise InternalError(f"The {kind} explainer returned {key} of shape {got}; the result needs {want} "
                                f"({n_patients} patients, {V} variables).")


# --------------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------------
def explainer_kind(model) -> str:
    """``"tree"``, ``"linear"``, ``"kernel"`` or ``"gradient"``: which explainer :func:`explain` uses for ``model``."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from core.models.torchbase import TorchSequenceClassifier
    if isinstance(model, TorchSequenceClassifier):
        return "gradient"
    if isinstance(model, (RandomForestClassifier, HistGradientBoostingClassifier)):
        return "tree"
    if hasattr(model, "steps") and isinstance(model[-1], LogisticRegression):
        return "linear"
    return "kernel"


def explain(model, features: FeatureSet, background: FeatureSet | None = None, *, model_name: str = "",
            nsamples: int | None = None, random_state: int = 0, times_hours=None) -> ExplanationResult:
    """Explain a fitted model on already-built features (the family decides the explainer).

    Parameters
    ----------
    model : fitted estimator from :mod:`core.models`
    features : FeatureSet
        Patients to explain.
    background : FeatureSet, optional
        Reference patients (training patients) for the linear, kernel and gradient explainers;
        required for those, ignored by TreeSHAP.
    model_name : str
    nsamples : int, optional
        Kernel SHAP coalitions, or integration steps for sequence models (default: :func:`default_budget`).
    random_state : int
    times_hours : array of shape (n_timesteps,), optional
        Start of each step in hours (default: ``0, 1, 2, ...``).

    Returns
    -------
    ExplanationResult

    Raises
    ------
    sklearn.exceptions.NotFittedError
        The model is not fitted.
    ValueError
        No background where one is needed.
    """
    from sklearn.utils.validation import check_is_fitted
    kind = explainer_kind(model)
    check_is_fitted(model)
    if kind != "tree" and (background is None or not len(background)):
        raise ValueError(f"Explaining {model_name or type(model).__name__} needs background patients (training "
                         "patients); pass background=FeatureSet of a sample of them.")
    nsamples = default_budget(kind, len(features))[1] if nsamples is None else int(nsamples)
    if kind in ("kernel", "gradient") and nsamples < 1:
        raise ValueError(f"nsamples must be >= 1 for the {kind} explainer; got {nsamples}. Example: nsamples=200.")
    rng = np.random.default_rng(random_state)
    if kind != "gradient":
        import shap  # noqa: F401 - imported before the clock starts: the first import takes seconds
    t0 = time.perf_counter()
    with limit_threads():                      # the one thread rule (core.training.threads), as for fitting
        if kind == "gradient":
            T = features.X_seq.shape[1]
            th = np.arange(T, dtype=float) if times_hours is None else np.asarray(times_hours, dtype=float)
            out = explain_gradient(model, features, background, nsamples, rng, th)
        else:
            fn = {"tree": explain_tree, "linear": explain_linear, "kernel": explain_kernel}[kind]
            out = fn(model, features, background, nsamples, rng)
    seconds = time.perf_counter() - t0
    _check_parts(out, len(features), kind)
    spec = registry.REGISTRY.get(model_name)
    return ExplanationResult(
        model_name=model_name or type(model).__name__, patient_ids=np.asarray(features.patient_ids, dtype=object),
        variables=out["variables"], attributions=np.asarray(out["attributions"], dtype=float),
        base_value=float(out["base"]), predictions=np.asarray(out["pred"], dtype=float), output=out["output"],
        method=out["method"], additivity_error=_additivity(out["attributions"], out["base"], out["pred"]),
        seconds=seconds, time_attributions=out.get("time_attributions"), times_hours=out.get("times_hours"),
        label=spec.label if spec else "", extra={"explainer": kind, "nsamples": nsamples,
                                                 "n_background": 0 if background is None else len(background)})


def _check_patients(cohort: Cohort, patient_ids) -> np.ndarray:
    ids = np.asarray([str(p) for p in patient_ids], dtype=object)
    if not len(ids):
        raise CohortError("No patients to explain. Pass at least one patient id (e.g. --patients 132539).")
    known = set(cohort.patient_ids)
    missing = [p for p in ids if p not in known]
    if missing:
        raise CohortError(f"Unknown patient id(s): {preview_ids(missing)}. Patients in the data include "
                          f"{preview_ids(cohort.patient_ids)}.")
    return np.asarray(list(dict.fromkeys(ids)), dtype=object)


def _background_ids(source, cohort: Cohort, n: int, rng: np.random.Generator) -> np.ndarray:
    """A sample of the run's training patients present in ``cohort`` (else of all patients, with a warning)."""
    known = set(cohort.patient_ids)
    pool = [p for p in map(str, source.splits.get("train", [])) if p in known]
    if len(pool) < min(n, 10):
        warnings.warn("The run's training patients are not in this data set, so the background (reference) "
                      "patients for the explanation are drawn from the data being explained. Pass the training "
                      "data to explain against the training distribution.", stacklevel=3)
        pool = list(cohort.patient_ids)
    pool = np.asarray(sorted(pool), dtype=object)
    # random order, so that any prefix is itself a random sample (models needing fewer take a prefix)
    return rng.permutation(pool) if len(pool) <= n else rng.choice(pool, size=n, replace=False)


def _take(fs: FeatureSet, idx) -> FeatureSet:
    """Rows ``idx`` of a FeatureSet (same names)."""
    from dataclasses import replace
    idx = np.asarray(idx, dtype=int)
    return replace(fs, patient_ids=fs.patient_ids[idx], X_tab=fs.X_tab[idx], X_seq=fs.X_seq[idx],
                   lengths=fs.lengths[idx])


def _online_step(fs: FeatureSet, first: int, hour: float | None, config) -> int:
    """The step to explain: that of ``hour`` on the run's grid, or the latest scored step of patient row ``first``."""
    if hour is None:
        own = fs.unit_step[fs.unit_patient == first]
        if not len(own):
            raise CohortError(f"Patient {fs.patient_ids[first]} has no scored hour in this data; pick another.")
        return int(own.max())
    step, inside = config.steps([float(hour)])
    if not inside[0]:
        raise CohortError(f"Hour {hour:g} is outside the run's window (0 to {config.window_hours:g} h); pick an "
                          "hour inside the stays.")
    return int(step[0])


def patients_at_hour(run, cohort: Cohort, patient_ids, hour: float) -> list[str]:
    """Online run: the patients of ``patient_ids`` with a scored hour in the step of ``hour`` (still in the stay)."""
    builder = as_fitted(run).builder
    fs = builder.transform(cohort, _check_patients(cohort, patient_ids))
    step = builder.config.steps([float(hour)])[0][0]
    have = set(fs.patient_ids[fs.unit_patient[fs.unit_step == step]])
    return [p for p in fs.patient_ids if p in have]


def _at_step(full: FeatureSet, rows, bg_rows, step: int):
    """Stay-like views of an online FeatureSet at one step: each patient's row there and its sequence so far.

    Returns ``(explained, background)``; explained patients without a scored hour at ``step`` are left out.
    """
    from dataclasses import replace
    key = {(int(p), int(k)): u for u, (p, k) in enumerate(zip(full.unit_patient, full.unit_step))}
    keep = [r for r in rows if (r, step) in key]
    if not keep:
        raise CohortError(f"None of the chosen patients has a scored hour at step {step} (their stays end "
                          "earlier); pick an earlier hour.")

    def view(rs, units):
        rs = np.asarray(rs, dtype=int)
        return replace(full, patient_ids=full.patient_ids[rs], X_tab=full.X_tab[np.asarray(units, dtype=int)],
                       X_seq=full.X_seq[rs, :step + 1], lengths=np.full(len(rs), step + 1),
                       unit_patient=None, unit_step=None, unit_time=None)

    fs = view(keep, [key[(r, step)] for r in keep])
    bg_keep, bg_units = [], []
    for r in bg_rows:          # background: the same hour, or the latest scored hour before it
        own = np.flatnonzero((full.unit_patient == r) & (full.unit_step <= step))
        if len(own):
            bg_keep.append(r)
            bg_units.append(own[-1])
    return fs, (view(bg_keep, bg_units) if bg_keep else None)


def explain_model(run, name: str, cohort: Cohort, patient_ids=None, *, background=None,
                  nsamples: int | None = None, random_state: int = 0, hour: float | None = None) -> ExplanationResult:
    """Explain one model of a trained run (the single entry point for pages and the CLI).

    Parameters
    ----------
    run : core.runs.store.Run, core.training.experiment.ExperimentResult, core.analysis.gates.GateModels or core.training.protocol.FittedRun
        Anything with ``builder``, ``models`` and ``splits``.
    name : str
        A model of the run (``"gbm"``).
    cohort : Cohort
        Holds the patients to explain (and ideally the run's training patients, used as background).
    patient_ids : sequence of str, optional
        Default: the run's test patients present in ``cohort`` (else every patient of ``cohort``).
    background : int or sequence of str, optional
        Number of training patients sampled as the reference (default per explainer:
        :func:`default_budget`), or explicit patient ids.
    nsamples : int, optional
        Sample budget (see :func:`explain`).
    random_state : int
    hour : float, optional
        Online runs: the patient-hour to explain (see :func:`explain_models`).

    Returns
    -------
    ExplanationResult

    Raises
    ------
    RunError
        ``name`` is not a model of the run (the message lists those that are).
    CohortError
        Unknown patient ids.

    Examples
    --------
    >>> res = explain_model(load_run("runs/quick"), "gru", cohort, ["132539"])   # doctest: +SKIP
    >>> res.time_attributions.shape                                              # doctest: +SKIP
    (1, 48, 41)
    """
    return explain_models(run, [name], cohort, patient_ids, background=background,
                          nsamples=nsamples, random_state=random_state, hour=hour)[0]


def explain_models(run, names, cohort: Cohort, patient_ids=None, *, background=None,
                   nsamples: int | None = None, random_state: int = 0,
                   hour: float | None = None) -> list[ExplanationResult]:
    """:func:`explain_model` for several models on the same patients (for :func:`compare_importance`).

    Features are built once for the patients and the background (the costly part on a large cohort);
    each model takes the background size its explainer needs (a prefix of one random sample).
    Parameters and errors as in :func:`explain_model`.

    Online runs explain one patient-hour per patient: the risk at ``hour`` (hours on the data's time
    axis; default: the latest scored hour of the first patient). Each explained patient must have a
    scored hour in that step (patients whose stay ended earlier are left out; if none is left a
    CohortError says so). Classical models are explained on that hour's feature row; sequence models
    on the sequence up to and including that hour (the risk there, exactly what was scored). Background
    rows come from training patients at the same hour (or their latest hour before it).
    """
    run = as_fitted(run)
    models = run.models
    names = list(names)
    for name in names:
        if name not in models:
            raise RunError(f"Model {name!r} is not in this run; choose one of: {', '.join(models) or '(none)'}.")
    builder = run.builder
    rng = np.random.default_rng(random_state)
    if patient_ids is None:
        known = set(cohort.patient_ids)
        test = [p for p in map(str, run.splits.get("test", [])) if p in known]
        patient_ids = test or list(cohort.patient_ids)
    ids = _check_patients(cohort, patient_ids)
    kinds = {n: explainer_kind(models[n]) for n in names}
    for n in names:
        spec = registry.REGISTRY.get(n)
        if spec is not None and (spec.input_kind == "sequence") != (kinds[n] == "gradient"):
            raise RunError(f"Model {n!r} is registered as {spec.input_kind} but is a {type(models[n]).__name__}; "
                           "the run is inconsistent: train again.")
    needs = {n: (default_budget(k, len(ids))[0] if background is None or not np.isscalar(background)
                 else int(background)) for n, k in kinds.items() if k != "tree"}
    for n_bg in needs.values():
        if not 1 <= n_bg <= MAX_BACKGROUND:
            raise ValueError(f"background must be between 1 and {MAX_BACKGROUND} patients; got {n_bg}. "
                             "Example: background=100.")
    if not needs:
        bg_ids = np.asarray([], dtype=object)
    elif background is not None and not np.isscalar(background):
        bg_ids = _check_patients(cohort, background)
        needs = {n: len(bg_ids) for n in needs}            # explicit ids: every model uses all of them
    else:
        bg_ids = _background_ids(run, cohort, max(needs.values()), rng)
    # one transform for patients + background
    pos = {p: i for i, p in enumerate(ids)}
    extra = [p for p in bg_ids if p not in pos]
    full = builder.transform(cohort, np.asarray(list(ids) + extra, dtype=object))
    for p in extra:
        pos[p] = len(pos)
    cfg = builder.config
    times = np.arange(cfg.n_steps, dtype=float) * float(cfg.bin_hours)
    if full.online:
        step = _online_step(full, pos[ids[0]], hour, cfg)
        fs, bg_all = _at_step(full, [pos[p] for p in ids], [pos[p] for p in bg_ids], step)
        times = times[:step + 1]
    else:
        fs = _take(full, [pos[p] for p in ids])
        bg_all = _take(full, [pos[p] for p in bg_ids]) if len(bg_ids) else None
    out = []
    for n in names:
        bg = None if n not in needs else _take(bg_all, np.arange(min(needs[n], len(bg_all))))
        out.append(explain(models[n], fs, bg, model_name=n, nsamples=nsamples, random_state=random_state,
                           times_hours=times))
    return out



# --------------------------------------------------------------------------------------------
# one model of a saved run, on demand (kept with the run: core.analysis.saved_explanations)
# --------------------------------------------------------------------------------------------
def estimate_explain_seconds(records, model: str, n_patients: int) -> float | None:
    """Expected seconds to explain ``model`` on ``n_patients`` patients, from earlier measurements.

    The measurement of the same model nearest in patients is scaled linearly in patients. Measurements
    on the same side of :data:`FEW_PATIENTS` as ``n_patients`` are preferred (the sampled explainers use a
    larger budget up to there, see :func:`default_budget`); ties go to the larger measurement.

    Parameters
    ----------
    records : iterable of dict
        With ``model``, ``n_patients`` (> 0) and ``seconds`` (finite, >= 0), e.g. :func:`saved_explanations`
        of any runs (or the ``n_explained`` patients, when a record has it, since those were timed).
        Other records are ignored.
    model : str
    n_patients : int

    Returns
    -------
    float or None
        None when no usable measurement of ``model`` exists.

    Examples
    --------
    >>> estimate_explain_seconds([{"model": "gru", "n_patients": 100, "seconds": 8.0}], "gru", 200)
    16.0
    """
    n = check_n_patients(n_patients)
    usable = []
    for r in records:
        if not isinstance(r, dict) or r.get("model") != model:
            continue
        try:
            done = r.get("n_explained") or r.get("n_patients")
            m, sec = int(done), float(r.get("seconds"))
        except (TypeError, ValueError):
            continue
        if m > 0 and np.isfinite(sec) and sec >= 0:
            usable.append((m, sec))
    if not usable:
        return None
    side = [u for u in usable if (u[0] <= FEW_PATIENTS) == (n <= FEW_PATIENTS)]
    m, sec = min(side or usable, key=lambda u: (abs(u[0] - n), -u[0]))
    return sec * n / m


def explain_run_model(run, name: str, cohort: Cohort, *, n_patients: int, hour: float | None = None,
                      progress=None, random_state: int = 0) -> ExplanationResult:
    """One model's global explanation on the run's first ``n_patients`` test patients present in ``cohort``.

    What the explain job runs on each click (one model). Online runs explain each patient's risk at
    ``hour`` from the test patients still in the stay then (:func:`patients_at_hour`), the first
    ``n_patients`` of them. Keep the result with :func:`save_explanation`.

    Parameters
    ----------
    run : core.runs.store.Run, or a run folder (str or Path)
    name : str
        A model of the run (``"gru"``).
    cohort : Cohort
        The data to explain (ideally the run's own, whose training patients are the background).
    n_patients : int
        Test patients to explain, in the run's test order (>= 1).
    hour : float, optional
        Online runs: the hour explained (required). Stay runs: must be None.
    progress : callable(message: str, fraction: float), optional
        Called when the explanation starts (0.0) and ends (1.0).
    random_state : int

    Returns
    -------
    ExplanationResult
        ``extra["wall_seconds"]`` holds the wall time of features + explanation (imports excluded).

    Raises
    ------
    RunError
        The data do not match the run (``Run.check_data``), ``name`` is not a model of the run, no test
        patient of the run is in ``cohort``, or an online run without ``hour``.
    CohortError
        Online run: no test patient is still in the stay at ``hour``, or ``hour`` is outside the window.
    ValueError
        ``n_patients < 1``, ``hour < 0``, or an ``hour`` for a stay run.

    Examples
    --------
    >>> res = explain_run_model(load_run("runs/quick"), "gru", cohort, n_patients=50)   # doctest: +SKIP
    >>> save_explanation(run.folder, res, n_patients=50, hour=None,
    ...                  data_fingerprint=cohort.fingerprint())                          # doctest: +SKIP
    'explain-gru-n50.json'
    """
    from dataclasses import replace
    from pathlib import Path

    from core.runs.store import load_run
    n = check_n_patients(n_patients)
    h = check_hour(hour)
    if isinstance(run, (str, Path)):
        run = load_run(run)
    run.check_data(cohort)
    if name not in run.models:
        raise RunError(f"Model {name!r} is not in the run {run.name}; choose one of: "
                       f"{', '.join(run.models) or '(none)'}.")
    if run.online and h is None:
        raise RunError(f"The run {run.name} predicts every hour of the stay: pass the hour to explain "
                       f"(between 0 and {run.builder.config.window_hours:g} h), e.g. hour=24.")
    if not run.online and h is not None:
        raise ValueError(f"hour is for online runs; the run {run.name} predicts once per stay. Pass hour=None.")
    known = set(cohort.patient_ids)
    test = [str(p) for p in run.splits.get("test", [])]
    ids = [p for p in test if p in known]
    if not ids:
        raise RunError(f"None of the {len(test)} test patients of the run {run.name} (e.g. {preview_ids(test, 3)}) is in "
                       "the data loaded now, so there is nothing to explain. Load the data the run was trained on, "
                       "or pick a run trained on these data.")
    if explainer_kind(run.models[name]) != "gradient":
        import shap  # noqa: F401 - imported before the clock starts, as in explain()
    label = registry.REGISTRY[name].label if name in registry.REGISTRY else name
    t0 = time.perf_counter()
    if h is not None:
        ids = patients_at_hour(run, cohort, ids, h)
        if not ids:
            raise CohortError(f"No test patient of the run {run.name} is still in the stay at hour {h:g}; "
                              "pick an earlier hour.")
    ids = ids[:n]
    if progress is not None:
        progress(f"explaining {label} on {len(ids)} test patient(s)", 0.0)
    res = explain_models(run, [name], cohort, ids, hour=h, random_state=random_state)[0]
    res = replace(res, extra={**res.extra, "wall_seconds": time.perf_counter() - t0})
    if progress is not None:
        progress(f"explained {label} in {res.extra['wall_seconds']:.1f} s", 1.0)
    return res
