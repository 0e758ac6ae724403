"""Synchronous data-parallel training (map-reduce gradients) gives the numbers of one
process, whatever the number of workers."""

import numpy as np
import pytest

from dl_cli.config import load_config
from dl_cli.distributed.dask_sync import DaskSource
from dl_cli.draws import sample_keys
from dl_cli.storage import load_npz
from dl_cli import training


def metrics_of(summary: dict) -> dict:
    return {**{f"best {k}": v for k, v in summary["best"].items() if "/" in k},
            **{f"final {k}": v for k, v in summary["final"].items() if "/" in k},
            **summary["test"]}


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_k_workers_give_the_losses_and_metrics_of_one_process(
        workers, cluster, local_run, tmp_path, train_digits, exact, steps_per_epoch):
    local_losses, local_summary, local_dir = local_run
    losses, summary = train_digits([*exact, f"parallel.workers={workers}"], tmp_path / "run",
                                   cluster)
    assert len(losses) == len(local_losses) == 2 * steps_per_epoch
    np.testing.assert_allclose(losses[:steps_per_epoch], local_losses[:steps_per_epoch],
                               rtol=1e-10, atol=0)
    expected = metrics_of(local_summary)
    assert metrics_of(summary).keys() == expected.keys()
    for name, value in metrics_of(summary).items():
        assert value == pytest.approx(expected[name], rel=1e-6), name
    assert summary["best_epoch"] == local_summary["best_epoch"]
    last, local_last = load_npz(tmp_path / "run/checkpoints/last.npz"), load_npz(local_dir / "checkpoints/last.npz")
    assert last.keys() == local_last.keys()
    arrays = [k for k in last if k.startswith(("param/", "buffer/", "optim/"))]
    assert len(arrays) > 10
    for name in arrays:
        np.testing.assert_allclose(last[name], local_last[name], rtol=1e-7, atol=1e-9, err_msg=name)


def test_a_run_on_workers_writes_the_files_of_a_local_run(cluster, local_run, tmp_path,
                                                          train_digits, exact):
    _, _, local_dir = local_run
    train_digits([*exact, "train.epochs=1", "parallel.workers=2"], tmp_path / "run", cluster)
    files = {p.relative_to(tmp_path / "run") for p in (tmp_path / "run").rglob("*")}
    assert files == {p.relative_to(local_dir) for p in local_dir.rglob("*")}
    log = (tmp_path / "run/train.log").read_text()
    assert "training on 2 Dask workers of a LocalCluster of 3 processes (sync)" in log


def test_parts_of_one_sample_train_with_the_batch_statistics(cluster, digits_mlp):
    """Batchnorm statistics are synchronized: a worker whose part of the batch is a
    single sample normalizes it by the whole batch's mean and variance (per-worker
    statistics would refuse it), and the step equals one process's."""
    cfg = load_config(digits_mlp, ["train.dtype=float64", "parallel.workers=3"])
    parts = training.assemble(cfg)
    local = training.assemble(load_config(digits_mlp, ["train.dtype=float64"]))
    source = DaskSource(cluster.client, parts.model, parts.splits, cfg, workers=3)
    idx = np.array([0, 1, 500, 1000])  # parts of 2, 1 and 1 samples on shards 0, 1, 2
    assert [np.sum(source.owner[idx] == k) for k in range(3)] == [2, 1, 1]
    loss, grads = source.gradients(idx, epoch=0)
    X, y = local.splits.train.X[idx], local.splits.train.y[idx]
    local_loss, local_grads = local.model.loss(X, y, keys=sample_keys(0, idx))
    assert loss == pytest.approx(local_loss, rel=1e-12)
    for name in grads:
        np.testing.assert_allclose(grads[name], local_grads[name], rtol=1e-9, atol=1e-13)
    for name in parts.model.buffers:  # the running statistics moved as one process's did
        np.testing.assert_allclose(parts.model.buffers[name], local.model.buffers[name], rtol=1e-12)


def test_scores_come_back_in_the_order_asked(cluster, digits_mlp):
    cfg = load_config(digits_mlp, ["train.dtype=float64", "parallel.workers=2"])
    parts = training.assemble(cfg)
    source = DaskSource(cluster.client, parts.model, parts.splits, cfg, workers=2)
    idx = np.array([900, 3, 540, 17, 1078])
    np.testing.assert_allclose(source.scores("train", idx),
                               parts.model.scores(parts.splits.train.X[idx]), rtol=1e-12)
    np.testing.assert_allclose(source.scores("test"), parts.model.scores(parts.splits.test.X),
                               rtol=1e-12)
