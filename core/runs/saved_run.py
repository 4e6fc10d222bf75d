"""A reopened run (:class:`Run`: its builder, models, thresholds and saved predictions) and how other data compare
with the data it was trained on (:class:`DataMatch`, :func:`match_data`).

What a run answers once loaded (:func:`core.runs.store.load_run` reads and checks its files): the risk of new
patients (:meth:`Run.score`), one patient's risk hour by hour (:meth:`Run.risk_table`), and the test metrics
rebuilt from the saved predictions (:meth:`Run.evaluations`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import EvaluationConfig
from core.data.cohort import Cohort
from core.evaluation.alarms import ALARM_CI_KEYS
from core.evaluation.metrics import ClusterBootstrap, adjust_for_multiplicity, bootstrap_indices, compare, evaluate
from core.exceptions import RunError
from core.features import FeatureBuilder, FeatureSet
from core.models import registry
from core.runs.runfiles import RESTORE

__all__ = ["Run", "DataMatch", "match_data", "ALARM_KEYS"]

#: alarm metrics of an online run, per model in metrics.json (see core.evaluation.metrics.alarm_metrics).
ALARM_KEYS = ("positive_stays", "alarmed_before_onset", "median_warning_hours", "false_alarms_per_patient_day",
              "alarm_hours_share") + tuple(f"{k}_ci" for k in ALARM_CI_KEYS)


@dataclass(frozen=True)
class DataMatch:
    """How a run's training data compares with other data (:meth:`Run.match`).

    Attributes
    ----------
    same_data : bool
        Same data fingerprint as the run's training data.
    run_task, data_task : {"stay", "online"}
    missing : list of str
        The run's variables (time series and static) absent from the data.
    new : list of str
        Variables of the data the run never saw (ignored by its models).
    patients_missing_share : float
        Share of the data's patients with no value at all of at least one of the run's variables.
    n_run_variables : int
    """

    same_data: bool
    run_task: str
    data_task: str
    missing: list
    new: list
    patients_missing_share: float
    n_run_variables: int

    @property
    def usable(self) -> bool:
        """False when none of the run's variables is in the data (scoring would be meaningless)."""
        return len(self.missing) < self.n_run_variables

    def sentence(self) -> str:
        """Plain words for a page or the CLI; empty when the data are the run's own."""
        if self.same_data:
            return ""
        parts = ["This run was trained on other data (the data fingerprint differs)."]
        if self.run_task != self.data_task:
            parts.append(f"It predicts {'every hour' if self.run_task == 'online' else 'once per stay'}, "
                         f"but these data are {'hourly-labelled' if self.data_task == 'online' else 'per stay'}.")
        if not self.usable:
            parts.append(f"None of its {self.n_run_variables} variables is in these data, so it cannot score them.")
            return " ".join(parts)
        if self.missing:
            shown = ", ".join(self.missing[:8]) + (f" and {len(self.missing) - 8} more" if len(self.missing) > 8 else "")
            parts.append(f"{len(self.missing)} of its {self.n_run_variables} variables are missing here ({shown}); "
                         "the models see them as never measured.")
        if self.patients_missing_share > 0:
            parts.append(f"{self.patients_missing_share:.0%} of these patients lack at least one of the run's "
                         "variables.")
        if self.new:
            shown = ", ".join(self.new[:8]) + (f" and {len(self.new) - 8} more" if len(self.new) > 8 else "")
            parts.append(f"{len(self.new)} variable(s) here were not in the training data and are ignored ({shown}).")
        return " ".join(parts)


def match_data(fingerprint: str, task: str, builder: FeatureBuilder, cohort: Cohort) -> DataMatch:
    """Compare a run's training data (fingerprint, task, fitted builder) with ``cohort``."""
    run_vars = list(builder.variables_) + list(builder.static_columns_)
    have_series = set(cohort.series_variables)
    have_static = set(cohort.static_variables)
    have = have_series | have_static
    missing = [v for v in run_vars if v not in have]
    new = sorted(v for v in have if v not in set(run_vars))
    n_pat = max(len(cohort.patient_ids), 1)
    if missing:
        share = 1.0
    else:
        counts = cohort.events.groupby("variable", observed=True)["patient_id"].nunique()
        per_var = [counts.get(v, 0) if v in have_series else int(cohort.static[v].notna().sum())
                   for v in run_vars]
        share = 0.0 if not per_var else float(1 - min(per_var) / n_pat)
    return DataMatch(same_data=fingerprint == cohort.fingerprint(), run_task=task,
                     data_task="online" if cohort.is_online else "stay", missing=missing, new=new,
                     patients_missing_share=max(0.0, share), n_run_variables=len(run_vars))



