"""The comparison maths, the configuration grid and the report table: no TensorFlow, no scikit-learn."""

import numpy as np
import pandas as pd
import pytest

from reference.compare import (ULP_NAN, Tolerance, bit_identical, compare, default_tolerance, relative_difference,
                               ulp_distance, within_tolerance)
from reference.configs import (SEED_LINEAR, SEED_LOGISTIC, SEED_SIGMOID8, SEED_SOFTMAX, Config, classification_grid,
                               default_configs, epoch_orders, full_grid, regression_configs, select)
from reference.report import format_table, markdown_table
from reference.trajectory import Trajectory


# --- ULP distance -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ulp_distance_counts_representable_steps(dtype):
    one = dtype(1)
    up = np.nextafter(one, dtype(2))
    two_up = np.nextafter(up, dtype(2))
    down = np.nextafter(one, dtype(0))  # below 1 the spacing halves: still one step
    a = np.array([one, one, one, one], dtype=dtype)
    b = np.array([one, up, two_up, down], dtype=dtype)
    np.testing.assert_array_equal(ulp_distance(a, b), [0, 1, 2, 1])
    np.testing.assert_array_equal(ulp_distance(b, a), [0, 1, 2, 1])  # symmetric


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ulp_distance_across_zero_and_sign_change(dtype):
    tiny = np.nextafter(dtype(0), dtype(1))  # smallest subnormal, 1 step above +0
    # +0 and -0 are the same point; the smallest subnormals on either side are 2 steps apart.
    a = np.array([0.0, -0.0, -tiny, tiny, -tiny], dtype=dtype)
    b = np.array([-0.0, 0.0, tiny, dtype(0), dtype(0)], dtype=dtype)
    np.testing.assert_array_equal(ulp_distance(a, b), [0, 0, 2, 1, 1])
    # -1 to +1: the magnitudes of both, added (each is the bit pattern's distance from 0).
    one_bits = int(np.array(1, dtype=dtype).view(np.uint32 if dtype == np.float32 else np.uint64))
    assert ulp_distance(np.array([-1.0], dtype), np.array([1.0], dtype))[0] == 2 * one_bits


def test_ulp_distance_extremes_nan_and_inf():
    big = np.finfo(np.float64).max
    # The largest possible distance, -max to +max, still fits in uint64.
    distance = ulp_distance(np.array([-big]), np.array([big]))[0]
    assert distance == 2 * int(np.array(big).view(np.uint64))
    assert ulp_distance(np.array([big]), np.array([np.inf]))[0] == 1
    assert ulp_distance(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))[0] == ULP_NAN


def test_ulp_distance_refuses_mixed_dtypes():
    with pytest.raises(ValueError, match="two float32 or two float64"):
        ulp_distance(np.ones(2, np.float32), np.ones(2, np.float64))
    with pytest.raises(ValueError, match="shapes"):
        ulp_distance(np.ones(2), np.ones(3))


# --- relative difference, tolerance, bits ----------------------------------------------------


def test_relative_difference_with_zeros_and_specials():
    a = np.array([0.0, 0.0, 1.0, 1.0, -2.0, np.inf, np.nan, 1e-300])
    b = np.array([0.0, 1e-30, 1.0, 1.5, 2.0, np.inf, 1.0, 0.0])
    np.testing.assert_allclose(relative_difference(a, b)[:6], [0.0, 1.0, 0.0, 0.5 / 1.5, 2.0, 0.0])
    assert np.isnan(relative_difference(a, b)[6])
    assert relative_difference(a, b)[7] == 1.0  # exactly one of them is zero
    np.testing.assert_array_equal(relative_difference(a, b), relative_difference(b, a))


def test_within_tolerance_is_symmetric_and_rejects_nan():
    a = np.array([1.0, 1.0, 0.0, 0.0, np.inf, np.nan])
    b = np.array([1.0 + 1e-5, 1.0 + 1e-3, 5e-7, 5e-6, np.inf, np.nan])
    expected = [True, False, True, False, True, False]
    np.testing.assert_array_equal(within_tolerance(a, b, rtol=1e-4, atol=1e-6), expected)
    np.testing.assert_array_equal(within_tolerance(b, a, rtol=1e-4, atol=1e-6), expected)


def test_bit_identical_sees_signed_zero_and_dtype():
    assert bit_identical(np.array([1.5, 0.0]), np.array([1.5, 0.0]))
    assert not bit_identical(np.array([0.0]), np.array([-0.0]))
    assert not bit_identical(np.array([1.0], np.float32), np.array([1.0], np.float64))
    assert bit_identical(np.array([np.nan]), np.array([np.nan]))


