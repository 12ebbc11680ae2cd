"""Loss ``reduction`` (Keras 3.15's five) and ``fit(steps_per_epoch=, validation_steps=)`` on arrays.

Keras reduces the weighted per-sample losses :math:`v_b = \\ell_b w_b` of a
batch of B as ``sum_over_batch_size``/``"mean"`` :math:`\\sum v / B`,
``"sum"`` :math:`\\sum v`, ``"mean_with_sample_weight"``
:math:`\\sum v / \\sum w` (0 when the weights sum to 0), ``"none"``/None not
at all. In ``fit`` the gradient of :math:`v_b` is then fl(1/B), 1, 1 or
fl(1/sum w), and the loss tracker reports an unreduced vector as its mean
(:mod:`gdcore.losses`). Each case below is checked by hand, against Keras
live (values, history and weights at every epoch) and between the engines.
"""

import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402
from gdcore import losses  # noqa: E402

REDUCTIONS = ["sum_over_batch_size", "mean", "sum", "none", None, "mean_with_sample_weight"]
X = np.array([[1.0], [2.0], [3.0], [4.0]])
Y = np.array([[0.0], [1.0], [-1.0], [2.0]])


def _zero_linear(reduction, engine="numba"):
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, kernel_initializer="zeros")],
                              dtype="float64", engine=engine)
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), gdcore.losses.MeanSquaredError(reduction=reduction))
    return model


# --- by hand ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize("reduction, weights, kernel, bias, loss", [
    # y_pred = 0, e = y, w = [1, 0, 0, 1]: v = [0, 0, 0, 4]; dL/dv_b = c, dL/dy_pred_b = -(c w_b) 2 e_b = [0, 0, 0, -4c],
    # dL/dW = sum_b x_b * that = -16c, dL/db = -4c; one step at learning rate 1: W = 16c, b = 4c.
    ("sum_over_batch_size", [1, 0, 0, 1], 4.0, 1.0, 1.0),  # c = 1/4, L = 4/4
    ("sum", [1, 0, 0, 1], 16.0, 4.0, 4.0),  # c = 1, L = 4
    ("none", [1, 0, 0, 1], 16.0, 4.0, 1.0),  # c = 1 (the tape sums the vector), reported: its mean 4/4
    ("mean_with_sample_weight", [1, 0, 0, 1], 8.0, 2.0, 2.0),  # c = 1/(1+1), L = 4/2
    ("mean_with_sample_weight", [0, 0, 0, 0], 0.0, 0.0, 0.0),  # sum w = 0: divide_no_nan, L = 0 and no gradient
    # no weights: / B. v = [0, 1, 1, 4], L = 6/4; dL/dW = -(1/4)(2*1*2 + 2*(-1)*3 + 2*2*4) = -3.5,
    # dL/db = -(1/4)(2 - 2 + 4) = -1.
    ("mean_with_sample_weight", None, 3.5, 1.0, 1.5),
])
def test_one_step_by_hand(engine, reduction, weights, kernel, bias, loss):
    model = _zero_linear(reduction, engine)
    history = model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False, sample_weight=weights).history
    assert [w.item() for w in model.get_weights()] == [kernel, bias]
    assert history == {"loss": [loss]}


def test_partial_last_batch_by_hand():
    # batches of 3 and 1, W = b = 0 then after step 1; "sum" reports each batch's sum, weighted by its size:
    # batch 1: v = [0, 1, 1], L1 = 2, dL/dW = -(2*1*2 + 2*(-1)*3) = 2 -> W = -2, dL/db = -(2 - 2) = 0 -> b = 0.
    # batch 2: x = 4, y_pred = -8, e = 10, L2 = 100; history = (2 * 3 + 100 * 1) / 4.
    model = _zero_linear("sum")
    history = model.fit(X, Y, batch_size=3, epochs=1, verbose=0, shuffle=False).history
    assert history == {"loss": [(2 * 3 + 100 * 1) / 4]}
    assert model.get_weights()[0].item() == -2 - 1.0 * (-(2 * 10) * 4)


