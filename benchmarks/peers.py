"""The implementations the benchmark times: gdcore and its peers, each behind one small interface.

Every peer trains the same network on the same float32 data with the same
optimizer, learning rate, batch size and number of epochs, starting from
gdcore's initial weights (except scikit-learn, which cannot be given initial
weights before its first ``partial_fit`` and draws its own). What each peer
does per step, and where the work differs, is written in ``README.md``.

A trainer has four methods:

``warm_up()``
    Untimed. Compiles or traces whatever the peer compiles (Numba, tf.function,
    XLA), on data of the shapes the timed run will see.
``reset()``
    Untimed. Puts weights, optimizer state and shuffling generator back to the start.
``train()``
    Timed. One complete training run (``epochs`` passes over the data).
``predict(x)``
    Untimed. Outputs of shape (n, 1), to check that the run trained.

Every library, gdcore included, is imported inside the code that uses it: the
module imports without the optional peers (JAX, TensorFlow), and a cold-start
child process (``cold_start.py``) imports only the library it measures.
"""

import os
from dataclasses import dataclass, field

import numpy as np

# The slice trainers warm up on when the data is large: enough for full and partial batches.
_WARM_UP_ROWS = 4096


@dataclass(frozen=True)
class Workload:
    """One training configuration: data, network, optimizer and schedule."""

    name: str
    x: np.ndarray  # (n, 1) float32
    y: np.ndarray  # (n, 1) float32
    hidden_units: int | None  # None: the linear neuron Dense(1)
    optimizer: str  # "sgd" or "adam"
    learning_rate: float
    batch_size: int
    epochs: int
    initial_weights: list = field(repr=False)  # gdcore's initial [kernel, bias, ...]

    @property
    def n_samples(self) -> int:
        return self.x.shape[0]

    def warm_up_slice(self) -> tuple[np.ndarray, np.ndarray]:
        rows = min(self.n_samples, _WARM_UP_ROWS + self.n_samples % self.batch_size)
        return self.x[:rows], self.y[:rows]


def gdcore_layers(hidden_units: int | None) -> list:
    """The seed's layers: Dense(1) with RandomNormal(0, 0.05, seed=123), or Dense(h, sigmoid) -> Dense(1)."""
    import gdcore

    if hidden_units is None:
        return [gdcore.Input(shape=(1,)),
                gdcore.layers.Dense(1, kernel_initializer=gdcore.initializers.RandomNormal(0, 0.05, seed=123))]
    return [gdcore.Input(shape=(1,)),
            gdcore.layers.Dense(hidden_units, activation="sigmoid",
                                kernel_initializer=gdcore.initializers.RandomNormal(0, 0.25, seed=123)),
            gdcore.layers.Dense(1)]


def gdcore_optimizer(name: str, learning_rate: float):
    import gdcore

    if name == "adam":
        return gdcore.optimizers.Adam(learning_rate=learning_rate)
    return gdcore.optimizers.SGD(learning_rate=learning_rate)


def make_workload(name, x, y, hidden_units, optimizer, learning_rate, batch_size, epochs) -> Workload:
    """A workload whose initial weights are those gdcore draws for the seed's layers (model seed 0)."""
    import gdcore

    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1, 1))
    y = np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, 1))
    model = gdcore.Sequential(gdcore_layers(hidden_units), dtype="float32", seed=0)
    return Workload(name, x, y, hidden_units, optimizer, learning_rate, batch_size, epochs, model.get_weights())


def mse(trainer, workload: Workload) -> float:
    """Mean squared error of the trained model on its training data, in float64."""
    prediction = np.asarray(trainer.predict(workload.x), dtype=np.float64).reshape(-1, 1)
    return float(np.mean((prediction - workload.y.astype(np.float64)) ** 2))


# --- gdcore ------------------------------------------------------------------------------


class _KerasShapedTrainer:
    """A model with Keras's ``fit`` (gdcore or Keras); subclasses build it and define ``reset``/``predict``."""

    def warm_up(self):
        self.reset()
        x, y = self.workload.warm_up_slice()
        self.model.fit(x, y, batch_size=self.workload.batch_size, epochs=1, shuffle=True, verbose=0)

    def train(self):
        w = self.workload
        self.model.fit(w.x, w.y, batch_size=w.batch_size, epochs=w.epochs, shuffle=True, verbose=0)