def test_default_tolerances_per_dtype():
    assert default_tolerance("float32") == Tolerance(1e-4, 1e-6)
    assert default_tolerance(np.float64) == Tolerance(1e-9, 1e-12)
    with pytest.raises(ValueError, match="float16"):
        default_tolerance("float16")


# --- comparing trajectories --------------------------------------------------------------------


def _trajectory(engine, kernels, losses, diverged_at=None, dtype="float64"):
    weights = [[np.array([[k]], dtype=dtype), np.array([0.5], dtype=dtype)] for k in kernels]
    return Trajectory(engine, dtype, ["dense/kernel", "dense/bias"], weights=weights, loss=list(losses),
                      predictions=[w[0] * 2 for w in weights], diverged_at=diverged_at)


def test_compare_rows_are_tidy_and_bits_are_counted():
    mine = _trajectory("gdcore", [0.1, 0.2, 0.3], [5.0, 4.0])
    theirs = _trajectory("keras", [0.1, 0.2, np.nextafter(0.3, 1)], [5.0, 4.0])
    comparison = compare(mine, theirs, config="toy")
    rows = comparison.rows
    # 3 epochs x (kernel, bias, predictions) + 2 epochs x loss
    assert len(rows) == 11 and set(rows["quantity"]) == {"dense/kernel", "dense/bias", "predictions", "loss"}
    assert comparison.status == "ok"
    assert comparison.bit_identical_epochs == 1  # epoch 1 equal to the bit; epoch 2 one ulp off
    kernel_2 = rows[(rows["epoch"] == 2) & (rows["quantity"] == "dense/kernel")].iloc[0]
    assert kernel_2["max_ulp"] == 1 and not kernel_2["bit_identical"] and kernel_2["within_tolerance"]
    summary = comparison.summary()
    assert summary["bit_identical_epochs"] == 1 and summary["epochs_compared"] == 2


def test_failure_message_shows_mine_vs_theirs_with_previous_epoch():
    mine = _trajectory("gdcore", [0.1, 0.2, 0.3, 0.4], [5.0, 4.0, 3.0])
    theirs = _trajectory("keras", [0.1, 0.2, 0.3001, 0.4002], [5.0, 4.0, 3.0])
    comparison = compare(mine, theirs, Tolerance(rtol=1e-6, atol=0.0), config="toy")
    assert comparison.status == "FAIL" and comparison.first_failing_epoch == 2
    message = comparison.failure_message()
    assert "first epoch beyond tolerance (rtol=1e-06, atol=0): 2" in message
    assert "epoch 1 (previous epoch)" in message and "epoch 2 (first failing epoch)" in message
    assert "dense/kernel" in message and "predictions" in message
    assert "gdcore [0.3]" in message and "keras  [0.3001]" in message  # epoch 2, mine vs theirs
    assert "gdcore [0.2]" in message  # epoch 1, for context


def test_divergence_in_both_is_not_a_failure_but_in_one_is():
    both = compare(_trajectory("gdcore", [0.1, 0.2], [1.0], diverged_at=2), _trajectory("keras", [0.1, 0.2], [1.0], diverged_at=2))
    assert both.status == "diverged" and both.reason == "diverged in both at epoch 2" and not both.failed
    one = compare(_trajectory("gdcore", [0.1, 0.2], [1.0], diverged_at=2), _trajectory("keras", [0.1, 0.2, 0.3], [1.0, 0.5]))
    assert one.failed and "gdcore diverged at epoch 2, keras did not" in one.reason


# --- configurations ----------------------------------------------------------------------------


def test_default_configs_hold_the_seed_models_and_its_variants():
    configs = default_configs()
    names = [config.name for config in configs]
    assert len(set(names)) == len(names)
    assert configs[0] == Config("linear", "sgd", "mse", batch_size=20, learning_rate=0.01, epochs=25)
    assert configs[1] == Config("sigmoid8", "adam", "mse", batch_size=20, learning_rate=0.1, epochs=25)
    assert SEED_LINEAR.replace(loss="mae") in configs
    for change in ({"batch_size": 1}, {"batch_size": 100}, {"learning_rate": 0.1}, {"learning_rate": 0.001},
                   {"dtype": "float64"}):
        assert SEED_LINEAR.replace(**change) in configs
    assert SEED_SIGMOID8.replace(dtype="float64") in configs