def test_callable_by_hand():
    y_true, y_pred = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]]), np.array([[1.5, 2.0], [2.0, 4.5], [1.0, 1.0]])
    # per sample: mean over the 2 outputs of e^2 = [0.125, 0.625, 0.5]
    with _floatx("float64"):
        assert losses.MeanSquaredError()(y_true, y_pred) == 1.25 / 3
        assert losses.MeanSquaredError("sum")(y_true, y_pred) == 1.25
        assert losses.MeanSquaredError("none")(y_true, y_pred).tolist() == [0.125, 0.625, 0.5]
        assert losses.MeanSquaredError("mean_with_sample_weight")(y_true, y_pred, [1.0, 0.0, 2.0]) == 1.125 / 3
        assert losses.MeanSquaredError("mean_with_sample_weight")(y_true, y_pred, 2.0) == 2.5 / 2
        assert losses.MeanSquaredError("mean_with_sample_weight")(y_true, y_pred, np.zeros(3)) == 0.0
        assert losses.MeanSquaredError(None)(y_true, y_pred, np.ones((3, 1))).shape == (3, 1)
    assert losses.MeanSquaredError("sum")(y_true, y_pred).dtype == np.float32  # Keras's loss dtype: floatx()


def test_engines_give_the_same_bits():
    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=(10, 2)), rng.normal(size=(10, 2)), rng.uniform(0, 2, 10)
    w[::3] = 0
    for reduction in REDUCTIONS:
        runs = []
        for engine in ("numba", "numpy"):
            model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(3, activation="tanh"),
                                       gdcore.layers.Dense(2)], engine=engine, seed=1, numerics="tensorflow")
            model.compile(gdcore.optimizers.Adam(0.05), gdcore.losses.MeanAbsoluteError(reduction))
            history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, sample_weight=w,
                                validation_data=(x, y, w)).history
            runs.append((history, [v.tobytes() for v in model.get_weights()],
                         model.evaluate(x, y, sample_weight=w, verbose=0)))
        assert runs[0] == runs[1], reduction


# --- bad input -------------------------------------------------------------------------------------


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="reduction must be one of 'sum_over_batch_size', 'mean', 'sum', 'none', "
                                         "None, 'mean_with_sample_weight', got 'average'"):
        losses.MeanSquaredError(reduction="average")
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.BinaryCrossentropy(reduction=["sum"])
    with pytest.raises(ValueError, match=r"sample_weight must be a number or have shape \(3,\)"):
        losses.MeanSquaredError()(np.zeros((3, 1)), np.zeros((3, 1)), sample_weight=np.ones(2))
    model = _zero_linear("sum")
    for value in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match=f"steps_per_epoch must be an integer >= 1, got {value!r}"):
            model.fit(X, Y, steps_per_epoch=value, verbose=0)
        with pytest.raises(ValueError, match="validation_steps must be an integer >= 1"):
            model.fit(X, Y, validation_steps=value, verbose=0)
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, kernel_regularizer="l2")])
    model.compile("sgd", gdcore.losses.MeanSquaredError("none"))
    with pytest.raises(ValueError, match="reduction='none' leaves the loss a vector.*regularizer"):
        model.fit(X, Y, verbose=0)
    assert model.optimizer.iterations == 0


def test_mean_is_the_default_entry_and_options_keep_the_reduction():
    assert losses.MeanSquaredError(reduction="mean") == losses.MEAN_SQUARED_ERROR
    assert losses.MeanSquaredError().reduction_id == losses.MeanSquaredError("mean").reduction_id == 0
    assert losses.MeanSquaredError() is losses.MEAN_SQUARED_ERROR
    trained = losses.training_loss(losses.BinaryCrossentropy(label_smoothing=0.1, reduction="sum"), "sigmoid")
    assert (trained.from_logits, trained.label_smoothing, trained.reduction) == (True, 0.1, "sum")
    assert repr(losses.MeanAbsoluteError(None)) == "Loss('mean_absolute_error', reduction=None)"


