"""core.training.engine: the Ray backend gives the same numbers as the local one (a local Ray, 2 CPUs, started here)."""
from __future__ import annotations

import numpy as np
import pytest

from core.config import EvaluationConfig, FeatureConfig
from core.training.engine import BackendConfig, LocalBackend, make_backend
from core.training.experiment import cross_validate, run_experiment
from core.training.threads import current_limit, limit_threads
from core.analysis.timeorder import TimeOrderConfig, run_timeorder
from tests.helpers.cohorts import make_planted_order_cohort, make_tiny_cohort

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_backend():
    ray = pytest.importorskip("ray", reason="ray is in requirements.txt; install it to test the Ray backend")
    backend = make_backend(BackendConfig("ray", num_cpus=2))
    yield backend
    ray.shutdown()


def _same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name].y_proba, b[name].y_proba, err_msg=name)
        assert a[name].threshold == b[name].threshold
        assert a[name].metrics.keys() == b[name].metrics.keys()
        np.testing.assert_array_equal(list(a[name].metrics.values()), list(b[name].metrics.values()))  # NaN == NaN


def test_comparison_and_refit_match_on_both_backends(ray_backend):
    cohort = make_tiny_cohort(80, seed=6)
    names = ["lr", "svm", "rf", "gbm", "gru", "grud"]
    local = run_experiment(cohort, names, preset="test", refit=True)
    ray = run_experiment(cohort, names, preset="test", refit=True, backend=ray_backend)
    _same(local.test, ray.test)
    _same(local.validation, ray.validation)
    assert [c.to_dict() for c in local.comparisons] == [c.to_dict() for c in ray.comparisons]
    fs = local.builder.transform(cohort, local.splits["test"])
    for name in ("lr", "gbm", "gru"):
        kind = "sequence" if name == "gru" else "tabular"
        np.testing.assert_array_equal(local.refit[name].predict_proba(fs.get(kind)),
                                      ray.refit[name].predict_proba(fs.get(kind)))


def test_cross_validation_matches_on_both_backends(ray_backend):
    cohort = make_tiny_cohort(90, seed=7)
    a = cross_validate(cohort, ["lr", "gru"], preset="test", n_folds=3)
    b = cross_validate(cohort, ["lr", "gru"], preset="test", n_folds=3, backend=ray_backend)
    cols = [c for c in a.columns if c != "train_seconds"]
    assert a[cols].equals(b[cols])


def test_time_order_matches_on_both_backends(ray_backend):
    cohort = make_planted_order_cohort(160)
    config = TimeOrderConfig(models=("lr", "gru"), horizons_hours=(6,), preset="test",
                             features=FeatureConfig(window_hours=12), evaluation=EvaluationConfig(n_bootstrap=50))
    a = run_timeorder(cohort, config)
    b = run_timeorder(cohort, config, backend=ray_backend)
    assert a.to_dict()["ablation"] == b.to_dict()["ablation"]
    assert a.horizons.drop(columns="train_seconds").equals(b.horizons.drop(columns="train_seconds"))


def test_local_backend_reports_progress_in_order_and_honours_the_thread_limit():
    seen = []

    def task(item, progress, payload):
        progress("half", 0.5)
        return item * payload, current_limit()
    out = LocalBackend(BackendConfig(threads=1)).map(task, [1, 2], [0, 0], {0: 10},
                                                     progress=lambda m, f: seen.append(f))
    assert out == [(10, 1), (20, 1)]
    assert seen == [0.25, 0.75]


def test_backend_config_is_checked():
    with pytest.raises(ValueError, match="backend must be one of"):
        BackendConfig("spark")
    with pytest.raises(ValueError, match="threads"):
        BackendConfig("ray", threads=0)
    assert "cluster at ray://h:1" in BackendConfig("ray", address="ray://h:1").describe()


def test_thread_limits_nest_and_restore():
    import torch
    from threadpoolctl import threadpool_info
    before = torch.get_num_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1 and current_limit() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
        with limit_threads():                     # inner default: the enclosing limit
            assert current_limit() == 1
    assert torch.get_num_threads() == before and current_limit() is None
    with pytest.raises(ValueError, match="at least 1"):
        with limit_threads(0):
            pass


def test_explanations_match_on_both_backends(ray_backend):
    """One model's explanation computed in a Ray task gives the same attributions as here (one task per model)."""
    from core.analysis.explain import explain_models

    def _explain_one(name, progress, payload):      # a closure: Ray ships it by value
        fitted, data, ids, hour = payload
        return explain_models(fitted, [name], data, ids, hour=hour)
    cohort = make_tiny_cohort(70, seed=9)
    res = run_experiment(cohort, ["lr", "gbm", "gru"], preset="test")
    payload = {0: (res.fitted, cohort, list(res.splits["test"][:8]), None)}
    names = ["lr", "gbm", "gru"]
    a = LocalBackend(BackendConfig(threads=1)).map(_explain_one, names, [0] * 3, payload)
    b = ray_backend.map(_explain_one, names, [0] * 3, payload)
    for (ra,), (rb,) in zip(a, b):
        assert ra.model_name == rb.model_name
        np.testing.assert_array_equal(ra.attributions, rb.attributions)


