"""Benchmark: how time and peak memory grow with the cohort, 1k to 256k generated stays, per stage.

Usage (from the repository root)::

    .venv/bin/python bench/bench_scale.py                          # 1k, 4k, 16k, 64k, 256k stays
    .venv/bin/python bench/bench_scale.py --sizes 1000,4000        # a quick check
    .venv/bin/python bench/bench_scale.py --sizes 64000 --keep     # adds 64k to the earlier results

**Cohorts.** Distinct random patients, not copies: :func:`core.data.demo.generate_demo_cohort` (~317
long-format rows per stay) is called in chunks of ``--chunk`` patients (default 4,000), each with its
own seed (``--seed`` + chunk number) and a chunk prefix on the ids (``S000-D00001``), and appended to
one ``events.csv`` and ``outcomes.csv`` in ``--work-dir/stays_N/`` (default
``$CHRONOSCOPE_TMP_DIR/chronoscope-bench-scale``, else the system temp folder). At most one chunk
is in memory at a time. A ``cohort.json`` marker written after the files records size, chunk, seed,
rows and bytes; a later run with the same request reuses those files. Without ``--keep`` each size's
folder (cohort, run, predictions) is deleted once it has been measured (256k stays is ~2 GB of CSV).

**Stages**, each in a fresh child process of this script, one after another:

1. ``validate``: ``python -m core validate EVENTS --labels OUTCOMES --target in_hospital_death --json``;
2. ``features``: there is no CLI for feature building alone, so this script's hidden ``--worker-features``
   mode loads the cohort (:func:`core.data.ingest.load_cohort`), splits it (:func:`core.training.protocol.split_by_patient`,
   the training command's seed-0 split), fits :class:`core.features.FeatureBuilder` on the training
   patients and transforms every split, as the training protocol does. The stage's time is the fit +
   transform alone (measured inside the child, without start-up and load); its memory is the child's peak
   (the loaded cohort included), and the increase over the peak after loading is stored too;
3. ``train``: ``python -m core train ... --preset quick --models lr,gbm,gru --out WORK/run`` (no
   ``--reuse``: every run trains; the default 1,000 bootstrap resamples of the test metrics included);
4. ``predict``: ``python -m core predict WORK/run EVENTS --out WORK/predictions.csv`` (every stay).

**Peak memory** is the peak resident set (``ru_maxrss``) of the stage's own child: this script starts the
child with ``subprocess.Popen`` and reaps it with ``os.wait4(pid)``, which returns that child's resource
usage alone (not the maximum over every child so far, as ``RUSAGE_CHILDREN`` would). The CLI's local
backend runs in one process (threads only), so that peak is the stage's; a stage that forked workers would
be reported as its largest process, not their sum. Wall time is measured around the child; CPU seconds
(user + system) come from the same rusage. ``CHRONOSCOPE_THREADS`` is removed from the children's
environment, so the product picks its own thread count (at most 2, fewer on a busy machine:
:mod:`core.training.threads`); the core count and load averages are recorded.

A failed stage (non-zero exit, killed for memory, past ``--timeout``) is recorded with its exit code and
the last lines of its stderr; the benchmark goes on (``predict`` is skipped when ``train`` failed).

**Growth exponent**: the least-squares slope of log(seconds) on log(stays) per stage, and of log(peak RSS),
over sizes >= 4,000 stays. Below that every stage is dominated by costs that do not grow with the cohort:
starting Python and importing pandas, scikit-learn and torch (seconds, and ~hundreds of MB of RSS, the
``startup`` line), so including 1k would flatten the slopes. An exponent near 1 is linear growth.

Writes ``bench/results_scale.json`` (merged per size: a run of ``--sizes 64000`` adds to earlier
sizes; exponents are refitted over everything stored) and ``bench/scale.png`` (time and peak memory
against stays, log-log, with the targets: validate <= 15 s and <= 2 GB at 100,000 stays, quick training
<= 3 GB).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results_scale.json"
PLOT = ROOT / "bench" / "scale.png"
DEFAULT_SIZES = (1000, 4000, 16000, 64000, 256000)
STAGES = ("validate", "features", "train", "predict")
TARGET = "in_hospital_death"
MODELS = "lr,gbm,gru"
#: the smallest cohort the exponents are fitted on (smaller ones are start-up cost, see the docstring).
MIN_FIT_STAYS = 4000
TARGETS = {"validate_seconds_at_100k": 15.0, "validate_peak_rss_mb_at_100k": 2048.0,
           "train_quick_peak_rss_mb": 3072.0}
STDERR_LINES = 15
#: the imports a stage pays before any work: the start-up baseline of every stage.
STARTUP_CODE = "import pandas, sklearn, torch, core.cli, core.data.ingest, core.training.experiment, core.runs.store"


# -- pure helpers ---------------------------------------------------------------------------------
def fit_exponent(stays, values, min_stays: int = MIN_FIT_STAYS) -> float | None:
    """Least-squares slope of log(value) on log(stays), over the points with ``stays >= min_stays``.

    Points with a missing or non-positive value (a failed stage) are left out. Returns ``None``
    with fewer than two distinct sizes left.

    Examples
    --------
    >>> round(fit_exponent([1000, 4000, 16000, 64000], [1.0, 2.0, 8.0, 32.0]), 3)
    1.0
    """
    pts = [(math.log(n), math.log(v)) for n, v in zip(stays, values)
           if n >= min_stays and v is not None and v > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def chunk_sizes(n_stays: int, chunk: int) -> list[int]:
    """Patients per generated chunk: full chunks, then the remainder.

    Examples
    --------
    >>> chunk_sizes(9000, 4000)
    [4000, 4000, 1000]
    """
    if n_stays < 1 or chunk < 1:
        raise ValueError(f"n_stays and chunk must be positive integers; got {n_stays!r} and {chunk!r}. "
                         "Example: --sizes 1000,4000 --chunk 4000.")
    return [min(chunk, n_stays - start) for start in range(0, n_stays, chunk)]


def generate_chunk(index: int, n_patients: int, seed: int):
    """One chunk of distinct demo patients: ``(events, outcomes)`` with ids prefixed ``S{index:03d}-``."""
    from core.data.demo import generate_demo_cohort
    events, outcomes = generate_demo_cohort(n_patients=n_patients, seed=seed + index)
    prefix = f"S{index:03d}-"
    events["patient_id"] = prefix + events["patient_id"].astype(str)
    outcomes["patient_id"] = prefix + outcomes["patient_id"].astype(str)
    return events, outcomes


def cohort_marker(n_stays: int, chunk: int, seed: int) -> dict:
    """What a generated cohort must match to be reused (rows and bytes are added once written)."""
    return {"stays": n_stays, "chunk": chunk, "seed": seed, "generator": "core.data.demo.generate_demo_cohort",
            "id_prefix": "S{i:03d}-", "format": "csv"}


def write_cohort(folder: Path, n_stays: int, chunk: int = 4000, seed: int = 0) -> dict:
    """Write (or reuse) ``folder/events.csv`` and ``folder/outcomes.csv`` of ``n_stays`` distinct stays.

    Returns the marker (``cohort.json``): size, chunk, seed, ``rows``, ``events_bytes``,
    ``generate_seconds`` and ``reused``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    events, outcomes, marker_path = folder / "events.csv", folder / "outcomes.csv", folder / "cohort.json"
    want = cohort_marker(n_stays, chunk, seed)
    if marker_path.is_file() and events.is_file() and outcomes.is_file():
        have = json.loads(marker_path.read_text())
        if {k: have.get(k) for k in want} == want and have.get("events_bytes") == events.stat().st_size:
            return have | {"reused": True}
    marker_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    rows, parts = 0, (folder / "events.csv.part", folder / "outcomes.csv.part")
    for i, n in enumerate(chunk_sizes(n_stays, chunk)):
        ev, out = generate_chunk(i, n, seed)
        ev.to_csv(parts[0], mode="a" if i else "w", header=not i, index=False, float_format="%.10g")
        out.to_csv(parts[1], mode="a" if i else "w", header=not i, index=False)
        rows += len(ev)
        del ev, out
    parts[0].replace(events)
    parts[1].replace(outcomes)
    marker = want | {"rows": rows, "events_bytes": events.stat().st_size,
                     "generate_seconds": round(time.perf_counter() - t0, 1)}
    marker_path.write_text(json.dumps(marker, indent=2))
    return marker | {"reused": False}


