"""Bad input gets a ValueError/TypeError that names the argument; nothing is trained silently wrong."""

import math
import warnings

import numpy as np
import pytest

import gdcore
from conftest import build_model, flat_weights


@pytest.fixture
def model():
    model = build_model(hidden=[8])
    model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=0.01), loss="mse")
    return model


X = np.linspace(-1, 1, 10)[:, None]
Y = X[:, 0] * 2


@pytest.mark.parametrize("x, y, message", [
    (X, Y[:9], "same number of samples"),
    (np.ones((10, 2)), Y, "2 features per sample"),
    (np.ones((10, 1, 1)), Y, "2-D"),
    (np.ones((10, 1)), np.ones((10, 2)), "must have shape"),
    (np.empty((0, 1)), np.empty(0), "empty"),
    (np.where(np.arange(10) == 3, np.nan, 1.0)[:, None], Y, r"x contains NaN"),
    (X, np.where(np.arange(10) == 4, np.inf, 1.0), r"y contains inf"),
    (X, ["a"] * 10, "numeric"),
    (np.where(np.arange(10) == 2, 1e39, 1.0)[:, None], Y, r"x has a value too large for float32 \(first at index \(2, 0\)\)"),
])
def test_bad_data(model, x, y, message):
    before = flat_weights(model)
    with pytest.raises((ValueError, TypeError), match=message):
        model.fit(x, y, verbose=0)
    assert np.array_equal(flat_weights(model), before)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"epochs": -1}, "epochs"),
    ({"validation_data": (X, Y[:3])}, "same number of samples"),
    ({"validation_data": X}, "validation_data"),
    ({"callbacks": [print]}, "callbacks"),
])
def test_bad_fit_arguments(model, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        model.fit(X, Y, verbose=0, **kwargs)


@pytest.mark.parametrize("learning_rate", [0, -0.1, math.nan, math.inf, "0.1"])
@pytest.mark.parametrize("optimizer", [gdcore.optimizers.SGD, gdcore.optimizers.Adam])
def test_bad_learning_rate(optimizer, learning_rate):
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer(learning_rate=learning_rate)


@pytest.mark.parametrize("factory, message", [
    (lambda: gdcore.optimizers.SGD(momentum=1.5), "momentum"),
    (lambda: gdcore.optimizers.Adam(beta_1=1.0), "beta_1"),
    (lambda: gdcore.optimizers.Adam(beta_2=-0.1), "beta_2"),
    (lambda: gdcore.optimizers.Adam(epsilon=-1e-7), "epsilon"),
    (lambda: gdcore.layers.Dense(0), "units"),
    (lambda: gdcore.Input(shape=(0,)), "shape"),
    (lambda: gdcore.Input(shape=(2, 3)), "shape"),
    (lambda: gdcore.Sequential(dtype="float16"), "dtype"),
    (lambda: gdcore.Sequential(numerics="fast"), "numerics profile 'fast'; known: plain, tensorflow"),
    (lambda: gdcore.Sequential(engine="cuda"), "engine"),
    (lambda: gdcore.initializers.RandomNormal(stddev=-1), "stddev"),
])
def test_bad_hyperparameters(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize("kind, factory, known", [
    ("activation", lambda: gdcore.layers.Dense(1, activation="mish"), "linear, relu, relu6, selu, sigmoid, silu"),
    ("initializer", lambda: gdcore.layers.Dense(1, kernel_initializer="he_normalish"), "glorot_uniform"),
    ("loss", lambda: build_model().compile(optimizer="sgd", loss="huber"), "mae, mean_absolute_error"),
    ("optimizer", lambda: build_model().compile(optimizer="adadelta", loss="mse"), "adagrad, adam, adamw, rmsprop, sgd"),
])
def test_unknown_names_list_the_known_ones(kind, factory, known):
    with pytest.raises(ValueError, match=f"unknown {kind}.*known: .*{known}"):
        factory()


def test_fit_and_evaluate_before_compile():
    model = build_model()
    with pytest.raises(ValueError, match="compile"):
        model.fit(X, Y, verbose=0)
    with pytest.raises(ValueError, match="compile"):
        model.evaluate(X, Y)


def test_set_weights_checks_count_and_shapes(model):
    weights = model.get_weights()
    with pytest.raises(ValueError, match="expected 4 arrays"):
        model.set_weights(weights[:3])
    with pytest.raises(ValueError, match=r"weights\[2\] has shape \(1, 8\), expected \(8, 1\)"):
        model.set_weights(weights[:2] + [weights[2].T, weights[3]])
    with pytest.raises(ValueError, match="NaN"):
        model.set_weights(weights[:3] + [np.array([np.nan])])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))


def test_predict_checks_features(model):
    with pytest.raises(ValueError, match="features"):
        model.predict(np.ones((3, 2)))


def test_divergence_stops_with_a_warning_and_keeps_completed_epochs(seed_train):
    x, y = seed_train[["X"]], seed_train["y"]

    def fresh():
        model = build_model(dtype="float32")
        model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=1.0), loss="mse")
        return model

    model = fresh()
    with pytest.warns(gdcore.TrainingDivergedWarning, match="NaN or infinite"):
        history = model.fit(x, y, batch_size=1, epochs=50, shuffle=False, verbose=0)
    completed = len(history.history["loss"])
    assert completed < 50 and history.epoch == list(range(completed))
    assert history.stopped["epoch"] == completed
    assert all(math.isfinite(value) for value in history.history["loss"])
    assert np.isfinite(flat_weights(model)).all()
    # The weights are those at the end of the last completed epoch: nothing half-updated is kept.
    again = fresh()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if completed:
            again.fit(x, y, batch_size=1, epochs=completed, shuffle=False, verbose=0)
    assert np.array_equal(flat_weights(again), flat_weights(model))


def test_masked_array_with_nan_is_refused(model):
    x = np.ma.masked_invalid(np.where(np.arange(10) == 3, np.nan, 1.0).astype(np.float32)[:, None])
    with pytest.raises(ValueError, match="x contains NaN"):
        model.fit(x, Y, verbose=0)
