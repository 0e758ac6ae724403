"""The train config as typed dataclasses, with the defaults a run falls back to.

A YAML file fills these (``config.load``); every other module reads only these.
Components are always a registered name or ``{type: name, **options}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

Spec = Union[str, dict]  # a registry entry: "relu" or {"type": "affine", "units": 10}


@dataclass
class SplitConfig:
    val: float = 0.2         # fraction of the data held out to choose hyperparameters
    test: float = 0.2        # fraction scored once, with the best parameters, at the end
    stratify: bool = True    # keep class proportions equal across splits (classification)


@dataclass
class DataConfig:
    dataset: Spec = "spiral"                           # DATASETS name, e.g. {type: npz, path: x.npz}
    split: SplitConfig = field(default_factory=SplitConfig)
    preprocess: list[Spec] = field(default_factory=list)  # fitted on train only: standardize, pca...
    augment: list[Spec] = field(default_factory=list)     # training batches only: flip, crop...


@dataclass
class ModelConfig:
    layers: list[Spec] = field(default_factory=list)   # LAYERS specs; input sizes are inferred
    init: Spec = "he_normal"                            # model-wide initializer; layers may override
    loss: Spec = "softmax_cross_entropy"                # LOSSES name


@dataclass
class RegularizationConfig:
    l1: float = 0.0          # adds l1·Σ|w| over the layers' decay parameters (weights only)
    l2: float = 0.0          # adds (l2/2)·Σw²


@dataclass
class EarlyStoppingConfig:
    monitor: str = "auto"    # a metric name such as val/acc; auto: val/acc, or val/loss for regression
    mode: str = "auto"       # max | min | auto (max for accuracies and R², min for losses)
    patience: int = 10       # epochs without improvement before stopping
    min_delta: float = 0.0   # smallest change that counts as an improvement


@dataclass
class TensorBoardConfig:
    histograms_every: int = 5  # weight and gradient histograms every N epochs (0: none)


@dataclass
class MlflowConfig:
    uri: str | None = None     # tracking URI; none: $MLFLOW_TRACKING_URI, else the file store ./mlruns


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: Union[int, str] = 64        # an int, or "full" for full-batch gradient descent
    clip_grad_norm: float | None = None     # rescale gradients whose global L2 norm exceeds this
    clip_grad_value: float | None = None    # clamp every gradient entry to ±this
    early_stopping: EarlyStoppingConfig | None = None
    eval_train_samples: int = 1000          # training subsample scored each epoch for train/acc
    log_every: int = 0                      # also log the loss every k iterations (0: epochs only)
    diagnostics: bool = False               # per-layer activation, dead-unit and gradient statistics
    dtype: str = "float32"                  # float32 trains fast; float64 for exact checks
    loggers: list[str] = field(default_factory=list)  # also log live to: tensorboard, mlflow
    tensorboard: TensorBoardConfig = field(default_factory=TensorBoardConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)


@dataclass
class CheckpointConfig:
    monitor: str = "auto"    # metric that picks checkpoints/best.npz (auto as for early stopping)
    mode: str = "auto"       # max | min | auto
    every_seconds: float = 10.0  # write checkpoints at most this often (always at the end
                                 # and on a stop); 0 writes them every epoch


@dataclass
class ValidationConfig:
    kfold: int | None = None  # K >= 2: pool train and val, train K runs (one per fold) and
                              # score the config as the mean of their best val metric


@dataclass
class Config:
    name: str = "run"        # runs/<name>/<timestamp>-<id>/
    seed: int = 0            # seeds the split, the initial weights, the batch order and dropout
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    optimizer: Spec = field(default_factory=lambda: {"type": "sgd", "lr": 0.01})  # OPTIMIZERS
    schedule: Spec | None = None            # SCHEDULES spec, or none for a constant rate
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    runs_dir: str = "runs"                  # where run folders are made
