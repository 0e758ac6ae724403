"""Resuming runs that were stopped, edited or forged at awkward moments: one clear story
each, exit 0 or exit 2 with a message, never a traceback.

docs/reliability.md, points 3a to 3e.
"""
# ruff: noqa: F811  (the fixtures imported below are parameters of the tests)

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from dl_cli.cli.app import app
from dl_cli.solver import Solver

from test_reliability import (TINY, dl, interrupted_run, metric_lines, snapshot,  # noqa: F401
                              write_config)

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
