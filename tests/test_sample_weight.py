"""``fit(sample_weight=..., class_weight=...)``, ``evaluate(sample_weight=...)``, ``validation_data=(x, y, w)``.

Keras 3 weighs each sample's loss, :math:`L = \\sum_b w_b \\ell_b / B` with B the
batch's size whatever the weights (``sum_over_batch_size``: zero weights still
count in B), and differentiates it as TensorFlow does, the scale
:math:`\\mathrm{fl}(\\mathrm{fl}(1/B)\\,w_b)` first. The metrics of
``compile(metrics=...)`` stay unweighted. ``class_weight`` maps each target,
rounded (half to even) for a float target, to a weight; other classes weigh 1.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402

X = np.array([[1.0], [2.0], [3.0], [4.0]])
Y = np.array([[0.0], [1.0], [-1.0], [2.0]])


def _zero_linear(engine="numba"):
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1)], dtype="float64", engine=engine, seed=0)
    model.set_weights([np.zeros((1, 1)), np.zeros(1)])
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), "mse", metrics=["mse"])
    return model


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_one_weighted_step_by_hand(engine):
    # y_pred = 0, e = y. With w = [1, 0, 0, 1]: dL/dy_pred_b = -(1/4 * w_b) * 2 e_b = [0, 0, 0, -1];
    # dL/dW = sum_b x_b * that = -4, dL/db = -1: one step at learning rate 1 gives W = 4, b = 1.
    # L = (1 * 0 + 1 * 4) / 4 = 1: the zero weights still count in B. The mse metric is unweighted: (0+1+1+4)/4.
    model = _zero_linear(engine)
    history = model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False, sample_weight=[1, 0, 0, 1]).history
    assert [w.item() for w in model.get_weights()] == [4.0, 1.0]
    assert history == {"loss": [1.0], "mse": [1.5]}
    # evaluate at W = 4, b = 1: y_pred = [5, 9, 13, 17], e = [-5, -8, -14, -15]; weighted (25 + 225) / 4.
    assert model.evaluate(X, Y, sample_weight=np.array([1, 0, 0, 1]), verbose=0) == [62.5, (25 + 64 + 196 + 225) / 4]


def test_unit_weights_change_no_bit():
    x, y = _data()
    runs = []
    for weights in (None, np.ones(len(x))):
        model = _sigmoid("float32", "plain")
        history = model.fit(x[:40], y[:40], batch_size=16, epochs=2, verbose=0, shuffle=False, sample_weight=weights
                            if weights is None else weights[:40], validation_data=(x[40:], y[40:])).history
        runs.append((history, [w.tobytes() for w in model.get_weights()]))
    assert runs[0] == runs[1]


def test_class_weight_rounds_the_target_as_keras_does():
    model = _zero_linear()
    weights = model._class_weights({0: 3.0, 2: 0.5}, np.array([[0.4], [0.5], [1.5], [2.5], [7.0]]))
    np.testing.assert_array_equal(weights, [3.0, 3.0, 0.5, 0.5, 1.0])  # round half to even: 0.5 -> 0, 2.5 -> 2
    model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False, class_weight={0: 1.0, 2: 1.0, -1: 0.0, 1: 0.0})
    assert [w.item() for w in model.get_weights()] == [4.0, 1.0]  # the weights [1, 0, 0, 1] of the hand-worked step


def test_bad_weights_are_refused_by_name():
    model = _zero_linear()
    with pytest.raises(ValueError, match="x and sample_weight must have the same number of samples, got 4 and 3"):
        model.fit(X, Y, sample_weight=[1, 1, 1], verbose=0)
    with pytest.raises(ValueError, match="sample_weight.*NaN"):
        model.fit(X, Y, sample_weight=[1, np.nan, 1, 1], verbose=0)
    with pytest.raises(ValueError, match="not both"):
        model.fit(X, Y, sample_weight=[1, 1, 1, 1], class_weight={0: 1.0}, verbose=0)
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        model.fit(X, Y, class_weight=[1.0, 2.0], verbose=0)
    with pytest.raises(ValueError, match=r"class_weight\[1\] must be a finite number"):
        model.fit(X, Y, class_weight={1: np.inf}, verbose=0)
    with pytest.raises(ValueError, match="validation_data must be a tuple.*length 4"):
        model.fit(X, Y, validation_data=(X, Y, [1] * 4, 1), verbose=0)
    with pytest.raises(ValueError, match="validation_data\\[2\\]"):
        model.fit(X, Y, validation_data=(X, Y, [1, 1]), verbose=0)
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        model.evaluate(X, Y, sample_weight=np.ones((4, 2)), verbose=0)
    assert [w.item() for w in model.get_weights()] == [0.0, 0.0]  # nothing ran


def _data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 3, (n, 1))
    return x, 2 * x + 1 + rng.normal(0, 0.5, (n, 1))


def _weights(n, seed=2):
    weights = np.random.default_rng(seed).uniform(0, 3, n)
    weights[::7] = 0.0
    return weights


def _sigmoid(dtype, numerics, engine="numba"):
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(8, activation="sigmoid"), gdcore.layers.Dense(1)],
                              dtype=dtype, numerics=numerics, engine=engine, seed=3)
    model.compile(gdcore.optimizers.Adam(learning_rate=0.1), "mse", metrics=["mae"])
    return model


@pytest.mark.parametrize("numerics", ["plain", "tensorflow"])
def test_engines_weigh_alike(numerics):
    x, y = _data()
    w = _weights(len(x))
    results = []
    for engine in ("numba", "numpy"):
        model = _sigmoid("float32", numerics, engine)
        history = model.fit(x[:40], y[:40], batch_size=16, epochs=2, verbose=0, shuffle=False, sample_weight=w[:40],
                            validation_data=(x[40:], y[40:], w[40:])).history
        results.append((history, [v.tobytes() for v in model.get_weights()],
                        model.evaluate(x, y, sample_weight=w, verbose=0)))
    assert results[0] == results[1]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype, weighting", [("float32", "sample"), ("float64", "sample"), ("float32", "class")])
def test_weighted_metrics_bit_identical_to_keras(dtype, weighting):
    """compile(weighted_metrics=...): each metric's total and count weighted as Keras's Mean weighs them, and named
    weighted_<name> where the name is taken, at every epoch, in validation and in evaluate."""
    from reference.keras_driver import _keras_optimizer, keras_dtype, to_keras

    x, y = _data(seed=1)
    w = _weights(len(x))
    model = _sigmoid(dtype, "tensorflow")
    plain, weighted = ["mae"], ["mae", "mse", gdcore.metrics.RootMeanSquaredError()]
    model.compile(model.optimizer, "mse", metrics=plain, weighted_metrics=weighted)
    weighting = {"class_weight": {3: 2.5, 5: 0.0, 6: 0.25}} if weighting == "class" else {"sample_weight": w[:40]}
    arguments = dict(batch_size=16, epochs=3, verbose=0, shuffle=False, validation_data=(x[40:], y[40:], w[40:]),
                     **weighting)
    with keras_dtype(dtype) as keras:
        twin = to_keras(model, compile=False)
        twin.compile(optimizer=_keras_optimizer(keras, model.optimizer), loss="mse", metrics=plain, jit_compile=False,
                     weighted_metrics=["mae", "mse", keras.metrics.RootMeanSquaredError()])
        theirs = twin.fit(x[:40], y[:40], **arguments).history
        their_eval = twin.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    mine = model.fit(x[:40], y[:40], **arguments).history
    assert list(mine) == list(theirs)
    assert "weighted_mae" in mine and "val_root_mean_squared_error" in mine
    for key in theirs:
        assert mine[key] == theirs[key], f"{key}: gdcore {mine[key]} vs Keras {theirs[key]}"
    assert model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True) == their_eval


def test_weighted_metrics_by_hand():
    # One batch, W = b = 0 (y_pred = 0), y = [1, 2], weights [3, 1]: weighted mae = (3*1 + 1*2) / (3 + 1) = 1.25
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, kernel_initializer="zeros")], dtype="float64")
    model.compile("sgd", "mse", metrics=["mae"], weighted_metrics=["mae"])
    logs = model.evaluate(np.array([[1.0], [2.0]]), np.array([1.0, 2.0]), sample_weight=np.array([3.0, 1.0]),
                          verbose=0, return_dict=True)
    assert logs["mae"] == 1.5 and logs["weighted_mae"] == 1.25


@pytest.mark.tensorflow
@pytest.mark.parametrize("case, dtype", [("sigmoid8-adam-b16-partial", "float32"), ("sigmoid8-adam-b16-partial", "float64"),
                                         ("sigmoid8-adam-b16-class-weight", "float32")])
def test_bit_identical_to_keras(case, dtype):
    """Weights, history (loss, unweighted mae, weighted val_loss) at every epoch and weighted evaluate: Keras's bits."""
    pytest.importorskip("tensorflow")
    from reference.keras_driver import _keras_optimizer, keras_dtype, to_keras

    x, y = _data(seed=1)
    w = _weights(len(x))
    hidden = [gdcore.layers.Dense(8, activation="sigmoid")] if "sigmoid" in case else []
    optimizer = gdcore.optimizers.Adam(learning_rate=0.1) if "adam" in case else gdcore.optimizers.SGD(learning_rate=0.01)
    batch_size = 16 if "b16" in case else 20
    model = gdcore.Sequential([gdcore.Input((1,)), *hidden, gdcore.layers.Dense(1)], dtype=dtype, numerics="tensorflow",
                              seed=5)
    model.compile(optimizer, "mse", metrics=["mae"])
    weighting = {"class_weight": {3: 2.5, 5: 0.0, 6: 0.25}} if "class" in case else {"sample_weight": w[:40]}
    arguments = dict(batch_size=batch_size, epochs=3, verbose=0, shuffle=False,
                     validation_data=(x[40:], y[40:], w[40:]), **weighting)
    with keras_dtype(dtype) as keras:
        twin = to_keras(model, compile=False)
        twin.compile(optimizer=_keras_optimizer(keras, optimizer), loss="mse", metrics=["mae"], jit_compile=False)
        theirs = twin.fit(x[:40], y[:40], **arguments).history
        their_weights = twin.get_weights()
        their_eval = twin.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    mine = model.fit(x[:40], y[:40], **arguments).history
    assert list(mine) == list(theirs)
    for key in theirs:
        for epoch, (a, b) in enumerate(zip(mine[key], theirs[key])):
            assert a == b, f"{key} epoch {epoch + 1}: gdcore {a!r} vs Keras {b!r}"
    for mine_w, theirs_w in zip(model.get_weights(), their_weights):
        assert mine_w.tobytes() == theirs_w.tobytes()
    assert model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True) == their_eval


def test_loss_reductions_as_keras_3_names_them():
    # Keras 3 reduces "mean" exactly as "sum_over_batch_size" (losses/loss.py, reduce_values): the same loss entry;
    # the other reductions: tests/test_loss_reduction.py.
    assert gdcore.losses.MeanSquaredError(reduction="mean") == gdcore.losses.MeanSquaredError()
    assert gdcore.losses.MeanSquaredError(reduction="mean").reduction_id == gdcore.losses.MeanSquaredError().reduction_id
    with pytest.raises(ValueError, match="reduction must be one of .*got 'average'"):
        gdcore.losses.MeanSquaredError(reduction="average")
