"""Input built to break the parsers: nesting thousands deep, numbers thousands of digits
long, cells of megabytes, forged archives, files that are not files. Each ends in exit 2
with one line saying what and where, never a traceback.

docs/reliability.md, point 12c.
"""

import io
import json
import os
import resource
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.config.yaml12 import parse_yaml
from dl_cli.checks import ConfigError
from dl_cli.data import DataError
from dl_cli.nesting import MAX_DEPTH


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
def test_a_config_nested_thousands_deep_is_refused_with_its_place(tmp_path, dl, tiny, write_config):
    config = write_config(tmp_path, tiny)
    config.write_text(config.read_text() + "seed: " + "[" * DEEP + "]" * DEEP + "\n")
    message = refused(dl("train", config, "-q"), f"{config}, line", too_deep())
    assert "column 106" in message  # the top mapping, then "seed: " and 100 brackets
    assert message.count("error:") == 1


def test_an_override_nested_thousands_deep_is_refused_in_one_short_line(
        tmp_path, dl, tiny, write_config):
    config = write_config(tmp_path, tiny)
    message = refused(dl("train", config, "seed=" + "[" * DEEP + "]" * DEEP, "-q"),
                      "seed: override 'seed=[[[", "column 101", too_deep())
    assert len(message) < 300
    key = ".".join(["a"] * DEEP)
    refused(dl("train", config, f"{key}=1", "-q"), f"a key of {DEEP:,} parts is {too_deep()}")


def test_a_sweep_spec_nested_thousands_deep_is_refused(tmp_path, dl, random_spec, write_sweep):
    spec = write_sweep(tmp_path, random_spec)
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
        run_copy, finished_run, where, dl):
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


def test_a_checkpoint_meta_nested_thousands_deep_stops_the_resume(
        interrupted_run, dl, rewrite_checkpoint, snapshot):
    def deepen(arrays):
        meta = json.loads(str(arrays["meta"]))
        arrays["meta"] = np.array(json.dumps(meta)[:-1] + ', "x": ' + DEEP_JSON + "}")

    rewrite_checkpoint(interrupted_run / "checkpoints/last.npz", deepen)
    before = snapshot(interrupted_run)
    refused(dl("train", "--resume", interrupted_run, "-q"), f"checkpoint 'meta' is {too_deep()}")
    assert snapshot(interrupted_run) == before


@pytest.fixture
def edit_inputs(rewrite_checkpoint):
    """``edit_inputs(run_dir, change)``: let ``change(text)`` return the new JSON text of
    best.npz's ``inputs`` record."""
    def edit_run(run_dir: Path, change) -> None:
        def edit(arrays):
            arrays["inputs"] = np.array(change(str(arrays["inputs"])))

        rewrite_checkpoint(run_dir / "checkpoints/best.npz", edit)
    return edit_run


def test_a_vocabulary_nested_thousands_deep_is_named(text_run, tmp_path, as_older_run, dl):
    copy = Path(shutil.copytree(text_run, tmp_path / "run"))
    as_older_run(copy)
    (copy / "vocab.json").write_text(DEEP_JSON)
    refused(dl("sample", copy), copy / "vocab.json", too_deep())


def test_a_checkpoint_inputs_record_nested_thousands_deep_is_named(
        text_run, tmp_path, dl, edit_inputs):
    copy = Path(shutil.copytree(text_run, tmp_path / "run"))
    edit_inputs(copy, lambda text: text[:-1] + ', "x": ' + DEEP_JSON + "}")
    refused(dl("sample", copy), copy / "checkpoints/best.npz",
            f"checkpoint 'inputs' is {too_deep()}")


def test_a_ledger_line_nested_thousands_deep_is_named(reference, tmp_path, dl):
    folder = Path(shutil.copytree(reference, tmp_path / "sweep"))
    with open(folder / "ledger.jsonl", "a") as f:
        f.write('{"event": "start", "trial": 0, "time": 1.0, "x": ' + DEEP_JSON + "}\n")
    lines = len((folder / "ledger.jsonl").read_text().splitlines())
    refused(dl("sweep", "--resume", folder), f"ledger.jsonl: damaged at line {lines}: {too_deep()}")


# -- numbers and indices -------------------------------------------------------------------
def test_numbers_that_cannot_be_read_keep_their_key_path_and_line(tmp_path, dl, tiny, write_config):
    config = write_config(tmp_path, tiny)
    config.write_text(config.read_text() + "seed: " + "9" * 5000 + "\n")
    message = refused(dl("train", config, "-q"), "seed: an integer of 5,000 digits on line")
    assert "set_int_max_str_digits" not in message
    config = write_config(tmp_path, {**tiny, "optimizer": {"type": "adam", "lr": 0.01}})
    config.write_text(config.read_text().replace("lr: 0.01", "lr: !!float x"))
    refused(dl("train", config, "-q"), "optimizer.lr: !!float 'x' on line", "is not a number")
    refused(dl("train", write_config(tmp_path, tiny), "seed=!!int 0b12", "-q"),
            "seed: !!int '0b12' on line 1 of override", "is not an integer")


