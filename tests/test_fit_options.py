"""``fit(validation_batch_size=, validation_freq=)``, ``evaluate(steps=)``, ``predict(steps=)`` and a loss's ``name=``/``dtype=``.

Each by hand, between the engines, on bad input and against Keras 3 live
(histories, weights, logs and progress lines, float32 and float64).
"""

import os
import re
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402

X = np.array([[1.0], [2.0], [3.0], [4.0]])
Y = np.array([[0.0], [1.0], [-1.0], [2.0]])


def _zero_linear(engine="numba", dtype="float64", loss="mse"):
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, kernel_initializer="zeros")],
                              dtype=dtype, engine=engine)
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), loss)
    return model


class _TestBatches(gdcore.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.batches, self.keys = 0, []

    def on_test_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        self.keys.append(sorted(logs))


# --- by hand ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_validation_freq_by_hand(engine):
    # One SGD step at learning rate 1 from W = b = 0 on X, Y (batch 4, MSE): dL/dW = -(1/4)(2*1*2 - 2*1*3 + 2*2*4)
    # = -3.5, dL/db = -(1/4)(2 - 2 + 4) = -1: W = 3.5, b = 1. Predictions 4.5, 8, 11.5, 15; errors -4.5, -7, -12.5, -13;
    # val_loss = (20.25 + 49 + 156.25 + 169) / 4 = 98.625, after epoch 1 only.
    model = _zero_linear(engine)
    history = model.fit(X, Y, batch_size=4, epochs=3, shuffle=False, verbose=0, validation_data=(X, Y),
                        validation_freq=[1]).history
    assert history["val_loss"] == [98.625] and len(history["loss"]) == 3
    history = _zero_linear(engine).fit(X, Y, batch_size=4, epochs=5, shuffle=False, verbose=0,
                                       validation_data=(X, Y), validation_freq=2).history
    assert len(history["loss"]) == 5 and len(history["val_loss"]) == 2
    history = _zero_linear(engine).fit(X, Y, batch_size=4, epochs=2, verbose=0, validation_data=(X, Y),
                                       validation_freq=3).history
    assert list(history) == ["loss"]  # never validated: no val_ key at all, as Keras's History


def test_validation_freq_counts_from_initial_epoch_and_callbacks_see_val_keys_only_then():
    counter = _TestBatches()
    model = _zero_linear()
    model.fit(X, Y, batch_size=4, epochs=5, initial_epoch=2, verbose=0, validation_data=(X, Y), validation_freq=2,
              validation_batch_size=3, callbacks=[counter])
    # epochs 3, 4, 5 (from 1): validation after epoch 4 only, in two batches of 3 and 1
    assert counter.keys == [["loss"], ["loss", "val_loss"], ["loss"]] and counter.batches == 2


def test_validation_batch_size_is_the_validation_pass_batch_size():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 2)), rng.normal(size=(10, 1))
    for engine in ("numba", "numpy"):
        model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(1)], dtype="float32", engine=engine, seed=1)
        model.compile("sgd", "mse", metrics=["mae"])
        history = model.fit(x[:4], y[:4], batch_size=4, epochs=1, verbose=0, validation_data=(x, y),
                            validation_batch_size=3).history
        assert [history["val_loss"][0], history["val_mae"][0]] == model.evaluate(x, y, batch_size=3, verbose=0)
        # fit's batch_size is the default, unclamped by a training set smaller than it (Keras validates in 32s)
        model.fit(x[:4], y[:4], batch_size=32, epochs=1, verbose=0, validation_data=(x, y))
        assert model.history.history["val_loss"][0] == model.evaluate(x, y, batch_size=32, verbose=0)[0]


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_evaluate_and_predict_steps_by_hand(engine):
    model = _zero_linear(engine)
    # y_pred = 0: the first two batches of 1 are rows 0 and 1, losses 0 and 1: mean 0.5
    assert model.evaluate(X, Y, batch_size=1, steps=2, verbose=0) == 0.5
    # no batch_size: ceil(4 / 1) = 4 rows per batch, as Keras's array adapter (not 32): the one step is every row
    assert model.evaluate(X, Y, steps=1, verbose=0) == (0 + 1 + 1 + 4) / 4
    with pytest.warns(UserWarning, match="ran out of data"):
        assert model.evaluate(X, Y, batch_size=1, steps=9, verbose=0) == (0 + 1 + 1 + 4) / 4
    assert model.predict(X, batch_size=3, steps=1, verbose=0).shape == (3, 1)
    with pytest.warns(UserWarning, match="ran out of data"):
        assert model.predict(X, batch_size=3, steps=3, verbose=0).shape == (4, 1)


