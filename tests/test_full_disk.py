"""A disk that fills up during a sweep: the sweep stops saying so, with exit 1, loses no
completed trial, and a resume once there is room ends as an undisturbed sweep.

docs/reliability.md, point 2a.
"""

import csv
import resource
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dl_cli.sweep.ledger import Ledger

pytestmark = pytest.mark.reliability
TRIALS = 30
SPEC = {"method": "random", "trials": TRIALS, "seed": 0,
        "params": {"optimizer.lr": {"loguniform": [1.0e-3, 1.0e-1]},
                   "model.layers.0.units": {"values": [4, 8, 16]}}}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, write_sweep, tiny_config, dl) -> tuple[Path, Path]:
    """A spec of 30 small trials (5 epochs over ``tiny_config`` without preprocessing, so
    that a checkpoint is smaller than the ledger's limit below), and its folder run
    undisturbed."""
    tmp = tmp_path_factory.mktemp("full")
    base = tiny_config(train={"epochs": 5, "batch_size": 8})
    del base["data"]["preprocess"]
    spec = write_sweep(tmp, SPEC, base)
    assert dl("sweep", spec, "--sweep-dir", tmp / "undisturbed").exit_code == 0
    return spec, tmp / "undisturbed"


def results(folder: Path) -> list[dict]:
    with open(folder / "results.csv") as f:
        return [{k: v for k, v in row.items() if k not in ("time_s", "dir")}
                for row in csv.DictReader(f)]


def completed_trials(folder: Path) -> dict[int, dict[str, bytes]]:
    """The trials the ledger records as completed, and their records' bytes."""
    table = Ledger(folder / "ledger.jsonl").table()
    return {i: {name: (folder / f"trial-{i:04d}" / name).read_bytes()
                for name in ("metrics.jsonl", "summary.json")}
            for i, state in table.items() if state.status == "completed"}


def check_nothing_lost(full: Path, resumed: Path, undisturbed: Path) -> None:
    """The trials completed when the disk was full are untouched by the resume, which
    ends with every trial completed once and the undisturbed results."""
    before = completed_trials(full)
    assert before, "the disk filled before any trial completed: make it larger"
    after = completed_trials(resumed)
    assert {i: after[i] for i in before} == before
    events = Ledger(resumed / "ledger.jsonl").events()
    assert Counter(e["trial"] for e in events if e["event"] == "result"
                   and e["status"] == "completed") == Counter(range(TRIALS))
    assert results(resumed) == results(undisturbed)


def said(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.usefixtures("private_mounts")
def test_a_disk_that_fills_during_a_sweep_loses_no_completed_trial(sweep, tmp_path):
    """A real full disk: a 200 KiB tmpfs, in a mount namespace of the test's own."""
    spec, undisturbed = sweep
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    dl_ = " ".join(map(shlex.quote, (sys.executable, "-m", "dl_cli", "sweep")))
    folder = disk / "sweep"
    script = (f"mount -t tmpfs -o size=200k tmpfs {disk} && "
              f"{dl_} {spec} --sweep-dir {folder} > {out}/full.txt 2>&1; echo $? > {out}/full.rc; "
              f"cp -a {folder} {out}/full && mount -o remount,size=64m {disk} && "
              f"{dl_} --resume {folder} > {out}/resumed.txt 2>&1; echo $? > {out}/resumed.rc; "
              f"cp -a {folder} {out}/resumed")
    subprocess.run(["unshare", "-m", "sh", "-c", script], check=True, timeout=300)
    full = (out / "full.txt").read_text()
    assert (out / "full.rc").read_text().strip() == "1", full
    assert "Traceback" not in full and "No space left on device" in full
    assert "the sweep stopped: a trial could not write its files (no space left). The ledger " \
           "records" in said(full) and f"continue with: dl sweep --resume {folder}" in said(full)
    assert (out / "resumed.rc").read_text().strip() == "0", (out / "resumed.txt").read_text()
    check_nothing_lost(out / "full", out / "resumed", undisturbed)


def test_a_ledger_that_cannot_grow_stops_the_sweep_and_loses_no_completed_trial(
        sweep, tmp_path, dl):
    """A file size limit (RLIMIT_FSIZE, 11,500 bytes) that the ledger reaches before any
    other file (a checkpoint here is at most 11,024 bytes, the ledger 12 KB by the end);
    writes beyond it fail with EFBIG, as on a full disk."""
    spec, undisturbed = sweep
    folder, full = tmp_path / "sweep", tmp_path / "full"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (11_500, 11_500))

    done = subprocess.run([sys.executable, "-m", "dl_cli", "sweep", str(spec), "--sweep-dir",
                           str(folder)], capture_output=True, text=True, timeout=300,
                          preexec_fn=limit)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"error: cannot write {folder / 'ledger.jsonl'}: File too large; the sweep stopped. " \
           f"The ledger records" in said(done.stderr)
    assert f"continue with: dl sweep --resume {folder}" in said(done.stderr)
    shutil.copytree(folder, full)
    resumed = dl("sweep", "--resume", folder)
    assert resumed.exit_code == 0, resumed.output
    check_nothing_lost(full, folder, undisturbed)
