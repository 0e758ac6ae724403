"""The table of layer exporters, and how a chain of layers becomes a chain of ONNX nodes.

An exporter writes one layer, in inference mode, as ONNX nodes; it is found by the name
the layer is registered under, so a layer added later exports once its exporter is
registered beside it:

```python
from dl_cli.export import EXPORTERS

@EXPORTERS.register("scale")                  # the layer's registered name
def scale(graph, layer, x, in_shape):         # x: the name of the input (N, *in_shape)
    return graph.node("Mul", x, graph.constant(layer.params["s"], "s"))
```

``in_shape`` is the layer's input shape without the batch axis, as ``build`` saw it; the
exporter returns the name of its output. A layer whose name has no exporter makes the
whole export fail, naming the layer by its config key (``model.layers.3``) or, in a model
built without one, by its position (``layer 3``, ``layer 2.body.0`` inside a block).
"""

from __future__ import annotations

from ..nn.chain import Chain
from ..nn.layer import Layer
from ..registry import Registry
from .graph import ExportError, OnnxGraph

EXPORTERS = Registry("ONNX exporter")


def export_layer(graph: OnnxGraph, layer: Layer, x: str, in_shape: tuple[int, ...],
                 key: str) -> str:
    """The nodes of one layer reading ``x``; ``key`` names the layer if it cannot export."""
    name = layer.registered_name
    if name not in EXPORTERS:
        raise ExportError(f"{key} ({name}) cannot be exported to ONNX: no exporter is "
                          f"registered for '{name}'; layers that export: "
                          f"{', '.join(EXPORTERS.names())}")
    return EXPORTERS.get(name)(graph, layer, x, tuple(in_shape))


def export_chain(graph: OnnxGraph, chain: Chain, x: str) -> str:
    """The layers of a built chain one after the other, each in its own scope (its index)."""
    for i, (layer, (in_shape, _)) in enumerate(zip(chain.layers, chain.shapes)):
        with graph.scope(str(i)):
            key = f"{chain.path}.{i}" if chain.path else f"layer {graph.path}"
            x = export_layer(graph, layer, x, in_shape, key)
    return x
