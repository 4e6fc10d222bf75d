"""How much each input variable matters to each model of a run, measured once at training and saved with it.

Scoring new data whose most important variables are missing gives risks that look like risks and are not: a
2012-trained run given the 2019 file (no GCS, no urine output) flagged 2,683 of 2,781 patients with one model
and 2 with another. To refuse that, a run must know how much each variable matters to each model.
:func:`variable_importance` measures it by grouped permutation on a sample of the run's *validation* patients
(never test patients): every feature column of one variable (tabular summaries, or the sequence channels:
values, masks, hours since measured) is shuffled across the sampled patients together, and the variable's
importance is the mean absolute change of the model's risk. A variable's *share* is its importance over the sum
of all (:func:`importance_shares`): the share of a model's attention that goes missing with it.

Changes in risk rather than in AUROC: on a few hundred validation patients a drop in AUROC is mostly noise,
while the risk change is measured on every patient. Cost: one prediction per model on (variables x sample)
rows, in chunks (about 1-2 s per model on 200 stays).
"""
from __future__ import annotations

import numpy as np

__all__ = ["variable_importance", "importance_shares", "missing_share", "SAMPLE_PATIENTS", "REFUSE_SHARE"]

#: validation patients sampled for the permutation; online runs take all the hours of half as many (a stay of the
#: 2019 data has 38 scored hours on average, so 100 stays are about 3,800 rows).
SAMPLE_PATIENTS = 200
#: scoring is refused when variables carrying more than this share of a model's importance are missing.
REFUSE_SHARE = 0.20
#: the most numbers one prediction call is given (bounds the memory of the stacked permuted copies).
_CHUNK_VALUES = 20_000_000


def _sample(fs, rng, n_max: int):
    """``fs`` restricted to at most ``n_max`` patients (all their hours, online)."""
    from dataclasses import replace
    n = len(fs.patient_ids)
    keep = np.sort(rng.choice(n, size=min(n_max, n), replace=False))
    if not fs.online:
        return replace(fs, patient_ids=fs.patient_ids[keep], X_tab=np.asarray(fs.X_tab)[keep],
                       X_seq=np.asarray(fs.X_seq)[keep], lengths=fs.lengths[keep])
    rows = np.isin(fs.unit_patient, keep)
    new_index = np.full(n, -1)
    new_index[keep] = np.arange(len(keep))
    return replace(fs, patient_ids=fs.patient_ids[keep], X_tab=np.asarray(fs.X_tab)[rows],
                   X_seq=np.asarray(fs.X_seq)[keep], lengths=fs.lengths[keep],
                   unit_patient=new_index[fs.unit_patient[rows]], unit_step=fs.unit_step[rows],
                   unit_time=fs.unit_time[rows])


def _risks(model, input_kind: str, fs) -> np.ndarray:
    from core.training.protocol import predict_units
    return predict_units(model, input_kind, fs)


def variable_importance(model, input_kind: str, fs, variables, random_state: int = 0,
                        n_patients: int = SAMPLE_PATIENTS) -> dict[str, float]:
    """Mean absolute change of ``model``'s risk when one variable's features are shuffled across patients.

    Parameters
    ----------
    model : fitted estimator
    input_kind : {"tabular", "sequence"}
        The registry's ``ModelSpec.input_kind``.
    fs : core.features.FeatureSet
        Validation patients' features (built by the run's fitted builder).
    variables : sequence of str
        The run's variables (time series and static).
    random_state : int
    n_patients : int
        Patients sampled from ``fs`` (half as many for patient-hour rows).

    Returns
    -------
    dict variable -> importance (>= 0; 0 for a variable the model's input does not hold).
    """
    from dataclasses import replace
    rng = np.random.default_rng(random_state)
    fs = _sample(fs, rng, n_patients // 2 if fs.online else n_patients)
    base = _risks(model, input_kind, fs)
    n_pat = len(fs.patient_ids)
    out = {}
    if input_kind == "tabular":
        X = np.asarray(fs.X_tab)
        cols = np.asarray(fs.tab_variables)
        # online rows are hours: shuffle whole patients (their hours' rows move with them)
        for v in variables:
            idx = np.flatnonzero(cols == v)
            if not idx.size or n_pat < 2:
                out[str(v)] = 0.0
                continue
            Xp = X.copy()
            if fs.online:
                perm = rng.permutation(n_pat)
                # each row takes the values of the same hour position of another patient where it exists,
                # else of that patient's last hour: a shuffle across patients, hour-aligned
                src = _hour_aligned(fs, perm)
                Xp[:, idx] = X[src][:, idx]
            else:
                Xp[:, idx] = X[rng.permutation(len(X))][:, idx]
            out[str(v)] = float(np.mean(np.abs(_predict_tab(model, Xp) - base)))
        return out
    S = np.asarray(fs.X_seq)
    chans = np.asarray(fs.seq_variables)
    for v in variables:
        idx = np.flatnonzero(chans == v)
        if not idx.size or n_pat < 2:
            out[str(v)] = 0.0
            continue
        Sp = S.copy()
        Sp[:, :, idx] = S[rng.permutation(n_pat)][:, :, idx]
        out[str(v)] = float(np.mean(np.abs(_risks(model, input_kind, replace(fs, X_seq=Sp)) - base)))
    return out


def _predict_tab(model, X: np.ndarray) -> np.ndarray:
    from core.training.threads import limit_threads
    out = []
    step = max(1, _CHUNK_VALUES // max(X.shape[1], 1))
    with limit_threads():
        for a in range(0, len(X), step):
            out.append(np.asarray(model.predict_proba(X[a:a + step]), dtype=float)[:, 1])
    return np.concatenate(out) if out else np.zeros(0)


def _hour_aligned(fs, perm: np.ndarray) -> np.ndarray:
    """Online rows: for each row (patient p, step k), the row of patient ``perm[p]`` at the same step, or that
    patient's nearest earlier scored step (its first when none is earlier)."""
    order = np.lexsort((fs.unit_step, fs.unit_patient))
    up, uk = fs.unit_patient[order].astype(np.int64), fs.unit_step[order].astype(np.int64)
    span = int(uk.max()) + 2 if len(uk) else 1
    keys = up * span + uk
    starts = np.searchsorted(up, np.arange(len(fs.patient_ids)))
    ends = np.searchsorted(up, np.arange(len(fs.patient_ids)), side="right")
    q = perm[fs.unit_patient]
    pos = np.searchsorted(keys, q * span + fs.unit_step.astype(np.int64), side="right") - 1
    pos = np.maximum(pos, starts[q])
    has = ends[q] > starts[q]
    return np.where(has, order[np.minimum(pos, len(order) - 1)], np.arange(len(fs.unit_patient)))


def importance_shares(importance: dict) -> dict[str, float]:
    """Each variable's share of the summed importance (0 everywhere when nothing matters)."""
    total = float(sum(max(0.0, v) for v in importance.values()))
    return {k: (max(0.0, v) / total if total > 0 else 0.0) for k, v in importance.items()}


def missing_share(importance: dict, missing) -> float:
    """The share of a model's importance carried by the ``missing`` variables."""
    shares = importance_shares(importance)
    return float(sum(shares.get(str(v), 0.0) for v in missing))
