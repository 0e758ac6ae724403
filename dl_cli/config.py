"""Load a train config: YAML file + ``key=value`` overrides → a validated ``schema.Config``.

```python
cfg = load_config("configs/digits_mlp.yaml", ["optimizer.lr=1e-3", "model.layers.0.units=256"])
text = dump_config(cfg)          # the fully resolved config; load_config reads it back unchanged
```

Three steps, each usable alone:

1. ``read_yaml`` parses the file with ``ConfigLoader``, a ``yaml.SafeLoader`` that
   reads numbers by YAML 1.2's rules (``1e-3`` is a number, ``010`` is ten), refuses
   duplicate keys, every tag that would build a Python object, and aliases that expand
   beyond any config; each alias becomes a value of its own. Nothing in a config runs code.
2. ``apply_overrides`` sets dotted keys (``model.layers.0.units=256``) on the raw dict;
   values are parsed with the same YAML rules.
3. ``validate`` checks the raw dict against the dataclasses of ``schema`` and every
   component spec against its registry, by constructing it (no data is loaded and no
   model is built), the layers nested in blocks (``residual``, ``concat``) too, and that
   every monitor names a metric the run reports. It collects every mistake before raising
   one ``ConfigError``, whose lines each start with the key path of the mistake.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import functools
import re
import types
from pathlib import Path
from typing import Any, Iterable, Union, get_args, get_origin, get_type_hints

import yaml
from yaml.nodes import MappingNode, SequenceNode

from . import data, nn, optim  # noqa: F401  (importing them fills the registries)
from .metrics import direction, mode_of, reported_metrics, resolve_monitor
from .registry import (
    AUGMENTATIONS,
    DATASETS,
    INITIALIZERS,
    LAYERS,
    LOSSES,
    OPTIMIZERS,
    PREPROCESSORS,
    SCHEDULES,
    Registry,
    RegistryError,
    did_you_mean,
)
from .schema import (
    CheckpointConfig,
    Config,
    DataConfig,
    EarlyStoppingConfig,
    ModelConfig,
    RegularizationConfig,
    SplitConfig,
    TensorBoardConfig,
    TrainConfig,
    ValidationConfig,
)
from .loggers import LOGGERS


class ConfigError(Exception):
    """Every mistake found in a config, one line each, each starting with its key path."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "\n".join(self.errors)


# -- reading YAML ---------------------------------------------------------------------
# YAML 1.2 floats that YAML 1.1 (PyYAML's resolver) reads as strings: an exponent
# without a dot in the mantissa, such as 1e-3, -2E5 or .5e1.
YAML12_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$")
# Every YAML 1.2 float: a dot or an exponent, or .inf and .nan (no base 60, no 1_000.5).
YAML12_FLOATS = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?"
                           r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+"
                           r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
# YAML 1.2 integers: decimal (010 is ten; digits may be grouped as 10_000), 0o octal,
# 0x hex. YAML 1.1 would read 010 as eight and 1:30 as ninety (base 60).
YAML12_INT = re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$")
FLOAT_TAG = "tag:yaml.org,2002:float"
INT_TAG = "tag:yaml.org,2002:int"
MERGE_TAG = "tag:yaml.org,2002:merge"
# Values a document may expand to through its aliases (&a ... *a): configs hold
# hundreds; a document of nested aliases can expand to billions.
MAX_VALUES = 1_000_000


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that resolves numbers by YAML 1.2's rules: ``1e-3`` is a
    float, ``010`` is ten, ``1:30`` and ``1:30.5`` are strings."""

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node).replace("_", "")
        return int(text, 0) if text[:2] in ("0o", "0x") else int(text, 10)


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in (INT_TAG, FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
ConfigLoader.add_constructor(INT_TAG, ConfigLoader.construct_yaml_int)
ConfigLoader.add_implicit_resolver(FLOAT_TAG, YAML12_FLOATS, list("-+.0123456789"))
ConfigLoader.add_implicit_resolver(INT_TAG, YAML12_INT, list("-+0123456789"))


class ConfigDumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that also knows the YAML 1.2 numbers, so strings such as
    "1e-3" or "0o10" get quoted (and YAML 1.1's, for any other reader)."""


ConfigDumper.add_implicit_resolver(FLOAT_TAG, YAML12_FLOAT, list("-+.0123456789"))
ConfigDumper.add_implicit_resolver(INT_TAG, YAML12_INT, list("-+0123456789"))


