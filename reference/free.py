"""``python -m reference --free``: a seeded Keras cell and its gdcore translation, nothing imposed.

The default comparisons copy gdcore's initial weights into Keras and impose
one sample order per epoch on both, so that they test the training step
alone. Here nothing crosses between the libraries: each one runs the cell a
Keras user writes,

.. code-block:: python

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(n_features,))
    ...  # Dense layers with Keras's default (or the seed's RandomNormal(0, 0.05, 123)) initializers
    model.compile(optimizer=..., loss=...)
    model.fit(x, y, batch_size=..., epochs=..., shuffle=True, validation_data=(x_val, y_val))

drawing its own initial weights and its own shuffles, gdcore from its
reproduction of Keras's random streams (:mod:`gdcore.random`). A callback
records the weights, ``loss``, ``val_loss`` and predictions after every
epoch, and the two records are compared as the imposed runs are.
"""

from __future__ import annotations

import time

import numpy as np

import gdcore
from reference.compare import classification_tolerance, compare, default_tolerance
from reference.configs import LOSS_NAMES, Config
from reference.runner import ConfigResult
from reference.trajectory import Trajectory, record_history

ENGINES = "gdcore vs keras (free)"


def _cell(library, config: Config, data, **model_options) -> Trajectory:
    """Run the Keras cell of ``config`` with ``library`` (Keras or gdcore); record every epoch."""
    x, y, x_val, y_val = data
    library.backend.clear_session()
    library.utils.set_random_seed(config.seed)
    inputs = library.Input(shape=(config.n_features,))
    activation = None if config.output == "linear" else config.output
    if config.hidden_units is None:
        outputs = library.layers.Dense(config.output_units, activation=activation,
                                       kernel_initializer=library.initializers.RandomNormal(0.0, 0.05, 123))(inputs)
    else:
        hidden = library.layers.Dense(config.hidden_units, activation=config.hidden_activation)(inputs)
        outputs = library.layers.Dense(config.output_units, activation=activation)(hidden)
    model = library.Model(inputs, outputs, **model_options)
    rule = gdcore.optimizers.OPTIMIZERS[config.optimizer].rule.keras
    compile_options = {} if library is gdcore else {"jit_compile": False}
    if config.task != "regression":
        compile_options["metrics"] = ["accuracy"]
    model.compile(optimizer=getattr(library.optimizers, rule)(learning_rate=config.learning_rate),
                  loss=LOSS_NAMES[config.loss], **compile_options)
    names = [f"{layer.name}/{kind}" for layer in model.layers if layer.get_weights() for kind in ("kernel", "bias")]

    def snapshot():
        return [np.array(w) for w in model.get_weights()], model.predict(x_val, batch_size=len(x_val), verbose=0)

    weights, predictions = snapshot()
    trajectory = Trajectory("gdcore" if library is gdcore else "keras", config.dtype, names, weights=[weights],
                            loss=[], val_loss=[], predictions=[predictions])

    class Record(library.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights, predictions = snapshot()
            trajectory.weights.append(weights)
            trajectory.predictions.append(predictions)
            record_history(trajectory, {key: [float(value)] for key, value in logs.items()})

    start = time.perf_counter()
    model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs, shuffle=True, verbose=0,
              validation_data=(x_val, y_val), callbacks=[Record()])
    trajectory.fit_seconds = time.perf_counter() - start
    if not all(np.isfinite(w).all() for w in trajectory.weights[-1]):
        trajectory.diverged_at = next(epoch for epoch, ws in enumerate(trajectory.weights)
                                      if not all(np.isfinite(w).all() for w in ws))
    return trajectory


def run_free(config: Config) -> ConfigResult:
    """The Keras cell and its gdcore translation, each seeded with ``config.seed``, compared at every epoch."""
    from reference.keras_driver import keras_dtype

    start = time.perf_counter()
    data = config.load_data()
    options = {"dtype": config.dtype} if config.numerics is None else {"dtype": config.dtype, "numerics": config.numerics}
    mine = _cell(gdcore, config, data, **options)
    with keras_dtype(config.dtype) as keras:
        theirs = _cell(keras, config, data)
    cross_entropy = gdcore.losses.get(LOSS_NAMES[config.loss]).targets != "values"
    tolerance = classification_tolerance(config.dtype, config.numerics or "plain") if cross_entropy else \
        default_tolerance(config.dtype)
    comparison = compare(mine, theirs, tolerance, config=config.name, engines=ENGINES)
    result = ConfigResult(config, config.numerics or "plain", comparisons=[comparison],
                          trajectories={"gdcore": mine, "keras": theirs})
    result.seconds = time.perf_counter() - start
    return result
