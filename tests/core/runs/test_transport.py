"""Real data across hospitals: a run trained on PhysioNet 2012 stays meets the 2019 hourly file (another hospital,
other names): the synonyms are matched, and scoring is refused because GCS and urine output are missing."""
from __future__ import annotations


import pandas as pd
import pytest

from core.cli import main
from tests.helpers.paths import ROOT

P2012 = ROOT.parent / "shared/data/physionet2012"
P2019 = ROOT.parent / "shared/data/physionet2019/hourly.csv.gz"

pytestmark = [pytest.mark.real, pytest.mark.slow]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    if not (P2012 / "set-a.csv.gz").exists() or not P2019.exists():
        pytest.skip("../shared/data/physionet2012 and physionet2019 not found: this test needs the shared PhysioNet "
                    "samples beside the repo")
    folder = tmp_path_factory.mktemp("transport")
    events = pd.read_csv(P2012 / "set-a.csv.gz", dtype={"patient_id": str})
    keep = sorted(events["patient_id"].unique())[:800]                  # 800 stays: enough to learn from
    events[events["patient_id"].isin(keep)].to_csv(folder / "set-a-800.csv", index=False)
    hourly = pd.read_csv(P2019, dtype={"patient_id": str}, nrows=20_000)   # the first few hundred 2019 stays
    hourly.drop(columns="SepsisLabel").to_csv(folder / "hourly.csv", index=False)
    assert main(["train", str(folder / "set-a-800.csv"), "--labels", str(P2012 / "outcomes-a.csv"), "--target",
                 "in_hospital_death", "--models", "lr,gbm", "--preset", "quick", "--bootstrap", "20",
                 "--out", str(folder / "run"), "--no-progress"]) == 0
    return folder


def test_a_2012_run_on_the_2019_file_is_refused_naming_gcs(files, capsys):
    out = files / "scores.csv"
    assert main(["predict", str(files / "run"), str(files / "hourly.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for line in ("mapped: SBP -> SysABP (synonym)", "mapped: DBP -> DiasABP (synonym)",
                 "mapped: Potassium -> K (synonym)", "mapped: Hct -> HCT (same name, other spelling)"):
        assert line in err, err
    assert "GCS (" in err and "carry more than 20%" in err and not out.exists()
    assert main(["predict", str(files / "run"), str(files / "hourly.csv"), "--out", str(out), "--allow-missing"]) == 0
    assert "Scored anyway (--allow-missing)" in capsys.readouterr().err
    assert (pd.read_csv(out)["missing_importance"] > 0.2).any()
