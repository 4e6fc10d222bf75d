"""Why a model predicts what it predicts: per-patient, per-variable attributions for every model family.

Every explainer returns one :class:`ExplanationResult` shape, so pages and the CLI never branch on the
model family. Each family gets its fastest *faithful* explainer (why, per family):

* **Random forest, gradient boosting** -> ``shap.TreeExplainer`` (path-dependent TreeSHAP). Exact
  Shapley values of the tree ensemble in polynomial time; no background needed (the trees' own
  training cover is the reference distribution), NaN follows each split's learned default branch.
  RF explains the probability of the positive class, gradient boosting its log-odds (raw score).
* **Logistic regression** -> ``shap.LinearExplainer`` on the pipeline's *transformed* space
  (after median imputation + missing indicators + scaling, where the model is exactly linear), with
  an independent masker over background patients. Each transformed column (a value or its
  missing-indicator) is mapped back to its clinical variable and summed there. Explains log-odds; exact.
* **SVM** (and any other tabular model) -> Kernel SHAP over **variable groups** (~40 players instead
  of ~340 features): a coalition keeps the patient's values for the variables in it and takes the
  others from background patients (k-means summary). The Shapley-kernel regression is solved for all
  patients at once with the efficiency constraint (sum of attributions = f(x) - base, exactly). For the
  RBF SVM the kernel factorises over variable groups, so masked predictions are computed from
  per-group squared distances instead of re-running libsvm on full rows (checked against the model's
  own ``predict_proba``; falls back to the black box if they disagree). Explains the calibrated probability.
* **RNN / LSTM / GRU** -> integrated gradients with torch autograd, averaged over several background
  sequences as baselines (expected gradients on a fixed Gauss-Legendre grid instead of random points).
  Attributions are over time step x channel; the value, mask and time-gap channels of a variable are
  summed into that variable. Integrated gradients satisfies completeness, so the additivity error is
  measurable and only comes from the finite integration grid. We use it rather than
  ``shap.GradientExplainer`` (random samples, no completeness: its error cannot be reported, and slower
  at equal accuracy) and ``shap.DeepExplainer`` (shap 0.51's torch op handlers have no RNN/GRU/LSTM).
  Explains the final-step probability (what ``predict_proba`` returns), averaged over the seed ensemble.

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

import json
import re
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from core.data.cohort import Cohort
from core.exceptions import CohortError, RunError
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


def default_budget(kind: str, n_patients: int) -> tuple[int, int]:
    """``(background patients, nsamples)`` used by default for an explainer kind and number of patients."""
    if n_patients <= FEW_PATIENTS and kind in FEW_PATIENTS_BUDGET:
        return FEW_PATIENTS_BUDGET[kind]
    return DEFAULT_BACKGROUND[kind], DEFAULT_NSAMPLES[kind]
MAX_BACKGROUND = 1000


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplanationResult:
    """Attributions of one model for a list of patients (the same shape for every model family).

    Attributes
    ----------
    model_name : str
        Registry name (``"gbm"``).
    patient_ids : ndarray of str, shape (n_patients,)
    variables : list of str, length n_variables
        Clinical variables (time series first, then static attributes), same order for every model
        built from one :class:`~core.features.FeatureBuilder`.
    attributions : ndarray of float, shape (n_patients, n_variables)
        Contribution of each variable to ``predictions`` relative to ``base_value`` (in ``output`` units).
    base_value : float
        Expected output over the background (what the model says knowing nothing about the patient).
    predictions : ndarray of float, shape (n_patients,)
        The explained output ``f(x)`` of each patient, in ``output`` units.
    output : {"probability", "log-odds"}
        What is explained: probability of the positive class, or its log-odds (raw score).
    method : str
        Explainer used, in words.
    additivity_error : float
        ``max |attributions.sum(1) + base_value - predictions|`` (0 up to rounding for exact explainers).
    seconds : float
        Wall time of the explanation (features excluded).
    time_attributions : ndarray of float, shape (n_patients, n_timesteps, n_variables), optional
        Sequence models only: attributions per time step; ``time_attributions.sum(1) == attributions``.
    times_hours : ndarray of float, shape (n_timesteps,), optional
        Start of each time step in hours since admission (sequence models only).
    label : str
        Human-readable model name.
    extra : dict
        How it was computed: ``explainer`` (kind), ``nsamples``, ``n_background``; ``wall_seconds``
        (features + explanation) when it came from :func:`explain_run_model`.
    """

    model_name: str
    patient_ids: np.ndarray
    variables: list
    attributions: np.ndarray
    base_value: float
    predictions: np.ndarray
    output: str
    method: str
    additivity_error: float
    seconds: float
    time_attributions: np.ndarray | None = None
    times_hours: np.ndarray | None = None
    label: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def is_time_resolved(self) -> bool:
        """True when attributions over time are available (sequence models)."""
        return self.time_attributions is not None

    def importance(self) -> pd.Series:
        """Mean ``|attribution|`` per variable over the patients, largest first."""
        imp = pd.Series(np.abs(self.attributions).mean(axis=0), index=list(self.variables), name=self.model_name)
        return imp.sort_values(ascending=False)

    def time_importance(self) -> pd.DataFrame | None:
        """Mean ``|attribution|`` per variable (rows) and time step (columns, hours); None for order-free models."""
        if self.time_attributions is None:
            return None
        return pd.DataFrame(np.abs(self.time_attributions).mean(axis=0).T, index=list(self.variables),
                            columns=np.asarray(self.times_hours, dtype=float))

    def patient(self, patient_id: str) -> pd.DataFrame:
        """One patient's attributions: columns ``variable, attribution`` (+ ``time_hours`` when time-resolved).

        Raises
        ------
        CohortError
            The patient was not explained.
        """
        i = self.index_of(patient_id)
        if self.time_attributions is None:
            return pd.DataFrame({"variable": list(self.variables), "attribution": self.attributions[i]})
        T, V = self.time_attributions.shape[1:]
        return pd.DataFrame({"time_hours": np.repeat(np.asarray(self.times_hours, float), V),
                             "variable": list(self.variables) * T,
                             "attribution": self.time_attributions[i].reshape(-1)})

    def to_frame(self) -> pd.DataFrame:
        """Long rows ``patient_id, time, variable, attribution``.

        ``time`` is the start of the hourly step for sequence models and empty (NaN) for order-free
        (tabular) models, whose attributions are per variable only.
        """
        ids = np.asarray(self.patient_ids, dtype=object)
        V = len(self.variables)
        if self.time_attributions is None:
            n = len(ids)
            return pd.DataFrame({"patient_id": np.repeat(ids, V), "time": np.full(n * V, np.nan),
                                 "variable": list(self.variables) * n,
                                 "attribution": self.attributions.reshape(-1)})
        n, T, _ = self.time_attributions.shape
        return pd.DataFrame({"patient_id": np.repeat(ids, T * V),
                             "time": np.tile(np.repeat(np.asarray(self.times_hours, float), V), n),
                             "variable": list(self.variables) * (n * T),
                             "attribution": self.time_attributions.reshape(-1)})

    def to_dict(self) -> dict:
        """Every field as plain, strict-JSON values (``json.dumps(..., allow_nan=False)`` accepts it).

        Arrays become (nested) lists of Python floats, which ``json`` writes and reads back exactly
        (shortest round-trip repr). Non-finite numbers, in arrays and scalars alike, are encoded as
        ``None`` (NaN), ``"inf"`` and ``"-inf"``; :meth:`from_dict` decodes them. ``patient_ids`` and
        ``variables`` become lists of str, the optional arrays stay ``None`` when absent, and ``extra``
        is converted recursively (tuples become lists, numpy scalars Python ones; a NaN there comes back
        as ``None``).

        Examples
        --------
        >>> text = json.dumps(res.to_dict(), allow_nan=False)                  # doctest: +SKIP
        >>> ExplanationResult.from_dict(json.loads(text)).attributions.shape    # doctest: +SKIP
        (50, 41)
        """
        return {"model_name": str(self.model_name), "patient_ids": [str(p) for p in self.patient_ids],
                "variables": [str(v) for v in self.variables], "attributions": _encode_array(self.attributions),
                "base_value": _encode_value(self.base_value), "predictions": _encode_array(self.predictions),
                "output": str(self.output), "method": str(self.method),
                "additivity_error": _encode_value(self.additivity_error), "seconds": _encode_value(self.seconds),
                "time_attributions": (None if self.time_attributions is None
                                      else _encode_array(self.time_attributions)),
                "times_hours": None if self.times_hours is None else _encode_array(self.times_hours),
                "label": str(self.label), "extra": _encode_value(self.extra)}

    @classmethod
    def from_dict(cls, d: dict) -> ExplanationResult:
        """The result written by :meth:`to_dict` (after a JSON round trip or not).

        Raises
        ------
        ValueError
            A key is missing, or an array does not have the shape its patients, variables and times give.
        """
        need = ("model_name", "patient_ids", "variables", "attributions", "base_value", "predictions", "output",
                "method", "additivity_error", "seconds")
        missing = [k for k in need if k not in d] if isinstance(d, dict) else list(need)
        if missing:
            raise ValueError(f"Not an ExplanationResult dict: {', '.join(missing)} missing. Pass the dict written by "
                             "ExplanationResult.to_dict (or explain the model again).")
        ids = np.asarray([str(p) for p in d["patient_ids"]], dtype=object)
        variables = [str(v) for v in d["variables"]]
        n, V = len(ids), len(variables)
        times = None if d.get("times_hours") is None else _decode_array(d["times_hours"], (-1,), "times_hours")
        time_attr = (None if d.get("time_attributions") is None else
                     _decode_array(d["time_attributions"], (n, -1 if times is None else len(times), V),
                                   "time_attributions"))
        return cls(model_name=str(d["model_name"]), patient_ids=ids, variables=variables,
                   attributions=_decode_array(d["attributions"], (n, V), "attributions"),
                   base_value=_decode_value(d["base_value"]),
                   predictions=_decode_array(d["predictions"], (n,), "predictions"), output=str(d["output"]),
                   method=str(d["method"]), additivity_error=_decode_value(d["additivity_error"]),
                   seconds=_decode_value(d["seconds"]), time_attributions=time_attr, times_hours=times,
                   label=str(d.get("label", "")), extra=_decode_extra(d.get("extra") or {}))

    def index_of(self, patient_id) -> int:
        hits = np.flatnonzero(np.asarray(self.patient_ids, dtype=object) == str(patient_id))
        if not len(hits):
            raise CohortError(f"Patient {patient_id!r} was not explained by {self.model_name!r}; explained: "
                              f"{_preview(self.patient_ids)}. Pass it in patient_ids.")
        return int(hits[0])


#: how non-finite floats are written in JSON (``to_dict``), and read back.
_NONFINITE = {"inf": np.inf, "-inf": -np.inf}


def _encode_float(x: float):
    x = float(x)
    if np.isfinite(x):
        return x
    return None if np.isnan(x) else ("inf" if x > 0 else "-inf")


def _encode_array(a) -> list:
    a = np.asarray(a, dtype=float)
    if np.isfinite(a).all():
        return a.tolist()                                        # Python floats: exact through json
    return np.vectorize(_encode_float, otypes=[object])(a).tolist() if a.size else a.tolist()


def _encode_value(o):
    """Scalars and containers (``extra``): numpy to Python, non-finite floats encoded as in :func:`_encode_float`."""
    if isinstance(o, dict):
        return {str(k): _encode_value(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, np.ndarray)):
        return [_encode_value(v) for v in list(o)]
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return _encode_float(o)
    return o


def _decode_value(v) -> float:
    if v is None:
        return float("nan")
    if isinstance(v, str):
        if v not in _NONFINITE:
            raise ValueError(f"Expected a number, null, 'inf' or '-inf' in an explanation; got {v!r}. "
                             "Explain the model again.")
        return float(_NONFINITE[v])
    return float(v)


def _decode_array(values, shape: tuple, what: str) -> np.ndarray:
    flat = np.asarray(values, dtype=object).reshape(-1)
    if any(v is None or isinstance(v, str) for v in flat):
        flat = np.array([_decode_value(v) for v in flat], dtype=float)
    try:
        return np.asarray(flat, dtype=float).reshape(shape)
    except ValueError:
        raise ValueError(f"{what} of the explanation has {flat.size} values, which do not fit the shape "
                         f"{tuple(shape)} its patients, times and variables give. Explain the model again.") from None


def _decode_extra(o):
    """``extra`` back from :func:`_encode_value` ("inf"/"-inf" -> float; a NaN written as None stays None)."""
    if isinstance(o, dict):
        return {k: _decode_extra(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_decode_extra(v) for v in o]
    if isinstance(o, str) and o in _NONFINITE:
        return float(_NONFINITE[o])
    return o


def _preview(ids, n: int = 8) -> str:
    ids = [str(i) for i in ids]
    return ", ".join(ids[:n]) + (f", ... ({len(ids)} in all)" if len(ids) > n else "")


def _additivity(attr: np.ndarray, base: float, pred: np.ndarray) -> float:
    if not len(pred):
        return 0.0
    return float(np.max(np.abs(attr.sum(axis=1) + base - pred)))


def _group(matrix: np.ndarray, column_variables, variables) -> np.ndarray:
    """Sum columns (last axis) that belong to the same variable: (..., n_cols) -> (..., n_variables)."""
    index = {v: j for j, v in enumerate(variables)}
    onehot = np.zeros((len(column_variables), len(variables)))
    onehot[np.arange(len(column_variables)), [index[v] for v in column_variables]] = 1.0
    return matrix @ onehot


def _unique(seq) -> list[str]:
    return list(dict.fromkeys(str(s) for s in seq))


# --------------------------------------------------------------------------------------------
# classical: trees
# --------------------------------------------------------------------------------------------
def _explain_tree(model, fs: FeatureSet, bg: FeatureSet | None, nsamples, rng) -> dict:
    import shap
    from sklearn.ensemble import HistGradientBoostingClassifier

    X = fs.X_tab
    variables = _unique(fs.tab_variables)
    # Path-dependent TreeSHAP: exact, needs no background, and handles NaN via each node's default branch.
    explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    sv = np.asarray(explainer.shap_values(X, check_additivity=False), dtype=float)
    base = np.asarray(explainer.expected_value, dtype=float).reshape(-1)
    pos = int(np.flatnonzero(model.classes_ == model.classes_[-1])[0])
    if isinstance(model, HistGradientBoostingClassifier):
        output, pred = "log-odds", np.asarray(model.decision_function(X), dtype=float).reshape(-1)
        sv, base = (sv[..., -1] if sv.ndim == 3 else sv), float(base[-1])
    else:
        output, pred = "probability", np.asarray(model.predict_proba(X), dtype=float)[:, pos]
        sv, base = (sv[..., pos] if sv.ndim == 3 else sv), float(base[pos] if len(base) > 1 else base[0])
    return {"attributions": _group(sv, fs.tab_variables, variables), "variables": variables, "base": base,
            "pred": pred, "output": output, "method": "TreeSHAP (shap.TreeExplainer, path-dependent, exact)"}


# --------------------------------------------------------------------------------------------
# classical: linear
# --------------------------------------------------------------------------------------------
def _transformed_variables(pipe, tab_variables) -> list[str]:
    """Clinical variable of each column after the pipeline's pre-processing (values, then missing indicators)."""
    imputer = pipe.named_steps.get("impute")
    cols = list(tab_variables)
    if imputer is not None and getattr(imputer, "indicator_", None) is not None:
        cols += [tab_variables[j] for j in imputer.indicator_.features_]
    return cols


