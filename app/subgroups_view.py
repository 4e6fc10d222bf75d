"""The Compare page's "Subgroups" section: the current run's test metrics per subgroup of static attributes (page
-> SubgroupsRequest -> job -> :func:`core.evaluation.subgroups.subgroup_metrics`), on a click."""
from __future__ import annotations

from functools import partial

import streamlit as st

from app import jobs, workspace
from app.security import download_button
from core import plots
from core.runs.export import safe_csv
from core.service import SubgroupsRequest

__all__ = ["draw_subgroups", "SUBGROUP_COLUMNS"]

_N = st.column_config.NumberColumn
SUBGROUP_COLUMNS = {"attribute": st.column_config.TextColumn("Attribute"), "group": st.column_config.TextColumn("Group"),
            "n": _N("Patients"), "n_positive": _N("Positive"), "auroc": _N("AUROC", format="%.3f"),
            "auroc_low": _N("AUROC low", format="%.3f"), "auroc_high": _N("AUROC high", format="%.3f"),
            "observed": _N("Observed rate", format="%.3f"), "expected": _N("Mean risk", format="%.3f"),
            "observed_expected": _N("Observed / expected", format="%.2f", help="1 is ideal; above 1 the model "
                                    "under-estimates the risk in this group"),
            "calibration_in_the_large": _N("Calibration in the large", format="%+.2f"),
            "sensitivity": _N("Sensitivity", format="%.3f"), "sensitivity_low": _N("Se low", format="%.3f"),
            "sensitivity_high": _N("Se high", format="%.3f"), "ppv": _N("PPV", format="%.3f"),
            "ppv_low": _N("PPV low", format="%.3f"), "ppv_high": _N("PPV high", format="%.3f"),
            "small": st.column_config.CheckboxColumn("Small group", help="Under 50 patients or 10 positive ones")}


def draw_subgroups(summary, cohort) -> None:
    """Attributes to split by, a button, and the newest subgroup table of this run (with a forest plot)."""
    st.subheader("Subgroups")
    attributes = cohort.static_variables
    if summary.folder is None or not attributes:
        st.caption("These data have no static attributes (age, sex, unit...) to form subgroups by.")
        return
    here = str(summary.folder)
    kept = workspace.run_subgroups(here)            # the last measurement kept with the run (after a reload too)
    default = [a for a in kept[0] if a in attributes] if kept else attributes[:4]
    c = st.columns([3, 1])
    picked = c[0].multiselect("Attributes", attributes, default=default or attributes[:4],
                              key=f"compare.subgroup_attrs.{summary.folder.name}",
                              help="Categorical values one group each; age in bands; other numbers in thirds")
    c[1].write("")
    if c[1].button("Measure each subgroup", key="compare.subgroups_go", disabled=not picked):
        jobs.submit("compare.subgroups", SubgroupsRequest(run=here, attributes=tuple(picked)), cohort)
    jobs.follow("compare.subgroups", ("subgroups",))
    _, table = jobs.latest_result("subgroups", lambda r: r.run == here and r.attributes == tuple(picked))
    if table is None and kept is not None and tuple(kept[0]) == tuple(picked):
        table = kept[1]
    if table is None:
        st.caption("Each model's AUROC, calibration (observed / expected) and sensitivity and PPV at its threshold "
                   "in every group of the chosen attributes, with 95% intervals; groups under 50 patients or 10 "
                   "events are marked small.")
        return
    model = st.selectbox("Model", list(dict.fromkeys(table["model"])), key="compare.subgroup_model")
    st.plotly_chart(plots.subgroup_figure(table, model), width="stretch", key="compare.subgroup_chart")
    st.dataframe(table[table["model"] == model].drop(columns="model"), hide_index=True, key="compare.subgroup_table",
                 column_config=SUBGROUP_COLUMNS)
    download_button("Subgroups (CSV, every model)", partial(safe_csv, table), "subgroups.csv", mime="text/csv",
                    key="compare.dl_subgroups")
