"""Fault injection and bad input: `dl` loses nothing, executes nothing, names every bad input.

The numbers in the section titles are the points of docs/reliability.md, which also cites
the tests of test_train.py, test_config.py and tests/data/ that prove the other points.
Run this file alone with `python -m pytest -m reliability`.
"""

import errno
import io
import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dl_cli import training
from dl_cli.checkpoints import versions
from dl_cli.cli.app import app
from dl_cli.config import load_config
from dl_cli.continuation import trained_config
from dl_cli.layout import safe_name
from dl_cli.metrics import evaluate
from dl_cli.nn.model import Model
from dl_cli.runs import Run
from dl_cli.solver import Solver
from dl_cli.storage import RunError, load_npz, save_npz
from dl_cli.sweep.ledger import FINAL, Ledger

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

NAME_AND_SEED = {"name": "tiny", "seed": 5}  # of every run of this file (``tiny`` in conftest.py)


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.tmp"))


def script_validation(monkeypatch, metric: str, values: dict[int, float]) -> None:
    """Make the validation ``metric`` of epoch e be ``values[e]`` (the Solver scores
    an epoch before it counts it done)."""
    original = Solver.check_accuracy

    def check_accuracy(self, split):
        metrics = original(self, split)
        if split == "val":
            metrics[metric] = values[self.epoch + 1]
        return metrics

    monkeypatch.setattr(Solver, "check_accuracy", check_accuracy)


def edit_run_config(run_dir: Path, change, checkpoints: bool = False) -> None:
    """Edit the run's config.yaml; ``checkpoints``: and the config its checkpoints record,
    as a forger would (else a resume refuses the edit before it reads any state)."""
    path = run_dir / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw))
    if checkpoints:
        config = trained_config(load_config(path))

        for npz in (run_dir / "checkpoints").glob("*.npz"):
            arrays = load_npz(npz)
            meta = json.loads(str(arrays["meta"]))
            save_npz(npz, {**arrays, "meta": np.array(json.dumps({**meta, "config": config}))})


# -- 1. kill -9 while checkpoints are written -------------------------------------------
def slow_checkpoint_writes() -> None:
    """Checkpoints written as on a slow disk, pausing before and after the bytes, so that
    kills land inside writes whatever the file system."""
    savez = np.savez

    def slow_savez(file, **arrays):
        time.sleep(0.005)
        savez(file, **arrays)
        time.sleep(0.005)

    np.savez = slow_savez


def file_identity(path: Path):
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def wait_for_new(path: Path, before, pid: int, log: Path) -> None:
    """Wait until ``path`` is replaced (the child is training), failing if it exits."""
    deadline = time.monotonic() + 60
    while file_identity(path) in (None, before):
        done, status = os.waitpid(pid, os.WNOHANG)
        assert not done, f"dl exited with status {status}:\n{log.read_text()}"
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.002)


def test_kill_9_during_checkpoint_writes_loses_nothing(
        tmp_path, write_config, tiny, dl, metric_lines, fork_dl):
    run_dir, log = tmp_path / "run", tmp_path / "dl.log"
    # One full batch of a small model per epoch: most of each epoch is spent writing the
    # two checkpoints, so most kills land in those writes.
    config = write_config(tmp_path, {
        **tiny, "model": {"layers": [{"type": "affine", "units": 64}, "relu",
                                     {"type": "affine", "units": 64}, "relu",
                                     {"type": "affine", "units": 3}]},
        "optimizer": {"type": "adam", "lr": 1.0e-4},
        "train": {"epochs": 1000000, "batch_size": "full"},
        "checkpoint": {"monitor": "val/loss", "every_seconds": 0}})
    assert dl("train", config, "--print-config").exit_code == 0  # imports done before forking
    start = ["train", config, "--run-dir", run_dir, "-q"]
    resume = ["train", "--resume", run_dir, "-q"]
    last = run_dir / "checkpoints" / "last.npz"
    delays = random.Random(1)
    model = splits = None
    killed_mid_write, previous_pid = 0, None
    for attempt in range(20):
        before = file_identity(last)
        pid = fork_dl(start if attempt == 0 else resume, log, slow_checkpoint_writes)
        wait_for_new(last, before, pid, log)
        # The new process took the lock and removed the temp files of the one killed before.
        if previous_pid is not None:
            assert not list(run_dir.rglob(f".*.{previous_pid}.tmp"))
        time.sleep(delays.uniform(0, 0.04))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        killed_mid_write += bool(temp_files(run_dir))
        previous_pid = pid

        if model is None:
            cfg = load_config(run_dir / "config.yaml")
            parts = training.assemble(cfg)
            model, splits = parts.model, parts.splits
        best = Run(run_dir).load_checkpoint("best")  # always complete and readable
        for key, value in model.params.items():
            value[...] = best["params"][key]
        meta = best["meta"]
        assert meta["best_epoch"] == meta["epoch"]
        val_loss = evaluate(model, splits.val.X, splits.val.y, "val")["val/loss"]
        assert val_loss == pytest.approx(meta["best_value"], rel=1e-6)
        lines = metric_lines(run_dir)
        assert [r["epoch"] for r in lines] == list(range(1, len(lines) + 1))  # none lost or doubled
        if len(lines) >= meta["epoch"]:
            assert lines[meta["epoch"] - 1]["val/loss"] == meta["best_value"]
    assert killed_mid_write >= 1  # the scenario happened: a kill left a half-written file
    run = Run(run_dir)
    run.acquire()  # what the next start does: the dead holder's lock is taken over
    assert temp_files(run_dir) == []
    run.release()


