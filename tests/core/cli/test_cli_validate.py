"""``python -m core validate``: exit 0 when trainable, 2 when not, and never a traceback.

The good file and a sample of bad ones run the real command in subprocesses, started at once
(one module-scoped fixture) so the interpreter start-ups overlap; every bad input also runs
in-process through ``core.cli.main``, where any exception would fail the test.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.helpers.data_files import (gzip_bytes, labels_frame, long_rows, patient_ids, physionet_files, to_csv_bytes,
                                      write, xlsx_bytes, zip_bytes)
from tests.helpers.paths import ROOT


#: bad inputs: case -> (events file key, extra arguments, text the output must contain)
BAD = {
    "random_bytes": ("random", (), "binary"),
    "truncated_gzip": ("truncated_gz", (), "gzip"),
    "xlsx_as_csv": ("xlsx", (), "Excel workbook"),
    "html_as_csv": ("html", (), "web page"),
    "empty_file": ("empty", (), "empty"),
    "header_only": ("header_only", (), "no data rows"),
    "override_missing_column": ("events", ("--patient-col", "pid"), "Columns found"),
    "too_few_labels": ("events", ("--labels", "@few_labels"), "Too few labelled patients"),
    "wrong_time_format": ("events", ("--time-format", "datetime"), "could not be parsed"),
    "missing_file": ("@missing", (), "File not found"),
}
#: the bad inputs that also run as a real subprocess (each costs an interpreter start-up).
SUBPROCESS_BAD = ("random_bytes", "truncated_gzip", "xlsx_as_csv", "header_only", "missing_file")


def _bad_argv(files: dict[str, Path], case: str) -> list[str]:
    key, extra, _ = BAD[case]
    extra = [str(files[a[1:]]) if a.startswith("@") else a for a in extra]
    labels = [] if "--labels" in extra else ["--labels", str(files["labels"])]
    return [str(files[key.lstrip("@")]), *extra, *labels, "--target", "died"]


def _make_files(d: Path) -> dict[str, Path]:
    good = to_csv_bytes(long_rows())
    messy = long_rows().astype({"value": object})
    messy.loc[5, "value"] = "abc"
    return {
        "events": write(d / "events.csv", good),
        "labels": write(d / "labels.csv", to_csv_bytes(labels_frame())),
        "messy": write(d / "messy.csv", to_csv_bytes(messy)),
        "random": write(d / "random.csv", random.Random(0).randbytes(2048)),
        "truncated_gz": write(d / "events.csv.gz", gzip_bytes(good)[:300]),
        "xlsx": write(d / "events_xlsx.csv", xlsx_bytes()),
        "html": write(d / "page.csv", b"<html><body>Session expired</body></html>"),
        "empty": write(d / "empty.csv", b""),
        "header_only": write(d / "header.csv", b"patient_id,time,variable,value\n"),
        "few_labels": write(d / "few.csv", to_csv_bytes(labels_frame(patient_ids(10)))),
        "pn_zip": write(d / "set-a.zip", zip_bytes(physionet_files())),
        "missing": d / "missing.csv",
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return _make_files(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def results(files) -> dict[str, subprocess.CompletedProcess]:
    argvs = {"good": [files["events"], "--labels", files["labels"], "--target", "died"],
             **{case: _bad_argv(files, case) for case in SUBPROCESS_BAD}}
    procs = {case: subprocess.Popen([sys.executable, "-m", "core", "validate", *map(str, argv)], cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for case, argv in argvs.items()}
    out = {}
    for case, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        out[case] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return out


def test_good_files_exit_0(results):
    proc = results["good"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK, the data can be used for training" in proc.stdout
    assert "patients: 30" in proc.stdout and "positives: 10" in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", SUBPROCESS_BAD)
def test_bad_inputs_exit_2_with_the_reason_and_no_traceback(results, case):
    proc, needle = results[case], BAD[case][2]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stdout + proc.stderr
    assert "NOT usable for training" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("case", list(BAD))
def test_every_bad_input_exits_2_in_process(files, capsys, case):
    code = main(["validate", *_bad_argv(files, case)])  # an uncaught exception fails the test
    out = capsys.readouterr()
    assert code == 2
    assert BAD[case][2] in out.out + out.err
    assert "NOT usable for training" in out.out


def test_messy_file_is_accepted_with_a_warning(files, capsys):
    assert main(["validate", str(files["messy"]), "--labels", str(files["labels"]), "--target", "died"]) == 0
    out = capsys.readouterr().out
    assert "[WARNING] Rows whose value is not a number were excluded (1 rows)" in out
    assert "row 7" in out and "excluded (non_numeric_value): 1" in out


def test_physionet_zip_with_its_outcomes(files, capsys):
    assert main(["validate", str(files["pn_zip"]), "--target", "In-hospital_death"]) == 0
    out = capsys.readouterr().out
    assert "physionet" in out and "never used as features" in out


def test_no_target_exits_2_with_a_hint(files, capsys):
    assert main(["validate", str(files["events"])]) == 2
    assert "--labels/--target" in capsys.readouterr().out


def test_json_output_keeps_the_row_accounting(files, capsys):
    code = main(["validate", str(files["messy"]), "--labels", str(files["labels"]), "--target", "died", "--json"])
    report = json.loads(capsys.readouterr().out.split("\nResult:")[0])
    assert code == 0 and report["ok"]
    assert report["rows_read"] == report["rows_used"] + sum(report["rows_excluded"].values())
    assert report["rows_excluded"] == {"non_numeric_value": 1}


def test_bad_sentinel_option_is_a_message(files, capsys):
    assert main(["validate", str(files["events"]), "--sentinel", "abc"]) == 2
    assert "error:" in capsys.readouterr().out
