"""Benchmark: load + validate PhysioNet 2012 set A (1.75 M rows, 4,000 patients).

Target on the 2-core reference machine: < 3 s and < 1 GB peak memory.
Run: python bench/bench_load.py [--repeat 3]
Prints wall time per repeat, the peak resident memory of this process (RSS high-water mark,
which includes the Python interpreter and libraries) and the increase over the baseline taken
after imports, and compares with a plain pandas/pyarrow read of the same file.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "physionet2012"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not (DATA / "set-a.csv.gz").exists():
        print(f"skip: {DATA} not found (the PhysioNet sample lives in ../shared beside the repo)")
        return 0
    import pandas as pd

    from core.config import DataConfig
    from core.data.ingest import validate_data

    base = _rss_mb()
    t0 = time.perf_counter()
    plain = pd.read_csv(DATA / "set-a.csv.gz", engine="pyarrow")
    t_plain = time.perf_counter() - t0
    del plain
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        cohort, report = validate_data(DATA / "set-a.csv.gz", DATA / "outcomes-a.csv",
                                       config=DataConfig(target="in_hospital_death"))
        times.append(time.perf_counter() - t0)
    peak = _rss_mb()
    result = {
        "rows_read": report.rows_read, "patients": cohort.n_patients,
        "positives": int(cohort.labels.sum()), "ok": report.ok,
        "plain_pandas_read_s": round(t_plain, 3),
        "load_validate_s": [round(t, 3) for t in times], "best_s": round(min(times), 3),
        "peak_rss_mb": round(peak, 1), "rss_increase_mb": round(peak - base, 1),
        "target": "< 3 s, < 1024 MB",
    }
    print(json.dumps(result, indent=2))
    print(f"load+validate: best {min(times):.2f} s (plain read {t_plain:.2f} s); peak RSS {peak:.0f} MB "
          f"-> {'PASS' if min(times) < 3 and peak < 1024 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