def test_default_configs_end_with_the_classification_lesson():
    configs = default_configs()
    assert configs[:len(regression_configs())] == regression_configs()  # the regression set, unchanged and first
    classifiers = [config for config in configs if config.task != "regression"]
    assert configs[len(regression_configs()):] == classifiers and classifiers[0] == SEED_LOGISTIC
    names = [config.name for config in classifiers]
    assert names[:4] == ["logistic-sgd-bce-b20-lr0.1-float32", "logistic-sgd-bce-b1-lr0.1-float32",
                         "logistic-adam-bce-b20-lr0.1-float32", "logistic-adam-bce-b1-lr0.1-float32"]
    for name in ("tanh4-sigmoid-adam-bce-b20-lr0.05-float32", "softmax-sgd-scce-b20-lr0.1-float32",
                 "softmax-sgd-cce-b20-lr0.1-float32", "sigmoid8-softmax-adam-cce-b30-lr0.05-float64"):
        assert name in names
    assert {config.dtype for config in classifiers} == {"float32", "float64"}


def test_full_grid_is_the_product_and_filterable():
    grid = [config for config in full_grid() if config.task == "regression"]
    assert len(grid) == 2 * 2 * 2 * 4 * 3 * 2  # architecture, optimizer, loss, batch, rate, dtype
    classification = classification_grid()
    assert full_grid() == grid + classification
    assert len(classification) == (2 * 2 * 3 * 2 + 2 * 2 * 2 * 3) * 2  # sigmoid: arch, opt, batch, rate; softmax: arch, opt, labels, batch
    assert len({config.name for config in full_grid()}) == len(full_grid())
    assert len({config.name for config in grid}) == len(grid)
    assert {config.batch_size for config in grid} == {1, 20, 30, 100}
    assert len([config for config in grid if config.loss == "mae" and config.dtype == "float32"]) == 48
    assert [config.name for config in select(grid, ["sigmoid8-adam-mse-b30-*-float64"])] == [
        "sigmoid8-adam-mse-b30-lr0.1-float64", "sigmoid8-adam-mse-b30-lr0.01-float64", "sigmoid8-adam-mse-b30-lr0.001-float64"]
    with pytest.raises(ValueError, match="no configuration matches 'nope'"):
        select(grid, ["nope"])


@pytest.mark.parametrize("field, value, message", [
    ("architecture", "sigmoid", "architecture"), ("architecture", "sigmoid0", "no hidden units"),
    ("optimizer", "adadelta", "optimizer"), ("loss", "huber", "loss"), ("batch_size", 0, "batch_size"),
    ("learning_rate", -1.0, "learning_rate"), ("n_features", 2, "n_features"), ("dtype", "float16", "dtype"),
])
def test_config_validates_each_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        Config(**{field: value})


def test_config_data_model_and_orders():
    config = Config("tanh16", "adam", "mae", batch_size=30, n_features=3, dtype="float64", seed=7)
    x, y, x_val, y_val = config.load_data()
    assert x.shape == (100, 3) and y.shape == (100, 1) and x_val.shape == (30, 3) and x.dtype == np.float64
    np.testing.assert_array_equal(x[:, 1], np.sin(x[:, 0]))
    np.testing.assert_array_equal(x[:, 2], x[:, 0] ** 2)
    model = config.build_model()
    assert [(layer.units, layer.activation.name) for layer in model.layers] == [(16, "tanh"), (1, "linear")]
    assert model.loss.name == "mean_absolute_error" and model.optimizer.get_config()["learning_rate"] == 0.01
    orders = config.epoch_orders()
    assert orders.shape == (25, 100) and all(sorted(order) == list(range(100)) for order in orders)
    np.testing.assert_array_equal(orders, epoch_orders(100, 25, 7))
    assert config.name == "tanh16-adam-mae-b30-lr0.01-x3-s7-float64"