# -- 2. a checkpoint folder that is full or not writable ---------------------------------
@pytest.mark.parametrize("fault", ["savez", "replace"])
def test_a_full_or_read_only_disk_stops_naming_the_file_and_keeps_the_checkpoints(
        tmp_path, monkeypatch, fault, tiny, write_config, dl, snapshot):
    run_dir = tmp_path / "run"
    checkpoints = run_dir / "checkpoints"
    writes, before = [], {}
    original_savez, original_replace = np.savez, os.replace

    def fail_on_the_third_write():
        writes.append(1)
        if len(writes) == 3:  # epoch 2: epoch 1 wrote best.npz and last.npz
            before.update(snapshot(checkpoints))
            code = errno.ENOSPC if fault == "savez" else errno.EROFS
            raise OSError(code, os.strerror(code))

    def savez(file, **arrays):
        fail_on_the_third_write()
        original_savez(file, **arrays)

    def replace(src, dst):
        if str(dst).endswith(".npz"):
            fail_on_the_third_write()
        original_replace(src, dst)

    if fault == "savez":
        monkeypatch.setattr(np, "savez", savez)
    else:
        monkeypatch.setattr(os, "replace", replace)
    result = dl("train", write_config(tmp_path, tiny), "--run-dir", run_dir, "-q")
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert re.search(rf"cannot write {re.escape(str(checkpoints))}/(best|last)\.npz", message)
    assert ("No space left on device" if fault == "savez" else "Read-only file system") in message
    assert snapshot(checkpoints) == before  # the previous checkpoints are unchanged
    assert temp_files(run_dir) == [] and not (run_dir / "run.lock").exists()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"


def test_a_file_where_the_checkpoint_folder_should_be_is_named(tmp_path, tiny, write_config, dl):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").write_text("not a folder")
    result = dl("train", write_config(tmp_path, tiny), "--run-dir", run_dir, "-q")
    assert result.exit_code == 2
    assert f"cannot make the checkpoint folder {run_dir / 'checkpoints'}" in \
        " ".join(result.output.split())


# -- 3 and 7. SIGINT and SIGTERM in a real process, then --resume; a second process ------
def start_dl(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dl_cli", *map(str, args), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def signal_after_epochs(proc: subprocess.Popen, run_dir: Path, epochs: int, signum: int) -> str:
    deadline = time.monotonic() + 60
    while len(Run(run_dir).read_metrics()) < epochs if (run_dir / "metrics.jsonl").exists() else True:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    return output


def test_sigint_and_sigterm_then_resume_match_an_uninterrupted_run(tmp_path, write_config,
                                                                   tiny_config, dl, metric_lines):
    signalled = tiny_config(
        **NAME_AND_SEED, samples=40,
        model={"layers": [{"type": "affine", "units": 16}, {"type": "batchnorm"}, "relu",
                          {"type": "dropout", "drop_rate": 0.2}, {"type": "affine", "units": 3}]},
        schedule={"type": "step", "every": 5, "gamma": 0.5},
        # 15 iterations per epoch; enough epochs that both signals land in training even
        # when a loaded machine lets the child run ahead of the test's polling
        train={"epochs": 60, "batch_size": 4})
    config = write_config(tmp_path, signalled)
    straight = tmp_path / "straight"
    # one thread in both runs: the checkpoints record it, and this test process's BLAS
    # may run on another count than a new process's
    assert dl("train", config, "--run-dir", straight, "-q", "--threads", "1").exit_code == 0

    run_dir = tmp_path / "run"
    proc = start_dl("train", config, "--run-dir", run_dir, "--threads", "1")
    # the lock, with its holder's PID in it, then the config: the folder holds a run
    while not ((run_dir / "run.lock").exists() and (run_dir / "run.lock").read_text()
               and (run_dir / "config.yaml").exists()):
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.005)
    # 7: a second process on the same folder is refused with the holder's PID.
    for second in (["train", "--resume", run_dir], ["train", config, "--run-dir", run_dir]):
        result = dl(*second)
        assert result.exit_code == 2
        assert f"in use by process {proc.pid}" in result.output
    output = signal_after_epochs(proc, run_dir, 1, signal.SIGINT)
    assert f"dl train --resume {run_dir}" in " ".join(output.split())
    first_stop = Run(run_dir).load_checkpoint("last")["meta"]
    assert first_stop["epoch"] + 2 < signalled["train"]["epochs"]

    proc = start_dl("train", "--resume", run_dir)
    signal_after_epochs(proc, run_dir, first_stop["epoch"] + 2, signal.SIGTERM)
    second_stop = Run(run_dir).load_checkpoint("last")["meta"]
    for stop in (first_stop, second_stop):  # stopped inside an epoch, its batch order kept
        assert stop["iteration"] >= 1

    proc = start_dl("train", "--resume", run_dir)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert metric_lines(run_dir) == metric_lines(straight)
    for kind in ("best", "last"):  # parameters, optimizer state, step count, generators
        assert (run_dir / f"checkpoints/{kind}.npz").read_bytes() == \
            (straight / f"checkpoints/{kind}.npz").read_bytes()
    summaries = [json.loads((d / "summary.json").read_text()) for d in (straight, run_dir)]
    for key in ("steps", "epochs", "best_epoch", "best_value", "test"):
        assert summaries[0][key] == summaries[1][key]