def expanded_size(root: yaml.Node) -> float:
    """How many values the document holds once every alias is replaced by a copy of its
    anchor, counted over the node graph (an alias is the same node object), never by
    expanding it; infinite when an alias sits inside its own anchor (``&x [*x]``)."""
    sizes: dict[int, float] = {}

    def size(node: yaml.Node) -> float:
        if id(node) not in sizes:
            sizes[id(node)] = math.inf  # until its children are counted: a cycle
            if isinstance(node, SequenceNode):
                children = node.value
            elif isinstance(node, MappingNode):
                children = [child for pair in node.value for child in pair]
            else:
                children = []
            sizes[id(node)] = 1 + sum(size(child) for child in children)
        return sizes[id(node)]

    return size(root)


def unshared(value: Any) -> Any:
    """A copy in which every alias is a value of its own: setting ``model.layers.6.units``
    on layers written as ``[&fc {...}, relu, *fc, ...]`` changes layer 6 alone."""
    if isinstance(value, dict):
        return {key: unshared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unshared(item) for item in value]
    return value


def short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def node_errors(root: yaml.Node, source: str, root_path: str = "") -> tuple[list[str], list[str]]:
    """Tags without a safe constructor (nothing may be built from such a document) and
    duplicate keys (the document can still be read, to report its other mistakes too),
    found before anything is built."""
    errors: list[str] = []
    duplicates: list[str] = []
    seen: set[int] = set()

    def visit(node: yaml.Node, path: str) -> None:
        if id(node) in seen:  # an alias of a node already checked
            return
        seen.add(id(node))
        line = node.start_mark.line + 1
        if node.tag not in ConfigLoader.yaml_constructors:
            errors.append(f"{path or 'top level'}: tag {short_tag(node.tag)} on line {line} of "
                          f"{source} is not allowed; a config holds plain values only")
            return
        if isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                visit(item, join(path, i))
        elif isinstance(node, MappingNode):
            first_lines: dict[tuple[str, str], int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:
                    visit(value_node, path)
                    continue
                visit(key_node, path)
                key_path = join(path, key_node.value) if isinstance(key_node.value, str) else path
                key_line = key_node.start_mark.line + 1
                identity = (key_node.tag, str(key_node.value))
                if identity in first_lines:
                    first = first_lines[identity]
                    lines = (f"twice on line {first}" if first == key_line
                             else f"on lines {first} and {key_line}")
                    duplicates.append(f"{key_path}: duplicate key {lines} of {source}")
                else:
                    first_lines[identity] = key_line
                visit(value_node, key_path)

    visit(root, root_path)
    return errors, duplicates


def parse_yaml(text: str, source: str, root_path: str = "") -> Any:
    """Parse one YAML document with ``ConfigLoader``; every problem becomes a ConfigError
    naming ``source`` (a file name, or the override being parsed) and the line, after
    ``root_path``, the key the document is the value of (an override's key)."""
    value, duplicates = parse_yaml_reporting(text, source, root_path)
    if duplicates:
        raise ConfigError(duplicates)
    return value


def parse_yaml_reporting(text: str, source: str, root_path: str = "") -> tuple[Any, list[str]]:
    """Like ``parse_yaml``, but duplicate keys are returned as errors beside the value
    (the last one wins) instead of stopping the parse."""
    prefix = f"{root_path}: " if root_path else ""
    loader = ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        errors, duplicates = node_errors(node, source, root_path)
        if errors:
            raise ConfigError(errors + duplicates)
        size = expanded_size(node)
        if size == math.inf:
            raise ConfigError([f"{prefix}{source}: an alias stands inside its own anchor "
                               f"(&x [*x]), a value without end"])
        if size > MAX_VALUES:
            raise ConfigError([f"{prefix}{source}: its aliases expand to more than "
                               f"{MAX_VALUES:,} values; a config holds far fewer"])
        return unshared(loader.construct_document(node)), duplicates
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = error.problem or "malformed YAML"
        context = f" ({error.context})" if error.context else ""
        raise ConfigError([f"{prefix}{where}: {problem}{context}"]) from None
    except (yaml.YAMLError, ValueError) as error:
        raise ConfigError([f"{prefix}{source}: {error}"]) from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> dict:
    """The top-level mapping of a YAML file; a missing, unreadable or malformed file, one
    with duplicate keys, or one that is not a mapping, is a ConfigError."""
    raw, duplicates = read_yaml_reporting(path)
    if duplicates:
        raise ConfigError(duplicates)
    return raw


def read_yaml_reporting(path: str | Path) -> tuple[dict, list[str]]:
    """``read_yaml`` that returns duplicate keys as errors beside the mapping."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a YAML file"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    except OSError as error:
        raise ConfigError([f"{path}: cannot be read ({error.strerror})"]) from None
    raw, duplicates = parse_yaml_reporting(text, str(path))
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: expected a mapping of config keys at the top "
                           f"(name: ..., model: ...), got {describe(raw)}"])
    return raw, duplicates


# -- overrides ------------------------------------------------------------------------
def apply_overrides(raw: dict, overrides: Iterable[str]) -> dict:
    """A copy of ``raw`` with every ``dotted.key=value`` applied in order.

    List items are addressed by index (``model.layers.0.units=256``); a key the file
    leaves out starts from its default (``optimizer.lr=0.1`` on a config without an
    optimizer tunes the default one), any other missing or null mapping on the way is
    created, and a spec written as a bare name ("relu") becomes ``{type: relu}`` when a
    key under it is set.
    """
    result, errors = overridden(raw, overrides)
    if errors:
        raise ConfigError(errors)
    return result


def overridden(raw: dict, overrides: Iterable[str]) -> tuple[dict, list[str]]:
    """``raw`` with the overrides that could be applied, and the errors of the others."""
    result = copy.deepcopy(raw)
    errors: list[str] = []
    for override in overrides:
        try:
            apply_override(result, override)
        except ConfigError as error:
            errors.extend(error.errors)
    return result, errors


def apply_override(root: dict, override: str) -> None:
    key, equals, value_text = override.partition("=")
    key = key.strip()
    if not equals:
        raise ConfigError([f"{key or repr(override)}: an override is key=value "
                           f"(e.g. optimizer.lr=0.01), got {override!r}"])
    segments = key.split(".")
    if "" in segments:
        raise ConfigError([f"{key or repr(override)}: malformed key in override {override!r}; "
                           f"write dotted keys such as model.layers.0.units"])
    value = parse_yaml(value_text, f"override {override!r}", root_path=key)
    container: Any = root
    for depth, segment in enumerate(segments):
        path = ".".join(segments[: depth + 1])
        slot = list_index(container, segment, path) if isinstance(container, list) else segment
        if depth == len(segments) - 1:
            container[slot] = value
            return
        child = container.get(slot) if isinstance(container, dict) else container[slot]
        if child is None and isinstance(container, dict) and slot not in container:
            child = copy.deepcopy(default_at(segments[: depth + 1]))
        if child is None:
            child = {}
        elif isinstance(child, str) and slot != "type":
            child = {"type": child}
        elif not isinstance(child, (dict, list)):
            raise ConfigError([f"{path}: cannot set '{segments[depth + 1]}' inside "
                               f"{describe(child)} (override {override!r})"])
        container[slot] = child
        container = child


def default_at(segments: list[str]) -> Any:
    """The schema default at a dotted path (None where the schema has none)."""
    value: Any = config_to_dict(Config())
    for segment in segments:
        if not isinstance(value, dict) or segment not in value:
            return None
        value = value[segment]
    return value


def list_index(items: list, segment: str, path: str) -> int:
    size = f"{len(items)} item{'' if len(items) == 1 else 's'}"
    if not segment.isdigit():
        raise ConfigError([f"{path}: '{segment}' is not a list index; the list has {size}"])
    index = int(segment)
    if index >= len(items):
        allowed = f"indices 0..{len(items) - 1}" if items else "it is empty"
        raise ConfigError([f"{path}: index {index} is out of range; "
                           f"the list has {size} ({allowed})"])
    return index


# -- validation -----------------------------------------------------------------------
MONITORS = ("auto", "val/acc", "val/loss", "val/mse", "val/r2", "train/loss", "train/acc")
MODES = ("max", "min", "auto")
DTYPES = ("float32", "float64")

# Fields holding one registry spec, or a list of them.
SPEC_FIELDS: dict[tuple[type, str], Registry] = {
    (DataConfig, "dataset"): DATASETS,
    (ModelConfig, "init"): INITIALIZERS,
    (ModelConfig, "loss"): LOSSES,
    (Config, "optimizer"): OPTIMIZERS,
    (Config, "schedule"): SCHEDULES,
}
SPEC_LIST_FIELDS: dict[tuple[type, str], Registry] = {
    (DataConfig, "preprocess"): PREPROCESSORS,
    (DataConfig, "augment"): AUGMENTATIONS,
    (ModelConfig, "layers"): LAYERS,
}

# Layer options that hold layer specs of their own, and how deeply they are listed:
# residual's ``layers`` is a list of specs, concat's ``branches`` a list of lists of specs.
NESTED_LAYERS: dict[tuple[str, str], int] = {
    ("residual", "layers"): 1,
    ("concat", "branches"): 2,
}


def at_least(minimum):
    def rule(value):
        return None if value >= minimum else f"must be >= {minimum}, got {value}"
    return rule


def positive(value):
    return None if value > 0 else f"must be > 0, got {value}"


def fraction(value):
    return None if 0 <= value < 1 else f"must be a fraction in [0, 1), got {value}"


def one_of(choices):
    def rule(value):
        if value in choices:
            return None
        return (f"unknown value {value!r}{did_you_mean(value, choices)}; "
                f"allowed: {', '.join(choices)}")
    return rule


def each_one_of(choices):
    """A list of distinct names from ``choices``."""
    def rule(values):
        for value in values:
            if value not in choices:
                return (f"unknown value {value!r}{did_you_mean(value, choices)}; "
                        f"allowed: {', '.join(choices)}")
        repeated = sorted({v for v in values if values.count(v) > 1})
        return f"names {', '.join(repeated)} more than once" if repeated else None
    return rule


def batch_size(value):
    if value == "full" or (isinstance(value, int) and value >= 1):
        return None
    return f'must be an integer >= 1 or "full", got {value!r}{did_you_mean(value, ["full"])}'


def run_name(value):
    if value and not set("/\\") & set(value):
        return None
    return f"must be a non-empty name without '/' (it names the folder runs/<name>), got {value!r}"


def non_empty(value):
    return None if value else "must not be empty"


def some_layers(value):
    return None if value else "must list at least one layer, such as {type: affine, units: 10}"


# Value rules, checked once the type is right (NaN fails every comparison).
RULES = {
    (Config, "name"): run_name,
    (Config, "seed"): at_least(0),
    (Config, "runs_dir"): non_empty,
    (ModelConfig, "layers"): some_layers,
    (SplitConfig, "val"): fraction,
    (SplitConfig, "test"): fraction,
    (RegularizationConfig, "l1"): at_least(0),
    (RegularizationConfig, "l2"): at_least(0),
    (TrainConfig, "epochs"): at_least(1),
    (TrainConfig, "batch_size"): batch_size,
    (TrainConfig, "clip_grad_norm"): positive,
    (TrainConfig, "clip_grad_value"): positive,
    (TrainConfig, "eval_train_samples"): at_least(0),
    (TrainConfig, "log_every"): at_least(0),
    (TrainConfig, "dtype"): one_of(DTYPES),
    (TrainConfig, "loggers"): each_one_of(LOGGERS),
    (TensorBoardConfig, "histograms_every"): at_least(0),
    (EarlyStoppingConfig, "monitor"): one_of(MONITORS),
    (EarlyStoppingConfig, "mode"): one_of(MODES),
    (EarlyStoppingConfig, "patience"): at_least(1),
    (EarlyStoppingConfig, "min_delta"): at_least(0),
    (CheckpointConfig, "monitor"): one_of(MONITORS),
    (CheckpointConfig, "mode"): one_of(MODES),
    (CheckpointConfig, "every_seconds"): at_least(0),
    (ValidationConfig, "kfold"): at_least(2),
}

TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
INVALID = object()  # the value of a field that failed its check


def article(noun: str) -> str:
    """``a`` or ``an``, by the noun's first letter: an optimizer, a layer."""
    return "an" if noun[:1] in "aeiou" else "a"


def describe(value: Any) -> str:
    """A value as an error message shows it: ``'ten' (string)``, ``null``."""
    if value is None:
        return "null"
    kind = {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "list", dict: "mapping"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({kind})"


def validate(raw: Any) -> Config:
    """The typed ``Config`` for a raw dict, or one ConfigError listing every mistake."""
    errors: list[str] = []
    config = check_section(Config, raw, "", errors)
    if config is not INVALID:
        check_monitors(config, errors)
        check_schedule_floor(config, errors)
    if errors:
        raise ConfigError(errors)
    return config


def check_section(cls: type, raw: Any, path: str, errors: list[str]):
    if not isinstance(raw, dict):
        errors.append(f"{path or 'config'}: expected a mapping, got {describe(raw)}")
        return INVALID
    fields = dataclasses.fields(cls)
    allowed = [f.name for f in fields]
    for key in raw:
        if key not in allowed:
            errors.append(f"{join(path, key)}: unknown key{did_you_mean(key, allowed)}; "
                          f"allowed: {', '.join(allowed)}")
    hints = field_types(cls)
    values = {}
    for f in fields:
        value = raw[f.name] if f.name in raw else default_value(f)
        values[f.name] = check_field(cls, f.name, hints[f.name], value, join(path, f.name), errors)
    if cls is SplitConfig:
        check_split_sum(values, path, errors)
    return cls(**values)


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a config dataclass, read once per class."""
    return get_type_hints(cls)


def default_value(f: dataclasses.Field) -> Any:
    """A field's default as raw config data, so defaults pass the same checks."""
    if f.default is not dataclasses.MISSING:
        return f.default
    value = f.default_factory()
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def check_field(cls: type, name: str, hint: Any, value: Any, path: str, errors: list[str]):
    optional = type(None) in get_args(hint)
    if (cls, name) in SPEC_FIELDS:
        if value is None and optional:
            return None
        check_spec(SPEC_FIELDS[cls, name], value, path, errors)
        return copy.deepcopy(value)
    if (cls, name) in SPEC_LIST_FIELDS:
        registry = SPEC_LIST_FIELDS[cls, name]
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list of {registry.kind} specs, "
                          f"got {describe(value)}")
            return INVALID
        for i, spec in enumerate(value):
            check_spec(registry, spec, join(path, i), errors)
        checked = copy.deepcopy(value)
    else:
        checked = check_type(hint, value, path, errors)
    rule = RULES.get((cls, name))
    if rule and checked is not INVALID and checked is not None:
        problem = rule(checked)
        if problem:
            errors.append(f"{path}: {problem}")
            return INVALID
    return checked


def check_type(hint: Any, value: Any, path: str, errors: list[str]):
    """``value`` if it has the annotated type (an int is fine for a float, a bool is never
    an int), a dataclass for a nested section, else INVALID with the error recorded."""
    if get_origin(hint) is list:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {describe(value)}")
            return INVALID
        items = [check_type(get_args(hint)[0], item, join(path, i), errors)
                 for i, item in enumerate(value)]
        return INVALID if any(item is INVALID for item in items) else items
    choices = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    if value is None and type(None) in choices:
        return None
    for choice in choices:
        if dataclasses.is_dataclass(choice):
            return check_section(choice, value, path, errors)
        if choice is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                errors.append(f"{path}: expected a finite number, got {value}")
                return INVALID
            return float(value)
        if type(value) is choice and choice in (bool, int, str):
            return value
    wanted = " or ".join(TYPE_NAMES[c] for c in choices if c in TYPE_NAMES)
    if type(None) in choices:
        wanted += " or null"
    errors.append(f"{path}: expected {wanted}, got {describe(value)}")
    return INVALID


def check_split_sum(values: dict, path: str, errors: list[str]) -> None:
    val, test = values["val"], values["test"]
    if val is not INVALID and test is not INVALID and not val + test < 1:
        errors.append(f"{path}: val + test must be < 1 to leave training data, "
                      f"got {val} + {test} = {val + test:g}")


def check_spec(registry: Registry, spec: Any, path: str, errors: list[str]) -> None:
    """A registered name with known options, which its class accepts when constructed."""
    known = ", ".join(registry.names())
    if not (isinstance(spec, str) or isinstance(spec, dict) and "type" in spec):
        errors.append(f"{path}: expected {article(registry.kind)} {registry.kind} name or a "
                      f"mapping with a 'type' key, got {describe(spec)}; known "
                      f"{registry.plural}: {known}")
        return
    name, options = Registry.split_spec(spec)
    name_path = path if isinstance(spec, str) else join(path, "type")
    try:
        allowed = registry.options(name)
    except RegistryError as error:
        errors.append(f"{name_path}: {error}")
        return
    unknown = [key for key in options if key not in allowed]
    for key in unknown:
        try:
            registry.check_options(name, {key: options[key]})
        except RegistryError as error:
            errors.append(f"{join(path, key)}: {error}")
    if unknown:
        return
    if registry is LAYERS:
        found = len(errors)
        for nested_path, nested in nested_layers(name, options, path):
            check_spec(LAYERS, nested, nested_path, errors)
        if len(errors) > found:  # constructing the block would report them again, unplaced
            return
    try:
        registry.check_options(name, options)
        registry.create(spec)
    except (ValueError, TypeError) as error:
        errors.append(f"{option_path(path, str(error), options)}: {error}")
        return
    if registry is LAYERS and options.get("init") is not None:
        # a layer's own initializer, which it only looks up when the model is built
        check_spec(INITIALIZERS, options["init"], join(path, "init"), errors)


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


# -- monitors -------------------------------------------------------------------------
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


def check_monitors(config: Config, errors: list[str]) -> None:
    """The checkpoint monitor, and early stopping's, each name a metric the run reports
    (see ``monitor_problem``). Skipped where a field they depend on was already wrong."""
    model, data_config, train = config.model, config.data, config.train
    if any(part is INVALID for part in (model, data_config, train, config.validation,
                                        config.checkpoint)):
        return
    try:
        task = LOSSES.create(model.loss).task
    except (ValueError, TypeError):  # reported by the check of model.loss
        return
    settings = (data_config.split.val if data_config.split is not INVALID else INVALID,
                config.validation.kfold, train.eval_train_samples)
    if any(value is INVALID for value in settings):
        return
    sections = [("checkpoint", config.checkpoint)]
    if train.early_stopping is not None and train.early_stopping is not INVALID:
        sections.append(("train.early_stopping", train.early_stopping))
    for path, section in sections:
        if section.monitor is INVALID:
            continue
        problem = monitor_problem(section.monitor, task, *settings)
        if problem:
            errors.append(f"{path}.monitor: {problem}")
        elif section.mode in ("min", "max"):
            metric = resolve_monitor(section.monitor, "auto", task)[0]
            if section.mode != mode_of(metric):
                errors.append(f"{path}.mode: {metric} is {direction(metric)}, so the mode is "
                              f"{mode_of(metric)} (or auto), got {section.mode}")


def check_schedule_floor(config: Config, errors: list[str]) -> None:
    """A schedule's floor (``min_lr``) lies below the optimizer's rate: above it, cosine
    annealing would raise the rate it should lower, and plateau would start there."""
    if config.schedule is None or INVALID in (config.schedule, config.optimizer):
        return
    try:
        base_lr = OPTIMIZERS.create(config.optimizer).base_lr
        floor = SCHEDULES.create(config.schedule).floor
    except (ValueError, TypeError):  # reported by the checks of those sections
        return
    if floor > base_lr:
        nested = isinstance(config.schedule, dict) and "after" in config.schedule
        where = "schedule.after.min_lr" if nested else "schedule.min_lr"
        errors.append(f"{where}: {floor:g} is above optimizer.lr {base_lr:g}, so the "
                      f"schedule would raise the rate; set min_lr below lr")


# -- the public entry points ----------------------------------------------------------
def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read, override and validate a train config; one ConfigError reports every mistake
    of the overrides and of the resulting config together."""
    raw, duplicates = read_yaml_reporting(path)
    raw, errors = overridden(raw, overrides)
    errors = duplicates + errors
    try:
        config = validate(raw)
    except ConfigError as error:
        errors.extend(error.errors)
    if errors:
        raise ConfigError(errors)
    return config


def load_saved_config(path: str | Path) -> Config:
    """The config a run folder keeps: ``load_config``, with every mistake naming the
    file, which no one named on the command line (a config written by an earlier
    version may break a rule added since; the file can be edited)."""
    try:
        return load_config(path)
    except ConfigError as error:
        raise ConfigError([line if line.startswith(str(path)) else f"{path}: {line}"
                           for line in error.errors]) from None


def config_to_dict(config: Config) -> dict:
    """The fully resolved config (every default filled in) as plain dicts and lists."""
    return dataclasses.asdict(config)


def dump_config(config: Config) -> str:
    """YAML text of ``config_to_dict(config)``, in schema order; ``load_config`` reads it
    back to an equal Config."""
    return yaml.dump(config_to_dict(config), Dumper=ConfigDumper, sort_keys=False,
                     default_flow_style=None, allow_unicode=True)
