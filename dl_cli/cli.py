"""The `dl` command line: Typer wiring only; the modules do the work.

Exit codes: 0 success, 1 a gradient check failed, 2 bad input (config, path, option),
3 training diverged, 130 interrupted (the resume command is printed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console

from . import __version__

app = typer.Typer(
    help="A deep-learning lab in NumPy: train, gradient-check and compare models from YAML.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_or_fail(path: Path, overrides: list[str]):
    from .config import ConfigError, load_config

    try:
        return load_config(path, overrides)
    except ConfigError as error:
        fail(f"{error}")


def version_callback(value: bool) -> None:
    if value:
        out.print(f"dl {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=version_callback,
                                      is_eager=True, help="Print the version and exit.")):
    """A deep-learning lab in NumPy: every layer, loss and optimizer written out by hand.

    Start with `dl train configs/quickstart.yaml`, look at a model with
    `dl summary CONFIG`, check its backward pass with `dl gradcheck CONFIG`.
    """


@app.command()
def train(
    config: Optional[Path] = typer.Argument(None, help="Train config YAML (see configs/)."),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="key=value overrides, values parsed as YAML: optimizer.lr=1e-3 "
                   "model.layers.0.units=256 train.epochs=5"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder "
                                          "from its checkpoints/last.npz."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config and exit."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Write the run here instead of "
                                           "runs/<name>/<time>-<id>/."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Train a model from a config: log metrics, keep the best validation checkpoint.

    The run folder gets config.yaml (resolved), metrics.jsonl, summary.json, train.log
    and checkpoints/{best,last}.npz. Ctrl-C saves last.npz and prints how to resume.
    """
    from . import training
    from .config import dump_config
    from .data import DataError
    from .nn import ShapeError
    from .runs import RunError
    from .solver import Diverged, Interrupted

    if resume is not None:
        if config is not None:
            fail("give either a config or --resume RUN_DIR, not both")
        try:
            cfg, run = training.resume(resume)
        except RunError as error:
            fail(str(error))
    else:
        if config is None:
            fail("missing CONFIG: dl train CONFIG.yaml [key=value ...] (or --resume RUN_DIR)")
        cfg = load_or_fail(config, overrides or [])
        if print_config:
            out.print(dump_config(cfg), end="", highlight=False)
            raise typer.Exit()
        run = None
    progress = not quiet and sys.stderr.isatty()
    try:
        parts = training.assemble(cfg)
        if run is None:
            run = training.start(cfg, run_dir)
    except (DataError, ShapeError, RunError, OSError) as error:
        if run is not None:
            run.release()
        fail(str(error))
    err.print(f"[bold]{cfg.name}[/]: {parts.model.num_params():,} parameters, "
              f"{len(parts.splits.train.X)} train / {len(parts.splits.val.X)} val / "
              f"{len(parts.splits.test.X)} test samples → {run.path}", highlight=False)
    try:
        summary = training.train(cfg, run, parts, resuming=resume is not None, progress=progress)
    except Diverged as error:
        fail(f"training diverged: {error}. The best checkpoint is unchanged; try a lower "
             f"learning rate or gradient clipping.", EXIT_DIVERGED)
    except Interrupted as error:
        err.print(f"{error}; state saved in {run.path / 'checkpoints' / 'last.npz'}.\n"
                  f"Resume with: dl train --resume {run.path}", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    except RunError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write to the run folder {run.path}: {error}", 1)
    from .report import summary_table

    out.print(summary_table(summary))
    out.print(f"run folder: {run.path}", highlight=False)


@app.command()
def gradcheck(
    config: Optional[Path] = typer.Argument(None, help="Check this config's model, loss and "
                                            "regularization on a few samples of its data."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides."),
    layer: Optional[str] = typer.Option(None, "--layer", help="Check one registered layer "
                                        "on its small example inputs."),
    all_: bool = typer.Option(False, "--all", help="Check every registered layer and loss."),
    samples: int = typer.Option(4, help="Samples of the data to check the model on."),
    max_coords: int = typer.Option(50, help="Coordinates sampled per parameter tensor."),
    seed: int = typer.Option(0, help="Seed for inputs and sampled coordinates."),
):
    """Compare analytic gradients with centered differences, in float64.

    Exit 0 when every tensor's relative error is below 1e-6, 1 when any is not.
    """
    from . import gradcheck as gc
    from .nn import ShapeError
    from .registry import LAYERS, LOSSES, RegistryError
    from .report import gradcheck_table

    chosen = sum([config is not None, layer is not None, all_])
    if chosen != 1:
        fail("give exactly one of CONFIG, --layer NAME or --all")
    rng = np.random.default_rng(seed)
    checks: list[gc.Check] = []
    if config is not None:
        cfg = load_or_fail(config, overrides or [])
        checks = _check_config(cfg, samples, max_coords, rng)
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
                      highlight=False)
        raise typer.Exit(1)
    out.print(f"all {len(checks)} tensors pass (max error "
              f"{max((c.error for c in checks), default=0):.1e})", highlight=False)


def _check_config(cfg, samples: int, max_coords: int, rng):
    from . import gradcheck as gc
    from .data import DataError, load
    from .nn import ShapeError
    from .training import build_model

    try:
        splits = load(cfg.data, seed=cfg.seed, dtype="float64")
        model = build_model(cfg, splits.in_shape, dtype="float64")
    except (DataError, ShapeError, OSError) as error:
        fail(str(error))
    x, y = splits.train.X[:samples], splits.train.y[:samples]
    return gc.check_model(model, x, y, rng, max_coords=max_coords)


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
    config: Path = typer.Argument(..., help="Train config YAML."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Sample shape without "
                                              "the batch axis, e.g. 3,224,224; default: the data's."),
):
    """Per-layer output shapes, parameter counts and multiply-adds, with totals."""
    from .data import DataError, load
    from .nn import ShapeError
    from .report import model_table
    from .training import build_model

    cfg = load_or_fail(config, overrides or [])
    try:
        shape = parse_shape(input_shape) if input_shape else load(cfg.data, cfg.seed).in_shape
        model = build_model(cfg, shape)
    except (DataError, ShapeError, OSError) as error:
        fail(str(error))
    out.print(model_table(model))