class GdcoreTrainer(_KerasShapedTrainer):
    """``gdcore.Sequential.fit``: everything a user's call does, validation and shuffling included."""

    def __init__(self, workload: Workload, engine: str = "numba", numerics: str = "plain"):
        self.workload, self.engine, self.numerics = workload, engine, numerics
        self.model = None

    def reset(self):
        import gdcore

        w = self.workload
        self.model = gdcore.Sequential(gdcore_layers(w.hidden_units), dtype="float32", numerics=self.numerics,
                                       engine=self.engine, seed=0)
        self.model.set_weights(w.initial_weights)
        self.model.compile(optimizer=gdcore_optimizer(w.optimizer, w.learning_rate), loss="mse")


    def predict(self, x):
        return self.model.predict(x, batch_size=65536, verbose=0)


# --- hand-written NumPy loop ----------------------------------------------------------


class NumpyLoopTrainer:
    """The loop an engineer writes by hand: per batch, vectorised forward, backward and update.

    float32 throughout; a fresh ``rng.permutation`` per epoch; the batch is
    gathered with fancy indexing; Adam in Keras's form (epsilon added to
    :math:`\\sqrt v`), SGD without momentum. Like ``fit``, it records each
    epoch's mean training loss.
    """

    def __init__(self, workload: Workload):
        self.workload = workload

    def reset(self):
        self.params = [np.array(p, dtype=np.float32) for p in self.workload.initial_weights]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0
        self.rng = np.random.default_rng(0)
        self.epoch_losses = []

    def warm_up(self):
        self.reset()
        self._epoch(*self.workload.warm_up_slice())

    def train(self):
        for _ in range(self.workload.epochs):
            self._epoch(self.workload.x, self.workload.y)

    def _epoch(self, x, y):
        w = self.workload
        order = self.rng.permutation(x.shape[0])
        total = 0.0
        for start in range(0, x.shape[0], w.batch_size):
            rows = order[start : start + w.batch_size]
            total += self._step(x[rows], y[rows]) * len(rows)
        self.epoch_losses.append(total / x.shape[0])

    def _step(self, xb, yb) -> float:
        """One update from batch (xb, yb); returns the batch's MSE before the update."""
        if self.workload.hidden_units is None:
            kernel, bias = self.params
            output = xb @ kernel + bias
            error = output - yb
            output_grad = error * np.float32(2.0 / len(xb))
            grads = [xb.T @ output_grad, output_grad.sum(axis=0)]
        else:
            kernel_0, bias_0, kernel_1, bias_1 = self.params
            hidden = 1.0 / (1.0 + np.exp(-(xb @ kernel_0 + bias_0)))
            output = hidden @ kernel_1 + bias_1
            error = output - yb
            output_grad = error * np.float32(2.0 / len(xb))
            hidden_grad = (output_grad @ kernel_1.T) * hidden * (1.0 - hidden)
            grads = [xb.T @ hidden_grad, hidden_grad.sum(axis=0), hidden.T @ output_grad, output_grad.sum(axis=0)]
        batch_loss = float(np.mean(error * error))
        learning_rate = self.workload.learning_rate
        if self.workload.optimizer == "sgd":
            for param, grad in zip(self.params, grads):
                param -= learning_rate * grad
            return batch_loss
        beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7
        self.t += 1
        alpha = np.float32(learning_rate * np.sqrt(1 - beta_2**self.t) / (1 - beta_1**self.t))
        for param, grad, m, v in zip(self.params, grads, self.m, self.v):
            m += (grad - m) * np.float32(1 - beta_1)
            v += (grad * grad - v) * np.float32(1 - beta_2)
            param -= m * alpha / (np.sqrt(v) + np.float32(epsilon))
        return batch_loss

    def predict(self, x):
        if self.workload.hidden_units is None:
            kernel, bias = self.params
            return x @ kernel + bias
        kernel_0, bias_0, kernel_1, bias_1 = self.params
        return (1.0 / (1.0 + np.exp(-(x @ kernel_0 + bias_0)))) @ kernel_1 + bias_1


