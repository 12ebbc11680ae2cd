"""Keras's training semantics: history definition, batch order, state across fit calls, API shapes."""

import numpy as np
import pandas as pd
import pytest

import gdcore
from gdcore import _numba_engine, _numpy_engine, losses
from conftest import build_model, flat_weights


@pytest.fixture(scope="module")
def xy(seed_train):
    return seed_train[["X"]].to_numpy(), seed_train["y"].to_numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", [1, 20, 30, 100])
def test_history_loss_is_the_batch_weighted_mean_of_pre_update_losses(xy, dtype, batch_size):
    x, y = xy
    model = build_model(hidden=[8], dtype=dtype)
    model.compile(optimizer=gdcore.optimizers.Adam(learning_rate=0.1), loss="mse")
    stepper = build_model(hidden=[8], dtype=dtype)
    stepper.compile(optimizer=gdcore.optimizers.Adam(learning_rate=0.1), loss="mse")
    history = model.fit(x, y, batch_size=batch_size, epochs=2, shuffle=False, verbose=0)
    f = np.dtype(dtype).type
    for epoch in range(2):
        total = count = f(0)
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            # The batch loss with the weights *before* this batch's update...
            before = losses.batch_loss(losses.MEAN_SQUARED_ERROR, stepper.profile, yb[:, None].astype(dtype),
                                       _numpy_engine.forward(stepper.profile, xb.astype(dtype), stepper.params, stepper.layout)[-1])
            total, count = total + before * f(len(xb)), count + f(len(xb))
            # ...then one optimizer step on exactly that batch.
            stepper.fit(xb, yb, batch_size=len(xb), epochs=1, shuffle=False, verbose=0)
        assert history.history["loss"][epoch] == float(total / count)
    assert np.array_equal(flat_weights(model), flat_weights(stepper))
    # Not the loss of the end-of-epoch weights, and not the unweighted mean of batch losses.
    if batch_size < len(x):
        assert history.history["loss"][-1] != model.evaluate(x, y, batch_size=len(x))


def test_one_fit_per_epoch_on_permutations_equals_one_long_fit(xy):
    x, y = xy
    rng = np.random.default_rng(0)
    orders = [rng.permutation(len(x)) for _ in range(4)]
    stepwise = build_model(hidden=[8])
    stepwise.compile(optimizer=gdcore.optimizers.Adam(learning_rate=0.1), loss="mae")
    losses_stepwise = [stepwise.fit(x[p], y[p], batch_size=30, epochs=1, shuffle=False, verbose=0).history["loss"][0] for p in orders]
    long = build_model(hidden=[8])
    long.compile(optimizer=gdcore.optimizers.Adam(learning_rate=0.1), loss="mae")
    long._orders = lambda n, epochs, shuffle, batch_size=32: np.array(orders[:epochs])  # impose the same permutations
    history = long.fit(x, y, batch_size=30, epochs=4, verbose=0)
    assert history.history["loss"] == losses_stepwise
    assert np.array_equal(flat_weights(long), flat_weights(stepwise))
    assert long.optimizer.iterations == stepwise.optimizer.iterations == 4 * 4


def test_shuffle_false_visits_consecutive_slices(xy):
    x, y = xy
    model = build_model()
    model.compile(optimizer="sgd", loss="mse")
    reversed_model = build_model()
    reversed_model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=20, epochs=1, shuffle=False, verbose=0)
    reversed_model.fit(x[::-1], y[::-1], batch_size=20, epochs=1, shuffle=False, verbose=0)
    assert not np.array_equal(flat_weights(model), flat_weights(reversed_model))


def test_shuffle_is_seeded_and_fresh_each_epoch(xy):
    x, y = xy
    results = []
    for _ in range(2):
        model = build_model(seed=11)
        model.compile(optimizer="sgd", loss="mse")
        results.append(model.fit(x, y, batch_size=20, epochs=3, verbose=0).history["loss"])
    assert results[0] == results[1]
    orders = build_model(seed=11)._orders(100, 3, True)
    assert all(sorted(order) == list(range(100)) for order in orders)
    assert not np.array_equal(orders[0], orders[1])


def test_shuffle_orders_do_not_depend_on_how_epochs_are_grouped():
    """Epochs drawn one at a time (verbose fits, callbacks, traces) get the orders of one long draw."""
    together = build_model(seed=5)._orders(50, 4, True)
    one_by_one = build_model(seed=5)
    assert np.array_equal(np.concatenate([one_by_one._orders(50, 1, True) for _ in range(4)]), together)


def test_shuffle_permutations_are_uniform():
    """Fisher-Yates with SplitMix64 draws: each of the 4! orders of 4 items about equally often (chi-square)."""
    orders = _numba_engine.permutations(np.arange(24_000, dtype=np.uint64) * np.uint64(7919), 4)
    codes = orders @ np.array([64, 16, 4, 1])
    counts = np.unique(codes, return_counts=True)[1]
    assert counts.size == 24
    chi_square = ((counts - 1000.0) ** 2 / 1000.0).sum()
    assert chi_square < 49.7  # the 0.999 quantile of chi-square with 23 degrees of freedom


