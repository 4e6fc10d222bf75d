"""One runner per request kind, and the one function that decides "identical request, reuse the result".

``run_request(request, cohort, progress=None, backend=None)`` is what a job's worker process, a CLI
command and a test call; it dispatches on the request's type to the runner of its kind:

=================  ==============================================================  =================================
request            runner does                                                     result (and where it is kept)
=================  ==============================================================  =================================
TrainRequest       reuse the saved run of the identical request, else train, save  RunSummary (the run folder)
TimeOrderRequest   the time-order analysis of a saved run (trained first if none)  TimeOrderResult (run's analyses/)
ExplainRequest     one model's global explanation on the run's test patients       ExplanationResult (run's analyses/)
PredictRequest     score a cohort with a saved run                                 PredictionResult (the session)
GatesRequest       train a small GRU and LSTM to look inside                       GateModels (the session)
CrossValidateRequest  K-fold CV with a run's models, preset, features and seed     DataFrame (run's analyses/cv.json)
ValidateRequest    read and check a data source (no cohort needed)                 (Cohort or None, ValidationReport)
=================  ==============================================================  =================================
"""
from __future__ import annotations

from pathlib import Path

from core.exceptions import CoreError
from core.service.requests import (CrossValidateRequest, EvaluateRequest, ExplainRequest, GatesRequest, PairRequest,
                                   PredictRequest, SubgroupsRequest, TimeOrderRequest, TrainRequest, ValidateRequest)

__all__ = ["run_request", "request_key", "train", "find_trained", "timeorder", "explain", "predict", "gates",
           "cross_validate_run", "validate", "pair", "evaluate", "subgroups", "RUNNERS"]


def request_key(request, fingerprint: str, scope: str = "") -> str:
    """The identity of ``request`` on the data ``fingerprint`` for ``scope`` (the user): two requests with the
    same key give the same result (every seed fixed; :func:`core.runs.reuse.request_key` adds the code version)."""
    from core.runs.reuse import request_key as key
    return key(request.kind, fingerprint, request.identity(), scope=scope)


def find_trained(request: TrainRequest, cohort) -> Path | None:
    """The saved run of the identical training (same data, models, settings, seed and code) in
    ``request.reuse_dirs``, or ``None``."""
    from core.training.experiment import training_request
    from core.runs.store import find_run
    if not request.reuse_dirs:
        return None
    features, split, evaluation = request.resolved(cohort)
    key = training_request(cohort, request.models, preset=request.preset, features=features, split=split,
                           evaluation=evaluation, random_state=request.seed, refit=request.refit)["request"]
    return next((f for f in (find_run(d, key) for d in request.reuse_dirs) if f is not None), None)


def train(request: TrainRequest, cohort, progress=None, backend=None):
    """Reuse the identical saved run (:func:`find_trained`), else train, compare and save to ``request.out``.

    Returns the run's :class:`core.runs.store.RunSummary` (``reused`` says which)."""
    from core.training.experiment import run_experiment
    from core.runs.store import RunSummary, load_run, save_run
    if not request.out:
        raise CoreError("TrainRequest.out must name the run folder to write. Example: TrainRequest(out='runs/r1').")
    earlier = find_trained(request, cohort)
    if earlier is not None:
        if progress is not None:
            progress(f"reusing the identical saved run {earlier.name}", 0.5)
        summary = RunSummary.from_run(load_run(earlier))
        summary.reused = True
        return summary
    features, split, evaluation = request.resolved(cohort)
    result = run_experiment(cohort, request.models, preset=request.preset, features=features, split=split,
                            evaluation=evaluation, random_state=request.seed, refit=request.refit,
                            progress=progress, backend=backend)
    if progress is not None:
        progress("saving the run", 1.0)
    folder = save_run(result, request.out)
    return RunSummary.from_experiment(result, folder)


def _part(progress, lo: float, hi: float):
    if progress is None:
        return None
    return lambda msg, frac: progress(msg, lo + (hi - lo) * frac)


