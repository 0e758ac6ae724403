"""What a run's model reads and what its outputs mean: everything needed to score raw
inputs, kept in every checkpoint beside the parameters.

```python
inputs = Inputs.from_splits(splits)            # as training fitted them
arrays = inputs.arrays()                        # checkpoint entries (plain arrays)
inputs = Inputs.from_checkpoint(state, cfg.data.preprocess, path)   # None: an older checkpoint
X = inputs.prepare(X_raw)                       # the run's dtype, then its fitted steps
```

A checkpoint holds them as

```
inputs                       JSON: task, class_names, shape, dtype, preprocess (step
                             names, in order), vocab
preprocess/<i>/<statistic>   float64: the statistics step i learned on the training
                             split (``mean``, ``std``, ``low``, ``span``, ``basis``, ...)
```

- ``task``: the data's, ``classification`` or ``regression``.
- ``class_names``: the name of class i, where the data has names (a text model's are
  its vocabulary); null without them, the labels being the class indices 0..K-1.
- ``shape``, ``dtype``: one raw sample, before preprocessing, and the dtype the model
  reads it in (``float32``, ``float64``, or ``int64`` token ids).
- ``vocab``: for token sequences, the string each token id stands for.

The steps are rebuilt from the config's specs (their options, such as PCA's ``eps``)
with the stored statistics, never fitted again; a step the checkpoint does not match
is a RunError naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .registry import PREPROCESSORS, Registry
from .storage import RunError

DTYPES = ("float32", "float64", "int64")
TASKS = ("classification", "regression")


@dataclass
class Inputs:
    """How a run's model takes raw samples, and the names of its classes."""

    task: str
    shape: tuple[int, ...]
    dtype: str
    class_names: list[str] | None = None
    steps: list = field(default_factory=list)
    vocab: list[str] | None = None

    @classmethod
    def from_splits(cls, splits) -> "Inputs":
        """What ``data.load`` (or a fold's split) learned while preparing a run's data."""
        info = splits.info
        names = None
        if splits.task == "classification":
            names = info.get("class_names") or info.get("vocab")
        return cls(task=splits.task, shape=tuple(splits.raw_shape),
                   dtype=str(splits.train.X.dtype), class_names=list(names) if names else None,
                   steps=list(splits.steps), vocab=info.get("vocab"))

    @property
    def takes_tokens(self) -> bool:
        return self.dtype == "int64"

    def prepare(self, X: np.ndarray) -> np.ndarray:
        """Raw samples ``(N, *shape)`` as the model reads them: in the run's dtype, then
        through every fitted step, in order."""
        X = np.asarray(X).astype(self.dtype, copy=False)
        for step in self.steps:
            X = step.transform(X)
        return X

    @property
    def model_shape(self) -> tuple[int, ...]:
        """One sample's shape after the steps: the model's input shape."""
        return tuple(self.prepare(np.zeros((1, *self.shape), self.dtype)).shape[1:])

    def arrays(self) -> dict[str, np.ndarray]:
        """The checkpoint entries: ``inputs`` (JSON) and every step's statistics."""
        record = {"task": self.task, "class_names": self.class_names, "shape": list(self.shape),
                  "dtype": self.dtype, "vocab": self.vocab,
                  "preprocess": [step.registered_name for step in self.steps]}
        arrays = {"inputs": np.array(json.dumps(record))}
        for i, step in enumerate(self.steps):
            for name, value in step.fitted().items():
                arrays[f"preprocess/{i}/{name}"] = np.asarray(value, dtype=np.float64)
        return arrays

    @classmethod
    def from_checkpoint(cls, state: dict, specs: list, source) -> "Inputs | None":
        """The inputs an unpacked checkpoint (``checkpoints.unpack_checkpoint``) records,
        with steps rebuilt from ``specs`` (the config's ``data.preprocess``); None for a
        checkpoint written before checkpoints held them. RunError naming ``source``
        when the record is damaged or does not match the specs."""
        if state.get("inputs") is None:
            return None
        try:
            record = json.loads(state["inputs"])
        except ValueError as error:
            raise RunError(f"{source}: checkpoint 'inputs' is not JSON ({error})") from None
        problem = record_problem(record)
        if problem:
            raise RunError(f"{source}: checkpoint 'inputs': {problem}")
        names = [Registry.split_spec(spec)[0] for spec in specs]
        if record["preprocess"] != names:
            raise RunError(f"{source}: the checkpoint's preprocessing "
                           f"({', '.join(record['preprocess']) or 'none'}) is not the config's "
                           f"data.preprocess ({', '.join(names) or 'none'})")
        steps = []
        for i, spec in enumerate(specs):
            statistics = {key.partition("/")[2]: value for key, value in state["preprocess"].items()
                          if key.partition("/")[0] == str(i)}
            try:
                steps.append(PREPROCESSORS.create(spec).restore(statistics))
            except ValueError as error:
                raise RunError(f"{source}: data.preprocess.{i}: {error}") from None
        return cls(task=record["task"], shape=tuple(record["shape"]), dtype=record["dtype"],
                   class_names=record["class_names"], steps=steps, vocab=record["vocab"])


def strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def record_problem(record) -> str | None:
    """What is wrong with a checkpoint's ``inputs`` record, or None."""
    if not isinstance(record, dict):
        return f"expected an object, got a JSON {type(record).__name__}"
    checks = {
        "task": (lambda v: v in TASKS, f"one of {', '.join(TASKS)}"),
        "shape": (lambda v: isinstance(v, list) and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in v),
            "a list of positive integers"),
        "dtype": (lambda v: v in DTYPES, f"one of {', '.join(DTYPES)}"),
        "class_names": (lambda v: v is None or strings(v) and v, "a list of strings or null"),
        "vocab": (lambda v: v is None or strings(v) and v, "a list of strings or null"),
        "preprocess": (strings, "a list of step names"),
    }
    for key, (fits, kind) in checks.items():
        if key not in record:
            return f"no {key!r}"
        if not fits(record[key]):
            return f"{key!r} is {record[key]!r}, expected {kind}"
    return None
