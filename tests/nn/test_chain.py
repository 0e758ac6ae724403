"""A chain names the layer that cannot take its input: by its config key path, or by
its positions in the chains around it."""

import pytest

from dl_cli.nn import Model, ShapeError


def test_shape_error_names_the_layer_in_a_model():
    with pytest.raises(ShapeError, match=r"layer 1 \(maxpool\) with input shape \(4, 5, 5\)"):
        Model([{"type": "conv2d", "filters": 4, "kernel": 3, "pad": 1},
               {"type": "maxpool", "pool": 6}], in_shape=(1, 5, 5))


# -- key paths in build errors ----------------------------------------------------------
# conv2d cannot take the (4,) features the first affine layer gives: at the top, in a
# residual body, in a residual inside a concat branch inside a residual body
MISFIT = {"type": "conv2d", "filters": 2, "kernel": 3}
NESTED_MISFIT = [{"type": "affine", "units": 4}, {"type": "residual", "layers": [
    "relu", {"type": "concat", "branches": [[{"type": "affine", "units": 2}],
                                            [{"type": "residual", "layers": [MISFIT]}]]}]}]


@pytest.mark.parametrize("layers,key,name", [
    ([{"type": "affine", "units": 4}, MISFIT], "model.layers.1", "conv2d"),
    ([{"type": "affine", "units": 4}, {"type": "residual", "layers": ["relu", MISFIT]}],
     "model.layers.1.layers.1", "conv2d"),
    (NESTED_MISFIT, "model.layers.1.layers.1.branches.1.0.layers.0", "conv2d"),
    # the block's own refusal names the block
    ([{"type": "affine", "units": 4},
      {"type": "residual", "projection": "none", "layers": [{"type": "affine", "units": 3}]}],
     "model.layers.1", "residual"),
])
def test_a_model_with_a_key_path_names_the_misfit_layer_by_its_key(layers, key, name):
    with pytest.raises(ShapeError) as error:
        Model(layers, in_shape=(2,), path="model.layers")
    assert str(error.value).startswith(f"{key} ({name}) with input shape (4): ")
    assert error.value.key == key


def test_a_model_without_a_key_path_names_the_misfit_layer_by_positions():
    with pytest.raises(ShapeError) as error:
        Model(NESTED_MISFIT, in_shape=(2,))
    assert str(error.value).startswith(
        "layer 1 (residual) with input shape (4): body: layer 1 (concat) with input shape "
        "(4): branch 1: layer 0 (residual) with input shape (4): body: layer 0 (conv2d) "
        "with input shape (4): conv2d needs images")
    assert error.value.key is None
