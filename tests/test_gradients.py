"""Central-difference checks of every analytic gradient, in float64."""

import numpy as np
import pytest

from gdcore import _numpy_engine, activations, losses
from conftest import build_model

SHAPES = {
    "linear neuron 1-1": dict(hidden=None, n_features=1),
    "1-8-1": dict(hidden=[8], n_features=1),
    "3-4-1": dict(hidden=[4], n_features=3),
    "2-3-2-1": dict(hidden=[3, 2], n_features=2),
}


@pytest.mark.parametrize("loss_name", [loss.name for loss in losses.LOSSES])  # every table entry
@pytest.mark.parametrize("activation", [activation.name for activation in activations.ACTIVATIONS if activation.by_name])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_backward_matches_central_differences(shape, activation, loss_name):
    if shape.startswith("linear") and activation != "linear":
        pytest.skip("the linear neuron has no hidden activation")
    loss = losses.get(loss_name)
    if loss.targets in ("one_hot", "sparse"):
        pytest.skip("a class loss needs several outputs: tests/test_classification.py checks a softmax network")
    spec = SHAPES[shape]
    model = build_model(activation=activation, dtype="float64", engine="numpy", **spec)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, spec["n_features"]))
    y = rng.normal(size=(7, 1)) if loss.targets == "values" else (rng.random((7, 1)) > 0.5).astype(np.float64)
    profile, params, layout = model.profile, model.params, model.layout

    def loss_at(values):
        return losses.batch_loss(loss, profile, y, _numpy_engine.forward(profile, x, values, layout)[-1])

    outputs = _numpy_engine.forward(profile, x, params, layout)
    if loss.targets == "binary" and not loss.from_logits and not np.all(np.abs(outputs[-1] - 0.5) < 0.499):
        pytest.skip("a linear output at or beyond the probability clip: the loss has a kink there, no derivative")
    analytic = _numpy_engine.backward(profile, outputs, params, layout, losses.output_grad(loss, y, outputs[-1]))
    step = 1e-6
    numeric = np.empty_like(params)
    for index in range(params.size):
        plus, minus = params.copy(), params.copy()
        plus[index] += step
        minus[index] -= step
        numeric[index] = (loss_at(plus) - loss_at(minus)) / (2 * step)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
