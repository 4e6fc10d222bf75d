"""The Compare page's "Cross-validation" section: the current run's models, preset, features and seed in K folds
(repeated), as a job on a click (page -> CrossValidateRequest -> :func:`core.service.runners.cross_validate_run`);
kept with the run (``cv.csv``, ``cv.json``) and in its report."""
from __future__ import annotations

import streamlit as st

from app import jobs, workspace
from app.components import plain
from core import plots
from core.evaluation.cv import cv_summary
from core.models import registry
from core.service import CrossValidateRequest

__all__ = ["draw_cv"]


def draw_cv(summary, cohort) -> None:
    """K and repeats, a button, and the run's kept cross-validation (leaderboard as mean +- SD, folds, verdict)."""
    st.subheader("Cross-validation")
    if summary.folder is None:
        return
    here = str(summary.folder)
    c = st.columns([1, 1, 2])
    k = c[0].selectbox("Folds (K)", [3, 5, 10], index=1, key="compare.cv_folds")
    repeats = c[1].number_input("Repeats", 1, 5, 1, key="compare.cv_repeats",
                                help="Each repeat draws other folds (and seeds the models anew)")
    c[2].write("")
    if c[2].button("Cross-validate these models", key="compare.cv_go",
                   help="Every labelled patient is a test patient once per repeat; this retrains every model "
                        "K x repeats times"):
        jobs.submit("compare.cv", CrossValidateRequest(run=here, n_folds=int(k), repeats=int(repeats)), cohort)
    _, done = jobs.follow("compare.cv", ("cv",))
    kept = workspace.run_cv(here)
    if kept is None:
        st.caption("One split leaves few test patients (wide intervals); cross-validation scores every patient and "
                   f"gives each model's mean and spread over folds. {jobs.measured_duration('cv')}")
        return
    folds, info = kept
    labels = {n: registry.get(n).label for n in folds["model"].unique() if n in registry.names()}
    table = cv_summary(folds)
    table.insert(0, "label", table["model"].map(labels))
    times = f" x {info.get('repeats', 1)} repeats" if info.get("repeats", 1) > 1 else ""
    st.caption(f"{info.get('n_folds')}-fold{times} cross-validation of run {plain(summary.folder.name)} on all "
               f"labelled patients ({plain(info.get('preset'))} preset).")
    st.dataframe(table.drop(columns="model"), hide_index=True, key="compare.cv_table", column_config={
        "label": st.column_config.TextColumn("Model"),
        "auroc_mean": st.column_config.NumberColumn("AUROC, mean", format="%.3f"),
        "auroc_std": st.column_config.NumberColumn("AUROC, SD", format="%.3f", help="Spread over the folds"),
        "auprc_mean": st.column_config.NumberColumn("AUPRC, mean", format="%.3f"),
        "auprc_std": st.column_config.NumberColumn("AUPRC, SD", format="%.3f"),
        "n_folds": st.column_config.NumberColumn("Folds")})
    st.plotly_chart(plots.cv_figure(folds, labels), width="stretch", key="compare.cv_chart")
    verdict = info.get("order_verdict")
    if isinstance(verdict, dict) and verdict.get("sentence"):
        st.markdown(f"**Does time order help here?** {plain(verdict['sentence'])}")
