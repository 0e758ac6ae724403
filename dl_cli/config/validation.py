"""Validate a raw train config: every key against ``schema``, every component spec against
its registry, and the rules that span several keys; one ConfigError lists every mistake.

A component spec is checked by building it, once (no data is loaded and no model is
built): its name and options against the registry, its option values by its own
constructor, the layers nested in blocks (``residual``, ``concat``) too, each mistake
under the key path of the option it names (``model.layers.3.drop_rate``). What was built
is kept (``Components``), for the first assembly of the config to take.

Across keys: every monitor names a metric the run reports (``monitor_problem``), a
schedule's floor lies below the optimizer's rate, and a run on workers (``parallel``)
is neither k-fold nor diagnosed.
"""

from __future__ import annotations

import re
from typing import Any

from .. import data, nn, optim, plugins, schedules  # noqa: F401  (importing them fills the registries)
from ..checks import INVALID, ConfigError, describe, join
from ..metrics import config_task, direction, mode_of, reported_metrics, resolve_monitor
from ..registry import INITIALIZERS, LAYERS, Registry, RegistryError
from ..schema import MONITORS, Config
from .sections import SectionReader

# Layer options that hold layer specs of their own, and how deeply they are listed:
# residual's ``layers`` is a list of specs, concat's ``branches`` a list of lists of specs.
NESTED_LAYERS: dict[tuple[str, str], int] = {
    ("residual", "layers"): 1,
    ("concat", "branches"): 2,
}


class Components:
    """The components built to validate a config, by key path, each with the spec it was
    built from. Each is taken once: a layer, an optimizer or a schedule holds state once
    used, so a second assembly of the same config (the next fold) builds its own."""

    def __init__(self):
        self.kept: dict[str, tuple[Any, Any]] = {}

    def keep(self, path: str, spec, component) -> None:
        self.kept[path] = (spec, component)

    def get(self, path: str):
        """The component built for ``path`` (still kept), or None."""
        return self.kept.get(path, (None, None))[1]

    def take(self, path: str, spec, registry: Registry):
        """The component built for ``path``, if it was built from ``spec``; else a new one."""
        built_from, component = self.kept.pop(path, (None, None))
        return component if component is not None and built_from == spec else registry.create(spec)


def article(noun: str) -> str:
    """``a`` or ``an``, by the noun's first letter: an optimizer, a layer."""
    return "an" if noun[:1] in "aeiou" else "a"


class ConfigReader(SectionReader):
    """The train config's reader: builds each component spec to check it, and keeps it."""

    def __init__(self):
        super().__init__()
        self.built = Components()

    def field(self, f, hint: Any, value: Any, path: str):
        """``plugins`` is imported as it is read, before the fields that follow it name
        what it registers; any other field as every section reads it."""
        if path != "plugins":
            return super().field(f, hint, value, path)
        entries, problems = plugins.import_all(value)
        for problem in problems:
            index, _, message = problem.partition(": ")
            if index.isdigit():
                self.problems.add(f"plugins.{index}", message)
            else:
                self.problems.add("plugins", problem)
        return entries

    def check_spec(self, registry: Registry, spec: Any, path: str) -> None:
        """A registered name with known options, which its class accepts when constructed."""
        if not (isinstance(spec, str) or isinstance(spec, dict) and "type" in spec):
            self.problems.add(path, f"expected {article(registry.kind)} {registry.kind} name or "
                                    f"a mapping with a 'type' key, got {describe(spec)}; known "
                                    f"{registry.plural}: {', '.join(registry.names())}")
            return
        name, options = Registry.split_spec(spec)
        try:
            allowed = registry.options(name)
        except RegistryError as error:
            self.problems.add(path if isinstance(spec, str) else join(path, "type"), str(error))
            return
        unknown = [key for key in options if key not in allowed]
        for key in unknown:
            self.problems.add(join(path, key), registry.unknown_option(name, key))
        if unknown:
            return
        try:
            component = registry.create(spec)
        except (ValueError, TypeError) as error:
            # a block fails on its first nested mistake: report each where it stands
            if not (registry is LAYERS and self.nested_mistakes(name, options, path)):
                self.problems.add(option_path(path, str(error), options), str(error))
            return
        self.built.keep(path, spec, component)
        if registry is LAYERS:
            self.check_inits(name, options, path)

    def nested_mistakes(self, name: str, options: dict, path: str) -> bool:
        """Check the layer specs nested in a block; whether any has a mistake."""
        found = len(self.problems)
        for nested_path, nested in nested_layers(name, options, path):
            self.check_spec(LAYERS, nested, nested_path)
        return len(self.problems) > found

    def check_inits(self, name: str, options: dict, path: str) -> None:
        """A layer's own initializer, and those of the layers nested in it, which a layer
        only looks up when the model is built."""
        if options.get("init") is not None:
            self.check_spec(INITIALIZERS, options["init"], join(path, "init"))
        for nested_path, nested in nested_layers(name, options, path):
            self.check_inits(*Registry.split_spec(nested), nested_path)


def nested_layers(name: str, options: dict, path: str) -> list[tuple[str, Any]]:
    """``(key path, spec)`` of each layer spec held in the options of layer ``name``
    (``model.layers.2.branches.1.0``). Where a list belongs but something else stands,
    nothing is collected: the block's own constructor reports it."""
    found = []
    for (block, option), depth in NESTED_LAYERS.items():
        if block != name or option not in options:
            continue
        level = [(join(path, option), options[option])]
        for _ in range(depth):
            level = [(join(item_path, i), item) for item_path, items in level
                     if isinstance(items, list) for i, item in enumerate(items)]
        found.extend(level)
    return found


