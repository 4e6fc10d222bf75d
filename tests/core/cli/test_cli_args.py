"""Every numeric command-line argument is checked where it enters (issue 21, item 7): a bad value exits 2
with a message naming the option and a valid example, before any data is read; never a traceback.

Not a number at all ("x" for --seed) is argparse's own error (exit 2, "invalid int value"); a number out of
range is refused by core.commands.common.check_arguments, for every command."""
import pytest

from core.cli import main
from tests.helpers.cohorts import make_tiny_cohort, write_long


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("args")
    events, labels = write_long(make_tiny_cohort(n_patients=40, seed=2), folder)
    return folder, events, labels


def _commands(folder, events, labels):
    train = ["train", str(events), "--labels", str(labels), "--target", "died", "--out", str(folder / "run"),
             "--preset", "test", "--models", "lr", "--no-progress"]
    explain = ["explain", str(folder / "run"), str(events), "--model", "lr", "--out", str(folder / "x.csv")]
    timeorder = ["timeorder", str(events), "--labels", str(labels), "--target", "died", "--out", str(folder / "to"),
                 "--preset", "test", "--no-progress"]
    demo = ["demo", "--out", str(folder / "demo")]
    return {"train": train, "explain": explain, "timeorder": timeorder, "demo": demo}


BAD = [
    ("train", ["--seed", "-5"], "--seed"), ("train", ["--seed", "99999999999"], "--seed"),
    ("train", ["--seed", "x"], "argument --seed: invalid int value"), ("train", ["--cv", "1"], "--cv"), ("train", ["--cv", "-2"], "--cv"),
    ("train", ["--bootstrap", "-3"], "--bootstrap"), ("train", ["--bootstrap", "1e9"], "--bootstrap"),
    ("train", ["--bin-hours", "1e-7"], "--bin-hours"), ("train", ["--window-hours", "1e12"], "--window-hours"),
    ("train", ["--window-hours", "nan"], "--window-hours"), ("train", ["--max-hours", "-1"], "--max-hours"),
    ("train", ["--lookback-hours", "6,abc"], "--lookback-hours"), ("train", ["--lookback-hours", "0"], "--lookback-hours"),
    ("train", ["--window-hours", "80000", "--bin-hours", "0.02"], "--window-hours 80000 / --bin-hours 0.02"),
    ("train", ["--window-hours", "2", "--bin-hours", "5"], "--bin-hours 5 is longer than --window-hours 2"),
    ("train", ["--horizon-hours", "-1"], "horizon_hours must be >= 0"), ("train", ["--max-time-hours", "inf"], "--max-time-hours"),
    ("train", ["--sentinel", "abc"], "--sentinel"), ("train", ["--ray-cpus", "0"], "--ray-cpus"),
    ("train", ["--memory-limit", "nan"], "--memory-limit"),
    ("explain", ["--seed", "-1"], "--seed"), ("explain", ["--nsamples", "0"], "--nsamples"),
    ("explain", ["--background", "-4"], "--background"), ("explain", ["--hour", "nan"], "--hour"),
    ("timeorder", ["--seed", "-5"], "--seed"), ("timeorder", ["--horizons", "6,-1"], "--horizons"),
    ("timeorder", ["--max-patients", "0"], "--max-patients"), ("timeorder", ["--bootstrap", "-1"], "--bootstrap"),
    ("timeorder", ["--window-hours", "0"], "--window-hours"),
    ("demo", ["--seed", "-1"], "--seed"), ("demo", ["--patients", "10000000"], "--patients"),
]


@pytest.mark.parametrize("command, extra, names", BAD, ids=[f"{c}{' '.join(e)}" for c, e, _ in BAD])
def test_a_bad_numeric_argument_exits_2_naming_it(data, capsys, command, extra, names):
    args = _commands(*data)[command] + extra
    try:
        rc = main(args)
    except SystemExit as stop:         # argparse: "usage ... error: argument --seed: ..."
        rc = stop.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert names in err and "Traceback" not in err
    assert "e.g." in err or "invalid int value" in err or "Example:" in err       # an example of a valid value
    assert not (data[0] / "run").exists()                                         # nothing was trained
