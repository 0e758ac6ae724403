"""Damaged or wrong-kind files in run and sweep folders: exit 2 naming the file, never a
traceback; listings show a damaged run as unreadable and go on."""

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.sweep.folder import SweepError
from dl_cli.sweep.ledger import EVENTS, Ledger

runner = CliRunner()
NOT_UTF8 = b"\xff\xfe\x00garbage\xc3\x28\n"


def dl(*args):
    return runner.invoke(app, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but temp files, and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".tmp"}


def said(result) -> str:
    return " ".join(result.output.split())


def refused(result, *names) -> str:
    """The message of a command that exits 2 naming every one of ``names``."""
    assert result.exit_code == 2, (result.output, result.exception)
    message = said(result)
    assert "Traceback" not in message
    for name in names:
        assert str(name) in message
    return message


def make_dir_of(path: Path) -> None:
    """A directory where the folder keeps the file ``path``."""
    path.unlink()
    path.mkdir()


@pytest.fixture
def sweep_copy(reference, tmp_path) -> Path:
    return Path(shutil.copytree(reference, tmp_path / "sweep"))


def rewrite_ledger(folder: Path, change) -> None:
    """Replace the ledger's events by ``change(events)``, one JSON value per line."""
    path = folder / "ledger.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(e) + "\n" for e in change(events)))


def sweep_command(command: str, folder: Path) -> list:
    """``dl report``, ``dl plot`` or ``dl sweep --resume`` of ``folder``."""
    if command != "resume":
        pytest.importorskip("matplotlib")
        return [command, folder]
    return ["sweep", "--resume", folder]


# -- run folders ------------------------------------------------------------------------
def test_metrics_lines_that_are_not_records_are_named_by_plot(run_copy, sweep_copy):
    pytest.importorskip("matplotlib")
    (run_copy / "metrics.jsonl").write_text("[1,2]\n")
    refused(dl("plot", run_copy), run_copy / "metrics.jsonl", "not a record")
    trial = sweep_copy / "trial-0000" / "metrics.jsonl"
    trial.write_text("[1,2]\n")
    refused(dl("plot", sweep_copy), trial, "not a record")


def test_a_summary_that_is_a_directory_is_named_and_listings_go_on(run_copy, finished_run):
    shutil.copytree(finished_run, run_copy.parent / "intact")
    make_dir_of(run_copy / "summary.json")
    refused(dl("diagnose", run_copy), run_copy / "summary.json", "is a directory")
    for listing in (dl("runs", run_copy.parent), dl("compare", finished_run, run_copy)):
        assert listing.exit_code == 0, listing.output
        assert "unreadable (summary.json)" in listing.output and "completed" in listing.output


def test_a_summary_entry_of_the_wrong_kind_shows_the_run_as_unreadable(run_copy, finished_run):
    summary = json.loads((run_copy / "summary.json").read_text())
    (run_copy / "summary.json").write_text(json.dumps({**summary, "test": 5}))
    shutil.copytree(finished_run, run_copy.parent / "intact")
    refused(dl("diagnose", run_copy), run_copy / "summary.json", "'test' is 5, expected an object")
    for listing in (dl("runs", run_copy.parent), dl("compare", finished_run, run_copy)):
        assert listing.exit_code == 0, listing.output
        assert "unreadable (summary.json)" in listing.output and "completed" in listing.output


@pytest.mark.parametrize("line, problem", [
    ({"epoch": 1, "lr": 0.1, "train/loss": "low"}, "'train/loss' is 'low', expected a number"),
    ({"epoch": 1, "lr": 0.1, "train/loss": 1.0, "layers": [5]}, "'layers' holds 5"),
])
def test_a_metrics_line_of_the_wrong_kinds_is_named(run_copy, line, problem):
    (run_copy / "metrics.jsonl").write_text(json.dumps(line) + "\n")
    refused(dl("diagnose", run_copy), f"{run_copy / 'metrics.jsonl'}: line 1: {problem}")


def test_metrics_that_are_a_directory_are_named(run_copy):
    make_dir_of(run_copy / "metrics.jsonl")
    refused(dl("diagnose", run_copy), run_copy / "metrics.jsonl", "is a directory")


def test_metrics_that_are_not_text_are_named_and_resume_changes_nothing(run_copy):
    (run_copy / "metrics.jsonl").write_bytes(NOT_UTF8)
    before = snapshot(run_copy)
    for command in (["train", "--resume", run_copy, "-q"], ["diagnose", run_copy]):
        refused(dl(*command), run_copy / "metrics.jsonl", "not UTF-8 text")
    assert snapshot(run_copy) == before


# -- sweep folders ----------------------------------------------------------------------
def insert_a_list(events: list[dict]) -> list:
    return [events[0], [1], *events[1:]]


def drop_seed(events: list[dict]) -> list[dict]:
    trial = next(e for e in events if e["event"] == "trial")
    del trial["seed"]
    return events


def forget_the_params(events: list[dict]) -> list[dict]:
    trial = next(e for e in events if e["event"] == "trial")
    trial["params"] = {}
    return events


LEDGER_DAMAGE = {
    "not text": (lambda folder: (folder / "ledger.jsonl").write_bytes(NOT_UTF8), "not UTF-8 text"),
    "a list": (lambda folder: rewrite_ledger(folder, insert_a_list),
               "line 2: a JSON list, not an event"),
    "no seed": (lambda folder: rewrite_ledger(folder, drop_seed),
                "line 2: a trial event without seed"),
}