def test_a_new_run_into_a_folder_holding_a_run_is_refused(
        run_copy, tmp_path, tiny, write_config, dl, snapshot):
    before = snapshot(run_copy)
    result = dl("train", write_config(tmp_path, tiny), "--run-dir", run_copy, "-q")
    assert result.exit_code == 2
    assert f"{run_copy} already holds a run; continue it with dl train --resume {run_copy}" in \
        " ".join(result.output.split())
    assert snapshot(run_copy) == before and not (run_copy / "run.lock").exists()


# -- 4. resume after the best epoch ----------------------------------------------------
def test_resume_after_the_best_epoch_keeps_the_best_checkpoint_and_metric(tmp_path, monkeypatch,
                                                                          tiny, write_config,
                                                                          interrupt_at, dl, metric_lines):
    accuracies = {1: 0.5, 2: 0.9, 3: 0.6, 4: 0.7, 5: 0.8, 6: 0.85}
    script_validation(monkeypatch, "val/acc", accuracies)
    cfg = {**tiny, "train": {"epochs": 6, "batch_size": 8}}
    run_dir = tmp_path / "run"
    with interrupt_at(3 * 6 + 2):  # inside epoch 4, after the best epoch 2
        assert dl("train", write_config(tmp_path, cfg), "--run-dir", run_dir, "-q").exit_code == 130
    best = (run_dir / "checkpoints/best.npz").read_bytes()
    assert dl("train", "--resume", run_dir, "-q").exit_code == 0
    assert (run_dir / "checkpoints/best.npz").read_bytes() == best
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["best_epoch"], summary["best_value"]) == (2, 0.9)
    assert [r["val/acc"] for r in metric_lines(run_dir)] == list(accuracies.values())


def test_resume_keeps_the_epoch_records_without_train_metrics(tmp_path, tiny, write_config,
                                                              interrupt_at, dl):
    cfg = {**tiny, "train": {"epochs": 4, "batch_size": 8, "eval_train_samples": 0}}
    straight, run_dir = tmp_path / "straight", tmp_path / "run"
    assert dl("train", write_config(tmp_path, cfg), "--run-dir", straight, "-q").exit_code == 0
    with interrupt_at(2 * 6 + 2):
        assert dl("train", write_config(tmp_path, cfg), "--run-dir", run_dir, "-q").exit_code == 130
    assert dl("train", "--resume", run_dir, "-q").exit_code == 0
    summaries = [json.loads((d / "summary.json").read_text()) for d in (straight, run_dir)]
    for summary in summaries:
        summary["best"].pop("time"), summary["final"].pop("time")
    assert summaries[1]["best"] == summaries[0]["best"] is not None
    assert summaries[1]["final"] == summaries[0]["final"]


def test_resume_keeps_the_batch_lines_and_the_time_of_the_epochs_before(tmp_path, tiny,
        write_config, interrupt_at, dl, metric_lines):
    cfg = {**tiny, "train": {"epochs": 4, "batch_size": 8, "log_every": 1}}
    straight, run_dir = tmp_path / "straight", tmp_path / "run"
    assert dl("train", write_config(tmp_path, cfg), "--run-dir", straight, "-q").exit_code == 0
    with interrupt_at(2 * 6 + 4):  # inside epoch 3, after its 4th step
        assert dl("train", write_config(tmp_path, cfg), "--run-dir", run_dir, "-q").exit_code == 130
    before = metric_lines(run_dir)  # timings popped
    times = [r["time"] for r in Run(run_dir).read_metrics() if "lr" in r]
    assert dl("train", "--resume", run_dir, "-q").exit_code == 0
    lines = metric_lines(run_dir)
    assert lines[:len(before)] == before  # steps 13 to 16 of epoch 3 too
    assert [r["step"] for r in lines if "train/batch_loss" in r] == list(range(1, 25))
    assert lines == metric_lines(straight)
    resumed = [r["time"] for r in Run(run_dir).read_metrics() if "lr" in r]
    assert resumed[:2] == times and resumed[2] >= times[1]  # the clock goes on
    assert json.loads((run_dir / "summary.json").read_text())["time_s"] >= times[1]
    log = (run_dir / "train.log").read_text()  # the log tells the run's story
    assert "interrupted (Ctrl-C) at epoch 3, iteration 4" in log
    assert "resuming tiny after epoch 2, iteration 4 (step 16)" in log


