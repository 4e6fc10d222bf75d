"""Benchmark: the seven-model comparison on PhysioNet 2012 set A, local vs Ray backend; cancel latency.

Usage (from the repository root; run nothing else heavy meanwhile)::

    .venv/bin/python bench/bench_engine.py                  # full + quick, local + Ray, cancel
    .venv/bin/python bench/bench_engine.py --preset quick   # one preset

Every measurement runs in its own process. Prints, and writes to ``bench/results_engine.json``:

* wall time of ``run_experiment`` (split, features, 7 fits, thresholds, bootstrap CIs) on the local
  backend and on a private Ray instance with 2 CPUs, with 2 threads per fit (Ray runs one fit at a
  time) and with 1 thread per fit (Ray runs two side by side), Ray's start-up time separately;
* each fit's seconds, their sum and the critical path (the slowest single fit): with enough CPUs a
  Ray comparison takes about features + critical path + scoring, which is the speed-up on paper;
* whether Ray's test risks equal the local ones (same thread count: bit for bit);
* cancel latency, local and Ray: a job training the full GRU and LSTM is cancelled after 10 s of
  running; seconds from ``cancel()`` until its worker process no longer exists (its CPU is free), and
  whether any Ray worker is left behind.

Targets (issue 8, 2-core box): full <= 45 s and quick <= 12 s wall; Ray within 1.3x of local;
a cancelled job frees its CPU within 5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "physionet2012"
OUT = ROOT / "bench" / "results_engine.json"
MODELS = ("lr", "svm", "rf", "gbm", "rnn", "lstm", "gru")


def _load():
    from core.config import DataConfig
    from core.data.ingest import load_cohort
    return load_cohort(DATA / "set-a.csv.gz", DATA / "outcomes-a.csv", config=DataConfig(target="in_hospital_death"))


def worker(preset: str, backend: str, threads: int | None) -> dict:
    """One comparison in this process; returns timings, per-fit seconds and the test risks' digest."""
    import hashlib

    import numpy as np

    from core.training.engine import BackendConfig, make_backend
    from core.training.experiment import run_experiment
    cohort = _load()
    engine = make_backend(BackendConfig(name=backend, num_cpus=2 if backend == "ray" else None, threads=threads))
    start_s = 0.0
    if backend == "ray":
        t = time.perf_counter()
        engine.start()                     # start the private instance outside the timed comparison
        start_s = time.perf_counter() - t
    t = time.perf_counter()
    res = run_experiment(cohort, MODELS, preset=preset, random_state=0, backend=engine)
    wall = time.perf_counter() - t
    digest = hashlib.sha256(b"".join(np.asarray(res.test[n].y_proba, dtype=np.float64).tobytes()
                                     for n in MODELS)).hexdigest()[:16]
    fits = {n: round(float(s), 2) for n, s in res.train_seconds.items()}
    return {"preset": preset, "backend": backend, "threads_per_fit": engine.threads(), "ray_start_seconds":
            round(start_s, 2), "wall_seconds": round(wall, 2), "fit_seconds": fits,
            "fit_seconds_sum": round(sum(fits.values()), 2), "critical_path_seconds": max(fits.values()),
            "auroc": {n: round(float(res.test[n].metrics["auroc"]), 4) for n in MODELS}, "risk_digest": digest}