@dataclass
class Run:
    """A reopened run folder.

    Attributes
    ----------
    folder : Path
    config : dict (config.json)
    metrics : dict (metrics.json)
    splits : dict "train"/"validation"/"test" -> ndarray of patient ids
    builder : FeatureBuilder (fitted on the run's training patients)
    models : dict name -> fitted estimator
    thresholds : dict name -> decision threshold
    predictions : DataFrame (validation + test rows: patient_id, [time,] split, model, risk, predicted, y_true)
    versions : dict
    refitted : bool
        Whether ``models`` are the refits on training + validation patients (``train --refit``).
    data_report : dict or None
        ``data_report.json``: the validation report of the data the run was trained on (``report``:
        :meth:`core.data.validation.ValidationReport.to_dict`) and patients per split (``split_counts``);
        None for runs saved before it was kept.
    """

    folder: Path
    config: dict
    metrics: dict
    splits: dict
    builder: FeatureBuilder
    models: dict
    thresholds: dict
    predictions: pd.DataFrame
    versions: dict = field(default_factory=dict)
    refitted: bool = False
    data_report: dict | None = None

    @property
    def fitted(self):
        """The fitted builder, models and splits (a :class:`core.training.protocol.FittedRun`)."""
        from core.training.protocol import FittedRun
        return FittedRun(self.builder, self.models, self.splits)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def online(self) -> bool:
        """Whether the run predicts every patient-hour (the online task)."""
        return self.builder.config.task == "online"

    @property
    def best_model(self) -> str:
        """The model with the best validation AUROC (chosen on validation patients, never on test patients): the
        one a page shows first. The run's first model when no validation AUROC was saved."""
        scores = {n: (self.metrics.get("models", {}).get(n, {}) or {}).get("validation_auroc") for n in self.models}
        ranked = [n for n in self.models if isinstance(scores[n], (int, float)) and np.isfinite(scores[n])]
        return max(ranked, key=lambda n: scores[n]) if ranked else next(iter(self.models))

    def split_of(self, patient_id) -> str | None:
        """``"train"``, ``"validation"`` or ``"test"``: the part of the run's split the patient (by id) was in;
        ``None`` for a patient the run never saw."""
        pid = str(patient_id)
        return next((k for k, ids in self.splits.items() if pid in set(map(str, ids))), None)

    def features(self, cohort: Cohort, patient_ids=None) -> FeatureSet:
        """``X_tab``/``X_seq`` (and names, variables, channel kinds) built with the run's fitted builder."""
        return self.builder.transform(cohort, patient_ids)

    def match(self, cohort: Cohort) -> DataMatch:
        """How ``cohort`` compares with this run's training data (fingerprint, task, variables)."""
        return match_data(str(self.config.get("fingerprint", "")), str(self.config.get("task", "stay")),
                          self.builder, cohort)

    def check_data(self, cohort: Cohort) -> DataMatch:
        """:meth:`match`, raising RunError when none of the run's variables is in ``cohort``."""
        m = self.match(cohort)
        if not m.usable:
            raise RunError(m.sentence() + " Use data with the variables the run was trained on "
                           f"(for example {', '.join(m.missing[:5])}).")
        return m

    def score(self, cohort: Cohort, patient_ids=None, models=None, features: FeatureSet | None = None) -> pd.DataFrame:
        """Risk of every patient (every patient-hour for an online run) under every model.

        Raises RunError when none of the run's variables is in ``cohort`` (:meth:`check_data`), or when a
        model gives a NaN or infinite risk (the message names the patients and the model).

        Returns
        -------
        DataFrame with columns ``patient_id, model, risk, predicted`` (one row per patient and model;
        ``predicted`` is 1 when ``risk >= threshold`` saved with the model). Online runs add ``time``
        (the hour's own time; its risk uses data up to and including it): one row per patient, hour
        and model, for every hour that has a row in the data.
        """
        from core.training.protocol import predict_units
        self.check_data(cohort)
        fs = features if features is not None else self.features(cohort, patient_ids)   # built once by callers that loop
        rows = []
        for name in models or list(self.models):
            risk = predict_units(self.models[name], registry.get(name).input_kind, fs)
            bad = ~np.isfinite(risk)
            if bad.any():      # never written as an empty risk with predicted=0: a silent false negative
                ids = list(dict.fromkeys(fs.unit_ids[bad].astype(str)))
                shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
                raise RunError(f"Model {name!r} of the run {self.name} gave no valid risk (NaN or infinite) for "
                               f"{len(ids)} patient(s): {shown}. No risk is reported rather than a wrong 'not at "
                               "risk'. Check those patients' values, or score with the run's other models "
                               f"(--models); if it happens for every patient, the model is damaged: {RESTORE}")
            frame = {"patient_id": fs.unit_ids.astype(str)}
            if fs.online:
                frame["time"] = fs.unit_time
            frame.update({"model": name, "risk": risk, "predicted": (risk >= self.thresholds[name]).astype(int)})
            rows.append(pd.DataFrame(frame))
        return pd.concat(rows, ignore_index=True)

    def risk_table(self, cohort: Cohort, patient_id: str, step_hours: float | None = None) -> pd.DataFrame:
        """One patient's risk under every model, hour by hour: ``time_hours`` + one column per model.

        Online run: the risk the models give at every hour of the patient (data up to and including it).
        Stay run: the risk trajectory, i.e. at each step ``h`` (``step_hours``, default the run's bin, up to
        its window) the risk the model gives the stay when only the data up to hour ``h`` exist; the last
        point is the stay's risk. Classical models see the summaries of those hours, sequence models the
        hours in order.
        """
        if self.online:
            scores = self.score(cohort, [str(patient_id)])
            table = scores.pivot_table(index="time", columns="model", values="risk", sort=True)
            return table.reset_index().rename(columns={"time": "time_hours"})
        return self.risk_trajectory(cohort.patient_events(str(patient_id)), cohort.static.loc[
            cohort.static.index.intersection([str(patient_id)])], step_hours)

    def risk_trajectory(self, events: pd.DataFrame, static: pd.DataFrame,
                        step_hours: float | None = None) -> pd.DataFrame:
        """Stay run: one patient's risk from the data up to each hour (see :meth:`risk_table`).

        ``events`` are the patient's events (``time_hours, variable, value``; any patient id) and ``static``
        its static row (or empty). Every prefix is scored in one batch, as a pseudo-patient.
        """
        from core.data.cohort import make_cohort
        if self.online:
            raise RunError(f"Run {self.name} predicts every hour; use risk_table for its hourly risks.")
        cfg = self.builder.config
        step = float(step_hours or cfg.bin_hours)
        ev = events[["time_hours", "variable", "value"]]
        last = min(float(ev["time_hours"].max()) if len(ev) else step, float(cfg.window_hours))
        hours = np.arange(step, last + step - 1e-9, step)
        hours = np.unique(np.append(hours[hours < last], last))
        frames = [ev[ev["time_hours"] <= h].assign(patient_id=f"h{i:05d}") for i, h in enumerate(hours)]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame(columns=["time_hours", *self.models])
        ids = [f["patient_id"].iat[0] for f in frames]
        row = static.iloc[:1] if len(static) else pd.DataFrame(index=[0])
        pseudo_static = pd.DataFrame(np.repeat(row.to_numpy(), len(ids), axis=0), index=pd.Index(ids, name="patient_id"),
                                     columns=row.columns) if len(static) else None
        pseudo = make_cohort(pd.concat(frames, ignore_index=True), pseudo_static)
        scores = self.score(pseudo)
        table = scores.pivot_table(index="patient_id", columns="model", values="risk", sort=True)
        table = table[[m for m in self.models if m in table.columns]]
        table.index = [float(hours[int(p[1:])]) for p in table.index]
        table.columns.name = None
        return table.rename_axis("time_hours").reset_index()

    def evaluations(self, split: str = "test", config: EvaluationConfig | None = None):
        """Rebuild ``(results, comparisons)`` from the saved predictions (bootstrap re-seeded: identical)."""
        if config is None:
            config = EvaluationConfig(**self.config.get("evaluation", {}))
        pr = self.predictions[self.predictions["split"] == split]
        online = "time" in pr.columns
        results = {}
        idx = clusters = None
        saved = self.metrics.get("models", {})
        for name in self.config.get("models", []):
            d = pr[pr["model"] == name].sort_values(["patient_id", "time"] if online else "patient_id")
            if not len(d):
                continue
            ids = d["patient_id"].to_numpy(dtype=object)
            if online and clusters is None and config.n_bootstrap > 0:
                clusters = ClusterBootstrap.from_config(ids, config)
            elif not online and idx is None and config.n_bootstrap > 0:
                idx = bootstrap_indices(len(d), config.n_bootstrap, config.random_state)
            label = registry.get(name).label
            results[name] = evaluate(name, d["y_true"].to_numpy(), d["risk"].to_numpy(), self.thresholds[name],
                                     ids, config, label=label, idx=idx, clusters=clusters,
                                     times=d["time"].to_numpy(dtype=float) if online else None)
            if online:
                results[name].extra.update({k: saved.get(name, {}).get(k) for k in ALARM_KEYS})
        ref = self.config.get("reference")
        comps = adjust_for_multiplicity([compare(r, results[ref], config, idx=idx, clusters=clusters)
                                         for n, r in results.items() if ref in results and n != ref],
                                        {n: r.label for n, r in results.items()})
        return results, comps
