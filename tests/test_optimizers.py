"""gdcore.optimizers: each update rule by hand, against Keras's own tests, and against live Keras bit for bit.

Hand-checkable single steps (in the style of Keras's ``test_single_step``)
use float64 and the ``"plain"`` lanes, where every operation is the one
written in the module docstring. The golden values copied from Keras's test
suite are named with their source (``keras/src/optimizers/*_test.py``, Keras
3.15.1) and keep its tolerances. The live tests apply the same gradients with
Keras's optimizer inside a ``tf.function`` (as ``fit`` does, where
TensorFlow's graph optimizer rewrites some operations) and with gdcore's
rule in the ``"tensorflow"`` lanes, and compare bits.
"""

import os

import numpy as np
import pytest

import gdcore
from gdcore import optimizers, schedules
from gdcore.numerics import get_profile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _steps(optimizer, weights, gradients, dtype=np.float64, lanes=None):
    """Apply each gradient in turn with gdcore's rule; the weights after each step."""
    params = np.array(weights, dtype=dtype)
    optimizer.build(params.size, params.dtype)
    lanes = np.zeros(params.size, np.int8) if lanes is None else lanes
    hyper = optimizer.hyperparameters(params.dtype)
    options = optimizer.options(params.dtype, len(gradients), [(0, params.size)], eigen_sum=False)
    after = []
    for gradient in gradients:
        optimizers.apply_update(hyper, params, np.asarray(gradient, dtype=dtype), optimizer.slots,
                                optimizer.iterations, lanes, options)
        optimizer.iterations += 1
        after.append(params.copy())
    return after


# --- by hand ------------------------------------------------------------------------


def test_sgd_step_by_hand():
    # w - g * lr: 1 - 1 * 0.5, 2 - 6 * 0.5, ...
    (after,) = _steps(optimizers.SGD(learning_rate=0.5), [1.0, 2.0, 3.0, 4.0], [[1.0, 6.0, 7.0, 2.0]])
    assert after.tolist() == [0.5, -1.0, -0.5, 3.0]


def test_sgd_momentum_and_nesterov_by_hand():
    # m = 0 * 0.5 - 1 * 0.1 = -0.1, w = 1 - 0.1 = 0.9; then m = -0.1 * 0.5 - 0.1 = -0.15, w = 0.75.
    # Nesterov adds (m * 0.5 - g * 0.1) instead: first -0.1 * 0.5 - 0.1 = -0.15, w = 0.85.
    # (momentum 0.5 is exact in float32, so Keras's cast through float32 changes nothing here)
    plain = _steps(optimizers.SGD(learning_rate=0.1, momentum=0.5), [1.0], [[1.0], [1.0]])
    assert [w[0] for w in plain] == [0.9, 0.75]
    nesterov = _steps(optimizers.SGD(learning_rate=0.1, momentum=0.5, nesterov=True), [1.0], [[1.0]])
    assert nesterov[0][0] == 1.0 - 0.15


def test_adam_first_step_by_hand():
    # t = 1: alpha = 0.1 * sqrt(1 - b2) / (1 - b1); m = 0.1 g, v = 0.001 g^2 (exact betas: float32_betas=False);
    # w - m alpha / (sqrt(v) + eps) = w - 0.1 * g / |g| * ~1 for every g: each weight moves by ~0.1.
    (after,) = _steps(optimizers.Adam(learning_rate=0.1, epsilon=0.0, float32_betas=False), [1.0, 2.0], [[3.0, -0.5]])
    beta_1, beta_2 = 0.9, 0.999
    alpha = 0.1 * np.sqrt(1 - beta_2) / (1 - beta_1)
    m, v = np.array([3.0, -0.5]) * (1 - beta_1), np.array([3.0, -0.5]) ** 2 * (1 - beta_2)
    assert np.array_equal(after, np.array([1.0, 2.0]) - (m * alpha) / np.sqrt(v))
    np.testing.assert_allclose(after, [0.9, 2.1], rtol=1e-12)


def test_rmsprop_first_step_by_hand():
    # v = (1 - rho) g^2, w - lr g / sqrt(v + eps): with eps = 0, w - lr / sqrt(0.1) sign(g) = w -+ 0.5 * 3.1623...
    # (1 - rho is computed in double precision, as Keras does: 0.09999999999999998)
    (after,) = _steps(optimizers.RMSprop(learning_rate=0.5, epsilon=0.0), [1.0, 2.0], [[1.0, -6.0]])
    v = (1 - 0.9) * (np.array([1.0, -6.0]) * np.array([1.0, -6.0]))
    assert np.array_equal(after, np.array([1.0, 2.0]) - (0.5 * np.array([1.0, -6.0])) / np.sqrt(v))