def timeorder(request: TimeOrderRequest, cohort, progress=None, backend=None):
    """The time-order analysis of the request's run (trained first when the request names none), kept with it."""
    from core.runs.store import load_run
    from core.analysis.timeorder import TimeOrderConfig, run_timeorder, save_timeorder
    folder = request.run
    if not folder:
        summary = train(request.train, cohort, _part(progress, 0.0, 0.4), backend)
        folder = str(summary.folder)
        progress = _part(progress, 0.4, 1.0)
    run = load_run(folder)
    early = tuple(m for m in request.early_models if m in run.models) or tuple(run.models)
    config = TimeOrderConfig.for_run(run, model=request.model, horizons_hours=request.horizons_hours,
                                     models=early, tiers=request.tiers)
    result = run_timeorder(cohort, config, run=run, progress=progress, backend=backend)
    save_timeorder(folder, result)
    return result


def explain(request: ExplainRequest, cohort, progress=None, backend=None):
    """One model's global explanation on the run's first test patients, kept with the run."""
    from core.analysis.explain import explain_run_model, save_explanation
    from core.runs.store import load_run
    run = load_run(request.run, models=[request.model])
    result = explain_run_model(run, request.model, cohort, n_patients=request.n_patients, hour=request.hour,
                               progress=progress)
    save_explanation(request.run, result, n_patients=request.n_patients, hour=request.hour,
                     data_fingerprint=cohort.fingerprint())
    return result


def predict(request: PredictRequest, cohort, progress=None, backend=None):
    """Score every patient of ``cohort`` with the run (:func:`core.runs.predict.predict_patients`)."""
    from core.runs.predict import predict_patients
    return predict_patients(request.run, cohort, models=list(request.models) if request.models else None,
                            progress=progress, mapping=dict(request.mapping), allow_missing=request.allow_missing)


def gates(request: GatesRequest, cohort, progress=None, backend=None):
    """Small recurrent models to look inside (:func:`core.analysis.gates.fit_gate_models`)."""
    from core.analysis.gates import fit_gate_models
    return fit_gate_models(cohort, cells=request.cells, max_patients=request.max_patients,
                           hidden_size=request.hidden_size, max_epochs=request.max_epochs,
                           random_state=request.random_state, progress=progress, backend=backend)


def cross_validate_run(request: CrossValidateRequest, cohort, progress=None, backend=None):
    """K-fold CV with the run's models, preset, features and seed; ``cv.csv`` and ``cv.json`` kept with the run.

    Returns the per-fold DataFrame (:func:`core.training.experiment.cross_validate`)."""
    import json

    from core.config import FeatureConfig
    from core.training.experiment import cross_validate
    from core.runs.export import safe_csv
    from core.runs.store import attach_files, read_json
    import pandas as pd

    from core.evaluation.cv import cv_summary, order_verdict
    from core.models import registry
    from core.runs.export import jsonable
    config = read_json(Path(request.run) / "config.json")
    features = FeatureConfig(**config["features"])
    seed, parts = int(config["random_state"]), []
    for r in range(request.repeats):       # repeat r: folds and models seeded seed + r (repeat 0: the run's own seed)
        def step(msg: str, frac: float, r=r) -> None:
            if progress is not None:
                progress(f"repeat {r + 1}/{request.repeats}: {msg}" if request.repeats > 1 else msg,
                         (r + frac) / request.repeats)
        part = cross_validate(cohort, config["models"], preset=config["preset"], n_folds=request.n_folds,
                              features=features, random_state=seed + r, progress=step, backend=backend)
        parts.append(part.assign(repeat=r))
    folds = pd.concat(parts, ignore_index=True)
    summary = cv_summary(folds).set_index("model")
    names = list(dict.fromkeys(folds["model"]))
    verdict = order_verdict(folds, {n for n in names if registry.get(n).input_kind == "sequence"}, request.n_folds,
                            labels={n: registry.get(n).label for n in names})
    attach_files(request.run, {"cv.csv": safe_csv(folds), "cv.json": json.dumps(jsonable(
        {"n_folds": request.n_folds, "repeats": request.repeats, "preset": config["preset"], "seed": seed,
         "models": summary[["auroc_mean", "auroc_std", "auprc_mean", "auprc_std"]].round(4).to_dict(orient="index"),
         "order_verdict": verdict}), indent=2)})
    return folds


def validate(request: ValidateRequest, cohort=None, progress=None, backend=None):
    """Read and check the request's data (:func:`core.data.ingest.validate_data`) with the request's ``settings`` in the
    environment: ``(cohort or None, report)``.

    Bad data never raise (the report says what is wrong, a table too large for memory included); in a job's
    worker the validation's memory is the worker's, and a cancel stops it."""
    import os

    from core.data.ingest import validate_data
    before = {k: os.environ.get(k) for k, _ in request.settings}
    os.environ.update(dict(request.settings))
    try:
        result = validate_data(request.events, request.labels, config=request.config, progress=progress)
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if progress is not None:
        progress("checked", 1.0)
    return result


