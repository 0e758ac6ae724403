"""What a model draws, as figures of its best checkpoint on test samples: an autoencoder
(``data.target: input``) ``reconstructions.png``, inputs above their reconstructions; a
segmentation run ``label_maps.png``, images above their true and predicted label maps.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .layout import RunLayout
from .storage import RunError


def draws_outputs(cfg) -> bool:
    """Whether a run of this config has a figure of its outputs: an autoencoder's
    (``data.target: input``) or a segmentation model's (``metrics.config_task``)."""
    from .metrics import config_task

    task = config_task(cfg.components.get("model.loss"), cfg.components.get("data.dataset"),
                       cfg.data.target)
    return cfg.data.target == "input" or task == "segmentation"


def as_images(X: np.ndarray) -> np.ndarray | None:
    """Samples as ``(N, H, W)`` grey or ``(N, H, W, 3)`` colour images: images of one or
    three channels, or flat features of a square number (64 → 8×8); None otherwise."""
    if X.ndim == 4 and X.shape[1] in (1, 3):
        return X[:, 0] if X.shape[1] == 1 else X.transpose(0, 2, 3, 1)
    side = math.isqrt(X.shape[1]) if X.ndim == 2 else 0
    return X.reshape(len(X), side, side) if side and side * side == X.shape[1] else None


def shown(image: np.ndarray) -> np.ndarray:
    """An image scaled to [0, 1] for ``imshow`` (colour images need it)."""
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def image_grid(rows: list[tuple[str, np.ndarray, dict]], title: str, path: Path) -> None:
    """One row of images per ``(label, images, imshow options)``."""
    count = len(rows[0][1])
    fig = Figure(figsize=(1.4 * count + 1, 1.5 * len(rows) + 0.5))
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.02, top=0.86, wspace=0.05, hspace=0.1)
    axes = fig.subplots(len(rows), count, squeeze=False)
    for row, (label, images, options) in zip(axes, rows):
        for ax, image in zip(row, images):
            ax.imshow(image if options else shown(image), **options)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(label)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


def plot_outputs(run_dir: Path, out_dir: Path, count: int = 8) -> list[Path]:
    """``reconstructions.png`` for an autoencoder run, ``label_maps.png`` for a
    segmentation run: the first ``count`` test samples (else validation) through the
    best checkpoint (``trained.load_run``). None for other runs, whose data are not
    loaded, for a run without checkpoints yet, and for one whose config names plugins
    (a figure runs none of their code)."""
    from . import plugins
    from .config import load_saved_config
    from .config.yaml12 import read_yaml
    from .trained import load_run

    layout = RunLayout(run_dir)
    if not layout.checkpoints.is_dir() or plugins.waiting(read_yaml(layout.config)):
        return []
    if not draws_outputs(load_saved_config(layout.config)):
        return []
    run = load_run(run_dir, checkpoint="best" if layout.checkpoint("best").exists() else "last")
    try:
        split = run.data("test")
    except RunError:  # a config without a test split
        split = run.data("val")
    splits = run.splits
    X, y = split.X[:count], split.y[:count]
    inputs = as_images(X)
    if inputs is None or not len(X):
        return []
    model, name = run.model, Path(run_dir).name
    grey = {"cmap": "gray", "vmin": float(X.min()), "vmax": float(X.max())}  # the inputs' range
    if run.config.data.target == "input":
        outputs = as_images(model.loss_fn.values(model.scores(X)).reshape(X.shape))
        path = out_dir / "reconstructions.png"
        image_grid([("input", inputs, grey if inputs.ndim == 3 else {}),
                    ("reconstruction", outputs, grey if outputs.ndim == 3 else {})],
                   f"{name}: test inputs and their reconstructions", path)
        return [path]
    classes = splits.num_classes
    labels = {"cmap": "tab10", "vmin": 0, "vmax": 9, "interpolation": "nearest"}
    names = splits.info.get("class_names") or [str(c) for c in range(classes)]
    legend = ", ".join(f"{c} {n}" for c, n in enumerate(names[:classes]))
    path = out_dir / "label_maps.png"
    image_grid([("image", inputs, grey if inputs.ndim == 3 else {}), ("true", y, labels),
                ("predicted", model.predict(X), labels)],
               f"{name}: test images, true and predicted labels (tab10 colours: {legend})",
               path)
    return [path]
