"""Benchmark: uploads that are small on disk but huge in memory, validated with bounded memory (issue 21, item 2).

Usage (from the repository root)::

    .venv/bin/python bench/bench_upload_bombs.py                 # build the three files, measure, write the JSON
    .venv/bin/python bench/bench_upload_bombs.py --only zip      # one of gz, parquet, zip
    .venv/bin/python bench/bench_upload_bombs.py --no-write      # print only

**Files**, built in ``--work-dir`` (default: a fresh folder in the system temp folder, removed at the end
unless ``--keep``), never more than a few MB in this process:

* ``bomb.csv.gz``: a long table (``patient_id,time,variable,value``) of one row repeated until it inflates
  to ``--gz-mb`` MB (default 1,900 MB: about 181 M rows in ~3.7 MB of gzip);
* ``bomb.parquet``: ``--parquet-rows`` rows (default 40 M) of four repeated values (text ids and names,
  dictionary-encoded: ~0.6 MB on disk);
* ``patients.zip``: ``--zip-files`` (default 20,000) tiny per-patient PhysioNet 2012 files
  (``Time,Parameter,Value``; a RecordID row, Age, then 8 heart rates), ~3.4 MB.

**Measured**, each in a fresh child process reaped with ``os.wait4`` (that child's own peak resident set
and CPU seconds):

* ``cli``: ``python -m core validate FILE`` (exit code, last line of its output);
* ``server``: the function the app's cache calls for an upload kept in memory
  (:func:`core.data.ingest.inspect_columns`, then :func:`core.data.ingest.validate_data` on ``(name, bytes)``), in this
  script's hidden ``--worker-upload FILE`` mode.

A child whose resident set passes ``--kill-above-mb`` (default 8,000) is killed and recorded as such, so a
regression cannot take the machine down. Targets (issue 21): each bomb validates or is refused with a peak
of at most 2,048 MB in both modes; the zip validates in at most 20 s.

Writes ``bench/results_upload_bombs.json`` unless ``--no-write``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results_upload_bombs.json"
TARGET_PEAK_MB = 2048.0
TARGET_ZIP_SECONDS = 20.0


# -- the files ----------------------------------------------------------------------------------------------

def gzip_bomb(path: Path, inflated_mb: float) -> dict:
    """A gzip of a long CSV that inflates to about ``inflated_mb`` MB: one row repeated (as the probe's: ~515:1)."""
    row = b"p1,1,HR,80\n"
    block = row * ((1 << 20) // len(row))
    header = b"patient_id,time,variable,value\n"
    repeats = max(1, int(inflated_mb * 2**20 / len(block)))
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        fh.write(comp.compress(header))
        for _ in range(repeats):
            fh.write(comp.compress(block))
        fh.write(comp.flush())
    return {"inflated_mb": round((len(header) + repeats * len(block)) / 2**20, 1),
            "rows": repeats * (len(block) // len(row))}


def parquet_bomb(path: Path, n_rows: int) -> dict:
    """``n_rows`` repeated rows with text ids and names, written in row groups of 1 M (dictionary-encoded)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    step = min(n_rows, 1 << 20)
    schema = pa.schema([("patient_id", pa.string()), ("time", pa.float64()), ("variable", pa.string()),
                        ("value", pa.float64())])
    with pq.ParquetWriter(path, schema) as writer:
        done = 0
        while done < n_rows:
            n = min(step, n_rows - done)
            codes = pa.array(np.zeros(n, dtype=np.int8))
            writer.write_table(pa.table({
                "patient_id": pa.DictionaryArray.from_arrays(codes, pa.array(["patient-000001"])).cast(pa.string()),
                "time": pa.array(np.ones(n)),
                "variable": pa.DictionaryArray.from_arrays(codes, pa.array(["HeartRate"])).cast(pa.string()),
                "value": pa.array(np.full(n, 80.0))}, schema=schema))
            done += n
    return {"rows": n_rows}


def patient_zip(path: Path, n_files: int) -> dict:
    """``n_files`` per-patient PhysioNet 2012 files (RecordID, Age and 8 heart rates each) in one zip."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n_files):
            rid = 100000 + i
            lines = ["Time,Parameter,Value", f"00:00,RecordID,{rid}", f"00:00,Age,{40 + i % 50}"]
            lines += [f"{h:02d}:{(7 * i) % 60:02d},HR,{60 + (i + h) % 40}" for h in range(8)]
            zf.writestr(f"set-a/{rid}.txt", "\n".join(lines) + "\n")
    return {"files": n_files}


# -- measuring ------------------------------------------------------------------------------------------------

def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_child(cmd: list[str], kill_above_mb: float, timeout_s: float) -> dict:
    """Run ``cmd``; exit code, wall and CPU seconds, peak RSS (``os.wait4``), the last line of its output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        killed = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            over = _rss_mb(proc.pid) > kill_above_mb
            if over or time.perf_counter() - t0 > timeout_s:
                killed = "memory" if over else "timeout"
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    res = {"exit_code": proc.returncode, "wall_seconds": round(wall, 2),
           "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
           "traceback": "Traceback (most recent call last)" in text,
           "last_line": lines[-1][:300] if lines else ""}
    if killed:
        res["killed"] = f"{killed} (over {kill_above_mb:,.0f} MB)" if killed == "memory" else "timeout"
    refusal = [ln for ln in lines if ln.lstrip().startswith("[ERROR]")]
    if refusal:
        res["message"] = refusal[0].strip()[:400]
    return res


def upload_worker(path: str) -> int:
    """The app's in-memory path for an upload: inspect the columns, then validate ``(name, bytes)``."""
    from core.data.ingest import inspect_columns, validate_data
    name = Path(path).name
    content = Path(path).read_bytes()
    info = inspect_columns((name, content))
    if info["error"]:
        print(f"[ERROR] (inspect) {info['error']}")
        print("refused at inspection")
        return 0
    cohort, report = validate_data((name, content))
    for f in report.errors:
        print(f"[ERROR] {f.message}")
    print(f"validated: {report.rows_read:,} rows read, {cohort.n_patients if cohort is not None else 0:,} patients, "
          f"ok={report.ok}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-dir", help="where the files are built (default: a fresh temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the files (reused by a later run with --work-dir)")
    ap.add_argument("--only", choices=["gz", "parquet", "zip"], action="append")
    ap.add_argument("--gz-mb", type=float, default=1900.0)
    ap.add_argument("--parquet-rows", type=int, default=40_000_000)
    ap.add_argument("--zip-files", type=int, default=20_000)
    ap.add_argument("--kill-above-mb", type=float, default=8000.0)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--worker-upload", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker_upload:
        return upload_worker(args.worker_upload)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="chronoscope-bombs-"))
    work.mkdir(parents=True, exist_ok=True)
    builders = {"gz": ("bomb.csv.gz", lambda p: gzip_bomb(p, args.gz_mb)),
                "parquet": ("bomb.parquet", lambda p: parquet_bomb(p, args.parquet_rows)),
                "zip": ("patients.zip", lambda p: patient_zip(p, args.zip_files))}
    results = {}
    try:
        for key in args.only or list(builders):
            fname, build = builders[key]
            path = work / fname
            t0 = time.perf_counter()
            meta = build(path)
            meta.update(file_mb=round(path.stat().st_size / 2**20, 2), build_seconds=round(time.perf_counter() - t0, 1))
            entry = {"file": meta}
            for mode, cmd in (("cli", [sys.executable, "-m", "core", "validate", str(path)]),
                              ("server", [sys.executable, str(Path(__file__).resolve()), "--worker-upload", str(path)])):
                entry[mode] = res = run_child(cmd, args.kill_above_mb, args.timeout)
                print(f"{fname:14s} {mode:6s} exit {res['exit_code']:3d}  {res['wall_seconds']:7.1f} s wall  "
                      f"{res['cpu_seconds']:7.1f} s CPU  peak {res['peak_rss_mb']:8,.0f} MB  "
                      f"{res.get('killed', '')} {res.get('message') or res['last_line']}"[:400], flush=True)
            entry["meets_target"] = all(entry[m]["peak_rss_mb"] <= TARGET_PEAK_MB and not entry[m]["traceback"]
                                        and "killed" not in entry[m] for m in ("cli", "server"))
            if key == "zip":
                entry["meets_target"] &= entry["cli"]["wall_seconds"] <= TARGET_ZIP_SECONDS
            results[key] = entry
    finally:
        if not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    if not args.no_write:
        old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        old.update(results)
        old["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        RESULTS.write_text(json.dumps(old, indent=2) + "\n")
    return 0 if all(r["meets_target"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
