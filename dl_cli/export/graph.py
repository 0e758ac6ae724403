"""A small builder for ONNX graphs: nodes, float32 constants and names that never clash.

```python
graph = OnnxGraph()
y = graph.node("Gemm", x, graph.constant(W, "W"), graph.constant(b, "b"))
with graph.scope("3"):             # nodes and constants of layer 3 are named "3/..."
    z = graph.node("Relu", y)
```

Every floating-point constant is stored as float32, whatever the model's dtype: the
exported graph computes in float32 (a float64 model loses the digits beyond float32's
seven). Integer constants (shapes, axes, token ids) are int64, as ONNX wants them.

The ``onnx`` package is an optional extra (``pip install 'dl-cli[onnx]'``); importing
this module without it is an ImportError that says so.
"""

from __future__ import annotations

import contextlib

import numpy as np

try:
    import onnx
    from onnx import helper, numpy_helper
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("ONNX export needs the onnx package: pip install 'dl-cli[onnx]'") from error


class ExportError(ValueError):
    """A model or preprocessing step that cannot be written as an ONNX graph."""


class OnnxGraph:
    """Nodes and initializers (constants) in the order they are added, each with a unique
    name made of the current scope (``"3/body/0"``) and a short stem (``"W"``, ``"Gemm"``).
    The scopes are the layer paths of the model's parameter names (``"3.body.0.W"``).
    """

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._scope: list[str] = []

    @contextlib.contextmanager
    def scope(self, name: str):
        """Names made inside start with ``name/`` (nested scopes join with ``/``)."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    @property
    def path(self) -> str:
        """The current scope as a dotted layer path: ``"3.body.0"``."""
        return ".".join(self._scope)

    def fresh(self, stem: str) -> str:
        """A name not used before: ``scope/stem``, then ``scope/stem_1``, ``scope/stem_2``."""
        base = "/".join([*self._scope, stem])
        name, k = base, 0
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def constant(self, value, stem: str) -> str:
        """An initializer holding ``value``: float32 for real numbers, int64 for integers."""
        array = np.asarray(value)
        array = array.astype(np.int64 if array.dtype.kind in "biu" else np.float32)
        name = self.fresh(stem)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, *inputs: str, outputs: int = 1, **attributes):
        """Add one ``op`` node reading ``inputs`` (``""`` for an optional input left out);
        return its output name, or a list of ``outputs`` names."""
        names = [self.fresh(op if outputs == 1 else f"{op}_out{k}") for k in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, name=self.fresh(f"{op}_node"),
                                           **attributes))
        return names[0] if outputs == 1 else names

    def output(self, op: str, *inputs: str, name: str, **attributes) -> str:
        """Add a node whose single output is the graph output ``name`` (not used before)."""
        if name in self._names:
            raise ValueError(f"the name {name!r} is taken")
        self._names.add(name)
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=self.fresh(f"{op}_node"),
                                           **attributes))
        return name

    def batch_size(self, x: str) -> str:
        """The dynamic batch size of ``x`` (its axis 0) as an int64 tensor of shape (1,)."""
        return self.node("Shape", x, start=0, end=1)

