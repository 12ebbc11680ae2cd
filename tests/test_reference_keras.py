"""Live parity with Keras (TensorFlow): the Keras driver, from_keras/to_keras, and assert_parity.

``test_seed_models_match_keras`` is also the engine's live Keras parity test:
both seed models, float32 and float64, every epoch's weights, loss history,
validation loss and predictions within the dtype's default tolerance.
"""

import re
import sys

import numpy as np
import pytest

import gdcore
import reference
from reference import keras_driver
from reference.configs import SEED_LINEAR, SEED_LOGISTIC, SEED_SIGMOID8, SEED_SOFTMAX, Config
from reference.errors import Unsupported
from reference.runner import run_config

tensorflow = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def keras():
    return keras_driver.import_keras()


def test_missing_tensorflow_says_how_to_install(monkeypatch):
    monkeypatch.setattr(keras_driver, "_keras", None)
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes "import tensorflow" raise ImportError
    with pytest.raises(ImportError, match="pip install tensorflow-cpu"):
        keras_driver.import_keras()


# --- the float64 pitfalls and the per-epoch protocol, verified live ---------------------------------


@tensorflow
def test_keras_dtype_sets_both_settings_and_restores_them(keras):
    before = (keras.config.floatx(), keras.config.dtype_policy().name)
    with reference.keras_dtype("float64"):
        assert keras.config.floatx() == "float64" and keras.config.dtype_policy().name == "float64"
        # The optimizer's learning-rate variable takes floatx at construction: a float32 0.01 would move
        # float64 weights by ~1e-8 relative. Inside the context it is float64.
        assert keras.optimizers.SGD(learning_rate=0.01).learning_rate.dtype == "float64"
    assert (keras.config.floatx(), keras.config.dtype_policy().name) == before
    assert keras.optimizers.SGD(learning_rate=0.01).learning_rate.dtype == "float32"
    with pytest.raises(ValueError, match="learning_rate"):  # Keras wants a Python float
        keras.optimizers.SGD(learning_rate=np.float32(0.01))


@tensorflow
def test_one_fit_per_epoch_equals_one_long_fit(keras):
    """Optimizer state (Adam's m, v, iterations) persists across fit calls: the per-epoch protocol is sound."""
    config = SEED_SIGMOID8.replace(batch_size=30)
    x, y, _, _ = config.load_data()
    model = config.build_model()
    long, short = reference.to_keras(model), reference.to_keras(model)
    history = long.fit(x, y, batch_size=30, epochs=3, shuffle=False, verbose=0)
    losses = [short.fit(x, y, batch_size=30, epochs=1, shuffle=False, verbose=0).history["loss"][0] for _ in range(3)]
    assert losses == history.history["loss"]
    for a, b in zip(long.get_weights(), short.get_weights()):
        np.testing.assert_array_equal(a, b)


@tensorflow
def test_dataset_feed_is_bit_identical_to_numpy_feed():
    config = SEED_SIGMOID8.replace(batch_size=30, epochs=4)  # 30, 30, 30 and a partial batch of 10
    x, y, x_val, y_val = config.load_data()
    model = config.build_model()
    runs = [reference.run_keras(model, x, y, config.epoch_orders(), 30, validation_data=(x_val, y_val), feed=feed)
            for feed in ("dataset", "numpy")]
    comparison = reference.compare(*runs)
    assert comparison.bit_identical_epochs == 4, comparison.failure_message()
    assert set(comparison.rows["quantity"]) >= {"loss", "val_loss", "predictions", "dense/kernel", "dense_1/bias"}


# --- to_keras / from_keras ---------------------------------------------------------------------


@tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_keeps_layers_weights_optimizer_and_loss(dtype):
    model = gdcore.Sequential([gdcore.Input(shape=(3,)), gdcore.layers.Dense(4, activation="tanh"),
                               gdcore.layers.Dense(3, activation="relu"), gdcore.layers.Dense(2, activation="sigmoid"),
                               gdcore.layers.Dense(1)], dtype=dtype, seed=3)
    model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True), loss="mae")
    twin = reference.to_keras(model)
    assert [layer.get_config()["activation"] for layer in twin.layers] == ["tanh", "relu", "sigmoid", "linear"]
    assert all(weight.dtype == dtype for weight in twin.get_weights())
    config = twin.optimizer.get_config()
    # Keras reads the learning rate back from its variable, in the model's dtype.
    assert (np.dtype(dtype).type(config["learning_rate"]), config["momentum"], config["nesterov"]) == (0.05, 0.9, True)
    back = reference.from_keras(twin)
    assert back.dtype == np.dtype(dtype) and [layer.activation.name for layer in back.layers] == ["tanh", "relu", "sigmoid", "linear"]
    for a, b in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert back.optimizer.get_config() == model.optimizer.get_config() and back.loss.name == "mean_absolute_error"
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(dtype)
    with reference.keras_dtype(dtype):
        np.testing.assert_allclose(twin.predict_on_batch(x), model.predict(x, batch_size=7),
                                   rtol=reference.DEFAULT_TOLERANCES[dtype].rtol)


