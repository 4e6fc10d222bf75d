"""Time-aware and missingness-only summaries (FeatureConfig.summaries) and the tiers of the time-order analysis.

Features are checked against hand computations on tiny patients; the online ones are causal (data
after an hour never changes its features); the missingness-only ones never see a value; the tiers
and the missingness model appear in timeorder.json with their CIs.
"""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from core.data.cohort import make_cohort
from core.config import EvaluationConfig, FeatureConfig
from core.features import MISSINGNESS_STATS, TABULAR_STATS, FeatureBuilder
from core.analysis.timeorder import TimeOrderConfig, run_timeorder
from tests.helpers.cohorts import make_online_cohort, make_planted_order_cohort, make_tiny_cohort

HR_A = [(0.5, 80.0), (3.2, 95.0), (7.0, 70.0), (10.5, 90.0), (11.5, 85.0)]


def _two_patients():
    """a: five HR values and one lactate; b: a single HR value, no lactate, unknown age."""
    rows = [("a", t, "HR", x) for t, x in HR_A] + [("a", 2.0, "Lac", 1.5), ("b", 2.0, "HR", 100.0)]
    events = pd.DataFrame(rows, columns=["patient_id", "time_hours", "variable", "value"])
    static = pd.DataFrame({"Age": [60.0, np.nan]}, index=["a", "b"])
    return make_cohort(events, static, pd.Series({"a": 1, "b": 0}), target="y")


def _stay_features(summaries: str):
    cohort = _two_patients()
    cfg = FeatureConfig(window_hours=12, clip_quantile=0, summaries=summaries, n_subwindows=2, recent_hours=(3, 6))
    fb = FeatureBuilder(cfg).fit(cohort, ["a", "b"])
    fs = fb.transform(cohort, ["a", "b"])
    return fs, {name: fs.X_tab[:, j] for j, name in enumerate(fs.tab_names)}


def test_time_aware_stay_features_by_hand():
    fs, col = _stay_features("time_aware")
    assert fs.X_tab.shape[1] == len(fs.tab_names) == 2 * (len(TABULAR_STATS) + 2 + 2 + 6) + 1
    a, b = 0, 1
    assert col["HR:hour_of_max"][a] == pytest.approx(3.2) and col["HR:hour_of_min"][a] == pytest.approx(7.0)
    assert col["HR:slope_0_6h"][a] == pytest.approx((95 - 80) / (3.2 - 0.5))
    t, x = zip(*HR_A[2:])
    assert col["HR:slope_6_12h"][a] == pytest.approx(np.polyfit(t, x, 1)[0])
    assert col["HR:mean_last_3h"][a] == pytest.approx(87.5)
    assert col["HR:last_3h"][a] == 85.0 and col["HR:count_last_3h"][a] == 2
    assert col["HR:mean_last_6h"][a] == pytest.approx((70 + 90 + 85) / 3)
    assert col["HR:last_6h"][a] == 85.0 and col["HR:count_last_6h"][a] == 3
    # one observation: its hour is both extremes, slope 0 where it lies, NaN in an empty sub-window
    assert col["Lac:hour_of_min"][a] == col["Lac:hour_of_max"][a] == 2.0
    assert col["Lac:slope_0_6h"][a] == 0.0 and np.isnan(col["Lac:slope_6_12h"][a])
    assert col["Lac:count_last_3h"][a] == 0 and np.isnan(col["Lac:mean_last_3h"][a]) and np.isnan(col["Lac:last_3h"][a])
    assert col["HR:hour_of_max"][b] == 2.0 and col["HR:slope_0_6h"][b] == 0.0
    assert np.isnan(col["Lac:hour_of_max"][b]) and col["Lac:count_last_6h"][b] == 0
    assert col["Age:static"][a] == 60.0
    # the order-free part is the order-free view, unchanged
    base, base_col = _stay_features("order_free")
    for name in base.tab_names:
        np.testing.assert_array_equal(col[name], base_col[name])