def test_resuming_a_run_that_stopped_early_trains_nothing_more(tmp_path, monkeypatch, tiny,
                                                               write_config, dl, metric_lines):
    script_validation(monkeypatch, "val/acc", {1: 0.9, 2: 0.5, 3: 0.5, 4: 0.5, 5: 0.5})
    cfg = {**tiny, "train": {"epochs": 5, "batch_size": 8,
                             "early_stopping": {"monitor": "val/acc", "patience": 2}}}
    run_dir = tmp_path / "run"
    assert dl("train", write_config(tmp_path, cfg), "--run-dir", run_dir, "-q").exit_code == 0
    before = json.loads((run_dir / "summary.json").read_text())
    assert (before["status"], before["epochs"]) == ("early_stopped", 3)
    lines, best = metric_lines(run_dir), (run_dir / "checkpoints/best.npz").read_bytes()
    assert dl("train", "--resume", run_dir, "-q").exit_code == 0
    after = json.loads((run_dir / "summary.json").read_text())
    for key in ("status", "epochs", "steps", "best_epoch", "best_value", "test"):
        assert after[key] == before[key], key
    assert metric_lines(run_dir) == lines
    assert (run_dir / "checkpoints/best.npz").read_bytes() == best


@pytest.mark.parametrize("change, message", [
    (lambda raw: raw.update(optimizer={"type": "momentum", "lr": 0.01}),
     "momentum state has an unknown entry 'm/0.W'; it keeps v"),
    (lambda raw: raw.update(schedule={"type": "plateau"}),
     "plateau state needs exactly"),
    (lambda raw: raw["train"].update(dtype="float64"),
     "adam state 'm/0.W' is float32 (2, 16), the parameter float64 (2, 16)"),
])
def test_optimizer_or_schedule_state_that_does_not_fit_stops_the_resume(interrupted_run, change,
                                                                        message, dl, snapshot):
    run_dir = interrupted_run
    edit_run_config(run_dir, change, checkpoints=True)
    before = snapshot(run_dir)
    result = dl("train", "--resume", run_dir)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert message in text and "nothing was resumed and the run folder is unchanged" in text
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("entry, value, expected", [
    ("m/0.W", np.zeros((3, 3), np.float32), "adam state 'm/0.W' is float32 (3, 3), the parameter "
                                            "float32 (2, 16)"),
    ("v/0.b", np.full(16, np.nan, np.float32), "adam state 'v/0.b' holds non-finite values"),
    ("m/9.W", np.zeros(2, np.float32), "adam state 'm/9.W' belongs to no parameter of the model"),
])
def test_forged_optimizer_state_stops_the_resume(
        interrupted_run, entry, value, expected, dl, rewrite_checkpoint, snapshot):
    run_dir = interrupted_run

    def forge(arrays):
        arrays[f"optim/{entry}"] = value

    rewrite_checkpoint(run_dir / "checkpoints/last.npz", forge)
    before = snapshot(run_dir)
    result = dl("train", "--resume", run_dir)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())
    assert snapshot(run_dir) == before


def test_a_meta_entry_of_the_wrong_kind_stops_the_resume(interrupted_run, dl, rewrite_checkpoint):
    run_dir = interrupted_run

    def forge(arrays):
        meta = json.loads(str(arrays["meta"]))
        arrays["meta"] = np.array(json.dumps({**meta, "epoch": "1"}))

    rewrite_checkpoint(run_dir / "checkpoints/last.npz", forge)
    result = dl("train", "--resume", run_dir)
    assert result.exit_code == 2, result.output
    assert "checkpoint 'meta' entry 'epoch' is '1', expected a count" in " ".join(result.output.split())


