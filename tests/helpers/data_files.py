"""Builders of small, seeded input files for the ingestion tests (no files committed).

``long_rows`` makes a clean long cohort (30 patients x 4 hours x 3 vitals, plus Age and
Gender at time 0; every third patient died). Tests corrupt the rows per case and write them
with ``to_csv_bytes`` / ``write``, or pass ``(name, bytes)`` tuples as an upload would.
"""
from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["N_PATIENTS", "N_HOURS", "SERIES", "STATIC", "TARGET", "PN_OUTCOMES_HEADER", "patient_ids", "outcome",
           "long_rows", "labels_frame", "to_csv_bytes", "csv_text", "write", "physionet_files", "write_folder",
           "zip_bytes", "gzip_bytes", "xlsx_bytes"]

N_PATIENTS = 30
N_HOURS = 4
SERIES = ("HR", "MAP", "Temp")
STATIC = ("Age", "Gender")
TARGET = "died"


def patient_ids(n: int = N_PATIENTS) -> list[str]:
    return [f"{1000 + i}" for i in range(n)]


def outcome(i: int) -> int:
    """Every third patient died: 10 positives and 20 negatives out of 30."""
    return int(i % 3 == 0)


def long_rows(n_patients: int = N_PATIENTS, n_hours: int = N_HOURS, seed: int = 0) -> pd.DataFrame:
    """A clean long table ``patient_id, time, variable, value`` (time in numeric hours)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, pid in enumerate(patient_ids(n_patients)):
        rows.append((pid, 0.0, "Age", float(40 + i)))
        rows.append((pid, 0.0, "Gender", float(i % 2)))
        for h in range(n_hours):
            rows.append((pid, float(h), "HR", float(rng.integers(60, 120))))
            rows.append((pid, float(h), "MAP", float(rng.integers(55, 100))))
            rows.append((pid, float(h), "Temp", round(float(rng.normal(37, 0.5)), 1)))
    return pd.DataFrame(rows, columns=["patient_id", "time", "variable", "value"])


def labels_frame(ids: list[str] | None = None, target: str = TARGET) -> pd.DataFrame:
    ids = ids if ids is not None else patient_ids()
    return pd.DataFrame({"patient_id": ids, target: [outcome(int(p) - 1000) for p in ids]})


def to_csv_bytes(frame: pd.DataFrame, **kw) -> bytes:
    return frame.to_csv(index=False, **kw).encode("utf-8")


def csv_text(frame: pd.DataFrame, sep: str = ",", decimal: str = ".", line_end: str = "\n") -> str:
    return frame.to_csv(index=False, sep=sep, decimal=decimal, lineterminator=line_end)


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


# -- PhysioNet 2012 layout --------------------------------------------------------------

PN_OUTCOMES_HEADER = "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"


def physionet_files(n_patients: int = N_PATIENTS, seed: int = 0) -> dict[str, bytes]:
    """Per-patient ``Time,Parameter,Value`` files plus ``Outcomes-a.txt``, as PhysioNet ships them."""
    rng = np.random.default_rng(seed)
    files: dict[str, bytes] = {}
    outcomes = [PN_OUTCOMES_HEADER]
    for i in range(n_patients):
        rid = 132539 + i
        lines = ["Time,Parameter,Value", f"00:00,RecordID,{rid}", f"00:00,Age,{54 + i}",
                 f"00:00,Gender,{i % 2}", f"00:00,Height,{-1 if i % 5 == 0 else 170 + i}",
                 "00:00,ICUType,4", f"00:00,Weight,{70 + i}"]
        for h in range(N_HOURS):
            lines.append(f"{h:02d}:{7 * h % 60:02d},HR,{int(rng.integers(60, 120))}")
            lines.append(f"{h:02d}:{7 * h % 60:02d},Temp,{rng.normal(37, 0.5):.1f}")
        lines.append(f"03:30,Weight,{71 + i}")  # re-measured: stays a series too
        files[f"set-a/{rid}.txt"] = ("\n".join(lines) + "\n").encode()
        died = outcome(i)
        outcomes.append(f"{rid},{10 + i % 7},{i % 5},{5 + i % 9},{-1 if not died else 3 + i % 4},{died}")
    files["Outcomes-a.txt"] = ("\n".join(outcomes) + "\n").encode()
    return files


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return root


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def gzip_bytes(content: bytes) -> bytes:
    return gzip.compress(content, mtime=0)


def xlsx_bytes() -> bytes:
    """The skeleton of an .xlsx workbook (a zip with the Office parts)."""
    return zip_bytes({"[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
                      "xl/workbook.xml": b'<?xml version="1.0"?><workbook/>',
                      "xl/worksheets/sheet1.xml": b'<?xml version="1.0"?><worksheet/>'})
