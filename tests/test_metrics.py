"""``compile(metrics=...)``: each metric by hand, Keras 3's keys and order, live Keras bit for bit, engines equal.

The hand-checked case: kernel 1, bias 0, ``x = [1, 2, 3, 4]``, ``y = [2, 1, -1, 2]``,
so ``y_pred = [1, 2, 3, 4]`` and ``e = y - y_pred = [1, -1, -4, -2]``. One batch
of four: ``fit``'s epoch value is the metric of the pre-update predictions,
``evaluate`` before the fit the same.
"""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402
from gdcore import metrics  # noqa: E402
from reference.compare import ulp_distance  # noqa: E402

X = np.array([[1.0], [2.0], [3.0], [4.0]])
Y = np.array([[2.0], [1.0], [-1.0], [2.0]])


def _log1p_max(value):
    return math.log(max(value, 1e-7) + 1.0)


HAND = {  # metric: value at y_pred = [1, 2, 3, 4]
    "mae": (1 + 1 + 4 + 2) / 4,
    "mse": (1 + 1 + 16 + 4) / 4,
    "root_mean_squared_error": math.sqrt((1 + 1 + 16 + 4) / 4),
    "mape": 100 * (1 / 2 + 1 / 1 + 4 / 1 + 2 / 2) / 4,
    "msle": sum((_log1p_max(p) - _log1p_max(t)) ** 2 for p, t in zip([1, 2, 3, 4], [2, 1, -1, 2])) / 4,
}


def _linear(dtype="float64", engine="numba", numerics="plain"):
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1)], dtype=dtype, engine=engine,
                              numerics=numerics, seed=0)
    model.set_weights([np.ones((1, 1)), np.zeros(1)])
    return model


@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize("name", sorted(HAND))
def test_each_metric_by_hand(name, engine):
    model = _linear(engine=engine)
    model.compile(gdcore.optimizers.SGD(learning_rate=0.01), "mse", metrics=[name])
    loss, value = model.evaluate(X, Y, verbose=0)
    assert loss == pytest.approx(HAND["mse"], rel=1e-15)
    assert value == pytest.approx(HAND[name], rel=1e-14)
    history = model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False).history
    assert list(history) == sorted(["loss", name])
    assert history[name] == [value]  # the pre-update predictions: the weights evaluate saw


def test_rmse_is_the_root_of_the_accumulated_mean():
    # Two batches, [1, -1] and [-4, -2]: the mean of squares is 5.5; the mean of the batch roots would be 2.16.
    model = _linear()
    model.compile("sgd", "mse", metrics=[metrics.RootMeanSquaredError()])
    logs = model.evaluate(X, Y, batch_size=2, verbose=0, return_dict=True)
    assert logs["root_mean_squared_error"] == np.sqrt(np.float64(5.5))


def test_names_and_order_as_keras_3():
    # Observed with Keras 3.15: every log dict sorted by key; a repeated name gets _1; evaluate's list follows
    # the loss, each metric by its own name, then the other keys sorted.
    model = _linear()
    model.compile("sgd", "mse", metrics=["mae", metrics.RootMeanSquaredError(), gdcore.losses.mean_absolute_error,
                                         "mae", metrics.MeanSquaredError(name="aaa")])
    history = model.fit(X, Y, batch_size=3, epochs=2, verbose=0, validation_data=(X, Y)).history
    keys = ["aaa", "loss", "mae", "mae_1", "mean_absolute_error", "root_mean_squared_error"]
    assert list(history) == sorted(keys + ["val_" + key for key in keys])
    logs = model.evaluate(X, Y, verbose=0, return_dict=True)
    assert list(logs) == keys
    assert model.evaluate(X, Y, verbose=0) == [logs[key] for key in ("loss", "mae", "root_mean_squared_error",
                                                                      "mean_absolute_error", "mae", "aaa", "mae_1")]
    assert logs["aaa"] == logs["loss"]  # the mse metric and the mse loss: the same sums
    model.compile("sgd", "mse", metrics={"anything": ["mse", "mae"]})  # a single output: Keras flattens a dict
    assert list(model.evaluate(X, Y, verbose=0, return_dict=True)) == ["loss", "mae", "mse"]
    model.compile("sgd", "mse")
    assert isinstance(model.evaluate(X, Y, verbose=0), float)


def test_strings_classes_and_functions_resolve_to_the_table():
    for identifier, name in [("mae", "mae"), ("MAE", "MAE"), ("mean_absolute_error", "mean_absolute_error"),
                             ("MeanAbsoluteError", "MeanAbsoluteError"), (metrics.MeanAbsoluteError, "mean_absolute_error"),
                             (metrics.MeanAbsoluteError(name="m"), "m"), (gdcore.losses.mean_absolute_error,
                                                                          "mean_absolute_error"),
                             (metrics.mean_absolute_error, "mean_absolute_error")]:
        metric = metrics.get(identifier)
        assert (metric.rule, metric.name) == (metrics.MEAN_ABSOLUTE_ERROR, name), identifier
    assert metrics.get("root_mean_squared_error").rule is metrics.ROOT_MEAN_SQUARED_ERROR
    assert metrics.get("msle").rule is metrics.MEAN_SQUARED_LOGARITHMIC_ERROR
    assert metrics.get("MAPE").rule is metrics.MEAN_ABSOLUTE_PERCENTAGE_ERROR
    np.testing.assert_array_equal(gdcore.losses.mean_squared_error([[1.0, 3.0]], [[0.0, 0.0]]), [5.0])


