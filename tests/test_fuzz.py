"""Mutation fuzzing of everything `dl` reads: sweep specs, overrides, every data-file reader
and every file of run and sweep folders. Each mutant ends in success or exit 2 with an
`error:` line: never a traceback, and a command that refuses a folder leaves it as it was.

Every fuzz test runs twice over: a short, derandomized pass in the ordinary suite (the
``CI`` examples), and a long, random one with ``python -m pytest -m fuzz`` (``LONG``).
docs/reliability.md, point 10.
"""

import contextlib
import json
import os
import shutil
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.data import DataError, load
from dl_cli.registry import (AUGMENTATIONS, DATASETS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS,
                             PREPROCESSORS, SCHEDULES)
from dl_cli.schema import DataConfig, SplitConfig


runner = CliRunner()
CI = {"configs": 60, "specs": 60, "overrides": 100, "data": 100, "folders": 60}  # examples
LONG = {"configs": 1000, "specs": 1000, "overrides": 2000, "data": 1500, "folders": 1000}


def fuzz_test(check, kind: str, long: bool):
    """A test running ``check(data)`` on ``CI[kind]`` derandomized examples, or on
    ``LONG[kind]`` random ones marked ``fuzz``."""
    def test(data):
        check(data)

    test = given(data=st.data())(test)
    test = settings(max_examples=(LONG if long else CI)[kind], deadline=None,
                    derandomize=not long, database=None,
                    suppress_health_check=list(HealthCheck))(test)
    return pytest.mark.fuzz(test) if long else pytest.mark.reliability(test)


def dl(*args):
    return runner.invoke(app, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".tmp"}


def clean(result, allowed=(0, 2)) -> None:
    """A command that ended well or said what was wrong: no exception, an allowed exit code,
    and with exit 2 an `error:` line (or the command line's usage: an argument that starts
    with a dash is taken for an option)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        "".join(traceback.format_exception(result.exception))
    assert result.exit_code in allowed, result.output
    if result.exit_code == 2:
        assert "error:" in result.output or "Usage:" in result.output, result.output


# -- bytes ------------------------------------------------------------------------------
TOKENS = [b"[", b"]", b"{", b"}", b'"', b"\n", b"\x00", b"\xff", b"-1", b"NaN", b"9" * 40,
          b"1e999", b"[" * 200, b"\x1b[2J", b"!!python/object:os.system", b"&a", b"*a", b"\t",
          b"\r\n", b",", b":", b"'", b"..", b"0x10"]


@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """``data`` changed one to three times: a byte flipped, the end cut off, a range
    deleted, or bytes (random or a token parsers trip on) inserted or written over."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "cut", "delete", "insert", "overwrite"]))
        if action == "flip" and data:
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif action == "cut":
            data = data[:at]
        elif action == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 64)):]
        else:
            piece = draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=16)))
            end = at + (len(piece) if action == "overwrite" else 0)
            data = data[:at] + piece + data[end:]
    return data


# -- configs ---------------------------------------------------------------------------
FUZZ_BASE = {
    "name": "fuzz",
    "seed": 0,
    "data": {"dataset": {"type": "spiral", "classes": 2, "samples": 10, "noise": 0.1},
             "split": {"val": 0.2, "test": 0.2, "stratify": True}, "preprocess": ["standardize"],
             "augment": []},
    "model": {"layers": [{"type": "affine", "units": 4}, {"type": "batchnorm"}, "relu",
                         {"type": "dropout", "drop_rate": 0.1}, {"type": "affine", "units": 2}],
              "init": "he_normal", "loss": "softmax_cross_entropy"},
    "regularization": {"l1": 0.0, "l2": 1.0e-3},
    "optimizer": {"type": "sgd", "lr": 0.1},
    "schedule": {"type": "step", "every": 1, "gamma": 0.5},
    "train": {"epochs": 1, "batch_size": 4, "clip_grad_norm": 5.0,
              "early_stopping": {"patience": 1}},
    "checkpoint": {"monitor": "auto"},
    "runs_dir": "runs",
}
# Values of every kind a person might type; integers stay small, since a config asking for
# a billion units is a resource question, not a malformed one. Half the replacements are
# plausible (a registered name, a small number), so that mutants get past validation.
REGISTERED = sorted({name for registry in (LAYERS, LOSSES, INITIALIZERS, OPTIMIZERS, SCHEDULES,
                                           DATASETS, PREPROCESSORS, AUGMENTATIONS)
                     for name in registry.names()} - {"text"})  # text: a larger corpus
PLAUSIBLE = st.one_of(st.sampled_from(REGISTERED), st.integers(0, 6), st.sampled_from(
    [0.0, 0.5, 0.99, 1.0, 2.0, 1e-8, 1e3, "val/loss", "val/acc", "train/loss", "min", "max"]))
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 12),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(["", "full", "relu", "adam", "mse", "digits", "npz", "val/loss", "max",
                     "float64", "../../x", "os.system", "standardize", "flip", "1e-3"]),
    st.lists(st.sampled_from(["relu", 3, None, "affine"]), max_size=3),
    st.dictionaries(st.sampled_from(["type", "units", "lr", "_target_", "path"]),
                    st.sampled_from(["affine", "relu", 2, -1, None, "x.npz"]), max_size=2),
)


