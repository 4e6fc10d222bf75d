"""Time order: does the ORDER of the hours matter on this cohort? Ablation, early prediction, gap, verdict,
the tiers (order-free / time-aware summaries / sequence model) and informative missingness."""
import streamlit as st

from app import jobs, state
from app.components import require_cohort, show_error
from core import plots
from core.config import EvaluationConfig, FeatureConfig, SplitConfig
from core.exceptions import CoreError
from core.models import registry
from core.timeorder import SHUFFLE_DESCRIPTION, TimeOrderConfig

E2E_CLICKS = ["Run the time-order analysis"]

st.title("Time order")
st.markdown("Sequence models (RNN, LSTM, GRU) read the hours **in order**; classical models see order-free "
            "summaries (first, last, mean, min, max, slope...). Does the order carry information about the "
            "outcome on *your* data? Three measurements answer it, each with a 95% confidence interval.")
cohort = require_cohort()
if cohort.is_online:
    st.info("This data has a label for every hour (the online task). The ablation shuffles each stay's hours with "
            "their labels (every hour keeps its own data and label; only the order of the history changes), "
            "early prediction scores the models on the first *k* hours of each stay, and every interval comes "
            "from a bootstrap over patients.")

with st.expander("What the three analyses mean (read this first)"):
    st.markdown(f"""
1. **Order ablation.** The same sequence model is trained and tested (a) on the hours in their real order,
   (b) retrained and tested on the same patients with their hours shuffled, and (c) the ordered model is tested
   on shuffled hours. If (a) clearly beats (b), order carries information. *How the shuffle removes order and
   nothing else:* {SHUFFLE_DESCRIPTION}
2. **Early prediction.** Every model is retrained with only the first *k* hours of each stay. A model that
   uses the *sequence* may pull ahead as hours accumulate, or may not.
3. **The gap.** The best sequence model against the best order-free model (each chosen on validation
   patients), compared on the same test patients: paired bootstrap interval and DeLong's test.
4. **Three tiers.** Where does a gap come from? (a) The best order-free model on order-free summaries, (b) the
   best of the same models refitted on *time-aware* summaries (per variable: hour of the minimum and of the maximum,
   slope in each quarter of the window, mean / last / count over the last 6 and 12 hours; online, from data up to
   each hour only), against (c) the best sequence model, on the same test patients. If (b) closes most of the gap, the advantage of order is
   *when* things happen, which hand-made features can carry.
5. **Informative missingness.** Tier (a)'s model refitted on *when* variables were measured alone (counts,
   measured hours, hours since the last measurement, measurement rate; no value at all) against the same model on
   the values: how much of the signal is in the measurement pattern.

**Two correct answers.** On the synthetic **demo** cohort the outcome depends, by construction, on *which of two
episodes came first* (hypotension then a lactate/heart-rate spike is dangerous, the reverse is not): adding the true
order to order-free summaries lifts AUROC from about 0.70 to 0.86 (see `data/README.md`), so the advantage of order
is large by construction. On real **PhysioNet 2012** mortality, risk is mostly carried by *levels* (how low the GCS,
how high the lactate), which order-free summaries capture well, so the advantage of order is small. Both are right:
the analysis measures your data and your models, it assumes nothing. The ablation also tests the *model*: if the
network has not learned the order from the training patients available, shuffling costs it nothing and the
verdict says "no evidence", even on the demo (more patients or the full preset may change that). Small samples
give wide intervals, and "no evidence" is not "evidence of no effect".
""")

c = st.columns(4)
names = c[0].multiselect("Models (early prediction, gap)", registry.names(), default=["lr", "gru"],
                         key="timeorder.models", format_func=lambda n: registry.get(n).label)
model = c[1].selectbox("Ablation model", list(registry.SEQUENCE), index=list(registry.SEQUENCE).index("gru"),
                       key="timeorder.model", format_func=lambda n: registry.get(n).label)
hours = c[2].multiselect("Hours available (k)", [6, 12, 24, 36, 48, 72], default=[12, 24, 48], key="timeorder.hours")
n_max = c[3].number_input("Patients (subset, for speed)", 100, 100_000, 2000, step=100, key="timeorder.patients")
preset = c[0].selectbox("Model sizes", ["quick", "full"], key="timeorder.preset",
                        help="quick: smaller models; full: the benchmarked sizes")