def test_rmsprop_centered_with_momentum_by_hand():
    rho, lr, mu, eps = 0.9, 0.01, 0.5, 1e-7
    w, v, a, m = 1.0, 0.0, 0.0, 0.0
    expected = []
    for g in (0.3, -0.2):
        v = rho * v + (1 - rho) * g * g
        a = rho * a + (1 - rho) * g
        m = mu * m + (lr * g) / np.sqrt(v - (a * a - eps))
        w = w - m
        expected.append(w)
    got = _steps(optimizers.RMSprop(learning_rate=lr, rho=rho, momentum=mu, epsilon=eps, centered=True), [1.0],
                 [[0.3], [-0.2]])
    assert [x[0] for x in got] == expected


def test_adagrad_by_hand():
    # G = 0.1 + g^2 (0.1 through float32 first, as Keras's Constant initializer), w - lr g / sqrt(G + eps)
    (after,) = _steps(optimizers.Adagrad(learning_rate=0.5, epsilon=0.0), [1.0], [[2.0]])
    accumulator = float(np.float32(0.1)) + 4.0
    assert after[0] == 1.0 - (0.5 * 2.0) / np.sqrt(accumulator)


def test_state_is_named_after_the_rule():
    optimizer = optimizers.RMSprop(momentum=0.5)
    optimizer.build(3, np.float32)
    assert list(optimizer.state) == ["v", "m", "average"] and optimizer.active_slots() == ("v", "m")
    assert optimizers.Adam().rule.slots == ("m", "v", "v_hat") and optimizers.Adam().active_slots() == ("m", "v")
    assert optimizers.Adam(amsgrad=True).active_slots() == ("m", "v", "v_hat") and optimizers.SGD().active_slots() == ()


def test_an_unknown_hyperparameter_type_is_refused():
    with pytest.raises(TypeError, match="no optimizer rule"):
        optimizers.apply_update((0.1,), np.zeros(1), np.zeros(1), np.zeros((1, 1)), 0, np.zeros(1, np.int8))


# --- Keras's own tests (golden values from keras/src/optimizers/*_test.py, Keras 3.15.1) ------------


def test_keras_single_steps():
    weights, gradient = [1.0, 2.0, 3.0, 4.0], [[1.0, 6.0, 7.0, 2.0]]
    # sgd_test.py::test_single_step
    np.testing.assert_allclose(_steps(optimizers.SGD(learning_rate=0.5), weights, gradient, np.float32)[0],
                               [0.5, -1.0, -0.5, 3.0], rtol=1e-4, atol=1e-4)
    # adam_test.py::test_single_step
    np.testing.assert_allclose(_steps(optimizers.Adam(learning_rate=0.5), weights, gradient, np.float32)[0],
                               [0.5, 1.5, 2.5, 3.5], rtol=1e-4, atol=1e-4)
    # rmsprop_test.py::test_single_step
    np.testing.assert_allclose(_steps(optimizers.RMSprop(learning_rate=0.5), weights, gradient, np.float32)[0],
                               [-0.5811, 0.4189, 1.4189, 2.4189], rtol=1e-4, atol=1e-4)
    # adagrad_test.py::test_single_step
    np.testing.assert_allclose(_steps(optimizers.Adagrad(learning_rate=0.5), weights, gradient, np.float32)[0],
                               [0.5233, 1.5007, 2.5005, 3.5061], rtol=1e-4, atol=1e-4)


