r"""scikit-learn estimators over gdcore's engine: :class:`GDRegressor` and :class:`GDClassifier`.

``GDRegressor`` is a dense network (``hidden_layer_sizes=()`` is the linear
neuron) trained by gdcore's compiled loop, with scikit-learn's estimator
contract: constructor parameters only, everything learned in trailing
underscore attributes, ``fit``/``partial_fit``/``predict``/``score``, the
validation conventions of ``sklearn.utils.validation`` and the tags that
``sklearn.utils.estimator_checks`` reads. The epoch loop (initialisation,
shuffles, stopping rule, early-stopping split, best-weight restore) is
``MLPRegressor``'s, so that the same settings give ``MLPRegressor``'s
training; each batch is gdcore's.

Conventions mapped between scikit-learn and gdcore/Keras (one definition here;
:mod:`reference.sklearn_driver` uses :func:`mlp_settings` for the other
direction):

**half-squared-error** (``loss="squared_error"``, the default)
    scikit-learn's loss is :math:`\tfrac12 e^2`, gdcore's (Keras's) MSE is
    :math:`e^2`, twice it, with twice the gradient. gdcore trains the MSE with
    ``SGD(learning_rate = learning_rate / 2)`` (halving is exact in binary
    floating point) and ``Adam(epsilon = 2 * epsilon)`` (Adam is invariant to
    the gradient's scale except through :math:`\hat\epsilon`). With
    :math:`k` outputs, ``MLPRegressor`` reports the mean over the outputs but
    takes the gradient of their sum (its delta is :math:`p - y` whatever
    :math:`k`), while Keras's MSE is the mean in both: the factors become
    :math:`k/2` and :math:`2/k` (rounded unless :math:`k` is a power of 2,
    so multi-output agreement is to float64 rounding, as the rest). ``loss_curve_``
    holds half of gdcore's per-epoch loss, which is the same batch-size-weighted
    pre-update mean as ``MLPRegressor``'s. ``loss="mse"`` or ``"mae"`` train
    Keras's losses with the given hyperparameters unchanged.
**exact-betas** (``conventions="sklearn"``, the default)
    ``MLPRegressor`` raises the exact :math:`\beta_1, \beta_2` to the power
    :math:`t` and uses the exact momentum; Keras rounds them to float32 first
    (``conventions="keras"``). Only float64 shows the difference.
**initialisation and order**
    Weights are drawn as ``MLPRegressor`` draws them (uniform in
    :math:`\pm\sqrt{f/(n_{in}+n_{out})}`, :math:`f = 2` for logistic, 6
    otherwise, from ``check_random_state(random_state)``), the validation set
    is ``train_test_split(..., random_state=<the same generator>)`` and each
    epoch's order is ``sklearn.utils.shuffle`` of the previous one, so a
    seeded ``GDRegressor`` visits ``MLPRegressor``'s batches.
**stopping**
    After each epoch: with ``early_stopping`` the validation :math:`R^2`
    must beat the best by ``tol``, otherwise the training loss must fall
    below the best by ``tol``; more than ``n_iter_no_change`` epochs without
    that ends training. Reaching ``max_iter`` first raises
    :class:`~sklearn.exceptions.ConvergenceWarning`. With early stopping the
    best validation weights are restored.
**sample weights**
    ``MLPRegressor`` takes each batch's weighted mean :math:`\sum_b w_b
    \ell_b / \sum_b w_b`, Keras the weighted sum over the batch's size
    :math:`B`; ``fit(sample_weight=w)`` passes gdcore each batch's weights
    times :math:`B / \sum_b w_b` (:func:`_batch_normalised`). The
    early-stopping validation score is weighted too.
**learning-rate schedules** (``learning_rate_schedule``, ``MLPRegressor``'s ``learning_rate``)
    SGD only, as in scikit-learn (Adam ignores it): ``"invscaling"`` sets the
    rate to ``learning_rate / (t_ + 1) ** power_t`` after each epoch,
    ``"adaptive"`` divides it by 5 where the stopping rule would end
    training, and stops once it is at most 1e-6; the momentum is kept, and
    each rate reaches gdcore through the half-squared-error factor above.
    (The float keeps Keras's name ``learning_rate``, so the schedule has
    another.)

``GDRegressor`` has no ``alpha`` (L2 penalty): compare with
``MLPRegressor(alpha=0)``. ``MLPClassifier`` has no ``class_weight``, and
neither has ``GDClassifier`` (``sample_weight`` does that job).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils import shuffle as _sklearn_shuffle
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

import gdcore
from gdcore import activations as _activations
from gdcore import losses as _losses
from gdcore import optimizers as _optimizers

__all__ = ["GDClassifier", "GDRegressor", "gdcore_optimizer", "mlp_settings"]

#: scikit-learn's activation names and gdcore's (Keras's) for the same function.
_SKLEARN_ACTIVATIONS = {activation.sklearn: activation for activation in _activations.ACTIVATIONS if activation.sklearn}
_SOLVERS = ("sgd", "adam")
_SCHEDULES = ("constant", "invscaling", "adaptive")
_CONVENTIONS = ("sklearn", "keras")


def gdcore_optimizer(solver: str, learning_rate: float, *, momentum: float = 0.9, nesterovs_momentum: bool = True,
                     beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, half_loss: bool = True,
                     conventions: str = "sklearn", n_outputs: int = 1) -> _optimizers.Optimizer:
    """The gdcore optimizer that takes ``MLPRegressor``'s steps on gdcore's (Keras's) MSE (module docstring).

    ``half_loss`` says the hyperparameters are meant for scikit-learn's
    :math:`\\tfrac12 e^2` (SGD's learning rate times ``n_outputs / 2``,
    Adam's epsilon times ``2 / n_outputs``: both exact for one output);
    ``conventions="sklearn"`` keeps the exact betas and momentum.
    """
    exact = conventions == "sklearn"
    if solver == "sgd":
        return _optimizers.SGD(learning_rate=learning_rate * n_outputs / 2 if half_loss else learning_rate,
                               momentum=momentum, nesterov=bool(nesterovs_momentum) and momentum > 0,
                               float32_momentum=not exact)
    return _optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                            epsilon=epsilon * 2 / n_outputs if half_loss else epsilon, float32_betas=not exact)


def mlp_settings(optimizer: _optimizers.Optimizer) -> dict:
    """``MLPRegressor`` keyword arguments taking the same steps as ``optimizer`` on gdcore's MSE: the inverse of
    :func:`gdcore_optimizer` for one output (``learning_rate_init = 2 * learning_rate`` for SGD, ``epsilon / 2`` for
    Adam)."""
    if isinstance(optimizer, _optimizers.SGD):
        return {"solver": "sgd", "learning_rate_init": 2 * optimizer.learning_rate, "momentum": optimizer.momentum,
                "nesterovs_momentum": optimizer.nesterov}
    if isinstance(optimizer, _optimizers.Adam):
        return {"solver": "adam", "learning_rate_init": optimizer.learning_rate, "beta_1": optimizer.beta_1,
                "beta_2": optimizer.beta_2, "epsilon": optimizer.epsilon / 2}
    raise ValueError(f"MLPRegressor has no {type(optimizer).__name__} optimizer, only SGD and Adam")


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _real(value, name: str, low: float, high: float | None = None, *, open_low: bool = False,
          open_high: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    too_low = value <= low if open_low else value < low
    too_high = high is not None and (value >= high if open_high else value > high)
    if too_low or too_high:
        interval = f"{'(' if open_low else '['}{low}, {'inf' if high is None else high}{')' if open_high or high is None else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


class _BaseGD(BaseEstimator):
    """What :class:`GDRegressor` and :class:`GDClassifier` share: parameters, checks, the network, the epoch loop."""

    def __init__(self, hidden_layer_sizes=(), activation="relu", loss="squared_error", solver="adam",
                 learning_rate=0.001, learning_rate_schedule="constant", power_t=0.5, momentum=0.9,
                 nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 batch_size="auto", max_iter=200, shuffle=True, random_state=None, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, warm_start=False, dtype=None,
                 numerics="plain", conventions="sklearn", engine="auto", verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.solver = solver
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.power_t = power_t
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.dtype = dtype
        self.numerics = numerics
        self.conventions = conventions
        self.engine = engine
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


    # --- training -------------------------------------------------------------------------

    def _settings(self) -> dict:
        """Checked hyperparameters (every message names the parameter and what would be valid)."""
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool) else sizes
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be a tuple of positive integers, got {self.hidden_layer_sizes!r}") from None
        for units in sizes:
            if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
                raise ValueError(f"hidden_layer_sizes must be a tuple of positive integers, got {self.hidden_layer_sizes!r}")
        activation = self.activation
        if not isinstance(activation, str):
            raise ValueError(f"activation must be one of {sorted(_SKLEARN_ACTIVATIONS)}, got {activation!r}")
        activation = _SKLEARN_ACTIVATIONS.get(activation.lower()) or _activations.get(activation)
        loss, half_loss = self._training_loss()
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        if self.learning_rate_schedule not in _SCHEDULES:
            raise ValueError(f"learning_rate_schedule must be one of {_SCHEDULES}, got {self.learning_rate_schedule!r}")
        _real(self.power_t, "power_t", 0.0)
        if self.conventions not in _CONVENTIONS:
            raise ValueError(f"conventions must be one of {_CONVENTIONS}, got {self.conventions!r}")
        if not (self.batch_size == "auto" or (isinstance(self.batch_size, numbers.Integral)
                                              and not isinstance(self.batch_size, bool) and self.batch_size >= 1)):
            raise ValueError(f"batch_size must be 'auto' or an integer >= 1, got {self.batch_size!r}")
        if self.dtype not in (None, "float32", "float64", np.float32, np.float64):
            raise ValueError(f"dtype must be None, 'float32' or 'float64', got {self.dtype!r}")
        _positive_int(self.max_iter, "max_iter")
        _positive_int(self.n_iter_no_change, "n_iter_no_change")
        _real(self.tol, "tol", 0.0)
        _real(self.validation_fraction, "validation_fraction", 0.0, 1.0, open_low=True, open_high=True)
        optimizer = dict(solver=self.solver,
                         learning_rate=_real(self.learning_rate, "learning_rate", 0.0, open_low=True),
                         momentum=_real(self.momentum, "momentum", 0.0, 1.0),
                         nesterovs_momentum=self.nesterovs_momentum,
                         beta_1=_real(self.beta_1, "beta_1", 0.0, 1.0, open_high=True),
                         beta_2=_real(self.beta_2, "beta_2", 0.0, 1.0, open_high=True),
                         epsilon=_real(self.epsilon, "epsilon", 0.0, open_low=True),
                         half_loss=half_loss, conventions=self.conventions)
        return {"sizes": sizes, "activation": activation, "loss": loss, "half_loss": half_loss, "optimizer": optimizer}

    _classifier = False

    def _fit(self, X, y, sample_weight, incremental: bool, classes=None):
        settings = self._settings()
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        dtype = self.dtype if self.dtype is not None else (
            self.model_.dtype if not first_pass else [np.float64, np.float32])
        X, y = validate_data(self, X, y, dtype=dtype, multi_output=not self._classifier,
                             y_numeric=not self._classifier, reset=first_pass)
        dtype = X.dtype
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=dtype)
        y = self._targets(y, dtype, first_pass, classes)
        if not first_pass and y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y.shape[1]} output(s), but {type(self).__name__} was fitted with {self.n_outputs_}")
        random_state = check_random_state(self.random_state)
        if first_pass:
            self.n_outputs_ = y.shape[1]
            self.model_ = self._build(X.shape[1], settings, dtype, random_state)
            self.loss_curve_, self.t_ = [], 0
            self._no_improvement_count = 0
            self.__dict__.pop("_best_weights", None)
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
            else:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf
        if first_pass or not incremental:  # partial_fit keeps the optimizer's state, fit starts a fresh one
            self.model_.compile(optimizer=gdcore_optimizer(**settings["optimizer"], n_outputs=self.n_outputs_),
                                loss=settings["loss"](self.n_outputs_))
            self._sgd_learning_rate = settings["optimizer"]["learning_rate"]  # in scikit-learn's scale
        self._fit_epochs(X, y, sample_weight, settings, random_state, incremental)
        weights = self.model_.get_weights()
        self.coefs_ = [weight.copy() for weight in weights[0::2]]
        self.intercepts_ = [weight.copy() for weight in weights[1::2]]
        return self

    def _build(self, n_features, settings, dtype, random_state) -> gdcore.Sequential:
        """The network, with ``MLPRegressor``'s initial weights drawn from ``random_state``."""
        units = [n_features, *settings["sizes"], self.n_outputs_]
        activation = settings["activation"]
        layers = [gdcore.layers.Dense(n_out, activation=activation.name if index < len(units) - 2 else "linear",
                                      kernel_initializer="zeros")
                  for index, n_out in enumerate(units[1:])]
        model = gdcore.Sequential([gdcore.Input(shape=(n_features,)), *layers], dtype=np.dtype(dtype).name,
                                  numerics=self.numerics, engine=self.engine, seed=0)
        factor = 2.0 if activation is _activations.SIGMOID else 6.0
        weights = []
        for fan_in, fan_out in zip(units[:-1], units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            weights.append(random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
            weights.append(random_state.uniform(-bound, bound, fan_out).astype(dtype))
        model.set_weights(weights)
        return model

    def _fit_epochs(self, X, y, sample_weight, settings, random_state, incremental: bool) -> None:
        """``MLPRegressor._fit_stochastic``'s epoch loop around gdcore's compiled epochs (module docstring)."""
        from sklearn.model_selection import train_test_split

        weight_val = None
        if self.early_stopping:
            stratify = y if self._classifier and self.n_outputs_ == 1 else None  # as MLPClassifier
            if sample_weight is None:
                X, X_val, y, y_val = train_test_split(X, y, random_state=random_state,
                                                      test_size=self.validation_fraction, stratify=stratify)
            else:
                X, X_val, y, y_val, sample_weight, weight_val = train_test_split(
                    X, y, sample_weight, random_state=random_state, test_size=self.validation_fraction,
                    stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                                 f"your dataset (validation_fraction={self.validation_fraction}, {len(X) + len(X_val)} samples).")
        n_samples = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(f"Got batch_size={self.batch_size} larger than the sample size ({n_samples}); it is "
                              "clipped to the sample size", UserWarning, stacklevel=4)
            batch_size = min(self.batch_size, n_samples)
        scale = 0.5 if settings["half_loss"] else 1.0
        order = np.arange(n_samples)
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            if self.shuffle:
                order = _sklearn_shuffle(order, random_state=random_state)
            weights = None if sample_weight is None else _batch_normalised(sample_weight[order], batch_size)
            history = self.model_.fit(X[order], y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                                      sample_weight=weights)
            if not history.history["loss"]:  # diverged: gdcore warned and kept the last finite weights
                break
            self.n_iter_ += 1
            self.loss_ = scale * history.history["loss"][0]
            self.t_ += n_samples
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            if self.early_stopping:
                score = self._validation_score(X_val, y_val, weight_val)
                self.validation_scores_.append(score)
                self._no_improvement_count = self._no_improvement_count + 1 if score < self.best_validation_score_ + self.tol else 0
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    self._best_weights = self.model_.get_weights()
            else:
                loss = self.loss_curve_[-1]
                self._no_improvement_count = self._no_improvement_count + 1 if loss > self.best_loss_ - self.tol else 0
                self.best_loss_ = min(self.best_loss_, loss)
            schedule = self.learning_rate_schedule if self.solver == "sgd" else "constant"  # Adam: constant
            if schedule == "invscaling":  # MLPRegressor's SGDOptimizer.iteration_ends
                self._set_sgd_learning_rate(settings, self.learning_rate / (self.t_ + 1) ** self.power_t)
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                message = (f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} "
                           "consecutive epochs.")
                if schedule == "adaptive" and self._sgd_learning_rate > 1e-6:  # SGDOptimizer.trigger_stopping
                    self._set_sgd_learning_rate(settings, self._sgd_learning_rate / 5.0)
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(f"{message} Setting learning rate to {self._sgd_learning_rate:f}")
                else:
                    if self.verbose:
                        print(message + (" Learning rate too small. Stopping." if schedule == "adaptive"
                                         else " Stopping."))
                    break
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                              "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
        if self.early_stopping and hasattr(self, "_best_weights"):
            self.model_.set_weights(self._best_weights)


    def _set_sgd_learning_rate(self, settings, learning_rate: float) -> None:
        """Set SGD's rate, in scikit-learn's scale, for the next epochs; the momentum state is kept."""
        self._sgd_learning_rate = learning_rate
        self.model_.optimizer.learning_rate = (learning_rate * self.n_outputs_ / 2 if settings["half_loss"]
                                               else learning_rate)


def _batch_normalised(weights: np.ndarray, batch_size: int) -> np.ndarray:
    r"""Per-sample weights that make Keras's batch loss :math:`\sum_b w'_b \ell_b / B` scikit-learn's weighted mean.

    ``MLPRegressor`` averages each batch with ``np.average(..., weights=w)``:
    :math:`\sum_b w_b \ell_b / \sum_b w_b`; Keras (gdcore) divides by the
    batch's size :math:`B`. So each batch's weights are scaled by
    :math:`B / \sum_b w_b`. A batch whose weights sum to zero gets weights
    zero (a zero gradient), where ``MLPRegressor`` raises ``ZeroDivisionError``.
    """
    scaled = np.zeros_like(weights)
    for start in range(0, len(weights), batch_size):
        batch = weights[start : start + batch_size]
        total = batch.sum()
        if total != 0:
            scaled[start : start + batch_size] = batch * (len(batch) / total)
    return scaled


class GDRegressor(RegressorMixin, _BaseGD):
    """A dense network trained by gdcore's gradient descent, as a scikit-learn regressor.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=()
        Units of each hidden layer; ``()`` is the linear neuron (``Dense(n_outputs)``).
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Of the hidden layers (Keras's names ``"linear"``, ``"sigmoid"`` work too).
    loss : {"squared_error", "mse", "mae"}, default="squared_error"
        ``"squared_error"`` is scikit-learn's :math:`\\tfrac12 e^2` (module
        docstring); ``"mse"``/``"mean_squared_error"`` and
        ``"mae"``/``"mean_absolute_error"`` are Keras's losses.
    solver : {"adam", "sgd"}, default="adam"
        Adam or SGD with (Nesterov) momentum, constant learning rate.
    learning_rate : float, default=0.001
        ``MLPRegressor``'s ``learning_rate_init``.
    learning_rate_schedule : {"constant", "invscaling", "adaptive"}, default="constant"
        ``MLPRegressor``'s ``learning_rate`` (module docstring); SGD only, Adam ignores it as scikit-learn does.
    power_t : float, default=0.5
        The exponent of ``"invscaling"``.
    momentum, nesterovs_momentum : float, bool, default=0.9, True
        SGD's momentum.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's hyperparameters, scikit-learn's defaults.
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)``; larger values are clipped with a warning.
    max_iter : int, default=200
        Epochs (passes over the data) at most.
    shuffle : bool, default=True
        Reshuffle the samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Initial weights, validation split and shuffles.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the samples and stop on their :math:`R^2`.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
        Stopping rule of the module docstring.
    warm_start : bool, default=False
        ``fit`` continues from the fitted weights (with a fresh optimizer, as ``MLPRegressor``).
    dtype : {None, "float32", "float64"}, default=None
        Precision of the training; ``None`` keeps float32 data in float32 and uses float64 otherwise.
    numerics : {"plain", "tensorflow"}, default="plain"
        gdcore's summation order (:mod:`gdcore.numerics`).
    conventions : {"sklearn", "keras"}, default="sklearn"
        Exact betas and momentum (scikit-learn) or rounded to float32 first (Keras).
    engine : {"auto", "numba", "numpy"}, default="auto"
        As :class:`gdcore.Sequential`'s: the compiled loop, the NumPy engine (same bits) while it compiles.
    verbose : bool, default=False
        Print the loss after every epoch, as ``MLPRegressor``.

    Attributes
    ----------
    coefs_, intercepts_ : list of ndarray
        Kernels (n_in, n_out) and biases (n_out,) per layer, scikit-learn's layout (copies).
    loss_ : float
        Last epoch's training loss (in ``loss``'s scale).
    loss_curve_ : list of float
        Training loss per epoch, the mean over the epoch's batches before each update.
    validation_scores_ : list of float or None
        Validation :math:`R^2` per epoch with ``early_stopping``.
    best_loss_, best_validation_score_ : float or None
    n_iter_ : int
        Epochs run by the last ``fit``.
    t_ : int
        Samples seen by the optimizer.
    n_features_in_, feature_names_in_, n_outputs_ : int, ndarray, int
    model_ : gdcore.Sequential
        The trained gdcore model (Keras's API: ``get_weights``, ``save``, ...).
    """

    # --- scikit-learn's protocol ----------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Train for up to ``max_iter`` epochs (from the fitted weights if ``warm_start``). Returns self.

        ``sample_weight`` (one number per sample) weighs each sample's loss in its batch's weighted mean, as
        ``MLPRegressor``'s (:func:`_batch_normalised`), and the early-stopping validation :math:`R^2`.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the optimizer's state across calls. Returns self."""
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True (early_stopping=True was given)")
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Network outputs, shape (n_samples,) for a 1-D training target, else (n_samples, n_outputs)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=self.model_.dtype, reset=False)
        outputs = self.model_.predict(X, verbose=0)
        return outputs.ravel() if self._y_1d else outputs

    def _training_loss(self):
        if not isinstance(self.loss, str):
            raise ValueError(f"loss must be 'squared_error', 'mse' or 'mae', got {self.loss!r}")
        half_loss = self.loss.lower() == "squared_error"
        loss = _losses.MEAN_SQUARED_ERROR if half_loss else _losses.get(self.loss)
        if loss.targets != "values":
            raise ValueError(f"loss must be 'squared_error', 'mse' or 'mae' for a regressor, got {self.loss!r} "
                             "(use GDClassifier for classification)")
        return (lambda n_outputs: loss), half_loss

    def _targets(self, y, dtype, first_pass, classes):
        if first_pass:
            self._y_1d = y.ndim == 1
        return np.asarray(y, dtype=dtype).reshape(len(y), -1)

    def _validation_score(self, X_val, y_val, sample_weight) -> float:
        from sklearn.metrics import r2_score

        return r2_score(y_val, self.model_.predict(X_val, verbose=0), sample_weight=sample_weight)


class GDClassifier(ClassifierMixin, _BaseGD):
    """A dense network trained by gdcore's gradient descent, as a scikit-learn classifier (``MLPClassifier``'s loop).

    Binary targets train one logistic output on the binary cross-entropy,
    more classes a softmax output on the categorical cross-entropy of the
    one-hot labels (``LabelBinarizer``, as ``MLPClassifier``; labels may be
    strings). The output layer is linear and the losses take its logits
    (``binary_crossentropy_from_logits``, ``categorical_crossentropy_from_logits``):
    the same loss and gradient :math:`\\sigma(z) - y` as scikit-learn's
    ``log_loss`` with a logistic or softmax output, with no factor to map, so
    ``learning_rate`` and ``epsilon`` are passed on unchanged.
    ``decision_function`` returns those logits, ``predict_proba`` their
    sigmoid or softmax. Parameters and attributes as :class:`GDRegressor`
    (``loss="log_loss"`` is the only loss; early stopping scores accuracy;
    ``sample_weight`` and ``learning_rate_schedule`` as ``MLPClassifier``'s),
    plus ``classes_``. No ``class_weight``: ``MLPClassifier`` has none.
    """

    _classifier = True

    def __init__(self, hidden_layer_sizes=(), activation="relu", loss="log_loss", solver="adam",
                 learning_rate=0.001, learning_rate_schedule="constant", power_t=0.5, momentum=0.9,
                 nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 batch_size="auto", max_iter=200, shuffle=True, random_state=None, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, warm_start=False, dtype=None,
                 numerics="plain", conventions="sklearn", engine="auto", verbose=False):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, loss=loss, solver=solver,
                         learning_rate=learning_rate, learning_rate_schedule=learning_rate_schedule,
                         power_t=power_t, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
                         beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, batch_size=batch_size, max_iter=max_iter,
                         shuffle=shuffle, random_state=random_state, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change, tol=tol,
                         warm_start=warm_start, dtype=dtype, numerics=numerics, conventions=conventions,
                         engine=engine, verbose=verbose)

    def fit(self, X, y, sample_weight=None):
        """Train for up to ``max_iter`` epochs (from the fitted weights if ``warm_start``). Returns self.

        ``sample_weight`` weighs each sample's log-loss as :meth:`GDRegressor.fit` does (``MLPClassifier``'s
        weighted batch mean) and the early-stopping validation accuracy.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` (every label) is required on the first call, as in scikit-learn."""
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True (early_stopping=True was given)")
        if not hasattr(self, "classes_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit (every label the data can hold)")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def decision_function(self, X):
        """The output layer's logits: shape (n_samples,) for two classes, else (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=self.model_.dtype, reset=False)
        logits = self.model_.predict(X, verbose=0)
        return logits.ravel() if logits.shape[1] == 1 else logits

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes): the sigmoid (two classes) or softmax of the logits."""
        logits = self.decision_function(X)
        if logits.ndim == 1:
            positive = _activations.sigmoid(logits)
            return np.column_stack([1 - positive, positive])
        return _activations.softmax(logits)

    def predict(self, X):
        """The most probable class of each sample (``LabelBinarizer.inverse_transform`` of the probabilities)."""
        probabilities = self.predict_proba(X)
        return self._label_binarizer.inverse_transform(probabilities[:, 1:] if len(self.classes_) == 2 else probabilities)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags

    def _training_loss(self):
        if self.loss != "log_loss":
            raise ValueError(f"loss must be 'log_loss' for a classifier, got {self.loss!r}")
        return (lambda n_outputs: _losses.BINARY_CROSSENTROPY_FROM_LOGITS if n_outputs == 1
                else _losses.CATEGORICAL_CROSSENTROPY_FROM_LOGITS), False

    def _targets(self, y, dtype, first_pass, classes):
        from sklearn.preprocessing import LabelBinarizer
        from sklearn.utils.multiclass import check_classification_targets

        check_classification_targets(y)
        if first_pass:
            self._label_binarizer = LabelBinarizer().fit(y if classes is None else classes)
            self.classes_ = self._label_binarizer.classes_
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y holds labels {unseen.tolist()} not in classes_ {self.classes_.tolist()}")
        return self._label_binarizer.transform(y).astype(dtype)

    def _validation_score(self, X_val, y_val, sample_weight) -> float:
        from sklearn.metrics import accuracy_score

        return accuracy_score(self._label_binarizer.inverse_transform(y_val), self.predict(X_val),
                              sample_weight=sample_weight)
