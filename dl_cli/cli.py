"""The `dl` command line: Typer wiring only; the modules do the work.

Exit codes: 0 success; 1 a gradient check failed, a write failed, or a sweep in which no
trial completed (or that --fail-fast stopped); 2 bad input (config, path, option, data file,
checkpoint) or a sweep whose workers die as they start; 3 training diverged; 130
interrupted (the resume command is printed; a Ctrl-C before training or a sweep starts
says what it leaves behind, see ``interrupted``).
"""

from __future__ import annotations

import inspect
import os
import re
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console
from typer.core import TyperGroup

from . import __version__
from .memory import out_of_memory, too_large


class Commands(TyperGroup):
    """The commands, with one answer to a Ctrl-C that lands outside the training loop's
    and the sweep runner's own handling: as typer reads the command line (its first
    use imports pydantic) or as a command starts. Typer alone exits 130 in silence."""

    def make_context(self, info_name, args, parent=None, **extra):
        global _writing
        _writing = None
        command = next((arg for arg in args if not arg.startswith("-")), None)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except KeyboardInterrupt:
            leave(command)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            leave(ctx.invoked_subcommand)


app = typer.Typer(cls=Commands, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
# Text we did not write (paths, names, messages) is printed AS_IS or escaped: Rich would
# read "[minmax]" as a tag and drop it. No emoji codes either (":x:" stays as it is).
# In a pipe or a file, tables are as wide as their content (Rich would cut them at 80
# columns, breaking run paths and values); a terminal's width, or COLUMNS, still rules.
PIPE_WIDTH = 1000


def console(stream) -> Console:
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stream is sys.stderr, emoji=False, width=PIPE_WIDTH if piped else None)


out = console(sys.stdout)
err = console(sys.stderr)
AS_IS = {"markup": False, "highlight": False, "soft_wrap": True}  # and paths stay on one line

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130


def flag(*decls: str, help: str, **options):
    """An on/off option. typer 0.29's Rich help shows a type for every option, flags
    included (``--quiet <bool>``, as if it took a value); an empty metavar leaves the
    column blank. Its own --help keeps ``<bool>``."""
    return typer.Option(False, *decls, metavar="", help=help, **options)


def at_least(option: str, value: int, minimum: int) -> None:
    """Refuse an integer option below ``minimum`` (typer's ``min=`` message omits the value)."""
    if value < minimum:
        fail(f"{option}: expected an integer >= {minimum}, got {value}")


@contextmanager
def within_memory():
    """Exit 2 with ``out_of_memory``'s advice when the work asks for arrays that cannot
    be made (``memory.too_large``); any other error goes on."""
    try:
        yield
    except (MemoryError, ValueError) as error:
        if not too_large(error):
            raise
        fail(out_of_memory(error))


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print ``message`` (taken literally, never as Rich markup) to stderr and exit."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# What the command is writing, for ``interrupted``: ("run" | "kfold" | "sweep", its folder),
# or ("done", a finished run). Set as a folder is made or opened, None until then.
_writing: Optional[tuple[str, Path]] = None


def writing(kind: str, folder) -> None:
    global _writing
    _writing = (kind, Path(folder))