def test_bad_metrics_are_refused_by_name():
    model = _linear()
    with pytest.raises(ValueError, match=r"unknown metric 'accuracy_typo'; known: .*mae"):
        model.compile("sgd", "mse", metrics=["accuracy_typo"])
    with pytest.raises(ValueError, match="no 'rmse' string.*root_mean_squared_error"):  # as Keras 3: not a metric name
        model.compile("sgd", "mse", metrics=["rmse"])
    with pytest.raises(ValueError, match="list, tuple or dict, got 'mae'"):
        model.compile("sgd", "mse", metrics="mae")
    with pytest.raises(TypeError, match="loss object.*gdcore.metrics.MeanAbsoluteError"):
        model.compile("sgd", "mse", metrics=[gdcore.losses.MeanAbsoluteError()])
    with pytest.raises(ValueError, match="named 'loss' would overwrite"):
        model.compile("sgd", "mse", metrics=[metrics.MeanAbsoluteError(name="loss")])
    with pytest.raises(TypeError, match="cannot interpret 3"):
        model.compile("sgd", "mse", metrics=[3])
    with pytest.raises(TypeError, match="name=.*must be a string"):
        metrics.MeanAbsoluteError(name=3)


def _data(n=50, features=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 3, (n, features))
    return x, 2 * x[:, :1] + 1 + rng.normal(0, 0.5, (n, 1))


ALL = ["mae", "mse", "mape", "msle", metrics.RootMeanSquaredError()]


def _trained(engine, numerics, dtype, callbacks=None, verbose=0):
    x, y = _data()
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(8, activation="sigmoid"), gdcore.layers.Dense(1)],
                              dtype=dtype, engine=engine, numerics=numerics, seed=3)
    model.compile(gdcore.optimizers.Adam(learning_rate=0.1), "mse", metrics=ALL)
    history = model.fit(x[:40], y[:40], batch_size=16, epochs=3, verbose=verbose, shuffle=False,
                        validation_data=(x[40:], y[40:]), callbacks=callbacks).history
    return history, model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)


@pytest.mark.parametrize("numerics", ["plain", "tensorflow"])
def test_engines_give_the_same_metrics(numerics):
    assert _trained("numba", numerics, "float32") == _trained("numpy", numerics, "float32")


def test_batch_callbacks_and_progress_see_the_same_running_metrics(capsys):
    seen = []

    class Record(gdcore.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs)

    plain = _trained("numba", "plain", "float64")
    assert _trained("numba", "plain", "float64", callbacks=[Record()]) == plain  # one step per engine call
    assert _trained("numba", "plain", "float64", verbose=1) == plain  # windows of steps
    assert "val_root_mean_squared_error:" in capsys.readouterr().out
    assert len(seen) == 9 and list(seen[0]) == ["loss", "mae", "mape", "mse", "msle", "root_mean_squared_error"]
    assert seen[2]["mae"] == plain[0]["mae"][0]  # the last batch's running value is the epoch's


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["linear-sgd-b20", "sigmoid8-adam-b16-partial"])
def test_bit_identical_to_keras(case, dtype):
    """Every metric, training and validation, at every epoch, and evaluate: the same bits as live Keras 3."""
    pytest.importorskip("tensorflow")
    from reference.keras_driver import _keras_optimizer, keras_dtype, to_keras

    x, y = _data(seed=1)
    hidden = [gdcore.layers.Dense(8, activation="sigmoid")] if "sigmoid" in case else []
    optimizer = gdcore.optimizers.Adam(learning_rate=0.1) if "adam" in case else gdcore.optimizers.SGD(learning_rate=0.01)
    batch_size = 16 if "b16" in case else 20
    model = gdcore.Sequential([gdcore.Input((1,)), *hidden, gdcore.layers.Dense(1)], dtype=dtype, numerics="tensorflow",
                              seed=5)
    names = ["mae", "mse", "mape", "msle", "root_mean_squared_error"]
    model.compile(optimizer, "mse", metrics=names)
    with keras_dtype(dtype) as keras:
        twin = to_keras(model, compile=False)
        twin.compile(optimizer=_keras_optimizer(keras, optimizer), loss="mse", metrics=names, jit_compile=False)
        theirs = twin.fit(x[:40], y[:40], batch_size=batch_size, epochs=3, verbose=0, shuffle=False,
                          validation_data=(x[40:], y[40:])).history
        their_eval = twin.evaluate(x, y, verbose=0, return_dict=True)
    mine = model.fit(x[:40], y[:40], batch_size=batch_size, epochs=3, verbose=0, shuffle=False,
                     validation_data=(x[40:], y[40:])).history
    my_eval = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(mine) == list(theirs)
    for key in theirs:  # the MSLE too: its logs are TensorFlow's Log at each element's position (gdcore.numerics.lanes)
        for epoch, (a, b) in enumerate(zip(mine[key], theirs[key])):
            assert a == b, f"{key} epoch {epoch + 1}: gdcore {a!r} vs Keras {b!r}"
    assert my_eval == their_eval
