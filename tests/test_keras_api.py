"""Keras line for line: the functional API, Keras's module shape, summary, progress, callbacks and Ctrl-C.

The seed notebook's Keras cells run after ``import gdcore as keras``; the
summaries, hook orders and logs of callbacks, ``EarlyStopping`` and the
learning-rate callbacks are compared with live Keras 3 (same initial weights
and batch order through :func:`reference.to_keras`, ``numerics="tensorflow"``
so that the numbers are Keras's to the bit).
"""

import os
import signal
import threading

import numpy as np
import pytest

import gdcore
import gdcore as keras

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def train():
    return gdcore.datasets.make_regression_dataset(n_samples=100, noise=1.25, random_state=42)


# --- the seed notebook's cells, as written for Keras ------------------------------------------------


def test_seed_notebook_linear_neuron_cell(train, capsys):
    LOSS, BATCH_SIZE, EPOCHS, LR = "mean_squared_error", 20, 25, 0.01
    keras.backend.clear_session()
    keras.utils.set_random_seed(123)
    initial_weights = keras.initializers.RandomNormal(0, 0.05, 123)
    inputs = keras.Input(shape=(1,), name="input")
    outputs = keras.layers.Dense(1, kernel_initializer=initial_weights, name="output")(inputs)
    linear_model_keras = keras.Model(inputs, outputs)
    linear_model_keras.compile(optimizer=keras.optimizers.SGD(learning_rate=LR), loss=LOSS)
    fit_history = linear_model_keras.fit(x=train[["X"]], y=train["y"], batch_size=BATCH_SIZE, epochs=EPOCHS,
                                         shuffle=True)
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("Epoch")] == [f"Epoch {e}/25" for e in range(1, 26)]
    assert len(fit_history.history["loss"]) == 25
    linear_model_keras.summary()
    keras.utils.plot_model(linear_model_keras)
    out = capsys.readouterr().out
    assert 'Model: "functional"' in out and "input (InputLayer)" in out and "output (Dense)" in out
    assert "Trainable params: 2 (8.00 B)" in out and "pydot" in out
    weights = linear_model_keras.get_weights()
    assert [w.dtype for w in weights] == [np.float32, np.float32] and [w.shape for w in weights] == [(1, 1), (1,)]
    predictions = linear_model_keras.predict(train[["X"]], verbose=0)
    assert predictions.shape == (100, 1) and capsys.readouterr().out == ""


def test_seed_notebook_hidden_layer_cell(train):
    keras.utils.set_random_seed(123)
    inputs = keras.Input(shape=(1,))
    hidden = keras.layers.Dense(8, activation="sigmoid")(inputs)
    outputs = keras.layers.Dense(1)(hidden)
    model2 = keras.Model(inputs, outputs)
    model2.compile(optimizer=keras.optimizers.Adam(learning_rate=0.1), loss="mse")
    history = model2.fit(train[["X"]], train["y"], batch_size=20, epochs=25, verbose=0)
    assert [layer.name for layer in model2.layers] == ["input_layer", "dense", "dense_1"]
    assert history.history["loss"][-1] < history.history["loss"][0]


# --- module shape ------------------------------------------------------------------------------------


def test_keras_names_exist():
    for name in ("Input", "Model", "Sequential"):
        assert callable(getattr(keras, name))
    assert keras.layers.Dense and keras.layers.InputLayer and keras.initializers.GlorotUniform
    assert keras.optimizers.SGD and keras.optimizers.Adam and keras.optimizers.RMSprop and keras.optimizers.Adagrad
    assert keras.losses.MeanSquaredError and keras.callbacks.EarlyStopping and keras.callbacks.History
    assert keras.models.Sequential is keras.Sequential and keras.models.Model is keras.Model


def test_config_and_session():
    keras.config.set_floatx("float64")
    try:
        assert keras.config.floatx() == "float64" == keras.backend.floatx()
        model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
        assert model.dtype == np.float64
    finally:
        keras.config.set_floatx("float32")
    gdcore.config.set_numerics("tensorflow")
    try:
        assert keras.Sequential([keras.layers.Dense(1)]).profile.name == "tensorflow"
    finally:
        gdcore.config.set_numerics("plain")
    with pytest.raises(ValueError, match="floatx"):
        keras.config.set_floatx("float16")
    keras.backend.clear_session()
    assert keras.layers.Dense(1).name == "dense" and keras.layers.Dense(1).name == "dense_1"
    keras.backend.clear_session()
    assert keras.layers.Dense(1).name == "dense"


