"""What `dl train` says as it trains: a line per epoch on stdout and in train.log, as
each epoch ends; the final table under a title line; numbers at one precision down a
column; what a Ctrl-C says."""

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from dl_cli import training
from dl_cli.cli.app import app
from dl_cli.config import load_config
from dl_cli.numbers import column, figure
from dl_cli.progress import epoch_line
from dl_cli.tables import metrics_table, summary_table

runner = CliRunner()

@pytest.fixture(scope="session")
def write_tiny(tiny_config, write_config):
    """``write_tiny(folder, **train)``: folder/tiny.yaml, a small run of 3 epochs (runs/tiny)
    on the default split (24 of the 120 samples for val), its train keys changed."""
    def write(folder: Path, **train) -> Path:
        cfg = tiny_config(name="tiny", seed=0, data={"dataset": {"type": "spiral", "samples": 40}},
                          train={"epochs": 3, "batch_size": 16, **train})
        return write_config(folder, cfg, "tiny.yaml")
    return write


def rendered(table) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(table)
    return console.export_text()


def epoch_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("epoch ")]


def test_each_epoch_prints_a_line_that_train_log_keeps_too(tmp_path, write_tiny):
    result = runner.invoke(app, ["train", str(write_tiny(tmp_path))])
    assert result.exit_code == 0, result.output
    lines = epoch_lines(result.output)
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all(" train/loss " in line and " val/acc " in line and " lr 0.01 " in line
               for line in lines)
    assert lines[0].endswith("* best")  # the first epoch is always the best so far
    (run_dir,) = [p for p in (tmp_path / "runs" / "tiny").iterdir() if p.name != "latest"]
    log = (run_dir / "train.log").read_text()
    assert epoch_lines(log) == lines
    last = log.splitlines()[-1]  # the test scores as figures, not a Python dict
    assert "test/acc 0." in last and "{" not in last and "'" not in last


def test_quiet_keeps_the_final_table_alone(tmp_path, write_tiny):
    result = runner.invoke(app, ["train", str(write_tiny(tmp_path)), "--quiet"])
    assert result.exit_code == 0, result.output
    assert epoch_lines(result.output) == []
    assert "parameters," not in result.output  # the opening line too
    assert "tiny: completed; best val/acc" in result.output
    (run_dir,) = [p for p in (tmp_path / "runs" / "tiny").iterdir() if p.name != "latest"]
    assert len(epoch_lines((run_dir / "train.log").read_text())) == 3


def test_the_summary_title_is_one_line_above_a_narrow_table(tmp_path, write_tiny):
    result = runner.invoke(app, ["train", str(write_tiny(tmp_path, epochs=2)), "-q"])
    assert result.exit_code == 0, result.output
    (title,) = [line for line in result.output.splitlines() if "completed; best" in line]
    assert title.startswith("tiny: completed; best val/acc ") and title.endswith(" of 2")


def test_eval_prints_its_title_as_one_line(tmp_path, write_tiny):
    config = write_tiny(tmp_path, epochs=1)
    assert runner.invoke(app, ["train", str(config), "-q"]).exit_code == 0
    (run_dir,) = [p for p in (tmp_path / "runs" / "tiny").iterdir() if p.name != "latest"]
    result = runner.invoke(app, ["eval", str(run_dir), "--split", "val"])
    assert result.exit_code == 0, result.output
    assert f"{run_dir.name}: best checkpoint (epoch 1) on val (24 samples)" in result.output.splitlines()