@contextmanager
def interrupts_held():
    """A Ctrl-C waits for the end of the block: a folder being made is then made, and
    ``writing`` has said which."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        signal.raise_signal(signal.SIGINT)  # to the handler as it was


def interrupted(command: Optional[str]) -> str:
    """The line a Ctrl-C prints outside the training loop's and the sweep runner's own
    handling: what it leaves on disk, and what to do with it."""
    if _writing is None:
        stage = {"train": "training", "sweep": "the sweep"}.get(command)
        if stage is not None:
            return f"interrupted before {stage} started; nothing was written"
        return "interrupted" if command in ("plot", "report") else "interrupted; nothing was written"
    kind, folder = _writing
    if kind == "done":
        return f"interrupted after training ended; the run in {folder} is complete"
    if kind == "sweep":
        return f"interrupted; the sweep folder stays: dl sweep --resume {folder} runs what is left"
    if kind == "kfold" or (folder / "checkpoints" / "last.npz").exists():
        return f"interrupted; continue with dl train --resume {folder}"
    return (f"interrupted before any checkpoint was saved; {folder} cannot be resumed: "
            f"remove it")


def leave(command: Optional[str]) -> None:
    """Say what a Ctrl-C leaves behind (``interrupted``) and exit 130."""
    if _writing is not None:  # a run's lock taken before training.train would release it
        from .runs import release_held_locks

        release_held_locks()
    err.print(interrupted(command), **AS_IS)
    raise typer.Exit(EXIT_INTERRUPTED)


def load_or_fail(path: Path, overrides: list[str], saved: bool = False):
    """The config at ``path``, or exit 2 with every mistake; ``saved``: a run folder's
    config.yaml, whose mistakes name the file."""
    from .config import ConfigError, load_config, load_saved_config

    try:
        return load_saved_config(path) if saved else load_config(path, overrides)
    except ConfigError as error:
        fail(f"{error}")


def version_callback(value: bool) -> None:
    if value:
        out.print(f"dl {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = flag("--version", callback=version_callback, is_eager=True,
                              help="Print the version and exit.")):
    """A deep-learning lab in NumPy: train, gradient-check and compare models from YAML,
    every layer, loss and optimizer written out by hand.

    Start with `dl train configs/quickstart.yaml`, look at a model with
    `dl summary CONFIG`, check its backward pass with `dl gradcheck CONFIG`;
    `dl COMMAND --help` for each command.
    """


@app.command()
def train(
    config: Optional[Path] = typer.Argument(None, metavar="CONFIG", help="Train config YAML "
                                            "(see configs/); required unless --resume is given."),
    overrides: Optional[List[str]] = typer.Argument(
        None, metavar="KEY=VALUE", help="key=value overrides, values parsed as YAML: "
                                        "optimizer.lr=1e-3 model.layers.0.units=256 "
                                        "train.epochs=5"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder "
                                          "from its checkpoints/last.npz."),
    print_config: bool = flag("--print-config", help="Print the resolved config (YAML that "
                              "dl train reads back) and exit."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Write the run here instead of "
                                           "runs/<name>/<time>-<id>/."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads to compute on, from 1 "
                                          "to as many as NumPy's BLAS runs (OpenBLAS: often 64; "
                                          "default: as many as BLAS uses): BLAS threads, or, in "
                                          "convolutional models, parts of each batch. More than "
                                          "the cores is slower (a warning says so); small "
                                          "models and recurrent layers often run faster on 1."),
    quiet: bool = flag("--quiet", "-q", help="No progress bars."),
):
    """Train a model from a config: log metrics, keep the best validation checkpoint.

    The run folder gets config.yaml (resolved), metrics.jsonl, summary.json, train.log
    and checkpoints/{best,last}.npz. Ctrl-C saves last.npz and prints how to resume;
    before training starts, it stops at once and says what, if anything, was written.
    With validation.kfold=K it trains one run per fold (fold-0/ ... fold-K-1/) and
    scores the config by the mean over folds.

    Example: dl train configs/digits_mlp.yaml optimizer.lr=3e-3 train.epochs=10
    """
    from threadpoolctl import threadpool_limits

    from . import training
    from .config import ConfigError, dump_config
    from .runs import RunError
    from .threads import cores

    if threads is not None:
        at_least("--threads", threads, 1)
        at_most_blas("--threads", threads)
    if resume is not None:
        if config is not None and "=" in str(config) and not config.exists():
            fail(f"{config}: key=value overrides do not go with --resume: a resumed run "
                 f"continues its own config.yaml (train the config again to change it)")
        if config is not None:
            fail("give either a config or --resume RUN_DIR, not both")
        if run_dir is not None:
            fail("--run-dir names a new run's folder: a resumed run stays in its own, "
                 f"{resume}")
        if print_config:
            typer.echo(dump_config(load_or_fail(resume / "config.yaml", [], saved=True)), nl=False)
            raise typer.Exit()
        try:
            cfg, run = training.resume(resume)
        except (RunError, ConfigError) as error:
            fail(str(error))
        parent = resume.resolve().parent
        if (cfg.validation.kfold and re.fullmatch(r"fold-\d+", resume.resolve().name)
                and (parent / "config.yaml").exists()):
            run.release()
            fail(f"{resume} is one fold of a k-fold run: resume the whole run, "
                 f"dl train --resume {parent}")
        writing("kfold" if cfg.validation.kfold else "run", resume)
    else:
        if config is None:
            fail("missing CONFIG: dl train CONFIG.yaml [key=value ...] (or --resume RUN_DIR)")
        cfg = load_or_fail(config, overrides or [])
        if print_config:
            typer.echo(dump_config(cfg), nl=False)  # as is: no markup, no wrapping
            raise typer.Exit()
        run = None
        if run_dir is not None:
            check_folder(run_dir, "--run-dir")
        else:
            check_folder(Path(cfg.runs_dir), "runs_dir")
    available = cores()
    if threads is not None and threads > available:
        _warn(f"--threads {threads} exceeds the {available} core{'s' * (available != 1)}: the "
              f"threads will compete for them, usually slower than --threads {available}")
    progress = not quiet and sys.stderr.isatty()
    with threadpool_limits(limits=threads, user_api="blas"), within_memory():
        if cfg.validation.kfold:
            _train_folds(cfg, run_dir, progress, root=run)
        else:
            _train_one(cfg, run, run_dir, resume is not None, progress)


def at_most_blas(name: str, count: int) -> None:
    """Refuse more threads than NumPy's BLAS runs: it would quietly run fewer."""
    from .threads import blas_most

    most = blas_most(count)
    if most < count:
        fail(f"{name}: expected an integer from 1 to {most}, the most threads NumPy's BLAS "
             f"runs here, got {count}")


