"""Typed requests: one frozen object per kind of work, the only place its defaults are defined.

A page, a CLI command and a job all go page/command -> request -> runner (:mod:`core.service.runners`)
-> protocol. A request holds everything its result depends on (with the data, given separately as a
cohort) plus, for trainings, where the run is written (``out``, ``reuse_dirs``: not part of its identity).

Every request has ``kind`` (the job kind), :meth:`identity` (what makes two requests the same, for
:func:`core.service.runners.request_key`) and :meth:`describe` (one line for a person, for job lists).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from core.config import DataConfig, EvaluationConfig, FeatureConfig, SplitConfig
from core.models import registry as _registry
from core.models.base import check_preset

__all__ = ["TrainRequest", "TimeOrderRequest", "ExplainRequest", "PredictRequest", "GatesRequest",
           "CrossValidateRequest", "ValidateRequest", "PairRequest", "EvaluateRequest", "SubgroupsRequest", "DEFAULT_PRESET", "DEFAULT_MODELS", "DEFAULT_HORIZONS", "EARLY_MODELS",
           "EXPLAIN_QUICK_MODELS"]

#: preset of every training unless the user picks another (the pages' and the CLI's default).
DEFAULT_PRESET = "quick"
#: models of a training when none are named: all eight of the registry.
DEFAULT_MODELS: tuple[str, ...] = _registry.names()
#: hours of data of the early-prediction curves (the full window is always added).
DEFAULT_HORIZONS: tuple[float, ...] = (12.0, 24.0, 48.0)
#: models refitted on the shorter horizons by default (the full-horizon points are the run's own models).
EARLY_MODELS: tuple[str, ...] = ("lr", "gru")
#: the quick set the Explain page trains when no run exists on the data.
EXPLAIN_QUICK_MODELS: tuple[str, ...] = ("lr", "rf", "gbm", "gru")


def _names(models, what: str) -> tuple[str, ...]:
    from core.models import registry
    names = tuple(dict.fromkeys(str(m).strip().lower() for m in models))
    if not names:
        raise ValueError(f"{what} must name at least one model. Example: {what}=('lr', 'gru').")
    for n in names:
        registry.get(n)                        # ValueError naming the valid models
    return names


@dataclass(frozen=True)
class TrainRequest:
    """Train and compare ``models`` with the protocol; the result is a saved run (:class:`core.runs.store.RunSummary`).

    Parameters
    ----------
    models : tuple of str
        Registry names (default: all eight).
    preset : {"test", "quick", "full"}
    seed : int
        Seed of the split, the models and the bootstrap.
    refit : bool
        Also refit every model on training + validation patients (for prediction).
    max_hours : float
        Online task: hours of each stay used and scored.
    window_hours : float
        Stay task: the first hours of each stay the models see.
    features, split, evaluation : configs, optional
        Replace the defaults (CLI options); ``None``: :func:`core.training.experiment.default_features` of the cohort,
        ``SplitConfig(random_state=seed)`` and ``EvaluationConfig()``.
    out : str
        The run folder to write (not part of the identity).
    reuse_dirs : tuple of str
        Folders whose runs of the identical request are reused instead of training again (empty: never reuse).
    """

    models: tuple[str, ...] = DEFAULT_MODELS
    preset: str = DEFAULT_PRESET
    seed: int = 0
    refit: bool = False
    max_hours: float = 336.0
    window_hours: float = 48.0
    features: FeatureConfig | None = None
    split: SplitConfig | None = None
    evaluation: EvaluationConfig | None = None
    out: str = field(default="", compare=False)
    reuse_dirs: tuple[str, ...] = field(default=(), compare=False)
    kind = "train"

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", _names(self.models, "TrainRequest.models"))
        check_preset(self.preset)
        if int(self.seed) < 0:
            raise ValueError(f"TrainRequest.seed must be >= 0; got {self.seed!r}. Example: TrainRequest(seed=0).")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "reuse_dirs", tuple(str(d) for d in self.reuse_dirs))

    def resolved(self, cohort) -> tuple[FeatureConfig, SplitConfig, EvaluationConfig]:
        """The feature, split and evaluation configs this request trains with on ``cohort``."""
        from core.training.experiment import default_features
        features = self.features or default_features(cohort, window_hours=self.window_hours, max_hours=self.max_hours)
        return (features, self.split or SplitConfig(random_state=self.seed),
                self.evaluation or EvaluationConfig(random_state=self.seed))

    def identity(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("out", "reuse_dirs")}

    def describe(self, n_patients: int) -> str:
        return (f"Train {len(self.models)} model{'s' * (len(self.models) > 1)} ({self.preset}) on "
                f"{n_patients:,} patients")


@dataclass(frozen=True)
class TimeOrderRequest:
    """The time-order analysis (:func:`core.analysis.timeorder.run_timeorder`) of a saved run.

    Parameters
    ----------
    run : str
        The run folder; its split, models, preset and seed are used, and the result is kept with it.
        Empty: ``train`` is trained and saved first, then analysed (one job: the page's button when no
        run exists on the data yet).
    model : str
        Sequence model of the order ablation.
    horizons_hours : tuple of float
        Hours of data of the early-prediction curves (the run's full window is always added).
    early_models : tuple of str
        Models refitted on the shorter horizons (those of the run; the full-horizon points are the run's).
    tiers : bool
        Also the three tiers and the missingness-only model.
    train : TrainRequest, optional
        The run to train first when ``run`` is empty.
    """

    run: str = ""
    model: str = "gru"
    horizons_hours: tuple[float, ...] = DEFAULT_HORIZONS
    early_models: tuple[str, ...] = EARLY_MODELS
    tiers: bool = True
    train: TrainRequest | None = None
    kind = "timeorder"

    def __post_init__(self) -> None:
        from core.models import registry
        if registry.get(self.model).input_kind != "sequence":
            raise ValueError(f"TimeOrderRequest.model must be a sequence model ({', '.join(registry.SEQUENCE)}); "
                             f"got {self.model!r}. Example: TimeOrderRequest(model='gru').")
        try:
            hours = tuple(sorted({float(h) for h in self.horizons_hours}))
        except (TypeError, ValueError):
            raise ValueError(f"TimeOrderRequest.horizons_hours must be hours; got {self.horizons_hours!r}. "
                             "Example: horizons_hours=(12, 24, 48).") from None
        if not hours or min(hours) <= 0:
            raise ValueError(f"TimeOrderRequest.horizons_hours must be positive hours; got {self.horizons_hours!r}. "
                             "Example: horizons_hours=(12, 24, 48).")
        object.__setattr__(self, "horizons_hours", hours)
        object.__setattr__(self, "early_models", tuple(dict.fromkeys(str(m) for m in self.early_models)))
        if not self.run and self.train is None:
            raise ValueError("TimeOrderRequest needs a run folder (run=...) or a training to make one (train=...).")

    def identity(self) -> dict:
        d = asdict(self)
        if self.train is not None:
            d["train"] = self.train.identity()
        return d

    def describe(self, n_patients: int) -> str:
        first = f"train {len(self.train.models)} models ({self.train.preset}), then " if not self.run else ""
        return f"Time-order analysis ({first}ablation of {self.model}, {len(self.horizons_hours)} horizons) on " \
               f"{n_patients:,} patients"


@dataclass(frozen=True)
class ExplainRequest:
    """Explain one model of a saved run on its first ``n_patients`` test patients (kept with the run).

    ``hour``: online runs only, the hour of the stay whose risk is explained.
    """

    run: str
    model: str
    n_patients: int = 50
    hour: float | None = None
    kind = "explain"

    def __post_init__(self) -> None:
        if not self.run:
            raise ValueError("ExplainRequest.run must be a run folder. Example: ExplainRequest(run='runs/r1', "
                             "model='gru').")
        _names((self.model,), "ExplainRequest.model")
        if not 1 <= int(self.n_patients) <= 5000:
            raise ValueError(f"ExplainRequest.n_patients must be between 1 and 5000; got {self.n_patients!r}. "
                             "Example: ExplainRequest(..., n_patients=50).")
        object.__setattr__(self, "n_patients", int(self.n_patients))
        if self.hour is not None:
            object.__setattr__(self, "hour", float(self.hour))

    def identity(self) -> dict:
        return asdict(self)

    def describe(self, n_patients: int) -> str:
        from core.models import registry
        return f"Explain {registry.get(self.model).label} on {self.n_patients} test patients"


@dataclass(frozen=True)
class PredictRequest:
    """Score the patients of a cohort with a saved run (:func:`core.runs.predict.predict_patients`).

    ``source`` names the scored data in words (a file name, "the demo patients"); ``models`` a subset;
    ``mapping`` the user's own ``(name in the data, name in the run)`` pairs (synonyms are matched anyway:
    :func:`core.runs.predict.map_to_run`).
    """

    run: str
    models: tuple[str, ...] | None = None
    source: str = field(default="", compare=False)
    mapping: tuple[tuple[str, str], ...] = ()
    allow_missing: bool = False
    kind = "predict"

    def __post_init__(self) -> None:
        if not self.run:
            raise ValueError("PredictRequest.run must be a run folder. Example: PredictRequest(run='runs/r1').")
        if self.models is not None:
            object.__setattr__(self, "models", _names(self.models, "PredictRequest.models"))
        pairs = self.mapping.items() if isinstance(self.mapping, dict) else self.mapping
        try:
            pairs = tuple(sorted((str(new), str(old)) for new, old in pairs))
        except (TypeError, ValueError):
            raise ValueError("PredictRequest.mapping must be (name in the data, name in the run) pairs. Example: "
                             "PredictRequest(run='runs/r1', mapping=(('DBP', 'DiasABP'),)).") from None
        object.__setattr__(self, "mapping", pairs)

    def identity(self) -> dict:
        out = {"run": self.run, "models": self.models}
        if self.mapping:            # requests without a mapping keep the identity (and reuse key) they always had
            out["mapping"] = [list(p) for p in self.mapping]
        if self.allow_missing:
            out["allow_missing"] = True
        return out

    def describe(self, n_patients: int) -> str:
        from pathlib import Path
        return f"Score {n_patients:,} patients with run {Path(self.run).name}"


@dataclass(frozen=True)
class GatesRequest:
    """Train a small GRU and LSTM to look inside (:func:`core.analysis.gates.fit_gate_models`): the How RNNs work page
    when the current run has neither."""

    cells: tuple[str, ...] = ("gru", "lstm")
    max_patients: int | None = 1000
    hidden_size: int = 16
    max_epochs: int = 15
    random_state: int = 0
    kind = "gates"

    def identity(self) -> dict:
        return asdict(self)

    def describe(self, n_patients: int) -> str:
        return f"Train a small {' and '.join(c.upper() for c in self.cells)} on up to " \
               f"{min(n_patients, self.max_patients or n_patients):,} patients"


@dataclass(frozen=True)
class CrossValidateRequest:
    """K-fold cross-validation of a saved run's models, preset, features and seed on all its patients; the
    summary is kept with the run (``cv.json``)."""

    run: str
    n_folds: int = 5
    repeats: int = 1
    kind = "cv"

    def __post_init__(self) -> None:
        if int(self.n_folds) < 2:
            raise ValueError(f"CrossValidateRequest.n_folds must be >= 2; got {self.n_folds!r}. "
                             "Example: CrossValidateRequest(run=..., n_folds=5).")
        if not 1 <= int(self.repeats) <= 10:
            raise ValueError(f"CrossValidateRequest.repeats must be 1 to 10; got {self.repeats!r}. "
                             "Example: CrossValidateRequest(run=..., n_folds=5, repeats=2).")
        object.__setattr__(self, "n_folds", int(self.n_folds))
        object.__setattr__(self, "repeats", int(self.repeats))

    def identity(self) -> dict:
        out = asdict(self)
        if self.repeats == 1:        # a single repetition keeps the identity (and reuse key) it always had
            out.pop("repeats")
        return out

    def describe(self, n_patients: int) -> str:
        times = f" x {self.repeats}" if self.repeats > 1 else ""
        return f"{self.n_folds}-fold{times} cross-validation on {n_patients:,} patients"


def _source_identity(source) -> object:
    """What a data source's result depends on: an upload's name and SHA-256, a file's path, size and time."""
    import hashlib
    import os
    from pathlib import Path
    if source is None:
        return None
    if isinstance(source, tuple):
        name, content = source
        if isinstance(content, Path):
            content = content.read_bytes()
        return [str(name), hashlib.sha256(content).hexdigest()]
    path = Path(source)
    try:
        stat = path.stat()
    except OSError:
        return [str(path)]
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns, sorted(os.listdir(path)) if path.is_dir() else None]


