"""Run a configuration through gdcore, Keras and scikit-learn, and compare every engine with gdcore.

For each :class:`~reference.configs.Config` the comparisons are:

* ``gdcore vs keras``: every configuration. A cross-entropy under plain
  numerics is judged by :func:`reference.compare.classification_tolerance` (a
  measured bound), everything else by the default tolerance;
  a classifier's ``accuracy`` history is compared too.
* ``gdcore vs sklearn.SGDRegressor`` for the linear neuron, or
  ``gdcore vs sklearn.MLPRegressor`` for a hidden network; skipped, with the
  reason, when the estimator cannot run that training (Adam or batches in
  SGDRegressor, MAE in MLPRegressor, ...).
* With Adam in MLPRegressor also ``gdcore[float32_betas=False] vs
  sklearn.MLPRegressor``: gdcore given scikit-learn's Adam convention
  (``Adam(float32_betas=False)``), in float64 (a float32 configuration gets
  a float64 twin: in float32 the betas are float32 whatever the option). When the plain comparison is beyond tolerance and this one is
  within float64 tolerance, the plain one is reported as the known gap
  ``adam-beta-cast``, with its real numbers.
* ``gdcore vs sklearn.LinearRegression`` for the linear neuron on MSE:
  informational, the distance of each epoch's weights from the OLS optimum
  and the loss gap (``loss`` rows: gdcore's MSE at the end-of-epoch weights
  vs the optimum's).
* For a classifier (``output="sigmoid"`` or ``"softmax"``):
  ``gdcore vs sklearn.SGDClassifier`` for the logistic neuron (SGD at batch
  size 1 only), ``gdcore vs sklearn.LogisticRegression`` for the logistic
  neuron on the binary cross-entropy (informational, as OLS's: the
  distance of each epoch's weights from ``LogisticRegression(C=inf)``'s
  optimum and the cross-entropy gap), and ``gdcore vs
  sklearn.MLPClassifier`` for every classifier (no hidden layer allowed),
  with the Adam convention shown as for ``MLPRegressor``. These use the
  default tolerances, as the regression ones do.
* ``keras vs sklearn.*`` when both ran: informational, the two references
  compared with each other, to tell a gdcore problem from a training run so
  sensitive that any two engines drift apart.

A named gap never changes a tolerance: it only replaces the verdict ``FAIL``
with ``known gap`` (or ``diverged``) when a separate, checked comparison
shows that the named convention is the whole difference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import gdcore

from reference import sklearn_driver
from reference.compare import (Comparison, Tolerance, classification_tolerance, compare, default_tolerance, rows_table,
                               skipped, summary_table)
from reference.configs import Config
from reference.errors import Unsupported
from reference.gdcore_driver import run_gdcore
from reference.trajectory import Trajectory

ENGINES = ("keras", "sklearn")


@dataclass
class ConfigResult:
    """Everything one configuration produced: its comparisons, trajectories and wall time."""

    config: Config
    numerics: str
    comparisons: list[Comparison] = field(default_factory=list)
    trajectories: dict[str, Trajectory] = field(default_factory=dict)
    optimum_gaps: pd.DataFrame | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(comparison.failed for comparison in self.comparisons)

    def summary(self) -> pd.DataFrame:
        return summary_table(self.comparisons)

    def rows(self) -> pd.DataFrame:
        return rows_table(self.comparisons)


def run_config(config: Config, engines=ENGINES, tolerance: Tolerance | None = None) -> ConfigResult:
    """Train ``config`` in gdcore and in each engine of ``engines``, and compare them with gdcore.

    Raises ImportError when ``"keras"`` is requested and TensorFlow is missing.
    """
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise ValueError(f"unknown engines {sorted(unknown)}; known: {', '.join(ENGINES)}")
    start = time.perf_counter()
    given, tolerance = tolerance, tolerance or default_tolerance(config.dtype)
    x, y, x_val, y_val = config.load_data()
    orders = config.epoch_orders(len(x))
    model = config.build_model()
    result = ConfigResult(config, model.profile.name)
    common = {"x": x, "y": y, "orders": orders, "batch_size": config.batch_size}
    mine = run_gdcore(model, validation_data=(x_val, y_val), x_predict=x_val, **common)
    result.trajectories["gdcore"] = mine
    name = config.name

    if "keras" in engines:
        from reference.keras_driver import run_keras

        theirs = run_keras(model, validation_data=(x_val, y_val), x_predict=x_val, **common)
        result.trajectories["keras"] = theirs
        result.comparisons.append(compare(mine, theirs, keras_tolerance(config, model, given), config=name))

    if "sklearn" in engines and config.task != "regression":
        _classifiers(config, model, mine, tolerance, result, common, (x_val, y_val))
    elif "sklearn" in engines:
        if config.hidden_units is None:
            comparison = _iterative(name, "sklearn.SGDRegressor", sklearn_driver.run_sgd_regressor, model, mine,
                                    tolerance, result, x_predict=x_val, **common)
            _dloss_clip(comparison, x, y)
            result.comparisons.append(comparison)
            result.comparisons.append(_optimum(name, model, mine, x, y, result))
        else:
            comparison = _iterative(name, "sklearn.MLPRegressor", sklearn_driver.run_mlp_regressor, model, mine,
                                    tolerance, result, x_predict=x_val, **common)
            result.comparisons.append(comparison)
            if comparison.status != "skipped" and config.optimizer == "adam":
                _adam_convention(config, model, result, comparison, common, (x_val, y_val))
    for estimator in ("sklearn.SGDRegressor", "sklearn.MLPRegressor", "sklearn.SGDClassifier", "sklearn.MLPClassifier"):
        if "keras" in result.trajectories and estimator in result.trajectories:
            referee = compare(result.trajectories["keras"], result.trajectories[estimator], tolerance, config=name,
                              checked=False)
            if not referee.rows.empty:
                referee.reason = (f"the two references compared with each other (not a gdcore check): worst rel "
                                  f"{referee.rows['max_rel_diff'].max():.1e}, {referee.bit_identical_epochs}/"
                                  f"{referee.epochs_compared} epochs bit-identical")
            result.comparisons.append(referee)
    result.seconds = time.perf_counter() - start
    return result


def keras_tolerance(config: Config, model, tolerance: Tolerance | None = None) -> Tolerance:
    """The tolerance of ``gdcore vs keras``: ``tolerance`` when given; for a cross-entropy
    :func:`~reference.compare.classification_tolerance`; else the dtype's default (a sigmoid output trained on MSE
    calls none of the kernels that differ, and keeps it)."""
    if tolerance is not None:
        return tolerance
    if model.loss.targets != "values":
        return classification_tolerance(config.dtype, model.profile.name)
    return default_tolerance(config.dtype)


def _classifiers(config, model, mine, tolerance, result, common, validation) -> None:
    """SGDClassifier and LogisticRegression's optimum for the logistic neuron, MLPClassifier for every classifier."""
    name, (x_val, _) = config.name, validation
    if config.hidden_units is None and config.output == "sigmoid":
        result.comparisons.append(_iterative(name, "sklearn.SGDClassifier", sklearn_driver.run_sgd_classifier, model,
                                             mine, tolerance, result, x_predict=x_val, **common))
        result.comparisons.append(_optimum(name, model, mine, common["x"], common["y"], result))
    comparison = _iterative(name, "sklearn.MLPClassifier", sklearn_driver.run_mlp_classifier, model, mine, tolerance,
                            result, x_predict=x_val, **common)
    result.comparisons.append(comparison)
    if comparison.status != "skipped" and config.optimizer == "adam":
        _adam_convention(config, model, result, comparison, common, validation, "sklearn.MLPClassifier",
                         sklearn_driver.run_mlp_classifier)


