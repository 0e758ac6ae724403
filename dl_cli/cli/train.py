"""``dl train``: a config (or a run folder to resume) into a trained run folder."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from .interrupts import interrupts_held, writing
from .completion import complete_override
from .output import (AS_IS, EXIT_DIVERGED, EXIT_INTERRUPTED, allow_plugins_flag, at_least,
                     at_most_blas, check_folder, err, fail, flag, load_or_fail, out, warn,
                     within_memory)


def train(
    config: Optional[Path] = typer.Argument(None, metavar="CONFIG", help="Train config YAML "
                                            "(see configs/); required unless --resume is given."),
    overrides: Optional[List[str]] = typer.Argument(
        None, metavar="KEY=VALUE", autocompletion=complete_override,
        help="key=value overrides, values parsed as YAML (~key: back to its default): "
                                        "optimizer.lr=1e-3 model.layers.0.units=256 "
                                        "train.epochs=5"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder "
                                          "from its checkpoints/last.npz (runs/<name>: the "
                                          "newest run of that name, finished or not), on the "
                                          "threads it trained on. train.epochs=N (more than "
                                          "before) trains a finished run longer; "
                                          "train.early_stopping.patience=N may change too."),
    print_config: bool = flag("--print-config", help="Print the config as training will use "
                              "it (YAML that dl train reads back): every option of every "
                              "component with its default, auto monitors resolved; then exit."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Write the run here instead of "
                                           "runs/<name>/<time>-<id>/."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads to compute on, from 1 "
                                          "to as many as NumPy's BLAS runs (OpenBLAS: often 64; "
                                          "default: as many as BLAS uses): BLAS threads, or, in "
                                          "convolutional models, parts of each batch. More than "
                                          "the cores is slower (a warning says so); small "
                                          "models and recurrent layers often run faster on 1."),
    quiet: bool = flag("--quiet", "-q", help="Print the final table alone: no line per "
                       "epoch, no progress bar."),
    backend: Optional[str] = typer.Option(None, "--backend", help="local | dask (an extra: pip "
                                          "install 'dl-cli\\[dask]'). dask trains on Dask "
                                          "workers, each holding a shard of the data, as the "
                                          "config's parallel.mode says: sync (map-reduce "
                                          "gradients: the numbers of one process, the default) "
                                          "or async (a parameter server: results depend on "
                                          "timing; the order of the updates is recorded, so a "
                                          "run replays). Default: the config's parallel "
                                          "section if it has one, else local."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Dask workers to train on "
                                          "(parallel.workers; without --address, a LocalCluster "
                                          "of this many processes)."),
    address: Optional[str] = typer.Option(None, "--address", help="The Dask scheduler to train on "
                                          "(tcp://host:8786) or its scheduler JSON file, instead "
                                          "of a LocalCluster; a resumed run may name another."),
    break_lock: bool = flag("--break-lock", help="Take the run folder over from a process of "
                            "another machine whose lock it holds (a lock of this machine is "
                            "taken over by itself once its process has ended): only once that "
                            "process has ended."),
    allow_plugins: bool = allow_plugins_flag(),
):
    """Train a model from a config: log metrics, keep the best validation checkpoint.

    The run folder gets config.yaml (resolved), metrics.jsonl, summary.json, train.log
    and checkpoints/{best,last}.npz. Ctrl-C saves last.npz and prints how to resume;
    before training starts, it stops at once and says what, if anything, was written.
    With validation.kfold=K it trains one run per fold (fold-0/ ... fold-K-1/) and
    scores the config by the mean over folds.

    Example: dl train configs/digits_mlp.yaml optimizer.lr=3e-3 train.epochs=10

    On 2 Dask workers: dl train configs/digits_mlp.yaml --backend dask --workers 2
    """
    from threadpoolctl import threadpool_limits

    from ..threads import cores

    if threads is not None:
        at_least("--threads", threads, 1)
        at_most_blas("--threads", threads)
    if resume is not None:
        if backend is not None or workers is not None:
            fail("--backend and --workers do not go with --resume: a resumed run continues "
                 "its own config.yaml, parallel section included (--address may name "
                 "another cluster)")
        cfg, run = resumed_run(resume, config, overrides or [], run_dir, print_config,
                               allow_plugins, break_lock)
        threads = resumed_threads(run.path, threads)
    else:
        cfg, run = new_run_config(config, overrides or [], run_dir, print_config,
                                  backend, workers), None
    if address is not None and cfg.parallel is None:
        fail("--address names the Dask cluster to train on: add --backend dask")
    available = cores()
    if threads is not None and threads > available:
        warn(f"--threads {threads} exceeds the {available} core{'s' * (available != 1)}: the "
             f"threads will compete for them, usually slower than --threads {available}")
    progress = not quiet and sys.stderr.isatty()
    say = None if quiet else epoch_say
    with threadpool_limits(limits=threads, user_api="blas"), within_memory():
        if cfg.validation.kfold:
            train_folds(cfg, run_dir, progress, say, root=run)
        else:
            train_one(cfg, run, run_dir, resume is not None, progress, say, address, break_lock)


def epoch_say(line: str) -> None:
    """An epoch's line, on stdout as the epoch ends (Rich flushes each print)."""
    out.print(line, **AS_IS)


