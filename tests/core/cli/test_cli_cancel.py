"""CLI: Ctrl-C cancels like a job (exit 130, nothing half-written), backend options, plain progress lines."""
from __future__ import annotations

import pytest

from core.cli import build_parser, main
from core.commands.common import backend_from_args
from tests.helpers.cohorts import make_tiny_cohort, write_long


@pytest.fixture()
def data(tmp_path):
    return write_long(make_tiny_cohort(n_patients=50, seed=8), tmp_path)


def _train(events, labels, out, *extra):
    return main(["train", str(events), "--labels", str(labels), "--target", "died", "--out", str(out),
                 "--preset", "test", "--models", "lr,gru", "--bootstrap", "20", *extra])


def test_ctrl_c_while_saving_leaves_no_run_folder(data, tmp_path, monkeypatch, capsys):
    import core.runs.store
    real = core.runs.store._save_model

    def interrupted(model, name, folder):
        real(model, name, folder)
        raise KeyboardInterrupt            # Ctrl-C after the first model file was written
    monkeypatch.setattr(core.runs.store, "_save_model", interrupted)
    rc = _train(*data, tmp_path / "run", "--no-progress")
    assert rc == 130
    assert "cancelled (Ctrl-C)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert not list(tmp_path.glob(".*partial*"))          # the staging folder was removed too


def test_ctrl_c_while_training_exits_130(data, tmp_path, monkeypatch, capsys):
    import core.training.experiment

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(core.training.experiment, "run_protocol", stop)
    assert _train(*data, tmp_path / "run", "--no-progress") == 130
    assert not (tmp_path / "run").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(data, tmp_path, capsys):
    assert _train(*data, tmp_path / "run") == 0
    err = capsys.readouterr().err
    assert "models:" in err and "gru" in err
    assert "\r" not in err and "\x1b[" not in err          # no carriage returns, no escape codes


def test_backend_options_parse_and_reach_the_config(monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_RAY_ADDRESS", "ray://head:10001")
    args = build_parser().parse_args(["train", "e.csv", "--out", "r", "--backend", "ray", "--ray-cpus", "4"])
    config = backend_from_args(args)
    assert (config.name, config.num_cpus, config.resolved_address()) == ("ray", 4, "ray://head:10001")
    args = build_parser().parse_args(["timeorder", "e.csv", "--out", "r", "--address", "h:6379", "--backend", "ray"])
    assert backend_from_args(args).resolved_address() == "h:6379"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "e.csv", "--out", "r", "--backend", "spark"])