def _dloss_clip(comparison: Comparison, x, y) -> None:
    """Name the dloss-clip gap when gdcore diverged and SGDRegressor, clipping its loss derivative, did not."""
    mine, theirs = comparison.mine, comparison.theirs
    if comparison.status != "FAIL" or mine is None or mine.diverged_at is None or theirs.diverged_at is not None:
        return
    if comparison.first_failing_epoch is not None and comparison.first_failing_epoch < mine.diverged_at:
        return
    kernel, bias = theirs.weights[min(mine.diverged_at, theirs.epochs)]
    residual = np.max(np.abs(np.asarray(x, np.float64) @ kernel + bias - np.asarray(y, np.float64).reshape(-1, 1)))
    if residual >= sklearn_driver.MAX_DLOSS:
        comparison.status, comparison.known_gap = "diverged", "dloss-clip"
        comparison.reason = (f"gdcore diverged at epoch {mine.diverged_at}; SGDRegressor clips its loss derivative "
                             f"at {sklearn_driver.MAX_DLOSS:g} (dloss-clip) and kept going, with residuals up to {residual:.1e}")


def _adam_convention(config, model, result, comparison, common, validation, estimator="sklearn.MLPRegressor",
                     driver=None) -> None:
    """Run gdcore with scikit-learn's Adam convention against ``estimator`` (MLPRegressor or MLPClassifier, run by
    ``driver``), in float64 (where it is expressible).

    In float32 gdcore evaluates the bias correction in float32 from float32
    betas whatever ``float32_betas`` says, so the convention can only be
    shown in float64: a float32 configuration gets its float64 twin.
    """
    driver = driver or sklearn_driver.run_mlp_regressor
    if config.dtype == "float64":
        model64, x, y, orders, (x_val, y_val) = model, common["x"], common["y"], common["orders"], validation
        theirs = result.trajectories[estimator]
        label = f"gdcore[float32_betas=False] vs {estimator}"
    else:
        twin_config = config.replace(dtype="float64")
        x, y, x_val, y_val = twin_config.load_data()
        orders, model64 = common["orders"], twin_config.build_model()
        theirs = driver(model64, x, y, orders, config.batch_size, x_predict=x_val)
        label = f"gdcore[float32_betas=False] vs {estimator} (float64 twin)"
    mine = run_gdcore(sklearn_driver.sklearn_adam(model64), x, y, orders, config.batch_size,
                      validation_data=(x_val, y_val), x_predict=x_val, engine_name="gdcore[float32_betas=False]")
    result.trajectories[label] = mine
    exact = compare(mine, theirs, default_tolerance("float64"), config=config.name, engines=label)
    result.comparisons.append(exact)
    if comparison.status == "FAIL" and exact.status == "ok":
        comparison.status, comparison.known_gap = "known gap", "adam-beta-cast"
        comparison.reason = (f"adam-beta-cast: {sklearn_driver.KNOWN_GAPS['adam-beta-cast']}; given scikit-learn's "
                             f"convention (float64) gdcore agrees within rtol {exact.tolerance.rtol:g}")