def check_folder(path: Path, name: str) -> None:
    """Refuse a folder to write runs into (made if missing) whose path runs through a file."""
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                what = "a file" if part == path else f"inside the file {part}"
                fail(f"{name}: expected a folder (made if missing), got {path}, {what}")
            return


def _warn(message: str) -> None:
    from rich.markup import escape

    err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


@contextmanager
def _training_errors(run_path: Optional[Path]):
    """Turn the ways training stops into messages and exit codes (``run_path`` None:
    a k-fold run, whose errors name its folder)."""
    from .data import DataError
    from .loggers import LoggerError
    from .nn import ShapeError
    from .runs import RunError
    from .solver import Diverged, Interrupted

    try:
        yield
    except Diverged as error:
        if run_path is None:
            kept = "The folds' best checkpoints are unchanged"
        elif (run_path / "checkpoints" / "best.npz").exists():
            kept = "The best checkpoint is unchanged"
        else:
            kept = "No epoch ended before it, so there is no best checkpoint"
        fail(f"training diverged: {error}. {kept}; try a lower learning rate or gradient "
             f"clipping.", EXIT_DIVERGED)
    except Interrupted as error:
        if run_path is None:  # k-fold: the error says how to resume the whole run
            err.print(str(error), **AS_IS)
        else:
            err.print(f"{error}; state saved in {run_path}/checkpoints/last.npz.\n"
                      f"Resume with: dl train --resume {run_path}", **AS_IS)
        raise typer.Exit(EXIT_INTERRUPTED)
    except (DataError, RunError, ShapeError, LoggerError) as error:
        fail(str(error))
    except OSError as error:  # a MemoryError goes on to within_memory, around every use
        fail(f"cannot write {error.filename or run_path}: {error.strerror or error}; "
             f"the checkpoints already written are unchanged", 1)


def _train_one(cfg, run, run_dir: Optional[Path], resuming: bool, progress: bool) -> None:
    from rich.markup import escape

    from . import training
    from .data import DataError
    from .nn import ShapeError
    from .report import summary_table
    from .runs import RunError

    try:
        parts = training.assemble(cfg)
        if run is None:
            with interrupts_held():
                run = training.start(cfg, run_dir)
                writing("run", run.path)
    except (DataError, ShapeError, RunError, OSError, MemoryError) as error:
        if run is not None:
            run.release()
        fail(out_of_memory(error) if isinstance(error, MemoryError) else str(error))
    err.print(f"[bold]{escape(cfg.name)}[/]: {parts.model.num_params():,} parameters, "
              f"{len(parts.splits.train.X)} train / {len(parts.splits.val.X)} val / "
              f"{len(parts.splits.test.X)} test samples → {escape(str(run.path))}",
              highlight=False, soft_wrap=True)
    with _training_errors(run.path):
        summary = training.train(cfg, run, parts, resuming=resuming, progress=progress, warn=_warn)
    writing("done", run.path)
    out.print(summary_table(summary))
    out.print(f"run folder: {run.path}", **AS_IS)


def _train_folds(cfg, run_dir: Optional[Path], progress: bool, root=None) -> None:
    from .crossval import train_folds
    from .report import folds_table

    with _training_errors(None):
        summary = train_folds(cfg, run_dir, progress=progress, warn=_warn,
                              say=lambda line: err.print(line, **AS_IS), root=root,
                              made=lambda path: writing("kfold", path))
    writing("done", summary["run_dir"])
    out.print(folds_table(summary))
    out.print(f"run folder: {summary['run_dir']}", **AS_IS)