@pytest.mark.parametrize("damage", LEDGER_DAMAGE)
@pytest.mark.parametrize("command", ["report", "plot", "resume"])
def test_a_damaged_ledger_is_named_with_its_line(sweep_copy, damage, command):
    spoil, problem = LEDGER_DAMAGE[damage]
    spoil(sweep_copy)
    before = snapshot(sweep_copy)
    refused(dl(*sweep_command(command, sweep_copy)), sweep_copy / "ledger.jsonl", problem)
    assert snapshot(sweep_copy) == before


@pytest.mark.parametrize("event, problem", [
    ({"event": ["sweep"], "time": 1.0}, "unknown event ['sweep']"),
    ({"event": "resume", "time": 1.0}, "unknown event 'resume'"),
    ({"event": "start", "trial": 0}, "a start event without time"),
    ({"event": "result", "trial": -1, "status": "completed", "time": 1.0},
     "'trial' is -1, expected a count"),
    ({"event": "result", "trial": 0, "status": "completed", "metric": "high", "time": 1.0},
     "'metric' is 'high', expected a number or null"),
])
def test_ledger_events_are_checked_field_by_field(tmp_path, event, problem):
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"event": "sweep", "spec_hash": "a", "time": 1.0}\n' + json.dumps(event) + "\n")
    with pytest.raises(SweepError, match=re.escape(f"ledger.jsonl: damaged at line 2: {problem}")):
        Ledger(path).table()


COMPLETE_EVENTS = {
    "sweep": {"spec_hash": "a"}, "round": {"round": 0, "domains": {}},
    "trial": {"trial": 0, "round": 0, "config": 0, "seed": None, "params": {}},
    "start": {"trial": 0}, "result": {"trial": 0, "status": "completed"},
    "prune": {"trial": 0}, "retry": {"trial": 0}}


@pytest.mark.parametrize("kind, field", [(kind, field) for kind, fields in EVENTS.items()
                                         for field in fields])
def test_every_field_an_event_needs_is_checked(tmp_path, kind, field):
    event = {"event": kind, **COMPLETE_EVENTS[kind], "time": 1.0}
    del event[field]
    path = tmp_path / "ledger.jsonl"
    path.write_text(json.dumps(event) + "\n")
    with pytest.raises(SweepError, match=re.escape(f"a {kind} event without {field}")):
        Ledger(path).events()


@pytest.mark.parametrize("command", ["report", "plot", "resume"])
def test_a_trial_without_the_params_of_the_spec_is_named(sweep_copy, command):
    rewrite_ledger(sweep_copy, forget_the_params)
    refused(dl(*sweep_command(command, sweep_copy)),
            f"{sweep_copy / 'ledger.jsonl'}: trial 0 has no value of", "which the spec varies")


def test_an_empty_spec_is_named(sweep_copy):
    pytest.importorskip("matplotlib")
    (sweep_copy / "spec.yaml").write_text("")
    for command in ("plot", "report"):
        refused(dl(command, sweep_copy), sweep_copy / "spec.yaml", "expected a mapping")


def test_a_saved_spec_that_breaks_a_rule_is_named_by_every_reader(sweep_copy):
    pytest.importorskip("matplotlib")
    spec = sweep_copy / "spec.yaml"
    spec.write_text(spec.read_text().replace("seed: 0", "seed: null"))
    for command in (["sweep", "--resume", sweep_copy], ["plot", sweep_copy], ["report", sweep_copy]):
        refused(dl(*command), f"{spec}: seed: must be an integer >= 0, got null")


@pytest.mark.parametrize("name", ["results.csv", "driver.lock"])
def test_a_directory_where_the_sweep_writes_stops_a_resume_before_any_trial(sweep_copy, name):
    (sweep_copy / name).unlink(missing_ok=True)
    (sweep_copy / name).mkdir()
    before = snapshot(sweep_copy)
    refused(dl("sweep", "--resume", sweep_copy), sweep_copy / name, "is a directory")
    assert snapshot(sweep_copy) == before


@pytest.mark.parametrize("name", ["ledger.jsonl", "spec.yaml", "trial-0000/summary.json"])
def test_report_says_a_file_it_reads_is_a_directory_not_that_it_cannot_write(sweep_copy, name):
    pytest.importorskip("matplotlib")
    make_dir_of(sweep_copy / name)
    message = refused(dl("report", sweep_copy), sweep_copy / name, "is a directory")
    assert "cannot write" not in message


def test_a_sweep_into_a_run_folder_is_refused(run_copy, tmp_path, write_sweep, random_spec):
    before = snapshot(run_copy)
    spec = write_sweep(tmp_path, random_spec)
    refused(dl("sweep", spec, "--sweep-dir", run_copy), f"{run_copy} is a run folder")
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("content", [b"hello\n", b"{}", b'{"address": 5}', NOT_UTF8],
                         ids=["text", "no address", "a number", "not text"])
def test_an_address_file_that_is_not_a_scheduler_file_is_named(tmp_path, content, write_sweep,
                                                               random_spec):
    pytest.importorskip("distributed")
    address = tmp_path / "scheduler.json"
    address.write_bytes(content)
    spec = write_sweep(tmp_path, random_spec)
    result = dl("sweep", spec, "--backend", "dask", "--address", address,
                "--sweep-dir", tmp_path / "sweep")
    refused(result, f"--address {address}: not a Dask scheduler file", "tcp://host:8786")
    assert not (tmp_path / "sweep").exists()
