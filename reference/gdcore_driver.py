"""The gdcore driver: train a copy of a gdcore model one epoch at a time on imposed sample orders."""

from __future__ import annotations

import time
import warnings

import numpy as np

import gdcore
from reference.trajectory import Trajectory, finite, record_history


def weight_names(model: gdcore.Sequential) -> list[str]:
    """``["dense/kernel", "dense/bias", "dense_1/kernel", ...]``, in ``get_weights`` order."""
    return [f"{layer.name}/{kind}" for layer in model.dense_layers for kind in ("kernel", "bias")]


def clone_model(model: gdcore.Sequential, **changes) -> gdcore.Sequential:
    """A new, independent model with the same layers, dtype, numerics, engine, weights, optimizer, loss and metrics.

    The optimizer is a fresh object with the same ``get_config()`` (its state
    starts empty, as after ``compile``). ``changes`` override constructor
    arguments of :class:`gdcore.Sequential` (``dtype``, ``numerics``, ``engine``).
    """
    if not model.built:
        raise ValueError("clone_model: the model is not built; give it an Input(shape=...) first")
    options = {"dtype": model.dtype.name, "numerics": model.profile.name, "engine": model.engine, "seed": model.seed}
    options.update(changes)
    layers = [gdcore.layers.Dense(layer.units, activation=layer.activation.name, name=layer.name) for layer in model.dense_layers]
    copy = gdcore.Sequential([gdcore.Input(shape=model.input_shape), *layers], name=model.name, **options)
    copy.set_weights(model.get_weights())
    if model.optimizer is not None and model.loss is not None:
        copy.compile(optimizer=type(model.optimizer)(**model.optimizer.get_config()), loss=model.loss,
                     metrics=[metric for _, metric in model._metrics] or None)
    return copy


def run_gdcore(model: gdcore.Sequential, x, y, orders, batch_size: int, validation_data=None, x_predict=None,
               engine_name: str = "gdcore") -> Trajectory:
    """Train a clone of ``model`` for ``len(orders)`` epochs, epoch ``e`` on ``x[orders[e]]`` unshuffled.

    ``model`` itself is not modified. Each epoch is one call
    ``fit(x[p], y[p], epochs=1, shuffle=False, batch_size=batch_size)``, the
    same call the Keras driver makes; optimizer state carries over between
    calls. Predictions on ``x_predict`` (default: the validation inputs, else
    ``x``) are made in one batch after every epoch.

    The timing excludes Numba's one-time compilation: a throw-away clone is
    trained on one batch first. A diverging run stops at the epoch gdcore
    reports (its ``TrainingDivergedWarning`` is recorded, not shown).
    """
    model = clone_model(model)
    x, y = np.asarray(x), np.asarray(y)
    if x_predict is None:
        x_predict = validation_data[0] if validation_data is not None else x
    _warm_up(model, x, y, batch_size, validation_data, x_predict)
    trajectory = Trajectory(engine_name, model.dtype.name, weight_names(model), weights=[model.get_weights()],
                            loss=[], val_loss=[] if validation_data is not None else None,
                            predictions=[model.predict(x_predict, batch_size=len(x_predict), verbose=0)])
    for epoch, order in enumerate(orders, start=1):
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always", gdcore.TrainingDivergedWarning)
            start = time.perf_counter()
            history = model.fit(x[order], y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                                validation_data=validation_data)
            trajectory.fit_seconds += time.perf_counter() - start
        weights = model.get_weights()
        if history.stopped is not None or not history.history.get("loss") or not finite(weights):
            trajectory.diverged_at = epoch
            break
        trajectory.weights.append(weights)
        record_history(trajectory, history.history)
        trajectory.predictions.append(model.predict(x_predict, batch_size=len(x_predict), verbose=0))
    return trajectory


def _warm_up(model: gdcore.Sequential, x, y, batch_size: int, validation_data, x_predict) -> None:
    """Compile (or load from Numba's cache) the kernels this run uses, with the same argument types."""
    scratch = clone_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gdcore.TrainingDivergedWarning)
        scratch.fit(x[::-1].copy(), y[::-1].copy(), batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                    validation_data=validation_data)
    scratch.predict(x_predict, batch_size=len(x_predict), verbose=0)