def test_unsupported_features_are_named():
    with pytest.raises(NotImplementedError, match="keras.metrics.AUC"):
        keras.metrics.AUC
    with pytest.raises(NotImplementedError, match="lora_rank"):
        keras.layers.Dense(1, lora_rank=4)
    with pytest.raises(NotImplementedError, match="loss_weights"):
        keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)]).compile(loss="mse", loss_weights=[0.5])


def test_set_random_seed_makes_runs_repeat(train):
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(7)
        model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(train[["X"]], train["y"], epochs=2, verbose=0)
        weights.append(np.concatenate([w.ravel() for w in model.get_weights()]))
    assert weights[0].tobytes() == weights[1].tobytes()


# --- the functional API ---------------------------------------------------------------------


def test_functional_model_is_a_chain_with_names():
    inputs = keras.Input(shape=(3,), name="features")
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="out")(hidden)
    model = keras.Model(inputs, outputs, name="net")
    assert model.name == "net" and [layer.name for layer in model.layers] == ["features", "hidden", "out"]
    assert model.count_params() == 3 * 4 + 4 + 4 + 1 and model.get_layer("hidden").units == 4
    assert inputs.shape == (None, 3) and outputs.shape == (None, 1)


def test_graphs_that_are_not_chains_are_refused():
    inputs = keras.Input(shape=(2,))
    a = keras.layers.Dense(3)(inputs)
    with pytest.raises(ValueError, match="chain"):
        keras.Model([inputs, keras.Input(shape=(2,))], a)
    with pytest.raises(ValueError, match="chain"):
        keras.Model(inputs, [a, keras.layers.Dense(1)(a)])
    with pytest.raises(ValueError, match="do not come from these inputs"):
        keras.Model(keras.Input(shape=(2,)), a)


def test_a_layer_belongs_to_one_model():
    dense = keras.layers.Dense(1)
    keras.Sequential([keras.Input(shape=(1,)), dense])
    with pytest.raises(ValueError, match="already belongs to model"):
        keras.Sequential([keras.Input(shape=(1,)), dense])


def test_build_with_another_shape_is_refused():
    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="already built"):
        model.build((None, 5))


# --- Keras live: summary, callbacks, early stopping --------------------------------------------------


def _twin_pair(hidden=8, seed=3, optimizer=None):
    from reference.keras_driver import to_keras

    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(hidden, activation="sigmoid"),
                              keras.layers.Dense(1)], numerics="tensorflow", seed=seed)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(learning_rate=0.05), loss="mse")
    return model, to_keras(model)


@pytest.mark.tensorflow
def test_summary_prints_what_keras_prints(train):
    import keras as real

    real.backend.clear_session()
    keras.backend.clear_session()
    texts = []
    for library in (real, keras):
        inputs = library.Input(shape=(1,), name="input")
        outputs = library.layers.Dense(1, name="output")(library.layers.Dense(8, activation="sigmoid")(inputs))
        model = library.Model(inputs, outputs)
        lines = []
        model.summary(print_fn=lines.append, line_length=80)
        model.compile(optimizer=library.optimizers.Adam(0.1), loss="mse")
        model.fit(train[["X"]].to_numpy(), train["y"].to_numpy(), epochs=1, verbose=0)
        model.summary(print_fn=lines.append, line_length=80)
        unbuilt = library.Sequential([library.layers.Dense(2)], name="seq")
        unbuilt.summary(print_fn=lines.append, line_length=80)
        texts.append("\n".join(lines))
    assert texts[1] == texts[0]


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def _record(name):
        def hook(self, *args, logs=None):
            keys = tuple(sorted(logs)) if isinstance(logs, dict) else None
            values = {k: v for k, v in (logs or {}).items() if isinstance(v, float)}
            self.calls.append((name, *args, keys, tuple(sorted(values.items()))))
        return hook

    for _name in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
                  "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end"):
        locals()[_name] = _record(_name)


def _keras_recorder():
    import keras as real

    class Recorder(real.callbacks.Callback):
        pass

    for name in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
                 "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end"):
        setattr(Recorder, name, _Recorder.__dict__[name])
    recorder = Recorder()
    recorder.calls = []
    return recorder


