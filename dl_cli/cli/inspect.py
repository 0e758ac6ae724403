"""The commands that look without training: at a config's model (gradcheck, summary,
layers) and at what training left (eval, sample, diagnose, runs, compare)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.markup import escape

from .completion import complete_override
from .output import (AS_IS, EXIT_INTERRUPTED, allow_plugins_flag, at_least, err, fail, flag,
                     load_or_fail, out, reading_width, run_folder, warn, within_memory)


def gradcheck(
    config: Optional[Path] = typer.Argument(None, metavar="CONFIG", help="Check this config's "
                                            "model, loss and regularization on a few samples of "
                                            "its data."),
    overrides: Optional[List[str]] = typer.Argument(None, metavar="KEY=VALUE",
                                                    autocompletion=complete_override,
                                                    help="key=value overrides of CONFIG."),
    layer: Optional[str] = typer.Option(None, "--layer", help="Check one registered layer "
                                        "on its small example inputs, or one loss."),
    all_: bool = flag("--all", help="Check every registered layer and loss."),
    samples: int = typer.Option(4, help="Samples of the data to check the model on, >= 1."),
    max_coords: int = typer.Option(50, help="Coordinates sampled per parameter tensor, >= 1."),
    seed: int = typer.Option(0, help="Seed for inputs and sampled coordinates, >= 0."),
    plugin: Optional[List[str]] = typer.Option(None, "--plugin", help="A module or .py file "
                                               "to import first, for --layer NAME of a layer "
                                               "of one's own (repeatable)."),
):
    """Compare analytic gradients with centered differences, in float64.

    Give exactly one of CONFIG, --layer NAME or --all. Exit 0 when every tensor's
    relative error is below 1e-6 (or both its gradients are about 0, where a relative
    error means nothing), 1 when any is not.

    Example: dl gradcheck configs/quickstart.yaml --samples 8
    """
    from .. import gradcheck as gc
    from ..nn import ShapeError
    from ..plugins import import_all
    from ..registry import LAYERS, LOSSES, RegistryError
    from ..tables import gradcheck_summary, gradcheck_table

    if sum([config is not None, layer is not None, all_]) != 1:
        fail("give exactly one of CONFIG, --layer NAME or --all")
    problems = import_all(plugin or [])[1]
    if problems:
        fail(f"--plugin: {problems[0].partition(': ')[2]}")
    at_least("--samples", samples, 1)
    at_least("--max-coords", max_coords, 1)
    at_least("--seed", seed, 0)
    rng = np.random.default_rng(seed)
    if config is not None:
        cfg = load_or_fail(config, overrides or [])
        with within_memory():
            checks = check_config(cfg, samples, max_coords, rng)
    elif layer in LOSSES.names():
        loss = LOSSES.create(layer)
        checks = [gc.check_loss(loss, *loss.example(rng))]
    else:
        try:
            names = LAYERS.names() if all_ else [LAYERS.get(layer).registered_name]
            checks = [c for name in names for c in gc.check_examples(name, rng, max_coords)]
        except (RegistryError, ShapeError) as error:
            fail(str(error))
        if all_:
            checks += [gc.check_loss(loss, *loss.example(rng))
                       for loss in map(LOSSES.create, LOSSES.names())]
    out.print(gradcheck_table(checks))
    failed = [c for c in checks if not c.passed]
    if failed:
        for c in failed:
            err.print(f"FAIL {c.layer} {c.param}: relative error {c.error:.2e} > {c.tolerance:.0e}",
                      **AS_IS)
        raise typer.Exit(1)
    out.print(gradcheck_summary(checks), highlight=False)


def check_config(cfg, samples: int, max_coords: int, rng):
    """The gradient checks of the config's model, in float64, on ``samples`` of its data."""
    from .. import gradcheck as gc
    from ..data import DataError, load
    from ..nn import ShapeError
    from ..fit_checks import check_fits
    from ..components import build_model

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


def summary(
    config: Path = typer.Argument(..., metavar="CONFIG", help="Train config YAML."),
    overrides: Optional[List[str]] = typer.Argument(None, metavar="KEY=VALUE",
                                                    autocompletion=complete_override,
                                                    help="key=value overrides of CONFIG."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Sample shape without "
                                              "the batch axis, e.g. 3,224,224; default: the data's."),
):
    """Per-layer output shapes, parameter counts and multiply-adds, with totals.

    Example: dl summary configs/digits_cnn.yaml model.layers.0.filters=16
    """
    from ..data import DataError, build_augment, load
    from ..nn import ShapeError
    from ..tables import model_table
    from ..fit_checks import check_fits
    from ..components import build_model

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
            warn(message)
        try:
            check_fits(model, splits)
            build_augment(cfg.data.augment, splits.in_shape, splits.train.X.dtype,
                          image_targets=splits.train.y.ndim > 2)
        except (ShapeError, DataError) as error:
            warn(f"dl train would refuse this config: {error}")


