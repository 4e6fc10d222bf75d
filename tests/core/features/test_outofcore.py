"""Features out of core: memory-mapped ``X_seq`` / ``X_tab``, batch-wise recurrent models, the protocol's switch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core import features as features_mod
from core.data.cohort import make_cohort
from core.config import DataConfig, EvaluationConfig, FeatureConfig, SplitConfig
from core.data.demo import DEMO_TARGET, generate_demo_cohort
from core.features import FeatureBuilder
from core.service.jobs import JobCancelled
from core.models import registry
from core.models import base as base_mod
from core.models.base import check_sequences
from core.models.grud import make_grud
from core.models.recurrent import RecurrentClassifier
from core.training.protocol import FEATURES_IN_MEMORY_ENV, refit_models, run_protocol, split_by_patient
from tests.helpers.cohorts import make_online_cohort
from tests.helpers.paths import ROOT

DATA = ROOT.parent / "shared/data/physionet2012"
ONLINE = FeatureConfig(task="online", window_hours=40, lookback_hours=(3, 6))
NO_CI = EvaluationConfig(n_bootstrap=0)


def _demo_cohort(n_patients: int, seed: int = 0):
    """The generated demo cohort as a Cohort: Age and Gender (rows at time 0) become static attributes."""
    events, outcomes = generate_demo_cohort(n_patients=n_patients, seed=seed)
    events = events.rename(columns={"time": "time_hours"})
    static_rows = events["variable"].isin(["Age", "Gender"])
    static = events[static_rows].pivot_table(index="patient_id", columns="variable", values="value", aggfunc="first")
    labels = outcomes.set_index("patient_id")[DEMO_TARGET]
    return make_cohort(events[~static_rows], static, labels, target=DEMO_TARGET)


@pytest.fixture(scope="module")
def demo():
    return _demo_cohort(120)


@pytest.fixture(scope="module")
def online():
    return make_online_cohort(90, seed=1, max_hours=30)


@pytest.fixture
def work_root(tmp_path, monkeypatch):
    """CHRONOSCOPE_TMP_DIR pointed at a fresh folder, so the protocol's work folders can be looked for."""
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path))
    return tmp_path


def _work_folders(root: Path) -> list[Path]:
    return sorted(root.glob("chronoscope-features-*"))


def _assert_same_features(a, b) -> None:
    np.testing.assert_array_equal(a.X_seq, b.X_seq)
    np.testing.assert_array_equal(a.X_tab, b.X_tab)    # NaN where never observed: equal positions
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.patient_ids, b.patient_ids)
    for k in ("unit_patient", "unit_step", "unit_time"):
        if getattr(a, k) is None:
            assert getattr(b, k) is None
        else:
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert a.seq_names == b.seq_names and a.tab_names == b.tab_names


# -- (a) the builder: memory-mapped arrays equal the in-memory ones exactly ------------------------
@pytest.mark.parametrize("task", ["stay", "online"])
def test_out_of_core_features_equal_in_memory(task, demo, online, tmp_path, monkeypatch):
    cohort, config = (demo, FeatureConfig(window_hours=24)) if task == "stay" else (online, ONLINE)
    ids = np.sort(np.asarray(cohort.patient_ids, dtype=str))
    fb = FeatureBuilder(config).fit(cohort, ids[::2])
    in_memory = fb.transform(cohort, ids)
    monkeypatch.setattr(features_mod, "_CHUNK_CELLS", 1)     # 16 patients per chunk: many chunk writes
    on_disk = fb.transform(cohort, ids, out_dir=tmp_path / "fs")
    assert isinstance(on_disk.X_seq, np.memmap) and not on_disk.X_seq.flags.writeable
    assert on_disk.X_seq.shape[0] > 16 * 3
    _assert_same_features(in_memory, on_disk)
    names = {"X_seq.npy", "X_tab.npy"} if task == "online" else {"X_seq.npy"}
    assert {p.name for p in (tmp_path / "fs").iterdir()} == names
    np.testing.assert_array_equal(np.load(tmp_path / "fs" / "X_seq.npy", mmap_mode="r"), in_memory.X_seq)
    if task == "online":
        assert isinstance(on_disk.X_tab, np.memmap)
    else:                                                  # one row per stay: small, stays in memory
        assert not isinstance(on_disk.X_tab, np.memmap)
    assert fb.sequence_nbytes(len(ids)) == in_memory.X_seq.nbytes