def test_batch_size_from_steps_per_epoch():
    # no batch_size, steps_per_epoch=2 over 4 rows: batches of 2 (Keras), not one batch of 32
    model = _zero_linear()
    model.fit(X, Y, steps_per_epoch=2, epochs=1, shuffle=False, verbose=0)
    reference = _zero_linear()
    reference.fit(X, Y, batch_size=2, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 2
    assert [w.tobytes() for w in model.get_weights()] == [w.tobytes() for w in reference.get_weights()]


def test_loss_name_and_dtype():
    loss = gdcore.losses.MeanSquaredError(name="my_loss", dtype="float64")
    assert loss == gdcore.losses.MEAN_SQUARED_ERROR and loss.keras_name == "my_loss" and loss.dtype == "float64"
    assert gdcore.losses.MeanSquaredError(name="mean_squared_error") is gdcore.losses.MEAN_SQUARED_ERROR
    assert gdcore.losses.BinaryCrossentropy(from_logits=True).keras_name == "binary_crossentropy"
    # a called loss computes in its dtype: (0 + 1 + 1 + 4) / 4 in float64 whatever floatx() is
    value = loss(Y, np.zeros((4, 1)))
    assert value.dtype == np.float64 and value == 1.5
    model = _zero_linear(loss=gdcore.losses.MeanSquaredError(name="my_loss", dtype="float64"))
    history = model.fit(X, Y, batch_size=4, epochs=1, verbose=0, validation_data=(X, Y)).history
    assert list(history) == ["loss", "val_loss"] and history["val_loss"] == [98.625]  # named "loss", as Keras
    with pytest.raises(NotImplementedError, match="dtype='float64' in a float32 model"):  # refused when compiled
        _zero_linear(dtype="float32", loss=gdcore.losses.MeanSquaredError(dtype="float64"))
    unbuilt = gdcore.Sequential([gdcore.layers.Dense(1)], dtype="float32")
    unbuilt.compile("sgd", gdcore.losses.MeanSquaredError(dtype="float64"))
    with pytest.raises(NotImplementedError, match="dtype='float64' in a float32 model"):  # or when it is built
        unbuilt.fit(X, Y, verbose=0)


def test_engines_give_the_same_bits():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(13, 2)), rng.normal(size=(13, 1))
    runs = []
    for engine in ("numba", "numpy"):
        model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(3, activation="tanh"), gdcore.layers.Dense(1)],
                                  engine=engine, seed=4, numerics="tensorflow")
        model.compile(gdcore.optimizers.Adam(0.05), "mse", metrics=["mae"])
        history = model.fit(x[:9], y[:9], batch_size=4, epochs=5, verbose=0, validation_data=(x[9:], y[9:]),
                            validation_freq=2, validation_batch_size=3).history
        runs.append((history, [w.tobytes() for w in model.get_weights()],
                     model.evaluate(x, y, steps=2, batch_size=5, verbose=0),
                     model.predict(x, steps=2, batch_size=5, verbose=0).tobytes()))
    assert runs[0] == runs[1]


# --- bad input -------------------------------------------------------------------------------------


def test_bad_input_is_refused_by_name():
    model = _zero_linear()
    for value, error, message in [(0, ValueError, "validation_freq must be an integer >= 1, got 0"),
                                  (-2, ValueError, "validation_freq must be an integer >= 1, got -2"),
                                  (2.5, TypeError, "validation_freq must be an integer >= 1 or a list"),
                                  (True, TypeError, "validation_freq must be"), ((1, 2), TypeError, "validation_freq"),
                                  ("2", TypeError, "validation_freq"),
                                  ([0], ValueError, "each epoch of validation_freq must be an integer >= 1")]:
        with pytest.raises(error, match=re.escape(message)):
            model.fit(X, Y, validation_data=(X, Y), validation_freq=value, verbose=0)
    for value in (0, -1, 2.5, "3"):
        with pytest.raises(ValueError, match=f"validation_batch_size must be an integer >= 1, got {value!r}"):
            model.fit(X, Y, validation_data=(X, Y), validation_batch_size=value, verbose=0)
    for value in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=f"steps must be an integer >= 1, got {value!r}"):
            model.evaluate(X, Y, steps=value, verbose=0)
        with pytest.raises(ValueError, match=f"steps must be an integer >= 1, got {value!r}"):
            model.predict(X, steps=value, verbose=0)
    with pytest.raises(ValueError, match="evaluate: arguments not recognized: {'foo': 1}"):
        model.evaluate(X, Y, foo=1)
    with pytest.raises(TypeError, match="foo"):
        model.fit(X, Y, foo=1)
    with pytest.raises(TypeError, match="foo"):
        model.predict(X, foo=1)
    assert model.optimizer.iterations == 0
    with pytest.raises(ValueError, match="dtype must be None, 'float32' or 'float64', got 'int32'"):
        gdcore.losses.MeanSquaredError(dtype="int32")
    with pytest.raises(NotImplementedError, match="dtype='float16' is not supported"):
        gdcore.losses.BinaryCrossentropy(dtype="float16")
    with pytest.raises(TypeError, match="name must be a string, got 3"):
        gdcore.losses.MeanAbsoluteError(name=3)