def merge_results(old: dict | None, sizes: dict, machine: dict) -> dict:
    """Earlier results with ``sizes`` (``{"4000": {...}}``) replacing theirs; exponents refitted over all."""
    merged = {"sizes": dict((old or {}).get("sizes", {}))}
    merged["sizes"].update(sizes)
    merged["sizes"] = dict(sorted(merged["sizes"].items(), key=lambda kv: int(kv[0])))
    merged["machine"] = machine
    merged["targets"] = TARGETS
    merged["exponents"] = exponents(merged["sizes"])
    merged["target_checks"] = target_checks(merged["sizes"])
    return merged


def _series(sizes: dict, stage: str, key: str) -> tuple[list, list]:
    ns, vs = [], []
    for entry in sizes.values():
        r = entry["stages"].get(stage) or {}
        if r.get("ok"):
            ns.append(entry["stays"])
            vs.append(r.get(key))
    return ns, vs


def exponents(sizes: dict) -> dict:
    """Per stage: growth exponents of time and peak memory (sizes >= MIN_FIT_STAYS), and the sizes used."""
    out = {}
    for stage in STAGES:
        ns, ts = _series(sizes, stage, "seconds")
        _, ms = _series(sizes, stage, "peak_rss_mb")
        used = sorted(n for n in ns if n >= MIN_FIT_STAYS)
        out[stage] = {"time": _round(fit_exponent(ns, ts), 3), "memory": _round(fit_exponent(ns, ms), 3),
                      "sizes_used": used,
                      # for context only: with the start-up-dominated small sizes (flatter, see the docstring)
                      "time_all_sizes": _round(fit_exponent(ns, ts, min_stays=0), 3),
                      "memory_all_sizes": _round(fit_exponent(ns, ms, min_stays=0), 3)}
    return out