@contextlib.contextmanager
def inside(folder):
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def paths_in(tree, prefix=()):
    yield prefix
    items = tree.items() if isinstance(tree, dict) else \
        enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        yield from paths_in(value, (*prefix, key))


def mutate(tree, path, action, value):
    """A copy of ``tree`` with the node at ``path`` replaced, removed or given a new key."""
    tree = json.loads(json.dumps(tree))
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "remove":
        del parent[key]
    elif action == "add" and isinstance(parent[key], dict):
        parent[key]["unexpected"] = value
    else:
        parent[key] = value
    return tree


def mutated(data, tree):
    """``tree`` mutated one to three times: a node replaced by a plausible or odd value,
    removed, or given an unexpected key."""
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from([p for p in paths_in(tree) if p]), label="path")
        action = data.draw(st.sampled_from(["replace", "remove", "add"]), label="action")
        tree = mutate(tree, path, action, data.draw(st.one_of(PLAUSIBLE, ODD_VALUES), label="value"))
    return tree


def check_config(data) -> None:
    cfg = mutated(data, FUZZ_BASE)
    with tempfile.TemporaryDirectory() as folder, inside(folder):
        Path("cfg.yaml").write_text(yaml.safe_dump(cfg))
        clean(dl("train", "cfg.yaml", "-q"), allowed=(0, 2, 3))


test_mutated_configs_train_or_exit_2 = fuzz_test(check_config, "configs", long=False)
test_mutated_configs_long = fuzz_test(check_config, "configs", long=True)


# -- sweep specs ---------------------------------------------------------------------------
SPEC = {"name": "fuzz", "method": "random", "trials": 3, "seed": 0, "metric": "val/acc",
        "goal": "max", "threads": 1, "keep_checkpoints": "best",
        "params": {"optimizer.lr": {"loguniform": [1.0e-3, 1.0e-1]},
                   "model.layers.0.units": {"values": [4, 8]},
                   "train.batch_size": {"int_uniform": [4, 16]}},
        "prune": {"min_epochs": 1, "eta": 3},
        "refine": {"rounds": 2, "trials": 2}}


def check_sweep_spec(data) -> None:
    spec = mutated(data, SPEC)
    with tempfile.TemporaryDirectory() as folder, inside(folder):
        Path("base.yaml").write_text(yaml.safe_dump(FUZZ_BASE))
        Path("sweep.yaml").write_text(yaml.safe_dump({"base": "base.yaml", **spec}))
        clean(dl("sweep", "sweep.yaml", "--dry-run"))


test_mutated_sweep_specs_validate_or_exit_2 = fuzz_test(check_sweep_spec, "specs", long=False)
test_mutated_sweep_specs_long = fuzz_test(check_sweep_spec, "specs", long=True)


# -- overrides -------------------------------------------------------------------------------
KEYS = sorted({".".join(map(str, p)) for p in paths_in(FUZZ_BASE) if p} |
              {"model.layers.9.units", "data.dataset.path", "sweep.trials", "a..b", ".", "",
               "model.layers.-1", "model.layers.²", "train.epochs.x", "optimizer.lr.0"})
VALUE_TEXT = st.one_of(
    st.sampled_from(["1e-3", "[", "]", "{a: 1", "'x", "!!float x", "!!python/object:os.system",
                     "&a [*a]", "*a", "[" * 150 + "]" * 150, "9" * 5000, ".nan", "-.inf",
                     "{type: affine, units: 3}", "null", "~", "0x1F", "0o17", "1_000", "---",
                     "relu", "a: b: c", "\t", "- x\n- y", "|\n x"]),
    st.text(max_size=20))


def check_override(data) -> None:
    key = data.draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), label="key")
    override = f"{key}={data.draw(VALUE_TEXT, label='value')}"
    with tempfile.TemporaryDirectory() as folder, inside(folder):
        Path("cfg.yaml").write_text(yaml.safe_dump(FUZZ_BASE))
        clean(dl("train", "cfg.yaml", override, "--print-config"))
        assert not Path("runs").exists()


test_mutated_overrides_print_or_exit_2 = fuzz_test(check_override, "overrides", long=False)
test_mutated_overrides_long = fuzz_test(check_override, "overrides", long=True)


# -- data files ------------------------------------------------------------------------------
def idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes() + \
        array.astype(np.uint8).tobytes()


