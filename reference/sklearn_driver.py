r"""The scikit-learn drivers: the same training in ``SGDRegressor``, ``MLPRegressor``, ``SGDClassifier`` and
``MLPClassifier``, and the optima of OLS and of ``LogisticRegression``.

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

Classification (``tests/test_reference_sklearn.py`` checks each live too):

**log-loss-gradient**
    ``SGDClassifier(loss="log_loss")`` takes labels :math:`y \in \{-1, 1\}`
    and the decision value :math:`z`; its per-sample derivative
    :math:`-y / (e^{yz} + 1)` is :math:`\sigma(z) - [y = 1]`, the logistic
    neuron's :math:`\partial L/\partial z` at batch size 1, and its update
    :math:`w \leftarrow w - \eta\,\partial\ell\,x`,
    :math:`b \leftarrow b - \eta\,\partial\ell` (intercept decay 1 on
    dense data) is SGD's: ``eta0 = learning_rate``, no factor. (For
    :math:`|z| > 18` it uses :math:`e^{-|z|}` or 1 in place of the
    fraction, a change below :math:`10^{-8}` of a gradient that is itself
    below :math:`10^{-7}`.) It records no loss history.
**log-loss-averaging**
    ``MLPClassifier``'s log loss is the mean over the batch of
    :math:`-\sum_k y_k \log p_k` (``binary_log_loss`` for one logistic
    output: the mean of :math:`-y\log p - (1-y)\log(1-p)`), not halved, so
    ``learning_rate_init = learning_rate`` and Adam's ``epsilon`` unchanged;
    ``loss_curve_`` is the batch-size-weighted mean of the pre-update batch
    losses, Keras's ``history['loss']`` with no factor.
**log-loss-clip**
    ``MLPClassifier`` clips the probabilities to :math:`[\varepsilon, 1-\varepsilon]`,
    :math:`\varepsilon` the dtype's machine epsilon (2.2e-16, 1.2e-7 in
    float32), in the *reported* loss only; its gradient is the unclipped
    :math:`p - y`. Keras (and gdcore) train a sigmoid/softmax output on the
    logits it recovers, with no clip in either. The two losses differ only
    on a saturated sample.
**output-activation-rule**
    ``MLPClassifier`` chooses its output from the labels: one logistic unit
    for two classes, a softmax for more (``out_activation_``), a logistic
    unit per column for a 2-D indicator ``y`` (multilabel). It is given class
    indices always (one-hot rows are turned back into their argmax), so that
    a 3-class softmax is a softmax; its ``predict_proba`` column of class 1
    is the sigmoid output's value.

Weight injection (scikit-learn has no ``set_weights``): ``SGDRegressor`` (and ``SGDClassifier``) is
started with ``fit(coef_init=..., intercept_init=...)`` and ``max_iter=1``,
which is the first epoch, then one ``partial_fit`` per epoch.
``MLPRegressor`` (and ``MLPClassifier``, told every class) gets one ``partial_fit`` on two rows to create its
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


def optimum_gaps(trajectory: Trajectory, optimum, x, y) -> pd.DataFrame:
    r"""Per epoch: distance of the neuron's parameters from the optimum, and the loss gap.

    ``distance`` is :math:`\lVert (W, b) - (W^*, b^*)\rVert_2`; ``loss_gap``
    is :math:`L(W, b) - L(W^*, b^*) \ge 0` on ``(x, y)`` with the
    end-of-epoch weights, both in float64; :math:`L` is the MSE for OLS's
    :class:`Optimum`, the binary cross-entropy
    (:func:`binary_crossentropy_of`) for :class:`LogisticOptimum`. Epoch 0 is the start.
    """
    x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64).reshape(-1, 1)
    logistic = isinstance(optimum, LogisticOptimum)
    best = optimum.loss if logistic else optimum.mse
    rows = []
    for epoch, (kernel, bias) in enumerate(trajectory.weights):
        kernel, bias = np.asarray(kernel, dtype=np.float64), np.asarray(bias, dtype=np.float64)
        distance = float(np.sqrt(np.sum((kernel - optimum.kernel) ** 2) + np.sum((bias - optimum.bias) ** 2)))
        loss = binary_crossentropy_of(x64, y64, kernel, bias) if logistic else float(np.mean((y64 - (x64 @ kernel + bias)) ** 2))
        rows.append({"epoch": epoch, "distance": distance, "loss_gap": loss - best})
    return pd.DataFrame(rows)


# --- classification ---------------------------------------------------------------------


def class_labels(model: gdcore.Sequential, y) -> np.ndarray:
    """The integer class of each sample, shape (n,), from ``y`` as the model's loss takes it (0/1, indices or one-hot)."""
    y = np.asarray(y)
    if model.loss.targets == "one_hot":
        return np.argmax(y.reshape(len(y), -1), axis=1)
    return y.reshape(-1).astype(np.int64)


def _probabilities(estimator, x, dtype) -> np.ndarray:
    """``predict_proba`` in the Keras output's shape: class 1's column for two classes, every column otherwise."""
    probabilities = estimator.predict_proba(x)
    return (probabilities[:, 1:] if probabilities.shape[1] == 2 else probabilities).astype(dtype)


