r"""The scikit-learn drivers: the same training in ``SGDRegressor`` and ``MLPRegressor``, and OLS's optimum.

Conventions that differ between scikit-learn and Keras/gdcore, named once here
(each checked by a live test in ``tests/test_reference_sklearn.py``):

**half-squared-error**
    scikit-learn's squared loss is :math:`\tfrac12 e^2`, Keras's MSE is
    :math:`e^2`: gradients are halved. For SGD the equivalent learning rate is
    doubled (``eta0 = 2 * learning_rate``, ``learning_rate_init = 2 *
    learning_rate``; doubling is exact in binary floating point). Adam is
    invariant to the gradient's scale except through :math:`\hat\epsilon`,
    which is halved instead (``epsilon = epsilon / 2``). ``MLPRegressor``'s
    ``loss_curve_`` is the same pre-update, batch-size-weighted mean as
    Keras's ``history['loss']``, of the half loss: Keras = ``2 * loss_curve_``.
**mae-as-epsilon-insensitive**
    ``SGDRegressor`` has no MAE; ``loss='epsilon_insensitive', epsilon=0`` has
    gradient :math:`\operatorname{sign}(\hat y - y)`, MAE's for one sample,
    with ``eta0 = learning_rate``. ``MLPRegressor`` has no MAE at all.
**adam-beta-cast**
    Keras (and gdcore, which follows it) rounds :math:`\beta_1, \beta_2` to
    float32 before raising them to the power :math:`t` in the bias
    correction; scikit-learn uses the exact Python floats. In float64 this
    moves the seed's Adam run by ~3e-5 absolute (up to 1e-2 relative on
    values near zero) over 25 epochs, far above float64 tolerance. The runner
    reports ``MLPRegressor`` with Adam as this known gap, with its real
    numbers, only when gdcore given scikit-learn's convention
    (``Adam(float32_betas=False)``, :func:`sklearn_adam`) agrees with it
    within float64 tolerance. In float32 the convention cannot be expressed
    (the betas are float32 either way; scikit-learn computes the correction
    in double precision), so a float32 configuration is judged by its
    float64 twin.
**dloss-clip**
    ``SGDRegressor`` clips each sample's loss derivative to :math:`\pm 10^{12}`
    and raises ``ValueError`` ("Floating-point under-/overflow") only when a
    weight becomes non-finite; Keras and gdcore stop at the first NaN or
    infinite loss. A diverging run therefore ends earlier in gdcore; the
    runner names the gap when SGDRegressor's residuals have reached the clip.
**update-forms**
    scikit-learn writes Adam's moments as :math:`\beta m + (1-\beta)g` and
    its step as :math:`-(\eta_t m)/(\sqrt v + \epsilon)`; Keras as
    :math:`m + (g-m)(1-\beta)` and :math:`(m\alpha_t)/(\sqrt v+\hat\epsilon)`.
    SGDRegressor forms :math:`\mathrm{fl}(\mathrm{fl}(\eta\,\partial\ell)\,x)`
    where Keras forms :math:`\mathrm{fl}(\eta\,\mathrm{fl}(x\,\partial\ell))`.
    These only differ by rounding: agreement is within tolerance, rarely bit for bit.

Weight injection (scikit-learn has no ``set_weights``): ``SGDRegressor`` is
started with ``fit(coef_init=..., intercept_init=...)`` and ``max_iter=1``,
which is the first epoch, then one ``partial_fit`` per epoch.
``MLPRegressor`` gets one ``partial_fit`` on two rows to create its
attributes, then ``coefs_``/``intercepts_`` are replaced (they use Keras's
layout), its optimizer is deleted so that the next ``partial_fit`` builds a
fresh one around the new arrays, and ``loss_curve_``/``t_`` are reset; then
one ``partial_fit`` per epoch.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

import gdcore
from reference.errors import Unsupported
from reference.gdcore_driver import weight_names
from reference.trajectory import Trajectory, finite

KNOWN_GAPS = {
    "adam-beta-cast": "Keras/gdcore round Adam's beta_1, beta_2 to float32 before the bias-correction powers; "
                      "scikit-learn uses the exact values",
    "dloss-clip": "SGDRegressor clips each sample's loss derivative to [-1e12, 1e12], so a run that blows up in "
                  "Keras/gdcore keeps finite weights there",
}
#: SGDRegressor's clip of the per-sample loss derivative (``MAX_DLOSS`` in ``sklearn/linear_model/_sgd_fast.pyx.tp``).
MAX_DLOSS = 1e12


def _import_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as error:
        raise ImportError(f"reference's scikit-learn drivers need scikit-learn: pip install scikit-learn ({error})") from error


def _loss_name(model) -> str:
    if model.loss is None or model.optimizer is None:
        raise ValueError("the model must be compiled (optimizer and loss) before it can be compared")
    return model.loss.name


# --- SGDRegressor ----------------------------------------------------------------------


def check_sgd_regressor(model: gdcore.Sequential, batch_size: int) -> None:
    """Raise :class:`Unsupported` unless ``SGDRegressor`` can run exactly this training."""
    loss = _loss_name(model)
    if len(model.dense_layers) != 1 or model.dense_layers[0].units != 1 or model.dense_layers[0].activation.name != "linear":
        raise Unsupported("SGDRegressor is a linear model: it needs a single linear Dense(1) (the model has "
                          f"{len(model.dense_layers)} layer(s): {', '.join(repr(layer) for layer in model.dense_layers)})")
    if not isinstance(model.optimizer, gdcore.optimizers.SGD):
        raise Unsupported(f"SGDRegressor has no {type(model.optimizer).__name__} optimizer, only plain SGD")
    if model.optimizer.momentum:
        raise Unsupported(f"SGDRegressor has no momentum (got momentum={model.optimizer.momentum})")
    if batch_size != 1:
        raise Unsupported(f"SGDRegressor updates after every sample (batch_size=1); got batch_size={batch_size}")
    if loss not in ("mean_squared_error", "mean_absolute_error"):
        raise Unsupported(f"SGDRegressor has no equivalent of loss {loss!r}")


def run_sgd_regressor(model: gdcore.Sequential, x, y, orders, batch_size: int, x_predict=None) -> Trajectory:
    """Batch-size-1 SGD of a linear neuron in ``SGDRegressor``, from ``model``'s weights, on the same orders.

    MSE runs as ``loss='squared_error', eta0=2*learning_rate`` and MAE as
    ``loss='epsilon_insensitive', epsilon=0, eta0=learning_rate`` (module
    docstring). Computes in ``model``'s dtype. No loss history (scikit-learn
    does not record one).
    """
    _import_sklearn()
    from sklearn.linear_model import SGDRegressor

    check_sgd_regressor(model, batch_size)
    dtype = model.dtype
    x, y = np.asarray(x, dtype=dtype), np.asarray(y, dtype=dtype).reshape(-1)
    x_predict = x if x_predict is None else np.asarray(x_predict, dtype=dtype)
    learning_rate = model.optimizer.learning_rate
    if model.loss.name == "mean_squared_error":
        settings = {"loss": "squared_error", "eta0": 2 * learning_rate}
    else:
        settings = {"loss": "epsilon_insensitive", "epsilon": 0.0, "eta0": learning_rate}
    estimator = SGDRegressor(penalty=None, alpha=0.0, learning_rate="constant", fit_intercept=True, shuffle=False,
                             average=False, tol=None, max_iter=1, early_stopping=False, **settings)
    kernel, bias = model.get_weights()
    trajectory = Trajectory("sklearn.SGDRegressor", dtype.name, weight_names(model), weights=[[kernel, bias]],
                            predictions=[_linear_predictions(x_predict, kernel, bias)])
    for epoch, order in enumerate(orders, start=1):
        start = time.perf_counter()
        try:
            if epoch == 1:
                estimator.fit(x[order], y[order], coef_init=kernel[:, 0].copy(), intercept_init=bias.copy())
            else:
                estimator.partial_fit(x[order], y[order])
        except ValueError as error:
            if "overflow" not in str(error):
                raise
            trajectory.diverged_at = epoch  # scikit-learn's own "Floating-point under-/overflow" stop
            break
        finally:
            trajectory.fit_seconds += time.perf_counter() - start
        weights = [estimator.coef_.reshape(-1, 1).astype(dtype, copy=True), np.atleast_1d(estimator.intercept_).astype(dtype, copy=True)]
        if not finite(weights):
            trajectory.diverged_at = epoch
            break
        trajectory.weights.append(weights)
        trajectory.predictions.append(estimator.predict(x_predict).reshape(-1, 1).astype(dtype))
    return trajectory


def _linear_predictions(x, kernel, bias) -> np.ndarray:
    return (x @ kernel + bias).astype(kernel.dtype)


# --- MLPRegressor ---------------------------------------------------------------------


def check_mlp_regressor(model: gdcore.Sequential) -> None:
    """Raise :class:`Unsupported` unless ``MLPRegressor`` can run exactly this training."""
    loss = _loss_name(model)
    if loss != "mean_squared_error":
        raise Unsupported(f"MLPRegressor has no {loss} loss (its regression loss is squared_error)")
    if len(model.dense_layers) < 2:
        raise Unsupported("MLPRegressor needs at least one hidden layer (use SGDRegressor for the linear neuron)")
    output = model.dense_layers[-1]
    if output.units != 1 or output.activation.name != "linear":
        raise Unsupported(f"MLPRegressor's output layer is a linear Dense(1); layer {output.name!r} is {output!r}")
    hidden = {layer.activation.name for layer in model.dense_layers[:-1]}
    if len(hidden) != 1:
        raise Unsupported(f"MLPRegressor uses one activation for every hidden layer; the model has {sorted(hidden)}")
    if model.dense_layers[0].activation.sklearn is None:
        raise Unsupported(f"MLPRegressor has no activation {model.dense_layers[0].activation.name!r}")
    if not isinstance(model.optimizer, (gdcore.optimizers.SGD, gdcore.optimizers.Adam)):
        raise Unsupported(f"MLPRegressor has no {type(model.optimizer).__name__} optimizer")


def run_mlp_regressor(model: gdcore.Sequential, x, y, orders, batch_size: int, x_predict=None) -> Trajectory:
    """The same network and batches in ``MLPRegressor``, from ``model``'s weights.

    ``alpha=0``, ``shuffle=False``, constant learning rate; SGD as
    ``learning_rate_init = 2 * learning_rate`` with the same momentum and
    Nesterov flag; Adam as ``learning_rate_init = learning_rate``, the same
    betas and ``epsilon = epsilon / 2`` (module docstring; :func:`gdcore.sklearn.mlp_settings`). Computes in
    ``model``'s dtype. ``loss`` holds ``2 * loss_curve_``, Keras's scale.
    """
    _import_sklearn()
    from sklearn.neural_network import MLPRegressor

    from gdcore.sklearn import mlp_settings

    check_mlp_regressor(model)
    dtype = model.dtype
    x, y = np.asarray(x, dtype=dtype), np.asarray(y, dtype=dtype).reshape(-1)
    x_predict = x if x_predict is None else np.asarray(x_predict, dtype=dtype)
    settings = mlp_settings(model.optimizer)  # half-squared-error, the one definition in gdcore.sklearn
    estimator = MLPRegressor(hidden_layer_sizes=tuple(layer.units for layer in model.dense_layers[:-1]),
                             activation=model.dense_layers[0].activation.sklearn, alpha=0.0,
                             batch_size=batch_size, learning_rate="constant", shuffle=False, early_stopping=False,
                             random_state=0, **settings)
    initial = model.get_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "batch_size larger than sample size" on the two-row call
        estimator.partial_fit(x[:2], y[:2])
    estimator.coefs_ = [weight.copy() for weight in initial[0::2]]
    estimator.intercepts_ = [weight.copy() for weight in initial[1::2]]
    del estimator._optimizer
    estimator.loss_curve_, estimator.t_ = [], 0
    estimator.best_loss_, estimator._no_improvement_count = np.inf, 0
    trajectory = Trajectory("sklearn.MLPRegressor", dtype.name, weight_names(model), weights=[initial], loss=[],
                            predictions=[estimator.predict(x_predict).reshape(-1, 1).astype(dtype)])
    for epoch, order in enumerate(orders, start=1):
        start = time.perf_counter()
        estimator.partial_fit(x[order], y[order])
        trajectory.fit_seconds += time.perf_counter() - start
        weights = [array.astype(dtype, copy=True) for pair in zip(estimator.coefs_, estimator.intercepts_) for array in pair]
        loss = 2 * estimator.loss_curve_[-1]
        if not (np.isfinite(loss) and finite(weights)):
            trajectory.diverged_at = epoch
            break
        trajectory.weights.append(weights)
        trajectory.loss.append(loss)
        trajectory.predictions.append(estimator.predict(x_predict).reshape(-1, 1).astype(dtype))
    return trajectory


def sklearn_momentum(model: gdcore.Sequential) -> gdcore.Sequential:
    """A clone of ``model`` whose SGD uses the exact momentum, as ``MLPRegressor`` does: ``SGD(float32_momentum=False)``.

    Keras casts the momentum through float32 (so in float64 0.9 becomes
    0.8999999761581421); only float64 shows the difference.
    """
    from reference.gdcore_driver import clone_model

    if not isinstance(model.optimizer, gdcore.optimizers.SGD):
        raise ValueError(f"sklearn_momentum needs a model compiled with SGD, got {type(model.optimizer).__name__}")
    copy = clone_model(model)
    copy.compile(optimizer=gdcore.optimizers.SGD(**{**model.optimizer.get_config(), "float32_momentum": False}),
                 loss=model.loss)
    return copy


def sklearn_adam(model: gdcore.Sequential) -> gdcore.Sequential:
    """A clone of ``model`` whose Adam follows scikit-learn's convention: ``Adam(float32_betas=False)``.

    The bias correction then raises the exact betas to the power :math:`t`,
    as ``MLPRegressor`` does, instead of Keras's float32-rounded ones. Only
    float64 can show the difference: in float32 the betas are float32 anyway.
    """
    from reference.gdcore_driver import clone_model

    if not isinstance(model.optimizer, gdcore.optimizers.Adam):
        raise ValueError(f"sklearn_adam needs a model compiled with Adam, got {type(model.optimizer).__name__}")
    copy = clone_model(model)
    config = {**model.optimizer.get_config(), "float32_betas": False}
    copy.compile(optimizer=gdcore.optimizers.Adam(**config), loss=model.loss)
    return copy


# --- LinearRegression -----------------------------------------------------------------


@dataclass(frozen=True)
class Optimum:
    """Ordinary least squares' answer, float64, Keras layout: ``kernel`` (d, 1), ``bias`` (1,), and its ``mse``."""

    kernel: np.ndarray
    bias: np.ndarray
    mse: float
    fit_seconds: float


