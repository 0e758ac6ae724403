"""YAML 1.2 for configs and sweep specs: a safe loader that reads numbers as YAML 1.2 does
and refuses what a config never holds.

``ConfigLoader`` is a ``yaml.SafeLoader`` that reads numbers by YAML 1.2's rules
(``1e-3`` is a number, ``010`` is ten), refuses duplicate keys, every tag that would build
a Python object, and aliases that expand beyond any config; each alias becomes a value of
its own. Nothing in a config runs code. ``ConfigDumper`` writes what it reads back.
``read_yaml`` reads a file's top-level mapping, ``parse_yaml`` one value (an override's);
their problems are ConfigErrors naming the file (or the override) and the line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, SequenceNode

from ..checks import ConfigError, Problems, describe, join
from ..nesting import MAX_DEPTH

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
    float, ``010`` is ten, ``1:30`` and ``1:30.5`` are strings; and that refuses a
    document nested deeper than ``nesting.MAX_DEPTH`` levels as it composes it,
    counting the levels an alias brings in (``compose_node``)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0                      # levels above the node being composed
        self.heights: dict[int, int] = {}   # node → levels from it down to its deepest leaf

    def compose_node(self, parent, index):
        alias = self.check_event(yaml.AliasEvent)
        mark = self.peek_event().start_mark
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, too_deep_here(), mark)
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if not alias:
            children = node.value if isinstance(node, SequenceNode) else \
                [child for pair in node.value for child in pair] if isinstance(node, MappingNode) else []
            # (an alias of an anchor still being composed has no height yet: a cycle,
            # which parse_yaml refuses once the document is composed)
            self.heights[id(node)] = 1 + max((self.heights.get(id(c), 0) for c in children),
                                             default=0)
        if self.depth + self.heights.get(id(node), 0) > MAX_DEPTH:  # an alias of a deep anchor
            raise yaml.composer.ComposerError(None, None, too_deep_here(), mark)
        return node

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node).replace("_", "")
        return int(text, 0) if text[:2] in ("0o", "0x") else int(text, 10)


def too_deep_here() -> str:
    return f"nested deeper than {MAX_DEPTH} levels; dl reads no document nested that deep"


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


# Python reads integers of at most 4,300 digits from text; beyond, its error advises
# sys.set_int_max_str_digits, no use to someone writing a config, and names no key.
MAX_DIGITS = 4300


def number_problem(loader: ConfigLoader, node: yaml.ScalarNode, where: str) -> str | None:
    """Why a scalar tagged as a number (``!!int``, ``!!float``, or read as one) cannot be
    one, or None; ``where``: "on line L of SOURCE"."""
    if node.tag == INT_TAG:
        digits = len(node.value.replace("_", "").lstrip("+-"))
        if digits > MAX_DIGITS:
            return (f"an integer of {digits:,} digits {where}; dl reads integers of at most "
                    f"{MAX_DIGITS:,} digits (a config's have a few)")
    try:
        loader.yaml_constructors[node.tag](loader, node)
    except ValueError:
        kind = "an integer" if node.tag == INT_TAG else "a number"
        shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
        return f"{short_tag(node.tag)} {shown!r} {where} is not {kind}"
    return None


def node_problems(loader: ConfigLoader, root: yaml.Node, source: str, root_path: str,
                  tags: Problems, duplicates: Problems) -> None:
    """Tags without a safe constructor (nothing may be built from such a document),
    numbers that cannot be read as such, and duplicate keys (the document can still be
    read, to report its other mistakes too), found before anything is built."""
    seen: set[int] = set()

    def visit(node: yaml.Node, path: str) -> None:
        if id(node) in seen:  # an alias of a node already checked
            return
        seen.add(id(node))
        line = node.start_mark.line + 1
        if node.tag not in ConfigLoader.yaml_constructors:
            tags.add(path or "top level", f"tag {short_tag(node.tag)} on line {line} of "
                                          f"{source} is not allowed; a config holds plain values only")
            return
        if node.tag in (INT_TAG, FLOAT_TAG) and isinstance(node, yaml.ScalarNode):
            problem = number_problem(loader, node, f"on line {line} of {source}")
            if problem is not None:
                tags.add(path or "top level", problem)
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
                    duplicates.add(key_path, f"duplicate key {lines} of {source}")
                else:
                    first_lines[identity] = key_line
                visit(value_node, key_path)

    visit(root, root_path)


def parse_yaml(text: str, source: str, root_path: str = "", problems: Problems | None = None) -> Any:
    """Parse one YAML document with ``ConfigLoader``; every problem becomes a ConfigError
    naming ``source`` (a file name, or the override being parsed) and the line, after
    ``root_path``, the key the document is the value of (an override's key).

    Duplicate keys leave the document readable (the last one wins): with ``problems``
    they are recorded there, for the caller to report with its other mistakes."""
    prefix = f"{root_path}: " if root_path else ""
    tags, duplicates = Problems(), Problems()
    loader = None
    try:
        loader = ConfigLoader(text)  # (its reader refuses control characters at once)
        node = loader.get_single_node()
        if node is None:
            return None
        node_problems(loader, node, source, root_path, tags, duplicates)
        if tags:
            raise ConfigError(tags + duplicates)
        size = expanded_size(node)
        if size == math.inf:
            raise ConfigError([f"{prefix}{source}: an alias stands inside its own anchor "
                               f"(&x [*x]), a value without end"])
        if size > MAX_VALUES:
            raise ConfigError([f"{prefix}{source}: its aliases expand to more than "
                               f"{MAX_VALUES:,} values; a config holds far fewer"])
        value = unshared(loader.construct_document(node))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = error.problem or "malformed YAML"
        context = f" ({error.context})" if error.context else ""
        raise ConfigError([f"{prefix}{where}: {problem}{context}"]) from None
    except yaml.reader.ReaderError as error:  # a control character, before any parsing
        line = text.count("\n", 0, error.position) + 1
        column = error.position - text.rfind("\n", 0, error.position)
        raise ConfigError([f"{prefix}{source}, line {line}, column {column}: the control "
                           f"character {chr(error.character)!r} is not allowed in YAML"]) from None
    except (yaml.YAMLError, ValueError) as error:
        raise ConfigError([f"{prefix}{source}: {error}"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    report(duplicates, problems)
    return value


def report(duplicates: Problems, problems: Problems | None) -> None:
    """Duplicate keys: added to ``problems`` when given, else raised."""
    if problems is None:
        duplicates.raise_if_any()
    else:
        problems.extend(duplicates)


def read_yaml(path: str | Path, problems: Problems | None = None) -> dict:
    """The top-level mapping of a YAML file; a missing, unreadable or malformed file, or
    one that is not a mapping, is a ConfigError; duplicate keys too, or recorded in
    ``problems`` (see ``parse_yaml``)."""
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
    duplicates = Problems()
    raw = parse_yaml(text, str(path), problems=duplicates)
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: expected a mapping of config keys at the top "
                           f"(name: ..., model: ...), got {describe(raw)}"])
    report(duplicates, problems)
    return raw
