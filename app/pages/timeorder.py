"""Time order: does the ORDER of the hours matter on this cohort? The analysis of the current run: ablation,
early prediction, gap, verdict, the tiers and informative missingness (page -> TimeOrderRequest -> runner)."""
from dataclasses import replace

import streamlit as st

from app import context, jobs, state, workspace
from app.components import plain, require_cohort, show_error
from core import plots
from core.exceptions import CoreError
from core.models import registry
from core.service import DEFAULT_HORIZONS, DEFAULT_MODELS, DEFAULT_PRESET, EARLY_MODELS, TimeOrderRequest
from core.analysis.timeorder import SHUFFLE_DESCRIPTION

E2E_CLICKS = ["Run the time-order analysis"]

st.title("Time order")
st.markdown("Sequence models (RNN, LSTM, GRU) read the hours **in order**; classical models see order-free "
            "summaries (first, last, mean, min, max, slope...). Does the order carry information about the "
            "outcome on *your* data? Measured on the **current run**: its split, its test patients, its models.")
cohort = require_cohort()
with st.expander("What the analyses mean (read this first)"):
    st.markdown(f"""
1. **Order ablation.** The run's sequence model (a) on the hours in their real order, against (b) the same model
   retrained on the same training patients with their hours shuffled, and (c) the run's model tested on shuffled
   hours. If (a) clearly beats (b), order carries information. *How the shuffle removes order and nothing else:*
   {SHUFFLE_DESCRIPTION}
2. **Early prediction.** The chosen models refitted with only the first *k* hours of each stay (online task: the
   run's models scored on the first *k* hours); the full-horizon points are the run's own models.
3. **The gap.** The run's best sequence model against its best order-free model (each chosen on validation
   patients), on the run's test patients: the same AUROCs as the leaderboard on *Compare models*.
4. **Three tiers.** (a) the best order-free model on order-free summaries, (b) the order-free models refitted on
   *time-aware* summaries (when things happen), (c) the best sequence model. If (b) closes most of the gap, the
   advantage of order is *when* things happen, which hand-made features can carry.
5. **Informative missingness.** Tier (a)'s model refitted on *when* variables were measured alone.

Small samples give wide intervals, and "no evidence" is not "evidence of no effect". On the synthetic demo the
outcome depends on which of two episodes came first, so order matters by construction; on real PhysioNet 2012
mortality, levels carry most of the risk.
""")

run = context.run_on_data(cohort)
names = tuple(run["models"]) if run is not None else DEFAULT_MODELS
seq = [n for n in names if registry.get(n).input_kind == "sequence" and n != "grud"] or list(registry.SEQUENCE[:3])
c = st.columns([1.2, 1.4, 1.8, 1])         # the model chips get the widest box: "GRU" is never clipped
model = c[0].selectbox("Ablation model", seq, index=seq.index("gru") if "gru" in seq else 0, key="timeorder.model",
                       format_func=lambda n: registry.get(n).label)
hours = c[1].multiselect("Hours available (k)", [6, 12, 24, 36, 48, 72], default=list(map(int, DEFAULT_HORIZONS)),
                         key="timeorder.hours")
early = c[2].multiselect("Models refitted on fewer hours", list(names),
                         default=[n for n in EARLY_MODELS if n in names], key="timeorder.early",
                         format_func=lambda n: registry.get(n).label)
with_tiers = c[3].checkbox("Tiers and missingness", value=True, key="timeorder.tiers")
if run is None:
    st.info("No run on this data yet. The button trains the comparison first (all models, quick preset; it becomes "
            "the current run), then analyses it. Or train on **Compare models** and come back.")
if st.button("Run the time-order analysis", type="primary", key="timeorder.run"):
    try:
        request = TimeOrderRequest(run=run["path"] if run else "", model=model, horizons_hours=tuple(hours) or (48,),
                                   early_models=tuple(early), tiers=bool(with_tiers),
                                   train=None if run else jobs.training_request(DEFAULT_MODELS, DEFAULT_PRESET, 0))
        request = replace(request, **(st.session_state.get(state.TIMEORDER_CONFIG_OVERRIDE) or {}))
    except (CoreError, ValueError) as err:
        show_error(err)
        st.stop()
    jobs.submit("timeorder", request, cohort)
info, done = jobs.follow("timeorder", ("timeorder",))
if done is not None and run is None:              # the run trained for it (the newest on this data) becomes current
    trained = workspace.runs_on_data(cohort.fingerprint())
    if trained:
        context.set_current_run(trained[0]["path"])
if run is None:
    st.stop()
try:
    result = workspace.load_timeorder(run["path"])
except CoreError as err:
    show_error(err)
    st.stop()
if result is None:
    if info is None or not info.active:
        st.info(f"No time-order analysis of the run {plain(run['name'])} yet. Press **Run the time-order analysis**. "
                + jobs.measured_duration("timeorder"))
    st.stop()

{"positive": st.success, "negative": st.warning, "none": st.info}[result.ablation.evidence](
    f"**Verdict.** {result.verdict}")
st.caption(f"Run {plain(run['name'])}: its {result.n_patients['train']:,} training, "
           f"{result.n_patients['validation']:,} validation and {result.n_patients['test']:,} test patients and its "
           f"{result.config.preset} models (seed {result.config.random_state}); {result.seconds:.0f} s. The ordered "
           "arm and the full-horizon points are the run's own models: their AUROCs are the leaderboard's.")
c = st.columns(2)
c[0].plotly_chart(plots.ablation_figure(result.ablation), width="stretch")
c[1].plotly_chart(plots.timeorder_forest_figure(result), width="stretch")
metric = st.radio("Early-prediction metric", ["auroc", "auprc"], horizontal=True, key="timeorder.metric",
                  format_func=str.upper)
st.plotly_chart(plots.horizon_figure(result.horizons, metric), width="stretch")
tiers, missing = result.tiers, result.missingness
if tiers is not None:
    st.subheader("Where the gain comes from: three tiers and informative missingness")
    st.markdown(tiers.sentence)
    st.markdown(missing.sentence)
    st.plotly_chart(plots.tiers_figure(tiers, missing), width="stretch")
    st.dataframe(tiers.table(), hide_index=True, width="stretch")      # full width: the CI column is never cut
elif result.config.tiers:
    st.info("The tiers need an order-free model in the run.")
with st.expander("All numbers"):
    st.dataframe(result.horizons, hide_index=True)
    st.json(result.to_dict()["ablation"], expanded=False)