@app.command()
def gradcheck(
    config: Optional[Path] = typer.Argument(None, metavar="CONFIG", help="Check this config's "
                                            "model, loss and regularization on a few samples of "
                                            "its data."),
    overrides: Optional[List[str]] = typer.Argument(None, metavar="KEY=VALUE",
                                                    help="key=value overrides of CONFIG."),
    layer: Optional[str] = typer.Option(None, "--layer", help="Check one registered layer "
                                        "on its small example inputs, or one loss."),
    all_: bool = flag("--all", help="Check every registered layer and loss."),
    samples: int = typer.Option(4, help="Samples of the data to check the model on, >= 1."),
    max_coords: int = typer.Option(50, help="Coordinates sampled per parameter tensor, >= 1."),
    seed: int = typer.Option(0, help="Seed for inputs and sampled coordinates, >= 0."),
):
    """Compare analytic gradients with centered differences, in float64.

    Give exactly one of CONFIG, --layer NAME or --all. Exit 0 when every tensor's
    relative error is below 1e-6 (or both its gradients are about 0, where a relative
    error means nothing), 1 when any is not.

    Example: dl gradcheck configs/quickstart.yaml --samples 8
    """
    from . import gradcheck as gc
    from .nn import ShapeError
    from .registry import LAYERS, LOSSES, RegistryError
    from .report import gradcheck_summary, gradcheck_table

    chosen = sum([config is not None, layer is not None, all_])
    if chosen != 1:
        fail("give exactly one of CONFIG, --layer NAME or --all")
    at_least("--samples", samples, 1)
    at_least("--max-coords", max_coords, 1)
    at_least("--seed", seed, 0)
    rng = np.random.default_rng(seed)
    checks: list[gc.Check] = []
    if config is not None:
        cfg = load_or_fail(config, overrides or [])
        with within_memory():
            checks = _check_config(cfg, samples, max_coords, rng)
    elif layer in LOSSES.names():
        loss = LOSSES.create(layer)
        checks = [gc.check_loss(loss, *loss.example(rng))]
    else:
        try:
            names = LAYERS.names() if all_ else [LAYERS.get(layer).registered_name]
        except RegistryError as error:
            fail(str(error))
        for name in names:
            for i, example in enumerate(LAYERS.get(name).examples):
                instance = LAYERS.create(example.spec)
                instance.configure(np.float64, "xavier_normal")
                try:
                    instance.build(example.in_shape, rng)
                except ShapeError as error:
                    fail(f"{name}: {error}")
                label = f"{name} {example.in_shape}"
                checks += gc.check_layer(instance, example.input(3, rng), rng, name=label,
                                         max_coords=max_coords)
        if all_:
            for name in LOSSES.names():
                loss = LOSSES.create(name)
                checks.append(gc.check_loss(loss, *loss.example(rng)))
    out.print(gradcheck_table(checks))
    failed = [c for c in checks if not c.passed]
    if failed:
        for c in failed:
            err.print(f"FAIL {c.layer} {c.param}: relative error {c.error:.2e} > {c.tolerance:.0e}",
                      **AS_IS)
        raise typer.Exit(1)
    out.print(gradcheck_summary(checks), highlight=False)


def _check_config(cfg, samples: int, max_coords: int, rng):
    from . import gradcheck as gc
    from .data import DataError, load
    from .nn import ShapeError
    from .training import build_model, check_fits

    try:
        splits = load(cfg.data, seed=cfg.seed, dtype="float64")
        model = build_model(cfg, splits.in_shape, dtype="float64")
        check_fits(model, splits)  # as dl train does: a loss that cannot take the output
    except (DataError, ShapeError, OSError) as error:
        fail(str(error))
    x, y = splits.train.X[:samples], splits.train.y[:samples]
    try:
        return gc.check_model(model, x, y, rng, max_coords=max_coords)
    except ValueError as error:  # a layer refuses the batch, as batchnorm does one sample
        fail(f"--samples {samples}: the model cannot run on a batch of shape {x.shape}: {error}")


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        fail(f"--input-shape: expected positive integers like 3,224,224, got {text!r}")
    return shape


@app.command()
def summary(
    config: Path = typer.Argument(..., metavar="CONFIG", help="Train config YAML."),
    overrides: Optional[List[str]] = typer.Argument(None, metavar="KEY=VALUE",
                                                    help="key=value overrides of CONFIG."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Sample shape without "
                                              "the batch axis, e.g. 3,224,224; default: the data's."),
):
    """Per-layer output shapes, parameter counts and multiply-adds, with totals.

    Example: dl summary configs/digits_cnn.yaml model.layers.0.filters=16
    """
    from .data import DataError, build_augment, load
    from .nn import ShapeError
    from .report import model_table
    from .training import build_model, check_fits

    cfg = load_or_fail(config, overrides or [])
    splits = None
    try:
        with within_memory():
            if input_shape is not None:
                shape = parse_shape(input_shape)
            else:
                splits = load(cfg.data, cfg.seed)
                shape = splits.in_shape
            model = build_model(cfg, shape)
    except (DataError, ShapeError, OSError) as error:
        fail(str(error))
    out.print(model_table(model))
    if splits is not None:  # the table still helps to see why the output does not fit
        for message in splits.warnings:
            _warn(message)
        try:
            check_fits(model, splits)
            build_augment(cfg.data.augment, splits.in_shape, splits.train.X.dtype)
        except (ShapeError, DataError) as error:
            _warn(f"dl train would refuse this config: {error}")


