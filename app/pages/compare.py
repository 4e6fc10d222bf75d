"""Compare models: train on the current cohort, leaderboard with CIs, paired tests, curves, threshold."""
import json
from functools import partial

import streamlit as st

from app import cache, context, jobs, workspace
from app.components import gui_text, plain, require_cohort, show_error
from app.cv_view import draw_cv
from app.run_pair import draw_run_pair
from app.subgroups_view import draw_subgroups
from app.security import download_button
from core import plots
from core.evaluation.decision import HOW_TO_READ
from core.evaluation.metrics import threshold_metrics
from core.exceptions import CoreError
from core.runs.export import safe_csv
from core.models import registry

E2E_CLICKS = ["Train and compare"]

st.title("Compare models")
cohort = require_cohort()

with st.form("compare.form"):
    names = st.multiselect("Models", registry.names(), default=list(registry.names()), key="compare.models",
                           format_func=lambda n: registry.get(n).label)
    c = st.columns(4 if cohort.is_online else 3)
    preset = c[0].selectbox("Preset", ["quick", "full", "test"], key="compare.preset",
                            help="quick: smaller models; full: the benchmarked sizes (see docs/benchmarks.md for measured times)")
    seed = c[1].number_input("Seed", min_value=0, max_value=100_000, value=0, key="compare.seed")
    refit = c[2].checkbox("Refit for prediction", key="compare.refit",
                          help="After the evaluation, refit every model on training + validation patients "
                               "(epochs from early stopping, thresholds kept). Predictions then use the refits; "
                               "the metrics shown stay those of the untouched test patients.")
    max_hours = c[3].number_input("Hours per stay (cap)", 24, 2000, 336, key="compare.max_hours",
                                  help="Online task: each stay is used and scored up to this hour.") \
        if cohort.is_online else 336
    save = st.checkbox("Save run", key="compare.save",
                       help="Saved: the run (models, patient ids, predictions) is written to the runs folder, "
                            "readable by you only, until you delete it. Not saved: it is kept in a temporary "
                            "folder of this server, removed when the server stops; you can still save it below.")
    st.caption("Your data stay in memory. A run holds patient ids and predictions: it is written to the runs "
               "folder only if you tick **Save run** (or save it later); saved runs can be deleted below.")
    submitted = st.form_submit_button("Train and compare", type="primary")

if submitted and names:
    jobs.submit("compare", jobs.training_request(tuple(names), preset, int(seed), refit=refit,
                                                max_hours=float(max_hours), save=bool(save)), cohort)
elif submitted:
    st.warning("Choose at least one model.")
info, done = jobs.follow("compare", ("train",))
if done is not None:              # the new run is the current run of every page
    context.set_current_run(done.folder, "" if done.reused else
                            f"Trained {len(done.results)} models in {info.seconds:.0f} s: run {plain(done.folder.name)}.")
context.show_note()

runs = workspace.list_user_runs()
if runs:
    here = cohort.fingerprint()
    runs = sorted(runs, key=lambda r: r.get("fingerprint") != here)      # runs on this very data first (stable)

    def _describe(p: str) -> str:
        r = next(r for r in runs if r["path"] == p)
        names = ", ".join(registry.get(n).label if n in registry.names() else str(n) for n in r["models"])
        return f"{r['name']} ({names}; {'this data' if r.get('fingerprint') == here else 'other data'})"

    n_here = sum(r.get("fingerprint") == here for r in runs)
    with st.expander(f"Earlier runs ({len(runs)}, {n_here} on this data)"):
        pick = st.selectbox("Run", [r["path"] for r in runs], key="compare.run", format_func=_describe)
        picked = next(r for r in runs if r["path"] == pick)
        c = st.columns([1, 1, 2])
        if c[0].button("Open this run", key="compare.open", help="Make it the current run of every page"):
            try:
                workspace.open_run(pick)
                context.set_current_run(pick)
            except CoreError as err:
                show_error(err)
        sure = c[2].checkbox("Yes, delete it with all its files", key=f"compare.delete_sure.{pick}")
        if c[1].button("Delete this run", key="compare.delete", disabled=not sure):
            try:
                workspace.delete_user_run(pick)
            except CoreError as err:
                show_error(err)
            else:
                current = context.current_run()
                if current is None or current["path"] == pick:
                    context.set_current_run(None)
                st.rerun()
        st.caption(("Saved" if picked["saved"] else "Not saved (removed when the server stops)")
                   + ". Deleting removes the run folder and every file in it.")

