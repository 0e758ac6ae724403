"""Resuming and continuing runs: on the threads they trained with, a finished run left
alone, a run trained longer (only train.epochs and early-stopping patience may change)."""

import json
from pathlib import Path

import pytest
import yaml
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from dl_cli.checkpoints import read_meta
from dl_cli.cli.app import app

runner = CliRunner()

THREE_EPOCHS = {"epochs": 3, "batch_size": 8}


@pytest.fixture(scope="session")
def write_tiny(tiny_config, write_config):
    """``write_tiny(folder, name="tiny.yaml", **sections)``: a run of 3 epochs of 9
    iterations (72 training samples: the default split of 40 spiral points per class) with a
    step schedule, these sections replaced."""
    def write(folder: Path, name: str = "tiny.yaml", **sections) -> Path:
        cfg = tiny_config(name="tiny", seed=1, data={"dataset": {"type": "spiral", "samples": 40}},
                          schedule={"type": "step", "every": 2, "gamma": 0.5}, train=THREE_EPOCHS)
        return write_config(folder, {**cfg, **sections}, name)
    return write


def dl(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=300)


def epoch_lines(run_dir: Path) -> list[dict]:
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "time"} for line in lines]


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_resume_computes_on_the_threads_the_run_trained_with(tmp_path, interrupt_at, write_tiny):
    config, run_dir, straight = write_tiny(tmp_path), tmp_path / "run", tmp_path / "straight"
    assert dl("train", config, "--threads", "1", "--run-dir", straight, "-q").exit_code == 0
    with interrupt_at(8):  # the 8th of the first epoch's 9 iterations
        assert dl("train", config, "--threads", "1", "--run-dir", run_dir, "-q").exit_code == 130
    assert read_meta(run_dir / "checkpoints" / "last.npz")["threads"] == 1
    with threadpool_limits(limits=2, user_api="blas"):  # a shell whose BLAS runs 2
        result = dl("train", "--resume", run_dir, "-q")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert read_meta(run_dir / "checkpoints" / "last.npz")["threads"] == 1
    assert epoch_lines(run_dir) == epoch_lines(straight)


def test_a_resume_on_other_threads_is_warned_of(tmp_path, interrupt_at, write_tiny):
    run_dir = tmp_path / "run"
    with interrupt_at(8):
        assert dl("train", write_tiny(tmp_path), "--threads", "1", "--run-dir", run_dir,
                  "-q").exit_code == 130
    result = dl("train", "--resume", run_dir, "--threads", "2", "-q")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "--threads 2: the run trained on 1 thread; on 2 its numbers will differ" in text
    assert read_meta(run_dir / "checkpoints" / "last.npz")["threads"] == 2


def test_resuming_a_finished_run_says_so_and_changes_nothing(tmp_path, write_tiny):
    run_dir = tmp_path / "run"
    assert dl("train", write_tiny(tmp_path), "--run-dir", run_dir, "-q").exit_code == 0
    before = snapshot(run_dir)
    for _ in range(2):
        result = dl("train", "--resume", run_dir)
        assert result.exit_code == 0, result.output
        assert f"{run_dir} is complete: 3 of 3 epochs trained; nothing changed" in result.output
        assert "train.epochs=N" in result.output
    assert snapshot(run_dir) == before


def test_a_run_stopped_after_its_last_epoch_is_finished_by_a_resume(tmp_path, write_tiny):
    run_dir = tmp_path / "run"
    assert dl("train", write_tiny(tmp_path), "--run-dir", run_dir, "-q").exit_code == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    trained = epoch_lines(run_dir)
    stopped = {**summary, "status": "interrupted", "test": {}}  # as it scored the test split
    (run_dir / "summary.json").write_text(json.dumps(stopped))
    result = dl("train", "--resume", run_dir, "-q")
    assert result.exit_code == 0, result.output
    assert "nothing changed" not in result.output
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["status"] == "completed" and resumed["test"] == summary["test"]
    assert epoch_lines(run_dir) == trained  # no epoch trained again


def test_a_finished_run_trained_longer_matches_a_run_trained_that_long(tmp_path, write_tiny):
    run_dir, straight = tmp_path / "run", tmp_path / "straight"
    assert dl("train", write_tiny(tmp_path), "--run-dir", run_dir, "-q").exit_code == 0
    longer = write_tiny(tmp_path, "longer.yaml", train={**THREE_EPOCHS, "epochs": 5})
    assert dl("train", longer, "--run-dir", straight, "-q").exit_code == 0
    result = dl("train", "--resume", run_dir, "train.epochs=5")
    assert result.exit_code == 0, result.output
    assert "epoch 4/5" in result.output and "epoch 3/" not in result.output  # only the new ones
    assert epoch_lines(run_dir) == epoch_lines(straight)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["epochs"] == 5
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 5