def test_missingness_stay_features_by_hand():
    fs, col = _stay_features("missingness_only")
    assert [n.split(":")[1] for n in fs.tab_names[:7]] == list(MISSINGNESS_STATS) + ["bins_0_6h", "bins_6_12h"]
    a, b = 0, 1
    assert col["HR:count"][a] == 5 and col["HR:bins_observed"][a] == 5
    assert col["HR:hours_to_first"][a] == 0.5 and col["HR:hours_since_last"][a] == pytest.approx(0.5)
    assert col["HR:rate_per_hour"][a] == pytest.approx(5 / 11.5)
    assert col["HR:bins_0_6h"][a] == 2 and col["HR:bins_6_12h"][a] == 3
    assert col["HR:count"][b] == 1 and col["HR:hours_since_last"][b] == 10 and col["HR:rate_per_hour"][b] == 0.1
    assert col["Lac:count"][b] == 0 and np.isnan(col["Lac:hours_to_first"][b]) and np.isnan(col["Lac:rate_per_hour"][b])
    assert list(col["Age:missing"]) == [0.0, 1.0] and "Age:static" not in col


def _online_patient():
    x = [80, 82, 90, 85, 99, 88, 86, 84, 95, 70]
    events = pd.DataFrame({"patient_id": "a", "time_hours": np.arange(10.0), "variable": "HR", "value": x})
    hours = pd.DataFrame({"patient_id": "a", "time_hours": np.arange(10.0), "label": [0] * 8 + [1, 1]})
    cohort = make_cohort(events, None, hour_labels=hours, target="event",
                         row_times=hours[["patient_id", "time_hours"]])
    return cohort, np.asarray(x, dtype=float)


def test_time_aware_online_features_by_hand():
    cohort, x = _online_patient()
    cfg = FeatureConfig(task="online", window_hours=10, clip_quantile=0, lookback_hours=(6,), recent_hours=(3,),
                        summaries="time_aware")
    fs = FeatureBuilder(cfg).fit(cohort, ["a"]).transform(cohort, ["a"])
    col = {name: fs.X_tab[:, j] for j, name in enumerate(fs.tab_names)}
    k = int(np.flatnonzero(fs.unit_step == 7)[0])          # hour 7: the last 6 hours are steps 2..7
    assert col["HR:hours_since_max_6h"][k] == pytest.approx(7 - 4)      # 99 at hour 4
    assert col["HR:hours_since_min_6h"][k] == pytest.approx(0)          # 84 at hour 7
    assert col["HR:slope_6h"][k] == pytest.approx(np.polyfit(np.arange(2.0, 8.0), x[2:8], 1)[0], rel=1e-5)
    assert col["HR:mean_last_3h"][k] == pytest.approx(x[5:8].mean())
    assert col["HR:last_3h"][k] == x[7] and col["HR:count_last_3h"][k] == 3
    assert col["HR:max_6h"][k] == 99 and col["HR:mean_6h"][k] == pytest.approx(x[2:8].mean())
    k0 = int(np.flatnonzero(fs.unit_step == 0)[0])
    assert col["HR:slope_6h"][k0] == 0.0 and col["HR:hours_since_max_6h"][k0] == 0.0


@pytest.mark.parametrize("summaries", ["order_free", "time_aware", "missingness_only"])
def test_online_features_use_no_data_after_the_hour(summaries):
    cohort = make_online_cohort(n_patients=30)
    cut = 12.0
    fb = FeatureBuilder(FeatureConfig(task="online", window_hours=30, summaries=summaries)).fit(
        cohort, cohort.patient_ids)
    before = fb.transform(cohort)
    ev = cohort.events.copy()
    later = ev["time_hours"].to_numpy() >= cut
    rng = np.random.default_rng(1)
    ev.loc[later, "value"] = rng.normal(200, 50, int(later.sum()))             # every later value changed
    extra = ev[later].assign(time_hours=lambda d: d["time_hours"] + 0.25)      # and more measurements later
    changed = replace(cohort, events=pd.concat([ev, extra]).sort_values(["patient_id", "time_hours"],
                                                                        kind="stable").reset_index(drop=True))
    after = fb.transform(changed)
    np.testing.assert_array_equal(before.unit_step, after.unit_step)
    early = before.unit_time < cut
    assert early.sum() > 100 and (~early).sum() > 100
    np.testing.assert_array_equal(before.X_tab[early], after.X_tab[early])
    assert not np.array_equal(before.X_tab[~early], after.X_tab[~early], equal_nan=True)


def _revalue(cohort, seed: int = 5):
    """Every value (events and static attributes) replaced at random; times and what is unknown kept."""
    rng = np.random.default_rng(seed)
    ev = cohort.events.copy()
    ev["value"] = rng.normal(0, 100, len(ev))
    st = cohort.static.copy()
    st[:] = np.where(st.isna(), np.nan, rng.normal(0, 100, st.shape))
    return replace(cohort, events=ev, static=st)