# --- Keras ------------------------------------------------------------------------------


def import_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


class KerasTrainer(_KerasShapedTrainer):
    """``keras.Model.fit`` (TensorFlow backend, ``jit_compile=False``), one call for all epochs.

    Built and compiled once; ``warm_up`` traces the train function on a slice;
    ``reset`` reloads the initial weights and zeroes the optimizer's iteration
    count and slots (its learning rate is left alone).
    """

    def __init__(self, workload: Workload):
        keras = import_keras()
        w = self.workload = workload
        layers = [keras.Input(shape=(1,))]
        if w.hidden_units is not None:
            layers.append(keras.layers.Dense(w.hidden_units, activation="sigmoid"))
        layers.append(keras.layers.Dense(1))
        self.model = keras.Sequential(layers)
        optimizer = (keras.optimizers.Adam(learning_rate=w.learning_rate) if w.optimizer == "adam"
                     else keras.optimizers.SGD(learning_rate=w.learning_rate))
        self.model.compile(optimizer=optimizer, loss="mse", jit_compile=False)

    def reset(self):
        self.model.set_weights(self.workload.initial_weights)
        for variable in self.model.optimizer.variables:
            if not variable.path.endswith("learning_rate"):
                variable.assign(np.zeros(variable.shape, dtype=variable.dtype))


    def predict(self, x):
        return self.model.predict(x, batch_size=65536, verbose=0)


# --- scikit-learn -------------------------------------------------------------------------


class _PartialFitTrainer:
    """A scikit-learn estimator trained by one ``partial_fit`` per epoch; subclasses build it in ``reset``."""

    def warm_up(self):
        self.reset()
        x, y = self.workload.warm_up_slice()
        self.estimator.partial_fit(x, y.ravel())

    def train(self):
        for _ in range(self.workload.epochs):
            self.estimator.partial_fit(self.workload.x, self._y)

    def predict(self, x):
        return self.estimator.predict(x).reshape(-1, 1)


class MLPRegressorTrainer(_PartialFitTrainer):
    """``MLPRegressor.partial_fit`` once per epoch (each call is one shuffled pass in minibatches).

    Hidden workloads: ``hidden_layer_sizes=(h,)``, logistic, Adam or SGD.
    The linear neuron: ``hidden_layer_sizes=(1,)`` with the identity
    activation, a 1-1-1 linear network (MLPRegressor cannot have zero hidden
    layers), SGD with momentum 0. No L2 penalty (``alpha=0``); scikit-learn's
    own Glorot initialisation (from ``RandomState(0)``), not gdcore's weights.
    """

    def __init__(self, workload: Workload):
        self.workload = workload

    def reset(self):
        from sklearn.neural_network import MLPRegressor

        w = self.workload
        # A RandomState object, not an int: with an int every partial_fit re-seeds and repeats one permutation.
        common = dict(batch_size=w.batch_size, learning_rate_init=w.learning_rate, alpha=0.0, shuffle=True,
                      random_state=np.random.RandomState(0))
        if w.hidden_units is None:
            common.update(hidden_layer_sizes=(1,), activation="identity")
        else:
            common.update(hidden_layer_sizes=(w.hidden_units,), activation="logistic")
        if w.optimizer == "adam":
            self.estimator = MLPRegressor(solver="adam", **common)
        else:
            self.estimator = MLPRegressor(solver="sgd", momentum=0.0, nesterovs_momentum=False,
                                          learning_rate="constant", **common)
        self._y = self.workload.y.ravel()


class SGDRegressorTrainer(_PartialFitTrainer):
    """``SGDRegressor.partial_fit`` once per epoch: the linear neuron, but one sample per update.

    Batch-1 semantics (100 updates per epoch, not 5) and scikit-learn's half
    squared error, constant learning rate ``eta0``, no penalty. Only for the
    linear workload.
    """

    def __init__(self, workload: Workload):
        if workload.hidden_units is not None or workload.optimizer != "sgd":
            raise ValueError("SGDRegressor only fits the linear neuron trained with SGD")
        self.workload = workload

    def reset(self):
        from sklearn.linear_model import SGDRegressor

        self.estimator = SGDRegressor(loss="squared_error", penalty=None, learning_rate="constant",
                                      eta0=self.workload.learning_rate, shuffle=True,
                                      random_state=np.random.RandomState(0))
        self._y = self.workload.y.ravel()


