"""Gate activations and hidden states of a fitted RNN / LSTM / GRU, hour by hour.

A :class:`~core.models.recurrent.RecurrentClassifier` keeps its networks in ``module_`` (one
``_RecurrentNet`` per seed: input projection ``inp`` -> ``rnn`` (``nn.RNN``/``nn.LSTM``/``nn.GRU``)
-> ``out``). torch's fused kernels do not expose the gates, so this module re-runs the recurrence
by hand from the layer's weights, in the order torch stores them (checked against the docs of
``torch.nn.LSTM`` / ``torch.nn.GRU`` and, in ``tests/core/analysis/test_gates.py``, against the modules'
own hidden states to 1e-5):

* ``weight_ih_l{k}`` / ``weight_hh_l{k}`` / ``bias_ih_l{k}`` / ``bias_hh_l{k}`` stack the gates
  row-wise: LSTM ``(i | f | g | o)``, GRU ``(r | z | n)``, RNN a single block.
* LSTM: ``i, f, o = sigmoid(W_i* x + b_i* + W_h* h + b_h*)``, ``g = tanh(...)``,
  ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``.
* GRU: ``r, z = sigmoid(...)``, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
  ``h_t = (1 - z) * n + z * h_{t-1}``.
* RNN: ``h_t = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (no gates).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from core.models.base import check_sequences

__all__ = ["GateTrace", "GATE_NAMES", "gate_activations", "run_recurrence", "fit_gate_models", "patient_trace",
           "GateModels"]

#: gates reported per cell type, in torch's storage order (LSTM's candidate ``g`` is included).
GATE_NAMES: dict[str, tuple[str, ...]] = {"lstm": ("input", "forget", "cell", "output"),
                                          "gru": ("reset", "update", "new"), "rnn": ()}


@dataclass(frozen=True)
class GateTrace:
    """Per-hour internals of one recurrent layer for a batch of patients.

    Attributes
    ----------
    cell : {"rnn", "lstm", "gru"}
    layer : int
        Which recurrent layer (0 = first).
    gates : dict of str to ndarray, each (n_patients, n_timesteps, hidden_size)
        LSTM: ``input``, ``forget``, ``cell`` (candidate g, in [-1, 1]), ``output``;
        GRU: ``reset``, ``update``, ``new`` (candidate n); RNN: empty.
    hidden : ndarray (n_patients, n_timesteps, hidden_size)
        Hidden state ``h_t`` after each step.
    cell_state : ndarray (n_patients, n_timesteps, hidden_size) or None
        LSTM cell state ``c_t``; ``None`` for GRU/RNN.
    risk : ndarray (n_patients, n_timesteps) or None
        Predicted risk after each step of the same network (sigmoid of its output).
    """

    cell: str
    layer: int
    gates: dict = field(default_factory=dict)
    hidden: np.ndarray | None = None
    cell_state: np.ndarray | None = None
    risk: np.ndarray | None = None

    def mean_gates(self, patient: int = 0) -> dict[str, np.ndarray]:
        """Mean activation over hidden units per gate for one patient: name -> (n_timesteps,)."""
        return {k: v[patient].mean(axis=1) for k, v in self.gates.items()}


def run_recurrence(rnn: torch.nn.Module, x: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Re-run an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (batch_first, unidirectional) step by step.

    Parameters
    ----------
    rnn : torch.nn.RNN, LSTM or GRU
        ``batch_first=True``, not bidirectional, no projection.
    x : ndarray (n, T, input_size)
        The layer's input sequence.

    Returns
    -------
    list of dict, one per layer
        Keys: the gate names of :data:`GATE_NAMES` plus ``"hidden"`` (and ``"cell_state"`` for LSTM),
        each ``(n, T, hidden_size)`` float64.

    Raises
    ------
    TypeError
        ``rnn`` is not one of the three torch recurrent modules.
    ValueError
        Bidirectional or projected layers (not used by this product).
    """
    if isinstance(rnn, torch.nn.LSTM):
        cell = "lstm"
    elif isinstance(rnn, torch.nn.GRU):
        cell = "gru"
    elif isinstance(rnn, torch.nn.RNN):
        cell = "rnn"
    else:
        raise TypeError(f"run_recurrence needs a torch nn.RNN, nn.LSTM or nn.GRU; got {type(rnn).__name__}.")
    if rnn.bidirectional or getattr(rnn, "proj_size", 0):
        raise ValueError("run_recurrence supports unidirectional layers without projection only.")
    if not rnn.batch_first:
        raise ValueError("run_recurrence expects a batch_first=True module (x of shape (n, T, features)).")
    nonlin = np.tanh if getattr(rnn, "nonlinearity", "tanh") == "tanh" else (lambda a: np.maximum(a, 0.0))
    seq = np.asarray(x, dtype=np.float64)
    n, T, _ = seq.shape
    H = rnn.hidden_size
    layers = []
    for k in range(rnn.num_layers):
        W_ih = getattr(rnn, f"weight_ih_l{k}").detach().double().numpy()
        W_hh = getattr(rnn, f"weight_hh_l{k}").detach().double().numpy()
        b_ih = getattr(rnn, f"bias_ih_l{k}").detach().double().numpy() if rnn.bias else np.zeros(W_ih.shape[0])
        b_hh = getattr(rnn, f"bias_hh_l{k}").detach().double().numpy() if rnn.bias else np.zeros(W_hh.shape[0])
        xin = seq @ W_ih.T + b_ih          # (n, T, G*H): input contributions of every gate at once
        h = np.zeros((n, H))
        c = np.zeros((n, H))
        out = {name: np.empty((n, T, H)) for name in GATE_NAMES[cell]}
        out["hidden"] = np.empty((n, T, H))
        if cell == "lstm":
            out["cell_state"] = np.empty((n, T, H))
        for t in range(T):
            hh = h @ W_hh.T + b_hh
            a = xin[:, t]
            if cell == "lstm":
                i = _sigmoid(a[:, :H] + hh[:, :H])
                f = _sigmoid(a[:, H:2 * H] + hh[:, H:2 * H])
                g = np.tanh(a[:, 2 * H:3 * H] + hh[:, 2 * H:3 * H])
                o = _sigmoid(a[:, 3 * H:] + hh[:, 3 * H:])
                c = f * c + i * g
                h = o * np.tanh(c)
                out["input"][:, t], out["forget"][:, t], out["cell"][:, t], out["output"][:, t] = i, f, g, o
                out["cell_state"][:, t] = c
            elif cell == "gru":
                r = _sigmoid(a[:, :H] + hh[:, :H])
                z = _sigmoid(a[:, H:2 * H] + hh[:, H:2 * H])
                nn_ = np.tanh(a[:, 2 * H:] + r * hh[:, 2 * H:])
                h = (1.0 - z) * nn_ + z * h
                out["reset"][:, t], out["update"][:, t], out["new"][:, t] = r, z, nn_
            else:
                h = nonlin(a + hh)
            out["hidden"][:, t] = h
        layers.append(out)
        seq = out["hidden"]                # next layer's input (inter-layer dropout is off in eval)
    return layers


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))    # numerically stable logistic


