"""The one training protocol every analysis uses, and the only place patients are split.

split by patient (:func:`split_by_patient`, :func:`patient_folds`) -> build features fitted on
training patients -> fit each model -> choose its threshold on validation patients -> score test patients.

The comparison (:func:`core.training.experiment.run_experiment`), cross-validation
(:func:`core.training.experiment.cross_validate`), the time-order analysis (:func:`core.analysis.timeorder.run_timeorder`)
and the gate models (:func:`core.analysis.gates.fit_gate_models`) all call :func:`run_protocol`; what differs
between them is passed in: which models (registry specs or custom ones), which features (a
:class:`~core.config.FeatureConfig`, or an already fitted builder for a shuffled view of the same
patients), which task shape (``FeatureConfig.task``: one label per stay, or one per patient-hour)
and which splits.

Why this order: every statistic (clipping, standardisation, imputation, scaling, early stopping) is
learned from training patients only; thresholds from validation patients; the metrics, their
confidence intervals and paired tests come from test patients, which nothing else has seen. Every
model of one call is fitted on the same rows and scored on the same rows, so comparisons are paired.

Large cohorts: when a run's hourly sequences (every split together) would exceed
``CHRONOSCOPE_FEATURES_IN_MEMORY_MB`` (default 1024; 0 always), its features are built out of core,
into a fresh ``chronoscope-features-*`` folder under ``CHRONOSCOPE_TMP_DIR`` (default: the system
temporary folder; pick a disk, not a RAM-backed tmpfs), and the recurrent models read them a batch at
a time. The numbers are the same. Every risk is computed before the call returns and the folder is
removed then, also after an error or a cancel; nothing saved refers to it.
"""
from __future__ import annotations

import itertools
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from core.data.cohort import Cohort
from core.config import EvaluationConfig, FeatureConfig, SplitConfig
from core.evaluation.alarms import alarm_intervals
from core.evaluation.metrics import (ClusterBootstrap, ComparisonResult, alarm_metrics, bootstrap_indices, choose_threshold,
                             compare, evaluate)
from core.exceptions import CohortError
from core.features import FeatureBuilder, FeatureSet
from core.training.engine import Backend, LocalBackend
from core.models.base import ModelSpec
from core.models.staged import FitPlan, FitProgress, fit_in_stages, heartbeat
from core.settings import Settings, read_settings
from core.training.threads import limit_threads

__all__ = ["FittedRun", "as_fitted", "ProtocolResult", "ProtocolRequest", "split_by_patient", "patient_folds", "subsample_patients",
           "run_protocol", "run_protocols", "refit_models", "make_model", "fit_model", "predict_units", "Progress",
           "FEATURES_IN_MEMORY_ENV", "features_in_memory_mb"]

#: ``progress(message, fraction_done)``; fraction over the whole call, in [0, 1].
Progress = Callable[[str, float], None]
#: numbers the fit plans of this process (a fit's key is "PLAN.INDEX": unique among one job's fits).
_PLANS = itertools.count(1)
#: environment variable: the largest sequence array (MB, all splits of one run) built in memory; 0 = never.
FEATURES_IN_MEMORY_ENV = Settings.features_in_memory_mb.env


def features_in_memory_mb() -> float:
    """``$CHRONOSCOPE_FEATURES_IN_MEMORY_MB`` (default 1024): above it a run's features are built out of core.

    Raises
    ------
    core.settings.SettingError
        The variable is set but is not a number >= 0.
    """
    return read_settings().features_in_memory_mb