# -- 5. a truncated or corrupted last.npz on --resume ---------------------------------
@pytest.mark.parametrize("damage", ["empty", "half", "no_directory", "flipped_byte"])
def test_a_damaged_last_checkpoint_stops_the_resume_naming_it(run_copy, damage, dl, snapshot):
    last = run_copy / "checkpoints/last.npz"
    data = bytearray(last.read_bytes())
    if damage == "empty":
        data = b""
    elif damage == "half":
        data = data[: len(data) // 2]
    elif damage == "no_directory":
        data = data[:-22]  # the zip's end-of-central-directory record
    else:
        data[200] ^= 0xFF  # inside the first array's bytes: its CRC no longer matches
    last.write_bytes(bytes(data))
    before = snapshot(run_copy)
    result = dl("train", "--resume", run_copy, "-q")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"{last}: not a readable checkpoint" in message
    assert "nothing was resumed" in message
    assert snapshot(run_copy) == before  # metrics, best.npz, summary: all as they were
    assert not (run_copy / "run.lock").exists()


# -- 6. a non-finite loss, and NaN validation metrics ----------------------------------
def test_a_nan_loss_stops_with_exit_3_and_leaves_the_best_checkpoint(tmp_path, monkeypatch, tiny,
        write_config, dl, metric_lines):
    run_dir = tmp_path / "run"
    losses, best_before = [], []
    original = Model.loss

    def loss(self, x, y, train=True, keys=None):
        value, grads = original(self, x, y, train, keys)
        if len(losses) == 2 * 6 + 1:  # epoch 3, iteration 2
            best_before.append((run_dir / "checkpoints/best.npz").read_bytes())
            value = float("nan")
        losses.append(value)
        return value, grads

    monkeypatch.setattr(Model, "loss", loss)
    result = dl("train", write_config(tmp_path, tiny), "--run-dir", run_dir, "-q")
    assert result.exit_code == 3
    message = " ".join(result.output.split())
    assert f"loss became nan at epoch 3, iteration 2; last finite loss: {losses[-2]}" in message
    assert (run_dir / "checkpoints/best.npz").read_bytes() == best_before[0]
    last_line = metric_lines(run_dir)[-1]
    assert (last_line["status"], last_line["epoch"], last_line["step"]) == ("diverged", 3, 13)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize("metric,values,best_epoch", [
    ("val/acc", {1: float("nan"), 2: 0.4, 3: float("nan"), 4: 0.3}, 2),
    ("val/loss", {1: float("inf"), 2: float("nan"), 3: 1.5, 4: float("nan")}, 3),
])
def test_a_nan_validation_metric_never_becomes_the_best(tmp_path, monkeypatch, metric, values,
                                                        best_epoch, tiny, write_config, dl):
    script_validation(monkeypatch, metric, values)
    cfg = {**tiny, "checkpoint": {"monitor": metric}}
    run_dir = tmp_path / "run"
    assert dl("train", write_config(tmp_path, cfg), "--run-dir", run_dir, "-q").exit_code == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["best_epoch"], summary["best_value"]) == (best_epoch, values[best_epoch])
    assert Run(run_dir).load_checkpoint("best")["meta"]["epoch"] == best_epoch


# -- 8 and 16. a sweep worker killed; the same results on any number of workers ------------
SWEEP_SPEC = {"name": "killed", "method": "random", "trials": 3, "seed": 0,
              "params": {"optimizer.lr": {"loguniform": [1.0e-3, 1.0e-1]}}}


def test_a_killed_sweep_worker_fails_its_trial_alone_and_a_retry_reruns_only_it(
        tmp_path, write_config, tiny_config, dl, metric_lines):
    base = tiny_config(**NAME_AND_SEED, samples=60, train={"epochs": 25, "batch_size": 8})
    spec = tmp_path / "sweep.yaml"
    base_path = write_config(tmp_path, base, "base.yaml")
    spec.write_text(yaml.safe_dump({**SWEEP_SPEC, "base": str(base_path)}))
    straight = tmp_path / "straight"
    assert dl("sweep", spec, "--sweep-dir", straight).exit_code == 0  # one worker, in process

    folder = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, "-m", "dl_cli", "sweep", str(spec), "--sweep-dir",
                             str(folder), "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    trial = folder / "trial-0000"
    deadline = time.monotonic() + 120
    while not (trial / "metrics.jsonl").exists() or not (trial / "metrics.jsonl").read_text():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    worker = json.loads((trial / "run.lock").read_text())["pid"]  # the worker training trial 0
    os.kill(worker, signal.SIGKILL)
    output, _ = proc.communicate(timeout=120)
    table = Ledger(folder / "ledger.jsonl").table()
    assert table[0].status == "failed" and "worker process died" in table[0].error, output
    assert all(state.status in FINAL for state in table.values())  # none left running
    failed = {i for i, state in table.items() if state.status == "failed"}
    assert failed == {0}, table[1].error  # the trial on the other worker: stopped, continued
    assert table[1].status == "completed"
    kept = {p: p.read_bytes() for i in set(table) - failed  # (checkpoints but the best one
            for p in (folder / f"trial-{i:04d}").glob("*.*")}  # are removed at the end)

    result = dl("sweep", "--resume", folder, "--retry-failed")
    assert result.exit_code == 0, result.output
    events = Ledger(folder / "ledger.jsonl").events()
    resumed_at = max(i for i, e in enumerate(events) if e["event"] == "sweep")
    assert {e["trial"] for e in events[resumed_at:] if e["event"] == "start"} == failed
    assert {p: p.read_bytes() for p in kept} == kept  # completed trials untouched
    # 16: every trial, and the best checkpoint, as in the one-worker sweep without a kill.
    for i in table:
        assert metric_lines(folder / f"trial-{i:04d}") == metric_lines(straight / f"trial-{i:04d}")
    (best,) = {p.relative_to(straight) for p in straight.rglob("best.npz")}
    assert (folder / best).read_bytes() == (straight / best).read_bytes()


# -- 9. every config mistake in one report ----------------------------------------------
MISTAKES = """\
name: mistakes
seed: 0
data: {dataset: {type: npz, path: DATA}}
model:
  layers:
    - {type: affine, units: 8}
    - rellu
    - {type: dropout, drop_rate: 1.5}
    - {type: affine, units: 3}
optimizer: {type: adam, lr: -1}
train: {epochs: ten, batch_size: 0, erly_stopping: {patience: 2}}
"""


def check_report(result, data_loaded, expected):
    assert result.exit_code == 2
    assert data_loaded == []
    message = " ".join(result.output.split())
    for fragment in expected:
        assert fragment in message, fragment