@pytest.mark.tensorflow
def test_callbacks_are_called_as_keras_calls_them(train):
    x, y = train[["X"]].to_numpy()[:50], train["y"].to_numpy()[:50]
    model, twin = _twin_pair()
    mine, theirs = _Recorder(), _keras_recorder()
    model.fit(x, y, batch_size=20, epochs=2, shuffle=False, verbose=0, validation_data=(x[:12], y[:12]),
              callbacks=[mine])
    twin.fit(x, y, batch_size=20, epochs=2, shuffle=False, verbose=0, validation_data=(x[:12], y[:12]),
             callbacks=[theirs])
    assert [call[:3] for call in mine.calls] == [call[:3] for call in theirs.calls]
    # Logs: the same keys and, to the bit in float32, the same running losses.
    assert mine.calls == [tuple(c[:-1]) + (tuple((k, float(np.float32(v))) for k, v in c[-1]),) for c in theirs.calls]


@pytest.mark.tensorflow
@pytest.mark.parametrize("restore", [False, True])
def test_early_stopping_stops_where_keras_stops(train, restore):
    x, y = train[["X"]].to_numpy(), train["y"].to_numpy()
    model, twin = _twin_pair(optimizer=keras.optimizers.SGD(learning_rate=0.3))
    import keras as real

    histories = []
    for library, network in ((keras, model), (real, twin)):
        stop = library.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=restore,
                                               min_delta=1e-3)
        histories.append(network.fit(x, y, batch_size=10, epochs=60, shuffle=False, verbose=0, callbacks=[stop],
                                     validation_data=(x[:30], y[:30])).history)
    assert len(histories[0]["loss"]) == len(histories[1]["loss"]) < 60
    assert np.array_equal(np.float32(histories[0]["val_loss"]), np.float32(histories[1]["val_loss"]))
    for mine, theirs in zip(model.get_weights(), twin.get_weights()):
        assert mine.tobytes() == np.asarray(theirs).tobytes()


@pytest.mark.tensorflow
def test_learning_rate_callbacks_follow_keras(train):
    x, y = train[["X"]].to_numpy(), train["y"].to_numpy()
    import keras as real

    model, twin = _twin_pair(optimizer=keras.optimizers.SGD(learning_rate=0.1))
    histories = []
    for library, network in ((keras, model), (real, twin)):
        callbacks = [library.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch % 2 else lr),
                     library.callbacks.ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5, min_delta=10.0)]
        histories.append(network.fit(x, y, batch_size=20, epochs=6, shuffle=False, verbose=0, callbacks=callbacks).history)
    assert histories[0]["learning_rate"] == histories[1]["learning_rate"]
    assert np.array_equal(np.float32(histories[0]["loss"]), np.float32(histories[1]["loss"]))


def test_stop_training_from_a_batch_callback_ends_the_epoch_as_keras_does(train):
    x, y = train[["X"]].to_numpy(), train["y"].to_numpy()
    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    stopper = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: setattr(model, "stop_training", batch == 2))
    history = model.fit(x, y, batch_size=10, epochs=5, verbose=0, callbacks=[stopper])
    assert len(history.history["loss"]) == 1 and model.optimizer.iterations == 3


# --- Ctrl-C ---------------------------------------------------------------------------------------


def _seeded_model():
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)],
                             seed=11)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_ctrl_c_leaves_a_consistent_state_that_training_continues_from():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20000, 1))
    y = np.sin(x[:, 0])
    model = _seeded_model()
    model.fit(x[:40], y[:40], epochs=1, verbose=0, shuffle=False)  # compile outside the timed part
    # Python's own Ctrl-C handling, whatever an earlier test's event loop or worker pool left installed or
    # blocked (gdcore defers to a handler the user installed: then Ctrl-C is theirs)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt, match="fit interrupted after"):  # gdcore's, at a consistent point
            model.fit(x, y, batch_size=32, epochs=10**6, verbose=0, shuffle=False)
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    steps_per_epoch = -(-x.shape[0] // 32)
    done = model.optimizer.iterations - 2  # the two warm-up steps
    epochs, batches = divmod(done, steps_per_epoch)
    assert len(model.history.history["loss"]) == epochs and done > 0
    # An uninterrupted run stopped at the same step: the same bits.
    reference = _seeded_model()
    reference.fit(x[:40], y[:40], epochs=1, verbose=0, shuffle=False)
    if epochs:
        reference.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=False)
    if batches:
        reference.fit(x[: batches * 32], y[: batches * 32], batch_size=32, epochs=1, verbose=0, shuffle=False)
    assert reference.optimizer.iterations == model.optimizer.iterations
    assert model.params.tobytes() == reference.params.tobytes()
    assert model.optimizer.slots.tobytes() == reference.optimizer.slots.tobytes()
    model.fit(x[:64], y[:64], epochs=1, verbose=0, shuffle=False)  # and training goes on


