"""The time-order analysis's configuration: :class:`TimeOrderConfig` (what it trains, on which horizons, how it
measures uncertainty) and the :data:`Progress` callback it reports through."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable

import numpy as np

from core.config import EvaluationConfig, FeatureConfig, SplitConfig
from core.exceptions import RunError
from core.models import registry
from core.models.base import check_preset

__all__ = ["TimeOrderConfig", "Progress"]

#: ``progress(message, fraction_done)``, fraction over the whole analysis in [0, 1].
Progress = Callable[[str, float], None]


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
    names = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in dict(d).items() if k in names})