@app.command()
def layers():
    """Everything a config can name, with its options and a line of doc.

    Layers, losses, initializers, optimizers, schedules, datasets, preprocessing and
    augmentation, one table each.
    """
    from . import data, nn, optim  # noqa: F401  (fill the registries)
    from .registry import (AUGMENTATIONS, DATASETS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS,
                           PREPROCESSORS, SCHEDULES)
    from .report import registry_table

    for registry in (LAYERS, LOSSES, INITIALIZERS, OPTIMIZERS, SCHEDULES, DATASETS,
                     PREPROCESSORS, AUGMENTATIONS):
        out.print(registry_table(registry))


def fold_dirs(path: Path) -> list[Path]:
    """The fold folders (fold-0/ ... fold-K-1/) of a k-fold run folder, in fold order;
    none for any other folder."""
    folds = [p for p in path.glob("fold-*") if re.fullmatch(r"fold-\d+", p.name)
             and (p / "config.yaml").exists()]
    return sorted(folds, key=lambda p: int(p.name[len("fold-"):]))


def refuse_kfold_root(path: Path, command: str) -> None:
    """A k-fold run folder holds one run per fold and no checkpoint or metrics of its own."""
    folds = fold_dirs(path)
    if folds:
        if (path.parent / "ledger.jsonl").exists():
            scored = "a sweep trial, scored in the sweep's results.csv"
        elif (path / "summary.json").exists():
            scored = "scored in its summary.json"
        else:
            scored = f"not finished: dl train --resume {path} completes it"
        count = f"{len(folds)} fold{'s' * (len(folds) != 1)}"
        fail(f"{path} is a k-fold run folder ({count}, {scored}); "
             f"dl {command} takes the run folder of one fold: {', '.join(map(str, folds))}")


@app.command("eval")
def evaluate_run(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder (of a k-fold "
                                   "run: one of its fold-i/ folders)."),
    split: str = typer.Option("test", help="test | val | train"),
    checkpoint: str = typer.Option("best", help="best | last"),
):
    """Score a run's checkpoint on one split of its data (a fold's split for a fold folder).

    Example: dl eval runs/digits-mlp/<run> --split val --checkpoint last
    """
    from rich.markup import escape

    from .crossval import fold_splits
    from .data import DataError, load
    from .metrics import evaluate
    from .nn import ShapeError
    from .report import metrics_table
    from .runs import RunError, check_compatible, copy_into
    from .training import build_model, check_fits

    if split not in ("test", "val", "train"):
        fail(f"--split: expected test, val or train, got {split!r}")
    if checkpoint not in ("best", "last"):
        fail(f"--checkpoint: expected best or last, got {checkpoint!r}")
    refuse_kfold_root(run_dir, "eval")
    if not (run_dir / "config.yaml").exists():
        fail(f"{run_dir} is not a run folder (no config.yaml)")
    cfg = load_or_fail(run_dir / "config.yaml", [], saved=True)
    try:
        from .runs import Run

        state = Run(run_dir).load_checkpoint(checkpoint)
        fold = (Run(run_dir).read_summary().get("data", {}).get("fold")
                if cfg.validation.kfold else None)
        if isinstance(fold, int) and 0 <= fold < cfg.validation.kfold:
            splits = fold_splits(cfg, cfg.validation.kfold, fold)  # what it trained on
        else:
            splits = load(cfg.data, seed=cfg.seed, dtype=cfg.train.dtype)
        model = build_model(cfg, splits.in_shape)
        check_fits(model, splits)
        source = run_dir / "checkpoints" / f"{checkpoint}.npz"
        check_compatible(model.params, state["params"], "parameters", source)
        check_compatible(model.buffers, state["buffers"], "buffers", source)
    except (RunError, DataError, ShapeError, OSError) as error:
        fail(str(error))
    copy_into(model.params, state["params"])
    copy_into(model.buffers, state["buffers"])
    data = getattr(splits, split)
    if len(data.X) == 0:
        fail(f"{run_dir} has no {split} split to score: its config sets data.split.{split}: 0")
    metrics = evaluate(model, data.X, data.y, split)
    out.print(metrics_table(escape(f"{run_dir.name}: {checkpoint} checkpoint (epoch "
                                   f"{state['meta']['epoch']}) on {split} ({len(data.X)} samples)"),
                            metrics))