def test_an_override_index_in_other_digits_is_not_a_list_index(tmp_path, dl, tiny, write_config):
    refused(dl("train", write_config(tmp_path, tiny), "model.layers.².units=3", "-q"),
            "model.layers.²: '²' is not a list index; the list has 3 items")


def test_a_worker_count_beyond_any_machine_is_refused(tmp_path, dl, random_spec, write_sweep):
    refused(dl("sweep", write_sweep(tmp_path, random_spec), "--workers", "2147483647"),
            "--workers: expected an integer from 1 to 4,096, got 2,147,483,647")


# -- data files ------------------------------------------------------------------------------
@pytest.fixture
def csv_config(tmp_path, write_config, tiny):
    """``csv_config(text)``: ``tiny`` on a CSV file of ``text``."""
    def write(text: str) -> Path:
        (tmp_path / "table.csv").write_text(text)
        return write_config(tmp_path, {**tiny, "data": {"dataset": {
            "type": "csv", "path": str(tmp_path / "table.csv")}}})
    return write


@pytest.mark.parametrize("line, text", [
    (3, "a,b,label\n1,2,0\n3," + "1" * 200_000 + ",1\n"),
    (1, "a," + "b" * 200_000 + ",label\n1,2,0\n"),
])
def test_a_csv_cell_beyond_what_csv_reads_names_its_line(tmp_path, line, text, dl, csv_config):
    refused(dl("train", csv_config(text), "-q"),
            f"table.csv: line {line}: a cell longer than 131,072 characters")


def test_a_fractional_csv_label_outside_the_training_split_is_named_with_its_line(
        tmp_path, dl, csv_config):
    rows = [f"{i % 7 / 7:.3f},{i % 5 / 5:.3f},{i % 2}" for i in range(40)]
    rows[35] = "0.5,0.5,1.5"  # lands in the validation or test split
    message = refused(dl("train", csv_config("a,b,label\n" + "\n".join(rows) + "\n"), "-q"),
                      "table.csv: line 37: label 1.5 is not a whole number")
    assert "→" not in message  # no mapping advice: it would map 0 → 0, 1 → 1