seed = c[1].number_input("Seed", 0, 100_000, 0, key="timeorder.seed")
with_tiers = c[2].checkbox("Tiers and missingness", value=True, key="timeorder.tiers",
                           help="also refit the order-free models on time-aware summaries and the best one on when "
                                "variables were measured (quick sizes at most)")

if st.button("Run the time-order analysis", type="primary", key="timeorder.run"):
    try:
        config = st.session_state.get(state.TIMEORDER_CONFIG_OVERRIDE) or TimeOrderConfig(
            model=model, models=tuple(names) or ("gru",), horizons_hours=tuple(hours) or (48,), preset=preset,
            max_patients=int(n_max), split=SplitConfig(validation_size=0.15, test_size=0.2, random_state=int(seed)),
            features=FeatureConfig(task="online", window_hours=336) if cohort.is_online else FeatureConfig(),
            evaluation=EvaluationConfig(n_bootstrap=1000, random_state=int(seed)), random_state=int(seed),
            tiers=bool(with_tiers))
    except (CoreError, ValueError) as err:
        show_error(err)
        st.stop()
    jobs.submit("timeorder", "timeorder", cohort, {"config": config},
                f"Time-order analysis ({config.preset}, {len(config.models)} models) on up to "
                f"{config.max_patients or cohort.n_patients:,} patients")
info, done = jobs.follow("timeorder", ("timeorder",))
if done is not None:
    st.session_state[state.TIMEORDER_RESULT] = done

result = st.session_state.get(state.TIMEORDER_RESULT)
if result is None:
    if info is not None and info.active:
        st.stop()
    st.info("Press **Run the time-order analysis** to train the chosen models on the current cohort "
            "(ordered and shuffled hours, each horizon) and measure what time order adds. "
            + jobs.measured_duration("timeorder"))
    st.stop()

{"positive": st.success, "negative": st.warning, "none": st.info}[result.ablation.evidence](
    f"**Verdict.** {result.verdict}")
st.caption(f"{result.n_patients['train']:,} training, {result.n_patients['validation']:,} validation and "
           f"{result.n_patients['test']:,} test patients; data fingerprint {result.data_fingerprint}; "
           f"{result.config.preset} preset, seed {result.config.random_state}, {result.seconds:.0f} s. These AUROCs "
           "come from this analysis's own split (20% test patients, of at most the subset chosen above) and "
           "preset, so they differ from the Compare page's (15% test patients of all of them) for the same "
           "model: each page compares its models on its own, identical patients.")
c = st.columns(2)
c[0].plotly_chart(plots.ablation_figure(result.ablation), width="stretch")
c[1].plotly_chart(plots.timeorder_forest_figure(result), width="stretch")
metric = st.radio("Early-prediction metric", ["auroc", "auprc"], horizontal=True, key="timeorder.metric",
                  format_func=str.upper)
st.plotly_chart(plots.horizon_figure(result.horizons, metric), width="stretch")
tiers, missing = getattr(result, "tiers", None), getattr(result, "missingness", None)
if tiers is not None:
    st.subheader("Where the gain comes from: three tiers and informative missingness")
    st.markdown(tiers.sentence)
    st.markdown(missing.sentence)
    c = st.columns([3, 2])
    c[0].plotly_chart(plots.tiers_figure(tiers, missing), width="stretch")
    c[1].dataframe(tiers.table(), hide_index=True)
    c[1].caption(f"Full horizon, the same test patients as above; the tier fits use the {tiers.preset} preset. "
                 f"Missingness only: {missing.auroc_missingness:.3f}, "
                 + ("share of the values model's AUROC above 0.5 not defined." if missing.share != missing.share
                    else f"{missing.share:.0%} of the values model's AUROC above 0.5."))
elif result.config.tiers:
    st.info("The tiers need an order-free model: add one (e.g. logistic regression) to the models above.")
with st.expander("All numbers"):
    st.dataframe(result.horizons, hide_index=True)
    st.json(result.to_dict()["ablation"], expanded=False)