def test_keras_golden_tables():
    grads = np.arange(0.1, 1.1, 0.1)[:10]
    first = np.full(10, 0.01)
    # rmsprop_test.py::test_correctness_with_golden (centered=True)
    golden = np.tile([[0.9967], [0.9933], [0.9908], [0.9885], [0.9864]], (1, 10))
    steps = _steps(optimizers.RMSprop(centered=True), np.ones(10), [first] + [grads] * 4, np.float32)
    for got, expected in zip(steps, golden):
        np.testing.assert_allclose(got, expected, rtol=5e-4, atol=5e-4)
    # adagrad_test.py::test_correctness_with_golden
    golden = np.array([[0.9963] * 10,
                       [0.9604, 0.9278, 0.9003, 0.8784, 0.8615, 0.8487, 0.8388, 0.8313, 0.8255, 0.8209],
                       [0.9251, 0.8629, 0.8137, 0.7768, 0.7497, 0.7298, 0.7151, 0.704, 0.6956, 0.6891],
                       [0.8903, 0.8012, 0.7342, 0.6862, 0.6521, 0.6277, 0.6099, 0.5967, 0.5867, 0.579],
                       [0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825]])
    adagrad = optimizers.Adagrad(learning_rate=0.2, initial_accumulator_value=0.3, epsilon=1e-6)
    for got, expected in zip(_steps(adagrad, np.ones(10), [first] + [grads] * 4), golden):
        np.testing.assert_allclose(got, expected, rtol=5e-4, atol=5e-4)
    # sgd_test.py::test_correctness_with_golden (nesterov=True, momentum 0: plain SGD)
    golden = np.array([[0.9999] * 10, [0.9989, 0.9979, 0.9969, 0.9959, 0.9949, 0.9939, 0.9929, 0.9919, 0.9909, 0.9899],
                       [0.9979, 0.9959, 0.9939, 0.9919, 0.9899, 0.9879, 0.9859, 0.9839, 0.9819, 0.9799],
                       [0.9969, 0.9939, 0.9909, 0.9879, 0.9849, 0.9819, 0.9789, 0.9759, 0.9729, 0.9699],
                       [0.9959, 0.9919, 0.9879, 0.9839, 0.9799, 0.9759, 0.9719, 0.9679, 0.9639, 0.9599]])
    steps = _steps(optimizers.SGD(nesterov=True), np.ones(10), [first] + [grads] * 4, np.float32)
    for got, expected in zip(steps, golden):
        np.testing.assert_allclose(got, expected, rtol=5e-4, atol=5e-4)


def test_keras_adamw_tests():
    # adamw_test.py::test_single_step
    np.testing.assert_allclose(_steps(optimizers.AdamW(learning_rate=0.5), [1.0, 2.0, 3.0, 4.0],
                                      [[1.0, 6.0, 7.0, 2.0]], np.float32)[0],
                               [0.4980, 1.4960, 2.494, 3.492], rtol=1e-4, atol=1e-4)
    # adamw_test.py::test_weight_decay: three AdamW(learning_rate=1.0, weight_decay=0.004) steps on 2.0, zero gradient
    weight = [2.0]
    for _ in range(3):
        (weight,) = _steps(optimizers.AdamW(learning_rate=1.0, weight_decay=0.004), weight, [[0.0]], np.float32)
    np.testing.assert_almost_equal(weight[0], 1.9760959, decimal=6)
    # adamw_test.py::test_weight_decay_is_none
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(learning_rate=1.0, weight_decay=None)
    # adamw_test.py::test_correctness_with_golden
    golden = np.array(
        [[0.4998] * 10,
         [0.2486, 0.2475, 0.2463, 0.2451, 0.244, 0.2428, 0.2417, 0.2405, 0.2394, 0.2382],
         [0.1223, 0.1198, 0.1174, 0.1149, 0.1124, 0.11, 0.1075, 0.1051, 0.1027, 0.1003],
         [0.0586, 0.0549, 0.0512, 0.0475, 0.0439, 0.0402, 0.0366, 0.033, 0.0294, 0.0258],
         [0.0263, 0.0215, 0.0167, 0.012, 0.0073, 0.0026, -0.0021, -0.0067, -0.0113, -0.0159]])
    grads = np.arange(0.1, 1.1, 0.1)[:10]
    steps = _steps(optimizers.AdamW(learning_rate=1.0, weight_decay=0.5, epsilon=2), np.ones(10),
                   [np.full(10, 0.01)] + [grads] * 4, np.float32)
    for got, expected in zip(steps, golden):
        np.testing.assert_allclose(got, expected, rtol=5e-4, atol=5e-4)


def test_keras_clipping_tests():
    # optimizer_test.py::test_clip_args
    assert optimizers.SGD(learning_rate=1.0, clipnorm=0.1).clipnorm == 0.1
    assert optimizers.SGD(learning_rate=1.0, clipvalue=0.1).clipvalue == 0.1
    assert optimizers.SGD(learning_rate=1.0, global_clipnorm=0.1).global_clipnorm == 0.1
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        optimizers.SGD(learning_rate=1.0, clipnorm=0.1, clipvalue=0.1)
    # test_clip_norm, test_clip_value, test_global_clip_norm: SGD(learning_rate=1) from 0 moves by -clipped gradient
    (after,) = _steps(optimizers.SGD(learning_rate=1.0, clipnorm=1), [0.0, 0.0], [[100.0, 100.0]], np.float32)
    np.testing.assert_allclose(-after, [2**0.5 / 2, 2**0.5 / 2])
    (after,) = _steps(optimizers.SGD(learning_rate=1.0, clipvalue=1), [0.0, 0.0], [[100.0, 100.0]], np.float32)
    np.testing.assert_allclose(-after, [1.0, 1.0])
    grad = np.array([50.0, 100.0], dtype="float32")
    (after,) = _steps(optimizers.SGD(learning_rate=1.0, global_clipnorm=1), [0.0, 0.0], [grad], np.float32)
    np.testing.assert_allclose(-after, grad / np.linalg.norm(grad), rtol=1e-6)


