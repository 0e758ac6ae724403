"""The model: its dtype, and the gradients of its regularized loss in eval mode."""

import numpy as np

from dl_cli import gradcheck
from dl_cli.nn import Model


def test_a_float32_model_casts_integer_features_but_not_token_ids():
    features = np.arange(12).reshape(4, 3)  # int64 features (counts, pixel levels)
    mlp = Model([{"type": "affine", "units": 2}], (3,), dtype="float32")
    _, grads = mlp.loss(features, np.array([0, 1, 0, 1]))
    assert mlp.forward(features).dtype == np.float32 and grads["0.W"].dtype == np.float32
    tokens = Model([{"type": "embedding", "vocab": 12, "dim": 2}, {"type": "temporal_affine",
                    "units": 3}], (3,), loss="temporal_softmax_cross_entropy", dtype="float32")
    assert tokens.forward(features).dtype == np.float32  # the ids were looked up, not cast


def test_model_eval_loss_gradients_match_centered_differences():
    # Model.loss(train=False) is public: its gradients are those of the eval-mode loss,
    # also right after a training step on a batch of the same size.
    model = Model([{"type": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "pad": 1}, "relu",
                   {"type": "maxpool", "pool": 2},
                   {"type": "affine", "units": 3}], in_shape=(2, 4, 6), dtype="float64", l2=0.1)
    rng = np.random.default_rng(16)
    model.loss(rng.standard_normal((3, 2, 4, 6)), rng.integers(0, 3, 3), train=True)
    x, y = rng.standard_normal((3, 2, 4, 6)), rng.integers(0, 3, 3)
    _, grads = model.loss(x, y, train=False)
    grads = {name: np.array(grad) for name, grad in grads.items()}
    for name, param in model.params.items():
        numeric = gradcheck.numeric_grad(lambda: model.loss(x, y, train=False)[0], param,
                                         np.arange(param.size))
        assert gradcheck.rel_error(grads[name], numeric) < gradcheck.TOLERANCE, name
