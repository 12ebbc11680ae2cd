"""``Sequential``: a stack of Dense layers with Keras's ``compile``/``fit``/``predict``/``evaluate``."""

import math
import warnings

import numpy as np

from gdcore import _contract, _numba_engine, _numpy_engine, losses, optimizers
from gdcore._validation import as_features, as_targets, positive_int
from gdcore.callbacks import Callback, History
from gdcore.layers import Dense, Input
from gdcore.numerics import get_profile

ENGINES = {"numba": _numba_engine, "numpy": _numpy_engine}
DTYPES = ("float32", "float64")
# Permutations are drawn for this many samples x epochs at a time, so memory stays bounded.
_ORDER_CHUNK = 1 << 22


def _engine_array(array: np.ndarray) -> np.ndarray:
    """``array`` itself if C-contiguous, aligned and writeable, else a copy that is.

    The compiled loops are typed by these flags: a read-only array (pandas's
    ``to_numpy()`` under copy-on-write) would compile a second fit loop.
    """
    flags = array.flags
    if flags.c_contiguous and flags.aligned and flags.writeable:  # the common case, ~20x cheaper than np.require
        return array
    return np.require(array, requirements="CAW")


class TrainingDivergedWarning(RuntimeWarning):
    """A batch loss became NaN or infinite; training stopped at the last completed epoch."""