@dataclass(frozen=True)
class ValidateRequest:
    """Read and check a data source into a cohort (:func:`core.data.ingest.validate_data`); the result is
    ``(cohort or None, ValidationReport)``. The work needs no cohort: submit it with ``cohort=None``.

    Parameters
    ----------
    events : path, (file name, bytes) or (file name, Path)
        The events (:data:`core.data.readers.Source`): a large upload is best passed kept on disk (name, Path).
    labels : same, optional
    config : DataConfig
    name : str
        What the data are called for a person (the uploaded file's name); not part of the identity.
    digests : tuple of str
        SHA-256 of the events and labels contents when the caller has them (the app's uploads): the identity
        then uses them instead of hashing the files again.
    settings : tuple of (str, str)
        Environment values the validation runs with (:func:`core.data.ingest.reading_settings` of the submitting
        process: its limits and engine), so a job's worker reads as the server would; part of the identity.
    """

    events: object
    labels: object = None
    config: DataConfig = field(default_factory=DataConfig)
    name: str = field(default="", compare=False)
    digests: tuple[str, ...] = field(default=(), compare=False)
    settings: tuple[tuple[str, str], ...] = ()
    kind = "validate"

    def __post_init__(self) -> None:
        if not isinstance(self.config, DataConfig):
            raise TypeError(f"ValidateRequest.config must be a DataConfig; got {type(self.config).__name__}. "
                            "Example: ValidateRequest(events='events.csv', config=DataConfig(target='died')).")
        object.__setattr__(self, "settings", tuple(sorted((str(k), str(v)) for k, v in dict(self.settings).items())))
        if self.events is None or (isinstance(self.events, tuple) and len(self.events) != 2):
            raise ValueError(f"ValidateRequest.events must be a path or (file name, content); got "
                             f"{type(self.events).__name__}. Example: ValidateRequest(events='events.csv').")

    def identity(self) -> dict:
        sources = [self.events, self.labels]
        if self.digests:
            names = [s[0] if isinstance(s, tuple) else str(s) for s in sources if s is not None]
            return {"names": names, "digests": list(self.digests), "config": repr(self.config),
                    "settings": dict(self.settings)}
        return {"events": _source_identity(self.events), "labels": _source_identity(self.labels),
                "config": repr(self.config), "settings": dict(self.settings)}

    def describe(self, n_patients: int = 0) -> str:
        shown = self.name or (self.events[0] if isinstance(self.events, tuple) else str(self.events))
        return f"Read and check {shown}"