def option_path(path: str, message: str, options: dict) -> str:
    """The path of the option a constructor's error message names first, so that
    "drop_rate must be in [0, 1)" is reported under ``model.layers.3.drop_rate``."""
    positions = {}
    for key in options:
        match = re.search(rf"\b{re.escape(key)}\b", message) if isinstance(key, str) else None
        if match:
            positions[key] = match.start()
    return join(path, min(positions, key=positions.get)) if positions else path


# -- rules across keys ------------------------------------------------------------------
def monitor_problem(monitor: str, task: str, val: float, kfold: int | None,
                    eval_train_samples: int) -> str | None:
    """Why a run would never report ``monitor`` (``auto`` resolved as the Solver does),
    or None. Each epoch the Solver records the ``val/`` metrics when there is validation
    data (``data.split.val`` > 0, or k-fold) and the ``train/`` ones when it scores a
    training subsample (``train.eval_train_samples`` >= 1). A monitor it never records
    leaves no best checkpoint and no test score, and early stopping fires after
    ``patience`` epochs. The message is what follows the key path."""
    has = {"val": val > 0 or bool(kfold), "train": eval_train_samples >= 1}

    def reported(name: str) -> bool:
        split, metric = resolve_monitor(name, "auto", task)[0].split("/", 1)
        return has[split] and metric in reported_metrics(task)

    allowed = [m for m in MONITORS if m != "auto" and reported(m)]
    resolved, _ = resolve_monitor(monitor, "auto", task)
    split, metric = resolved.split("/", 1)
    choices = (f"allowed: {', '.join(allowed)}" if allowed else
               "no metric is reported with data.split.val 0 and train.eval_train_samples 0")
    named = f"auto ({resolved} for this model)" if monitor == "auto" else resolved
    if metric not in reported_metrics(task):
        return f"a {task} model does not report {resolved}; {choices}"
    if split == "val" and not has["val"]:
        return (f"{named} needs a validation split, but data.split.val is {val:g}; "
                f"set it (e.g. 0.2) or validation.kfold; {choices}")
    if split == "train" and not has["train"]:
        return (f"{named} needs scored training samples, but train.eval_train_samples is "
                f"{eval_train_samples}; set it >= 1; {choices}")
    return None


def check_monitors(config: Config, reader: ConfigReader) -> None:
    """The checkpoint monitor, and early stopping's, each name a metric the run reports
    (see ``monitor_problem``). Skipped where a key they depend on was already wrong."""
    loss = reader.built.get("model.loss")
    train = config.train
    if loss is None or INVALID in (config.data, train, config.validation, config.checkpoint):
        return
    settings = (config.data.split.val if config.data.split is not INVALID else INVALID,
                config.validation.kfold, train.eval_train_samples)
    if INVALID in settings:
        return
    sections = [("checkpoint", config.checkpoint)]
    if train.early_stopping not in (None, INVALID):
        sections.append(("train.early_stopping", train.early_stopping))
    task = config_task(loss, reader.built.get("data.dataset"), config.data.target)
    for path, section in sections:
        if section.monitor is INVALID:
            continue
        problem = monitor_problem(section.monitor, task, *settings)
        if problem:
            reader.problems.add(f"{path}.monitor", problem)
        elif section.mode in ("min", "max"):
            metric = resolve_monitor(section.monitor, "auto", task)[0]
            if section.mode != mode_of(metric):
                reader.problems.add(f"{path}.mode", f"{metric} is {direction(metric)}, so the mode "
                                                    f"is {mode_of(metric)} (or auto), got {section.mode}")


def check_schedule_floor(config: Config, reader: ConfigReader) -> None:
    """A schedule's floor (``min_lr``) lies below the optimizer's rate: above it, cosine
    annealing would raise the rate it should lower, and plateau would start there."""
    optimizer, schedule = reader.built.get("optimizer"), reader.built.get("schedule")
    if optimizer is None or schedule is None or schedule.floor <= optimizer.base_lr:
        return
    nested = isinstance(config.schedule, dict) and "after" in config.schedule
    reader.problems.add("schedule.after.min_lr" if nested else "schedule.min_lr",
                        f"{schedule.floor:g} is above optimizer.lr {optimizer.base_lr:g}, so the "
                        f"schedule would raise the rate; set min_lr below lr")


def check_parallel(config: Config, reader: ConfigReader) -> None:
    """Training on workers is one run with no per-layer statistics: k-fold runs and
    diagnostics (which watch the layers of this process) train in this process."""
    if config.parallel in (None, INVALID):
        return
    if config.validation is not INVALID and config.validation.kfold:
        reader.problems.add("parallel", "k-fold runs train in this process; remove parallel "
                                        "or validation.kfold")
    if config.train is not INVALID and config.train.diagnostics is True:
        reader.problems.add("parallel", "train.diagnostics watches the layers of this "
                                        "process, but parallel trains on workers; remove "
                                        "parallel or set train.diagnostics false")


def validate(raw: Any, keep_components: bool = False) -> Config:
    """The typed ``Config`` for a raw dict, or one ConfigError listing every mistake.
    ``keep_components``: the config holds what was built to check it (``Config.components``)."""
    reader = ConfigReader()
    config = reader.section(Config, raw, "")
    failed_plugins = [line for line in reader.problems if line.startswith("plugins")]
    if failed_plugins:  # the rest would only be what they did not register
        raise ConfigError(failed_plugins)
    if config is not INVALID:
        check_monitors(config, reader)
        check_schedule_floor(config, reader)
        check_parallel(config, reader)
    reader.problems.raise_if_any()
    if keep_components:
        config.components = reader.built
    return config