def test_out_of_core_refuses_a_folder_already_used(demo, tmp_path):
    fb = FeatureBuilder(FeatureConfig(window_hours=24)).fit(demo, demo.patient_ids)
    first = fb.transform(demo, demo.patient_ids, out_dir=tmp_path)
    with pytest.raises(FileExistsError, match="new, empty folder"):
        fb.transform(demo, demo.patient_ids, out_dir=tmp_path)
    assert np.isfinite(first.X_seq).all()                  # the first set's file was not truncated


# -- (b) the protocol: same risks in memory and out of core; the work folder is removed -----------------
@pytest.mark.parametrize("task", ["stay", "online"])
def test_protocol_out_of_core_gives_the_same_risks(task, demo, online, work_root, monkeypatch):
    cohort, config = (demo, FeatureConfig(window_hours=24)) if task == "stay" else (online, ONLINE)
    splits = split_by_patient(cohort, SplitConfig(random_state=0))
    specs = [registry.get(n) for n in ("lr", "gru", "grud")]

    def run():
        return run_protocol(cohort, specs, splits, features=config, evaluation=NO_CI, preset="test", random_state=0)

    monkeypatch.setenv(FEATURES_IN_MEMORY_ENV, "1024")
    in_memory = run()
    assert not isinstance(in_memory.features["test"].X_seq, np.memmap) and not _work_folders(work_root)
    monkeypatch.setenv(FEATURES_IN_MEMORY_ENV, "0")
    on_disk = run()
    assert isinstance(on_disk.features["test"].X_seq, np.memmap)
    assert not _work_folders(work_root)                    # removed when the protocol returned
    for name in ("lr", "gru", "grud"):
        np.testing.assert_allclose(on_disk.test[name].y_proba, in_memory.test[name].y_proba, rtol=0, atol=1e-6)
        assert on_disk.test[name].threshold == pytest.approx(in_memory.test[name].threshold, abs=1e-6)
    # kept feature sets stay readable after their files were removed (their maps hold the data)
    for split in ("train", "validation", "test"):
        _assert_same_features(in_memory.features[split], on_disk.features[split])


def test_refit_out_of_core_removes_its_folder(demo, work_root, monkeypatch):
    monkeypatch.setenv(FEATURES_IN_MEMORY_ENV, "0")
    splits = split_by_patient(demo, SplitConfig(random_state=0))
    specs = [registry.get("gru")]
    res = run_protocol(demo, specs, splits, features=FeatureConfig(window_hours=24), evaluation=NO_CI,
                       preset="test", random_state=0)
    refit = refit_models(demo, res, specs, preset="test", random_state=0)
    assert set(refit) == {"gru"} and not _work_folders(work_root)


def test_cancelled_protocol_removes_its_work_folder(demo, work_root, monkeypatch):
    monkeypatch.setenv(FEATURES_IN_MEMORY_ENV, "0")
    splits = split_by_patient(demo, SplitConfig(random_state=0))
    seen, files = [], []

    def cancel(msg, frac):
        if "epoch" in msg:                                 # features are on disk, training has started
            seen.extend(_work_folders(work_root))
            files.extend(p.relative_to(seen[0]).as_posix() for p in seen[0].rglob("*.npy"))
            raise JobCancelled()
    with pytest.raises(JobCancelled):
        run_protocol(demo, [registry.get("gru")], splits, features=FeatureConfig(window_hours=24), evaluation=NO_CI,
                     preset="test", random_state=0, progress=cancel)
    assert len(seen) == 1 and sorted(files) == [f"run-0/{k}/X_seq.npy" for k in ("test", "train", "validation")]
    assert not seen[0].exists() and not _work_folders(work_root)


@pytest.mark.parametrize("value", ["lots", "-1"])
def test_bad_in_memory_limit_is_explained(value, demo, monkeypatch):
    monkeypatch.setenv(FEATURES_IN_MEMORY_ENV, value)
    splits = split_by_patient(demo, SplitConfig(random_state=0))
    with pytest.raises(ValueError, match=f"{FEATURES_IN_MEMORY_ENV}=1024"):
        run_protocol(demo, [registry.get("lr")], splits, features=FeatureConfig(window_hours=24), preset="test")