# --- JAX ------------------------------------------------------------------------------------


def jax_available() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


class JaxTrainer:
    """One ``jax.jit`` function: a ``lax.scan`` over epochs around a ``lax.scan`` over batches.

    Loss and gradients by ``jax.value_and_grad`` of the batch MSE (each
    epoch's mean loss is returned, as ``fit`` records it); Keras-form Adam or
    plain SGD written out. The permutations are drawn in NumPy inside the timed call
    (one ``rng.permutation`` per epoch) and the gather happens inside the jit.
    A partial last batch is a second, statically shaped step per epoch.
    """

    def __init__(self, workload: Workload):
        import jax
        import jax.numpy as jnp

        self.workload = w = workload
        self.jax = jax
        self.x = jnp.asarray(w.x)
        self.y = jnp.asarray(w.y)
        batch_size, n = w.batch_size, w.n_samples
        full_batches, remainder = divmod(n, batch_size)
        hidden = w.hidden_units is not None
        learning_rate, beta_1, beta_2, epsilon = w.learning_rate, 0.9, 0.999, 1e-7

        def forward(params, x):
            if hidden:
                kernel_0, bias_0, kernel_1, bias_1 = params
                return jax.nn.sigmoid(x @ kernel_0 + bias_0) @ kernel_1 + bias_1
            kernel, bias = params
            return x @ kernel + bias

        def loss(params, x, y):
            return jnp.mean((forward(params, x) - y) ** 2)

        def step(carry, batch):
            params, m, v, t = carry
            value, grads = jax.value_and_grad(loss)(params, *batch)
            if w.optimizer == "sgd":
                return (tuple(p - learning_rate * g for p, g in zip(params, grads)), m, v, t), value
            t = t + 1
            alpha = learning_rate * jnp.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            m = tuple(mi + (g - mi) * (1 - beta_1) for mi, g in zip(m, grads))
            v = tuple(vi + (g * g - vi) * (1 - beta_2) for vi, g in zip(v, grads))
            params = tuple(p - mi * alpha / (jnp.sqrt(vi) + epsilon) for p, mi, vi in zip(params, m, v))
            return (params, m, v, t), value

        def epoch(carry, order):
            xs, ys = self.x[order], self.y[order]
            batches = (xs[: full_batches * batch_size].reshape(full_batches, batch_size, 1),
                       ys[: full_batches * batch_size].reshape(full_batches, batch_size, 1))
            carry, losses = jax.lax.scan(step, carry, batches)
            total = jnp.sum(losses) * batch_size
            if remainder:
                carry, last = step(carry, (xs[full_batches * batch_size :], ys[full_batches * batch_size :]))
                total = total + last * remainder
            return carry, total / n

        @jax.jit
        def train(params, orders):
            zeros = tuple(jnp.zeros_like(p) for p in params)
            carry = (params, zeros, zeros, jnp.float32(0))
            carry, epoch_losses = jax.lax.scan(epoch, carry, orders)
            return carry[0], epoch_losses

        self._train = train
        self._forward = jax.jit(forward)

    def reset(self):
        self.params = tuple(self.jax.numpy.asarray(p) for p in self.workload.initial_weights)
        self.rng = np.random.default_rng(0)

    def warm_up(self):
        # XLA specialises on shapes, so the warm-up is a full run.
        self.reset()
        self.train()

    def train(self):
        w = self.workload
        orders = np.stack([self.rng.permutation(w.n_samples) for _ in range(w.epochs)]).astype(np.int32)
        self.trained, self.epoch_losses = self.jax.block_until_ready(self._train(self.params, orders))

    def predict(self, x):
        return np.asarray(self._forward(self.trained, self.jax.numpy.asarray(x)))
