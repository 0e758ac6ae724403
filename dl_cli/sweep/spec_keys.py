"""The keys of a sweep spec that hold more than one value, each read by a function of its
own that records every mistake: ``metric`` (a name, or ``{name, goal}``), ``params``
(dotted config keys to domains), ``variants`` (named sets of changes) and ``report``
(the options of ``dl report``). ``sweep.spec`` reads the others through the schema.
"""

from __future__ import annotations

from typing import Any

from ..checks import Problems, Rule, describe, is_number, said
from ..metrics import direction, mode_of
from ..registry import did_you_mean
from ..schema import MONITORS, STUDIES, is_folder_name
from .domains import Domain, is_plain, parse_domain

METRICS = tuple(m for m in MONITORS if m != "auto")


def named(value: Any) -> str:
    """A name as written ('inits'); anything else described with its kind."""
    return repr(value) if isinstance(value, str) else describe(value)


GOALS = Rule("max or min", lambda v: v in ("max", "min"))
REPORT_RULES = {  # the options of dl report, by key
    "study": said(lambda v: v in STUDIES, lambda v: f"unknown study {named(v)}"
                  f"{did_you_mean(v, STUDIES)}; allowed: {', '.join(STUDIES)}"),
    "target": Rule("a number", is_number),
    "near_zero": Rule("a number > 0", lambda v: is_number(v) and v > 0),
}


def parse_metric(raw: Any, problems: Problems) -> tuple[str | None, str | None]:
    if raw is None:
        return None, None
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        problems.add("metric", f"expected {{name: val/acc, goal: max}}, got {describe(raw)}")
        return "val/acc", "max"
    for key in raw:
        if key not in ("name", "goal"):
            problems.unknown(f"metric.{key}", key, ("name", "goal"))
    name = raw.get("name", "val/acc")
    if name not in METRICS:
        problems.add("metric.name", f"unknown metric {named(name)}{did_you_mean(name, METRICS)}; "
                                    f"allowed: {', '.join(METRICS)}")
        return "val/acc", "max"
    goal = raw.get("goal", mode_of(name))
    if problems.check("metric.goal", goal, GOALS) and goal != mode_of(name):
        problems.add("metric.goal", f"{name} is {direction(name)}, so the goal is "
                                    f"{mode_of(name)} (or leave it out), got {describe(goal)}")
    return name, goal


def is_dotted(path: Any) -> bool:
    return isinstance(path, str) and bool(path) and "" not in path.split(".")


def parse_params(raw: Any, problems: Problems, required: bool = True) -> dict[str, Domain]:
    if raw is None and not required:
        return {}
    if not isinstance(raw, dict) or (required and not raw):
        problems.add("params", f"expected a mapping of dotted config keys to domains "
                               f"(optimizer.lr: {{loguniform: [1.0e-4, 1.0e-1]}}), got {describe(raw)}")
        return {}
    params = {}
    for path, domain_raw in raw.items():
        if not is_dotted(path):
            problems.add("params", f"{path!r} is not a dotted key such as model.layers.0.units")
            continue
        domain = parse_domain(domain_raw, f"params.{path}", problems)
        if domain is not None:
            params[path] = domain
    return params


def parse_variants(raw: Any, problems: Problems) -> dict[str, dict] | None:
    """``{name: {dotted.key: value}}``, names usable in folder and file names."""
    if raw is None:
        return None
    example = "(relu: {model.layers.1: relu}, tanh: {model.layers.1: tanh})"
    if not isinstance(raw, dict) or not raw:
        problems.add("variants", f"expected a mapping of variant names to changes {example}, "
                                 f"got {describe(raw)}")
        return None
    variants = {}
    for name, changes in raw.items():
        if not is_folder_name(name):
            problems.add("variants", f"{name!r} is not a name of letters, digits and ._-")
        elif not isinstance(changes, dict) or not changes:
            problems.add(f"variants.{name}", f"expected a mapping of dotted config keys to "
                                             f"values {example}, got {describe(changes)}")
        elif bad := [p for p in changes if not is_dotted(p)]:
            problems.add(f"variants.{name}", f"{bad[0]!r} is not a dotted key such as "
                                             f"model.layers.0.units")
        elif bad := [p for p, value in changes.items() if not is_plain(value)]:
            problems.add(f"variants.{name}.{bad[0]}", f"expected numbers, strings, lists or "
                         f"mappings, got {describe(changes[bad[0]])}; quote a date to make it a string")
        else:
            variants[name] = dict(changes)
    return variants


def parse_report(raw: Any, problems: Problems) -> dict:
    """The options of ``dl report``: which study's figures, a target metric, the size
    below which a weight counts as zero."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add("report", f"expected a mapping such as {{study: init}}, got {describe(raw)}")
        return {}
    for key, value in raw.items():
        if key not in REPORT_RULES:
            problems.unknown(f"report.{key}", key, REPORT_RULES)
        else:
            problems.check(f"report.{key}", value, REPORT_RULES[key])
    return dict(raw)