current = context.current_run(cohort)
if current is None:
    if info is None or not info.active:
        st.info("Choose models and a preset, then press **Train and compare**; or open an earlier run. "
                + jobs.measured_duration("train"))
    st.stop()
try:
    summary = workspace.open_run(current["path"])
except CoreError as err:
    show_error(err)
    st.stop()

if not current["saved"]:
    c = st.columns([1, 4])
    if c[0].button("Save this run", key="compare.save_now"):
        try:
            folder = workspace.save_user_run(str(summary.folder))
            context.set_current_run(folder, f"Saved as run {plain(folder.name)}, readable by you only. Delete it "
                                            "under Earlier runs.")
            summary = workspace.open_run(str(folder))
        except CoreError as err:
            show_error(err)
        else:
            st.success(f"Saved as run {plain(summary.folder.name)}, readable by you only. Delete it under Earlier runs.")
    else:
        c[1].caption("This run is not saved: it is kept in a temporary folder of this server, removed when the "
                     "server stops.")
if summary.folder is not None:
    try:
        mismatch = plain(workspace.run_match(str(summary.folder), cohort).sentence())
    except CoreError as err:
        mismatch = f"This run's files could not be compared with the current data ({gui_text(err)})."
    if mismatch:
        st.warning(f"{mismatch} The metrics below are those of the run's own test patients, not of the data "
                   "loaded now.")
online = summary.online
st.subheader("Leaderboard (test patients, every hour)" if online else "Leaderboard (test patients)")
if online:
    first = next(iter(summary.results.values()))
    st.caption(f"Run: {plain(summary.folder.name)}. Online task: every model scored on the same "
               f"{len(first.y_true):,} test patient-hours of {len(set(first.patient_ids)):,} patients, each "
               "hour from data up to and including it. Metrics pooled over hours; 95% intervals from a bootstrap "
               "over patients (the hours of one patient are resampled together). Alarm metrics at the threshold "
               "chosen on validation patients: the share of positive stays alarmed before onset, the median "
               "hours from the first alarm to onset, and false alarms per patient-day, each with its 95% interval "
               "from the same bootstrap over patients.")
else:
    st.caption(f"Run: {plain(summary.folder.name)}. Thresholds chosen on validation patients; 95% bootstrap intervals.")
_NAMES = {  # leaderboard columns in words, with what each measures
    "auroc": ("AUROC", "Area under the ROC curve: the chance a random positive ranks above a random negative."),
    "auprc": ("AUPRC", "Area under the precision-recall curve; compare it with the prevalence."),
    "brier": ("Brier score", "Mean squared error of the risks (lower is better; calibration and sharpness)."),
    "min_se_ppv": ("min(Se, PPV)", "The smaller of sensitivity and positive predictive value at the threshold "
                                   "chosen on validation patients (the PhysioNet 2012 challenge score)."),
    "threshold": ("Threshold", "Risk above which a patient is flagged, chosen on validation patients."),
    "alarmed before onset": ("Alarmed before onset", "Share of positive stays alarmed before the onset."),
    "median warning (h)": ("Median warning (h)", "Median hours from the first alarm to the onset."),
    "false alarms / patient-day": ("False alarms / patient-day", "Alarms outside the label window per 24 h."),
}
config = {k: st.column_config.NumberColumn(label, help=why, format="%.3f") for k, (label, why) in _NAMES.items()}
config.update({f"{k} 95% CI": st.column_config.TextColumn(f"{_NAMES[k][0]} 95% CI")
               for k in ("auroc", "auprc", "brier", "min_se_ppv", "alarmed before onset", "median warning (h)",
                         "false alarms / patient-day")})
