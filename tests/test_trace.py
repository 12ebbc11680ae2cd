"""gdcore.trace: a traced run is the same run, bit for bit, and records what fit did."""

import math
import warnings

import numpy as np
import pytest

import gdcore
from gdcore.trace import TraceCallback, fit_trace


def linear_neuron(optimizer=None, loss="mse", dtype="float32", engine="numba", seed=0):
    model = gdcore.Sequential(
        [gdcore.Input(shape=(1,)), gdcore.layers.Dense(1, kernel_initializer=gdcore.initializers.RandomNormal(0, 0.25, seed=123))],
        dtype=dtype, engine=engine, seed=seed)
    model.compile(optimizer=optimizer or gdcore.optimizers.SGD(learning_rate=0.01), loss=loss)
    return model


def sigmoid_net(optimizer=None, engine="numba", seed=0):
    model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(8, activation="sigmoid"), gdcore.layers.Dense(1)],
                              engine=engine, seed=seed)
    model.compile(optimizer=optimizer or gdcore.optimizers.Adam(learning_rate=0.1), loss="mse")
    return model


@pytest.fixture(scope="module")
def data():
    train = gdcore.datasets.make_regression_dataset(100, noise=1.25, random_state=42)
    test = gdcore.datasets.make_regression_dataset(30, noise=1.25, random_state=65)
    return train[["X"]], train["y"], test[["X"]], test["y"]


def same_bits(left, right):
    return all(a.dtype == b.dtype and a.tobytes() == b.tobytes() for a, b in zip(left, right))


def final_weights_from_trace(trace, model):
    """The last epoch's rows of trace.weights, reshaped like get_weights()."""
    last = trace.weights[trace.weights["epoch"] == trace.n_epochs]["value"].to_numpy()
    return [array for array in np.split(last.astype(model.dtype), np.cumsum([w.size for w in model.get_weights()])[:-1])]


