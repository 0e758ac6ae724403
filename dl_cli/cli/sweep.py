"""The commands of many runs: ``dl sweep`` runs them, ``dl plot`` and ``dl report`` draw them."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from .interrupts import interrupts_held, writing
from .completion import complete_override
from .output import (AS_IS, at_least, at_most_blas, check_folder, err, fail, flag, out, run_folder,
                     warn)


def sweep(
    spec: Optional[Path] = typer.Argument(None, metavar="SPEC", help="Sweep spec YAML (see "
                                          "configs/sweep_digits.yaml); required unless --resume "
                                          "is given. A train config instead makes a grid of "
                                          "the overrides given as key=v1,v2,..."),
    overrides: Optional[List[str]] = typer.Argument(
        None, metavar="KEY=VALUE", autocompletion=complete_override,
        help="key=value overrides of the base config for every "
                                        "trial (train.epochs=5); sweep.KEY=VALUE sets a key of "
                                        "the spec (sweep.trials=8 sweep.seed=1; a domain: "
                                        "'sweep.params.optimizer.lr={values: [0.01, 0.1]}')."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Trials at once "
                                          "(default 1; with --resume, as the sweep last ran). "
                                          "1 runs them in this process; N starts N worker "
                                          "processes (with --backend dask and no --address: "
                                          "a LocalCluster of N). Each trial uses the spec's "
                                          "threads: BLAS threads (default 1), so results do "
                                          "not depend on N; a warning says when N × threads "
                                          "exceed the cores."),
    backend: Optional[str] = typer.Option(None, help="local | dask | ray (default local; with "
                                          "--resume, as the sweep last ran). dask and ray are "
                                          "extras: pip install 'dl-cli\\[dask]'."),
    address: Optional[str] = typer.Option(None, help="dask: the scheduler (tcp://host:8786) or its "
                                          "scheduler JSON file; ray: the cluster address."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the sweep in this folder: "
                                          "only trials that never finished run (failed ones with "
                                          "--retry-failed); refused if the spec or the base "
                                          "config changed."),
    retry_failed: bool = flag("--retry-failed", help="With --resume: run the failed trials "
                              "again, from scratch."),
    dry_run: bool = flag("--dry-run", help="Print the trials and validate each one's config; "
                         "train nothing."),
    fail_fast: bool = flag("--fail-fast", help="Start no trial after the first failure and "
                           "exit 1."),
    sweep_dir: Optional[Path] = typer.Option(None, "--sweep-dir", help="Write the sweep here instead "
                                             "of runs/<name>/<time>-<id>/."),
    break_lock: bool = flag("--break-lock", help="With --resume: take the sweep folder and its "
                            "trial folders over from processes of other machines whose locks "
                            "they hold: only once those processes have ended."),
):
    """Grid, random or TPE search over any config keys, in parallel, resumable.

    Quick grid without a spec: dl sweep CONFIG optimizer.lr=1e-3,1e-2
    model.layers.0.units=64,128 trains the 4 combinations.

    Each trial is an ordinary run folder (trial-0007/) inside the sweep folder, which also
    holds ledger.jsonl (every trial's state), results.csv (one row per trial) and
    best.yaml (the winning config: dl train best.yaml). Exit 0 when a trial completed.
    Ctrl-C once lets the running trials finish, twice stops them (before the sweep
    starts, once stops it); resume with dl sweep --resume SWEEP_DIR.
    """
    from ..sweep.executors import BackendError, make_backend, start_worker_server

    workers, backend, address = placement(resume, workers, backend, address)
    check_options(workers, backend, address, resume, retry_failed, sweep_dir)
    if backend == "local" and workers > 1 and not dry_run:
        start_worker_server()  # it imports while the trials are planned
    if break_lock and resume is None:
        fail("--break-lock goes with --resume SWEEP_DIR")
    if resume is not None and spec is not None and "=" in str(spec) and not spec.exists():
        overrides, spec = [str(spec), *(overrides or [])], None  # --resume DIR key=value ...
    sweep_spec, base, first, configs = planned(spec, overrides or [], resume)
    for message in sweep_spec.warnings:
        warn(message)
    if backend == "local":  # the trials run here, on this BLAS
        at_most_blas("threads", sweep_spec.threads)
    if dry_run:
        print_plan(sweep_spec, first, configs)
        raise typer.Exit()
    check_folder_and_cores(sweep_spec, base, sweep_dir, resume, backend, workers)
    try:
        runner_backend = make_backend(backend, workers, address, sweep_spec.threads)
    except BackendError as error:
        fail(str(error))
    raise typer.Exit(run_sweep(sweep_spec, base, configs, runner_backend, sweep_dir, resume,
                               note=f"{backend} × {workers}", retry_failed=retry_failed,
                               fail_fast=fail_fast, placement={"executor": backend,
                                                               "workers": workers,
                                                               "address": address},
                               break_lock=break_lock))


def placement(resume: Optional[Path], workers: Optional[int], backend: Optional[str],
              address: Optional[str]) -> tuple[int, str, Optional[str]]:
    """Workers, backend and address: as given; for what is not given, on --resume, as
    the sweep last ran (the address only on the same backend), else 1 worker in process."""
    from ..layout import SweepLayout
    from ..sweep.ledger import Ledger, SweepError

    last = None
    if resume is not None and SweepLayout(resume).is_sweep:
        try:
            last = Ledger(SweepLayout(resume).ledger).placement()
        except SweepError:
            last = None  # opening the sweep says what is wrong with its ledger
    if last is None or backend not in (None, last["executor"]):
        return (1 if workers is None else workers), backend or "local", address
    return (last["workers"] if workers is None else workers, last["executor"],
            last["address"] if address is None else address)


MOST_WORKERS = 4096  # more trials at once than any machine or cluster here would run


def local_address(address: str) -> bool:
    """Whether a scheduler address (``tcp://host:8786``, ``host:6379``, a scheduler file,
    Ray's ``auto``) names this machine: a loopback host, or a file (written by a scheduler
    this user ran)."""
    from urllib.parse import urlsplit

    if address == "auto" or Path(address).is_file():  # ray's "auto": a cluster started here
        return True
    try:
        host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
    except ValueError:  # not an address: the backend says so when it tries it
        return False
    return host in ("localhost", "::1") or host.startswith("127.")


def check_options(workers: int, backend: str, address: Optional[str], resume: Optional[Path],
                  retry_failed: bool, sweep_dir: Optional[Path]) -> None:
    from ..registry import did_you_mean
    from ..sweep.executors import BACKENDS

    at_least("--workers", workers, 1)
    if workers > MOST_WORKERS:
        fail(f"--workers: expected an integer from 1 to {MOST_WORKERS:,}, got {workers:,} "
             f"(each worker is a process, or a task slot of the cluster)")
    if backend not in BACKENDS:
        fail(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}"
             f"{did_you_mean(backend, BACKENDS)}")
    if address is not None and backend == "local":
        fail("--address names a dask scheduler or a ray cluster: add --backend dask or --backend ray")
    if address is not None and not local_address(address):
        warn(f"--address {address}: the trials' configs and code run on that cluster, and "
             f"what its workers send back is trusted (Dask and Ray run what they are sent, "
             f"and unpickle results): use a scheduler you control, on a network you trust")
    if retry_failed and resume is None:
        fail("--retry-failed goes with --resume SWEEP_DIR")
    if resume is not None and sweep_dir is not None:
        fail("give either --resume SWEEP_DIR or --sweep-dir, not both")


def planned(spec: Optional[Path], overrides: list[str], resume: Optional[Path]):
    """The spec (``resume``'s own when none is given), the base config, the first round's
    trial plans and their validated configs; exit 2 with every mistake."""
    from ..checks import ConfigError
    from ..layout import SweepLayout
    from ..sweep.planning import resolve_plans
    from ..sweep.sampling import plan_round
    from ..sweep.quick import is_train_config, prepare_grid
    from ..sweep.base_config import prepare

    if spec is None:
        if resume is None:
            fail("missing SPEC: dl sweep SPEC.yaml [key=value ...] (or --resume SWEEP_DIR)")
        spec = SweepLayout(resume).spec
        if not spec.exists():
            fail(f"{resume} is not a sweep folder (no spec.yaml)")
    try:
        if resume is None and is_train_config(spec):
            sweep_spec, base = prepare_grid(spec, overrides)
        else:
            sweep_spec, base = prepare(spec, overrides)
        first = plan_round(sweep_spec, sweep_spec.params, 0)
        return sweep_spec, base, first, resolve_plans(sweep_spec, base, first)
    except ConfigError as error:
        if resume is None:  # the spec named on the command line
            fail(str(error))
        fail("\n".join(line if line.startswith(str(spec)) else f"{spec}: {line}"
                       for line in error.errors))


def print_plan(sweep_spec, first: list, configs: dict) -> None:
    """A dry run: the trials, how they would run, and whether every model builds."""
    from ..sweep.planning import build_errors
    from ..sweep.results import plan_lines, plan_table

    out.print(plan_table(first, sweep_spec))
    for line in plan_lines(sweep_spec, len(first), max(c.train.epochs for c in configs.values())):
        out.print(line, **AS_IS)
    problems = build_errors(configs)
    if problems:
        fail("\n".join(problems))
    out.print(f"all {len(first)} trial configs are valid and their models build", highlight=False)


def check_folder_and_cores(sweep_spec, base: dict, sweep_dir: Optional[Path],
                           resume: Optional[Path], backend: str, workers: int) -> None:
    """Refuse a sweep folder that cannot be made; warn of more threads than cores."""
    from ..config.validation import validate
    from ..threads import cores

    if sweep_dir is not None:
        check_folder(sweep_dir, "--sweep-dir")
    elif resume is None:
        check_folder(Path(validate(base).runs_dir), "runs_dir")
    available, threads = cores(), sweep_spec.threads
    if backend == "local" and workers * threads > available:
        warn(f"{workers} worker{'s' * (workers != 1)} × {threads} BLAS thread"
             f"{'s' * (threads != 1)} exceed the {available} core{'s' * (available != 1)}: "
             f"{'trials' if workers > 1 else 'the threads'} will compete for them")


def run_sweep(sweep_spec, base: dict, configs: dict, backend, sweep_dir: Optional[Path],
              resume: Optional[Path], note: str, retry_failed: bool, fail_fast: bool,
              placement: dict, break_lock: bool = False) -> int:
    """Open the sweep folder, run what is left of the sweep and print its leaderboard;
    return the exit code (``Outcome.exit_code``)."""
    from ..layout import SweepLayout
    from ..sweep.folder import SweepError, open_sweep
    from ..sweep.ledger import SweepWriteError
    from ..sweep.results import leaderboard
    from ..sweep.runner import SweepRunner

    record = sweep_record(base, backend)
    try:
        with interrupts_held():
            folder = open_sweep(sweep_spec, base, sweep_dir, resume, note=note,
                                placement=placement, break_lock=break_lock)
            writing("sweep", folder)
    except (SweepError, OSError) as error:
        backend.close()
        fail(str(error))
    if record is not None:
        guarded(lambda: record.open(folder, sweep_spec.raw), "opened the sweep's parent run")
    outcome = None
    try:
        runner = SweepRunner(sweep_spec, base, folder, backend, console=err,
                             retry_failed=retry_failed, fail_fast=fail_fast, configs=configs,
                             break_lock=break_lock)
        err.print(opening(runner, resume is not None), highlight=False, soft_wrap=True)
        outcome = runner.run()
    except SweepWriteError as error:  # the ledger itself, or results.csv
        fail(f"{error}; the sweep stopped. {kept(runner.table)}; free space, then continue "
             f"with: dl sweep --resume {folder}", 1)
    except SweepError as error:
        fail(str(error))
    finally:
        backend.close(wait=outcome is not None and not outcome.interrupted)
    if record is not None:
        guarded(lambda: end_record(record, sweep_spec, outcome), "ended the sweep's parent run")
    if outcome.out_of_space:
        err.print(f"the sweep stopped: a trial could not write its files (no space left). "
                  f"{kept(outcome.table)}; free space, then resume it.", **AS_IS)
    out.print(leaderboard(outcome.table, sweep_spec))
    out.print(f"sweep folder: {folder}  (results.csv, ledger.jsonl, trial-*/)", **AS_IS)
    best = SweepLayout(folder).best
    if is_study(sweep_spec):  # it compares configurations; no one of them is the answer
        if outcome.complete:
            out.print(f"next: dl report {folder}", **AS_IS)
    elif best.exists():
        out.print(f"best config: dl train {best}", **AS_IS)
    if outcome.interrupted or not outcome.complete:
        err.print(f"continue with: dl sweep --resume {folder}", **AS_IS)
    return outcome.exit_code


def is_study(sweep_spec) -> bool:
    """Whether the sweep is a study (a ``claim`` or ``report`` in its spec): what it
    leads to is ``dl report``, not the one best config."""
    return bool(sweep_spec.claim or sweep_spec.report)


def sweep_record(base: dict, backend):
    """The sweep's parent run in MLflow (``loggers.start_sweep_record``), started before
    the sweep folder is made: exit 2 when it cannot start. None when the trials do not
    log to MLflow."""
    from ..config.validation import validate
    from ..loggers import LoggerError, start_sweep_record

    try:
        return start_sweep_record(validate(base))
    except LoggerError as error:
        backend.close()
        fail(str(error))


def end_record(record, sweep_spec, outcome) -> None:
    """End the parent run with the best configuration's mean metric."""
    from ..sweep.results import best_configuration

    best = best_configuration(outcome.table, sweep_spec)
    status = "KILLED" if outcome.interrupted else "FINISHED" if outcome.complete else "FAILED"
    record.end(sweep_spec.metric, best.mean if best else None, status)


def guarded(action, what: str) -> None:
    """Do ``action``; a failure of the tracking store is a warning: the sweep folder stays
    the record."""
    try:
        action()
    except Exception as error:  # whatever MLflow raises, the sweep goes on
        warn(f"the mlflow logger failed as it {what} ({type(error).__name__}: {error}); "
             f"the trials are logged without it")


def kept(table: dict) -> str:
    """What a sweep stopped by a full disk keeps: its completed trials."""
    done = sum(state.status == "completed" for state in table.values())
    return (f"The ledger records {done} completed trial{'s' * (done != 1)} of {len(table)}, "
            f"each kept in its folder")


def opening(runner, resumed: bool) -> str:
    """The sweep's first line: how many trials run where (Rich markup)."""
    left, total = runner.trials_left()
    name = f"[bold]{escape(runner.spec.name)}[/]"
    where = f"{escape(runner.backend.description)} → {escape(str(runner.folder))}"
    if not resumed:
        return f"{name}: {total} trial{'s' * (total != 1)} on {where}"
    if left > 0:
        return f"{name}: {left} of {total} trials to run on {where}"
    return (f"{name}: already complete, all {total} trials finished; nothing to run "
            f"({escape(str(runner.folder))})")


def plot(
    path: Path = typer.Argument(..., metavar="PATH", help="A run folder (its learning curves; "
                                "runs/<name> for the newest finished run) or a sweep folder "
                                "(the metric against each varied parameter, the learning "
                                "curves of the best trials and, with two parameters and 5 "
                                "completed trials, each parameter's importance and a contour "
                                "of the two most important)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for the PNG files "
                                           "(default: PATH/plots)."),
    top: int = typer.Option(5, help="Sweeps: how many of the best trials get learning curves."),
):
    """Draw curves as PNG files (matplotlib, no display needed) and print their paths.

    A run that outputs images adds what its best checkpoint does on test samples: an
    autoencoder (data.target: input) reconstructions.png, inputs above their
    reconstructions; a segmentation run label_maps.png, images above their true and
    predicted label maps.

    Example: dl plot runs/lr-vs-width/<sweep> --top 3
    """
    at_least("--top", top, 1)
    path = run_folder(path, "plot")
    try:
        from ..plot import PlotError, plot_path
    except ImportError:
        fail("dl plot needs matplotlib: pip install 'dl-cli[plot]'")
    try:
        written = plot_path(path, out_dir or path / "plots", top=top)
    except PlotError as error:
        fail(str(error))
    for png in written:
        out.print(str(png), **AS_IS)


def report(
    sweep_dir: Path = typer.Argument(..., metavar="SWEEP_DIR", help="A sweep folder, such as "
                                     "one of a study in experiments/ (dl sweep prints where "
                                     "it is)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for report.md and its "
                                           "PNG figures (default: SWEEP_DIR/report)."),
):
    """Write a study's report.md: its claim, a table and figures.

    The table holds mean ± std per configuration over seeds; beside report.md go the
    learning curves per variant and the study's own figures as PNG files.
    """
    try:
        from ..studies.report import ReportError, write_report
    except ImportError:
        fail("dl report needs matplotlib: pip install 'dl-cli[plot]'")
    from ..storage import RunError

    try:
        path = write_report(sweep_dir, out_dir)
    except (ReportError, RunError) as error:
        fail(str(error))
    except OSError as error:  # --out names a file, or a folder that cannot be made
        fail(f"cannot write the report to {error.filename or out_dir}: {error.strerror or error}")
    out.print(str(path), **AS_IS)
    for png in sorted(path.parent.glob("*.png")):
        out.print(str(png), **AS_IS)