def _at(ns: list, vs: list, n: float) -> float | None:
    """Log-log interpolation at ``n`` between the measured sizes around it (None when not bracketed)."""
    pts = sorted((a, b) for a, b in zip(ns, vs) if b)
    for (n0, v0), (n1, v1) in zip(pts, pts[1:]):
        if n0 <= n <= n1:
            w = (math.log(n) - math.log(n0)) / (math.log(n1) - math.log(n0)) if n1 > n0 else 0.0
            return math.exp(math.log(v0) + w * (math.log(v1) - math.log(v0)))
    return next((v for a, v in pts if a == n), None)


def target_checks(sizes: dict) -> dict:
    """The targets against the measured (or log-log interpolated) numbers; None where not measured."""
    ns, ts = _series(sizes, "validate", "seconds")
    _, ms = _series(sizes, "validate", "peak_rss_mb")
    t100, m100 = _at(ns, ts, 100_000), _at(ns, ms, 100_000)
    tn, tm = _series(sizes, "train", "peak_rss_mb")
    within = [n for n, m in zip(tn, tm) if m <= TARGETS["train_quick_peak_rss_mb"]]
    return {"validate_seconds_at_100k": _round(t100, 2), "validate_peak_rss_mb_at_100k": _round(m100, 1),
            "validate_at_100k_ok": None if t100 is None or m100 is None else
            bool(t100 <= TARGETS["validate_seconds_at_100k"] and m100 <= TARGETS["validate_peak_rss_mb_at_100k"]),
            "train_quick_peak_rss_mb_max": _round(max(tm), 1) if tm else None,
            "train_quick_largest_stays_within_3gb": max(within) if within else None,
            "note": "at 100k: log-log interpolation between the measured sizes around it (64k and 256k)"}


def _round(v, nd):
    return None if v is None else round(v, nd)