def test_a_column_keeps_one_precision():
    assert column([1.0, 0.9777, 0.9694]) == ["1.000", "0.978", "0.969"]
    assert column([0.02509, 0.0845, 0.1]) == ["0.0251", "0.0845", "0.1000"]
    assert column([0.02509, 0.0845]) == ["0.02509", "0.08450"]
    assert column([0.9854, 0.0108]) == ["0.9854", "0.0108"]
    assert column([30512.0, 0.5]) == ["3.051e+04", "5.000e-01"]  # 0.5 would keep no digit
    assert column([None, 2, float("nan")]) == ["-", "2", "nan"]
    assert figure(0.96935) == "0.9694"
    summary = {"best": {"train/acc": 1.0, "val/acc": 0.9777, "train/loss": 0.02, "val/loss": 0.1},
               "final": {"train/acc": 1.0, "val/acc": 0.97}, "test": {"test/acc": 0.9694}}
    text = rendered(summary_table(summary))
    (train,) = [line for line in text.splitlines() if "train" in line]
    assert "1.000" in train and " 1 " not in train
    assert "0.978" in text and "0.969" in text and "0.9777" not in text
    assert "0.1000" in rendered(metrics_table({"val/loss": 0.1, "val/acc": 0.9777}))


def test_an_epoch_line_reads_like_kerass():
    record = {"epoch": 7, "step": 70, "lr": 0.005, "train/objective": 0.31, "train/loss": 0.3,
              "train/acc": 0.9, "val/loss": 0.25, "val/acc": 0.9125, "time": 5.0,
              "status": "early_stopped"}
    assert epoch_line(record, 30, 0.5, best=True) == (
        "epoch  7/30  train/loss 0.3000  train/acc 0.9000  val/loss 0.2500  val/acc 0.9125  "
        "lr 0.005  0.50s  * best  (early stop)")
    unscored = {"epoch": 1, "lr": 0.1, "train/objective": 1.5, "val/acc": 0.5}
    assert "train/objective 1.5000" in epoch_line(unscored, 1, 0.1, best=False)


def test_the_batch_bar_is_closed_before_a_stop_propagates(tmp_path, monkeypatch, write_tiny):
    from tqdm import tqdm

    from dl_cli.solver import Solver

    cfg = load_config(write_tiny(tmp_path))
    parts = training.assemble(cfg)
    solver = training.make_solver(cfg, parts, None, progress=True)
    calls = []
    original = Solver.step

    def step(self, idx):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # a second Ctrl-C, mid-step
        return original(self, idx)

    monkeypatch.setattr(Solver, "step", step)
    with pytest.raises(KeyboardInterrupt) as stopped:  # its traceback holds the bar
        solver.train()
    assert stopped.traceback and not list(tqdm._instances)


@pytest.mark.slow
def test_in_a_pipe_each_line_arrives_as_its_epoch_ends_and_ctrl_c_is_named(tmp_path, write_tiny):
    config = write_tiny(tmp_path, epochs=100000)
    proc = subprocess.Popen([sys.executable, "-m", "dl_cli", "train", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    first = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    try:
        reader.join(timeout=60)
        assert first and first[0].startswith("epoch      1/100000  train/loss "), first
        assert proc.poll() is None  # printed while training goes on
    finally:
        proc.send_signal(signal.SIGINT)
        _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 130, errors
    assert "interrupted (Ctrl-C) at epoch " in errors and "signal 2" not in errors


def test_a_finished_study_ends_with_the_report_command_and_a_search_with_best_yaml(
        tmp_path, tiny_config):
    base = tmp_path / "base.yaml"
    one_epoch = tiny_config(name="tiny", seed=0, train={"epochs": 1, "batch_size": 16})
    base.write_text(yaml.safe_dump(one_epoch))
    grid = {"base": str(base), "name": "s", "method": "grid",
            "params": {"optimizer.lr": {"values": [0.01, 0.1]}}}
    for spec, last in ((grid, "best config: dl train "),
                       ({**grid, "claim": "A larger step learns faster."}, "next: dl report ")):
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(spec))
        folder = tmp_path / f"sweep-{len(spec)}"
        result = runner.invoke(app, ["sweep", str(path), "--sweep-dir", str(folder)])
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1].startswith(last + str(folder))
        assert ("best config" in result.output) == (last.startswith("best"))