def test_adam_state_persists_across_fit_and_compile_resets_it(xy):
    x, y = xy
    model = build_model(hidden=[8])
    model.compile(optimizer=gdcore.optimizers.Adam(learning_rate=0.1), loss="mse")
    model.fit(x, y, batch_size=50, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 2
    moments = model.optimizer.slots.copy()
    model.fit(x, y, batch_size=50, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 4 and not np.array_equal(model.optimizer.slots, moments)
    model.compile(optimizer=gdcore.optimizers.Adam(learning_rate=0.1), loss="mse")
    assert model.optimizer.iterations == 0


def test_validation_loss_uses_end_of_epoch_weights(xy):
    x, y = xy
    model = build_model(hidden=[8])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, batch_size=20, epochs=2, shuffle=False, verbose=0, validation_data=(x[:30], y[:30]))
    assert history.history["val_loss"][-1] == model.evaluate(x[:30], y[:30], batch_size=20)
    assert history.epoch == [0, 1]


@pytest.mark.parametrize("make_inputs", [
    lambda df: (df[["X"]], df["y"]),
    lambda df: (df["X"], df["y"].to_numpy()[:, None]),
    lambda df: (df["X"].tolist(), df["y"].tolist()),
])
def test_accepts_dataframes_series_and_lists(seed_train, make_inputs):
    model = build_model()
    model.compile(optimizer="sgd", loss="mse")
    reference = build_model()
    reference.compile(optimizer="sgd", loss="mse")
    model.fit(*make_inputs(seed_train), epochs=2, shuffle=False, verbose=0)
    reference.fit(seed_train[["X"]].to_numpy(), seed_train["y"].to_numpy(), epochs=2, shuffle=False, verbose=0)
    assert np.array_equal(flat_weights(model), flat_weights(reference))


def test_weights_layout_summary_and_counts(capsys):
    model = gdcore.Sequential([gdcore.Input(shape=(3,)), gdcore.layers.Dense(8, activation="sigmoid"), gdcore.layers.Dense(1)])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 8), (8,), (8, 1), (1,)]
    assert model.count_params() == 3 * 8 + 8 + 8 + 1 == 41
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 41" in out and "(None, 8)" in out
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert np.array_equal(model.get_weights()[1], np.zeros(8))  # Dense's bias default: zeros


def test_linear_neuron_summary_has_two_parameters():
    model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(1)])
    assert model.count_params() == 2


def test_model_builds_lazily_without_input(xy):
    x, y = xy
    model = gdcore.Sequential([gdcore.layers.Dense(4, activation="tanh"), gdcore.layers.Dense(1)], seed=1)
    assert not model.built
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.count_params() == 4 + 4 + 4 + 1


def test_same_seed_same_initial_bits():
    first = gdcore.Sequential([gdcore.Input(shape=(2,)), gdcore.layers.Dense(5), gdcore.layers.Dense(1)], seed=3)
    second = gdcore.Sequential([gdcore.Input(shape=(2,)), gdcore.layers.Dense(5), gdcore.layers.Dense(1)], seed=3)
    assert np.array_equal(flat_weights(first), flat_weights(second))
    init = gdcore.initializers.RandomNormal(0, 0.05, seed=123)
    assert np.array_equal(init((1, 1)), init((1, 1)))


def test_glorot_uniform_limit():
    values = gdcore.initializers.GlorotUniform(seed=0)((400, 200), "float64")
    limit = np.sqrt(6 / 600)
    assert values.min() >= -limit and values.max() <= limit and values.max() > 0.95 * limit


def test_predict_returns_model_dtype_and_batches_like_keras(xy):
    x, _ = xy
    model = build_model(hidden=[8], dtype="float32")
    prediction = model.predict(x)
    assert prediction.shape == (100, 1) and prediction.dtype == np.float32
    by_hand = np.concatenate([_numpy_engine.forward(model.profile, x[s : s + 32].astype(np.float32), model.params, model.layout)[-1]
                              for s in range(0, 100, 32)])
    assert np.array_equal(prediction, by_hand)


def test_verbose_prints_keras_progress(xy, capsys):
    """Keras 3's output: ``Epoch e/E``, then a progress bar ending in ``4/4 ━━━━ ... - loss: ...`` per epoch."""
    x, y = xy
    model = build_model()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, epochs=3, verbose=1)
    out = capsys.readouterr().out
    plain = out.replace("\x1b[1m", "").replace("\x1b[0m", "").replace("\x1b[32m", "").replace("\x1b[37m", "")
    assert [line for line in plain.splitlines() if line.startswith("Epoch")] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    finals = [part for part in plain.split("\n") if "4/4 " in part]
    assert len(finals) == 3
    for final, loss in zip(finals, history.history["loss"]):
        assert "/step - loss: " in final and f"{loss:.4f}" in final
    model.fit(x, y, epochs=2, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "Epoch 1/2" and lines[1].startswith("4/4 - ") and "loss:" in lines[1]
    model.fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_callbacks_see_every_epoch(xy):
    x, y = xy
    seen = []
    callback = gdcore.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["loss"])))
    model = build_model()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[callback])
    assert seen == list(enumerate(history.history["loss"]))