class _FeatureWork:
    """The work folder of one call's out-of-core features: made on first need, removed by :meth:`close`.

    ``folder(nbytes, name)`` is ``None`` (build in memory) when ``nbytes`` fits under
    :func:`features_in_memory_mb`, else a subfolder ``name`` of a fresh ``chronoscope-features-*``
    folder. Feature sets still referenced after their files are removed stay readable (POSIX keeps a
    deleted file's mapped pages until the last map is gone), so a result's kept features never break.
    """

    def __init__(self) -> None:
        self.limit_bytes = features_in_memory_mb() * 2**20
        self.root: Path | None = None

    def folder(self, nbytes: int, name: str) -> Path | None:
        if nbytes <= self.limit_bytes:
            return None
        if self.root is None:          # owner-only (mkdtemp: 700): the arrays are patient data
            base = read_settings().tmp_dir
            if base:
                Path(base).mkdir(parents=True, exist_ok=True)
            self.root = Path(tempfile.mkdtemp(prefix="chronoscope-features-", dir=base))
        return self.root / name

    def release(self, name: str) -> None:
        """Remove one run's subfolder now (the local backend: one run's files on disk at a time)."""
        if self.root is not None:
            shutil.rmtree(self.root / name, ignore_errors=True)

    def close(self) -> None:
        if self.root is None:
            return
        shutil.rmtree(self.root, ignore_errors=True)
        if self.root.exists():
            warnings.warn(f"Could not remove the feature work folder {self.root}; delete it by hand.", stacklevel=2)
        self.root = None

    def __enter__(self) -> "_FeatureWork":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class FittedRun:
    """The fitted part of any comparison: what explanations, gate traces and scoring need.

    :class:`ProtocolResult`, :class:`core.training.experiment.ExperimentResult`, :class:`core.runs.store.Run` and
    :class:`core.analysis.gates.GateModels` each give theirs as ``.fitted``; :func:`as_fitted` accepts any of them.

    Attributes
    ----------
    builder : FeatureBuilder
        Fitted on the training patients.
    models : dict of str to fitted estimator
    splits : dict of str to ndarray
        ``"train"``, ``"validation"``, ``"test"`` patient ids.
    """

    builder: FeatureBuilder
    models: dict
    splits: dict


def as_fitted(run) -> FittedRun:
    """``run`` itself if it is a :class:`FittedRun`, else its ``.fitted`` (a run, an experiment, gate models).

    Raises
    ------
    TypeError
        ``run`` is neither (e.g. an unfitted config or a path).
    """
    if isinstance(run, FittedRun):
        return run
    fitted = getattr(run, "fitted", None)
    if isinstance(fitted, FittedRun):
        return fitted
    raise TypeError("This needs a trained run (core.runs.store.load_run(...)), an ExperimentResult, GateModels or a "
                    f"FittedRun; got {type(run).__name__}.")


@dataclass
class ProtocolResult:
    """What one run of the protocol produced.

    Attributes
    ----------
    builder, models, splits
        As in :class:`FittedRun` (``.fitted`` gives them as one).
    validation, test : dict of str to EvaluationResult
        Per model; the threshold is chosen on validation and applied unchanged to test. Test results
        carry confidence intervals (bootstrap over patients, shared by every model: paired).
    train_seconds : dict of str to float
    features : dict of str to FeatureSet
        The built feature sets per split (kept for callers that score other views, e.g. the ablation).
        Out of core, their arrays are read-only memory maps of files already deleted: readable until the
        result is dropped, which frees the disk space.
    bootstrap : ndarray or None
        The test resample indices shared by every model (stay task), for paired comparisons.
    clusters : ClusterBootstrap or None
        Online task: the patient-level bootstrap of the test patient-hours, shared by every model.
    """

    builder: FeatureBuilder
    models: dict
    splits: dict
    validation: dict
    test: dict
    train_seconds: dict
    features: dict = field(default_factory=dict, repr=False)
    bootstrap: object = field(default=None, repr=False)
    clusters: object = field(default=None, repr=False)

    @property
    def fitted(self) -> FittedRun:
        return FittedRun(self.builder, self.models, self.splits)

    def compare(self, name: str, reference: str, evaluation: EvaluationConfig | None = None) -> ComparisonResult:
        """Paired comparison of two models on the same test rows (resampled by patient when online)."""
        return compare(self.test[name], self.test[reference], evaluation, idx=self.bootstrap, clusters=self.clusters)