def test_classification_configs_data_and_models():
    x, y, x_val, y_val = SEED_LOGISTIC.load_data()
    regression = SEED_LINEAR.load_data()
    np.testing.assert_array_equal(x, regression[0])  # the seed's X, labelled by the threshold 2.5
    np.testing.assert_array_equal(y, (regression[1] > 2.5).astype(np.float32))
    assert x_val.shape == (30, 1) and set(np.unique(y)) == {0.0, 1.0}
    model = SEED_LOGISTIC.build_model()
    assert [(layer.units, layer.activation.name) for layer in model.layers] == [(1, "sigmoid")]
    assert model.loss.name == "binary_crossentropy" and model.metrics_names == ["loss", "accuracy"]

    sparse, one_hot = SEED_SOFTMAX, SEED_SOFTMAX.replace(architecture="sigmoid8", loss="cce", dtype="float64")
    x, y, _, _ = sparse.load_data()
    assert x.shape == (100, 2) and y.shape == (100, 1) and set(np.unique(y)) == {0.0, 1.0, 2.0}
    x64, y64, _, y64_val = one_hot.load_data()
    assert y64.shape == (100, 3) and y64.dtype == np.float64 and (y64.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(np.argmax(y64, axis=1), y[:, 0])
    assert y64_val.shape == (30, 3)
    model = one_hot.build_model()
    assert [(layer.units, layer.activation.name) for layer in model.layers] == [(8, "sigmoid"), (3, "softmax")]
    assert model.loss.name == "categorical_crossentropy" and model.dtype == np.float64
    assert one_hot.name == "sigmoid8-softmax-sgd-cce-b20-lr0.1-float64" and one_hot.task == "multiclass"
    assert SEED_LOGISTIC.replace(architecture="tanh4").name == "tanh4-sigmoid-sgd-bce-b20-lr0.1-float32"
    assert SEED_LOGISTIC.replace(n_features=3).name == "logistic-sgd-bce-b20-lr0.1-x3-float32"


@pytest.mark.parametrize("changes, message", [
    ({"output": "tanh"}, r"output must be one of \('linear', 'sigmoid', 'softmax'\), got 'tanh'"),
    ({"output": "softmax", "loss": "bce", "n_features": 2}, r"loss 'bce' cannot train a softmax output; .* \('scce', 'cce'\)"),
    ({"loss": "scce"}, r"loss 'scce' cannot train a linear output"),
    ({"output": "softmax", "loss": "scce"}, r"n_features must be 2 \(the three-class data's X1, X2\) for output='softmax', got 1"),
    ({"output": "sigmoid", "loss": "bce", "n_features": 2}, r"n_features must be 1 \(x\) or 3 .* got 2"),
])
def test_config_refuses_an_output_its_loss_or_data_cannot_fit(changes, message):
    with pytest.raises(ValueError, match=message):
        Config(**changes)


def test_cross_entropies_vs_keras_get_their_own_tolerance():
    from reference.compare import CLASSIFICATION_TOLERANCES, DEFAULT_TOLERANCES, classification_tolerance
    from reference.runner import keras_tolerance

    # Under the tensorflow profile the cross-entropies are bit-identical: the default tolerance; plain keeps its bound.
    for config, expected in [(SEED_LOGISTIC.replace(numerics="tensorflow"), DEFAULT_TOLERANCES["float32"]),
                             (SEED_SOFTMAX.replace(numerics="plain", dtype="float64"), CLASSIFICATION_TOLERANCES["float64"]),
                             (SEED_LOGISTIC.replace(numerics="plain"), CLASSIFICATION_TOLERANCES["float32"]),
                             (SEED_LOGISTIC.replace(numerics="tensorflow", loss="mse"), DEFAULT_TOLERANCES["float32"]),
                             (SEED_LINEAR.replace(numerics="tensorflow", dtype="float64"), DEFAULT_TOLERANCES["float64"])]:
        assert keras_tolerance(config, config.build_model()) == expected, config.name
    given = Tolerance(0.0, 0.0)
    assert keras_tolerance(SEED_LOGISTIC, SEED_LOGISTIC.build_model(), given) is given
    assert DEFAULT_TOLERANCES == {"float32": Tolerance(1e-4, 1e-6), "float64": Tolerance(1e-9, 1e-12)}  # untouched
    with pytest.raises(ValueError, match="no default tolerance for dtype 'float16'"):
        classification_tolerance("float16")


# --- the table ---------------------------------------------------------------------------------


def test_table_shows_status_bits_and_skip_reasons():
    summary = pd.DataFrame([
        {"config": "c1", "engines": "gdcore vs keras", "status": "ok", "worst_rel_diff": 1.5e-6, "worst_abs_diff": 1e-7,
         "max_ulp": 12.0, "bit_identical_epochs": 20, "epochs_compared": 25, "first_failing_epoch": None,
         "mine_seconds": 0.002, "theirs_seconds": 1.0, "speedup": 500.0, "rtol": 1e-4, "atol": 1e-6, "known_gap": "", "reason": ""},
        {"config": "c1", "engines": "gdcore vs sklearn.SGDRegressor", "status": "skipped", "worst_rel_diff": np.nan,
         "worst_abs_diff": np.nan, "max_ulp": np.nan, "bit_identical_epochs": 0, "epochs_compared": 0,
         "first_failing_epoch": None, "mine_seconds": np.nan, "theirs_seconds": np.nan, "speedup": np.nan, "rtol": 1e-4,
         "atol": 1e-6, "known_gap": "", "reason": "SGDRegressor updates after every sample (batch_size=1); got batch_size=20"},
    ])
    text = format_table(summary)
    assert "20/25" in text and "1.5e-06" in text and "500x" in text
    assert "skipped" in text and "got batch_size=20" in text
    assert markdown_table(summary).count("\n") == 3