# -- (d) the recurrent models read batches, never a tensor of all patients ---------------------------
def _memmap_sequences(path: Path, n: int, T: int = 4, seed: int = 0) -> np.ndarray:
    """A read-only memmap ``(n, T, 5)``: value, mask, delta of one variable, then static, static_missing."""
    rng = np.random.default_rng(seed)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, T, 5))
    X[:, :, 0] = rng.normal(size=(n, T))
    X[:, :, 1] = rng.random((n, T)) < 0.7
    X[:, :, 2] = rng.random((n, T))
    X[:, :, 3] = rng.normal(size=(n, 1))
    X[:, :, 4] = 0.0
    X.flush()
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("model", ["gru", "grud"])
@pytest.mark.parametrize("targets", ["stay", "per-hour"])
def test_recurrent_models_never_build_a_tensor_of_all_patients(model, targets, tmp_path, monkeypatch):
    n, T = 1500, 4                                         # more patients than one prediction chunk (1024)
    X = _memmap_sequences(tmp_path / "X.npy", n, T)
    rng = np.random.default_rng(1)
    y = (rng.random(n) < 0.3).astype(int) if targets == "stay" else (rng.random((n, T)) < 0.2).astype(np.float32)
    clf = RecurrentClassifier(hidden_size=4, max_epochs=1, batch_size=32, random_state=0) if model == "gru" else \
        make_grud("test", random_state=0).set_params(channel_kinds=("value", "mask", "delta", "static",
                                                                    "static_missing"), max_epochs=1, batch_size=32)
    shapes, real = [], torch.from_numpy

    def spy(a):
        shapes.append(np.shape(a))
        return real(a)
    monkeypatch.setattr(torch, "from_numpy", spy)
    clf.fit(X, y)
    fit_batches = [s for s in shapes if len(s) == 3]
    risk = clf.predict_proba_over_time(X)
    inputs = [s for s in shapes if len(s) == 3]
    assert len(fit_batches) >= n * 0.85 // 32 and len(inputs) > len(fit_batches)
    assert max(s[0] for s in fit_batches) <= 1024 and max(s[0] for s in inputs) <= 1024 < n
    assert risk.shape == (n, T) and np.isfinite(risk).all()


def test_check_sequences_keeps_a_memmap_and_checks_it_in_blocks(tmp_path, monkeypatch):
    X = _memmap_sequences(tmp_path / "X.npy", 200)
    assert np.shares_memory(check_sequences(X), X)         # no copy of the array on disk
    monkeypatch.setattr(base_mod, "_CHECK_VALUES", 40)     # 2 patients per block
    bad = np.array(X)
    bad[-1, -1, -1] = np.nan                               # only in the last block
    with pytest.raises(ValueError, match="NaN"):
        check_sequences(bad)
    np.testing.assert_array_equal(check_sequences(X), X)


# -- (c) the real PhysioNet 2012 set A: same features and the same quick GRU risks ---------------------
@pytest.mark.slow  # real data
@pytest.mark.real
def test_set_a_out_of_core_matches_in_memory(work_root, monkeypatch):
    if not (DATA / "set-a.csv.gz").exists() or not (DATA / "outcomes-a.csv").exists():
        pytest.skip("../shared/data/physionet2012 not found: the real-data tests need the shared PhysioNet "
                    "sample beside the repo")
    from core.data.ingest import validate_data
    cohort, report = validate_data(DATA / "set-a.csv.gz", DATA / "outcomes-a.csv",
                                   config=DataConfig(target="in_hospital_death"))
    assert report.ok and cohort.n_patients == 4000
    splits = split_by_patient(cohort, SplitConfig(random_state=0))
    specs = [registry.get(n) for n in ("lr", "gru")]
    runs = {}
    for limit in ("1024", "0"):
        monkeypatch.setenv(FEATURES_IN_MEMORY_ENV, limit)
        runs[limit] = run_protocol(cohort, specs, splits, features=FeatureConfig(window_hours=48), evaluation=NO_CI,
                                   preset="quick", random_state=0)
    in_memory, on_disk = runs["1024"], runs["0"]
    assert isinstance(on_disk.features["train"].X_seq, np.memmap) and not _work_folders(work_root)
    for split in ("train", "validation", "test"):
        _assert_same_features(in_memory.features[split], on_disk.features[split])
    for name in ("lr", "gru"):
        np.testing.assert_allclose(on_disk.test[name].y_proba, in_memory.test[name].y_proba, rtol=0, atol=1e-6)
    assert in_memory.test["gru"].metrics["auroc"] > 0.75


def test_forest_fits_a_read_only_table_with_missing_values():
    """scikit-learn 1.9's forest refuses a read-only array holding NaN; an out-of-core (memory-mapped) table is one."""
    import numpy as np
    from types import SimpleNamespace

    from core.models import registry
    from core.training.protocol import fit_model
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    X[::5, 1] = np.nan
    X.setflags(write=False)
    y = np.r_[np.zeros(60, int), np.ones(60, int)]
    fs = SimpleNamespace(online=False, get=lambda kind: X)
    model = fit_model(registry.get("rf").make(preset="test", random_state=0, task="online"), registry.get("rf"), fs, y)
    assert model.predict_proba(X).shape == (120, 2)
