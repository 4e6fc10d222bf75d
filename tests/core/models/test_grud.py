"""GRU-D (core/models/grud.py): one step against numpy, causality, the model contract, input checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from core.exceptions import RunError
from core.models.grud import GRUDClassifier, make_grud

N, T, V, S = 40, 6, 3, 1
CAP = 48.0
KINDS = ("value",) * V + ("mask",) * V + ("delta",) * V + ("static",) * S + ("static_missing",) * S


def _sequences(seed: int = 0, p_obs: float = 0.5) -> np.ndarray:
    """``X_seq`` with the layout of core.features: value (carried forward), mask, delta, static, static_missing."""
    rng = np.random.default_rng(seed)
    mask = rng.random((N, T, V)) < p_obs
    vals = rng.normal(size=(N, T, V))
    steps = np.arange(T)[None, :, None]
    last = np.maximum.accumulate(np.where(mask, steps, -1), axis=1)
    seen = last >= 0
    ff = np.where(seen, np.take_along_axis(vals, np.maximum(last, 0), axis=1), 0.0)
    gap_h = np.where(seen, (steps - last) * 1.0, CAP)
    delta = np.log1p(np.minimum(gap_h, CAP)) / np.log1p(CAP)
    st = rng.normal(size=(N, S))
    miss = rng.random((N, S)) < 0.2
    st = np.where(miss, 0.0, st)
    parts = [ff, mask, delta, np.repeat(st[:, None], T, axis=1), np.repeat(miss[:, None], T, axis=1)]
    return np.concatenate(parts, axis=2).astype(np.float32)


def _labels() -> np.ndarray:
    return (np.arange(N) % 3 == 0).astype(int)


def _fitted(**params) -> GRUDClassifier:
    clf = make_grud("test", random_state=0).set_params(channel_kinds=KINDS, **params)
    return clf.fit(_sequences(), _labels())


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def test_one_step_matches_numpy():
    net = _fitted().module_[0]
    rng = np.random.default_rng(1)
    with torch.no_grad():  # random weights, so both sides of every relu are exercised
        for p in net.parameters():
            p.copy_(torch.from_numpy(rng.normal(scale=0.5, size=tuple(p.shape)).astype(np.float32)))
    H = net.hidden
    x, s = rng.normal(size=(8, V)), rng.normal(size=(8, 2 * S))
    m = (rng.random((8, V)) < 0.5).astype(float)
    gap = np.where(m == 1, 0.0, rng.uniform(0, CAP, size=(8, V)))
    h_prev = rng.normal(size=(8, H))
    w = {k: v.double().numpy() for k, v in net.state_dict().items()}

    gamma_x = np.exp(-np.maximum(0.0, w["w_gx"] * gap + w["b_gx"]))
    x_hat = m * x + (1 - m) * (gamma_x * x + (1 - gamma_x) * 0.0)
    gamma_h = np.exp(-np.maximum(0.0, gap @ w["gamma_h.weight"].T + w["gamma_h.bias"]))
    h = gamma_h * h_prev
    a = np.concatenate([x_hat, m, s], axis=1) @ w["inp.weight"].T + w["inp.bias"]
    u = w["hid_rz.weight"]
    r = _sigmoid(a[:, :H] + h @ u[:H].T)
    z = _sigmoid(a[:, H:2 * H] + h @ u[H:].T)
    h_tilde = np.tanh(a[:, 2 * H:] + (r * h) @ w["hid_n.weight"].T)
    expected = (1 - z) * h + z * h_tilde

    def f32(arr):
        return torch.from_numpy(arr.astype(np.float32))

    with torch.no_grad():
        got = net.step(f32(x), f32(m), f32(gap), f32(s), f32(h_prev)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_sequence_loop_equals_repeated_steps():
    """forward's vectorised precomputation gives the same states as calling step() T times."""
    net = _fitted().module_[0].eval()
    X = torch.from_numpy(_sequences(seed=2))
    with torch.no_grad():
        states = net.hidden_states(X)
        xv, m, gap, s = net.split(X)
        h = torch.zeros(N, net.hidden)
        for t in range(T):
            h = net.step(xv[:, t], m[:, t], gap[:, t], s[:, t], h)
            np.testing.assert_allclose(states[:, t].numpy(), h.numpy(), atol=1e-6)
        np.testing.assert_allclose(net(X).numpy(), net.out(states).squeeze(-1).numpy(), atol=1e-6)


