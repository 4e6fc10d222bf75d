"""The Compare page's "Against another run" section: the current run (B) paired with a baseline run (A) of the same
user on their common test patients (page -> PairRequest -> job -> :func:`core.runs.pair.compare_runs`)."""
from __future__ import annotations

import streamlit as st

from app import jobs, workspace
from app.components import plain, show_error
from core.exceptions import CoreError
from core.models import registry
from core.service import PairRequest

__all__ = ["draw_run_pair"]

_COLUMNS = {"model": st.column_config.TextColumn("Model"),
            "auroc A": st.column_config.NumberColumn("AUROC, A", format="%.3f"),
            "auroc B": st.column_config.NumberColumn("AUROC, B", format="%.3f"),
            "difference": st.column_config.NumberColumn("B - A", format="%+.3f"),
            "ci low": st.column_config.NumberColumn("95% CI low", format="%+.3f"),
            "ci high": st.column_config.NumberColumn("95% CI high", format="%+.3f"),
            "p": st.column_config.NumberColumn("p (one test)", format="%.3f"),
            "p (Holm)": st.column_config.NumberColumn("p (Holm-adjusted)", format="%.3f",
                                                      help="Adjusted for testing every shared model at once"),
            "verdict": st.column_config.TextColumn("At 5%, after adjustment")}


def draw_run_pair(summary, cohort) -> None:
    """Pick a baseline run, compare on a click, show the newest comparison of these two runs."""
    if summary.folder is None:
        return
    here = str(summary.folder)
    task = "online" if summary.online else "stay"
    others = [r for r in workspace.list_user_runs() if r["path"] != here and r.get("task", "stay") == task]
    st.subheader("Against another run")
    if not others:
        st.caption("Train or open a second run to compare the two on the same test patients (quick against full "
                   "preset, with or without a variable, another seed).")
        return

    def _describe(p: str) -> str:
        r = next(r for r in others if r["path"] == p)
        return f"{r['name']} ({', '.join(registry.get(n).label for n in r['models'] if n in registry.names())})"

    c = st.columns([3, 1])
    base = c[0].selectbox("Baseline run (A); the current run is B", [r["path"] for r in others], format_func=_describe,
                          key=f"compare.pair_base.{summary.folder.name}")
    c[1].write("")
    if c[1].button("Compare the two runs", key="compare.pair_go"):
        try:
            jobs.submit("compare.pair", PairRequest(a=workspace.check_owned(base), b=workspace.check_owned(here)),
                        cohort)
        except CoreError as err:
            show_error(err)
    jobs.follow("compare.pair", ("pair",))
    _, result = jobs.latest_result("pair", lambda r: r.a == base and r.b == here)
    if result is None:
        st.caption("Each model both runs have, B against A, on the test patients both scored: AUROC difference with "
                   "a 95% interval, and p-values adjusted for the number of models compared.")
        return
    st.caption(plain(result.sentence()))
    st.dataframe(result.table, hide_index=True, width="stretch", column_config=_COLUMNS, key="compare.pair_table")
