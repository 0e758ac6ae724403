"""Exporters of the blocks that hold layers of their own: residual and concat.

A block's sub-layers are exported in scopes named like their parameters
(``3/body/0/...``, ``3/branches.1/2/...``), through the same table as top-level layers,
so a block holding a layer without an exporter is refused, naming that layer.
"""

from __future__ import annotations

from .exporters import EXPORTERS, export_chain, export_layer


@EXPORTERS.register("residual")
def residual(graph, layer, x, in_shape):
    """``out = F(x) + shortcut(x)``: the body's nodes, the shortcut's (the identity, or
    its projection: an affine layer or a convolution), then ``Add``."""
    with graph.scope("body"):
        body = export_chain(graph, layer.body, x)
    shortcut = x
    if layer.shortcut is not None:
        with graph.scope("shortcut"):
            shortcut = export_layer(graph, layer.shortcut, x, in_shape, f"layer {graph.path}")
    return graph.node("Add", body, shortcut)


@EXPORTERS.register("concat")
def concat(graph, layer, x, in_shape):
    """Every branch on x, outputs joined along axis 1 (channels or features) by
    ``Concat``; an empty branch passes x itself."""
    outputs = []
    for k, branch in enumerate(layer.branches):
        with graph.scope(f"branches.{k}"):
            outputs.append(export_chain(graph, branch, x))
    return graph.node("Concat", *outputs, axis=1)