# --- against Keras, live ---------------------------------------------------------------------------


def _keras_twin(keras, model, loss):
    from reference.keras_driver import _keras_optimizer, to_keras

    twin = to_keras(model, compile=False)
    twin.compile(optimizer=_keras_optimizer(keras, model.optimizer), loss=loss, metrics=["mae"], jit_compile=False)
    return twin


class _Logs(gdcore.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append((epoch, dict(logs)))


def _epoch_lines(out):
    """verbose=2 lines without their timings: ``3/3 - loss: ... - val_loss: ...``."""
    lines = []
    for line in out.splitlines():
        parts = line.split(" - ")
        lines.append(line if len(parts) < 3 else " - ".join([parts[0], *parts[3:]]))
    return [line for line in lines if line.startswith(("Epoch", "3/3"))]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype, freq, initial_epoch", [("float32", 2, 0), ("float64", [1, 4, 9], 0),
                                                        ("float32", 3, 1), ("float64", 2, 1)])
def test_fit_bit_identical_to_keras(dtype, freq, initial_epoch, capsys):
    """History (the epochs that validated), each epoch's logs, weights and the progress lines, as Keras's."""
    from reference.keras_driver import keras_dtype

    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(17, 2)), rng.normal(size=(17, 1))
    model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(3, activation="sigmoid"), gdcore.layers.Dense(1)],
                              dtype=dtype, numerics="tensorflow", seed=11)
    model.compile(gdcore.optimizers.Adam(0.05), "mse", metrics=["mae"])
    arguments = dict(batch_size=4, epochs=5, shuffle=False, validation_data=(x[10:], y[10:]), validation_freq=freq,
                     validation_batch_size=3, initial_epoch=initial_epoch)
    with keras_dtype(dtype) as keras:
        twin = _keras_twin(keras, model, "mse")
        their_logs = _Logs()
        capsys.readouterr()
        theirs = twin.fit(x[:10], y[:10], verbose=2, callbacks=[their_logs], **arguments).history
        their_lines = _epoch_lines(capsys.readouterr().out)
    mine_logs = _Logs()
    mine = model.fit(x[:10], y[:10], verbose=2, callbacks=[mine_logs], **arguments).history
    assert _epoch_lines(capsys.readouterr().out) == their_lines
    assert mine == theirs and mine_logs.seen == their_logs.seen
    for a, b in zip(model.get_weights(), twin.get_weights()):
        assert a.tobytes() == np.asarray(b).tobytes()
    # the History-only loop (verbose=0, no callbacks) gives the same history
    again = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(3, activation="sigmoid"), gdcore.layers.Dense(1)],
                              dtype=dtype, numerics="tensorflow", seed=11)
    again.compile(gdcore.optimizers.Adam(0.05), "mse", metrics=["mae"])
    assert again.fit(x[:10], y[:10], verbose=0, **arguments).history == theirs


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluate_and_predict_steps_bit_identical_to_keras(dtype):
    from reference.keras_driver import keras_dtype

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(11, 2)), rng.normal(size=(11, 1))
    model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(4, activation="tanh"), gdcore.layers.Dense(1)],
                              dtype=dtype, numerics="tensorflow", seed=5)
    model.compile("sgd", "mse", metrics=["mae"])
    with keras_dtype(dtype) as keras:
        twin = _keras_twin(keras, model, "mse")
        for batch_size, steps in [(4, 1), (4, 2), (4, 3), (None, 2), (None, 5), (4, 7), (None, 20)]:
            with warnings.catch_warnings(record=True) as theirs_warned:
                warnings.simplefilter("always")
                theirs = twin.evaluate(x, y, batch_size=batch_size, steps=steps, verbose=0)
                their_outputs = twin.predict(x, batch_size=batch_size, steps=steps, verbose=0)
            with warnings.catch_warnings(record=True) as mine_warned:
                warnings.simplefilter("always")
                mine = model.evaluate(x, y, batch_size=batch_size, steps=steps, verbose=0)
                outputs = model.predict(x, batch_size=batch_size, steps=steps, verbose=0)
            where = f"batch_size={batch_size}, steps={steps}"
            assert mine == theirs, where
            assert outputs.shape == their_outputs.shape and outputs.tobytes() == their_outputs.tobytes(), where
            ran_out = [sum("ran out of data" in str(w.message) for w in caught) for caught in (mine_warned,
                                                                                              theirs_warned)]
            assert ran_out[0] == ran_out[1], where