def spy_on_data(monkeypatch) -> list:
    calls = []
    monkeypatch.setattr(training, "load", lambda *args, **kwargs: calls.append(args))
    return calls


EXPECTED = ["model.layers.1: unknown layer 'rellu' (did you mean 'relu'?)",
            "model.layers.2.drop_rate:", "optimizer.lr:",
            "train.epochs: expected an integer, got 'ten'",
            "train.batch_size: must be an integer >= 1",
            "train.erly_stopping: unknown key (did you mean 'early_stopping'?)"]


def test_every_config_mistake_is_in_one_report_and_nothing_is_loaded(tmp_path, monkeypatch, dl):
    calls = spy_on_data(monkeypatch)
    path = tmp_path / "mistakes.yaml"
    path.write_text(MISTAKES.replace("DATA", str(tmp_path / "data.npz")))
    check_report(dl("train", path), calls, EXPECTED)
    assert not (tmp_path / "runs").exists() and not Path("runs/mistakes").exists()


def test_duplicate_keys_are_reported_with_every_other_mistake(tmp_path, monkeypatch, dl):
    calls = spy_on_data(monkeypatch)
    path = tmp_path / "mistakes.yaml"
    path.write_text(MISTAKES.replace("DATA", str(tmp_path / "data.npz")) + "seed: 1\n")
    check_report(dl("train", path), calls, [*EXPECTED, "seed: duplicate key on lines 2 and 12"])


# -- 10. configs that fail late -------------------------------------------------------------
# Configs the fuzzer of test_fuzz.py can produce that fail late: a model that cannot score
# the data, a batch a layer refuses, and a resumed run whose config no longer loads; each
# exits 2 with the reason.
@pytest.mark.parametrize("change,message", [
    ({"model": {"layers": [{"type": "affine", "units": 2}]}},
     "model.loss 'softmax_cross_entropy': the model gives scores of shape (2,) per sample, "
     "but 3 classes need (3,)"),
    ({"model": {"layers": [{"type": "affine", "units": 3}], "loss": "mse"}},
     "model.loss 'mse': the model gives 3 values per sample, the targets have 1"),
    ({"model": {"layers": [{"type": "affine", "units": 1}], "loss": "binary_cross_entropy"}},
     "model.loss 'binary_cross_entropy' takes labels 0 and 1, but the data has 3 classes"),
    ({"data": {"dataset": "polynomial"}, "model": {"layers": [{"type": "affine", "units": 3}]}},
     "model.loss 'softmax_cross_entropy' needs class labels, but the data has real-valued "
     "targets; use mse"),
])
def test_a_model_that_cannot_score_the_data_is_refused_before_training(tmp_path, change, message,
                                                                       tiny, write_config, dl):
    result = dl("train", write_config(tmp_path, {**tiny, **change}), "-q")
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()


def test_a_batch_a_layer_refuses_exits_2_naming_the_layer_and_the_batch(tmp_path, tiny,
                                                                        write_config, dl):
    cfg = {**tiny, "model": {"layers": [{"type": "affine", "units": 4}, {"type": "batchnorm"},
                                        {"type": "affine", "units": 3}]},
           "train": {"epochs": 1, "batch_size": 1}}
    result = dl("train", write_config(tmp_path, cfg), "-q")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "epoch 1, iteration 1: the model cannot train on a batch of shape (1, 2)" in message
    assert "batchnorm needs at least 2 values per feature" in message


def test_resuming_a_run_whose_config_no_longer_loads_exits_2(run_copy, dl):
    edit_run_config(run_copy, lambda raw: raw["train"].update(epochs=0))
    result = dl("train", "--resume", run_copy, "-q")
    assert result.exit_code == 2 and "train.epochs: must be >= 1" in result.output


# -- 11. malformed data files through `dl train` ------------------------------------------
def idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes() + \
        array.astype(np.uint8).tobytes()


def malformed(folder: Path, kind: str) -> dict:
    """A dataset spec whose files hold one mistake."""
    if kind == "csv":
        (folder / "table.csv").write_text("a,b,label\n1,2,0\n3,x,1\n")
        return {"type": "csv", "path": str(folder / "table.csv")}
    if kind == "mnist":
        for name, array in (("train-images-idx3-ubyte", np.zeros((4, 28, 28))),
                            ("train-labels-idx1-ubyte", np.array([0, 1, 2, 11])),
                            ("t10k-images-idx3-ubyte", np.zeros((2, 28, 28))),
                            ("t10k-labels-idx1-ubyte", np.array([0, 1]))):
            (folder / name).write_bytes(idx(array))
        return {"type": "mnist", "path": str(folder)}
    record = bytes(3073)
    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(record * 2)
    (folder / "test_batch.bin").write_bytes(record + record[:100])
    return {"type": "cifar10", "path": str(folder)}