class Sequential:
    """A feed-forward network of Dense layers, trained by minibatch gradient descent.

    Parameters
    ----------
    layers : list
        An optional ``Input(shape=(d,))`` followed by ``Dense`` layers. Without
        an ``Input`` the model is built by its first ``fit``/``predict``.
    dtype : {"float32", "float64"}
        The dtype of weights, activations, gradients and the loss metric
        (Keras's ``float32`` default; ``float64`` is Keras's dtype policy ``"float64"``).
    numerics : {"plain", "tensorflow"}
        Summation order of every reduction, see :mod:`gdcore.numerics`.
    engine : {"numba", "numpy"}
        The compiled fused loop (fast) or the readable NumPy step (same bits).
    seed : int or None
        Seeds the generator for unseeded initializers and for ``fit(shuffle=True)``.
    """

    def __init__(self, layers=None, dtype: str = "float32", numerics: str = "plain", engine: str = "numba",
                 seed: int | None = None, name: str = "sequential"):
        if str(dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
        self.dtype = np.dtype(str(dtype))
        self.profile = get_profile(numerics)
        self.engine = engine
        self.name = name
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.input_shape: tuple[int] | None = None
        self.layers: list[Dense] = []
        self.params: np.ndarray | None = None
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self.history: History | None = None
        self.stop_training = False
        for layer in layers or []:
            self._append(layer)
        if self.input_shape is not None and self.layers:
            self.build(self.input_shape)

    # --- structure --------------------------------------------------------------------

    def add(self, layer) -> None:
        """Append an ``Input`` (first only) or a ``Dense`` layer; earlier layers keep their weights."""
        previous = self.get_weights() if self.params is not None else None
        self._append(layer)
        if self.input_shape is not None and self.layers:
            self.params = None
            self.build(self.input_shape)
            if previous:
                for array, value in zip([a for l in self.layers for a in (l.kernel, l.bias)], previous):
                    array[:] = value

    def _append(self, layer) -> None:
        if isinstance(layer, Input):
            if self.layers or self.input_shape is not None:
                raise ValueError("Input must be the first layer and appear once")
            self.input_shape = layer.shape
            return
        if not isinstance(layer, Dense):
            raise TypeError(f"layers must be gdcore.Input or gdcore.layers.Dense, got {type(layer).__name__}")
        if layer.input_shape is not None:
            if self.layers or self.input_shape not in (None, layer.input_shape):
                raise ValueError("input_shape may only be given to the first layer, and must agree with the Input")
            self.input_shape = layer.input_shape
        layer.name = layer.name or ("dense" if not self.layers else f"dense_{len(self.layers)}")
        self.layers.append(layer)

    def build(self, input_shape) -> None:
        """Allocate the flat parameter array and initialise every layer's kernel and bias."""
        if not self.layers:
            raise ValueError("the model has no Dense layer: add one before building")
        if self.params is not None:
            return
        self.input_shape = (positive_int(tuple(input_shape)[0], "input_shape[0]"),)
        rows, offset, n_in = [], 0, self.input_shape[0]
        for layer in self.layers:
            rows.append((n_in, layer.units, layer.activation.id, offset, offset + n_in * layer.units))
            offset += n_in * layer.units + layer.units
            n_in = layer.units
        self.layout = _contract.layout(rows)
        self.params = np.empty(offset, dtype=self.dtype)
        for layer, row in zip(self.layers, self.layout):
            n_in, units = int(row.n_in), int(row.n_out)
            layer.input_dim = n_in
            layer.kernel = self.params[row.kernel : row.bias].reshape(n_in, units)
            layer.bias = self.params[row.bias : row.bias + units]
            layer.kernel[:] = layer.kernel_initializer((n_in, units), self.dtype, self._rng)
            layer.bias[:] = layer.bias_initializer((units,), self.dtype, self._rng)

    @property
    def built(self) -> bool:
        return self.params is not None

    def count_params(self) -> int:
        """Number of weights, as Keras counts them."""
        self._require_built("count_params")
        return int(self.params.size)

    def get_weights(self) -> list[np.ndarray]:
        """``[kernel_0, bias_0, kernel_1, bias_1, ...]`` as copies, in Keras's layout."""
        self._require_built("get_weights")
        return [array.copy() for layer in self.layers for array in (layer.kernel, layer.bias)]

    def set_weights(self, weights) -> None:
        """Load weights in the order and shapes of :meth:`get_weights`; they are cast to the model's dtype."""
        self._require_built("set_weights")
        weights = list(weights)
        targets = [array for layer in self.layers for array in (layer.kernel, layer.bias)]
        if len(weights) != len(targets):
            raise ValueError(f"set_weights expected {len(targets)} arrays (kernel and bias per Dense layer), got {len(weights)}")
        arrays = []
        for index, (value, target) in enumerate(zip(weights, targets)):
            value = np.asarray(value, dtype=np.float64)
            if value.shape != target.shape:
                raise ValueError(f"weights[{index}] has shape {value.shape}, expected {target.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"weights[{index}] contains NaN or inf")
            arrays.append(value)
        for value, target in zip(arrays, targets):
            target[:] = value

    def summary(self, print_fn=print) -> None:
        """Print the layers, their output shapes and parameter counts, as Keras does."""
        self._require_built("summary")
        lines = [f'Model: "{self.name}"', f"{'Layer (type)':<28}{'Output Shape':<20}{'Param #':>10}", "=" * 58]
        for layer in self.layers:
            lines.append(f"{layer.name + ' (Dense)':<28}{str((None, layer.units)):<20}{layer.count_params():>10,}")
        lines += ["=" * 58, f"Total params: {self.count_params():,}", f"Trainable params: {self.count_params():,}", "Non-trainable params: 0"]
        print_fn("\n".join(lines))

    def _require_built(self, what: str) -> None:
        if self.params is None:
            raise ValueError(f"{what}: the model is not built yet; give it an Input(shape=...) or call fit/predict first")

    # --- training -----------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        """Choose the optimizer (name or object) and the loss (Keras name, alias or loss object)."""
        if metrics:
            raise ValueError(f"metrics are not supported yet (got {metrics!r}); the loss is always tracked")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)

    def _engine(self):
        return ENGINES[self.engine]

    @property
    def network(self) -> _contract.Network:
        """The parameters and layer layout as the engines take them (:mod:`gdcore._contract`)."""
        self._require_built("network")
        return _contract.Network(self.params, self.layout)

    def _optimizer_state(self) -> _contract.OptimizerState:
        optimizer = self.optimizer
        lanes = self.profile.update_lanes(self.layout, self.dtype)
        return _contract.OptimizerState(optimizer.hyperparameters(self.dtype), optimizer.slots, optimizer.iterations,
                                        lanes)

    def _prepare_x(self, x, name="x") -> np.ndarray:
        expected = self.input_shape[0] if self.input_shape is not None else None
        features = as_features(x, name, expected, dtype=self.dtype)
        if self.params is None:
            self.build((features.shape[1],))
        return _engine_array(features)

    def _prepare_y(self, y, n_rows, name="y") -> np.ndarray:
        return _engine_array(as_targets(y, name, n_rows=n_rows, n_outputs=self.layers[-1].units, dtype=self.dtype))

    def fit(self, x=None, y=None, batch_size: int | None = 32, epochs: int = 1, verbose="auto", callbacks=None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True, initial_epoch: int = 0) -> History:
        """Train for ``epochs`` passes over the data, Keras's way.

        Each epoch visits the samples in consecutive batches of ``batch_size``
        (the last one partial when ``len(x)`` is not a multiple), in a fresh
        permutation drawn from the model's seeded generator when ``shuffle``
        is true and in the given order otherwise. Optimizer state persists
        across calls, so ``fit(x[p], y[p], epochs=1, shuffle=False)`` once per
        epoch equals one long fit visiting orders ``p``.

        Returns the :class:`~gdcore.callbacks.History`; ``verbose`` 1 or 2
        prints one line per epoch. A NaN or infinite batch loss stops training
        with a :class:`TrainingDivergedWarning`: weights and optimizer state are
        those at the end of the last completed epoch, and the History holds
        every completed epoch.

        ``validation_split`` holds out the *last* fraction of the samples,
        before any shuffling, as Keras does; ``validation_data`` wins if both
        are given.
        """
        return self._train(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
                           initial_epoch)

    def _train(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
               initial_epoch, on_step=None) -> History:
        """The epoch driver behind :meth:`fit` and :func:`gdcore.trace.fit_trace`.

        ``on_step(epoch, step)``, if given, is called for every update of every
        *completed* epoch (``epoch`` counted from 0 across ``fit`` calls,
        ``step`` a :class:`gdcore._contract.Step`); the NumPy engine runs the
        steps then (same bits as the compiled one).
        """
        if self.optimizer is None or self.loss is None:
            raise ValueError("fit: the model must be compiled first: call compile(optimizer=..., loss=...)")
        batch_size = positive_int(32 if batch_size is None else batch_size, "batch_size")
        epochs = positive_int(epochs, "epochs", minimum=0)
        initial_epoch = positive_int(initial_epoch, "initial_epoch", minimum=0)
        verbose = 1 if verbose == "auto" else int(verbose)
        x = self._prepare_x(x)
        y = self._prepare_y(y, x.shape[0])
        if validation_split and validation_data is None:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
            split_at = math.floor(x.shape[0] * (1.0 - validation_split))
            if split_at == 0 or split_at == x.shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves no training or no validation samples "
                                 f"out of {x.shape[0]}")
            validation_data = (x[split_at:], y[split_at:])
            x, y = x[:split_at], y[:split_at]
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            val_x = self._prepare_x(validation_data[0], "validation_data[0]")
            val_y = self._prepare_y(validation_data[1], val_x.shape[0], "validation_data[1]")
        else:
            val_x = np.empty((0, x.shape[1]), dtype=self.dtype)
            val_y = np.empty((0, y.shape[1]), dtype=self.dtype)
        callbacks = list(callbacks or [])
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be gdcore.callbacks.Callback instances, got {type(callback).__name__}")
        history = History()
        history.history = {"loss": [], **({"val_loss": []} if val_x.shape[0] else {})}
        callbacks.append(history)
        steps = math.ceil(x.shape[0] / batch_size)
        for callback in callbacks:
            callback.set_model(self)
            callback.set_params({"verbose": verbose, "epochs": epochs, "steps": steps})
            callback.on_train_begin()
        self.history = history
        self.stop_training = False
        self.optimizer.build(self.params.size, self.dtype)
        n_epochs = epochs - initial_epoch
        # Hooks and printing need control between epochs; otherwise the compiled loop runs them all at once.
        per_epoch = verbose > 0 or len(callbacks) > 1 or on_step is not None
        chunk = 1 if per_epoch else max(1, _ORDER_CHUNK // x.shape[0])
        engine = _numpy_engine if on_step is not None else self._engine()
        done = 0
        while done < n_epochs and not self.stop_training:
            count = min(chunk, n_epochs - done)
            orders = self._orders(x.shape[0], count, shuffle)
            first = initial_epoch + done
            for callback in callbacks[:-1]:
                callback.on_epoch_begin(first)
            loss_history = np.zeros(count, dtype=self.dtype)
            val_history = np.zeros(count, dtype=self.dtype)
            steps = []
            iterations, completed, failed_batch = engine.fit_loop(
                self.profile, _contract.Epochs(x, y, orders, batch_size, _contract.Batches(val_x, val_y, batch_size)),
                self.network, self.loss.id, self._optimizer_state(), _contract.Log(loss_history, val_history),
                **({"on_step": steps.append} if on_step is not None else {}))
            self.optimizer.iterations = int(iterations)
            for step in steps:
                if step.epoch < completed:  # the steps of an epoch that diverged were undone
                    on_step(first + step.epoch, step)
            if per_epoch:
                for index in range(completed):
                    logs = {"loss": float(loss_history[index])}
                    if val_x.shape[0]:
                        logs["val_loss"] = float(val_history[index])
                    if verbose:
                        print(f"Epoch {first + index + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
                    for callback in callbacks:
                        callback.on_epoch_end(first + index, logs)
            else:  # only the History is listening: record the whole chunk at once
                history.epoch.extend(range(first, first + completed))
                history.history["loss"].extend(loss_history[:completed].tolist())
                if val_x.shape[0]:
                    history.history["val_loss"].extend(val_history[:completed].tolist())
            done += completed
            if failed_batch >= 0:
                epoch = initial_epoch + done
                history.stopped = {"epoch": epoch, "batch": int(failed_batch), "reason": "loss is NaN or infinite"}
                warnings.warn(
                    f"training diverged: the loss of batch {failed_batch} in epoch {epoch + 1} is NaN or infinite "
                    f"(learning_rate={self.optimizer.learning_rate} may be too large); stopped after {epoch} complete "
                    f"epoch(s), weights and optimizer state restored to the end of the last one",
                    TrainingDivergedWarning, stacklevel=2)
                break
        for callback in callbacks:
            callback.on_train_end()
        return history

    def _orders(self, n: int, epochs: int, shuffle: bool) -> np.ndarray:
        if not shuffle:
            return np.tile(np.arange(n, dtype=np.int64), (epochs, 1))
        return _numba_engine.permutations(self._rng.bit_generator.random_raw(epochs), n)

    def evaluate(self, x=None, y=None, batch_size: int | None = 32, verbose="auto", return_dict: bool = False):
        """The loss on (x, y), Keras's way: batch losses averaged with batch-size weights."""
        if self.loss is None:
            raise ValueError("evaluate: the model must be compiled first: call compile(optimizer=..., loss=...)")
        batch_size = positive_int(32 if batch_size is None else batch_size, "batch_size")
        x = self._prepare_x(x)
        y = self._prepare_y(y, x.shape[0])
        loss = float(self._engine().evaluate_loop(self.profile, _contract.Batches(x, y, batch_size), self.network,
                                                  self.loss.id))
        return {"loss": loss} if return_dict else loss

    def predict(self, x, batch_size: int | None = 32, verbose="auto") -> np.ndarray:
        """Outputs of shape (n_samples, units), computed in batches of ``batch_size`` as Keras does."""
        batch_size = positive_int(32 if batch_size is None else batch_size, "batch_size")
        x = self._prepare_x(x)
        empty = np.empty((0, 0), dtype=self.dtype)
        return self._engine().predict_loop(self.profile, _contract.Batches(x, empty, batch_size), self.network)

    def __call__(self, x) -> np.ndarray:
        return self.predict(x, batch_size=len(np.asarray(x)) or 1)

    def __repr__(self) -> str:
        layers = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{layers}], dtype={self.dtype.name!r}, numerics={self.profile.name!r}, engine={self.engine!r})"
