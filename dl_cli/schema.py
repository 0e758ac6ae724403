"""The train config and the sweep spec as typed dataclasses, with their defaults and the
rule each key's value must pass.

A YAML file fills these (``config.load_config``, ``sweep.spec.load_spec``), through one
reader (``config.sections``); every other module reads only these. Components are always
a registered name or ``{type: name, **options}``.

``key(default, rule, specs=REGISTRY)`` declares a key: its default (a ``factory`` for a
list or a section), the ``checks.Rule`` its value must pass once its type is right, and
the registry whose entries it names. A key left out takes its default; null is allowed
where the type says ``| None``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from .checks import (INVALID, Rule, above, at_least, distinct_names, integer, is_int, known,
                     one_of, said)
from .registry import (AUGMENTATIONS, DATASETS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS,
                       PREPROCESSORS, SCHEDULES, Registry, did_you_mean)
from .threads import MOST_THREADS

Spec = Union[str, dict]  # a registry entry: "relu" or {"type": "affine", "units": 10}


def key(default: Any = None, rule: Rule | None = None, *, factory=None,
        specs: Registry | None = None) -> Any:
    metadata = {"rule": rule, "specs": specs}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def printable(text: str) -> bool:
    """No control or format characters (a newline, an escape, a bidirectional override)."""
    return not any(unicodedata.category(c).startswith("C") for c in text)


MONITORS = ("auto", "val/acc", "val/loss", "val/mse", "val/r2", "val/miou", "train/loss",
            "train/acc", "train/miou")
TARGETS = ("labels", "input")
MODES = ("max", "min", "auto")
DTYPES = ("float32", "float64")
LOGGERS = ("tensorboard", "mlflow")  # train.loggers: each is an observer of the Solver (dl_cli/loggers)
# a fraction of the data: 1 would leave none to train on
SHARE = Rule("a fraction in [0, 1)", lambda v: 0 <= v < 1, typed=False)
RUN_NAME = Rule("a non-empty name without '/', '\\' or control characters (it names the "
                "folder runs/<name> and is written into train.log)",
                lambda v: bool(v) and not set("/\\") & set(v) and printable(v), typed=False)
BATCH_SIZE = said(lambda v: v == "full" or is_int(v) and v >= 1,
                  lambda v: f'must be an integer >= 1 or "full", got {v!r}{did_you_mean(v, ["full"])}')
NOT_EMPTY = said(bool, lambda v: "must not be empty")
SOME_LAYERS = said(bool, lambda v: "must list at least one layer, such as {type: affine, units: 10}")


class Section:
    """A mapping of a document. ``mistake`` says what is wrong with its values together
    (a value that failed its own check is ``checks.INVALID``); ``show_defaults``: a
    value that is not a mapping is refused with the defaults as the example."""

    show_defaults: ClassVar[bool] = False

    def mistake(self) -> str | None:
        return None


# -- the train config --------------------------------------------------------------------
@dataclass
class SplitConfig(Section):
    val: float = key(0.2, SHARE)   # fraction of the data held out to choose hyperparameters
    test: float = key(0.2, SHARE)  # fraction scored once, with the best parameters, at the end
    stratify: bool = True          # keep class proportions equal across splits (classification)

    def mistake(self) -> str | None:
        """What is wrong with the fractions together (once each passed its rule)."""
        if INVALID in (self.val, self.test) or self.val + self.test < 1:
            return None
        return (f"val + test must be < 1 to leave training data, "
                f"got {self.val} + {self.test} = {self.val + self.test:g}")


@dataclass
class DataConfig(Section):
    dataset: Spec = key("spiral", specs=DATASETS)          # e.g. {type: npz, path: x.npz}
    split: SplitConfig = key(factory=SplitConfig)
    preprocess: list[Spec] = key(factory=list, specs=PREPROCESSORS)  # fitted on train only: standardize, pca...
    augment: list[Spec] = key(factory=list, specs=AUGMENTATIONS)     # training batches only: flip, crop...
    target: str = key("labels", known(TARGETS))  # labels: the data set's targets; input: the
                                                 # preprocessed input itself (an autoencoder;
                                                 # augmentation changes the input only)


@dataclass
class ModelConfig(Section):
    layers: list[Spec] = key(factory=list, rule=SOME_LAYERS, specs=LAYERS)  # input sizes are inferred
    init: Spec = key("he_normal", specs=INITIALIZERS)   # model-wide initializer; layers may override
    loss: Spec = key("softmax_cross_entropy", specs=LOSSES)


@dataclass
class RegularizationConfig(Section):
    l1: float = key(0.0, at_least(0))  # adds l1·Σ|w| over the layers' decay parameters (weights only)
    l2: float = key(0.0, at_least(0))  # adds (l2/2)·Σw²


@dataclass
class EarlyStoppingConfig(Section):
    monitor: str = key("auto", known(MONITORS))  # a metric such as val/acc; auto: val/acc, or val/loss for regression
    mode: str = key("auto", known(MODES))        # max | min | auto (max for accuracies and R², min for losses)
    patience: int = key(10, at_least(1))         # epochs without improvement before stopping
    min_delta: float = key(0.0, at_least(0))     # smallest change that counts as an improvement


@dataclass
class TensorBoardConfig(Section):
    histograms_every: int = key(5, at_least(0))  # weight and gradient histograms every N epochs (0: none)


@dataclass
class MlflowConfig(Section):
    uri: str | None = key(None, NOT_EMPTY)  # tracking URI; none: $MLFLOW_TRACKING_URI, else the file store ./mlruns


@dataclass
class TrainConfig(Section):
    epochs: int = key(20, at_least(1))
    batch_size: Union[int, str] = key(64, BATCH_SIZE)    # an int, or "full" for full-batch gradient descent
    clip_grad_norm: float | None = key(None, above(0))   # rescale gradients whose global L2 norm exceeds this
    clip_grad_value: float | None = key(None, above(0))  # clamp every gradient entry to ±this
    early_stopping: EarlyStoppingConfig | None = None
    eval_train_samples: int = key(1000, at_least(0))   # training subsample scored each epoch for train/acc
    log_every: int = key(0, at_least(0))               # also log the loss every k iterations (0: epochs only)
    diagnostics: bool = False                          # per-layer activation, dead-unit and gradient statistics
    dtype: str = key("float32", known(DTYPES))         # float32 trains fast; float64 for exact checks
    loggers: list[str] = key(factory=list, rule=distinct_names(LOGGERS))  # also log live to: tensorboard, mlflow
    tensorboard: TensorBoardConfig = key(factory=TensorBoardConfig)
    mlflow: MlflowConfig = key(factory=MlflowConfig)


@dataclass
class CheckpointConfig(Section):
    monitor: str = key("auto", known(MONITORS))  # metric that picks checkpoints/best.npz (auto as for early stopping)
    mode: str = key("auto", known(MODES))        # max | min | auto
    every_seconds: float = key(10.0, at_least(0))  # write checkpoints at most this often (always at the
                                                   # end and on a stop); 0 writes them every epoch


@dataclass
class ValidationConfig(Section):
    kfold: int | None = key(None, at_least(2))  # K >= 2: pool train and val, train K runs (one per
                                                   # fold) and score the config as the mean of their best val metric


PARALLEL_MODES = ("sync", "async")


@dataclass
class ParallelConfig(Section):
    """Training on Dask workers (the ``dask`` extra), as ``dl train --backend dask`` does."""

    mode: str = key("sync", known(PARALLEL_MODES))  # sync: map-reduce gradients, the numbers of one
                                                    # process; async: a parameter server (Downpour),
                                                    # not deterministic (its update order is recorded)
    workers: int = key(2, at_least(1))       # a LocalCluster of this many, unless dl train --address
    wait: float = key(60.0, at_least(0))     # seconds for a lost worker to be replaced before the run
                                             # stops (last.npz saved, exit 1)


@dataclass
class Config(Section):
    name: str = key("run", RUN_NAME)     # runs/<name>/<timestamp>-<id>/
    seed: int = key(0, at_least(0))      # seeds the split, the initial weights, the batch order and dropout
    plugins: list[str] = key(factory=list)  # modules or .py files imported first (plugins.py)
    data: DataConfig = key(factory=DataConfig)
    model: ModelConfig = key(factory=ModelConfig)
    regularization: RegularizationConfig = key(factory=RegularizationConfig)
    optimizer: Spec = key(factory=lambda: {"type": "sgd", "lr": 0.01}, specs=OPTIMIZERS)
    schedule: Spec | None = key(None, specs=SCHEDULES)  # none: a constant rate
    train: TrainConfig = key(factory=TrainConfig)
    checkpoint: CheckpointConfig = key(factory=CheckpointConfig)
    validation: ValidationConfig = key(factory=ValidationConfig)
    parallel: ParallelConfig | None = None  # none: train in this process
    runs_dir: str = key("runs", NOT_EMPTY)  # where run folders are made

    # Not a field (never dumped or compared): the components validation built to check
    # this config, which its first assembly takes instead of building them again.
    components: ClassVar[Any] = None


# -- the sweep spec (sweep.spec; described in its docstring) -----------------------------------
METHODS = ("grid", "random", "tpe")
PRUNE_RULES = ("sha", "median")     # sweep.pruning
RENAMED_RULES = {"asha": "sha"}     # former rule names, still read (with a warning)
PRUNE_RULE = Rule(lambda v: f"one of {', '.join(PRUNE_RULES)}{did_you_mean(v, PRUNE_RULES)}",
                  lambda v: v in PRUNE_RULES or v in RENAMED_RULES)
STUDIES = ("init", "activations", "regularization", "batchnorm", "optimizers", "schedules",
           "polynomial", "weight_decay", "depth_residual", "clipping", "cnn_vs_mlp",
           "bottleneck", "autoencoder_vs_pca", "distributed")  # studies.report.SECTIONS


def is_folder_name(value) -> bool:
    """A name ``runs.safe_name`` leaves as it is: letters, digits and ``._-``, not
    starting with a dot or a dash."""
    return isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", value) is not None


@dataclass(frozen=True)
class Prune(Section):
    """Train every configuration ``min_epochs``, keep those the rule lets go on (sha: the
    best 1/eta; median: those not below the median), train them ``eta`` times longer,
    and so on up to the configured epochs (``sweep.pruning``)."""

    show_defaults: ClassVar[bool] = True  # a mistake in the section shows them as an example
    rule: str = key("sha", PRUNE_RULE)
    min_epochs: int = key(1, integer(1))
    eta: int = key(3, integer(2))


@dataclass(frozen=True)
class Refine(Section):
    show_defaults: ClassVar[bool] = True
    rounds: int = key(1, integer(1))  # refined rounds after the first
    top: int = key(5, integer(1))     # best configurations whose values bound the next round's ranges


@dataclass(frozen=True)
class KFold(Section):
    show_defaults: ClassVar[bool] = True
    kfold: int = key(5, integer(2))


SEEDS = Rule("a non-empty list of distinct integers >= 0",
             lambda v: isinstance(v, list) and bool(v) and all(is_int(s) and s >= 0 for s in v)
             and len(set(v)) == len(v))
KEY_VALUES = Rule("a list of key=value strings",
                  lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v))


@dataclass
class SweepKeys(Section):
    """The keys of a sweep spec. ``base`` (checked as the spec is found), ``metric``,
    ``params``, ``variants`` and ``report`` are free-form here: ``sweep.spec`` reads them."""

    base: Any = None
    name: str = key(None, Rule("a name of letters, digits and ._- (it names the sweep folder)",
                               is_folder_name))
    method: str = key("grid", one_of(METHODS, suggest=True))
    trials: int | None = key(None, integer(1))
    batch: int = key(4, integer(1))  # tpe: configurations asked per round
    seed: int = key(0, integer(0))
    metric: Any = None
    params: Any = None
    variants: Any = None
    seeds: list | None = key(None, SEEDS)
    refine: Refine | None = None
    prune: Prune | None = None
    validation: KFold | None = None
    keep_checkpoints: str = key("best", Rule("best or all", lambda v: v in ("best", "all")))
    overrides: list | None = key(None, KEY_VALUES)
    threads: int = key(1, Rule(f"an integer from 1 to {MOST_THREADS:,} (BLAS takes a C int)",
                               lambda v: is_int(v) and 1 <= v <= MOST_THREADS))
    claim: str | None = key(None, Rule("a sentence", lambda v: isinstance(v, str) and bool(v.strip())))
    report: Any = None
