"""Exporters of the layers that change an image's size: transposed convolution,
upsampling and global average pooling.

| layer | ONNX |
|---|---|
| conv2d_transpose | ``ConvTranspose`` with symmetric pads and ``output_padding`` (W in ONNX's layout) |
| upsample | ``Resize``: nearest (``asymmetric`` coordinates, ``floor``), or linear (``half_pixel``) |
| global_avgpool | ``GlobalAveragePool``, then ``Flatten`` to ``(N, C)`` |
"""

from __future__ import annotations

from .exporters import EXPORTERS


@EXPORTERS.register("conv2d_transpose")
def conv2d_transpose(graph, layer, x, in_shape):
    """W ``(C, F, KH, KW)`` is ONNX's ``ConvTranspose`` layout; pads ``[PH, PW, PH, PW]``
    are cut from the output, ``output_padding`` added at its end."""
    PH, PW = layer.pad_hw
    return graph.node("ConvTranspose", x, graph.constant(layer.params["W"], "W"),
                      graph.constant(layer.params["b"], "b"),
                      kernel_shape=list(layer.kernel_hw), strides=list(layer.stride_hw),
                      pads=[PH, PW, PH, PW], output_padding=list(layer.output_padding_hw))


@EXPORTERS.register("upsample")
def upsample(graph, layer, x, in_shape):
    """Scales ``[1, 1, fh, fw]``. Nearest: output i reads input ``⌊i/f⌋`` (asymmetric
    coordinates, rounded down). Bilinear: output i sits at ``(i + ½)/f − ½`` (half-pixel
    coordinates), as the layer's ``bilinear_matrix``."""
    scales = graph.constant([1.0, 1.0, *map(float, layer.factor_hw)], "scales")
    if layer.mode == "nearest":
        return graph.node("Resize", x, "", scales, mode="nearest",
                          coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return graph.node("Resize", x, "", scales, mode="linear",
                      coordinate_transformation_mode="half_pixel")


@EXPORTERS.register("global_avgpool")
def global_avgpool(graph, layer, x, in_shape):
    """The mean of each channel, ``(N, C, 1, 1)``, flattened to ``(N, C)``."""
    return graph.node("Flatten", graph.node("GlobalAveragePool", x), axis=1)