@pytest.mark.parametrize("task", ["stay", "online"])
def test_missingness_only_features_ignore_every_value(task):
    cohort = make_tiny_cohort() if task == "stay" else make_online_cohort(n_patients=30)
    other = _revalue(cohort)
    window = 6 if task == "stay" else 30
    sets = {}
    for s in ("missingness_only", "order_free"):
        cfg = FeatureConfig(task=task, window_hours=window, summaries=s)
        sets[s] = [FeatureBuilder(cfg).fit(c, c.patient_ids).transform(c) for c in (cohort, other)]
    a, b = sets["missingness_only"]
    np.testing.assert_array_equal(a.X_tab, b.X_tab)
    np.testing.assert_array_equal(a.X_seq, b.X_seq)
    assert a.tab_names == b.tab_names and not any(n.endswith(":static") for n in a.tab_names)
    # the check has teeth: the same change moves the value features
    v, w = sets["order_free"]
    assert not np.array_equal(v.X_tab, w.X_tab, equal_nan=True) and not np.array_equal(v.X_seq, w.X_seq)


def test_feature_config_rejects_bad_summaries():
    with pytest.raises(ValueError, match="summaries"):
        FeatureConfig(summaries="fancy")
    with pytest.raises(ValueError, match="recent_hours"):
        FeatureConfig(recent_hours=(0,))
    with pytest.raises(ValueError, match="n_subwindows"):
        FeatureConfig(n_subwindows=0)


def test_builder_with_summaries_saves_and_loads(tmp_path):
    cohort = make_tiny_cohort()
    fb = FeatureBuilder(FeatureConfig(window_hours=6, summaries="time_aware")).fit(cohort, cohort.patient_ids)
    fb.save(tmp_path)
    back = FeatureBuilder.load(tmp_path)
    assert back.config == fb.config and back.tab_names == fb.tab_names
    np.testing.assert_array_equal(back.transform(cohort).X_tab, fb.transform(cohort).X_tab)


# -- the tiers in the time-order analysis ---------------------------------------------------------------
TINY = dict(models=("lr", "gru"), preset="test", evaluation=EvaluationConfig(n_bootstrap=50))


@pytest.fixture(scope="module")
def stay_result():
    cfg = TimeOrderConfig(horizons_hours=(12,), features=FeatureConfig(window_hours=12), **TINY)
    return run_timeorder(make_planted_order_cohort(160), cfg)


def test_tiers_in_timeorder_json_with_cis(stay_result):
    r = stay_result
    d = json.loads(json.dumps(r.to_dict()))
    assert {"ablation", "horizons", "gap", "verdict", "tiers", "missingness"} <= set(d)
    t = d["tiers"]
    assert [row["tier"] for row in t["rows"]] == ["order_free", "time_aware", "sequence"]
    for row in t["rows"]:
        lo, hi = row["auroc_ci"]
        assert lo <= row["auroc"] <= hi and len(row["auprc_ci"]) == 2
    assert set(t["differences"]) == {"time_aware_minus_order_free", "sequence_minus_order_free",
                                     "sequence_minus_time_aware"}
    for diff in t["differences"].values():
        assert diff["ci"][0] <= diff["diff"] <= diff["ci"][1] and diff["evidence"] in ("positive", "negative", "none")
    assert t["model"] == t["time_aware_model"] == "lr" and t["sequence_model"] == "gru" and t["preset"] == "test" and t["sentence"]
    # tier (a) is the analysis's own order-free model, tier (c) the gap's sequence model: the same numbers
    full = r.horizons[r.horizons["hours"] == 12.0].set_index("model")
    assert t["rows"][0]["auroc"] == pytest.approx(full.loc["lr", "auroc"])
    assert t["rows"][2]["auroc"] == pytest.approx(r.gap.auroc_sequence)
    m = d["missingness"]
    lo, hi = m["auroc_missingness_ci"]
    assert lo <= m["auroc_missingness"] <= hi and m["auroc_values"] == pytest.approx(t["rows"][0]["auroc"])
    assert m["share_above_chance"] == pytest.approx((m["auroc_missingness"] - 0.5) / (m["auroc_values"] - 0.5))
    assert "measured" in m["sentence"] and len(m["values_minus_missingness_ci"]) == 2