def test_keras_ema_tests():
    # optimizer_test.py::test_ema: SGD(1.0) with gradient 1, a moving average of momentum 0.9, overwritten every 3
    optimizer = optimizers.SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)
    steps = _steps(optimizer, [3.0, 4.0, 5.0, 6.0], [np.ones(4)] * 3, np.float32)
    np.testing.assert_allclose(steps[0], [2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(steps[1], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(steps[2], [1.71, 2.71, 3.71, 4.71])  # variables were overwritten with the average
    np.testing.assert_allclose(optimizer.state["moving_average"], [1.71, 2.71, 3.71, 4.71])
    # test_ema_with_model_fit: a kernel of ones trained towards 0 for two steps, then replaced by its average
    for engine in ("numpy", "numba"):
        optimizer = optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.9)
        model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(2, kernel_initializer="ones",
                                                                         use_bias=False)], engine=engine)
        model.compile(loss="mse", optimizer=optimizer)
        model.fit(np.ones((1, 1), "float32"), np.zeros((1, 1), "float32"), batch_size=1, epochs=2, verbose=0)
        np.testing.assert_allclose(optimizer.state["moving_average"], [0.891, 0.891], atol=1e-5)
        np.testing.assert_allclose(model.trainable_weights[0], [[0.891, 0.891]], atol=1e-5)


def test_apply_gradients_on_arrays_as_keras_optimizer_tests_do():
    # optimizer_test.py::test_ema, on arrays updated in place as Keras's variables are
    v = np.array([[3.0, 4.0], [5.0, 6.0]], np.float32)
    grads = np.ones((2, 2), np.float32)
    optimizer = optimizers.SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)
    optimizer.apply_gradients([(grads, v)])
    np.testing.assert_allclose(v, [[2.0, 3.0], [4.0, 5.0]])
    optimizer.apply_gradients([(grads, v)])
    np.testing.assert_allclose(v, [[1.0, 2.0], [3.0, 4.0]])
    assert optimizer.apply_gradients([(grads, v)]) == 3
    np.testing.assert_allclose(v, [[1.71, 2.71], [3.71, 4.71]])
    # adam_test.py::test_single_step (rtol, atol 1e-4), and apply() without the variables once they are known
    optimizer, variables = optimizers.Adam(learning_rate=0.5), [np.array([1.0, 2.0, 3.0, 4.0], np.float32)]
    optimizer.apply([np.array([1.0, 6.0, 7.0, 2.0], np.float32)], variables)
    np.testing.assert_allclose(variables[0], [0.5, 1.5, 2.5, 3.5], rtol=1e-4, atol=1e-4)
    optimizer.apply([np.zeros(4, np.float32)])
    assert optimizer.iterations == 2 and optimizer.apply_gradients([]) == 2  # no pairs: nothing applied
    with pytest.raises(TypeError, match=r"trainable_variables\[0\] must be a writable float32 or float64 NumPy"):
        optimizers.SGD().apply([[1.0]], [[1.0]])
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(3,\), its variable \(4,\)"):
        optimizer.apply([np.ones(3)], variables)
    with pytest.raises(ValueError, match="applied to variables of shapes"):
        optimizer.apply([np.ones(3)], [np.ones(3, np.float32)])
    with pytest.raises(ValueError, match="call apply\\(grads, trainable_variables\\) first"):
        optimizers.SGD().apply([np.ones(3)])


def test_moving_average_by_hand():
    # SGD(0.5), g = 1: w 2 -> 1.5 (the average copies it), -> 1.0 (average 0.5 * 1.5 + 0.5 * 1.0 = 1.25), then
    # overwritten every 2nd update: w = 1.25, and 1.25 -> 0.75 (average 0.5 * 1.25 + 0.5 * 0.75 = 1.0).
    optimizer = optimizers.SGD(learning_rate=0.5, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=2)
    steps = _steps(optimizer, [2.0], [[1.0]] * 3)
    assert [float(w[0]) for w in steps] == [1.5, 1.25, 0.75]
    assert optimizer.state["moving_average"].tolist() == [1.0]
    assert optimizer.slots.shape == (2, 1)  # SGD's momentum slot, then the average
    # the average follows only the trainable weights: a frozen one keeps its value and its average stays 0
    optimizer = optimizers.SGD(learning_rate=0.5, use_ema=True, ema_momentum=0.5)
    steps = _steps(optimizer, [2.0, 2.0], [[1.0, 1.0]] * 2, lanes=np.array([0, optimizers.FROZEN], np.int8))
    assert steps[-1].tolist() == [1.0, 2.0] and optimizer.state["moving_average"].tolist() == [1.25, 0.0]


