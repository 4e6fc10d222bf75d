"""Does time *order* matter on this cohort? Three measurements, each with a confidence interval.

1. **Order ablation.** One sequence model (the GRU by default) is

   (a) trained and tested on the ordered hourly sequences;
   (b) retrained and tested on the *same patients* with their hours shuffled; and
   (c) the ordered model of (a) tested on the shuffled test sequences.

   How the shuffle removes order and nothing else: for each patient, the **raw hourly bins**
   (every observation of every variable keeps its value and its bin; the bin's observation mask
   goes with it) are permuted at random *within the patient's valid length* (hour 0 up to the last
   hour with any observation). Bins after the valid length (padding) stay at the end. Only then
   are the derived channels computed, by the same fitted :class:`~core.features.FeatureBuilder`:
   values are carried forward and *hours since the last observation* are measured on the shuffled
   grid, so neither can leak the original positions. Static channels (age, sex...) are untouched.
   Each patient keeps exactly the same multiset of observations; the builder's statistics
   (clipping quantiles, means, standard deviations) are permutation-invariant, so they are the
   same for both arms. Implementation: :func:`shuffle_time_bins` moves every event to its bin's
   new position (keeping its offset inside the bin), then features are rebuilt as usual.
   ``delta = auroc_ordered - auroc_shuffled`` (a minus b) with a paired bootstrap CI over the same
   test patients.

2. **Early prediction.** Every model retrained and tested when only the first ``k`` hours are
   available (features rebuilt with ``window_hours=k``), AUROC and AUPRC with bootstrap CIs.

3. **The gap.** At the full horizon: best sequence model vs best order-free (tabular) model, each
   chosen by *validation* AUROC, compared on the test patients (paired bootstrap and DeLong).

4. **Three tiers** (``TimeOrderConfig.tiers``). Where does the gap come from? At the full horizon, on
   the same test rows: (a) the best order-free model on order-free summaries, (b) the order-free
   models refitted on time-aware summaries (``FeatureConfig(summaries="time_aware")``: hour of the
   min and the max, slope per sub-window, last-k-hours statistics; online, from data up to each
   hour only), the best again chosen by validation AUROC, and (c) the best sequence model.
   ``b - a`` against ``c - a`` says how much of the sequence model's advantage hand-made timing
   features recover.

5. **Informative missingness.** Tier (a)'s model refitted on *when* variables were
   measured alone (``summaries="missingness_only"``: counts, measured bins, hours since the last
   measurement, measurement rate; no value at all) against the same model on the values (tier a).

The refits of 4 and 5 go through the same protocol (builders fitted on the training patients) with
the quick preset sizes at most (with ``preset="full"`` tier (a) is refitted at quick too, so the
tiers compare like with like).

Patients are split once (train / validation / test, stratified, seeded) and the split is shared by
every horizon, model and arm; bootstrap resamples of the test patients are shared too (paired).

**On a saved run** (``run_timeorder(cohort, TimeOrderConfig.for_run(run), run=run)``) the split, the
feature builder, the preset, the seed and the models are the run's: the ordered arm of the ablation,
every full-horizon point and both arms of the gap are the run's own fitted models and the risks it
saved (so their AUROCs are those of its metrics.json); only what must be refitted is (the shuffled arm,
the shorter horizons of the stay task, the tiers and the missingness model), on the run's split and seed.
:func:`save_timeorder` keeps the result with the run (``analyses/timeorder.json``), :func:`load_timeorder`
reads it back.

Examples
--------
>>> res = run_timeorder(cohort, TimeOrderConfig(models=("lr", "gru"), horizons_hours=(12, 48)))  # doctest: +SKIP
>>> print(res.verdict)                                                                            # doctest: +SKIP
On this cohort keeping time order adds +0.112 AUROC [+0.081, +0.145] ...
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from core.data.cohort import Cohort
from core.config import EvaluationConfig, FeatureConfig, SplitConfig
from core.evaluation.metrics import (ClusterBootstrap, bootstrap_indices, bootstrap_metrics, delong_test, evaluate,
                             paired_bootstrap)
from core.exceptions import CohortError, RunError
from core.runs.export import jsonable
from core.models import registry
from core.models.base import check_preset
from core.training.engine import Backend
from core.features import FeatureBuilder, FeatureSet
from core.training.protocol import (ProtocolRequest, ProtocolResult, predict_units, run_protocols, split_by_patient,
                           subsample_patients)

__all__ = ["TimeOrderConfig", "TimeOrderResult", "AblationResult", "GapResult", "TierResult", "MissingnessResult",
           "run_timeorder", "shuffle_time_bins", "valid_lengths", "describe_evidence", "SHUFFLE_DESCRIPTION",
           "TIERS", "Progress", "save_timeorder", "load_timeorder", "TIMEORDER_FILE"]

#: ``progress(message, fraction_done)``, fraction over the whole analysis in [0, 1].
Progress = Callable[[str, float], None]

#: One paragraph describing the ablation's shuffle, shown on the page and saved in timeorder.json.
SHUFFLE_DESCRIPTION = (
    "Within each patient, the raw hourly observation bins (values and observation mask together) are "
    "permuted at random inside the patient's valid length (hour 0 to the last hour with any observation); "
    "empty padding bins after it stay at the end. Forward-filled values and hours-since-last-observation are "
    "then recomputed on the shuffled grid, so they cannot leak the original positions. Static channels are "
    "untouched, and every patient keeps exactly the same observations: only their order changes.")

#: the tiers, in order: key and words.
TIERS = (("order_free", "order-free summaries"), ("time_aware", "time-aware summaries"),
         ("sequence", "sequence model"))


# ----------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimeOrderConfig:
    """What the time-order analysis trains and how it measures uncertainty.

    Parameters
    ----------
    model : str
        Sequence model of the order ablation (``"gru"``, ``"lstm"`` or ``"rnn"``).
    models : tuple of str
        Models of the early-prediction curves and the gap (registry names; default the seven of the first version; GRU-D can be added).
    horizons_hours : tuple of float
        Hours of data available for early prediction. Values above ``features.window_hours`` are clipped
        to it, duplicates dropped; the full window is always included (the ablation and the gap use it).
    features : FeatureConfig
        The full horizon (``window_hours``) and the step (``bin_hours``, also the width of one shuffled
        bin); each horizon uses these features with ``window_hours`` set to it.
    preset : {"test", "quick", "full"}
        Model sizes (``"quick"`` keeps the analysis to minutes).
    sequence_params : tuple of (str, value) pairs
        Extra parameters set on every recurrent model (``set_params``), e.g. ``(("max_epochs", 10),)``.
        Default: a 3-network seed ensemble. Whether one small network finds an order pattern in a few
        epochs is partly luck of the initialisation (on the demo, 2 of 4 single networks did); averaging
        three makes the ordered arm of the ablation far more reliable (3 of 4 split seeds significant),
        at three times the recurrent training time.
    split : SplitConfig
        Patient split (default 65/15/20 train/validation/test, seed 0).
    evaluation : EvaluationConfig
        Bootstrap of the test patients (``n_bootstrap`` >= 20: every result has a CI) and ``ci_level``.
    max_patients : int, optional
        Use a stratified random subset of this many labelled patients (faster); ``None`` = all.
    random_state : int
        Seed of the subset, the shuffle and the models.
    tiers : bool
        Also measure the three tiers (order-free / time-aware summaries / sequence model) and the
        missingness-only model: each order-free model refitted on time-aware summaries and the best one
        on missingness only (one more with ``preset="full"``), at most quick sizes.
    early_models : tuple of str, optional
        Stay task: the models refitted on the horizons shorter than the full window (fewer refits);
        ``None`` = all of ``models``. The full-window points, the gap and the tiers use all of ``models``.
        Online, every point comes from the full-window models, so all of them are scored early too.

    Raises
    ------
    ValueError
        Unknown model or preset, a non-sequence ablation model, horizons <= 0 or too few resamples.

    Examples
    --------
    >>> TimeOrderConfig(models=("lr", "gru"), horizons_hours=(12, 24, 48)).hours()
    (12.0, 24.0, 48.0)
    >>> TimeOrderConfig(horizons_hours=(6, 72), features=FeatureConfig(window_hours=48)).hours()
    (6.0, 48.0)
    """

    model: str = "gru"
    models: tuple[str, ...] = ("lr", "svm", "rf", "gbm", "rnn", "lstm", "gru")
    horizons_hours: tuple[float, ...] = (6.0, 12.0, 24.0, 36.0, 48.0)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    preset: str = "quick"
    sequence_params: tuple = (("n_seeds", 3),)
    split: SplitConfig = field(default_factory=lambda: SplitConfig(validation_size=0.15, test_size=0.2))
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    max_patients: int | None = None
    random_state: int = 0
    tiers: bool = True
    early_models: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tiers, (bool, np.bool_)):
            raise ValueError(f"TimeOrderConfig.tiers must be True or False; got {self.tiers!r}. "
                             "Example: TimeOrderConfig(tiers=False).")
        object.__setattr__(self, "tiers", bool(self.tiers))
        spec = registry.get(self.model)          # ValueError naming the valid models
        if spec.input_kind != "sequence":
            raise ValueError(f"TimeOrderConfig.model must be a sequence model ({', '.join(registry.SEQUENCE)}); "
                             f"got {self.model!r}. Example: TimeOrderConfig(model='gru').")
        models = tuple(dict.fromkeys(str(m).strip().lower() for m in self.models))
        if not models:
            raise ValueError("TimeOrderConfig.models must name at least one model. "
                             "Example: TimeOrderConfig(models=('lr', 'gru')).")
        for m in models:
            registry.get(m)
        object.__setattr__(self, "models", models)
        if self.early_models is not None:
            early = tuple(dict.fromkeys(str(m).strip().lower() for m in self.early_models))
            if not early or any(m not in models for m in early):
                raise ValueError(f"TimeOrderConfig.early_models must be some of the models ({', '.join(models)}); got "
                                 f"{self.early_models!r}. Example: TimeOrderConfig(models=('lr', 'gbm', 'gru'), "
                                 "early_models=('lr', 'gru')).")
            object.__setattr__(self, "early_models", early)
        check_preset(self.preset)
        try:
            hours = tuple(float(h) for h in self.horizons_hours)
        except (TypeError, ValueError):
            raise ValueError(f"TimeOrderConfig.horizons_hours must be numbers of hours; got "
                             f"{self.horizons_hours!r}. Example: horizons_hours=(6, 12, 24, 48).") from None
        if not hours or not all(np.isfinite(h) and h > 0 for h in hours):
            raise ValueError(f"TimeOrderConfig.horizons_hours must be positive hours; got {self.horizons_hours!r}. "
                             "Example: horizons_hours=(6, 12, 24, 48).")
        object.__setattr__(self, "horizons_hours", hours)
        if min(hours) < self.features.bin_hours:
            raise ValueError(f"Every horizon must be at least one bin ({self.features.bin_hours} h); got "
                             f"{min(hours)} h. Example: horizons_hours=(6, 12, 24, 48).")
        pairs = tuple((str(k), v) for k, v in dict(self.sequence_params).items()) if self.sequence_params else ()
        object.__setattr__(self, "sequence_params", pairs)
        if int(self.evaluation.n_bootstrap) < 20:
            raise ValueError(f"TimeOrderConfig.evaluation.n_bootstrap must be >= 20 (every result has a CI); got "
                             f"{self.evaluation.n_bootstrap!r}. Example: EvaluationConfig(n_bootstrap=1000).")
        if self.max_patients is not None and int(self.max_patients) < 40:
            raise ValueError(f"TimeOrderConfig.max_patients must be >= 40 or None (all); got "
                             f"{self.max_patients!r}. Example: TimeOrderConfig(max_patients=800).")

    @property
    def window_hours(self) -> float:
        """The full horizon (``features.window_hours``)."""
        return float(self.features.window_hours)

    def hours(self) -> tuple[float, ...]:
        """Horizons actually evaluated: clipped to ``window_hours``, sorted, with the full window."""
        return tuple(sorted({min(h, self.window_hours) for h in self.horizons_hours} | {self.window_hours}))

    def features_at(self, hours: float) -> FeatureConfig:
        """The feature config of one horizon: the full one with ``window_hours=hours``."""
        return replace(self.features, window_hours=float(hours))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["models"] = list(self.models)
        d["horizons_hours"] = list(self.horizons_hours)
        d["sequence_params"] = {k: v for k, v in self.sequence_params}
        d["early_models"] = None if self.early_models is None else list(self.early_models)
        return d

    def models_at(self, hours: float) -> tuple[str, ...]:
        """The models scored at ``hours``: all of ``models`` at the full window (and online), else the early ones."""
        if hours >= self.window_hours or self.features.task == "online" or self.early_models is None:
            return self.models
        return self.early_models

    @classmethod
    def from_dict(cls, d: dict) -> "TimeOrderConfig":
        """The config :meth:`to_dict` wrote (JSON lists back to tuples; unknown keys ignored)."""
        return cls(model=d.get("model", "gru"), models=tuple(d.get("models", cls.models)),
                   horizons_hours=tuple(d.get("horizons_hours", cls.horizons_hours)),
                   features=_dataclass_from(FeatureConfig, d.get("features") or {}),
                   preset=d.get("preset", "quick"), sequence_params=tuple((d.get("sequence_params") or {}).items()),
                   split=_dataclass_from(SplitConfig, d.get("split") or {}),
                   evaluation=_dataclass_from(EvaluationConfig, d.get("evaluation") or {}),
                   max_patients=d.get("max_patients"), random_state=int(d.get("random_state", 0)),
                   tiers=bool(d.get("tiers", True)),
                   early_models=None if d.get("early_models") is None else tuple(d["early_models"]))

    @classmethod
    def for_run(cls, run, *, model: str = "gru", horizons_hours=None, tiers: bool = True,
                n_bootstrap: int | None = None, models=None) -> "TimeOrderConfig":
        """The analysis of a saved run (:func:`core.runs.store.load_run`), for ``run_timeorder(..., run=run)``.

        Everything but the ablation model, the horizons and the tiers comes from the run: its models (the
        early-prediction curves and the gap), its features (the full horizon is the run's window, the same
        bins, stay or online task), preset, seed, split and evaluation; no patient subset and no extra
        recurrent parameters (the run's networks were trained without the seed ensemble, and the retrained
        shuffled arm must be made exactly like them).

        Parameters
        ----------
        run : core.runs.store.Run
        model : str
            Sequence model of the order ablation (trained on the run's split when the run lacks it).
        horizons_hours : tuple of float, optional
            Early-prediction horizons (default ``(6, 12, 24, 36, 48)``, clipped to the run's window).
        tiers : bool
        n_bootstrap : int, optional
            Resamples of every CI. Default: the run's own, so the full-horizon CIs are the run's (1000 when
            the run was evaluated with fewer than 20).
        models : tuple of str, optional
            Stay task: the run's models refitted on the shorter horizons (``early_models``; default all). The
            full-window points, the gap and the tiers always use every model of the run (no refit).

        Returns
        -------
        TimeOrderConfig

        Raises
        ------
        RunError
            The run's config.json lacks its preset, seed, models, split or evaluation.
        ValueError
            ``model``, ``horizons_hours`` or ``n_bootstrap`` is invalid (as for the constructor), or ``models``
            names a model the run does not have.

        Examples
        --------
        >>> run = load_run("runs/my_run")                                                    # doctest: +SKIP
        >>> cfg = TimeOrderConfig.for_run(run, model="gru", horizons_hours=(6, 12, 24))      # doctest: +SKIP
        >>> res = run_timeorder(cohort, cfg, run=run)                                        # doctest: +SKIP
        """
        cfg = run.config
        try:
            evaluation = _dataclass_from(EvaluationConfig, cfg["evaluation"])
            split = _dataclass_from(SplitConfig, cfg["split"])
            preset, seed, run_models = str(cfg["preset"]), int(cfg["random_state"]), tuple(cfg["models"])
        except (KeyError, TypeError):
            raise RunError(f"The run {run.name} does not record its preset, seed, models, split and evaluation in "
                           "config.json (saved by an older version?): retrain it to analyse its time order.") from None
        if n_bootstrap is None:
            n_bootstrap = evaluation.n_bootstrap if evaluation.n_bootstrap >= 20 else 1000
        return cls(model=model, models=run_models,
                   horizons_hours=cls.horizons_hours if horizons_hours is None else horizons_hours,
                   features=run.builder.config, preset=preset, sequence_params=(), split=split,
                   evaluation=replace(evaluation, n_bootstrap=int(n_bootstrap)), max_patients=None,
                   random_state=seed, tiers=tiers, early_models=None if models is None else tuple(models))


def _dataclass_from(cls, d: dict):
    """``cls(**d)`` for a config dataclass read from JSON: unknown keys dropped, lists back to tuples."""
    from dataclasses import fields
    names = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in dict(d).items() if k in names})


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------
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
        return cls(model=d["model"], label=d.get("label", d["model"]), auroc_ordered=_float(d.get("auroc_ordered")),
                   auroc_shuffled=_float(d.get("auroc_shuffled")),
                   auroc_shuffled_test=_float(d.get("auroc_shuffled_test")), ci=ci,
                   auprc={arm: _float(d.get(f"auprc_{arm}")) for arm in _ARMS}, delta=_float(d.get("delta")),
                   delta_ci=_unpair(d.get("delta_ci")), delta_p=_float(d.get("delta_p")),
                   delong_p=_float(d.get("delong_p")), delta_shuffled_test=_float(d.get("delta_shuffled_test")),
                   delta_shuffled_test_ci=_unpair(d.get("delta_shuffled_test_ci")),
                   delta_shuffled_test_p=_float(d.get("delta_shuffled_test_p")), evidence=d.get("evidence", "none"),
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
        return cls(**{k: (str(d.get(k, "")) if k in text else _float(d.get(k))) for k in cls.__dataclass_fields__})

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
        diffs = {k: {"difference": _float(v.get("diff")), "ci_low": _unpair(v.get("ci"))[0],
                     "ci_high": _unpair(v.get("ci"))[1], "p_value": _float(v.get("p_value"))}
                 for k, v in (d.get("differences") or {}).items()}
        return cls(model=d["model"], label=d["label"], time_aware_model=d["time_aware_model"],
                   time_aware_label=d["time_aware_label"], sequence_model=d["sequence_model"],
                   sequence_label=d["sequence_label"], preset=d["preset"],
                   auroc={k: _float(rows[k].get("auroc")) for k, _ in TIERS},
                   auprc={k: _float(rows[k].get("auprc")) for k, _ in TIERS}, ci=ci, differences=diffs,
                   recovered=_float(d.get("recovered_fraction")), sentence=d.get("sentence", ""))

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
        return cls(model=d["model"], label=d["label"], auroc_missingness=_float(d.get("auroc_missingness")),
                   auroc_values=_float(d.get("auroc_values")), auprc_missingness=_float(d.get("auprc_missingness")),
                   auprc_values=_float(d.get("auprc_values")), ci=ci,
                   difference=_float(d.get("values_minus_missingness")), ci_low=lo, ci_high=hi,
                   p_value=_float(d.get("p_value")), share=_float(d.get("share_above_chance")),
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
                     "auroc": _float(pt.get("auroc")), "auroc_low": _unpair(pt.get("auroc_ci"))[0],
                     "auroc_high": _unpair(pt.get("auroc_ci"))[1], "auprc": _float(pt.get("auprc")),
                     "auprc_low": _unpair(pt.get("auprc_ci"))[0], "auprc_high": _unpair(pt.get("auprc_ci"))[1],
                     "validation_auroc": _float(pt.get("validation_auroc")),
                     "train_seconds": _float(pt.get("train_seconds"))}
                    for name, m in d["horizons"]["models"].items() for pt in m["points"]]
            horizons = pd.DataFrame(rows, columns=_HORIZON_COLUMNS)
            horizons = horizons.sort_values("hours", kind="stable").reset_index(drop=True)  # hour by hour, as computed
            return cls(ablation=AblationResult.from_dict(d["ablation"]), horizons=horizons,
                       gap=None if d.get("gap") is None else GapResult.from_dict(d["gap"]),
                       verdict=d.get("verdict", ""), config=TimeOrderConfig.from_dict(d["config"]),
                       data_fingerprint=str(d.get("data_fingerprint", "")),
                       n_patients={k: int(v) for k, v in (d.get("n_patients") or {}).items()},
                       seconds=_float(d.get("seconds")),
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
_HORIZON_COLUMNS = ["model", "label", "kind", "hours", "auroc", "auroc_low", "auroc_high", "auprc", "auprc_low",
                    "auprc_high", "validation_auroc", "train_seconds"]


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None


def _float(v) -> float:
    """A JSON number back to float (``None``, written for NaN, back to NaN)."""
    return float("nan") if v is None else float(v)


def _pair(p) -> list:
    return [_num(p[0]), _num(p[1])]


def _unpair(p) -> tuple:
    return (float("nan"), float("nan")) if not p else (_float(p[0]), _float(p[1]))


def _ci_text(pair) -> str:
    lo, hi = pair
    return "n/a" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


# ----------------------------------------------------------------------------------------------
# the shuffle
# ----------------------------------------------------------------------------------------------
def valid_lengths(cohort: Cohort, window_hours: float = 48.0, bin_hours: float = 1.0,
                  variables=None) -> pd.Series:
    """Per patient: number of bins from hour 0 to the last bin with any observation (0 if none).

    The binning is :meth:`FeatureConfig.steps`, the same as the features'.

    Parameters
    ----------
    variables : iterable of str, optional
        Count only these variables (e.g. a fitted builder's ``variables_``); default all.

    Returns
    -------
    Series of int, index ``patient_id`` (every patient of ``cohort.patient_ids``).
    """
    grid = FeatureConfig(window_hours=window_hours, bin_hours=bin_hours)
    ev = cohort.events
    ids = pd.Index(cohort.patient_ids, name="patient_id")
    row = ids.get_indexer(ev["patient_id"].astype(str).to_numpy())
    if variables is not None:
        row = np.where(ev["variable"].astype(str).isin(set(map(str, variables))).to_numpy(), row, -1)
    lengths = grid.valid_lengths(row, ev["time_hours"].to_numpy(dtype=float), len(ids))
    return pd.Series(lengths, index=ids).astype(int)


def shuffle_time_bins(cohort: Cohort, *, window_hours: float = 48.0, bin_hours: float = 1.0,
                      random_state: int = 0, variables=None, return_positions: bool = False):
    """A copy of ``cohort`` whose hourly bins are permuted within each patient's valid length.

    Every event inside the window moves, with all the other events of its bin, to the bin's new
    position (keeping its offset inside the bin), so per bin the values and the observation mask
    travel together. Bins after the patient's last observed bin (padding) and events outside the
    window do not move. An empty hour *inside* the valid length is a bin like any other, so it may
    land last (the shuffled sequence then ends earlier; never later). Static attributes and labels are untouched. Building features from the
    result recomputes forward filling and hours-since-last-observation on the shuffled grid.

    Parameters
    ----------
    cohort : Cohort
    window_hours, bin_hours : float
        The grid of the features the shuffle is meant for (same as the FeatureConfig).
    random_state : int
        Seed; each patient gets an independent permutation.
    variables : iterable of str, optional
        Variables that define the valid length (a fitted builder's ``variables_``); default all.
    return_positions : bool
        Also return the permutation: a DataFrame (index patient id, one column per old step) of each
        old step's new step.

    Returns
    -------
    Cohort (and the positions when asked)
        Same patients, same multiset of (variable, value) per patient and per bin. An online cohort's
        hour labels and row times move with their bins, so every hour keeps its own label.

    Examples
    --------
    >>> shuffled = shuffle_time_bins(cohort, random_state=1)                # doctest: +SKIP
    >>> len(shuffled.events) == len(cohort.events)                          # doctest: +SKIP
    True
    """
    grid = FeatureConfig(window_hours=window_hours, bin_hours=bin_hours)      # checks the grid
    n_steps = grid.n_steps
    ev = cohort.events
    if not len(ev):
        return cohort
    lengths = valid_lengths(cohort, window_hours, bin_hours, variables)
    ids = lengths.index.to_numpy()
    L = lengths.to_numpy()
    rng = np.random.default_rng(random_state)
    keys = rng.random((len(ids), n_steps))
    steps = np.arange(n_steps)[None, :]
    keys = np.where(steps < L[:, None], keys, 2.0 + steps)     # padding keeps its place, after the valid bins
    order = np.argsort(keys, axis=1, kind="stable")             # new position j holds old bin order[j]
    new_pos = np.empty_like(order)
    np.put_along_axis(new_pos, order, np.broadcast_to(steps, order.shape), axis=1)   # old bin -> new position

    def move(frame: pd.DataFrame) -> pd.DataFrame:
        t = frame["time_hours"].to_numpy(dtype=float)
        step, inside = grid.steps(t)
        row = pd.Index(ids).get_indexer(frame["patient_id"].astype(str).to_numpy())
        offset = np.clip(t - step * bin_hours, 0.0, bin_hours * (1 - 1e-6))
        moved = new_pos[np.maximum(row, 0), step] * bin_hours + offset
        moved = np.minimum(moved, window_hours)                  # a partial last bin stays inside the window
        out = frame.copy()
        out["time_hours"] = np.where(inside & (row >= 0), moved, t)
        return out.sort_values(["patient_id", "time_hours"], kind="stable").reset_index(drop=True)

    # online cohorts: an hour's label (and its row) moves with its bin, so each hour keeps its own label
    shuffled = replace(cohort, events=move(ev), source=(cohort.source + " (time bins shuffled)").strip(),
                       hour_labels=None if cohort.hour_labels is None else move(cohort.hour_labels),
                       row_times=None if cohort.row_times is None else move(cohort.row_times))
    if return_positions:
        return shuffled, pd.DataFrame(new_pos, index=pd.Index(ids, name="patient_id"))
    return shuffled


# ----------------------------------------------------------------------------------------------
# verdicts
# ----------------------------------------------------------------------------------------------
def describe_evidence(low: float, high: float) -> str:
    """``"positive"`` if the CI lies above 0, ``"negative"`` if below, else ``"none"``."""
    if np.isfinite(low) and low > 0:
        return "positive"
    if np.isfinite(high) and high < 0:
        return "negative"
    return "none"


def _fmt_ci(lo: float, hi: float) -> str:
    return f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) and np.isfinite(hi) else "[CI not available]"


def _p(p: float) -> str:
    return "p=n/a" if not np.isfinite(p) else ("p<0.001" if p < 0.001 else f"p={p:.3f}")


def _ablation_sentence(label: str, a: float, b: float, d: float, lo: float, hi: float, evidence: str) -> str:
    meaning = {"positive": "time order carries significant information for this model",
               "negative": "the model did significantly better on shuffled hours, so it is not using order "
                           "(check training)",
               "none": "no evidence that time order carries information"}[evidence]
    return (f"On this cohort keeping time order adds {d:+.3f} AUROC {_fmt_ci(lo, hi)} for the {label} "
            f"(ordered {a:.3f} vs retrained on shuffled hours {b:.3f}): {meaning}.")


def _gap_sentence(g: GapResult) -> str:
    # DeLong treats every row as independent: for patient-hours only the bootstrap over patients is valid
    test = f"DeLong {_p(g.delong_p)}" if np.isfinite(g.delong_p) else f"bootstrap over patients {_p(g.p_value)}"
    meaning = {"positive": "a significant advantage for modelling time order",
               "negative": "a significant disadvantage: the order-free model is better",
               "none": "no evidence of an advantage"}[g.evidence]
    return (f"The best sequence model ({g.sequence_label}, AUROC {g.auroc_sequence:.3f}) vs the best order-free "
            f"model ({g.order_free_label}, {g.auroc_order_free:.3f}): {g.difference:+.3f} AUROC "
            f"{_fmt_ci(g.ci_low, g.ci_high)}, {test}: {meaning}.")


# ----------------------------------------------------------------------------------------------
# the analysis
# ----------------------------------------------------------------------------------------------
def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


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
    config = _check_run(cohort, config, run) if run is not None else (config or TimeOrderConfig())
    if config.features.task == "online":
        return _run_online(cohort, config, progress, backend, run)
    report = progress or (lambda msg, frac: None)
    t_start = time.perf_counter()
    fingerprint = cohort.fingerprint()
    work = cohort if run is not None else subsample_patients(cohort, config.max_patients, config.random_state)
    splits = dict(run.splits) if run is not None else split_by_patient(work, config.split)
    ys = {k: work.labels.loc[v].to_numpy().astype(int) for k, v in splits.items()}
    if len(np.unique(ys["test"])) < 2:
        raise CohortError("The test patients hold only one outcome, so AUROC is undefined. Use more patients "
                          "(max_patients=None) or a larger test_size.")
    hours = config.hours()
    window = config.window_hours
    kinds = {n: registry.get(n).input_kind for n in config.models}
    params = {n: dict(config.sequence_params) for n in config.models if kinds[n] == "sequence"} \
        if config.sequence_params else None
    ci_level = config.evaluation.ci_level

    # Every fit of the analysis is independent once the window's builder is fitted on the training
    # patients (the shuffled arm keeps its permutation-invariant statistics): one batch of requests.
    # A saved run already holds the full window's fits (its builder and models): only the rest is fitted.
    abl = registry.get(config.model)
    builder = run.builder if run is not None else FeatureBuilder(config.features_at(window)).fit(work, splits["train"])
    fit_hours = [h for h in hours if run is None or h < window]
    requests = [ProtocolRequest(work, tuple(registry.get(n) for n in config.models_at(h)), splits,
                                builder if h == window else config.features_at(h), label=f"{h:g} h")
                for h in fit_hours]
    if abl.name not in config.models:            # the ablation model was not among the compared ones
        requests.append(ProtocolRequest(work, (abl,), splits, builder, label="ablation: on ordered hours"))
    main, rest = _progress_parts(report, config, sum(len(r.specs) for r in requests) + 1)
    main(f"ablation: shuffling hours within each patient (seed {config.random_state})", 0.0)
    shuffled = shuffle_time_bins(work, window_hours=window, bin_hours=config.features.bin_hours,
                                 random_state=config.random_state, variables=builder.variables_)
    requests.append(ProtocolRequest(shuffled, (abl,), splits, builder, label="ablation: retrained on shuffled hours"))
    results = run_protocols(requests, evaluation=config.evaluation, preset=config.preset,
                            random_state=config.random_state, model_params=params, progress=main, backend=backend)

    by_hours = dict(zip(fit_hours, results))
    if run is not None:
        by_hours[window] = _from_run(run, work, splits, config, abl.name)
    rows = []
    for h in hours:
        res = by_hours[h]
        for spec in (registry.get(n) for n in config.models_at(h)):
            ev = res.test[spec.name]
            rows.append({"model": spec.name, "label": spec.label, "kind": "sequence" if kinds[spec.name] == "sequence"
                         else "order-free", "hours": h, "auroc": ev.metrics["auroc"], "auroc_low": ev.ci["auroc"][0],
                         "auroc_high": ev.ci["auroc"][1], "auprc": ev.metrics["auprc"], "auprc_low": ev.ci["auprc"][0],
                         "auprc_high": ev.ci["auprc"][1], "validation_auroc": res.validation[spec.name].metrics["auroc"],
                         "train_seconds": res.train_seconds[spec.name]})
    horizons = pd.DataFrame(rows, columns=_HORIZON_COLUMNS)
    full = by_hours[window]
    retrained = results[-1]
    ordered = full if abl.name in full.models else results[-2]
    idx = full.bootstrap
    for res in (full, ordered, retrained):
        for ev in res.test.values():
            if not np.array_equal(ev.y_true, ys["test"]):
                raise CohortError("The arms of the analysis were not scored on the same test patients in the same "
                                  "order; this is a bug, please report it with the data's layout.")

    # -- ablation ---------------------------------------------------------------------------
    p_a = ordered.test[abl.name].y_proba
    p_b = retrained.test[abl.name].y_proba
    p_c = predict_units(ordered.models[abl.name], abl.input_kind, retrained.features["test"])
    ablation = _ablation(abl.name, abl.label, ys["test"], splits["test"], p_a, p_b, p_c, idx, ci_level)

    # -- gap --------------------------------------------------------------------------------
    gap = _gap(full, config.models, kinds, ys["test"], ci_level, idx=idx)
    verdict = ablation.verdict + (" " + gap.verdict if gap is not None else
                                  " (No gap measured: include both a sequence and an order-free model.)")
    if gap is not None and gap.evidence != "none" and ablation.evidence == "none":
        # the gap compares model families; only the ablation isolates order
        verdict += (" Since shuffling the hours costs the sequence model nothing, this gap comes from how the "
                    "models use the values (levels, missingness), not from time order.")
    seq = (gap.sequence_model, full.test[gap.sequence_model].y_proba) if gap is not None else (abl.name, p_a)
    tiers, missing = _tiers(work, splits, config.features_at(window), config, full, kinds, seq, ys["test"], rest,
                            backend, idx=idx)
    notes = _run_notes(run, abl, config)
    report("done", 1.0)
    return TimeOrderResult(ablation=ablation, horizons=horizons, gap=gap, verdict=" ".join([verdict, *notes]),
                           config=config, data_fingerprint=fingerprint,
                           n_patients={k: int(len(v)) for k, v in splits.items()},
                           seconds=time.perf_counter() - t_start, tiers=tiers, missingness=missing,
                           run="" if run is None else run.name,
                           run_request="" if run is None else str(run.config.get("request") or ""), notes=notes)


# ----------------------------------------------------------------------------------------------
# a saved run: its config, split, saved risks and fitted models
# ----------------------------------------------------------------------------------------------
#: the settings an analysis of a run takes from the run (TimeOrderConfig.for_run); the rest are free.
_RUN_FIELDS = ("models", "features", "preset", "sequence_params", "split", "evaluation", "max_patients", "random_state")


def _check_run(cohort: Cohort, config: TimeOrderConfig | None, run) -> TimeOrderConfig:
    """``config`` (default :meth:`TimeOrderConfig.for_run`) after checking it and ``cohort`` against ``run``."""
    expected = TimeOrderConfig.for_run(run) if config is None else TimeOrderConfig.for_run(
        run, model=config.model, horizons_hours=config.horizons_hours, tiers=config.tiers,
        n_bootstrap=config.evaluation.n_bootstrap)
    bad = [] if config is None else [f for f in _RUN_FIELDS if getattr(config, f) != getattr(expected, f)]
    if bad:
        what = "; ".join(f"{f} is {getattr(config, f)!r}, the run's {getattr(expected, f)!r}" for f in bad)
        raise RunError(f"This time-order config contradicts the run {run.name} ({what}). The analysis of a run uses "
                       "the run's split, features, models, preset and seed; build its config from the run: "
                       "TimeOrderConfig.for_run(run, model='gru', horizons_hours=(6, 12, 24)).")
    fp, have = str(run.config.get("fingerprint", "")), cohort.fingerprint()
    if have != fp:
        raise RunError(f"This run ({run.name}) was trained on other data (data fingerprint {fp}; these data's is "
                       f"{have}): load the data it was trained on (the same file, labels, target and options) to "
                       "analyse its time order, or train a run on these data first.")
    return config or expected


def _from_run(run, cohort: Cohort, splits: dict, config: TimeOrderConfig, abl_name: str) -> ProtocolResult:
    """The run's own full-horizon results, as the protocol would give them: the validation and test risks it
    saved, aligned by patient (and hour) to the rows of the run's builder on ``cohort``, thresholds as saved,
    the test resample the protocol draws (so the metrics and CIs are those of its metrics.json), and the
    ablation's fitted model when the run has it."""
    builder = run.builder
    fsets = {k: builder.transform(cohort, splits[k]) for k in ("validation", "test")}
    ys = {k: builder.targets(cohort, fs) for k, fs in fsets.items()}
    val, test = fsets["validation"], fsets["test"]
    ev_cfg = config.evaluation
    idx = clusters = None
    if test.online:
        clusters = ClusterBootstrap.from_config(test.unit_ids, ev_cfg)
    else:
        idx = bootstrap_indices(len(ys["test"]), ev_cfg.n_bootstrap, ev_cfg.random_state)
    no_ci = EvaluationConfig(n_bootstrap=0)
    saved = run.metrics.get("models", {})
    thresholds = run.config.get("thresholds", {})
    val_res, test_res, seconds = {}, {}, {}
    for name in config.models:
        label = registry.get(name).label
        thr = float(thresholds[name])
        p_val = _saved_risks(run, name, "validation", val, ys["validation"])
        p_test = _saved_risks(run, name, "test", test, ys["test"])
        val_res[name] = evaluate(name, ys["validation"], p_val, thr, val.unit_ids, no_ci, label=label,
                                 times=val.unit_time)
        test_res[name] = evaluate(name, ys["test"], p_test, thr, test.unit_ids, ev_cfg, label=label, idx=idx,
                                  clusters=clusters, times=test.unit_time)
        seconds[name] = _float((saved.get(name) or {}).get("train_seconds"))
    models = {abl_name: _run_model(run, abl_name)} if abl_name in config.models else {}
    return ProtocolResult(builder=builder, models=models, splits=splits, validation=val_res, test=test_res,
                          train_seconds=seconds, features=fsets, bootstrap=idx, clusters=clusters)


def _saved_risks(run, name: str, split: str, fs: FeatureSet, y: np.ndarray) -> np.ndarray:
    """Model ``name``'s saved risks of ``split`` in the order of ``fs``'s units (matched by patient id, and hour
    online: the run saved them sorted by patient), after checking that its saved labels are ``y``."""
    pr = run.predictions
    d = pr[(pr["split"] == split) & (pr["model"] == name)] if len(pr) else pr
    unit = "patient-hours" if fs.online else "patients"
    if fs.online:
        saved = pd.MultiIndex.from_arrays([d["patient_id"].astype(str).to_numpy(),
                                           np.round(d["time"].to_numpy(dtype=float), 6)]) if len(d) else pd.Index([])
        want = pd.MultiIndex.from_arrays([fs.unit_ids.astype(str), np.round(fs.unit_time.astype(float), 6)])
    else:
        saved = pd.Index(d["patient_id"].astype(str).to_numpy()) if len(d) else pd.Index([])
        want = pd.Index(fs.unit_ids.astype(str))
    pos = saved.get_indexer(want) if len(saved) == len(want) and saved.is_unique else None
    if pos is None or (pos < 0).any():
        raise RunError(f"The saved {split} predictions of {name!r} in the run {run.name} do not match its {split} "
                       f"{unit} on these data one to one ({len(saved)} saved, {len(want)} here): its "
                       "predictions.parquet is incomplete, or the data were read with other options. Load the data "
                       "exactly as for training, or retrain the run.")
    if not np.array_equal(d["y_true"].to_numpy()[pos].astype(int), np.asarray(y, dtype=int)):
        raise RunError(f"The labels the run {run.name} saved for its {split} {unit} differ from these data's, so "
                       "its numbers cannot be paired with a refit on them. Load the data it was trained on with the "
                       "same target and options.")
    return d["risk"].to_numpy(dtype=float)[pos]


def _run_model(run, name: str):
    """The run's fitted ``name`` that made its saved predictions (never its refit on training + validation
    patients, ``train --refit``), read and checked against the run's manifest if not loaded yet."""
    if not run.refitted and name in run.models:
        return run.models[name]
    from core.models.persist import check_model, load_model
    from core.runs.store import verify_run
    entry = verify_run(run.folder).get("models", {}).get(name)
    if not isinstance(entry, dict):
        raise RunError(f"Model {name!r} is not described in the manifest of the run {run.name}; the run was edited. "
                       "Train it again (retrain), or restore the run from a backup.")
    spec = registry.get(name)
    model = load_model(run.folder / "models", name)
    check_model(model, entry, f"models/{name}",
                reference=[spec.make(preset="test", task=t) for t in ("stay", "online")])
    width = len(run.builder.seq_names if spec.input_kind == "sequence" else run.builder.tab_names)
    if int(getattr(model, "n_features_in_", -1)) != width:
        raise RunError(f"Model {name!r} of the run {run.name} reads {getattr(model, 'n_features_in_', None)} inputs "
                       f"but the run's feature builder makes {width}. Train it again (retrain), or restore the run "
                       "from a backup.")
    return model


def _run_notes(run, abl, config: TimeOrderConfig) -> tuple:
    """What an analysis of ``run`` did beyond the run's own fits, in words."""
    if run is None or abl.name in config.models:
        return ()
    return (f"The {abl.label} (the ablation model) is not among the run's models, so its ordered arm was trained "
            f"here on the run's split, features and seed ({config.preset} preset); the gap and the curves use the "
            "run's models.",)


def _auprc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score
    return float(average_precision_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def _ablation(name, label, y, ids, p_a, p_b, p_c, idx, ci_level, clusters=None) -> AblationResult:
    """The three arms compared on the same rows: bootstrap over patients (``idx`` resamples of stays), or
    over the patients of patient-hours (``clusters``, online; DeLong is then not reported)."""
    from core.evaluation.metrics import cluster_bootstrap_metrics, cluster_paired_bootstrap
    if clusters is not None:
        def metrics(p):
            return cluster_bootstrap_metrics(y, p, 0.5, clusters, ci_level)

        def paired(pa, pb):
            return cluster_paired_bootstrap(y, pa, pb, clusters, "auroc", ci_level)
        delong_p = np.nan
    else:
        def metrics(p):
            return bootstrap_metrics(y, p, 0.5, idx, ci_level)

        def paired(pa, pb):
            return paired_bootstrap(y, pa, pb, idx, "auroc", ci_level)
        delong_p = delong_test(y, p_a, p_b)["p_value"]
    ci = {}
    for arm, p in (("ordered", p_a), ("shuffled", p_b), ("shuffled_test", p_c)):
        b = metrics(p)
        ci[f"auroc_{arm}"], ci[f"auprc_{arm}"] = b["auroc"], b["auprc"]
    ab, ac = paired(p_a, p_b), paired(p_a, p_c)
    evidence = describe_evidence(ab["ci_low"], ab["ci_high"])
    a_auc, b_auc, c_auc = _auc(y, p_a), _auc(y, p_b), _auc(y, p_c)
    verdict = _ablation_sentence(label, a_auc, b_auc, ab["difference"], ab["ci_low"], ab["ci_high"], evidence)
    return AblationResult(model=name, label=label, auroc_ordered=a_auc, auroc_shuffled=b_auc,
                          auroc_shuffled_test=c_auc, ci=ci,
                          auprc={"ordered": _auprc(y, p_a), "shuffled": _auprc(y, p_b),
                                 "shuffled_test": _auprc(y, p_c)},
                          delta=ab["difference"], delta_ci=(ab["ci_low"], ab["ci_high"]), delta_p=ab["p_value"],
                          delong_p=delong_p, delta_shuffled_test=ac["difference"],
                          delta_shuffled_test_ci=(ac["ci_low"], ac["ci_high"]), delta_shuffled_test_p=ac["p_value"],
                          evidence=evidence, verdict=verdict, y_true=y, proba={"ordered": p_a, "shuffled": p_b,
                                                                               "shuffled_test": p_c},
                          patient_ids=np.asarray(ids, dtype=object))


def _gap(full, models, kinds: dict, y: np.ndarray, ci_level: float, idx=None, clusters=None) -> GapResult | None:
    """Best sequence vs best order-free model (each chosen by validation AUROC) on the same test rows.

    Stay task: paired bootstrap over ``idx`` and DeLong. Online (``clusters``): the bootstrap over patients
    only (DeLong treats correlated hours as independent, so it is not reported).
    """
    from core.evaluation.metrics import cluster_paired_bootstrap
    seq = [n for n in models if kinds[n] == "sequence"]
    tab = [n for n in models if kinds[n] == "tabular"]
    if not (seq and tab):
        return None

    def best(names):
        return max(names, key=lambda n: np.nan_to_num(full.validation[n].metrics["auroc"], nan=-1.0))

    s, o = best(seq), best(tab)
    p_s, p_o = full.test[s].y_proba, full.test[o].y_proba
    if clusters is not None:
        b = cluster_paired_bootstrap(y, p_s, p_o, clusters, "auroc", ci_level)
        auc_s, auc_o, diff, delong_p = _auc(y, p_s), _auc(y, p_o), b["difference"], np.nan
    else:
        b = paired_bootstrap(y, p_s, p_o, idx, "auroc", ci_level)
        d = delong_test(y, p_s, p_o)
        auc_s, auc_o, diff, delong_p = d["auroc_a"], d["auroc_b"], d["difference"], d["p_value"]
    gap = GapResult(s, o, registry.get(s).label, registry.get(o).label, auc_s, auc_o, diff, b["ci_low"],
                    b["ci_high"], b["p_value"], delong_p, describe_evidence(b["ci_low"], b["ci_high"]), "")
    return replace(gap, verdict=_gap_sentence(gap))


def _run_online(cohort: Cohort, config: TimeOrderConfig, progress: Progress | None,
                backend: Backend | None = None, run=None) -> TimeOrderResult:
    """The three measurements on the online task (a label per patient-hour), with patient-level CIs.

    * Ablation: the bins are shuffled as for stays, and each hour's label moves with its bin, so
      every (hour's data, hour's label) pair is kept and only the order of the history changes
      (hours since admission are recomputed on the shuffled grid, so they go too). The shuffled arm
      is paired with the ordered one hour by hour (each shuffled hour is mapped back to its place).
    * Early in the stay: the full-window models scored on the test hours of the first ``h`` hours.
    * Gap: best sequence vs best order-free model (chosen on validation hours), paired over patients.

    With a saved ``run`` (checked by :func:`run_timeorder`), its split, builder and models: the full window
    and the early hours are the run's saved risks, only the shuffled arm (and the tiers) are fitted.
    """
    from core.evaluation.metrics import cluster_bootstrap_metrics
    if not cohort.is_online:
        raise CohortError("The online time-order analysis needs per-hour labels: load the data with the online "
                          "task (a label for every hour), or use stay-task features.")
    report = progress or (lambda msg, frac: None)
    t_start = time.perf_counter()
    work = cohort if run is not None else subsample_patients(cohort, config.max_patients, config.random_state)
    splits = dict(run.splits) if run is not None else split_by_patient(work, config.split)
    kinds = {n: registry.get(n).input_kind for n in config.models}
    specs = [registry.get(n) for n in config.models]
    params = {n: dict(config.sequence_params) for n in config.models if kinds[n] == "sequence"} \
        if config.sequence_params else None
    ci_level = config.evaluation.ci_level
    window = config.window_hours

    # one batch of independent fits (see run_timeorder): the window (unless a saved run holds it), the ordered
    # arm if needed, the shuffled arm
    abl = registry.get(config.model)
    builder = run.builder if run is not None else FeatureBuilder(config.features).fit(work, splits["train"])
    requests = [] if run is not None else [ProtocolRequest(work, tuple(specs), splits, builder, label=f"{window:g} h")]
    if abl.name not in config.models:
        requests.append(ProtocolRequest(work, (abl,), splits, builder, label="ablation: on ordered hours"))
    main, rest = _progress_parts(report, config, sum(len(r.specs) for r in requests) + 1)
    main(f"ablation: shuffling hours within each patient (seed {config.random_state})", 0.0)
    shuffled, positions = shuffle_time_bins(work, window_hours=window, bin_hours=config.features.bin_hours,
                                            random_state=config.random_state, variables=builder.variables_,
                                            return_positions=True)
    requests.append(ProtocolRequest(shuffled, (abl,), splits, builder, label="ablation: retrained on shuffled hours"))
    results = run_protocols(requests, evaluation=config.evaluation, preset=config.preset,
                            random_state=config.random_state, model_params=params, progress=main, backend=backend)
    full = _from_run(run, work, splits, config, abl.name) if run is not None else results[0]
    retrained = results[-1]
    ordered = full if abl.name in full.models else results[-2]
    test = full.features["test"]
    rows = []
    for h in config.hours():                       # early in the stay: test hours before h
        keep = test.unit_time < h if h < window else np.ones(len(test.unit_time), bool)
        if not keep.any():
            continue
        boot = ClusterBootstrap.from_config(test.unit_ids[keep], config.evaluation)
        val = full.features["validation"]
        vkeep = val.unit_time < h if h < window else np.ones(len(val.unit_time), bool)
        for spec in specs:
            ev, vev = full.test[spec.name], full.validation[spec.name]
            y, p = ev.y_true[keep], ev.y_proba[keep]
            ci = cluster_bootstrap_metrics(y, p, ev.threshold, boot, ci_level)
            rows.append({"model": spec.name, "label": spec.label, "kind": "sequence" if kinds[spec.name] == "sequence"
                         else "order-free", "hours": h, "auroc": _auc(y, p), "auroc_low": ci["auroc"][0],
                         "auroc_high": ci["auroc"][1], "auprc": _auprc(y, p), "auprc_low": ci["auprc"][0],
                         "auprc_high": ci["auprc"][1], "validation_auroc": _auc(vev.y_true[vkeep], vev.y_proba[vkeep]),
                         "train_seconds": full.train_seconds[spec.name]})
    horizons = pd.DataFrame(rows, columns=_HORIZON_COLUMNS)

    shuf = retrained.features["test"]
    # pair each ordered test hour with the same hour in the shuffled stay
    moved = positions.loc[test.unit_ids].to_numpy()[np.arange(len(test.unit_step)), test.unit_step]
    T = test.X_seq.shape[1]
    where = pd.Series(np.arange(len(shuf.unit_step)), index=shuf.unit_patient * T + shuf.unit_step)
    pair = where.reindex(test.unit_patient * T + moved).to_numpy()
    if np.isnan(pair.astype(float)).any():
        raise CohortError("Some test hours could not be matched to their shuffled place; this is a bug, please "
                          "report it with the data's layout.")
    pair = pair.astype(int)
    y = ordered.test[abl.name].y_true
    p_a = ordered.test[abl.name].y_proba
    p_b = retrained.test[abl.name].y_proba[pair]
    p_c = predict_units(ordered.models[abl.name], abl.input_kind, shuf)[pair]
    if not np.array_equal(retrained.test[abl.name].y_true[pair], y):
        raise CohortError("The shuffled hours do not carry their own labels; this is a bug, please report it.")
    if not all(np.array_equal(ev.y_true, y) for ev in full.test.values()):
        raise CohortError("The arms of the analysis were not scored on the same test hours in the same order; this "
                          "is a bug, please report it with the data's layout.")
    boot = full.clusters or ClusterBootstrap.from_config(test.unit_ids, config.evaluation)
    ablation = _ablation(abl.name, abl.label, y, test.unit_ids, p_a, p_b, p_c, None, ci_level, clusters=boot)
    gap = _gap(full, config.models, kinds, y, ci_level, clusters=boot)
    verdict = "Online task (a risk every hour; AUROC pooled over test patient-hours, CIs over patients). " + \
        ablation.verdict + (" " + gap.verdict if gap is not None else "")
    seq = (gap.sequence_model, full.test[gap.sequence_model].y_proba) if gap is not None else (abl.name, p_a)
    tiers, missing = _tiers(work, splits, config.features, config, full, kinds, seq, y, rest, backend, clusters=boot)
    notes = _run_notes(run, abl, config)
    report("done", 1.0)
    return TimeOrderResult(ablation=ablation, horizons=horizons, gap=gap, verdict=" ".join([verdict, *notes]),
                           config=config, data_fingerprint=cohort.fingerprint(),
                           n_patients={k: int(len(v)) for k, v in splits.items()},
                           seconds=time.perf_counter() - t_start, tiers=tiers, missingness=missing,
                           run="" if run is None else run.name,
                           run_request="" if run is None else str(run.config.get("request") or ""), notes=notes)


# ----------------------------------------------------------------------------------------------
# tiers and informative missingness
# ----------------------------------------------------------------------------------------------
def _tier_kinds(config: TimeOrderConfig) -> tuple[str, tuple[str, ...]]:
    """Preset of the tier fits (at most quick) and which summaries they refit (order-free too when the
    preset differs from the analysis', so the three tiers use the same model sizes)."""
    preset = "quick" if config.preset == "full" else config.preset
    return preset, ("time_aware", "missingness_only") + (("order_free",) if preset != config.preset else ())


def _progress_parts(report: Progress, config: TimeOrderConfig, n_main: int) -> tuple[Progress, Progress]:
    """``report`` split in two monotone parts: the main batch of fits, then the tier fits (by fit count)."""
    n_tab = sum(registry.get(n).input_kind == "tabular" for n in config.models)
    n_tiers = n_tab + len(_tier_kinds(config)[1]) - 1 if config.tiers and n_tab else 0
    cut = n_main / (n_main + n_tiers)

    def main(msg: str, frac: float) -> None:
        report(msg, cut * frac)

    def rest(msg: str, frac: float) -> None:
        report(msg, cut + (1 - cut) * frac)
    return main, rest


def _tiers(cohort: Cohort, splits: dict, features: FeatureConfig, config: TimeOrderConfig, full, kinds: dict,
           seq: tuple, y: np.ndarray, progress: Progress, backend, idx=None, clusters=None):
    """Tiers (a) / (b) / (c) and the missingness-only model on the test rows of ``full`` (same order).

    ``seq`` is ``(name, test risks)`` of tier (c). The refits run the protocol on ``splits`` with
    ``features`` of other ``summaries``: every order-free model on time-aware summaries (tier b: the best
    by validation AUROC), the best order-free model of ``full`` (tier a) on missingness only (and on
    order-free summaries again when the tier preset differs from the analysis').
    """
    from core.evaluation.metrics import cluster_bootstrap_metrics, cluster_paired_bootstrap
    tab = [n for n in config.models if kinds[n] == "tabular"]
    if not (config.tiers and tab):
        return None, None
    name = max(tab, key=lambda n: np.nan_to_num(full.validation[n].metrics["auroc"], nan=-1.0))
    spec = registry.get(name)
    preset, refit = _tier_kinds(config)
    tab_specs = tuple(registry.get(n) for n in tab)
    requests = [ProtocolRequest(cohort, tab_specs if k == "time_aware" else (spec,), splits,
                                replace(features, summaries=k), label=f"tiers: {k.replace('_', '-')} summaries")
                for k in refit]
    res = dict(zip(refit, run_protocols(requests, evaluation=config.evaluation, preset=preset,
                                        random_state=config.random_state, progress=progress, backend=backend,
                                        keep_features=False)))
    ta = res["time_aware"]
    ta_name = max(tab, key=lambda n: np.nan_to_num(ta.validation[n].metrics["auroc"], nan=-1.0))
    p = {"order_free": full.test[name].y_proba}
    for k, r in res.items():
        used = ta_name if k == "time_aware" else name
        if not np.array_equal(r.test[used].y_true, y):
            raise CohortError("The tier refits were not scored on the same test rows; this is a bug, please report "
                              "it with the data's layout.")
        p[k] = r.test[used].y_proba
    p["sequence"] = seq[1]
    ci_level = config.evaluation.ci_level
    if clusters is not None:
        def metrics(q):
            return cluster_bootstrap_metrics(y, q, 0.5, clusters, ci_level)

        def paired(qa, qb):
            return cluster_paired_bootstrap(y, qa, qb, clusters, "auroc", ci_level)
    else:
        def metrics(q):
            return bootstrap_metrics(y, q, 0.5, idx, ci_level)

        def paired(qa, qb):
            return paired_bootstrap(y, qa, qb, idx, "auroc", ci_level)
    auroc = {k: _auc(y, q) for k, q in p.items()}
    auprc = {k: _auprc(y, q) for k, q in p.items()}
    ci = {}
    for k, q in p.items():
        b = metrics(q)
        ci[f"auroc_{k}"], ci[f"auprc_{k}"] = b["auroc"], b["auprc"]
    diffs = {"time_aware_minus_order_free": paired(p["time_aware"], p["order_free"]),
             "sequence_minus_order_free": paired(p["sequence"], p["order_free"]),
             "sequence_minus_time_aware": paired(p["sequence"], p["time_aware"])}
    seq_label = registry.get(seq[0]).label
    gain = diffs["sequence_minus_order_free"]
    recovered = diffs["time_aware_minus_order_free"]["difference"] / gain["difference"] \
        if describe_evidence(gain["ci_low"], gain["ci_high"]) == "positive" else float("nan")
    ta_label = registry.get(ta_name).label
    tiers = TierResult(model=name, label=spec.label, time_aware_model=ta_name, time_aware_label=ta_label,
                       sequence_model=seq[0], sequence_label=seq_label, preset=preset,
                       auroc={k: auroc[k] for k, _ in TIERS}, auprc={k: auprc[k] for k, _ in TIERS},
                       ci={k: v for k, v in ci.items() if not k.endswith("missingness_only")}, differences=diffs,
                       recovered=recovered,
                       sentence=_tier_sentence(spec.label, ta_label, seq_label, diffs, recovered))
    mv = paired(p["order_free"], p["missingness_only"])
    a_m, a_v = auroc["missingness_only"], auroc["order_free"]
    share = (a_m - 0.5) / (a_v - 0.5) if np.isfinite(a_v) and a_v > 0.5 else float("nan")
    m_ci = {"auroc_missingness": ci["auroc_missingness_only"], "auroc_values": ci["auroc_order_free"],
            "auprc_missingness": ci["auprc_missingness_only"], "auprc_values": ci["auprc_order_free"]}
    missing = MissingnessResult(model=name, label=spec.label, auroc_missingness=a_m, auroc_values=a_v,
                                auprc_missingness=auprc["missingness_only"], auprc_values=auprc["order_free"],
                                ci=m_ci, difference=mv["difference"], ci_low=mv["ci_low"], ci_high=mv["ci_high"],
                                p_value=mv["p_value"], share=share,
                                sentence=_missingness_sentence(spec.label, a_m, a_v, m_ci, mv, share))
    return tiers, missing


def _tier_sentence(label: str, ta_label: str, seq_label: str, diffs: dict, recovered: float) -> str:
    """Where the sequence model's gain over order-free summaries comes from, in words (numbers with CIs)."""
    b, c, cb = (diffs[k] for k in ("time_aware_minus_order_free", "sequence_minus_order_free",
                                   "sequence_minus_time_aware"))
    ev_b, ev_c, ev_cb = (describe_evidence(d["ci_low"], d["ci_high"]) for d in (b, c, cb))
    models = f"{label} on both" if ta_label == label else f"{label} on order-free, {ta_label} on time-aware summaries"
    who = f"the {label}'s" if ta_label == label else f"the best order-free model's ({label} -> {ta_label})"

    def num(d):
        return f"{d['difference']:+.3f} {_fmt_ci(d['ci_low'], d['ci_high'])}"
    if ev_c == "positive":
        share = f"; {recovered:.0%} recovered" if ev_b == "positive" else ""
        head = (f"Time-aware summaries recover {num(b)} of the {num(c)} AUROC points the {seq_label} gains over "
                f"order-free summaries ({models}{share})")
        if ev_b == "positive" and ev_cb != "positive":
            tail = ("most of the advantage of order here is *when* things happen, which hand-made features can "
                    f"carry (what remains for the {seq_label}, {num(cb)}, is not significant)")
        elif ev_b == "positive":
            tail = (f"part of the advantage is *when* things happen, but the {seq_label} still gains {num(cb)} over "
                    "the time-aware summaries: it uses more of the order than these features hold")
        elif ev_b == "negative":
            tail = "the time-aware features made the order-free model worse, so they do not explain the advantage"
        else:
            tail = ("no evidence that these hand-made timing features carry the advantage (their CI includes "
                    f"zero): the {seq_label} uses the order in ways they do not capture, or the sample is too small "
                    "to tell")
        return f"{head}: {tail}."
    what = {"negative": f"the {seq_label} does significantly worse than order-free summaries ({num(c)} AUROC)",
            "none": f"the {seq_label} does not significantly beat order-free summaries ({num(c)} AUROC, CI includes "
                    "zero)"}[ev_c]
    extra = {"positive": f"even so, time-aware summaries lift {who} AUROC by {num(b)}: knowing *when* "
                         "things happened helps the classical model",
             "negative": f"time-aware summaries change {who} AUROC by {num(b)} (worse: the extra features "
                         "cost more than they add here)",
             "none": f"time-aware summaries change {who} AUROC by {num(b)}, no evidence that timing adds to "
                     "the order-free summaries"}[ev_b]
    return f"There is no significant order advantage to explain: {what}; {extra}."


def _missingness_sentence(label: str, a_m: float, a_v: float, ci: dict, mv: dict, share: float) -> str:
    """How much of the signal is in *when* things were measured, in words."""
    lo, hi = ci["auroc_missingness"]
    head = (f"The same {label} model fitted on when variables were measured alone (no values) reaches AUROC {a_m:.3f} "
            f"[{lo:.3f}, {hi:.3f}], against {a_v:.3f} [{ci['auroc_values'][0]:.3f}, {ci['auroc_values'][1]:.3f}] "
            "for the same model on the values")
    if not np.isfinite(share):
        return head + ": the values model is no better than chance, so no share of its signal can be given."
    part = f"{share:.0%} of the values model's AUROC above chance (0.5)"
    if np.isfinite(lo) and lo > 0.5:
        meaning = ("so a large part of the signal is in *when* things were measured" if share >= 0.5 else
                   "so some of the signal is in *when* things were measured")
    else:
        meaning = "but its CI includes chance, so there is no evidence that the measurement pattern alone carries signal"
    ev = describe_evidence(mv["ci_low"], mv["ci_high"])
    values = {"positive": f"the values add {mv['difference']:+.3f} {_fmt_ci(mv['ci_low'], mv['ci_high'])}",
              "negative": f"the values model is worse by {-mv['difference']:.3f} "
                          f"{_fmt_ci(mv['ci_low'], mv['ci_high'])}",
              "none": f"the values add {mv['difference']:+.3f} {_fmt_ci(mv['ci_low'], mv['ci_high'])}, not "
                      "significant"}[ev]
    return f"{head}: {part}, {meaning}; {values}."


# ----------------------------------------------------------------------------------------------
# keeping the result with the run
# ----------------------------------------------------------------------------------------------
#: the name of the time-order result among a run's attached analyses (``analyses/timeorder.json``).
TIMEORDER_FILE = "timeorder.json"


def save_timeorder(run_folder: str | Path, result: TimeOrderResult) -> str:
    """Attach ``result`` to the saved run it analysed, as ``analyses/timeorder.json`` (covered by the run's manifest,
    :func:`core.runs.store.attach_files`; a previous one is replaced).

    Parameters
    ----------
    run_folder : str or Path
        The run folder (:func:`core.runs.store.save_run`).
    result : TimeOrderResult
        From ``run_timeorder(cohort, config, run=run)`` on this run.

    Returns
    -------
    str
        The file's path inside the run (``"analyses/timeorder.json"``).

    Raises
    ------
    RunError
        ``result`` was not computed on a saved run, or on another run or other data; the run fails
        :func:`core.runs.store.verify_run`.

    Examples
    --------
    >>> save_timeorder("runs/my_run", run_timeorder(cohort, TimeOrderConfig.for_run(run), run=run))  # doctest: +SKIP
    'analyses/timeorder.json'
    """
    from core.runs.store import attach_files, read_json
    folder = Path(run_folder)
    if not result.run:
        raise RunError("This time-order result drew its own split and trained its own models, so it belongs to no "
                       "run and is not attached to one. Analyse the run itself: run_timeorder(cohort, "
                       "TimeOrderConfig.for_run(run), run=run) (python -m core timeorder DATA --run RUN --out DIR).")
    cfg = read_json(folder / "config.json")
    request = str(cfg.get("request") or "")
    same_run = result.run_request == request if result.run_request and request else result.run == folder.name
    if str(cfg.get("fingerprint", "")) != result.data_fingerprint or not same_run:
        raise RunError(f"This time-order result analysed the run {result.run} (data fingerprint "
                       f"{result.data_fingerprint}), not the run {folder.name}: attach it to the run it was computed on, "
                       "or analyse this run (run_timeorder(cohort, TimeOrderConfig.for_run(run), run=run)).")
    text = json.dumps(jsonable(result.to_dict()), indent=2, allow_nan=False)
    return attach_files(folder, {TIMEORDER_FILE: text})[0]


def load_timeorder(run_folder: str | Path) -> TimeOrderResult | None:
    """The time-order result attached to the run (:func:`save_timeorder`), or ``None`` when it has none.

    Raises
    ------
    RunError
        The run fails :func:`core.runs.store.verify_run` (a file was changed), or its timeorder.json is not a
        time-order result.
    """
    from core.runs.store import read_attached
    folder = Path(run_folder)
    raw = read_attached(folder, TIMEORDER_FILE)
    if raw is None:
        return None
    from core.runs.runfiles import parse_json
    try:
        return TimeOrderResult.from_dict(parse_json(raw, name=f"analyses/{TIMEORDER_FILE}"))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise RunError(f"analyses/{TIMEORDER_FILE} of the run {folder.name} cannot be read ({err}). Compute it "
                       "again: python -m core timeorder DATA --run RUN --out DIR.") from None
