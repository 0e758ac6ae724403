"""Where trials run: local worker processes forked from a server, Dask and Ray give the
same results as one worker; workers that die; BLAS threads per worker."""

import math
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_two_workers_give_the_same_results(reference, tmp_path, write_sweep, random_spec, sweep,
                                           outcomes, metric_lines):
    spec = write_sweep(tmp_path, random_spec)
    result = sweep(spec, tmp_path / "sweep", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert outcomes(tmp_path / "sweep") == outcomes(reference)
    for t in range(4):
        assert metric_lines(tmp_path / "sweep" / f"trial-{t:04d}") == metric_lines(reference / f"trial-{t:04d}")


def test_dask_backend_gives_the_same_results(reference, tmp_path, write_sweep, random_spec, sweep,
                                             outcomes, metric_lines):
    distributed = pytest.importorskip("distributed")
    spec = write_sweep(tmp_path, random_spec)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        result = sweep(spec, tmp_path / "sweep", "--backend", "dask", "--address",
                       cluster.scheduler_address)
    assert result.exit_code == 0, result.output
    assert "Dask, 2 worker threads" in result.output
    assert outcomes(tmp_path / "sweep") == outcomes(reference)
    for t in range(4):
        assert metric_lines(tmp_path / "sweep" / f"trial-{t:04d}") == metric_lines(reference / f"trial-{t:04d}")


def test_bad_backend_options_exit_2(tmp_path, write_sweep, random_spec, sweep):
    spec = write_sweep(tmp_path, random_spec)
    for args, message in ((["--backend", "daks"], "did you mean 'dask'"),
                          (["--address", "tcp://x:1"], "add --backend dask"),
                          (["--workers", "0"], "--workers"),
                          (["--retry-failed"], "goes with --resume")):
        result = sweep(spec, tmp_path / "sweep", *args)
        assert result.exit_code == 2 and message in result.output, args
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_digits_sweep_is_the_same_on_one_and_two_workers(tmp_path, outcomes, rows):
    spec = ROOT / "configs" / "sweep_digits.yaml"
    args = ["sweep.trials=12", "train.epochs=2", f"runs_dir={tmp_path}"]
    one = runner.invoke(app, ["sweep", str(spec), *args, "--sweep-dir", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    two = runner.invoke(app, ["sweep", str(spec), *args, "--sweep-dir", str(tmp_path / "two"),
                              "--workers", "2"])
    assert two.exit_code == 0, two.output
    assert outcomes(tmp_path / "one") == outcomes(tmp_path / "two")
    assert math.isfinite(float(rows(tmp_path / "one")[0]["val/acc"]))


@pytest.mark.slow
def test_ray_backend_gives_the_same_results(reference, tmp_path, write_sweep, random_spec, sweep,
                                            outcomes):
    pytest.importorskip("ray")
    spec = write_sweep(tmp_path, random_spec)
    result = sweep(spec, tmp_path / "sweep", "--backend", "ray", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert outcomes(tmp_path / "sweep") == outcomes(reference)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the server's /proc entries")
def test_local_workers_fork_from_a_server_that_has_already_imported_numpy():
    import os

    from dl_cli.sweep import executors

    backend = executors.make_backend("local", 2)
    try:
        parent = backend.executor.submit(os.getppid).result(timeout=120)
    finally:
        backend.close()
    assert parent != os.getpid()  # not spawned by the driver: forked by the server
    assert "multiprocessing.forkserver" in Path(f"/proc/{parent}/cmdline").read_text()
    assert "_multiarray_umath" in Path(f"/proc/{parent}/maps").read_text()


def loaded_in_worker(module: str) -> bool:
    import sys

    return module in sys.modules


def test_the_worker_server_leaves_without_the_garbage_collectors_last_passes():
    """The server holds the driver's output pipe until it exits, so it exits quickly."""
    from dl_cli.sweep import executors

    backend = executors.make_backend("local", 2)
    try:
        inherited = backend.executor.submit(loaded_in_worker, "dl_cli.quick_exit").result(timeout=120)
    finally:
        backend.close()
    assert inherited  # imported by the server, so its exit handler is registered there


def test_workers_that_die_as_they_start_stop_the_sweep_instead_of_looping(tmp_path, monkeypatch,
                                                                          write_sweep, random_spec,
                                                                          sweep, events, rows):
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from dl_cli.sweep import executors

    def dying_backend(name, workers, address=None, threads=1):
        def pool():  # every worker exits in its initializer, before it takes a trial
            return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=os._exit, initargs=(3,))
        return executors.Backend("local", pool(), workers, "dying workers", renew=pool)

    monkeypatch.setattr(executors, "make_backend", dying_backend)
    spec = write_sweep(tmp_path, random_spec)
    folder = tmp_path / "sweep"
    result = sweep(spec, folder, "--workers", "2")
    assert result.exit_code == 2
    assert "died 3 times in a row" in result.output and f"--resume {folder}" in result.output
    assert not events(folder, "result") or all(
        e["status"] == "interrupted" for e in events(folder, "result"))
    monkeypatch.undo()  # the workers can start again: the sweep continues where it stopped
    result = runner.invoke(app, ["sweep", "--resume", str(folder)])
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in rows(folder)] == ["completed"] * 4


def test_a_worker_stopped_outside_training_releases_its_run_lock_first(tmp_path):
    from dl_cli.runs import Run
    from dl_cli.stopping import Interrupted
    from dl_cli.sweep.executors import stop_worker

    run = Run(tmp_path / "trial-0000")
    run.acquire()  # a trial between taking its lock and the Solver's own signal handling
    assert run.layout.lock.exists()
    with pytest.raises(Interrupted):
        stop_worker(signal.SIGTERM, None)
    assert not run.layout.lock.exists()  # so the driver does not take it for a killed worker
    run.acquire()
    run.release()
    assert not run.layout.lock.exists()


def test_more_blas_threads_than_cores_are_warned_of(tmp_path, monkeypatch, write_sweep, sweep):
    import dl_cli.threads

    monkeypatch.setattr(dl_cli.threads, "cores", lambda: 1)
    spec = write_sweep(tmp_path, {"method": "grid", "threads": 2,
                                  "params": {"optimizer.lr": {"values": [0.01]}}})
    result = sweep(spec, tmp_path / "s", "train.epochs=1")
    assert result.exit_code == 0, result.output
    assert ("warning: 1 worker × 2 BLAS threads exceed the 1 core: the threads will compete "
            "for them") in result.output
