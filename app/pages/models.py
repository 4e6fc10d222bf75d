"""How RNNs work: RNN, LSTM and GRU for a newcomer, then a trained model's gates along one patient's stay."""
import streamlit as st

from app import context, jobs, state, workspace
from app.components import gui_text, plain, require_cohort, show_error
from core import plots
from core.exceptions import CoreError
from core.analysis.gates import patient_trace
from core.models import registry
from core.service import GatesRequest

E2E_CLICKS = ["Train a small GRU and LSTM"]

st.title("How RNNs work")
st.markdown("A recurrent network reads a stay **one hour at a time** and keeps a *hidden state* $h_t$, a vector "
            "that summarises everything seen so far. Each hour it mixes the new inputs $x_t$ with $h_{t-1}$:")
st.latex(r"h_t = \tanh\left(W x_t + U h_{t-1} + b\right), \qquad \hat p_t = \sigma(v^\top h_t + c)")
st.markdown("The same weights $W, U, b$ are used every hour, so the network can read stays of any length. "
            "**Training** unrolls the loop over the hours and back-propagates the error *through time* (BPTT): "
            "the gradient reaching hour 1 from hour 48 is a product of 47 Jacobians "
            r"$\prod_t \partial h_t / \partial h_{t-1}$. With $\tanh$ these factors are usually below 1, so the "
            "product shrinks towards zero (**vanishing gradients**): a plain RNN struggles to learn that "
            "something 30 hours ago matters. Gated cells fix this with a path along which information can flow "
            "unchanged.")
c = st.columns(2)
c[0].markdown("**LSTM**: a separate *cell state* $c_t$, edited by three gates (values in 0..1): the *input* "
              "gate lets new content in, the *forget* gate keeps or erases the old, the *output* gate decides "
              "what to expose as $h_t$. When $f_t \\approx 1$ the gradient flows through $c_t$ almost untouched.")
c[0].latex(r"""\begin{aligned} i_t &= \sigma(W_i x_t + U_i h_{t-1} + b_i) \\ f_t &= \sigma(W_f x_t + U_f h_{t-1}
 + b_f) \\ o_t &= \sigma(W_o x_t + U_o h_{t-1} + b_o) \\ g_t &= \tanh(W_g x_t + U_g h_{t-1} + b_g) \\
 c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\ h_t &= o_t \odot \tanh(c_t) \end{aligned}""")
c[1].markdown("**GRU**: two gates and no separate cell. The *update* gate $z_t$ chooses between keeping "
              "$h_{t-1}$ and taking the candidate $n_t$; the *reset* gate $r_t$ decides how much of the past "
              "the candidate may look at. Fewer weights than an LSTM, often as accurate.")
c[1].latex(r"""\begin{aligned} r_t &= \sigma(W_r x_t + U_r h_{t-1} + b_r) \\ z_t &= \sigma(W_z x_t + U_z
 h_{t-1} + b_z) \\ n_t &= \tanh(W_n x_t + r_t \odot (U_n h_{t-1} + b_n)) \\
 h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1} \end{aligned}""")
st.markdown("**Per-hour risk (target replication).** Our networks are trained to predict the outcome after "
            r"*every* hour, not only the last: the loss averages $\ell(\hat p_t, y)$ over the valid hours and "
            "the final one, so the risk curve $\\hat p_1, \\hat p_2, \\dots$ is meaningful for early warning.  \n"
            "**Missing data.** Each hour the network sees, per variable, the last value carried forward, a "
            "*mask* (1 = measured this hour) and the *time since the last measurement*. So it can learn that a "
            "lactate drawn at 3 am says something, and that a stale value deserves less trust.")

cohort = require_cohort()

st.subheader("Inside a trained network")
gated = ("gru", "lstm")
run = context.run_on_data(cohort)
source = None
have = tuple(n for n in gated if run is not None and n in run["models"])
if have:
    try:
        source = workspace.load_run_recurrent(run["path"], have)
        st.caption(f"Models of the current run {plain(run['name'])}")
    except CoreError as err:
        st.warning(f"The current run's models could not be opened ({gui_text(err)}); train a small pair below.")
if st.button("Train a small GRU and LSTM", key="models.train",
             help="16-unit networks on up to 1,000 patients of the current cohort"):
    jobs.submit("models", GatesRequest(**(st.session_state.get(state.MODELS_TRAIN_OVERRIDE) or {})), cohort)
info, done = jobs.follow("models", ("gates",))
if done is not None:
    st.session_state[state.MODELS_GATE_SOURCE] = (cohort.fingerprint(), done)
small = st.session_state.get(state.MODELS_GATE_SOURCE)
if small is not None and small[0] == cohort.fingerprint() and (source is None or done is not None):
    source = small[1]                  # the small pair, trained on this very data
    st.caption("The small GRU and LSTM trained on this page (16 units).")
if source is None:
    st.info("No trained GRU or LSTM on this data yet. Press **Train a small GRU and LSTM** (or train them on the "
            "Compare page) to see their gates open and close along a patient's stay.")
    st.stop()

models = {n: m for n, m in source.models.items() if n in gated}
c = st.columns(3)
name = c[0].selectbox("Model", list(models), key="models.model", format_func=lambda n: registry.get(n).label)
pid = c[1].selectbox("Patient (test split)", list(source.splits["test"])[:300], key="models.patient")
label = None if cohort.labels is None else cohort.labels.get(pid)
c[2].metric("Outcome", "unlabelled" if label is None else ("positive" if label == 1 else "negative"))
try:
    trace = patient_trace(source.builder, models[name], cohort, pid)
except CoreError as err:
    show_error(err)
    st.stop()
st.plotly_chart(plots.gate_lines_figure(trace, 0), width="stretch")
gate = st.radio("Heatmap of", list(trace.gates) + ["hidden state"], horizontal=True, key=f"models.gate.{name}")
values = trace.hidden[0] if gate == "hidden state" else trace.gates[gate][0]
signed = gate in ("hidden state", "cell", "new")
st.plotly_chart(plots.gate_heatmap_figure(values, f"{registry.get(name).label}: {gate}, hidden unit x hour",
                                          zmin=-1.0 if signed else 0.0), width="stretch")
st.caption("Gates are recomputed from the network's own weights (core/analysis/gates.py) and match torch's output "
           "exactly. A forget or update gate near 1 means the unit is *holding on* to what it knew.")
