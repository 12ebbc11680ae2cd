"""Hostile but realistic input: every case refused with a message naming the argument, or handled correctly.

The cases of the "no silent wrong answers" review, one per line, so that they stay handled.
"""

import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import gdcore
from conftest import build_model, flat_weights

X = np.linspace(-1, 1, 10)[:, None]
Y = X[:, 0] * 2


@pytest.fixture
def model():
    model = build_model()
    model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=0.01), loss="mse")
    return model


@pytest.mark.parametrize("x, error, message", [
    (X + 1j, TypeError, "x is complex"),
    (pd.Series(pd.to_timedelta(np.arange(10), unit="s")), TypeError, "x holds durations"),
    (pd.Series(pd.date_range("2026-01-01", periods=10)), TypeError, "x holds dates"),
    (np.array(["1.0"] * 10), TypeError, "x must be numeric"),
    (np.empty((10, 0)), ValueError, "0 features"),
])
def test_data_that_is_not_real_numbers_is_refused(model, x, error, message):
    before = flat_weights(model)
    with pytest.raises(error, match=message):
        model.fit(x, Y, verbose=0)
    assert np.array_equal(flat_weights(model), before)


@pytest.mark.parametrize("weights, error, message", [
    ([np.array([[1 + 1j]]), np.array([0.0])], TypeError, r"weights\[0\] must be real"),
    ([np.array([[1e39]]), np.array([0.0])], ValueError, r"weights\[0\] has values too large for float32"),
    (None, TypeError, "list of arrays"),
    ([np.array([["a"]]), np.array([0.0])], TypeError, r"weights\[0\] must be real"),
])
def test_bad_weights(model, weights, error, message):
    with pytest.raises(error, match=message):
        model.set_weights(weights)
    with pytest.raises(error, match=message):
        model.dense_layers[0].set_weights(weights)


@pytest.mark.parametrize("optimizer, message", [
    (gdcore.optimizers.SGD(learning_rate=1e-50), "learning_rate=1e-50 rounds to 0 in float32"),
    (gdcore.optimizers.SGD(learning_rate=1e39), "learning_rate=1e\\+39 overflows float32"),
])
def test_hyperparameters_are_checked_in_the_models_dtype(optimizer, message):
    model = build_model()
    model.compile(optimizer=optimizer, loss="mse")
    with pytest.raises(ValueError, match=message):
        model.fit(X, Y, verbose=0)
    float64 = build_model(dtype="float64")
    float64.compile(optimizer=type(optimizer)(**optimizer.get_config()), loss="mse")
    float64.fit(X, Y, verbose=0, epochs=0)  # representable in float64


def test_flags_must_be_booleans():
    with pytest.raises(TypeError, match="nesterov must be True or False"):
        gdcore.optimizers.SGD(nesterov="no")
    with pytest.raises(TypeError, match="centered"):
        gdcore.optimizers.RMSprop(centered=1)


def test_an_optimizer_trains_one_model():
    adam = gdcore.optimizers.Adam()
    first, second = build_model(), build_model()
    first.compile(optimizer=adam, loss="mse")
    with pytest.raises(ValueError, match="already trains model"):
        second.compile(optimizer=adam, loss="mse")


@pytest.mark.parametrize("factory, error, message", [
    (lambda: gdcore.Input(shape=None), ValueError, "needs a shape"),
    (lambda: gdcore.Input(shape=2.0), TypeError, "shape must be a tuple"),
    (lambda: gdcore.Sequential(layers=gdcore.layers.Dense(1)), TypeError, "list of layers"),
    (lambda: gdcore.Sequential(seed=-1), ValueError, "seed"),
    (lambda: gdcore.Sequential(seed="abc"), ValueError, "seed"),
    (lambda: gdcore.Sequential(seed=1.5), ValueError, "seed"),
    (lambda: gdcore.layers.Dense(2**63), ValueError, "units must be at most"),
])
def test_unclear_messages_now_name_the_argument(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"callbacks": gdcore.callbacks.Callback()}, TypeError, "single Callback"),
    ({"validation_split": "0.2"}, ValueError, "validation_split"),
    ({"verbose": "x"}, ValueError, "verbose"),
    ({"verbose": None}, ValueError, "verbose"),
])
def test_bad_fit_arguments_name_themselves(model, kwargs, error, message):
    with pytest.raises(error, match=message):
        model.fit(X, Y, **kwargs)