def test_a_whole_run_schedule_keeps_the_length_the_run_started_with(tmp_path, write_tiny):
    config = write_tiny(tmp_path, schedule={"type": "cosine", "min_lr": 0.001})
    run_dir = tmp_path / "run"
    assert dl("train", config, "--run-dir", run_dir, "-q").exit_code == 0
    assert dl("train", "--resume", run_dir, "train.epochs=5", "-q").exit_code == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["schedule"] == {"type": "cosine", "min_lr": 0.001, "epochs": 3}
    rates = [r["lr"] for r in epoch_lines(run_dir)]
    assert rates[3] == rates[4] == pytest.approx(0.001)  # past its end, the rate stays at min_lr
    again = tmp_path / "again"  # the rewritten config gives the same run from scratch
    assert dl("train", run_dir / "config.yaml", "--run-dir", again, "-q").exit_code == 0
    assert epoch_lines(again) == epoch_lines(run_dir)


def test_a_run_stopped_early_goes_on_only_with_more_patience(tmp_path, monkeypatch, write_tiny):
    from dl_cli.solver import Solver

    original = Solver.check_accuracy

    scored = []

    def check_accuracy(self, split):  # the validation accuracy never improves on epoch 1
        metrics = original(self, split)
        if split == "val":
            scored.append(self.epoch)
            metrics["val/acc"] = 0.9 if len(scored) == 1 else 0.5
        return metrics

    monkeypatch.setattr(Solver, "check_accuracy", check_accuracy)
    stopping = {"monitor": "val/acc", "patience": 1}
    config = write_tiny(tmp_path, train={**THREE_EPOCHS, "epochs": 6, "early_stopping": stopping})
    run_dir = tmp_path / "run"
    assert dl("train", config, "--run-dir", run_dir, "-q").exit_code == 0
    before = snapshot(run_dir)
    result = dl("train", "--resume", run_dir, "train.epochs=8")
    assert result.exit_code == 0, result.output
    assert f"{run_dir} stopped early after epoch 2" in result.output
    assert "train.early_stopping.patience=N" in result.output
    assert snapshot(run_dir) == before
    result = dl("train", "--resume", run_dir, "train.early_stopping.patience=3", "-q")
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in epoch_lines(run_dir)] == [1, 2, 3, 4]


@pytest.mark.parametrize("overrides, message", [
    (["optimizer.lr=0.1"], "optimizer.lr: a resumed run continues its own config.yaml"),
    (["train.epochs=2"], "train.epochs: a resumed run trains on; expected at least the run's 3, got 2"),
    (["train.early_stopping.patience=4"], "train.early_stopping.patience: the run has no early stopping"),
])
def test_a_resume_refuses_every_other_change(tmp_path, overrides, message, write_tiny):
    run_dir = tmp_path / "run"
    assert dl("train", write_tiny(tmp_path), "--run-dir", run_dir, "-q").exit_code == 0
    before = snapshot(run_dir)
    result = dl("train", "--resume", run_dir, *overrides)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert snapshot(run_dir) == before


def test_a_sweep_resumes_on_the_workers_it_ran_on_unless_told_otherwise(tmp_path, write_tiny):
    import numpy as np

    from dl_cli.sweep.ledger import Ledger

    data = tmp_path / "data.npz"
    base = write_tiny(tmp_path, "base.yaml", train={"epochs": 1, "batch_size": 8})
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"base": str(base), "name": "s", "method": "grid", "params": {
        "data.dataset": {"values": [{"type": "spiral", "classes": 3, "samples": 30},
                                    {"type": "npz", "path": str(data)}]}}}))
    folder = tmp_path / "sweep"
    first = dl("sweep", spec, "--sweep-dir", folder, "--workers", "2")
    assert first.exit_code == 0 and "2 worker processes" in first.output, first.output
    np.savez(data, X=np.random.default_rng(0).normal(size=(60, 2)), y=np.arange(60) % 3)
    retried = dl("sweep", "--resume", folder, "--retry-failed")
    assert retried.exit_code == 0, retried.output
    assert "1 of 2 trials to run on" in retried.output and "2 worker processes" in retried.output
    assert Ledger(folder / "ledger.jsonl").placement() == {"executor": "local", "workers": 2,
                                                           "address": None}
    (folder / "trial-0001" / "summary.json").unlink()  # as if it had never finished
    ledger = folder / "ledger.jsonl"
    ledger.write_text("".join(line + "\n" for line in ledger.read_text().splitlines()
                              if not ('"result"' in line and '"trial": 1' in line)))
    again = dl("sweep", "--resume", folder, "--workers", "1")
    assert again.exit_code == 0, again.output
    assert "1 of 2 trials to run on" in again.output
    assert "worker processes" not in again.output  # in process, as asked