def layers(name: Optional[str] = typer.Argument(None, metavar="NAME", help="One entry "
                                                "(a layer, loss, optimizer, ...): its options "
                                                "and its whole description.")):
    """Everything a config can name, with its options and a line of doc.

    Layers, losses, initializers, optimizers, schedules, datasets, preprocessing and
    augmentation, one table each; dl layers NAME shows one entry.
    """
    import inspect as introspect

    from .. import data, nn, optim, schedules  # noqa: F401  (fill the registries)
    from ..registry import (AUGMENTATIONS, DATASETS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS,
                            PREPROCESSORS, SCHEDULES, did_you_mean)
    from ..tables import registry_table

    registries = (LAYERS, LOSSES, INITIALIZERS, OPTIMIZERS, SCHEDULES, DATASETS, PREPROCESSORS,
                  AUGMENTATIONS)
    width = reading_width(out)
    if name is None:
        for registry in registries:
            out.print(registry_table(registry), width=width)
        return
    holding = [r for r in registries if name in r]
    if not holding:
        every = sorted({n for r in registries for n in r.names()})
        fail(f"NAME: no registered entry is called {name!r}{did_you_mean(name, every)}; "
             f"dl layers lists them all")
    for registry in holding:
        out.print(registry_table(registry, only=name), width=width)
        out.print(introspect.getdoc(registry.get(name)) or "", width=width, **AS_IS)


def evaluate_run(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder (of a k-fold "
                                   "run: one of its fold-i/ folders), or runs/<name> for "
                                   "its newest finished run."),
    split: str = typer.Option("test", help="test | val | train"),
    checkpoint: str = typer.Option("best", help="best | last"),
    allow_plugins: bool = allow_plugins_flag(),
):
    """Score a run's checkpoint on one split of its data (a fold's split for a fold folder).

    The data are prepared with the preprocessing statistics the checkpoint holds, as
    they were when the run scored its test split.

    Example: dl eval runs/digits-mlp/<run> --split val --checkpoint last
    """
    from ..checks import ConfigError
    from ..data import DataError
    from ..nn import ShapeError
    from ..storage import RunError
    from ..tables import metrics_table
    from ..trained import load_run

    if split not in ("test", "val", "train"):
        fail(f"--split: expected test, val or train, got {split!r}")
    if checkpoint not in ("best", "last"):
        fail(f"--checkpoint: expected best or last, got {checkpoint!r}")
    run_dir = run_folder(run_dir, "eval")
    try:
        run = load_run(run_dir, checkpoint, allow_plugins)
        if run.inputs is None and run.config.data.preprocess:
            warn(f"{run_dir}: its checkpoint, written by an earlier version of dl, holds no "
                 f"preprocessing statistics: they were fitted again on the training split, "
                 f"as the run fitted them")
        metrics = run.evaluate(split)
    except (RunError, DataError, ShapeError, ConfigError, OSError) as error:
        fail(str(error))
    size = len(run.data(split).X)
    out.print(f"{run_dir.name}: {checkpoint} checkpoint (epoch {run.epoch}) on {split} "
              f"({size} samples)", **AS_IS)
    out.print(metrics_table(metrics))


