"""The commands that use a finished run's model: ``dl predict`` and ``dl export``."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from .output import AS_IS, allow_plugins_flag, err, fail, flag, out, run_folder

RUN_HELP = "A run folder, or runs/<name> for its newest finished run."


def open_run(run_dir: Path, command: str, checkpoint: str, allow_plugins: bool):
    """The run's model with its checkpoint loaded, ready to score raw inputs, or exit 2."""
    from ..checks import ConfigError
    from ..storage import RunError
    from ..trained import load_run

    if checkpoint not in ("best", "last"):
        fail(f"--checkpoint: expected best or last, got {checkpoint!r}")
    run_dir = run_folder(run_dir, command)
    try:
        return load_run(run_dir, checkpoint, allow_plugins, scoring=command)
    except (RunError, ConfigError, OSError) as error:
        fail(str(error))


@contextmanager
def progress_bar(source: str, show: bool):
    """``update(amount)`` of a progress bar on stderr over ``source`` (None when hidden)."""
    if not show:
        yield None
        return
    from tqdm import tqdm

    from ..predict import input_size

    total, unit = input_size(source)
    with tqdm(total=total, unit=unit.strip(), unit_scale=unit == "B", leave=False,
              desc="predict", file=sys.stderr) as bar:
        yield bar.update


def predict(
    run_dir: Path = typer.Argument(..., metavar="RUN", help=RUN_HELP),
    data: str = typer.Option(..., "--data", help="Raw samples: a .csv (with or without the "
                             "label column), an .npz holding X, IDX images, or - for a CSV "
                             "on standard input."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the table to this CSV "
                                            "file (whole or not at all) instead of standard "
                                            "output."),
    proba: bool = flag("--proba", help="Add one prob_<class> column per class."),
    checkpoint: str = typer.Option("best", help="best | last"),
    quiet: bool = flag("--quiet", "-q", help="No progress bar."),
    allow_plugins: bool = allow_plugins_flag(),
):
    """Predict for raw samples with a run's model and its fitted preprocessing.

    The preprocessing statistics are the run's own, never fitted again. Prints a CSV table: a prediction column (the class name, or the value for
    regression) and, with --proba, one prob_<class> column per class. A large file is
    read, scored and written a batch at a time.

    Example: dl predict runs/digits-mlp --data digits.csv --proba --out predictions.csv
    """
    from ..data import DataError
    from ..predict import (InputError, TableLayout, check_predictable, read_samples,
                           write_predictions, write_table)

    run = open_run(run_dir, "predict", checkpoint, allow_plugins)
    try:
        check_predictable(run, proba)
        with progress_bar(data, not quiet and sys.stderr.isatty()) as progress:
            batches = read_samples(data, run.inputs.shape, TableLayout.of(run), progress=progress)
            if out_file is None:
                count = write_predictions(batches, run, sys.stdout, proba)
            else:
                count = write_table(out_file, batches, run, proba)
    except (InputError, DataError) as error:
        fail(str(error))
    except BrokenPipeError:  # the reader of standard output stopped early (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        raise typer.Exit(1)
    except OSError as error:
        fail(f"cannot read or write {error.filename or data}: {error.strerror or error}")
    if out_file is not None:
        err.print(f"{count} predictions → {out_file}", **AS_IS)


def export(
    run_dir: Path = typer.Argument(..., metavar="RUN", help=RUN_HELP + " With --to, also "
                                   "a k-fold run (each fold) or a sweep folder (each trial)."),
    format_: Optional[str] = typer.Option(None, "--format", help="onnx (the default, and the "
                                          "only model format)."),
    to: Optional[str] = typer.Option(None, "--to", help="tensorboard | mlflow: write what "
                                     "the run recorded (metrics, config, summary) to that "
                                     "tool, for runs trained without train.loggers."),
    uri: Optional[str] = typer.Option(None, "--uri", help="With --to mlflow: the tracking "
                                      "store (default: MLFLOW_TRACKING_URI, else ./mlruns)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="The file to write "
                                            "(default: RUN/model.onnx)."),
    checkpoint: str = typer.Option("best", help="best | last"),
    opset: Optional[int] = typer.Option(None, help="The ONNX operator set (default 17)."),
    allow_plugins: bool = allow_plugins_flag(),
):
    """Write a run's model, behind its preprocessing, as an ONNX graph; or, with --to,
    what earlier runs recorded to TensorBoard or MLflow.

    The graph takes raw samples and holds the preprocessing, the network in inference
    mode, and class probabilities beside the scores. Needs the onnx package (the onnx
    extra of dl-cli); --to needs the tensorboard or mlflow extra.

    Examples: dl export runs/digits-mlp --format onnx --out digits.onnx;
    dl export runs/lr-vs-width/<sweep> --to mlflow
    """
    if to is not None:
        if format_ is not None or out_file is not None:
            fail("--to writes a run's records to a tool; --format and --out write a model "
                 "file: give one or the other")
        from .records import export_records

        export_records(run_dir, to, uri)
        return
    if uri is not None:
        fail("--uri names an MLflow tracking store: it goes with --to mlflow")
    format_ = format_ or "onnx"
    if format_ != "onnx":
        fail(f"--format: expected onnx, got {format_!r}")
    try:
        from ..export import ExportError
    except ImportError as error:  # dl_cli.export says so when onnx is the one missing
        missing = error.name or getattr(error.__cause__, "name", None) or ""
        if not missing.startswith("onnx"):
            raise
        fail("dl export needs the onnx package: pip install 'dl-cli[onnx]'")
    run = open_run(run_dir, "export", checkpoint, allow_plugins)
    path = out_file if out_file is not None else run.path / "model.onnx"
    try:
        run.to_onnx(path, opset)
    except (ExportError, ValueError) as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}", 1)
    out.print(str(path), **AS_IS)
