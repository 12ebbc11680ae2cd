"""The accuracy metrics: Keras 3's functions, its choice for ``"accuracy"``, and training against live Keras.

A sigmoid output trained with MSE calls no ``Exp``/``Log`` kernel, so there
every number, accuracies included, is the same bits as Keras's. With a
cross-entropy the weights are not yet bit-identical to Keras's (see
``tests/test_classification.py``, a few float32 ulp); the accuracies, counts of
predictions on the right side of a threshold or of an argmax, still are on
these data, and the test says so.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402
from gdcore import metrics  # noqa: E402
from gdcore.datasets import make_three_class_dataset  # noqa: E402


def _data(n=50, seed=1):
    three = make_three_class_dataset(n, random_state=seed)
    x = three[["X1", "X2"]].to_numpy()
    binary = (x[:, 0] + 0.5 * x[:, 1] + np.random.default_rng(0).normal(0, 1, len(x)) > 0).astype(np.float64)
    return x, binary, three["y"].to_numpy()


def _model(units, output, loss, metric_list, dtype="float64", engine="numba", hidden=(), optimizer="sgd"):
    layers = [gdcore.Input(shape=(2,)), *(gdcore.layers.Dense(n, activation="sigmoid") for n in hidden),
              gdcore.layers.Dense(units, activation=output)]
    model = gdcore.Sequential(layers, dtype=dtype, numerics="tensorflow", engine=engine, seed=3)
    chosen = gdcore.optimizers.SGD(learning_rate=0.5) if optimizer == "sgd" else gdcore.optimizers.Adam(0.05)
    model.compile(optimizer=chosen, loss=loss, metrics=metric_list)
    return model


# --- the functions, by hand and against keras.metrics ------------------------------------------------


def test_accuracy_functions_by_hand():
    # binary: [0.7 > 0.5] = 1 = y, [0.2 > 0.5] = 0 = y, [0.4 > 0.5] = 0 != 1
    assert metrics.binary_accuracy([1, 0, 1], [0.7, 0.2, 0.4]).tolist() == [1, 1, 0]
    assert metrics.binary_accuracy([1, 0, 1], [0.7, 0.2, 0.4], threshold=0.3).tolist() == [1, 1, 1]
    # two outputs per sample: each element's match, as Keras's function returns them (fit's Mean averages them)
    assert metrics.binary_accuracy([[1, 0]], [[0.9, 0.9]]).tolist() == [[1.0, 0.0]]
    # argmax: first maximum on ties (the second row's 0.5, 0.5 picks class 1)
    assert metrics.categorical_accuracy([[0, 1, 0], [0, 1, 0]], [[0.2, 0.8, 0.0], [0.0, 0.5, 0.5]]).tolist() == [1, 1]
    assert metrics.sparse_categorical_accuracy([2, 0], [[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]]).tolist() == [1, 1]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_accuracy_functions_match_keras(dtype):
    from reference.keras_driver import keras_dtype

    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(4), 64).astype(dtype)
    probabilities[:8] = 0.25  # ties everywhere: the first maximum
    probabilities[8:16, :2] = probabilities[8:16, :2].max(axis=1, keepdims=True)
    labels = rng.integers(0, 4, 64)
    scores = rng.uniform(0, 1, (64, 3)).astype(dtype)
    scores[:4] = np.float64(np.float32(0.7))  # on float32's 0.7: not above a 0.7 threshold in either dtype
    scores[4:8] = 0.69999999  # above float32's 0.7, below float64's
    binary = rng.integers(0, 2, (64, 3)).astype(dtype)
    with keras_dtype(dtype) as keras:
        for threshold in (0.5, 0.7, 0.0):
            theirs = np.asarray(keras.metrics.binary_accuracy(binary, scores, threshold=threshold))
            mine = metrics.binary_accuracy(binary, scores, threshold=threshold)
            assert mine.dtype == np.dtype(gdcore.config.floatx()) and mine.tolist() == theirs.tolist(), threshold
        one_hot = np.eye(4, dtype=dtype)[labels]
        assert metrics.categorical_accuracy(one_hot, probabilities).tolist() == \
            np.asarray(keras.metrics.categorical_accuracy(one_hot, probabilities)).tolist()
        assert metrics.sparse_categorical_accuracy(labels, probabilities).tolist() == \
            np.asarray(keras.metrics.sparse_categorical_accuracy(labels[:, None], probabilities)).tolist()


def test_accuracy_string_picks_as_keras_does():
    # Keras's is_binary_or_sparse_categorical: one output unit -> binary; class indices -> sparse; else categorical.
    cases = [(1, "sigmoid", "binary_crossentropy", metrics.BINARY_ACCURACY),
             (1, "sigmoid", "mse", metrics.BINARY_ACCURACY),
             (3, "softmax", "sparse_categorical_crossentropy", metrics.SPARSE_CATEGORICAL_ACCURACY),
             (3, "softmax", "categorical_crossentropy", metrics.CATEGORICAL_ACCURACY),
             (3, "softmax", "mse", metrics.CATEGORICAL_ACCURACY)]
    for units, output, loss, rule in cases:
        for name in ("accuracy", "acc"):
            model = _model(units, output, loss, [name])
            assert model._run_metrics().ids.tolist() == [rule.id], (units, loss, name)
            assert model.metrics_names == ["loss", name]


def test_the_probabilities_are_what_the_metrics_read():
    # The loss trains on the logits (Keras's recovery); the metrics read the sigmoid of them, as Keras's do.
    x, binary, _ = _data()
    model = _model(1, "sigmoid", "binary_crossentropy", ["mse", metrics.BinaryAccuracy(threshold=0.6)])
    logs = model.evaluate(x, binary, batch_size=len(x), verbose=0, return_dict=True)
    p = model.predict(x, batch_size=len(x), verbose=0)[:, 0]
    assert logs["binary_accuracy"] == np.mean((p > np.float32(0.6)) == binary)
    assert np.isclose(logs["mse"], np.mean((p - binary) ** 2), rtol=1e-14)


# --- training: engines, Keras -------------------------------------------------------------------------

CASES = {  # units, output, loss, metrics, label kind, hidden
    "sigmoid-mse-control": (1, "sigmoid", "mse", ["accuracy", "mse", metrics.BinaryAccuracy(threshold=0.7)], "binary",
                            (8,)),
    "logistic-bce": (1, "sigmoid", "binary_crossentropy", ["accuracy", "mae"], "binary", ()),
    "softmax-sparse": (3, "softmax", "sparse_categorical_crossentropy", ["accuracy", "sparse_categorical_accuracy"],
                       "sparse", ()),
    "softmax-one-hot": (3, "softmax", "categorical_crossentropy", ["acc", metrics.CategoricalAccuracy()], "one_hot",
                        (4,)),
}


def _labels(kind, binary, classes):
    return {"binary": binary, "sparse": classes, "one_hot": np.eye(3)[classes]}[kind]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["logistic-bce", "softmax-one-hot"])
def test_engines_give_the_same_accuracies(case, dtype):
    units, output, loss, metric_list, kind, hidden = CASES[case]
    x, binary, classes = _data()
    y = _labels(kind, binary, classes)
    runs = []
    for engine in ("numpy", "numba"):
        model = _model(units, output, loss, metric_list, dtype=dtype, engine=engine, hidden=hidden)
        history = model.fit(x[:40], y[:40], batch_size=16, epochs=3, shuffle=False, verbose=0,
                            validation_data=(x[40:], y[40:])).history
        runs.append((history, model.evaluate(x, y, verbose=0, return_dict=True)))
    assert runs[0] == runs[1]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_accuracies_follow_keras_at_every_epoch(case, dtype):
    from reference.keras_driver import _keras_optimizer, keras_dtype, to_keras

    units, output, loss, metric_list, kind, hidden = CASES[case]
    x, binary, classes = _data()
    y = _labels(kind, binary, classes)
    model = _model(units, output, loss, metric_list, dtype=dtype, hidden=hidden,
                   optimizer="adam" if case.startswith("softmax") else "sgd")
    keras_metrics = [m if isinstance(m, str) else
                     (lambda k, m=m: getattr(k.metrics, type(m).__name__)(**m.get_config())) for m in metric_list]
    with keras_dtype(dtype) as keras:
        twin = to_keras(model, compile=False)
        twin.compile(optimizer=_keras_optimizer(keras, model.optimizer), loss=loss, jit_compile=False,
                     metrics=[m if isinstance(m, str) else m(keras) for m in keras_metrics])
        theirs = twin.fit(x[:40], y[:40], batch_size=16, epochs=4, verbose=0, shuffle=False,
                          validation_data=(x[40:], y[40:])).history
        their_eval = twin.evaluate(x, y, verbose=0, return_dict=True)
    mine = model.fit(x[:40], y[:40], batch_size=16, epochs=4, verbose=0, shuffle=False,
                     validation_data=(x[40:], y[40:])).history
    my_eval = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(mine) == list(theirs)
    exact = case.endswith("control")  # otherwise the cross-entropy's weights are a few ulp from Keras's
    for key in theirs:
        if exact or "acc" in key:
            assert mine[key] == theirs[key], f"{key}: gdcore {mine[key]} vs Keras {theirs[key]}"
        else:
            np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-4 if dtype == "float32" else 1e-12)
    for key in their_eval:
        if exact or "acc" in key:
            assert my_eval[key] == their_eval[key], key


def test_early_stopping_maximises_an_accuracy():
    x, binary, _ = _data()
    model = _model(1, "sigmoid", "binary_crossentropy", ["accuracy"])
    stop = gdcore.callbacks.EarlyStopping(monitor="val_accuracy", patience=1)
    model.fit(x[:40], binary[:40], epochs=2, verbose=0, validation_data=(x[40:], binary[40:]), callbacks=[stop])
    assert stop.monitor_op is np.greater  # "auto" with an accuracy: larger is better, as Keras's _direction = "up"


# --- bad input ----------------------------------------------------------------------------------------


def test_metrics_that_cannot_read_the_labels_are_refused():
    with pytest.raises(ValueError, match="'sparse_categorical_accuracy' reads class indices"):
        _model(1, "sigmoid", "binary_crossentropy", ["sparse_categorical_accuracy"])
    with pytest.raises(ValueError, match="'categorical_accuracy' reads labels of the output's shape, but the loss takes sparse labels"):
        _model(3, "softmax", "sparse_categorical_crossentropy", ["categorical_accuracy"])
    with pytest.raises(ValueError, match="'mse' reads labels.*sparse labels"):
        _model(3, "softmax", "sparse_categorical_crossentropy", ["mse"])
    with pytest.raises(NotImplementedError, match="label_smoothing=0.1"):
        _model(1, "sigmoid", gdcore.losses.BinaryCrossentropy(label_smoothing=0.1), ["accuracy"])
    with pytest.raises(ValueError, match=r"threshold=\.\.\.\) must be a finite number, got 'high'"):
        metrics.BinaryAccuracy(threshold="high")
    with pytest.raises(ValueError, match="finite number, got nan"):
        metrics.BinaryAccuracy(threshold=float("nan"))