def test_delta_is_turned_back_into_hours():
    net = _fitted().module_[0]
    X = _sequences(seed=3)
    _, _, gap, _ = net.split(torch.from_numpy(X))
    hours = np.expm1(X[..., 2 * V:3 * V].astype(np.float64) * np.log1p(CAP))
    np.testing.assert_allclose(gap.numpy(), hours, atol=1e-4)
    assert gap.max() == pytest.approx(CAP, rel=1e-5)  # never observed yet -> the cap


@pytest.mark.parametrize("pooling", ["none", "max"])
def test_causal(pooling):
    clf = _fitted(pooling=pooling)
    X = _sequences(seed=4)
    t = 3
    X2 = X.copy()
    X2[:, t:, :] += np.random.default_rng(5).normal(size=X2[:, t:, :].shape).astype(np.float32)
    p, p2 = clf.predict_proba_over_time(X), clf.predict_proba_over_time(X2)
    np.testing.assert_array_equal(p[:, :t], p2[:, :t])
    assert np.abs(p[:, t:] - p2[:, t:]).max() > 1e-6  # the change does reach later steps


def test_contract():
    X, y = _sequences(), _labels()
    clf = make_grud("test", random_state=0).set_params(channel_kinds=KINDS)
    with pytest.raises(NotFittedError):
        clf.predict_proba(X)
    params = clf.get_params()
    assert params["channel_kinds"] == KINDS and params["delta_cap_hours"] == CAP
    twin = clone(clf)
    assert twin.get_params() == params
    proba = clf.fit(X, y).predict_proba(X)
    assert proba.shape == (N, 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    over_time = clf.predict_proba_over_time(X)
    assert over_time.shape == (N, T)
    np.testing.assert_allclose(over_time[:, -1], proba[:, 1])
    assert set(clf.predict(X)) <= set(clf.classes_)
    np.testing.assert_allclose(twin.fit(X, y).predict_proba(X), proba)  # same seed, same model


@pytest.mark.parametrize("preset", ["test", "quick", "full"])
def test_presets(preset):
    clf = make_grud(preset, random_state=3)
    assert isinstance(clf, GRUDClassifier) and clf.channel_kinds is None and clf.random_state == 3


def test_missing_channel_kinds_says_how_to_fix():
    fix = r"set_params\(channel_kinds=tuple\(fs.seq_kinds\)\)"
    with pytest.raises(ValueError, match=r"channel_kinds is None.*" + fix):
        make_grud("test").fit(_sequences(), _labels())


@pytest.mark.parametrize(("kinds", "match"), [
    (KINDS[:V] + KINDS[V + 1:], "as many 'value', 'mask' and 'delta'"),     # one mask short
    (("static",) * len(KINDS), "as many 'value', 'mask' and 'delta'"),      # no variables
    (KINDS[:-1] + ("bogus",), "unknown kinds"),
    (KINDS + ("static",), "channel_kinds has 12 entries but X has 11 channels"),
])
def test_bad_channel_kinds(kinds, match):
    with pytest.raises(ValueError, match=match):
        make_grud("test").set_params(channel_kinds=kinds).fit(_sequences(), _labels())


@pytest.mark.parametrize(("param", "value", "match"), [
    ("delta_cap_hours", 0.0, "delta_cap_hours must be > 0"),
    ("hidden_size", 0, "GRUDClassifier.hidden_size must be >= 1"),
])
def test_bad_params(param, value, match):
    with pytest.raises(ValueError, match=match):
        make_grud("test").set_params(channel_kinds=KINDS, **{param: value}).fit(_sequences(), _labels())


@pytest.mark.parametrize("param", ["cell", "num_layers", "input_projection"])
def test_takes_none_of_the_other_networks_parameters(param):
    """GRU-D is one decayed GRU layer reading the channels directly: it has no cell, depth or input layer to set."""
    assert param not in GRUDClassifier().get_params()
    with pytest.raises(ValueError, match=f"Invalid parameter '{param}'"):
        make_grud("test").set_params(**{param: 1})


def test_parameters_the_scikit_learn_way():
    """Its own parameters and the shared ones, all read from ``__init__``: get_params, set_params, clone, repr."""
    import inspect

    from core.models.torchbase import TorchSequenceClassifier
    shared = set(inspect.signature(TorchSequenceClassifier.__init__).parameters) - {"self"}
    clf = GRUDClassifier(channel_kinds=KINDS, hidden_size=8, random_state=1)
    assert set(clf.get_params()) == shared | {"channel_kinds", "delta_cap_hours"}
    assert clf.get_params()["hidden_size"] == 8 and clf.get_params()["channel_kinds"] == KINDS
    twin = clone(clf.set_params(max_epochs=3, delta_cap_hours=24.0))
    assert twin.get_params() == clf.get_params() and twin is not clf
    assert "hidden_size=8" in repr(clf) and "dropout" not in repr(clf)       # defaults are left out
    with pytest.raises(TypeError):
        GRUDClassifier(KINDS)                                                   # keyword arguments only


def test_runs_saved_with_the_inherited_parameters_still_load(tmp_path):
    """Runs saved before GRU-D had a base of its own hold ``cell``, ``num_layers`` and ``input_projection``."""
    import json

    from core.models.persist import load_model, save_model
    clf = _fitted()
    assert save_model(clf, tmp_path, "grud") == ["grud.pt", "grud.json"]
    meta = json.loads((tmp_path / "grud.json").read_text())
    meta["params"].update(cell="gru", num_layers=1, input_projection=False)
    (tmp_path / "grud.json").write_text(json.dumps(meta))
    again = load_model(tmp_path, "grud")
    assert "cell" not in again.get_params()
    np.testing.assert_array_equal(again.predict_proba(_sequences()), clf.predict_proba(_sequences()))
    meta["params"]["num_layers"] = 2                      # a value GRU-D never took: the file was edited
    (tmp_path / "grud.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="num_layers"):
        load_model(tmp_path, "grud")


def test_explained_with_gradients_as_the_other_networks():
    from core.analysis.explain import explainer_kind
    assert explainer_kind(_fitted()) == "gradient"


def test_all_observed_x_hat_is_x():
    net = _fitted().module_[0]
    X = _sequences(seed=6, p_obs=1.0)
    Xt = torch.from_numpy(X)
    with torch.no_grad():
        xv, m, gap, _ = net.split(Xt)
        assert bool((m == 1).all()) and float(gap.abs().max()) == 0.0
        x_hat = net.impute(xv, m, net.decays(gap)[0])
    np.testing.assert_array_equal(x_hat.numpy(), X[..., :V])


def test_unobserved_x_hat_decays_to_the_mean():
    net = _fitted().module_[0]
    x, m = torch.ones(1, V), torch.zeros(1, V)
    with torch.no_grad():
        net.w_gx.fill_(0.1)
        net.b_gx.zero_()
        near, far = (net.impute(x, m, net.decays(torch.full((1, V), g))[0]) for g in (1.0, CAP))
    np.testing.assert_allclose(near.numpy(), np.exp(-0.1), rtol=1e-6)
    np.testing.assert_allclose(far.numpy(), np.exp(-0.1 * CAP), rtol=1e-5)