def test_moving_average_settings_are_checked_as_keras_checks_them():
    with pytest.raises(ValueError, match="ema_momentum must be a number in \\[0, 1\\]"):
        optimizers.Adam(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match="ema_overwrite_frequency must be an integer >= 1 or None, got 2.5"):
        optimizers.SGD(use_ema=True, ema_overwrite_frequency=2.5)
    with pytest.raises(TypeError, match="use_ema must be True or False"):
        optimizers.SGD(use_ema="yes")
    optimizers.SGD(ema_momentum=1.5)  # not read while use_ema is off (Keras does not check it either)
    assert repr(optimizers.SGD(use_ema=True, ema_overwrite_frequency=5)).endswith(
        "use_ema=True, ema_overwrite_frequency=5)")


def test_weight_decay_and_clipping_by_hand():
    # SGD(0.1, weight_decay=0.5): w = 2 - 2 * (0.5 * 0.1) = 1.9, then 1.9 - 0.1 * g with g = 1: 1.8.
    (after,) = _steps(optimizers.SGD(learning_rate=0.1, weight_decay=0.5), [2.0], [[1.0]])
    assert after[0] == 1.9 - 0.1
    # clipnorm clips each tensor by its own norm: [3, 4] has norm 5, clipped to norm 1: [0.6, 0.8].
    optimizer = optimizers.SGD(learning_rate=1.0, clipnorm=1.0)
    optimizer.build(4, np.float64)
    params, grads = np.zeros(4), np.array([3.0, 4.0, 0.1, 0.0])
    options = optimizer.options(np.float64, 1, [(0, 2), (2, 4)], eigen_sum=False)
    optimizers.apply_update(optimizer.hyperparameters(np.float64), params, grads, optimizer.slots, 0,
                            np.zeros(4, np.int8), options)
    np.testing.assert_allclose(-params, [0.6, 0.8, 0.1, 0.0], rtol=1e-15)
    # global_clipnorm: the norm of all tensors together, sqrt(9 + 16 + 0.01 + 0); a zero norm leaves zeros.
    optimizer = optimizers.SGD(learning_rate=1.0, global_clipnorm=1.0)
    optimizer.build(4, np.float64)
    params, grads = np.zeros(4), np.array([3.0, 4.0, 0.1, 0.0])
    options = optimizer.options(np.float64, 1, [(0, 2), (2, 4)], eigen_sum=False)
    optimizers.apply_update(optimizer.hyperparameters(np.float64), params, grads, optimizer.slots, 0,
                            np.zeros(4, np.int8), options)
    np.testing.assert_allclose(-params, np.array([3.0, 4.0, 0.1, 0.0]) / np.sqrt(25.01), rtol=1e-15)


def test_schedules_by_hand():
    # Keras's schedule tests (schedules/learning_rate_schedule_test.py) in closed form, float32:
    assert schedules.ExponentialDecay(0.1, 10, 0.5)(10) == np.float32(0.05)
    assert schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)(19) == np.float32(0.05)
    assert schedules.InverseTimeDecay(0.1, 1, 0.5)(2) == np.float32(0.1) / np.float32(2)
    piecewise = schedules.PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001])
    assert [piecewise(s) for s in (0, 100, 105, 110, 120, 999)] == [np.float32(v) for v in
                                                                    (1.0, 1.0, 0.1, 0.1, 0.01, 0.001)]
    assert schedules.PolynomialDecay(0.1, 10, 0.01)(5) == np.float32(0.09) * np.float32(0.5) + np.float32(0.01)
    assert schedules.PolynomialDecay(0.1, 10, 0.01)(50) == np.float32(0.01)
    assert schedules.CosineDecay(0.1, 10)(10) == 0 and schedules.CosineDecay(0.1, 10)(0) == np.float32(0.1)
    warm = schedules.CosineDecay(0.0, 10, warmup_target=0.2, warmup_steps=4)
    assert warm(2) == np.float32(0.1) and warm(4) == np.float32(0.2)
    with pytest.raises(ValueError, match="decay_steps must be a positive whole number of steps, got 0"):
        schedules.ExponentialDecay(0.1, 0, 0.5)