@tensorflow
def test_from_keras_reads_a_functional_model_with_adam(keras):
    inputs = keras.Input(shape=(1,))
    outputs = keras.layers.Dense(1)(keras.layers.Dense(8, activation="sigmoid")(inputs))
    functional = keras.Model(inputs, outputs)
    functional.compile(optimizer=keras.optimizers.Adam(learning_rate=0.1, beta_1=0.8, epsilon=1e-6),
                       loss=keras.losses.MeanSquaredError())
    model = reference.from_keras(functional, numerics="plain")
    assert [layer.units for layer in model.layers] == [8, 1] and model.input_shape == (1,)
    config = model.optimizer.get_config()
    assert {key: config[key] for key in ("learning_rate", "beta_1", "beta_2", "epsilon")} == {
        "learning_rate": 0.1, "beta_1": 0.8, "beta_2": 0.999, "epsilon": 1e-6}
    assert config.get("float32_betas", True)  # Keras's convention
    assert model.loss.name == "mean_squared_error"
    for a, b in zip(functional.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def _refusals(keras):
    layers, optimizers, losses = keras.layers, keras.optimizers, keras.losses

    def sequential(*hidden, compile_with=None):
        model = keras.Sequential([keras.Input(shape=(2,)), *hidden, layers.Dense(1, name="out")])
        if compile_with is not None:
            model.compile(**compile_with)
        return model

    def two_inputs():
        a, b = keras.Input(shape=(1,)), keras.Input(shape=(1,))
        return keras.Model([a, b], layers.Dense(1)(layers.Concatenate()([a, b])))

    def mixed_precision():
        with keras_driver.keras_dtype("float32"):
            keras.config.set_dtype_policy("mixed_float16")
            return sequential(layers.Dense(3))

    schedule = optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)
    sgd = optimizers.SGD(learning_rate=0.1)
    return [
        (lambda: sequential(layers.Dropout(0.5, name="drop")), "layer 'drop' is a Dropout"),
        (lambda: sequential(layers.Dense(3, activation="mish", name="soft")), "'soft' has activation 'mish'"),
        (lambda: sequential(layers.Dense(3, activity_regularizer=keras.regularizers.OrthogonalRegularizer(),
                                         name="reg")), "'reg' has activity_regularizer"),
        (lambda: sequential(compile_with={"optimizer": optimizers.Adadelta(), "loss": "mse"}), "optimizer Adadelta"),
        (lambda: sequential(compile_with={"optimizer": optimizers.Adam(gradient_accumulation_steps=2), "loss": "mse"}),
         "gradient_accumulation_steps=2"),
        (lambda: sequential(compile_with={"optimizer": optimizers.SGD(loss_scale_factor=2.0), "loss": "mse"}),
         "loss_scale_factor=2.0"),
        (lambda: sequential(compile_with={"optimizer": optimizers.SGD(learning_rate=schedule), "loss": "mse"}), "schedule"),
        (lambda: sequential(compile_with={"optimizer": sgd, "loss": "mse", "loss_weights": [0.5]}), "loss_weights"),
        (lambda: sequential(compile_with={"optimizer": sgd, "loss": "mse", "metrics": ["auc"]}), "unknown metric 'auc'"),
        (lambda: sequential(compile_with={"optimizer": optimizers.SGD(), "loss": "huber"}), "loss 'huber'"),
        (lambda: sequential(compile_with={"optimizer": optimizers.SGD(),
                                          "loss": losses.SparseCategoricalCrossentropy(ignore_class=0)}),
         "ignore_class=0"),
        (two_inputs, "2 inputs"),
        (mixed_precision, "dtype policies"),
    ]


@tensorflow
def test_from_keras_refuses_what_gdcore_cannot_reproduce(keras):
    for build, message in _refusals(keras):
        model = build()
        with pytest.raises(Unsupported, match=message.replace("(", r"\(")) as raised:
            reference.from_keras(model)
        assert isinstance(raised.value, ValueError)
    assert keras.config.dtype_policy().name == "float32"