def new_run_config(config: Optional[Path], overrides: list[str], run_dir: Optional[Path],
                   print_config: bool, backend: Optional[str] = None,
                   workers: Optional[int] = None):
    """The config of a new run, whose folder can be made, with ``--backend`` and
    ``--workers`` in its parallel section; exit 0 after printing it with --print-config."""
    from ..config.resolved import dump_resolved

    if config is None:
        fail("missing CONFIG: dl train CONFIG.yaml [key=value ...] (or --resume RUN_DIR)")
    cfg = load_or_fail(config, overrides)
    parallel = parallel_overrides(cfg, backend, workers)
    if parallel:
        cfg = load_or_fail(config, [*overrides, *parallel])
    if print_config:
        typer.echo(dump_resolved(cfg), nl=False)  # as is: no markup, no wrapping
        raise typer.Exit()
    if run_dir is not None:
        check_folder(run_dir, "--run-dir")
    else:
        check_folder(Path(cfg.runs_dir), "runs_dir")
    return cfg


def parallel_overrides(cfg, backend: Optional[str], workers: Optional[int]) -> list[str]:
    """The overrides of the config's parallel section that ``--backend`` and
    ``--workers`` ask for: dask keeps the section's mode (sync if it has none), local
    removes the section."""
    from ..registry import did_you_mean

    if backend not in (None, "local", "dask"):
        fail(f"--backend: expected local or dask, got {backend!r}"
             f"{did_you_mean(backend, ['local', 'dask'])}")
    if workers is not None:
        at_least("--workers", workers, 1)
        if backend == "local" or backend is None and cfg.parallel is None:
            fail(f"--workers {workers} trains on Dask workers: add --backend dask")
    if backend == "local":
        return ["parallel=null"] if cfg.parallel is not None else []
    overrides = ["parallel.mode=sync"] if backend == "dask" and cfg.parallel is None else []
    return overrides + ([f"parallel.workers={workers}"] if workers is not None else [])


def resumed_run(resume: Path, config: Optional[Path], overrides: list[str],
                run_dir: Optional[Path], print_config: bool, allow_plugins: bool,
                break_lock: bool = False):
    """The config (with the changes a resume accepts, ``continuation.extended``) and the
    (locked) run of the folder to resume (a config's name folder: its newest run,
    finished or not). ``break_lock``: take it over from a process of another machine."""
    from ..checks import ConfigError
    from ..config.resolved import dump_resolved
    from ..continuation import extended
    from ..crossval import resume_run
    from ..layout import RunLayout, resolve_run
    from ..storage import RunError

    if config is not None and "=" in str(config) and not config.exists():
        overrides = [str(config), *overrides]  # dl train --resume RUN train.epochs=60
    elif config is not None:
        fail("give either a config or --resume RUN_DIR, not both")
    if run_dir is not None:
        fail(f"--run-dir names a new run's folder: a resumed run stays in its own, {resume}")
    try:
        chosen = resolve_run(resume, finished=False)
    except RunError as error:
        fail(str(error))
    if chosen != resume:
        err.print(f"resuming {chosen}, the newest run in {resume}", **AS_IS)
        resume = chosen
    if print_config:
        saved = load_or_fail(RunLayout(resume).config, [], saved=True, allow_plugins=allow_plugins)
        try:
            typer.echo(dump_resolved(extended(saved, overrides) if overrides else saved), nl=False)
        except ConfigError as error:
            fail(str(error))
        raise typer.Exit()
    try:
        cfg, run = resume_run(resume, allow_plugins, break_lock)
    except (RunError, ConfigError) as error:
        fail(str(error))
    if overrides:
        try:
            cfg = extended(cfg, overrides)
        except ConfigError as error:
            run.release()
            fail(str(error))
    writing("kfold" if cfg.validation.kfold else "run", resume)
    return cfg, run


def resumed_threads(resume: Path, threads: Optional[int]) -> Optional[int]:
    """The threads a resume computes on: those the run recorded, unless --threads says
    otherwise (warned: the numbers then differ from an uninterrupted run's)."""
    from ..continuation import recorded_threads

    recorded = recorded_threads(resume)
    if threads is None:
        return recorded
    if recorded is not None and threads != recorded:
        warn(f"--threads {threads}: the run trained on {recorded} thread"
             f"{'s' * (recorded != 1)}; on {threads} its numbers will differ from an "
             f"uninterrupted run's (leave --threads out to resume on {recorded})")
    return threads