def _iterative(name, engines_label, driver, model, mine, tolerance, result, **arguments) -> Comparison:
    engines = f"gdcore vs {engines_label}"
    try:
        theirs = driver(model, **arguments)
    except Unsupported as refusal:
        return skipped(name, engines, str(refusal), tolerance)
    result.trajectories[engines_label] = theirs
    return compare(mine, theirs, tolerance, config=name, engines=engines)


def _optimum(name, model, mine: Trajectory, x, y, result: ConfigResult) -> Comparison:
    """The distance from the optimum per epoch: OLS's (``LinearRegression``) for the linear neuron on MSE,
    ``LogisticRegression(C=inf)``'s for the logistic neuron on the binary cross-entropy."""
    logistic = model.dense_layers[-1].activation.name == "sigmoid"
    estimator, wanted, minimises = (("sklearn.LogisticRegression", "binary_crossentropy", "the binary cross-entropy")
                                    if logistic else ("sklearn.LinearRegression", "mean_squared_error", "MSE"))
    engines = f"gdcore vs {estimator}"
    tolerance = default_tolerance("float64")
    if model.loss.name != wanted:
        return skipped(name, engines, f"the {estimator.removeprefix('sklearn.')} optimum minimises {minimises}; this "
                                      f"configuration trains {model.loss.name}", tolerance)
    if logistic:
        optimum = sklearn_driver.logistic_regression_optimum(x, y)
        best, loss_of = optimum.loss, lambda k, b: sklearn_driver.binary_crossentropy_of(x, y, k, b)
    else:
        optimum = sklearn_driver.linear_regression_optimum(x, y)
        x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64).reshape(-1, 1)
        best = optimum.mse
        loss_of = lambda k, b: float(np.mean((y64 - (x64 @ np.asarray(k, np.float64) + np.asarray(b, np.float64))) ** 2))
    result.optimum_gaps = sklearn_driver.optimum_gaps(mine, optimum, x, y)
    epochs = mine.epochs
    # "mine": gdcore's weights and loss (float64) after each epoch; "theirs": the optimum, the same at every epoch.
    descent = Trajectory("gdcore", "float64", ["kernel", "bias"],
                         weights=[[np.asarray(w, np.float64) for w in weights] for weights in mine.weights],
                         loss=[loss_of(k, b) for k, b in mine.weights[1:]],
                         fit_seconds=mine.fit_seconds, diverged_at=mine.diverged_at)
    target = Trajectory(estimator, "float64", ["kernel", "bias"],
                        weights=[[optimum.kernel, optimum.bias]] * (epochs + 1), loss=[best] * epochs,
                        fit_seconds=optimum.fit_seconds)
    comparison = compare(descent, target, tolerance, config=name, engines=engines, checked=False)
    comparison.rows["max_ulp"] = np.nan  # distances from the optimum, not rounding: ULPs would mean nothing
    if comparison.status == "info" and result.optimum_gaps is not None and len(result.optimum_gaps):
        last = result.optimum_gaps.iloc[-1]
        label = "BCE" if logistic else "MSE"
        comparison.reason = (f"epoch {int(last['epoch'])}: distance to optimum {last['distance']:.4g}, "
                             f"loss gap {last['loss_gap']:.4g} ({label} {last['loss_gap'] + best:.4g} vs {best:.4g})")
        if mine.diverged_at is not None:
            comparison.reason += f"; gdcore diverged at epoch {mine.diverged_at}"
    return comparison