def test_learning_rate_and_iterations_read_as_in_keras():
    optimizer = optimizers.SGD(schedules.ExponentialDecay(0.1, 1, 0.5))
    assert optimizer.learning_rate == np.float32(0.1)
    optimizer.iterations = 2
    assert optimizer.learning_rate == np.float32(0.025)
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        optimizer.learning_rate = 0.1
    assert optimizers.SGD(lambda: 0.25).learning_rate == 0.25
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0, got -1"):
        optimizers.Adam(learning_rate=-1)
    assert isinstance(optimizers.get("adamw"), optimizers.AdamW) and optimizers.get("adamw").weight_decay == 0.004


@pytest.mark.tensorflow
def test_schedules_are_keras_bit_for_bit():
    """Each schedule's rate at steps 0..299, against Keras's schedule in a ``tf.function`` (as ``fit`` runs it)."""
    pytest.importorskip("keras")
    import keras
    import tensorflow as tf

    exact = [schedules.ExponentialDecay(0.05, 10, 0.9), schedules.ExponentialDecay(0.1, 3, 0.7, staircase=True),
             schedules.InverseTimeDecay(0.05, 7, 0.3), schedules.InverseTimeDecay(0.05, 3, 0.3, staircase=True),
             schedules.PolynomialDecay(0.03, 40, 0.001, power=0.5), schedules.PolynomialDecay(0.1, 7, cycle=True),
             schedules.PiecewiseConstantDecay([10, 50], [0.1, 0.05, 0.01]),
             schedules.CosineDecay(0.001, 100, alpha=0.1, warmup_target=0.01, warmup_steps=20)]
    # TensorFlow's Cos is not cosf: measured, CosineDecay(0.1, 77) differs at 17 of these 300 steps, by at most 1.1e-8
    # (1.5 float32 ulp of the initial rate 0.1; 26 ulp of the rate itself near 0, at the end of the decay).
    within_one_ulp = [schedules.CosineDecay(0.1, 77)]
    step = tf.Variable(0, dtype=tf.int64)
    for mine in exact + within_one_ulp:
        theirs = getattr(keras.optimizers.schedules, type(mine).__name__)(**mine.get_config())
        rate = tf.function(lambda: theirs(step))
        keras_rates = []
        for s in range(300):
            step.assign(s)
            keras_rates.append(rate().numpy())
        keras_rates = np.array(keras_rates, dtype=np.float32)
        ours = mine.rates(0, 300, np.float32)
        if mine in exact:
            assert ours.tobytes() == keras_rates.tobytes(), (mine, np.flatnonzero(ours != keras_rates)[:5])
        else:
            assert np.abs(ours - keras_rates).max() <= 2 * np.spacing(np.float32(mine.initial_learning_rate)), mine


# --- live Keras, bit for bit -------------------------------------------------------------------------

CONFIGURATIONS = {
    "sgd": lambda: optimizers.SGD(learning_rate=0.05),
    "sgd-momentum": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9),
    "sgd-nesterov": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.7, nesterov=True),
    "adam": lambda: optimizers.Adam(learning_rate=0.01),
    "rmsprop": lambda: optimizers.RMSprop(learning_rate=0.01),
    "rmsprop-momentum": lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.5, rho=0.8),
    "rmsprop-centered": lambda: optimizers.RMSprop(learning_rate=0.01, centered=True),
    "rmsprop-centered-momentum": lambda: optimizers.RMSprop(learning_rate=0.01, centered=True, momentum=0.3),
    "adagrad": lambda: optimizers.Adagrad(learning_rate=0.05),
    "adagrad-from-zero": lambda: optimizers.Adagrad(learning_rate=0.05, initial_accumulator_value=0.0, epsilon=1e-3),
    # Keras 3's BaseOptimizer options and schedules
    "adam-amsgrad": lambda: optimizers.Adam(learning_rate=0.01, amsgrad=True),
    "adamw": lambda: optimizers.AdamW(learning_rate=0.01, weight_decay=0.1),
    "sgd-momentum-weight-decay": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, weight_decay=0.3),
    "rmsprop-clipvalue": lambda: optimizers.RMSprop(learning_rate=0.01, clipvalue=0.5),
    "sgd-clipnorm": lambda: optimizers.SGD(learning_rate=0.05, clipnorm=1.5),
    "adam-global-clipnorm": lambda: optimizers.Adam(learning_rate=0.01, global_clipnorm=2.0),
    "sgd-exponential-decay": lambda: optimizers.SGD(schedules.ExponentialDecay(0.1, 3, 0.7)),
    "adam-inverse-time-staircase": lambda: optimizers.Adam(schedules.InverseTimeDecay(0.05, 2, 0.3, staircase=True)),
    "rmsprop-polynomial": lambda: optimizers.RMSprop(schedules.PolynomialDecay(0.03, 4, 0.001, power=0.5)),
    "adam-cosine-warmup": lambda: optimizers.Adam(schedules.CosineDecay(0.001, 3, alpha=0.1, warmup_target=0.03,
                                                                        warmup_steps=2), weight_decay=0.01),
    "sgd-momentum-ema-overwrite": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.5, use_ema=True,
                                                         ema_momentum=0.9, ema_overwrite_frequency=2),
    "adam-ema": lambda: optimizers.Adam(learning_rate=0.01, use_ema=True),
}


