"""The Predict page's "Measure the run on these patients" section: external validation in the browser (page ->
EvaluateRequest -> job -> :func:`core.runs.external.validate_external`), the same numbers as ``python -m core
evaluate``."""
from __future__ import annotations

import json
from dataclasses import replace
from functools import partial

import streamlit as st

from app import jobs
from app.components import load_with_status, plain, render_report
from app.security import download_button
from app.state import DataSource
from app.subgroups_view import SUBGROUP_COLUMNS
from core.data.demo import DEMO_TARGET
from core.runs.export import jsonable, safe_csv
from core.service import EvaluateRequest

__all__ = ["draw_external"]

_N = st.column_config.NumberColumn
_FMT = {"model": st.column_config.TextColumn("Model"), "auroc": _N("AUROC", format="%.3f"),
        "auroc 95% CI": st.column_config.TextColumn("AUROC 95% CI"),
        "internal auroc": _N("AUROC on the run's test patients", format="%.3f"),
        "difference": _N("Difference", format="%+.3f", help="Here minus on the run's own test patients"),
        "auprc": _N("AUPRC", format="%.3f"), "brier": _N("Brier score", format="%.3f"),
        "calibration in the large": _N("Calibration in the large", format="%+.3f", help="0 is ideal; above 0 the "
                                       "model under-estimates the risk here"),
        "calibration slope": _N("Calibration slope", format="%.2f", help="1 is ideal; below 1 the risks are too "
                                "extreme here"),
        "sensitivity": _N("Sensitivity", format="%.3f"), "ppv": _N("PPV", format="%.3f"),
        "threshold": _N("Threshold", format="%.3f")}
_SHIFT = {"variable": st.column_config.TextColumn("Variable"), "kind": st.column_config.TextColumn("Kind"),
          "mean_train": _N("Mean, run's training patients", format="%.2f"),
          "sd_train": _N("SD, training", format="%.2f"), "mean_new": _N("Mean, here", format="%.2f"),
          "sd_new": _N("SD, here", format="%.2f"), "n_new": _N("Values here"),
          "smd": _N("Standardised difference", format="%+.2f")}


def _labelled(source: DataSource, origin: str, current: DataSource | None, online: bool) -> DataSource | None:
    """The scored data read again with their outcome (``None`` until the user has named one)."""
    task = "online" if online else "stay"
    if origin == "demo":
        return replace(source, config=replace(source.config, target=DEMO_TARGET, task=task))
    if origin == "current":
        if current is None or not current.config.target:
            st.caption("The data loaded on the Data page have no outcome: add labels there to measure the run.")
            return None
        return replace(source, labels=current.labels, config=replace(source.config, target=current.config.target,
                                                                     horizon_hours=current.config.horizon_hours,
                                                                     task=task))
    c = st.columns(2)
    up = c[0].file_uploader("Labels (optional: or a label column in the events)", type=["csv", "gz", "parquet"],
                            key="predict.labels")
    target = c[1].text_input("Outcome column", key="predict.target",
                             help="Per stay: a 0/1 column of the labels file (or constant per patient in the events)."
                                  " Online run: the hourly 0/1 column of the events (e.g. SepsisLabel).")
    if not target.strip():
        return None
    return replace(source, labels=(up.name, up.getvalue()) if up is not None else None,
                   config=replace(source.config, target=target.strip(), task=task))


def draw_external(run, path: str, source: DataSource, origin: str, current: DataSource | None, pairs: dict,
                  what: str, allow_missing: bool = False) -> None:
    """Labels for the scored data, a button, and the newest measurement of this run on these data."""
    def same(r) -> bool:
        return (r.run == path and r.source == what and r.mapping == tuple(sorted(pairs.items()))
                and r.allow_missing == allow_missing)

    _, held = jobs.latest_result("evaluate", same)
    with st.expander("Measure the run on these patients (external validation: needs their outcomes)",
                     expanded=held is not None):
        labelled = _labelled(source, origin, current, run.online)
        if labelled is not None and st.button("Measure the run on these patients", key="predict.evaluate"):
            cohort, report = load_with_status(labelled)
            if cohort is None or cohort.labels is None:
                render_report(report)
            else:
                jobs.submit("predict.evaluate", EvaluateRequest(run=path, mapping=tuple(pairs.items()), source=what,
                                                                allow_missing=allow_missing),
                            cohort, f"Validate run {run.name} on {cohort.n_patients:,} labelled patients")
        info, done = jobs.follow("predict.evaluate", ("evaluate",))
        result = done if done is not None and same(jobs.request_of(info.id)) else held
        if result is None:
            st.caption("Every model's metrics on these patients with 95% intervals, beside its metrics on the run's "
                       "own test patients; calibration; subgroups; the variables whose values moved most.")
            return
        st.caption(f"Run {plain(run.name)} on {result.n_patients:,} labelled patients of {plain(what)}. "
                   + plain(" ".join(s for s in (result.match, result.mapping.sentence()) if s)))
        for line in result.warnings:
            st.warning(plain(line))
        st.dataframe(result.table(), hide_index=True, column_config=_FMT, key="predict.external_table")
        if len(result.subgroups):
            st.markdown("**Subgroups** (small groups marked: their intervals are wide)")
            st.dataframe(result.subgroups, hide_index=True, key="predict.subgroups",
                         column_config={"model": st.column_config.TextColumn("Model"), **SUBGROUP_COLUMNS})
        st.markdown("**Variables whose values moved most** (standardised mean difference against the run's "
                    "training patients; 0.1 small, 0.5 large)")
        st.dataframe(result.shift.head(10), hide_index=True, key="predict.shift", column_config=_SHIFT)
        d = st.columns(2)
        download_button("Metrics (JSON)", partial(json.dumps, jsonable(result.metrics_dict()), indent=2),
                        "external-metrics.json", mime="application/json", key="predict.dl_external", where=d[0])
        download_button("Subgroups (CSV)", partial(safe_csv, result.subgroups), "subgroups.csv", mime="text/csv",
                        key="predict.dl_subgroups", where=d[1])