@pytest.mark.parametrize("kind,where", [
    ("csv", r"table\.csv: line 3, column 2: 'x' is not a number"),
    ("mnist", r"train-labels-idx1-ubyte: byte offset 11: label 11 is out of range"),
    ("cifar10", r"test_batch\.bin: length 3173 is not a positive multiple .* offset 3073"),
])
def test_malformed_data_files_exit_2_naming_file_and_place(tmp_path, kind, where, tiny,
                                                           write_config, dl):
    cfg = {**tiny, "data": {"dataset": malformed(tmp_path, kind), "split": {"val": 0.25}}}
    result = dl("train", write_config(tmp_path, cfg), "-q")
    assert result.exit_code == 2
    assert re.search(where, " ".join(result.output.split()))
    assert not list((tmp_path / "runs").rglob("*.npz"))


# -- 12. checkpoints that do not fit the model -------------------------------------------
@pytest.mark.parametrize("command", ["eval", "resume"])
def test_a_checkpoint_with_other_shapes_is_refused_before_loading(run_copy, command, dl, snapshot):
    edit_run_config(run_copy, lambda raw: raw["model"]["layers"][0].update(units=12),
                    checkpoints=True)
    before = snapshot(run_copy)
    args = ["eval", run_copy] if command == "eval" else ["train", "--resume", run_copy, "-q"]
    result = dl(*args)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "parameter '0.W' has shape (2, 16), the model expects (2, 12)" in message
    assert snapshot(run_copy) == before


def test_a_checkpoint_with_other_names_is_refused(run_copy, dl):
    edit_run_config(run_copy, lambda raw: raw["model"]["layers"].insert(
        2, {"type": "affine", "units": 16}))
    result = dl("eval", run_copy)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert ("parameters do not match the model (missing: ['3.W', '3.b']; unexpected: none)"
            in message)


def test_non_finite_weights_are_refused(run_copy, dl, rewrite_checkpoint):
    def poison(arrays):
        arrays["param/2.W"][0, 0] = np.inf

    rewrite_checkpoint(run_copy / "checkpoints/best.npz", poison)
    result = dl("eval", run_copy)
    assert result.exit_code == 2
    assert "parameter '2.W' holds non-finite or non-float values" in " ".join(result.output.split())


def test_a_compressed_checkpoint_is_refused_since_its_sizes_cannot_be_checked(run_copy, dl):
    best = run_copy / "checkpoints/best.npz"
    np.savez_compressed(best, **load_npz(best))
    result = dl("eval", run_copy)
    assert result.exit_code == 2
    assert "is compressed; checkpoints store arrays as they are" in " ".join(result.output.split())


def test_a_damaged_summary_is_named_and_listings_show_the_other_runs(run_copy, finished_run, dl):
    (run_copy / "summary.json").write_text('{"status": "comp')  # cut mid-write by hand
    assert dl("eval", run_copy).exit_code == 0  # eval does not need the summary
    diagnosed = dl("diagnose", run_copy)
    assert diagnosed.exit_code == 2
    assert f"{run_copy / 'summary.json'}: not a readable summary" in " ".join(diagnosed.output.split())
    listed = runner.invoke(app, ["runs", str(run_copy.parent)], terminal_width=300)
    assert listed.exit_code == 0, listed.output
    assert "unreadable (summary.json)" in listed.output
    compared = runner.invoke(app, ["compare", str(run_copy), str(finished_run)], terminal_width=300)
    assert compared.exit_code == 0, compared.output
    assert "unreadable (summary.json)" in compared.output and "completed" in compared.output


def test_a_forged_header_claiming_a_huge_array_is_refused_without_allocating_it(
        run_copy, dl, forge, traced_peak):
    best = run_copy / "checkpoints/best.npz"
    arrays = load_npz(best)
    members = {}
    for key, value in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, value)
        members[f"{key}.npy"] = buffer.getvalue()
    # 2 GiB claimed, 64 bytes stored
    members["param/0.W.npy"] = forge.npy((32768, 16384), "<f4", bytes(64))
    forge(best, members)
    refused, peak = traced_peak(lambda: load_npz(best), raises=RunError)
    assert peak < 16 * 2**20
    assert ("'param/0.W': its header claims shape (32768, 16384) of float32 "
            "(2,147,483,648 bytes), but 64 bytes are stored") in str(refused)
    result = dl("eval", run_copy)
    assert result.exit_code == 2 and "its header claims shape (32768, 16384)" in result.output