# --- against Keras, live ---------------------------------------------------------------------------


class _floatx:
    def __init__(self, dtype, numerics=None):
        self.dtype, self.numerics = dtype, numerics

    def __enter__(self):
        self.saved = gdcore.config.floatx(), gdcore.config.numerics()
        gdcore.config.set_floatx(self.dtype)
        if self.numerics:
            gdcore.config.set_numerics(self.numerics)

    def __exit__(self, *exc):
        gdcore.config.set_floatx(self.saved[0])
        gdcore.config.set_numerics(self.saved[1])


def _callable_cases():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(13, 3))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 3, 13)
    binary = (rng.random((13, 2)) > 0.5).astype(float)
    return [("MeanSquaredError", {}, rng.normal(size=(13, 2)), rng.normal(size=(13, 2))),
            ("MeanAbsoluteError", {}, rng.normal(size=(13, 2)), rng.normal(size=(13, 2))),
            ("BinaryCrossentropy", {}, binary, 1 / (1 + np.exp(-logits[:, :2]))),
            ("BinaryCrossentropy", {"from_logits": True}, binary, logits[:, :2]),
            ("CategoricalCrossentropy", {}, np.eye(3)[labels], probabilities),
            ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, np.eye(3)[labels], logits),
            ("SparseCategoricalCrossentropy", {}, labels, probabilities)]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_callable_bit_identical_to_keras(dtype):
    """Every loss x reduction x weights (none, with zeros, all zero, a number): Keras's value, shape and dtype."""
    keras = pytest.importorskip("keras")
    weight_cases = [None, np.where(np.arange(13) % 4 == 0, 0.0, np.linspace(0.5, 2, 13)), np.zeros(13), 1.5]
    with _floatx(dtype, "tensorflow"):
        for name, options, y_true, y_pred in _callable_cases():
            for reduction in REDUCTIONS:
                ours = getattr(losses, name)(**options, reduction=reduction)
                theirs = getattr(keras.losses, name)(**options, reduction=reduction, dtype=dtype)
                for weights in weight_cases:
                    mine = np.asarray(ours(y_true, y_pred, sample_weight=weights))
                    expected = keras.ops.convert_to_numpy(theirs(y_true, y_pred, sample_weight=weights))
                    where = f"{name}({options}, reduction={reduction!r}), sample_weight={weights!r}"
                    assert (mine.dtype, mine.shape) == (expected.dtype, expected.shape), where
                    assert mine.tobytes() == expected.tobytes(), f"{where}: gdcore {mine} vs Keras {expected}"


def _keras_twin(keras, model, loss):
    from reference.keras_driver import _keras_optimizer, to_keras

    twin = to_keras(model, compile=False)
    twin.compile(optimizer=_keras_optimizer(keras, model.optimizer), loss=loss, jit_compile=False)
    return twin


def _assert_same_run(mine, theirs, model, twin):
    assert list(mine) == list(theirs)
    for key in theirs:
        for epoch, (a, b) in enumerate(zip(mine[key], theirs[key])):
            assert a == b, f"{key} epoch {epoch + 1}: gdcore {a!r} vs Keras {b!r}"
    for index, (a, b) in enumerate(zip(model.get_weights(), twin.get_weights())):
        assert a.tobytes() == np.asarray(b).tobytes(), f"weight {index}: gdcore {a} vs Keras {b}"