def test_tier_sentence_is_honest_when_cis_include_zero(stay_result):
    t = stay_result.tiers
    gain = t.differences["sequence_minus_order_free"]
    if gain["ci_low"] > 0:
        assert "recover" in t.sentence and np.isfinite(t.recovered)
    else:
        assert "no significant order advantage" in t.sentence and np.isnan(t.recovered)
    table = t.table()
    assert list(table["tier"]) == ["order-free summaries", "time-aware summaries", "sequence model"]


def test_tiers_off_and_without_an_order_free_model():
    cohort = make_planted_order_cohort(120)
    base = dict(TINY, horizons_hours=(12,), features=FeatureConfig(window_hours=12))
    off = run_timeorder(cohort, TimeOrderConfig(**{**base, "tiers": False}))
    assert off.tiers is None and off.missingness is None and off.to_dict()["tiers"] is None
    seq_only = run_timeorder(cohort, TimeOrderConfig(**{**base, "models": ("gru",)}))
    assert seq_only.tiers is None
    with pytest.raises(ValueError, match="tiers"):
        TimeOrderConfig(tiers="yes")


def test_tiers_full_preset_refits_order_free_at_quick_sizes():
    from core.analysis.timeorder.tiers import _tier_kinds
    assert _tier_kinds(TimeOrderConfig(preset="full")) == ("quick", ("time_aware", "missingness_only", "order_free"))
    assert _tier_kinds(TimeOrderConfig(preset="quick")) == ("quick", ("time_aware", "missingness_only"))


def test_online_tiers_with_patient_cis():
    cohort = make_online_cohort(n_patients=90)
    cfg = TimeOrderConfig(horizons_hours=(30,), features=FeatureConfig(task="online", window_hours=30), **TINY)
    r = run_timeorder(cohort, cfg)
    d = r.to_dict()
    assert r.tiers is not None and r.missingness is not None
    for row in d["tiers"]["rows"]:
        assert all(np.isfinite(v) for v in row["auroc_ci"])
    assert np.isfinite(d["missingness"]["auroc_missingness"])


def _d(diff, lo, hi):
    return {"difference": diff, "ci_low": lo, "ci_high": hi, "p_value": 0.01}


@pytest.mark.parametrize("b, c, cb, expect", [
    (_d(0.08, 0.04, 0.12), _d(0.10, 0.05, 0.15), _d(0.02, -0.01, 0.05), "most of the advantage of order here is *when*"),
    (_d(0.03, 0.01, 0.05), _d(0.10, 0.05, 0.15), _d(0.07, 0.03, 0.11), "still gains +0.070"),
    (_d(-0.01, -0.03, 0.01), _d(0.10, 0.05, 0.15), _d(0.11, 0.06, 0.16), "no evidence that these hand-made timing"),
    (_d(0.01, -0.01, 0.03), _d(0.01, -0.02, 0.04), _d(0.0, -0.02, 0.02), "no significant order advantage"),
])
def test_tier_sentence_wording(b, c, cb, expect):
    from core.analysis.timeorder.tiers import _tier_sentence
    diffs = {"time_aware_minus_order_free": b, "sequence_minus_order_free": c, "sequence_minus_time_aware": cb}
    text = _tier_sentence("logistic regression", "gradient boosting", "GRU", diffs, b["difference"] / c["difference"])
    assert expect in text
    assert "logistic regression" in text and "gradient boosting" in text
    if c["ci_low"] > 0:
        assert f"recover {b['difference']:+.3f}" in text and "AUROC points the GRU gains" in text
        assert ("recovered" in text) == (b["ci_low"] > 0)


@pytest.mark.parametrize("summaries", ["time_aware", "missingness_only"])
def test_summaries_out_of_core_equal_in_memory(summaries, tmp_path):
    cohort = make_online_cohort(n_patients=30)
    fb = FeatureBuilder(FeatureConfig(task="online", window_hours=30, summaries=summaries)).fit(
        cohort, cohort.patient_ids)
    mem, disk = fb.transform(cohort), fb.transform(cohort, out_dir=tmp_path / "f")
    assert isinstance(disk.X_tab, np.memmap)
    np.testing.assert_array_equal(mem.X_tab, disk.X_tab)
    np.testing.assert_array_equal(mem.X_seq, disk.X_seq)
