"""A 1-2-1 sigmoid network, two samples, one SGD step and one Adam step, worked by hand.

The numbers are chosen so that every intermediate of the SGD step is a short
binary fraction: the step is exact in float32 and float64, so it is asserted
with ``==``, in both engines and both numerics profiles.
"""

import math

import numpy as np
import pytest

import gdcore

X = [[1.0], [2.0]]
Y = [[1.0], [0.0]]
W1, B1 = [[0.0, 0.0]], [0.0, 0.0]
W2, B2 = [[0.5], [-0.25]], [0.25]

# Forward:   z1 = x W1 + b1 = 0 for both samples and units, so h = sigmoid(0) = 0.5 everywhere.
#            y_pred = h W2 + b2 = 0.5*0.5 + 0.5*(-0.25) + 0.25 = 0.375 for both samples.
# Loss:      e = y - y_pred = [0.625, -0.375];  MSE = (0.390625 + 0.140625) / 2 = 0.265625
# dL/dy_pred = -(fl(1/B) * 2e) = -(0.5 * [1.25, -0.75]) = [-0.625, 0.375]
# grad W2  = h^T dy  = [0.5*(-0.625) + 0.5*0.375] per unit = [[-0.125], [-0.125]]
# grad b2  = sum dy  = -0.25
# dh       = dy W2^T = sample 1: -0.625*[0.5, -0.25] = [-0.3125, 0.15625]
#                      sample 2:  0.375*[0.5, -0.25] = [ 0.1875, -0.09375]
# dz1      = dh * h(1-h) = dh * 0.25 = [[-0.078125, 0.0390625], [0.046875, -0.0234375]]
# grad W1  = x^T dz1 = 1*[-0.078125, 0.0390625] + 2*[0.046875, -0.0234375] = [[0.015625, -0.0078125]]
# grad b1  = sum dz1 = [-0.03125, 0.015625]
LOSS = 0.265625
GRADS = [np.array([[0.015625, -0.0078125]]), np.array([-0.03125, 0.015625]), np.array([[-0.125], [-0.125]]), np.array([-0.25])]
# SGD, learning rate 0.5: w - 0.5 g
SGD_AFTER = [np.array([[-0.0078125, 0.00390625]]), np.array([0.015625, -0.0078125]), np.array([[0.5625], [-0.1875]]), np.array([0.375])]

CASES = [(dtype, engine, numerics) for dtype in ("float32", "float64") for engine in ("numpy", "numba") for numerics in ("plain", "tensorflow")]


def _model(dtype, engine, numerics, optimizer):
    model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(2, activation="sigmoid"), gdcore.layers.Dense(1)],
                              dtype=dtype, engine=engine, numerics=numerics)
    model.set_weights([W1, B1, W2, B2])
    model.compile(optimizer=optimizer, loss="mse")
    return model


@pytest.mark.parametrize("dtype, engine, numerics", CASES)
def test_one_sgd_step_exact(dtype, engine, numerics):
    model = _model(dtype, engine, numerics, gdcore.optimizers.SGD(learning_rate=0.5))
    history = model.fit(X, Y, batch_size=2, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"] == [LOSS]
    for got, expected in zip(model.get_weights(), SGD_AFTER):
        assert got.dtype == np.dtype(dtype)
        assert np.array_equal(got, expected.astype(dtype)), (got, expected)


def _adam_by_hand(weights, grads, dtype):
    """Keras's Adam, first step (t = 1), one scalar at a time with a calculator's operations."""
    f = np.dtype(dtype).type
    learning_rate, beta_1, beta_2, epsilon = f(0.5), f(np.float32(0.9)), f(np.float32(0.999)), f(1e-7)
    alpha = learning_rate * f(math.sqrt(f(1) - beta_2)) / (f(1) - beta_1)  # 0.5 * sqrt(0.001) / 0.1 ~= 0.158114
    after = []
    for weight, grad in zip(weights, grads):
        out = np.empty(np.shape(weight), dtype=dtype)
        for index, (w, g) in enumerate(zip(np.ravel(weight), np.ravel(grad))):
            w, g = f(w), f(g)
            m = f(0) + (g - f(0)) * f(1 - 0.9)  # m = 0.1 g
            v = f(0) + (g * g - f(0)) * f(1 - 0.999)  # v = 0.001 g^2
            # sqrt(v) = 0.0316 |g|, so the step is ~ alpha * 0.1 g / (0.0316 |g|) = learning_rate * sign(g)
            out.flat[index] = w - (m * alpha) / (f(math.sqrt(v)) + epsilon)
        after.append(out)
    return after


@pytest.mark.parametrize("dtype, engine, numerics", CASES)
def test_one_adam_step(dtype, engine, numerics):
    model = _model(dtype, engine, numerics, gdcore.optimizers.Adam(learning_rate=0.5))
    history = model.fit(X, Y, batch_size=2, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"] == [LOSS]
    expected = _adam_by_hand([W1, B1, W2, B2], GRADS, dtype)
    for got, want in zip(model.get_weights(), expected):
        assert np.array_equal(got, want), (got, want)
    # Each parameter moved by almost learning_rate against its gradient's sign (epsilon-hat shortens small steps).
    for got, start, grad in zip(model.get_weights(), [W1, B1, W2, B2], GRADS):
        np.testing.assert_allclose(got - np.asarray(start), -0.5 * np.sign(grad), rtol=1e-3)


def test_gradients_of_the_readable_engine_match_the_hand_values():
    from gdcore import _numpy_engine, losses

    model = _model("float64", "numpy", "plain", "sgd")
    x, y = np.array(X), np.array(Y)
    outputs = _numpy_engine.forward(model.profile, x, model.params, model.layout)
    np.testing.assert_array_equal(outputs[1], np.full((2, 2), 0.5))
    np.testing.assert_array_equal(outputs[2], [[0.375], [0.375]])
    assert losses.batch_loss(losses.MEAN_SQUARED_ERROR, model.profile, y, outputs[2]) == LOSS
    output_grad = losses.output_grad(losses.MEAN_SQUARED_ERROR, y, outputs[2])
    np.testing.assert_array_equal(output_grad, [[-0.625], [0.375]])
    grads = _numpy_engine.backward(model.profile, outputs, model.params, model.layout, output_grad)
    np.testing.assert_array_equal(grads, np.concatenate([g.ravel() for g in GRADS]))