def _classifier_data(kind, n=14, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    if kind == "bce":
        return x, (x[:, :1] + 0.3 * rng.normal(size=(n, 1)) > 0).astype(float)
    return x, np.eye(3)[rng.integers(0, 3, n)]


@pytest.mark.tensorflow
@pytest.mark.parametrize("reduction", ["sum", "none", "mean_with_sample_weight", "mean"])
@pytest.mark.parametrize("dtype, optimizer", [("float32", "sgd"), ("float64", "adam"), ("float32", "adam")])
def test_fit_bit_identical_to_keras(reduction, dtype, optimizer):
    """A 2-2-2 regression, batches of 4 over 10 samples (a partial last batch), weights with zeros, validation: every
    epoch's loss and val_loss, the weights after, and evaluate, as Keras's; the NumPy engine gives the same bits."""
    from reference.keras_driver import keras_dtype

    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(14, 2)), rng.normal(size=(14, 2))
    w = rng.uniform(0, 2, 14)
    w[[1, 8, 9]] = 0.0  # the partial last batch (rows 8, 9) weighs nothing: mean_with_sample_weight divides by 0
    runs = []
    for engine in ("numba", "numpy"):
        model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(2, activation="sigmoid"),
                                   gdcore.layers.Dense(2)], dtype=dtype, numerics="tensorflow", seed=11, engine=engine)
        model.compile(gdcore.optimizers.SGD(0.05) if optimizer == "sgd" else gdcore.optimizers.Adam(0.05),
                      gdcore.losses.MeanSquaredError(reduction))
        if engine == "numba":
            with keras_dtype(dtype) as keras:
                twin = _keras_twin(keras, model, keras.losses.MeanSquaredError(reduction=reduction))
                arguments = dict(batch_size=4, epochs=3, verbose=0, shuffle=False, sample_weight=w[:10],
                                 validation_data=(x[10:], y[10:], w[10:]))
                theirs = twin.fit(x[:10], y[:10], **arguments).history
                their_eval = twin.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0)
        mine = model.fit(x[:10], y[:10], **arguments).history
        _assert_same_run(mine, theirs, model, twin)
        assert model.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0) == their_eval
        runs.append([v.tobytes() for v in model.get_weights()])
    assert runs[0] == runs[1]


@pytest.mark.tensorflow
@pytest.mark.parametrize("kind, reduction, dtype", [("bce", "sum", "float32"), ("bce", "none", "float64"),
                                                    ("cce", "mean_with_sample_weight", "float32"),
                                                    ("scce", "sum", "float64")])
def test_classifiers_bit_identical_to_keras(kind, reduction, dtype):
    """The cross-entropies after a sigmoid/softmax output (Keras reads their logits) with each reduction."""
    from reference.keras_driver import keras_dtype

    x, y = _classifier_data(kind)
    w = np.linspace(0, 2, len(x))
    units, activation = (1, "sigmoid") if kind == "bce" else (3, "softmax")
    labels = y.argmax(axis=1) if kind == "scce" else y
    model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(units, activation=activation)], dtype=dtype,
                              numerics="tensorflow", seed=2)
    name = {"bce": "BinaryCrossentropy", "cce": "CategoricalCrossentropy", "scce": "SparseCategoricalCrossentropy"}[kind]
    model.compile(gdcore.optimizers.Adam(0.1), getattr(gdcore.losses, name)(reduction=reduction))
    arguments = dict(batch_size=4, epochs=3, verbose=0, shuffle=False, sample_weight=w)
    with keras_dtype(dtype) as keras:
        twin = _keras_twin(keras, model, getattr(keras.losses, name)(reduction=reduction))
        theirs = twin.fit(x, labels, **arguments).history
    _assert_same_run(model.fit(x, labels, **arguments).history, theirs, model, twin)


@pytest.mark.tensorflow
def test_keras_file_round_trip(tmp_path):
    """A loss with a reduction is written as Keras writes it in compile_config, and read back from Keras's file."""
    import json
    import zipfile

    from reference.keras_driver import import_keras

    keras = import_keras()
    for loss in (gdcore.losses.MeanSquaredError("sum"), gdcore.losses.MeanAbsoluteError(None),
                 gdcore.losses.BinaryCrossentropy(reduction="none"),
                 gdcore.losses.SparseCategoricalCrossentropy(reduction="mean_with_sample_weight")):
        model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1)])
        model.compile("sgd", loss)
        model.save(tmp_path / "mine.keras")
        written = json.loads(zipfile.ZipFile(tmp_path / "mine.keras").read("config.json"))["compile_config"]["loss"]
        assert written["class_name"] == loss.keras and written["config"]["reduction"] == loss.reduction
        theirs = keras.models.load_model(tmp_path / "mine.keras")
        assert type(theirs.loss).__name__ == loss.keras and theirs.loss.reduction == loss.reduction
        theirs.save(tmp_path / "theirs.keras")
        back = gdcore.saving.load_model(tmp_path / "theirs.keras")
        assert back.loss == loss and back.loss.reduction == loss.reduction