def gate_activations(model, X_seq, *, seed_index: int = 0, layer: int = -1) -> GateTrace:
    """Gate activations and hidden states of a fitted recurrent classifier along the timeline.

    Parameters
    ----------
    model : RecurrentClassifier
        Fitted (has ``module_``).
    X_seq : array (n_patients, n_timesteps, n_channels) or (n_timesteps, n_channels)
        Sequences built by the model's own fitted :class:`~core.features.FeatureBuilder`.
    seed_index : int, default 0
        Which network of the seed ensemble to open.
    layer : int, default -1
        Recurrent layer to report (-1 = last).

    Returns
    -------
    GateTrace

    Raises
    ------
    NotFittedError
        The model has not been fitted.
    TypeError
        The model is not a recurrent classifier.
    ValueError
        Wrong input shape or channel count, or ``seed_index``/``layer`` out of range.

    Examples
    --------
    >>> trace = gate_activations(gru_model, fs.X_seq[:1])          # doctest: +SKIP
    >>> trace.gates["update"].shape                                # doctest: +SKIP
    (1, 48, 32)
    """
    if not hasattr(model, "cell") or not hasattr(model, "predict_proba_over_time"):
        raise TypeError(f"gate_activations needs a RecurrentClassifier (rnn, lstm or gru); got "
                        f"{type(model).__name__}. Choose a sequence model.")
    if not hasattr(model, "module_"):
        raise NotFittedError("This recurrent model is not fitted yet; train it first (fit or a run).")
    X = np.asarray(X_seq)
    if X.ndim == 2:
        X = X[None]
    X = check_sequences(X, n_features=model.n_features_in_)
    nets = model.module_
    if not 0 <= seed_index < len(nets):
        raise ValueError(f"seed_index must be in [0, {len(nets) - 1}]; got {seed_index!r}.")
    net = nets[seed_index]
    net.eval()
    with torch.no_grad():
        xt = torch.from_numpy(X)
        z = net.inp(xt)                               # input projection (dropout is identity in eval)
        risk = torch.sigmoid(net(xt) + model.logit_shift).double().numpy()
    layers = run_recurrence(net.rnn, z.double().numpy())
    if not -len(layers) <= layer < len(layers):
        raise ValueError(f"layer must be in [-{len(layers)}, {len(layers) - 1}]; got {layer!r}.")
    k = layer % len(layers)
    res = layers[k]
    cell = str(model.cell)
    return GateTrace(cell=cell, layer=k, gates={g: res[g] for g in GATE_NAMES[cell]}, hidden=res["hidden"],
                     cell_state=res.get("cell_state"), risk=risk)