# -- split: every patient split of the product is made here ----------------------------------
def split_by_patient(cohort: Cohort, config: SplitConfig | None = None) -> dict[str, np.ndarray]:
    """Stratified patient-level split of the labelled patients.

    With ``cohort.groups`` (``DataConfig.group_col``) whole groups are assigned to one side
    (:func:`_split_groups`), so no group has patients in two splits; without, the split is
    ``train_test_split`` stratified by label, as it always was.

    Returns
    -------
    dict with keys ``"train"``, ``"validation"``, ``"test"``: sorted arrays of patient ids (str).

    Raises
    ------
    CohortError
        No labels, or too few patients of each outcome to split (with groups: a split would lack an outcome).
    """
    config = config or SplitConfig()
    ids = cohort.labelled_ids
    if cohort.labels is None or len(ids) == 0:
        raise CohortError("The cohort has no labelled patients, so models cannot be trained. Load a labels "
                          "file and name the outcome column (e.g. --labels outcomes.csv --target in_hospital_death).")
    y = cohort.labels.loc[ids].to_numpy()
    counts = np.bincount(y, minlength=2)
    if counts.min() < 4:
        raise CohortError(f"Training needs at least 4 patients of each outcome; got {counts[0]} negatives and "
                          f"{counts[1]} positives. Use more patients or another target.")
    if cohort.groups is not None:
        return _split_groups(ids, y, _groups_of(cohort, ids), config)
    rest, test = train_test_split(ids, test_size=config.test_size, stratify=y, random_state=config.random_state)
    y_rest = cohort.labels.loc[rest].to_numpy()
    val_frac = config.validation_size / (1 - config.test_size)
    train, val = train_test_split(rest, test_size=val_frac, stratify=y_rest, random_state=config.random_state + 1)
    return {"train": np.sort(train), "validation": np.sort(val), "test": np.sort(test)}


def patient_folds(cohort: Cohort, n_folds: int, split: SplitConfig | None = None, random_state: int = 0):
    """Stratified K-fold splits of the labelled patients, each a ``train/validation/test`` dict.

    Fold ``k``'s patients are the test patients; the others are split again (stratified) into
    training and validation patients (``split.validation_size`` of all patients), so every fold is a
    full run of the protocol with thresholds chosen on validation patients. With ``cohort.groups``
    the folds are ``StratifiedGroupKFold`` and the inner split assigns whole groups, so no group is
    on two sides of any fold.

    Yields
    ------
    dict with keys ``"train"``, ``"validation"``, ``"test"``: sorted arrays of patient ids (str).

    Raises
    ------
    CohortError
        No labels, or fewer than ``n_folds`` patients of an outcome.
    """
    split = split or SplitConfig(random_state=random_state)
    ids = cohort.labelled_ids
    if not len(ids):
        raise CohortError("The cohort has no labelled patients; load labels to cross-validate.")
    y = cohort.labels.loc[ids].to_numpy().astype(int)
    if np.bincount(y, minlength=2).min() < n_folds:
        raise CohortError(f"{n_folds}-fold cross-validation needs at least {n_folds} patients of each outcome; got "
                          f"{np.bincount(y, minlength=2).tolist()} (negatives, positives). Use fewer folds (--cv 3).")
    val_frac = split.validation_size / (1 - 1 / n_folds)
    if cohort.groups is not None:
        yield from _group_folds(ids, y, _groups_of(cohort, ids), n_folds, val_frac, random_state)
        return
    for f, (rest, te) in enumerate(StratifiedKFold(n_folds, shuffle=True, random_state=random_state).split(ids, y)):
        tr, va = train_test_split(ids[rest], test_size=val_frac, stratify=y[rest], random_state=random_state + f)
        yield {"train": np.sort(tr), "validation": np.sort(va), "test": np.sort(ids[te])}


def _groups_of(cohort: Cohort, ids: np.ndarray) -> np.ndarray:
    """The group of each of ``ids`` (str); a patient missing from ``cohort.groups`` is its own group."""
    g = cohort.groups.reindex(ids)
    own = g.isna().to_numpy()
    out = g.astype(object).to_numpy().copy()
    out[own] = np.array(["\0patient:" + str(p) for p in ids[own]], dtype=object)
    return out.astype(str)


