"""Score new patients with a saved run: the one code path of ``python -m core predict`` and the Predict page.

:func:`predict_patients` reopens a run folder (manifest-checked, :func:`core.runs.store.load_run`), scores every
patient of a cohort (every patient-hour for an online run) under each of its models and returns a
:class:`PredictionResult`: the long table the CLI writes (``patient_id, [time,] model, risk, predicted``)
plus, for people, one row per patient (:meth:`PredictionResult.patients`): each model's risk and whether
it is flagged (risk >= the threshold saved with the model, chosen on the run's validation patients).

New data from another source often name the run's variables differently (``DBP`` for ``DiasABP``):
:func:`map_to_run` matches them first (:mod:`core.data.mapping`: the user's pairs, spellings, synonyms) and the
result says what was renamed.

Labels are never needed and never read: the data config drops the run's target before loading
(:func:`data_config_for`), so a label column in the new file is not a feature.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from core.data.cohort import Cohort
from core.data.mapping import VariableMapping, apply_mapping, match_variables
from core.config import DataConfig
from core.models import registry

__all__ = ["PredictionResult", "predict_patients", "data_config_for", "risk_trajectories", "map_to_run",
           "run_variables", "check_missing_importance", "prepare_for_scoring"]

Progress = Callable[[str, float], None]


def data_config_for(run_online: bool, config: DataConfig | None = None) -> DataConfig:
    """The data config new patients are read with: the user's mapping, the run's task shape, no target.

    An online run scores every hour that has a row; a stay run one risk per stay. ``target`` is always
    None: what the new file may hold as a label is never read as a feature.
    """
    base = config or DataConfig(target=None)
    if run_online:
        return replace(base, task="online", target=None, horizon_hours=None)
    return replace(base, task="stay", target=None, horizon_hours=None)


def run_variables(run) -> list[str]:
    """The variables a reopened run's models read (time series, then static attributes)."""
    return list(run.builder.variables_) + list(run.builder.static_columns_)


def map_to_run(run, cohort: Cohort, user_map: dict | None = None) -> tuple[Cohort, VariableMapping]:
    """``cohort`` with its variables renamed to the run's where they match (:func:`core.data.mapping.match_variables`).

    Returns the renamed cohort (``cohort`` itself when nothing is renamed) and the mapping, for the page and the
    CLI to say what was matched. Raises CohortError for a user mapping that names unknown variables.
    """
    mapping = match_variables(cohort.series_variables + cohort.static_variables, run_variables(run), user_map)
    return apply_mapping(cohort, mapping), mapping


def check_missing_importance(run, missing, allow_missing: bool = False) -> tuple[dict, list[str]]:
    """Refuse scoring when the variables ``missing`` from the data carry too much of a model's importance.

    The run's importance (:mod:`core.analysis.importance`, measured on its validation patients and saved in
    ``metrics.json``) says how much of each model's attention each variable has. When the missing variables
    carry more than :data:`~core.analysis.importance.REFUSE_SHARE` of any model's, scoring is refused, naming
    them; ``allow_missing`` goes on anyway and the returned warning says so.

    Returns
    -------
    ``({model: share of its importance missing}, warnings)``: the shares of every model (empty when nothing is
    missing), and the sentences to keep with the output.

    Raises
    ------
    RunError
        Too much importance is missing and ``allow_missing`` is False.
    """
    from core.analysis.importance import REFUSE_SHARE, importance_shares, missing_share
    from core.exceptions import RunError
    missing = [str(v) for v in missing]
    if not missing:
        return {}, []
    importance = run.metrics.get("importance") or {}
    if not importance:
        return {}, [f"Run {run.name} was saved before variable importance was measured, so the {len(missing)} "
                    "variable(s) missing here could not be weighed; retrain it to have them checked."]
    shares = {n: missing_share(importance.get(n, {}), missing) for n in run.models}
    heavy = {n: v for n, v in shares.items() if v > REFUSE_SHARE}
    if not heavy:
        return shares, []
    worst = max(heavy, key=heavy.get)
    per_var = importance_shares(importance.get(worst, {}))
    top = sorted(missing, key=lambda v: -per_var.get(v, 0.0))[:6]
    named = ", ".join(f"{v} ({per_var.get(v, 0.0):.0%})" for v in top if per_var.get(v, 0.0) > 0)
    models = ", ".join(f"{registry.get(n).label} {v:.0%}" for n, v in sorted(heavy.items(), key=lambda kv: -kv[1]))
    text = (f"The variables missing from these data carry more than {REFUSE_SHARE:.0%} of what some models of run "
            f"{run.name} rely on ({models}); most of all {named or ', '.join(top)}.")
    if not allow_missing:
        raise RunError(text + " Their risks would be those of patients never measured for them. Map the variables "
                       "if the data hold them under other names (--map NEW=RUN), score with other models "
                       "(--models), or go on anyway with --allow-missing.")
    return shares, [text + " Scored anyway (--allow-missing): treat these risks with caution."]


