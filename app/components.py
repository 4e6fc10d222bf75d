"""Render helpers shared by pages (no computation)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.validation import Finding, ValidationReport

__all__ = ["render_report", "render_finding", "no_cohort_notice", "require_cohort"]


def render_finding(f: Finding) -> None:
    body = f"**{f.message}**" + (f" ({f.count:,} {f.unit})" if f.count else "")
    if f.examples:
        body += "  \n" + "Examples: " + "; ".join(f"`{e}`" for e in f.examples)
    if f.fix:
        body += "  \n" + f"How to fix: {f.fix}"
    {"error": st.error, "warning": st.warning, "info": st.info}[f.level](body)


def render_report(report: ValidationReport) -> None:
    """Summary metrics, then errors, warnings, exclusions and notes, for a person."""
    s = report.summary
    if s:
        cols = st.columns(5)
        cols[0].metric("Patients", f"{s.get('patients', 0):,}")
        cols[1].metric("Rows used", f"{report.rows_used:,}", help=f"{report.rows_read:,} rows read")
        cols[2].metric("Variables", f"{s.get('time-series variables', 0)} + {s.get('static attributes', 0)} static")
        cols[3].metric("Labelled", f"{s.get('labelled patients', 0):,}" if "labelled patients" in s else "none")
        cols[4].metric("Prevalence", str(s.get("prevalence", "n/a")),
                       help=f"{s.get('positives', 0):,} positives for target {s.get('target')}")
    if report.ok:
        st.success("The data can be used for training." if "labelled patients" in s else
                   "The data can be explored; add labels to train models.")
    for f in report.errors:
        render_finding(f)
    for f in report.warnings:
        render_finding(f)
    excluded = sum(report.rows_excluded.values())
    if excluded:
        with st.expander(f"{excluded:,} of {report.rows_read:,} rows excluded: by reason"):
            st.dataframe(pd.DataFrame({"reason": list(report.rows_excluded),
                                       "rows": list(report.rows_excluded.values())}), hide_index=True)
    notes = [f for f in report.findings if f.level == "info"]
    if notes:
        with st.expander(f"How the data were read ({len(notes)} notes)"):
            for f in notes:
                st.markdown(f"- {f.message}" + (f" ({f.count:,} {f.unit})" if f.count else ""))
            if "columns" in s:
                st.markdown(f"- Column mapping: {s['columns']}; format: {s.get('format')}")


def no_cohort_notice() -> None:
    st.warning("No usable cohort is loaded. Go to the **Data** page to load the demo or fix your upload.")
    st.page_link("app/pages/data.py", label="Open the Data page", icon=":material/upload_file:")


def require_cohort():
    """The current cohort, or (when none could be built) a notice pointing to the Data page and ``st.stop()``."""
    from app.cache import load_current_cohort
    cohort = load_current_cohort()
    if cohort is None:
        no_cohort_notice()
        st.stop()
    return cohort