def train_one(cfg, run, run_dir: Optional[Path], resuming: bool, progress: bool, say,
              address: Optional[str] = None, break_lock: bool = False) -> None:
    from .. import training
    from ..data import DataError
    from ..loggers import LoggerError, start_loggers
    from ..memory import out_of_memory
    from ..nn import ShapeError
    from ..storage import RunError
    from ..tables import summary_table, summary_title

    cluster = None
    try:
        parts = training.assemble(cfg)
        loggers = start_loggers(cfg)  # before the run folder: one that cannot start leaves none
        cluster = dask_cluster(cfg, address)  # before a new run's folder is made
        if run is None:
            with interrupts_held():
                run = training.start(cfg, run_dir, break_lock=break_lock)
                writing("run", run.path)
    except (DataError, ShapeError, RunError, LoggerError, OSError, MemoryError) as error:
        if run is not None:
            run.release()
        if cluster is not None:
            cluster.close()
        fail(out_of_memory(error) if isinstance(error, MemoryError) else str(error))
    if say is not None:
        err.print(f"[bold]{escape(cfg.name)}[/]: {parts.model.num_params():,} parameters, "
                  f"{len(parts.splits.train.X)} train / {len(parts.splits.val.X)} val / "
                  f"{len(parts.splits.test.X)} test samples → {escape(str(run.path))}",
                  highlight=False, soft_wrap=True)
    with training_errors(run), closing(cluster):
        try:
            summary = training.train(cfg, run, parts, resuming=resuming, progress=progress,
                                     warn=warn, cluster=cluster, loggers=loggers, say=say)
        except training.Finished as finished:
            out.print(str(finished), **AS_IS)
            return
    writing("done", run.path)
    out.print(summary_title(summary), **AS_IS)
    out.print(summary_table(summary))
    out.print(f"run folder: {run.path}", **AS_IS)


def dask_cluster(cfg, address: Optional[str]):
    """The Dask cluster a config with a parallel section trains on (a LocalCluster
    unless ``address`` is given), or None; exit 2 when it cannot be reached."""
    from ..distributed.cluster import ClusterError, connect

    if cfg.parallel is None:
        return None
    try:
        return connect(cfg.parallel.workers, address, quiet=True)
    except ClusterError as error:
        fail(str(error))


@contextmanager
def closing(cluster):
    try:
        yield
    finally:
        if cluster is not None:
            cluster.close()


def train_folds(cfg, run_dir: Optional[Path], progress: bool, say, root=None) -> None:
    from ..crossval import train_folds
    from ..tables import folds_table, folds_title
    from ..training import Finished

    with training_errors(None):
        try:
            summary = train_folds(cfg, run_dir, progress=progress, warn=warn, say=say,
                                  root=root, made=lambda path: writing("kfold", path))
        except Finished as finished:
            out.print(str(finished), **AS_IS)
            return
    writing("done", summary["run_dir"])
    out.print(folds_title(summary), **AS_IS)
    out.print(folds_table(summary))
    out.print(f"run folder: {summary['run_dir']}", **AS_IS)


@contextmanager
def training_errors(run):
    """Turn the ways training stops into messages and exit codes (``run`` None: a k-fold
    run, whose errors name its folder)."""
    from ..data import DataError
    from ..distributed.source import WorkersLost
    from ..loggers import LoggerError
    from ..nn import ShapeError
    from ..stopping import Diverged, Interrupted
    from ..storage import RunError

    try:
        yield
    except Diverged as error:
        if run is None:
            kept = "The folds' best checkpoints are unchanged"
        elif run.layout.checkpoint("best").exists():
            kept = "The best checkpoint is unchanged"
        else:
            kept = "No epoch ended before it, so there is no best checkpoint"
        fail(f"training diverged: {error}. {kept}; try a lower learning rate or gradient "
             f"clipping.", EXIT_DIVERGED)
    except Interrupted as error:
        if run is None:  # k-fold: the error says how to resume the whole run
            err.print(str(error), **AS_IS)
        else:
            err.print(f"{error}; state saved in {run.layout.checkpoint('last')}.\n"
                      f"Resume with: dl train --resume {run.path}", **AS_IS)
        raise typer.Exit(EXIT_INTERRUPTED)
    except WorkersLost as error:
        last = run.layout.checkpoint("last")
        if not last.exists():
            fail(f"no Dask workers to train on: {error}; no step was taken", 1)
        err.print(f"training stopped: the Dask workers are lost ({error}); state saved in "
                  f"{last}.\nResume with: dl train --resume {run.path}", **AS_IS)
        raise typer.Exit(1)
    except (DataError, RunError, ShapeError, LoggerError) as error:
        fail(str(error))
    except OSError as error:  # a MemoryError goes on to within_memory, around every use
        written = error.filename or (run.path if run else None)
        fail(f"cannot write {written}: {error.strerror or error}; the checkpoints already "
             f"written are unchanged", 1)
