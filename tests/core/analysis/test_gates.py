"""The hand-written recurrence reproduces torch's nn.RNN / nn.LSTM / nn.GRU, and gate traces of fitted models."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from core.analysis.gates import GATE_NAMES, gate_activations, run_recurrence
from core.models.recurrent import RecurrentClassifier


@pytest.mark.parametrize("cls", [torch.nn.GRU, torch.nn.LSTM, torch.nn.RNN])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_manual_recurrence_matches_torch(cls, num_layers):
    torch.manual_seed(0)
    mod = cls(5, 7, num_layers=num_layers, batch_first=True)
    with torch.no_grad():           # non-trivial biases and weights
        for p in mod.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = np.random.default_rng(1).normal(size=(4, 9, 5)).astype(np.float32)
    with torch.no_grad():
        out, state = mod(torch.from_numpy(x))
    layers = run_recurrence(mod, x)
    assert len(layers) == num_layers
    np.testing.assert_allclose(layers[-1]["hidden"], out.numpy(), atol=1e-5)
    h_n = state[0] if isinstance(state, tuple) else state
    for k, layer in enumerate(layers):
        np.testing.assert_allclose(layer["hidden"][:, -1], h_n[k].numpy(), atol=1e-5)
    if cls is torch.nn.LSTM:
        for k, layer in enumerate(layers):
            np.testing.assert_allclose(layer["cell_state"][:, -1], state[1][k].numpy(), atol=1e-5)
    name = {torch.nn.GRU: "gru", torch.nn.LSTM: "lstm", torch.nn.RNN: "rnn"}[cls]
    assert set(GATE_NAMES[name]) <= set(layers[0])


def test_gate_order_is_torchs():
    """Zero every gate block but one, and check that block drives the documented gate."""
    mod = torch.nn.GRU(1, 1, batch_first=True)
    with torch.no_grad():
        for p in mod.parameters():
            p.zero_()
        mod.bias_ih_l0[1] = 10.0          # block 1 = update gate z -> ~1: h stays at 0
    layers = run_recurrence(mod, np.ones((1, 3, 1), np.float32))
    assert layers[0]["update"].min() > 0.99 and np.allclose(layers[0]["reset"], 0.5)
    lstm = torch.nn.LSTM(1, 1, batch_first=True)
    with torch.no_grad():
        for p in lstm.parameters():
            p.zero_()
        lstm.bias_ih_l0[1] = 10.0         # block 1 = forget gate
    layers = run_recurrence(lstm, np.ones((1, 3, 1), np.float32))
    assert layers[0]["forget"].min() > 0.99 and np.allclose(layers[0]["input"], 0.5)


@pytest.fixture(scope="module")
def seq_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6, 3)).astype(np.float32)
    y = (X[:, :, 0].mean(1) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_gate_activations_of_fitted_model(seq_data, cell):
    X, y = seq_data
    clf = RecurrentClassifier(cell=cell, hidden_size=4, max_epochs=2, random_state=0).fit(X, y)
    tr = gate_activations(clf, X[:3])
    assert tr.cell == cell and set(tr.gates) == set(GATE_NAMES[cell])
    assert tr.hidden.shape == (3, 6, 4)
    for name, g in tr.gates.items():
        assert g.shape == (3, 6, 4)
        lo = -1.0 if name in ("cell", "new") else 0.0
        assert g.min() >= lo and g.max() <= 1.0
    assert (tr.cell_state is not None) == (cell == "lstm")
    np.testing.assert_allclose(tr.risk, clf.predict_proba_over_time(X[:3]), atol=1e-6)
    net = clf.module_[0]
    with torch.no_grad():
        h, _ = net.rnn(net.inp(torch.from_numpy(X[:3])))
    np.testing.assert_allclose(tr.hidden, h.numpy(), atol=1e-5)
    single = gate_activations(clf, X[0])                  # (T, C) is accepted too
    np.testing.assert_allclose(single.hidden[0], tr.hidden[0])
    assert set(tr.mean_gates(0)) == set(GATE_NAMES[cell])


def test_gate_activations_errors(seq_data):
    X, y = seq_data
    with pytest.raises(NotFittedError):
        gate_activations(RecurrentClassifier(cell="gru"), X)
    with pytest.raises(TypeError, match="RecurrentClassifier"):
        gate_activations(LogisticRegression(), X)
    clf = RecurrentClassifier(cell="gru", hidden_size=4, max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="channels"):
        gate_activations(clf, X[:, :, :2])
    with pytest.raises(ValueError, match="seed_index"):
        gate_activations(clf, X, seed_index=3)


def test_fit_gate_models_and_patient_trace(tiny_cohort):
    from core.exceptions import CohortError
    from core.analysis.gates import fit_gate_models, patient_trace
    g = fit_gate_models(tiny_cohort, ("gru", "lstm"), max_patients=None, hidden_size=4, max_epochs=1)
    assert set(g.models) == {"gru", "lstm"} and set(g.splits) == {"train", "validation", "test"}
    pid = g.splits["test"][0]
    tr = patient_trace(g.builder, g.models["lstm"], tiny_cohort, pid)
    assert tr.gates["forget"].shape == (1, g.builder.config.n_steps, 4)
    with pytest.raises(CohortError, match="not in the cohort"):
        patient_trace(g.builder, g.models["gru"], tiny_cohort, "nobody")
    with pytest.raises(ValueError, match="recurrent cells"):
        fit_gate_models(tiny_cohort, ("lr",))
