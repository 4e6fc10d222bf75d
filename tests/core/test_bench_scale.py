"""Tests for the pure helpers of bench/bench_scale.py: the exponent fit, the chunked generator, the merge."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "bench_scale.py"
_spec = importlib.util.spec_from_file_location("bench_scale", _PATH)
bench_scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_scale)


def test_fit_exponent_recovers_a_power_law_and_skips_small_sizes():
    stays = [1000, 4000, 16000, 64000]
    seconds = [50.0] + [2e-4 * n ** 1.5 for n in stays[1:]]     # 1k: start-up dominated, left out
    assert bench_scale.fit_exponent(stays, seconds) == pytest.approx(1.5)
    assert bench_scale.fit_exponent(stays, seconds, min_stays=0) < 1.4   # flattened by the 1k point


@pytest.mark.parametrize("stays, values", [([1000, 4000], [1.0, 2.0]), ([4000, 16000], [1.0, None]),
                                           ([4000, 4000], [1.0, 2.0]), ([], [])])
def test_fit_exponent_needs_two_sizes(stays, values):
    assert bench_scale.fit_exponent(stays, values) is None


def test_chunk_sizes():
    assert bench_scale.chunk_sizes(50, 20) == [20, 20, 10]
    with pytest.raises(ValueError, match="--sizes"):
        bench_scale.chunk_sizes(0, 20)


def test_write_cohort_distinct_chunks_and_reuse(tmp_path):
    marker = bench_scale.write_cohort(tmp_path, 50, chunk=20, seed=0)
    events = pd.read_csv(tmp_path / "events.csv")
    outcomes = pd.read_csv(tmp_path / "outcomes.csv")
    assert not marker["reused"] and marker["rows"] == len(events)
    assert outcomes["patient_id"].is_unique and len(outcomes) == 50
    assert set(events["patient_id"]) == set(outcomes["patient_id"])
    assert {i[:5] for i in outcomes["patient_id"]} == {"S000-", "S001-", "S002-"}
    # distinct patients, not copies: the first patient of each chunk differs
    first = [events[events["patient_id"] == f"S00{k}-D00001"]["value"].to_numpy() for k in range(3)]
    assert not any(len(a) == len(b) and (a == b).all() for a, b in [(first[0], first[1]), (first[0], first[2])])
    assert bench_scale.write_cohort(tmp_path, 50, chunk=20, seed=0)["reused"]
    assert not bench_scale.write_cohort(tmp_path, 50, chunk=20, seed=1)["reused"]   # another request: regenerated


def test_merge_results_adds_sizes_and_refits():
    def entry(n, secs):
        return {"stays": n, "rows": 317 * n, "stages": {s: {"ok": True, "seconds": secs, "peak_rss_mb": 400.0 + n / 100}
                                                         for s in bench_scale.STAGES}}
    first = bench_scale.merge_results(None, {"4000": entry(4000, 4.0)}, {"cpus": 2})
    assert first["exponents"]["validate"]["time"] is None
    both = bench_scale.merge_results(first, {"16000": entry(16000, 16.0)}, {"cpus": 2})
    assert list(both["sizes"]) == ["4000", "16000"]
    assert math.isclose(both["exponents"]["train"]["time"], 1.0, abs_tol=1e-3)
    assert both["target_checks"]["train_quick_largest_stays_within_3gb"] == 16000
