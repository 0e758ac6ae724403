"""How deep the files dl reads may nest: one bound for every YAML and JSON document.

A config nests a dozen levels at most (``model.layers.2.layers.0.init``), and dl's own
JSON files (``summary.json``, ``metrics.jsonl``, checkpoint meta, ``vocab.json``,
``ledger.jsonl``) fewer. Python's parsers recurse once per level, so a document nested a
few thousand deep (``[[[[...]]]]``) would end in a ``RecursionError`` deep inside them,
or later, in whatever walks the value. Every document is held to ``MAX_DEPTH`` levels
instead, and one that goes deeper is refused with the place where it does.

```python
value = json_value(line)      # json.loads, or NestingError("nested deeper than 100 levels (column 101)")
```
(YAML: ``config.yaml12.ConfigLoader`` counts the levels as it composes the document.)
"""

from __future__ import annotations

import json
import re

MAX_DEPTH = 100

# a JSON string (skipped whole: brackets inside it do not nest) or a bracket
JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class NestingError(ValueError):
    """A document nested deeper than ``MAX_DEPTH`` levels; the message says where."""


def too_deep(where: str) -> NestingError:
    return NestingError(f"nested deeper than {MAX_DEPTH} levels ({where}); dl reads no "
                        f"document nested that deep")


def json_value(text: str):
    """``json.loads(text)``, refusing (NestingError) a document that nests deeper than
    ``MAX_DEPTH`` before parsing it. Costs one ``str.count`` unless the text holds more
    than ``MAX_DEPTH`` opening brackets."""
    if text.count("[") + text.count("{") > MAX_DEPTH:
        depth = 0
        for token in JSON_TOKENS.finditer(text):
            bracket = token.group()
            if bracket in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    line = text.count("\n", 0, token.start()) + 1
                    column = token.start() - text.rfind("\n", 0, token.start())
                    where = f"column {column}" if "\n" not in text else f"line {line}, column {column}"
                    raise too_deep(where)
            elif bracket in "]}":
                depth -= 1
    return json.loads(text)
