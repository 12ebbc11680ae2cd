"""The Numba engine is the NumPy engine compiled: same bits on every configuration."""

import numpy as np
import pytest

import gdcore
from conftest import build_model, flat_weights

OPTIMIZERS = {
    "sgd": lambda: gdcore.optimizers.SGD(learning_rate=0.01),
    "sgd-momentum": lambda: gdcore.optimizers.SGD(learning_rate=0.01, momentum=0.9),
    "sgd-nesterov": lambda: gdcore.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True),
    "adam": lambda: gdcore.optimizers.Adam(learning_rate=0.1),
    "rmsprop": lambda: gdcore.optimizers.RMSprop(learning_rate=0.01),
    "rmsprop-centered-momentum": lambda: gdcore.optimizers.RMSprop(learning_rate=0.01, centered=True, momentum=0.5),
}
CONFIGS = [
    # (hidden, activation, n_features, optimizer, loss, batch_size)
    (None, "linear", 1, "sgd", "mse", 20),
    (None, "linear", 1, "sgd", "mae", 1),
    (None, "linear", 3, "adam", "mse", 30),
    ([8], "sigmoid", 1, "adam", "mse", 20),
    ([8], "sigmoid", 1, "sgd", "mae", 100),
    ([8], "sigmoid", 3, "sgd-momentum", "mse", 7),
    ([3], "relu", 1, "sgd-nesterov", "mse", 20),
    ([16, 4], "sigmoid", 2, "adam", "mae", 33),
    ([8], "tanh", 1, "adam", "mse", 20),
    ([16, 4], "tanh", 3, "sgd-momentum", "mae", 7),
    ([8], "sigmoid", 1, "rmsprop", "mse", 20),
    ([16], "tanh", 3, "rmsprop-centered-momentum", "mse", 30),
    # gradients that read the pre-activation (kept by both engines), the last with Eigen's scalar tails
    ([8], "silu", 1, "adam", "mse", 20),
    ([3, 5], "gelu", 3, "sgd-momentum", "mae", 7),
    ([7], "elu", 2, "adam", "mse", 30),
]


def _train(engine, dtype, numerics, hidden, activation, n_features, optimizer, loss, batch_size, x, y):
    model = build_model(hidden=hidden, activation=activation, n_features=n_features, dtype=dtype, engine=engine, numerics=numerics, seed=5)
    model.compile(optimizer=OPTIMIZERS[optimizer](), loss=loss)
    history = model.fit(x[:, :n_features], y, batch_size=batch_size, epochs=6, shuffle=True, verbose=0,
                        validation_data=(x[:30, :n_features], y[:30]))
    return history.history, flat_weights(model), model.predict(x[:, :n_features])


@pytest.fixture(scope="module")
def data(seed_train):
    x = seed_train["X"].to_numpy()
    return np.column_stack([x, np.sin(x), x**2]), seed_train["y"].to_numpy()


@pytest.mark.parametrize("numerics", ["plain", "tensorflow"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{c[3]}-{c[4]}-b{c[5]}")
def test_numba_and_numpy_engines_are_bit_identical(config, dtype, numerics, data):
    x, y = data
    mine = _train("numba", dtype, numerics, *config, x, y)
    reference = _train("numpy", dtype, numerics, *config, x, y)
    assert mine[0] == reference[0]
    assert np.array_equal(mine[1], reference[1])
    assert np.array_equal(mine[2], reference[2])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluate_is_identical_across_engines(dtype, data):
    x, y = data
    values = []
    for engine in ("numba", "numpy"):
        model = build_model(hidden=[8], dtype=dtype, engine=engine)
        model.compile(optimizer="adam", loss="mae")
        values.append(model.evaluate(x[:, :1], y, batch_size=32))
    assert values[0] == values[1]
