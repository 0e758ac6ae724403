"""A real Dask LocalCluster (processes, one thread each) shared by the distributed
tests; the config they train (digits_mlp) and its overrides for runs that must match
to the last bit; runs to compare with: the same config trained in this process; and
Python processes that import this checkout's dl_cli."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dl_cli import training
from dl_cli.config import load_config

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
DIGITS_MLP = ROOT / "configs" / "digits_mlp.yaml"
# float64, so that the sums' order alone separates the runs; noise, so that
# augmentation is drawn per sample too; every step's loss in metrics.jsonl.
EXACT = ["train.dtype=float64", "train.epochs=2", "train.log_every=1",
         "checkpoint.every_seconds=0", "data.augment=[{type: noise, std: 0.05}]"]


@pytest.fixture(scope="session")
def digits_mlp() -> Path:
    """configs/digits_mlp.yaml, the config the distributed tests train."""
    return DIGITS_MLP


@pytest.fixture
def exact() -> list[str]:
    """The overrides of a digits_mlp run that a run on workers must match to rounding:
    float64, 2 epochs, noise drawn per sample, every step's loss recorded."""
    return list(EXACT)


@pytest.fixture(scope="session")
def steps_per_epoch() -> int:
    """The steps of a digits_mlp epoch: 1079 training samples in batches of 64."""
    return 17


@pytest.fixture(scope="session")
def cluster():
    """Three worker processes; a test uses the first K (``parallel.workers``)."""
    from dl_cli.distributed.cluster import connect

    connected = connect(3, None, quiet=True)
    yield connected
    connected.close()


def trained(overrides, run_dir: Path, cluster=None) -> tuple[list[float], dict]:
    """Train digits_mlp with ``overrides`` into ``run_dir`` (on ``cluster`` when the
    overrides set ``parallel``); every step's loss and the summary."""
    cfg = load_config(DIGITS_MLP, overrides)
    run = training.start(cfg, run_dir)
    summary = training.train(cfg, run, progress=False, cluster=cluster)
    return step_losses(run_dir), summary


def step_losses(run_dir: Path) -> list[float]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [line["train/batch_loss"] for line in lines if "train/batch_loss" in line]


@pytest.fixture(scope="session")
def train_digits():
    """``train_digits(overrides, run_dir, cluster=None)``: digits_mlp trained with
    ``overrides`` into ``run_dir`` (on ``cluster`` when the overrides set ``parallel``);
    returns every step's loss and the summary."""
    return trained


@pytest.fixture(scope="session")
def local_run(tmp_path_factory):
    """The EXACT config trained in this process: (step losses, summary, run folder)."""
    run_dir = tmp_path_factory.mktemp("local") / "run"
    losses, summary = trained(EXACT, run_dir)
    return losses, summary, run_dir


@pytest.fixture(scope="session")
def start_python():
    """``start_python(module, *args)``: ``python -m module args`` in a process of its own
    that imports this checkout's dl_cli, its output and errors piped as text."""
    def started(*command):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.Popen([sys.executable, "-m", *map(str, command)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return started
