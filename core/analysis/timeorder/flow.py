"""The one flow of the time-order analysis, whatever the task shape: :func:`run_timeorder`.

Patients are split once and every fit of the analysis is submitted in one batch; the ordered arm, the shuffled
arm and every model are then scored on the same test rows with shared resamples (paired). What depends on the
task shape (stay or online: the horizons fitted, the early points, how the shuffled rows pair with the ordered
ones, how scores are pooled, the verdict's words) is asked of its strategy (:mod:`core.analysis.timeorder.tasks`).
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd

from core.analysis.timeorder.config import Progress, TimeOrderConfig
from core.analysis.timeorder.results import (HORIZON_COLUMNS, AblationResult, GapResult, TimeOrderResult,
                                             describe_evidence, format_ci)
from core.analysis.timeorder.saved_run import check_run_config, run_notes, run_results
from core.analysis.timeorder.shuffle import shuffle_time_bins
from core.analysis.timeorder.tasks import (ClusterPooling, PatientPooling, auprc_score, auroc_score,
                                           best_by_validation, task_shape)
from core.analysis.timeorder.tiers import measure_tiers, split_progress
from core.data.cohort import Cohort
from core.exceptions import InternalError
from core.features import FeatureBuilder
from core.models import registry
from core.training.engine import Backend
from core.training.protocol import (ProtocolRequest, ProtocolResult, predict_units, run_protocols, split_by_patient,
                                    subsample_patients)

__all__ = ["run_timeorder"]


def run_timeorder(cohort: Cohort, config: TimeOrderConfig | None = None, *, run=None,
                  progress: Progress | None = None, backend: Backend | None = None) -> TimeOrderResult:
    """Measure how much time order matters on ``cohort``: ablation, early prediction and the gap.

    Parameters
    ----------
    cohort : Cohort
        Labelled (binary) cohort.
    config : TimeOrderConfig, optional
        With ``run``: :meth:`TimeOrderConfig.for_run` (the default); any other setting is refused.
    run : core.runs.store.Run, optional
        Analyse this saved run (:func:`core.runs.store.load_run`) on the data it was trained on: its split, feature
        builder, preset, seed and models. The ordered arm of the ablation, every full-horizon point and both
        arms of the gap are the run's own fitted models, with the test and validation risks it saved (the
        same numbers as its metrics.json); only the shuffled arm (the ablation model retrained on shuffled
        hours with the run's builder, preset and seed), the shorter horizons (stay task), the tiers and the
        missingness model are fitted here, on the run's split. Without ``run`` the analysis draws its own
        split (and optional patient subset) and trains everything.
    progress : callable(message, fraction), optional
        Called per model and per epoch; ``fraction`` covers the whole analysis.
    backend : Backend, optional
        Where the fits run (:func:`core.training.engine.make_backend`): every horizon and both ablation arms
        are independent fits, submitted together (default local: one after another).

    Returns
    -------
    TimeOrderResult
        ``run`` holds the run's name ("" without one).

    Raises
    ------
    CohortError
        No labels, too few patients of an outcome, or a test split with one outcome only.
    RunError
        ``run`` was trained on other data (another data fingerprint), ``config`` contradicts the run, or
        the run's saved predictions do not cover its split.

    Examples
    --------
    >>> res = run_timeorder(cohort, TimeOrderConfig(models=("lr", "gru"), horizons_hours=(24, 48)))  # doctest: +SKIP
    >>> res.ablation.delta, res.ablation.delta_ci                                                   # doctest: +SKIP
    >>> run = load_run("runs/my_run")                                                               # doctest: +SKIP
    >>> res = run_timeorder(cohort, TimeOrderConfig.for_run(run, horizons_hours=(12, 24)), run=run)  # doctest: +SKIP
    """
    config = check_run_config(cohort, config, run) if run is not None else (config or TimeOrderConfig())
    task = task_shape(config.features)
    task.check_cohort(cohort)
    report = progress or (lambda msg, frac: None)
    t_start = time.perf_counter()
    work = cohort if run is not None else subsample_patients(cohort, config.max_patients, config.random_state)
    splits = dict(run.splits) if run is not None else split_by_patient(work, config.split)
    task.check_split(work, splits)
    window = config.window_hours
    params = {n: dict(config.sequence_params) for n in config.models
              if registry.get(n).input_kind == "sequence"} if config.sequence_params else None

    # Every fit of the analysis is independent once the window's builder is fitted on the training
    # patients (the shuffled arm keeps its permutation-invariant statistics): one batch of requests.
    # A saved run already holds the full window's fits (its builder and models): only the rest is fitted.
    abl = registry.get(config.model)
    builder = run.builder if run is not None else FeatureBuilder(config.features_at(window)).fit(work, splits["train"])
    fit_hours = [h for h in task.fitted_hours(config) if run is None or h < window]
    requests = [ProtocolRequest(work, tuple(registry.get(n) for n in config.models_at(h)), splits,
                                builder if h == window else config.features_at(h), label=f"{h:g} h")
                for h in fit_hours]
    if abl.name not in config.models:            # the ablation model was not among the compared ones
        requests.append(ProtocolRequest(work, (abl,), splits, builder, label="ablation: on ordered hours"))
    main, rest = split_progress(report, config, sum(len(r.specs) for r in requests) + 1)
    main(f"ablation: shuffling hours within each patient (seed {config.random_state})", 0.0)
    shuffled, positions = shuffle_time_bins(work, window_hours=window, bin_hours=config.features.bin_hours,
                                            random_state=config.random_state, variables=builder.variables_,
                                            return_positions=True)
    requests.append(ProtocolRequest(shuffled, (abl,), splits, builder, label="ablation: retrained on shuffled hours"))
    results = run_protocols(requests, evaluation=config.evaluation, preset=config.preset,
                            random_state=config.random_state, model_params=params, progress=main, backend=backend)

    by_hours = dict(zip(fit_hours, results))
    if run is not None:
        by_hours[window] = run_results(run, work, splits, config, abl.name, task)
    full, retrained = by_hours[window], results[-1]
    ordered = full if abl.name in full.models else results[-2]
    horizons = pd.DataFrame(task.horizon_rows(config, by_hours), columns=HORIZON_COLUMNS)

    # -- ablation: the three arms on the ordered test rows -------------------------------------
    test, shuffled_test = full.features["test"], retrained.features["test"]
    pair = task.pair_shuffled(test, shuffled_test, positions)
    y = ordered.test[abl.name].y_true
    p_a = ordered.test[abl.name].y_proba
    p_b = retrained.test[abl.name].y_proba[pair]
    p_c = predict_units(ordered.models[abl.name], abl.input_kind, shuffled_test)[pair]
    if not np.array_equal(retrained.test[abl.name].y_true[pair], y):
        raise InternalError("The shuffled test rows do not carry the labels of the ordered rows they are paired with.")
    if not all(np.array_equal(ev.y_true, y) for ev in full.test.values()):
        raise InternalError("The arms of the analysis were not scored on the same test rows in the same order.")
    pool = task.pooling(full, config)
    ablation = _ablation(abl.name, abl.label, y, test.unit_ids, p_a, p_b, p_c, pool)

    # -- gap and tiers ------------------------------------------------------------------------
    gap = _gap(full, config.models, y, pool)
    verdict = task.verdict(ablation, gap)
    seq = (gap.sequence_model, full.test[gap.sequence_model].y_proba) if gap is not None else (abl.name, p_a)
    tiers, missing = measure_tiers(work, splits, config.features_at(window), config, full, seq, y, pool, rest,
                                   backend)
    notes = run_notes(run, abl, config)
    report("done", 1.0)
    return TimeOrderResult(ablation=ablation, horizons=horizons, gap=gap, verdict=" ".join([verdict, *notes]),
                           config=config, data_fingerprint=cohort.fingerprint(),
                           n_patients={k: int(len(v)) for k, v in splits.items()},
                           seconds=time.perf_counter() - t_start, tiers=tiers, missingness=missing,
                           run="" if run is None else run.name,
                           run_request="" if run is None else str(run.config.get("request") or ""), notes=notes)


def _ablation(name: str, label: str, y: np.ndarray, ids: np.ndarray, p_a: np.ndarray, p_b: np.ndarray,
              p_c: np.ndarray, pool: PatientPooling | ClusterPooling) -> AblationResult:
    """The three arms compared on the same rows, pooled by ``pool`` (resamples of stays, or of the patients of
    patient-hours; DeLong only where the pool gives it)."""
    d = pool.delong(y, p_a, p_b)
    delong_p = np.nan if d is None else d["p_value"]
    ci = {}
    for arm, p in (("ordered", p_a), ("shuffled", p_b), ("shuffled_test", p_c)):
        b = pool.metrics(y, p)
        ci[f"auroc_{arm}"], ci[f"auprc_{arm}"] = b["auroc"], b["auprc"]
    ab, ac = pool.paired(y, p_a, p_b), pool.paired(y, p_a, p_c)
    evidence = describe_evidence(ab["ci_low"], ab["ci_high"])
    a_auc, b_auc, c_auc = auroc_score(y, p_a), auroc_score(y, p_b), auroc_score(y, p_c)
    verdict = _ablation_sentence(label, a_auc, b_auc, ab["difference"], ab["ci_low"], ab["ci_high"], evidence)
    return AblationResult(model=name, label=label, auroc_ordered=a_auc, auroc_shuffled=b_auc,
                          auroc_shuffled_test=c_auc, ci=ci,
                          auprc={"ordered": auprc_score(y, p_a), "shuffled": auprc_score(y, p_b),
                                 "shuffled_test": auprc_score(y, p_c)},
                          delta=ab["difference"], delta_ci=(ab["ci_low"], ab["ci_high"]), delta_p=ab["p_value"],
                          delong_p=delong_p, delta_shuffled_test=ac["difference"],
                          delta_shuffled_test_ci=(ac["ci_low"], ac["ci_high"]), delta_shuffled_test_p=ac["p_value"],
                          evidence=evidence, verdict=verdict, y_true=y, proba={"ordered": p_a, "shuffled": p_b,
                                                                               "shuffled_test": p_c},
                          patient_ids=np.asarray(ids, dtype=object))


def _gap(full: ProtocolResult, models, y: np.ndarray, pool: PatientPooling | ClusterPooling) -> GapResult | None:
    """Best sequence vs best order-free model (each chosen by validation AUROC) on the same test rows, pooled by
    ``pool``: the paired bootstrap, and DeLong where the pool gives it (its AUROCs then too)."""
    seq = [n for n in models if registry.get(n).input_kind == "sequence"]
    tab = [n for n in models if registry.get(n).input_kind == "tabular"]
    if not (seq and tab):
        return None
    s, o = best_by_validation(seq, full), best_by_validation(tab, full)
    p_s, p_o = full.test[s].y_proba, full.test[o].y_proba
    b = pool.paired(y, p_s, p_o)
    d = pool.delong(y, p_s, p_o)
    if d is None:
        auc_s, auc_o, diff, delong_p = auroc_score(y, p_s), auroc_score(y, p_o), b["difference"], np.nan
    else:
        auc_s, auc_o, diff, delong_p = d["auroc_a"], d["auroc_b"], d["difference"], d["p_value"]
    gap = GapResult(s, o, registry.get(s).label, registry.get(o).label, auc_s, auc_o, diff, b["ci_low"],
                    b["ci_high"], b["p_value"], delong_p, describe_evidence(b["ci_low"], b["ci_high"]), "")
    return replace(gap, verdict=_gap_sentence(gap))


def _p(p: float) -> str:
    return "p=n/a" if not np.isfinite(p) else ("p<0.001" if p < 0.001 else f"p={p:.3f}")


def _ablation_sentence(label: str, a: float, b: float, d: float, lo: float, hi: float, evidence: str) -> str:
    meaning = {"positive": "time order carries significant information for this model",
               "negative": "the model did significantly better on shuffled hours, so it is not using order "
                           "(check training)",
               "none": "no evidence that time order carries information"}[evidence]
    return (f"On this cohort keeping time order adds {d:+.3f} AUROC {format_ci(lo, hi)} for the {label} "
            f"(ordered {a:.3f} vs retrained on shuffled hours {b:.3f}): {meaning}.")


def _gap_sentence(g: GapResult) -> str:
    # DeLong treats every row as independent: for patient-hours only the bootstrap over patients is valid
    test = f"DeLong {_p(g.delong_p)}" if np.isfinite(g.delong_p) else f"bootstrap over patients {_p(g.p_value)}"
    meaning = {"positive": "a significant advantage for modelling time order",
               "negative": "a significant disadvantage: the order-free model is better",
               "none": "no evidence of an advantage"}[g.evidence]
    return (f"The best sequence model ({g.sequence_label}, AUROC {g.auroc_sequence:.3f}) vs the best order-free "
            f"model ({g.order_free_label}, {g.auroc_order_free:.3f}): {g.difference:+.3f} AUROC "
            f"{format_ci(g.ci_low, g.ci_high)}, {test}: {meaning}.")