@app.command()
def sample(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder of a character "
                                   "model (data: text)."),
    length: int = typer.Option(200, help="Characters to generate after the prime."),
    temperature: float = typer.Option(0.8, help="Divides the scores before the softmax: "
                                      "below 1 safer text, above 1 more varied."),
    prime: str = typer.Option("The ", help="Text the model reads before it generates."),
    seed: Optional[int] = typer.Option(None, help="Seed for a repeatable sample, >= 0."),
    checkpoint: str = typer.Option("best", help="best | last"),
):
    """Generate text from a trained character model, one character at a time.

    The text prints as it is drawn; Ctrl-C stops a long sample where it is.
    """
    from .config import ConfigError
    from .runs import RunError
    from .sample import SampleError, characters, load_char_model

    if length < 0:
        fail(f"--length: expected a number >= 0, got {length}")
    if seed is not None:
        at_least("--seed", seed, 0)
    if checkpoint not in ("best", "last"):
        fail(f"--checkpoint: expected best or last, got {checkpoint!r}")
    refuse_kfold_root(run_dir, "sample")
    try:
        char_model = load_char_model(run_dir, checkpoint)
        drawn = characters(char_model, prime, length, temperature, np.random.default_rng(seed))
    except (SampleError, RunError, ConfigError, OSError) as error:
        fail(str(error))
    sys.stdout.write(prime)
    try:
        for character in drawn:
            sys.stdout.write(character)
            sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        raise typer.Exit(EXIT_INTERRUPTED)
    sys.stdout.write("\n")


@app.command()
def diagnose(run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder "
                                          "(train with train.diagnostics=true for gradient "
                                          "findings).")):
    """Say what a run shows, in the notes' terms, and what to try.

    High bias or variance, vanishing or exploding gradients, dead units, a learning rate
    too high or too low.

    Example: dl diagnose runs/digits-mlp/<run>
    """
    from rich.markup import escape

    from .diagnose import diagnose as find, read_run
    from .runs import RunError

    refuse_kfold_root(run_dir, "diagnose")
    if not (run_dir / "metrics.jsonl").exists():
        fail(f"{run_dir} is not a run folder (no metrics.jsonl)")
    try:
        records, summary = read_run(run_dir)
    except (RunError, ValueError) as error:
        fail(str(error))
    findings = find(records, summary)
    if not any("train/loss" in r for r in records) and not findings:
        fail(f"{run_dir}: nothing to diagnose: metrics.jsonl has no epoch with training "
             f"figures (none finished yet, or the run set train.eval_train_samples: 0)")
    if not any("layers" in r for r in records):
        out.print("(no per-layer statistics: rerun with train.diagnostics=true to check "
                  "gradients and dead units)", highlight=False)
    if not findings:
        out.print("nothing stands out: training and validation agree and the loss went down.")
        return
    for finding in findings:
        out.print(f"[bold]{escape(finding.title)}[/]: {escape(finding.evidence)}\n"
                  f"  try: {escape(finding.advice)}", highlight=False)


@app.command()
def runs(root: Optional[Path] = typer.Argument(None, metavar="FOLDER", help="Folder to search "
                                               "for runs (default: runs, where dl train "
                                               "writes them).")):
    """List runs: name, status, epochs, best validation metric, test metric.

    Example: dl runs runs/digits-mlp
    """
    from .report import find_runs, runs_table

    if root is None:
        root = Path("runs")
        if not root.exists():
            out.print("no runs yet under runs/ (dl train CONFIG writes one)", highlight=False)
            return
    if not root.exists():
        fail(f"FOLDER: {root}: no such folder")
    if not root.is_dir():
        fail(f"FOLDER: {root} is a file; expected a folder of runs")
    found = find_runs(root)
    if not found:
        out.print(f"no runs under {root}", **AS_IS)
        return
    out.print(runs_table(found, root))


@app.command()
def compare(run_dirs: List[Path] = typer.Argument(..., metavar="RUN_DIR",
                                                  help="Two or more run folders.")):
    """Configs that differ and metrics side by side.

    Example: dl compare runs/digits-mlp/*
    """
    from .config import ConfigError, read_yaml
    from .report import compare_table

    if len(run_dirs) < 2:
        fail(f"RUN_DIR: expected two or more run folders to compare, got one ({run_dirs[0]}); "
             f"dl runs lists the runs, dl eval scores one")
    seen = set()
    for run_dir in run_dirs:
        if run_dir.resolve() in seen:
            fail(f"RUN_DIR: {run_dir} is given twice")
        seen.add(run_dir.resolve())
    configs = []
    for run_dir in run_dirs:
        path = run_dir / "config.yaml"
        if not path.exists():
            fail(f"{run_dir} is not a run folder (no config.yaml)")
        try:
            configs.append(read_yaml(path))
        except ConfigError as error:
            fail(str(error))
    out.print(compare_table(run_dirs, configs))