def test_a_huge_batch_size_is_one_batch(model):
    history = model.fit(X, Y, batch_size=2**62, epochs=1, verbose=0)
    assert model.optimizer.iterations == 1 and len(history.history["loss"]) == 1


def test_least_squares_checks_the_feature_count():
    result = gdcore.linear.least_squares(np.ones((5, 2)) * np.arange(5)[:, None] + np.eye(5, 2), np.arange(5.0))
    with pytest.raises(ValueError, match="features per sample"):
        result.predict(np.ones((3, 3)))


# --- divergence ---------------------------------------------------------------------------------


def _diverging(model, x, y, **fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, verbose=0, **fit)
    messages = [str(w.message) for w in caught if issubclass(w.category, gdcore.TrainingDivergedWarning)]
    return history, messages


def test_an_update_that_overflows_is_caught_even_in_the_last_batch():
    model = build_model()
    model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=1e37), loss="mse")
    before = flat_weights(model)
    history, messages = _diverging(model, X * 1e3, Y * 1e3, batch_size=10, epochs=1)
    assert messages and "update of batch 0" in messages[0] and "learning_rate=1e+37" in messages[0]
    assert np.isfinite(flat_weights(model)).all() and np.array_equal(flat_weights(model), before)
    assert history.stopped is not None and model.optimizer.iterations == 0


def test_adam_with_zero_epsilon_is_named_as_the_cause():
    model = build_model(n_features=2)
    model.compile(optimizer=gdcore.optimizers.Adam(epsilon=0.0), loss="mse")
    _, messages = _diverging(model, np.column_stack([X[:, 0], np.zeros(10)]), Y, batch_size=10, epochs=2)
    assert messages and "epsilon=0" in messages[0]
    assert np.isfinite(flat_weights(model)).all()


def test_huge_data_is_named_as_the_cause():
    model = build_model()
    model.compile(optimizer="sgd", loss="mse")
    _, messages = _diverging(model, X * 1e30, Y, epochs=2)
    assert messages and "data's scale" in messages[0]


def test_a_restore_never_restores_a_non_finite_state():
    model = build_model()
    model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=0.5), loss="mse")
    for _ in range(5):
        _diverging(model, X * 100, Y * 100, epochs=3, batch_size=2)
        assert np.isfinite(flat_weights(model)).all()


def test_non_finite_validation_loss_stops_training():
    model = build_model()
    model.compile(optimizer="sgd", loss="mse")
    history, messages = _diverging(model, X, Y, epochs=3, validation_data=(X * 1e20, Y * 1e20))
    assert messages and "validation loss" in messages[0] and history.history["loss"] == []


# --- copies, caches ----------------------------------------------------------------------------------


def test_models_and_histories_pickle_and_copy(model):
    history = model.fit(X, Y, epochs=2, verbose=0)
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert flat_weights(clone).tobytes() == flat_weights(model).tobytes()
        clone.fit(X, Y, epochs=1, verbose=0, shuffle=False)
    assert pickle.loads(pickle.dumps(history)).history == history.history


def test_an_unwritable_cache_falls_back_to_a_temporary_folder(monkeypatch):
    import numba

    from gdcore import _cache

    monkeypatch.setattr(_cache, "_writable", lambda folder: False)
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    with pytest.warns(RuntimeWarning, match="no writable cache folder"):
        _cache.ensure_writable_cache()
    assert numba.config.CACHE_DIR.startswith(__import__("tempfile").gettempdir())
