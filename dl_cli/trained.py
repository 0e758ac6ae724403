"""A finished run as a model to use: load it, score raw inputs, evaluate it, export it;
and training from Python, as ``dl train`` does.

```python
import dl_cli as dl
run = dl.load_run("runs/digits-mlp")          # the newest finished run of that name
run.predict(X_raw)                             # class names (or indices), or values
run.predict_proba(X_raw)                       # (N, classes)
run.model, run.config, run.summary             # the Model, the resolved Config, summary.json
run = dl.train("configs/digits_mlp.yaml", overrides=["optimizer.lr=1e-3"])
```

``dl eval``, ``dl predict`` and ``dl export`` go through ``load_run`` too. Raw inputs
are prepared with the statistics the checkpoint holds (``inputs.Inputs``), never fitted
again. A checkpoint written before checkpoints held them still evaluates (its
preprocessing fitted again on the training split, as the run did) but cannot predict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .checkpoints import restore
from .config import load_config, load_saved_config
from .crossval import run_splits
from .inputs import Inputs
from .layout import RunLayout, resolve_run
from .metrics import evaluate
from .nn.activations import sigmoid
from .nn.model import Model
from .runs import Run
from .schema import Config
from .storage import RunError, write_atomic
from .fit_checks import check_fits, class_axis
from .training import assemble, build_model, start
from .training import train as train_run

CHECKPOINTS = ("best", "last")


def probabilities(scores: np.ndarray, task: str, class_axis: int = -1) -> np.ndarray:
    """Class probabilities from a model's scores: the softmax over the classes' axis
    (``classification``), moved last, so that ``(N, C, H, W)`` scores of every pixel give
    ``(N, H, W, C)``; or ``[1 − σ(z), σ(z)]`` for the logit z of a binary model."""
    scores = scores.astype(np.float64)
    if task == "binary":
        one = sigmoid(scores.reshape(len(scores), -1)[:, :1])
        return np.concatenate([1 - one, one], axis=1)
    e = np.exp(scores - scores.max(axis=class_axis, keepdims=True))
    return np.moveaxis(e / e.sum(axis=class_axis, keepdims=True), class_axis, -1)


def lacking(checkpoint: Path, doing: str) -> str:
    """What a checkpoint of an earlier version lacks to ``doing`` (predict, export)."""
    return (f"{checkpoint} was written by an earlier version of dl and lacks what it takes "
            f"to {doing}: the fitted preprocessing statistics, the class names and the raw "
            f"input shape; dl eval still scores it, but to {doing}, train the config again")


@dataclass
class TrainedRun:
    """A run folder's model with its checkpoint loaded, ready to score raw inputs.

    ``inputs`` is None for a checkpoint of an earlier version (see ``require_inputs``);
    ``epoch`` is the epoch the checkpoint was written after.
    """

    path: Path
    config: Config
    model: Model
    inputs: Inputs | None
    checkpoint: str
    epoch: int
    splits: object | None = field(default=None, repr=False)  # its data, once loaded

    @cached_property
    def summary(self) -> dict:
        """The run's summary.json, read when first asked for ({} before it has one);
        RunError when it is damaged."""
        return Run(self.path).read_summary()

    @property
    def task(self) -> str:
        """What the model predicts: ``classification``, ``binary`` or ``regression``, as
        its loss says; but a model trained to reproduce its input (``data.target: input``)
        predicts values whatever its loss: ``regression``."""
        return "regression" if self.config.data.target == "input" else self.model.loss_fn.task

    @property
    def class_names(self) -> list[str] | None:
        """The data's class names (None without them, or for regression)."""
        return self.inputs.class_names if self.inputs is not None else None

    @property
    def output_names(self) -> list[str]:
        """A name for each class the model scores: the data's class names, and the
        indices of classes beyond them (a model with more scores than named classes)."""
        out = self.model.out_shape
        count = 2 if self.task == "binary" else out[class_axis(self.model.loss_fn, len(out))]
        names = list(self.class_names or [])[:count]
        return names + [str(i) for i in range(len(names), count)]

    def require_inputs(self, doing: str) -> Inputs:
        """The checkpoint's inputs; RunError saying what an older checkpoint lacks."""
        if self.inputs is None:
            raise RunError(lacking(RunLayout(self.path).checkpoint(self.checkpoint), doing))
        return self.inputs

    def scores(self, X: np.ndarray) -> np.ndarray:
        """The model's eval-mode scores for raw samples ``X`` ``(N, *inputs.shape)``."""
        inputs = self.require_inputs("predict")
        return self.model.scores(inputs.prepare(X))

    def labels(self, scores: np.ndarray) -> np.ndarray:
        """What ``predict`` gives for these scores."""
        loss = self.model.loss_fn
        if self.task == "regression" and loss.task != "regression":
            return loss.values(scores)  # a reconstruction: σ(z) of binary cross-entropy's logits
        predicted = loss.predict(scores)
        if self.task == "regression" or not self.class_names:
            return predicted
        return np.array(self.output_names)[predicted]

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """What ``predict_proba`` gives for these scores."""
        if self.task == "regression":
            raise ValueError("a regression model predicts values, not class probabilities")
        return probabilities(scores, self.task, self.model.loss_fn.class_axis)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class names (class indices where the data has no names) for a classifier, of
        every pixel ``(N, H, W)`` for a segmentation model; the predicted values for a
        regression model, the reconstructions of an autoencoder (``data.target: input``),
        in the preprocessed inputs' scale."""
        return self.labels(self.scores(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)`` (``(N, T, classes)`` for a label per step,
        ``(N, H, W, classes)`` per pixel)."""
        return self.probabilities(self.scores(X))

    def data(self, split: str = "test"):
        """One split of the data the run trained on (its fold's for a fold folder),
        prepared with the checkpoint's statistics (loaded once); RunError when the run
        has no such split, ShapeError when the model no longer fits the data."""
        if self.splits is None:
            self.splits = run_splits(self.config, Run(self.path), fitted=self.inputs.steps)
        check_fits(self.model, self.splits)
        data = getattr(self.splits, split)
        if len(data.X) == 0:
            raise RunError(f"{self.path} has no {split} split to score: its config sets "
                           f"data.split.{split}: 0")
        return data

    def evaluate(self, split: str = "test") -> dict[str, float]:
        """The model's scores on one split of its data (``data``): ``{"test/acc": ...}``."""
        data = self.data(split)
        return evaluate(self.model, data.X, data.y, split)

    def to_onnx(self, path: str | Path | None = None, opset: int | None = None):
        """The model behind its preprocessing as an ONNX graph (``dl_cli.export``), saved
        atomically to ``path`` when given. Needs the onnx package (the ``onnx`` extra)."""
        from .export import DEFAULT_OPSET, to_onnx

        inputs = self.require_inputs("export")
        names = self.class_names if self.task != "regression" else None
        proto = to_onnx(self.model, inputs.steps, input_shape=inputs.shape, class_names=names,
                        opset=DEFAULT_OPSET if opset is None else opset)
        if path is not None:
            write_atomic(Path(path), lambda f: f.write(proto.SerializeToString()))
        return proto


def load_run(path: str | Path, checkpoint: str = "best", allow_plugins: bool = False,
             scoring: str | None = None) -> TrainedRun:
    """The run in ``path`` (a run folder, or a config's name folder for its newest
    finished run) with its ``checkpoint`` (best or last) loaded.

    A run whose config names plugins is refused (a ConfigError listing them) unless
    ``allow_plugins``: loading it would run their code. Raises RunError for a folder or
    checkpoint that cannot be used, ConfigError for its config. ``scoring``: what the
    caller loads the run to do with raw inputs ("predict", "export"), for which a
    checkpoint of an earlier version is refused at once (``require_inputs``) rather
    than after its data are loaded to rebuild the model.
    """
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be best or last, got {checkpoint!r}")
    path = resolve_run(path)
    layout = RunLayout(path)
    if layout.is_kfold_root:
        raise RunError(f"{path} is a k-fold run folder, one model per fold: load one of "
                       f"{', '.join(map(str, layout.folds()))}")
    if not layout.is_run:
        raise RunError(f"{path} is not a run folder (no config.yaml)")
    cfg = load_saved_config(layout.config, allow_plugins=allow_plugins)
    run = Run(path)
    state = run.load_checkpoint(checkpoint)
    source = layout.checkpoint(checkpoint)
    inputs = Inputs.from_checkpoint(state, cfg.data.preprocess, source)
    splits = None
    if inputs is not None:
        try:
            in_shape = inputs.model_shape
        except ValueError as error:  # statistics of one shape, samples of another
            raise RunError(f"{source}: the preprocessing statistics do not fit samples of "
                           f"shape {inputs.shape} ({error})") from None
    elif scoring is not None:
        raise RunError(lacking(source, scoring))
    else:  # an older checkpoint: the data as the run prepared it, fitted again
        splits = run_splits(cfg, run)
        in_shape = splits.in_shape
    model = build_model(cfg, in_shape)
    restore(model, state, source)
    return TrainedRun(path=path, config=cfg, model=model, inputs=inputs, checkpoint=checkpoint,
                      epoch=state["meta"]["epoch"], splits=splits)


def train(config_path: str | Path, overrides=(), run_dir: str | Path | None = None,
          progress: bool = False, warn=None):
    """Train a config as ``dl train CONFIG KEY=VALUE ...`` does and return the run
    (``TrainedRun`` of its best checkpoint); with ``validation.kfold`` the list of the
    folds' runs. ``warn(message)`` hears what ``dl train`` prints as warnings (they are
    in train.log too). Raises what training raises: ConfigError, DataError, ShapeError,
    RunError, and the Solver's Diverged and Interrupted."""
    from .crossval import train_folds

    cfg = load_config(config_path, list(overrides))
    if cfg.validation.kfold:
        summary = train_folds(cfg, run_dir, progress=progress, warn=warn)
        return [load_run(fold["run_dir"], allow_plugins=True) for fold in summary["folds"]]
    parts = assemble(cfg)
    run = start(cfg, run_dir)
    train_run(cfg, run, parts, progress=progress, warn=warn)
    return load_run(run.path, allow_plugins=True)
