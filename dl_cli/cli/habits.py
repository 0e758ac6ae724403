"""What people used to Hydra and Lightning CLI type, and what `dl` takes instead: a
hint in place of click's "No such option".

```
dl train c.yaml --optimizer.lr 0.1     →  optimizer.lr=0.1
dl train c.yaml -m optimizer.lr=1,2    →  dl sweep c.yaml optimizer.lr=1,2 (a grid)
```

(``+key=value``, ``++key=value`` and ``~key`` are the override grammar's:
``config.overrides``.)
"""

from __future__ import annotations

MULTIRUN = ("-m", "--multirun")


def habit_hint(args: list[str]) -> str | None:
    """The hint for the first argument that is another tool's habit, or None."""
    for i, arg in enumerate(args):
        if arg in MULTIRUN:
            return (f"{arg}: dl has no multirun flag; a grid over values is a sweep: "
                    f"dl sweep CONFIG optimizer.lr=1e-3,1e-2 model.layers.0.units=64,128 "
                    f"(every combination, in a sweep folder with results.csv)")
        name, equals, value = arg.partition("=")
        if arg.startswith("--") and "." in name:
            key = name[2:]
            if not equals:
                following = args[i + 1] if i + 1 < len(args) else ""
                value = following if following and not following.startswith("-") else "VALUE"
            return f"{name}: a config key is set as {key}={value}, not as an option"
    return None
