"""Blocks that hold layers of their own: residual (ResNet) and concat (Inception)."""

from __future__ import annotations

import numpy as np

from ..checks import Rule, check_choice, require
from ..registry import LAYERS
from .chain import Chain, format_shape
from .layer import Example, Layer, ShapeError

LAYER_LIST = Rule("a list of layer specs", lambda v: isinstance(v, list))
BRANCHES = Rule("a non-empty list of lists of layer specs", lambda v: isinstance(v, list) and bool(v))


def chain_of(specs, option: str) -> Chain:
    """A chain built from a list of layer specs; ``option`` names the list in errors."""
    require(option, specs, LAYER_LIST)
    return Chain([LAYERS.create(spec) for spec in specs])


def projection_window(size_in: int, size_out: int) -> tuple[int, int]:
    """``(kernel, stride)`` of the smallest unpadded window with ``size_out`` positions on
    ``size_in``, counted as conv2d counts them: ``⌊(size_in − kernel)/stride⌋ + 1``.

    ResNet's 1×1 window, at the stride ``s = ⌈size_in/size_out⌉`` of a padded body that
    gives ``size_out`` (8 → 4 and 7 → 4: stride 2), reads the pixels ``s·i`` at the centres
    of that body's windows; it fits when its last position ``s·(size_out − 1)`` lies in
    the input. Where it does not (5 → 4), the largest stride
    ``s = ⌊(size_in − 1)/(size_out − 1)⌋`` leaves the smallest kernel that tiles the input
    exactly, ``k = size_in − s·(size_out − 1)``; and one position reads the whole input.
    """
    if size_out == 1:
        return size_in, 1
    stride = -(-size_in // size_out)
    if stride * (size_out - 1) <= size_in - 1:
        return 1, stride
    stride = (size_in - 1) // (size_out - 1)
    return size_in - stride * (size_out - 1), stride


@LAYERS.register("residual")
class Residual(Layer):
    """``out = F(x) + shortcut(x)``: the body F learns a residual over its input.

    Shapes: x ``(N, *in_shape)``, out ``(N, *out_shape)`` with ``out_shape`` the body's.
    The shortcut is the identity when the body keeps the shape; otherwise (or always, with
    ``projection: always``) a learned projection ``W_s·x`` as in ResNet: an ``affine``
    layer without bias for ``(D,)`` features; for ``(C, H, W)`` inputs an unpadded
    ``conv2d``, 1×1 with the body's stride whenever that fits (``projection_window``:
    ResNet's 1×1 stride-2 shortcut beside a k3 s2 p1 body, on even sizes too).
    ``projection: none`` insists on the identity and fails ``build`` when shapes differ.

    Backward: ``dx = dF/dx(dout) + dout`` through the identity (``+ dshortcut/dx(dout)``
    through a projection). The identity path hands ``dout`` to the input unchanged, so
    gradients reach early layers of very deep networks without vanishing.
    Parameters are named ``body.<i>.<param>`` and ``shortcut.<param>``.
    """

    projections = ("auto", "always", "none")
    examples = (
        Example({"type": "residual",
                 "layers": [{"type": "affine", "units": 4}, "tanh",
                            {"type": "affine", "units": 4}]},
                (4,)),
        Example({"type": "residual", "layers": [{"type": "affine", "units": 3}, "tanh"]}, (5,)),
        Example({"type": "residual",
                 "layers": [{"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "pad": 1},
                            "tanh",
                            {"type": "conv2d", "filters": 4, "kernel": 3, "stride": 1, "pad": 1}]},
                (2, 5, 5)),
        Example({"type": "residual",  # ResNet's downsampling block: a 1×1 stride-2 shortcut
                 "layers": [{"type": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "pad": 1},
                            "relu"]},
                (2, 6, 4)),
    )

    def __init__(self, layers: list, projection: str = "auto"):
        super().__init__()
        self.projection = check_choice("projection", projection, self.projections)
        self.body = chain_of(layers, "layers")
        if not self.body.layers:
            raise ValueError("layers must list at least one layer spec, got []")
        self.shortcut: Layer | None = None

    def config(self) -> dict:
        return {"type": self.registered_name, "layers": self.body.config(),
                "projection": self.projection}

    def configure(self, dtype, default_init) -> None:
        super().configure(dtype, default_init)
        self.body.configure(dtype, default_init)

    def children(self):
        named = [("body", self.body)]
        if self.shortcut is not None:
            named.append(("shortcut", self.shortcut))
        return named

    def place(self, key: str) -> None:
        self.body.place(f"{key}.layers")  # the body is the option ``layers`` in configs

    def build(self, in_shape, rng):
        in_shape = tuple(in_shape)
        try:
            out_shape = self.body.build(in_shape, rng)
        except ShapeError as error:
            if error.key is not None:  # it names the body's layer by its key path
                raise
            raise ShapeError(f"body: {error}") from None
        same = out_shape == in_shape
        if self.projection == "none" and not same:
            raise ShapeError(
                f"projection 'none' needs the body to keep the shape, but it maps "
                f"{format_shape(in_shape)} to {format_shape(out_shape)}"
            )
        self.shortcut = None
        if self.projection == "always" or not same:
            self.shortcut = LAYERS.create(self._projection_spec(in_shape, out_shape))
            self.shortcut.configure(self.dtype, self.default_init)
            self.shortcut.build(in_shape, rng)
        return out_shape

    @staticmethod
    def _projection_spec(in_shape, out_shape) -> dict:
        """An ``affine`` layer between feature vectors; a ``conv2d`` without padding between
        images, with the smallest kernel that maps H_in × W_in to H_out × W_out (see
        ``projection_window``): 1×1 whenever it can, as in ResNet."""
        if len(in_shape) == 1 and len(out_shape) == 1:
            return {"type": "affine", "units": out_shape[0], "bias": False}
        if len(in_shape) == 3 and len(out_shape) == 3 and all(
                1 <= o <= i for i, o in zip(in_shape[1:], out_shape[1:])):
            (kh, sh), (kw, sw) = (projection_window(i, o)
                                  for i, o in zip(in_shape[1:], out_shape[1:]))
            return {"type": "conv2d", "filters": out_shape[0],
                    "kernel": kh if kh == kw else [kh, kw],
                    "stride": sh if sh == sw else [sh, sw], "pad": 0}
        raise ShapeError(
            f"no projection maps {format_shape(in_shape)} to the body's output "
            f"{format_shape(out_shape)} (an affine layer between feature vectors, a "
            f"convolution between images that are not larger than their input)"
        )

    def forward(self, x, train=True):
        out = self.body.forward(x, train)
        return out + (x if self.shortcut is None else self.shortcut.forward(x, train))

    def backward(self, dout):
        dx = self.body.backward(dout)
        return dx + (dout if self.shortcut is None else self.shortcut.backward(dout))

    def macs(self, in_shape, out_shape):
        total = self.body.macs(in_shape, out_shape)
        if self.shortcut is not None:
            total += self.shortcut.macs(in_shape, out_shape)
        return total


@LAYERS.register("concat")
class Concat(Layer):
    """Parallel branches on the same input, outputs concatenated along axis 1.

    Shapes: x ``(N, *in_shape)``; branch k gives ``(N, C_k, *rest)``; out
    ``(N, ΣC_k, *rest)``: channels for ``(C, H, W)``, features for ``(D,)``. Every axis
    but axis 1 must agree across branches. An empty branch ``[]`` passes x through.
    Backward: split ``dout`` along axis 1 into the branches' parts and sum the input
    gradients, ``dx = Σ_k dbranch_k/dx(dout_k)``.

    This is the Inception module: 1×1, 3×3 and 5×5 convolutions (padded to keep H, W),
    with 1×1 convolutions reducing channels before the large kernels, side by side.
    Parameters are named ``branches.<k>.<i>.<param>``.
    """

    examples = (
        Example({"type": "concat",
                 "branches": [[{"type": "affine", "units": 3}],
                              [{"type": "affine", "units": 2}, "tanh"],
                              []]},
                (4,)),
        Example({"type": "concat",
                 "branches": [
                     [{"type": "conv2d", "filters": 2, "kernel": 1, "stride": 1, "pad": 0}],
                     [{"type": "conv2d", "filters": 2, "kernel": 1, "stride": 1, "pad": 0},
                      "tanh",
                      {"type": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "pad": 1}],
                     [{"type": "conv2d", "filters": 1, "kernel": 1, "stride": 1, "pad": 0},
                      "tanh",
                      {"type": "conv2d", "filters": 2, "kernel": 5, "stride": 1, "pad": 2}],
                     []]},
                (3, 5, 5)),
    )

    def __init__(self, branches: list):
        super().__init__()
        require("branches", branches, BRANCHES)
        self.branches = [chain_of(specs, f"branches[{k}]") for k, specs in enumerate(branches)]
        self.branch_shapes: list[tuple[int, ...]] = []

    def config(self) -> dict:
        return {"type": self.registered_name,
                "branches": [branch.config() for branch in self.branches]}

    def configure(self, dtype, default_init) -> None:
        super().configure(dtype, default_init)
        for branch in self.branches:
            branch.configure(dtype, default_init)

    def children(self):
        return [(f"branches.{k}", branch) for k, branch in enumerate(self.branches)]

    def place(self, key: str) -> None:
        for k, branch in enumerate(self.branches):
            branch.place(f"{key}.branches.{k}")

    def build(self, in_shape, rng):
        shapes = []
        for k, branch in enumerate(self.branches):
            try:
                shapes.append(branch.build(tuple(in_shape), rng))
            except ShapeError as error:
                if error.key is not None:  # it names the branch's layer by its key path
                    raise
                raise ShapeError(f"branch {k}: {error}") from None
        if len({(len(s), s[1:]) for s in shapes}) > 1 or not shapes[0]:
            listing = ", ".join(f"branch {k} {format_shape(s)}" for k, s in enumerate(shapes))
            raise ShapeError(
                f"branches must agree on every axis but the first (channels or features) "
                f"to be concatenated; got {listing}"
            )
        self.branch_shapes = shapes
        return (sum(s[0] for s in shapes), *shapes[0][1:])

    def forward(self, x, train=True):
        return np.concatenate([branch.forward(x, train) for branch in self.branches], axis=1)

    def backward(self, dout):
        sizes = [s[0] for s in self.branch_shapes]
        parts = np.split(dout, np.cumsum(sizes)[:-1], axis=1)
        dxs = [branch.backward(part) for branch, part in zip(self.branches, parts)]
        return sum(dxs[1:], dxs[0])

    def macs(self, in_shape, out_shape):
        return sum(branch.macs(in_shape, shape)
                   for branch, shape in zip(self.branches, self.branch_shapes))
