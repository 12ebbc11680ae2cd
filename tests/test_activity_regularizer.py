"""``Dense(activity_regularizer=...)``: a penalty on the layer's output, as Keras 3 adds it to the loss.

Keras 3's ``Layer.__call__`` adds ``divide_no_nan(regularizer(outputs), batch_size)`` (the output after the
activation) to the layer's losses; ``compute_loss`` sums them after the data loss and before the weight penalties,
so history ``loss``, ``val_loss`` and ``evaluate`` include them, and their gradient joins the output's in backprop.
A frozen layer's activity penalty still counts (it is a loss of the call, not of a weight). Checked by hand on one
step and against live Keras at every epoch, bit for bit, in float32 and float64, both engines.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402
from gdcore import regularizers  # noqa: E402

X = np.array([[1.0], [2.0]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_one_step_by_hand(engine, dtype):
    # W = 1, b = 0.5, y = x + 0.5: the data loss and gradient are 0. L2(0.5) on y_pred = [1.5, 2.5]:
    # 0.5 * (2.25 + 6.25) = 4.25, divided by the batch size 2: 2.125 (the history loss). Its gradient on y_pred,
    # fl(1/2 * 0.5) * (2 y) = [0.75, 1.25]: dW = 1 * 0.75 + 2 * 1.25 = 3.25, db = 2. SGD at 0.25: W = 0.1875, b = 0.
    # evaluate: predictions [0.1875, 0.375], mse (1.3125^2 + 2.125^2) / 2 = 3.119140625, plus the activity penalty
    # 0.5 * (0.1875^2 + 0.375^2) / 2 = 0.0439453125: 3.1630859375. Every number is exact in binary.
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, activity_regularizer=regularizers.L2(0.5))],
                              dtype=dtype, engine=engine)
    model.set_weights([np.ones((1, 1)), np.array([0.5])])
    model.compile(gdcore.optimizers.SGD(learning_rate=0.25), "mse")
    history = model.fit(X, X + 0.5, batch_size=2, epochs=1, verbose=0, shuffle=False).history
    assert history == {"loss": [2.125]}
    assert [w.ravel().tolist() for w in model.get_weights()] == [[0.1875], [0.0]]
    assert model.evaluate(X, X + 0.5, verbose=0) == 3.1630859375
    assert model.predict(X, verbose=0).ravel().tolist() == [0.1875, 0.375]  # predict adds nothing


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_a_frozen_layer_still_adds_its_activity_penalty(engine):
    frozen = gdcore.layers.Dense(1, activity_regularizer=regularizers.L1(0.5), trainable=False)
    model = gdcore.Sequential([gdcore.Input((1,)), frozen], dtype="float64", engine=engine)
    model.set_weights([np.ones((1, 1)), np.array([0.5])])
    model.compile(gdcore.optimizers.SGD(learning_rate=0.25), "mse")
    # L1(0.5) stores 0.5 exactly: 0.5 * (1.5 + 2.5) / 2 = 1; nothing trains.
    assert model.fit(X, X + 0.5, batch_size=2, epochs=1, verbose=0).history == {"loss": [1.0]}


def test_an_activity_regularizer_on_a_logits_output_is_refused():
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, activation="sigmoid",
                                                                       activity_regularizer="l2", name="out")])
    with pytest.raises(NotImplementedError, match=r"activity_regularizer on the output layer 'out' with "
                                                  r"'binary_crossentropy'"):
        model.compile("sgd", "binary_crossentropy")


def test_bad_activity_regularizers_name_the_argument():
    with pytest.raises(ValueError, match="activity_regularizer: unknown regularizer 'l3'; known: L1"):
        gdcore.layers.Dense(1, activity_regularizer="l3")


@pytest.mark.parametrize("numerics", ["plain", "tensorflow"])
def test_engines_agree_with_activity_regularizers(numerics):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.5, 1.5, (50, 2))
    y = np.sin(x.sum(axis=1, keepdims=True))
    results = []
    for engine in ("numba", "numpy"):
        model = gdcore.Sequential([gdcore.Input((2,)),
                                   gdcore.layers.Dense(8, activation="tanh",
                                                       activity_regularizer=regularizers.L1L2(0.01, 0.02)),
                                   gdcore.layers.Dense(3, activation="relu", activity_regularizer="l1", trainable=False),
                                   gdcore.layers.Dense(1, activity_regularizer=regularizers.L1L2(0.02, 0.01))],
                                  numerics=numerics, engine=engine, seed=4)
        model.compile(gdcore.optimizers.Adam(learning_rate=0.05), "mse", metrics=["mae"])
        history = model.fit(x[:40], y[:40], batch_size=16, epochs=2, verbose=0, shuffle=False,
                            validation_data=(x[40:], y[40:])).history
        results.append((history, [w.tobytes() for w in model.get_weights()], model.evaluate(x, y, verbose=0)))
    assert results[0] == results[1]


CASES = {  # name: (hidden layer's activity regularizer, output's, optimizer)
    "l2-hidden-adam": (regularizers.L2(0.05), None, lambda: gdcore.optimizers.Adam(learning_rate=0.05)),
    "l1-hidden-sgd": (regularizers.L1(0.02), None, lambda: gdcore.optimizers.SGD(learning_rate=0.1, momentum=0.9)),
    "l1l2-both-adam": (regularizers.L1L2(0.02, 0.01), regularizers.L1L2(0.01, 0.02),
                       lambda: gdcore.optimizers.Adam(learning_rate=0.05)),
    "l2-output-sgd": (None, regularizers.L2(0.1), lambda: gdcore.optimizers.SGD(learning_rate=0.05)),
}


@pytest.mark.tensorflow
@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_activity_regularized_training_bit_identical_to_keras(dtype, case, engine):
    pytest.importorskip("tensorflow")
    from test_constraints import _assert_same_run, _keras_run

    if engine == "numpy" and case != "l1l2-both-adam":
        pytest.skip("the NumPy engine is checked on one case (the engines agree bit for bit above)")
    hidden, output, optimizer = CASES[case]
    layers = [gdcore.layers.Dense(8, activation="tanh", activity_regularizer=hidden),
              gdcore.layers.Dense(1, activity_regularizer=output)]
    _assert_same_run(*_keras_run(dtype, layers, optimizer(), engine))


@pytest.mark.tensorflow
def test_keras_files_both_ways(tmp_path):
    keras = pytest.importorskip("keras")
    model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(3, activity_regularizer=regularizers.L1(0.3)),
                               gdcore.layers.Dense(1)], seed=1)
    model.save(tmp_path / "mine.keras")
    theirs = keras.models.load_model(tmp_path / "mine.keras")
    assert keras.regularizers.serialize(theirs.layers[0].activity_regularizer) == \
        regularizers.serialize(regularizers.L1(0.3))
    assert theirs.layers[1].activity_regularizer is None
    mine_config = gdcore.saving.model_config(model)["layers"][1]["config"]
    assert list(mine_config) == list(theirs.get_config()["layers"][1]["config"])  # Keras's key order
    theirs.save(tmp_path / "theirs.keras")
    back = gdcore.models.load_model(tmp_path / "theirs.keras")
    assert back.layers[0].activity_regularizer == regularizers.L1(0.3) and back.layers[1].activity_regularizer is None
