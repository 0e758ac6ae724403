"""A real Dask LocalCluster (processes, one thread each) shared by the distributed
tests, and runs to compare with: the same config trained in this process."""

import json
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
STEPS_PER_EPOCH = 17  # 1079 training samples in batches of 64


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
def local_run(tmp_path_factory):
    """The EXACT config trained in this process: (step losses, summary, run folder)."""
    run_dir = tmp_path_factory.mktemp("local") / "run"
    losses, summary = trained(EXACT, run_dir)
    return losses, summary, run_dir
