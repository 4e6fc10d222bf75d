"""Patient timeline: find a patient, see the actual observations over time, static attributes and outcome.

Once a run trained on this data exists, every model's risk sits above the vitals: hour by hour for
an online run (the positive label window shaded), the risk trajectory (the risk from the data up to
each hour) for a stay run. "What if..." edits the patient's measurements (a copy) and shows every
model's risk again beside the original (core.analysis.whatif).
"""
import streamlit as st

from app import context, state, workspace
from app.components import gui_text, plain, require_cohort
from core.data import explore
from core import plots
from core.analysis import whatif
from core.exceptions import CoreError
from core.data.plausibility import code_table, codes_from_table, describe_value
from core.models import registry

st.title("Patient timeline")
cohort = require_cohort()

c = st.columns([2, 1, 3])
query = c[0].text_input("Find patient id (contains)", key="timeline.query")
outcome = c[1].selectbox("Outcome", ["all", "positive", "negative"], key="timeline.outcome",
                         disabled=cohort.labels is None)
ids = explore.find_patients(cohort, query, outcome, limit=None)
if not ids:
    st.warning(f"No patient id contains {plain(repr(query))} with outcome {outcome}. Clear the search or change the filter.")
    st.stop()
if st.session_state.get("timeline.patient") not in ids:
    st.session_state["timeline.patient"] = ids[0]


def _step(k: int) -> None:
    st.session_state["timeline.patient"] = explore.step_patient(ids, st.session_state["timeline.patient"], k)


shown = explore.patient_window(ids, st.session_state["timeline.patient"])
pid = c[2].selectbox(f"Patient ({len(ids):,} matching" + (f"; {len(shown):,} around this one listed, type to narrow)"
                                                         if len(shown) < len(ids) else ")"),
                     shown, key="timeline.patient")
b = st.columns([1, 1, 5])
b[0].button("Previous", key="timeline.prev", on_click=_step, args=(-1,), width="stretch",
            help="The previous patient of the list above")
b[1].button("Next", key="timeline.next", on_click=_step, args=(1,), width="stretch",
            help="The next patient of the list above")

codes_frame = st.session_state.get(state.CODE_TABLE)
codes = None if codes_frame is None else codes_from_table(codes_frame)
events = cohort.patient_events(pid)
label = None if cohort.labels is None else cohort.labels.get(pid)
c = st.columns(6)
c[0].metric("Outcome" + (f" ({plain(cohort.target)})" if cohort.target else ""),
            "unlabelled" if label is None else ("positive" if label == 1 else "negative"))
c[1].metric("Observations", f"{len(events):,}")
c[2].metric("Last observation (h)", f"{events['time_hours'].max():.1f}" if len(events) else "n/a")
if pid in cohort.static.index:
    for i, (name, value) in enumerate(cohort.static.loc[pid].items()):
        if i < 3:
            c[3 + i].metric(plain(name), describe_value(name, value, codes))
    st.text("Static attributes: " + ", ".join(f"{k} {describe_value(k, v, codes)}"
                                              for k, v in cohort.static.loc[pid].items()))
with st.expander("What the codes mean (edit for your data)"):
    st.caption("Coded attributes are shown by their meaning. The built-in meanings are those of the PhysioNet "
               "2012/2019 data; if your export codes them differently, correct or add rows here (this session only; "
               "your data are not changed).")
    base = codes_frame if codes_frame is not None else code_table(cohort.static_variables)
    edited = st.data_editor(base, num_rows="dynamic", hide_index=True, key="timeline.codes_editor",
                            column_config={"variable": st.column_config.TextColumn("Variable"),
                                           "code": st.column_config.NumberColumn("Code"),
                                           "meaning": st.column_config.TextColumn("Meaning")})
    if st.button("Use these meanings", key="timeline.codes_apply"):
        st.session_state[state.CODE_TABLE] = edited
        st.rerun()

# the risk panel: a run trained on this very data (the one open on Compare first)
current = context.run_on_data(cohort)
runs = workspace.runs_on_data(cohort.fingerprint())

