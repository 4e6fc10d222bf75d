"""Time-order analysis: the shuffle removes order and nothing else; the ablation finds planted order
and finds none where there is none; timeorder.json layout; the CLI's exit codes."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.data.cohort import make_cohort
from core.config import EvaluationConfig, FeatureConfig
from core.features import FeatureBuilder
from core.analysis.timeorder import (TimeOrderConfig, describe_evidence, run_timeorder, shuffle_time_bins,
                            valid_lengths)
from tests.helpers.paths import ROOT

HOURS = 8
# small recurrent nets that learn the planted order in a few seconds (quick preset + overrides)
FAST = dict(models=("lr", "gru"), horizons_hours=(HOURS,), features=FeatureConfig(window_hours=HOURS), preset="quick",
            evaluation=EvaluationConfig(n_bootstrap=300),
            sequence_params=(("max_epochs", 30), ("batch_size", 32), ("patience", 30), ("hidden_size", 16),
                             ("lr", 1e-2), ("dropout", 0.0), ("weight_decay", 0.0)))


def order_cohort(order: bool, n: int = 240, seed: int = 0, ragged: bool = False):
    """A, B, C observed hourly; A and B each spike once, one hour apart.

    ``order=True``: the label is whether A spiked before B (5% flipped): only the order tells.
    ``order=False``: the label is whether C's patient level is above 0; the order is irrelevant.
    ``ragged``: patients stop being observed at random hours (for padding checks).
    """
    rng = np.random.default_rng(seed)
    rows, labels = [], {}
    for i in range(n):
        pid = f"p{i:04d}"
        t = int(rng.integers(1, HOURS - 2))
        a_first = bool(rng.random() < 0.5)
        ta, tb = (t, t + 1) if a_first else (t + 1, t)
        base = rng.normal()
        last = int(rng.integers(t + 2, HOURS + 1)) if ragged else HOURS
        for h in range(last):
            for var, spike_at in (("A", ta), ("B", tb), ("C", -1)):
                if ragged and h not in (ta, tb) and rng.random() < 0.3:
                    continue
                x = rng.normal(0, 0.5) + (3.0 if h == spike_at else 0.0) + (base if var == "C" else 0.0)
                rows.append((pid, h + rng.uniform(0, 0.9), var, x))
        y = int(a_first) if order else int(base > 0)
        labels[pid] = 1 - y if rng.random() < 0.05 else y
    events = pd.DataFrame(rows, columns=["patient_id", "time_hours", "variable", "value"])
    static = pd.DataFrame({"Age": rng.normal(60, 10, n)}, index=list(labels))
    return make_cohort(events, static, pd.Series(labels), target="y")


@pytest.fixture(scope="module")
def ordered_result():
    return run_timeorder(order_cohort(True), TimeOrderConfig(**FAST))


@pytest.fixture(scope="module")
def null_result():
    return run_timeorder(order_cohort(False), TimeOrderConfig(**FAST))


# -- the ablation ------------------------------------------------------------------------------
def test_ablation_finds_planted_order(ordered_result):
    a = ordered_result.ablation
    assert a.delta_ci[0] > 0, a.verdict
    assert a.delta > 0.15 and a.evidence == "positive"
    assert a.auroc_ordered > 0.8
    assert a.delta_shuffled_test_ci[0] > 0          # the ordered model relies on order
    assert "adds +" in a.verdict and "significant" in a.verdict
    assert ordered_result.gap is not None and ordered_result.gap.evidence == "positive"


def test_ablation_finds_nothing_without_order(null_result):
    a = null_result.ablation
    assert a.delta_ci[0] <= 0 <= a.delta_ci[1], a.verdict
    assert a.evidence == "none" and "no evidence" in a.verdict
    assert a.auroc_ordered > 0.85 and a.auroc_shuffled > 0.85    # both arms learn the level signal


def test_progress_is_reported_and_monotone():
    seen = []
    cfg = TimeOrderConfig(**{**FAST, "sequence_params": (("max_epochs", 2), ("hidden_size", 4)), "evaluation": EvaluationConfig(n_bootstrap=20)})
    run_timeorder(order_cohort(True, n=80), cfg, progress=lambda m, f: seen.append((m, f)))
    fr = [f for _, f in seen]
    assert fr[-1] == 1.0 and all(0 <= f <= 1 for f in fr)
    assert all(b >= a - 1e-9 for a, b in zip(fr, fr[1:]))


# -- the shuffle -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ragged():
    cohort = order_cohort(True, n=60, seed=3, ragged=True)
    shuffled = shuffle_time_bins(cohort, window_hours=HOURS, bin_hours=1.0, random_state=7)
    fb = FeatureBuilder(FeatureConfig(window_hours=HOURS)).fit(cohort, cohort.labelled_ids)
    return cohort, shuffled, fb, fb.transform(cohort), fb.transform(shuffled)


def test_shuffle_keeps_each_patients_observations(ragged):
    cohort, shuffled, *_ = ragged
    for pid in cohort.patient_ids[:20]:
        a = cohort.patient_events(pid).sort_values(["variable", "value"])[["variable", "value"]]
        b = shuffled.patient_events(pid).sort_values(["variable", "value"])[["variable", "value"]]
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    pd.testing.assert_frame_equal(cohort.static, shuffled.static)
    pd.testing.assert_series_equal(cohort.labels, shuffled.labels)
    assert (shuffled.events.groupby("patient_id", observed=True)["time_hours"].apply(
        lambda s: s.is_monotonic_increasing)).all()


def test_shuffle_permutes_bins_within_valid_length_and_keeps_padding(ragged):
    cohort, shuffled, fb, fs, fs_s = ragged
    V = len(fb.variables_)
    np.testing.assert_array_equal(valid_lengths(cohort, HOURS).to_numpy(), fs.lengths)
    # an empty hour inside the valid length is a bin like any other and may land last, never later
    assert (fs_s.lengths <= fs.lengths).all() and (fs_s.lengths == fs.lengths).mean() > 0.8
    assert (fs.lengths < HOURS).sum() > 10, "the fixture must have padded patients"
    mask, mask_s = fs.X_seq[:, :, V:2 * V], fs_s.X_seq[:, :, V:2 * V]
    moved = 0
    for i, L in enumerate(fs.lengths):
        # padding: nothing observed after the valid length, in both
        assert mask[i, L:].sum() == 0 and mask_s[i, L:].sum() == 0
        # the same multiset of (mask row) bins inside the valid length
        key = lambda m: sorted(map(tuple, m.astype(int)))  # noqa: E731
        assert key(mask[i, :L]) == key(mask_s[i, :L])
        moved += not np.array_equal(mask[i, :L], mask_s[i, :L]) or \
            not np.allclose(fs.X_seq[i, :L, :V], fs_s.X_seq[i, :L, :V])
    assert moved > 40, "most patients' bins should have moved"
    # static channels untouched
    np.testing.assert_array_equal(fs.X_seq[:, :, 3 * V:], fs_s.X_seq[:, :, 3 * V:])


def test_derived_channels_recomputed_on_the_shuffled_grid(ragged):
    _, _, fb, fs, fs_s = ragged
    V, T = len(fb.variables_), HOURS
    cap = fb.config.delta_cap_hours
    values, mask, delta = fs_s.X_seq[:, :, :V], fs_s.X_seq[:, :, V:2 * V] > 0.5, fs_s.X_seq[:, :, 2 * V:3 * V]
    for i in range(len(fs_s)):
        for v in range(V):
            last, carried = None, 0.0
            for t in range(T):
                if mask[i, t, v]:
                    last, carried = t, values[i, t, v]
                gap = cap if last is None else (t - last)
                expect = np.log1p(min(gap, cap)) / np.log1p(cap)
                assert delta[i, t, v] == pytest.approx(expect, abs=1e-6)
                assert values[i, t, v] == pytest.approx(carried, abs=1e-6)   # forward fill on the new grid
    # ... and they are not just the original derived channels carried along with the bins
    assert not np.allclose(np.sort(fs.X_seq[:, :, 2 * V:3 * V], axis=1), np.sort(delta, axis=1))


def test_shuffle_is_seeded(ragged):
    cohort = ragged[0]
    a = shuffle_time_bins(cohort, window_hours=HOURS, random_state=1).events["time_hours"].to_numpy()
    b = shuffle_time_bins(cohort, window_hours=HOURS, random_state=1).events["time_hours"].to_numpy()
    c = shuffle_time_bins(cohort, window_hours=HOURS, random_state=2).events["time_hours"].to_numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# -- config, verdicts, JSON -------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"model": "lr"}, "sequence model"),
    ({"model": "transformer"}, "Unknown model"),
    ({"models": ("lr", "xgb")}, "Unknown model"),
    ({"horizons_hours": (0, 12)}, "positive hours"),
    ({"horizons_hours": ("soon",)}, "numbers of hours"),
    ({"evaluation": EvaluationConfig(n_bootstrap=5)}, "n_bootstrap"),
    ({"preset": "huge"}, "preset"),
    ({"max_patients": 3}, "max_patients"),
    ({"horizons_hours": (0.5,)}, "at least one bin"),
    ({"models": ("lr", "gru"), "early_models": ("gbm",)}, "early_models"),
    ({"early_models": ()}, "early_models"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TimeOrderConfig(**kwargs)


def test_hours_clipped_to_window_and_include_it():
    day = FeatureConfig(window_hours=24)
    assert TimeOrderConfig(horizons_hours=(6, 12, 24, 36, 48), features=day).hours() == (6.0, 12.0, 24.0)
    assert TimeOrderConfig(horizons_hours=(6,), features=day).hours() == (6.0, 24.0)


def test_early_models_only_at_the_shorter_horizons():
    cfg = TimeOrderConfig(models=("lr", "gbm", "gru"), early_models=(" GRU", "lr"), horizons_hours=(6, 12),
                          features=FeatureConfig(window_hours=12))
    assert cfg.early_models == ("gru", "lr") and cfg.models_at(6) == ("gru", "lr")
    assert cfg.models_at(12) == ("lr", "gbm", "gru") and TimeOrderConfig(models=("lr",)).models_at(6) == ("lr",)
    assert TimeOrderConfig.from_dict(cfg.to_dict()) == cfg


def test_describe_evidence():
    assert describe_evidence(0.01, 0.2) == "positive"
    assert describe_evidence(-0.2, -0.01) == "negative"
    assert describe_evidence(-0.01, 0.02) == "none"
    assert describe_evidence(np.nan, np.nan) == "none"


def test_json_layout(ordered_result):
    d = json.loads(json.dumps(ordered_result.to_dict()))
    assert set(d) >= {"ablation", "horizons", "gap", "verdict", "config", "data_fingerprint"}
    a = d["ablation"]
    for k in ("model", "auroc_ordered", "auroc_shuffled", "delta", "delta_ci", "auroc_shuffled_test",
              "delta_shuffled_test", "delta_shuffled_test_ci", "auroc_ordered_ci", "delong_p", "shuffle"):
        assert k in a, k
    assert a["model"] == "gru" and len(a["delta_ci"]) == 2
    assert d["horizons"]["hours"] == [float(HOURS)]
    pt = d["horizons"]["models"]["lr"]["points"][0]
    assert set(pt) >= {"hours", "auroc", "auroc_ci", "auprc", "auprc_ci"}
    for k in ("best_sequence", "best_order_free", "diff", "ci", "p_value", "delong_p"):
        assert k in d["gap"], k
    assert d["config"]["model"] == "gru" and d["verdict"] == ordered_result.verdict
    assert len(d["data_fingerprint"]) == 16


# -- CLI ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("timeorder")
    c = order_cohort(True, n=80)
    ev = c.events.rename(columns={"time_hours": "time"})
    ev.to_csv(d / "events.csv", index=False)
    c.labels.rename("died").rename_axis("patient_id").reset_index().to_csv(d / "labels.csv", index=False)
    return d


def test_cli_writes_timeorder_json(cli_files, capsys):
    out = cli_files / "out"
    rc = main(["timeorder", str(cli_files / "events.csv"), "--labels", str(cli_files / "labels.csv"), "--target",
               "died", "--out", str(out), "--preset", "test", "--models", "lr,gru", "--horizons", "4,8",
               "--window-hours", "8", "--bootstrap", "50"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-2000:]
    d = json.loads((out / "timeorder.json").read_text())
    assert d["horizons"]["hours"] == [4.0, 8.0] and d["ablation"]["model"] == "gru"
    assert "time order" in captured.err          # the tqdm bar on stderr
    assert "AUROC" in captured.out and d["verdict"] in captured.out
    # the tiers and the missingness-only model: in the JSON with CIs and printed
    assert [r["tier"] for r in d["tiers"]["rows"]] == ["order_free", "time_aware", "sequence"]
    assert all(len(r["auroc_ci"]) == 2 for r in d["tiers"]["rows"])
    assert d["tiers"]["sentence"] in captured.out and d["missingness"]["sentence"] in captured.out
    assert "Tiers (full horizon" in captured.out


def test_cli_no_tiers(cli_files, capsys):
    out = cli_files / "out-no-tiers"
    rc = main(["timeorder", str(cli_files / "events.csv"), "--labels", str(cli_files / "labels.csv"), "--target",
               "died", "--out", str(out), "--preset", "test", "--models", "lr,gru", "--horizons", "8",
               "--window-hours", "8", "--bootstrap", "20", "--no-tiers", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-2000:]
    d = json.loads((out / "timeorder.json").read_text())
    assert d["tiers"] is None and d["missingness"] is None and d["config"]["tiers"] is False
    assert "Tiers" not in captured.out


def test_cli_missing_file_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "core", "timeorder", str(tmp_path / "nope.csv"), "--target", "died",
                           "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "error" in (proc.stderr + proc.stdout).lower()


@pytest.mark.parametrize("extra, match", [
    (["--model", "lr"], "sequence model"),
    (["--horizons", "soon,later"], "horizons"),
    (["--models", "lr,xgb"], "Unknown model"),
    (["--bootstrap", "3"], "n_bootstrap"),
])
def test_cli_bad_options_exit_2(cli_files, tmp_path, capsys, extra, match):
    rc = main(["timeorder", str(cli_files / "events.csv"), "--labels", str(cli_files / "labels.csv"), "--target",
               "died", "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and "Traceback" not in err


def test_cli_without_target_exits_2(cli_files, tmp_path, capsys):
    rc = main(["timeorder", str(cli_files / "events.csv"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "--target" in capsys.readouterr().err
