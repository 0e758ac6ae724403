"""K-fold cross-validation for small data sets: a configuration's score is the mean of its
validation metric over K folds.

The test split is set aside exactly as for a normal run (same seed, same samples) and
never scored for a choice. The training and validation splits are pooled and dealt into
K folds (stratified by class); fold i trains on the other K − 1 folds and validates on
fold i. Preprocessing is fitted on each fold's training part only, as ``data.load`` does
for a normal run, so no statistic leaks from the fold being validated.

A k-fold run folder holds one run folder per fold (``fold-0/`` ... ``fold-K-1/``) and the
summary of their mean, but no metrics or checkpoints of its own: the commands that read
one run take a fold's folder (``refuse_kfold_root``), and a fold is resumed only as part
of the whole run (``resume_run``).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from .config import dump_config, load_saved_config
from .data import DataError, Split, Splits, apply_steps, kfold_indices, load
from .layout import RunLayout, SweepLayout
from .loggers import start_loggers
from .registry import PREPROCESSORS, Registry
from .runs import Run
from .schema import Config
from .stopping import Interrupted
from .storage import RunError, write_text
from .training import Assembled, Finished, assemble, resume, start, train


def fold_splits(cfg: Config, k: int, fold: int, fitted: list | None = None) -> Splits:
    """Train/val of fold ``fold`` of ``k``, and the usual test split, preprocessed by
    steps fitted on the fold's training part (or by the ``fitted`` steps given)."""
    raw_data = dataclasses.replace(cfg.data, preprocess=[])
    splits = load(raw_data, seed=cfg.seed, dtype=cfg.train.dtype)
    X = np.concatenate([splits.train.X, splits.val.X])
    y = np.concatenate([splits.train.y, splits.val.y])
    if k > len(y):
        raise DataError(f"validation.kfold: must be at most {len(y)} (the samples of the train "
                        f"and val splits, which the folds share out), got {k}")
    train_idx, val_idx = kfold_indices(y, k, seed=cfg.seed, stratify=cfg.data.split.stratify)[fold]
    parts = [Split(X[train_idx], y[train_idx]), Split(X[val_idx], y[val_idx]),
             Split(splits.test.X, splits.test.y)]
    steps = fitted if fitted is not None else [PREPROCESSORS.create(s) for s in cfg.data.preprocess]
    apply_steps(parts, steps, fit=fitted is None)
    info = {**splits.info, "fold": fold, "folds": k,
            "preprocess": [Registry.split_spec(spec)[0] for spec in cfg.data.preprocess],
            "sizes": {"train": len(parts[0]), "val": len(parts[1]), "test": len(parts[2])},
            "in_shape": list(parts[0].X.shape[1:])}
    return Splits(*parts, task=splits.task, num_classes=splits.num_classes, info=info,
                  steps=steps, raw_shape=splits.raw_shape)


def run_splits(cfg: Config, run: Run, fitted: list | None = None) -> Splits:
    """The data ``run`` trained on: its fold's, for the folder of one fold of a k-fold
    run (its summary names the fold), else the config's; preprocessed by the ``fitted``
    steps when given (the run's own, from its checkpoint), else by steps fitted again."""
    fold = run.read_summary().get("data", {}).get("fold") if cfg.validation.kfold else None
    if isinstance(fold, int) and 0 <= fold < cfg.validation.kfold:
        return fold_splits(cfg, cfg.validation.kfold, fold, fitted)
    return load(cfg.data, seed=cfg.seed, dtype=cfg.train.dtype, fitted=fitted)


def refuse_kfold_root(path: Path, command: str) -> None:
    """Refuse (RunError) a k-fold run folder to ``dl command``, which reads one run: it
    holds one run per fold and no checkpoint or metrics of its own."""
    layout = RunLayout(path)
    folds = layout.folds()
    if folds:
        if SweepLayout(path.parent).is_sweep:
            scored = "a sweep trial, scored in the sweep's results.csv"
        elif layout.summary.exists():
            scored = "scored in its summary.json"
        else:
            scored = f"not finished: dl train --resume {path} completes it"
        count = f"{len(folds)} fold{'s' * (len(folds) != 1)}"
        raise RunError(f"{path} is a k-fold run folder ({count}, {scored}); "
                       f"dl {command} takes the run folder of one fold: "
                       f"{', '.join(map(str, folds))}")


def resume_run(path: Path, allow_plugins: bool = False,
               break_lock: bool = False) -> tuple[Config, Run]:
    """Reopen a run folder to continue it (``training.resume``: its config and its lock);
    refused (RunError) for one fold of a k-fold run, which resumes only with its run."""
    cfg, run = resume(path, allow_plugins, break_lock)
    parent = RunLayout(path.resolve().parent)
    if cfg.validation.kfold and RunLayout(path.resolve()).is_fold and parent.is_run:
        run.release()
        raise RunError(f"{path} is one fold of a k-fold run: resume the whole run, "
                       f"dl train --resume {parent.path}")
    return cfg, run


