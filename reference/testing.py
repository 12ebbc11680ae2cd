"""pytest helpers: drop ``assert_parity`` into a test to check a gdcore model against Keras or scikit-learn.

Example::

    import gdcore, reference

    def test_my_model_matches_keras():
        model = gdcore.Sequential([gdcore.Input(shape=(3,)), gdcore.layers.Dense(4, activation="tanh"),
                                   gdcore.layers.Dense(1)], dtype="float64", seed=1)
        model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=0.05, momentum=0.9), loss="mse")
        reference.assert_parity(model, x, y, epochs=10, batch_size=16)   # float64: rtol 1e-9, atol 1e-12

On failure the AssertionError shows mine vs theirs at the first epoch beyond
tolerance and at the epoch before it.
"""

from __future__ import annotations

import numpy as np

from reference.compare import Comparison, Tolerance, classification_tolerance, compare, default_tolerance
from reference.configs import Config, epoch_orders
from reference.gdcore_driver import run_gdcore

AGAINST = ("keras", "sklearn.SGDRegressor", "sklearn.MLPRegressor", "sklearn.SGDClassifier", "sklearn.MLPClassifier")


def assert_parity(model, x, y, epochs: int = 25, batch_size: int = 32, rtol: float | None = None,
                  atol: float | None = None, seed: int = 0, validation_data=None, against: str = "keras",
                  feed: str = "dataset") -> Comparison:
    """Train ``model`` (a copy; the model itself is not modified) and its twin, and assert they agree.

    Both engines start from ``model``'s current weights and see the same
    batches: epoch ``e`` visits the rows of ``x`` in the ``e``-th permutation
    drawn from ``np.random.default_rng(seed)``. After every epoch each weight
    tensor, the loss history (``loss``, and ``val_loss`` with
    ``validation_data``; scikit-learn's MLPRegressor reports ``loss``,
    SGDRegressor none) and the predictions on the validation inputs (else on
    ``x``) must satisfy :math:`|a-b| \\le atol + rtol\\max(|a|,|b|)`.

    Parameters
    ----------
    model : gdcore.Sequential
        Built and compiled.
    rtol, atol : float or None
        ``None`` takes the default of the model's dtype
        (:data:`reference.compare.DEFAULT_TOLERANCES`: float32 1e-4 / 1e-6, float64 1e-9 / 1e-12); against
        Keras, a model trained on a cross-entropy under plain numerics takes
        :data:`reference.compare.CLASSIFICATION_TOLERANCES` instead.
    against : {"keras", "sklearn.SGDRegressor", "sklearn.MLPRegressor", "sklearn.SGDClassifier", "sklearn.MLPClassifier"}
    feed : {"dataset", "numpy"}
        How Keras receives each epoch's rows (:func:`reference.keras_driver.run_keras`).

    Returns
    -------
    Comparison
        Its ``rows`` hold every per-epoch measurement. Both runs diverging at
        the same epoch counts as agreement (``status == "diverged"``).

    Raises
    ------
    AssertionError
        With the first epoch beyond tolerance, mine vs theirs, and the epoch before.
    """
    if against not in AGAINST:
        raise ValueError(f"against must be one of {AGAINST}, got {against!r}")
    if not model.built or model.optimizer is None or model.loss is None:
        raise ValueError("assert_parity needs a built and compiled model: give it an Input(shape=...) and call compile()")
    dtype = model.dtype
    x = np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x, dtype=dtype)
    x = x[:, None] if x.ndim == 1 else x
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=dtype).reshape(len(x), -1)
    if validation_data is not None:
        x_val = np.asarray(validation_data[0], dtype=dtype)
        x_val = x_val[:, None] if x_val.ndim == 1 else x_val
        validation_data = (x_val, np.asarray(validation_data[1], dtype=dtype).reshape(len(x_val), -1))
    classifier = model.loss.targets != "values"
    default = classification_tolerance(dtype, model.profile.name) if classifier and against == "keras" else \
        default_tolerance(dtype)
    tolerance = Tolerance(default.rtol if rtol is None else float(rtol), default.atol if atol is None else float(atol))
    orders = epoch_orders(len(x), epochs, seed)
    arguments = {"x": x, "y": y, "orders": orders, "batch_size": batch_size}
    x_predict = validation_data[0] if validation_data is not None else x
    mine = run_gdcore(model, validation_data=validation_data, x_predict=x_predict, **arguments)
    if against == "keras":
        from reference.keras_driver import run_keras

        theirs = run_keras(model, validation_data=validation_data, x_predict=x_predict, feed=feed, **arguments)
    else:
        from reference import sklearn_driver

        driver = {"sklearn.SGDRegressor": sklearn_driver.run_sgd_regressor,
                  "sklearn.MLPRegressor": sklearn_driver.run_mlp_regressor,
                  "sklearn.SGDClassifier": sklearn_driver.run_sgd_classifier,
                  "sklearn.MLPClassifier": sklearn_driver.run_mlp_classifier}[against]
        theirs = driver(model, x_predict=x_predict, **arguments)
    comparison = compare(mine, theirs, tolerance, config=f"{model.name} ({dtype.name}, batch {batch_size}, {epochs} epochs)")
    if comparison.failed:
        raise AssertionError(comparison.failure_message())
    return comparison


def assert_config_parity(config: Config, engines=("keras", "sklearn")):
    """Run ``config`` through :func:`reference.runner.run_config`; fail on any comparison beyond tolerance.

    Known convention gaps (status ``"known gap"``) and runs that diverge in
    both engines do not fail. Returns the :class:`~reference.runner.ConfigResult`.
    """
    from reference.runner import run_config

    result = run_config(config, engines=engines)
    failures = [comparison.failure_message() for comparison in result.comparisons if comparison.failed]
    if failures:
        raise AssertionError("\n\n".join(failures))
    return result