# --- Keras's random streams, end to end (no weights or orders copied across) ---------------------------


def _seed_cell(library, hidden, dtype, x, y, optimizer, loss, batch_size, epochs):
    library.backend.clear_session()
    library.utils.set_random_seed(123)
    inputs = library.Input(shape=(1,))
    if hidden:
        outputs = library.layers.Dense(1)(library.layers.Dense(hidden, activation="sigmoid")(inputs))
    else:
        outputs = library.layers.Dense(1, kernel_initializer=library.initializers.RandomNormal(0, 0.05, 123))(inputs)
    options = {"numerics": "tensorflow", "dtype": dtype} if library is keras else {}
    model = library.Model(inputs, outputs, **options)
    model.compile(optimizer=optimizer(library), loss=loss, **({} if library is keras else {"jit_compile": False}))
    epochs_weights, history = [], {"loss": []}
    for _ in range(epochs):  # one fit per epoch: Keras 3 visits the same permutation in each
        h = model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        history["loss"] += h.history["loss"]
        epochs_weights.append([np.asarray(w) for w in model.get_weights()])
    return epochs_weights, history


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["linear-sgd-mse-b20", "sigmoid8-adam-mse-b20", "linear-sgd-mae-b1", "sigmoid8-adam-mae-b30"])
def test_seeded_shuffled_keras_cells_give_keras_bits(train, case, dtype):
    from reference.keras_driver import keras_dtype

    architecture, optimizer, loss, batch = case.split("-")
    hidden = 8 if architecture.startswith("sigmoid") else 0
    make = (lambda lib: lib.optimizers.SGD(learning_rate=0.01)) if optimizer == "sgd" else \
        (lambda lib: lib.optimizers.Adam(learning_rate=0.1))
    x, y = train[["X"]].to_numpy(), train["y"].to_numpy()
    epochs = 5 if batch == "b1" else 10
    mine = _seed_cell(keras, hidden, dtype, x, y, make, loss, int(batch[1:]), epochs)
    with keras_dtype(dtype) as real:
        theirs = _seed_cell(real, hidden, dtype, x, y, make, loss, int(batch[1:]), epochs)
    for epoch, (ours, keras_weights) in enumerate(zip(mine[0], theirs[0]), start=1):
        for a, b in zip(ours, keras_weights):
            assert a.tobytes() == np.asarray(b, a.dtype).tobytes(), f"epoch {epoch}: weights {a.ravel()[:3]} vs {b.ravel()[:3]}"
    assert np.array_equal(np.asarray(mine[1]["loss"], dtype), np.asarray(theirs[1]["loss"], dtype))


@pytest.mark.tensorflow
def test_tensorflow_global_seed_decides_the_shuffle_as_in_keras(train):
    """The seed cell calls ``tf.random.set_seed(123)``, not Keras's: gdcore's shuffle reads TensorFlow's seed too."""
    import tensorflow as tf

    from reference.keras_driver import import_keras

    real = import_keras()
    x, y = train[["X"]].to_numpy(), train["y"].to_numpy()
    results = []
    for library in (keras, real):
        library.backend.clear_session()
        tf.random.set_seed(123)
        inputs = library.Input(shape=(1,), name="input")
        outputs = library.layers.Dense(1, kernel_initializer=library.initializers.RandomNormal(0, 0.05, 123),
                                       name="output")(inputs)
        options = {"numerics": "tensorflow"} if library is keras else {}
        model = library.Model(inputs, outputs, **options)
        model.compile(optimizer=library.optimizers.SGD(learning_rate=0.01), loss="mean_squared_error")
        history = model.fit(x=x, y=y, batch_size=20, epochs=25, shuffle=True, verbose=0)
        results.append(([np.asarray(w) for w in model.get_weights()], history.history["loss"]))
    (ours, our_loss), (theirs, their_loss) = results
    assert [w.tobytes() for w in ours] == [np.asarray(w, np.float32).tobytes() for w in theirs]
    assert np.array_equal(np.float32(our_loss), np.float32(their_loss))
    assert [w.ravel().tolist() for w in ours] == [[np.float32("1.0373392")], [np.float32("1.7691401")]]
    keras.utils.set_random_seed(5)  # and gdcore's own call sets TensorFlow's seed, as Keras's does
    from tensorflow.python.eager import context

    assert gdcore.random.tensorflow_seed() == 5 and context.global_seed() == 5
