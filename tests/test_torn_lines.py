"""A line cut by a kill in the middle of its write, at every byte: `metrics.jsonl` and
`ledger.jsonl` read as if that record was never written, and the run or sweep resumes.

docs/reliability.md, point 1a.
"""

import csv
import shutil
from pathlib import Path

import pytest

from dl_cli.runs import Run
from dl_cli.sweep.ledger import Ledger

pytestmark = pytest.mark.reliability
RESUMED_AT = ("first byte", "middle", "all but the newline")


def cuts(record: bytes) -> dict[str, int]:
    """Where the record's write may stop: after each of its bytes but the last (the
    newline), named for the cuts a test resumes from."""
    return {**{str(i): i for i in range(1, len(record))},
            "first byte": 1, "middle": len(record) // 2, "all but the newline": len(record) - 1}


@pytest.fixture
def runs(tmp_path, write_config, tiny, dl, interrupt_at):
    """An uninterrupted run of three epochs, and the same run stopped in its second epoch
    whose metrics.jsonl then gets epoch 2's record: a kill while the record was written,
    after the checkpoint of epoch 1 and before the next."""
    config = write_config(tmp_path, {**tiny, "train": {"epochs": 3, "batch_size": 8},
                                "checkpoint": {"every_seconds": 0}})
    straight = tmp_path / "straight"
    assert dl("train", config, "--run-dir", straight, "-q").exit_code == 0
    stopped = tmp_path / "stopped"
    with interrupt_at(9):  # the third step of epoch 2
        assert dl("train", config, "--run-dir", stopped, "-q").exit_code == 130
    record = (straight / "metrics.jsonl").read_bytes().splitlines(keepends=True)[1]
    return straight, stopped, record


def test_a_metrics_line_cut_at_any_byte_reads_as_never_written_and_the_run_resumes(
        runs, tmp_path, dl, metric_lines):
    straight, stopped, record = runs
    before = Run(stopped).read_metrics()
    assert [r["epoch"] for r in before] == [1]
    for name, cut in cuts(record).items():
        run_dir = tmp_path / f"cut-{name.replace(' ', '-')}"
        shutil.copytree(stopped, run_dir)
        with open(run_dir / "metrics.jsonl", "ab") as f:
            f.write(record[:cut])
        assert Run(run_dir).read_metrics() == (before if cut < len(record) - 1 else
                                               before + Run(straight).read_metrics()[1:2]), name
        if name in RESUMED_AT:
            assert dl("train", "--resume", run_dir, "-q").exit_code == 0, name
            assert metric_lines(run_dir) == metric_lines(straight), name
            assert (run_dir / "metrics.jsonl").read_bytes().endswith(b"}\n")


def results(folder: Path) -> list[dict]:
    with open(folder / "results.csv") as f:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(f)]


def test_a_ledger_line_cut_at_any_byte_reads_as_never_written_and_the_sweep_resumes(
        reference, tmp_path, dl):
    ledger = (reference / "ledger.jsonl").read_bytes()
    lines = ledger.splitlines(keepends=True)
    record, kept = lines[-1], b"".join(lines[:-1])
    assert b'"event": "result"' in record  # the last trial's result, cut as it is written
    whole = Ledger(reference / "ledger.jsonl").events()
    for name, cut in cuts(record).items():
        folder = tmp_path / f"cut-{name.replace(' ', '-')}"
        shutil.copytree(reference, folder)
        (folder / "ledger.jsonl").write_bytes(kept + record[:cut])
        events = Ledger(folder / "ledger.jsonl").events()
        assert events == (whole[:-1] if cut < len(record) - 1 else whole), name
        if name in RESUMED_AT:
            result = dl("sweep", "--resume", folder)
            assert result.exit_code == 0, (name, result.output)
            assert results(folder) == results(reference), name
            table = Ledger(folder / "ledger.jsonl").table()
            assert all(state.status == "completed" for state in table.values()), name