# --- steps_per_epoch, validation_steps -------------------------------------------------------------


class _Batches(gdcore.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1] += 1


@pytest.mark.parametrize("steps, per_epoch, warned", [(2, [2, 1, 2, 1, 2], 2), (3, [3] * 5, 0), (6, [3] * 5, 5)])
def test_steps_per_epoch_takes_batches_from_one_pass(steps, per_epoch, warned):
    # 10 samples in batches of 4: 3 batches per pass. An epoch stops at the pass's end (warning if it wanted more).
    x = np.arange(10.0)[:, None] / 10
    model = _zero_linear("sum_over_batch_size", engine="numpy")
    counter = _Batches()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, 2 * x + 1, batch_size=4, epochs=5, steps_per_epoch=steps, shuffle=False, verbose=0,
                  callbacks=[counter])
    assert counter.epochs == per_epoch
    assert sum("ran out of data" in str(w.message) for w in caught) == warned
    assert model.optimizer.iterations == sum(per_epoch)


def test_steps_per_epoch_continues_the_pass_by_hand():
    # Batches of 1 over X, steps_per_epoch=3: epoch 1 rows 0, 1, 2; epoch 2 row 3 only (the pass ends): its loss is
    # row 3's loss at the weights after three steps, which a 3-step fit and one step on row 3 reproduce.
    model = _zero_linear("sum_over_batch_size")
    history = model.fit(X, Y, batch_size=1, epochs=2, steps_per_epoch=3, shuffle=False, verbose=0).history
    reference = _zero_linear("sum_over_batch_size")
    reference.fit(X[:3], Y[:3], batch_size=1, epochs=1, shuffle=False, verbose=0)
    last = reference.fit(X[3:], Y[3:], batch_size=1, epochs=1, shuffle=False, verbose=0).history["loss"]
    assert history["loss"][1] == last[0]
    assert [w.tobytes() for w in model.get_weights()] == [w.tobytes() for w in reference.get_weights()]


@pytest.mark.tensorflow
@pytest.mark.parametrize("steps, shuffle, dtype, validation_steps", [
    (2, False, "float32", 2), (2, True, "float64", 5), (5, True, "float32", 1), (1, True, "float64", None)])
def test_steps_per_epoch_bit_identical_to_keras(steps, shuffle, dtype, validation_steps):
    """History (loss, val_loss with validation_steps) and weights at every epoch, as Keras 3's EpochIterator."""
    from reference.keras_driver import keras_dtype

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 1)), rng.normal(size=(20, 1))
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(3, activation="sigmoid"), gdcore.layers.Dense(1)],
                              dtype=dtype, numerics="tensorflow", random="keras")
    model.compile(gdcore.optimizers.Adam(0.1), "mse")
    arguments = dict(batch_size=4, epochs=4, verbose=0, shuffle=shuffle, steps_per_epoch=steps,
                     validation_data=(x[10:], y[10:]), validation_steps=validation_steps)
    with keras_dtype(dtype) as keras, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin = _keras_twin(keras, model, "mse")
        gdcore.utils.set_random_seed(3)  # the shuffle's seed, for both
        theirs = twin.fit(x[:10], y[:10], **arguments).history
        gdcore.utils.set_random_seed(3)
        mine = model.fit(x[:10], y[:10], **arguments).history
    _assert_same_run(mine, theirs, model, twin)