def sample(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder of a character "
                                   "model (data: text), or runs/<name> for its newest "
                                   "finished run."),
    length: int = typer.Option(200, help="Characters to generate after the prime."),
    temperature: float = typer.Option(0.8, help="Divides the scores before the softmax: "
                                      "below 1 safer text, above 1 more varied."),
    prime: str = typer.Option("The ", help="Text the model reads before it generates."),
    seed: Optional[int] = typer.Option(None, help="Seed for a repeatable sample, >= 0."),
    checkpoint: str = typer.Option("best", help="best | last"),
    allow_plugins: bool = allow_plugins_flag(),
):
    """Generate text from a trained character model, one character at a time.

    The text prints as it is drawn; Ctrl-C stops a long sample where it is.
    """
    from ..checks import ConfigError
    from ..sample import SampleError, characters, load_char_model, shown
    from ..storage import RunError

    if length < 0:
        fail(f"--length: expected a number >= 0, got {length}")
    if seed is not None:
        at_least("--seed", seed, 0)
    if checkpoint not in ("best", "last"):
        fail(f"--checkpoint: expected best or last, got {checkpoint!r}")
    run_dir = run_folder(run_dir, "sample")
    try:
        char_model = load_char_model(run_dir, checkpoint, allow_plugins)
        drawn = characters(char_model, prime, length, temperature, np.random.default_rng(seed))
    except (SampleError, RunError, ConfigError, OSError) as error:
        fail(str(error))
    sys.stdout.write(prime)
    try:
        for character in drawn:
            sys.stdout.write(shown(character))
            sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        raise typer.Exit(EXIT_INTERRUPTED)
    sys.stdout.write("\n")


def diagnose(run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder, or "
                                          "runs/<name> for its newest finished run (train "
                                          "with train.diagnostics=true for gradient "
                                          "findings).")):
    """Say what a run shows, in the notes' terms, and what to try.

    High bias or variance, vanishing or exploding gradients, dead units, a learning rate
    too high or too low.

    Example: dl diagnose runs/digits-mlp/<run>
    """
    from ..advice import diagnose as find, read_run
    from ..layout import RunLayout
    from ..storage import RunError

    run_dir = run_folder(run_dir, "diagnose")
    if not RunLayout(run_dir).metrics.exists():
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


def runs(
    root: Optional[Path] = typer.Argument(None, metavar="FOLDER", help="Folder to search for "
                                          "runs (default: runs, where dl train writes them); "
                                          "a sweep folder lists its trials."),
    name: Optional[str] = typer.Option(None, "--name", help="Only the runs whose name "
                                       "(the config's name) holds this text."),
    sort: Optional[str] = typer.Option(None, "--sort", metavar="METRIC", help="Sort by this "
                                       "metric at the best epoch (val/acc, test/loss, ...), "
                                       "best first."),
    last: Optional[int] = typer.Option(None, "--last", metavar="N", help="Only the N runs "
                                       "started last."),
    trials: bool = flag("--trials", help="List each sweep's trials instead of one row per "
                        "sweep."),
):
    """List runs: started, duration, status, epochs, best validation metric, test metric.

    A sweep is one row (its best trial's scores); --trials, or dl runs SWEEP_DIR, lists
    its trials.

    Example: dl runs --name digits --sort val/acc --last 10
    """
    from ..listing import rows, runs_table, select

    if last is not None:
        at_least("--last", last, 1)
    if root is None:
        root = Path("runs")
        if not root.exists():
            out.print("no runs yet under runs/ (dl train CONFIG writes one)", highlight=False)
            return
    if not root.exists():
        fail(f"FOLDER: {root}: no such folder")
    if not root.is_dir():
        fail(f"FOLDER: {root} is a file; expected a folder of runs")
    found = rows(root, trials)
    if not found:
        out.print(f"no runs under {root}", **AS_IS)
        return
    if sort is not None and not any(sort in row.scores for row in found):
        known = sorted({key for row in found for key in row.scores})
        fail(f"--sort: no run under {root} has {sort!r}; its runs have "
             f"{', '.join(known) or 'no metrics yet'}")
    listed = select(found, name, last, sort)
    if not listed:
        out.print(f"no runs named *{name}* under {root}", **AS_IS)
        return
    out.print(runs_table(listed, root))


def compare(run_dirs: List[Path] = typer.Argument(..., metavar="RUN_DIR",
                                                  help="Two or more run folders (runs/<name>: "
                                                       "its newest finished run).")):
    """Configs that differ and metrics side by side.

    Example: dl compare runs/digits-mlp/*
    """
    from ..checks import ConfigError
    from ..config.yaml12 import read_yaml
    from ..layout import RunLayout, resolve_run, without_latest_links
    from ..storage import RunError
    from ..tables import compare_table

    try:
        run_dirs = [resolve_run(path) for path in without_latest_links(run_dirs)]
    except RunError as error:
        fail(str(error))
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
        layout = RunLayout(run_dir)
        if not layout.is_run:
            fail(f"{run_dir} is not a run folder (no config.yaml)")
        try:
            configs.append(read_yaml(layout.config))
        except ConfigError as error:
            fail(str(error))
    out.print(compare_table(run_dirs, configs))
