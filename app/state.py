"""Session-state keys (constants) and getters. Widget keys carry the page name ("data.target")."""
from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from core.config import DataConfig

__all__ = ["DATA_SOURCE", "DataSource", "get_source", "set_source", "TIMEORDER_CONFIG_OVERRIDE", "TRAIN_OVERRIDE",
           "MODELS_GATE_SOURCE", "MODELS_TRAIN_OVERRIDE", "JOBS", "CODE_TABLE", "LOADED_SOURCE", "session_gone"]

#: the DataSource the whole app is working on (demo by default).
DATA_SOURCE = "data_source"
#: the digests of the source this session has seen loaded (its progress box is shown once).
LOADED_SOURCE = "loaded_source"


@dataclass(frozen=True)
class DataSource:
    """What to load: the bundled demo, or uploaded files (name, bytes) with a mapping config."""

    kind: str = "demo"                      # "demo" | "upload"
    events: tuple[tuple[str, bytes], ...] = ()  # one or more uploaded files (name, content)
    labels: tuple[str, bytes] | None = None
    config: DataConfig = field(default_factory=lambda: DataConfig(target="in_hospital_death"))
    #: SHA-256 of each events file and of the labels (computed once here: hashing a 500 MB upload on
    #: every rerun would cost a second per page).
    digests: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.digests:
            import hashlib
            files = [c for _, c in self.events] + ([self.labels[1]] if self.labels is not None else [])
            object.__setattr__(self, "digests", tuple(hashlib.sha256(c).hexdigest() for c in files))

    @property
    def size_bytes(self) -> int:
        """Bytes uploaded (events and labels)."""
        return sum(len(c) for _, c in self.events) + (len(self.labels[1]) if self.labels is not None else 0)

    @property
    def label(self) -> str:
        if self.kind == "demo":
            return "Demo cohort (synthetic)"
        names = ", ".join(n for n, _ in self.events)
        return names + (f" + labels {self.labels[0]}" if self.labels else "")


def get_source() -> DataSource:
    if DATA_SOURCE not in st.session_state:
        st.session_state[DATA_SOURCE] = DataSource()
    return st.session_state[DATA_SOURCE]


def set_source(source: DataSource) -> None:
    """Make ``source`` the current data. Other data than before also clears the current run (the next page
    picks the newest run trained on the new data, if any: app/context.py)."""
    old = st.session_state.get(DATA_SOURCE)
    if old is None or (old.kind, old.digests, repr(old.config)) != (source.kind, source.digests, repr(source.config)):
        st.session_state.pop(CURRENT_RUN, None)
    st.session_state[DATA_SOURCE] = source


#: the folder of the run the whole app is working on (set by a training or "Open this run"; see app/context.py).
CURRENT_RUN = "current_run"
__all__ += ["CURRENT_RUN"]

# -- pages ------------------------------------------------------------------------------------
#: optional dict of TimeOrderRequest fields that replace the page's widgets (tests use it for a tiny, fast run).
TIMEORDER_CONFIG_OVERRIDE = "timeorder.config_override"
#: optional dict of TrainRequest fields that replace the pages' training widgets (tests: preset "test").
TRAIN_OVERRIDE = "train.override"
#: the Models page's small GRU/LSTM when the current run has neither: (data fingerprint, core.analysis.gates.GateModels).
MODELS_GATE_SOURCE = "models.gate_source"
#: optional dict of GatesRequest fields (tests use it for a tiny, fast run).
MODELS_TRAIN_OVERRIDE = "models.train_override"

# -- jobs (app/jobs.py) -------------------------------------------------------------------------
#: ids of the jobs this session submitted or adopted from a URL, oldest first.
JOBS = "jobs.ids"

# -- Timeline page ------------------------------------------------------------------------------
#: the user's code meanings (variable, code, meaning), a DataFrame edited on the Timeline page;
#: absent until edited (the built-in core.data.plausibility.CODES apply).
CODE_TABLE = "timeline.code_table"
#: the what-if edits stacked on the Timeline page: {patient id: [core.analysis.whatif.Edit, ...]} (this session only).
WHATIF_EDITS = "timeline.whatif_edits"
__all__ += ["WHATIF_EDITS"]
#: the Predict page's last scoring: (PredictRequest, data digests, PredictionResult); PredictRequest.source names the data.
PREDICT_RESULT = "predict.result"
#: set by the Predict page's "Score the demo patients" (no upload yet): switch to the demo and score it at once.
PREDICT_DEMO_REQUESTED = "predict.demo_requested"
__all__ += ["PREDICT_RESULT", "PREDICT_DEMO_REQUESTED"]
#: the Predict page's own variable pairs, per run folder: {run path: {name in the data: name in the run}}.
PREDICT_MAPPING = "predict.mapping_pairs"
__all__ += ["PREDICT_MAPPING"]


def session_gone():
    """A check for :meth:`core.service.jobs.JobManager.submit`'s ``cancel_if``: True once the browser session running
    this script is no longer connected (tab closed, browser gone). ``None`` outside a served app (AppTest, bare
    mode): such jobs are not bound to anything.

    The manager calls it from its own thread; ``Runtime.is_active_session`` is thread-safe. A reconnect after a
    network blip (within the manager's ``cancel_grace_s``) keeps the job.
    """
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not runtime.exists():
        return None
    server, session_id = runtime.get_instance(), ctx.session_id
    return lambda: not server.is_active_session(session_id)