def _whatif_panel(run, path: str) -> None:
    """Stack edits of this patient's measurements; draw every model's risk before and after them."""
    stacks = st.session_state.setdefault(state.WHATIF_EDITS, {})
    edits = stacks.setdefault(pid, [])
    names = whatif.edit_variables(events, run)
    window = float(run.builder.config.window_hours)
    with st.expander("What if…", expanded=bool(edits)):
        st.caption("Change this patient's measurements and see every model's risk again (your data are not "
                   f"changed). Hours since admission, 0 to {window:g} h (the run's window); 'edit' and 'remove' "
                   "need the hour of a measurement (within 30 s: see Raw observations below); a static attribute (Age, "
                   "...) holds from the first hour, so its hour is ignored.")
        with st.form("timeline.whatif_form", clear_on_submit=False):
            f = st.columns([1.2, 1.5, 1, 1])
            kind = f[0].selectbox("Change", whatif.KINDS, key="timeline.whatif_kind", index=whatif.KINDS.index("add"),
                                  format_func=lambda k: {"edit": "edit a value", "add": "add a measurement",
                                                         "remove": "remove a measurement",
                                                         "drop_variable": "drop a variable",
                                                         "static": "set a static attribute"}[k])
            variable = f[1].selectbox("Variable", names, key="timeline.whatif_variable")
            hour = f[2].number_input("Hour", value=0.0, step=1.0, format="%.2f", key="timeline.whatif_hour")
            value = f[3].number_input("Value", value=None, format="%.4g", key="timeline.whatif_value",
                                      help="The new value (edit, add, static attribute); ignored when removing or dropping")
            if st.form_submit_button("Add this change"):
                try:
                    edit = whatif.Edit(kind, variable, hour, value, variables=tuple(names), window_hours=window)
                    whatif.check_edits(run, cohort, pid, [*edits, edit])     # refused here, not later
                    edits.append(edit)
                except CoreError as err:
                    st.error(gui_text(err))
        for i, e in enumerate(list(edits)):
            r = st.columns([6, 1])
            r[0].text(f"{i + 1}. {e.describe()}")
            r[1].button("Remove", key=f"timeline.whatif_remove.{i}", on_click=edits.pop, args=(i,))
        if not edits:
            return
        b = st.columns([1, 1, 5])
        b[0].button("Undo last", key="timeline.whatif_undo", on_click=edits.pop)
        b[1].button("Reset", key="timeline.whatif_reset", on_click=edits.clear)
        try:
            res = workspace.patient_whatif(path, cohort, pid, edits)
        except CoreError as err:
            st.error(gui_text(err))
            return
        st.plotly_chart(plots.whatif_figure(res), width="stretch", key="timeline.whatif_chart")
        st.caption(("Risk at the last scored hour" if res.online else "Stay risk (the last point)")
                   + "; largest change: the biggest move at any hour, and where. Risks before the first edited "
                   "hour are unchanged: the models only read the data up to each hour.")
        st.dataframe(res.summary(labels=True), hide_index=True, key="timeline.whatif_table",
                     column_config={"original risk": st.column_config.NumberColumn(format="%.3f"),
                                    "what-if risk": st.column_config.NumberColumn(format="%.3f"),
                                    "change": st.column_config.NumberColumn(format="%+.3f", help="What-if minus "
                                                                            "original, at the last point"),
                                    "largest change": st.column_config.NumberColumn(
                                        format="%+.3f", help="The biggest move at any hour (+ up, - down)")})


risk, thresholds, run = None, None, None
if runs:
    paths = [r["path"] for r in runs]
    default = paths.index(current["path"]) if current is not None and current["path"] in paths else 0
    path = st.selectbox("Risk from run", paths + [""], index=default, key="timeline.run",
                        format_func=lambda p: next((f"{r['name']} ({len(r['models'])} models)" for r in runs
                                                    if r["path"] == p), "none"))
    if path:
        try:
            run = workspace.load_run(path)
            risk = workspace.patient_risk(path, cohort, pid)
            # one model by default (the best on validation patients); the others on request, in the run's order
            names = [n for n in run.models if n in risk.columns]
            picked = st.multiselect("Models on the risk panel", names, default=[run.best_model],
                                    key=f"timeline.models.{run.name}", format_func=lambda n: registry.get(n).label,
                                    help="Opens with the model that did best on the run's validation patients")
            risk = risk[["time_hours", *[n for n in names if n in picked]]]
            thresholds = {n: t for n, t in run.thresholds.items() if n in risk.columns}
            split = run.split_of(pid)
            st.caption({"train": "A **training** patient of this run: the models were fitted on this patient, so "
                                 "these risks look better than a new patient's would.",
                        "validation": "A **validation** patient of this run: the thresholds were chosen on this "
                                      "patient.",
                        "test": "A **test** patient of this run: never used to fit or tune the models, so these "
                                "risks are what a new patient would get.",
                        None: "Not a patient of this run's split."}[split])
            online = run.online
            st.caption("Top panel: each model's risk " + (
                "at every hour, from the data up to and including it. Shaded: hours labelled 1." if online else
                "from the data up to each hour (the last point is the stay's risk, the one the leaderboard scores); "
                "classical models see the summaries of those hours, sequence models the hours in order.")
                + " Dotted line: each shown model's threshold, chosen on validation patients.")
        except CoreError as err:
            st.warning(f"This run cannot score this patient: {gui_text(err)}")
            run = None
else:
    st.caption("Train models on the Compare page to see every model's risk for this patient above the vitals.")
present = sorted(events["variable"].astype(str).unique())
chosen = st.multiselect("Variables", present, default=explore.default_timeline_variables(cohort, pid),
                        key=f"timeline.vars.{pid}",
                        help="Opens with the patient's most measured vital signs and laboratory values")
st.plotly_chart(plots.timeline_figure(events, chosen, title=f"Patient {pid}: markers are actual observations",
                                      risk=risk, shade=explore.label_windows(cohort, pid), thresholds=thresholds),
                width="stretch")
if run is not None and risk is not None:
    _whatif_panel(run, path)
with st.expander("Raw observations"):
    st.dataframe(events, hide_index=True)
