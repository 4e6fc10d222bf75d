import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from core.data.cohort import make_cohort
from core.config import FeatureConfig
from core.exceptions import CohortError, RunError
from core.features import CHANNEL_KINDS, TABULAR_STATS, FeatureBuilder


def test_shapes_names_and_order(tiny_cohort):
    ids = tiny_cohort.labelled_ids
    fb = FeatureBuilder(FeatureConfig(window_hours=6)).fit(tiny_cohort, ids[:30])
    fs = fb.transform(tiny_cohort, ids[::-1])
    V, S = 3, 1
    assert list(fs.patient_ids) == list(ids[::-1])
    assert fs.X_seq.shape == (40, 6, 3 * V + 2 * S) and fs.X_seq.dtype == np.float32
    assert np.isfinite(fs.X_seq).all()
    assert fs.X_tab.shape == (40, V * len(TABULAR_STATS) + S)
    assert len(fs.seq_names) == fs.X_seq.shape[2] == len(fs.seq_variables) == len(fs.seq_kinds)
    assert len(fs.tab_names) == fs.X_tab.shape[1] == len(fs.tab_variables)
    assert set(fs.seq_kinds) <= set(CHANNEL_KINDS)
    assert fs.seq_variables[fs.seq_names.index("HR:mask")] == "HR"
    assert fs.lengths.shape == (40,) and fs.lengths.min() >= 1 and fs.lengths.max() <= 6
    # same patient, same rows regardless of order
    fs2 = fb.transform(tiny_cohort, ids)
    np.testing.assert_array_equal(fs2.X_seq[::-1], fs.X_seq)
    np.testing.assert_array_equal(fs2.X_tab[::-1], fs.X_tab)


def test_sequence_semantics_hand_checked():
    ev = pd.DataFrame({"patient_id": ["a", "a", "a", "b"], "time_hours": [0.2, 0.7, 2.5, 1.0],
                       "variable": ["X", "X", "X", "X"], "value": [1.0, 3.0, 5.0, 7.0]})
    c = make_cohort(ev, labels=pd.Series({"a": 0, "b": 1}))
    fb = FeatureBuilder(FeatureConfig(window_hours=4, clip_quantile=0, delta_cap_hours=4)).fit(c, ["a", "b"])
    fs = fb.transform(c, ["a", "b"])
    # step means: a -> [2, -, 5, -], b -> [-, 7, -, -]; training mean of observed steps = (2+5+7)/3
    mean, std = np.mean([2, 5, 7]), np.std([2, 5, 7])
    val = fs.X_seq[:, :, 0] * std + mean
    np.testing.assert_allclose(val[0], [2, 2, 5, 5], rtol=1e-5)
    np.testing.assert_allclose(val[1], [mean, 7, 7, 7], rtol=1e-5)      # training mean before first obs
    np.testing.assert_array_equal(fs.X_seq[0, :, 1], [1, 0, 1, 0])       # mask
    expected_delta = np.log1p([0, 1, 0, 1]) / np.log1p(4)
    np.testing.assert_allclose(fs.X_seq[0, :, 2], expected_delta, rtol=1e-5)
    assert fs.X_seq[1, 0, 2] == pytest.approx(1.0)                      # never observed yet
    np.testing.assert_array_equal(fs.lengths, [3, 2])
    tab = pd.DataFrame(fs.X_tab, columns=fs.tab_names)
    assert tab.loc[0, "X:first"] == 1 and tab.loc[0, "X:last"] == 5 and tab.loc[0, "X:count"] == 3
    assert tab.loc[0, "X:mean"] == pytest.approx(3.0) and tab.loc[0, "X:max"] == 5
    t, x = np.array([0.2, 0.7, 2.5]), np.array([1.0, 3.0, 5.0])
    assert tab.loc[0, "X:slope"] == pytest.approx(np.polyfit(t, x, 1)[0])
    assert tab.loc[0, "X:hours_since_last"] == pytest.approx(1.5)


def test_no_leakage_from_validation_or_test_patients(tiny_cohort):
    """Fitted statistics and training features must not move when non-training patients change."""
    ids = tiny_cohort.labelled_ids
    train, held = ids[:25], ids[25:]
    fb = FeatureBuilder().fit(tiny_cohort, train)
    before = {k: v.copy() for k, v in fb.to_state()[1].items()}
    train_before = fb.transform(tiny_cohort, train)
    ev = tiny_cohort.events.copy()
    wild = ev["patient_id"].astype(str).isin(set(held))
    ev.loc[wild, "value"] = ev.loc[wild, "value"] * 1000 + 12345
    st = tiny_cohort.static.copy()
    st.loc[st.index.isin(held), "Age"] = 999.0
    mutated = make_cohort(ev, st, tiny_cohort.labels, target="died")
    fb2 = FeatureBuilder().fit(mutated, train)
    for k, v in fb2.to_state()[1].items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{k} saw held-out patients")
    np.testing.assert_array_equal(fb2.transform(mutated, train).X_seq, train_before.X_seq)
    np.testing.assert_array_equal(fb2.transform(mutated, train).X_tab, train_before.X_tab)


def test_state_round_trip(tmp_path, tiny_cohort):
    fb = FeatureBuilder().fit(tiny_cohort, tiny_cohort.labelled_ids[:30])
    fb.save(tmp_path)
    fb2 = FeatureBuilder.load(tmp_path)
    a, b = fb.transform(tiny_cohort), fb2.transform(tiny_cohort)
    np.testing.assert_array_equal(a.X_seq, b.X_seq)
    np.testing.assert_array_equal(a.X_tab, b.X_tab)
    (tmp_path / "features.npz").write_bytes(b"garbage")
    with pytest.raises(RunError, match="train again"):
        FeatureBuilder.load(tmp_path)


@pytest.mark.parametrize("kwargs, match", [({"window_hours": 0}, "window_hours"), ({"bin_hours": 100}, "bin_hours"),
                                           ({"clip_quantile": 0.7}, "clip_quantile")])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureConfig(**kwargs)


def test_errors(tiny_cohort):
    with pytest.raises(NotFittedError):
        FeatureBuilder().transform(tiny_cohort)
    with pytest.raises(CohortError, match="duplicates"):
        FeatureBuilder().fit(tiny_cohort, ["p000", "p000"])
    with pytest.raises(CohortError, match="window"):
        FeatureBuilder().fit(tiny_cohort, ["nobody"])