def _explain_linear(pipe, fs: FeatureSet, bg: FeatureSet, nsamples, rng) -> dict:
    import shap

    pre, lr = pipe[:-1], pipe[-1]
    Z, Zb = pre.transform(fs.X_tab), pre.transform(bg.X_tab)
    zvars = _transformed_variables(pipe, fs.tab_variables)
    if Z.shape[1] != len(zvars):
        raise RunError(f"The logistic-regression pipeline produced {Z.shape[1]} columns, expected {len(zvars)} "
                       "(features + missing indicators). The model does not match this version: train again.")
    explainer = shap.LinearExplainer(lr, shap.maskers.Independent(Zb, max_samples=len(Zb)))
    sv = np.asarray(explainer.shap_values(Z), dtype=float)
    sv = sv[..., -1] if sv.ndim == 3 else sv
    base = float(np.asarray(explainer.expected_value, dtype=float).reshape(-1)[-1])
    variables = _unique(fs.tab_variables)
    return {"attributions": _group(sv, zvars, variables), "variables": variables, "base": base,
            "pred": np.asarray(lr.decision_function(Z), dtype=float).reshape(-1), "output": "log-odds",
            "method": "linear SHAP (shap.LinearExplainer on imputed+scaled features, independent masker, exact)"}


# --------------------------------------------------------------------------------------------
# model-agnostic: Kernel SHAP over variable groups
# --------------------------------------------------------------------------------------------
def _coalitions(n_players: int, nsamples: int, rng: np.random.Generator) -> np.ndarray:
    """Paired coalitions (z, 1-z) with sizes drawn from the Shapley kernel; every size-1 coalition included.

    With sizes drawn proportional to ``(M-1) / (s (M-s))`` and uniform subsets of each size, equal
    regression weights give the Shapley kernel (Lundberg & Lee 2017; Covert & Lee 2021).
    """
    M = n_players
    if M <= 12 and 2 ** M - 2 <= nsamples:      # few players: enumerate every coalition (exact)
        codes = np.arange(1, 2 ** M - 1)
        Z = ((codes[:, None] >> np.arange(M)[None, :]) & 1).astype(float)
        s = Z.sum(1)
        from scipy.special import comb
        w = (M - 1) / (comb(M, s) * s * (M - s))
        return Z, w
    sizes = np.arange(1, M)
    p = (M - 1) / (sizes * (M - sizes))
    p = p / p.sum()
    half = max(nsamples // 2, M)
    drawn = rng.choice(sizes, size=half, p=p)
    Z = np.zeros((half, M))
    for i, s in enumerate(drawn):
        Z[i, rng.choice(M, size=s, replace=False)] = 1.0
    Z = np.vstack([Z, 1.0 - Z])
    return Z, np.ones(len(Z))


def _kernel_solve(Z: np.ndarray, w: np.ndarray, values: np.ndarray, v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """Weighted least squares with the efficiency constraint, for all patients at once.

    values : (n_patients, n_coalitions); v0 (empty coalition), v1 (full) : (n_patients,)
    Returns phi of shape (n_patients, n_players) with ``phi.sum(1) == v1 - v0`` exactly.
    """
    M = Z.shape[1]
    delta = v1 - v0                                        # (n,)
    y = values - v0[:, None] - Z[:, -1][None, :] * delta[:, None]   # eliminate the last player
    A = Z[:, :-1] - Z[:, -1:]                              # (m, M-1)
    sw = np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(A * sw, (y * sw.T).T, rcond=None)    # (M-1, n)
    phi = np.empty((len(v0), M))
    phi[:, :-1] = coef.T
    phi[:, -1] = delta - coef.sum(0)
    return phi


class _BlackBoxValue:
    """v(S) for every patient: expected model output when the variables outside S come from the background."""

    def __init__(self, predict, Z: np.ndarray, B: np.ndarray, bw: np.ndarray, groups: np.ndarray) -> None:
        self.predict, self.Z, self.B, self.bw, self.groups = predict, Z, B, bw, groups

    def __call__(self, masks: np.ndarray, rows: slice) -> np.ndarray:
        Z = self.Z[rows]
        n, m, k = len(Z), len(masks), len(self.B)
        keep = masks[:, self.groups].astype(bool)              # (m, F): column kept from the patient
        out = np.empty((n, m))
        for i in range(n):
            X = np.where(keep[:, None, :], Z[i][None, None, :], self.B[None, :, :]).reshape(m * k, -1)
            out[i] = self.predict(X).reshape(m, k) @ self.bw
        return out


class _RbfSvmValue:
    """The same v(S) for an RBF SVM + sigmoid calibration, computed from per-group squared distances.

    ``exp(-gamma ||sv - r||^2) = prod_g exp(-gamma ||sv_g - r_g||^2)``, and a masked row ``r`` takes each
    group from the patient or the background, so no full row is ever rebuilt and the work is a few
    matrix products (BLAS) per batch of patients instead of libsvm on ``n x coalitions x background`` rows.
    """

    def __init__(self, svc, calibrator, Z, B, bw, groups, n_groups: int) -> None:
        self.gamma = float(svc._gamma)
        self.alpha = np.asarray(svc.dual_coef_, dtype=float).reshape(-1)
        self.b = float(np.asarray(svc.intercept_).reshape(-1)[0])
        self.cal = calibrator
        self.sv = np.asarray(svc.support_vectors_, dtype=float)                  # (nSV, F)
        self.svT = np.ascontiguousarray(self.sv.T)
        self.Gm = np.zeros((Z.shape[1], n_groups))
        self.Gm[np.arange(Z.shape[1]), groups] = 1.0
        self.sq_sv = (self.sv ** 2) @ self.Gm                                     # (nSV, G)
        self.Z, self.bw = Z, bw
        self.logB = self._log_kernel(np.asarray(B, dtype=float))                 # (k, nSV, G)
        self._masks, self._EBa = None, None

    def _log_kernel(self, Z: np.ndarray) -> np.ndarray:
        """Per-group log-kernel ``-gamma ||sv_g - z_g||^2`` of each row of Z with each support vector: (n, nSV, G)."""
        n, F = Z.shape
        G = self.Gm.shape[1]
        # Cross terms per group as ONE large product: row (i, g) of Zg keeps only group g's columns of Z[i].
        # (41 tiny products with ~9 inner columns each are ~5x slower in BLAS than this one.)
        Zg = (Z[:, None, :] * self.Gm.T[None]).reshape(n * G, F)
        cross = (Zg @ self.svT).reshape(n, G, -1).transpose(0, 2, 1)
        d = ((Z ** 2) @ self.Gm)[:, None, :] + self.sq_sv[None] - 2.0 * cross
        return -self.gamma * np.maximum(d, 0.0)

    def __call__(self, masks: np.ndarray, rows: slice) -> np.ndarray:
        if self._masks is None or self._masks.shape != masks.shape or not np.array_equal(self._masks, masks):
            # background part of the kernel, shared by all patients: alpha * exp((1 - mask) @ logB) -> (m, nSV, k)
            self._masks = masks.copy()
            self._EBa = np.exp(np.einsum("mg,ksg->msk", 1.0 - masks, self.logB)) * self.alpha[None, :, None]
        L = self._log_kernel(self.Z[rows])                                      # (n, nSV, G)
        n, S, G = L.shape
        m = len(masks)
        out = np.empty((n, m))
        for i in range(0, n, 8):
            Lb = L[i:i + 8]
            ea = np.exp(masks @ Lb.reshape(-1, G).T).reshape(m, len(Lb), S)     # (m, b, nSV) patient part
            dec = np.matmul(ea, self._EBa) + self.b                             # (m, b, k)
            proba = np.asarray(self.cal.predict(dec.reshape(-1)), dtype=float).reshape(dec.shape)
            out[i:i + 8] = (proba @ self.bw).T
        return out


def _svm_parts(pipe):
    """(svc, calibrator) of a Pipeline(... CalibratedClassifierCV(SVC(rbf), ensemble=False)), else None."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC
    cal = pipe[-1] if hasattr(pipe, "steps") else None
    if not isinstance(cal, CalibratedClassifierCV) or len(getattr(cal, "calibrated_classifiers_", [])) != 1:
        return None
    cc = cal.calibrated_classifiers_[0]
    svc = getattr(cc, "estimator", None)
    if not isinstance(svc, SVC) or svc.kernel != "rbf" or len(cc.calibrators) != 1:
        return None
    return svc, cc.calibrators[0]


def _explain_kernel(model, fs: FeatureSet, bg: FeatureSet, nsamples, rng) -> dict:
    from sklearn.cluster import KMeans

    has_pre = hasattr(model, "steps") and len(model.steps) > 1
    pre = model[:-1] if has_pre else None
    Z = pre.transform(fs.X_tab) if has_pre else fs.X_tab
    Zb = pre.transform(bg.X_tab) if has_pre else bg.X_tab
    zvars = _transformed_variables(model, fs.tab_variables) if has_pre else list(fs.tab_variables)
    variables = _unique(fs.tab_variables)
    groups = np.array([variables.index(v) for v in zvars])
    head = model[-1] if has_pre else model
    pos = int(np.flatnonzero(head.classes_ == head.classes_[-1])[0])

    def predict(X):
        return np.asarray(head.predict_proba(X), dtype=float)[:, pos]

    # Summarise the background with weighted k-means (in the transformed space, where NaN is imputed).
    k = min(len(Zb), 20)
    if np.isfinite(Zb).all() and len(Zb) > k:
        km = KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(2 ** 31))).fit(Zb)
        B, bw = km.cluster_centers_, np.bincount(km.labels_, minlength=k) / len(Zb)
        summary = f"k-means summary ({k} centres) of {len(Zb)} background patients"
    else:
        B, bw = Zb, np.full(len(Zb), 1.0 / len(Zb))
        summary = f"{len(Zb)} background patients"
    value = _BlackBoxValue(predict, Z, B, bw, groups)
    fast = "black-box predictions"
    parts = _svm_parts(model)
    if parts is not None:
        cand = _RbfSvmValue(parts[0], parts[1], Z, B, bw, groups, len(variables))
        check = slice(0, min(len(Z), 4))
        probe = np.vstack([np.zeros(len(variables)), np.ones(len(variables)),
                           (rng.random(len(variables)) < 0.5).astype(float)])
        if np.allclose(cand(probe, check), value(probe, check), rtol=1e-6, atol=1e-8):
            value, fast = cand, "RBF kernel factorised over variable groups"
    M = len(variables)
    masks, w = _coalitions(M, int(nsamples), rng)
    n = len(Z)
    # one set of coalitions for every patient, plus the empty one (last row): the background mean
    all_masks = np.vstack([masks, np.zeros(M)])
    values, v1 = np.empty((n, len(all_masks))), predict(Z)
    for start in range(0, n, 64):
        rows = slice(start, min(start + 64, n))
        values[rows] = value(all_masks, rows)
    values, v0 = values[:, :-1], values[:, -1]
    base = float(np.mean(v0))                   # the same for every patient: the background mean
    phi = _kernel_solve(masks, w, values, v0, v1)
    name = type(head).__name__
    return {"attributions": phi, "variables": variables, "base": base, "pred": v1, "output": "probability",
            "method": f"Kernel SHAP over {M} variable groups ({len(masks)} coalitions, {summary}; {fast}) "
                      f"of {name}"}


# --------------------------------------------------------------------------------------------
# sequence models: integrated gradients over background baselines
# --------------------------------------------------------------------------------------------
def _explain_gradient(model, fs: FeatureSet, bg: FeatureSet, nsamples, rng, times_hours) -> dict:
    import torch

    nets = list(model.module_)
    for net in nets:
        net.eval()

    def f(x: torch.Tensor) -> torch.Tensor:     # final-step probability, averaged over the seed ensemble
        return torch.stack([torch.sigmoid(net(x)[:, -1] + model.logit_shift) for net in nets]).mean(0)

    X = torch.from_numpy(np.ascontiguousarray(fs.X_seq, dtype=np.float32))
    Bk = torch.from_numpy(np.ascontiguousarray(bg.X_seq, dtype=np.float32))
    steps = max(int(nsamples), 1)
    # Gauss-Legendre nodes on [0, 1]: far more accurate than a Riemann sum for smooth (tanh/sigmoid) paths.
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.from_numpy(((nodes + 1) / 2).astype(np.float32))
    qw = torch.from_numpy((weights / 2).astype(np.float32))
    k = len(Bk)
    with torch.no_grad():
        pred = f(X).double().numpy()
        base = float(f(Bk).double().mean())
    per = max(1, 4096 // (k * steps))          # patients per batch (~4k sequences per backward pass)
    params = [p for net in nets for p in net.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:                           # input gradients only: skip the weight gradients (faster)
        p.requires_grad_(False)
    try:
        attr = _integrate(f, X, Bk, alphas, qw, per)
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    variables = _unique(fs.seq_variables)
    time_attr = _group(attr, fs.seq_variables, variables)                     # (n, T, V)
    return {"attributions": time_attr.sum(1), "time_attributions": time_attr, "times_hours": times_hours,
            "variables": variables, "base": base, "pred": pred, "output": "probability",
            "method": f"integrated gradients (torch autograd, {steps} Gauss-Legendre steps x {k} background "
                      "baselines; value, mask and time-gap channels summed per variable)"}


def _integrate(f, X, Bk, alphas, qw, per: int) -> np.ndarray:
    """Integrated gradients of ``f`` from each baseline in ``Bk`` to each row of ``X``, averaged over baselines."""
    import torch
    n, T, C = X.shape
    k, steps = len(Bk), len(alphas)
    attr = np.zeros((n, T, C))
    for start in range(0, n, per):
        x = X[start:start + per]                                              # (b, T, C)
        diff = x[:, None] - Bk[None]                                          # (b, k, T, C)
        path = Bk[None, None] + alphas[None, :, None, None, None] * diff[:, None]   # (b, S, k, T, C)
        path = path.reshape(-1, T, C).requires_grad_(True)
        grads, = torch.autograd.grad(f(path).sum(), path)
        g = torch.einsum("bskTC,s->bkTC", grads.reshape(len(x), steps, k, T, C), qw)   # path integral
        attr[start:start + per] = (g * diff).mean(1).double().numpy()
    return attr


# --------------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------------
def explainer_kind(model) -> str:
    """``"tree"``, ``"linear"``, ``"kernel"`` or ``"gradient"``: which explainer :func:`explain` uses for ``model``."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from core.models.recurrent import RecurrentClassifier
    if isinstance(model, RecurrentClassifier):
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
            out = _explain_gradient(model, features, background, nsamples, rng, th)
        else:
            fn = {"tree": _explain_tree, "linear": _explain_linear, "kernel": _explain_kernel}[kind]
            out = fn(model, features, background, nsamples, rng)
    seconds = time.perf_counter() - t0
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
        raise CohortError(f"Unknown patient id(s): {_preview(missing)}. Patients in the data include "
                          f"{_preview(cohort.patient_ids)}.")
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
# one model of a saved run, on demand; kept with the run (core.runs.store.attach_files)
# --------------------------------------------------------------------------------------------
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_]{1,40}$")
_FILE = re.compile(r"^explain-(?P<model>[A-Za-z0-9_]+)-n(?P<n>[0-9]+)(?:-h(?P<hour>[0-9.]+))?\.json$")
#: keys of a saved explanation file besides the full ``result`` (the metadata :func:`saved_explanations` lists).
SAVED_KEYS = ("model", "label", "method", "output", "n_patients", "n_explained", "hour", "data_fingerprint", "run",
              "seconds", "saved")


def _check_n_patients(n_patients) -> int:
    if isinstance(n_patients, (bool, np.bool_)) or not isinstance(n_patients, (int, np.integer)) or n_patients < 1:
        raise ValueError(f"n_patients must be a whole number of patients >= 1; got {n_patients!r}. "
                         "Example: n_patients=50.")
    return int(n_patients)


def _check_hour(hour) -> float | None:
    if hour is None:
        return None
    try:
        h = float(hour)
    except (TypeError, ValueError):
        h = float("nan")
    if not np.isfinite(h) or h < 0:
        raise ValueError(f"hour must be a number of hours >= 0 (or None for a stay run); got {hour!r}. "
                         "Example: hour=24.")
    return h


def explanation_file(model: str, n_patients: int, hour: float | None = None) -> str:
    """The file name, inside a run, of ``model``'s explanation on ``n_patients`` test patients (at ``hour``).

    ``explain-gru-n50.json`` (stay run) or ``explain-gru-n50-h24.json``, ``explain-lr-n50-h24.5.json``
    (online run at hour 24, 24.5): what was explained is the identity, so the same request finds the same file.

    Raises
    ------
    ValueError
        ``model`` is not a plain model name (letters, digits, ``_``), ``n_patients < 1`` or ``hour < 0``.

    Examples
    --------
    >>> explanation_file("gru", 50), explanation_file("lr", 100, 24.0)
    ('explain-gru-n50.json', 'explain-lr-n100-h24.json')
    """
    if not isinstance(model, str) or not _MODEL_NAME.match(model):
        raise ValueError(f"model must be a registry model name such as 'gru' (letters, digits, '_'); got {model!r}.")
    name = f"explain-{model}-n{_check_n_patients(n_patients)}"
    h = _check_hour(hour)
    if h is not None:
        name += "-h" + np.format_float_positional(h, trim="-")
    return name + ".json"


def save_explanation(run_folder, result: ExplanationResult, *, n_patients: int, hour: float | None,
                     data_fingerprint: str) -> str:
    """Keep ``result`` with its run: the file :func:`explanation_file` under the run's ``analyses/``.

    Written with :func:`core.runs.store.attach_files` (listed with its SHA-256 in the run's manifest, so it is
    verified like the run's own files); an earlier file of the same model, patients and hour is replaced.

    File format (strict JSON, UTF-8)::

        {"model": "gru", "label": "GRU", "method": "integrated gradients (...)", "output": "probability",
         "n_patients": 50,            # as requested (the identity; see n_explained)
         "n_explained": 48,           # patients actually explained (online: those still in the stay)
         "hour": 24.0 or null,        # online runs: the hour explained; stay runs: null
         "data_fingerprint": "...",   # Cohort.fingerprint() of the data explained
         "run": "quick-2024...",      # the run folder's name
         "seconds": 3.2,              # wall time: features + explanation (result.seconds if unknown)
         "saved": "2024-05-01T12:00:00.123",   # local time
         "importance": {"Lactate": 0.12, "HR": 0.05, ...},   # mean |attribution| per variable, largest first
         "result": {...}}             # ExplanationResult.to_dict()

    Parameters
    ----------
    run_folder : str or Path
        A saved run (``core.runs.store.save_run``).
    result : ExplanationResult
        From :func:`explain_run_model` (or :func:`explain_model` of that run).
    n_patients : int
        The number of test patients asked for (with ``hour``, the identity of the file).
    hour : float or None
    data_fingerprint : str

    Returns
    -------
    str
        The file name (``"explain-gru-n50.json"``), for :func:`load_explanation` and ``core.runs.store.read_attached``.

    Raises
    ------
    RunError
        The run folder fails ``core.runs.store.verify_run``.
    ValueError
        Bad ``n_patients``, ``hour`` or model name (see :func:`explanation_file`).
    """
    from pathlib import Path

    from core.runs.store import attach_files
    name = explanation_file(result.model_name, n_patients, hour)
    imp = result.importance()
    seconds = result.extra.get("wall_seconds", result.seconds)
    doc = {"model": str(result.model_name), "label": str(result.label or result.model_name),
           "method": str(result.method), "output": str(result.output), "n_patients": int(n_patients),
           "n_explained": len(result.patient_ids), "hour": _check_hour(hour), "data_fingerprint": str(data_fingerprint),
           "run": Path(run_folder).name, "seconds": _encode_float(seconds),
           "saved": datetime.now().isoformat(timespec="milliseconds"),
           "importance": {str(k): _encode_float(v) for k, v in imp.items()}, "result": result.to_dict()}
    attach_files(run_folder, {name: json.dumps(doc, allow_nan=False, separators=(",", ":"))})
    return name


def _parse_saved(name: str, content: bytes) -> dict:
    from core.runs.runfiles import parse_json
    try:
        doc = parse_json(content, name=f"analyses/{name}")     # strict, depth-limited: the one reader of run files
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not all(k in doc for k in ("model", "n_patients", "result")):
        raise RunError(f"The run's analysis file {name} is not an explanation written by this version. "
                       "Explain the model again (the new file replaces it).")
    return doc


def load_explanation(run_folder, model: str, n_patients: int, hour: float | None = None, *,
                     data_fingerprint: str | None = None) -> ExplanationResult | None:
    """The explanation kept with the run for ``model`` on ``n_patients`` test patients (at ``hour``), or None.

    Parameters
    ----------
    run_folder : str or Path
    model, n_patients, hour
        As given to :func:`save_explanation`.
    data_fingerprint : str, optional
        When given, an explanation of other data (another fingerprint) counts as absent (None).

    Raises
    ------
    RunError
        The run fails ``core.runs.store.verify_run`` (a file changed), or the file is not a saved explanation.
    """
    from core.runs.store import read_attached
    name = explanation_file(model, n_patients, hour)
    content = read_attached(run_folder, name)
    if content is None:
        return None
    doc = _parse_saved(name, content)
    if data_fingerprint is not None and doc.get("data_fingerprint") != data_fingerprint:
        return None
    try:
        return ExplanationResult.from_dict(doc["result"])
    except ValueError as err:
        raise RunError(f"The run's analysis file {name} cannot be read: {err}") from None


def saved_explanations(run_folder) -> list[dict]:
    """The explanations kept with a run: their metadata, without the arrays, newest first.

    Returns
    -------
    list of dict
        One per file: :data:`SAVED_KEYS` (``model, label, method, output, n_patients, n_explained, hour,
        data_fingerprint, run, seconds, saved``) and ``file`` (its name). Sorted by ``saved`` (newest
        first), then file name. Files that are not explanations of this version are left out with a warning.

    Raises
    ------
    RunError
        The run fails ``core.runs.store.verify_run``.
    """
    import hashlib
    from pathlib import Path

    from core.runs.store import ANALYSES, list_attached, read_attached, verify_run
    folder = Path(run_folder)
    names = [n for n in list_attached(folder) if _FILE.match(n)]
    if not names:
        return []
    listed = verify_run(folder)["files"]        # one verification for every file (each holds big arrays)
    out = []
    for name in names:
        content = (folder / ANALYSES / name).read_bytes()
        if hashlib.sha256(content).hexdigest() != listed.get(f"{ANALYSES}/{name}"):
            content = read_attached(folder, name)       # replaced meanwhile: read it verified
        try:
            doc = _parse_saved(name, content or b"")
        except RunError as err:
            warnings.warn(str(err), stacklevel=2)
            continue
        meta = {k: doc.get(k) for k in SAVED_KEYS}
        meta["seconds"] = None if meta["seconds"] is None else _decode_value(meta["seconds"])
        meta["file"] = name
        out.append(meta)
    out.sort(key=lambda m: m["file"])
    out.sort(key=lambda m: str(m["saved"] or ""), reverse=True)
    return out


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
    n = _check_n_patients(n_patients)
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
    n = _check_n_patients(n_patients)
    h = _check_hour(hour)
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
        raise RunError(f"None of the {len(test)} test patients of the run {run.name} (e.g. {_preview(test, 3)}) is in "
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


# --------------------------------------------------------------------------------------------
# one shared view across models
# --------------------------------------------------------------------------------------------
def compare_importance(results: list[ExplanationResult]) -> pd.DataFrame:
    """Mean ``|attribution|`` per variable (rows) and model (columns), normalised to sum to 1 per model.

    Parameters
    ----------
    results : list of ExplanationResult
        On the same patients (so the models are compared on equal terms).

    Returns
    -------
    DataFrame, index ``variable``, one column per model, sorted by the mean over models (largest first).

    Raises
    ------
    ValueError
        Empty list, or results on different patients.
    """
    if not results:
        raise ValueError("compare_importance needs at least one ExplanationResult; explain some models first.")
    ref = set(map(str, results[0].patient_ids))
    for r in results[1:]:
        if set(map(str, r.patient_ids)) != ref:
            raise ValueError(f"Results of {results[0].model_name!r} and {r.model_name!r} are on different patients; "
                             "explain every model on the same patient_ids before comparing them.")
    cols = {}
    for r in results:
        imp = r.importance()
        total = imp.sum()
        cols[r.model_name] = imp / total if total > 0 else imp
    table = pd.DataFrame(cols).fillna(0.0)
    table.index.name = "variable"
    return table.loc[table.mean(axis=1).sort_values(ascending=False).index]


def importance_agreement(importance) -> pd.DataFrame:
    """Spearman rank correlation of variable importance between every pair of models.

    Parameters
    ----------
    importance : DataFrame from :func:`compare_importance`, or a list of ExplanationResult

    Returns
    -------
    DataFrame (n_models, n_models), symmetric, ones on the diagonal; NaN where a model gives every
    variable the same importance (no ranking).
    """
    from scipy.stats import spearmanr
    table = compare_importance(importance) if isinstance(importance, list) else importance
    names = list(table.columns)
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            x, y = table[a].to_numpy(), table[b].to_numpy()
            rho = np.nan if np.ptp(x) == 0 or np.ptp(y) == 0 else float(spearmanr(x, y).statistic)
            out.loc[a, b] = out.loc[b, a] = rho
    return out