@dataclass(frozen=True)
class PairRequest:
    """Compare two saved runs on their common test patients (:func:`core.runs.pair.compare_runs`): run ``b``
    against the baseline ``a``. The cohort given with it is not read (the runs' own test predictions are)."""

    a: str
    b: str
    n_bootstrap: int = 1000
    random_state: int = 0
    kind = "pair"

    def __post_init__(self) -> None:
        if not self.a or not self.b or self.a == self.b:
            raise ValueError("PairRequest needs two different run folders. Example: PairRequest(a='runs/quick', "
                             "b='runs/full').")
        if int(self.n_bootstrap) < 1:
            raise ValueError(f"PairRequest.n_bootstrap must be at least 1; got {self.n_bootstrap!r}.")

    def identity(self) -> dict:
        return {"a": self.a, "b": self.b, "n_bootstrap": int(self.n_bootstrap), "random_state": int(self.random_state)}

    def describe(self, n_patients: int) -> str:
        from pathlib import Path
        return f"Compare run {Path(self.b).name} with run {Path(self.a).name}"


@dataclass(frozen=True)
class EvaluateRequest:
    """Measure a saved run on labelled data from elsewhere (:func:`core.runs.external.validate_external`).

    ``mapping``: the user's own ``(name in the data, name in the run)`` pairs; ``attributes``: the static
    attributes to form subgroups by (``None``: every one); ``source`` names the data in words.
    """

    run: str
    mapping: tuple[tuple[str, str], ...] = ()
    attributes: tuple[str, ...] | None = None
    n_bootstrap: int = 1000
    random_state: int = 0
    source: str = field(default="", compare=False)
    allow_missing: bool = False
    kind = "evaluate"

    def __post_init__(self) -> None:
        if not self.run:
            raise ValueError("EvaluateRequest.run must be a run folder. Example: EvaluateRequest(run='runs/r1').")
        pairs = self.mapping.items() if isinstance(self.mapping, dict) else self.mapping
        object.__setattr__(self, "mapping", tuple(sorted((str(a), str(b)) for a, b in pairs)))
        if self.attributes is not None:
            object.__setattr__(self, "attributes", tuple(str(a) for a in self.attributes))
        if int(self.n_bootstrap) < 1:
            raise ValueError(f"EvaluateRequest.n_bootstrap must be at least 1; got {self.n_bootstrap!r}.")

    def identity(self) -> dict:
        return {"run": self.run, "mapping": [list(p) for p in self.mapping], "attributes": self.attributes,
                "n_bootstrap": int(self.n_bootstrap), "random_state": int(self.random_state),
                "allow_missing": bool(self.allow_missing)}

    def describe(self, n_patients: int) -> str:
        from pathlib import Path
        return f"Validate run {Path(self.run).name} on {n_patients:,} labelled patients"


@dataclass(frozen=True)
class SubgroupsRequest:
    """A run's test metrics per subgroup of static attributes (:func:`core.evaluation.subgroups.subgroup_metrics`);
    the attributes are read from the cohort given with it (the run's own data). ``attributes=None``: every one."""

    run: str
    attributes: tuple[str, ...] | None = None
    n_bootstrap: int = 1000
    random_state: int = 0
    kind = "subgroups"

    def __post_init__(self) -> None:
        if not self.run:
            raise ValueError("SubgroupsRequest.run must be a run folder. Example: SubgroupsRequest(run='runs/r1').")
        if self.attributes is not None:
            object.__setattr__(self, "attributes", tuple(str(a) for a in self.attributes))
        if int(self.n_bootstrap) < 1:
            raise ValueError(f"SubgroupsRequest.n_bootstrap must be at least 1; got {self.n_bootstrap!r}.")

    def identity(self) -> dict:
        return {"run": self.run, "attributes": self.attributes, "n_bootstrap": int(self.n_bootstrap),
                "random_state": int(self.random_state)}

    def describe(self, n_patients: int) -> str:
        from pathlib import Path
        return f"Subgroups of run {Path(self.run).name}"