#: request type -> runner ``fn(request, cohort, progress, backend) -> result``.
def pair(request: PairRequest, cohort=None, progress=None, backend=None):
    """Two runs side by side on their common test patients (:func:`core.runs.pair.compare_runs`)."""
    from core.config import EvaluationConfig
    from core.runs.pair import compare_runs
    from core.runs.store import load_run
    if progress is not None:
        progress("reopening the two runs", 0.0)
    a, b = load_run(request.a), load_run(request.b)
    if progress is not None:
        progress("pairing their test patients", 0.3)
    return compare_runs(a, b, EvaluationConfig(n_bootstrap=int(request.n_bootstrap),
                                               random_state=int(request.random_state)))


def evaluate(request: EvaluateRequest, cohort, progress=None, backend=None):
    """A saved run measured on labelled new data (:func:`core.runs.external.validate_external`)."""
    from core.config import EvaluationConfig
    from core.runs.external import validate_external
    from core.runs.store import load_run
    if progress is not None:
        progress("reopening the run", 0.0)
    import json
    import re

    from core.runs.export import jsonable
    from core.runs.store import attach_files
    result = validate_external(load_run(request.run), cohort, mapping=dict(request.mapping),
                               config=EvaluationConfig(n_bootstrap=int(request.n_bootstrap),
                                                       random_state=int(request.random_state)),
                               attributes=request.attributes, source=request.source, progress=progress,
                               allow_missing=request.allow_missing)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(str(request.source or "data")).name)[:60].strip("_") or "data"
    attach_files(request.run, {f"external-{slug}.json": json.dumps(jsonable(   # kept with the run, for its report
        {"metrics": result.metrics_dict(), "subgroups": result.subgroups.to_dict(orient="records"),
         "shift": result.shift.head(15).to_dict(orient="records")}), indent=1)})
    return result


def subgroups(request: SubgroupsRequest, cohort, progress=None, backend=None):
    """A run's test metrics per subgroup (:func:`core.evaluation.subgroups.subgroup_metrics`), attributes from ``cohort``.

    Raises RunError when the run's test patients are not in ``cohort`` (other data)."""
    from core.config import EvaluationConfig
    from core.evaluation.subgroups import subgroup_metrics
    from core.exceptions import RunError
    from core.runs.store import RunSummary, load_run
    if progress is not None:
        progress("reopening the run", 0.0)
    summary = RunSummary.from_run(load_run(request.run))
    ids = {str(p) for ev in summary.results.values() for p in ev.patient_ids}
    known = ids & set(map(str, cohort.static.index))
    if len(known) < len(ids):
        raise RunError(f"{len(ids) - len(known):,} of the run's {len(ids):,} test patients are not in the data loaded "
                       "now, so their attributes are unknown. Load the data the run was trained on to see its "
                       "subgroups.")
    if progress is not None:
        progress("measuring each subgroup", 0.2)
    import json

    from core.runs.export import jsonable
    from core.runs.store import attach_files
    table = subgroup_metrics(summary.results, cohort.static, request.attributes,
                             config=EvaluationConfig(n_bootstrap=int(request.n_bootstrap),
                                                     random_state=int(request.random_state)))
    attach_files(request.run, {"subgroups.json": json.dumps(jsonable(      # kept with the run, for its report
        {"attributes": list(request.attributes or []), "rows": table.to_dict(orient="records")}), indent=1)})
    return table


RUNNERS = {TrainRequest: train, TimeOrderRequest: timeorder, ExplainRequest: explain, PredictRequest: predict,
           GatesRequest: gates, CrossValidateRequest: cross_validate_run, ValidateRequest: validate, PairRequest: pair,
           EvaluateRequest: evaluate, SubgroupsRequest: subgroups}


def run_request(request, cohort, progress=None, backend=None):
    """Run ``request`` on ``cohort`` with the runner of its kind (see the table above).

    Raises
    ------
    TypeError
        ``request`` is not one of the request types of :mod:`core.service.requests`.
    """
    runner = RUNNERS.get(type(request))
    if runner is None:
        raise TypeError(f"Unknown request {type(request).__name__}; one of "
                        f"{', '.join(t.__name__ for t in RUNNERS)}.")
    return runner(request, cohort, progress, backend)