@app.command()
def sweep(
    spec: Optional[Path] = typer.Argument(None, metavar="SPEC", help="Sweep spec YAML (see "
                                          "configs/sweep_digits.yaml); required unless --resume "
                                          "is given."),
    overrides: Optional[List[str]] = typer.Argument(
        None, metavar="KEY=VALUE", help="key=value overrides of the base config for every "
                                        "trial (train.epochs=5); sweep.KEY=VALUE sets a key of "
                                        "the spec (sweep.trials=8 sweep.seed=1; a domain: "
                                        "'sweep.params.optimizer.lr={values: [0.01, 0.1]}')."),
    workers: int = typer.Option(1, "--workers", "-w", help="Trials at once. 1 runs them in this "
                                "process; N starts N worker processes (with --backend dask and no "
                                "--address: a LocalCluster of N). Each trial uses the spec's "
                                "threads: BLAS threads (default 1), so results do not depend on N; "
                                "a warning says when N × threads exceed the cores."),
    backend: str = typer.Option("local", help="local | dask | ray. dask and ray are extras: "
                                "pip install 'dl-cli\\[dask]'."),
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
):
    """Grid, random or TPE search over any config keys, in parallel, resumable.

    Each trial is an ordinary run folder (trial-0007/) inside the sweep folder, which also
    holds ledger.jsonl (every trial's state), results.csv (one row per trial) and
    best.yaml (the winning config: dl train best.yaml). Exit 0 when a trial completed.
    Ctrl-C once lets the running trials finish, twice stops them (before the sweep
    starts, once stops it); resume with dl sweep --resume SWEEP_DIR.
    """
    from rich.markup import escape

    from .config import ConfigError, validate
    from .registry import did_you_mean
    from .sweep.executors import BACKENDS, BackendError, make_backend, start_worker_server
    from .threads import cores

    if backend == "local" and workers > 1 and not dry_run:
        start_worker_server()  # it imports while the trials are planned
    from .sweep.folder import SweepError, open_sweep
    from .sweep.ledger import FINAL
    from .sweep.results import leaderboard, plan_lines, plan_table
    from .sweep.runner import SweepRunner, build_errors, resolve_plans
    from .sweep.sampling import plan_round
    from .sweep.spec import prepare

    if workers < 1:
        fail(f"--workers: expected an integer >= 1, got {workers}")
    if backend not in BACKENDS:
        fail(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}"
             f"{did_you_mean(backend, BACKENDS)}")
    if address is not None and backend == "local":
        fail("--address names a dask scheduler or a ray cluster: add --backend dask or --backend ray")
    if retry_failed and resume is None:
        fail("--retry-failed goes with --resume SWEEP_DIR")
    if resume is not None and sweep_dir is not None:
        fail("give either --resume SWEEP_DIR or --sweep-dir, not both")
    if resume is not None and spec is not None and "=" in str(spec) and not spec.exists():
        overrides, spec = [str(spec), *(overrides or [])], None  # --resume DIR key=value ...
    if spec is None:
        if resume is None:
            fail("missing SPEC: dl sweep SPEC.yaml [key=value ...] (or --resume SWEEP_DIR)")
        spec = resume / "spec.yaml"
        if not spec.exists():
            fail(f"{resume} is not a sweep folder (no spec.yaml)")
    try:
        sweep_spec, base = prepare(spec, overrides or [])
        first = plan_round(sweep_spec, sweep_spec.params, 0)
        configs = resolve_plans(sweep_spec, base, first)
    except ConfigError as error:
        if resume is None:  # the spec named on the command line
            fail(str(error))
        fail("\n".join(line if line.startswith(str(spec)) else f"{spec}: {line}"
                       for line in error.errors))
    for message in sweep_spec.warnings:
        _warn(message)
    if backend == "local":  # the trials run here, on this BLAS
        at_most_blas("threads", sweep_spec.threads)
    if dry_run:
        out.print(plan_table(first, sweep_spec))
        for line in plan_lines(sweep_spec, len(first), max(c.train.epochs for c in configs.values())):
            out.print(line, **AS_IS)
        problems = build_errors(configs)
        if problems:
            fail("\n".join(problems))
        out.print(f"all {len(first)} trial configs are valid and their models build", highlight=False)
        raise typer.Exit()
    if sweep_dir is not None:
        check_folder(sweep_dir, "--sweep-dir")
    elif resume is None:
        check_folder(Path(validate(base).runs_dir), "runs_dir")
    available, threads = cores(), sweep_spec.threads
    if backend == "local" and workers * threads > available:
        _warn(f"{workers} worker{'s' * (workers != 1)} × {threads} BLAS thread"
              f"{'s' * (threads != 1)} exceed the {available} core{'s' * (available != 1)}: "
              f"{'trials' if workers > 1 else 'the threads'} will compete for them")
    try:
        runner_backend = make_backend(backend, workers, address, sweep_spec.threads)
    except BackendError as error:
        fail(str(error))
    try:
        with interrupts_held():
            folder = open_sweep(sweep_spec, base, sweep_dir, resume, note=f"{backend} × {workers}")
            writing("sweep", folder)
    except (SweepError, OSError) as error:
        runner_backend.close()
        fail(str(error))
    outcome = None
    try:
        sweep_runner = SweepRunner(sweep_spec, base, folder, runner_backend, console=err,
                                   retry_failed=retry_failed, fail_fast=fail_fast, configs=configs)
        # every trial the spec plans; a trial in a final state is done,
        # except a failed one with --retry-failed
        total = sweep_spec.trial_count
        done = sum(s.status in FINAL and not (retry_failed and s.status == "failed")
                   for s in sweep_runner.table.values())
        name = f"[bold]{escape(sweep_spec.name)}[/]"
        where = f"{escape(runner_backend.description)} → {escape(str(folder))}"
        if resume is None:
            opening = f"{name}: {total} trial{'s' * (total != 1)} on {where}"
        elif done < total:
            opening = f"{name}: {total - done} of {total} trials to run on {where}"
        else:
            opening = (f"{name}: already complete, all {total} trials finished; nothing to run "
                       f"({escape(str(folder))})")
        err.print(opening, highlight=False, soft_wrap=True)
        outcome = sweep_runner.run()
    except SweepError as error:
        fail(str(error))
    finally:
        runner_backend.close(wait=outcome is not None and not outcome.interrupted)
    out.print(leaderboard(outcome.table, sweep_spec))
    out.print(f"sweep folder: {folder}  (results.csv, ledger.jsonl, trial-*/)", **AS_IS)
    if (folder / "best.yaml").exists():
        out.print(f"best config: dl train {folder / 'best.yaml'}", **AS_IS)
    if outcome.interrupted or not outcome.complete:
        err.print(f"continue with: dl sweep --resume {folder}", **AS_IS)
    raise typer.Exit(outcome.exit_code)