def run_dl_bounded(*args) -> subprocess.CompletedProcess:
    """`dl ARGS` in a process of its own, bounded in time and memory (what a hang or an
    endless read would need)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    return subprocess.run([sys.executable, "-m", "dl_cli", *map(str, args)], capture_output=True,
                          text=True, timeout=60, preexec_fn=limit)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_data_path_that_is_not_a_regular_file_is_refused_at_once(
        tmp_path, kind, tiny, write_config):
    path = tmp_path / "data.csv"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    config = write_config(tmp_path, {**tiny, "data": {"dataset": {"type": "csv", "path": str(path)}}})
    done = run_dl_bounded("train", config, "-q")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{path}: not a regular file (a FIFO, a device or a socket)" in done.stderr


def data_npz(tmp_path: Path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> Path:
    path = tmp_path / "data.npz"
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def load_npz_data(path: Path):
    from dl_cli.registry import DATASETS

    return DATASETS.create({"type": "npz", "path": str(path)}).load(np.random.default_rng(0))


def test_a_truncated_npz_member_is_called_cut_short(tmp_path):
    X = np.random.default_rng(0).normal(size=(30, 2))
    member = npy(X)
    path = data_npz(tmp_path, {"X.npy": member[:-40], "y.npy": npy(np.arange(30) % 3)})
    with pytest.raises(DataError, match=r"member 'X': its header claims shape \(30, 2\) of "
                                        r"float64 \(480 bytes\), but 440 bytes are stored"):
        load_npz_data(path)


def test_a_forged_npz_header_claiming_terabytes_is_refused_without_allocating_it(
        tmp_path, forge, traced_peak):
    path = data_npz(tmp_path, {"X.npy": forge.npy((2**20, 2**20), "<f8", bytes(64)),
                               "y.npy": npy(np.arange(30) % 3)})
    error, peak = traced_peak(lambda: load_npz_data(path), raises=DataError)
    assert peak < 16 * 2**20
    assert "its header claims shape (1048576, 1048576) of float64 (8,796,093,022,208 bytes), " \
           "but 64 bytes are stored" in str(error)
    assert "out of memory" not in str(error)


def claim_size(path: Path, name: str, size: int) -> None:
    """Forge the uncompressed size the archive's central directory records for ``name``
    (what zipfile, and so every reader, goes by)."""
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + int.from_bytes(data[entry + 28:entry + 30], "little")] \
            != name.encode():
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 24:entry + 28] = size.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_a_compressed_npz_cannot_claim_more_than_deflate_expands_to(tmp_path):
    path = data_npz(tmp_path, {"X.npy": npy(np.zeros((30, 2))), "y.npy": npy(np.arange(30) % 3)},
                    compression=zipfile.ZIP_DEFLATED)
    claim_size(path, "X.npy", 2**31)
    with pytest.raises(DataError, match="member 'X' claims 2,147,483,648 bytes from [0-9]+ "
                                        "compressed ones, more than deflate can expand to"):
        load_npz_data(path)
    zeros = tmp_path / "zeros.npz"  # the most deflate compresses: about 1,000-fold
    np.savez_compressed(zeros, X=np.zeros((3000, 40)), y=np.arange(3000) % 3)
    assert load_npz_data(zeros).X.shape == (3000, 40)


# -- what dl prints and warns -------------------------------------------------------------------
def test_a_forged_vocabulary_is_refused_or_printed_escaped(text_run, tmp_path, as_older_run, dl):
    copy = Path(shutil.copytree(text_run, tmp_path / "run"))
    as_older_run(copy)
    vocab = json.loads((copy / "vocab.json").read_text())
    (copy / "vocab.json").write_text(json.dumps([*vocab[:-1], "\x1b[2J"]))
    refused(dl("sample", copy), "expected a non-empty list of characters (strings of one")
    forged = [c if c in "The " else "\x1b" for c in vocab]  # every character drawn is ESC
    (copy / "vocab.json").write_text(json.dumps(forged))
    result = dl("sample", copy, "--prime", "The ", "--length", "20", "--seed", "0")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\\x1b" in result.output


def test_a_forged_vocabulary_in_a_checkpoint_is_refused_or_printed_escaped(
        text_run, tmp_path, dl, edit_inputs):
    copy = Path(shutil.copytree(text_run, tmp_path / "run"))
    record = json.loads(str(np.load(copy / "checkpoints/best.npz")["inputs"]))
    vocab = record["vocab"]
    edit_inputs(copy, lambda text: json.dumps({**record, "vocab": [*vocab[:-1], "\x1b[2J"]}))
    refused(dl("sample", copy), copy / "checkpoints/best.npz",
            "expected a non-empty list of characters (strings of one")
    forged = [c if c in "The " else "\x1b" for c in vocab]  # every character drawn is ESC
    edit_inputs(copy, lambda text: json.dumps({**record, "vocab": forged}))
    result = dl("sample", copy, "--prime", "The ", "--length", "20", "--seed", "0")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\\x1b" in result.output


@pytest.mark.parametrize("address, warned", [
    ("tcp://10.1.2.3:8786", True), ("ray://head.example.org:10001", True),
    ("tcp://127.0.0.1:8786", False), ("localhost:8786", False), ("auto", False),
])
def test_a_scheduler_elsewhere_is_said_to_need_trust(
        tmp_path, address, warned, random_spec, write_sweep):
    result = CliRunner().invoke(app, ["sweep", str(write_sweep(tmp_path, random_spec)), "--backend",
                                      "dask", "--address", address, "--dry-run"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert ("use a scheduler you control, on a network you trust" in said) is warned


def test_ctrl_c_as_dl_starts_exits_130_with_one_line():
    program = ("import sys\n"
               "class CtrlC:  # a Ctrl-C as dl's first module is imported\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'dl_cli.quick_exit':\n"
               "            raise KeyboardInterrupt\n"
               "sys.meta_path.insert(0, CtrlC())\n"
               "from dl_cli.__main__ import main\n"
               "sys.argv = ['dl', 'layers']\n"
               "main()\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (130, "")
    assert done.stderr == "interrupted while dl was starting; nothing was written\n"


# -- found by tests/test_fuzz.py ---------------------------------------------------------------
def test_a_control_character_in_yaml_is_named_with_its_place(tmp_path, dl, tiny, write_config):
    config = write_config(tmp_path, tiny)
    config.write_bytes(config.read_bytes() + b"seed: 1\x01\n")
    refused(dl("train", config, "-q"), f"{config}, line",
            "the control character '\\x01' is not allowed in YAML")
    refused(dl("train", write_config(tmp_path, tiny), "seed=a\x01b", "-q"),
            "seed: override 'seed=a\\x01b', line 1, column 2: the control character")


def test_a_metrics_line_without_its_epoch_is_named(interrupted_run, dl, snapshot):
    path = interrupted_run / "metrics.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[0])
    del record["epoch"]
    path.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    before = snapshot(interrupted_run)
    refused(dl("train", "--resume", interrupted_run, "-q"),
            f"{path}: line 1: no 'epoch' (a count); every line has one")
    assert snapshot(interrupted_run) == before