def test_ray_forwards_the_progress_of_every_fit(ray_backend):
    """Fits on Ray report as they run (tree batches, the scoring, done), not only when they finish."""
    from core.config import FeatureConfig
    from core.models import registry
    from core.models.staged import FitMessage, FitPlan
    from core.training.protocol import run_protocol, split_by_patient
    cohort = make_tiny_cohort(60, seed=2)
    seen = []
    run_protocol(cohort, [registry.get(n) for n in ("lr", "rf")], split_by_patient(cohort),
                 features=FeatureConfig(window_hours=6), preset="test", backend=ray_backend,
                 progress=lambda m, f: seen.append((m, f)))
    fractions = [f for _, f in seen]
    assert isinstance(seen[0][0], FitPlan) and fractions == sorted(fractions) and fractions[-1] == 1.0
    details = {}
    for m, _ in seen:
        if isinstance(m, FitMessage):
            details.setdefault(m.title, []).append(m.detail)
    assert set(details) == {"logistic regression", "random forest"}
    assert all(d[0] == "training" and d[-1].startswith("done in") for d in details.values())
    assert any(d.startswith("trees ") for d in details["random forest"])

    def _silent(item, progress, payload):           # a task that says nothing by itself: its heartbeat does
        import time

        from core.models.staged import heartbeat
        with heartbeat(progress, interval=0.05):
            time.sleep(0.5)
        return item
    beats = []
    assert ray_backend.map(_silent, [1, 2], [0, 0], {0: None}, progress=lambda m, f: beats.append(str(m))) == [1, 2]
    assert sum(m.startswith("fitting, ") for m in beats) >= 2


def _listening(pids: set) -> list[str]:
    """``"ip:port"`` of every TCP socket in LISTEN state held by one of ``pids`` (Linux /proc, no dependency)."""
    import ipaddress
    import os
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:                    # the process ended meanwhile
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] != "0A" or cols[9] not in inodes:        # 0A: LISTEN
                    continue
                raw, port = cols[1].split(":")
                packed = bytes.fromhex(raw)
                # /proc prints the address as native-endian 32-bit words
                packed = b"".join(packed[i:i + 4][::-1] for i in range(0, len(packed), 4))
                out.append(f"{ipaddress.ip_address(packed)}:{int(port, 16)}")
    return out


def _loopback(ip) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)              # ::ffff:127.0.0.1 is IPv4's loopback seen from IPv6
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _descendants(pid: int) -> set:
    import os
    children: dict = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(p))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/net"), reason="reads sockets from /proc (Linux)")
def test_the_private_ray_instance_listens_on_loopback_only(ray_backend):
    """Every port of the private Ray instance (GCS, raylet, object manager, workers, agents) is on 127.0.0.1,
    even though ray was imported before it started (the fixture's importorskip)."""
    import ipaddress
    import os
    ray = ray_backend.start()
    ray.get(ray.remote(lambda: 1).remote())              # a worker process is up too
    ports = _listening(_descendants(os.getpid()) | {os.getpid()})
    assert ports, "found no Ray port to check"
    wide = [p for p in ports if not _loopback(ipaddress.ip_address(p.rsplit(":", 1)[0]))]
    assert not wide, f"Ray listens beyond this machine: {wide} (all: {ports})"


def test_the_servers_backend_comes_from_its_environment_only(monkeypatch):
    from core.training.engine import BackendError, configured_backend
    for name in ("CHRONOSCOPE_BACKEND", "CHRONOSCOPE_RAY_ADDRESS", "CHRONOSCOPE_RAY_CPUS"):
        monkeypatch.delenv(name, raising=False)
    assert configured_backend() == BackendConfig("local")
    monkeypatch.setenv("CHRONOSCOPE_BACKEND", " Ray ")
    monkeypatch.setenv("CHRONOSCOPE_RAY_CPUS", "4")
    assert configured_backend() == BackendConfig("ray", num_cpus=4)
    assert "127.0.0.1 only" in configured_backend().describe()
    monkeypatch.setenv("CHRONOSCOPE_RAY_ADDRESS", "head-node:6379")
    assert configured_backend().address == "head-node:6379"
    assert "head-node" not in configured_backend().describe(show_address=False)
    monkeypatch.setenv("CHRONOSCOPE_RAY_CPUS", "many")
    with pytest.raises(BackendError, match="CHRONOSCOPE_RAY_CPUS='many'"):
        configured_backend()