def assemble_fold(cfg: Config, k: int, fold: int) -> Assembled:
    """What ``training.assemble`` builds, on the data of one fold."""
    return assemble(cfg, fold_splits(cfg, k, fold))


def train_folds(cfg: Config, run_dir=None, progress: bool = True, warn=None, say=None,
                root: Run | None = None, made=None) -> dict:
    """``dl train`` with ``validation: {kfold: K}``: one run per fold in ``RUN/fold-i/``,
    and ``RUN/summary.json`` scoring the config as the mean (± sample std) of each fold's
    best monitored metric. The test split is scored by each fold's best parameters and
    averaged the same way; it still chooses nothing. ``say`` takes a line as each fold
    starts and as each of its epochs ends, ``made`` the run folder's path once it exists.
    Given the (locked) ``root`` of an interrupted k-fold run, it continues it: each fold
    from its ``last.npz``, a fold that has none from the start (a finished fold changes
    nothing; when every fold is finished, ``Finished``)."""
    k = cfg.validation.kfold
    first = assemble_fold(cfg, k, 0)  # every data mistake before a folder is made
    loggers = start_loggers(cfg)      # and every logger that cannot start; each records every fold
    root = root or start(cfg, run_dir)
    if made is not None:
        made(root.path)
    try:
        folds, finished = [], 0
        for fold in range(k):
            parts = first if fold == 0 else assemble_fold(cfg, k, fold)
            path = root.layout.fold(fold)
            resuming = RunLayout(path).checkpoint("last").exists()
            # the root's lock is held, so a fold's lock can only be a leftover of the
            # process that held it before: taken over even from another machine
            if resuming:
                run = resume(path, break_lock=True)[1]
            else:
                shutil.rmtree(path, ignore_errors=True)  # stopped before its first checkpoint
                run = start(cfg, path, break_lock=True)
            if say is not None:
                sizes = (len(parts.splits.train.X), len(parts.splits.val.X), len(parts.splits.test.X))
                say(f"fold {fold + 1} of {k}: {sizes[0]} train / {sizes[1]} val / {sizes[2]} "
                    f"test samples → {run.path}{' (resumed)' if resuming else ''}")
            try:
                folds.append(train(cfg, run, parts, resuming=resuming, progress=progress,
                                   warn=warn, loggers=loggers, say=say))
            except Finished:
                folds.append(run.read_summary())
                finished += 1
        if finished == k:
            raise Finished(f"{root.path} is complete: none of its {k} folds has anything "
                           f"left to train; nothing changed. To train them longer: dl train "
                           f"--resume {root.path} train.epochs=N")
        if dump_config(load_saved_config(root.layout.config)) != dump_config(cfg):
            write_text(root.layout.config, dump_config(cfg))  # trained longer
        summary = fold_summary(cfg, folds)
        summary["run_dir"] = str(root.path)
        root.write_summary(summary)
        return summary
    except Interrupted as error:
        raise Interrupted(f"{error}; each fold keeps its state.\n"
                          f"Resume with: dl train --resume {root.path}") from None
    finally:
        root.release()
        checkpoints = root.layout.checkpoints
        if checkpoints.is_dir() and not any(checkpoints.iterdir()):
            checkpoints.rmdir()  # the folds hold the checkpoints


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if len(finite) < len(values) or not finite:
        return None, None
    return float(np.mean(finite)), float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0


def fold_summary(cfg: Config, folds: list[dict]) -> dict:
    values = [f["best_value"] for f in folds]
    mean, std = mean_std(values)
    test_keys = sorted({key for f in folds for key in f.get("test") or {}})
    test = {key: mean_std([(f.get("test") or {}).get(key) for f in folds])[0] for key in test_keys}
    statuses = {f["status"] for f in folds}
    return {
        "name": cfg.name,
        "status": statuses.pop() if len(statuses) == 1 else "mixed",
        "kfold": len(folds),
        "monitor": folds[0]["monitor"],
        "mode": folds[0]["mode"],
        "best_value": mean,
        "best_std": std,
        "fold_values": values,
        "test": test,
        "epochs": max(f["epochs"] for f in folds),
        "folds": [{"fold": i, "run_dir": f["run_dir"], "status": f["status"],
                   "best_epoch": f["best_epoch"], "best_value": f["best_value"],
                   "test": f["test"]} for i, f in enumerate(folds)],
        "time_s": round(sum(f["time_s"] for f in folds), 3),
    }