@pytest.mark.tensorflow
def test_batch_size_from_steps_bit_identical_to_keras():
    from reference.keras_driver import keras_dtype

    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(17, 1)), rng.normal(size=(17, 1))
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1)], numerics="tensorflow", seed=3)
    model.compile("sgd", "mse", metrics=["mae"])
    arguments = dict(epochs=3, shuffle=False, verbose=0, steps_per_epoch=3, validation_data=(x[10:], y[10:]),
                     validation_steps=2)
    with keras_dtype("float32") as keras, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin = _keras_twin(keras, model, "mse")
        theirs = twin.fit(x[:10], y[:10], **arguments).history
        mine = model.fit(x[:10], y[:10], **arguments).history
    assert mine == theirs
    for a, b in zip(model.get_weights(), twin.get_weights()):
        assert a.tobytes() == np.asarray(b).tobytes()


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loss_name_and_dtype_as_keras(dtype):
    """The named loss's history keys and bits; a called loss's dtype and bits, as Keras's."""
    from reference.keras_driver import keras_dtype

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 1)), rng.normal(size=(10, 1))
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1)], dtype=dtype, numerics="tensorflow", seed=3)
    model.compile("sgd", gdcore.losses.MeanSquaredError(name="my_loss", dtype=dtype), metrics=["mae"])
    with keras_dtype(dtype) as keras:
        twin = _keras_twin(keras, model, keras.losses.MeanSquaredError(name="my_loss", dtype=dtype))
        theirs = twin.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, validation_data=(x, y)).history
    assert model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, validation_data=(x, y)).history == theirs
    from reference.keras_driver import to_keras

    with keras_dtype(dtype):
        converted = to_keras(model).loss  # the reference driver's twin carries the name and dtype
    assert (type(converted).__name__, converted.name, converted.dtype) == ("MeanSquaredError", "my_loss", dtype)
    for other in ("float32", "float64"):
        for name in ("MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy"):
            target = (y > 0).astype(float) if name == "BinaryCrossentropy" else y
            prediction = 1 / (1 + np.exp(-x)) if name == "BinaryCrossentropy" else x
            with keras_dtype(dtype) as keras:
                expected = keras.ops.convert_to_numpy(getattr(keras.losses, name)(dtype=other)(target, prediction))
            saved = gdcore.config.floatx(), gdcore.config.numerics()
            gdcore.config.set_floatx(dtype)
            gdcore.config.set_numerics("tensorflow")
            try:
                mine = np.asarray(getattr(gdcore.losses, name)(dtype=other)(target, prediction))
            finally:
                gdcore.config.set_floatx(saved[0])
                gdcore.config.set_numerics(saved[1])
            assert mine.dtype == expected.dtype and mine.tobytes() == expected.tobytes(), (name, other)


@pytest.mark.tensorflow
def test_keras_file_round_trip(tmp_path):
    """A loss's name is written as Keras writes it (its dtype is not, as Keras's), and read back from Keras's file."""
    import json
    import zipfile

    from reference.keras_driver import import_keras

    keras = import_keras()
    for loss in (gdcore.losses.MeanSquaredError(name="my_loss"),
                 gdcore.losses.BinaryCrossentropy(from_logits=True, name="bce", dtype="float32")):
        model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1)])
        model.compile("sgd", loss)
        model.save(tmp_path / "mine.keras")
        written = json.loads(zipfile.ZipFile(tmp_path / "mine.keras").read("config.json"))["compile_config"]["loss"]
        twin = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        twin.compile("sgd", getattr(keras.losses, loss.keras)(**({"from_logits": True} if loss.from_logits else {}),
                                                             name=loss.keras_name, dtype=loss.dtype))
        twin.save(tmp_path / "theirs.keras")
        expected = json.loads(zipfile.ZipFile(tmp_path / "theirs.keras").read("config.json"))["compile_config"]["loss"]
        assert written == expected
        theirs = keras.models.load_model(tmp_path / "mine.keras")
        assert theirs.loss.name == loss.keras_name
        back = gdcore.saving.load_model(tmp_path / "theirs.keras")
        assert back.loss == loss and back.loss.keras_name == loss.keras_name and back.loss.dtype is None
