"""Plugins: a config's own modules (layers, losses, data sets, ...), imported before
anything in the config is checked or built.

```yaml
plugins: [my_layers, plugins/my_layers.py]   # importable modules, or .py files
```

A plugin registers what it adds as the built-in modules do (``@LAYERS.register("swish")``),
so the config names it like any other. A module name is imported as Python imports it
(installed, or on ``PYTHONPATH``); a ``.py`` path is relative to the config that names
it and is kept as an absolute path in the resolved config (a run folder's config.yaml),
so that the run finds it again from any folder. Each entry is imported once per process.

Code runs only where the user asked for it. A config's plugins are imported when that
config is read to train, check or sweep it: its author is the one running it. A run
folder's config.yaml is different, since run folders travel: ``waiting`` lists what
reading it would import that is not imported yet, and ``config.load_saved_config``
refuses such a config unless told to allow it (``--allow-plugins``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

IMPORTED: dict[str, object] = {}  # entry as the resolved config names it → its module


class PluginError(ValueError):
    """A plugin cannot be imported; the message names it."""


def is_file(entry: str) -> bool:
    return entry.endswith(".py")


def anchored(raw, folder: str | Path):
    """A config's raw mapping with each relative ``.py`` plugin path made absolute from
    ``folder`` (the config's); anything else as it is, for validation to judge."""
    entries = raw.get("plugins") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        return raw
    absolute = [str((Path(folder) / entry).resolve()) if isinstance(entry, str)
                and is_file(entry) and not Path(entry).is_absolute() else entry
                for entry in entries]
    return {**raw, "plugins": absolute}


def entry_problem(entry) -> str | None:
    """Why ``entry`` names neither a module nor a .py file, or None."""
    if not isinstance(entry, str) or not entry:
        return f"expected a module name (my_layers) or a .py file, got {entry!r}"
    if not is_file(entry) and not all(part.isidentifier() for part in entry.split(".")):
        return (f"{entry!r} is not a module name (dotted Python names, such as "
                f"my_package.layers) nor a .py file")
    return None


def import_file(path: Path):
    """The module of a ``.py`` file, under a name of its own (``dl_plugin_<stem>_<hash of
    its path>``), so that two files of one name stay two modules."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    name = f"dl_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_plugin(entry: str) -> None:
    """Import one plugin (once per process); PluginError naming it when it fails."""
    if entry in IMPORTED:
        return
    if is_file(entry) and not Path(entry).is_file():
        raise PluginError(f"plugin {entry}: no such file")
    try:
        module = import_file(Path(entry)) if is_file(entry) else importlib.import_module(entry)
    except Exception as error:  # whatever the plugin's own code raises
        raise PluginError(f"plugin {entry} cannot be imported: {type(error).__name__}: "
                          f"{error}") from error
    IMPORTED[entry] = module


def import_all(value) -> tuple[list[str], list[str]]:
    """Import every entry of a config's ``plugins`` (a list): the entries, ``.py`` paths
    made absolute (a relative one, which no config file anchored, from the current
    folder), and the problems, each starting with its index (``"1: ..."``)."""
    if not isinstance(value, list):
        return [], [f"expected a list of module names or .py files, got {value!r}"]
    entries, problems = [], []
    for i, entry in enumerate(value):
        problem = entry_problem(entry)
        if problem is None:
            if is_file(entry):
                entry = str(Path(entry).resolve())
            try:
                import_plugin(entry)
            except PluginError as error:
                problem = str(error)
        if problem is not None:
            problems.append(f"{i}: {problem}")
        entries.append(entry)
    return entries, problems


def waiting(raw) -> list[str]:
    """The plugins a config's raw mapping names that this process has not imported."""
    entries = raw.get("plugins") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        return []
    return [str(entry) for entry in entries if entry not in IMPORTED]


def refusal(source, entries: list[str]) -> str:
    """Why a run folder's config is not read: the code it would import."""
    return (f"{source} names plugins, code that reading this run would import: "
            f"{', '.join(entries)}; dl imports a run folder's plugins only when asked: add "
            f"--allow-plugins if you trust them (allow_plugins=True in Python)")