def linear_regression_optimum(x, y) -> Optimum:
    """``LinearRegression().fit(x, y)`` in float64: the point gradient descent on MSE approaches."""
    _import_sklearn()
    from sklearn.linear_model import LinearRegression

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64).reshape(-1)
    start = time.perf_counter()
    estimator = LinearRegression().fit(x, y)
    seconds = time.perf_counter() - start
    residuals = y - estimator.predict(x)
    return Optimum(estimator.coef_.reshape(-1, 1), np.atleast_1d(estimator.intercept_).astype(np.float64),
                   float(np.mean(residuals**2)), seconds)


def optimum_gaps(trajectory: Trajectory, optimum: Optimum, x, y) -> pd.DataFrame:
    r"""Per epoch: distance of the linear neuron's parameters from the optimum, and the loss gap.

    ``distance`` is :math:`\lVert (W, b) - (W^*, b^*)\rVert_2`; ``loss_gap``
    is :math:`\mathrm{MSE}(W, b) - \mathrm{MSE}(W^*, b^*) \ge 0` on ``(x, y)``
    with the end-of-epoch weights, both in float64. Epoch 0 is the start.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64).reshape(-1, 1)
    rows = []
    for epoch, (kernel, bias) in enumerate(trajectory.weights):
        kernel, bias = np.asarray(kernel, dtype=np.float64), np.asarray(bias, dtype=np.float64)
        distance = float(np.sqrt(np.sum((kernel - optimum.kernel) ** 2) + np.sum((bias - optimum.bias) ** 2)))
        mse = float(np.mean((y - (x @ kernel + bias)) ** 2))
        rows.append({"epoch": epoch, "distance": distance, "loss_gap": mse - optimum.mse})
    return pd.DataFrame(rows)
