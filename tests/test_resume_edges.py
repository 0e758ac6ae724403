"""Resuming runs that were stopped, edited or forged at awkward moments: one clear story
each, exit 0 or exit 2 with a message, never a traceback.

docs/reliability.md, points 3a to 3e.
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from dl_cli.solver import Solver
from dl_cli.storage import load_npz

pytestmark = pytest.mark.reliability


def said(result) -> str:
    return " ".join(result.output.split())


# -- 3a. killed before its first checkpoint ------------------------------------------------
@pytest.fixture
def unsaved(tiny) -> dict:
    """``tiny`` in 23 steps an epoch, each logged."""
    return {**tiny, "train": {"epochs": 2, "batch_size": 2, "log_every": 1}}


def slow_steps() -> None:
    """Training steps that take 10 ms more each, so that a test can kill a run inside
    its first epoch."""
    step = Solver.step
    Solver.step = lambda self, idx: (time.sleep(0.01), step(self, idx))[1]


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(
        tmp_path, dl, metric_lines, unsaved, write_config, fork_dl):
    config = write_config(tmp_path, unsaved)
    straight = tmp_path / "straight"
    assert dl("train", config, "--run-dir", straight, "-q").exit_code == 0
    run_dir, log = tmp_path / "run", tmp_path / "log.txt"
    pid = fork_dl(["train", config, "--run-dir", run_dir, "-q"], log, slow_steps)
    deadline = time.monotonic() + 60
    while not (run_dir / "metrics.jsonl").exists() or len(metric_lines(run_dir)) < 3:
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), log.read_text()
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)  # three steps into the first epoch, of 23
    os.waitpid(pid, 0)
    assert not (run_dir / "checkpoints/last.npz").exists()
    again = dl("train", config, "--run-dir", run_dir, "-q")  # the folder holds that run
    assert again.exit_code == 2 and f"continue it with dl train --resume {run_dir}" in said(again)
    resumed = dl("train", "--resume", run_dir, "-q")
    assert resumed.exit_code == 0, resumed.output
    assert f"{run_dir} stopped before its first checkpoint: training it from the start" in \
        said(resumed)
    assert metric_lines(run_dir) == metric_lines(straight)
    for kind in ("best", "last"):
        assert (run_dir / f"checkpoints/{kind}.npz").read_bytes() == \
            (straight / f"checkpoints/{kind}.npz").read_bytes()


# -- 3b. an edited config.yaml -------------------------------------------------------------
def edit(run_dir: Path, change) -> None:
    path = run_dir / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw))


@pytest.mark.parametrize("change, keys", [
    (lambda raw: raw.update(seed=6), "seed: 5 → 6"),
    (lambda raw: raw["data"]["split"].update(val=0.3), "data.split.val: 0.25 → 0.3"),
    (lambda raw: raw["data"].update(dataset={"type": "spiral", "classes": 3, "samples": 30,
                                             "noise": 0.3}),
     "data.dataset.noise: 0.2 → 0.3"),
    (lambda raw: raw.update(optimizer={"type": "sgd", "lr": 0.1}),
     "optimizer.lr: 0.01 → 0.1, optimizer.type: \"adam\" → \"sgd\""),
])
def test_a_run_whose_config_was_edited_is_not_resumed_and_the_keys_are_named(
        interrupted_run, change, keys, dl, snapshot):
    edit(interrupted_run, change)
    before = snapshot(interrupted_run)
    result = dl("train", "--resume", interrupted_run, "-q")
    assert result.exit_code == 2, result.output
    message = said(result)
    assert "Traceback" not in message
    assert f"{interrupted_run / 'config.yaml'} was edited since " in message
    assert f"({keys}" in message and "nothing was resumed and the run folder is unchanged" in message
    assert snapshot(interrupted_run) == before


def test_a_run_may_be_resumed_for_more_epochs(interrupted_run, dl, metric_lines):
    edit(interrupted_run, lambda raw: raw["train"].update(epochs=6))
    assert dl("train", "--resume", interrupted_run, "-q").exit_code == 0
    assert [r["epoch"] for r in metric_lines(interrupted_run)] == [1, 2, 3, 4, 5, 6]


def test_a_checkpoint_that_records_no_config_resumes_as_before(
        interrupted_run, dl, rewrite_checkpoint):
    def forget(arrays):  # a checkpoint written before checkpoints recorded their config
        meta = json.loads(str(arrays["meta"]))
        del meta["config"]
        arrays["meta"] = np.array(json.dumps(meta))

    for kind in ("last", "best"):
        rewrite_checkpoint(interrupted_run / f"checkpoints/{kind}.npz", forget)
    assert dl("train", "--resume", interrupted_run, "-q").exit_code == 0


# -- 3c. a read-only run folder --------------------------------------------------------------
def dl_with_mount(mount: str, *args) -> subprocess.CompletedProcess:
    """`dl ARGS` in a mount namespace of its own in which ``mount`` (a shell command) ran
    first: a real read-only or full file system, seen by that process alone."""
    command = " ".join(shlex.quote(str(a)) for a in (sys.executable, "-m", "dl_cli", *args))
    return subprocess.run(["unshare", "-m", "sh", "-c", f"{mount} && exec {command}"],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.usefixtures("private_mounts")
@pytest.mark.parametrize("folder", ["", "checkpoints"])
def test_a_read_only_run_folder_stops_the_resume_with_a_message(interrupted_run, folder, snapshot):
    read_only = interrupted_run / folder
    before = snapshot(interrupted_run)
    done = dl_with_mount(f"mount --bind -o ro {shlex.quote(str(read_only))} "
                         f"{shlex.quote(str(read_only))}", "train", "--resume", interrupted_run, "-q")
    message = " ".join(done.stderr.split())
    assert "Traceback" not in message
    if folder == "":  # not even the lock can be taken
        assert done.returncode == 2, message
        assert f"cannot take the lock {interrupted_run / 'run.lock'} (Read-only file system); " \
               f"the folder must be writable" in message
    else:  # training runs until its first checkpoint write
        assert done.returncode == 1, message
        assert f"cannot write {interrupted_run / 'checkpoints'}" in message
        assert "Read-only file system; the checkpoints already written are unchanged" in message
    after = snapshot(interrupted_run)
    assert {k: v for k, v in after.items() if k.startswith("checkpoints")} == \
        {k: v for k, v in before.items() if k.startswith("checkpoints")}
    assert not (interrupted_run / "run.lock").exists()


# -- 3d. a forged batch order ----------------------------------------------------------------
@pytest.mark.parametrize("forge, found", [
    (lambda arrays: arrays.pop("perm"), "is missing"),
    (lambda arrays: arrays.update(perm=arrays["perm"] + 1000), "is not a permutation (a sample repeated or out of range)"),
    (lambda arrays: arrays.update(perm=arrays["perm"].astype(np.float64)), "is float64 of shape (44,)"),
    (lambda arrays: arrays.update(perm=arrays["perm"][:10]), "is int64 of shape (10,)"),
    (lambda arrays: arrays.update(perm=np.zeros(44, np.int64)), "is not a permutation (a sample repeated or out of range)"),
])
def test_a_forged_batch_order_stops_the_resume(
        interrupted_run, forge, found, dl, rewrite_checkpoint, snapshot):
    rewrite_checkpoint(interrupted_run / "checkpoints/last.npz", forge)
    before = snapshot(interrupted_run)
    result = dl("train", "--resume", interrupted_run, "-q")
    assert result.exit_code == 2, result.output
    message = said(result)
    assert f"checkpoint 'perm', the batch order of the epoch stopped midway, {found}; expected " \
           f"a permutation of the 44 training samples; nothing was resumed" in message
    assert snapshot(interrupted_run) == before


def test_an_iteration_beyond_the_epoch_stops_the_resume(interrupted_run, dl, rewrite_checkpoint):
    def forge(arrays):
        meta = json.loads(str(arrays["meta"]))
        arrays["meta"] = np.array(json.dumps({**meta, "iteration": 7}))

    rewrite_checkpoint(interrupted_run / "checkpoints/last.npz", forge)
    result = dl("train", "--resume", interrupted_run, "-q")
    assert result.exit_code == 2
    assert "'iteration' is 7, but an epoch has 6 iterations" in said(result)


# -- 3e. a vocabulary that is not text ---------------------------------------------------------
def test_a_vocabulary_that_is_not_utf8_is_named_by_dl_sample(text_run, tmp_path, as_older_run, dl):
    copy = Path(shutil.copytree(text_run, tmp_path / "run"))
    as_older_run(copy)
    (copy / "vocab.json").write_bytes(b'["a", "\xff\xfe"]\n')
    result = dl("sample", copy)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{copy / 'vocab.json'}: not UTF-8 text (byte 7 cannot be decoded)" in said(result)


# -- 3f. diagnostics of an epoch stopped midway -------------------------------------------------
@pytest.fixture
def diagnosed(tiny) -> dict:
    """``tiny`` deeper, recording diagnostics, in 22 steps an epoch."""
    return {**tiny, "model": {"layers": [{"type": "affine", "units": 16}, "relu",
                                         {"type": "affine", "units": 16}, "tanh",
                                         {"type": "affine", "units": 3}]},
            "train": {"epochs": 3, "batch_size": 2, "diagnostics": True}}


def test_the_diagnostics_of_an_epoch_stopped_midway_are_those_of_an_uninterrupted_one(
        tmp_path, diagnosed, dl, interrupt_at, metric_lines, write_config):
    config = write_config(tmp_path, diagnosed)
    straight = tmp_path / "straight"
    assert dl("train", config, "--run-dir", straight, "-q").exit_code == 0
    run_dir = tmp_path / "run"
    with interrupt_at(34):  # the 12th step of epoch 2, after the sampled step 31
        assert dl("train", config, "--run-dir", run_dir, "-q").exit_code == 130
    assert dl("train", "--resume", run_dir, "-q").exit_code == 0
    assert [r.get("layers") for r in metric_lines(run_dir)] == \
        [r.get("layers") for r in metric_lines(straight)]


def test_an_epoch_stopped_after_its_last_batch_resumes_at_its_end(
        tmp_path, diagnosed, dl, interrupt_at, metric_lines, write_config):
    config = write_config(tmp_path, diagnosed)
    straight = tmp_path / "straight"
    assert dl("train", config, "--run-dir", straight, "-q").exit_code == 0
    run_dir = tmp_path / "run"
    with interrupt_at(44):  # the last step of epoch 2, before the epoch's end is recorded
        assert dl("train", config, "--run-dir", run_dir, "-q").exit_code == 130
    meta = json.loads(str(load_npz(run_dir / "checkpoints/last.npz")["meta"]))
    assert (meta["epoch"], meta["iteration"]) == (1, 22)
    assert dl("train", "--resume", run_dir, "-q").exit_code == 0
    kept = ("epoch", "train/loss", "val/loss", "layers")
    assert [{k: r.get(k) for k in kept} for r in metric_lines(run_dir)] == \
        [{k: r.get(k) for k in kept} for r in metric_lines(straight)]


def test_forged_diagnostics_stop_the_resume(
        tmp_path, diagnosed, dl, interrupt_at, rewrite_checkpoint, write_config):
    config = write_config(tmp_path, diagnosed)
    run_dir = tmp_path / "run"
    with interrupt_at(34):
        assert dl("train", config, "--run-dir", run_dir, "-q").exit_code == 130
    rewrite_checkpoint(run_dir / "checkpoints/last.npz",
                       lambda arrays: arrays.update({"diagnostics/0/sums": np.full(7, np.nan)}))
    result = dl("train", "--resume", run_dir, "-q")
    assert result.exit_code == 2
    assert "checkpoint 'diagnostics/0/sums' is missing or is not 7 finite sums" in said(result)