def test_zero_epochs_trains_nothing(xy):
    x, y = xy
    model = build_model()
    model.compile(optimizer="sgd", loss="mse")
    before = flat_weights(model)
    history = model.fit(x, y, epochs=0, verbose=0)
    assert history.history == {"loss": []} and np.array_equal(flat_weights(model), before)


def test_loss_objects_and_aliases_are_the_same_loss():
    assert gdcore.losses.get("mse") is gdcore.losses.get("mean_squared_error") is gdcore.losses.MeanSquaredError()
    assert gdcore.losses.get("MAE") is gdcore.losses.MeanAbsoluteError()
    assert gdcore.losses.MeanSquaredError()([1.0, 2.0], [[0.0], [0.0]]) == 2.5


def test_adam_rounds_betas_through_float32_like_keras_unless_asked_not_to():
    keras_like = gdcore.optimizers.Adam().hyperparameters("float64")
    sklearn_like = gdcore.optimizers.Adam(float32_betas=False).hyperparameters("float64")
    assert keras_like[1] == 0.8999999761581421 and keras_like[2] == float(np.float32(0.999))
    assert sklearn_like[1] == 0.9 and sklearn_like[2] == 0.999
    # The factors (1 - beta) are exact Python doubles in both conventions.
    assert keras_like[3] == sklearn_like[3] == 1 - 0.9


def test_validation_split_holds_out_the_last_samples_before_shuffling(xy):
    x, y = xy
    split = build_model()
    split.compile(optimizer="sgd", loss="mse")
    explicit = build_model()
    explicit.compile(optimizer="sgd", loss="mse")
    a = split.fit(x, y, batch_size=20, epochs=2, validation_split=0.2, verbose=0)
    b = explicit.fit(x[:80], y[:80], batch_size=20, epochs=2, validation_data=(x[80:], y[80:]), verbose=0)
    assert a.history == b.history
    with pytest.raises(ValueError, match="validation_split"):
        split.fit(x, y, validation_split=1.5, verbose=0)


def test_keras_2_style_input_shape_layer_weights_and_evaluate_dict(xy):
    x, y = xy
    model = gdcore.Sequential([gdcore.layers.Dense(4, activation="relu", input_shape=(1,)), gdcore.layers.Dense(1)], seed=0)
    assert model.built and model.count_params() == 4 + 4 + 4 + 1
    kernel, bias = model.layers[0].get_weights()
    model.layers[0].set_weights([kernel * 2, bias + 1])
    assert np.array_equal(model.get_weights()[0], kernel * 2) and np.array_equal(model.get_weights()[1], bias + 1)
    with pytest.raises(ValueError, match="expected 2 arrays"):
        model.layers[0].set_weights([kernel])
    model.compile(optimizer="adam", loss="mse")
    assert model.evaluate(x, y, return_dict=True) == {"loss": model.evaluate(x, y)}


def test_read_only_inputs_reuse_the_compiled_loop(xy):
    """pandas's to_numpy() can return read-only arrays; they must not compile a second fit loop."""
    x, y = xy
    model = build_model(seed=1)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    compiled = len(_numba_engine._ENTRIES[0][0].signatures)
    x_read_only, y_read_only = x.astype(np.float32), y.astype(np.float32)
    x_read_only.flags.writeable = y_read_only.flags.writeable = False
    model.fit(x_read_only, y_read_only, epochs=1, verbose=0)
    assert len(_numba_engine._ENTRIES[0][0].signatures) == compiled
    assert not x_read_only.flags.writeable  # the caller's array is left as it was


def test_the_compiled_entries_receive_plain_tuples_only(xy):
    """Numba types a named tuple's fields in Python at every call: fit, evaluate and predict pass plain tuples."""
    x, y = xy
    model = build_model(seed=1)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    calls = []

    def recording(entry):
        def record(*args):
            calls.append(args)
            return entry(*args)
        return record

    def named(value):
        return isinstance(value, tuple) and (hasattr(value, "_fields") or any(named(v) for v in value))

    entries = _numba_engine._ENTRIES[model.profile.id]
    _numba_engine._ENTRIES[model.profile.id] = tuple(recording(entry) for entry in entries)
    try:
        history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25)
        model.evaluate(x, y, verbose=0)
        model.predict(x, verbose=0)
    finally:
        _numba_engine._ENTRIES[model.profile.id] = entries
    assert len(calls) >= 3 and np.isfinite(history.history["val_mae"]).all()
    assert not [i for args in calls for i, arg in enumerate(args) if named(arg) or not isinstance(arg, (tuple, np.ndarray))]