@tensorflow
def test_from_keras_translates_the_base_optimizer_options(keras):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01, amsgrad=True, clipnorm=1.0, weight_decay=0.1, use_ema=True,
                                        ema_momentum=0.9, ema_overwrite_frequency=3), "mse")
    optimizer = reference.from_keras(model).optimizer
    assert (optimizer.amsgrad, optimizer.clipnorm, optimizer.weight_decay, optimizer.use_ema, optimizer.ema_momentum,
            optimizer.ema_overwrite_frequency) == (True, 1.0, 0.1, True, 0.9, 3)


# --- assert_parity: the engine's live Keras parity test -----------------------------------------


@tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed_config", [SEED_LINEAR, SEED_SIGMOID8], ids=["linear", "sigmoid8"])
def test_seed_models_match_keras(seed_config, dtype):
    config = seed_config.replace(dtype=dtype)
    x, y, x_val, y_val = config.load_data()
    comparison = reference.assert_parity(config.build_model(), x, y, epochs=25, batch_size=20, validation_data=(x_val, y_val))
    rows = comparison.rows
    assert comparison.status == "ok" and sorted(rows["epoch"].unique()) == list(range(26))
    assert {"loss", "val_loss", "predictions", "dense/kernel", "dense/bias"} <= set(rows["quantity"])
    print(f"{config.name}: worst rel {rows['max_rel_diff'].max():.2e}, bit-identical epochs {comparison.bit_identical_epochs}/25")


@tensorflow
@pytest.mark.parametrize("config", [SEED_LINEAR.replace(loss="mae"), SEED_LINEAR.replace(batch_size=30)], ids=["mae", "partial-batch"])
def test_mae_and_partial_last_batch_match_keras(config):
    x, y, x_val, y_val = config.load_data()
    reference.assert_parity(config.build_model(), x, y, epochs=25, batch_size=config.batch_size, validation_data=(x_val, y_val))


@tensorflow
def test_assert_parity_takes_pandas_and_flat_targets():
    """y of shape (n,) is the output's (n, 1), not an (n, n) broadcast."""
    train = gdcore.datasets.make_regression_dataset(40, noise=1.25, random_state=1)
    model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(1)], seed=0)
    model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=0.01), loss="mse")
    comparison = reference.assert_parity(model, train[["X"]], train["y"], epochs=3, batch_size=16)
    assert comparison.status == "ok" and model.get_weights()[1][0] == 0.0  # the user's model is not trained


@tensorflow
def test_to_keras_refuses_sklearn_adam_convention():
    model = SEED_SIGMOID8.build_model()
    model.compile(optimizer=gdcore.optimizers.Adam(learning_rate=0.1, float32_betas=False), loss="mse")
    with pytest.raises(Unsupported, match="float32_betas=False"):
        reference.to_keras(model)


def test_to_keras_needs_a_built_gdcore_model():
    with pytest.raises(ValueError, match="not built"):
        reference.to_keras(gdcore.Sequential([gdcore.layers.Dense(1)]))
    with pytest.raises(TypeError, match="gdcore model"):
        reference.to_keras(object())


@tensorflow
def test_assert_parity_failure_shows_first_epoch_and_previous_one():
    x, y, _, _ = SEED_LINEAR.load_data()
    with pytest.raises(AssertionError) as failure:  # float32 plain numerics are not bit-identical to Keras
        reference.assert_parity(SEED_LINEAR.build_model(), x, y, epochs=10, batch_size=20, rtol=0, atol=0)
    message = str(failure.value)
    epoch = int(re.search(r"first epoch beyond tolerance \(rtol=0, atol=0\): (\d+)", message).group(1))
    assert epoch >= 1  # the initial weights are copied bit for bit
    assert f"epoch {epoch - 1} (previous epoch)" in message and f"epoch {epoch} (first failing epoch)" in message
    assert "\n      gdcore " in message and "\n      keras  " in message


@tensorflow
def test_divergence_in_both_is_reported_not_failed():
    config = Config("linear", "sgd", "mse", batch_size=1, learning_rate=0.1, n_features=3, epochs=3)
    with pytest.warns(gdcore.TrainingDivergedWarning):  # gdcore stops; the driver records the warning
        model = config.build_model()
        x, y, _, _ = config.load_data()
        model.fit(x, y, batch_size=1, epochs=1, verbose=0)
    comparison = run_config(config, engines=("keras",)).comparisons[0]
    assert comparison.status == "diverged" and comparison.reason == "diverged in both at epoch 1"
    assert not comparison.failed