def _ray_workers() -> int:
    out = subprocess.run(["pgrep", "-fc", "ray/_private/workers/default_worker"], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def cancel_worker(backend: str) -> dict:
    """Seconds from cancel() to the worker process being gone, for a job 10 s into full GRU + LSTM fits;
    with Ray, also whether any Ray worker process is left 3 s later."""
    from core.training.engine import BackendConfig
    from core.service.jobs import JobManager
    cohort = _load()
    jobs = JobManager(slots=1)
    try:
        jid = jobs.submit("train", cohort, {"models": ["gru", "lstm"], "preset": "full",
                                            "runs_dir": "/tmp/bench_engine_runs", "name": f"cancelled-{backend}",
                                            "backend": BackendConfig(backend, num_cpus=2 if backend == "ray" else None)})
        while jobs.get(jid).message in ("waiting for a free worker", "starting a worker"):
            time.sleep(0.1)
        time.sleep(10)
        pid = jobs.get(jid).pid
        before = jobs.get(jid).message
        t = time.perf_counter()
        jobs.cancel(jid)
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        gone = time.perf_counter() - t
        info = jobs.wait(jid, 10)
        time.sleep(3)
        return {"backend": backend, "running_message_at_cancel": before, "seconds_until_worker_gone": round(gone, 2),
                "state": info.state, "ray_workers_left_3s_later": _ray_workers(),
                "run_folder_left": Path(f"/tmp/bench_engine_runs/cancelled-{backend}").exists()}
    finally:
        jobs.shutdown()


def _run(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=["quick", "full"], action="append")
    ap.add_argument("--worker", nargs=3, metavar=("PRESET", "BACKEND", "THREADS"))
    ap.add_argument("--cancel-worker", choices=["local", "ray"])
    args = ap.parse_args()
    if args.worker:
        p, b, t = args.worker
        print(json.dumps(worker(p, b, None if t == "auto" else int(t))))
        return
    if args.cancel_worker:
        print(json.dumps(cancel_worker(args.cancel_worker)))
        return
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found: this benchmark needs ../shared/data/physionet2012 beside the repo.")
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                           "load_average_at_start": os.getloadavg()}, "presets": {}}
    for preset in args.preset or ["full", "quick"]:
        # threads pinned: the load-aware default would depend on what ran just before
        runs = {"local": _run(["--worker", preset, "local", "2"]),
                "ray": _run(["--worker", preset, "ray", "2"]),
                "local_1_thread_per_fit": _run(["--worker", preset, "local", "1"]),
                "ray_1_thread_per_fit": _run(["--worker", preset, "ray", "1"])}
        loc, ray = runs["local"], runs["ray"]
        runs["ray_over_local"] = round(ray["wall_seconds"] / loc["wall_seconds"], 3)
        runs["ray_matches_local"] = ray["risk_digest"] == loc["risk_digest"]
        runs["ray_matches_local_1_thread"] = (runs["ray_1_thread_per_fit"]["risk_digest"]
                                              == runs["local_1_thread_per_fit"]["risk_digest"])
        # on paper, with one CPU per fit: features + scoring (local wall - fit sum) + the slowest fit
        runs["paper_wall_seconds_enough_cpus"] = round(loc["wall_seconds"] - loc["fit_seconds_sum"]
                                                       + loc["critical_path_seconds"], 2)
        results["presets"][preset] = runs
        print(f"{preset}: local {loc['wall_seconds']:.1f} s (fits {loc['fit_seconds_sum']:.1f} s, slowest "
              f"{loc['critical_path_seconds']:.1f} s), Ray {ray['wall_seconds']:.1f} s (+{ray['ray_start_seconds']:.1f} s "
              f"start; {runs['ray_over_local']:.2f}x local; same risks: {runs['ray_matches_local']}); 1 thread per fit: "
              f"local {runs['local_1_thread_per_fit']['wall_seconds']:.1f} s, Ray "
              f"{runs['ray_1_thread_per_fit']['wall_seconds']:.1f} s (same risks: "
              f"{runs['ray_matches_local_1_thread']}); with a CPU per fit (paper) "
              f"{runs['paper_wall_seconds_enough_cpus']:.1f} s", flush=True)
    results["cancel"] = {b: _run(["--cancel-worker", b]) for b in ("local", "ray")}
    for b, c in results["cancel"].items():
        print(f"cancel ({b}): worker gone {c['seconds_until_worker_gone']:.2f} s after cancel() (state {c['state']}, "
              f"run folder left: {c['run_folder_left']}, Ray workers left: {c['ray_workers_left_3s_later']})")
    results["machine"]["load_average_at_end"] = os.getloadavg()
    OUT.write_text(json.dumps(results, indent=1))
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