# -- measuring ------------------------------------------------------------------------------------
def child_env() -> dict:
    """The environment of every stage: ours without CHRONOSCOPE_THREADS (the product's own thread rule)."""
    env = dict(os.environ)
    env.pop("CHRONOSCOPE_THREADS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def run_stage(cmd: list[str], log_stem: Path, timeout_s: float) -> dict:
    """Run ``cmd`` as one fresh child; wall seconds, CPU seconds, peak RSS (``os.wait4``), exit code.

    stdout/stderr go to ``log_stem.out``/``.err`` (files, so a chatty child never blocks on a pipe).
    Past ``timeout_s`` the child's process group is killed and the stage is recorded as timed out.
    """
    out_path, err_path = log_stem.with_suffix(".out"), log_stem.with_suffix(".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=out, stderr=err, start_new_session=True)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout_s:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc                      # reaped here: Popen must not wait for it again
    res = {"ok": rc == 0 and not timed_out, "exit_code": rc, "wall_seconds": round(wall, 2),
           "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
           "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}          # Linux: KiB
    if timed_out:
        res["timed_out"] = True
    if rc < 0:
        res["signal"] = signal.Signals(-rc).name
    if not res["ok"]:
        res["stderr_tail"] = err_path.read_text(errors="replace").splitlines()[-STDERR_LINES:]
    res["stdout"] = out_path.read_text(errors="replace")
    return res


def _json_prefix(text: str) -> dict | None:
    """The JSON object at the start of ``text`` (validate --json prints it, then a result line)."""
    try:
        return json.JSONDecoder().raw_decode(text.lstrip())[0]
    except ValueError:
        return None


def _last_json_line(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def features_worker(events: str, outcomes: str) -> dict:
    """In this process: load, split as ``train`` does, fit FeatureBuilder on train, transform every split."""
    import resource

    from core.config import DataConfig, SplitConfig
    from core.training.experiment import default_features
    from core.features import FeatureBuilder
    from core.data.ingest import load_cohort
    from core.training.protocol import split_by_patient

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t0 = time.perf_counter()
    cohort = load_cohort(events, outcomes, config=DataConfig(target=TARGET))
    load_s, rss_load = time.perf_counter() - t0, rss_mb()
    splits = split_by_patient(cohort, SplitConfig(random_state=0))
    t = time.perf_counter()
    builder = FeatureBuilder(default_features(cohort)).fit(cohort, splits["train"])
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    fsets = {k: builder.transform(cohort, v) for k, v in splits.items()}
    transform_s = time.perf_counter() - t
    return {"load_seconds": round(load_s, 2), "fit_seconds": round(fit_s, 2),
            "transform_seconds": round(transform_s, 2), "seconds": round(fit_s + transform_s, 2),
            "rss_after_load_mb": round(rss_load, 1), "peak_rss_mb": round(rss_mb(), 1),
            "feature_rss_increase_mb": round(rss_mb() - rss_load, 1),
            "train_stays": len(splits["train"]), "transformed_stays": sum(len(v) for v in splits.values()),
            "shape_seq_train": list(fsets["train"].X_seq.shape), "shape_tab_train": list(fsets["train"].X_tab.shape)}


def measure_size(n: int, work: Path, args) -> dict:
    """Generate (or reuse) the cohort of ``n`` stays and run the four stages on it."""
    folder = work / f"stays_{n}"
    t0 = time.perf_counter()
    marker = write_cohort(folder, n, chunk=args.chunk, seed=args.seed)
    print(f"\n== {n:,} stays: {marker['rows']:,} rows, {marker['events_bytes'] / 1e6:.0f} MB CSV "
          f"({'reused' if marker['reused'] else f'generated in {time.perf_counter() - t0:.1f} s'})", flush=True)
    events, outcomes = str(folder / "events.csv"), str(folder / "outcomes.csv")
    run_dir, preds = folder / "run", folder / "predictions.csv"
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    py = sys.executable
    cmds = {
        "validate": [py, "-m", "core", "validate", events, "--labels", outcomes, "--target", TARGET, "--json"],
        "features": [py, str(Path(__file__).resolve()), "--worker-features", events, outcomes],
        "train": [py, "-m", "core", "train", events, "--labels", outcomes, "--target", TARGET, "--preset", "quick",
                  "--models", MODELS, "--seed", "0", "--out", str(run_dir), "--no-progress"],
        "predict": [py, "-m", "core", "predict", str(run_dir), events, "--out", str(preds)],
    }
    shutil.rmtree(run_dir, ignore_errors=True)
    preds.unlink(missing_ok=True)
    entry = {"stays": n, "rows": marker["rows"], "events_csv_mb": round(marker["events_bytes"] / 1e6, 1),
             "cohort": {k: marker.get(k) for k in ("chunk", "seed", "generator", "generate_seconds")},
             "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "load_average_at_start": [round(v, 2) for v in os.getloadavg()], "stages": {}}
    for stage, cmd in cmds.items():
        if stage == "predict" and not entry["stages"]["train"]["ok"]:
            entry["stages"][stage] = {"ok": False, "skipped": "train failed"}
            continue
        print(f"  {stage} ...", end="", flush=True)
        r = run_stage(cmd, logs / stage, args.timeout)
        stdout = r.pop("stdout")
        r["command"] = " ".join(Path(c).name if c == py else c for c in cmd)
        r["seconds"] = r["wall_seconds"]
        if stage == "validate" and (rep := _json_prefix(stdout)):
            r["rows_read"], r["report_ok"] = rep.get("rows_read"), rep.get("ok")
        elif stage == "features" and r["ok"]:
            inner = _last_json_line(stdout) or {}
            r.update({k: v for k, v in inner.items() if k != "peak_rss_mb"})
            r["seconds"] = inner.get("seconds", r["wall_seconds"])   # fit + transform alone (no start-up, no load)
        elif stage == "train" and r["ok"] and (run_dir / "metrics.json").is_file():
            met = json.loads((run_dir / "metrics.json").read_text()).get("models", {})
            r["models"] = {m: {"train_seconds": _round(v.get("train_seconds"), 2), "auroc": _round(v.get("auroc"), 4)}
                           for m, v in met.items()}
        elif stage == "predict" and r["ok"] and preds.is_file():
            with open(preds) as f:
                r["prediction_rows"] = sum(1 for _ in f) - 1
        r["patients_per_second"] = round(n / r["seconds"], 1) if r["ok"] and r["seconds"] > 0 else None
        r["mb_per_patient"] = round(r["peak_rss_mb"] / n, 4) if r["ok"] else None
        entry["stages"][stage] = r
        print(f" {'ok' if r['ok'] else 'FAILED (exit ' + str(r['exit_code']) + ')'} {r['seconds']:.1f} s, "
              f"{r['peak_rss_mb']:.0f} MB", flush=True)
        if not r["ok"]:
            print("    " + "\n    ".join(r.get("stderr_tail", [])), flush=True)
    entry["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return entry


def machine_info() -> dict:
    """Cores, RAM, Python and library versions, the commit, and the start-up baseline of a stage."""
    from core.training.threads import cpu_count, thread_count

    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        # the stages run the working tree: name what differs from the commit (others' unfinished edits)
        changed = subprocess.run(["git", "status", "--porcelain", "--", "core", "app"], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        commit, changed = None, []
    with tempfile.TemporaryDirectory() as tmp:
        startup = run_stage([sys.executable, "-c", STARTUP_CODE], Path(tmp) / "startup", 300)
    return {"cpus": os.cpu_count(), "cpus_usable": cpu_count(), "threads_per_fit_now": thread_count(),
            "chronoscope_threads": "unset (removed from the stages' environment)",
            "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "packages": {p: version(p) for p in ("duckdb", "pandas", "numpy", "pyarrow", "scikit-learn",
                                                 "lightgbm", "torch")},
            "commit": commit, "uncommitted_in_core_app": [line[3:] for line in changed],
            "startup": {"what": f"python -c '{STARTUP_CODE}'", "seconds": startup["wall_seconds"],
                        "peak_rss_mb": startup["peak_rss_mb"]}}


# -- output ---------------------------------------------------------------------------------------
def print_table(results: dict) -> None:
    print(f"\n{'stays':>8} {'rows':>12} {'stage':9} {'seconds':>9} {'peak MB':>8} {'pat/s':>10} {'MB/pat':>8}  status")
    for entry in results["sizes"].values():
        for stage in STAGES:
            r = entry["stages"].get(stage)
            if r is None:
                continue
            if not r["ok"]:
                why = r.get("skipped") or f"FAILED exit {r['exit_code']}" + (f" {r['signal']}" if "signal" in r else "")
                print(f"{entry['stays']:>8,} {entry['rows']:>12,} {stage:9} {'-':>9} {'-':>8} {'-':>10} {'-':>8}  {why}")
                continue
            print(f"{entry['stays']:>8,} {entry['rows']:>12,} {stage:9} {r['seconds']:9.2f} {r['peak_rss_mb']:8.0f} "
                  f"{r['patients_per_second']:10,.0f} {r['mb_per_patient']:8.3f}  ok")
    print(f"\nGrowth exponents (slope of log y on log stays, sizes >= {MIN_FIT_STAYS:,}; 1 = linear):")
    for stage, e in results["exponents"].items():
        def fmt(v):
            return "-" if v is None else f"{v:.2f}"
        print(f"  {stage:9} time {fmt(e['time']):>5}  memory {fmt(e['memory']):>5}  (sizes {e['sizes_used'] or '-'}; "
              f"with all sizes: time {fmt(e['time_all_sizes'])}, memory {fmt(e['memory_all_sizes'])})")
    c = results["target_checks"]
    verdict = {True: "PASS", False: "FAIL", None: "not measured (needs sizes around 100k)"}[c["validate_at_100k_ok"]]
    print(f"Targets: validate at 100k stays {c['validate_seconds_at_100k'] or '-'} s (<= 15), "
          f"{c['validate_peak_rss_mb_at_100k'] or '-'} MB (<= 2048): {verdict}; "
          f"quick training peak {c['train_quick_peak_rss_mb_max'] or '-'} MB (<= 3072), largest cohort within "
          f"3 GB: {c['train_quick_largest_stays_within_3gb'] or '-'} stays")


def plot(results: dict, path: Path) -> None:
    """Two log-log panels: seconds and peak RSS against stays, one line per stage, targets marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = results["sizes"]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 5))
    failed = []
    for stage in STAGES:
        ns, ts = _series(sizes, stage, "seconds")
        _, ms = _series(sizes, stage, "peak_rss_mb")
        e = results["exponents"][stage]
        lab_t = f"{stage}" + (f" (n^{e['time']:.2f})" if e["time"] is not None else "")
        lab_m = f"{stage}" + (f" (n^{e['memory']:.2f})" if e["memory"] is not None else "")
        ax_t.plot(ns, ts, "o-", label=lab_t)
        ax_m.plot(ns, ms, "o-", label=lab_m)
        failed += [f"{stage}@{entry['stays']:,}" for entry in sizes.values()
                   if not (entry["stages"].get(stage) or {"ok": True})["ok"]]
    ax_t.plot([100_000], [TARGETS["validate_seconds_at_100k"]], "r*", ms=14, label="target: validate <= 15 s @ 100k")
    ax_m.plot([100_000], [TARGETS["validate_peak_rss_mb_at_100k"]], "r*", ms=14,
              label="target: validate <= 2 GB @ 100k")
    ax_m.axhline(TARGETS["train_quick_peak_rss_mb"], color="r", ls="--", lw=1, label="target: quick training <= 3 GB")
    for ax, ylabel in ((ax_t, "seconds (wall)"), (ax_m, "peak RSS (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("stays")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    m = results["machine"]
    title = f"Chronoscope scale benchmark: {m['cpus']} cores, {m['ram_gb']} GB RAM, commit {m['commit']}"
    fig.suptitle(title + (f"\nfailed: {', '.join(failed)}" if failed else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_sizes(text: str) -> list[int]:
    """``"1000,4000"`` -> ``[1000, 4000]``; a clear error otherwise.

    Examples
    --------
    >>> parse_sizes("1000, 4k")
    [1000, 4000]
    """
    out = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        try:
            n = int(float(part[:-1]) * 1000) if part.endswith("k") else int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--sizes takes comma-separated stay counts; got {part!r}. "
                                             "Example: --sizes 1000,4000 (or 1k,4k).") from None
        if n < 50:
            raise argparse.ArgumentTypeError(f"each size needs at least 50 stays (the split needs both outcomes); "
                                             f"got {n}. Example: --sizes 1000,4000.")
        out.append(n)
    return sorted(set(out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES),
                    help="comma-separated stay counts (default 1000,4000,16000,64000,256000)")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="where cohorts, runs and logs go (default: chronoscope-bench-scale in $CHRONOSCOPE_TMP_DIR, "
                         "else in the system temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep each size's cohort, run and logs (reused next time)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per stage before it is killed")
    ap.add_argument("--chunk", type=int, default=4000, help="patients generated per chunk (one seed each)")
    ap.add_argument("--seed", type=int, default=0, help="seed of chunk 0 (chunk i uses seed + i)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="JSON to merge the results into")
    ap.add_argument("--plot", type=Path, default=PLOT, help="PNG to write")
    ap.add_argument("--worker-features", nargs=2, metavar=("EVENTS", "OUTCOMES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_features:
        print(json.dumps(features_worker(*args.worker_features)))
        return 0
    work = args.work_dir or Path(os.environ.get("CHRONOSCOPE_TMP_DIR") or tempfile.gettempdir()) / \
        "chronoscope-bench-scale"
    work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    print(f"{machine['cpus']} cores, {machine['ram_gb']} GB RAM, Python {machine['python']}; work folder {work}; "
          f"start-up of a stage: {machine['startup']['seconds']:.1f} s, {machine['startup']['peak_rss_mb']:.0f} MB")
    old = json.loads(args.results.read_text()) if args.results.is_file() else None
    results = old
    for n in args.sizes:
        entry = measure_size(n, work, args)
        entry["machine"] = {k: machine[k] for k in ("cpus", "ram_gb", "commit")}
        results = merge_results(results, {str(n): entry}, machine)
        args.results.write_text(json.dumps(results, indent=2) + "\n")   # after every size: resumable
    if not args.keep and work.is_dir() and not any(work.iterdir()):
        work.rmdir()
    print_table(results)
    plot(results, args.plot)
    print(f"\nwrote {args.results} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