def prepare_for_scoring(run, cohort: Cohort, mapping: dict | None = None, allow_missing: bool = False):
    """The steps every scoring of new data takes first (Predict and external validation alike): match the variables
    (:func:`map_to_run`), compare the data with the run's (``run.check_data``: refused when none of its variables is
    there) and weigh what is missing (:func:`check_missing_importance`).

    Returns ``(cohort with the run's names, VariableMapping, DataMatch, {model: share missing}, warnings)``.
    """
    cohort, matched = map_to_run(run, cohort, mapping)
    data_match = run.check_data(cohort)
    shares, warnings = check_missing_importance(run, data_match.missing, allow_missing)
    return cohort, matched, data_match, shares, warnings


@dataclass
class PredictionResult:
    """Risks of new patients under every model of one run.

    Attributes
    ----------
    run_name : str
    online : bool
        One row per patient-hour (``time``) rather than per patient.
    models : list of str
        Registry names, in the run's order.
    labels : dict name -> label ("gradient boosting", ...)
    thresholds : dict name -> float
        The run's saved decision thresholds (chosen on its validation patients).
    scores : DataFrame
        ``patient_id, [time,] model, risk, predicted``: what ``python -m core predict`` writes.
    match : str
        How the data compare with the run's training data ("" when they match).
    refitted : bool
        The models are the refits on training + validation patients.
    n_patients : int
    seen : dict split -> int
        How many of the scored patients (by id) were among the run's own training / validation / test
        patients (their risks are not those of new patients: the models were fitted or tuned on them).
    mapping : VariableMapping
        The data's variables renamed to the run's before scoring (empty when the names matched).
    warnings : list of str
        Kept with the output: scored although important variables were missing (``allow_missing``), or the
        run could not weigh its missing variables.
    """

    run_name: str
    online: bool
    models: list
    labels: dict
    thresholds: dict
    scores: pd.DataFrame
    match: str = ""
    refitted: bool = False
    n_patients: int = field(default=0)
    seen: dict = field(default_factory=dict)
    mapping: VariableMapping = field(default_factory=VariableMapping)
    warnings: list = field(default_factory=list)

    def seen_sentence(self) -> str:
        """Plain words when some scored patients were the run's own patients ("" when none were)."""
        fitted = self.seen.get("train", 0) + self.seen.get("validation", 0)
        if not fitted:
            return ""
        return (f"{fitted:,} of these {self.n_patients:,} patients have the ids of the run's training or validation "
                "patients: if they are the same people, the models were fitted or tuned on them and their risks "
                "look better than a new patient's would. Judge the run on new patients (or its test metrics).")

    def patients(self) -> pd.DataFrame:
        """One row per patient: ``patient_id``, then per model ``<label> risk`` and ``<label> flagged``.

        Stay run: the stay's risk. Online run: the risk at the patient's last scored hour, plus the
        highest risk, the first flagged hour (NaN when never) and the number of flagged hours.
        Sorted by the first model's risk, highest first.
        """
        s = self.scores
        if not len(s):
            return pd.DataFrame(columns=["patient_id"])
        out = None
        for name in self.models:
            d = s[s["model"] == name]
            lab = self.labels[name]
            if self.online:
                d = d.sort_values(["patient_id", "time"], kind="stable")
                g = d.groupby("patient_id", sort=False)
                flagged_t = d["time"].where(d["predicted"] == 1)
                part = pd.DataFrame({
                    f"{lab} risk (last hour)": g["risk"].last(),
                    f"{lab} highest risk": g["risk"].max(),
                    f"{lab} first flagged hour": flagged_t.groupby(d["patient_id"], sort=False).min(),
                    f"{lab} flagged hours": g["predicted"].sum().astype(int),
                    f"{lab} flagged": g["predicted"].max().astype(bool)})
            else:
                part = pd.DataFrame({f"{lab} risk": d["risk"].to_numpy(),
                                     f"{lab} flagged": d["predicted"].to_numpy().astype(bool)},
                                    index=d["patient_id"].to_numpy())
            out = part if out is None else out.join(part, how="outer")
        out.index.name = "patient_id"
        first = out.columns[0]
        return out.sort_values(first, ascending=False, kind="stable").reset_index()

    def flagged(self) -> dict:
        """``{model: number of patients flagged}`` (online: flagged at any hour)."""
        s = self.scores
        return {name: int(s.loc[(s["model"] == name) & (s["predicted"] == 1), "patient_id"].nunique())
                for name in self.models}


