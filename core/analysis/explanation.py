"""What an explanation is: :class:`ExplanationResult`, the one shape every explainer returns, its JSON form,
and the views across models built from it (:func:`compare_importance`, :func:`importance_agreement`).

The explainers themselves (one per model family) are in :mod:`core.analysis.exact_shap` (trees, logistic
regression), :mod:`core.analysis.kernel_shap` (any other tabular model) and
:mod:`core.analysis.integrated_gradients` (recurrent nets); :mod:`core.analysis.explain` chooses among them.
Each family attributes to columns or channels; :func:`group_by_variable` sums those into clinical variables, so
every result is per variable whatever the model read.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.exceptions import CohortError

__all__ = ["ExplanationResult", "compare_importance", "importance_agreement", "encode_float", "decode_float",
           "preview_ids", "group_by_variable", "unique_variables"]

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
                   base_value=decode_float(d["base_value"]),
                   predictions=_decode_array(d["predictions"], (n,), "predictions"), output=str(d["output"]),
                   method=str(d["method"]), additivity_error=decode_float(d["additivity_error"]),
                   seconds=decode_float(d["seconds"]), time_attributions=time_attr, times_hours=times,
                   label=str(d.get("label", "")), extra=_decode_extra(d.get("extra") or {}))

    def index_of(self, patient_id) -> int:
        """The row of ``patient_id`` in the result; CohortError when it was not explained."""
        hits = np.flatnonzero(np.asarray(self.patient_ids, dtype=object) == str(patient_id))
        if not len(hits):
            raise CohortError(f"Patient {patient_id!r} was not explained by {self.model_name!r}; explained: "
                              f"{preview_ids(self.patient_ids)}. Pass it in patient_ids.")
        return int(hits[0])


#: how non-finite floats are written in JSON (``to_dict``), and read back.
_NONFINITE = {"inf": np.inf, "-inf": -np.inf}


def encode_float(x: float):
    """``x`` as a strict-JSON value: the float itself when finite, else ``None`` (NaN), ``"inf"`` or ``"-inf"``.

    Examples
    --------
    >>> encode_float(0.5), encode_float(float("nan")), encode_float(float("-inf"))
    (0.5, None, '-inf')
    """
    x = float(x)
    if np.isfinite(x):
        return x
    return None if np.isnan(x) else ("inf" if x > 0 else "-inf")


def _encode_array(a) -> list:
    a = np.asarray(a, dtype=float)
    if np.isfinite(a).all():
        return a.tolist()                                        # Python floats: exact through json
    return np.vectorize(encode_float, otypes=[object])(a).tolist() if a.size else a.tolist()


def _encode_value(o):
    """Scalars and containers (``extra``): numpy to Python, non-finite floats encoded as in :func:`encode_float`."""
    if isinstance(o, dict):
        return {str(k): _encode_value(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, np.ndarray)):
        return [_encode_value(v) for v in list(o)]
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return encode_float(o)
    return o


def decode_float(v) -> float:
    """The float :func:`encode_float` wrote (``None`` -> NaN, ``"inf"``/``"-inf"`` -> infinities).

    Raises
    ------
    ValueError
        ``v`` is a string other than ``"inf"`` and ``"-inf"``.
    """
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
        flat = np.array([decode_float(v) for v in flat], dtype=float)
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


def preview_ids(ids, n: int = 8) -> str:
    """The first ``n`` ids, comma-separated, and how many there are in all when more (for messages).

    Examples
    --------
    >>> preview_ids(["a", "b", "c"], 2)
    'a, b, ... (3 in all)'
    """
    ids = [str(i) for i in ids]
    return ", ".join(ids[:n]) + (f", ... ({len(ids)} in all)" if len(ids) > n else "")


def group_by_variable(matrix: np.ndarray, column_variables, variables) -> np.ndarray:
    """Sum columns (last axis) that belong to the same variable: (..., n_cols) -> (..., n_variables).

    Parameters
    ----------
    matrix : ndarray of shape (..., n_cols)
        Attributions per column (tabular feature, transformed column or sequence channel).
    column_variables : sequence of str, length n_cols
        The clinical variable of each column.
    variables : sequence of str, length n_variables
        The variables of the result, in their order (every entry of ``column_variables`` among them).

    Returns
    -------
    ndarray of shape (..., n_variables)
    """
    index = {v: j for j, v in enumerate(variables)}
    onehot = np.zeros((len(column_variables), len(variables)))
    onehot[np.arange(len(column_variables)), [index[v] for v in column_variables]] = 1.0
    return matrix @ onehot


def unique_variables(seq) -> list[str]:
    """The distinct entries of ``seq`` as str, in order of first appearance (the variables of a result)."""
    return list(dict.fromkeys(str(s) for s in seq))


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