def _assign_groups(y: np.ndarray, groups: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Split index (0, 1, ...) of every patient: whole groups to each split, about ``fractions`` of the patients.

    Groups are put in strata by their share of positives (all negative, mixed, all positive), shuffled
    with ``seed`` within each stratum, then dealt in that order: a group joins split ``k`` when the
    middle of its patients falls in the ``k``-th slice of the stratum's patients (cumulative
    ``fractions``). So each split gets about its fraction of every stratum: the prevalence stays close
    to the cohort's, and the result depends only on the data and ``seed``.
    """
    codes, uniq = np.unique(groups, return_inverse=True)
    size = np.bincount(uniq, minlength=len(codes))
    pos = np.bincount(uniq, weights=y, minlength=len(codes))
    stratum = np.where(pos == 0, 0, np.where(pos == size, 2, 1))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(codes))
    cuts = np.cumsum(fractions)[:-1]
    side = np.zeros(len(codes), dtype=np.int64)
    for s in range(3):
        members = order[stratum[order] == s]
        if not len(members):
            continue
        mid = (np.cumsum(size[members]) - size[members] / 2) / size[members].sum()
        side[members] = np.searchsorted(cuts, mid, side="right")
    return side[uniq]


def _check_sides(y: np.ndarray, side: np.ndarray, names: Sequence[str]) -> None:
    for k, name in enumerate(names):
        counts = np.bincount(y[side == k], minlength=2)
        if counts.min() == 0:
            raise CohortError(f"Keeping the groups together leaves the {name} patients with {counts[0]} negatives and "
                              f"{counts[1]} positives; each split needs both outcomes. Use more groups (a finer "
                              "--group-col), more patients, or a larger split (SplitConfig(test_size=0.2)).")


def _split_groups(ids: np.ndarray, y: np.ndarray, groups: np.ndarray, config: SplitConfig) -> dict[str, np.ndarray]:
    """:func:`split_by_patient` with groups: whole groups to train, validation and test."""
    test = _assign_groups(y, groups, [1 - config.test_size, config.test_size], config.random_state) == 1
    val_frac = config.validation_size / (1 - config.test_size)
    rest = np.flatnonzero(~test)
    side = np.full(len(ids), 2)
    side[rest] = _assign_groups(y[rest], groups[rest], [1 - val_frac, val_frac], config.random_state + 1)
    _check_sides(y, side, ("training", "validation", "test"))
    return {"train": np.sort(ids[side == 0]), "validation": np.sort(ids[side == 1]), "test": np.sort(ids[side == 2])}


def _group_folds(ids: np.ndarray, y: np.ndarray, groups: np.ndarray, n_folds: int, val_frac: float,
                 random_state: int):
    """:func:`patient_folds` with groups: ``StratifiedGroupKFold`` test folds, whole groups to validation."""
    if len(np.unique(groups)) < n_folds:
        raise CohortError(f"{n_folds}-fold cross-validation by group needs at least {n_folds} groups; got "
                          f"{len(np.unique(groups))}. Use fewer folds (--cv 3) or a finer --group-col.")
    folds = StratifiedGroupKFold(n_folds, shuffle=True, random_state=random_state).split(ids, y, groups)
    for f, (rest, te) in enumerate(folds):
        side = np.full(len(ids), 2)
        side[rest] = _assign_groups(y[rest], groups[rest], [1 - val_frac, val_frac], random_state + f)
        _check_sides(y, side, ("training", "validation", "test"))
        yield {"train": np.sort(ids[side == 0]), "validation": np.sort(ids[side == 1]), "test": np.sort(ids[te])}


def subsample_patients(cohort: Cohort, max_patients: int | None, random_state: int = 0) -> Cohort:
    """A stratified random subset of ``max_patients`` labelled patients (``cohort`` itself if it has fewer).

    Examples
    --------
    >>> small = subsample_patients(cohort, 400, random_state=0)          # doctest: +SKIP
    """
    ids = cohort.labelled_ids
    if max_patients is None or len(ids) <= max_patients:
        return cohort
    y = cohort.labels.loc[ids].to_numpy()
    strat = y if np.bincount(y, minlength=2).min() >= 2 else None
    keep, _ = train_test_split(ids, train_size=int(max_patients), stratify=strat, random_state=random_state)
    return cohort.subset(np.sort(keep))


def make_model(spec: ModelSpec, preset: str, random_state: int, params: dict | None = None,
               features: FeatureSet | None = None):
    """An unfitted estimator of ``spec`` for the task shape of ``features``, with extra ``params`` set.

    A model whose spec names the ``channel_kinds`` hook (GRU-D reads values, masks and time gaps
    separately) gets the channel kinds of ``features``; nothing else is model-specific.
    """
    task = "online" if features is not None and features.online else "stay"
    model = spec.make(preset=preset, random_state=random_state, task=task)
    if params:
        model.set_params(**params)
    if features is not None and "channel_kinds" in spec.hooks:
        model.set_params(channel_kinds=tuple(features.seq_kinds))
    return model


def fit_model(model, spec: ModelSpec, fs: FeatureSet, y_units: np.ndarray, progress: Progress | None = None):
    """Fit ``model`` (made by ``spec``) on its view of ``fs`` (``"tabular"`` rows or ``"sequence"`` patients).

    Tabular models get one row per unit (patient, or patient-hour online) and its label. Sequence
    models get the patients' sequences and, online, a ``(n_patients, n_steps)`` target with a label
    at every scored hour (NaN elsewhere). Every fit runs under the one thread rule
    (:func:`core.training.threads.limit_threads`).

    With ``progress`` the fit is never silent (:mod:`core.models.staged`): a model whose spec names the
    ``progress`` hook (the sequence models: per epoch) gets it for this fit only; a random forest or gradient
    boosting is grown in stages (``"trees 40/100"``: the same model as one fit); and a heartbeat reports
    ``"fitting, 12 s"`` whenever nothing else was reported for 5 s. Without ``progress``: one plain fit.
    """
    report = None if progress is None else progress if isinstance(progress, FitProgress) else FitProgress(progress)
    hooked = report is not None and "progress" in spec.hooks
    if hooked:                      # a model with a progress callback gets it for this fit only
        model.set_params(progress=report)
    y = fs.step_targets(y_units) if spec.input_kind == "sequence" and fs.online else y_units
    X = fs.get(spec.input_kind)
    if isinstance(model, RandomForestClassifier) and not X.flags.writeable:
        # scikit-learn 1.9's forest refuses a read-only array with NaN (an out-of-core memory map): it fits a copy.
        X = np.array(X)
    try:
        with limit_threads(), heartbeat(report, "fitting"):
            return fit_in_stages(model, X, y, report)
    finally:
        if hooked:
            model.set_params(progress=None)


def predict_units(model, input_kind: str, fs: FeatureSet) -> np.ndarray:
    """Risk of the positive class for every unit of ``fs`` (patient, or patient-hour online), ``(n_units,)``."""
    with limit_threads():
        if input_kind == "sequence" and fs.online:
            return fs.units_from_steps(model.predict_proba_over_time(fs.X_seq, lengths=fs.lengths))
        return np.asarray(model.predict_proba(fs.get(input_kind)), dtype=float)[:, 1]


@dataclass(frozen=True)
class ProtocolRequest:
    """One run of the protocol to make: these models on these patients with these features.

    ``label`` prefixes the progress messages (``"fold 2/5"``, ``"24 h"``); ``features`` is a
    :class:`~core.config.FeatureConfig` (fitted on the training patients here) or an already fitted
    builder (a shuffled view of the same patients keeps the statistics of the ordered one).
    """

    cohort: Cohort
    specs: tuple
    splits: dict
    features: object = None
    label: str = ""


@dataclass(frozen=True)
class _FitTask:
    """One independent fit (what a backend runs): which model, how, and whether to score the other splits."""

    spec: ModelSpec
    preset: str
    random_state: int
    params: dict | None
    score: bool = True
    #: prefix of its progress messages ("gru", "fold 2/5: gru").
    label: str = ""
    #: the fit for people ("fold 2/5: GRU"), and its key among the fits of one job ("3.7").
    title: str = ""
    key: str = ""


def _prepare(request: ProtocolRequest, evaluation: EvaluationConfig, work: _FeatureWork, name: str):
    """Features of every split (builder fitted on training patients), targets and the shared test resample.

    The features are built out of core, in ``work``'s subfolder ``name``, when the sequences of all
    splits together exceed the in-memory limit.
    """
    features = request.features
    builder = features if isinstance(features, FeatureBuilder) else \
        FeatureBuilder(features).fit(request.cohort, request.splits["train"])
    folder = work.folder(sum(builder.sequence_nbytes(len(v)) for v in request.splits.values()), name)
    fsets = {k: builder.transform(request.cohort, v, out_dir=None if folder is None else folder / k)
             for k, v in request.splits.items()}
    ys = {k: builder.targets(request.cohort, fs) for k, fs in fsets.items()}
    idx = clusters = None
    if evaluation.n_bootstrap > 0 and fsets["test"].online:     # patient-hours of one patient resampled together
        clusters = ClusterBootstrap.from_config(fsets["test"].unit_ids, evaluation)
    elif evaluation.n_bootstrap > 0:
        idx = bootstrap_indices(len(ys["test"]), evaluation.n_bootstrap, evaluation.random_state)
    return builder, fsets, ys, idx, clusters


def _fit_and_score(task: _FitTask, progress: Progress | None, data: tuple) -> tuple:
    """Fit one model on the training split of ``data = (fsets, ys)``; risks on validation and test.

    Returns ``(model, seconds, p_validation, p_test)`` (the risks ``None`` when ``task.score`` is off).
    Runs in this process (local backend) or in a Ray worker, with the same result. With ``progress`` it
    reports at least every 5 s (:mod:`core.models.staged`): the fit's own messages, then
    ``"scoring validation and test patients"``, then ``"done in ..."``; the fit fills 0-0.9 of its fraction
    when it is scored, the scoring the rest.
    """
    fsets, ys = data
    report = None
    if progress is not None:
        label = task.label or task.spec.name
        report = FitProgress(progress, label=label, key=task.key, title=task.title or label)
        report.within(0.0, 0.9 if task.score else 1.0)       # the fit; its scoring gets the last tenth
        report("training", 0.0)
    model = make_model(task.spec, task.preset, task.random_state, task.params, fsets["train"])
    t0 = time.perf_counter()
    fit_model(model, task.spec, fsets["train"], ys["train"], report)
    seconds = time.perf_counter() - t0
    if not task.score:
        if report is not None:
            report.finish(f"done in {seconds:.1f} s")
        return model, seconds, None, None
    if report is not None:
        report.within(0.9, 1.0)
        report("scoring validation and test patients", 0.0)
    with heartbeat(report, "scoring validation and test patients"):
        p_val = predict_units(model, task.spec.input_kind, fsets["validation"])
        p_test = predict_units(model, task.spec.input_kind, fsets["test"])
    if report is not None:
        y = ys["test"]
        auc = roc_auc_score(y, p_test) if len(np.unique(y)) == 2 else float("nan")
        report.finish(f"done in {seconds:.1f} s, test AUROC {auc:.3f}")
    return model, seconds, p_val, p_test


def _announce(report: Progress, tasks: Sequence[_FitTask]) -> Progress:
    """``report`` whose first message also announces ``tasks`` (a :class:`~core.models.staged.FitPlan`), so a
    job can list the fits not started yet."""
    plan = [tuple((t.key, t.title) for t in tasks)]

    def announce(msg: str, frac: float) -> None:
        report(FitPlan(msg, plan.pop()) if plan else msg, frac)
    return announce


def _score(request, prepared, outcomes, evaluation, keep_features: bool) -> ProtocolResult:
    """Threshold each model on validation patients and score test patients (in the calling process)."""
    builder, fsets, ys, idx, clusters = prepared
    test, val = fsets["test"], fsets["validation"]
    no_ci = EvaluationConfig(n_bootstrap=0)
    fitted, seconds, val_res, test_res = {}, {}, {}, {}
    for spec, (model, secs, p_val, p_test) in zip(request.specs, outcomes):
        name, label = spec.name, spec.label or spec.name
        fitted[name], seconds[name] = model, secs
        thr = choose_threshold(ys["validation"], p_val, evaluation.threshold_rule, evaluation.target_sensitivity)
        val_res[name] = evaluate(name, ys["validation"], p_val, thr, val.unit_ids, no_ci, label=label,
                                 times=val.unit_time)
        test_res[name] = evaluate(name, ys["test"], p_test, thr, test.unit_ids, evaluation, label=label, idx=idx,
                                  clusters=clusters, times=test.unit_time)
        if test.online:
            test_res[name].extra.update(alarm_metrics(test.unit_ids, test.unit_time, ys["test"], p_test, thr,
                                                      request.cohort.onsets))
            if clusters is not None:        # the patient resamples of the other metrics' intervals
                test_res[name].extra.update(alarm_intervals(test.unit_ids, test.unit_time, ys["test"], p_test, thr,
                                                            clusters, request.cohort.onsets, evaluation.ci_level))
    return ProtocolResult(builder=builder, models=fitted, splits=request.splits, validation=val_res, test=test_res,
                          train_seconds=seconds, features=fsets if keep_features else {}, bootstrap=idx,
                          clusters=clusters)


def run_protocols(requests: Sequence[ProtocolRequest], *, evaluation: EvaluationConfig | None = None,
                  preset: str = "full", random_state: int = 0, model_params: dict | None = None,
                  progress: Progress | None = None, backend: Backend | None = None,
                  keep_features: bool = True) -> list[ProtocolResult]:
    """Several runs of the protocol (folds, horizons, ablation arms), their fits handed to one backend.

    The local backend prepares, fits and scores one request after another (one request's features
    in memory, or on disk, at a time). A parallel backend (Ray) prepares every request first and submits
    every fit of every request at once, so independent fits run side by side. Results are identical.
    Requests whose sequences exceed :func:`features_in_memory_mb` are built out of core (see the module
    docstring); the work folder is removed before this returns or raises.

    Parameters
    ----------
    requests : sequence of ProtocolRequest
    evaluation, preset, random_state, model_params, progress
        As in :func:`run_protocol` (shared by every request).
    backend : Backend, optional
        :func:`core.training.engine.make_backend` (default: local).
    keep_features : bool
        Keep each request's feature sets in its result (``ProtocolResult.features``); off saves memory.

    Returns
    -------
    list of ProtocolResult, one per request, in order.
    """
    evaluation = evaluation or EvaluationConfig()
    backend = backend or LocalBackend()
    n_fits = max(1, sum(len(r.specs) for r in requests))

    def label(req, spec_name):
        return f"{req.label}: {spec_name}" if req.label else spec_name

    plan, keys = next(_PLANS), itertools.count()
    batches = [[_FitTask(s, preset, random_state, (model_params or {}).get(s.name), label=label(req, s.name),
                         title=label(req, s.label or s.name), key=f"{plan}.{next(keys)}") for s in req.specs]
               for req in requests]
    report = _announce(progress or (lambda msg, frac: None), [t for b in batches for t in b])

    with _FeatureWork() as work:
        if not backend.parallel:
            out, done = [], 0
            for i, req in enumerate(requests):
                report(f"{req.label + ': ' if req.label else ''}building features", done / n_fits)
                prepared = _prepare(req, evaluation, work, f"run-{i}")
                k = len(req.specs)

                def sub(msg, frac, done=done, k=k):
                    report(msg, (done + frac * k) / n_fits)
                outcomes = backend.map(_fit_and_score, batches[i], [0] * k, {0: prepared[1:3]},
                                       progress=None if progress is None else sub)   # no listener: plain fits
                out.append(_score(req, prepared, outcomes, evaluation, keep_features))
                work.release(f"run-{i}")            # one run's files on disk at a time
                done += k
            return out
        prepared = []
        for i, req in enumerate(requests):
            report(f"{req.label + ': ' if req.label else ''}building features", 0.0)
            prepared.append(_prepare(req, evaluation, work, f"run-{i}"))
        items, where, labels = [], [], []
        for i, req in enumerate(requests):
            items += batches[i]
            where += [i] * len(req.specs)
            labels += [label(req, s.name) for s in req.specs]
        flat = backend.map(_fit_and_score, items, where, {i: p[1:3] for i, p in enumerate(prepared)}, labels=labels,
                           progress=None if progress is None else report)
        out, pos = [], 0
        for req, prep in zip(requests, prepared):
            out.append(_score(req, prep, flat[pos:pos + len(req.specs)], evaluation, keep_features))
            pos += len(req.specs)
        return out


def run_protocol(cohort: Cohort, specs: Sequence[ModelSpec], splits: dict, *,
                 features: FeatureConfig | FeatureBuilder | None = None, evaluation: EvaluationConfig | None = None,
                 preset: str = "full", random_state: int = 0, model_params: dict | None = None,
                 progress: Progress | None = None, backend: Backend | None = None) -> ProtocolResult:
    """Fit features on training patients, fit every model, threshold on validation, score test.

    Parameters
    ----------
    cohort : Cohort
        Labelled: per patient (stay task) or per patient-hour (``features.task == "online"``).
    specs : sequence of ModelSpec
        Registry entries (``registry.get(name)``) or custom ones (the gate models).
    splits : dict
        ``"train"``, ``"validation"``, ``"test"`` patient ids (from :func:`split_by_patient`
        or a cross-validation fold).
    features : FeatureConfig or fitted FeatureBuilder, optional
        A fitted builder is used as it is (a shuffled view of the same patients keeps the
        statistics of the ordered one).
    evaluation : EvaluationConfig, optional
        Threshold rule and bootstrap of the test metrics.
    preset : {"test", "quick", "full"}
    random_state : int
        Seed of every model.
    model_params : dict of str to dict, optional
        Extra parameters per model name, set with ``set_params`` (e.g. a seed ensemble).
    progress : callable(message, fraction), optional
        Messages start with the model name (``"gru: epoch 3 ..."``).
    backend : Backend, optional
        Where the fits run (:func:`core.training.engine.make_backend`; default: here, one after another).

    Returns
    -------
    ProtocolResult

    Raises
    ------
    CohortError
        A split has no patients with events in the window, or labels are missing.
    """
    return run_protocols([ProtocolRequest(cohort, tuple(specs), splits, features)], evaluation=evaluation,
                         preset=preset, random_state=random_state, model_params=model_params, progress=progress,
                         backend=backend)[0]


def refit_models(cohort: Cohort, result: ProtocolResult, specs: Sequence[ModelSpec], *, preset: str = "full",
                 random_state: int = 0, model_params: dict | None = None, progress: Progress | None = None,
                 backend: Backend | None = None) -> dict:
    """Refit each model on training + validation patients, for use after the evaluation.

    The feature builder (training statistics) and each model's threshold stay as they were, so the
    saved thresholds keep their meaning; a model whose spec names the ``refit_params`` hook (the recurrent ones:
    the epochs early stopping chose, no inner split) gets them. The test patients stay untouched, and
    the reported metrics remain those of the models fitted on training patients only. The refits are
    independent fits handed to ``backend`` (default: local).

    Returns
    -------
    dict of str to fitted estimator
    """
    backend = backend or LocalBackend()
    ids = np.sort(np.concatenate([result.splits["train"], result.splits["validation"]]))
    tasks, plan = [], next(_PLANS)
    for i, spec in enumerate(specs):
        fitted = result.models[spec.name]
        params = dict((model_params or {}).get(spec.name) or {})
        if "refit_params" in spec.hooks:
            params.update(fitted.refit_params())
        tasks.append(_FitTask(spec, preset, random_state, params, score=False, label=f"refit: {spec.name}",
                              title=f"refit: {spec.label or spec.name}", key=f"{plan}.{i}"))
    report = _announce(progress or (lambda msg, frac: None), tasks)
    report(f"refitting {len(specs)} model(s) on {len(ids):,} training + validation patients", 0.0)
    with _FeatureWork() as work:    # out of core when large, as in run_protocols; removed before returning
        folder = work.folder(result.builder.sequence_nbytes(len(ids)), "refit")
        fs = result.builder.transform(cohort, ids, out_dir=folder)
        y = result.builder.targets(cohort, fs)
        out = backend.map(_fit_and_score, tasks, [0] * len(tasks), {0: ({"train": fs}, {"train": y})},
                          labels=[f"refit: {s.name}" for s in specs], progress=None if progress is None else report)
    return {spec.name: model for spec, (model, *_rest) in zip(specs, out)}