def _keras_optimizer(keras, mine):
    """Keras's twin of ``mine``: the same class and arguments, a schedule rebuilt as Keras's own."""
    config = mine.get_config()
    config.pop("float32_momentum", None), config.pop("float32_betas", None)
    rate = config["learning_rate"]
    if isinstance(rate, schedules.LearningRateSchedule):
        config["learning_rate"] = getattr(keras.optimizers.schedules, type(rate).__name__)(**rate.get_config())
    return getattr(keras.optimizers, type(mine).__name__)(**config)


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_update_is_bit_identical_to_keras_in_a_compiled_step(name, dtype):
    pytest.importorskip("keras")
    import tensorflow as tf

    from reference.keras_driver import keras_dtype

    rng = np.random.default_rng(len(name))
    sizes = (13, 8, 3)  # three weight tensors: whole packets and scalar tails
    weights = [rng.standard_normal(size).astype(dtype) for size in sizes]
    gradients = [[(rng.standard_normal(size) * 10.0 ** rng.uniform(-4, 1, size)).astype(dtype) for size in sizes]
                 for _ in range(5)]
    mine = CONFIGURATIONS[name]()
    with keras_dtype(dtype) as keras:  # the learning-rate variable takes the floatx of its creation
        theirs = _keras_optimizer(keras, mine)
        variables = [keras.Variable(w.copy(), dtype=dtype) for w in weights]
        theirs.build(variables)
    step = tf.function(lambda grads: theirs.apply_gradients(zip(grads, variables)))
    # gdcore's flat parameters: the three tensors one after the other, lanes as the tensorflow profile sets them.
    lanes = get_profile("tensorflow").tensor_lanes(sizes, dtype)
    params = np.concatenate(weights)
    mine.build(params.size, params.dtype)
    hyper = mine.hyperparameters(params.dtype)
    bounds = np.cumsum((0,) + sizes)
    options = mine.options(dtype, len(gradients), np.column_stack([bounds[:-1], bounds[1:]]), eigen_sum=True)
    # The same optimizer applied to arrays, as Keras's apply_gradients is (a fresh copy of the settings).
    on_arrays, arrays = CONFIGURATIONS[name](), [w.copy() for w in weights]
    previous = gdcore.config.numerics()
    for t, grads in enumerate(gradients):
        step([tf.constant(g) for g in grads])
        optimizers.apply_update(hyper, params, np.concatenate(grads), mine.slots, t, lanes, options)
        gdcore.config.set_numerics("tensorflow")
        try:
            assert on_arrays.apply_gradients(zip(grads, arrays)) == t + 1
        finally:
            gdcore.config.set_numerics(previous)
        assert np.concatenate(arrays).tobytes() == params.tobytes(), f"step {t + 1}: apply_gradients on arrays"
        keras_params = np.concatenate([v.numpy() for v in variables])
        assert keras_params.tobytes() == params.tobytes(), (
            f"step {t + 1}: {np.count_nonzero(keras_params != params)} weights differ; "
            f"first mine {params[keras_params != params][:3]} vs keras {keras_params[keras_params != params][:3]}")
        if mine.use_ema:
            average = np.concatenate([v.numpy() for v in theirs._model_variables_moving_average])
            assert average.tobytes() == mine.state["moving_average"].tobytes(), f"step {t + 1}: the moving average"


def test_every_optimizer_shares_one_compiled_loop():
    """One hyperparameter type for all rules: the fused loop is compiled once per dtype and profile."""
    from gdcore import _numba_engine

    x = np.linspace(-1.0, 1.0, 24)[:, None]
    fit = _numba_engine._ENTRIES[gdcore.Sequential().profile.id][0]
    counts = []
    for optimizer in ("sgd", "adam", "rmsprop", "adagrad", "adamw"):
        model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(3, activation="tanh"),
                                   gdcore.layers.Dense(1)], engine="numba", seed=0)
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, 2 * x, epochs=1, batch_size=8, verbose=0)
        counts.append(len(fit.overloads))
    assert len(set(counts)) == 1, counts


