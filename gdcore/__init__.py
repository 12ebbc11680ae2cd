"""gdcore: gradient descent from scratch, in NumPy and Numba, checked against Keras and scikit-learn.

Keras's module shape: ``import gdcore as keras`` runs Keras cells that use
what gdcore supports (``keras.Input``, ``keras.layers.Dense``, ``keras.Model``,
``keras.Sequential``, ``keras.optimizers``, ``keras.losses``,
``keras.callbacks``, ``keras.initializers``, ``keras.backend.clear_session``,
``keras.utils.set_random_seed``, ``keras.config.set_floatx``, ``keras.saving.load_model``); anything else
is an error naming it.

Quick start::

    import gdcore
    train = gdcore.datasets.make_regression_dataset(100, noise=1.25, random_state=42)
    model = gdcore.Sequential([gdcore.Input(shape=(1,)),
                               gdcore.layers.Dense(1, kernel_initializer=gdcore.initializers.RandomNormal(0, 0.05, seed=123))])
    model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=0.01), loss="mse")
    history = model.fit(train[["X"]], train["y"], batch_size=20, epochs=25)
"""

from gdcore._cache import ensure_writable_cache

ensure_writable_cache()  # before any kernel is decorated

from gdcore import (activations, backend, callbacks, config, constraints, datasets, explain, initializers, layers, linear, losses,
                    metrics, models, numerics, optimizers, random, regularizers, saving, sweeps, trace, utils)
from gdcore.callbacks import History
from gdcore.layers import Dense, Input, InputLayer
from gdcore.models import Model, Sequential, TrainingDivergedWarning
from gdcore.sweeps import sweep

__version__ = "0.1.0"
__all__ = [
    "Dense", "History", "Input", "InputLayer", "Model", "Sequential", "TrainingDivergedWarning", "activations",
    "backend", "callbacks", "config", "constraints", "datasets", "explain", "initializers", "layers", "linear", "losses", "metrics",
    "models", "numerics", "optimizers", "random", "regularizers", "saving", "sweep", "sweeps", "trace", "utils",
]