def predict_patients(run_dir, cohort: Cohort, models=None, progress: Progress | None = None,
                     mapping: dict | None = None, allow_missing: bool = False) -> PredictionResult:
    """Score every patient of ``cohort`` with the run in ``run_dir``.

    Parameters
    ----------
    run_dir : str, Path or core.runs.store.Run
        A run folder (``python -m core train --out``, or one the app saved), or a run already reopened.
    cohort : Cohort
        The new patients, read with :func:`data_config_for` (no labels needed).
    models : sequence of str, optional
        A subset of the run's models (default: all).
    progress : callable ``(message, fraction)``, optional
    mapping : dict ``{name in the data: name in the run}``, optional
        The user's own pairs; synonyms and other spellings are matched anyway (:func:`map_to_run`).
    allow_missing : bool
        Score even when the missing variables carry too much of a model's importance
        (:func:`check_missing_importance`); the warning is kept in the result, and the scores get a
        ``missing_importance`` column (each model's share of its importance missing).

    Returns
    -------
    PredictionResult

    Raises
    ------
    CohortError
        ``mapping`` names a variable the data or the run do not have.
    RunError
        Variables carrying more than 20% of a model's importance are missing (unless ``allow_missing``).
    RunError
        The run fails its checks (changed or missing files), none of its variables is in the data, or a
        model gives a NaN risk (:meth:`core.runs.store.Run.score`).
    """
    from core.runs.store import Run, load_run
    if progress is not None:
        progress("reopening the run", 0.0)
    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir, models=list(models) if models else None)
    cohort, matched, data_match, shares, warnings = prepare_for_scoring(run, cohort, mapping, allow_missing)
    match = data_match.sentence()
    names = list(run.models)
    if progress is not None:
        progress(f"building the features of {cohort.n_patients:,} patients", 0.0)
    fs = run.features(cohort)
    parts = []
    for i, name in enumerate(names):
        if progress is not None:
            progress(f"scoring {cohort.n_patients:,} patients with {registry.get(name).label}", i / max(len(names), 1))
        parts.append(run.score(cohort, models=[name], features=fs))
    if progress is not None:
        progress("done", 1.0)
    ids = set(np.asarray(cohort.patient_ids).astype(str))
    seen = {k: len(ids & set(np.asarray(v).astype(str))) for k, v in run.splits.items()}
    scores = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["patient_id", "model", "risk", "predicted"])
    if warnings and shares:              # kept in the output: each row says how much of its model went missing
        scores["missing_importance"] = scores["model"].map(shares).astype(float)
    return PredictionResult(run_name=run.name, online=run.online, models=names,
                            labels={n: registry.get(n).label for n in names},
                            thresholds={n: float(run.thresholds[n]) for n in names}, scores=scores, match=match,
                            refitted=run.refitted, n_patients=int(np.asarray(cohort.patient_ids).size), seen=seen,
                            mapping=matched, warnings=warnings)


def risk_trajectories(run, cohort: Cohort, patient_ids=None, progress: Progress | None = None) -> pd.DataFrame:
    """Stay run: every patient's risk from the data up to each hour (:meth:`core.runs.store.Run.risk_trajectory`).

    Parameters
    ----------
    run : core.runs.store.Run
        A reopened stay run.
    cohort : Cohort
    patient_ids : sequence of str, optional
        Default: every patient of ``cohort``.
    progress : callable ``(message, fraction)``, optional

    Returns
    -------
    DataFrame ``patient_id, time_hours, model, risk, predicted`` (one row per patient, step and model;
    ``predicted`` is 1 when ``risk >= `` the model's saved threshold). The last step of a patient is
    the stay's risk, the number :func:`predict_patients` gives.

    Raises
    ------
    RunError
        The run predicts every hour (an online run: its scores already are per hour), or
        :meth:`core.runs.store.Run.score` refuses the data.
    """
    from core.exceptions import RunError
    if run.online:
        raise RunError(f"Run {run.name} predicts every hour already: its predictions are per patient-hour, so "
                       "there is no separate trajectory. Leave out --trajectory.")
    run.check_data(cohort)
    ids = [str(p) for p in (patient_ids if patient_ids is not None else cohort.patient_ids)]
    parts = []
    for i, pid in enumerate(ids):
        if progress is not None and (i % 10 == 0 or i == len(ids) - 1):
            progress(f"risk trajectories: patient {i + 1:,} of {len(ids):,}", i / max(len(ids), 1))
        t = run.risk_table(cohort, pid)
        if not len(t):
            continue
        long = t.melt(id_vars="time_hours", var_name="model", value_name="risk")
        long.insert(0, "patient_id", pid)
        parts.append(long)
    if not parts:
        return pd.DataFrame(columns=["patient_id", "time_hours", "model", "risk", "predicted"])
    if progress is not None:
        progress("risk trajectories: done", 1.0)
    out = pd.concat(parts, ignore_index=True)
    thresholds = out["model"].map({n: float(t) for n, t in run.thresholds.items()})
    out["predicted"] = (out["risk"].to_numpy(dtype=float) >= thresholds.to_numpy(dtype=float)).astype(int)
    order = {n: i for i, n in enumerate(run.models)}
    out["_m"] = out["model"].map(order)
    return out.sort_values(["patient_id", "time_hours", "_m"], kind="stable").drop(columns="_m").reset_index(drop=True)