def test_optimizers_of_the_same_settings_share_constants_and_a_changed_setting_gets_its_own():
    # Constants are derived once per class, settings and dtype (a sweep builds a model per fit), never reused
    # across a setting changed after a fit.
    first, second = optimizers.Adam(0.1, beta_1=0.8), optimizers.Adam(0.1, beta_1=0.8)
    shared = first.packed_hyperparameters(np.float32)
    assert second.packed_hyperparameters(np.float32) is shared
    assert optimizers.Adam(0.2, beta_1=0.8).packed_hyperparameters(np.float32).learning_rate == np.float32(0.2)
    assert first.packed_hyperparameters(np.float64).learning_rate.dtype == np.float64
    second.beta_1 = 0.5
    assert second.packed_hyperparameters(np.float32).beta_1 == np.float32(0.5)
    assert first.packed_hyperparameters(np.float32).beta_1 == np.float32(0.8)
    assert optimizers.SGD(0.1).packed_hyperparameters(np.float32) is not shared


def test_options_are_shared_by_equal_settings_and_follow_a_changed_one_and_the_iterations():
    tensors = np.array([[0, 3], [3, 4]], dtype=np.int64)
    first, second = optimizers.SGD(0.1, clipnorm=2.0), optimizers.SGD(0.1, clipnorm=2.0)
    shared = first.options(np.float32, 10, tensors, False)
    assert second.options(np.float32, 10, tensors, False) is shared
    assert first.options(np.float32, 10, tensors, True).eigen_sum  # another summation, other options
    assert first.options(np.float32, 10, tensors.copy(), False) is not shared  # other weight tensors
    second.iterations = 7
    assert second.options(np.float32, 10, tensors, False).first_iteration == 7
    assert shared.first_iteration == 0  # the shared value is never changed
    second.clipnorm = 0.5
    assert second.options(np.float32, 10, tensors, False).clip_value == np.float32(0.5)
    assert first.options(np.float32, 10, tensors, False).clip_value == np.float32(2.0)
    decayed = optimizers.SGD(gdcore.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5))
    assert decayed.options(np.float32, 3, tensors, False).learning_rates.shape == (3,)  # a schedule's rates: per call


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_a_setting_changed_between_fits_trains_as_a_fresh_optimizer_with_it(engine):
    x = np.linspace(-1, 1, 40, dtype=np.float32)[:, None]
    y = (2 * x + 0.5).astype(np.float32)

    reference = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(4, activation="sigmoid"),
                                   gdcore.layers.Dense(1)], dtype="float32", seed=3, engine=engine)
    reference.compile(optimizer=optimizers.Adam(0.01, clipnorm=1.0), loss="mse")
    start = reference.get_weights()
    reference.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
    changed = optimizers.Adam(0.1, clipnorm=1.0)
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(4, activation="sigmoid"),
                               gdcore.layers.Dense(1)], dtype="float32", seed=3, engine=engine)
    model.compile(optimizer=changed, loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)  # constants and options derived for 0.1
    model.set_weights(start)
    changed.learning_rate, changed.iterations, changed.slots = 0.01, 0, None
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
    for got, expected in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.tensorflow
@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_moving_average_in_one_fit_is_bit_identical_to_keras(dtype, engine):
    """One ``fit`` of several epochs: the averages overwrite the weights every 3 updates, before the output's
    constraint, and replace them at the end of fit (Keras's ``finalize_variable_values``); a frozen layer is left
    out. History, weights and the optimizer's averages as Keras's."""
    from reference.keras_driver import _keras_optimizer as keras_twin_optimizer, keras_dtype, to_keras

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(23, 2)), rng.normal(size=(23, 1))
    model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(4, activation="tanh"),
                               gdcore.layers.Dense(3, activation="sigmoid", trainable=False),
                               gdcore.layers.Dense(1, kernel_constraint=gdcore.constraints.NonNeg())],
                              dtype=dtype, numerics="tensorflow", seed=2, engine=engine)
    model.compile(optimizers.Adam(0.05, use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=3), "mse",
                  metrics=["mae"])
    with keras_dtype(dtype) as keras:
        twin = to_keras(model, compile=False)
        twin.compile(optimizer=keras_twin_optimizer(keras, model.optimizer), loss="mse", metrics=["mae"])
        theirs = twin.fit(x, y, batch_size=5, epochs=4, shuffle=False, verbose=0).history
        their_average = np.concatenate([np.ravel(v) for v in twin.optimizer._model_variables_moving_average])
    mine = model.fit(x, y, batch_size=5, epochs=4, shuffle=False, verbose=0).history
    assert mine == theirs
    for a, b in zip(model.get_weights(), twin.get_weights()):
        assert a.tobytes() == np.asarray(b).tobytes()
    trainable = np.concatenate([np.ravel(w) for w in model.trainable_weights])
    assert trainable.tobytes() == their_average.tobytes()  # finalized: the weights are the averages