def data_files(folder: Path, kind: str) -> tuple[dict, list[Path]]:
    """A valid data set of ``kind`` in ``folder``: its dataset spec and its files."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 2)), np.arange(30) % 3
    if kind in ("npz", "npz_compressed"):
        path = folder / "data.npz"
        (np.savez_compressed if kind == "npz_compressed" else np.savez)(path, X=X, y=y)
        return {"type": "npz", "path": str(path)}, [path]
    if kind == "csv":
        path = folder / "data.csv"
        path.write_text("a,b,label\n" + "".join(f"{a:.4f},{b:.4f},{c}\n" for (a, b), c in zip(X, y)))
        return {"type": "csv", "path": str(path)}, [path]
    if kind == "mnist":
        images = rng.integers(0, 256, size=(24, 6, 6))
        files = {"train-images-idx3-ubyte": idx(images[:18]), "train-labels-idx1-ubyte": idx(y[:18]),
                 "t10k-images-idx3-ubyte": idx(images[18:]), "t10k-labels-idx1-ubyte": idx(y[18:24])}
        for name, content in files.items():
            (folder / name).write_bytes(content)
        return {"type": "mnist", "path": str(folder)}, [folder / name for name in files]
    if kind == "cifar10":
        records = lambda n: bytes(np.concatenate([rng.integers(0, 10, (n, 1)),  # noqa: E731
                                                  rng.integers(0, 256, (n, 3072))], axis=1)
                                  .astype(np.uint8))
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for name in names:
            (folder / name).write_bytes(records(3))
        return {"type": "cifar10", "path": str(folder)}, [folder / name for name in names]
    path = folder / "text.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 8)
    return {"type": "text", "path": str(path), "steps": 8}, [path]


READERS = ["npz", "npz_compressed", "csv", "mnist", "cifar10", "text"]


def check_data_file(data) -> None:
    kind = data.draw(st.sampled_from(READERS), label="reader")
    with tempfile.TemporaryDirectory() as folder:
        spec, files = data_files(Path(folder), kind)
        target = data.draw(st.sampled_from(files), label="file")
        target.write_bytes(data.draw(mutated_bytes(target.read_bytes()), label="bytes"))
        written = target.read_bytes()
        try:
            load(DataConfig(dataset=spec, split=SplitConfig(val=0.2, test=0.2, stratify=False)))
        except DataError as error:  # naming the file, or the data key whose split fails
            assert str(error).startswith((str(Path(folder)), "data")), error
        assert target.read_bytes() == written


test_mutated_data_files_load_or_name_the_file = fuzz_test(check_data_file, "data", long=False)
test_mutated_data_files_long = fuzz_test(check_data_file, "data", long=True)


# -- run and sweep folders ----------------------------------------------------------------
@pytest.fixture
def folders(finished_run, interrupted_run, text_run, reference) -> dict[str, Path]:
    """A finished run, a run stopped in its second epoch, a character model's run and a
    finished sweep, each to be copied and damaged."""
    return {"finished": finished_run, "stopped": interrupted_run, "text": text_run,
            "sweep": reference}


# (folder, file damaged, commands run on it); "resume" may train on and change the folder
TARGETS = [
    ("finished", "config.yaml", [["eval"], ["diagnose"]]),
    ("finished", "summary.json", [["runs"], ["diagnose"], ["compare"]]),
    ("finished", "metrics.jsonl", [["diagnose"], ["runs"]]),
    ("finished", "checkpoints/best.npz", [["eval"]]),
    ("stopped", "config.yaml", [["resume"]]),
    ("stopped", "metrics.jsonl", [["resume"]]),
    ("stopped", "checkpoints/last.npz", [["resume"]]),
    ("stopped", "checkpoints/best.npz", [["resume"]]),
    ("text", "vocab.json", [["sample"]]),
    ("sweep", "ledger.jsonl", [["sweep-resume"]]),
    ("sweep", "spec.yaml", [["sweep-resume"]]),
    ("sweep", "trial-0000/summary.json", [["runs"]]),
]


def command(name: str, folder: Path) -> list:
    return {"eval": ["eval", folder], "diagnose": ["diagnose", folder],
            "runs": ["runs", folder.parent], "compare": ["compare", folder, folder],
            "resume": ["train", "--resume", folder, "-q"],
            "sample": ["sample", folder, "--length", "5", "--seed", "0"],
            "sweep-resume": ["sweep", "--resume", folder]}[name]


def check_folder_file(folders, data) -> None:
    name, relative, commands = data.draw(st.sampled_from(TARGETS), label="target")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(shutil.copytree(folders[name], Path(tmp) / name))
        target = folder / relative
        target.write_bytes(data.draw(mutated_bytes(target.read_bytes()), label="bytes"))
        for args in commands:
            before = snapshot(folder)
            result = dl(*command(args[0], folder))
            clean(result, allowed=(0, 1, 2) if args[0] == "sweep-resume" else (0, 2))
            if args[0] not in ("resume", "sweep-resume") or result.exit_code == 2:
                assert snapshot(folder) == before, (args, result.output)


@pytest.mark.reliability
@settings(max_examples=CI["folders"], deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_run_and_sweep_files_are_read_or_named(folders, data):
    check_folder_file(folders, data)


@pytest.mark.fuzz
@settings(max_examples=LONG["folders"], deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_run_and_sweep_files_long(folders, data):
    check_folder_file(folders, data)
