"""Input built to break the parsers: nesting thousands deep, numbers thousands of digits
long, cells of megabytes, forged archives, files that are not files. Each ends in exit 2
with one line saying what and where, never a traceback.

docs/reliability.md, point 12c.
"""
# ruff: noqa: F811  (the fixtures imported below are parameters of the tests)

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.config.yaml12 import parse_yaml
from dl_cli.checks import ConfigError
from dl_cli.nesting import MAX_DEPTH

from test_reliability import (TINY, dl, finished_run, interrupted_run,  # noqa: F401
                              rewrite_checkpoint, run_copy, snapshot, write_config)
from test_sweep import RANDOM, reference, write_sweep  # noqa: F401  (a fixture)

pytestmark = pytest.mark.reliability
DEEP = 5000
DEEP_JSON = "[" * 1000 + "]" * 1000


def refused(result, *parts) -> str:
    """The one-line message of a command that exited 2 and says every one of ``parts``."""
    assert result.exit_code == 2, (result.output, result.exception)
    message = " ".join(result.output.split())
    assert "Traceback" not in message and "RecursionError" not in message
    for part in parts:
        assert str(part) in message, message
    return message


def too_deep() -> str:
    return f"nested deeper than {MAX_DEPTH} levels"


# -- nesting -----------------------------------------------------------------------------
def test_a_config_nested_thousands_deep_is_refused_with_its_place(tmp_path):
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "seed: " + "[" * DEEP + "]" * DEEP + "\n")
    message = refused(dl("train", config, "-q"), f"{config}, line", too_deep())
    assert "column 106" in message  # the top mapping, then "seed: " and 100 brackets
    assert message.count("error:") == 1


def test_an_override_nested_thousands_deep_is_refused_in_one_short_line(tmp_path):
    config = write_config(tmp_path)
    message = refused(dl("train", config, "seed=" + "[" * DEEP + "]" * DEEP, "-q"),
                      "seed: override 'seed=[[[", "column 101", too_deep())
    assert len(message) < 300
    key = ".".join(["a"] * DEEP)
    refused(dl("train", config, f"{key}=1", "-q"), f"a key of {DEEP:,} parts is {too_deep()}")


def test_a_sweep_spec_nested_thousands_deep_is_refused(tmp_path):
    spec = write_sweep(tmp_path, RANDOM)
    spec.write_text(spec.read_text() + "seed_note: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n")
    refused(dl("sweep", spec, "--dry-run"), str(spec), too_deep())


def nested(depth: int) -> list:
    value = [1]
    for _ in range(depth):
        value = [value]
    return value


def test_aliases_that_nest_deeper_than_the_text_are_refused():
    chain = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 3000))
    with pytest.raises(ConfigError, match=f"chain, line 99, column 12: {too_deep()}"):
        parse_yaml(chain, "chain")
    shallow = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 50))
    assert parse_yaml(shallow, "shallow")["a49"] == nested(49)


@pytest.mark.parametrize("where", ["summary.json", "metrics.jsonl"])
def test_a_run_file_nested_thousands_deep_is_named_and_runs_lists_the_others(
        run_copy, finished_run, where):
    path = run_copy / where
    if where == "summary.json":
        path.write_text(json.dumps({"status": "completed", "test": {}})[:-1] + ', "x": '
                        + DEEP_JSON + "}\n")
    else:
        lines = path.read_text().splitlines()
        lines[1] = lines[1][:-1] + ', "x": ' + DEEP_JSON + "}"
        path.write_text("\n".join(lines) + "\n")
    listed = CliRunner().invoke(app, ["runs", str(run_copy.parent)], terminal_width=300)
    assert listed.exit_code == 0 and "Traceback" not in listed.output, listed.output
    if where == "summary.json":  # (the listing reads summaries, not metrics)
        assert f"unreadable ({where})" in listed.output
    message = refused(dl("diagnose", run_copy), path, too_deep())
    if where == "metrics.jsonl":
        assert f"{path}: line 2 is {too_deep()} (column" in message


def test_a_checkpoint_meta_nested_thousands_deep_stops_the_resume(interrupted_run):
    def deepen(arrays):
        meta = json.loads(str(arrays["meta"]))
        arrays["meta"] = np.array(json.dumps(meta)[:-1] + ', "x": ' + DEEP_JSON + "}")

    rewrite_checkpoint(interrupted_run / "checkpoints/last.npz", deepen)
    before = snapshot(interrupted_run)
    refused(dl("train", "--resume", interrupted_run, "-q"), f"checkpoint 'meta' is {too_deep()}")
    assert snapshot(interrupted_run) == before


def test_a_ledger_line_nested_thousands_deep_is_named(reference, tmp_path):
    folder = Path(shutil.copytree(reference, tmp_path / "sweep"))
    with open(folder / "ledger.jsonl", "a") as f:
        f.write('{"event": "start", "trial": 0, "time": 1.0, "x": ' + DEEP_JSON + "}\n")
    lines = len((folder / "ledger.jsonl").read_text().splitlines())
    refused(dl("sweep", "--resume", folder), f"ledger.jsonl: damaged at line {lines}: {too_deep()}")


# -- numbers and indices -------------------------------------------------------------------
def test_numbers_that_cannot_be_read_keep_their_key_path_and_line(tmp_path):
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "seed: " + "9" * 5000 + "\n")
    message = refused(dl("train", config, "-q"), "seed: an integer of 5,000 digits on line")
    assert "set_int_max_str_digits" not in message
    config = write_config(tmp_path, {**TINY, "optimizer": {"type": "adam", "lr": 0.01}})
    config.write_text(config.read_text().replace("lr: 0.01", "lr: !!float x"))
    refused(dl("train", config, "-q"), "optimizer.lr: !!float 'x' on line", "is not a number")
    refused(dl("train", write_config(tmp_path), "seed=!!int 0b12", "-q"),
            "seed: !!int '0b12' on line 1 of override", "is not an integer")


def test_an_override_index_in_other_digits_is_not_a_list_index(tmp_path):
    refused(dl("train", write_config(tmp_path), "model.layers.².units=3", "-q"),
            "model.layers.²: '²' is not a list index; the list has 3 items")


def test_a_worker_count_beyond_any_machine_is_refused(tmp_path):
    refused(dl("sweep", write_sweep(tmp_path, RANDOM), "--workers", "2147483647"),
            "--workers: expected an integer from 1 to 4,096, got 2,147,483,647")


@pytest.mark.parametrize("address, warned", [
    ("tcp://10.1.2.3:8786", True), ("ray://head.example.org:10001", True),
    ("tcp://127.0.0.1:8786", False), ("localhost:8786", False), ("auto", False),
])
def test_a_scheduler_elsewhere_is_said_to_need_trust(tmp_path, address, warned):
    result = CliRunner().invoke(app, ["sweep", str(write_sweep(tmp_path, RANDOM)), "--backend",
                                      "dask", "--address", address, "--dry-run"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert ("use a scheduler you control, on a network you trust" in said) is warned