def run_task(config: Config, engines=ENGINES, free: bool = False) -> ConfigResult:
    """One configuration of ``python -m reference``: :func:`run_config`, or :func:`reference.free.run_free` when
    ``free``. A module-level function, so that Dask workers can run it (``--jobs``, ``--scheduler``); it imports
    TensorFlow only when ``engines`` holds ``"keras"``. Starts a fresh gdcore session, so that layer names (and
    hence every row) do not depend on what the process ran before."""
    gdcore.backend.clear_session()
    if free:
        from reference.free import run_free

        return run_free(config)
    return run_config(config, engines=engines)


def run_configs(configs, engines=ENGINES, progress=None) -> list[ConfigResult]:
    """:func:`run_config` for each configuration; ``progress(index, total, result)`` is called after each."""
    results = []
    configs = list(configs)
    for index, config in enumerate(configs, start=1):
        result = run_config(config, engines=engines)
        results.append(result)
        if progress is not None:
            progress(index, len(configs), result)
    return results


def summary_frame(results) -> pd.DataFrame:
    """The summary rows of every comparison of every result, with the numerics profile gdcore used."""
    frames = []
    for result in results:
        frame = result.summary()
        frame.insert(1, "numerics", result.numerics)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else summary_table([])


def rows_frame(results) -> pd.DataFrame:
    """The per-epoch rows of every comparison of every result (one tidy DataFrame)."""
    frames = [result.rows() for result in results]
    frames = [frame for frame in frames if not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else rows_table([])