config["model"] = st.column_config.TextColumn("Model")
config["train seconds"] = st.column_config.NumberColumn("Training (s)", format="%.1f")
st.dataframe(summary.leaderboard(), hide_index=True, width="stretch", column_config=config)
st.plotly_chart(plots.leaderboard_figure(summary.results), width="stretch")
if summary.comparisons:
    ref = summary.results[summary.reference].label
    kind = "p-values from the paired bootstrap over patients" if online else "DeLong p-values"
    holm_note = (f"; the verdicts use p-values Holm-adjusted for the {len(summary.comparisons)} comparisons"
                 if len(summary.comparisons) > 1 else "")
    st.markdown(f"**Paired tests against the best classical model on validation ({ref})**, {kind}{holm_note}:")
    st.markdown("\n".join(f"- {c.sentence}" for c in summary.comparisons))

# the best two on validation patients by default (eight overlapping curves with bands read as none), others on request
by_validation = sorted(summary.results, key=lambda n: -float(
    summary.metrics.get("models", {}).get(n, {}).get("validation_auroc") or -1.0))
curves_of = st.multiselect("Models on the curves", list(summary.results), default=by_validation[:2],
                           key=f"compare.curves.{summary.folder.name if summary.folder else ''}",
                           format_func=lambda n: summary.results[n].label or n,
                           help="Opens with the two models that did best on validation patients")
shown = {n: ev for n, ev in summary.results.items() if n in curves_of} or summary.results
tabs = st.tabs(["ROC", "Precision-recall", "Calibration", "Decision curves"])
tabs[0].plotly_chart(plots.roc_figure(shown), width="stretch")
tabs[1].plotly_chart(plots.pr_figure(shown), width="stretch")
tabs[2].plotly_chart(plots.calibration_figure(shown), width="stretch")
tabs[3].caption(HOW_TO_READ + (" Online run: a row is a test patient-hour; the band resamples patients." if online
                               else ""))
tabs[3].plotly_chart(plots.decision_curve_figure(cache.decision_curves(summary), models=list(shown)), width="stretch")

st.subheader("Decision threshold")
c = st.columns([1, 2])
run_name = summary.folder.name          # widget keys carry the run: another run starts at its own thresholds
name = c[0].selectbox("Model", list(summary.results), key=f"compare.threshold_model.{run_name}",
                      format_func=lambda n: summary.results[n].label)
ev = summary.results[name]
thr = c[0].slider("Threshold", 0.0, 1.0, float(round(ev.threshold, 3)), step=0.001, format="%.3f",
                  key=f"compare.thr.{run_name}.{name}",
                  help=f"Starts at the threshold chosen on validation patients ({ev.threshold:.3f}, as in the "
                       "leaderboard).")
m = threshold_metrics(ev.y_true, ev.y_proba, thr)
for k, label in (("sensitivity", "Sensitivity"), ("specificity", "Specificity"), ("ppv", "PPV"), ("npv", "NPV")):
    c[0].metric(label, f"{m[k]:.3f}")
c[1].plotly_chart(plots.confusion_figure(ev, thr), width="stretch")

draw_cv(summary, cohort)
draw_subgroups(summary, cohort)
draw_run_pair(summary, cohort)

d = st.columns(2)
download_button("Metrics (JSON)", partial(json.dumps, summary.metrics, indent=2), "metrics.json",
                mime="application/json", key="compare.dl_metrics", where=d[0])
download_button("Predictions (CSV)", partial(safe_csv, summary.predictions), "predictions.csv", mime="text/csv",
                key="compare.dl_predictions", where=d[1])
if summary.folder is not None:
    download_button("Report (HTML, opens offline)", workspace.run_report(str(summary.folder)),
                    f"{summary.folder.name}-report.html", mime="text/html", key="compare.dl_report",
                    help="One self-contained file: data summary, split, metrics with CIs, paired tests, curves, "
                         "decision curves, and every analysis kept with this run (time order, explanations, "
                         "cross-validation), versions and the TRIPOD+AI checklist. Built when clicked.")