@app.command()
def plot(
    path: Path = typer.Argument(..., metavar="PATH", help="A run folder (its learning curves) "
                                "or a sweep folder (the metric against each varied "
                                "parameter, and the learning curves of the best trials)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for the PNG files "
                                           "(default: PATH/plots)."),
    top: int = typer.Option(5, help="Sweeps: how many of the best trials get learning curves."),
):
    """Draw curves as PNG files (matplotlib, no display needed) and print their paths.

    Example: dl plot runs/lr-vs-width/<sweep> --top 3
    """
    at_least("--top", top, 1)
    refuse_kfold_root(path, "plot")
    try:
        from .plot import PlotError, plot_path
    except ImportError:
        fail("dl plot needs matplotlib: pip install 'dl-cli[plot]'")
    try:
        written = plot_path(path, out_dir or path / "plots", top=top)
    except PlotError as error:
        fail(str(error))
    for png in written:
        out.print(str(png), **AS_IS)


@app.command()
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
        from .studies.report import ReportError, write_report
    except ImportError:
        fail("dl report needs matplotlib: pip install 'dl-cli[plot]'")
    from .runs import RunError

    try:
        path = write_report(sweep_dir, out_dir)
    except (ReportError, RunError) as error:
        fail(str(error))
    except OSError as error:  # --out names a file, or a folder that cannot be made
        fail(f"cannot write the report to {error.filename or out_dir}: {error.strerror or error}")
    out.print(str(path), **AS_IS)
    for png in sorted(path.parent.glob("*.png")):
        out.print(str(png), **AS_IS)


def reflowed(doc: str) -> str:
    """A docstring as help text: its paragraphs, each on one line. typer 0.29 keeps the
    single line breaks of every paragraph after the first, so help wrapped in the source
    would print with ragged lines; the terminal's width decides the wrapping instead."""
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n"))


for _command in (app.registered_callback, *app.registered_commands):
    _command.help = reflowed(_command.callback.__doc__ or "")