# -- 14. pickles and object arrays are refused, nothing is executed ---------------------
class Payload:
    """Unpickling this creates ``target``: proof that something was executed."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


@pytest.mark.parametrize("command", ["eval", "resume"])
def test_a_pickle_renamed_npz_is_refused_and_not_executed(run_copy, tmp_path, command, dl):
    target = tmp_path / "executed"
    for kind in ("best", "last"):
        (run_copy / f"checkpoints/{kind}.npz").write_bytes(pickle.dumps(Payload(target)))
    args = ["eval", run_copy] if command == "eval" else ["train", "--resume", run_copy, "-q"]
    result = dl(*args)
    assert result.exit_code == 2
    assert "not a readable checkpoint (File is not a zip file)" in " ".join(result.output.split())
    assert not target.exists()


def test_an_object_array_in_a_checkpoint_is_refused_and_not_executed(run_copy, tmp_path, dl):
    target = tmp_path / "executed"
    best = run_copy / "checkpoints/best.npz"
    arrays = load_npz(best)
    arrays["param/0.W"] = np.array([Payload(target)], dtype=object)
    np.savez(best, **arrays)
    result = dl("eval", run_copy)
    assert result.exit_code == 2
    assert "member 'param/0.W' holds object values" in " ".join(result.output.split())
    assert not target.exists()


def test_the_data_path_refuses_a_pickle_renamed_npz_without_executing_it(tmp_path, tiny,
                                                                         write_config, dl):
    target = tmp_path / "executed"
    data = tmp_path / "data.npz"
    data.write_bytes(pickle.dumps(Payload(target)))
    cfg = {**tiny, "data": {"dataset": {"type": "npz", "path": str(data)}}}
    result = dl("train", write_config(tmp_path, cfg), "-q")
    assert result.exit_code == 2 and "data.npz: not a .npz archive" in result.output
    assert not target.exists()


UNSAFE = [
    (r"pickle\.loads?\(|\bmarshal\b|\bshelve\b", "unpickling"),
    (r"allow_pickle\s*=\s*True", "np.load with pickles"),
    (r"yaml\.(load|full_load|unsafe_load|load_all)\(|yaml\.(Unsafe|Full)?Loader\b", "unsafe YAML"),
    (r"(?<![\w.])(eval|exec|__import__)\(|\bimportlib\b", "code from strings"),
]
# The one module that imports by name: a config's plugins, which the user named (see
# test_plugins.py::test_a_run_folder_imports_no_plugin_until_allowed); importlib only.
IMPORTS_PLUGINS = (ROOT / "dl_cli" / "plugins.py", r"\bimportlib\b")


def test_the_source_never_unpickles_or_imports_by_name():
    for path in sorted((ROOT / "dl_cli").rglob("*.py")):
        text = path.read_text()
        if path == IMPORTS_PLUGINS[0]:
            text = re.sub(IMPORTS_PLUGINS[1], "", text)
        for pattern, what in UNSAFE:
            match = re.search(pattern, text)
            assert match is None, f"{path}: {what}: {match and match.group(0)}"
        for call in re.findall(r"np\.load\([^)]*\)", text):
            assert "allow_pickle=False" in call, f"{path}: {call}"


# -- 15. names cannot leave the runs folder; archive members are never paths -------------
@pytest.mark.parametrize("name", ["..", "...", ".", ".hidden", "~", "-", "a b", "$HOME", "..x"])
def test_run_names_stay_inside_the_runs_folder(tmp_path, name, tiny, write_config, dl):
    cfg = {**tiny, "name": name, "train": {"epochs": 1, "batch_size": 8}}
    result = dl("train", write_config(tmp_path, cfg), "-q")
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name == safe_name(name) and not folder.name.startswith(".")
    assert folder.resolve().parent == (tmp_path / "runs").resolve()


@pytest.mark.parametrize("name", ["../../x", "a/../../b", "/etc", "..\\..\\x"])
def test_run_names_with_separators_are_rejected(tmp_path, name, tiny, write_config, dl):
    result = dl("train", write_config(tmp_path, {**tiny, "name": name}), "-q")
    assert result.exit_code == 2 and "name: must be a non-empty name without '/'" in result.output
    assert not (tmp_path / "runs").exists()


def test_checkpoint_member_names_never_become_paths(run_copy, tmp_path):
    best = run_copy / "checkpoints/best.npz"
    arrays = load_npz(best)
    with zipfile.ZipFile(best, "a") as archive:
        buffer = io.BytesIO()
        np.save(buffer, np.ones(3, np.float32))
        archive.writestr("../../../escaped.npy", buffer.getvalue())
    assert "../../../escaped" in load_npz(best) and len(load_npz(best)) == len(arrays) + 1
    assert not list(tmp_path.rglob("escaped*"))


# -- 16. versions recorded; resuming under other versions warns ---------------------------
def test_each_run_records_versions_and_the_config_hash(finished_run):
    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["environment"] == versions()
    assert set(versions()) == {"python", "numpy", "dl"}
    assert summary["config_hash"] == training.config_hash(load_config(finished_run / "config.yaml"))
    for kind in ("best", "last"):
        assert Run(finished_run).load_checkpoint(kind)["meta"]["versions"] == versions()


def test_resuming_under_other_versions_warns_on_stderr_and_in_the_log(
        interrupted_run, rewrite_checkpoint):
    run_dir = interrupted_run

    def older(arrays):
        meta = json.loads(str(arrays["meta"]))
        meta["versions"].update(dl="0.0.1", numpy="1.26.0")
        arrays["meta"] = np.array(json.dumps(meta))

    rewrite_checkpoint(run_dir / "checkpoints/last.npz", older)
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "-q"])
    assert result.exit_code == 0, result.output
    stderr = " ".join(result.stderr.split())
    for name, old in (("dl", "0.0.1"), ("numpy", "1.26.0")):
        line = (f"warning: resuming a checkpoint written with {name} {old} "
                f"under {name} {versions()[name]}")
        assert line in stderr
        assert line in (run_dir / "train.log").read_text()
    assert "python" not in stderr
