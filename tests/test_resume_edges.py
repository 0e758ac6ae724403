"""Resuming runs that were stopped, edited or forged at awkward moments: one clear story
each, exit 0 or exit 2 with a message, never a traceback.

docs/reliability.md, points 3a to 3e.
"""
# ruff: noqa: F811  (the fixtures imported below are parameters of the tests)

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from dl_cli.cli.app import app
from dl_cli.solver import Solver

from test_reliability import (TINY, dl, interrupted_run, metric_lines,  # noqa: F401
                              rewrite_checkpoint, snapshot, write_config)

pytestmark = pytest.mark.reliability


def said(result) -> str:
    return " ".join(result.output.split())


# -- 3a. killed before its first checkpoint ------------------------------------------------
UNSAVED = {**TINY, "train": {"epochs": 2, "batch_size": 2, "log_every": 1}}  # 23 steps an epoch


def fork_slow_dl(args: list, log: Path) -> int:
    """`dl ARGS` in a forked child whose training steps take 10 ms more each, so that a
    test can kill it inside its first epoch; return its PID."""
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        sys.stdout = sys.stderr = open(log, "a")
        step = Solver.step
        Solver.step = lambda self, idx: (time.sleep(0.01), step(self, idx))[1]
        app([str(a) for a in args], prog_name="dl")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os._exit(code)


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    config = write_config(tmp_path, UNSAVED)
    straight = tmp_path / "straight"
    assert dl("train", config, "--run-dir", straight, "-q").exit_code == 0
    run_dir, log = tmp_path / "run", tmp_path / "log.txt"
    pid = fork_slow_dl(["train", config, "--run-dir", run_dir, "-q"], log)
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
        interrupted_run, change, keys):
    edit(interrupted_run, change)
    before = snapshot(interrupted_run)
    result = dl("train", "--resume", interrupted_run, "-q")
    assert result.exit_code == 2, result.output
    message = said(result)
    assert "Traceback" not in message
    assert f"{interrupted_run / 'config.yaml'} was edited since " in message
    assert f"({keys}" in message and "nothing was resumed and the run folder is unchanged" in message
    assert snapshot(interrupted_run) == before


def test_a_run_may_be_resumed_for_more_epochs(interrupted_run):
    edit(interrupted_run, lambda raw: raw["train"].update(epochs=6))
    assert dl("train", "--resume", interrupted_run, "-q").exit_code == 0
    assert [r["epoch"] for r in metric_lines(interrupted_run)] == [1, 2, 3, 4, 5, 6]


def test_a_checkpoint_that_records_no_config_resumes_as_before(interrupted_run):
    def forget(arrays):  # a checkpoint written before checkpoints recorded their config
        meta = json.loads(str(arrays["meta"]))
        del meta["config"]
        arrays["meta"] = np.array(json.dumps(meta))

    for kind in ("last", "best"):
        rewrite_checkpoint(interrupted_run / f"checkpoints/{kind}.npz", forget)
    assert dl("train", "--resume", interrupted_run, "-q").exit_code == 0