@dataclass(frozen=True)
class GateModels:
    """Small recurrent models trained to look inside (what :func:`fit_gate_models` returns).

    Attributes
    ----------
    builder : FeatureBuilder
        Fitted on the training patients.
    models : dict of str to RecurrentClassifier
    splits : dict of str to ndarray
        ``"train"``, ``"validation"``, ``"test"`` patient ids.
    test_auroc : dict of str to float
    """

    builder: object
    models: dict
    splits: dict
    test_auroc: dict

    @property
    def fitted(self):
        """The fitted builder, models and splits (a :class:`core.training.protocol.FittedRun`)."""
        from core.training.protocol import FittedRun
        return FittedRun(self.builder, self.models, self.splits)


def fit_gate_models(cohort, cells=("gru", "lstm"), *, max_patients: int | None = 1000, hidden_size: int = 16,
                    max_epochs: int = 15, random_state: int = 0, progress=None, backend=None) -> GateModels:
    """Train small recurrent models to look inside (the Models page's fallback when no run exists).

    Small (16 units) so a heatmap of units stays readable, trained with little regularisation so
    the gates actually move; not meant to be the best predictor (use the Compare page for that).

    Parameters
    ----------
    cohort : Cohort
        Labelled cohort (e.g. the demo).
    cells : tuple of str
        ``"gru"``, ``"lstm"`` and/or ``"rnn"``.
    max_patients : int, optional
        Stratified subset for speed (``None`` = all patients).
    hidden_size, max_epochs : int
    random_state : int
    progress : callable(message, fraction), optional
    backend : core.training.engine.Backend, optional
        Where the fits run (default local).

    Returns
    -------
    GateModels

    Raises
    ------
    ValueError
        A name in ``cells`` is not a recurrent cell.
    CohortError
        The cohort cannot be trained on (no labels, too few patients of an outcome).
    """
    from functools import partial

    from core.config import EvaluationConfig, SplitConfig
    from core.models.base import ModelSpec
    from core.models.recurrent import CELLS
    from core.training.protocol import run_protocol, split_by_patient, subsample_patients
    for c in cells:
        if c not in CELLS:
            raise ValueError(f"fit_gate_models needs recurrent cells ({', '.join(CELLS)}); got {c!r}. "
                             "Example: fit_gate_models(cohort, cells=('gru', 'lstm')).")
    small = subsample_patients(cohort, max_patients, random_state)
    splits = split_by_patient(small, SplitConfig(random_state=random_state))
    specs = [ModelSpec(c, "sequence", partial(_gate_model, c, hidden_size, max_epochs), c.upper(), "recurrent")
             for c in cells]
    res = run_protocol(small, specs, splits, evaluation=EvaluationConfig(n_bootstrap=0), random_state=random_state,
                       progress=progress, backend=backend)
    auroc = {c: float(res.test[c].metrics["auroc"]) for c in cells}
    return GateModels(builder=res.builder, models=res.models, splits=splits, test_auroc=auroc)


def _gate_model(cell: str, hidden_size: int, max_epochs: int, preset: str = "full", random_state=None,
                task: str = "stay"):
    """A small recurrent model with little regularisation, so its gates move (see :func:`fit_gate_models`)."""
    from core.models.recurrent import RecurrentClassifier
    return RecurrentClassifier(cell=cell, hidden_size=hidden_size, max_epochs=max_epochs, patience=4, lr=5e-3,
                               dropout=0.1, weight_decay=0.0, random_state=random_state)


def patient_trace(builder, model, cohort, patient_id: str, *, seed_index: int = 0) -> GateTrace:
    """:func:`gate_activations` of one patient, with features built by the model's fitted ``builder``.

    Parameters
    ----------
    builder : FeatureBuilder
        The builder the model was trained with (``Run.builder`` / ``ExperimentResult.builder``).
    model : RecurrentClassifier
    cohort : Cohort
    patient_id : str

    Returns
    -------
    GateTrace
        For a batch of one patient (index 0).

    Raises
    ------
    CohortError
        Unknown patient id.
    """
    from core.exceptions import CohortError
    if str(patient_id) not in set(cohort.patient_ids):
        raise CohortError(f"Patient {patient_id!r} is not in the cohort; pick one from the list.")
    fs = builder.transform(cohort, [str(patient_id)])
    return gate_activations(model, fs.X_seq, seed_index=seed_index)