@tensorflow
def test_tensorflow_numerics_profile_runs_and_counts_bits():
    result = run_config(SEED_LINEAR.replace(numerics="tensorflow", epochs=10), engines=("keras",))
    comparison = result.comparisons[0]
    assert result.numerics == "tensorflow" and comparison.status == "ok", comparison.failure_message()
    assert 0 <= comparison.bit_identical_epochs <= 10
    print(f"tensorflow profile, seed linear float32: {comparison.bit_identical_epochs}/10 epochs bit-identical")


# --- classification -----------------------------------------------------------------------------


@tensorflow
@pytest.mark.parametrize("config", [SEED_SOFTMAX.replace(architecture="sigmoid8", optimizer="adam", loss="cce",
                                                         learning_rate=0.05, batch_size=30, epochs=5),
                                    SEED_LOGISTIC.replace(batch_size=1, dtype="float64", epochs=3)],
                         ids=["sigmoid8-softmax-cce-b30-float32", "logistic-b1-float64"])
def test_classifiers_follow_keras_to_the_bit(config):
    """Under the tensorflow profile the cross-entropies are bit-identical at every epoch, accuracy included."""
    result = run_config(config.replace(numerics="tensorflow"), engines=("keras",))
    (comparison,) = result.comparisons
    assert comparison.tolerance == reference.DEFAULT_TOLERANCES[config.dtype]
    assert comparison.status == "ok", comparison.failure_message()
    assert comparison.bit_identical_epochs == config.epochs
    rows = comparison.rows
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "predictions", "dense/kernel"} <= set(rows["quantity"])
    assert sorted(rows["epoch"].unique()) == list(range(config.epochs + 1))
    accuracy = rows[rows["quantity"].str.endswith("accuracy")]
    assert (accuracy["max_abs_diff"] == 0).all()  # counts of correct predictions: the same numbers
    keras_accuracy = result.trajectories["keras"].metrics["accuracy"]
    assert len(keras_accuracy) == config.epochs and 0 < keras_accuracy[-1] <= 1


@tensorflow
def test_a_sigmoid_output_on_mse_stays_bit_identical():
    """The control case: no Exp/Log kernel reaches an MSE on a sigmoid output, so it keeps the default tolerance and
    the same bits as Keras (the cross-entropies' gap is the only one)."""
    result = run_config(SEED_LOGISTIC.replace(loss="mse", numerics="tensorflow", epochs=5), engines=("keras",))
    (comparison,) = result.comparisons
    assert comparison.tolerance == reference.DEFAULT_TOLERANCES["float32"]
    assert comparison.bit_identical_epochs == 5, comparison.failure_message()
    assert "accuracy" in set(comparison.rows["quantity"])


@tensorflow
def test_to_keras_translates_the_compiled_metrics(keras):
    model = SEED_LOGISTIC.build_model()
    model.compile(optimizer=model.optimizer, loss="bce",
                  metrics=["accuracy", gdcore.metrics.BinaryAccuracy(name="half", threshold=0.3)],
                  weighted_metrics=["accuracy"])
    twin = reference.to_keras(model)
    assert twin.get_compile_config()["weighted_metrics"] == ["accuracy"]
    metrics = twin.get_compile_config()["metrics"]
    assert metrics[0] == "accuracy"  # the string as given: Keras makes the same pick (binary, for one unit)
    assert metrics[1]["class_name"] == "BinaryAccuracy"
    assert (metrics[1]["config"]["name"], metrics[1]["config"]["threshold"]) == ("half", 0.3)
    back = reference.from_keras(twin)  # and back: the same metrics, by name and threshold
    assert [(key, type(metric).__name__, metric.threshold) for key, metric in back._metrics] == [
        ("accuracy", "_PickedAccuracy", 0.5), ("half", "BinaryAccuracy", 0.3), ("weighted_accuracy", "_PickedAccuracy", 0.5)]
    assert back._metric_weighted == [False, False, True]
    x, y, _, _ = SEED_LOGISTIC.load_data()
    theirs = twin.fit(x, y, batch_size=20, epochs=1, shuffle=False, verbose=0).history
    mine = model.fit(x, y, batch_size=20, epochs=1, shuffle=False, verbose=0).history
    assert sorted(mine) == sorted(theirs) == ["accuracy", "half", "loss", "weighted_accuracy"]
    assert (mine["accuracy"], mine["half"]) == (theirs["accuracy"], theirs["half"])