def _classifier_output(model) -> str:
    output = model.dense_layers[-1]
    if (output.units, output.activation.name) == (1, "sigmoid"):
        return "sigmoid"
    if output.units > 2 and output.activation.name == "softmax":
        return "softmax"
    raise Unsupported(f"scikit-learn's classifiers end in one logistic unit or a softmax over 3+ classes; layer "
                      f"{output.name!r} is {output!r}")


def check_sgd_classifier(model: gdcore.Sequential, batch_size: int) -> None:
    """Raise :class:`Unsupported` unless ``SGDClassifier`` can run exactly this training."""
    loss = _loss_name(model)
    layers = model.dense_layers
    if len(layers) != 1 or layers[0].units != 1 or layers[0].activation.name != "sigmoid":
        raise Unsupported("SGDClassifier(loss='log_loss') is the logistic neuron: it needs a single Dense(1, "
                          f"sigmoid) (the model has {len(layers)} layer(s): {', '.join(repr(layer) for layer in layers)})")
    if loss != "binary_crossentropy":
        raise Unsupported(f"SGDClassifier's log_loss is the binary cross-entropy; the model trains {loss}")
    if not isinstance(model.optimizer, gdcore.optimizers.SGD):
        raise Unsupported(f"SGDClassifier has no {type(model.optimizer).__name__} optimizer, only plain SGD")
    if model.optimizer.momentum:
        raise Unsupported(f"SGDClassifier has no momentum (got momentum={model.optimizer.momentum})")
    if batch_size != 1:
        raise Unsupported(f"SGDClassifier updates after every sample (batch_size=1); got batch_size={batch_size}")


def run_sgd_classifier(model: gdcore.Sequential, x, y, orders, batch_size: int, x_predict=None) -> Trajectory:
    """Batch-size-1 SGD of the logistic neuron in ``SGDClassifier(loss='log_loss')``, from ``model``'s weights.

    ``eta0 = learning_rate`` (log-loss-gradient, module docstring), ``penalty=None``,
    constant learning rate, no shuffling; started by ``fit(coef_init=...,
    intercept_init=..., max_iter=1)`` (the first epoch), then one
    ``partial_fit`` per epoch. Computes in ``model``'s dtype. Predictions
    are ``predict_proba``'s class-1 column. No loss history.
    """
    _import_sklearn()
    from scipy.special import expit
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier

    check_sgd_classifier(model, batch_size)
    dtype = model.dtype
    x, labels = np.asarray(x, dtype=dtype), class_labels(model, y)
    x_predict = x if x_predict is None else np.asarray(x_predict, dtype=dtype)
    estimator = SGDClassifier(loss="log_loss", penalty=None, alpha=0.0, learning_rate="constant",
                              eta0=model.optimizer.learning_rate, fit_intercept=True, shuffle=False, average=False,
                              tol=None, max_iter=1, early_stopping=False)
    kernel, bias = model.get_weights()
    trajectory = Trajectory("sklearn.SGDClassifier", dtype.name, weight_names(model), weights=[[kernel, bias]],
                            predictions=[expit(x_predict @ kernel + bias).astype(dtype)])  # predict_proba's rule
    for epoch, order in enumerate(orders, start=1):
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=1 is one epoch, by design
                if epoch == 1:
                    estimator.fit(x[order], labels[order], coef_init=kernel.T.copy(), intercept_init=bias.copy())
                else:
                    estimator.partial_fit(x[order], labels[order])
        except ValueError as error:
            if "overflow" not in str(error):
                raise
            trajectory.diverged_at = epoch
            break
        finally:
            trajectory.fit_seconds += time.perf_counter() - start
        weights = [estimator.coef_.reshape(-1, 1).astype(dtype, copy=True),
                   np.atleast_1d(estimator.intercept_).astype(dtype, copy=True)]
        if not finite(weights):
            trajectory.diverged_at = epoch
            break
        trajectory.weights.append(weights)
        trajectory.predictions.append(_probabilities(estimator, x_predict, dtype))
    return trajectory


def check_mlp_classifier(model: gdcore.Sequential) -> None:
    """Raise :class:`Unsupported` unless ``MLPClassifier`` can run exactly this training."""
    loss = _loss_name(model)
    output = _classifier_output(model)
    expected = "binary_crossentropy" if output == "sigmoid" else ("categorical_crossentropy",
                                                                   "sparse_categorical_crossentropy")
    if loss not in (expected if isinstance(expected, tuple) else (expected,)):
        raise Unsupported(f"MLPClassifier trains its log_loss only (the cross-entropy of its {output} output); "
                          f"the model trains {loss}")
    hidden = {layer.activation.name for layer in model.dense_layers[:-1]}
    if len(hidden) > 1:
        raise Unsupported(f"MLPClassifier uses one activation for every hidden layer; the model has {sorted(hidden)}")
    if hidden and model.dense_layers[0].activation.sklearn in (None, "softmax"):
        raise Unsupported(f"MLPClassifier has no hidden activation {model.dense_layers[0].activation.name!r}")
    if not isinstance(model.optimizer, (gdcore.optimizers.SGD, gdcore.optimizers.Adam)):
        raise Unsupported(f"MLPClassifier has no {type(model.optimizer).__name__} optimizer")


