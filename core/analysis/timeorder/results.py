"""What the time-order analysis measured, as typed results that write and read ``timeorder.json``."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.analysis.timeorder.config import TimeOrderConfig
from core.analysis.timeorder.shuffle import SHUFFLE_DESCRIPTION

__all__ = ["AblationResult", "GapResult", "TierResult", "MissingnessResult", "TimeOrderResult", "TIERS",
           "HORIZON_COLUMNS", "describe_evidence", "format_ci", "read_float"]

#: the tiers, in order: key and words.
TIERS = (("order_free", "order-free summaries"), ("time_aware", "time-aware summaries"),
         ("sequence", "sequence model"))


@dataclass(frozen=True)
class AblationResult:
    """The order ablation of one sequence model on the same test patients.

    Attributes
    ----------
    model, label : str
    auroc_ordered, auroc_shuffled, auroc_shuffled_test : float
        (a) ordered/ordered, (b) shuffled-trained on shuffled, (c) ordered-trained on shuffled.
    ci : dict of str to (low, high)
        Bootstrap CIs of the three AUROCs (keys as above) and of ``auprc_*``.
    auprc : dict of str to float
        AUPRC of the three arms (``"ordered"``, ``"shuffled"``, ``"shuffled_test"``).
    delta, delta_ci, delta_p : float, (float, float), float
        ``auroc_ordered - auroc_shuffled``, paired bootstrap CI and two-sided bootstrap p.
    delong_p : float
        DeLong p-value of the same difference.
    delta_shuffled_test, delta_shuffled_test_ci, delta_shuffled_test_p
        ``auroc_ordered - auroc_shuffled_test`` (how much the ordered model relies on order).
    evidence : {"positive", "negative", "none"}
        Whether ``delta_ci`` lies above 0, below 0, or covers it.
    verdict : str
    y_true : ndarray (n_test,)
    proba : dict of str to ndarray (n_test,)
        Test risks of the three arms.
    patient_ids : ndarray (n_test,)
    """

    model: str
    label: str
    auroc_ordered: float
    auroc_shuffled: float
    auroc_shuffled_test: float
    ci: dict
    auprc: dict
    delta: float
    delta_ci: tuple
    delta_p: float
    delong_p: float
    delta_shuffled_test: float
    delta_shuffled_test_ci: tuple
    delta_shuffled_test_p: float
    evidence: str
    verdict: str
    y_true: np.ndarray = field(repr=False, default=None)
    proba: dict = field(repr=False, default_factory=dict)
    patient_ids: np.ndarray = field(repr=False, default=None)
    #: test rows and positive rows (from ``y_true`` when it is there; a result read back from JSON keeps the counts).
    n_test: int = -1
    n_test_positive: int = -1

    def __post_init__(self) -> None:
        if self.y_true is not None:
            object.__setattr__(self, "n_test", int(len(self.y_true)))
            object.__setattr__(self, "n_test_positive", int(np.sum(self.y_true)))

    @classmethod
    def from_dict(cls, d: dict) -> "AblationResult":
        """The result :meth:`to_dict` wrote: every number and CI (the per-row arrays are not kept in the JSON)."""
        ci = {f"{m}_{arm}": _unpair(d.get(f"{m}_{arm}_ci")) for m in ("auroc", "auprc") for arm in _ARMS}
        return cls(model=d["model"], label=d.get("label", d["model"]), auroc_ordered=read_float(d.get("auroc_ordered")),
                   auroc_shuffled=read_float(d.get("auroc_shuffled")),
                   auroc_shuffled_test=read_float(d.get("auroc_shuffled_test")), ci=ci,
                   auprc={arm: read_float(d.get(f"auprc_{arm}")) for arm in _ARMS}, delta=read_float(d.get("delta")),
                   delta_ci=_unpair(d.get("delta_ci")), delta_p=read_float(d.get("delta_p")),
                   delong_p=read_float(d.get("delong_p")), delta_shuffled_test=read_float(d.get("delta_shuffled_test")),
                   delta_shuffled_test_ci=_unpair(d.get("delta_shuffled_test_ci")),
                   delta_shuffled_test_p=read_float(d.get("delta_shuffled_test_p")), evidence=d.get("evidence", "none"),
                   verdict=d.get("verdict", ""), n_test=int(d.get("n_test", -1)),
                   n_test_positive=int(d.get("n_test_positive", -1)))

    def to_dict(self) -> dict:
        return {"model": self.model, "label": self.label,
                "auroc_ordered": _num(self.auroc_ordered), "auroc_ordered_ci": _pair(self.ci["auroc_ordered"]),
                "auroc_shuffled": _num(self.auroc_shuffled), "auroc_shuffled_ci": _pair(self.ci["auroc_shuffled"]),
                "delta": _num(self.delta), "delta_ci": _pair(self.delta_ci), "delta_p": _num(self.delta_p),
                "delong_p": _num(self.delong_p),
                "auroc_shuffled_test": _num(self.auroc_shuffled_test),
                "auroc_shuffled_test_ci": _pair(self.ci["auroc_shuffled_test"]),
                "delta_shuffled_test": _num(self.delta_shuffled_test),
                "delta_shuffled_test_ci": _pair(self.delta_shuffled_test_ci),
                "delta_shuffled_test_p": _num(self.delta_shuffled_test_p),
                "auprc_ordered": _num(self.auprc["ordered"]), "auprc_ordered_ci": _pair(self.ci["auprc_ordered"]),
                "auprc_shuffled": _num(self.auprc["shuffled"]), "auprc_shuffled_ci": _pair(self.ci["auprc_shuffled"]),
                "auprc_shuffled_test": _num(self.auprc["shuffled_test"]),
                "auprc_shuffled_test_ci": _pair(self.ci["auprc_shuffled_test"]),
                "evidence": self.evidence, "verdict": self.verdict, "n_test": int(self.n_test),
                "n_test_positive": int(self.n_test_positive), "shuffle": SHUFFLE_DESCRIPTION}


@dataclass(frozen=True)
class GapResult:
    """Best sequence model vs best order-free model at the full horizon (same test patients).

    Attributes
    ----------
    sequence_model, order_free_model : str
        Chosen by validation AUROC within each family.
    sequence_label, order_free_label : str
    auroc_sequence, auroc_order_free : float
        Test AUROCs.
    difference, ci_low, ci_high, p_value : float
        Sequence minus order-free, paired bootstrap CI and p-value.
    delong_p : float
    evidence : {"positive", "negative", "none"}
    verdict : str
    """

    sequence_model: str
    order_free_model: str
    sequence_label: str
    order_free_label: str
    auroc_sequence: float
    auroc_order_free: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    delong_p: float
    evidence: str
    verdict: str

    @classmethod
    def from_dict(cls, d: dict) -> "GapResult":
        """The result :meth:`to_dict` wrote."""
        text = ("sequence_model", "order_free_model", "sequence_label", "order_free_label", "evidence", "verdict")
        return cls(**{k: (str(d.get(k, "")) if k in text else read_float(d.get(k))) for k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        d = {k: (_num(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}
        d["best_sequence"], d["best_order_free"] = self.sequence_model, self.order_free_model
        d["diff"], d["ci"] = _num(self.difference), [_num(self.ci_low), _num(self.ci_high)]
        return d


@dataclass(frozen=True)
class TierResult:
    """Order-free summaries vs time-aware summaries vs a sequence model, on the same test rows.

    Attributes
    ----------
    model, label : str
        Tier (a): the best order-free model (by validation AUROC) on order-free summaries.
    time_aware_model, time_aware_label : str
        Tier (b): the best of the same order-free models refitted on time-aware summaries (validation AUROC).
    sequence_model, sequence_label : str
        Tier (c): the best sequence model (the gap's), or the ablation's ordered model.
    preset : str
        Model sizes of the tier fits.
    auroc, auprc : dict of str to float
        Per tier (keys of :data:`TIERS`).
    ci : dict of str to (low, high)
        ``"auroc_<tier>"`` and ``"auprc_<tier>"`` bootstrap CIs (over patients).
    differences : dict of str to dict
        ``"time_aware_minus_order_free"``, ``"sequence_minus_order_free"``,
        ``"sequence_minus_time_aware"``: ``difference``, ``ci_low``, ``ci_high``, ``p_value``
        (paired bootstrap on the same resamples; clustered by patient online).
    recovered : float
        ``(b - a) / (c - a)``: the share of the sequence model's gain that time-aware summaries
        recover; NaN unless ``c - a`` is significantly positive.
    sentence : str
        Where the gain comes from, in plain words (honest when CIs include zero).
    """

    model: str
    label: str
    time_aware_model: str
    time_aware_label: str
    sequence_model: str
    sequence_label: str
    preset: str
    auroc: dict
    auprc: dict
    ci: dict
    differences: dict
    recovered: float
    sentence: str

    @classmethod
    def from_dict(cls, d: dict) -> "TierResult":
        """The result :meth:`to_dict` wrote."""
        rows = {r["tier"]: r for r in d.get("rows", [])}
        ci = {f"{m}_{k}": _unpair(rows[k].get(f"{m}_ci")) for k, _ in TIERS for m in ("auroc", "auprc")}
        diffs = {k: {"difference": read_float(v.get("diff")), "ci_low": _unpair(v.get("ci"))[0],
                     "ci_high": _unpair(v.get("ci"))[1], "p_value": read_float(v.get("p_value"))}
                 for k, v in (d.get("differences") or {}).items()}
        return cls(model=d["model"], label=d["label"], time_aware_model=d["time_aware_model"],
                   time_aware_label=d["time_aware_label"], sequence_model=d["sequence_model"],
                   sequence_label=d["sequence_label"], preset=d["preset"],
                   auroc={k: read_float(rows[k].get("auroc")) for k, _ in TIERS},
                   auprc={k: read_float(rows[k].get("auprc")) for k, _ in TIERS}, ci=ci, differences=diffs,
                   recovered=read_float(d.get("recovered_fraction")), sentence=d.get("sentence", ""))

    def to_dict(self) -> dict:
        model = {"order_free": (self.model, self.label), "time_aware": (self.time_aware_model, self.time_aware_label),
                 "sequence": (self.sequence_model, self.sequence_label)}
        rows = [{"tier": key, "name": words, "model": model[key][0], "label": model[key][1],
                 "auroc": _num(self.auroc[key]), "auroc_ci": _pair(self.ci[f"auroc_{key}"]),
                 "auprc": _num(self.auprc[key]), "auprc_ci": _pair(self.ci[f"auprc_{key}"])} for key, words in TIERS]
        diffs = {k: {"diff": _num(d["difference"]), "ci": [_num(d["ci_low"]), _num(d["ci_high"])],
                     "p_value": _num(d["p_value"]), "evidence": describe_evidence(d["ci_low"], d["ci_high"])}
                 for k, d in self.differences.items()}
        return {"model": self.model, "label": self.label, "time_aware_model": self.time_aware_model,
                "time_aware_label": self.time_aware_label, "sequence_model": self.sequence_model,
                "sequence_label": self.sequence_label, "preset": self.preset, "rows": rows, "differences": diffs,
                "recovered_fraction": _num(self.recovered), "sentence": self.sentence}

    def table(self) -> pd.DataFrame:
        """One row per tier: ``tier, model, AUROC, AUROC 95% CI, AUPRC, AUPRC 95% CI`` (for the page)."""
        return pd.DataFrame([{"tier": r["name"], "model": r["label"], "AUROC": r["auroc"],
                              "AUROC CI": _ci_text(r["auroc_ci"]), "AUPRC": r["auprc"],
                              "AUPRC CI": _ci_text(r["auprc_ci"])} for r in self.to_dict()["rows"]])


@dataclass(frozen=True)
class MissingnessResult:
    """A model on *when* variables were measured alone vs the same model on the values (same test rows).

    Attributes
    ----------
    model, label : str
        The order-free model (tier a's), refitted on ``FeatureConfig(summaries="missingness_only")``.
    auroc_missingness, auroc_values, auprc_missingness, auprc_values : float
    ci : dict of str to (low, high)
        ``"auroc_missingness"``, ``"auroc_values"``, ``"auprc_missingness"``, ``"auprc_values"``.
    difference, ci_low, ci_high, p_value : float
        ``auroc_values - auroc_missingness`` with its paired bootstrap CI.
    share : float
        ``(auroc_missingness - 0.5) / (auroc_values - 0.5)``: the share of the values model's AUROC
        above chance that the measurement pattern alone reaches (NaN if the values model is at chance).
    sentence : str
    """

    model: str
    label: str
    auroc_missingness: float
    auroc_values: float
    auprc_missingness: float
    auprc_values: float
    ci: dict
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    share: float
    sentence: str

    @classmethod
    def from_dict(cls, d: dict) -> "MissingnessResult":
        """The result :meth:`to_dict` wrote."""
        ci = {k: _unpair(d.get(f"{k}_ci")) for k in ("auroc_missingness", "auroc_values", "auprc_missingness",
                                                      "auprc_values")}
        lo, hi = _unpair(d.get("values_minus_missingness_ci"))
        return cls(model=d["model"], label=d["label"], auroc_missingness=read_float(d.get("auroc_missingness")),
                   auroc_values=read_float(d.get("auroc_values")),
                   auprc_missingness=read_float(d.get("auprc_missingness")),
                   auprc_values=read_float(d.get("auprc_values")), ci=ci,
                   difference=read_float(d.get("values_minus_missingness")), ci_low=lo, ci_high=hi,
                   p_value=read_float(d.get("p_value")), share=read_float(d.get("share_above_chance")),
                   sentence=d.get("sentence", ""))

    def to_dict(self) -> dict:
        return {"model": self.model, "label": self.label,
                "auroc_missingness": _num(self.auroc_missingness), "auroc_missingness_ci":
                    _pair(self.ci["auroc_missingness"]),
                "auroc_values": _num(self.auroc_values), "auroc_values_ci": _pair(self.ci["auroc_values"]),
                "auprc_missingness": _num(self.auprc_missingness), "auprc_missingness_ci":
                    _pair(self.ci["auprc_missingness"]),
                "auprc_values": _num(self.auprc_values), "auprc_values_ci": _pair(self.ci["auprc_values"]),
                "values_minus_missingness": _num(self.difference), "values_minus_missingness_ci":
                    [_num(self.ci_low), _num(self.ci_high)], "p_value": _num(self.p_value),
                "share_above_chance": _num(self.share), "sentence": self.sentence}


@dataclass(frozen=True)
class TimeOrderResult:
    """Everything :func:`run_timeorder` measured.

    Attributes
    ----------
    ablation : AblationResult
    horizons : DataFrame
        One row per (model, hours): ``model, label, kind ("sequence"/"order-free"), hours, auroc,
        auroc_low, auroc_high, auprc, auprc_low, auprc_high, validation_auroc, train_seconds``.
    gap : GapResult or None
        ``None`` when ``models`` lacks a sequence or an order-free model.
    verdict : str
        Plain words with the numbers (ablation, then gap).
    config : TimeOrderConfig
    data_fingerprint : str
    n_patients : dict of str to int
        ``train``, ``validation``, ``test``.
    seconds : float
        Wall time of the analysis.
    tiers : TierResult or None
        ``None`` when ``config.tiers`` is off or ``models`` holds no order-free model.
    missingness : MissingnessResult or None
        Same condition.
    run : str
        The name of the saved run it analysed (its split and fitted models), ``""`` when it trained its own.
    run_request : str
        That run's request key (``config.json``), so the result is attached only to that run.
    notes : tuple of str
        What was done differently from the run (e.g. an ablation model the run lacks, trained here).
    """

    ablation: AblationResult
    horizons: pd.DataFrame
    gap: GapResult | None
    verdict: str
    config: TimeOrderConfig
    data_fingerprint: str
    n_patients: dict
    seconds: float
    tiers: TierResult | None = None
    missingness: MissingnessResult | None = None
    run: str = ""
    run_request: str = ""
    notes: tuple = ()

    @classmethod
    def from_dict(cls, d: dict) -> "TimeOrderResult":
        """The result :meth:`to_dict` wrote (``timeorder.json``): every number, CI, sentence and the config, enough
        for every time-order figure of :mod:`core.plots` and the page (not the per-row test risks).

        Raises
        ------
        ValueError
            ``d`` is not a time-order result (no ablation, horizons or config).
        """
        try:
            rows = [{"model": name, "label": m["label"], "kind": m["kind"], "hours": float(pt["hours"]),
                     "auroc": read_float(pt.get("auroc")), "auroc_low": _unpair(pt.get("auroc_ci"))[0],
                     "auroc_high": _unpair(pt.get("auroc_ci"))[1], "auprc": read_float(pt.get("auprc")),
                     "auprc_low": _unpair(pt.get("auprc_ci"))[0], "auprc_high": _unpair(pt.get("auprc_ci"))[1],
                     "validation_auroc": read_float(pt.get("validation_auroc")),
                     "train_seconds": read_float(pt.get("train_seconds"))}
                    for name, m in d["horizons"]["models"].items() for pt in m["points"]]
            horizons = pd.DataFrame(rows, columns=HORIZON_COLUMNS)
            horizons = horizons.sort_values("hours", kind="stable").reset_index(drop=True)  # hour by hour, as computed
            return cls(ablation=AblationResult.from_dict(d["ablation"]), horizons=horizons,
                       gap=None if d.get("gap") is None else GapResult.from_dict(d["gap"]),
                       verdict=d.get("verdict", ""), config=TimeOrderConfig.from_dict(d["config"]),
                       data_fingerprint=str(d.get("data_fingerprint", "")),
                       n_patients={k: int(v) for k, v in (d.get("n_patients") or {}).items()},
                       seconds=read_float(d.get("seconds")),
                       tiers=None if d.get("tiers") is None else TierResult.from_dict(d["tiers"]),
                       missingness=None if d.get("missingness") is None else MissingnessResult.from_dict(
                           d["missingness"]),
                       run=str(d.get("run") or ""), run_request=str(d.get("run_request") or ""),
                       notes=tuple(d.get("notes") or ()))
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"This is not a time-order result (timeorder.json): {type(err).__name__} {err}. Use a "
                             "file written by python -m core timeorder or save_timeorder.") from None

    def to_dict(self) -> dict:
        """The content of ``timeorder.json`` (JSON-able; NaN becomes ``None``)."""
        models = {}
        for name, g in self.horizons.groupby("model", sort=False):
            first = g.iloc[0]
            models[name] = {"label": first["label"], "kind": first["kind"], "points": [
                {"hours": float(r.hours), "auroc": _num(r.auroc), "auroc_ci": [_num(r.auroc_low), _num(r.auroc_high)],
                 "auprc": _num(r.auprc), "auprc_ci": [_num(r.auprc_low), _num(r.auprc_high)],
                 "validation_auroc": _num(r.validation_auroc), "train_seconds": _num(r.train_seconds)}
                for r in g.sort_values("hours").itertuples()]}
        return {"ablation": self.ablation.to_dict(),
                "horizons": {"hours": list(self.config.hours()), "models": models},
                "gap": None if self.gap is None else self.gap.to_dict(),
                "verdict": self.verdict, "config": self.config.to_dict(),
                "data_fingerprint": self.data_fingerprint, "n_patients": dict(self.n_patients),
                "seconds": round(float(self.seconds), 2),
                "tiers": None if self.tiers is None else self.tiers.to_dict(),
                "missingness": None if self.missingness is None else self.missingness.to_dict(),
                "run": self.run, "run_request": self.run_request, "notes": list(self.notes)}


#: the three arms of the ablation, as keys of its ``ci`` and ``auprc``.
_ARMS = ("ordered", "shuffled", "shuffled_test")
#: the columns of ``TimeOrderResult.horizons``.
HORIZON_COLUMNS = ["model", "label", "kind", "hours", "auroc", "auroc_low", "auroc_high", "auprc", "auprc_low",
                   "auprc_high", "validation_auroc", "train_seconds"]


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None


def read_float(v) -> float:
    """A JSON number back to float (``None``, written for NaN, back to NaN)."""
    return float("nan") if v is None else float(v)


def _pair(p) -> list:
    return [_num(p[0]), _num(p[1])]


def _unpair(p) -> tuple:
    return (float("nan"), float("nan")) if not p else (read_float(p[0]), read_float(p[1]))


def _ci_text(pair) -> str:
    lo, hi = pair
    return "n/a" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


def describe_evidence(low: float, high: float) -> str:
    """``"positive"`` if the CI lies above 0, ``"negative"`` if below, else ``"none"``."""
    if np.isfinite(low) and low > 0:
        return "positive"
    if np.isfinite(high) and high < 0:
        return "negative"
    return "none"


def format_ci(lo: float, hi: float) -> str:
    """A difference's CI in a sentence: ``"[+0.012, +0.080]"``, or ``"[CI not available]"`` when it is not finite."""
    return f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) and np.isfinite(hi) else "[CI not available]"
