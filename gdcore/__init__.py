"""gdcore: gradient descent from scratch, in NumPy and Numba, checked against Keras and scikit-learn.

Quick start::

    import gdcore
    train = gdcore.datasets.make_regression_dataset(100, noise=1.25, random_state=42)
    model = gdcore.Sequential([gdcore.Input(shape=(1,)),
                               gdcore.layers.Dense(1, kernel_initializer=gdcore.initializers.RandomNormal(0, 0.05, seed=123))])
    model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=0.01), loss="mse")
    history = model.fit(train[["X"]], train["y"], batch_size=20, epochs=25)
"""

from gdcore import activations, callbacks, datasets, explain, initializers, layers, linear, losses, numerics, optimizers, trace
from gdcore.callbacks import History
from gdcore.layers import Dense, Input
from gdcore.models import Sequential, TrainingDivergedWarning

__version__ = "0.1.0"
__all__ = [
    "Dense", "History", "Input", "Sequential", "TrainingDivergedWarning", "activations", "callbacks", "datasets",
    "explain", "initializers", "layers", "linear", "losses", "numerics", "optimizers", "trace",
]
