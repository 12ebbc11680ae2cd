"""Training with ``numerics="tensorflow"`` is Keras, bit for bit, after every epoch.

Each case trains a gdcore model and its live Keras 3 twin (``jit_compile=False``,
same initial weights, float64 run under ``floatx`` and dtype policy
``"float64"``) on the same batches: epoch ``e`` is one call
``fit(x[p_e], y[p_e], epochs=1, shuffle=False, batch_size=B)`` on both, with
the same permutation ``p_e`` (Keras is given the seed cells' batches as NumPy
arrays, the others as a ``tf.data`` pipeline of the same batches). After every epoch every weight tensor,
``history['loss']`` (and ``val_loss`` where validation data is given) and the
predictions must have the same bytes. The drivers are :mod:`reference`'s
(``run_gdcore``, ``run_keras``), one line per case.

A failure names the first epoch that differs, the quantity, mine vs Keras and
the distance in ulp; the per-operation rules it depends on are in
``gdcore.numerics._tensorflow`` and tested one by one in
``tests/test_numerics_tensorflow.py``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from reference.compare import ulp_distance  # noqa: E402
from reference.configs import epoch_orders  # noqa: E402
from reference.gdcore_driver import run_gdcore  # noqa: E402
from reference.keras_driver import run_keras  # noqa: E402

pytestmark = pytest.mark.tensorflow

# id: (hidden units, activation, input features, optimizer, learning rate, loss, batch size, epochs, validation)
# The seed cells run their 25 epochs, the others 10 (``python -m reference --grid`` runs 25 for every configuration).
CASES = {
    "seed-linear-sgd-mse-b20": ([], "linear", 1, "sgd", 0.01, "mse", 20, 25, False),
    "seed-sigmoid8-adam-mse-b20": ([8], "sigmoid", 1, "adam", 0.1, "mse", 20, 25, True),
    "linear-sgd-mae-b20": ([], "linear", 1, "sgd", 0.01, "mae", 20, 10, False),
    "sigmoid8-adam-mae-b30-partial": ([8], "sigmoid", 1, "adam", 0.1, "mae", 30, 10, False),
    "linear-sgd-mse-b1": ([], "linear", 1, "sgd", 0.01, "mse", 1, 10, False),
    "sigmoid8-sgd-mse-b1": ([8], "sigmoid", 1, "sgd", 0.05, "mse", 1, 10, False),
    "sigmoid1-adam-mse-b20": ([1], "sigmoid", 1, "adam", 0.1, "mse", 20, 10, False),
    "sigmoid3-adam-mse-b30": ([3], "sigmoid", 1, "adam", 0.1, "mse", 30, 10, False),
    "sigmoid16-adam-mse-b20": ([16], "sigmoid", 1, "adam", 0.1, "mse", 20, 10, False),
    "sigmoid64-adam-mse-b20": ([64], "sigmoid", 1, "adam", 0.05, "mse", 20, 10, False),
    "tanh8-adam-mse-b20": ([8], "tanh", 1, "adam", 0.05, "mse", 20, 10, False),
    "relu8-sgd-mae-b30": ([8], "relu", 1, "sgd", 0.05, "mae", 30, 10, False),
    "linear-3features-adam-mse-b30": ([], "linear", 3, "adam", 0.1, "mse", 30, 10, False),
    "sigmoid8-3features-adam-mse-b20": ([8], "sigmoid", 3, "adam", 0.1, "mse", 20, 10, False),
    "tanh16-3features-sgd-mae-b30": ([16], "tanh", 3, "sgd", 0.05, "mae", 30, 10, False),
    # Keras 3's other activations: one case each (tests/test_activations.py checks them op by op)
    "leaky_relu8-adam-mse-b20": ([8], "leaky_relu", 1, "adam", 0.05, "mse", 20, 10, False),
    "relu6-8-sgd-mae-b30": ([8], "relu6", 1, "sgd", 0.05, "mae", 30, 10, False),
    "elu8-adam-mse-b20": ([8], "elu", 1, "adam", 0.05, "mse", 20, 10, False),
    "selu8-sgd-mse-b30": ([8], "selu", 1, "sgd", 0.02, "mse", 30, 10, False),
    "softplus8-adam-mae-b20": ([8], "softplus", 1, "adam", 0.05, "mae", 20, 10, False),
    "softsign8-adam-mse-b30": ([8], "softsign", 3, "adam", 0.05, "mse", 30, 10, False),
    "silu8-adam-mse-b20": ([8], "silu", 1, "adam", 0.05, "mse", 20, 10, False),
    "hard_sigmoid8-adam-mse-b20": ([8], "hard_sigmoid", 1, "adam", 0.05, "mse", 20, 10, False),
    "exponential8-sgd-mse-b20": ([8], "exponential", 1, "sgd", 0.002, "mse", 20, 10, False),
    "softplus3-3features-adam-mse-b20": ([3], "softplus", 3, "adam", 0.05, "mse", 20, 10, False),
    "elu3-sgd-mae-b30": ([3], "elu", 1, "sgd", 0.05, "mae", 30, 10, False),
    "gelu8-adam-mse-b20": ([8], "gelu", 1, "adam", 0.05, "mse", 20, 10, False),
    "gelu_approximate8-sgd-mae-b30": ([8], "gelu_approximate", 3, "sgd", 0.05, "mae", 30, 10, False),
    "hard_silu8-adam-mse-b20": ([8], "hard_silu", 1, "adam", 0.05, "mse", 20, 10, False),
    "hard_silu13-3features-sgd-mae-b30": ([13], "hard_silu", 3, "sgd", 0.05, "mae", 30, 10, False),
    # optimizer options: (name, keyword arguments)
    "sigmoid8-sgd-momentum-mse-b20": ([8], "sigmoid", 1, ("sgd", {"momentum": 0.9}), 0.02, "mse", 20, 10, False),
    "sigmoid8-sgd-nesterov-mae-b30": ([8], "sigmoid", 1, ("sgd", {"momentum": 0.5, "nesterov": True}), 0.05, "mae", 30,
                                      10, False),
    "linear-rmsprop-mse-b30": ([], "linear", 1, "rmsprop", 0.05, "mse", 30, 10, False),
    "sigmoid8-rmsprop-mse-b20": ([8], "sigmoid", 1, "rmsprop", 0.01, "mse", 20, 10, True),
    "sigmoid8-adagrad-mae-b30": ([8], "sigmoid", 1, "adagrad", 0.1, "mae", 30, 10, False),
    "sigmoid8-rmsprop-centered-momentum-mse-b20": ([8], "sigmoid", 1, ("rmsprop", {"centered": True, "momentum": 0.5,
                                                                                     "rho": 0.8}), 0.01, "mse", 20, 10,
                                                   False),
    # Keras 3's BaseOptimizer options and learning-rate schedules
    "sigmoid8-adamw-mse-b20": ([8], "sigmoid", 1, ("adamw", {"weight_decay": 0.05}), 0.05, "mse", 20, 6, False),
    "tanh8-3features-adam-amsgrad-clipnorm-mse-b20": ([8], "tanh", 3, ("adam", {"amsgrad": True, "clipnorm": 0.5}),
                                                      0.05, "mse", 20, 5, False),
    "sigmoid8-3features-sgd-global-clipnorm-exponential-mae-b30": (
        [8], "sigmoid", 3, ("sgd", {"momentum": 0.9, "global_clipnorm": 1.0}),
        gdcore.schedules.ExponentialDecay(0.05, 10, 0.9), "mae", 30, 5, False),
    "relu8-rmsprop-clipvalue-weight-decay-polynomial-cycle-mse-b20": (
        [8], "relu", 1, ("rmsprop", {"clipvalue": 0.1, "weight_decay": 0.01}),
        gdcore.schedules.PolynomialDecay(0.01, 7, 0.001, power=0.5, cycle=True), "mse", 20, 4, False),
}


@pytest.fixture(scope="module")
def data(seed_train):
    x = seed_train["X"].to_numpy()
    return np.column_stack([x, np.sin(x), x**2 / 10]), seed_train["y"].to_numpy()


def _model(hidden, activation, n_features, optimizer, learning_rate, loss, dtype):
    layers = [gdcore.Input(shape=(n_features,))]
    layers += [gdcore.layers.Dense(units, activation=activation) for units in hidden]
    layers.append(gdcore.layers.Dense(1))
    model = gdcore.Sequential(layers, dtype=dtype, numerics="tensorflow", seed=3)
    name, options = (optimizer, {}) if isinstance(optimizer, str) else optimizer
    model.compile(optimizer=gdcore.optimizers.OPTIMIZERS[name](learning_rate=learning_rate, **options), loss=loss)
    return model


def _first_difference(mine, theirs, skip=()):
    """(epoch, quantity, mine, theirs, max ulp) of the first quantity whose bytes differ, or None."""
    for epoch in range(1, theirs.epochs + 1):
        ours, keras = mine.quantities(epoch), theirs.quantities(epoch)
        for name, value in keras.items():
            if name in skip:
                continue
            a, b = np.asarray(ours[name]), np.asarray(value, dtype=np.asarray(ours[name]).dtype)
            if a.tobytes() != b.tobytes():
                return epoch, name, a.ravel()[:4], b.ravel()[:4], int(ulp_distance(a, b).max())
    return None


# Not bit-identical, measured: (case, dtype) -> (first epoch that differs, its largest ulp distance).
# Weight decay over longer runs (measured, not run here): the AdamW case trained for 25 epochs differs from Keras's
# fit by 1 ulp (float32, epoch 14) or 2 ulp (float64, epoch 15) in one weight, and the difference then grows (64 ulp
# by epoch 25 in float32); its first 6 epochs, run here, are bit-identical. The same AdamW update is bit-identical in
# a compiled Keras step (tests/test_optimizers.py; also checked over 200 steps of 2016 weights) with either
# association of w * wd * lr; where TensorFlow's fit graph rounds the decay differently is not located yet.
# global_clipnorm in fit: 1 or 2 ulp in one bias from epoch 3 (float32 was also seen identical over 8 epochs when
# run after other cases), although the same clipping is bit-identical in a compiled Keras step and clipnorm, per
# tensor, is bit-identical in fit. A listed case passes if it is identical or within its measured distance.
ULP_TOLERANCE = {("sigmoid8-3features-sgd-global-clipnorm-exponential-mae-b30", dtype): (3, 2)
                 for dtype in ("float32", "float64")}
# With oneDNN's ops off TensorFlow fuses Elu into _FusedMatMul, whose output kernel splits Eigen's packets by
# output block: a layer of 3 units differs by 2 ulp in the bias from the first epoch (gdcore.numerics._tensorflow).
if gdcore.numerics.cpu_info().float32_products.startswith("eigen"):
    ULP_TOLERANCE["elu3-sgd-mae-b30", "float32"] = (1, 2)


# Keras's predict runs another graph than its fit for the GELUs: with oneDNN, float32 MatMul + BiasAdd + Gelu is
# fused into one oneDNN inner product with oneDNN's gelu_erf / gelu_tanh (in fit the gradient needs the
# intermediates, so nothing is fused), and the graph optimizer groups the tanh form's 0.044715 z^3 as
# (0.044715 z) z^2 in predict but (0.044715 z^2) z in fit. gdcore follows fit (weights and losses stay
# bit-identical); its predictions are within the distance measured here, over every epoch, per float32 path: the
# tanh form's was 192 ulp with oneDNN's ops (AVX-512) and 256 with Eigen's (AVX2, oneDNN off: predict's grouping,
# and whatever else its graph fuses, not located); the erf form's 128 on AVX-512 and 640 with oneDNN's AVX2 kernels
# (ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 Intel Xeon, 2026-12-04; training bit-identical there, the cause in
# predict's fused graph not located).
PREDICT_ULP = {("gelu8-adam-mse-b20", "float32"):
                   {"onednn-avx2": 640}.get(gdcore.numerics.cpu_info().float32_products, 128),
               ("gelu_approximate8-sgd-mae-b30", "float32"):
                   {"onednn-avx512": 192}.get(gdcore.numerics.cpu_info().float32_products, 256),
               ("gelu_approximate8-sgd-mae-b30", "float64"): 40,
               # hard_silu: fit bit-identical; Keras's predict graph regroups or fuses the layer's ops (a standalone
               # tf.function of the activation gives the fit form's bits; the cause in predict's graph is not
               # located). Measured over every epoch on AVX-512 (oneDNN on); the largest are near-zero predictions.
               ("hard_silu8-adam-mse-b20", "float32"): 8192, ("hard_silu8-adam-mse-b20", "float64"): 4096,
               ("hard_silu13-3features-sgd-mae-b30", "float32"): 512,
               ("hard_silu13-3features-sgd-mae-b30", "float64"): 288}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_training_is_bit_identical_to_keras(case, dtype, data):
    hidden, activation, n_features, optimizer, learning_rate, loss, batch_size, epochs, validation = CASES[case]
    x, y = data[0][:, :n_features], data[1]
    model = _model(hidden, activation, n_features, optimizer, learning_rate, loss, dtype)
    arguments = {"orders": epoch_orders(len(x), epochs, seed=0), "batch_size": batch_size,
                 "validation_data": (x[:30], y[:30]) if validation else None}
    mine = run_gdcore(model, x, y, **arguments)
    # The seed cells are fed as a user writes them; the rest as a tf.data pipeline of the same batches, which
    # gives the same bits (tests/test_reference_keras.py) in a third of the time.
    theirs = run_keras(model, x, y, feed="numpy" if case.startswith("seed-") else "dataset", **arguments)
    assert theirs.diverged_at is None and mine.epochs == theirs.epochs == epochs
    if (case, dtype) in PREDICT_ULP:
        assert _first_difference(mine, theirs, skip=("predictions",)) is None
        distance = max(int(ulp_distance(np.asarray(mine.predictions[epoch]), np.asarray(theirs.predictions[epoch])).max())
                       for epoch in range(epochs + 1))
        assert distance <= PREDICT_ULP[case, dtype], f"predictions {distance} ulp from Keras's"
        return
    difference = _first_difference(mine, theirs)
    if (case, dtype) in ULP_TOLERANCE:
        first_epoch, ulp = ULP_TOLERANCE[case, dtype]
        assert difference is None or (difference[0] >= first_epoch and difference[4] <= ulp), difference
        return
    assert difference is None, (
        "epoch {}: {} differs, gdcore {} vs keras {} ({} ulp)".format(*difference)
    )


# Keras reports a per-sample loss or metric as ops.mean(..., axis=-1): tf.reduce_mean, Eigen's inner-most sum of
# the outputs, which differs from a front-to-back sum once a row holds a whole packet (8 float32, 4 float64 outputs).
# The weights never depended on it (the mean's gradient is 1/N per output); the history did, by an ulp.
WIDE = {"float32-9-mse": ("float32", 9, "mse", None), "float64-5-mse": ("float64", 5, "mse", None),
        "float64-5-binary_crossentropy": ("float64", 5, "binary_crossentropy", "sigmoid"),
        "float32-16-mae": ("float32", 16, "mae", "tanh")}


@pytest.mark.parametrize("engine", ["numpy", "numba"])
@pytest.mark.parametrize("case", list(WIDE))
def test_wide_outputs_report_the_loss_and_metrics_keras_reports(case, engine):
    dtype, units, loss, activation = WIDE[case]
    rng = np.random.default_rng(units)
    x = rng.standard_normal((40, 2))
    y = (rng.standard_normal((40, units)) > 0).astype(float) if loss == "binary_crossentropy" else \
        rng.standard_normal((40, units))
    model = gdcore.Sequential([gdcore.Input(shape=(2,)), gdcore.layers.Dense(units, activation=activation)],
                              dtype=dtype, numerics="tensorflow", engine=engine, seed=0)
    model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=0.1), loss=loss, metrics=["mae", "mse"])
    arguments = {"orders": epoch_orders(len(x), 4, seed=0), "batch_size": 16, "validation_data": (x[:12], y[:12])}
    mine = run_gdcore(model, x, y, **arguments)
    theirs = run_keras(model, x, y, **arguments)
    difference = _first_difference(mine, theirs)
    assert difference is None, "epoch {}: {} differs, gdcore {} vs keras {} ({} ulp)".format(*difference)