def mlp_classifier_settings(optimizer) -> dict:
    """``MLPClassifier`` keyword arguments taking ``optimizer``'s steps on the cross-entropy (log-loss-averaging:
    no factor): :func:`gdcore.sklearn.mlp_settings` without its half-squared-error mapping."""
    from gdcore.sklearn import mlp_settings

    settings = mlp_settings(optimizer)
    if settings["solver"] == "sgd":
        settings["learning_rate_init"] = optimizer.learning_rate
    else:
        settings["epsilon"] = optimizer.epsilon
    return settings


def run_mlp_classifier(model: gdcore.Sequential, x, y, orders, batch_size: int, x_predict=None) -> Trajectory:
    """The same network and batches in ``MLPClassifier``, from ``model``'s weights (no hidden layer is allowed).

    ``alpha=0``, ``shuffle=False``, constant learning rate, the optimizer
    of :func:`mlp_classifier_settings`; the labels as class indices
    (output-activation-rule). Computes in ``model``'s dtype. ``loss`` holds
    ``loss_curve_`` (log-loss-averaging; its clip: log-loss-clip);
    predictions are ``predict_proba`` in the Keras output's shape.
    """
    _import_sklearn()
    from sklearn.neural_network import MLPClassifier

    check_mlp_classifier(model)
    dtype = model.dtype
    x, labels = np.asarray(x, dtype=dtype), class_labels(model, y)
    x_predict = x if x_predict is None else np.asarray(x_predict, dtype=dtype)
    hidden = model.dense_layers[:-1]
    estimator = MLPClassifier(hidden_layer_sizes=tuple(layer.units for layer in hidden),
                              activation=hidden[0].activation.sklearn if hidden else "relu", alpha=0.0,
                              batch_size=batch_size, learning_rate="constant", shuffle=False, early_stopping=False,
                              random_state=0, **mlp_classifier_settings(model.optimizer))
    classes = np.arange(max(2, model.dense_layers[-1].units))
    initial = model.get_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "batch_size larger than sample size" on the two-row call
        estimator.partial_fit(x[:2], labels[:2], classes=classes)
    estimator.coefs_ = [weight.copy() for weight in initial[0::2]]
    estimator.intercepts_ = [weight.copy() for weight in initial[1::2]]
    del estimator._optimizer
    estimator.loss_curve_, estimator.t_ = [], 0
    estimator.best_loss_, estimator._no_improvement_count = np.inf, 0
    trajectory = Trajectory("sklearn.MLPClassifier", dtype.name, weight_names(model), weights=[initial], loss=[],
                            predictions=[_probabilities(estimator, x_predict, dtype)])
    for epoch, order in enumerate(orders, start=1):
        start = time.perf_counter()
        estimator.partial_fit(x[order], labels[order])
        trajectory.fit_seconds += time.perf_counter() - start
        weights = [array.astype(dtype, copy=True) for pair in zip(estimator.coefs_, estimator.intercepts_) for array in pair]
        loss = estimator.loss_curve_[-1]
        if not (np.isfinite(loss) and finite(weights)):
            trajectory.diverged_at = epoch
            break
        trajectory.weights.append(weights)
        trajectory.loss.append(loss)
        trajectory.predictions.append(_probabilities(estimator, x_predict, dtype))
    return trajectory


@dataclass(frozen=True)
class LogisticOptimum:
    """``LogisticRegression(C=inf)``'s answer, float64, Keras layout, and its mean binary cross-entropy ``loss``."""

    kernel: np.ndarray
    bias: np.ndarray
    loss: float
    fit_seconds: float


def binary_crossentropy_of(x, y, kernel, bias) -> float:
    r"""The mean binary cross-entropy of the logistic neuron ``(kernel, bias)`` on ``(x, y)``, float64, from the logits:
    :math:`\frac1n\sum_i \max(z_i, 0) - z_i y_i + \log(1 + e^{-|z_i|})`, :math:`z = xW + b`."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64).reshape(-1, 1)
    z = x @ np.asarray(kernel, dtype=np.float64) + np.asarray(bias, dtype=np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def logistic_regression_optimum(x, y) -> LogisticOptimum:
    """``LogisticRegression(C=np.inf)`` (no penalty; ``penalty=None`` is deprecated for it) in float64, solved to
    ``tol=1e-12``: the point gradient descent on the binary cross-entropy approaches, classification's "Gauss's
    answer" (the data overlap, so it is finite)."""
    _import_sklearn()
    from sklearn.linear_model import LogisticRegression

    x, labels = np.asarray(x, dtype=np.float64), np.asarray(y).reshape(-1).astype(np.int64)
    start = time.perf_counter()
    estimator = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x, labels)
    seconds = time.perf_counter() - start
    kernel, bias = estimator.coef_.reshape(-1, 1), np.atleast_1d(estimator.intercept_).astype(np.float64)
    return LogisticOptimum(kernel, bias, binary_crossentropy_of(x, labels, kernel, bias), seconds)