def test_trace_records_history_and_final_weights(data):
    x, y, x_val, y_val = data
    model = linear_neuron()
    initial = model.get_weights()
    trace = fit_trace(model, x, y, epochs=6, batch_size=30, validation_data=(x_val, y_val))
    losses = trace.losses
    assert trace.history is model.history
    assert losses.loc[losses.metric == "loss_history", "value"].tolist() == trace.history.history["loss"]
    assert losses.loc[losses.metric == "val_loss", "value"].tolist()[1:] == trace.history.history["val_loss"]
    assert losses.loc[losses.metric == "loss_history", "epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    assert same_bits(final_weights_from_trace(trace, model), model.get_weights())
    epoch0 = trace.weights[trace.weights.epoch == 0]
    assert epoch0["parameter"].tolist() == ["dense/kernel[0,0]", "dense/bias[0]"]
    assert epoch0["value"].tolist() == [float(initial[0][0, 0]), float(initial[1][0])]


def test_traced_run_is_the_untraced_run(data):
    """Same seed, shuffle=True: tracing draws the same permutations and gives the same bits."""
    x, y, _, _ = data
    traced, plain = sigmoid_net(seed=3), sigmoid_net(seed=3)
    trace = fit_trace(traced, x, y, epochs=5, batch_size=20, shuffle=True)
    history = plain.fit(x, y, epochs=5, batch_size=20, shuffle=True, verbose=0)
    assert trace.history.history == history.history
    assert same_bits(traced.get_weights(), plain.get_weights())


@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize("make", [linear_neuron, sigmoid_net], ids=["linear-sgd", "sigmoid-adam"])
def test_per_step_trace_is_the_same_run(data, engine, make):
    x, y, x_val, y_val = data
    stepped, plain = make(engine=engine, seed=5), make(engine=engine, seed=5)
    trace = fit_trace(stepped, x, y, epochs=3, batch_size=30, shuffle=True, validation_data=(x_val, y_val), per_step=True)
    history = plain.fit(x, y, epochs=3, batch_size=30, shuffle=True, validation_data=(x_val, y_val), verbose=0)
    assert trace.history.history == history.history
    assert same_bits(stepped.get_weights(), plain.get_weights())
    assert stepped.optimizer.iterations == plain.optimizer.iterations == 3 * math.ceil(100 / 30)
    path = trace.path()
    assert len(path) == 1 + 12 and path["step"].tolist() == list(range(13))
    assert path["batch"].tolist()[1:] == [0, 1, 2, 3] * 3
    steps = trace.steps
    # Steps chain: the weights after step s are the weights before step s + 1.
    before = steps.pivot(index="step", columns="parameter", values="weight_before")
    after = steps.pivot(index="step", columns="parameter", values="weight_after")
    np.testing.assert_array_equal(before.to_numpy()[1:], after.to_numpy()[:-1])
    assert set(steps.loc[steps.batch == 3, "batch_size"]) == {10}
    # Per-epoch views agree with the per-step record at each epoch's last step.
    epoch_path = trace.path("epoch")
    last_steps = path.groupby("epoch").tail(1)
    np.testing.assert_array_equal(epoch_path[trace.parameter_names].to_numpy(), last_steps[trace.parameter_names].to_numpy())


def test_per_step_gradients_are_the_ones_applied(data):
    """SGD: w_after = fl(w_before - fl(g * learning_rate)) exactly, so the recorded g is the step's gradient."""
    x, y, _, _ = data
    model = linear_neuron(gdcore.optimizers.SGD(learning_rate=0.05))
    steps = fit_trace(model, x, y, epochs=2, batch_size=16, per_step=True).steps
    before = steps["weight_before"].to_numpy(np.float32)
    gradient = steps["gradient"].to_numpy(np.float32)
    expected = before - gradient * np.float32(0.05)
    np.testing.assert_array_equal(steps["weight_after"].to_numpy(np.float32), expected)
    # The batch loss is recorded before the update, as Keras's history uses it.
    first = steps.drop_duplicates("step")
    assert (first["batch_loss"] > 0).all() and len(first) == 2 * 7


def test_loss_end_of_epoch_is_the_full_data_loss(data):
    x, y, _, _ = data
    model = linear_neuron(dtype="float64")
    trace = fit_trace(model, x, y, epochs=4, batch_size=25)
    end = trace.losses[trace.losses.metric == "loss_end_of_epoch"]
    assert end["epoch"].tolist() == [0, 1, 2, 3, 4]
    path = trace.path()
    xs, ys = x["X"].to_numpy(), y.to_numpy()
    for epoch, value in zip(end["epoch"], end["value"]):
        w, b = path.loc[path.epoch == epoch, ["dense/kernel[0,0]", "dense/bias[0]"]].to_numpy()[0]
        assert value == pytest.approx(np.mean((ys - (w * xs + b)) ** 2), rel=1e-12)
    # Keras's history loss mixes weights from the whole epoch: it is not this number.
    history = trace.losses[trace.losses.metric == "loss_history"]["value"].to_numpy()
    assert not np.allclose(history, end["value"].to_numpy()[1:], rtol=1e-3)


def test_predictions_on_training_inputs_and_on_a_grid(data):
    x, y, _, _ = data
    model = linear_neuron()
    trace = fit_trace(model, x, y, epochs=3, batch_size=20)
    predictions = trace.predictions
    assert list(predictions.columns) == ["epoch", "point", "X", "y", "y_pred"]
    assert len(predictions) == 4 * 100
    last = predictions[predictions.epoch == 3]
    np.testing.assert_array_equal(last["y_pred"].to_numpy(), model.predict(x)[:, 0].astype(np.float64))
    np.testing.assert_array_equal(last["y"].to_numpy(), y.to_numpy())

    gridded = fit_trace(linear_neuron(), x, y, epochs=2, batch_size=20, grid=7).predictions
    assert len(gridded) == 3 * 7 and "y" not in gridded
    np.testing.assert_allclose(gridded.loc[gridded.epoch == 0, "X"], np.linspace(x["X"].min(), x["X"].max(), 7))


def test_callback_continues_the_epoch_count_across_fits(data):
    x, y, _, _ = data
    model = linear_neuron()
    callback = TraceCallback(x, y)
    model.fit(x, y, epochs=2, batch_size=20, shuffle=False, verbose=0, callbacks=[callback])
    model.fit(x, y, epochs=3, batch_size=20, shuffle=False, verbose=0, callbacks=[callback])
    trace = callback.trace
    assert trace.n_epochs == 5
    assert trace.path()["epoch"].tolist() == [0, 1, 2, 3, 4, 5]
    assert same_bits(final_weights_from_trace(trace, model), model.get_weights())


def test_per_step_divergence_stops_like_fit(data):
    """A NaN batch loss: the trace keeps the complete epochs and restores their end state, as fit does."""
    x, y, _, _ = data
    stepped, plain = linear_neuron(gdcore.optimizers.SGD(learning_rate=3.0)), linear_neuron(gdcore.optimizers.SGD(learning_rate=3.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trace = fit_trace(stepped, x, y, epochs=40, batch_size=10, shuffle=False, per_step=True)
        history = plain.fit(x, y, epochs=40, batch_size=10, shuffle=False, verbose=0)
    assert sum(issubclass(w.category, gdcore.TrainingDivergedWarning) for w in caught) == 2
    assert trace.history.history == history.history
    assert trace.history.stopped["epoch"] == history.stopped["epoch"] == len(history.epoch)
    assert same_bits(stepped.get_weights(), plain.get_weights())
    assert stepped.optimizer.iterations == plain.optimizer.iterations
    assert trace.path()["step"].iloc[-1] == 10 * len(history.epoch)


def test_per_step_mode_calls_epoch_callbacks(data):
    x, y, _, _ = data

    class StopAfterTwo(gdcore.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch == 1

    model = linear_neuron()
    trace = fit_trace(model, x, y, epochs=10, batch_size=50, per_step=True, callbacks=[StopAfterTwo()])
    assert trace.n_epochs == 2 and len(trace.history.history["loss"]) == 2


# --- classification ---------------------------------------------------------------------

def softmax_layer(loss="sparse_categorical_crossentropy", engine="numpy"):
    model = gdcore.Sequential([gdcore.Input(shape=(2,)), gdcore.layers.Dense(3, activation="softmax")],
                              engine=engine, seed=0)
    model.compile(optimizer=gdcore.optimizers.Adam(learning_rate=0.1), loss=loss)
    return model


def test_trace_of_a_softmax_layer_with_class_indices():
    """Sparse labels are recorded as one column of class indices, and the trace is fit's run."""
    data = gdcore.datasets.make_three_class_dataset()
    x, y = data[["X1", "X2"]], data["y"]
    traced, plain = softmax_layer(), softmax_layer()
    trace = fit_trace(traced, x, y, epochs=3, batch_size=32)
    history = plain.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert same_bits(traced.get_weights(), plain.get_weights())
    assert trace.y.shape == (150, 1) and trace.y[:, 0].tolist() == y.tolist()
    assert trace.losses.query("metric == 'loss_history'")["value"].tolist() == history.history["loss"]
    final = trace.losses.query("metric == 'loss_end_of_epoch' and epoch == 3")["value"].iloc[0]
    assert final == plain.evaluate(x, y, batch_size=150, verbose=0)
    predictions = trace.predictions.query("epoch == 3")
    assert list(predictions.columns) == ["epoch", "point", "X1", "X2", "y", "y_pred_0", "y_pred_1", "y_pred_2"]
    np.testing.assert_array_equal(predictions[["y_pred_0", "y_pred_1", "y_pred_2"]], plain.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        fit_trace(softmax_layer(), x, np.where(y == 2, 3, y), epochs=1)


@pytest.mark.sklearn
@pytest.mark.parametrize("labels", [None, [2, 0, 1], [0, 1]])
def test_confusion_matrix_is_sklearns(labels):
    from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

    from gdcore.trace import confusion_matrix

    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    np.testing.assert_array_equal(matrix.to_numpy(), sklearn_confusion_matrix(y_true, y_pred, labels=labels))
    assert matrix.index.name == "true" and matrix.columns.name == "predicted"
    assert matrix.index.tolist() == matrix.columns.tolist() == (labels or [0, 1, 2])
    # Probabilities: one column is class 1 above 0.5 (as BinaryAccuracy), several columns the largest.
    probabilities = rng.random((60, 3))
    np.testing.assert_array_equal(confusion_matrix(np.eye(3)[y_true], probabilities, labels=labels).to_numpy(),
                                  sklearn_confusion_matrix(y_true, probabilities.argmax(1), labels=labels))
    p = rng.random((60, 1))
    binary = y_true % 2
    np.testing.assert_array_equal(confusion_matrix(binary, p).to_numpy(),
                                  sklearn_confusion_matrix(binary, (p[:, 0] > 0.5).astype(int)))


def test_confusion_matrix_of_a_model():
    from gdcore.trace import confusion_matrix

    data = gdcore.datasets.make_three_class_dataset()
    x, y = data[["X1", "X2"]], data["y"]
    model = softmax_layer()
    model.fit(x, y, epochs=5, batch_size=30, verbose=0)
    matrix = confusion_matrix(y, model, x)
    predicted = model.predict(x, verbose=0).argmax(1)
    assert matrix.to_numpy().sum() == 150 and np.trace(matrix.to_numpy()) == np.sum(predicted == y)
    assert matrix.loc[0].sum() == 50
    assert confusion_matrix(y, model.predict(x, verbose=0)).equals(matrix)
    # String labels work too, as in scikit-learn.
    names = np.array(["a", "b", "c"])
    assert confusion_matrix(names[y], names[predicted]).to_numpy().tolist() == matrix.to_numpy().tolist()


def test_confusion_matrix_refuses_bad_input_by_name():
    from gdcore.trace import confusion_matrix

    with pytest.raises(ValueError, match="x is required"):
        confusion_matrix([0, 1], softmax_layer())
    with pytest.raises(ValueError, match=r"y_pred holds values that are not class labels.*\(n_samples, 1\)"):
        confusion_matrix([0, 1], [0.2, 0.9])
    with pytest.raises(ValueError, match="same number of samples"):
        confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="labels must be a non-empty list of distinct classes"):
        confusion_matrix([0, 1], [0, 1], labels=[0, 0])
    with pytest.raises(ValueError, match="threshold must be a number in"):
        confusion_matrix([0, 1], [[0.2], [0.9]], threshold=float("nan"))
    with pytest.raises(ValueError, match="x is only used with a model"):
        confusion_matrix([0, 1], [0, 1], x=[[0.0], [1.0]])