@app.command()
def layers():
    """Everything the registries hold: layers, losses, initializers, optimizers, schedules,
    datasets, preprocessing and augmentation, with options and a line of doc each."""
    from . import data, nn, optim  # noqa: F401  (fill the registries)
    from .registry import (AUGMENTATIONS, DATASETS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS,
                           PREPROCESSORS, SCHEDULES)
    from .report import registry_table

    for registry in (LAYERS, LOSSES, INITIALIZERS, OPTIMIZERS, SCHEDULES, DATASETS,
                     PREPROCESSORS, AUGMENTATIONS):
        out.print(registry_table(registry))


@app.command("eval")
def evaluate_run(
    run_dir: Path = typer.Argument(..., help="A run folder."),
    split: str = typer.Option("test", help="test | val | train"),
    checkpoint: str = typer.Option("best", help="best | last"),
):
    """Score a run's checkpoint on one split of its data."""
    from .data import DataError, load
    from .metrics import evaluate
    from .report import metrics_table
    from .runs import RunError, check_compatible, copy_into
    from .training import build_model

    if split not in ("test", "val", "train"):
        fail(f"--split: expected test, val or train, got {split!r}")
    if checkpoint not in ("best", "last"):
        fail(f"--checkpoint: expected best or last, got {checkpoint!r}")
    if not (run_dir / "config.yaml").exists():
        fail(f"{run_dir} is not a run folder (no config.yaml)")
    cfg = load_or_fail(run_dir / "config.yaml", [])
    try:
        from .runs import Run

        state = Run(run_dir).load_checkpoint(checkpoint)
        splits = load(cfg.data, seed=cfg.seed, dtype=cfg.train.dtype)
        model = build_model(cfg, splits.in_shape)
        source = run_dir / "checkpoints" / f"{checkpoint}.npz"
        check_compatible(model.params, state["params"], "parameters", source)
        check_compatible(model.buffers, state["buffers"], "buffers", source)
    except (RunError, DataError, OSError) as error:
        fail(str(error))
    copy_into(model.params, state["params"])
    copy_into(model.buffers, state["buffers"])
    data = getattr(splits, split)
    metrics = evaluate(model, data.X, data.y, split)
    out.print(metrics_table(f"{run_dir.name}: {checkpoint} checkpoint (epoch "
                            f"{state['meta']['epoch']}) on {split} ({len(data.X)} samples)",
                            metrics))


@app.command()
def runs(root: Path = typer.Argument(Path("runs"), help="Folder to search for runs.")):
    """List runs: name, status, epochs, best validation metric, test metric."""
    from .report import find_runs, runs_table

    if not root.is_dir():
        fail(f"{root}: no such folder")
    found = find_runs(root)
    if not found:
        out.print(f"no runs under {root}")
        return
    out.print(runs_table(found, root))


@app.command()
def compare(run_dirs: List[Path] = typer.Argument(..., help="Two or more run folders.")):
    """Configs that differ and metrics side by side."""
    import yaml

    from .report import compare_table

    configs = []
    for run_dir in run_dirs:
        path = run_dir / "config.yaml"
        if not path.exists():
            fail(f"{run_dir} is not a run folder (no config.yaml)")
        configs.append(yaml.safe_load(path.read_text()))
    out.print(compare_table(run_dirs, configs))
